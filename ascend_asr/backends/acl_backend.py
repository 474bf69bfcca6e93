"""pyACL backend (`import acl`): an OM on an Ascend device, synchronous or asynchronous.

Everything is allocated once when the session opens: per slot (double buffering) one input and
one output dataset, device buffers and pinned host buffers for every tensor, a copy stream and a
fixed set of events, reused by every batch of the slot (310/310P have 1023 events per device).
Asynchronously, each slot's copies run on its own stream while every execution runs on one shared
stream (CANN forbids running one model on several streams at once); two sync events order them,
so the next batch's H2D and the last batch's D2H overlap compute, and the host prepares and
decodes batches meanwhile. Six timing events, each pair recorded on one stream (as
aclrtEventElapsedTime requires), time H2D and D2H on the copy stream and compute on the execution
stream; a timing that cannot be read is recorded as missing, never fails the batch.

Events a stream waits on are reset after the wait where the CANN generation allows it, detected
by feature: with `acl.rt.create_event_with_flag` they are made with ACL_EVENT_SYNC (current CANN
resets only those), else with `create_event` and reset with `reset_event` (older CANN needs the
reset after aclrtStreamWaitEvent).

acl.init() runs once per process and acl.finalize() once at interpreter exit (atexit), after every
session still open has been released; never per session, never from a destructor.
Resources are released in reverse order, also after an error.
"""
from __future__ import annotations

import atexit
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from ..errors import BackendError
from .base import Pending, Session
from .npu_common import (
    REPEAT_FINALIZE,
    REPEAT_INITIALIZE,
    cast_feed,
    check,
    gear_error,
    import_runtime,
    match_names,
    numpy_dtype_of,
)

GEAR_INPUT = "ascend_mbatch_shape_data"  # the hidden input of --dynamic_dims models
MALLOC_HUGE_FIRST = 0
H2H, H2D, D2H = 0, 1, 2
ACL_EVENT_SYNC = 0x1  # acl_rt.h: an event other streams may wait on (and, in current CANN, reset)
TIMED = (("h2d_ms", "h2d_start", "h2d_end"), ("compute_ms", "compute_start", "compute_end"),
         ("d2h_ms", "d2h_start", "d2h_end"))  # timing key, start event, end event (same stream)
TIMING_EVENTS = tuple(name for _, start, end in TIMED for name in (start, end))
SYNC_EVENTS = ("copied", "computed")  # recorded on one stream, waited on by the other

_init_lock = threading.Lock()
_initialised: list = []  # the acl module(s) this process has initialised (held, so no id is reused)


def import_acl():
    return import_runtime("acl", "pyACL")


def init_acl(acl) -> None:
    """acl.init() once per process; a repeat (100002: someone else initialised ACL) is harmless.
    When this call initialised ACL, acl.finalize() is registered to run once at interpreter exit;
    never per session: it is process-global and would break every other session."""
    with _init_lock:
        if any(m is acl for m in _initialised):
            return
        ret = acl.init()
        if ret not in (0, REPEAT_INITIALIZE):
            check(ret, "acl.init()")
        _initialised.append(acl)
        if ret == 0:
            register_finalizer(acl.finalize)


# -- process exit: release what is still open, then finalize ACL once ---------------------------
_open_sessions: weakref.WeakSet = weakref.WeakSet()  # sessions with resources still held
_finalizers: list = []  # callables ending ACL for the process (acl.finalize, aclruntime's); the first runs
_exit_registered = False
_exit_lock = threading.Lock()


def register_finalizer(finalize) -> None:
    """Finalize ACL once at interpreter exit, after every session still open has been released.
    Only the first registered finalizer runs: aclFinalize is one per process, whoever calls it."""
    global _exit_registered
    with _exit_lock:
        _finalizers.append(finalize)
        if not _exit_registered:
            atexit.register(_at_exit)
            _exit_registered = True


