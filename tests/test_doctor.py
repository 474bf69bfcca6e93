"""`ascend-asr doctor` without CANN, with the NPU doubles, and on a bundle; the FALLBACK line says where
CANN was looked for and what to do."""
import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest

from ascend_asr.backends import open_session
from ascend_asr.bundle import BUNDLE_FORMAT, sha256
from ascend_asr.doctor import cann_candidates, cann_hint, doctor

from .npu_doubles import control

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANN_VARS = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_ASR_CANN_SEARCHED", "ASCEND_ASR_CANN_SET_ENV")
# the doctor in a fresh Python, which must import neither torch nor onnx
RUN = ("import sys; from ascend_asr.cli import main; rc = main(['doctor', *sys.argv[1:]]); "
       "heavy = sorted(m for m in ('torch', 'onnx') if m in sys.modules); print('heavy:', heavy); "
       "sys.exit(rc or (3 if heavy else 0))")

real_cann = pytest.mark.skipif(importlib.util.find_spec("acl") is not None, reason="pyACL is installed here")


@pytest.fixture
def no_cann(tmp_path, monkeypatch):
    """A host without CANN: nothing under the install roots, no install info, no CANN variables."""
    for var in CANN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ASCEND_ASR_CANN_ROOTS", f"{tmp_path}/usr_local_Ascend:{tmp_path}/home_Ascend")
    monkeypatch.setenv("ASCEND_ASR_CANN_INSTALL_INFO", f"{tmp_path}/etc_Ascend/ascend_cann_install.info")
    return tmp_path


@pytest.fixture
def doubles(monkeypatch, no_cann):
    control.activate(monkeypatch)
    yield monkeypatch
    control.purge()


