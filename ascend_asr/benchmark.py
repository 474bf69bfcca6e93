"""Benchmarks that print their figures (never timed unit tests):

    python -m ascend_asr.benchmark

1. frontend speed in multiples of real time on one core (BLAS pinned to one thread);
2. the demo's end-to-end RTF on this machine's CPU fallback;
3. peak RSS of preprocessing 100 and 1,000 utterances (it streams, so it should not grow).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SINGLE_THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def frontend_speed(repeats: int = 20) -> dict:
    """Audio seconds processed per wall second by the Jasper frontend on the bundled clips."""
    from .audio import load_audio
    from .datasets import read_manifest
    from .demo import DEMO_MANIFEST
    from .frontends import JasperFilterbank

    clips = [load_audio(u.audio_path) for u in read_manifest(DEMO_MANIFEST)]
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


def _run_measured(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()  # drain before waiting, so a chatty child cannot block on a full pipe
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss


def preprocess_memory(counts=(100, 1000), profile: str = "jasper_small") -> list[dict]:
    from .datasets import read_manifest
    from .demo import DEMO_MANIFEST

    clips = list(read_manifest(DEMO_MANIFEST))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            manifest = os.path.join(tmp, f"m{n}.tsv")
            with open(manifest, "w") as f:
                f.write("path\ttext\n")
                for i in range(n):
                    f.write(f"{clips[i % len(clips)].audio_path}\t{clips[i % len(clips)].text}\n")
            out = os.path.join(tmp, f"prep{n}")
            wall, rss = _run_measured([sys.executable, "-m", "ascend_asr.preprocess", "--manifest", manifest,
                                       "--profile", profile, "--output", out, "--no-progress"])
            results.append({"utterances": n, "wall_s": wall, "peak_rss_mib": rss / 1024})
    return results


def demo_rtf() -> dict:
    from .demo import run_demo

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        summary = run_demo(tmp, progress=False, out=quiet)
        total = time.perf_counter() - start
    return {"audio_seconds": summary["audio_seconds"], "infer_rtf": summary["rtf"],
            "pipeline_rtf": total / summary["audio_seconds"], "backend": summary["backend"],
            "fallback": summary["fallback"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--frontend-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--counts", default="100,1000", help="utterance counts for the memory figure")
    args = p.parse_args(argv)
    if args.frontend_only:
        print(json.dumps(frontend_speed()))
        return 0
    proc = subprocess.run([sys.executable, "-m", "ascend_asr.benchmark", "--frontend-only"],
                          env={**os.environ, **SINGLE_THREAD_ENV}, capture_output=True, text=True, check=True)
    fe = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"frontend (Jasper filterbank, 1 thread): {fe['x_realtime_per_core']:.0f}x real time per core "
          f"({fe['audio_seconds']:.0f} s of audio in {fe['compute_seconds']:.3f} s; target >= 1000x)")
    demo = demo_rtf()
    print(f"demo end to end ({demo['audio_seconds']:.1f} s of audio, backend={demo['backend']}, "
          f"fallback={str(demo['fallback']).lower()}): infer RTF {demo['infer_rtf']:.4f}, "
          f"pipeline RTF {demo['pipeline_rtf']:.4f} (export + convert + preprocess + infer)")
    for r in preprocess_memory(tuple(int(c) for c in args.counts.split(","))):
        print(f"preprocess {r['utterances']:>5} utterances: peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"wall {r['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