def _at_exit() -> None:
    for session in list(_open_sessions):  # left open (an error, no close): release before finalizing
        try:
            session._release_all()
        except Exception:  # noqa: BLE001 - at exit, finalize anyway
            pass
    if _finalizers:
        finalize = _finalizers[0]
        _finalizers.clear()
        try:
            ret = finalize()
        except Exception:  # noqa: BLE001 - the process is ending; nothing to report it to
            return
        if ret not in (0, None, REPEAT_FINALIZE):
            print(f"acl.finalize() at exit returned {ret}", file=sys.stderr)


def device_count(acl) -> int:
    """How many devices answer (0 when none does)."""
    init_acl(acl)
    count, ret = acl.rt.get_device_count()
    return count if ret == 0 else 0


@dataclass
class _Tensor:
    name: str
    dtype: np.dtype
    dims: list
    size: int  # bytes; the largest gear's for gear models


@dataclass
class _Slot:
    stream: int
    in_ds: int
    out_ds: int
    in_dev: list = field(default_factory=list)
    in_host: list = field(default_factory=list)
    out_dev: list = field(default_factory=list)
    out_host: list = field(default_factory=list)
    events: dict = field(default_factory=dict)  # TIMING_EVENTS and SYNC_EVENTS by name
    timed: dict = field(default_factory=dict)  # timing key -> whether this batch recorded both its events
    pending: _AclPending | None = None


class _AclPending(Pending):
    def __init__(self, session: AclSession, slot: _Slot, out_dims: list):
        self._session, self._slot, self._out_dims = session, slot, out_dims
        self._outputs = None

    def result(self) -> dict[str, np.ndarray]:
        if self._outputs is None:
            self._outputs = self._session._finish(self._slot, self._out_dims)
            self._slot.pending = None
        return self._outputs


