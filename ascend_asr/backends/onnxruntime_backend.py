"""onnxruntime backend: the CPU fallback (or CUDA where onnxruntime-gpu is installed)."""
from __future__ import annotations

import time

import numpy as np

from ..errors import BackendError
from .base import Session


class OnnxRuntimeSession(Session):
    def __init__(self, onnx_path: str, provider: str = "cpu", threads: int = 0, fallback: bool = False):
        super().__init__()
        import onnxruntime as ort

        providers = {"cpu": ["CPUExecutionProvider"],
                     "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}[provider]
        if provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendError("onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu "
                               "or use the CPU provider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(onnx_path, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"{onnx_path}: onnxruntime cannot load the model ({exc})") from exc
        self.name = f"onnxruntime-{provider}"
        self.fallback = fallback
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
