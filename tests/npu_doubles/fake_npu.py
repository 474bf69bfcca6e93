"""The simulated NPU(s) of this process, shared by the acl and aclruntime doubles.

On hardware both pyACL and aclruntime sit on the same libascendcl, so ACL's init state is
per process (aclruntime initialising ACL makes a later acl.init() return 100002, and a
finalize from either side ends device work for both), and one device runs one model at a time.
Environment is read at call time: FAKE_NPU_DEVICES, FAKE_NPU_SOC, FAKE_NPU_LATENCY_MS.
"""
from __future__ import annotations

import os
import threading
import time

DEFAULT_SOC = "Ascend310P3"


class ProcessState:
    def __init__(self):
        self.lock = threading.Lock()
        self.initialized = False
        self.finalized = False
        self._device_locks: dict[int, threading.Lock] = {}

    def device_lock(self, device: int) -> threading.Lock:
        with self.lock:
            return self._device_locks.setdefault(device, threading.Lock())


STATE = ProcessState()


def device_count() -> int:
    return int(os.environ.get("FAKE_NPU_DEVICES", "1"))


def soc_name() -> str:
    return os.environ.get("FAKE_NPU_SOC", DEFAULT_SOC)


def latency_s() -> float:
    return float(os.environ.get("FAKE_NPU_LATENCY_MS", "0") or 0) / 1000.0


def execute(device: int, fn):
    """Run fn() as one model execution on `device`: serialised with every other execution on
    that device, and taking max(FAKE_NPU_LATENCY_MS, real time) of device time.
    Returns (fn's result, start, end) with perf_counter times."""
    with STATE.device_lock(device):
        start = time.perf_counter()
        result = fn()
        remaining = latency_s() - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        return result, start, time.perf_counter()
