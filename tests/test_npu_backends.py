"""The NPU path (ATC, pyACL, ais_bench) end to end against the doubles in tests/npu_doubles/."""
import glob
import importlib
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ascend_asr.backends import open_session
from ascend_asr.backends.acl_backend import AclSession
from ascend_asr.bundle import convert, open_bundle
from ascend_asr.errors import BackendError, ShapeError
from ascend_asr.infer import InferOptions, infer
from ascend_asr.profiles import PROFILE_DIR, profile_from_dict
from ascend_asr.score import score_results
from ascend_asr.tensor_files import read_jsonl

from .npu_doubles import control


@pytest.fixture
def doubles(monkeypatch):
    control.activate(monkeypatch)
    yield monkeypatch
    control.purge()


def static_profile():
    """jasper_small with one frame count: a static OM, as ModelZoo builds them."""
    with open(os.path.join(PROFILE_DIR, "jasper_small.yaml")) as f:
        d = yaml.safe_load(f)
    d.update(name="jasper_small_static", frames=[1024], batch_sizes=[4])
    return profile_from_dict(d, "jasper_small_static.yaml")


@pytest.fixture(scope="session")
def om_bundles(tmp_path_factory, small_profile, small_onnx):
    """Bundles with OMs from the fake ATC: {'gears': bs4 gear OM, 'gears_bs1': bs1, 'static': bs4 static OM}."""
    out = str(tmp_path_factory.mktemp("om_bundles"))
    with pytest.MonkeyPatch.context() as mp:
        control.activate(mp)
        gears = convert(small_profile, small_onnx, out, build_om=True)
        static = convert(static_profile(), small_onnx, out, build_om=True)
    control.purge()
    return {"gears": gears[1], "gears_bs1": gears[0], "static": static[0]}


def run(bundle, prep, out, **options):
    console = io.StringIO()
    summary = infer(bundle.om_path, prep, str(out), InferOptions(progress=False, save_outputs="npy", **options),
                    out=console)
    return summary, console.getvalue()


def outputs_of(results):
    return {os.path.basename(p): np.load(p) for p in sorted(glob.glob(os.path.join(str(results), "outputs", "*.npy")))}


def hyps(results):
    return {r["id"]: r["hyp"] for r in read_jsonl(os.path.join(str(results), "hyps.jsonl"))}


@pytest.fixture(scope="session")
def reference_runs(tmp_path_factory, om_bundles, demo_prep):
    """onnxruntime on each bundle's ONNX: the outputs every NPU backend must reproduce."""
    runs = {}
    for key, bundle in om_bundles.items():
        out = tmp_path_factory.mktemp(f"ort_{key}")
        run(bundle, demo_prep, out, backend="onnxruntime")
        runs[key] = out
    return runs


