"""Our beam without a lexicon, scored with the LM's unigrams (`--lexicon unigrams`), against pyctcdecode on
real outputs of the three shipped models (tests/fixtures/decoding, made by its make_real_outputs.py)."""
import json
import os

import numpy as np
import pytest

from ascend_asr.profiles import load_profile

pyctcdecode = pytest.importorskip("pyctcdecode")  # a test extra; CI installs it
pytest.importorskip("kenlm")

from ascend_asr.pyctcdecode_agreement import (  # noqa: E402
    CLIP,
    SHARED,
    ctc_log_likelihood,
    our_transcriber,
    pyctcdecode_decoder,
)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "decoding", "real_outputs.npz")
MODELS = os.path.join(os.path.dirname(HERE), "ascend_asr", "assets", "models")


def test_best_hypotheses_agree_with_pyctcdecode_on_at_least_99_percent_of_real_utterances():
    data = np.load(FIXTURE)
    by_model = {}
    for key in data.files:
        by_model.setdefault(key.split("/")[0], []).append(key)
    total, differing = 0, []
    for model, keys in sorted(by_model.items()):
        vocab = load_profile(model).vocabulary
        lm = os.path.join(MODELS, f"{model}_words_bigram.arpa")
        theirs, ours = pyctcdecode_decoder(vocab, lm), our_transcriber(vocab, lm)
        for key in keys:
            lp = np.clip(data[key].astype(np.float64), CLIP, 0.0)
            a = theirs.decode_beams(lp, beam_width=SHARED["beam_width"], beam_prune_logp=SHARED["beam_prune_logp"],
                                    token_min_logp=SHARED["token_min_logp"])[0][0]
            b = " ".join(ours(lp, None).text.split())
            total += 1
            if a != b:
                differing.append((key, a, b))
    assert total == 240
    assert (total - len(differing)) / total >= 0.99, differing


def test_ctc_forward_sums_every_alignment():
    """The scorer that explains disagreements: P("a") over 2 frames = p(a)p(a) + p(a)p(-) + p(-)p(a)."""
    p = np.array([[0.6, 0.4], [0.3, 0.7]])  # columns: blank, a
    expected = 0.4 * 0.7 + 0.4 * 0.3 + 0.6 * 0.7
    assert np.isclose(ctc_log_likelihood(np.log(p), [1], 0), np.log(expected))


def test_references_of_the_fixture_are_recorded_beside_it():
    refs = json.load(open(FIXTURE.replace(".npz", ".json")))
    assert set(refs) == set(np.load(FIXTURE).files)
