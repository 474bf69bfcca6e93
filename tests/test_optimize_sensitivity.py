"""The int8 sensitivity pass: a model whose one activation has an outlier channel (harmless in fp32, ruinous for
a per-tensor int8 scale) breaks the gate; the pass ranks the quantised activations, keeps the worst in fp32 in
doubling groups, and stops at the first group that passes."""
import dataclasses
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ascend_asr.optimize import GateError, OptimizeOptions, optimize
from ascend_asr.profiles import load_profile

CLASSES, FEATS = 29, 64


def outlier_model(path: str) -> str:
    """feats -> Conv(1x1) -> Relu -> Conv(1x1) -> log-softmax, the jasper_small I/O. Channel 0 of the hidden
    activation is 1000x larger and the second convolution divides its weights by 1000: the same function in fp32,
    but an int8 scale for the whole tensor leaves the other 63 channels a step or two."""
    rng = np.random.default_rng(0)
    w1 = (0.1 * rng.standard_normal((FEATS, FEATS, 1))).astype(np.float32)
    b1 = np.abs(0.5 * rng.standard_normal(FEATS)).astype(np.float32)
    w1[0], b1[0] = 0.0, 1000.0
    w2 = (0.5 * rng.standard_normal((CLASSES, FEATS, 1))).astype(np.float32)
    w2[:, 0] /= 1000.0
    nodes = [helper.make_node("Conv", ["feats", "w1", "b1"], ["hidden"], name="conv_in"),
             helper.make_node("Relu", ["hidden"], ["active"], name="relu"),
             helper.make_node("Conv", ["active", "w2"], ["logits"], name="conv_out"),
             helper.make_node("Transpose", ["logits"], ["time_major"], perm=[0, 2, 1], name="transpose"),
             helper.make_node("LogSoftmax", ["time_major"], ["prob"], axis=-1, name="log_softmax"),
             helper.make_node("Identity", ["feat_lens"], ["label"], name="lengths")]
    graph = helper.make_graph(
        nodes, "outlier",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", FEATS, "frames"]),
         helper.make_tensor_value_info("feat_lens", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", "out_frames", CLASSES]),
         helper.make_tensor_value_info("label", TensorProto.INT32, ["batch"])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sensitivity")
    # an untrained model: its transcripts are noise, so the gate here is the tensors' (cosine, RED)
    profile = dataclasses.replace(load_profile("jasper_small"), parity={"max_wer_delta": 100.0})
    return outlier_model(str(folder / "outlier.onnx")), profile, folder


def test_sensitivity_pass_keeps_the_outlier_path_in_fp32_until_the_gate_passes(setting):
    model, profile, folder = setting
    report = optimize(model, profile, OptimizeOptions(steps=("int8",), int8_mode="static", max_utterances=3,
                                                      repeats=1, speed_batches=(1,), output_dir=str(folder / "on")))
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["int8:static"]["verdict"] == "breach"
    assert any(b.startswith("prob: red") for b in steps["int8:static"]["breaches"])
    rescued = steps["int8:static+sensitivity"]
    assert rescued["verdict"] == "chosen"
    ranking = rescued["sensitivity"]["ranking"]
    assert [r["noise_red"] for r in ranking] == sorted((r["noise_red"] for r in ranking), reverse=True)
    rounds = rescued["sensitivity"]["rounds"]
    assert [len(r["excluded"]) > 0 for r in rounds] == [True] * len(rounds)
    assert [r["passed"] for r in rounds] == [False] * (len(rounds) - 1) + [True]
    assert set(rounds[0]["excluded"]) == set(ranking[0]["nodes"])  # the worst activation first
    # the outlier's path: the convolution that makes it and the one that reads it stay fp32
    assert {"conv_in", "conv_out"} <= set(rescued["excluded"]) and rescued["outputs"]["prob"]["red"] <= 0.05
    assert report["precision"]["int8_exclude_nodes"] == rescued["excluded"]
    manifest = json.load(open(folder / "on" / "outlier.int8.json"))
    assert manifest["optimize"]["excluded"] == rescued["excluded"]


def test_without_the_sensitivity_pass_int8_fails_with_its_metrics(setting):
    model, profile, folder = setting
    with pytest.raises(GateError, match=r"step int8 breaks its gate .*prob: red"):
        optimize(model, profile, OptimizeOptions(steps=("int8",), int8_mode="static", sensitivity=False,
                                                 max_utterances=3, repeats=1, speed_batches=(1,),
                                                 output_dir=str(folder / "off")))
    assert not list((folder / "off").glob("*.onnx"))
