"""Jasper in PyTorch and ONNX: parity, masking, checkpoints, the full 10x5dr config."""
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ascend_asr.audio import load_audio
from ascend_asr.decoding import greedy_ctc
from ascend_asr.errors import CheckpointError
from ascend_asr.export import export_onnx
from ascend_asr.frontends import JasperFilterbank
from ascend_asr.families.jasper.config import jasper_10x5dr, jasper_small
from ascend_asr.families.jasper.model import Jasper, load_jasper_checkpoint

from .conftest import CLIPS

BLANK = 28


def real_features(names, frames):
    """Features of real clips, zero-padded to `frames`, with their true lengths."""
    fe = JasperFilterbank()
    feats, lens = [], []
    for name in names:
        f, valid = fe(load_audio(os.path.join(CLIPS, name))[: (frames - 1) * 160])
        padded = np.zeros((64, frames), np.float32)
        padded[:, : f.shape[1]] = f
        feats.append(padded)
        lens.append(valid)
    return np.stack(feats), np.array(lens, np.int32)


def run_torch(model, feats, lens):
    with torch.no_grad():
        probs, out_lens = model(torch.from_numpy(feats), torch.from_numpy(lens))
    return probs.numpy(), out_lens.numpy()


def transcripts(probs, lens):
    return [greedy_ctc(p, n, BLANK) for p, n in zip(probs, lens)]


@pytest.mark.parametrize("frames", [256, 512])
@pytest.mark.parametrize("names", [["goforward.wav"], ["librivox-0880.wav", "cards-001.wav"]], ids=["b1", "b2"])
def test_onnxruntime_matches_pytorch(small_model, small_onnx, frames, names):
    feats, lens = real_features(names, frames)
    t_probs, t_lens = run_torch(small_model, feats, lens)
    o_probs, o_lens = ort.InferenceSession(small_onnx).run(None, {"feats": feats, "feat_lens": lens})
    np.testing.assert_array_equal(o_lens, t_lens)
    for p_onnx, p_torch, n in zip(o_probs, t_probs, t_lens):
        assert np.abs(p_onnx[:n] - p_torch[:n]).max() <= 1e-4
    assert transcripts(o_probs, o_lens) == transcripts(t_probs, t_lens)


def test_padding_and_batch_neighbours_do_not_change_an_utterance(small_model):
    alone, alone_len = real_features(["cards-001.wav"], 256)
    batch, batch_lens = real_features(["cards-001.wav", "librivox-0880.wav"], 512)
    p1, l1 = run_torch(small_model, alone, alone_len)
    p2, l2 = run_torch(small_model, batch, batch_lens)
    assert l1[0] == l2[0]
    assert np.abs(p1[0, : l1[0]] - p2[0, : l1[0]]).max() <= 1e-5
    assert greedy_ctc(p1[0], l1[0], BLANK) == greedy_ctc(p2[0], l2[0], BLANK)


