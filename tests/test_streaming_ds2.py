"""Streaming DS2-online: PaddleSpeech's chunk arithmetic, batched streams with carried states equal to
whole-utterance inference and to upstream's forward_chunk_by_chunk, on torch, onnxruntime and the NPU doubles."""
import importlib.util
import json
import os

import numpy as np
import onnx
import pytest
import torch

from ascend_asr.errors import ExportError, OptionError
from ascend_asr.families import get_family
from ascend_asr.parity import Thresholds
from ascend_asr.streaming import main as streaming_main  # the generic dispatcher
from ascend_asr.families.paddle_ds2_online.streaming.chunks import ChunkPlan, output_length
from ascend_asr.families.paddle_ds2_online.streaming.graph import atc_command, build_om, export_model, quantize_int8
from ascend_asr.families.paddle_ds2_online.streaming.scheduler import run_streams
from ascend_asr.families.paddle_ds2_online.streaming.steps import npu_step, onnxruntime_step, torch_step

from .conftest import CLIPS
from .paddle_fixture import CONFIG, PDPARAMS, TOL, reference_outputs
from .npu_doubles import control



@pytest.fixture(scope="module")
def ref():
    return reference_outputs()


@pytest.fixture(scope="module")
def model():
    family = get_family("paddle_ds2_online")
    return family.load(PDPARAMS, family.read_upstream(CONFIG).config).model


@pytest.fixture(scope="module")
def chunk_onnx(model, tmp_path_factory):
    return export_model(model, str(tmp_path_factory.mktemp("chunk") / "chunk.onnx"))


def utterances(ref):
    """The two fixture utterances and a third, so that 2 slots must hand one over."""
    third = np.concatenate([ref["features_1"][:90], ref["features_0"]])
    return [("u0", ref["features_0"]), ("u1", ref["features_1"]), ("u2", third)]


def whole(model, feats):
    h0 = torch.zeros(2, 1, 24)
    with torch.no_grad():
        probs, lens, _, _ = model(torch.from_numpy(feats[None]), torch.tensor([len(feats)]), h0, h0)
    return probs[0, :int(lens[0])].numpy()


def stream(step, utts, chunk, slots=2):
    results, stats = run_streams(utts, step, ChunkPlan(chunk), slots, 2, 24, 41)
    return {r.key: r for r in results}, stats


@pytest.mark.parametrize("chunk, window, stride", [(1, 7, 4), (4, 19, 16), (16, 67, 64)])
def test_chunk_window_and_stride_are_paddlespeechs(chunk, window, stride):
    plan = ChunkPlan(chunk)
    assert (plan.window, plan.stride) == (window, stride)
    for frames in (window, window + 1, 108, 277, 1000):
        # forward_chunk_by_chunk: pad to a whole number of strides after the first window
        padding = 0 if (frames - window) % stride == 0 else stride - (frames - window) % stride
        assert plan.num_chunks(frames) == (frames + padding - window) // stride + 1
        # every window yields `chunk` frames, and the windows cover the utterance's output frames
        assert plan.num_chunks(frames) * chunk >= output_length(frames)
    with pytest.raises(OptionError, match="whole number of output frames"):
        ChunkPlan(0)


@pytest.mark.parametrize("chunk", [1, 4, 16])
def test_streams_equal_upstream_chunk_by_chunk_and_whole_utterances(model, ref, chunk):
    results, _ = stream(torch_step(model), utterances(ref), chunk)
    for i in range(2):
        r, n = results[f"u{i}"], int(ref["probs_lens"][i])
        upstream = ref[f"chunk{chunk}_probs"][i]
        assert r.probs.shape[0] == n
        assert np.abs(r.probs - upstream[:n]).max() < TOL           # PaddleSpeech's own chunk-by-chunk run
        assert np.abs(r.probs - ref["probs"][i, :n]).max() < TOL      # and its whole-utterance run
        # the states after the stream's last chunk: upstream's, masked by the chunk's length
        assert np.abs(r.final_h - ref[f"chunk{chunk}_final_h"][:, i]).max() < TOL
        assert np.abs(r.final_c - ref[f"chunk{chunk}_final_c"][:, i]).max() < TOL
    # the third utterance went into a slot another stream left: fresh states, whole-utterance outputs
    assert np.abs(results["u2"].probs - whole(model, utterances(ref)[2][1])).max() < TOL


def test_onnxruntime_streams_equal_whole_utterances(model, ref, chunk_onnx):
    graph = onnx.load(chunk_onnx)
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    assert shapes["chunk_state_h_box"] == [2, "batch", 24]  # the static-state fix: only the batch is symbolic
    results, stats = stream(onnxruntime_step(chunk_onnx), utterances(ref), 4, slots=2)
    for key, feats in utterances(ref):
        assert np.abs(results[key].probs - whole(model, feats)).max() < TOL
    summary = stats.summary(audio_seconds=10.0)
    assert summary["steps"] == len(stats.step_seconds) > 0 and summary["rtf"] > 0
    assert summary["chunk_latency_ms"]["p95"] >= summary["chunk_latency_ms"]["p50"] > 0


