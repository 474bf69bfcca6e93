"""`ascend-asr bench`: run a bundle over a dataset and write a throughput report (report.md, bench.json, plots).

    ascend-asr bench --model bundles/jasper_small_bs4.om --manifest data/manifest.tsv --output bench_report

The dataset is a manifest (preprocessed here into the work folder, timed) or an existing prep/ (`--input`).
The report gives utterances per second, RTFx, padding efficiency, per-batch latency p50/p99, where the host's
time goes, utterances per frame gear, the same data through ModelZoo's pad-to-max strategy (one gear, batch 1,
manifest order) side by side, memory measured in the process that did the work, and an environment card.
bench.json keeps ais_bench's timing keys (NPU_compute_time, H2D_latency, D2H_latency, throughput) as infer's
summary.json has them. Plots need matplotlib (`pip install ascend-asr[plot]`); without it the report says so.
Speeds are one run on one machine: compare ratios within a report, not figures across machines.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import shlex
import shutil
import sys
import time

import numpy as np

from .benchmark import feature_workers_needed, peak_rss_kib
from .errors import ManifestError, OptionError, ProfileError
from .runner import run

REPORT = "report.md"
BENCH_JSON = "bench.json"
MODELZOO_PAD_FRAMES = 4000  # ModelZoo's Jasper pads every utterance to 4000 frames (40 s) at batch 1
TIMING_KEYS = ("NPU_compute_time", "H2D_latency", "D2H_latency", "throughput")  # ais_bench's, as summary.json has them
STAGES = ("read", "features", "copy", "device", "decode_write")


# -- measurements -----------------------------------------------------------------------------------------------
def time_features(manifest: str, profile, limit: int | None = None) -> dict:
    """Read and feature seconds per utterance, timed around the two calls (load_audio, the frontend), one pass.

    preprocess does the same work (and writes prep/); it is timed as a whole, and this pass splits it."""
    from .audio import load_audio
    from .datasets import BadEntry, read_manifest
    from .featurize import featurize
    from .frontends import build_frontend

    frontend = build_frontend(profile.frontend)
    read_s, features_s, durations = [], [], []
    for n, entry in enumerate(read_manifest(manifest)):
        if limit is not None and n >= limit:
            break
        if isinstance(entry, BadEntry):
            continue
        try:
            start = time.perf_counter()
            samples = load_audio(entry.audio_path, frontend.params.sample_rate)
            loaded = time.perf_counter()
            featurize(frontend, samples, profile.frames, profile_source=profile.source)
            done = time.perf_counter()
        except Exception:  # noqa: BLE001 - preprocess reports each bad utterance; here it only goes untimed
            continue
        read_s.append(loaded - start)
        features_s.append(done - loaded)
        durations.append(len(samples) / frontend.params.sample_rate)
    return {"read_s": read_s, "features_s": features_s, "durations": durations}


def run_infer(model: str, prep: str, results: str, backend: str, device: int, mode: str) -> tuple[dict, list, float]:
    """(summary.json, segment records, wall seconds) of one fresh infer run into `results`."""
    from .infer import InferOptions, infer
    from .results import read_segments

    if os.path.isdir(results):
        shutil.rmtree(results)  # the bench's own folder: a fresh run, never a resumed one
    start = time.perf_counter()
    summary = infer(model, prep, results, InferOptions(backend=backend, device=device, mode=mode, progress=False),
                    out=io.StringIO())
    return summary, read_segments(results), time.perf_counter() - start


def batch_latencies(segments: list) -> list[float]:
    """Per-batch device latency (ms): H2D + compute + D2H where the backend timed all three, else compute."""
    out = []
    for s in segments:
        compute, h2d, d2h = s.get("compute_ms", []), s.get("h2d_ms", []), s.get("d2h_ms", [])
        if len(h2d) == len(compute) == len(d2h):
            out += [c + a + b for c, a, b in zip(compute, h2d, d2h)]
        else:
            out += list(compute)
    return out


def _total_ms(block: dict) -> float:
    return (block.get("mean") or 0.0) * (block.get("count") or 0)


def summarize_run(summary: dict, segments: list, wall_s: float, gears, prep_rows: list) -> dict:
    """The figures of one infer run, as the report shows them."""
    from .batching import smallest_gear

    lat = batch_latencies(segments)
    loop = sum(s.get("loop_wall_s") or 0.0 for s in segments)
    device_s, copy_s = _total_ms(summary["NPU_compute_time"]) / 1000.0, \
        (_total_ms(summary["H2D_latency"]) + _total_ms(summary["D2H_latency"])) / 1000.0
    gear_use = {}
    for r in prep_rows:
        g = smallest_gear(r["padded_frames"], gears)
        gear_use[str(g)] = gear_use.get(str(g), 0) + 1
    audio = summary["audio_seconds"] or 0.0
    return {
        "model": summary["model"], "backend": summary["backend"], "fallback": summary["fallback"],
        "mode": summary["mode"], "batch_size": summary["batch_size"], "gears": list(gears),
        "utterances": summary["utterances"]["scored"], "failed": summary["utterances"]["failed"],
        "audio_seconds": audio, "infer_wall_s": wall_s, "loop_wall_s": loop,
        "utterances_per_s": summary["end_to_end_utterances_per_s"],
        "rtfx": audio / loop if loop else None,
        "padding_efficiency": summary["padding_efficiency"],
        "batches": summary["batches"],
        "latency_ms": {"p50": float(np.percentile(lat, 50)) if lat else None,
                       "p99": float(np.percentile(lat, 99)) if lat else None,
                       "mean": float(np.mean(lat)) if lat else None, "count": len(lat)},
        "device_s": device_s, "copy_s": copy_s,
        "host_remainder_s": max(0.0, loop - device_s - copy_s),
        "gear_use": gear_use,
        **{k: summary[k] for k in TIMING_KEYS},
        "wer": summary.get("wer"), "cer": summary.get("cer"),
        "_latencies": lat,
    }


def environment() -> dict:
    """CPU, Python, numpy, onnxruntime (version, providers), CANN and driver versions where present."""
    from . import doctor

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.lower().startswith("model name")), cpu)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    env = {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": usable, "machine": platform.machine(),
           "os": platform.platform(), "python": platform.python_version(), "numpy": np.__version__}
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["onnxruntime_providers"] = list(ort.get_available_providers())
    except Exception as exc:  # noqa: BLE001 - a card item, never a failure
        env["onnxruntime"] = f"not importable ({exc.__class__.__name__})"
    try:
        search = doctor.search_cann()
        found = doctor._toolkit_version(doctor._cann_homes(search, shutil.which("atc")))
        env["cann"] = f"{found[0]} ({found[1]})" if found else "not found"
    except Exception as exc:  # noqa: BLE001
        env["cann"] = f"unknown ({exc.__class__.__name__})"
    env["driver"] = _driver_version()
    try:
        _, count, chip, note = doctor.npu_smi_devices()
        env["npu_smi"] = note
    except Exception as exc:  # noqa: BLE001
        env["npu_smi"] = f"unknown ({exc.__class__.__name__})"
    return env


def _driver_version() -> str:
    for path in ("/usr/local/Ascend/driver/version.info", "/usr/local/Ascend/version.info"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, sep, value = line.partition("=")
                    if sep and key.strip().lower() in ("version", "driver_version"):
                        return f"{value.strip()} ({path})"
        except OSError:
            continue
    return "not found"


def pad_to_max_bundle(bundle, profile, frames: int, output_dir: str):
    """ModelZoo's strategy as a bundle: the same model converted with one gear of `frames` frames, batch 1."""
    from .bundle import convert

    source = (bundle.manifest.get("source_model") or {}).get("path")
    if not source or not os.path.isfile(source):
        source = bundle.onnx_path
    single = dataclasses.replace(profile, frames=(frames,), batch_sizes=(1,))
    build_om = None if os.path.isfile(bundle.om_path) else False
    return convert(single, source, output_dir, name=f"{bundle.name}_padmax{frames}", batch_sizes=[1],
                   build_om=build_om, out=io.StringIO())[0]


