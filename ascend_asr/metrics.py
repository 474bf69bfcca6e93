"""Word and character error rates (jiwer's alignment), per utterance and in total."""
from __future__ import annotations

from dataclasses import dataclass

import jiwer


@dataclass(frozen=True)
class ErrorCounts:
    errors: int  # substitutions + deletions + insertions
    reference_length: int

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(self.errors + other.errors, self.reference_length + other.reference_length)

    @property
    def rate(self) -> float | None:
        return self.errors / self.reference_length if self.reference_length else None


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    ref_words = reference.split()
    if not ref_words:
        return ErrorCounts(len(hypothesis.split()), 0)
    out = jiwer.process_words(reference, hypothesis)
    return ErrorCounts(out.substitutions + out.deletions + out.insertions, len(ref_words))


def char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Characters of the space-normalised strings, spaces included (jiwer's CER)."""
    return _char_edits(" ".join(reference.split()), " ".join(hypothesis.split()))


def _char_edits(reference: str, hypothesis: str) -> ErrorCounts:
    if not reference:
        return ErrorCounts(len(hypothesis), 0)
    if not hypothesis:
        return ErrorCounts(len(reference), len(reference))
    out = jiwer.process_characters(reference, hypothesis)
    return ErrorCounts(out.substitutions + out.deletions + out.insertions, len(reference))


def char_errors_without_spaces(reference: str, hypothesis: str) -> ErrorCounts:
    """deepspeech.pytorch's CER: the Levenshtein distance of the two strings with every space removed, over the
    reference's characters without spaces (its `Decoder.cer`; validation sums both over the set)."""
    return _char_edits(reference.replace(" ", ""), hypothesis.replace(" ", ""))


METRIC_DEFINITIONS = {
    "wer": "word error rate: jiwer word alignment, (S + D + I) / reference words, summed over utterances",
    "cer": "character error rate: jiwer character alignment of the space-normalised strings, spaces included",
    "cer_no_spaces": "deepspeech.pytorch's CER: Levenshtein distance with spaces removed / reference characters "
                     "without spaces, summed over utterances (its validation loop)",
    "per_39": "phone error rate after TIMIT 61 -> 39 folding of both sides (phones.60-48-39.map, q deleted): "
              "edit distance over phones / reference phones (ModelZoo LSTM prints it as 'Word error rate')",
}


def upstream_metrics(pairs, phones: bool = False) -> dict:
    """Every family's upstream metric over (reference, hypothesis) pairs (empty references left out), with
    the definition of each: jiwer WER and CER, deepspeech.pytorch's CER without spaces and, for phone
    transcripts, TIMIT PER with 39-phone folding."""
    pairs = [(r, h) for r, h in pairs if str(r).split()]
    words, chars, bare = ErrorCounts(0, 0), ErrorCounts(0, 0), ErrorCounts(0, 0)
    for reference, hypothesis in pairs:
        words += word_errors(reference, hypothesis)
        chars += char_errors(reference, hypothesis)
        bare += char_errors_without_spaces(reference, hypothesis)
    out = {"wer": words.rate, "cer": chars.rate, "cer_no_spaces": bare.rate}
    if phones:
        from .timit import folded_phone_error_rate

        out["per_39"] = folded_phone_error_rate(pairs).rate
    return {**out, "definitions": {k: METRIC_DEFINITIONS[k] for k in out}}


@dataclass(frozen=True)
class Score:
    utterances: int
    words: ErrorCounts
    chars: ErrorCounts
    empty_references: int = 0  # utterances whose reference is empty: left out of the totals (a rate needs words)

    @property
    def wer(self) -> float | None:
        return self.words.rate

    @property
    def cer(self) -> float | None:
        return self.chars.rate

    def to_dict(self) -> dict:
        return {"utterances": self.utterances, "wer": self.wer, "cer": self.cer,
                "word_errors": self.words.errors, "reference_words": self.words.reference_length,
                "char_errors": self.chars.errors, "reference_chars": self.chars.reference_length,
                "empty_references": self.empty_references}


def empty_reference_warning(count: int, total: int) -> str:
    return (f"[ascend-asr] WARNING: {count} of {total} utterance(s) have an empty reference (no words once "
            "normalised to the model's alphabet): they are left out of WER/CER, whose rate needs reference words; "
            "fix their transcripts in the manifest to score them")


def score(pairs, warn=True) -> Score:
    """Total WER / CER over (reference, hypothesis) pairs: summed errors over summed lengths. A pair whose
    reference is empty is left out of the totals (its errors would be insertions over zero words: a WER of
    400% for 4 inserted words) and counted in `empty_references`, with a warning on stderr (`warn`: True,
    False, or a stream)."""
    import sys

    words, chars, n, empty = ErrorCounts(0, 0), ErrorCounts(0, 0), 0, 0
    for reference, hypothesis in pairs:
        n += 1
        if not str(reference).split():
            empty += 1
            continue
        words += word_errors(reference, hypothesis)
        chars += char_errors(reference, hypothesis)
    if empty and warn:
        print(empty_reference_warning(empty, n), file=sys.stderr if warn is True else warn, flush=True)
    return Score(n, words, chars, empty)


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f}%"
