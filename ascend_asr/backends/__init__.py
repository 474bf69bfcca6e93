"""Runtime backends and the choice between them; a CPU fallback is always announced."""
from __future__ import annotations

import importlib.util
import sys

from ..bundle import Bundle
from ..errors import BackendError
from .base import Session, Timings
from .onnxruntime_backend import OnnxRuntimeSession

BACKENDS = ("auto", "onnxruntime")
NPU_MODULES = ("acl", "ais_bench")


def npu_runtime_missing() -> str | None:
    """Why no NPU runtime can be used here, or None when one can."""
    missing = [m for m in NPU_MODULES if importlib.util.find_spec(m) is None]
    if len(missing) == len(NPU_MODULES):
        return "no NPU runtime: neither the 'acl' nor the 'ais_bench' Python module is importable " \
               "(source env.sh on a host with CANN)"
    return "an NPU runtime is importable, but this version has no NPU backend yet"


def open_session(bundle: Bundle, backend: str = "auto", device: int = 0, out=sys.stdout) -> Session:
    """Open `bundle` on `backend`; `auto` falls back to onnxruntime on the CPU and says so."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "onnxruntime":
        session = OnnxRuntimeSession(bundle.onnx_path)
        print(f"[ascend-asr] backend: {session.name} (requested), model {bundle.onnx_path}", file=out)
        return session
    reason = npu_runtime_missing()
    session = OnnxRuntimeSession(bundle.onnx_path, fallback=True)
    print(f"[ascend-asr] FALLBACK: {reason}; running {bundle.name}.onnx on {session.name} "
          f"instead of {bundle.name}.om", file=out)
    return session


__all__ = ["BACKENDS", "OnnxRuntimeSession", "Session", "Timings", "open_session", "npu_runtime_missing"]
