"""A word bigram language model of the training transcripts, written as ARPA.

Interpolated absolute discounting (Ney et al.): p(w | v) = max(c(v, w) - D, 0) / c(v) + b(v) p(w),
b(v) = D N1+(v .) / c(v). Listed bigrams carry the interpolated probability and b(v) is the
backoff weight, so the file means the same to kenlm as to ascend_asr.language_model.ArpaLM.
The file has no <unk>: a word never seen in training gets kenlm's -100, i.e. a closed vocabulary.
"""
from __future__ import annotations

import math
import os
from collections import Counter

DISCOUNT = 0.5


def write_bigram_arpa(transcripts, path: str, discount: float = DISCOUNT) -> str:
    unigrams, bigrams = Counter(), Counter()
    for text in transcripts:
        words = ["<s>", *text.split(), "</s>"]
        unigrams.update(words[1:])  # <s> is only ever a history
        bigrams.update(zip(words[:-1], words[1:]))
    total = sum(unigrams.values())
    p_uni = {w: c / total for w, c in unigrams.items()}
    history_count, followers = Counter(), Counter()
    for (v, _), c in bigrams.items():
        history_count[v] += c
        followers[v] += 1
    backoff = {v: discount * followers[v] / history_count[v] for v in history_count}
    lines = ["\\data\\", f"ngram 1={len(p_uni) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:",
             f"-99\t<s>\t{math.log10(backoff['<s>']):.6f}"]
    for w in sorted(p_uni):
        bow = f"\t{math.log10(backoff[w]):.6f}" if w in backoff else ""
        lines.append(f"{math.log10(p_uni[w]):.6f}\t{w}{bow}")
    lines += ["", "\\2-grams:"]
    for (v, w), c in sorted(bigrams.items()):
        p = (c - discount) / history_count[v] + backoff[v] * p_uni[w]
        lines.append(f"{math.log10(p):.6f}\t{v} {w}")
    lines += ["", "\\end\\", ""]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".part", "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(path + ".part", path)
    return path