def run_doctor(*args):
    proc = subprocess.run([sys.executable, "-c", RUN, *args], cwd=REPO, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "heavy: []"
    return lines[:-1]


def item(lines, key):
    return next(line.split(":", 1)[1].strip() for line in lines if line.strip().startswith(key + ":"))


@real_cann
def test_without_cann_the_report_says_where_it_looked_and_falls_back(no_cann):
    lines = run_doctor()
    assert item(lines, "env.sh") == "not sourced in this shell"
    assert item(lines, "set_env.sh").startswith("none, looked for 14: ")
    assert f"{no_cann}/usr_local_Ascend/{{ascend-toolkit,ascend-toolkit/latest,cann,nnrt,nnrt/latest,nnae," \
           "nnae/latest}/set_env.sh" in item(lines, "set_env.sh")
    assert item(lines, "install info").endswith("ascend_cann_install.info: absent")
    assert item(lines, "pyACL (acl)").startswith("not importable")
    assert item(lines, "ais_bench").startswith("not importable")
    assert "CPUExecutionProvider" in item(lines, "onnxruntime")
    assert item(lines, "SoC") == "unknown (no device answered)"
    assert item(lines, "atc").startswith("not on PATH")
    assert lines[-1].startswith("NPU path: unavailable (neither pyACL ('acl') nor ais_bench imports: no CANN found")
    assert lines[-1].endswith("inference will fall back to onnxruntime")


def test_with_the_doubles_the_npu_path_is_ready(doubles):
    doubles.setenv("FAKE_NPU_SOC", "Ascend910B3")
    doubles.setenv("FAKE_NPU_DEVICES", "2")
    lines = run_doctor("--device", "1")
    assert item(lines, "pyACL (acl)").endswith(("API current (util.bytes_to_ptr and util.numpy_to_ptr)",
                                                "API new (util.bytes_to_ptr)"))
    assert "API current (summary(), free_resource())" in item(lines, "ais_bench")
    assert item(lines, "pyACL") == "2 device(s) (acl.rt.get_device_count)"
    assert item(lines, "SoC") == "Ascend910B3 (acl.get_soc_name())"
    assert item(lines, "npu-smi").endswith("2 device(s), chip 910B3")
    assert "atc version" in item(lines, "atc")
    assert lines[-1] == "NPU path: ready (pyACL, Ascend910B3)"


def test_old_generations_and_a_device_that_does_not_answer(doubles):
    doubles.setenv("FAKE_ACL_API", "old")
    doubles.setenv("FAKE_AIS_BENCH_API", "old")
    lines = run_doctor("--device", "3")
    assert "API old (util.numpy_to_ptr)" in item(lines, "pyACL (acl)")
    assert "API old (sumary(), reset_sumaryinfo())" in item(lines, "ais_bench")
    assert lines[-1] == ("NPU path: unavailable (pyACL sees 1 device(s), so device 3 does not answer); "
                         "inference will fall back to onnxruntime")


def fake_bundle(folder, soc="Ascend310P3", om=b"ASCEND-ASR-FAKE-OM\n{}\n"):
    """A bundle as convert leaves it (the manifest fields the doctor reads): NAME.json, NAME.om, NAME.onnx."""
    name = "m_bs1"
    (folder / f"{name}.om").write_bytes(om)
    (folder / f"{name}.onnx").write_bytes(b"onnx")
    manifest = {"format": BUNDLE_FORMAT, "name": name, "soc_version": soc, "soc_version_origin": "given",
                "om": {"file": f"{name}.om", "size": len(om), "sha256": sha256(str(folder / f"{name}.om"))}}
    (folder / f"{name}.json").write_text(json.dumps(manifest))
    return folder / f"{name}.om"


def report_of(model):
    out = io.StringIO()
    assert doctor(str(model), out=out) == 0
    return out.getvalue().splitlines()


def test_a_bundle_that_matches_its_manifest_and_this_soc(doubles, tmp_path):
    lines = report_of(fake_bundle(tmp_path))
    assert item(lines, "OM").endswith("size and SHA-256 match the manifest")
    assert "built for Ascend310P3 (given): matches this host" in "\n".join(lines)
    assert lines[-1] == "NPU path: ready (pyACL, Ascend310P3)"


def test_a_bundle_whose_om_does_not_match_its_manifest(doubles, tmp_path):
    om = fake_bundle(tmp_path)
    om.write_bytes(om.read_bytes().replace(b"{}", b"[]"))  # same size, other bytes: rebuilt since
    lines = report_of(tmp_path / "m_bs1.json")
    text = "\n".join(lines)
    assert "DOES NOT MATCH the manifest: SHA-256" in text and "size" not in text.split("DOES NOT MATCH")[1]
    assert lines[-1].startswith("NPU path: unavailable (m_bs1.om does not match its manifest (SHA-256 ")
    assert lines[-1].endswith("inference will fall back to onnxruntime")


def test_a_bundle_built_for_another_soc(doubles, tmp_path):
    lines = report_of(fake_bundle(tmp_path, soc="Ascend910B3"))
    assert "built for Ascend910B3 (given), this host is Ascend310P3: MISMATCH" in "\n".join(lines)
    assert lines[-1].startswith("NPU path: unavailable (m_bs1.om was built for Ascend910B3, this host is "
                                "Ascend310P3; convert with --soc-version Ascend310P3)")


# -- the FALLBACK line --------------------------------------------------------------------------------
@real_cann
def test_fallback_line_lists_the_places_searched_and_the_fix(no_cann, small_bundles):
    out = io.StringIO()
    session = open_session(small_bundles[1], "auto", out=out)
    session.close()
    line = out.getvalue().strip()
    assert line.startswith("[ascend-asr] FALLBACK: no NPU runtime: neither the 'acl' nor the 'ais_bench'")
    assert f"no CANN found in {no_cann}/usr_local_Ascend/{{ascend-toolkit," in line
    assert f"{no_cann}/home_Ascend/{{ascend-toolkit,ascend-toolkit/latest,cann,nnrt" in line
    assert "`source env.sh`" in line and "`ascend-asr doctor` tells more" in line
    assert line.endswith("running jasper_small_bs1.onnx on onnxruntime-cpu instead of jasper_small_bs1.om")
    assert len(out.getvalue().splitlines()) == 1


def test_fallback_hint_after_env_sh_and_for_cann_not_set_up(no_cann, monkeypatch):
    searched = ":".join(cann_candidates()[:3])
    monkeypatch.setenv("ASCEND_ASR_CANN_SEARCHED", searched)  # env.sh ran and found nothing
    monkeypatch.setenv("ASCEND_ASR_CANN_SET_ENV", "")
    hint = cann_hint()
    assert hint.startswith(f"no CANN env.sh found in {no_cann}/usr_local_Ascend/{{ascend-toolkit,ascend-toolkit/"
                           "latest,cann}/set_env.sh: install it (or point ASCEND_ASR_CANN_ROOTS at it)")
    nnrt = no_cann / "usr_local_Ascend" / "nnrt" / "set_env.sh"
    nnrt.parent.mkdir(parents=True)
    nnrt.write_text("")
    monkeypatch.delenv("ASCEND_ASR_CANN_SEARCHED")
    monkeypatch.delenv("ASCEND_ASR_CANN_SET_ENV")
    assert cann_hint().startswith(f"CANN is installed ({nnrt}) but not set up in this shell: `source env.sh` first")
    monkeypatch.setenv("ASCEND_ASR_CANN_SET_ENV", str(nnrt))  # sourced, and still no acl
    assert cann_hint().startswith(f"env.sh sourced {nnrt}, yet they do not import in this Python")
