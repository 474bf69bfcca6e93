"""acl.rt: devices, contexts, streams, events and memory of the fake pyACL."""
from __future__ import annotations

import ctypes
import os
import time

import fake_npu

from . import _codes as C
from . import _memory
from ._state import DOUBLE as D
from ._state import PAIR, RET, api, require_context, require_init
from ._streams import Event, Stream

MALLOC_POLICIES = range(6)  # ACL_MEM_MALLOC_HUGE_FIRST .. NORMAL_ONLY_P2P
ACL_HOST = 1                   # aclrtRunMode: the application runs on the host


# -- devices and contexts -----------------------------------------------------------------
@api("rt.get_device_count", PAIR(0))
def get_device_count():
    return fake_npu.device_count(), C.SUCCESS


@api("rt.set_device", RET)
def set_device(device_id):
    code = require_init()
    if code:
        return code
    if not isinstance(device_id, int) or not 0 <= device_id < fake_npu.device_count():
        return D.error(C.RT_OPEN_DEVICE, f"EE1001: open device {device_id} failed "
                       f"({fake_npu.device_count()} device(s) present)")
    with D.lock:
        D.device_refs[device_id] = D.device_refs.get(device_id, 0) + 1
        ctx = D.default_contexts.setdefault(device_id, D.new_handle())
    D.current_context = ctx  # set_device binds the device's default context to this thread
    return C.SUCCESS


@api("rt.reset_device", RET)
def reset_device(device_id):
    with D.lock:
        if D.device_refs.get(device_id, 0) <= 0:  # unbalanced reset: treated as invalid here
            return D.error(C.INVALID_PARAM, f"reset_device({device_id}) without set_device")
        D.device_refs[device_id] -= 1
        if D.device_refs[device_id]:
            return C.SUCCESS
        del D.device_refs[device_id]
        ctx = D.default_contexts.pop(device_id, None)
        stream = D.default_streams.pop(device_id, None)
    if stream is not None:
        stream.close()
    if D.current_context == ctx:
        D.current_context = None
    return C.SUCCESS


@api("rt.get_device", PAIR(0))
def get_device():
    device = D.current_device()
    if device is None:
        return 0, D.error(C.RT_CONTEXT_NULL, "no context is bound to this thread")
    return device, C.SUCCESS


@api("rt.get_run_mode", PAIR(0))
def get_run_mode():
    return ACL_HOST, C.SUCCESS


@api("rt.create_context", PAIR(0))
def create_context(device_id):
    code = require_init()
    if code:
        return 0, code
    if not isinstance(device_id, int) or not 0 <= device_id < fake_npu.device_count():
        return 0, D.error(C.RT_OPEN_DEVICE, f"EE1001: open device {device_id} failed")
    with D.lock:
        ctx = D.new_handle()
        D.contexts[ctx] = device_id
    D.current_context = ctx
    return ctx, C.SUCCESS


@api("rt.destroy_context", RET)
def destroy_context(context):
    with D.lock:
        if context not in D.contexts:  # unknown, destroyed twice, or a default context
            return D.error(C.INVALID_PARAM, f"destroy_context: unknown context {context}")
        del D.contexts[context]
    if D.current_context == context:
        D.current_context = None
    return C.SUCCESS


@api("rt.set_context", RET)
def set_context(context):
    with D.lock:
        if D.context_device(context) is None:
            return D.error(C.INVALID_PARAM, f"set_context: unknown context {context}")
    D.current_context = context
    return C.SUCCESS


@api("rt.get_context", PAIR(0))
def get_context():
    ctx = D.current_context
    if ctx is None:
        return 0, D.error(C.RT_CONTEXT_NULL, "no context is bound to this thread")
    return ctx, C.SUCCESS


# -- streams ------------------------------------------------------------------------------
def lookup_stream(stream):
    """Stream object for a handle; 0/None is the current device's default stream."""
    with D.lock:
        if stream in (0, None):
            device = D.current_device()
            if device is None:
                return None
            if device not in D.default_streams:
                D.default_streams[device] = Stream(device)
            return D.default_streams[device]
        return D.streams.get(stream)


@api("rt.create_stream", PAIR(0))
def create_stream():
    device, code = require_context()
    if code:
        return 0, code
    with D.lock:
        handle = D.new_handle()
        D.streams[handle] = Stream(device)
    return handle, C.SUCCESS


@api("rt.destroy_stream", RET)
def destroy_stream(stream):
    with D.lock:
        s = D.streams.pop(stream, None)
    if s is None:
        return D.error(C.INVALID_PARAM, f"destroy_stream: unknown stream {stream}")
    s.close()  # drains queued tasks first
    return C.SUCCESS


@api("rt.synchronize_stream", RET)
def synchronize_stream(stream):
    s = lookup_stream(stream)
    if s is None:
        return D.error(C.INVALID_PARAM, f"synchronize_stream: unknown stream {stream}")
    return s.synchronize()


