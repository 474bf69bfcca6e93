"""onnxruntime backend: the CPU fallback (or CUDA where onnxruntime-gpu is installed)."""
from __future__ import annotations

import time

import numpy as np

from ..errors import BackendError
from .base import Session

# --ort-opt-level: onnxruntime's graph optimisation levels (GraphOptimizationLevel.ORT_<...>); "all" is its default
OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeSession(Session):
    def __init__(self, onnx_path: str, provider: str = "cpu", threads: int = 0, fallback: bool = False,
                 opt_level: str = "all"):
        """`threads`: intra-op threads (0: onnxruntime's default, every core); `opt_level`: one of OPT_LEVELS."""
        super().__init__()
        import onnxruntime as ort

        if opt_level not in OPT_LEVELS:
            raise BackendError(f"onnxruntime optimisation level {opt_level!r}: choose one of {', '.join(OPT_LEVELS)}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise BackendError(f"onnxruntime threads {threads!r}: give a whole number (0: every core)")

        providers = {"cpu": ["CPUExecutionProvider"],
                     "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}[provider]
        if provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendError("onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu "
                               "or use the CPU provider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
        try:
            self._session = ort.InferenceSession(onnx_path, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"{onnx_path}: onnxruntime cannot load the model ({exc})") from exc
        self.name = f"onnxruntime-{provider}"
        self.fallback = fallback
        self.threads, self.opt_level = threads, opt_level
        self._inputs = {i.name: i for i in self._session.get_inputs()}

    def input_names(self) -> list[str]:
        return list(self._inputs)

    def output_names(self) -> list[str]:
        return [o.name for o in self._session.get_outputs()]

    def declared_shapes(self) -> dict[str, tuple | None]:
        """Each input's and output's shape as the graph declares it: ints where fixed, None per symbolic axis."""
        def dims(arg):
            shape = arg.shape
            return None if shape is None else tuple(d if isinstance(d, int) and d > 0 else None for d in shape)
        return {a.name: dims(a) for a in (*self._session.get_inputs(), *self._session.get_outputs())}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        outputs = self._session.run(None, feeds)
        self.timings.compute_ms.append((time.perf_counter() - start) * 1000.0)
        return dict(zip(self.output_names(), outputs))
