"""ascend-asr optimize: the gated pipeline on a shipped model, the gate catching a broken step, the int8 bundle
on infer's CPU path, and convert refusing what is for the CPU only."""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ascend_asr.bundle import convert
from ascend_asr.errors import AtcError
from ascend_asr.export import export_onnx
from ascend_asr.families import load_model, reference_checkpoint
from ascend_asr.optimize import GateError, OptimizeOptions, optimize
from ascend_asr.optimize import graph_steps
from ascend_asr.optimize.calibration import HELDOUT_MANIFEST
from ascend_asr.profiles import load_profile

FAST = dict(max_utterances=4, repeats=1, speed_batches=(1,), threads=1)


@pytest.fixture(scope="module")
def profile():
    return load_profile("jasper_small")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, profile):
    """The shipped trained jasper_small, exported as `ascend-asr export` does."""
    model = load_model(profile, reference_checkpoint("jasper_small"))
    return export_onnx(model, str(tmp_path_factory.mktemp("export") / "jasper_small.onnx"))


@pytest.fixture(scope="module")
def optimized(tmp_path_factory, exported, profile):
    out = str(tmp_path_factory.mktemp("optimized"))
    report = optimize(exported, profile, OptimizeOptions(output_dir=out, int8_mode="static",
                                                         write_profile=os.path.join(out, "chosen.yaml"), **FAST))
    return out, report


def test_pipeline_passes_every_step_on_the_shipped_jasper_small(optimized):
    out, report = optimized
    verdicts = {s["step"]: s["verdict"] for s in report["steps"]}
    assert verdicts["simplify"] == verdicts["ort-opt"] == "pass"
    assert verdicts["int8:static"] == "chosen"
    assert {"fp16:force_fp16", "fp16:allow_fp32_to_fp16", "fp16:allow_mix_precision"} <= set(verdicts)
    int8_step = next(s for s in report["steps"] if s["step"] == "int8:static")
    assert int8_step["wer_delta"] <= 0.5 and int8_step["outputs"]["prob"]["cosine"] >= 0.99
    assert int8_step["size"] < 0.5 * next(s for s in report["steps"] if s["step"] == "fp32")["size"]
    for name in ("simplified", "ort", "int8"):  # every written model has the manifest infer needs
        assert os.path.isfile(os.path.join(out, f"jasper_small.{name}.onnx"))
        assert json.load(open(os.path.join(out, f"jasper_small.{name}.json")))["cpu_only"] is True
    on_disk = json.load(open(os.path.join(out, "report.json")))
    assert on_disk["precision"]["atc_precision_mode"] == report["precision"]["atc_precision_mode"]
    assert "| int8:static | chosen |" in open(os.path.join(out, "report.md")).read()


def test_written_profile_records_the_precision_and_convert_hands_it_to_atc(optimized, tmp_path):
    out, report = optimized
    chosen = load_profile(os.path.join(out, "chosen.yaml"))
    assert chosen.precision["cpu_model"] == report["precision"]["cpu_model"]  # the fastest passing: timing decides
    mode = report["precision"]["atc_precision_mode"]
    assert chosen.atc["precision_mode"] == mode
    convert(chosen, report["atc_model"], str(tmp_path), batch_sizes=[1], build_om=False)
    manifest = json.load(open(tmp_path / "jasper_small_bs1.json"))
    assert f"--precision_mode={mode}" in manifest["atc_command"]


def test_infer_runs_the_int8_bundle_on_the_cpu_path(optimized, tmp_path, profile, capsys):
    from ascend_asr.infer import main as infer_main
    from ascend_asr.preprocess import preprocess

    out, _ = optimized
    preprocess(HELDOUT_MANIFEST, str(tmp_path / "prep"), profile, progress=False)
    assert infer_main(["--model", os.path.join(out, "jasper_small.int8.onnx"), "--input", str(tmp_path / "prep"),
                       "--output", str(tmp_path / "results"), "--no-progress"]) == 0
    summary = json.load(open(tmp_path / "results" / "summary.json"))
    assert summary["backend"] == "onnxruntime-cpu" and summary["utterances"]["scored"] == 9
    assert summary["wer"] is not None and summary["wer"] < 0.5


