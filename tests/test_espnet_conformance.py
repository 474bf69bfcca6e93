"""ESPnet2 packed models, as ESPnet writes them, reproduce ESPnet's own outputs (valid frames, within 1e-4).

tests/fixtures/upstream/espnet_packed/ holds three models trained and packed by espnet 202511's own
asr_train / pack (README.md there says how): a Conformer with rel_pos latest, macaron, conv2d and
global_mvn (char tokens); a Conformer with rel_pos legacy, post-LayerNorm, conv2d6 and utterance_mvn; a
Transformer with conv2d8, n_fft 400 and BPE tokens. Their references come from ESPnet's modules run on each
utterance alone (ESPnet's inference is batch 1) and from ESPnet's own padded-batch path.
"""
import json
import os

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from ascend_asr.export import export_onnx
from ascend_asr.families import get_family
from ascend_asr.families.espnet.frontend import EspnetDefaultFrontend, EspnetFrontendParams
from ascend_asr.families.espnet.packed import read_packed
from ascend_asr.families.espnet.tokens import tokens_to_text

from .conftest import CLIPS

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "upstream", "espnet_packed")
MODELS = ("conformer_latest", "conformer_legacy", "transformer")
UTTERANCES = ("tidigits-2934z", "librivox-0880", "goforward", "cards-001")
TOLERANCE = 1e-4
SUMMARY = json.load(open(os.path.join(FIXTURES, "summary.json"), encoding="utf-8"))


def packed(name):
    return os.path.join(FIXTURES, f"{name}.zip")


def reference(name):
    return np.load(os.path.join(FIXTURES, f"{name}_reference.npz"))


