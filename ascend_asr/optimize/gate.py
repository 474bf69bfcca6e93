"""The gate after each optimisation step: a candidate's outputs against the fp32 model's, on the same utterances.

Per output, on valid frames only (cut with the lengths the reference graph returns, else the profile's
output-length rule), parity.py's metrics for each utterance, pooled worst-case; plus the greedy transcripts'
WER/CER against the references, candidate minus fp32. Thresholds: the profile's `parity:` mapping.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batching import row, time_major
from ..decoding import OutputLayout, greedy_ctc
from ..errors import AscendAsrError
from ..metrics import score
from ..parity import (
    Breach,
    ErrorRateDelta,
    TensorMetrics,
    Thresholds,
    breaches,
    compare_tensors,
    error_rate_breaches,
    pooled,
)
from ..profiles import BATCH, OUT_FRAMES, Profile


class GateError(AscendAsrError):
    """An optimisation step broke its gate: the candidate is too far from the fp32 model."""


@dataclass(frozen=True)
class GateResult:
    outputs: dict  # output name -> pooled TensorMetrics
    errors: ErrorRateDelta
    breaches: tuple  # parity.Breach, in output then metric order

    @property
    def passed(self) -> bool:
        return not self.breaches

    def broken(self) -> list[str]:
        return [str(b) for b in self.breaches]

    def as_dict(self) -> dict:
        e = self.errors
        return {"outputs": {name: m.as_dict() for name, m in self.outputs.items()},
                "reference_wer": e.reference_wer, "candidate_wer": e.candidate_wer, "wer_delta": e.wer_delta,
                "reference_cer": e.reference_cer, "candidate_cer": e.candidate_cer, "cer_delta": e.cer_delta,
                "breaches": self.broken(), "passed": self.passed}


def valid_lengths(profile: Profile, reference_runs, utterances) -> list:
    """Valid output frames per utterance: the reference graph's own out_lengths, else the output-length rule."""
    layout = OutputLayout.of(profile)
    lengths = []
    for outputs, utt in zip(reference_runs, utterances):
        own = None
        if layout.lengths is not None and layout.lengths.name in outputs:
            own = int(np.ravel(outputs[layout.lengths.name])[0])
        lengths.append(layout.valid_frames(utt.valid_frames, own))
    return lengths


def _valid(outputs: dict, spec, length: int | None) -> np.ndarray:
    """One utterance's output (batch axis removed), its out_frames axis cut to the valid frames."""
    array = row(outputs, spec, 0) if BATCH in spec.shape else outputs[spec.name]
    if OUT_FRAMES in spec.shape and length is not None:
        axis = [d for d in spec.shape if d != BATCH].index(OUT_FRAMES)
        array = np.take(array, np.arange(min(length, array.shape[axis])), axis=axis)
    return np.asarray(array)


def transcripts(profile: Profile, runs, lengths) -> list[str]:
    """Greedy CTC transcripts of each utterance's valid frames."""
    layout = OutputLayout.of(profile)
    vocab = profile.vocabulary
    texts = []
    for outputs, length in zip(runs, lengths):
        scores = time_major(row(outputs, layout.scores, 0), layout.scores)
        scores = np.where(np.isfinite(scores), scores, -np.inf)  # a NaN must not win the argmax silently
        texts.append(vocab.decode(greedy_ctc(scores, length, vocab.blank)))
    return texts


def error_rates(profile: Profile, utterances, reference_runs, candidate_runs, lengths) -> ErrorRateDelta:
    """WER and CER in percent of the fp32 and the candidate transcripts against the references."""
    refs = [u.text for u in utterances]
    ref_score = score(zip(refs, transcripts(profile, reference_runs, lengths)), warn=False)
    cand_score = score(zip(refs, transcripts(profile, candidate_runs, lengths)), warn=False)

    def pct(rate):
        return 0.0 if rate is None else 100.0 * rate
    return ErrorRateDelta(pct(ref_score.wer), pct(cand_score.wer), pct(ref_score.cer), pct(cand_score.cer))


def evaluate(profile: Profile, utterances, reference_runs, candidate_runs, thresholds: Thresholds) -> GateResult:
    """The candidate's runs against the fp32 runs, on each profile output's valid frames."""
    lengths = valid_lengths(profile, reference_runs, utterances)
    per_output: dict[str, TensorMetrics] = {}
    found: list[Breach] = []
    for spec in profile.outputs:
        metrics = []
        for ref, cand, length in zip(reference_runs, candidate_runs, lengths):
            a, b = _valid(ref, spec, length), _valid(cand, spec, length)
            with np.errstate(all="ignore"):  # an overflowed candidate is measured, not warned about
                metrics.append(compare_tensors(a.astype(np.float64), b.astype(np.float64)))
        per_output[spec.name] = pooled(metrics)
        found += breaches(per_output[spec.name], thresholds, spec.name)
    delta = error_rates(profile, utterances, reference_runs, candidate_runs, lengths)
    found += error_rate_breaches(delta, thresholds)
    return GateResult(per_output, delta, tuple(found))
