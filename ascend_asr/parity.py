"""How close two runs of a model are: the tensor metrics msit's `debug compare` reports, and a gate over them.

Every comparison in the project (export parity, the gate after each optimisation step, `ascend-asr compare`)
uses these definitions, so a figure means the same thing wherever it is printed:

- cosine similarity of the flattened tensors (1.0 = same direction; two all-zero tensors count as 1.0),
- max and mean absolute error,
- relative Euclidean distance ||a - b|| / ||a|| (msit's RelativeEuclideanDistance),
- KL divergence KL(a || b) per frame, averaged, for tensors that are (log-)probabilities over the last axis,
- frame-argmax agreement over the last axis (the share of frames whose best token is the same).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np

# Defaults of the optimisation gate; a profile's `parity:` mapping overrides them per model.
MIN_COSINE = 0.99
MAX_RED = 0.05
MAX_WER_DELTA = 0.5  # points of WER (and of CER), candidate minus reference
MIN_ARGMAX_AGREEMENT = 0.0  # reported always; not gated unless a profile asks for it
_EPS = 1e-12


@dataclass(frozen=True)
class TensorMetrics:
    """One tensor of a candidate run against the same tensor of the reference run."""

    cosine: float
    max_abs: float
    mean_abs: float
    red: float
    kl: Optional[float]  # None unless the tensor is a probability distribution over its last axis
    argmax_agreement: Optional[float]  # None for tensors of rank < 2
    elements: int

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def _as_float64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def cosine_similarity(reference, candidate) -> float:
    a, b = _as_float64(reference).ravel(), _as_float64(candidate).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < _EPS and nb < _EPS:
        return 1.0
    if na < _EPS or nb < _EPS:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def relative_euclidean_distance(reference, candidate) -> float:
    a, b = _as_float64(reference).ravel(), _as_float64(candidate).ravel()
    na = np.linalg.norm(a)
    diff = np.linalg.norm(a - b)
    if na < _EPS:
        return 0.0 if diff < _EPS else float("inf")
    return float(diff / na)


def _probabilities(x: np.ndarray) -> Optional[np.ndarray]:
    """x as probabilities over its last axis if it is a log-softmax or a softmax output, else None."""
    if x.ndim < 1 or x.shape[-1] < 2 or not np.all(np.isfinite(x)):
        return None
    if np.all(x <= 1e-6) and np.allclose(np.exp(x).sum(axis=-1), 1.0, atol=1e-3):
        return np.exp(x)
    if np.all(x >= -1e-6) and np.allclose(x.sum(axis=-1), 1.0, atol=1e-3):
        return np.clip(x, 0.0, None)
    return None


def kl_divergence(reference, candidate) -> Optional[float]:
    """Mean over frames of KL(reference || candidate), when both are distributions over the last axis."""
    p, q = _probabilities(_as_float64(reference)), _probabilities(_as_float64(candidate))
    if p is None or q is None:
        return None
    p, q = np.clip(p, _EPS, None), np.clip(q, _EPS, None)
    per_frame = np.sum(p * (np.log(p) - np.log(q)), axis=-1)
    return float(np.mean(per_frame)) if per_frame.size else 0.0


def argmax_agreement(reference, candidate) -> Optional[float]:
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.ndim < 2 or a.size == 0:
        return None
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def compare_tensors(reference, candidate) -> TensorMetrics:
    """The metrics of `candidate` against `reference`; shapes must match (the caller cuts padding first)."""
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare tensors of shapes {a.shape} and {b.shape}")
    diff = np.abs(_as_float64(a) - _as_float64(b))
    return TensorMetrics(
        cosine=cosine_similarity(a, b),
        max_abs=float(diff.max()) if diff.size else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        red=relative_euclidean_distance(a, b),
        kl=kl_divergence(a, b),
        argmax_agreement=argmax_agreement(a, b),
        elements=int(a.size),
    )


def pooled(metrics: Iterable[TensorMetrics]) -> TensorMetrics:
    """Worst case over several comparisons (e.g. one per utterance): min cosine/agreement, max errors."""
    items: List[TensorMetrics] = list(metrics)
    if not items:
        raise ValueError("nothing to pool")
    kls = [m.kl for m in items if m.kl is not None]
    agreements = [m.argmax_agreement for m in items if m.argmax_agreement is not None]
    total = sum(m.elements for m in items)
    return TensorMetrics(
        cosine=min(m.cosine for m in items),
        max_abs=max(m.max_abs for m in items),
        mean_abs=sum(m.mean_abs * m.elements for m in items) / max(total, 1),
        red=max(m.red for m in items),
        kl=max(kls) if kls else None,
        argmax_agreement=min(agreements) if agreements else None,
        elements=total,
    )


@dataclass(frozen=True)
class Thresholds:
    """What a candidate must meet against its reference; a profile's `parity:` mapping sets them."""

    min_cosine: float = MIN_COSINE
    max_red: float = MAX_RED
    max_wer_delta: float = MAX_WER_DELTA
    min_argmax_agreement: float = MIN_ARGMAX_AGREEMENT
    max_abs: Optional[float] = None  # unset: not gated (fp16/int8 steps legitimately move values)

    @classmethod
    def from_mapping(cls, mapping: Optional[dict], source: str = "profile") -> "Thresholds":
        mapping = dict(mapping or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(f"{source}: unknown parity threshold(s) {unknown}; known: {sorted(known)}")
        values = {}
        for key, value in mapping.items():
            if value is None and key == "max_abs":
                values[key] = None
                continue
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{source}: parity.{key} must be a number, got {value!r}") from None
        return cls(**values)


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float
    limit: float
    where: str  # the output (or tensor) name the breach was measured on

    def __str__(self) -> str:
        op = ">=" if self.metric in ("cosine", "argmax_agreement") else "<="
        return f"{self.where}: {self.metric} {self.value:.6g} (must be {op} {self.limit:g})"


def breaches(metrics: TensorMetrics, thresholds: Thresholds, where: str) -> List[Breach]:
    """The thresholds `metrics` breaks, in a fixed order (cosine, RED, agreement, max |Δ|)."""
    found: List[Breach] = []
    if not metrics.cosine >= thresholds.min_cosine:
        found.append(Breach("cosine", metrics.cosine, thresholds.min_cosine, where))
    if not metrics.red <= thresholds.max_red:
        found.append(Breach("red", metrics.red, thresholds.max_red, where))
    if metrics.argmax_agreement is not None and not metrics.argmax_agreement >= thresholds.min_argmax_agreement:
        found.append(Breach("argmax_agreement", metrics.argmax_agreement, thresholds.min_argmax_agreement, where))
    if thresholds.max_abs is not None and not metrics.max_abs <= thresholds.max_abs:
        found.append(Breach("max_abs", metrics.max_abs, thresholds.max_abs, where))
    return found


@dataclass
class ErrorRateDelta:
    """WER/CER of candidate and reference over the same utterances, in percent."""

    reference_wer: float
    candidate_wer: float
    reference_cer: float
    candidate_cer: float

    @property
    def wer_delta(self) -> float:
        return self.candidate_wer - self.reference_wer

    @property
    def cer_delta(self) -> float:
        return self.candidate_cer - self.reference_cer


def error_rate_breaches(delta: ErrorRateDelta, thresholds: Thresholds) -> List[Breach]:
    found = []
    if not delta.wer_delta <= thresholds.max_wer_delta:
        found.append(Breach("wer_delta", delta.wer_delta, thresholds.max_wer_delta, "transcripts"))
    if not delta.cer_delta <= thresholds.max_wer_delta:
        found.append(Breach("cer_delta", delta.cer_delta, thresholds.max_wer_delta, "transcripts"))
    return found
