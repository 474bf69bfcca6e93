"""Streams (one FIFO worker thread each) and events of the fake pyACL."""
from __future__ import annotations

import queue
import sys
import threading
import time

from . import _codes as C

# A real NPU works without the host's GIL; these worker threads need it between tasks. With the
# interpreter's default 5 ms switch interval, host code that holds the GIL (Python loops, parts
# of numpy) would delay every hand-off by up to 5 ms, a cost no device has; 0.2 ms keeps it small.
DEVICE_SWITCH_INTERVAL_S = 0.0002


class Stream:
    """Tasks run in submission order on a worker thread; each returns an aclError. A failure
    is kept until the next synchronize(), which returns the first one (as aclrtSynchronizeStream
    reports the failure of a task queued since the last sync)."""

    def __init__(self, device: int):
        sys.setswitchinterval(min(sys.getswitchinterval(), DEVICE_SWITCH_INTERVAL_S))
        self.device = device
        self._queue: queue.Queue = queue.Queue()
        self._errors: list[int] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="fake-acl-stream", daemon=True)
        self._thread.start()

    def submit(self, task) -> None:
        self._queue.put(task)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                try:
                    code = task()
                except Exception:  # noqa: BLE001 - a crashing task is a device-side failure
                    code = C.RT_INTERNAL_ERROR
                if code:
                    with self._lock:
                        self._errors.append(code)
            finally:
                self._queue.task_done()

    def synchronize(self) -> int:
        self._queue.join()
        with self._lock:
            code = self._errors[0] if self._errors else C.SUCCESS
            self._errors.clear()
        return code

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)


class Event:
    """An aclrtEvent. `flag` is None for acl.rt.create_event, else create_event_with_flag's flag."""

    def __init__(self, device: int, flag: int | None = None):
        self.device = device
        self.flag = flag
        self.time: float | None = None  # perf_counter when its stream reached it
        self.stream: Stream | None = None  # the stream of its latest recording
        self.serial = 0  # recordings so far
        self.waited = False  # a stream waited on it since its last reset (older CANN needs one)
        self.done = threading.Event()
        self.done.set()  # synchronizing a never-recorded event returns at once

    def record(self, stream: Stream) -> None:
        self.time = None
        self.stream = stream
        self.serial += 1
        done = self.done = threading.Event()  # one per recording: a waiter waits for the recording it saw

        def reached():
            self.time = time.perf_counter()
            done.set()
            return C.SUCCESS

        stream.submit(reached)

    def reset(self, stream: Stream) -> None:
        """aclrtResetEvent: back to the initial state when `stream` gets here (asynchronous)."""
        serial = self.serial
        self.waited = False

        def back_to_initial():
            if self.serial == serial:  # not recorded again meanwhile
                self.time = None
                self.stream = None
            return C.SUCCESS

        stream.submit(back_to_initial)
