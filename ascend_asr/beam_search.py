"""CTC prefix beam search over per-frame log-probabilities, with optional n-gram LM fusion.

Input is natural-log probabilities [T, V] (log_softmax output). Callers holding probabilities pass
`np.log(probs)`; logits must be log-softmaxed first. Frames at or beyond `length` are padding and are
never decoded (as in `greedy_ctc`).

Each prefix keeps two log-masses: paths ending in blank (pb) and in its last label (pnb). At each
frame a prefix either stays (blank, or a repeat of its last label that collapses) or is extended by
a label; a repeat of the last label extends only the blank-ending paths ("a" -> "aa" needs a blank
between). Masses reaching the same prefix are merged with log-sum-exp (`merge="sum"`, the standard
algorithm, as ctcdecode) or max (`merge="max"`, the most probable single alignment).

With `merge="max"` and beam_width=1 the search *is* greedy decoding. With `merge="sum"` it is not:
the beam keeps the prefix of highest total mass, which can differ from the best path's (frames
a:0.6/blank:0.4 then b:0.4/a:0.3/blank:0.3 -> greedy "ab" (0.24), the prefix "a" holds 0.48).

LM fusion (ctcdecode's scheme): when a word is completed, the extension is multiplied by
P_lm(word | history)^alpha * e^beta. A word is completed when `word_boundary` (e.g. the space label)
follows a non-empty word; with `word_boundary=None` every label is a word (phone or character LM).
At the end the last partial word and end-of-sentence are scored once more on the surviving beams.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

_LOG_PROB_TOLERANCE = 1e-3  # log-probabilities are <= 0; probabilities and logits are not


def prefix_beam_search(
    log_probs: np.ndarray,
    length: int | None,
    blank: int,
    beam_width: int = 10,
    lm=None,
    alpha: float = 0.5,
    beta: float = 1.0,
    cutoff_top_n: int = 40,
    cutoff_prob: float = 1.0,
    blank_skip_threshold: float | None = None,
    word_boundary: int | None = None,
    *,
    labels: Sequence[str] | None = None,
    merge: str = "sum",
    length_normalize: bool = False,
) -> list[int]:
    """Best label sequence (blanks and repeats collapsed); see `prefix_beam_search_nbest`."""
    return prefix_beam_search_nbest(
        log_probs, length, blank, beam_width, lm, alpha, beta, cutoff_top_n, cutoff_prob,
        blank_skip_threshold, word_boundary, labels=labels, merge=merge, length_normalize=length_normalize,
    )[0][0]


def prefix_beam_search_nbest(
    log_probs: np.ndarray,
    length: int | None,
    blank: int,
    beam_width: int = 10,
    lm=None,
    alpha: float = 0.5,
    beta: float = 1.0,
    cutoff_top_n: int = 40,
    cutoff_prob: float = 1.0,
    blank_skip_threshold: float | None = None,
    word_boundary: int | None = None,
    *,
    labels: Sequence[str] | None = None,
    merge: str = "sum",
    length_normalize: bool = False,
) -> list[tuple[list[int], float]]:
    """Up to `beam_width` (labels, score) pairs, best first; never empty.

    log_probs: [T, V] natural-log probabilities; length: frames to decode (None: all).
    cutoff_top_n / cutoff_prob: per frame, only the most probable labels whose cumulative
      probability first reaches cutoff_prob, at most cutoff_top_n of them, are considered (ctcdecode).
    blank_skip_threshold: frames with p(blank) above it are dropped before the search (the LSTM
      TIMIT recipe uses 0.9); note that this joins equal labels a skipped blank separated.
    lm: a `language_model.LanguageModel` (natural-log scores), weighted by alpha, plus beta per word;
      needs `labels` (the vocabulary's label strings, blank included, len V).
    score: the log-mass of the prefix including LM terms (divided by its label count if
      length_normalize, as the LSTM TIMIT recipe does).
    """
    frames = _frames(log_probs, length)
    vocab_size = frames.shape[1] - 1  # the extra last column is the root's "no label" (-inf)
    _check_options(vocab_size, blank, beam_width, cutoff_top_n, word_boundary, merge, lm, labels)
    if blank_skip_threshold is not None:
        frames = frames[frames[:, blank] <= math.log(blank_skip_threshold)]
    frames = _prune(frames, cutoff_top_n, cutoff_prob)

    combine = np.logaddexp if merge == "sum" else np.maximum
    trie = _PrefixTrie(vocab_size, blank, lm, alpha, beta, labels, word_boundary)
    nodes, pb, pnb = _search(frames, blank, beam_width, combine, trie)

    results = []
    for node, score in zip(nodes, combine(pb, pnb)):
        prefix = trie.labels_of(node)
        score = float(score) + trie.final_bonus(node)
        if length_normalize:
            score /= max(1, len(prefix))
        results.append((prefix, score))
    results.sort(key=lambda r: -r[1])
    return results


def _frames(log_probs, length) -> np.ndarray:
    """The decodable frames as float64, with an extra -inf column (index V)."""
    scores = np.asarray(log_probs, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"log_probs must be [T, V], got shape {scores.shape}")
    if length is not None:
        scores = scores[: max(0, int(length))]
    if scores.size and scores.max() > _LOG_PROB_TOLERANCE:
        raise ValueError("prefix beam search needs log-probabilities (<= 0): pass np.log(probs) "
                         "or log_softmax(logits)")
    return np.concatenate([scores, np.full((len(scores), 1), -np.inf)], axis=1)


def _check_options(vocab_size, blank, beam_width, cutoff_top_n, word_boundary, merge, lm, labels):
    if not 0 <= blank < vocab_size:
        raise ValueError(f"blank id {blank} is outside the vocabulary of {vocab_size} labels")
    if beam_width < 1 or cutoff_top_n < 1:
        raise ValueError("beam_width and cutoff_top_n must be at least 1")
    if word_boundary is not None and (word_boundary == blank or not 0 <= word_boundary < vocab_size):
        raise ValueError(f"word_boundary {word_boundary} must be a non-blank label id")
    if merge not in ("sum", "max"):
        raise ValueError(f"merge must be 'sum' or 'max', got {merge!r}")
    if lm is not None and (labels is None or len(labels) != vocab_size):
        raise ValueError(f"an LM needs labels: the {vocab_size} label strings, blank included")


def _prune(frames: np.ndarray, cutoff_top_n: int, cutoff_prob: float) -> np.ndarray:
    """Set every label outside each frame's candidate set to -inf (all frames at once)."""
    vocab_size = frames.shape[1] - 1
    if cutoff_top_n >= vocab_size and cutoff_prob >= 1.0:
        return frames
    order = np.argsort(-frames[:, :vocab_size], axis=1, kind="stable")
    keep_sorted = np.zeros(order.shape, dtype=bool)
    keep_sorted[:, :cutoff_top_n] = True
    if cutoff_prob < 1.0:
        cumulative = np.cumsum(np.exp(np.take_along_axis(frames, order, axis=1)), axis=1)
        # keep labels up to and including the one whose cumulative probability reaches cutoff_prob
        reached_before = np.zeros_like(keep_sorted)
        reached_before[:, 1:] = cumulative[:, :-1] >= cutoff_prob
        keep_sorted &= ~reached_before
    keep = np.ones(frames.shape, dtype=bool)
    np.put_along_axis(keep[:, :vocab_size], order, keep_sorted, axis=1)
    return np.where(keep, frames, -np.inf)


def _search(frames, blank, beam_width, combine, trie):
    """The frame loop: beams are trie node ids with log-masses pb (ends in blank) and pnb."""
    columns = np.arange(frames.shape[1])
    nodes = [trie.ROOT]
    pb = np.zeros(1)
    pnb = np.full(1, -np.inf)
    for lp in frames:
        last = trie.last_labels(nodes)
        total = combine(pb, pnb)
        stay_b = total + lp[blank]
        stay_nb = pnb + lp[last]  # the repeat collapses (root: -inf column)
        from_mass = np.where(columns == last[:, None], pb[:, None], total[:, None])
        ext = from_mass + lp + trie.bonuses(nodes)
        ext[:, blank] = -np.inf
        _merge_into_beam(nodes, ext, stay_nb, combine, trie)

        scores = np.concatenate([combine(stay_b, stay_nb), ext.ravel()])
        best = np.argsort(-scores, kind="stable")[:beam_width]
        best = best[np.isfinite(scores[best])]
        if len(best) == 0:  # a frame that gives nothing a finite score: keep the beam as it was
            continue
        nodes, pb, pnb = _next_beam(best, nodes, stay_b, stay_nb, ext, trie)
    return nodes, pb, pnb


def _merge_into_beam(nodes, ext, stay_nb, combine, trie):
    """An extension that recreates a prefix already in the beam adds to that beam's pnb instead."""
    position = {node: i for i, node in enumerate(nodes)}
    for j, node in enumerate(nodes):
        i = position.get(trie.parent[node])
        if i is not None:
            label = trie.label[node]
            stay_nb[j] = combine(stay_nb[j], ext[i, label])
            ext[i, label] = -np.inf


def _next_beam(best, nodes, stay_b, stay_nb, ext, trie):
    """The kept candidates: indices < len(nodes) are stays, the rest cells of ext (beam row, label)."""
    n_beams, width = ext.shape
    stays = best < n_beams
    parent_row, label = np.divmod(best - n_beams, width)
    new_nodes = [nodes[b] if stay else trie.child(nodes[p], int(c))
                 for b, stay, p, c in zip(best.tolist(), stays.tolist(), parent_row.tolist(), label.tolist())]
    stay_row = np.where(stays, best, 0)
    ext_cell = np.where(stays, 0, best - n_beams)
    pb = np.where(stays, stay_b[stay_row], -np.inf)  # a new prefix has no blank-ending path yet
    pnb = np.where(stays, stay_nb[stay_row], ext.ravel()[ext_cell])
    return new_nodes, pb, pnb


class _PrefixTrie:
    """Prefixes as nodes of a trie (id -> parent, label), so a prefix is an int, not a tuple.

    With an LM each node also keeps its word history and partial word, and caches the LM bonus
    of its extensions: (V + 1) values, zero where a label completes no word.
    """

    ROOT = 0

    def __init__(self, vocab_size, blank, lm, alpha, beta, labels, word_boundary):
        self.width = vocab_size + 1
        self.parent = [-1]
        self.label = [vocab_size]  # the root's "last label" is the -inf column
        self._children: dict[int, int] = {}
        self._lm, self._alpha, self._beta = lm, alpha, beta
        self._labels, self._boundary, self._blank = labels, word_boundary, blank
        self._words: list[tuple[str, ...]] = [()]
        self._partial: list[str] = [""]
        self._bonus: dict[int, np.ndarray] = {}
        self._zero = np.zeros(self.width)

    def child(self, node: int, label: int) -> int:
        key = node * self.width + label
        child = self._children.get(key)
        if child is None:
            child = len(self.parent)
            self._children[key] = child
            self.parent.append(node)
            self.label.append(label)
            if self._lm is not None:
                words, partial = self._extend_words(node, label)
                self._words.append(words)
                self._partial.append(partial)
        return child

    def last_labels(self, nodes: list[int]) -> np.ndarray:
        return np.array([self.label[n] for n in nodes])

    def labels_of(self, node: int) -> list[int]:
        out = []
        while node != self.ROOT:
            out.append(self.label[node])
            node = self.parent[node]
        return out[::-1]

    def bonuses(self, nodes: list[int]) -> np.ndarray | float:
        """[len(nodes), V + 1] LM bonuses of each beam's extensions (0.0 without an LM)."""
        if self._lm is None:
            return 0.0
        return np.stack([self._node_bonus(n) for n in nodes])

    def final_bonus(self, node: int) -> float:
        """The last partial word (word-level LMs) and end-of-sentence, once, at the end."""
        if self._lm is None:
            return 0.0
        words, partial = self._words[node], self._partial[node]
        bonus = 0.0
        if partial:
            bonus += self._word_bonus(words, partial)
            words = words + (partial,)
        return bonus + self._alpha * self._lm.end_score(words)

    def _extend_words(self, node: int, label: int) -> tuple[tuple[str, ...], str]:
        words, partial = self._words[node], self._partial[node]
        if self._boundary is None:
            return words + (self._labels[label],), ""
        if label == self._boundary:
            return (words + (partial,) if partial else words), ""
        return words, partial + self._labels[label]

    def _word_bonus(self, words: tuple[str, ...], word: str) -> float:
        return self._alpha * self._lm.score(words, word) + self._beta

    def _node_bonus(self, node: int) -> np.ndarray:
        bonus = self._bonus.get(node)
        if bonus is None:
            words, partial = self._words[node], self._partial[node]
            if self._boundary is None:  # every label is an LM token
                bonus = np.array([0.0 if c == self._blank else self._word_bonus(words, self._labels[c])
                                  for c in range(self.width - 1)] + [0.0])
            elif partial:  # a boundary completes the partial word; an empty word scores nothing
                bonus = self._zero.copy()
                bonus[self._boundary] = self._word_bonus(words, partial)
            else:
                bonus = self._zero
            self._bonus[node] = bonus
        return bonus


if __name__ == "__main__":
    import time

    from .decoding import greedy_ctc

    rng = np.random.default_rng(0)
    logits = 4.0 * rng.standard_normal((500, 29))
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    for beam in (1, 10, 32):
        start = time.perf_counter()
        runs = 20
        for _ in range(runs):
            prefix_beam_search(log_probs, None, 28, beam_width=beam)
        elapsed = (time.perf_counter() - start) / runs
        print(f"500 frames x 29 classes, beam {beam:2d}: {1e3 * elapsed:.1f} ms per utterance")
    same = prefix_beam_search(log_probs, None, 28, beam_width=1, merge="max") == greedy_ctc(log_probs, None, 28)
    print("beam 1 (max) == greedy:", same)
