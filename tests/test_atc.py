"""ATC from the package: dry runs, running atc (the fake), finding the .om, failures, the chip to build for."""
import importlib.util
import io
import os
import shlex
import sys
from contextlib import redirect_stdout

import pytest

from ascend_asr import convert as convert_cli
from ascend_asr.atc import detect_soc_version
from ascend_asr.bundle import convert
from ascend_asr.errors import AtcError

from .npu_doubles import control

# the doubles' bin/ (atc, npu-smi) and the python3 their shebangs need, nothing else
DOUBLES_BIN = os.pathsep.join([os.path.join(control.DOUBLES_DIR, "bin"), os.path.dirname(sys.executable)])


def test_dry_run_prints_the_modelzoo_command_plus_ours_for_each_batch_size(tmp_path, small_onnx):
    out = tmp_path / "bundles"
    console = io.StringIO()
    with redirect_stdout(console):
        assert convert_cli.main(["--profile", "jasper", "--onnx", small_onnx, "--output-dir", str(out),
                                 "--dry-run", "--soc-version", "Ascend310P3"]) == 0
    lines = console.getvalue().splitlines()
    assert lines[0].startswith("#") and "Ascend310P3: given" in lines[0]
    commands = [shlex.split(line) for line in lines[1:]]
    assert len(commands) == 4
    for bs, cmd in zip((1, 4, 8, 16), commands):
        # ascend_api.md §5: atc --framework=5 --model=jasper.onnx --input_format=ND
        #   --input_shape="feats:${bs},64,4000;feat_lens:${bs}" --output=jasper_bs${bs} --soc_version=... --log=error
        assert cmd[:2] == ["atc", "--framework=5"]
        for part in (f"--model=jasper_bs{bs}.onnx", "--input_format=ND",
                     f"--input_shape=feats:{bs},64,4000;feat_lens:{bs}", f"--output=jasper_bs{bs}",
                     "--soc_version=Ascend310P3", "--log=error",
                     "--precision_mode=allow_fp32_to_fp16", "--op_select_implmode=high_precision"):
            assert part in cmd, (part, cmd)
        out_nodes = next(c for c in cmd if c.startswith("--out_nodes="))
        # the output-name form, prob first, then label (never the node form "/decoder/LogSoftmax:0")
        assert out_nodes == "--out_nodes=prob;label"
    assert not out.exists()


def test_convert_runs_atc_finds_the_suffixed_om_and_records_it(monkeypatch, tmp_path, small_profile, small_onnx):
    control.activate(monkeypatch, soc="Ascend310P1")
    try:
        bundles = convert(small_profile, small_onnx, str(tmp_path), batch_sizes=[1])
    finally:
        control.purge()
    b = bundles[0]
    assert sorted(os.listdir(tmp_path)) == ["jasper_small_bs1.atc.log", "jasper_small_bs1.json",
                                            "jasper_small_bs1.om", "jasper_small_bs1.onnx"]
    assert b.manifest["om"]["size"] == os.path.getsize(b.om_path) and b.manifest["om"]["sha256"]
    assert b.manifest["soc_version"] == "Ascend310P1" and b.manifest["soc_version_origin"] == "detected on this host"
    assert "--soc_version=Ascend310P1" in b.manifest["atc_command"]
    with open(tmp_path / "jasper_small_bs1.atc.log") as f:
        log = f.read()
    assert log.startswith("$ atc --framework=5") and "ATC run success" in log


def test_a_failing_atc_surfaces_its_log_tail_and_leaves_no_bundle(monkeypatch, tmp_path, small_profile, small_onnx):
    control.activate(monkeypatch)
    monkeypatch.setenv("FAKE_ATC_FAIL", "E19999: simulated compile failure")
    try:
        with pytest.raises(AtcError) as err:
            convert(small_profile, small_onnx, str(tmp_path), batch_sizes=[4], soc_version="Ascend310P3")
    finally:
        control.purge()
    message = str(err.value)
    assert "E19999: simulated compile failure" in message and "jasper_small_bs4.atc-failed.log" in message
    tail = message.split(":\n", 1)[1].splitlines()
    assert len(tail) == 40
    assert os.listdir(tmp_path) == ["jasper_small_bs4.atc-failed.log"]  # no .onnx, .json, .om, nor staging folder


def test_invalid_command_fails_like_atc(monkeypatch, tmp_path, small_profile, small_onnx):
    control.activate(monkeypatch)
    try:
        with pytest.raises(AtcError, match="soc_version"):
            convert(small_profile, small_onnx, str(tmp_path), batch_sizes=[1], soc_version="Ascend999")
    finally:
        control.purge()
    assert os.listdir(tmp_path) == ["jasper_small_bs1.atc-failed.log"]


def test_building_needs_atc_and_a_chip(monkeypatch, tmp_path, small_profile, small_onnx):
    monkeypatch.setenv("PATH", str(tmp_path))  # no atc, no npu-smi
    with pytest.raises(AtcError, match="atc not found"):
        convert(small_profile, small_onnx, str(tmp_path / "b"), build_om=True)
    monkeypatch.setenv("PATH", DOUBLES_BIN)  # atc, but no device to ask
    monkeypatch.setenv("FAKE_NPU_DEVICES", "0")
    with pytest.raises(AtcError, match="--soc-version"):
        convert(small_profile, small_onnx, str(tmp_path / "b"), build_om=True)
    assert not (tmp_path / "b").exists()


def test_soc_version_from_npu_smi_when_pyacl_is_absent(monkeypatch):
    monkeypatch.setenv("PATH", DOUBLES_BIN)
    monkeypatch.setenv("FAKE_NPU_SOC", "Ascend310B1")
    control.purge()  # acl is not importable: the doubles are not on sys.path
    assert importlib.util.find_spec("acl") is None
    assert detect_soc_version() == "Ascend310B1"
    monkeypatch.setenv("FAKE_NPU_DEVICES", "0")
    assert detect_soc_version() is None