class AclSession(Session):
    def __init__(self, om_path: str, device: int = 0, mode: str = "async", slots: int = 2,
                 input_names=None, output_names=None):
        super().__init__()
        if mode not in ("sync", "async"):
            raise BackendError(f"mode {mode!r}: choose sync or async")
        self.name, self.mode, self.om_path, self.device = "acl", mode, om_path, device
        self.max_in_flight = max(2, slots) if mode == "async" else 1
        self._acl = acl = import_acl()
        self._release: list[tuple[str, object]] = []  # (what, call) in creation order
        self._slots: list[_Slot] = []
        self._next = 0
        self.missing_timings = {key: 0 for key, _, _ in TIMED}  # batches whose timing could not be read
        self._reset_after_wait = False
        _open_sessions.add(self)
        try:
            self._open(acl, input_names, output_names)
        except BaseException:
            self._release_all()  # the open error is the one to report
            raise

    # -- opening -------------------------------------------------------------------------------
    def _value(self, result, call: str):
        value, ret = result
        check(ret, call)
        return value

    def _open(self, acl, input_names, output_names) -> None:
        init_acl(acl)
        check(acl.rt.set_device(self.device), f"acl.rt.set_device({self.device})")
        self._release.append(("reset_device", lambda: acl.rt.reset_device(self.device)))
        self._context = self._value(acl.rt.create_context(self.device), "acl.rt.create_context")
        self._release.append(("destroy_context", lambda c=self._context: acl.rt.destroy_context(c)))
        self._model_id = self._value(acl.mdl.load_from_file(self.om_path),
                                     f"acl.mdl.load_from_file({self.om_path})")
        self._release.append(("unload", lambda m=self._model_id: acl.mdl.unload(m)))
        self._desc = acl.mdl.create_desc()
        if not self._desc:
            raise BackendError("acl.mdl.create_desc() failed: out of host memory?")
        self._release.append(("destroy_desc", lambda d=self._desc: acl.mdl.destroy_desc(d)))
        check(acl.mdl.get_desc(self._desc, self._model_id), "acl.mdl.get_desc")
        self._read_io(acl)
        data_inputs = [t.name for t in self._inputs if t.name != GEAR_INPUT]
        self._in_index = match_names([t.name for t in self._inputs], list(input_names or data_inputs),
                                     "input", self.om_path)
        self._out_index = match_names([t.name for t in self._outputs],
                                      list(output_names or [t.name for t in self._outputs]), "output", self.om_path)
        self._read_gears(acl)
        self._exec_stream = self._value(acl.rt.create_stream(), "acl.rt.create_stream")
        self._release.append(("destroy_stream", lambda s=self._exec_stream: acl.rt.destroy_stream(s)))
        # by feature: current CANN resets only events made with ACL_EVENT_SYNC by create_event_with_flag;
        # older CANN (no create_event_with_flag) needs reset_event on create_event's events after a wait
        self._sync_with_flag = hasattr(acl.rt, "create_event_with_flag")
        self._reset_after_wait = hasattr(acl.rt, "reset_event")
        for _ in range(self.max_in_flight):
            self._slots.append(self._make_slot(acl))

    def _read_io(self, acl) -> None:
        desc = self._desc
        self._inputs, self._outputs = [], []
        for i in range(acl.mdl.get_num_inputs(desc)):
            dims = self._value(acl.mdl.get_input_dims(desc, i), "acl.mdl.get_input_dims")
            name = acl.mdl.get_input_name_by_index(desc, i)
            self._inputs.append(_Tensor(name, numpy_dtype_of(acl.mdl.get_input_data_type(desc, i), name),
                                        list(dims["dims"]), acl.mdl.get_input_size_by_index(desc, i)))
        for i in range(acl.mdl.get_num_outputs(desc)):
            dims = self._value(acl.mdl.get_output_dims(desc, i), "acl.mdl.get_output_dims")
            name = acl.mdl.get_output_name_by_index(desc, i)
            self._outputs.append(_Tensor(name, numpy_dtype_of(acl.mdl.get_output_data_type(desc, i), name),
                                         list(dims["dims"]), acl.mdl.get_output_size_by_index(desc, i)))

    def _read_gears(self, acl) -> None:
        """The compiled gears of a --dynamic_dims model, as {input name: shape}."""
        self._gear_index, self._gears = None, []
        if not any(t.name == GEAR_INPUT for t in self._inputs):
            return
        desc = self._desc
        self._gear_index = self._value(acl.mdl.get_input_index_by_name(desc, GEAR_INPUT),
                                       "acl.mdl.get_input_index_by_name")
        count = self._value(acl.mdl.get_input_dynamic_gear_count(desc, -1), "acl.mdl.get_input_dynamic_gear_count")
        gears = self._value(acl.mdl.get_input_dynamic_dims(desc, -1, count), "acl.mdl.get_input_dynamic_dims")
        self._gears = [self._split_gear(list(g["dims"])) for g in gears]

    def _split_gear(self, flat: list) -> dict[str, tuple]:
        """A gear's dims, concatenated in --input_shape order (the bundle's input order), per input."""
        shapes, pos = {}, 0
        for name, i in self._in_index.items():
            rank = len(self._inputs[i].dims)
            shapes[name] = tuple(flat[pos:pos + rank])
            pos += rank
        if pos != len(flat):
            raise BackendError(f"{self.om_path}: a gear has {len(flat)} dims but the inputs "
                               f"{list(self._in_index)} have {pos}; convert again with the bundle's profile")
        return shapes

    def _malloc(self, acl, size: int, host: bool) -> int:
        if host:
            ptr = self._value(acl.rt.malloc_host(size), f"acl.rt.malloc_host({size})")
            self._release.append(("free_host", lambda p=ptr: acl.rt.free_host(p)))
        else:
            ptr = self._value(acl.rt.malloc(size, MALLOC_HUGE_FIRST), f"acl.rt.malloc({size})")
            self._release.append(("free", lambda p=ptr: acl.rt.free(p)))
        return ptr

    def _dataset(self, acl, buffers: list[tuple[int, int]]) -> int:
        ds = acl.mdl.create_dataset()
        if not ds:
            raise BackendError("acl.mdl.create_dataset() failed")
        self._release.append(("destroy_dataset", lambda d=ds: acl.mdl.destroy_dataset(d)))
        for ptr, size in buffers:
            buf = acl.create_data_buffer(ptr, size)
            if not buf:
                raise BackendError(f"acl.create_data_buffer({size} bytes) failed")
            self._release.append(("destroy_data_buffer", lambda b=buf: acl.destroy_data_buffer(b)))
            _, ret = acl.mdl.add_dataset_buffer(ds, buf)
            check(ret, "acl.mdl.add_dataset_buffer")
        return ds

    def _make_slot(self, acl) -> _Slot:
        stream = self._value(acl.rt.create_stream(), "acl.rt.create_stream")
        self._release.append(("destroy_stream", lambda s=stream: acl.rt.destroy_stream(s)))
        in_dev = [self._malloc(acl, t.size, host=False) for t in self._inputs]
        in_host = [None if i == self._gear_index else self._malloc(acl, t.size, host=True)
                   for i, t in enumerate(self._inputs)]
        out_dev = [self._malloc(acl, t.size, host=False) for t in self._outputs]
        out_host = [self._malloc(acl, t.size, host=True) for t in self._outputs]
        in_ds = self._dataset(acl, [(p, t.size) for p, t in zip(in_dev, self._inputs)])
        out_ds = self._dataset(acl, [(p, t.size) for p, t in zip(out_dev, self._outputs)])
        events = {}
        if self.mode == "async":  # a bounded set, made once and reused by every batch of the slot
            for name in TIMING_EVENTS + SYNC_EVENTS:
                if name in SYNC_EVENTS and self._sync_with_flag:
                    event = self._value(acl.rt.create_event_with_flag(ACL_EVENT_SYNC),
                                        "acl.rt.create_event_with_flag(ACL_EVENT_SYNC)")
                else:
                    event = self._value(acl.rt.create_event(), "acl.rt.create_event")
                self._release.append(("destroy_event", lambda e=event: acl.rt.destroy_event(e)))
                events[name] = event
        return _Slot(stream, in_ds, out_ds, in_dev, in_host, out_dev, out_host, events)

    # -- running -------------------------------------------------------------------------------
    def input_names(self) -> list[str]:
        return list(self._in_index)

    def output_names(self) -> list[str]:
        return list(self._out_index)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.submit(feeds).result()

    def submit(self, feeds: dict[str, np.ndarray]) -> Pending:
        acl = self._acl
        if not self._slots:
            raise BackendError(f"{self.om_path}: the session is closed")
        check(acl.rt.set_context(self._context), "acl.rt.set_context")
        slot = self._slots[self._next % len(self._slots)]
        self._next += 1
        if slot.pending is not None:  # not collected yet: finish it before its buffers are reused
            slot.pending.result()
        arrays, gear = self._prepare(feeds)
        if gear is not None:
            flat = [d for name in self._in_index for d in gear[name]]
            check(acl.mdl.set_input_dynamic_dims(self._model_id, slot.in_ds, self._gear_index,
                                                 {"dimCount": len(flat), "name": "", "dims": flat}),
                  "acl.mdl.set_input_dynamic_dims")
            out_dims = [list(self._value(acl.mdl.get_cur_output_dims(self._desc, i),
                                         "acl.mdl.get_cur_output_dims")["dims"]) for i in range(len(self._outputs))]
        else:
            out_dims = [t.dims for t in self._outputs]
        for i, array in arrays.items():  # into pinned host memory: async copies need it
            self._host_write(slot.in_host[i], self._inputs[i].size, array)
        if self.mode == "sync":
            self._run_sync(slot, arrays, out_dims)
        else:
            self._enqueue(slot, arrays, out_dims)
        slot.pending = _AclPending(self, slot, out_dims)
        return slot.pending

    def _prepare(self, feeds: dict[str, np.ndarray]) -> tuple[dict[int, np.ndarray], dict | None]:
        """Model-dtype arrays by model input index, and the gear they select (None when static)."""
        missing = set(self._in_index) - set(feeds)
        if missing:
            raise BackendError(f"{self.om_path}: no feed for inputs {sorted(missing)}")
        shapes = {name: tuple(np.shape(feeds[name])) for name in self._in_index}
        gear = None
        if self._gear_index is not None:
            gear = next((g for g in self._gears if g == shapes), None)
            if gear is None:
                raise gear_error(shapes, self._gears)
        arrays = {}
        for name, i in self._in_index.items():
            t = self._inputs[i]
            need = t.size if gear is None else int(np.prod(gear[name], dtype=np.int64)) * t.dtype.itemsize
            arrays[i] = cast_feed(self.om_path, name, feeds[name], t.dtype, need)
        return arrays, gear

    def _host_write(self, host_ptr: int, capacity: int, array: np.ndarray) -> None:
        acl = self._acl
        if hasattr(acl.util, "bytes_to_ptr"):
            data = array.tobytes()  # kept alive until the copy returns
            check(acl.rt.memcpy(host_ptr, capacity, acl.util.bytes_to_ptr(data), len(data), H2H), "acl.rt.memcpy H2H")
        else:  # older pyACL
            check(acl.rt.memcpy(host_ptr, capacity, acl.util.numpy_to_ptr(array), array.nbytes, H2H),
                  "acl.rt.memcpy H2H")

    def _run_sync(self, slot: _Slot, arrays: dict, out_dims: list) -> None:
        acl = self._acl
        start = time.perf_counter()
        for i, array in arrays.items():
            check(acl.rt.memcpy(slot.in_dev[i], self._inputs[i].size, slot.in_host[i], array.nbytes, H2D),
                  f"acl.rt.memcpy H2D ({self._inputs[i].name})")
        copied = time.perf_counter()
        check(acl.mdl.execute(self._model_id, slot.in_ds, slot.out_ds), "acl.mdl.execute")
        executed = time.perf_counter()
        for i, dims in enumerate(out_dims):
            check(acl.rt.memcpy(slot.out_host[i], self._outputs[i].size, slot.out_dev[i],
                                self._nbytes(i, dims), D2H), f"acl.rt.memcpy D2H ({self._outputs[i].name})")
        self.timings.h2d_ms.append((copied - start) * 1000.0)
        self.timings.compute_ms.append((executed - copied) * 1000.0)
        self.timings.d2h_ms.append((time.perf_counter() - executed) * 1000.0)

    def _enqueue(self, slot: _Slot, arrays: dict, out_dims: list) -> None:
        """H2D on the slot's stream, compute on the shared execution stream, D2H back on the slot's.

        The sync events order the streams (a failure there fails the batch); the timing events are
        recorded in pairs on one stream, and a failure to record one only loses that timing."""
        acl, copy, run, ev = self._acl, slot.stream, self._exec_stream, slot.events
        slot.timed = {key: True for key, _, _ in TIMED}

        def mark(name: str, stream: int) -> None:
            if acl.rt.record_event(ev[name], stream) != 0:
                slot.timed[next(key for key, start, end in TIMED if name in (start, end))] = False

        def wait(stream: int, name: str) -> None:
            check(acl.rt.stream_wait_event(stream, ev[name]), f"acl.rt.stream_wait_event ({name})")
            if self._reset_after_wait:  # queued behind the wait, on the waiting stream
                check(acl.rt.reset_event(ev[name], stream), f"acl.rt.reset_event ({name})")

        mark("h2d_start", copy)
        for i, array in arrays.items():
            check(acl.rt.memcpy_async(slot.in_dev[i], self._inputs[i].size, slot.in_host[i], array.nbytes, H2D,
                                      copy), f"acl.rt.memcpy_async H2D ({self._inputs[i].name})")
        mark("h2d_end", copy)
        check(acl.rt.record_event(ev["copied"], copy), "acl.rt.record_event (copied)")
        wait(run, "copied")
        mark("compute_start", run)
        check(acl.mdl.execute_async(self._model_id, slot.in_ds, slot.out_ds, run), "acl.mdl.execute_async")
        mark("compute_end", run)
        check(acl.rt.record_event(ev["computed"], run), "acl.rt.record_event (computed)")
        wait(copy, "computed")
        mark("d2h_start", copy)
        for i, dims in enumerate(out_dims):
            check(acl.rt.memcpy_async(slot.out_host[i], self._outputs[i].size, slot.out_dev[i],
                                      self._nbytes(i, dims), D2H, copy),
                  f"acl.rt.memcpy_async D2H ({self._outputs[i].name})")
        mark("d2h_end", copy)

    def _read_timings(self, slot: _Slot) -> None:
        """Append each of the batch's timings, or count it as missing: a timing never fails a batch."""
        acl, ev = self._acl, slot.events
        for key, start, end in TIMED:
            ms = None
            if slot.timed.get(key):
                try:
                    value, ret = acl.rt.event_elapsed_time(ev[start], ev[end])
                    ms = float(value) if ret == 0 else None
                except Exception:  # noqa: BLE001 - a timing is never worth a batch
                    ms = None
            if ms is None:
                self.missing_timings[key] += 1
            else:
                getattr(self.timings, key).append(ms)

    def _nbytes(self, i: int, dims) -> int:
        return int(np.prod(dims, dtype=np.int64)) * self._outputs[i].dtype.itemsize

    def _finish(self, slot: _Slot, out_dims: list) -> dict[str, np.ndarray]:
        """Wait for the slot (async), then read its outputs from pinned host memory."""
        acl = self._acl
        if self.mode == "async":
            check(acl.rt.set_context(self._context), "acl.rt.set_context")
            # the copy stream waited for the execution ("computed"), so this covers the whole batch
            check(acl.rt.synchronize_stream(slot.stream), "acl.rt.synchronize_stream (the batch)")
            self._read_timings(slot)
        outputs = {}
        for name, i in self._out_index.items():
            t, dims = self._outputs[i], out_dims[i]
            nbytes = self._nbytes(i, dims)
            if hasattr(acl.util, "ptr_to_bytes"):
                array = np.frombuffer(acl.util.ptr_to_bytes(slot.out_host[i], nbytes), dtype=t.dtype)
            else:  # older pyACL: a view of host memory we reuse, so copy it
                array = acl.util.ptr_to_numpy(slot.out_host[i], (nbytes // t.dtype.itemsize,), t.dtype.num).copy()
            outputs[name] = array.reshape(dims)
        return outputs

    # -- closing -------------------------------------------------------------------------------
    def close(self) -> None:
        failures = self._release_all()
        if failures:
            raise BackendError(f"{self.om_path}: releasing ACL resources failed ({', '.join(failures)})")

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:  # an error is propagating: release everything, but let that error be the one reported
            self._release_all()

    def _release_all(self) -> list[str]:
        """Release everything, newest first, going on past failures; returns the failures."""
        _open_sessions.discard(self)
        if not self._release:
            return []
        acl, failures = self._acl, []
        if getattr(self, "_context", None) is not None:
            acl.rt.set_context(self._context)
        for stream in [s.stream for s in self._slots] + [getattr(self, "_exec_stream", None)]:
            if stream is not None:  # device work still queued (an error mid-batch) must end before freeing
                acl.rt.synchronize_stream(stream)
        while self._release:
            what, call = self._release.pop()
            ret = call()
            if ret not in (0, None):
                failures.append(f"{what}: {ret}")
        self._slots.clear()
        return failures
