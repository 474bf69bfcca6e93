"""`ascend-asr compare`: two forms of one model over a prep/ folder, per output and per layer, with the first
tensor that breaks a threshold named, msit-layout dumps, and clear errors for inputs that cannot be compared."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from ascend_asr.bundle import convert
from ascend_asr.compare import CompareOptions, compare, main
from ascend_asr.compare.dump import DumpWriter, msit_name
from ascend_asr.compare.layers import unqualified
from ascend_asr.errors import OptionError, TensorFileError
from ascend_asr.families import load_model
from ascend_asr.runner import run

from .conftest import REPO
from .npu_doubles import control

FAST = dict(limit=2)  # two utterances: every code path, a few seconds


def corrupt_conv(onnx_path: str, out_path: str, scope: str = "/encoder/layers.2/conv.0/") -> onnx.NodeProto:
    """A copy of the graph with the weights of the convolution in `scope` negated and tripled; returns its node."""
    model = onnx.load(onnx_path)
    [node] = [n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith(scope)]
    for init in model.graph.initializer:
        if init.name == node.input[1]:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * -3.0, init.name))
    onnx.save(model, out_path)
    return node


def test_identical_sources_pass_with_every_tensor_matched(small_onnx, demo_prep, tmp_path, capsys):
    copy = str(tmp_path / "copy.onnx")
    shutil.copy(small_onnx, copy)
    report = compare(small_onnx, copy, demo_prep, CompareOptions(layers=True, **FAST))
    assert report["verdict"] == "pass" and report["first_broken"] is None and report["utterances"] == 2
    for entry in report["outputs"]:
        assert entry["metrics"]["max_abs"] == 0 and entry["metrics"]["cosine"] == pytest.approx(1.0)
        assert len(entry["per_utterance"]) == 2
    layers = report["layers"]
    assert layers["matched"] == layers["a_tensors"] == layers["b_tensors"] > 50
    assert run(main, [small_onnx, copy, "--input", demo_prep, "--limit", "1"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_a_corrupted_weight_fails_and_names_the_first_broken_layer(small_onnx, demo_prep, tmp_path, capsys):
    broken = str(tmp_path / "broken.onnx")
    node = corrupt_conv(small_onnx, broken)
    json_path = str(tmp_path / "report.json")
    status = run(main, [small_onnx, broken, "--input", demo_prep, "--layers", "--limit", "2", "--json", json_path])
    assert status == 1
    with open(json_path) as f:
        report = json.load(f)
    first = report["first_broken"]
    assert first["where"] == "layer" and first["a"] == node.output[0]  # the corrupted convolution's own output
    assert {d["metric"] for d in first["details"]} >= {"cosine", "red"}
    names = [t["a"] for t in report["layers"]["tensors"]]
    assert all(not t["breaches"] for t in report["layers"]["tensors"][: names.index(node.output[0])])
    # the damage reaches the log-probs (of this random-weight model, too weakly to break cosine: the layers tell)
    assert report["outputs"][0]["metrics"]["argmax_agreement"] < 1
    console = capsys.readouterr().out
    assert f"first broken (layer, in A's order): {node.output[0]}" in console and "verdict: FAIL" in console


def test_checkpoint_against_its_export_within_1e_4(small_profile, small_checkpoint, small_onnx, demo_prep):
    report = compare(small_checkpoint, small_onnx, demo_prep,
                     CompareOptions(profile="jasper_small", layers=True, max_abs=1e-4, **FAST))
    assert report["verdict"] == "pass", report["first_broken"]
    assert report["a"]["kind"] == "pytorch" and report["b"]["kind"] == "onnx"
    assert all(e["metrics"]["max_abs"] <= 1e-4 for e in report["outputs"])
    pairs = {t["a"]: t["b"] for t in report["layers"]["tensors"]}
    # every block's activation is found through torch.onnx's scope names ...
    blocks = {p.rsplit(".out.0", 1)[0] for p in pairs if p.endswith(".out.0")}
    assert len(blocks) == len(load_model(small_profile, small_checkpoint).encoder.layers)
    assert pairs["encoder.layers.0.out.0"] == "/encoder/layers.0/out/out.0/Relu_output_0"
    assert pairs["decoder"] == "prob"
    # ... and where the exporter folded a BatchNorm into the convolution before it, the convolution's ONNX output
    # holds the BatchNorm's result: it is matched to the BatchNorm, never to the convolution
    assert pairs["encoder.layers.0.conv.1"] == "/encoder/layers.0/conv.0/Conv_output_0"
    assert "encoder.layers.0.conv.0" not in pairs


def test_a_perturbed_pytorch_layer_is_the_first_to_diverge_from_the_onnx(small_profile, small_checkpoint, small_onnx,
                                                                          demo_prep, tmp_path):
    ckpt = torch.load(small_checkpoint, weights_only=False)
    for key in ("state_dict", "ema_state_dict"):
        state = dict(ckpt[key])
        name = next(k for k in state if k.startswith("encoder.layers.3.conv.0.") and k.endswith("weight"))
        state[name] = -state[name]
        ckpt[key] = state
    perturbed = str(tmp_path / "perturbed.pt")
    torch.save(ckpt, perturbed)
    report = compare(perturbed, small_onnx, demo_prep, CompareOptions(profile="jasper_small", layers=True, **FAST))
    assert report["verdict"] == "fail"
    # the perturbed convolution's output exists in the graph only after its BatchNorm (folded into it): that is
    # the first tensor to diverge
    assert report["first_broken"]["a"] == "encoder.layers.3.conv.1"
    assert report["first_broken"]["b"] == "/encoder/layers.3/conv.0/Conv_output_0"
    before = [t for t in report["layers"]["tensors"] if t["a"].startswith(("encoder.layers.0.", "encoder.layers.1."))]
    assert before and not any(t["breaches"] for t in before)


@pytest.mark.filterwarnings("ignore::UserWarning")  # onnxconverter-common: tiny weights truncated to fp16
def test_fp16_and_int8_graphs_compare_by_tensor_name(small_onnx, demo_prep, tmp_path):
    from onnxconverter_common import float16
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, \
        quantize_static

    from ascend_asr.prep import open_prep

    model = onnx.load(small_onnx)
    lengths = [n.name for n in model.graph.node if n.op_type == "Cast"]  # length arithmetic stays fp32
    fp16 = str(tmp_path / "m.fp16.onnx")
    onnx.save(float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=lengths), fp16)
    dynamic = str(tmp_path / "m.int8.onnx")
    quantize_dynamic(small_onnx, dynamic, weight_type=QuantType.QInt8)
    prep = open_prep(demo_prep)

    class Utterances(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([prep.load(prep.rows[0])])

        def get_next(self):
            return next(self.feeds, None)

    qdq = str(tmp_path / "m.qdq.onnx")
    quantize_static(small_onnx, qdq, Utterances(), quant_format=QuantFormat.QDQ, per_channel=True)
    reports = {}
    for candidate in (fp16, dynamic, qdq):
        report = reports[candidate] = compare(small_onnx, candidate, demo_prep, CompareOptions(layers=True, limit=1))
        layers = report["layers"]
        assert layers["matched"] > 0.8 * layers["a_tensors"], candidate
        prob = report["outputs"][0]
        assert 0 < prob["metrics"]["max_abs"] and prob["metrics"]["cosine"] > 0.99, candidate
    # the QDQ quantiser gives a Conv the name of the Relu it absorbed: that name is compared with B's quantized
    # copy of the Relu output, not with the Conv's values (which would break cosine at the first block)
    relu = "/encoder/layers.0/out/out.0/Relu_output_0"
    [pair] = [t for t in reports[qdq]["layers"]["tensors"] if t["a"] == relu]
    assert pair["b"] == relu + "_DequantizeLinear_Output" and not pair["breaches"]


@pytest.fixture
def doubles(monkeypatch):
    control.activate(monkeypatch)
    yield monkeypatch
    control.purge()


def test_a_bundle_on_the_npu_doubles_against_the_onnx(doubles, small_profile, small_onnx, demo_prep, tmp_path):
    bundle = convert(small_profile, small_onnx, str(tmp_path / "bundles"), batch_sizes=[4], build_om=True)[0]
    report = compare(small_onnx, bundle.om_path, demo_prep, CompareOptions(backend="acl", max_abs=1e-4, **FAST))
    assert report["b"]["kind"] == "bundle" and report["b"]["backend"] == "acl"
    assert report["verdict"] == "pass" and all(e["metrics"]["max_abs"] <= 1e-4 for e in report["outputs"])
    with pytest.raises(OptionError, match="--layers.*exposes no intermediate tensors"):
        compare(small_onnx, bundle.om_path, demo_prep, CompareOptions(backend="acl", layers=True, limit=1))


def test_dump_writes_msit_layout(small_onnx, small_checkpoint, demo_prep, tmp_path):
    dump = str(tmp_path / "dump")
    report = compare(small_onnx, small_checkpoint, demo_prep,
                     CompareOptions(profile="jasper_small", dump=dump, limit=1))
    with open(os.path.join(dump, "dump.json")) as f:
        index = json.load(f)
    stem = index["utterances"][0]["stem"]
    onnx_dir = os.path.join(dump, "A", stem, "dump_data", "onnx")
    files = os.listdir(onnx_dir)
    # {node name with '.' and '/' as '_'}.{output index}.{µs timestamp}.npy, as msit's onnx_dump_data.py names them
    pattern = re.compile(r"^[^./]+\.(\d+)\.(\d{16})\.npy$")
    assert files and all(pattern.match(f) for f in files), files[:5]
    graph = onnx.load(small_onnx).graph
    last = graph.node[-1] if graph.node[-1].output[0] == "prob" else next(n for n in graph.node if "prob" in n.output)
    [prob_file] = [f for f in files if f.startswith(msit_name(last.name) + ".0.")]
    assert np.load(os.path.join(onnx_dir, prob_file)).shape[-1] == 29
    assert any(f.startswith("input_") for f in files)  # inputs of the nodes that read the model inputs
    feats = np.fromfile(os.path.join(dump, "A", stem, "input", "input_0.bin"), dtype=np.float32)
    with open(os.path.join(demo_prep, "meta.jsonl")) as f:
        assert feats.size == 64 * json.loads(f.readline())["padded_frames"]  # exactly what was fed
    torch_files = os.listdir(os.path.join(dump, "B", stem, "dump_data", "pytorch"))
    assert any(f.startswith("encoder_layers_0_out_0.0.") for f in torch_files)
    assert report["dump"] == os.path.abspath(dump)


def test_dump_names_longer_than_msit_allows_go_through_mapping_csv(tmp_path):
    writer = DumpWriter(str(tmp_path), [])
    mapping = []
    path = writer._file(str(tmp_path), "/" + "very_long_scope/" * 20 + "Conv", 0, mapping)
    assert len(os.path.basename(path)) < 40 and mapping and mapping[0].startswith(os.path.basename(path) + ",")
    assert mapping[0].rstrip().endswith(".npy") and "very_long_scope" in mapping[0]


def test_torch_onnx_scope_names():
    assert unqualified("encoder.layers.0") == "layers.0"
    assert unqualified("encoder.layers.1.res.0.0") == "res.0.0"
    assert unqualified("fc.0.module") == "module"


def test_bad_inputs_are_one_clear_error(small_onnx, demo_prep, tmp_path, capsys):
    missing = str(tmp_path / "nowhere.onnx")
    assert run(main, [missing, small_onnx, "--input", demo_prep]) == 2
    err = capsys.readouterr().err
    assert missing in err and "not found" in err and "Traceback" not in err
    other = str(tmp_path / "other.onnx")  # another model: its input is named otherwise
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 64, "frames"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 64, "frames"])
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                                                            [y]), opset_imports=[onnx.helper.make_opsetid("", 13)]),
              other)
    with pytest.raises(TensorFileError, match="the graph's inputs are \\['x'\\], but prep/ holds"):
        compare(small_onnx, other, demo_prep, CompareOptions(limit=1))
    unrelated = str(tmp_path / "unrelated.onnx")  # the same inputs, none of the outputs
    feats = onnx.helper.make_tensor_value_info("feats", onnx.TensorProto.FLOAT, ["batch", 64, "frames"])
    lens = onnx.helper.make_tensor_value_info("feat_lens", onnx.TensorProto.INT32, ["batch"])
    z = onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["batch", 64, "frames"])
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Relu", ["feats"], ["z"])], "g",
                                                            [feats, lens], [z]),
                                     opset_imports=[onnx.helper.make_opsetid("", 13)]), unrelated)
    with pytest.raises(OptionError, match="share no output by name or role"):
        compare(small_onnx, unrelated, demo_prep, CompareOptions(limit=1))
    with pytest.raises(OptionError, match="--limit"):
        CompareOptions(limit=0)
    assert run(main, [small_onnx, small_onnx, "--input", str(tmp_path / "no_prep")]) == 2
    assert "no_prep" in capsys.readouterr().err


def test_python_m_exits_1_on_a_breach(small_onnx, demo_prep, tmp_path):
    broken = str(tmp_path / "broken.onnx")
    corrupt_conv(small_onnx, broken, scope="/decoder/")
    proc = subprocess.run([sys.executable, "-m", "ascend_asr.compare", small_onnx, broken, "--input", demo_prep,
                           "--limit", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "verdict: FAIL" in proc.stdout and "BREAK" in proc.stdout
    help_text = subprocess.run([sys.executable, "-m", "ascend_asr.compare", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=300).stdout
    assert "1 when a threshold breaks" in help_text
