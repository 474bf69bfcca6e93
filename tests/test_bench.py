"""`ascend-asr bench` on the bundled held-out clips, the duration mix, and memory measured in the working process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ascend_asr import bench as bench_module
from ascend_asr.benchmark import _run_measured, feature_workers_needed, peak_rss_kib
from ascend_asr.bundle import convert
from ascend_asr.demo import DEMO_MANIFEST
from ascend_asr.export import export_onnx
from ascend_asr.families import load_model, reference_checkpoint
from ascend_asr.profiles import load_profile
from ascend_asr.recipes import duration_mix

from .conftest import REPO

SPEECH = os.path.join(os.path.dirname(REPO), "shared", "data", "speech")  # the shared real clips, where present
SECTIONS = ("## Throughput", "## Where host time goes", "## Gear use", "## ais_bench timing keys", "## Memory",
            "## Environment", "## Plots", "Feature workers needed to keep up", "Speed-up over pad-to-max")
BENCH_KEYS = ("NPU_compute_time", "H2D_latency", "D2H_latency", "throughput", "run", "pad_to_max", "host_time",
              "feature_workers", "memory", "environment", "dropped_utterances", "speedup_vs_pad_to_max")


@pytest.fixture(scope="module")
def jasper_small_bundle(tmp_path_factory):
    """The shipped jasper_small checkpoint, exported and converted (batch 4, the profile's three gears)."""
    tmp = tmp_path_factory.mktemp("bench_bundle")
    profile = load_profile("jasper_small")
    onnx_path = export_onnx(load_model(profile, reference_checkpoint("jasper_small")), str(tmp / "m.onnx"))
    return convert(profile, onnx_path, str(tmp / "b"), batch_sizes=[4], build_om=False)[0]


@pytest.fixture(scope="module")
def bench_report(jasper_small_bundle, tmp_path_factory):
    """`python -m ascend_asr.bench` on the held-out clips, in a process of its own, launched from a parent
    holding 400 MiB: the memory figure must be the worker's, not the parent's."""
    out = tmp_path_factory.mktemp("bench") / "report"
    ballast = bytearray(400 << 20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touched: resident in this (the parent) process
    proc = subprocess.run([sys.executable, "-m", "ascend_asr.bench", "--model", jasper_small_bundle.onnx_path,
                           "--manifest", DEMO_MANIFEST, "--output", str(out), "--backend", "onnxruntime"],
                          capture_output=True, text=True, timeout=600)
    del ballast
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_bench_writes_a_report_with_every_section_and_ais_bench_timing_keys(bench_report):
    out, stdout = bench_report
    report = (out / "report.md").read_text()
    for section in SECTIONS:
        assert section in report, section
    b = json.loads((out / "bench.json").read_text())
    for key in BENCH_KEYS:
        assert key in b, key
    for key in ("min", "max", "mean", "median", "percentile(99%)", "count"):
        assert key in b["NPU_compute_time"]
    run, pad = b["run"], b["pad_to_max"]
    assert run["utterances"] == pad["utterances"] == 9 and b["dropped_utterances"] == 0
    assert pad["transcripts_identical"] and pad["gears"] == [1024] and pad["batch_size"] == 1
    assert run["batch_size"] == 4 and sum(run["gear_use"].values()) == 9
    assert 0 < pad["padding_efficiency"] < run["padding_efficiency"] <= 1  # same data, padded to the largest gear
    assert run["latency_ms"]["p50"] <= run["latency_ms"]["p99"] and run["rtfx"] > 0 and run["utterances_per_s"] > 0
    assert set(b["host_time"]) >= {"read_s", "features_s", "copy_s", "device_s", "decode_write_s"}
    assert b["feature_workers"]["needed"] >= 1
    assert b["environment"]["python"] and b["environment"]["onnxruntime_providers"]
    assert "report:" in stdout and "utt/s" in stdout


def test_bench_plots_are_pngs_or_the_report_says_why_not(bench_report):
    out, _ = bench_report
    b = json.loads((out / "bench.json").read_text())
    report = (out / "report.md").read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert b["plots"] == [] and "matplotlib is not installed" in report
        return
    assert {"latency.png", "gears.png", "host_time.png", "strategies.png"} <= set(b["plots"])
    for name in b["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name})" in report


def test_bench_memory_is_the_working_process_not_its_parent(bench_report):
    out, _ = bench_report
    memory = json.loads((out / "bench.json").read_text())["memory"]
    if sys.platform.startswith("linux"):
        assert memory["source"].startswith("VmHWM")
    assert 0 < memory["peak_rss_mib"] < 400  # the parent held 400 MiB more than that when it started the bench


def test_benchmark_child_memory_is_measured_inside_the_child():
    """ru_maxrss from wait4 (and the child's own RUSAGE_SELF) keep the forking parent's peak: not used."""
    ballast = bytearray(300 << 20)
    ballast[::4096] = b"\1" * len(ballast[::4096])
    _, kib, how = _run_measured("json.tool", ["--help"])
    del ballast
    assert kib / 1024 < 200, (kib, how)
    assert peak_rss_kib()[0] / 1024 >= 300


def test_bench_without_matplotlib_says_so(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    run = {"_latencies": [1.0], "latency_ms": {"p50": 1.0, "p99": 1.0}, "gear_use": {"256": 1},
           "utterances_per_s": 1.0, "padding_efficiency": 0.5}
    assert bench_module.write_plots(str(tmp_path), run, None, {"device_s": 1.0}, [1.0]) == []
    assert not list(tmp_path.iterdir())


def test_feature_workers_needed_rounds_up():
    assert feature_workers_needed(6.5, 2.0) == 4 and feature_workers_needed(1.0, 2.0) == 1
    assert feature_workers_needed(4.0, 2.0) == 2 and feature_workers_needed(1.0, 0) is None


def test_duration_mix_draws_are_deterministic_and_on_target():
    d = duration_mix.draw_durations(300, seed=0)
    assert np.array_equal(d, duration_mix.draw_durations(300, seed=0))
    assert not np.array_equal(d, duration_mix.draw_durations(300, seed=1))
    assert abs(np.median(d) - 6.0) < 0.3
    assert abs(np.percentile(d, 5) - 1.7) < 0.25
    assert abs(np.percentile(d, 95) - 20.0) < 1.5
    assert d.max() <= 35.0 and d.min() >= duration_mix.MIN_SECONDS


def test_duration_mix_concatenates_real_clips_to_the_drawn_durations(tmp_path):
    """A tiny mix from the bundled clips (the shared folder's layout: manifest.tsv and fsdd.tsv)."""
    import soundfile as sf

    from ascend_asr.datasets import read_manifest

    speech = tmp_path / "speech"
    speech.mkdir()
    rows = [line.split("\t") for line in open(DEMO_MANIFEST, encoding="utf-8").read().splitlines()[1:] if line]
    base = os.path.dirname(DEMO_MANIFEST)
    for name, pick in (("manifest.tsv", lambda r: not r[0].startswith("fsdd")),
                       ("fsdd.tsv", lambda r: r[0].startswith("fsdd"))):
        with open(speech / name, "w", encoding="utf-8") as f:
            f.write("path\tduration\ttext\n")
            for r in filter(pick, rows):
                f.write(f"{os.path.join(base, r[0])}\t{r[1]}\t{r[2]}\n")
    a = duration_mix.make_mix(str(speech), str(tmp_path / "a"), count=4, seed=3, out=open(os.devnull, "w"))
    b = duration_mix.make_mix(str(speech), str(tmp_path / "b"), count=4, seed=3, out=open(os.devnull, "w"))
    entries = list(read_manifest(a))
    assert len(entries) == 4
    plans = duration_mix.plan_mix(duration_mix.read_clips(str(speech)), 4, seed=3)
    shortest = min(float(r[1]) for r in rows)
    for entry, other, plan in zip(entries, read_manifest(b), plans):
        samples, rate = sf.read(entry.audio_path)
        assert rate == 16000 and np.array_equal(samples, sf.read(other.audio_path)[0])  # deterministic
        assert entry.text == other.text and entry.text.strip()
        assert abs(len(samples) / rate - max(plan["drawn"], shortest)) < 0.06  # to the drawn duration
        assert abs(entry.duration - len(samples) / rate) < 0.002


@pytest.mark.skipif(not os.path.isfile(os.path.join(SPEECH, "fsdd.tsv")), reason="no shared speech folder here")
def test_duration_mix_plan_over_the_shared_clips_matches_the_draws():
    clips = duration_mix.read_clips(SPEECH)
    plans = duration_mix.plan_mix(clips, 300, seed=0)
    made = np.array([sum(clips[i][2] for i in p["clips"]) + sum(p["gaps"]) + p["tail"] for p in plans])
    drawn = np.array([p["drawn"] for p in plans])
    assert np.all(made >= drawn - 1e-6) and np.all(made - drawn < 0.7)  # longer only when a draw beats every clip
    assert abs(np.median(made) - 6.0) < 0.3 and made.max() <= 35.0 + 1e-6
