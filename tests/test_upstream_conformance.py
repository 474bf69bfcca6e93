"""Upstream fidelity: real upstream files build exactly the model they describe, and checkpoints written
by the upstream code reproduce the upstream code's outputs (valid frames, within 1e-4).

The fixtures in tests/fixtures/upstream/ were written by the upstream projects' own code (NVIDIA
DeepLearningExamples Jasper at 15af494, deepspeech.pytorch V3.0 with omegaconf/hydra/Lightning, ModelZoo's
LSTM model_ctc.py), each with its README and generator. The real configs are read from ../shared/data/upstream/.
"""
import importlib.util
import os
import subprocess
import zipfile
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from ascend_asr.families import get_family, model_config_for
from ascend_asr.families.jasper.model import convert_v1_state_dict
from ascend_asr.frontends import JasperFilterbank, JasperFilterbankParams
from ascend_asr.export import export_onnx

from .conftest import CLIPS, REPO

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "upstream")
SHARED_UPSTREAM = os.path.join(REPO, "..", "shared", "data", "upstream")
NVIDIA_YAML = os.path.join(SHARED_UPSTREAM, "nvidia-jasper", "jasper10x5dr_speedp-online_speca.yaml")
CTC_CONFIG = os.path.join(SHARED_UPSTREAM, "modelzoo-lstm", "ctc_config.yaml")
needs_shared = pytest.mark.skipif(not os.path.isfile(NVIDIA_YAML) or not os.path.isfile(CTC_CONFIG),
                                  reason="../shared/data/upstream (the real upstream configs) is not beside the clone")
TOLERANCE = 1e-4


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def key_shapes(path: str) -> dict[str, tuple]:
    """'key [d0,d1]' or 'key<TAB>[d0, d1]<TAB>dtype' lines, as the fixture generators list upstream's state dicts."""
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split()[0], line.split("[", 1)[1].split("]", 0 + 1)[0]
        out[key] = tuple(int(d) for d in shape.replace(" ", "").split(",") if d)
    return out


def meta_model(family, config):
    """The model with parameters on the meta device: exact names and shapes, no memory."""
    with torch.device("meta"):
        return family.build(config)


def onnx_outputs(model, inputs, tmp_path):
    path = export_onnx(model, str(tmp_path / "m.onnx"))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {name: x.numpy() for name, x in zip(model.input_names, inputs)})


# -- Jasper: NVIDIA's YAML ------------------------------------------------------------------------------------

