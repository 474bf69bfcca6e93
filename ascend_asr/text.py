"""Vocabularies and transcript normalisation to a model's alphabet."""
from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass

from .errors import ProfileError

ENGLISH_LABELS = (" ", *"abcdefghijklmnopqrstuvwxyz", "'")  # space, a-z, apostrophe (NVIDIA Jasper's labels)


def vocabulary_problem(labels, blank) -> str:
    """What is wrong with (labels, blank id), or "": labels are distinct non-empty strings, the blank id is a
    whole number within them, and a '<blank>' label sits at that id."""
    if not labels:
        return "no labels"
    bad = [label for label in labels if not isinstance(label, str) or not label]
    if bad:
        return f"labels must be non-empty strings, found {bad[:5]!r}"
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        return f"labels {repeated[:5]!r} are listed more than once: each label must name one class"
    if isinstance(blank, bool) or not isinstance(blank, int):
        return f"blank id must be a whole number, found {blank!r}"
    if not 0 <= blank < len(labels):
        return f"blank id {blank} is outside the vocabulary of {len(labels)} labels"
    if "<blank>" in labels and labels.index("<blank>") != blank:
        return (f"blank id {blank} is {labels[blank]!r}, but '<blank>' is label {labels.index('<blank>')}: "
                "the blank must be the '<blank>' label")
    return ""


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
        problem = vocabulary_problem(self.labels, self.blank)
        if problem:
            raise ProfileError(f"vocabulary: {problem}")

    @classmethod
    def from_spec(cls, spec: dict, source: str = "") -> "Vocabulary":
        """Profile form: `labels` (without blank) and `blank: last|first|<id>`. A malformed spec raises
        ProfileError naming `source` (the profile, prep.json or bundle manifest it came from)."""
        where = f"{source}: vocabulary" if source else "vocabulary"
        fix = ("give `labels:` as a list of distinct strings and `blank:` as last, first or a whole-number id "
               "within the labels")
        if not isinstance(spec, dict) or "labels" not in spec:
            raise ProfileError(f"{where}: expected a mapping with 'labels' (and 'blank'), found {spec!r:.80}; {fix}")
        raw = spec["labels"]
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
            raise ProfileError(f"{where}: 'labels' must be a list of strings, found {raw!r:.80}; {fix}")
        labels = tuple(raw)
        blank = spec.get("blank", "last")
        separator = spec.get("separator", "")
        if separator is None:
            separator = ""
        if separator not in ("", " "):
            raise ProfileError(f"{where}: 'separator' must be '' (characters) or ' ' (tokens), found {separator!r}; "
                               f"{fix}")
        if blank == "last":
            labels, blank = labels + ("<blank>",), len(labels)
        elif blank == "first":
            labels, blank = ("<blank>",) + labels, 0
        elif isinstance(blank, bool) or not isinstance(blank, int):
            raise ProfileError(f"{where}: 'blank' must be last, first or a whole-number label id, found {blank!r}; "
                               f"{fix}")
        problem = vocabulary_problem(labels, blank)
        if problem:
            raise ProfileError(f"{where}: {problem}; {fix}")
        return cls(labels, blank, separator)

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
_SYMBOLS = {"&": " and ", "+": " plus ", "%": " percent ", "@": " at ", "=": " equals ", "°": " degrees ",
            "±": " plus or minus ", "×": " times ", "÷": " divided by ", "‰": " per mille ", "©": " copyright ",
            "®": " registered ", "§": " section ", "¶": " paragraph ", "<": " less than ", ">": " greater than "}