@api("rt.synchronize_device", RET)
def synchronize_device():
    device, code = require_context()
    if code:
        return code
    with D.lock:
        streams = [s for s in D.streams.values() if s.device == device]
        streams += [s for d, s in D.default_streams.items() if d == device]
    codes = [s.synchronize() for s in streams]
    return next((c for c in codes if c), C.SUCCESS)


# -- events -------------------------------------------------------------------------------
# FAKE_ACL_EVENTS (read at import, like another CANN install):
#   new: create_event_with_flag exists; reset_event only on events made by it with ACL_EVENT_SYNC
#        (aclrtResetEvent's constraint in current CANN); no reset needed between recordings.
#   old: no create_event_with_flag; reset_event works on any event and is required after
#        stream_wait_event before the event is recorded again (older CANN).
EVENT_GENERATION = os.environ.get("FAKE_ACL_EVENTS", "new")
if EVENT_GENERATION not in ("new", "old"):
    raise ImportError(f"FAKE_ACL_EVENTS must be 'new' or 'old', not {EVENT_GENERATION!r}")
DEFAULT_EVENT_CAP = 1023  # events per device on Atlas inference products (310/310P)


def _new_event(flag):
    """Creation waits while the device's events are exhausted (CANN docs: 'the system waits for
    resource release'); the double gives up after FAKE_ACL_EVENT_WAIT_S (default 1 s) with
    ACL_ERROR_RT_NO_EVENT_RESOURCE, where hardware would hang."""
    device, code = require_context()
    if code:
        return 0, code
    cap = int(os.environ.get("FAKE_ACL_EVENT_CAP", DEFAULT_EVENT_CAP))
    deadline = time.monotonic() + float(os.environ.get("FAKE_ACL_EVENT_WAIT_S", "1"))
    with D.event_freed:
        while sum(1 for e in D.events.values() if e.device == device) >= cap:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0, D.error(C.RT_NO_EVENT_RESOURCE, f"EE1001: no event resource: device {device} "
                                  f"already has {cap} events; destroy events (or reuse them)")
            D.event_freed.wait(left)
        handle = D.new_handle()
        D.events[handle] = Event(device, flag)
    return handle, C.SUCCESS


@api("rt.create_event", PAIR(0))
def create_event():
    return _new_event(None)


if EVENT_GENERATION == "new":
    @api("rt.create_event_with_flag", PAIR(0))
    def create_event_with_flag(flag):
        if not isinstance(flag, int) or flag <= 0 or flag & ~C.EVENT_FLAGS:
            return 0, D.error(C.RT_PARAM_INVALID, f"create_event_with_flag: invalid flag {flag!r}")
        return _new_event(flag)


def _has(ev, bit) -> bool:
    """Whether `ev` may be used where `bit` is needed (events of create_event can do everything)."""
    return ev.flag is None or bool(ev.flag & bit)


@api("rt.record_event", RET)
def record_event(event, stream):
    ev, s = D.events.get(event), lookup_stream(stream)
    if ev is None or s is None:
        return D.error(C.INVALID_PARAM, "record_event: unknown event or stream")
    if EVENT_GENERATION == "old" and ev.waited:
        return D.error(C.RT_PARAM_INVALID, "record_event: the event was waited on (stream_wait_event) and "
                       "not reset since; this CANN needs acl.rt.reset_event(event, stream) after the wait")
    ev.record(s)  # the time is taken when the stream reaches the event
    return C.SUCCESS


@api("rt.stream_wait_event", RET)
def stream_wait_event(stream, event):
    """Later tasks of `stream` wait until `event`'s latest recording is reached (aclrtStreamWaitEvent)."""
    ev, s = D.events.get(event), lookup_stream(stream)
    if ev is None or s is None:
        return D.error(C.INVALID_PARAM, "stream_wait_event: unknown event or stream")
    if not _has(ev, C.EVENT_SYNC):
        return D.error(C.RT_PARAM_INVALID, "stream_wait_event: the event was created without ACL_EVENT_SYNC")
    if EVENT_GENERATION == "old":
        ev.waited = True
    done = ev.done
    s.submit(lambda: done.wait() and C.SUCCESS)
    return C.SUCCESS


@api("rt.reset_event", RET)
def reset_event(event, stream):
    """aclrtResetEvent: queued on `stream` (the waiting one)."""
    ev, s = D.events.get(event), lookup_stream(stream)
    if ev is None or s is None:
        return D.error(C.INVALID_PARAM, "reset_event: unknown event or stream")
    if EVENT_GENERATION == "new" and (ev.flag is None or not ev.flag & C.EVENT_SYNC):
        return D.error(C.RT_PARAM_INVALID, "reset_event: only events created by create_event_with_flag "
                       "with ACL_EVENT_SYNC may be reset")
    ev.reset(s)
    return C.SUCCESS


