"""The parity metrics every comparison uses (export, the optimisation gate, `ascend-asr compare`)."""
import numpy as np
import pytest

from ascend_asr import parity


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_identical_tensors_are_perfect():
    x = _log_softmax(np.random.default_rng(0).normal(size=(2, 50, 29)))
    m = parity.compare_tensors(x, x.copy())
    assert m.cosine == pytest.approx(1.0) and m.max_abs == 0 and m.red == 0
    assert m.kl == pytest.approx(0.0, abs=1e-12) and m.argmax_agreement == 1.0
    assert parity.breaches(m, parity.Thresholds(), "logprobs") == []


def test_metrics_follow_their_definitions():
    a = np.array([[3.0, 4.0]])
    b = np.array([[3.0, 0.0]])
    m = parity.compare_tensors(a, b)
    assert m.cosine == pytest.approx(3 / 5)
    assert m.red == pytest.approx(4 / 5)
    assert m.max_abs == 4 and m.mean_abs == 2
    assert m.kl is None  # not a distribution


def test_kl_of_log_probabilities():
    p = np.log(np.array([[0.5, 0.5]]))
    q = np.log(np.array([[0.9, 0.1]]))
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert parity.kl_divergence(p, q) == pytest.approx(expected)


def test_a_corrupted_tensor_breaks_the_gate_on_the_metric_that_moved():
    x = _log_softmax(np.random.default_rng(1).normal(size=(40, 29)))
    y = x.copy()
    y[:, 3] += 8.0  # one token dominates: direction and argmax change
    found = parity.breaches(parity.compare_tensors(x, y), parity.Thresholds(min_argmax_agreement=0.9), "logprobs")
    assert {b.metric for b in found} >= {"red", "argmax_agreement"}
    assert "logprobs" in str(found[0])


def test_pooled_takes_the_worst_case():
    good = parity.TensorMetrics(1.0, 0.0, 0.0, 0.0, None, 1.0, 10)
    bad = parity.TensorMetrics(0.5, 2.0, 1.0, 0.7, None, 0.5, 30)
    worst = parity.pooled([good, bad])
    assert (worst.cosine, worst.max_abs, worst.red, worst.argmax_agreement) == (0.5, 2.0, 0.7, 0.5)
    assert worst.mean_abs == pytest.approx(0.75)


def test_thresholds_from_a_profile_refuse_unknown_keys():
    assert parity.Thresholds.from_mapping({"min_cosine": "0.995"}).min_cosine == 0.995
    with pytest.raises(ValueError, match="min_cosin"):
        parity.Thresholds.from_mapping({"min_cosin": 0.9}, source="jasper.yaml")


def test_error_rate_delta_gate():
    delta = parity.ErrorRateDelta(reference_wer=10.0, candidate_wer=12.0, reference_cer=5.0, candidate_cer=5.2)
    found = parity.error_rate_breaches(delta, parity.Thresholds())
    assert [b.metric for b in found] == ["wer_delta"]
