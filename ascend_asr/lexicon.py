"""A lexicon: the words a decoder may spell, as a trie over the model's label ids.

Read from a lexicon file (one word per line; a second tab- or space-separated column, a pronunciation in
Kaldi/flashlight lexicons, is ignored: the spelling is the word itself) or from an ARPA LM's unigrams.
Words are kept sorted, so the words below any trie node form one contiguous range [lo, hi) of that order:
the best completion of a partial word is a range maximum (`RangeMax`), computed for many nodes at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import ProfileError

SPECIAL = ("<s>", "</s>", "<unk>")


@dataclass(frozen=True)
class Lexicon:
    """Words (sorted, unique) and their trie: node 0 is the root; `children[n]` maps a label id to a node;
    `word_at[n]` is the index of the word ending at n (-1: none); `span[n]` the range of words below n."""

    words: tuple
    children: tuple  # per node: {label id: child node}
    word_at: np.ndarray
    span_lo: np.ndarray
    span_hi: np.ndarray
    index: dict = field(repr=False)  # word -> its position in `words`

    @property
    def nodes(self) -> int:
        return len(self.children)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __len__(self) -> int:
        return len(self.words)

    def child(self, node: int, label: int) -> int:
        """The node reached by spelling `label` after `node`, or -1 outside the lexicon."""
        return self.children[node].get(label, -1)

    @classmethod
    def build(cls, words, labels, blank: int, boundary: int | None, source: str = "lexicon") -> "Lexicon":
        """The trie of the `words` the labels can spell (others are reported by `spellable`)."""
        table = {label: i for i, label in enumerate(labels) if i not in (blank, boundary)}
        spelled = {}
        for word in words:
            ids = spell(word, table)
            if ids is not None and word not in SPECIAL:
                spelled[word] = ids
        if not spelled:
            raise ProfileError(f"{source}: none of its words can be spelled with the model's labels "
                               f"({''.join(sorted(table))!r}); give a lexicon in the model's alphabet (its case)")
        ordered = sorted(spelled)
        children: list[dict] = [{}]
        word_at = [-1]
        lo, hi = [0], [len(ordered)]
        for w, word in enumerate(ordered):
            node = 0
            for label in spelled[word]:
                nxt = children[node].get(label)
                if nxt is None:
                    nxt = len(children)
                    children[node][label] = nxt
                    children.append({})
                    word_at.append(-1)
                    lo.append(w)
                    hi.append(w)
                node = nxt
                hi[node] = w + 1
            word_at[node] = w
        return cls(tuple(ordered), tuple(children), np.array(word_at), np.array(lo), np.array(hi),
                   {w: i for i, w in enumerate(ordered)})


def spell(word: str, table: dict) -> list[int] | None:
    """Label ids spelling `word` one character per label (multi-character labels: the longest first), or None."""
    ids, i = [], 0
    longest = max((len(k) for k in table), default=1)
    while i < len(word):
        for n in range(min(longest, len(word) - i), 0, -1):
            label = table.get(word[i:i + n])
            if label is not None:
                ids.append(label)
                i += n
                break
        else:
            return None
    return ids


def read_lexicon_words(path: str) -> list[str]:
    """The words of a lexicon file: the first field of each non-empty line."""
    if not os.path.isfile(path):
        raise ProfileError(f"{path}: lexicon not found; give a file with one word per line to --lexicon, or "
                           "--lexicon lm (the LM's words) or --lexicon none")
    words = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if fields:
                    words.append(fields[0])
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc.reason}); a lexicon is a text file with one word "
                           "per line") from exc
    if not words:
        raise ProfileError(f"{path}: no words; a lexicon is a text file with one word per line")
    return words


class RangeMax:
    """Maxima of a score array over many [lo, hi) ranges at once (a sparse table: O(n log n) to build)."""

    def __init__(self, values: np.ndarray):
        table = [np.asarray(values, dtype=np.float64)]
        width = 1
        while 2 * width <= len(values):
            prev = table[-1]
            table.append(np.maximum(prev[:-width], prev[width:]))
            width *= 2
        self._table = table

    def over(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        length = np.maximum(hi - lo, 1)
        level = np.floor(np.log2(length)).astype(int)
        out = np.full(len(lo), -np.inf)
        for k in np.unique(level):
            sel = level == k
            row = self._table[k]
            out[sel] = np.maximum(row[lo[sel]], row[hi[sel] - (1 << k)])
        out[hi <= lo] = -np.inf
        return out
