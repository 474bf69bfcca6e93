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
from .base import Session
from .npu_common import (
    cast_feed,
    gear_error,
    import_runtime,
    match_names,
    numpy_dtype_of,
)


def import_interface():
    return import_runtime("ais_bench.infer.interface", "ais_bench (with aclruntime)")


def durations_ms(entries) -> list[float]:
    """exec_time_list entries as milliseconds: floats (old) or (start, end) pairs (new)."""
    return [float(e[1]) - float(e[0]) if isinstance(e, (tuple, list)) else float(e) for e in entries]


class AisBenchSession(Session):
    def __init__(self, om_path: str, device: int = 0, gears: list[dict[str, tuple]] | None = None,
                 input_names=None, output_names=None):
        super().__init__()
        self.name, self.om_path, self.device = "ais_bench", om_path, device
        interface = import_interface()
        try:
            self._session = interface.InferSession(int(device), om_path)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise BackendError(f"{om_path}: ais_bench cannot load the model on device {device} ({exc}); check "
                               "`npu-smi info`, --device, and that the OM was built for this chip") from exc
        self._memory = getattr(interface, "MemorySummary", None)
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
        self._seen = {"compute": 0, "h2d": 0, "d2h": 0}

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
            ordered[i] = cast_feed(name, feeds[name], self._dtypes[i], need)
        mode = "dymdims" if self._dynamic else "static"
        kwargs = {"out_array": True} if self._has_out_array else {}
        try:
            outputs = self._session.infer(ordered, mode=mode, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{self.om_path}: ais_bench infer failed ({exc})") from exc
        self._collect_timings()
        return {name: np.asarray(outputs[i]) for name, i in self._out_index.items()}

    def _collect_timings(self) -> None:
        summary = self._session.summary() if hasattr(self._session, "summary") else self._session.sumary()
        self._take("compute", durations_ms(summary.exec_time_list), self.timings.compute_ms)
        if self._memory is not None:
            for key, new, old, target in (("h2d", "get_h2d_time_list", "get_H2D_time_list", self.timings.h2d_ms),
                                          ("d2h", "get_d2h_time_list", "get_D2H_time_list", self.timings.d2h_ms)):
                getter = getattr(self._memory, new, None) or getattr(self._memory, old, None)
                if getter is not None:
                    self._take(key, [float(v) for v in getter()], target)

    def _take(self, key: str, values: list[float], target: list) -> None:
        """Append the entries added since the last batch (the lists only grow)."""
        target.extend(values[self._seen[key]:])
        self._seen[key] = len(values)

    def close(self) -> None:
        session, self._session = getattr(self, "_session", None), None
        if session is not None and hasattr(session, "free_resource"):
            session.free_resource()
        # Never InferSession.finalize(): it ends ACL for the whole process.
