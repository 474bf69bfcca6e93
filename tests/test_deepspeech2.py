"""DeepSpeech2: spectrogram, model vs upstream semantics, export with real lengths, Lightning checkpoints, AN4."""
import json
import os
import sys
import types
from enum import Enum

import numpy as np
import onnxruntime as ort
import pytest
import scipy.signal
import torch

from ascend_asr.audio import load_audio
from ascend_asr.datasets import Utterance, read_manifest
from ascend_asr.decoding import greedy_ctc
from ascend_asr.errors import CheckpointError
from ascend_asr.export import export_onnx
from ascend_asr.families import get_family
from ascend_asr.families.deepspeech2.model import output_lengths
from ascend_asr.profiles import load_profile
from ascend_asr.spectrogram import DeepSpeechSpectrogram
from ascend_asr.text import normalize_transcript

DS2 = get_family("deepspeech2")

from .conftest import CLIPS, CLIPS_MANIFEST, perturb_batchnorm

REAL_CLIPS = ("goforward.wav", "3_jackson_0.wav", "cards-001.wav", "tidigits-2934z.wav")


def reference_spectrogram(y: np.ndarray) -> np.ndarray:
    """§B.1 written out frame by frame: periodic Hamming 320, hop 160, centred with reflect padding,
    |rfft|, log1p, (x - mean) / unbiased std over the whole matrix."""
    window = scipy.signal.get_window("hamming", 320, fftbins=True)
    padded = np.pad(y.astype(np.float64), 160, mode="reflect")
    frames = [padded[i * 160: i * 160 + 320] for i in range(1 + len(y) // 160)]
    spect = np.log1p(np.abs(np.stack([np.fft.rfft(f * window) for f in frames], axis=1)))
    return (spect - spect.mean()) / spect.std(ddof=1)


@pytest.mark.parametrize("clip", REAL_CLIPS)
def test_spectrogram_matches_the_reference_definition(clip):
    y = load_audio(os.path.join(CLIPS, clip), 16000)
    ours, frames = DeepSpeechSpectrogram()(y)
    ref = reference_spectrogram(y)
    assert ours.shape == ref.shape == (161, 1 + len(y) // 160) and frames == ref.shape[1]
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref))


class UpstreamDeepSpeech(torch.nn.Module):
    """deepspeech.pytorch V3.0's forward on our modules' weights: loop mask, packed LSTMs."""

    def __init__(self, ours):
        super().__init__()
        self.ours = ours

    def forward(self, x, lengths):
        out_lengths = output_lengths(lengths.long())
        for module in self.ours.conv.seq_module:
            x = module(x)
            mask = torch.zeros(x.size(), dtype=torch.bool)
            for i, length in enumerate(out_lengths):
                length = int(length.item())
                if mask[i].size(2) - length > 0:
                    mask[i].narrow(2, length, mask[i].size(2) - length).fill_(1)
            x = x.masked_fill(mask, 0)
        b, c, f, t = x.shape
        x = x.view(b, c * f, t).transpose(1, 2).transpose(0, 1).contiguous()
        for batch_rnn in self.ours.rnns:
            if batch_rnn.batch_norm is not None:
                x = batch_rnn.batch_norm(x)
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, out_lengths, enforce_sorted=False)
            x, _ = batch_rnn.rnn(packed)
            x, _ = torch.nn.utils.rnn.pad_packed_sequence(x, total_length=t)
            x = x.view(x.size(0), x.size(1), 2, -1).sum(2)
        return torch.softmax(self.ours.fc(x).transpose(0, 1), dim=-1)


@pytest.fixture(scope="module")
def ds2():
    torch.manual_seed(0)
    return perturb_batchnorm(DS2.build(DS2.preset("deepspeech2_small")))


def spect_batch(lengths, frames):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(len(lengths), 1, 161, frames, generator=g)
    for i, n in enumerate(lengths):
        x[i, :, :, n:] = 0  # padding, as the collate writes it
    return x, torch.tensor(lengths, dtype=torch.int32)


