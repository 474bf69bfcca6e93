"""State of the fake pyACL: handles, accounting, fault injection (exposed as acl._double)."""
from __future__ import annotations

import copy
import functools
import itertools
import threading

from . import _codes as C
from ._memory import MemoryRegistry

LIVE_KINDS = ("devices", "contexts", "streams", "events", "models", "descs", "datasets",
              "data_buffers", "device_mem", "host_mem")


class Double:
    """acl._double: live(), init_calls, calls, fail(name, code, times=1), executed, last_error."""

    def __init__(self):
        self.lock = threading.RLock()
        self.init_calls = 0
        self.calls: list[str] = []       # every public call, e.g. "rt.malloc", "mdl.execute"
        self.executed: list[tuple] = []  # (model_id, gear dims or None) per completed execute
        self.last_error = ""             # what acl.get_recent_err_msg() returns
        self._faults: dict[str, list[int]] = {}
        self.device_refs: dict[int, int] = {}   # set_device minus reset_device, per device
        self.default_contexts: dict[int, int] = {}
        self.contexts: dict[int, int] = {}      # handle -> device (explicit contexts only)
        self.streams: dict = {}                 # handle -> Stream
        self.default_streams: dict = {}         # device -> Stream (stream 0)
        self.events: dict = {}                  # handle -> Event
        self.event_freed = threading.Condition(self.lock)  # notified by destroy_event
        self.models: dict = {}                  # model id -> LoadedModel
        self.descs: dict[int, int | None] = {}  # handle -> model id filled by get_desc
        self.datasets: dict[int, list[int]] = {}
        self.data_buffers: dict[int, list[int]] = {}  # handle -> [addr, size]
        self.mem = MemoryRegistry()
        self._tls = threading.local()
        self._handles = itertools.count(0x5A000010, 0x10)  # pointer-like, unique across kinds
        self._model_ids = itertools.count(1)

    # -- test-facing API ------------------------------------------------------------------
    def live(self) -> dict[str, int]:
        with self.lock:
            return {"devices": sum(self.device_refs.values()), "contexts": len(self.contexts),
                    "streams": len(self.streams), "events": len(self.events),
                    "models": len(self.models), "descs": len(self.descs),
                    "datasets": len(self.datasets), "data_buffers": len(self.data_buffers),
                    "device_mem": self.mem.count("device"), "host_mem": self.mem.count("host")}

    def fail(self, name: str, code: int, times: int = 1) -> None:
        """The next `times` calls of `name` (e.g. "mdl.execute") return `code` in the ret slot
        (functions with a bare return give their failure value: 0, "" or None)."""
        with self.lock:
            self._faults[name] = [code, times]

    # -- internals ------------------------------------------------------------------------
    def new_handle(self) -> int:
        return next(self._handles)

    def new_model_id(self) -> int:
        return next(self._model_ids)

    def take_fault(self, name: str):
        with self.lock:
            self.calls.append(name)
            fault = self._faults.get(name)
            if not fault:
                return None
            fault[1] -= 1
            if fault[1] <= 0:
                del self._faults[name]
            return fault[0]

    def error(self, code: int, message: str) -> int:
        self.last_error = message
        return code

    @property
    def current_context(self):
        return getattr(self._tls, "context", None)

    @current_context.setter
    def current_context(self, handle):
        self._tls.context = handle

    def context_device(self, handle) -> int | None:
        if handle in self.contexts:
            return self.contexts[handle]
        for device, ctx in self.default_contexts.items():
            if ctx == handle:
                return device
        return None

    def current_device(self) -> int | None:
        """The device of this thread's current context, or None (-> ACL_ERROR_RT_CONTEXT_NULL)."""
        ctx = self.current_context
        return None if ctx is None else self.context_device(ctx)

    def shutdown(self) -> None:
        """Stop stream worker threads (used when the module is purged between tests)."""
        with self.lock:
            streams = list(self.streams.values()) + list(self.default_streams.values())
        for s in streams:
            s.close()


DOUBLE = Double()
PUBLIC: dict[str, dict] = {"": {}, "rt": {}, "mdl": {}, "util": {}}  # namespace -> name -> fn


def api(name: str, on_fail):
    """Wrap a public function: record the call, honour DOUBLE.fail(name, ...), and register it
    under its namespace ("rt.malloc" -> acl.rt.malloc, "init" -> acl.init)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            code = DOUBLE.take_fault(name)
            if code is not None:
                DOUBLE.last_error = f"injected failure {code} in {name}"
                return on_fail(code)
            return fn(*args, **kwargs)
        space, _, short = name.rpartition(".")
        PUBLIC[space][short] = wrapper
        return wrapper
    return deco


# what an injected failure returns, by return shape
def RET(code):
    return code


def PAIR(value):
    return lambda code: (copy.copy(value), code)


def BARE(value):
    return lambda code: value


def require_init():
    """ACL must be initialised (acl.init) and not finalised."""
    import fake_npu
    if not fake_npu.STATE.initialized:
        return DOUBLE.error(C.UNINITIALIZE, "EH0001: ACL is not initialized (call acl.init())")
    return C.SUCCESS


def require_context():
    """-> (device, code): the thread must have a current context (set_device/create_context/
    set_context in *this* thread), as on hardware."""
    code = require_init()
    if code:
        return None, code
    device = DOUBLE.current_device()
    if device is None:
        return None, DOUBLE.error(C.RT_CONTEXT_NULL, "EE1001: no context is bound to this "
                                  "thread; call acl.rt.set_context(ctx) in this thread")
    return device, C.SUCCESS