@needs_shared
def test_nvidia_10x5dr_yaml_builds_the_332_6m_model_with_upstreams_state_dict_names():
    family = get_family("jasper")
    upstream = family.read_upstream(NVIDIA_YAML)
    with open(NVIDIA_YAML, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    blocks = raw["jasper"]["encoder"]["blocks"]
    assert blocks[1] is blocks[2]  # the YAML's aliases really are one dict after loading
    model = meta_model(family, upstream.config)
    assert sum(p.numel() for p in model.parameters()) == 332_632_349  # upstream num_weights()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == key_shapes(fixture("nvidia_jasper", "state_dict_keys_10x5dr.txt"))
    # every dense-residual block kept its panes: block 10 sums ten earlier outputs
    assert len(model.encoder.layers[10].res) == 10 and len(model.encoder.layers[1].res) == 1
    assert upstream.vocabulary["blank"] == "last" and len(upstream.vocabulary["labels"]) == 28
    assert upstream.frontend == {"sample_rate": 16000, "window_size": 0.02, "window_stride": 0.01, "n_fft": 512,
                                 "n_mels": 64, "pad_align": 16, "preemph": 0.97, "trim_silence": True}


def test_nvidia_v1_key_names_convert_onto_the_current_ones():
    v1 = key_shapes(fixture("nvidia_jasper", "state_dict_keys_10x5dr_v1.txt"))
    converted = convert_v1_state_dict({k: torch.empty(0) for k in v1})
    assert list(converted) == list(key_shapes(fixture("nvidia_jasper", "state_dict_keys_10x5dr.txt")))


@pytest.mark.parametrize("use_ema,reference", [(True, "log_probs"), (False, "log_probs_from_state_dict")])
def test_nvidia_checkpoint_reproduces_upstream_log_probs(use_ema, reference, tmp_path):
    family = get_family("jasper")
    config = family.read_upstream(fixture("nvidia_jasper", "jasper_small_nvidia.yaml")).config
    model = family.load(fixture("nvidia_jasper", "jasper_small_nvidia.pt"), config, use_ema=use_ema)
    ref = np.load(fixture("nvidia_jasper", "reference_outputs.npz"))
    inputs = (torch.from_numpy(ref["feats"]), torch.from_numpy(ref["feat_lens"]))
    with torch.no_grad():
        log_probs, lens = model(*inputs)
    np.testing.assert_array_equal(lens.numpy(), ref["out_lens"])
    for name, (lp, ln) in {"pytorch": (log_probs.numpy(), lens.numpy()),
                           "onnxruntime": onnx_outputs(model, inputs, tmp_path)}.items():
        np.testing.assert_array_equal(ln, ref["out_lens"], err_msg=name)
        for b, n in enumerate(ref["out_lens"]):
            assert np.abs(lp[b, :n] - ref[reference][b, :n]).max() <= TOLERANCE, name


def test_nvidia_features_match_upstream_filterbank_on_real_speech():
    import soundfile as sf

    ref = np.load(fixture("nvidia_jasper", "features_goforward.npz"))
    samples, rate = sf.read(os.path.join(CLIPS, "goforward.wav"), dtype="float32")
    assert rate == int(ref["sample_rate"]) and len(samples) == int(ref["num_samples"])
    feats, valid = JasperFilterbank(JasperFilterbankParams(pad_align=1))(samples)
    assert valid == int(ref["seq_len"][0])
    expected = ref["features"][0]
    assert feats.shape == expected.shape
    scale = np.abs(expected[:, :valid]).max()
    assert np.abs(feats[:, :valid] - expected[:, :valid]).max() <= TOLERANCE * scale


def test_a_block_key_upstream_refuses_is_refused(tmp_path):
    from ascend_asr.errors import ProfileError

    with open(fixture("nvidia_jasper", "jasper_small_nvidia.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    cfg["jasper"]["encoder"]["blocks"][0] = {**cfg["jasper"]["encoder"]["blocks"][0], "kernel_size_factor": 0.5}
    path = tmp_path / "nemo_like.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ProfileError, match="kernel_size_factor"):
        get_family("jasper").read_upstream(str(path))


# -- DeepSpeech2: a V3.0 Lightning checkpoint -----------------------------------------------------------------

DS2_CKPT = fixture("deepspeech_pytorch_v3", "an4_small_v3.ckpt")


def test_v3_lightning_checkpoint_loads_without_its_packages_and_builds_the_size_it_records(tmp_path):
    """The pickle holds the whole composed hydra config (DeepSpeechTrainerConf, CheckpointHandler, defaultdict,
    __builtin__ names, ...): it loads in a process where omegaconf, hydra and deepspeech_pytorch cannot import."""
    assert all(importlib.util.find_spec(m) is None for m in ("deepspeech_pytorch", "hydra_configs"))
    code = ("import sys\n"
            "sys.modules.update({m: None for m in ('omegaconf', 'hydra', 'deepspeech_pytorch', 'pytorch_lightning')})\n"
            "from ascend_asr.families import get_family\n"
            "f = get_family('deepspeech2')\n"
            f"u = f.read_upstream(None, {DS2_CKPT!r})\n"
            f"m = f.load({DS2_CKPT!r}, u.config)\n"
            "print(u.config.hidden_size, u.config.hidden_layers, u.config.rnn_type, len(u.vocabulary['labels']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "2", "lstm", "29"]


def test_v3_checkpoint_reproduces_upstream_probabilities_on_valid_frames(tmp_path):
    family = get_family("deepspeech2")
    upstream = family.read_upstream(None, DS2_CKPT)
    assert upstream.frontend == {"sample_rate": 16000, "window_size": 0.02, "window_stride": 0.01,
                                 "window": "hamming"}
    assert upstream.vocabulary["labels"][0] == "_" and upstream.vocabulary["blank"] == 0
    model = family.load(DS2_CKPT, upstream.config)
    ref = np.load(fixture("deepspeech_pytorch_v3", "reference_outputs.npz"))
    inputs = (torch.from_numpy(ref["spect"]), torch.from_numpy(ref["lengths"]))
    with torch.no_grad():
        probs = model(*inputs).numpy()
    from ascend_asr.families.deepspeech2.model import output_lengths

    np.testing.assert_array_equal(output_lengths(inputs[1].long()).numpy(), ref["output_lengths"])
    for name, out in {"pytorch": probs, "onnxruntime": onnx_outputs(model, inputs, tmp_path)[0]}.items():
        for b, n in enumerate(ref["output_lengths"]):
            assert np.abs(out[b, :n] - ref["probs"][b, :n]).max() <= TOLERANCE, name


def test_export_command_builds_deepspeech2_from_the_checkpoints_hyper_parameters(tmp_path):
    from ascend_asr.export_cli import main

    out = tmp_path / "ds2.onnx"
    assert main(["--family", "deepspeech2", "--checkpoint", DS2_CKPT, "--output", str(out)]) == 0
    ref = np.load(fixture("deepspeech_pytorch_v3", "reference_outputs.npz"))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"spect": ref["spect"], "transcript": ref["lengths"]})
    for b, n in enumerate(ref["output_lengths"]):
        assert np.abs(probs[b, :n] - ref["probs"][b, :n]).max() <= TOLERANCE


# -- LSTM-CTC: ModelZoo's ctc_config.yaml and training package --------------------------------------------------

@needs_shared
def test_modelzoo_ctc_config_builds_the_deployed_model_with_upstreams_names():
    family = get_family("lstm_ctc")
    upstream = family.read_upstream(CTC_CONFIG)
    model = meta_model(family, upstream.config)
    assert sum(p.numel() for p in model.parameters()) == 17_840_352
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == key_shapes(fixture("modelzoo_lstm", "state_dict_keys_full.txt"))
    # data/units is not beside the shared file: output_class_dim + blank + UNK stands in
    assert upstream.config.num_classes == 41 and upstream.vocabulary is None
    assert upstream.frontend == {"left_context": 0, "right_context": 2, "skip_frames": 2, "pad_align": 2,
                                 "num_mel_bins": 80}


def test_modelzoo_package_and_its_yaml_agree_and_reproduce_upstream_log_probs(tmp_path):
    family = get_family("lstm_ctc")
    package = fixture("modelzoo_lstm", "lstm_ctc_small_package.pth.tar")
    from_yaml = family.read_upstream(fixture("modelzoo_lstm", "ctc_config_small.yaml"), package)
    from_package = family.read_upstream(None, package)
    assert from_yaml.config == from_package.config
    assert from_yaml.vocabulary["labels"][:2] == ["blank", "UNK"] and len(from_yaml.vocabulary["labels"]) == 41
    model = family.load(package, from_package.config)
    ref = np.load(fixture("modelzoo_lstm", "reference_outputs.npz"))
    for feats, expected in ((ref["input"], ref["output"]), (ref["input_odd"], ref["output_odd"])):
        lengths = torch.full((feats.shape[0],), feats.shape[1], dtype=torch.int32)
        inputs = (torch.from_numpy(feats), lengths)
        with torch.no_grad():
            log_probs, out_lens = model(*inputs)
        assert int(out_lens[0]) == expected.shape[0]
        onnx_log_probs = onnx_outputs(model, inputs, tmp_path)[0]
        for out in (log_probs.numpy(), onnx_log_probs):
            assert out.shape == expected.shape and np.abs(out - expected).max() <= TOLERANCE


def test_config_strings_are_parsed_never_evaluated(tmp_path):
    from ascend_asr.errors import ProfileError

    with open(fixture("modelzoo_lstm", "ctc_config_small.yaml"), encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    conf["channel"] = "__import__('os').system('echo pwned')"
    path = tmp_path / "ctc_config.yaml"
    path.write_text(yaml.safe_dump(conf))
    with pytest.raises(ProfileError, match="not a Python literal"):
        get_family("lstm_ctc").read_upstream(str(path))


# -- profile command: a profile from upstream files, used by every command ---------------------------------------

@pytest.mark.parametrize("family,args", [
    ("jasper", ["--config", fixture("nvidia_jasper", "jasper_small_nvidia.yaml")]),
    ("deepspeech2", ["--checkpoint", DS2_CKPT]),
    ("lstm_ctc", ["--config", fixture("modelzoo_lstm", "ctc_config_small.yaml")]),
])
def test_profile_command_writes_a_profile_that_exports_the_upstream_model(family, args, tmp_path):
    from ascend_asr.profile_cli import main
    from ascend_asr.profiles import load_profile

    path = str(tmp_path / f"my_{family}.yaml")
    assert main(["--family", family, *args, "--output", path, "--frames", "128,256"]) == 0
    profile = load_profile(path)
    assert profile.family == family and profile.frames == (128, 256) and profile.name == f"my_{family}"
    fam = get_family(family)
    upstream = fam.read_upstream(*([args[1], None] if args[0] == "--config" else [None, args[1]]))
    assert model_config_for(fam, profile) == upstream.config
    io = fam.io_spec(*fam.model_sizes(upstream.config))  # the I/O of the model the upstream files describe
    assert [t.to_dict() for t in profile.inputs] == list(io.inputs)
    assert [t.to_dict() for t in profile.outputs] == list(io.outputs)


# -- the restricted unpickler against hostile checkpoints -----------------------------------------------------

def _checkpoint_with_pickle(path, data_pkl: bytes) -> str:
    """A torch.save zip archive whose data.pkl is replaced by `data_pkl`."""
    torch.save({}, path)
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info, data in entries:
            dst.writestr(info, data_pkl if info.filename.endswith("/data.pkl") else data)
    return str(path)


def test_a_checkpoint_cannot_set_state_on_an_allowed_global(tmp_path):
    """BUILD on an allowed torch function would change it for the whole process (its __defaults__)."""
    from ascend_asr.errors import CheckpointError
    from ascend_asr.families.deepspeech2.lightning import read_lightning_checkpoint

    key, value = b"__defaults__", b"TAMPERED"
    data = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X" + len(key).to_bytes(4, "little") + key
            + b"X" + len(value).to_bytes(4, "little") + value + b"\x85s\x86b.")
    path = _checkpoint_with_pickle(tmp_path / "tamper.ckpt", data)
    before = torch._utils._rebuild_tensor_v2.__defaults__
    with pytest.raises(CheckpointError, match="BUILD on the global"):
        read_lightning_checkpoint(path)
    assert torch._utils._rebuild_tensor_v2.__defaults__ == before


def test_shared_references_are_converted_once(tmp_path):
    """40 levels of [L, L] is 1.5 kB on disk and 2**40 nodes if every reference were walked again."""
    from ascend_asr.families.deepspeech2.lightning import read_lightning_checkpoint

    nested = []
    for _ in range(40):
        nested = [nested, nested]
    path = tmp_path / "dag.ckpt"
    torch.save({"hyper_parameters": {"labels": nested}}, path)
    labels = read_lightning_checkpoint(str(path))["hyper_parameters"]["labels"]
    assert len(labels) == 2 and labels[0] is labels[1]


def test_nvidia_checkpoint_saved_without_ema_loads_its_state_dict(tmp_path, capsys):
    """NVIDIA's Checkpointer.save writes 'ema_state_dict': None for a run without EMA."""
    family = get_family("jasper")
    config = family.read_upstream(fixture("nvidia_jasper", "jasper_small_nvidia.yaml")).config
    ckpt = torch.load(fixture("nvidia_jasper", "jasper_small_nvidia.pt"), weights_only=False)
    ckpt["ema_state_dict"] = None
    torch.save(ckpt, tmp_path / "no_ema.pt")
    model = family.load(str(tmp_path / "no_ema.pt"), config)
    assert "trained without EMA" in capsys.readouterr().err
    ref = np.load(fixture("nvidia_jasper", "reference_outputs.npz"))
    with torch.no_grad():
        log_probs, _ = model(torch.from_numpy(ref["feats"]), torch.from_numpy(ref["feat_lens"]))
    n = ref["out_lens"][0]
    assert np.abs(log_probs.numpy()[0, :n] - ref["log_probs_from_state_dict"][0, :n]).max() <= TOLERANCE


@pytest.mark.parametrize("content", [[1, 2], {"state_dict": 5}, {"state_dict": {"a": "not a tensor"}}, {"x": 1}])
def test_a_checkpoint_of_another_shape_is_a_clear_error(content, tmp_path):
    from ascend_asr.errors import CheckpointError

    torch.save(content, tmp_path / "odd.pt")
    family = get_family("jasper")
    with pytest.raises(CheckpointError, match="odd.pt"):
        family.load(str(tmp_path / "odd.pt"), family.preset("jasper_small"))


def test_vocab_file_is_found_where_modelzoo_opens_it(tmp_path, monkeypatch, capsys):
    """train_ctc.py opens `vocab_file: 'data/units'` from its 1p/ folder, the parent of conf/."""
    one_p = tmp_path / "1p"
    (one_p / "conf").mkdir(parents=True)
    (one_p / "data").mkdir()
    config = yaml.safe_load(open(fixture("modelzoo_lstm", "ctc_config_small.yaml"), encoding="utf-8"))
    config["vocab_file"] = "data/units"
    (one_p / "conf" / "ctc_config.yaml").write_text(yaml.safe_dump(config))
    (one_p / "data" / "units").write_text("sil\naa\nb\n")
    monkeypatch.chdir(tmp_path)  # not 1p/: found beside conf/ all the same
    upstream = get_family("lstm_ctc").read_upstream(str(one_p / "conf" / "ctc_config.yaml"))
    assert upstream.vocabulary["labels"] == ["blank", "UNK", "sil", "aa", "b"]
    assert upstream.config.num_classes == 5
    (one_p / "data" / "units").unlink()
    upstream = get_family("lstm_ctc").read_upstream(str(one_p / "conf" / "ctc_config.yaml"))
    assert upstream.vocabulary is None and "vocab_file 'data/units' not found" in capsys.readouterr().err


def test_a_profile_whose_vocabulary_does_not_fit_the_model_is_refused(tmp_path):
    from ascend_asr.errors import ProfileError
    from ascend_asr.profile_cli import main

    package = os.path.join(REPO, "ascend_asr", "assets", "models", "lstm_ctc_char.pth.tar")  # 30 classes
    with pytest.raises(ProfileError, match="gives 30 classes.*41 labels"):
        main(["--family", "lstm_ctc", "--checkpoint", package, "--output", str(tmp_path / "p.yaml")])  # TIMIT base
    assert not (tmp_path / "p.yaml").exists()
    assert main(["--family", "lstm_ctc", "--checkpoint", package, "--base", "lstm_ctc_char",
                 "--output", str(tmp_path / "p.yaml")]) == 0


def _nvidia_small(tmp_path, edit) -> str:
    with open(fixture("nvidia_jasper", "jasper_small_nvidia.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    edit(cfg)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _fb(cfg):
    return cfg["input_val"]["filterbank_features"]


@pytest.mark.parametrize("edit,message", [
    (lambda c: _fb(c).pop("window"), "'window': 'hamming'"),  # NVIDIA's default when absent
    (lambda c: _fb(c).update(lowfreq=300), "lowfreq"),
    (lambda c: _fb(c).update(log=False), "'log': False"),
    (lambda c: c["jasper"]["encoder"]["blocks"][0].update(kernel_size=11), "must be a list"),
    (lambda c: c["jasper"]["encoder"]["blocks"].__setitem__(0, "conv"), "block mappings"),
    (lambda c: c["jasper"]["encoder"]["blocks"][0].update(filters="256"), "filters"),
    (lambda c: c["jasper"]["encoder"].update(in_feats="sixty"), "in_feats"),
    (lambda c: c["jasper"]["encoder"].pop("activation"), "activation"),
    (lambda c: c["jasper"]["encoder"].update(use_conv_masks=False), "use_conv_masks"),
    (lambda c: c["jasper"]["encoder"]["blocks"][0].update(dilation=[2]), "stride and dilation"),
    (lambda c: c["jasper"].update(encoder=[1]), "not a mapping"),
])
def test_an_nvidia_yaml_we_cannot_follow_is_refused_naming_the_file(edit, message, tmp_path):
    from ascend_asr.errors import ProfileError

    path = _nvidia_small(tmp_path, edit)
    with pytest.raises(ProfileError) as err:
        get_family("jasper").read_upstream(path)
    assert path in str(err.value) and message in str(err.value)


def test_nvidia_feature_defaults_apply_where_the_yaml_is_silent(tmp_path):
    def edit(cfg):
        for key in ("n_fft", "pad_align"):
            _fb(cfg).pop(key, None)
        _fb(cfg)["preemph"] = None

    frontend = get_family("jasper").read_upstream(_nvidia_small(tmp_path, edit)).frontend
    assert frontend["n_fft"] == 512 and frontend["pad_align"] == 8 and frontend["preemph"] == 0.0


@pytest.mark.parametrize("edit,message", [
    ({"layers": 3}, "one entry per layer"),
    ({"pooling": "[None]"}, "one entry per layer"),
    ({"rnn_hidden_size": "big"}, "rnn_hidden_size"),
    ({"mel": True}, "Kaldi fbank"),
    ({"channel": None}, "one entry per layer"),
    ({"vocab_file": ["x"]}, "not a path"),
    ({"rnn_type": "nn.GRU"}, "only nn.LSTM"),
])
def test_a_ctc_config_we_cannot_follow_is_refused_naming_the_file(edit, message, tmp_path):
    from ascend_asr.errors import ProfileError

    with open(fixture("modelzoo_lstm", "ctc_config_small.yaml"), encoding="utf-8") as f:
        conf = {**yaml.safe_load(f), **edit}
    path = tmp_path / "ctc_config.yaml"
    path.write_text(yaml.safe_dump(conf))
    with pytest.raises(ProfileError) as err:
        get_family("lstm_ctc").read_upstream(str(path))
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("family,model_config", [("deepspeech2", {"hidden_layer": 2}), ("jasper", {"in_feat": 64}),
                                                 ("lstm_ctc", {"hidden_size": "32"})])
def test_a_mistyped_model_config_names_the_family_and_the_fix(family, model_config):
    from ascend_asr.errors import ProfileError

    with pytest.raises(ProfileError, match=f"{family}: model_config .*ascend-asr profile"):
        get_family(family).resolve_config(model_config)
