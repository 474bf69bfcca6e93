"""ais_bench backend: `ais_bench.infer.interface.InferSession` over aclruntime.

Both API generations are detected by feature, never by version (both report 0.0.2):
`summary()` or `sumary()`, (start, end) pairs or float durations in `exec_time_list`,
`free_resource()` present or not, `infer(..., out_array=)` or not. ais_bench has no
asynchronous API, so this backend is synchronous.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import BackendError
from .acl_backend import register_finalizer
from .base import Session
from .npu_common import (
    cast_feed,
    gear_error,
    import_runtime,
    match_names,
    numpy_dtype_of,
    recent_acl_message,
)


def import_interface():
    return import_runtime("ais_bench.infer.interface", "ais_bench (with aclruntime)")


def _cann_says() -> str:
    recent = recent_acl_message()
    return f"; CANN says: {recent}" if recent else ""


def durations_ms(entries) -> list[float]:
    """exec_time_list entries as milliseconds: floats (old) or (start, end) pairs (new)."""
    return [float(e[1]) - float(e[0]) if isinstance(e, (tuple, list)) else float(e) for e in entries]


class AisBenchSession(Session):
    def __init__(self, om_path: str, device: int = 0, gears: list[dict[str, tuple]] | None = None,
                 input_names=None, output_names=None):
        super().__init__()
        self.name, self.om_path, self.device = "ais_bench", om_path, device
        self._session = None
        interface = import_interface()
        try:
            self._session = interface.InferSession(int(device), om_path)
        except ValueError as exc:  # ais_bench's path checks (reference §7.1), before any device work
            raise BackendError(f"{om_path}: ais_bench refuses the path ({exc}): it must be a regular file (not a "
                               "symlink) owned by you or your group, not group/other-writable (chmod go-w), with only "
                               "[_A-Za-z0-9/.-] in its absolute path") from exc
        except (RuntimeError, TypeError) as exc:
            raise BackendError(f"{om_path}: ais_bench cannot load the model on device {device} ({exc}); check "
                               f"`npu-smi info`, --device, and that the OM was built for this chip{_cann_says()}") from exc
        finalize = inspect.getattr_static(interface.InferSession, "finalize", None)
        if isinstance(finalize, staticmethod):  # UP: aclFinalize, once at interpreter exit (never per session)
            register_finalizer(interface.InferSession.finalize)
        try:
            self._describe(interface, gears, input_names, output_names)
        except BaseException:
            self.close()
            raise

    def _describe(self, interface, gears, input_names, output_names) -> None:
        om_path = self.om_path
        self._inputs = self._session.get_inputs()
        self._outputs = self._session.get_outputs()
        model_inputs = [d.name for d in self._inputs]
        self._in_index = match_names(model_inputs, list(input_names or model_inputs), "input", om_path)
        model_outputs = [d.name for d in self._outputs]
        self._out_index = match_names(model_outputs, list(output_names or model_outputs), "output", om_path)
        self._dtypes = [numpy_dtype_of(int(d.datatype), d.name) for d in self._inputs]
        self._gears = gears or []
        self._dynamic = any(int(x) < 0 for d in self._inputs for x in d.shape)
        if self._dynamic and not self._gears:
            raise BackendError(f"{om_path}: the model has dynamic dims {[list(d.shape) for d in self._inputs]} "
                               "but the bundle lists no gears; convert again")
        self._has_out_array = "out_array" in inspect.signature(self._session.infer).parameters
        memory = getattr(interface, "MemorySummary", None)
        self._copy_lists = {}  # h2d/d2h: the MemorySummary getter of this API generation
        for key, new_name, old_name in (("h2d", "get_h2d_time_list", "get_H2D_time_list"),
                                        ("d2h", "get_d2h_time_list", "get_D2H_time_list")):
            getter = getattr(memory, new_name, None) or getattr(memory, old_name, None)
            if getter is not None:
                self._copy_lists[key] = getter
        # MemorySummary is process-wide: count only what this session adds from now on
        self._seen = {key: len(getter()) for key, getter in self._copy_lists.items()}
        self._reset_compute_times()

    def input_names(self) -> list[str]:
        return list(self._in_index)

    def output_names(self) -> list[str]:
        return list(self._out_index)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self._in_index) - set(feeds)
        if missing:
            raise BackendError(f"{self.om_path}: no feed for inputs {sorted(missing)}")
        shapes = {name: tuple(np.shape(feeds[name])) for name in self._in_index}
        if self._dynamic and shapes not in self._gears:
            raise gear_error(shapes, self._gears)
        ordered = [None] * len(self._inputs)
        for name, i in self._in_index.items():
            need = self._inputs[i].size if not self._dynamic else \
                int(np.prod(shapes[name], dtype=np.int64)) * self._dtypes[i].itemsize
            ordered[i] = cast_feed(self.om_path, name, feeds[name], self._dtypes[i], need)
        mode = "dymdims" if self._dynamic else "static"
        kwargs = {"out_array": True} if self._has_out_array else {}
        try:
            outputs = self._session.infer(ordered, mode=mode, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{self.om_path}: ais_bench infer failed ({exc}){_cann_says()}") from exc
        self._collect_timings()
        return {name: np.asarray(outputs[i]) for name, i in self._out_index.items()}

    def _summary(self):
        return self._session.summary() if hasattr(self._session, "summary") else self._session.sumary()

    def _reset_compute_times(self) -> None:
        reset = getattr(self._session, "reset_summaryinfo", None) or getattr(self._session, "reset_sumaryinfo")
        reset()

    def _collect_timings(self) -> None:
        """One figure per batch: its executions, and its copies summed over tensors."""
        self.timings.compute_ms.append(sum(durations_ms(self._summary().exec_time_list)))
        self._reset_compute_times()  # so the list never grows with the run
        for key, getter in self._copy_lists.items():
            values = [float(v) for v in getter()]
            getattr(self.timings, f"{key}_ms").append(sum(values[self._seen[key]:]))
            self._seen[key] = len(values)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and hasattr(session, "free_resource"):
            session.free_resource()
        # Never InferSession.finalize() here: it ends ACL for the whole process (it runs once at exit).
