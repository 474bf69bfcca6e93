"""One chunk step per backend: step(audio_chunk, audio_chunk_lens, h, c) -> (probs, probs_lens, h, c)."""
from __future__ import annotations

import numpy as np

from .graph import INPUTS, OUTPUTS, ort_runner, torch_runner


def _feed(chunk, lens, h, c) -> dict:
    return dict(zip(INPUTS, (chunk, lens, h, c)))


def torch_step(model):
    run = torch_runner(model)
    return lambda chunk, lens, h, c: run(_feed(chunk, lens, h, c))


def onnxruntime_step(onnx_path: str, threads: int = 1):
    run = ort_runner(onnx_path, threads)
    return lambda chunk, lens, h, c: run(_feed(chunk, lens, h, c))


def npu_step(om_path: str, backend: str = "acl", device: int = 0):
    """The static-chunk OM through pyACL (sync) or ais_bench; returns (step, close)."""
    if backend == "acl":
        from ....backends.acl_backend import AclSession

        session = AclSession(om_path, device, "sync", input_names=list(INPUTS), output_names=list(OUTPUTS))
    else:
        from ....backends.ais_bench_backend import AisBenchSession

        session = AisBenchSession(om_path, device, None, list(INPUTS), list(OUTPUTS))

    def step(chunk, lens, h, c):
        out = session.run(_feed(chunk, lens, h, c))
        return [out[name] for name in OUTPUTS]

    return step, session.close


def paddle_step(model_dir: str, prefix: str | None = None, threads: int = 1):
    """Paddle Inference on the recipe's exported model (needs the paddle extra)."""
    from ..paddle_import import PaddlePredictor, program_files

    predictor = PaddlePredictor(*program_files(model_dir, prefix), threads=threads)

    def step(chunk, lens, h, c):
        probs, out_lens, h1, c1 = predictor.run(_feed(chunk, lens, h, c))
        return probs, out_lens, np.asarray(h1), np.asarray(c1)

    return step
