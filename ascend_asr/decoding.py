"""CTC decoding of per-frame (log-)probabilities."""
from __future__ import annotations

import numpy as np


def greedy_ctc(scores: np.ndarray, length: int | None, blank: int) -> list[int]:
    """Best path over the first `length` frames of scores [T, V]: collapse repeats, drop blanks.

    Frames at or beyond `length` are padding and are never decoded (NVIDIA's length mask).
    """
    frames = scores if length is None else scores[: max(0, int(length))]
    if len(frames) == 0:
        return []
    best = frames.argmax(axis=-1)
    previous = np.concatenate([[blank], best[:-1]])
    return best[(best != blank) & (best != previous)].tolist()
