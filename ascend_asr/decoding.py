"""CTC decoding of per-frame (log-)probabilities."""
from __future__ import annotations

import os

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


def load_language_model(path: str):
    """kenlm when installed (ARPA or binary), else the pure-Python ARPA reader."""
    from .errors import ProfileError
    from .language_model import ArpaLM, KenLM

    if not os.path.isfile(path):
        raise ProfileError(f"{path}: language model not found")
    try:
        import kenlm  # noqa: F401
    except ImportError:
        if not path.endswith(".arpa"):
            raise ProfileError(f"{path}: a binary LM needs kenlm (pip install -e '.[lm]'); or give an .arpa file")
        return ArpaLM(path)
    return KenLM(path)


def make_decoder(vocab, scores_are_probs: bool, kind: str = "greedy", beam_width: int = 10,
                 lm_path: str | None = None, alpha: float = 0.5, beta: float = 1.0):
    """A function (scores [T, V], valid frames) -> label ids: greedy, or CTC prefix beam search
    (with an n-gram LM over words when the alphabet has a space, else over single labels)."""
    if kind == "greedy":
        return lambda scores, length: greedy_ctc(scores, length, vocab.blank)
    if kind != "beam":
        raise ValueError(f"decoder {kind!r}: choose greedy or beam")
    from .beam_search import prefix_beam_search

    lm = load_language_model(lm_path) if lm_path else None
    boundary = vocab.labels.index(" ") if " " in vocab.labels else None

    def decode(scores, length):
        log_probs = np.log(np.maximum(scores, 1e-30)) if scores_are_probs else scores
        return prefix_beam_search(np.asarray(log_probs, dtype=np.float64), length, vocab.blank, beam_width, lm=lm,
                                  alpha=alpha, beta=beta, word_boundary=boundary, labels=vocab.labels)
    return decode
