"""The espnet family: registry and profiles, config.yaml and packed-model errors, batch invariance of every
encoder form, and the graphs for onnxruntime (fused, gated) and for ATC (standard ops, the fake ATC)."""
import dataclasses
import os
import zipfile

import numpy as np
import onnx
import pytest
import torch
import yaml

from ascend_asr.errors import CheckpointError, ProfileError
from ascend_asr.export import export_onnx
from ascend_asr.families import get_family, profile_config
from ascend_asr.families.espnet.config import EspnetConfig
from ascend_asr.families.espnet.fusion import fuse_for_cpu, graph_for_atc, parity_inputs, run_graph
from ascend_asr.frontends import build_frontend
from ascend_asr.profiles import load_profile

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "upstream", "espnet_packed")
LATEST = os.path.join(FIXTURES, "conformer_latest.zip")


def tiny(**changes) -> EspnetConfig:
    base = dict(input_size=20, vocab_size=11, output_size=16, attention_heads=2, linear_units=24, num_blocks=2,
                cnn_module_kernel=5)
    return EspnetConfig(**{**base, **changes})


def randomized(config, seed=0):
    """A model with random weights and BatchNorm statistics, so every path carries signal."""
    torch.manual_seed(seed)
    model = get_family("espnet").build(config)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
        for name in ("pos_bias_u", "pos_bias_v"):
            if hasattr(module, name):
                torch.nn.init.normal_(getattr(module, name), std=0.5)
    if getattr(model, "normalize", None) is not None and hasattr(model.normalize, "mean"):
        model.normalize.mean.uniform_(-1, 1)
        model.normalize.std.uniform_(0.5, 2)
    return model.train(False)


def test_family_profiles_and_frontend_come_from_the_registry():
    family = get_family("espnet")
    for name in ("espnet_conformer", "espnet_transformer", "espnet_conformer_small"):
        profile = load_profile(name)
        assert profile_config(profile)[0] is family
    assert len(load_profile("espnet_conformer").frames) == 15  # the planner's gears
    frontend = build_frontend({"name": "espnet_default", "fft_length": 400, "win_length": 400, "hop_length": 160,
                               "n_mels": 20})
    assert frontend.feature_size == 20 and frontend.num_frames(16000) == 101  # ESPnet's centred STFT count
    with pytest.raises(ProfileError, match="hop_length: expected a whole number"):
        build_frontend({"name": "espnet_default", "hop_length": 160.5})
    for preset in family.presets:
        config = family.preset(preset)
        assert family.config_from_dict(family.config_to_dict(config)) == config


@pytest.mark.parametrize("changes", [
    {},                                                                              # rel_pos latest, macaron
    {"rel_pos_type": "legacy", "zero_triu": True, "input_layer": "conv2d6"},
    {"rel_pos_type": "legacy", "normalize_before": False, "macaron_style": False, "concat_after": True},
    {"pos_enc_layer_type": "abs_pos", "selfattention_layer_type": "selfattn", "use_cnn_module": False,
     "normalize": "utterance_mvn", "norm_vars": True},
    {"encoder": "transformer", "input_layer": "conv2d8", "pos_enc_layer_type": "abs_pos", "normalize": None},
])
def test_a_padded_batch_gives_each_utterance_its_result_alone(changes):
    model = randomized(tiny(**changes))
    lengths = [61, 23, 40]
    rng = np.random.default_rng(1)
    feats = torch.from_numpy(rng.standard_normal((3, 75, 20)).astype(np.float32))
    with torch.no_grad():
        batch, batch_lens = model(feats, torch.tensor(lengths, dtype=torch.int32))
        for i, n in enumerate(lengths):
            alone, alone_len = model(feats[i:i + 1, :n], torch.tensor([n], dtype=torch.int32))
            assert int(batch_lens[i]) == int(alone_len[0]) == alone.shape[1]
            assert (batch[i, :alone.shape[1]] - alone[0]).abs().max() <= 1e-4, (changes, i)


def test_no_length_cap_below_the_largest_gear(tmp_path):
    """Positions are computed from the length: a graph traced at 64 frames runs at 3501 (the largest gear)
    and beyond ESPnet's 5000-row table, matching PyTorch."""
    model = randomized(tiny(input_size=80, rel_pos_type="legacy", max_pos_emb_len=200))
    path = export_onnx(model, str(tmp_path / "cap.onnx"), example_frames=64)
    feats = np.random.default_rng(2).standard_normal((1, 3501, 80)).astype(np.float32)
    lengths = np.array([3501], np.int32)
    out, out_len = run_graph(path, {"feats": feats, "feats_lengths": lengths})
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(feats), torch.from_numpy(lengths))
    assert int(out_len[0]) == 874 and np.abs(out - expected.numpy()).max() <= 1e-3