@pytest.mark.parametrize("bundle_key", ["gears", "static", "gears_bs1"])
@pytest.mark.parametrize("backend,mode,api", [  # api: the CANN Python API generation
    ("acl", "sync", "new"), ("acl", "async", "new"), ("acl", "async", "old"),
    ("ais_bench", "sync", "new"), ("ais_bench", "sync", "old"),
])
def test_npu_backends_reproduce_onnxruntime(monkeypatch, tmp_path, om_bundles, reference_runs, demo_prep,
                                            bundle_key, backend, mode, api):
    control.activate(monkeypatch, acl_api=api, ais_bench_api=api)
    try:
        summary, console = run(om_bundles[bundle_key], demo_prep, tmp_path / "r", backend=backend, mode=mode)
    finally:
        control.purge()
    assert summary["backend"] == backend and summary["fallback"] is False and "FALLBACK" not in console
    assert summary["mode"] == mode and summary["device"] == 0
    reference = reference_runs[bundle_key]
    assert hyps(tmp_path / "r") == hyps(reference)
    ours, theirs = outputs_of(tmp_path / "r"), outputs_of(reference)
    assert ours.keys() == theirs.keys() and len(ours) == 16
    for name in ours:
        assert ours[name].shape == theirs[name].shape
        assert np.max(np.abs(ours[name].astype(np.float64) - theirs[name])) <= 1e-4, name
    batches = summary["batches"]
    assert batches == -(-8 // om_bundles[bundle_key].batch_size)
    assert summary["NPU_compute_time"]["count"] == batches
    assert summary["H2D_latency"]["count"] == batches and summary["D2H_latency"]["count"] == batches
    assert score_results(str(tmp_path / "r"))["wer"] == score_results(str(reference))["wer"] == summary["wer"]


def test_auto_takes_acl_when_a_device_answers_and_falls_back_visibly_when_none(monkeypatch, tmp_path, om_bundles,
                                                                                 demo_prep):
    control.activate(monkeypatch)
    summary, console = run(om_bundles["gears"], demo_prep, tmp_path / "npu")
    assert summary["backend"] == "acl" and summary["mode"] == "async" and "FALLBACK" not in console
    control.purge()
    control.activate(monkeypatch, devices=0)
    try:
        summary, console = run(om_bundles["gears"], demo_prep, tmp_path / "cpu")
    finally:
        control.purge()
    assert summary["backend"] == "onnxruntime-cpu" and summary["fallback"] is True
    assert "FALLBACK" in console and "device 0 does not answer" in console


def feeds_for(bundle, frames, batch=None, feats_dtype=np.float32, lens_dtype=np.int32, seed=0):
    batch = batch or bundle.batch_size
    rng = np.random.default_rng(seed)
    return {"feats": rng.standard_normal((batch, 64, frames)).astype(feats_dtype),
            "feat_lens": np.full((batch,), frames - 5).astype(lens_dtype)}


def test_acl_wrong_size_input_names_the_input_and_both_sizes(doubles, om_bundles):
    bundle = om_bundles["static"]
    with AclSession(bundle.om_path) as session:
        with pytest.raises(BackendError) as err:
            session.run(feeds_for(bundle, 1024, batch=2))
    message = str(err.value)
    assert "input feats" in message and str(2 * 64 * 1024 * 4) in message and str(4 * 64 * 1024 * 4) in message
    assert sum(importlib.import_module("acl")._double.live().values()) == 0


def test_acl_casts_a_wrong_dtype_instead_of_reinterpreting_it(doubles, om_bundles):
    bundle = om_bundles["gears"]
    with AclSession(bundle.om_path, mode="sync") as session:
        expected = session.run(feeds_for(bundle, 512))
        cast = session.run(feeds_for(bundle, 512, feats_dtype=np.float64, lens_dtype=np.int64))
    for name in expected:
        np.testing.assert_array_equal(cast[name], expected[name])


def test_a_batch_no_gear_holds_lists_the_gears(doubles, om_bundles):
    bundle = om_bundles["gears"]
    with AclSession(bundle.om_path) as session, pytest.raises(ShapeError) as err:
        session.run(feeds_for(bundle, 300))
    message = str(err.value)
    for frames in (256, 512, 1024):
        assert f"feats[4, 64, {frames}]" in message
    assert "feats[4, 64, 300]" in message


def test_a_load_error_says_what_the_code_means_and_frees_everything(doubles, tmp_path, om_bundles):
    bundle = om_bundles["static"]
    bad = tmp_path / "broken.om"
    bad.write_bytes(b"not an om at all")
    with pytest.raises(BackendError) as err:
        AclSession(str(bad))
    assert "100012" in str(err.value) and "ACL_ERROR_DESERIALIZE_MODEL" in str(err.value)
    assert "--soc_version" in str(err.value)
    acl = importlib.import_module("acl")
    assert sum(acl._double.live().values()) == 0
    acl.rt.set_device  # noqa: B018 (the double is still usable)
    with AclSession(bundle.om_path):
        pass


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("failing,code", [("mdl.execute", 507899), ("rt.malloc", 207001)])
def test_every_resource_is_freed_after_an_error(doubles, om_bundles, mode, failing, code):
    acl = importlib.import_module("acl")
    bundle = om_bundles["gears"]
    call = failing if mode == "sync" or failing != "mdl.execute" else "mdl.execute_async"
    acl._double.fail(call, code)
    with pytest.raises(BackendError) as err:
        with AclSession(bundle.om_path, mode=mode) as session:
            session.run(feeds_for(bundle, 256))
    assert str(code) in str(err.value)
    assert acl._double.live() and sum(acl._double.live().values()) == 0, acl._double.live()


def test_acl_init_twice_is_fine(doubles, om_bundles):
    acl = importlib.import_module("acl")
    assert acl.init() == 0
    with AclSession(om_bundles["static"].om_path, output_names=["prob", "label"]) as session:  # as open_session does
        out = session.run(feeds_for(om_bundles["static"], 1024))
    assert set(out) == {"prob", "label"}
    assert acl._double.init_calls == 2


def test_outputs_are_matched_by_name_when_the_om_orders_them_differently(doubles, tmp_path, om_bundles):
    """Without --out_nodes the fake ATC reverses the outputs, as ModelZoo saw real OMs do."""
    bundle = om_bundles["static"]
    cmd = [c for c in bundle.manifest["atc_command"] if not c.startswith("--out_nodes")]
    shutil.copy(bundle.onnx_path, tmp_path)
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    om = glob.glob(str(tmp_path / f"{bundle.name}*.om"))[0]
    feeds = feeds_for(bundle, 1024)
    names = [t.name for t in bundle.outputs]  # as open_session asks for them
    with AclSession(bundle.om_path, mode="sync", output_names=names) as pinned, \
            AclSession(om, mode="sync", output_names=names) as reordered:
        assert reordered._outputs[0].name.endswith(":0:label")  # "<op>:<idx>:<tensor>", as ATC names it
        expected, got = pinned.run(feeds), reordered.run(feeds)
    for name in ("prob", "label"):
        np.testing.assert_array_equal(got[name], expected[name])


def test_async_submits_the_next_batch_before_waiting_for_the_last(doubles, om_bundles):
    acl = importlib.import_module("acl")
    bundle = om_bundles["gears"]
    from ascend_asr.backends import run_pipelined
    results = []
    with AclSession(bundle.om_path, mode="async") as session:
        assert session.max_in_flight == 2
        batches = ((feeds_for(bundle, 256, seed=k), k) for k in range(4))
        run_pipelined(session, batches, lambda k, out: results.append(k))
    calls = [c for c in acl._double.calls if c in ("mdl.execute_async", "rt.synchronize_stream")]
    assert results == [0, 1, 2, 3]
    assert calls[:3] == ["mdl.execute_async", "mdl.execute_async", "rt.synchronize_stream"]


def test_om_left_from_another_conversion_is_refused(doubles, tmp_path, small_profile, small_onnx):
    out = str(tmp_path)
    convert(small_profile, small_onnx, out, batch_sizes=[1], build_om=True)
    convert(small_profile, small_onnx, out, batch_sizes=[1], build_om=False)
    bundle = open_bundle(os.path.join(out, "jasper_small_bs1.om"))
    assert os.path.exists(bundle.om_path) and bundle.manifest["om"] is None
    with pytest.raises(BackendError, match="not the OM described"):
        open_session(bundle, "acl", out=io.StringIO())


def test_fake_device_without_compute_returns_zeros_in_the_gear_shapes(doubles, om_bundles):
    """FAKE_NPU_COMPUTE=0 (for throughput benchmarks) keeps shapes and dtypes, skips onnxruntime."""
    doubles.setenv("FAKE_NPU_COMPUTE", "0")
    with AclSession(om_bundles["gears"].om_path, output_names=["prob", "label"]) as session:  # as open_session does
        out = session.run(feeds_for(om_bundles["gears"], 512))
    assert out["prob"].shape == (4, 256, 29) and out["prob"].dtype == np.float32 and not out["prob"].any()
    assert out["label"].shape == (4,) and out["label"].dtype == np.int32


def test_infer_command_runs_on_the_npu_when_cann_modules_are_on_the_path(doubles, tmp_path, om_bundles, demo_prep):
    """As on a CANN host after `source env.sh`: the modules come from PYTHONPATH, atc from PATH."""
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "ascend_asr.infer", "--model", om_bundles["gears_bs1"].om_path,
                           "--input", demo_prep, "--output", str(out), "--backend", "ais_bench", "--no-progress"],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert "backend=ais_bench  fallback=false" in proc.stdout
    assert len(read_jsonl(str(out / "hyps.jsonl"))) == 8
