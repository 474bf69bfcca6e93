"""Word start/end times and confidences from a CTC alignment of the decoded labels.

The labels a decoder chose are aligned to the utterance's log-probabilities by Viterbi (the best CTC path
that spells exactly them). A word spans its labels' frames: from the first frame of its first label to the
last frame of its last label. Output frame k covers input frames [k * stride, (k + 1) * stride) of the
frontend's hop (the output-length rule `(frames - 1) // stride + 1`); where a model reports its own output
length and it disagrees with that rule, the stride is the ratio of input to output frames.

Confidence of a word: the geometric mean of the aligned path's posteriors over the word's frames
(exp of their mean log-probability); of an utterance: the geometric mean of its words' confidences
(of every frame's, without words).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds from the start of the audio the features were computed on
    end: float
    confidence: float

    def to_dict(self) -> dict:
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}


def frame_seconds(frontend, time_stride: int, frames: int | None = None, out_frames: int | None = None) -> float:
    """Seconds per output frame: the frontend's hop (after its own frame skipping) times the model's stride."""
    hop = frontend.hop_length / frontend.params.sample_rate
    return hop * model_stride(time_stride, frames, out_frames)


def model_stride(time_stride: int, frames: int | None, out_frames: int | None) -> float:
    """Input frames per output frame: the declared stride when the output-length rule gives the model's own
    output length (or that is unknown), else the smallest stride whose rule does, else the ratio."""
    if not frames or not out_frames or (int(frames) - 1) // int(time_stride) + 1 == int(out_frames):
        return float(time_stride)
    for stride in range(1, 65):
        if (int(frames) - 1) // stride + 1 == int(out_frames):
            return float(stride)
    return frames / out_frames


def ctc_align(log_probs: np.ndarray, ids, blank: int) -> list[tuple[int, int]]:
    """(first frame, last frame) of each label of `ids` on the best CTC path that spells them (Viterbi);
    raises ValueError when no path of this many frames spells them."""
    lp = np.asarray(log_probs, dtype=np.float64)
    ids = list(ids)
    if not ids:
        return []
    frames = len(lp)
    ext = [blank]
    for i in ids:
        ext += [i, blank]
    states = len(ext)
    ext = np.array(ext)
    # a state may come from itself, the one before, or two before when that skips a blank between two labels
    # a state may come from itself, the one before, or two before when that skips a blank between two labels
    skip = np.zeros(states, dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    emit = lp[:, ext]  # [T, S]
    score = np.full(states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((frames, states), dtype=np.int8)
    one = np.full(states, -np.inf)
    two = np.full(states, -np.inf)
    for t in range(1, frames):
        one[1:] = score[:-1]
        two[2:] = score[:-2]
        two[~skip] = -np.inf
        from_one = one > score
        best = np.where(from_one, one, score)
        from_two = two > best
        best = np.where(from_two, two, best)
        back[t] = np.where(from_two, 2, from_one.astype(np.int8))
        score = best + emit[t]
    end = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[end]):
        raise ValueError(f"no CTC path of {frames} frames spells these {len(ids)} labels")
    path = np.empty(frames, dtype=int)
    state = end
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    spans = []
    for k in range(len(ids)):
        hit = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(hit[0]), int(hit[-1])))
    return spans


def best_path_spans(log_probs: np.ndarray, blank: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Greedy decoding's labels and, for each, its run of frames on the best path (no Viterbi needed)."""
    best = np.asarray(log_probs).argmax(axis=1)
    ids, spans = [], []
    previous = blank
    for t, label in enumerate(best.tolist()):
        if label != blank and label == previous:
            spans[-1] = (spans[-1][0], t)
        elif label != blank:
            ids.append(label)
            spans.append((t, t))
        previous = label
    return ids, spans


def word_timings(log_probs: np.ndarray, ids, blank: int, boundary: int | None, labels, seconds: float,
                 offset: float = 0.0, spans=None) -> list[WordTiming]:
    """The words of label sequence `ids` (split at `boundary`; every label a word without one) with their
    times (`seconds` per output frame, plus `offset`) and confidences; `spans` when the alignment is known
    (greedy's best path), else it is computed (`ctc_align`)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    ids = list(ids)
    if spans is None:  # boundary labels are left out of the alignment: a pause often has none
        spelled = [k for k, label in enumerate(ids) if label != boundary]
        spans = [(0, -1)] * len(ids)
        for k, span in zip(spelled, ctc_align(lp, [ids[k] for k in spelled], blank)):
            spans[k] = span
    if not spans:
        return []
    best = np.max(lp, axis=1)
    path_lp = _path_log_probs(lp, ids, spans, blank)
    words, current = [], []
    for k, label in enumerate(ids):
        if boundary is not None and label == boundary:
            if current:
                words.append(current)
            current = []
            continue
        current.append(k)
        if boundary is None:
            words.append(current)
            current = []
    if current:
        words.append(current)
    out = []
    for members in words:
        first, last = spans[members[0]][0], spans[members[-1]][1]
        confidence = math.exp(float(np.mean(path_lp[first:last + 1]))) if last >= first else float(np.exp(best[first]))
        out.append(WordTiming("".join(labels[ids[k]] for k in members), offset + first * seconds,
                              offset + (last + 1) * seconds, confidence))
    return out


def _path_log_probs(lp: np.ndarray, ids, spans, blank: int) -> np.ndarray:
    """Per frame, the log-probability of the aligned path's label (blank between labels)."""
    labels_at = np.full(len(lp), blank)
    for label, (first, last) in zip(ids, spans):
        if last >= first:
            labels_at[first:last + 1] = label
    return lp[np.arange(len(lp)), labels_at]


def utterance_confidence(words: list[WordTiming], log_probs: np.ndarray | None = None) -> float:
    if words:
        return math.exp(sum(math.log(max(w.confidence, 1e-300)) for w in words) / len(words))
    if log_probs is None or len(log_probs) == 0:
        return 0.0
    return math.exp(float(np.mean(np.max(log_probs, axis=1))))