def test_exported_graph_has_modelzoo_names_and_real_lengths(small_onnx):
    model = onnx.load(small_onnx)
    assert model.opset_import[0].version >= 11
    ins = {i.name: i.type.tensor_type for i in model.graph.input}
    outs = [o.name for o in model.graph.output]
    assert list(ins) == ["feats", "feat_lens"] and outs == ["prob", "label"]
    assert ins["feats"].elem_type == onnx.TensorProto.FLOAT and ins["feat_lens"].elem_type == onnx.TensorProto.INT32
    session = ort.InferenceSession(small_onnx)
    feats = np.random.default_rng(0).standard_normal((3, 64, 320)).astype(np.float32)
    lens = np.array([320, 101, 7], np.int32)  # none of these is the tracing length
    probs, out_lens = session.run(None, {"feats": feats, "feat_lens": lens})
    np.testing.assert_array_equal(out_lens, (lens - 1) // 2 + 1)
    assert probs.shape == (3, 160, 29)
    np.testing.assert_allclose(np.exp(probs).sum(-1), 1.0, atol=1e-4)  # log-probabilities


def v1_state_dict(state):
    """The key names of NVIDIA's v1 checkpoints, with the preprocessor buffers they carried."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("encoder.layers.", "jasper_encoder.encoder.", 1)
        key = key.replace("decoder.layers.", "jasper_decoder.decoder_layers.", 1)
        renamed[key] = value
    renamed["audio_preprocessor.featurizer.fb"] = torch.zeros(1, 64, 257)
    renamed["acoustic_model.some_buffer"] = torch.zeros(1)
    return renamed


def test_v1_checkpoint_loads_and_gives_the_same_model(tmp_path, small_model):
    path = tmp_path / "v1.pt"
    torch.save({"ema_state_dict": v1_state_dict(small_model.state_dict()), "epoch": 3}, path)
    loaded = load_jasper_checkpoint(Jasper(jasper_small()), str(path))
    feats, lens = real_features(["goforward.wav"], 512)
    np.testing.assert_array_equal(run_torch(loaded, feats, lens)[0], run_torch(small_model, feats, lens)[0])


def test_ema_weights_are_preferred_and_state_dict_on_request(tmp_path, small_model):
    ema = small_model.state_dict()
    plain = {k: v + 1 if v.is_floating_point() else v for k, v in ema.items()}
    path = tmp_path / "both.pt"
    torch.save({"state_dict": plain, "ema_state_dict": ema}, path)
    w = "decoder.layers.0.bias"
    assert torch.equal(load_jasper_checkpoint(Jasper(jasper_small()), str(path)).state_dict()[w], ema[w])
    assert torch.equal(load_jasper_checkpoint(Jasper(jasper_small()), str(path), use_ema=False).state_dict()[w],
                       plain[w])


def test_wrong_keys_fail_with_the_key_lists(tmp_path, small_model):
    state = dict(small_model.state_dict())
    state["encoder.layers.1.conv.0.weightt"] = state.pop("encoder.layers.1.conv.0.weight")
    path = tmp_path / "bad.pt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_jasper_checkpoint(Jasper(jasper_small()), str(path))
    message = str(err.value)
    assert "missing keys (1): encoder.layers.1.conv.0.weight" in message
    assert "unexpected keys (1): encoder.layers.1.conv.0.weightt" in message
    assert str(path) in message


def test_checkpoint_of_another_config_reports_shape_mismatches(tmp_path):
    torch.save({"state_dict": Jasper(jasper_small()).state_dict()}, tmp_path / "small.pt")
    tweaked = jasper_small()
    tweaked.blocks[0]["filters"] = 80
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_jasper_checkpoint(Jasper(tweaked), str(tmp_path / "small.pt"))


def test_full_10x5dr_builds_exports_and_runs_a_real_utterance(tmp_path):
    torch.manual_seed(0)
    model = Jasper(jasper_10x5dr()).eval()
    assert 330e6 < sum(p.numel() for p in model.parameters()) < 335e6  # NVIDIA: 333M
    assert len(model.encoder.layers) == 13 and len(model.encoder.layers[10].res) == 10
    path = export_onnx(model, str(tmp_path / "jasper10x5dr.onnx"), example_frames=64)
    feats, lens = real_features(["cards-001.wav"], 128)
    probs, out_lens = ort.InferenceSession(path).run(None, {"feats": feats, "feat_lens": lens})
    t_probs, t_lens = run_torch(model, feats, lens)
    assert probs.shape == (1, 64, 29) and out_lens[0] == t_lens[0] == (lens[0] - 1) // 2 + 1
    n = out_lens[0]
    assert np.abs(probs[0, :n] - t_probs[0, :n]).max() <= 1e-3
    assert greedy_ctc(probs[0], n, BLANK) == greedy_ctc(t_probs[0], n, BLANK)