def test_config_yaml_that_espnet_would_build_differently_is_refused(tmp_path):
    with zipfile.ZipFile(LATEST) as archive:
        config = yaml.safe_load(archive.read("exp/asr_train_conformer_latest/config.yaml"))
    family = get_family("espnet")
    for key, value, message in (("encoder", "branchformer", "encoder 'branchformer' is not implemented"),
                                ("encoder_conf", {**config["encoder_conf"], "interctc_use_conditioning": True},
                                 "interctc_use_conditioning"),
                                ("encoder_conf", {**config["encoder_conf"], "positionwise_layer_type": "conv1d"},
                                 "positionwise_layer_type"),
                                ("frontend", "s3prl", "only ESPnet's 'default'"),
                                ("encoder_conf", {**config["encoder_conf"], "rel_pos_type": "latest",
                                                  "pos_enc_layer_type": "legacy_rel_pos"}, "not a combination")):
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({**config, key: value}))
        (tmp_path / "model.pth").write_bytes(b"")
        with pytest.raises(ProfileError, match=message) as info:
            family.read_upstream(str(path))
        assert str(path) in str(info.value)


def test_a_pack_without_meta_or_with_another_models_weights_is_refused(tmp_path):
    family = get_family("espnet")
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("exp/config.yaml", "encoder: conformer\n")
    with pytest.raises(ProfileError, match="no meta.yaml"):
        family.read_upstream(str(bare))
    config = family.read_upstream(LATEST).config
    with pytest.raises(CheckpointError, match="shape mismatches"):
        family.load(LATEST, dataclasses.replace(config, linear_units=32))
    # a profile frontend that computes other features than the model's own mel matrix
    frontend = dict(family.read_upstream(LATEST).frontend, fmax=4000.0)
    with pytest.raises(CheckpointError, match="melmat"):
        family.load(LATEST, config, frontend=frontend)


def test_fused_cpu_graph_passes_its_gate_and_the_atc_graph_is_standard_ops_only(tmp_path, monkeypatch):
    from ascend_asr.bundle import convert

    from .npu_doubles import control

    profile = load_profile("espnet_conformer_small")
    family, config = profile_config(profile)
    model = randomized(config)
    plain = export_onnx(model, str(tmp_path / "plain.onnx"), example_frames=64)
    reports = fuse_for_cpu(plain, str(tmp_path / "fused.onnx"), config)
    assert [r.name for r in reports] == ["layer_norm", "skip_layer_norm", "attention"]
    assert reports[0].kept and reports[0].fused_ops["LayerNormalization"] > 0 and not reports[0].breaches
    inputs = parity_inputs(config.input_size)
    fused_out = run_graph(str(tmp_path / "fused.onnx"), inputs)
    plain_out = run_graph(plain, inputs)
    assert np.array_equal(fused_out[1], plain_out[1])
    atc_reports = graph_for_atc(plain, str(tmp_path / "atc.onnx"), config)
    assert atc_reports[-1].kept and not any(r.kept for r in atc_reports[:-1])
    atc_graph = onnx.load(str(tmp_path / "atc.onnx"))
    assert {n.domain for n in atc_graph.graph.node} <= {"", "ai.onnx"}
    control.activate(monkeypatch, soc="Ascend310P3")
    try:
        bundles = convert(profile, str(tmp_path / "atc.onnx"), str(tmp_path / "bundles"), batch_sizes=[1])
    finally:
        control.purge()
    assert os.path.isfile(bundles[0].om_path)


def test_the_recipe_writes_espnets_packed_layout_and_reads_it_back(tmp_path):
    """family.save (the training recipe's writer) gives the zip layout espnet2.bin.pack writes; reading it back
    gives the same model (float16 storage) and the same profile vocabulary and frontend."""
    profile = load_profile("espnet_conformer_small")
    family, config = profile_config(profile)
    model = randomized(config)
    path = str(tmp_path / "ref.zip")
    family.save(model, profile, path, {"epoch": 3, "step": 30})
    with zipfile.ZipFile(path) as archive:
        meta = yaml.safe_load(archive.read("meta.yaml"))
        written = yaml.safe_load(archive.read(meta["yaml_files"]["asr_train_config"]))
        assert meta["files"]["asr_model_file"] in archive.namelist()
    assert written["token_list"][:3] == ["<blank>", "<unk>", "<space>"] and written["decoder"] is None
    assert written["model_conf"]["ctc_weight"] == 1.0 and written["frontend_conf"]["fmin"] == 0
    upstream = family.read_upstream(path)
    assert upstream.config == config
    assert upstream.vocabulary["labels"] == list(profile.vocabulary.labels)
    assert {**upstream.frontend, "name": "espnet_default"} == dict(profile.frontend)
    loaded = family.load(path, upstream.config)
    x, lengths = torch.randn(2, 90, 80), torch.tensor([90, 61], dtype=torch.int32)
    with torch.no_grad():
        assert (loaded(x, lengths)[0] - model(x, lengths)[0]).abs().max() <= 5e-2  # float16 weights
