"""Hotwords: words the beam search should prefer, each with a boost added to its word score.

File format (`--hotwords FILE`): one hotword or phrase per line, optionally followed by a tab and its boost
(a natural-log score; default `--hotword-weight`). A phrase boosts each of its words. Hotwords join the
lexicon, so a word the LM never saw can still be spelled and chosen.
"""
from __future__ import annotations

import math
import os

from .errors import ProfileError

DEFAULT_HOTWORD_WEIGHT = 10.0  # pyctcdecode's default boost


def read_hotwords(path: str, weight: float = DEFAULT_HOTWORD_WEIGHT, normalize=None) -> dict[str, float]:
    """{word: boost} of a hotwords file; `normalize` maps each line's text to the model's alphabet."""
    if not os.path.isfile(path):
        raise ProfileError(f"{path}: hotwords file not found; give a text file with one word or phrase per line "
                           "(optionally a tab and a boost) to --hotwords")
    boosts: dict[str, float] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                text, _, value = line.rstrip("\n").partition("\t")
                if not text.strip():
                    continue
                boost = weight
                if value.strip():
                    try:
                        boost = float(value)
                    except ValueError:
                        boost = math.nan
                    if not math.isfinite(boost):
                        raise ProfileError(f"{path}:{number}: the boost after the tab must be a finite number, "
                                           f"found {value.strip()!r}; write 'word<TAB>5.0' or just the word")
                words = (normalize(text) if normalize else text).split()
                for word in words:
                    boosts[word] = max(boosts.get(word, -math.inf), boost)
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc.reason}); hotwords are a text file, one per line") from exc
    if not boosts:
        raise ProfileError(f"{path}: no hotwords; write one word or phrase per line")
    return boosts