def padded_batch(ref, extra=37):
    """ESPnet's per-utterance features, zero-padded to the longest plus `extra` frames."""
    feats = [ref[f"feats_{u}"] for u in range(len(UTTERANCES))]
    batch = np.zeros((len(feats), max(len(f) for f in feats) + extra, feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        batch[i, :len(f)] = f
    return batch, np.array([len(f) for f in feats], np.int32)


@pytest.fixture(scope="module", params=MODELS)
def loaded(request):
    family = get_family("espnet")
    upstream = family.read_upstream(packed(request.param))
    return request.param, upstream, family.load(packed(request.param), upstream.config)


def test_config_yaml_builds_the_encoder_espnet_built():
    family = get_family("espnet")
    latest, legacy, transformer = (family.read_upstream(packed(n)).config for n in MODELS)
    assert (latest.encoder, latest.attention_kind(), latest.input_layer, latest.macaron_style,
            latest.normalize_before, latest.normalize) == ("conformer", "rel_latest", "conv2d", True, True, "global_mvn")
    assert (legacy.attention_kind(), legacy.input_layer, legacy.normalize_before, legacy.normalize,
            legacy.norm_vars) == ("rel_legacy", "conv2d6", False, "utterance_mvn", False)
    assert (transformer.encoder, transformer.input_layer, transformer.activation_type) == \
        ("transformer", "conv2d8", "relu")
    for config in (latest, legacy, transformer):
        with torch.device("meta"):
            model = family.build(config)
        # parameters ESPnet saved minus its attention decoder and mel matrix, exactly
        assert sum(p.numel() for p in model.parameters()) > 0


def test_frontend_features_match_espnets_default_frontend():
    for name in MODELS:
        upstream = get_family("espnet").read_upstream(packed(name))
        frontend = EspnetDefaultFrontend(EspnetFrontendParams(**upstream.frontend))
        ref = reference(name)
        for u, stem in enumerate(UTTERANCES):
            samples, rate = sf.read(os.path.join(CLIPS, stem + ".wav"), dtype="float32")
            feats, frames = frontend(samples)
            expected = ref[f"feats_{u}"]
            assert frames == int(ref[f"feat_len_{u}"]) == expected.shape[0], (name, stem)
            assert np.abs(feats.T - expected).max() <= TOLERANCE * np.abs(expected).max(), (name, stem)


def test_padded_batch_gives_espnets_outputs_for_every_utterance(loaded, tmp_path):
    """Normalised features, encoder outputs and lengths, CTC log-probs: PyTorch and ONNX on one padded batch."""
    name, upstream, model = loaded
    ref = reference(name)
    batch, lengths = padded_batch(ref)
    feats, lens = torch.from_numpy(batch), torch.from_numpy(lengths)
    with torch.no_grad():
        keep = (torch.arange(feats.shape[1])[None] < lens[:, None].long()).unsqueeze(2).float()
        normalized = model.normalize(feats, keep)
        encoder_out, encoder_lens = model.encode(feats, lens)
        log_probs, out_lens = model(feats, lens)
    session = ort.InferenceSession(export_onnx(model, str(tmp_path / f"{name}.onnx"), example_frames=64),
                                   providers=["CPUExecutionProvider"])
    onnx_log_probs, onnx_lens = session.run(None, {"feats": batch, "feats_lengths": lengths})
    for u in range(len(UTTERANCES)):
        n, frames = int(ref[f"encoder_out_len_{u}"]), int(lengths[u])
        assert int(encoder_lens[u]) == int(out_lens[u]) == int(onnx_lens[u]) == n
        assert np.abs(normalized[u, :frames].numpy() - ref[f"normalized_{u}"]).max() <= TOLERANCE
        assert np.abs(encoder_out[u, :n].numpy() - ref[f"encoder_out_{u}"]).max() <= TOLERANCE
        assert np.abs(log_probs[u, :n].numpy() - ref[f"log_probs_{u}"]).max() <= TOLERANCE
        assert np.abs(onnx_log_probs[u, :n] - ref[f"log_probs_{u}"]).max() <= TOLERANCE


def test_greedy_tokens_and_text_are_espnets(loaded):
    name, upstream, model = loaded
    ref = reference(name)
    summary = next(m for m in SUMMARY["models"] if m["model"] == name)
    token_list = read_token_list(name)
    batch, lengths = padded_batch(ref)
    with torch.no_grad():
        log_probs, out_lens = model(torch.from_numpy(batch), torch.from_numpy(lengths))
    for u, stem in enumerate(UTTERANCES):
        best = log_probs[u, :int(out_lens[u])].argmax(-1).tolist()
        ids = [i for k, i in enumerate(best) if i != 0 and (k == 0 or best[k - 1] != i)]
        assert ids == ref[f"greedy_ids_{u}"].tolist()
        assert tokens_to_text([token_list[i] for i in ids], summary["token_type"]) == summary["utterances"][stem]["greedy_text"]


def read_token_list(name):
    return read_packed(packed(name)).config["token_list"]


def test_padding_never_counts_as_speech_unlike_espnets_batch_path(loaded):
    """ESPnet's padded batch counts up to one padded frame per subsampling stage as valid and its Conformer
    convolution reads the padding, so a shorter utterance changes; espnet_onnx derives the length from the
    tensor, so 100 appended zero frames change an utterance. Here lengths go in and masks hold everywhere."""
    name, upstream, model = loaded
    ref = reference(name)
    summary = next(m for m in SUMMARY["models"] if m["model"] == name)
    assert summary["batch_encoder_out_lens"] != summary["alone_encoder_out_lens"]  # upstream's batch path
    assert max(summary["batch_vs_alone_max_abs_diff"]) > 1e-2
    longest = int(np.argmax(summary["alone_encoder_out_lens"]))  # no padding: ESPnet's batch equals alone
    n = summary["alone_encoder_out_lens"][longest]
    with torch.no_grad():
        feats = torch.from_numpy(ref["feats_3"][None])
        alone = model(feats, torch.tensor([feats.shape[1]], dtype=torch.int32))[0]
        appended = torch.cat([feats, torch.zeros(1, 100, feats.shape[2])], dim=1)
        padded = model(appended, torch.tensor([feats.shape[1]], dtype=torch.int32))[0]
        as_speech = model(appended, torch.tensor([appended.shape[1]], dtype=torch.int32))[0]
        batch, lengths = padded_batch(ref)
        encoder_out, _ = model.encode(torch.from_numpy(batch), torch.from_numpy(lengths))
    valid = alone.shape[1]
    assert (padded[:, :valid] - alone).abs().max() <= 1e-5
    assert (as_speech[:, :valid] - alone).abs().max() > 1e-3  # what taking padding as speech would do
    assert np.abs(encoder_out[longest, :n].numpy() - ref["batch_encoder_out"][longest, :n]).max() <= TOLERANCE


def test_the_shipped_reference_gives_what_espnet_gives_on_it():
    """ESPnet 202511 rebuilt ascend_asr/assets/models/espnet_conformer_small.zip from the pack alone
    (make_reference_check.py): no missing or unexpected keys, and its features, log-probs and texts are ours."""
    check = json.load(open(os.path.join(FIXTURES, "reference_check.json"), encoding="utf-8"))
    assert check["missing_keys"] == [] and check["unexpected_keys"] == []
    ref = np.load(os.path.join(FIXTURES, "reference_check.npz"))
    family = get_family("espnet")
    path = family.reference_checkpoint_path()
    upstream = family.read_upstream(path)
    model = family.load(path, upstream.config)
    frontend = EspnetDefaultFrontend(EspnetFrontendParams(**upstream.frontend))
    feats = []
    for u, stem in enumerate(UTTERANCES):
        samples, _ = sf.read(os.path.join(CLIPS, stem + ".wav"), dtype="float32")
        f, _ = frontend(samples)
        assert np.abs(f.T - ref[f"feats_{u}"]).max() <= TOLERANCE * np.abs(ref[f"feats_{u}"]).max()
        feats.append(ref[f"feats_{u}"])
    batch = np.zeros((len(feats), max(len(f) for f in feats), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        batch[i, :len(f)] = f
    with torch.no_grad():
        log_probs, lens = model(torch.from_numpy(batch), torch.tensor([len(f) for f in feats], dtype=torch.int32))
    token_list = read_packed(path).config["token_list"]
    for u, stem in enumerate(UTTERANCES):
        n = int(lens[u])
        assert n == ref[f"log_probs_{u}"].shape[0]
        assert np.abs(log_probs[u, :n].numpy() - ref[f"log_probs_{u}"]).max() <= TOLERANCE
        best = log_probs[u, :n].argmax(-1).tolist()
        ids = [i for k, i in enumerate(best) if i != 0 and (k == 0 or best[k - 1] != i)]
        assert tokens_to_text([token_list[i] for i in ids], "char") == check["texts"][stem]