def test_model_equals_upstream_semantics_on_a_batch_of_very_different_lengths(ds2):
    x, lengths = spect_batch([600, 97], 600)
    with torch.no_grad():
        ours, upstream = ds2(x, lengths), UpstreamDeepSpeech(ds2)(x, lengths)
    assert ours.shape == (2, 300, 29)
    for i, n in enumerate(output_lengths(lengths.long()).tolist()):
        torch.testing.assert_close(ours[i, :n], upstream[i, :n], atol=1e-6, rtol=1e-5)


def test_export_keeps_lengths_real_and_matches_pytorch(ds2, tmp_path):
    path = export_onnx(ds2, str(tmp_path / "ds2.onnx"))
    session = ort.InferenceSession(path)
    assert [i.name for i in session.get_inputs()] == ["spect", "transcript"]
    assert [o.name for o in session.get_outputs()] == ["out"]
    x, lengths = spect_batch([621, 97, 300], 621)  # 621 is odd: out = 311, not ModelZoo's int(621 / 2)
    with torch.no_grad():
        expected = ds2(x, lengths).numpy()
    got = session.run(None, {"spect": x.numpy(), "transcript": lengths.numpy()})[0]
    assert got.shape == (3, 311, 29) and np.max(np.abs(got - expected)) <= 1e-4
    for i, n in enumerate(lengths.tolist()):  # each utterance alone, at its own length
        alone = session.run(None, {"spect": x[i:i + 1, :, :, :n].numpy(), "transcript": lengths[i:i + 1].numpy()})[0]
        out = (n - 1) // 2 + 1
        assert np.max(np.abs(alone[0] - got[i, :out])) <= 1e-4
        assert greedy_ctc(alone[0], out, 0) == greedy_ctc(got[i], out, 0)


def test_output_frames_rule_of_the_profile():
    profile = load_profile("deepspeech2")
    assert [profile.output_frames(t) for t in (621, 620, 1)] == [311, 310, 1]
    assert output_lengths(torch.tensor([621, 620, 1])).tolist() == [311, 310, 1]


