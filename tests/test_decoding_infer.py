"""infer's decoding options and the hyps.jsonl fields they add (words with times and confidences, N-best)."""
import json
import os

import pytest

from ascend_asr.infer import InferOptions, infer

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ascend_asr", "assets", "models")
LM = os.path.join(MODELS, "jasper_small_words_bigram.arpa")


def rows(folder):
    with open(os.path.join(folder, "hyps.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("decoder,extra", [("greedy", {}), ("beam", {"lm": LM, "nbest": 3, "decode_workers": 1})])
def test_hyps_rows_carry_word_times_confidences_and_nbest(small_bundles, demo_prep, tmp_path, decoder, extra):
    import io

    out = str(tmp_path / decoder)
    summary = infer(small_bundles[1].om_path, demo_prep, out,
                    InferOptions(backend="onnxruntime", decoder=decoder, progress=False, **extra), out=io.StringIO())
    for r in rows(out):
        assert [w["word"] for w in r["words"]] == r["hyp"].split()
        assert all(0 <= w["start"] <= w["end"] <= r["duration"] + 0.1 for w in r["words"])
        assert all(0 < w["confidence"] <= 1 for w in r["words"])
        assert r["confidence"] is None or 0 <= r["confidence"] <= 1
        if decoder == "beam":
            assert 1 <= len(r["nbest"]) <= 3 and r["nbest"][0]["hyp"] == r["hyp"]
        else:
            assert "nbest" not in r
    if decoder == "beam":
        assert summary["decoding"]["lexicon"] == "lm" and summary["decoding"]["nbest"] == 3
