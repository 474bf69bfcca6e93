"""The shipped reference models: upstream formats, size budget, model cards, and real recognition of
the bundled held-out clips with PyTorch and onnxruntime agreeing transcript by transcript."""
import io
import json
import os

import pytest
import torch

from ascend_asr.bundle import convert
from ascend_asr.demo import DEMO_MANIFEST
from ascend_asr.export import export_onnx
from ascend_asr.infer import InferOptions, infer
from ascend_asr.families import get_family, load_model, reference_checkpoint, registry
from ascend_asr.families.base import REFERENCE_DIR
from ascend_asr.families.deepspeech2.lightning import read_lightning_checkpoint
from ascend_asr.preprocess import preprocess
from ascend_asr.profiles import load_profile
from ascend_asr.recipes.evaluate_reference import torch_transcripts
from ascend_asr.tensor_files import read_jsonl

FAMILY_OF = {f.reference_profile: f.name for f in registry().values() if f.reference_profile}
REFERENCE_CHECKPOINTS = {f.reference_profile: f.reference_checkpoint for f in registry().values()
                         if f.reference_profile}
# Greedy transcripts of the bundled held-out clips by each shipped model, recorded before the families
# became plug-ins (the models/ layout): a refactor must not change a single one.
TRANSCRIPTS = os.path.join(os.path.dirname(__file__), "fixtures", "reference_transcripts.json")
# Character error rate on the nine bundled held-out clips (4 digits of the held-out speaker, 5 unseen
# sentences), greedy decoding; the held-out sets' figures are in each model card.
MAX_CER = {"jasper_small": 0.10, "deepspeech2_small": 0.35, "lstm_ctc_char": 0.15,
           "espnet_conformer_small": 0.25, "paddle_ds2_online_char": 0.20}  # random weights: ~1.0


def test_every_reference_model_ships_with_its_card_within_the_size_budget():
    total = 0
    for profile_name, filename in REFERENCE_CHECKPOINTS.items():
        path = reference_checkpoint(profile_name)
        assert path == os.path.join(REFERENCE_DIR, filename)
        total += os.path.getsize(path)
        card = open(os.path.join(REFERENCE_DIR, f"{profile_name}.md"), encoding="utf-8").read()
        assert f"--family {FAMILY_OF[profile_name]}" in card and "| held-out FSDD speaker's digits | 500 |" in card
    assert total <= 20e6


def test_checkpoints_are_in_the_upstream_formats():
    jasper = torch.load(reference_checkpoint("jasper_small"), weights_only=True)
    assert {"epoch", "step", "state_dict"} <= set(jasper)  # NVIDIA DeepLearningExamples
    assert jasper["state_dict"]["encoder.layers.0.conv.0.weight"].dtype == torch.float16
    lightning = read_lightning_checkpoint(reference_checkpoint("deepspeech2_small"))
    assert lightning["hyper_parameters"]["model_cfg"] == {"rnn_type": "lstm", "hidden_size": 160, "hidden_layers": 2}
    assert lightning["hyper_parameters"]["labels"] == list(load_profile("deepspeech2_small").vocabulary.labels)
    lstm = torch.load(reference_checkpoint("lstm_ctc_char"), weights_only=False)
    assert lstm["rnn_param"]["rnn_type"] is torch.nn.LSTM and lstm["num_class"] == 30
    assert os.path.isfile(load_profile("lstm_ctc_char").frontend["cmvn_stats"])


@pytest.mark.parametrize("profile_name", sorted(REFERENCE_CHECKPOINTS))
def test_reference_model_recognizes_held_out_clips_identically_in_pytorch_and_onnxruntime(profile_name, tmp_path):
    profile = load_profile(profile_name)
    model = load_model(profile, reference_checkpoint(profile_name))
    bundle = convert(profile, export_onnx(model, str(tmp_path / "m.onnx")), str(tmp_path / "b"), batch_sizes=[max(profile.batch_sizes)],
                     build_om=False)[0]
    prep = str(tmp_path / "prep")
    preprocess(DEMO_MANIFEST, prep, profile, progress=False)
    summary = infer(bundle.om_path, prep, str(tmp_path / "r"), InferOptions(backend="onnxruntime", progress=False),
                    out=io.StringIO())
    assert summary["utterances"]["scored"] == 9
    assert summary["cer"] <= MAX_CER[profile_name], summary["cer"]
    ort = {r["id"]: r["hyp"] for r in read_jsonl(str(tmp_path / "r" / "hyps.jsonl"))}
    assert torch_transcripts(model, get_family(FAMILY_OF[profile_name]), profile, prep, bundle) == ort
    with open(TRANSCRIPTS, encoding="utf-8") as f:
        assert ort == json.load(f)[profile_name]