_CURRENCIES = {"$": "dollars", "£": "pounds", "€": "euros", "¥": "yen", "¢": "cents", "₹": "rupees"}
_POWERS = {"²": " squared ", "³": " cubed "}
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}
_WARNED: set[str] = set()  # symbols already reported (once per process)
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                    "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Cardinal English, hyphen-free ("twenty one"); 10**12 and more are read digit by digit."""
    if n >= 10 ** 12:
        return " ".join(_ONES[int(d)] for d in str(n))
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
    """"first", "twenty second", "one hundredth"."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_ENDINGS:
        words[-1] = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _fraction(numerator: str, denominator: str) -> str:
    """"1/2" -> "one half", "3/4" -> "three quarters", "2/3" -> "two thirds"; "24/7", "50/50" (not a proper
    fraction) and "n/0", "n/1" are read as the two numbers."""
    n, d = int(numerator), int(denominator)
    if d <= 1 or n >= d:
        return f" {number_to_words(n)} {number_to_words(d)} "
    singular, plural = _DENOMINATORS.get(d) or (_ordinal(d), _ordinal(d) + "s")
    return f" {number_to_words(n)} {singular if n == 1 else plural} "


def _expand_numbers(text: str) -> str:
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"(\d+)/(\d+)/(\d+)", r"\1 \2 \3", text)  # a date: its numbers, never a fraction
    text = re.sub(r"(?<![\d/])(\d+)/(\d+)(?![\d/])", lambda m: _fraction(m.group(1), m.group(2)), text)
    text = re.sub(r"(?:(?<=\s)|^)-(?=\d)", " minus ", text)
    text = re.sub(r"(\d+)\.(\d+)", lambda m: number_to_words(int(m.group(1))) + " point " +
                  " ".join(_ONES[int(d)] for d in m.group(2)), text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: _ordinal(int(m.group(1))), text)
    return re.sub(r"\d+", lambda m: " " + _year_or_number(m.group(0)) + " ", text)


def _before_folding(text: str) -> str:
    """What ASCII folding (NFKD) would lose or get wrong: "1½" would become "11⁄2" (eleven, two), "€5" five,
    "m²" "m2", digits of other scripts nothing at all."""
    def vulgar(m):
        n, _, d = unicodedata.normalize("NFKD", m.group(2)).partition("\u2044")
        return (m.group(1) + " and " if m.group(1) else " ") + f"{n}/{d} "

    text = re.sub(r"(\d?)([\u00bc-\u00be\u2150-\u215e\u2189])", vulgar, text)
    text = text.replace("\u2044", "/")  # FRACTION SLASH
    for power, words in _POWERS.items():
        text = text.replace(power, words)
    for symbol, unit in _CURRENCIES.items():
        text = re.sub(re.escape(symbol) + r"\s?(\d+(?:[.,]\d+)*)", r" \1 " + unit + " ", text)
        text = text.replace(symbol, " " + unit + " ")
    text = text.replace("\u2019", "'").replace("\u2018", "'")  # typographic apostrophes
    text = re.sub(r"#(?=\s?\d)", " number ", text)
    return "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() and unicodedata.digit(c, None)
                   is not None else c for c in text)


def _drop_unknown_symbols(text: str, original: str) -> str:
    """Symbols and letters that have no spoken form here are dropped, each reported once on stderr."""
    out = []
    for c in text:
        category = unicodedata.category(c)
        if category in ("Cc", "Cf") and not c.isspace():  # NUL and other control/format characters: no sound
            if c not in _WARNED:
                _WARNED.add(c)
                print(f"[ascend-asr] warning: transcript control character U+{ord(c):04X} "
                      f"({unicodedata.name(c, 'control')}) is dropped from references (first seen in "
                      f"{original[:60]!r}); the manifest line is damaged: remove it from the text", file=sys.stderr)
            continue
        if category[0] == "S" or (category[0] == "L" and not c.isascii()) or (category == "Co"):
            if c not in _WARNED:
                _WARNED.add(c)
                name = unicodedata.name(c, f"U+{ord(c):04X}")
                print(f"[ascend-asr] warning: transcript character {c!r} ({name}) has no spoken form here and is "
                      f"dropped from references (first seen in {original[:60]!r}); spell it out in the manifest "
                      "if it is spoken", file=sys.stderr)
            out.append(" ")
        else:
            out.append(c)
    return "".join(out)


def _mostly_non_latin(alphabet) -> bool:
    """An alphabet of Chinese characters (AISHELL, PaddleSpeech's vocab.txt) or another non-Latin script."""
    letters = [c for c in alphabet if len(c) == 1 and c.isalpha()]
    return bool(letters) and sum(not c.isascii() for c in letters) * 2 > len(letters)


def _keep_alphabet(text: str, alphabet) -> str:
    """For a non-Latin alphabet: width and compatibility forms folded (NFKC, so full-width Latin and digits
    become ASCII), English cleaning skipped; characters outside the alphabet are dropped and spaces kept only
    when the alphabet has a space (Chinese transcripts are scored by character, their spaces are not speech)."""
    text = unicodedata.normalize("NFKC", text)
    keep_space = " " in alphabet
    text = "".join(c if c in alphabet else (" " if keep_space and c.isspace() else "") for c in text)
    return re.sub(r"\s+", " ", text).strip()


def normalize_transcript(text: str, labels) -> str:
    """NVIDIA `english_cleaners`, then keep only characters of `labels`.

    Fractions ("½", "3/4"), mixed numbers, superscript powers, currencies and other-script digits are
    spelt out first; then ASCII-fold, lower-case (upper-case for an upper-case alphabet), expand
    abbreviations, numbers (ordinals: "22nd" -> "twenty second") and symbols. A symbol or non-Latin
    letter with no spoken form is dropped with a warning on stderr (once per character), punctuation
    silently; every other character outside the alphabet becomes a space; whitespace collapses.
    """
    alphabet = set(labels)
    if _mostly_non_latin(alphabet):
        return _keep_alphabet(text, alphabet)
    original = text
    text = _before_folding(unicodedata.normalize("NFC", text))
    for symbol, words in _SYMBOLS.items():
        if symbol not in alphabet:
            text = text.replace(symbol, words)
    text = _drop_unknown_symbols(unicodedata.normalize("NFKD", text), original)
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", lambda m: _ABBREVIATIONS[m.group(1)], text)
    text = _expand_numbers(text)
    if not any(c.islower() for c in alphabet) and any(c.isupper() for c in alphabet):
        text = text.upper()  # an upper-case alphabet (deepspeech.pytorch's)
    text = "".join(c if c in alphabet else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()