def test_the_npu_path_builds_a_static_chunk_om_and_streams_like_onnxruntime(model, ref, chunk_onnx, tmp_path,
                                                                            monkeypatch):
    control.activate(monkeypatch)
    try:
        config, plan = model.config, ChunkPlan(4)
        cmd = atc_command(chunk_onnx, "chunk", config, 3, plan, {"precision_mode": "allow_fp32_to_fp16"},
                          "Ascend310P3")
        assert ("--input_shape=audio_chunk:3,19,41;audio_chunk_lens:3;chunk_state_h_box:2,3,24;"
                "chunk_state_c_box:2,3,24") in cmd
        om, _ = build_om(chunk_onnx, str(tmp_path), "chunk", config, 3, plan, {}, "Ascend310P3")
        step, close = npu_step(om, "acl")
        try:
            results, _ = stream(step, utterances(ref), 4, slots=3)
        finally:
            close()
        expected, _ = stream(onnxruntime_step(chunk_onnx), utterances(ref), 4, slots=3)
        for key in expected:
            assert np.abs(results[key].probs - expected[key].probs).max() < TOL
    finally:
        control.purge()


def test_int8_is_gated_against_fp32(model, chunk_onnx, tmp_path):
    """Dynamic int8 (convolutions excluded) passes or fails on the gate's metrics; this small random model's
    probabilities move too much for the default thresholds, and the refused graph is not left behind."""
    out = str(tmp_path / "int8.onnx")
    with pytest.raises(ExportError, match="int8 parity gate failed .*probs: red"):
        quantize_int8(chunk_onnx, out, model.config, ChunkPlan(4))
    assert not os.path.exists(out)
    report = quantize_int8(chunk_onnx, out, model.config, ChunkPlan(4), Thresholds(min_cosine=0.9, max_red=0.5))
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "Conv" in ops  # LSTMs in int8, the two convolutions in fp32
    assert report["probs"]["cosine"] > 0.9


def test_the_command_streams_a_manifest_and_reports_latency_and_rtf(tmp_path, capsys):
    from ascend_asr.families import build_model
    from ascend_asr.families.paddle_ds2_online.model import save_pdparams
    from ascend_asr.profiles import load_profile

    torch.manual_seed(0)
    checkpoint = str(tmp_path / "char.pdparams")  # the English-character profile, random weights
    save_pdparams(build_model(load_profile("paddle_ds2_online_char")).model, checkpoint)
    import soundfile

    soundfile.write(str(tmp_path / "short.wav"), np.zeros(300, np.float32), 16000)  # shorter than one window
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\n" + "".join(f"{os.path.join(CLIPS, c)}\tgo forward\n"
                                                 for c in ("cards-001.wav", "goforward.wav", "3_jackson_0.wav"))
                        + f"{tmp_path / 'short.wav'}\tgo\n")
    args = ["--checkpoint", checkpoint, "--profile", "paddle_ds2_online_char", "--manifest", str(manifest),
            "--chunk-frames", "4", "--streams", "2", "--output", str(tmp_path / "out")]
    assert streaming_main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["utterances"] == 3 and summary["window_frames"] == 19 and summary["cer"] > 0
    assert [f["id"] for f in summary["failed"]] == ["short"] and "too short" in summary["failed"][0]["error"]
    assert streaming_main(args + ["--strict"]) == 3
    assert summary["parity"]["export"]["probs"]["max_abs"] < TOL
    assert summary["rtf"] > 0 and summary["chunk_latency_ms"]["mean"] > 0
    assert "per-chunk latency mean" in capsys.readouterr().out
    hyps = [json.loads(line) for line in (tmp_path / "out" / "hyps.jsonl").read_text().splitlines()]
    assert sorted(h["id"] for h in hyps) == ["3_jackson_0", "cards-001", "goforward"]


def test_the_bench_command_prints_every_backends_row_at_each_chunk_size(tmp_path, monkeypatch, capsys):
    from ascend_asr.families.paddle_ds2_online.streaming.bench import main as bench_main

    control.activate(monkeypatch)
    try:
        assert bench_main(["--checkpoint", PDPARAMS, "--config", CONFIG, "--audio",
                           os.path.join(CLIPS, "cards-001.wav"), "--chunk-frames", "1,4", "--streams", "2",
                           "--paddle-model-dir", os.path.dirname(PDPARAMS), "--work", str(tmp_path)]) == 0
    finally:
        control.purge()
    out = capsys.readouterr().out
    assert "| onnxruntime fp32 | " in out and "| npu (acl) | " in out
    assert "int8 parity gate failed" in out  # this random model's int8 graph is refused, and the table says so
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result["rows"]["npu (acl)"]) == {"1", "4"}  # chunk sizes (JSON keys)
    assert all(r["rtf"] > 0 for row in result["rows"].values() for r in row.values())
    # Paddle Inference runs the recipe's exported model where the paddle extra is installed, else says why not
    has_paddle = importlib.util.find_spec("paddle") is not None
    assert ("paddle inference" in result["rows"]) == has_paddle
    assert has_paddle or "paddle inference: not run: paddle is not installed here" in out


def test_streaming_is_run_by_the_family_of_the_profile_and_refused_for_one_that_does_not_stream():
    from ascend_asr.errors import OptionError
    from ascend_asr.streaming import streaming_family

    assert streaming_family(["--checkpoint", PDPARAMS, "--config", CONFIG]).name == "paddle_ds2_online"
    assert streaming_family(["--profile=paddle_ds2_online_char"]).name == "paddle_ds2_online"
    with pytest.raises(OptionError, match="jasper has no streaming mode.*paddle_ds2_online"):
        streaming_family(["--profile", "jasper_small", "--audio", "a.wav"])
