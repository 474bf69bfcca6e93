"""Global CMVN statistics of the training set, as Kaldi's `compute-cmvn-stats --binary=false` writes them."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..audio import load_audio
from ..frontends import build_frontend, frontend_spec
from .features import worker_frontend


def _stats(args):
    spec, path = args
    frontend = worker_frontend(spec)
    fbank = frontend.fbank(load_audio(path, frontend.params.sample_rate)).astype(np.float64)
    return fbank.sum(axis=0), (fbank ** 2).sum(axis=0), len(fbank)


def write_cmvn_stats(audio_paths: list[str], frontend_spec_: dict, path: str, workers: int = 2) -> str:
    """Accumulate fbank sums, sums of squares and the frame count over `audio_paths` into `path`."""
    spec = dict(frontend_spec_, cmvn_stats=None)
    spec = frontend_spec(build_frontend(spec))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_stats, [(spec, p) for p in audio_paths], chunksize=64))
    sums = np.sum([p[0] for p in parts], axis=0)
    squares = np.sum([p[1] for p in parts], axis=0)
    count = sum(p[2] for p in parts)
    rows = [list(sums) + [count], list(squares) + [0.0]]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".part", "w", encoding="ascii") as f:
        f.write(" [\n  " + " ".join(f"{v:.10g}" for v in rows[0]) + " \n  "
                + " ".join(f"{v:.10g}" for v in rows[1]) + " ]\n")
    os.replace(path + ".part", path)
    return path

