"""Vocabularies and transcript normalisation to a model's alphabet."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import ProfileError

ENGLISH_LABELS = (" ", *"abcdefghijklmnopqrstuvwxyz", "'")  # space, a-z, apostrophe (NVIDIA Jasper's labels)


@dataclass(frozen=True)
class Vocabulary:
    labels: tuple[str, ...]
    blank: int
    separator: str = ""  # " " for token vocabularies (phones): hypotheses are space-separated tokens

    @property
    def error_rate_name(self) -> str:
        """What word-level errors of this vocabulary's transcripts are called."""
        return "PER" if self.separator == " " else "WER"

    def __post_init__(self):
        if not 0 <= self.blank < len(self.labels):
            raise ProfileError(f"blank id {self.blank} is outside the vocabulary of {len(self.labels)} labels")

    @classmethod
    def from_spec(cls, spec: dict) -> "Vocabulary":
        """Profile form: `labels` (without blank) and `blank: last|first|<id>`."""
        labels = tuple(spec["labels"])
        blank = spec.get("blank", "last")
        separator = str(spec.get("separator", ""))
        if blank == "last":
            return cls(labels + ("<blank>",), len(labels), separator)
        if blank == "first":
            return cls(("<blank>",) + labels, 0, separator)
        return cls(labels, int(blank), separator)

    def to_spec(self) -> dict:
        return {"labels": list(self.labels), "blank": self.blank, "separator": self.separator}

    @property
    def size(self) -> int:
        return len(self.labels)

    def decode(self, ids) -> str:
        return self.separator.join(self.labels[i] for i in ids if i != self.blank)

    def normalize(self, text: str) -> str:
        """A reference transcript in this vocabulary's terms: characters, or known tokens."""
        if self.separator == " ":
            known = set(self.labels) - {self.labels[self.blank]}
            return " ".join(t for t in text.split() if t in known)
        return normalize_transcript(text, [c for i, c in enumerate(self.labels) if i != self.blank])

    def encode(self, text: str) -> list[int]:
        index = {c: i for i, c in enumerate(self.labels) if i != self.blank}
        return [index[c] for c in (text.split() if self.separator == " " else text) if c in index]


_ABBREVIATIONS = {
    "mrs": "misess", "mr": "mister", "dr": "doctor", "st": "saint", "co": "company", "jr": "junior",
    "maj": "major", "gen": "general", "drs": "doctors", "rev": "reverend", "lt": "lieutenant",
    "hon": "honorable", "sgt": "sergeant", "capt": "captain", "esq": "esquire", "ltd": "limited",
    "col": "colonel", "ft": "fort",
}
_SYMBOLS = {"&": " and ", "+": " plus ", "%": " percent ", "@": " at "}
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                    "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Cardinal English for 0 <= n < 10**12, hyphen-free ("twenty one")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, word in ((10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")):
        if n >= scale:
            rest = n % scale
            return number_to_words(n // scale) + " " + word + ("" if rest == 0 else " " + number_to_words(rest))
    raise ValueError(n)


def _year_or_number(digits: str) -> str:
    n = int(digits)
    if 1000 < n < 3000 and len(digits) == 4 and n % 100 != 0 and not 2000 <= n < 2010:
        return number_to_words(n // 100) + " " + (
            "oh " + _ONES[n % 100] if n % 100 < 10 else number_to_words(n % 100))
    return number_to_words(n)


def _ordinal(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_ENDINGS:
        words[-1] = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _expand_numbers(text: str) -> str:
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\$(\d+)", lambda m: " " + number_to_words(int(m.group(1))) + " dollars", text)
    text = re.sub(r"(\d+)\.(\d+)", lambda m: number_to_words(int(m.group(1))) + " point " +
                  " ".join(_ONES[int(d)] for d in m.group(2)), text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: _ordinal(int(m.group(1))), text)
    return re.sub(r"\d+", lambda m: " " + _year_or_number(m.group(0)) + " ", text)


def normalize_transcript(text: str, labels) -> str:
    """NVIDIA `english_cleaners`, then keep only characters of `labels`.

    ASCII-fold, lower-case (upper-case for an upper-case alphabet), expand abbreviations, numbers
    and symbols; every other character
    outside the alphabet becomes a space; whitespace collapses.
    """
    alphabet = set(labels)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", lambda m: _ABBREVIATIONS[m.group(1)], text)
    text = _expand_numbers(text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    if not any(c.islower() for c in alphabet) and any(c.isupper() for c in alphabet):
        text = text.upper()  # an upper-case alphabet (deepspeech.pytorch's)
    text = "".join(c if c in alphabet else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()