# -- checkpoints -----------------------------------------------------------------------------------
def fake_package(monkeypatch, dotted: str, **members) -> types.ModuleType:
    """A module (and its parents) that exists only while the checkpoint is written."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    module = sys.modules[dotted]
    for key, value in members.items():
        value.__module__ = dotted
        setattr(module, key, value)
    return module


def lightning_checkpoint(monkeypatch, path, state_dict, labels):
    """A checkpoint as PyTorch Lightning writes one for deepspeech.pytorch V3.0, with omegaconf,
    hydra and deepspeech_pytorch objects inside; none of those packages exists when it is read."""
    class StatefulObject:
        def __init__(self, **state):
            self.__dict__.update(state)

        def __getstate__(self):
            return dict(self.__dict__)

    def cls(name):
        return type(name, (StatefulObject,), {})

    DictConfig, ListConfig, ContainerMetadata, Metadata = (cls(n) for n in ("DictConfig", "ListConfig",
                                                                          "ContainerMetadata", "Metadata"))
    AnyNode, StringNode, IntegerNode, FloatNode, BooleanNode, EnumNode = (
        cls(n) for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode"))
    fake_package(monkeypatch, "omegaconf.dictconfig", DictConfig=DictConfig)
    fake_package(monkeypatch, "omegaconf.listconfig", ListConfig=ListConfig)
    fake_package(monkeypatch, "omegaconf.base", ContainerMetadata=ContainerMetadata, Metadata=Metadata)
    fake_package(monkeypatch, "omegaconf.nodes", AnyNode=AnyNode, StringNode=StringNode, IntegerNode=IntegerNode,
                 FloatNode=FloatNode, BooleanNode=BooleanNode, EnumNode=EnumNode)
    RNNType = Enum("RNNType", {"lstm": "lstm", "rnn": "rnn", "gru": "gru"})
    SpectrogramWindow = Enum("SpectrogramWindow", {"hamming": "hamming", "hann": "hann"})
    fake_package(monkeypatch, "deepspeech_pytorch.enums", RNNType=RNNType, SpectrogramWindow=SpectrogramWindow)
    BiDirectionalConfig, SpectConfig, AdamConfig = cls("BiDirectionalConfig"), cls("SpectConfig"), cls("AdamConfig")
    fake_package(monkeypatch, "deepspeech_pytorch.configs.train_config", BiDirectionalConfig=BiDirectionalConfig,
                 SpectConfig=SpectConfig, AdamConfig=AdamConfig)
    ModelCheckpointConf = cls("ModelCheckpointConf")
    fake_package(monkeypatch, "hydra_configs.pytorch_lightning.callbacks", ModelCheckpointConf=ModelCheckpointConf)

    def node(kind, value):
        return kind(_val=value, _metadata=Metadata(ref_type=typing_any(), object_type=None, optional=True,
                                                   key=None, flags={}), _parent=None)

    def typing_any():
        import typing
        return typing.Any

    def dict_config(content, object_type):
        return DictConfig(_metadata=ContainerMetadata(ref_type=typing_any(), object_type=object_type, optional=True,
                                                      key=None, flags={}, key_type=typing_any(),
                                                      element_type=typing_any()),
                          _parent=None, _content=content, _flags_cache=None)

    model_cfg = dict_config({"rnn_type": node(EnumNode, RNNType.lstm), "hidden_size": node(IntegerNode, 64),
                             "hidden_layers": node(IntegerNode, 2)}, BiDirectionalConfig)
    spect_cfg = dict_config({"sample_rate": node(IntegerNode, 16000), "window_size": node(FloatNode, 0.02),
                             "window_stride": node(FloatNode, 0.01),
                             "window": node(EnumNode, SpectrogramWindow.hamming)}, SpectConfig)
    hparams = dict_config({
        "labels": ListConfig(_content=[node(StringNode, c) for c in labels], _metadata=None, _parent=None),
        "model_cfg": model_cfg, "precision": node(IntegerNode, 32),
        "optim_cfg": dict_config({"learning_rate": node(FloatNode, 1.5e-4)}, AdamConfig),
        "spect_cfg": spect_cfg}, None)
    torch.save({"epoch": 69, "global_step": 4000, "pytorch-lightning_version": "1.2.8",
                "state_dict": state_dict, "hparams_name": "kwargs", "hyper_parameters": hparams,
                "callbacks": {ModelCheckpointConf: {"best_model_score": torch.tensor(9.57)}},
                "rnn_class": torch.nn.LSTM, "optimizer_states": [], "lr_schedulers": []}, path)


def test_lightning_checkpoint_loads_without_omegaconf_hydra_or_deepspeech_pytorch(ds2, tmp_path):
    labels = load_profile("deepspeech2").vocabulary.labels
    path = str(tmp_path / "an4_pretrained_v3.ckpt")
    with pytest.MonkeyPatch.context() as mp:
        lightning_checkpoint(mp, path, ds2.state_dict(), labels)
    assert "omegaconf" not in sys.modules and "deepspeech_pytorch" not in sys.modules
    model = DS2.load(path, DS2.preset("deepspeech2_small"))
    x, lengths = spect_batch([300, 120], 300)
    with torch.no_grad():
        torch.testing.assert_close(model(x, lengths), ds2(x, lengths))
    from ascend_asr.families.deepspeech2.lightning import read_lightning_checkpoint
    hparams = read_lightning_checkpoint(path)["hyper_parameters"]
    assert hparams["labels"] == list(labels)
    assert hparams["model_cfg"] == {"rnn_type": "lstm", "hidden_size": 64, "hidden_layers": 2}
    assert hparams["spect_cfg"]["window"] == "hamming"
    assert "omegaconf" not in sys.modules  # still never imported


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_checkpoint_naming_any_other_global_is_refused(tmp_path):
    path = str(tmp_path / "evil.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": Exploit()}, path)
    with pytest.raises(CheckpointError, match="posix.system|os.system"):
        DS2.load(path, DS2.preset("deepspeech2_small"))


def test_a_wrong_key_fails_with_the_key_list(ds2, tmp_path):
    state = dict(ds2.state_dict())
    state["rnns.0.rnn.weight_ih_l0_rev"] = state.pop("rnns.0.rnn.weight_ih_l0_reverse")
    path = str(tmp_path / "renamed.ckpt")
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as err:
        DS2.load(path, DS2.preset("deepspeech2_small"))
    assert "missing keys (1): rnns.0.rnn.weight_ih_l0_reverse" in str(err.value)
    assert "unexpected keys (1): rnns.0.rnn.weight_ih_l0_rev" in str(err.value)


# -- AN4 ------------------------------------------------------------------------------------------
def test_an4_manifest_and_upper_case_transcripts(tmp_path):
    root = tmp_path / "data"
    (root / "an4" / "wav").mkdir(parents=True)
    (root / "an4" / "txt").mkdir(parents=True)
    for name, text in (("cen1-fash-b", "RUBOUT G M E F THREE NINE"), ("cen2-fash-b", "ERASE C Q Q F SEVEN")):
        os.symlink(os.path.join(CLIPS, "goforward.wav"), root / "an4" / "wav" / f"{name}.wav")
        (root / "an4" / "txt" / f"{name}.txt").write_text(text + "\n")
    manifest = tmp_path / "an4_test_manifest.json"
    manifest.write_text(json.dumps({"root_path": str(root), "samples": [
        {"wav_path": "an4/wav/cen1-fash-b.wav", "transcript_path": "an4/txt/cen1-fash-b.txt"},
        {"wav_path": "an4/wav/cen2-fash-b.wav", "transcript_path": "an4/txt/missing.txt"}]}))
    entries = list(read_manifest(str(manifest)))
    assert isinstance(entries[0], Utterance) and entries[0].text == "RUBOUT G M E F THREE NINE"
    assert entries[0].audio_path == str(root / "an4" / "wav" / "cen1-fash-b.wav")
    assert "missing.txt" in entries[1].message
    labels = load_profile("deepspeech2").vocabulary.labels
    assert normalize_transcript("Don't stop at 3 p.m.", labels) == "DON'T STOP AT THREE P M"


def test_pipeline_runs_on_the_npu_doubles_like_onnxruntime(monkeypatch, tmp_path, ds2):
    """export -> convert (fake ATC) -> preprocess -> infer on pyACL (async, gears) == onnxruntime."""
    from ascend_asr.bundle import convert
    from ascend_asr.infer import InferOptions, infer
    from ascend_asr.preprocess import preprocess
    from ascend_asr.tensor_files import read_jsonl

    from .npu_doubles import control

    profile = load_profile("deepspeech2_small")
    onnx_path = export_onnx(ds2, str(tmp_path / "ds2.onnx"))
    prep = str(tmp_path / "prep")
    preprocess(CLIPS_MANIFEST, prep, profile, progress=False)
    control.activate(monkeypatch)
    try:
        bundle = convert(profile, onnx_path, str(tmp_path / "bundles"), batch_sizes=[4], build_om=True)[0]
        summaries = {backend: infer(bundle.om_path, prep, str(tmp_path / backend),
                                    InferOptions(backend=backend, progress=False), out=open(os.devnull, "w"))
                     for backend in ("acl", "onnxruntime")}
    finally:
        control.purge()
    assert summaries["acl"]["backend"] == "acl" and summaries["acl"]["fallback"] is False
    hyps = {b: [r["hyp"] for r in read_jsonl(str(tmp_path / b / "hyps.jsonl"))] for b in summaries}
    assert len(hyps["acl"]) == 8 and hyps["acl"] == hyps["onnxruntime"]
    first = read_jsonl(str(tmp_path / "acl" / "hyps.jsonl"))[0]
    assert first["ref"] == "GIVE NOT SO EARNEST A MIND TO THESE MUMMERIES CHILD"
    assert first["out_frames"] == (first["frames"] - 1) // 2 + 1


def test_modelzoo_scripts_take_their_flags_and_score(tmp_path, ds2):
    """deepspeech2_preprocess.py --data_file --save_path --label_file, then the outputs ais_bench
    would write (here from infer --save-outputs), then deepspeech2_postprocess.py."""
    import subprocess

    from ascend_asr.bundle import convert
    from ascend_asr.infer import InferOptions, infer

    from .conftest import REPO

    root = tmp_path / "data"
    (root / "an4" / "wav").mkdir(parents=True)
    (root / "an4" / "txt").mkdir(parents=True)
    samples = []
    for name, clip, text in (("a", "goforward.wav", "go forward ten meters"), ("b", "3_jackson_0.wav", "three")):
        os.symlink(os.path.join(CLIPS, clip), root / "an4" / "wav" / f"{name}.wav")
        (root / "an4" / "txt" / f"{name}.txt").write_text(text.upper())
        samples.append({"wav_path": f"an4/wav/{name}.wav", "transcript_path": f"an4/txt/{name}.txt"})
    (tmp_path / "manifest.json").write_text(json.dumps({"root_path": str(root), "samples": samples}))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(list(load_profile("deepspeech2").vocabulary.labels)))
    save = tmp_path / "an4_test"
    run = [sys.executable, os.path.join(REPO, "preprocess", "deepspeech2_preprocess.py"), "--data_file",
           str(tmp_path / "manifest.json"), "--save_path", str(save), "--label_file", str(labels)]
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    assert sorted(os.listdir(save / "spect")) == ["000000000000.bin", "000000000001.bin"]
    assert os.path.getsize(save / "spect" / "000000000000.bin") == 161 * 621 * 4
    assert (save / "targets.txt").read_text() == "GO FORWARD TEN METERS\nTHREE\n"
    bundle = convert("deepspeech2", export_onnx(ds2, str(tmp_path / "ds2.onnx")), str(tmp_path / "b"),
                     batch_sizes=[1], build_om=False)[0]
    infer(bundle.om_path, str(save), str(tmp_path / "r"), InferOptions(progress=False, save_outputs="bin"),
          out=open(os.devnull, "w"))
    post = subprocess.run([sys.executable, os.path.join(REPO, "postprocess", "deepspeech2_postprocess.py"),
                           "--out_path", str(tmp_path / "r" / "outputs"), "--save_path", str(save),
                           "--label_file", str(labels)], capture_output=True, text=True)
    assert post.returncode == 0, post.stderr
    from ascend_asr.score import score_results
    wer = score_results(str(tmp_path / "r"))["wer"]
    assert f"Average WER {100 * wer:.2f}%" in post.stdout


def test_a_torchscript_archive_is_refused_before_its_code_can_run(tmp_path):
    """torch.load would hand it to torch.jit.load, past the restricted unpickler."""
    path = str(tmp_path / "scripted.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(CheckpointError, match="TorchScript"):
        DS2.load(path, DS2.preset("deepspeech2_small"))


@pytest.mark.parametrize("rnn_type", ["gru", "rnn"])
def test_gru_and_rnn_layers_compute_what_upstreams_bidirectional_module_computes(rnn_type):
    """V3.0's rnn_type lstm|gru|rnn: each BatchRNN holds nn.GRU/nn.RNN(bidirectional=True) and sums the two
    directions; on full-length sequences ours equals that module run whole."""
    from ascend_asr.families.deepspeech2.config import DeepSpeech2Config
    from ascend_asr.families.deepspeech2.model import BatchRNN

    torch.manual_seed(0)
    layer = BatchRNN(12, 8, batch_norm=False, rnn_type=rnn_type).train(False)
    assert type(layer.rnn) is {"gru": torch.nn.GRU, "rnn": torch.nn.RNN}[rnn_type]
    x = torch.randn(7, 3, 12)
    with torch.no_grad():
        ours = layer(x, torch.full((3,), 7))
        both, _ = layer.rnn(x)
    upstream = both.view(7, 3, 2, 8).sum(2)
    assert torch.allclose(ours, upstream, atol=1e-6)
    model = DS2.build(DeepSpeech2Config(hidden_size=8, hidden_layers=2, rnn_type=rnn_type))
    assert "rnns.1.rnn.weight_hh_l0_reverse" in model.state_dict()


def test_a_gru_model_saved_in_the_lightning_format_reads_back_as_gru(tmp_path):
    from ascend_asr.families.deepspeech2.config import DeepSpeech2Config
    from ascend_asr.profiles import load_profile

    config = DeepSpeech2Config(hidden_size=8, hidden_layers=2, rnn_type="gru")
    path = str(tmp_path / "gru.ckpt")
    DS2.save(DS2.build(config), load_profile("deepspeech2_small"), path,
             {"epoch": 1, "step": 2, "learning_rate": 1e-3})
    upstream = DS2.read_upstream(None, path)
    assert upstream.config == config
    DS2.load(path, upstream.config)  # strict: every GRU weight in place