@pytest.mark.parametrize("name, expected", [("jasper_small.ort.onnx", "com.microsoft"),
                                            ("jasper_small.int8.onnx", "quantised"),
                                            ("jasper_small.fp16-force_fp16.onnx", "fp16 simulation")])
def test_convert_refuses_cpu_only_models_for_atc(optimized, tmp_path, profile, name, expected):
    out, _ = optimized
    with pytest.raises(AtcError, match=expected):
        convert(profile, os.path.join(out, name), str(tmp_path), batch_sizes=[1], build_om=False)
    assert not os.listdir(tmp_path)


def _corrupt_one_weight(source: str, target: str) -> str:
    """A 'simplifier' that silently changes one convolution weight: what the gate must catch."""
    model = onnx.load(source)
    weight = next(t for t in model.graph.initializer if len(t.dims) == 3)
    values = numpy_helper.to_array(weight).copy()
    values[0] *= -50.0
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    return graph_steps.save_model(model, target)


def test_gate_fails_a_step_that_corrupts_a_weight_and_keeps_the_previous_model(exported, profile, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(graph_steps, "simplify", _corrupt_one_weight)
    before = open(exported, "rb").read()
    with pytest.raises(GateError, match=r"step simplify breaks its gate.*prob: (cosine|red)") as caught:
        optimize(exported, profile, OptimizeOptions(steps=("simplify", "int8"), output_dir=str(tmp_path), **FAST))
    assert "jasper_small.onnx stays the result" in str(caught.value)
    assert not os.path.exists(tmp_path / "jasper_small.simplified.onnx")
    assert not any(f.startswith("jasper_small.int8") for f in os.listdir(tmp_path))  # the run stopped there
    assert open(exported, "rb").read() == before
    report = json.load(open(tmp_path / "report.json"))
    assert report["failed_step"] == "simplify"
    step = next(s for s in report["steps"] if s["step"] == "simplify")
    assert step["verdict"] == "breach" and any("prob: cosine" in b or "prob: red" in b for b in step["breaches"])


def test_fp16_simulation_predicts_the_overflow_of_force_fp16(exported, profile, tmp_path):
    """A weight scaled so that activations pass fp16's 65504: fine in fp32, inf when ATC forces fp16; the
    allow_fp32_to_fp16 simulation keeps the non-Cube operators in fp32 and is reported apart."""
    model = onnx.load(exported)
    weight = next(t for t in model.graph.initializer if len(t.dims) == 3)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1e5, weight.name))
    big = str(tmp_path / "big.onnx")
    onnx.save(model, big)
    report = optimize(big, profile, OptimizeOptions(steps=("fp16",), output_dir=str(tmp_path / "out"),
                                                    fp16_modes=("force_fp16",), **FAST))
    step = next(s for s in report["steps"] if s["step"] == "fp16:force_fp16")
    assert step["verdict"] == "breach"
    assert any(b.startswith("prob: cosine") for b in step["breaches"])
    assert report["precision"]["atc_precision_mode"] == "must_keep_origin_dtype"
    assert report["precision"]["predicted_wer_delta"]["force_fp16"] > 0.5


def test_int8_leaves_the_length_arithmetic_in_fp32(exported, profile):
    from ascend_asr.optimize.int8 import length_arithmetic_nodes

    model = onnx.load(exported)
    kept = set(length_arithmetic_nodes(model, "feats"))
    by_name = {n.name: n for n in model.graph.node}
    assert kept and not any(by_name[n].op_type == "Conv" for n in kept)
    label_producer = next(n.name for n in model.graph.node if "label" in n.output)
    assert label_producer in kept


def test_options_are_checked_before_any_work(exported, profile, tmp_path):
    from ascend_asr.errors import OptionError

    with pytest.raises(OptionError, match="--steps"):
        optimize(exported, profile, OptimizeOptions(steps=("simplify", "quantize"), output_dir=str(tmp_path)))
    with pytest.raises(OptionError, match="--exclude-nodes"):
        optimize(exported, profile, OptimizeOptions(steps=("int8",), exclude_nodes=("no_such_node",),
                                                    output_dir=str(tmp_path), **FAST))
    assert np.all([not f.endswith(".onnx") for f in os.listdir(tmp_path)])
