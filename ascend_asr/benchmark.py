"""Benchmarks that print their figures (never timed unit tests):

    python -m ascend_asr.benchmark

1. frontend speed in multiples of real time on one core (BLAS pinned to one thread);
2. the demo's end-to-end RTF on this machine's CPU fallback;
3. peak RSS of preprocessing 100 and 1,000 utterances (it streams, so it should not grow).

    python -m ascend_asr.benchmark --stream [--backend acl] [--batches 40]

4. a stream of batches (features computed on the fly -> device -> greedy decoding), run
   synchronously and asynchronously, against the device-only throughput; `--from-prep` feeds
   features read from a prep/ folder made beforehand instead. Without an NPU it
   runs on onnxruntime, where sync and async are the same; with the NPU doubles of tests/
   (`source tests/npu_doubles/activate.sh`, FAKE_NPU_LATENCY_MS) it exercises the pyACL path.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from .runner import run

SINGLE_THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def manifest_clips(manifest: str | None) -> list:
    """The utterances of `manifest` (default: the demo's bundled held-out clips); a bad line is an error."""
    from .datasets import BadEntry, read_manifest
    from .errors import ManifestError

    if manifest is None:
        from .demo import DEMO_MANIFEST  # imports torch: only when no manifest is given

        manifest = DEMO_MANIFEST
    clips = list(read_manifest(manifest))
    bad = next((c for c in clips if isinstance(c, BadEntry)), None)
    if bad is not None:
        raise ManifestError(f"{bad.source}: {bad.message}")
    if not clips:
        raise ManifestError(f"{manifest}: no utterances; give a manifest with at least one")
    return clips


def frontend_speed(repeats: int = 20, manifest: str | None = None) -> dict:
    """Audio seconds processed per wall second by the Jasper frontend on the bundled clips."""
    from .audio import load_audio
    from .frontends import JasperFilterbank

    clips = [load_audio(u.audio_path) for u in manifest_clips(manifest)]
    frontend = JasperFilterbank()
    audio_seconds = sum(len(c) for c in clips) / 16000 * repeats
    for c in clips:  # warm-up
        frontend(c)
    start = time.perf_counter()
    for _ in range(repeats):
        for c in clips:
            frontend(c)
    elapsed = time.perf_counter() - start
    return {"audio_seconds": audio_seconds, "compute_seconds": elapsed, "x_realtime_per_core": audio_seconds / elapsed}


# Runs one module as __main__ in a fresh interpreter, then writes that interpreter's own peak RSS to a file.
# The peak is read inside the worker (VmHWM: the high-water mark of this process's memory), because the
# figures the parent can get lie: wait4()'s ru_maxrss, and even the child's own getrusage(RUSAGE_SELF), keep
# the peak of the address space the child was forked (or vforked) from, i.e. the parent's (338 MiB printed
# for a 62 MB preprocess when the parent had torch loaded).
_MEASURED_CHILD = """import runpy, sys
from ascend_asr.benchmark import peak_rss_kib
report, module = sys.argv[1], sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
code = 0
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
finally:
    kib, how = peak_rss_kib()
    with open(report, "w") as f:
        f.write(f"{kib} {how}")
sys.exit(code)
"""


def peak_rss_kib() -> tuple[int, str]:
    """(peak resident set of THIS process in KiB, how it was read): VmHWM from /proc/self/status where there is
    one (Linux), else getrusage's ru_maxrss (which, after a fork and exec, may include the parent's peak)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), "VmHWM of the working process"
    except (OSError, ValueError, IndexError):
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss // 1024 if sys.platform == "darwin" else rss), "ru_maxrss (RUSAGE_SELF) of the working process"


def _run_measured(module: str, args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) measured inside the worker process, and how, of `python -m module args`."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "peak_rss")
        cmd = [sys.executable, "-c", _MEASURED_CHILD, report, module, *args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(f"python -m {module} {' '.join(args)} failed:\n{proc.stderr.decode()[-2000:]}")
        with open(report) as f:
            kib, how = f.read().split(" ", 1)
    return wall, int(kib), how


def preprocess_memory(counts=(100, 1000), profile: str = "jasper_small", manifest: str | None = None) -> list[dict]:
    clips = manifest_clips(manifest)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            manifest = os.path.join(tmp, f"m{n}.tsv")
            with open(manifest, "w") as f:
                f.write("path\ttext\n")
                for i in range(n):
                    f.write(f"{clips[i % len(clips)].audio_path}\t{clips[i % len(clips)].text}\n")
            out = os.path.join(tmp, f"prep{n}")
            wall, rss, how = _run_measured("ascend_asr.preprocess", ["--manifest", manifest, "--profile", profile,
                                                                      "--output", out, "--no-progress"])
            results.append({"utterances": n, "wall_s": wall, "peak_rss_mib": rss / 1024, "peak_rss_source": how})
    return results


def demo_rtf(manifest: str | None = None) -> dict:
    from .demo import DEMO_MANIFEST, run_demo

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        summary = run_demo(tmp, manifest=manifest or DEMO_MANIFEST, progress=False, out=quiet)
        total = time.perf_counter() - start
    return {"audio_seconds": summary["audio_seconds"], "infer_rtf": summary["rtf"],
            "pipeline_rtf": total / summary["audio_seconds"], "backend": summary["backend"],
            "fallback": summary["fallback"]}


def stream_throughput(backend: str = "auto", device: int = 0, batches: int = 40, batch_size: int = 4,
                      manifest: str | None = None, out=sys.stdout, from_prep: bool = False,
                      repeats: int = 3) -> dict:
    """Batches per second: device only, sync end to end, async end to end (one run, one machine).

    The end-to-end stream computes features on the fly (reading audio, the frontend), or with `from_prep`
    reads them from a prep/ folder made beforehand (the .bin files, as infer reads them). Either way the
    figures include how many feature workers would keep the device busy when features are computed on the fly:
    on-the-fly features ms per batch / device ms per batch.
    """
    from .backends import open_session, run_pipelined
    from .batching import assemble, row, time_major
    from .bundle import convert
    from .decoding import OutputLayout, decode_utterance, make_decoder
    from .demo import DEMO_PROFILE, save_random_checkpoint
    from .export import export_onnx
    from .families import load_model
    from .featurize import featurize
    from .frontends import build_frontend
    from .prep import open_prep, utterance_tensors
    from .preprocess import preprocess
    from .profiles import load_profile

    profile = load_profile(DEMO_PROFILE)
    frontend = build_frontend(profile.frontend)
    clips = [(u.audio_path, u.id) for u in manifest_clips(manifest)]
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        checkpoint = os.path.join(tmp, "model.pt")
        save_random_checkpoint(profile, checkpoint, seed=0)
        onnx_path = export_onnx(load_model(profile, checkpoint),
                                os.path.join(tmp, "model.onnx"))
        bundle = convert(profile, onnx_path, os.path.join(tmp, "bundles"), batch_sizes=[batch_size], out=quiet)[0]
        layout = OutputLayout.of(bundle)
        greedy = make_decoder(bundle.vocabulary, layout.scores_are_probs)

        def on_the_fly():  # the host work before the device: reading audio, features, batch assembly
            for k in range(batches):
                tensors, frames, ids = [], 0, []
                for j in range(batch_size):
                    path, utt_id = clips[(k * batch_size + j) % len(clips)]
                    utt = featurize(frontend, path, profile.frames, profile_source=profile.source)
                    tensors.append(utterance_tensors(utt.feats, utt.valid, bundle.inputs, utt.gear))
                    frames = max(frames, utt.gear)
                    ids.append(utt_id)
                yield assemble(tensors, bundle.inputs, batch_size, frames), ids

        prep = None
        if from_prep:  # features made beforehand: the stream only reads prep/'s .bin files and assembles
            if manifest is None:
                from .demo import DEMO_MANIFEST as prep_manifest
            else:
                prep_manifest = manifest
            preprocess(prep_manifest, os.path.join(tmp, "prep"), profile, progress=False, log=quiet)
            prep = open_prep(os.path.join(tmp, "prep"))

        def from_prep_dir():
            for k in range(batches):
                rows = [prep.rows[(k * batch_size + j) % len(prep.rows)] for j in range(batch_size)]
                frames = max(r["padded_frames"] for r in rows)
                yield assemble([prep.load(r) for r in rows], bundle.inputs, batch_size, frames), \
                    [r["id"] for r in rows]

        stream = from_prep_dir if from_prep else on_the_fly

        decode_s = []
        hyps = open(os.path.join(tmp, "hyps.txt"), "w", encoding="utf-8")

        def decode(ids, outputs):  # the host work after the device: decoding, writing hypotheses
            start = time.perf_counter()
            for i, utt_id in enumerate(ids):
                scores = time_major(row(outputs, layout.scores, i), layout.scores)
                _, labels = decode_utterance(layout, greedy, scores,
                                             out_length=row(outputs, layout.lengths, i) if layout.lengths else None)
                hyps.write(f"{utt_id}\t{bundle.vocabulary.decode(labels)}\n")
            hyps.flush()
            decode_s.append(time.perf_counter() - start)

        def timed(session, feeds, consume) -> float:
            start = time.perf_counter()
            run_pipelined(session, feeds, consume)
            return batches / (time.perf_counter() - start)

        prepared = list(on_the_fly())  # also warms the frontend up and the clips into the page cache
        start = time.perf_counter()
        for _ in on_the_fly():
            pass
        on_the_fly_ms = (time.perf_counter() - start) * 1000.0 / batches
        features_ms = on_the_fly_ms
        if from_prep:
            start = time.perf_counter()
            for _ in from_prep_dir():
                pass
            features_ms = (time.perf_counter() - start) * 1000.0 / batches
        runs = {"device_only": [], "async": [], "sync": []}  # interleaved repeats: the median of each is kept
        with open_session(bundle, backend, device, "async", out=out) as session:
            timed(session, iter(prepared), decode)  # warm-up, and the decoding time
            decode_ms = sum(decode_s) * 1000.0 / len(decode_s)
            for _ in range(repeats):
                runs["device_only"].append(timed(session, iter(prepared), lambda *_: None))  # no host work left
                runs["async"].append(timed(session, stream(), decode))
            name, async_mode = session.name, session.mode
        with open_session(bundle, backend, device, "sync", out=quiet) as session:
            for _ in range(repeats):
                runs["sync"].append(timed(session, stream(), decode))
        figures = {k: statistics.median(v) for k, v in runs.items()}
        hyps.close()
    device_ms = 1000.0 / figures["device_only"]
    return {"batches": batches, "batch_size": batch_size, "backend": name, "async_mode": async_mode,
            "repeats": repeats,
            "features_from": "prep" if from_prep else "on the fly",
            "host_ms_per_batch": features_ms + decode_ms, "features_ms_per_batch": features_ms,
            "on_the_fly_features_ms_per_batch": on_the_fly_ms, "device_ms_per_batch": device_ms,
            "feature_workers_needed": feature_workers_needed(on_the_fly_ms, device_ms),
            "decode_ms_per_batch": decode_ms, **{f"{k}_batches_per_s": v for k, v in figures.items()},
            "sync_vs_device_only": figures["sync"] / figures["device_only"],
            "async_vs_device_only": figures["async"] / figures["device_only"]}


def feature_workers_needed(features_ms_per_batch: float, device_ms_per_batch: float) -> int | None:
    """Feature workers that keep the device busy: features ms per batch / device ms per batch, rounded up."""
    if not device_ms_per_batch or device_ms_per_batch <= 0:
        return None
    return max(1, math.ceil(features_ms_per_batch / device_ms_per_batch - 1e-9))


def print_stream(r: dict, out=sys.stdout) -> None:
    source = ("prep/ -> " if r["features_from"] == "prep" else "audio -> features -> ")
    what = "reading prep/ and assembling" if r["features_from"] == "prep" else "audio and features"
    print(f"stream of {r['batches']} batches x {r['batch_size']} utterances ({source}"
          f"{r['backend']} -> greedy decoding); host work {r['host_ms_per_batch']:.1f} ms per batch "
          f"({what} {r['features_ms_per_batch']:.1f}, decoding {r['decode_ms_per_batch']:.1f}):", file=out)
    print(f"  (median of {r['repeats']} interleaved runs each)", file=out)
    print(f"  device only       {r['device_only_batches_per_s']:7.2f} batches/s  (prepared batches, no host work)",
          file=out)
    for mode in ("sync", "async"):
        print(f"  {mode:<5} end to end {r[f'{mode}_batches_per_s']:7.2f} batches/s  = "
              f"{r[f'{mode}_vs_device_only']:.2f} x device only", file=out)
    if r["async_mode"] != "async":
        print(f"  ({r['backend']} has no asynchronous mode: both runs were synchronous)", file=out)
    print(f"  features on the fly cost {r['on_the_fly_features_ms_per_batch']:.1f} ms per batch against "
          f"{r['device_ms_per_batch']:.2f} ms of device per batch: {r['feature_workers_needed']} feature worker(s) "
          "needed to keep up", file=out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--frontend-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--counts", default="100,1000", help="utterance counts for the memory figure")
    p.add_argument("--stream", action="store_true", help="only the sync/async stream throughput figure")
    p.add_argument("--from-prep", action="store_true",
                   help="with --stream: features come from a prep/ folder made beforehand, not computed on the fly")
    p.add_argument("--backend", default="auto", help="backend for --stream (auto, acl, ais_bench, onnxruntime)")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=4, choices=(1, 4), help="a batch size of the demo profile")
    p.add_argument("--manifest", help="audio to measure on (default: the demo's bundled held-out clips)")
    args = p.parse_args(argv)
    if args.from_prep and not args.stream:
        p.error("--from-prep goes with --stream")
    manifest_clips(args.manifest)  # a missing or bad manifest fails here, before any measurement
    if args.stream:
        print_stream(stream_throughput(args.backend, args.device, args.batches, args.batch_size, args.manifest,
                                       from_prep=args.from_prep))
        return 0
    if args.frontend_only:
        print(json.dumps(frontend_speed(manifest=args.manifest)))
        return 0
    manifest_flag = ["--manifest", args.manifest] if args.manifest else []
    proc = subprocess.run([sys.executable, "-m", "ascend_asr.benchmark", "--frontend-only", *manifest_flag],
                          env={**os.environ, **SINGLE_THREAD_ENV}, capture_output=True, text=True, check=True)
    fe = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"frontend (Jasper filterbank, 1 thread): {fe['x_realtime_per_core']:.0f}x real time per core "
          f"({fe['audio_seconds']:.0f} s of audio in {fe['compute_seconds']:.3f} s; target >= 1000x)")
    demo = demo_rtf(args.manifest)
    print(f"demo end to end ({demo['audio_seconds']:.1f} s of audio, backend={demo['backend']}, "
          f"fallback={str(demo['fallback']).lower()}): infer RTF {demo['infer_rtf']:.4f}, "
          f"pipeline RTF {demo['pipeline_rtf']:.4f} (export + convert + preprocess + infer)")
    for r in preprocess_memory(tuple(int(c) for c in args.counts.split(",")), manifest=args.manifest):
        print(f"preprocess {r['utterances']:>5} utterances: peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"({r['peak_rss_source']}), wall {r['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