# -- the command --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BenchOptions:
    backend: str = "auto"
    device: int = 0
    mode: str = "async"
    profile: str | None = None  # for preprocessing a manifest (default: the bundle's profile)
    pad_to_max: str = "auto"  # "auto" (the largest gear), "none", or a frame count
    limit: int | None = None
    plots: bool = True


def bench(model: str, output: str, manifest: str | None = None, prep_dir: str | None = None,
          work_dir: str | None = None, options: BenchOptions = BenchOptions(), out=sys.stdout,
          command: str | None = None) -> dict:
    from .bundle import open_bundle
    from .prep import open_prep
    from .preprocess import preprocess
    from .profiles import load_profile

    if (manifest is None) == (prep_dir is None):
        raise OptionError("give the dataset as --manifest (preprocessed here) or --input (an existing prep/), "
                          "one of the two")
    bundle = open_bundle(model)
    bundle.check()
    if manifest is not None and not os.path.isfile(manifest) and not os.path.isdir(manifest):
        raise ManifestError(f"{manifest}: manifest not found; give a .tsv/.json/.jsonl manifest or a LibriSpeech "
                            "folder")
    if prep_dir is not None:
        open_prep(prep_dir)  # a missing or bad prep/ fails here, before any measurement
    pad_frames = _pad_frames(options.pad_to_max, bundle)
    try:
        profile = load_profile(options.profile or bundle.manifest["profile"])
    except ProfileError as exc:
        if options.profile:
            raise
        raise ProfileError(f"{bundle.manifest_path}: its profile {bundle.manifest['profile']!r} is not a known "
                           f"profile ({exc}); give the profile file it was converted from with --profile") from exc
    profile = dataclasses.replace(profile, frames=tuple(bundle.frames))  # prep/ padded to the bundle's gears
    work = work_dir or os.path.join(output, "work")
    os.makedirs(output, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    notes = []
    figures = {"command": command, "bundle": bundle.name, "dataset": os.path.abspath(manifest or prep_dir)}

    stages = {}
    if manifest is not None:
        print(f"[ascend-asr] bench: timing read and features on {manifest}", file=out)
        feat = time_features(manifest, profile, options.limit)
        prep_dir = os.path.join(work, "prep")
        if os.path.isdir(prep_dir):
            shutil.rmtree(prep_dir)
        start = time.perf_counter()
        prep_summary = preprocess(manifest, prep_dir, profile, limit=options.limit, progress=False, log=io.StringIO())
        stages["preprocess_wall_s"] = time.perf_counter() - start
        stages["read_s"], stages["features_s"] = sum(feat["read_s"]), sum(feat["features_s"])
        figures["preprocess"] = {"written": prep_summary.written, "failed": prep_summary.failed,
                                 "wall_s": stages["preprocess_wall_s"]}
    else:
        feat = None
        notes.append("features came from an existing prep/: read and features were not part of this run")
    prep = open_prep(prep_dir)
    durations = [r["duration"] for r in prep.rows]

    print(f"[ascend-asr] bench: {bundle.name} over {len(prep.rows)} utterances", file=out)
    summary, segments, wall = run_infer(model, prep_dir, os.path.join(work, "results"), options.backend,
                                        options.device, options.mode)
    main = summarize_run(summary, segments, wall, bundle.frames, prep.rows)
    rss, rss_how = peak_rss_kib()  # this process read, featurized and ran the model: before any conversion below
    figures["memory"] = {"peak_rss_mib": rss / 1024, "source": rss_how,
                         "process": "the bench process itself (it preprocessed and ran inference in-process), "
                                    "measured before the pad-to-max bundle was converted"}

    stages["copy_s"], stages["device_s"] = main["copy_s"], main["device_s"]
    stages["decode_write_s"] = main["host_remainder_s"]
    figures["host_time"] = stages
    per_batch = None
    if feat and feat["features_s"] and main["latency_ms"]["mean"]:
        per_utt_ms = 1000.0 * (sum(feat["read_s"]) + sum(feat["features_s"])) / len(feat["features_s"])
        per_batch = per_utt_ms * bundle.batch_size
        figures["feature_workers"] = {
            "features_ms_per_batch": per_batch, "device_ms_per_batch": main["latency_ms"]["mean"],
            "needed": feature_workers_needed(per_batch, main["latency_ms"]["mean"])}

    pad = None
    if pad_frames is not None:
        try:
            print(f"[ascend-asr] bench: ModelZoo's pad-to-max ({pad_frames} frames, batch 1, manifest order)",
                  file=out)
            pad_bundle = pad_to_max_bundle(bundle, profile, pad_frames, os.path.join(work, "padmax_bundle"))
            psum, pseg, pwall = run_infer(pad_bundle.om_path, prep_dir, os.path.join(work, "results_padmax"),
                                          options.backend, options.device, options.mode)
            pad = summarize_run(psum, pseg, pwall, pad_bundle.frames, prep.rows)
            pad["transcripts_identical"] = _hyps(os.path.join(work, "results")) == \
                _hyps(os.path.join(work, "results_padmax"))
        except ImportError as exc:
            notes.append(f"pad-to-max not run: converting a bundle needs the export extra ({exc})")
    figures["run"] = {k: v for k, v in main.items() if not k.startswith("_")}
    figures["pad_to_max"] = None if pad is None else {k: v for k, v in pad.items() if not k.startswith("_")}
    if pad and pad["utterances_per_s"] and main["utterances_per_s"]:
        figures["speedup_vs_pad_to_max"] = main["utterances_per_s"] / pad["utterances_per_s"]
    if (main["batches"] or 0) < 20 or (pad and (pad["batches"] or 0) < 20):
        notes.append("few batches: the first batch at each shape carries the runtime's first-run cost (it shows as "
                     "the p99 latency), which a run of a few batches cannot amortise; bench hundreds of utterances "
                     "before comparing strategies")
    figures["dropped_utterances"] = (figures.get("preprocess") or {}).get("failed", 0) + main["failed"]
    figures["environment"] = environment()
    # ais_bench's timing keys at the top level, as in summary.json and ais_bench's own summary
    for k in TIMING_KEYS:
        figures[k] = main[k]
    plots = write_plots(output, main, pad, stages, durations) if options.plots else []
    if options.plots and not plots:
        notes.append("plots not written: matplotlib is not installed (pip install 'ascend-asr[plot]')")
    elif not options.plots:
        notes.append("plots not written (--no-plots)")
    figures["plots"], figures["notes"] = plots, notes
    from .tensor_files import write_json_atomic, write_text_atomic

    write_json_atomic(os.path.join(output, BENCH_JSON), figures)
    write_text_atomic(os.path.join(output, REPORT), render_report(figures))
    return figures


def _pad_frames(value: str, bundle) -> int | None:
    if value in (None, "none"):
        return None
    if value == "auto":
        return max(bundle.frames)
    try:
        frames = int(value)
    except ValueError:
        frames = 0
    if frames < 1:
        raise OptionError(f"--pad-to-max {value!r}: give auto (the bundle's largest gear), none, or a frame count "
                          f"such as {MODELZOO_PAD_FRAMES} (ModelZoo's Jasper)")
    return frames


def _hyps(results: str) -> dict:
    from .results import read_hyps

    return {r["id"]: r["hyp"] for r in read_hyps(results)}


# -- report -------------------------------------------------------------------------------------------------------
def write_plots(output: str, main: dict, pad: dict | None, stages: dict, durations: list) -> list[str]:
    """PNG plots beside report.md; [] when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(output, name), dpi=90)
        plt.close(fig)
        written.append(name)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(durations, bins=30, color="#4477aa")
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("utterances")
    ax.set_title("dataset durations")
    save(fig, "durations.png")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    if main["_latencies"]:
        ax.hist(main["_latencies"], bins=30, color="#228833")
        for q, style in (("p50", "--"), ("p99", ":")):
            ax.axvline(main["latency_ms"][q], color="k", linestyle=style, label=f"{q} {main['latency_ms'][q]:.2f} ms")
        ax.legend()
    ax.set_xlabel("per-batch latency (ms)")
    ax.set_ylabel("batches")
    save(fig, "latency.png")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [s for s in STAGES if f"{s}_s" in stages]
    ax.barh(names, [stages[f"{s}_s"] for s in names], color="#ee6677")
    ax.set_xlabel("seconds")
    ax.set_title("where host time goes")
    save(fig, "host_time.png")

    fig, ax = plt.subplots(figsize=(6, 3.2))
    gears = sorted(main["gear_use"], key=lambda g: int(g) if g.isdigit() else 1 << 30)
    ax.bar(gears, [main["gear_use"][g] for g in gears], color="#4477aa")
    ax.set_xlabel("frame gear")
    ax.set_ylabel("utterances")
    ax.set_title("gear use")
    save(fig, "gears.png")

    if pad is not None:
        fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
        labels = ["this bundle", "pad-to-max"]
        axes[0].bar(labels, [main["utterances_per_s"] or 0, pad["utterances_per_s"] or 0], color=["#228833", "#bbbbbb"])
        axes[0].set_ylabel("utterances / s")
        axes[1].bar(labels, [main["padding_efficiency"] or 0, pad["padding_efficiency"] or 0],
                    color=["#228833", "#bbbbbb"])
        axes[1].set_ylabel("padding efficiency")
        axes[1].set_ylim(0, 1)
        save(fig, "strategies.png")
    return written


def _f(value, fmt="{:.2f}", none="n/a") -> str:
    return none if value is None else fmt.format(value)


def render_report(b: dict) -> str:
    r, pad, env, st = b["run"], b["pad_to_max"], b["environment"], b["host_time"]
    lines = [f"# Benchmark: {r['model']} on {os.path.basename(b['dataset'])}", ""]
    if b.get("command"):
        lines += [f"`{b['command']}`", ""]
    lines += [f"Backend **{r['backend']}** ({r['mode']}), fallback {str(r['fallback']).lower()}, batch {r['batch_size']}, "
              f"gears {r['gears']}. One run on one machine: compare ratios within this report.", "",
              "## Throughput", "",
              "| | this bundle | ModelZoo pad-to-max |", "|---|---|---|"]

    def row(label, key, fmt="{:.2f}"):
        lines.append(f"| {label} | {_f(r.get(key), fmt)} | {_f(pad.get(key), fmt) if pad else 'not run'} |")

    row("utterances per second", "utterances_per_s")
    row("RTFx (audio seconds / seconds of infer's batch loop)", "rtfx", "{:.1f}")
    row("padding efficiency (true frames / fed frames)", "padding_efficiency")
    lines.append(f"| per-batch latency p50 / p99 (ms) | {_f(r['latency_ms']['p50'])} / {_f(r['latency_ms']['p99'])} | "
                 + (f"{_f(pad['latency_ms']['p50'])} / {_f(pad['latency_ms']['p99'])}" if pad else "not run") + " |")
    row("batches", "batches", "{}")
    row("utterances scored", "utterances", "{}")
    row("WER", "wer", "{:.4f}")
    if pad:
        lines.append(f"| gears, batch | {r['gears']}, {r['batch_size']} | {pad['gears']}, {pad['batch_size']} |")
    lines.append("")
    if pad:
        lines.append(f"Speed-up over pad-to-max: **{_f(b.get('speedup_vs_pad_to_max'))}x** utterances per second; "
                     f"transcripts identical: **{'yes' if pad.get('transcripts_identical') else 'NO'}**.")
    lines.append(f"Utterances dropped (failed or too long for every gear): **{b['dropped_utterances']}**.")
    lines += ["", "Utterances per second is infer's end_to_end_utterances_per_s (host and device work, as pipelined); "
              "latency is per batch, H2D + compute + D2H as the backend timed them (compute alone where it times only "
              "that).", "", "## Where host time goes", "",
              "| stage | seconds | how it is measured |", "|---|---|---|"]
    how = {
        "read": "load_audio per utterance, timed around the call in a separate pass over the manifest",
        "features": "the frontend per utterance (featurize on the loaded samples), same pass",
        "copy": "H2D + D2H: sum of summary.json's H2D_latency and D2H_latency (mean x count)",
        "device": "sum of summary.json's NPU_compute_time (mean x count)",
        "decode_write": "the remainder of infer's loop time (reading prep/, batch assembly, decoding, writing "
                        "results); in async mode device time overlaps it, so this is host time not hidden",
    }
    for s in STAGES:
        if f"{s}_s" in st:
            lines.append(f"| {s.replace('_', ' + ')} | {st[f'{s}_s']:.3f} | {how[s]} |")
    if "preprocess_wall_s" in st:
        lines.append(f"| (preprocess, whole) | {st['preprocess_wall_s']:.3f} | wall time of preprocess: read + features "
                     "+ writing prep/ |")
    fw = b.get("feature_workers")
    lines.append("")
    if fw:
        lines.append(f"**Feature workers needed to keep up** when features are computed on the fly: "
                     f"**{fw['needed']}** (read + features {fw['features_ms_per_batch']:.2f} ms per batch of "
                     f"{r['batch_size']} / device {fw['device_ms_per_batch']:.2f} ms per batch, rounded up).")
    else:
        lines.append("Feature workers needed: not measured (features came from prep/).")
    lines += ["", "## Gear use", "", "| gear (frames) | utterances |", "|---|---|"]
    for g, n in sorted(r["gear_use"].items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 1 << 30):
        lines.append(f"| {g} | {n} |")
    lines += ["", "Each utterance under the smallest compiled gear that holds it (a batch runs at its longest "
              "utterance's gear).", "", "## ais_bench timing keys", "", "| key | mean | median | p99 | count |",
              "|---|---|---|---|---|"]
    for k in ("NPU_compute_time", "H2D_latency", "D2H_latency"):
        t = r[k]
        lines.append(f"| {k} | {_f(t['mean'], '{:.3f}')} | {_f(t['median'], '{:.3f}')} | "
                     f"{_f(t['percentile(99%)'], '{:.3f}')} | {t['count']} |")
    lines.append(f"| throughput (utterances/s of device time) | {_f(r['throughput'])} | | | |")
    m = b["memory"]
    lines += ["", "## Memory", "", f"Peak RSS **{m['peak_rss_mib']:.0f} MiB** ({m['source']}; {m['process']}).", "",
              "## Environment", "", "| | |", "|---|---|"]
    for k in ("cpu", "cores", "cores_usable", "machine", "os", "python", "numpy", "onnxruntime",
              "onnxruntime_providers", "cann", "driver", "npu_smi"):
        if k in env:
            v = ", ".join(env[k]) if isinstance(env[k], list) else env[k]
            lines.append(f"| {k.replace('_', ' ')} | {v} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p[:-4]}]({p})" for p in b["plots"]] or ["(none)"]
    if b["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in b["notes"]]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    from .backends import BACKENDS, MODES

    p = argparse.ArgumentParser(prog="ascend-asr bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="bundle file: NAME.om, NAME.onnx or NAME.json")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--manifest", help="dataset manifest, preprocessed (and timed) into the work folder")
    data.add_argument("--input", help="an existing prep/ folder made with the bundle's profile")
    p.add_argument("--output", required=True, help="report folder: report.md, bench.json, *.png")
    p.add_argument("--work-dir", help="prep/ and results/ of the runs (default OUTPUT/work)")
    p.add_argument("--profile", help="profile to preprocess with (default: the bundle's; its gears are the bundle's)")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--mode", default="async", choices=MODES)
    p.add_argument("--pad-to-max", default="auto",
                   help="frames of ModelZoo's single gear for the side-by-side run: auto (the bundle's largest gear), "
                        f"a number (ModelZoo's Jasper: {MODELZOO_PAD_FRAMES}), or none")
    p.add_argument("--limit", type=int, help="only the first N utterances of the manifest")
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise OptionError(f"--limit {args.limit}: give at least 1")
    b = bench(args.model, args.output, manifest=args.manifest, prep_dir=args.input, work_dir=args.work_dir,
              options=BenchOptions(backend=args.backend, device=args.device, mode=args.mode, profile=args.profile,
                                   pad_to_max=args.pad_to_max, limit=args.limit, plots=not args.no_plots),
              command=shlex.join(["ascend-asr", "bench", *(sys.argv[1:] if argv is None else argv)]))
    r = b["run"]
    pad = b["pad_to_max"]
    print(f"{r['model']}: {_f(r['utterances_per_s'])} utt/s, RTFx {_f(r['rtfx'], '{:.1f}')}, padding efficiency "
          f"{_f(r['padding_efficiency'])}, latency p50/p99 {_f(r['latency_ms']['p50'])}/{_f(r['latency_ms']['p99'])} "
          f"ms" + (f"; pad-to-max {_f(pad['utterances_per_s'])} utt/s ({_f(b.get('speedup_vs_pad_to_max'))}x)"
                   if pad else ""))
    print(f"[ascend-asr] report: {os.path.join(args.output, REPORT)}, {os.path.join(args.output, BENCH_JSON)}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
