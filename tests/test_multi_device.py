"""Several devices on one host (--device 0,1,2,3 / all), against the doubles' simulated devices: one worker
process per device, the split by frames, the merge, the summary, resume, and a device that cannot be opened.
Timing ratios are measured by `python -m ascend_asr.multi_device --bench`, never asserted here."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ascend_asr import multi_device
from ascend_asr.bundle import convert
from ascend_asr.errors import BackendError, OptionError
from ascend_asr.infer import InferOptions, infer
from ascend_asr.multi_device import infer_devices, infer_on, parse_devices, replicate_prep, split_by_frames
from ascend_asr.tensor_files import read_jsonl

from .npu_doubles import control

COPIES = 3  # the bundled clips three times: 24 utterances, 6 batches at batch 4


@pytest.fixture(scope="module")
def om_bundle(tmp_path_factory, small_profile, small_onnx):
    out = str(tmp_path_factory.mktemp("md_bundles"))
    with pytest.MonkeyPatch.context() as mp:
        control.activate(mp)
        bundle = convert(small_profile, small_onnx, out, build_om=True)[1]
    control.purge()
    return bundle


@pytest.fixture(scope="module")
def prep24(tmp_path_factory, demo_prep):
    return replicate_prep(demo_prep, str(tmp_path_factory.mktemp("md_prep") / "prep"), COPIES)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, om_bundle, prep24):
    out = str(tmp_path_factory.mktemp("md_ref") / "r")
    infer(om_bundle.om_path, prep24, out, InferOptions(backend="onnxruntime", progress=False), out=io.StringIO())
    return hyps(out)


@pytest.fixture
def devices4(monkeypatch):
    control.activate(monkeypatch, devices=4)
    yield monkeypatch
    control.purge()


def hyps(results):
    return {r["id"]: r["hyp"] for r in read_jsonl(os.path.join(str(results), "hyps.jsonl"))}


def run(bundle, prep, out, devices, **options):
    console = io.StringIO()
    summary = infer_devices(bundle.om_path, prep, str(out), devices, InferOptions(progress=False, **options),
                            out=console)
    return summary, console.getvalue()


def check_merged(out, summary, n_devices, backend):
    rows = read_jsonl(os.path.join(str(out), "hyps.jsonl"))
    stems = [r["stem"] for r in rows]
    assert stems == sorted(set(stems)) and len(rows) == 8 * COPIES  # stem order, each utterance once
    assert summary["utterances"]["scored"] == 8 * COPIES and summary["fallback"] is False
    assert summary["backend"] == backend
    per_device = summary["multi_device"]["devices"]
    assert [d["device"] for d in per_device] == list(range(n_devices)) == summary["devices"]
    for d in per_device:
        assert d["backend"] == backend and d["utterances"] > 0 and d["batches"] > 0
        assert d["NPU_compute_time"]["count"] == d["batches"] and d["end_to_end_utterances_per_s"] > 0
        assert {"H2D_latency", "D2H_latency", "throughput", "loop_wall_s", "wall_time_s"} <= d.keys()
    total = summary["multi_device"]["total"]
    assert total["devices"] == n_devices and total["utterances"] == 8 * COPIES
    assert total["batches"] == sum(d["batches"] for d in per_device) == summary["batches"]
    assert total["end_to_end_utterances_per_s"] > 0 and total["utterances_per_s"] > 0
    saved = json.load(open(os.path.join(str(out), "summary.json")))
    assert saved["multi_device"]["total"]["utterances"] == 8 * COPIES


@pytest.mark.parametrize("backend", ["acl", "ais_bench"])
def test_one_two_and_four_devices_give_the_same_hyps_and_per_device_summaries(devices4, tmp_path, om_bundle, prep24,
                                                                               reference, backend):
    for n in (1, 2, 4):
        out = tmp_path / f"r{n}"
        summary, console = run(om_bundle, prep24, out, list(range(n)), backend=backend)
        assert hyps(out) == reference, n
        check_merged(out, summary, n, backend)
        assert "FALLBACK" not in console
        for d in range(n):
            assert f"[device {d}] [ascend-asr] backend: {backend}" in console
            assert os.path.isfile(os.path.join(str(out), "devices", str(d), "hyps.jsonl"))


def test_the_split_is_balanced_by_frames_and_deterministic():
    frames = [700, 30, 512, 90, 256, 256, 1000, 64, 64, 333, 128, 800, 5, 420]
    rows = [{"stem": f"{i:012d}", "padded_frames": f} for i, f in enumerate(frames)]
    shares = split_by_frames(rows, [0, 1, 2])
    assert shares == split_by_frames(list(rows), [0, 1, 2])
    assert sorted(r["stem"] for s in shares.values() for r in s) == [r["stem"] for r in rows]
    for share in shares.values():
        assert [r["stem"] for r in share] == sorted(r["stem"] for r in share)  # each share keeps prep order
    loads = [sum(r["padded_frames"] for r in s) for s in shares.values()]
    assert max(loads) - min(loads) <= max(frames)  # greedy largest-first: within one utterance of each other
    assert max(loads) <= sum(frames) / 3 + max(frames) / 2
    assert split_by_frames(rows[:1], [0, 1]) == {0: rows[:1], 1: []}


def test_device_argument():
    assert parse_devices("0") == [0] and parse_devices("0,1, 3") == [0, 1, 3] and parse_devices("ALL") == "all"
    for bad in ("0,0", "x", "-1", "1,"):
        with pytest.raises(OptionError, match="--device"):
            parse_devices(bad)


def test_all_is_every_device_the_runtime_reports(monkeypatch, tmp_path, om_bundle, prep24, reference):
    control.activate(monkeypatch, devices=3)
    try:
        assert multi_device.resolve_devices("all", "acl") == ([0, 1, 2], None)
        assert multi_device.resolve_devices("all", "ais_bench") == ([0, 1, 2], None)  # npu-smi's count
        summary = infer_on("all", om_bundle.om_path, prep24, str(tmp_path / "r"), InferOptions(progress=False),
                           out=io.StringIO())
    finally:
        control.purge()
    assert summary["devices"] == [0, 1, 2] and hyps(tmp_path / "r") == reference
    check_merged(tmp_path / "r", summary, 3, "acl")


def test_a_device_that_does_not_exist_fails_the_run_naming_it(devices4, tmp_path, om_bundle, prep24, reference):
    with pytest.raises(BackendError, match=r"device 5: .*reports 4 device"):
        run(om_bundle, prep24, tmp_path / "r", [0, 5], backend="acl")
    # the same device found missing by its worker (as when it fails to open): the others' work is kept
    devices4.setattr(multi_device, "resolve_devices", lambda devices, backend: (devices, None))
    with pytest.raises(BackendError, match=r"device 7 failed \(exit 2\): .*device 7") as err:
        run(om_bundle, prep24, tmp_path / "w", [0, 7], backend="ais_bench")
    assert "rerun" in str(err.value)
    done = hyps(tmp_path / "w")
    assert done and len(done) < 8 * COPIES and all(reference[k] == v for k, v in done.items())
    devices4.undo()
    control.activate(devices4, devices=4)
    summary, _ = run(om_bundle, prep24, tmp_path / "w", [0, 1], backend="ais_bench")  # resumes the missing share
    assert hyps(tmp_path / "w") == reference and summary["utterances"]["resumed"] == len(done)


def test_cpu_workers_without_an_npu_are_announced(monkeypatch, tmp_path, om_bundle, prep24, reference):
    control.activate(monkeypatch, devices=0)
    try:
        summary, console = run(om_bundle, prep24, tmp_path / "auto", [0, 1])
        with pytest.raises(BackendError, match="--device all: no NPU device answers"):
            run(om_bundle, prep24, tmp_path / "acl", "all", backend="acl")
    finally:
        control.purge()
    assert summary["fallback"] is True and summary["backend"] == "onnxruntime-cpu"
    assert "[ascend-asr] FALLBACK: no NPU device answers" in console
    assert "[device 1] [ascend-asr] FALLBACK" in console and hyps(tmp_path / "auto") == reference
    summary, console = run(om_bundle, prep24, tmp_path / "ort", [0, 1], backend="onnxruntime")
    assert [d["label"] for d in summary["multi_device"]["devices"]] == ["cpu worker 0", "cpu worker 1"]
    assert summary["fallback"] is False and hyps(tmp_path / "ort") == reference
    with pytest.raises(OptionError, match="--device all counts NPU devices"):
        run(om_bundle, prep24, tmp_path / "ort2", "all", backend="onnxruntime")


def test_an_interrupted_run_resumes_each_share_without_duplicates(devices4, tmp_path, om_bundle, prep24, reference):
    out = tmp_path / "r"
    command = [sys.executable, "-m", "ascend_asr.infer", "--model", om_bundle.om_path, "--input", prep24,
               "--output", str(out), "--device", "0,1", "--backend", "acl", "--no-progress"]
    env = dict(os.environ, FAKE_NPU_LATENCY_MS="300")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not any(
            read_jsonl(str(out / "devices" / d / "hyps.jsonl")) for d in ("0", "1")
            if os.path.isfile(out / "devices" / d / "hyps.jsonl")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the parent stops its workers, merges what they finished
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted; rerun the same command to resume" in stderr
    first = hyps(out)
    assert 0 < len(first) < 8 * COPIES and all(reference[k] == v for k, v in first.items())
    assert not os.path.exists(out / ".ascend-asr.lock")
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(str(out / "hyps.jsonl"))
    assert len(rows) == len({r["stem"] for r in rows}) == 8 * COPIES and hyps(out) == reference
    summary = json.load(open(out / "summary.json"))
    assert summary["utterances"]["resumed"] == len(first)
    assert summary["multi_device"]["total"]["utterances"] == 8 * COPIES - len(first)
    # a later rerun with one device finds everything done through the device folders, redoes nothing
    again = subprocess.run(command[:-5] + ["--device", "0", "--backend", "acl", "--no-progress"], capture_output=True,
                           text=True, env=os.environ.copy())
    assert again.returncode == 0 and "nothing to run" in again.stdout
    assert len(read_jsonl(str(out / "hyps.jsonl"))) == 8 * COPIES


def test_rerunning_a_finished_multi_device_run_keeps_its_merged_summary(devices4, tmp_path, om_bundle, prep24,
                                                                        reference):
    out = tmp_path / "r"
    first, _ = run(om_bundle, prep24, out, [0, 1], backend="acl")
    segments = open(os.path.join(str(out), "segments.jsonl")).read()
    again, console = run(om_bundle, prep24, out, [0, 1], backend="acl")
    assert "nothing to run" in console
    assert again["multi_device"] == first["multi_device"]  # not replaced by a one-device summary
    assert open(os.path.join(str(out), "segments.jsonl")).read() == segments  # no empty segment added
    assert hyps(out) == reference