@api("rt.synchronize_event", RET)
def synchronize_event(event):
    ev = D.events.get(event)
    if ev is None:
        return D.error(C.INVALID_PARAM, f"synchronize_event: unknown event {event}")
    ev.done.wait()
    return C.SUCCESS


@api("rt.event_elapsed_time", PAIR(0.0))
def event_elapsed_time(start, end):
    a, b = D.events.get(start), D.events.get(end)
    if a is None or b is None:
        return 0.0, D.error(C.INVALID_PARAM, "event_elapsed_time: unknown event")
    if not (_has(a, C.EVENT_TIME_LINE) and _has(b, C.EVENT_TIME_LINE)):
        return 0.0, D.error(C.RT_PARAM_INVALID, "event_elapsed_time: an event was created without "
                            "ACL_EVENT_TIME_LINE (no timestamp)")
    if a.stream is None or b.stream is None or a.time is None or b.time is None:
        # not recorded (or reset), or its stream has not reached it
        return 0.0, D.error(C.INVALID_PARAM, "event_elapsed_time: event not complete")
    if a.stream is not b.stream:
        return 0.0, D.error(C.RT_PARAM_INVALID, "event_elapsed_time: the two events were recorded on "
                            "different streams; both must be on the same stream")
    return (b.time - a.time) * 1000.0, C.SUCCESS


@api("rt.destroy_event", RET)
def destroy_event(event):
    with D.event_freed:
        if D.events.pop(event, None) is None:
            return D.error(C.INVALID_PARAM, f"destroy_event: unknown event {event}")
        D.event_freed.notify_all()
    return C.SUCCESS


# -- memory -------------------------------------------------------------------------------
@api("rt.malloc", PAIR(0))
def malloc(size, policy):
    device, code = require_context()
    if code:
        return 0, code
    if not isinstance(size, int) or size <= 0 or policy not in MALLOC_POLICIES:
        return 0, D.error(C.INVALID_PARAM, f"malloc({size}, {policy}): invalid size or policy")
    return D.mem.allocate(size, "device", device).addr, C.SUCCESS


@api("rt.malloc_host", PAIR(0))
def malloc_host(size):
    _, code = require_context()
    if code:
        return 0, code
    if not isinstance(size, int) or size <= 0:
        return 0, D.error(C.INVALID_PARAM, f"malloc_host({size}): invalid size")
    return D.mem.allocate(size, "host", None).addr, C.SUCCESS


@api("rt.free", RET)
def free(dev_ptr):
    if not D.mem.release(dev_ptr, "device"):
        return D.error(C.INVALID_PARAM, f"free: {dev_ptr} is not the start of device memory")
    return C.SUCCESS


@api("rt.free_host", RET)
def free_host(host_ptr):
    if not D.mem.release(host_ptr, "host"):
        return D.error(C.INVALID_PARAM, f"free_host: {host_ptr} is not the start of host memory")
    return C.SUCCESS


@api("rt.memset", RET)
def memset(dev_ptr, max_count, value, count):
    a, left = D.mem.find(dev_ptr)
    if a is None or not 0 <= count <= max_count <= left or not 0 <= value <= 255:
        return D.error(C.INVALID_PARAM, "memset: bad pointer, value or sizes")
    ctypes.memset(dev_ptr, value, count)
    return C.SUCCESS


@api("rt.memcpy", RET)
def memcpy(dst, dest_max, src, count, kind):
    _, code = require_context()
    if code:
        return code
    code, reason = _memory.check_copy(D.mem, dst, dest_max, src, count, kind)
    if code:
        return D.error(code, reason)
    _memory.copy(dst, src, count)
    return C.SUCCESS


@api("rt.memcpy_async", RET)
def memcpy_async(dst, dest_max, src, count, kind, stream):
    _, code = require_context()
    if code:
        return code
    s = lookup_stream(stream)
    if s is None:
        return D.error(C.INVALID_PARAM, f"memcpy_async: unknown stream {stream}")
    code, reason = _memory.check_copy(D.mem, dst, dest_max, src, count, kind)
    if code:
        return D.error(code, reason)
    if kind == C.H2H:  # accepted, but the task fails on the stream (CANN docs)
        s.submit(lambda: C.RT_FEATURE_NOT_SUPPORT)
        return C.SUCCESS

    def task():
        # the copy happens when the stream gets here: a host buffer that died meanwhile is
        # read anyway, as on hardware; freed allocations are caught
        again, _ = _memory.check_copy(D.mem, dst, dest_max, src, count, kind)
        if again:
            return again
        _memory.copy(dst, src, count)
        return C.SUCCESS

    s.submit(task)
    return C.SUCCESS


@api("rt.get_mem_info", lambda code: (0, 0, code))
def get_mem_info(attr):
    _, code = require_context()
    if code:
        return 0, 0, code
    total = 21527 * 1024 * 1024
    used = D.mem.total("device")
    return max(total - used, 0), total, C.SUCCESS

