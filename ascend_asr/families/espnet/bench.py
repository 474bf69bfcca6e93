"""Encoder time of ESPnet Transformer and Conformer CTC models: PyTorch eager, onnxruntime, the fused graph
and int8, batch 1 and 8, at 100 frames and 10 s, all in one run (ratios within one run are comparable).

    python -m ascend_asr.families.espnet.bench [--threads 2] [--repeats 5] [--presets transformer_base,conformer_base]
        [--frames 100,1000] [--batches 1,8] [--json out.json]

Models are the family's presets (ESPnet's LibriSpeech-size encoders, 12 x 256) with seeded random weights:
timing does not depend on the weights. "onnxruntime" is the exported graph in a session with onnxruntime's
default optimisations (ORT_ENABLE_ALL: it fuses LayerNorm and more at load time); "fused" is the graph
fuse_for_cpu wrote (each step parity-gated) in the same kind of session; "int8" the dynamic-int8 graph.
The fusion-step table times each step of fuse_for_cpu at one shape, also against a session with only
basic optimisations, so what each offline fusion buys over the runtime's own is visible. Each figure is
the median of `repeats` runs after one warm-up; the engines of one shape run round-robin, so a change of
load during the run hits all of them alike.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

FRAMES_PER_SECOND = 100  # the profiles' 10 ms hop


def interleaved_ms(calls: dict, repeats: int) -> dict[str, float]:
    """Median ms of each callable, after one warm-up each, timed round-robin (one run of each per round) so a
    change of load during the run hits every engine alike."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def _session(path: str, threads: int, level: str = "all"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def build_graphs(preset: str, work: str, log=print) -> dict:
    import torch

    from ...export import export_onnx
    from . import EspnetFamily
    from .fusion import fuse_for_cpu, quantize_int8

    family = EspnetFamily()
    config = family.preset(preset)
    torch.manual_seed(0)
    model = family.build(config)
    plain = export_onnx(model, os.path.join(work, f"{preset}.onnx"), example_frames=64)
    fused = os.path.join(work, f"{preset}_fused.onnx")
    steps = fuse_for_cpu(plain, fused, config)
    for report in steps:
        log(f"[bench] {preset} fusion {report.line()}")
    int8 = os.path.join(work, f"{preset}_int8.onnx")
    log(f"[bench] {preset} {quantize_int8(plain, int8, config).line()}")
    return {"config": config, "model": model, "plain": plain,
            "fused": fused if os.path.isfile(fused) else None, "int8": int8 if os.path.isfile(int8) else None}


def time_engines(graphs: dict, frames: int, batch: int, threads: int, repeats: int) -> dict[str, float]:
    import torch

    config = graphs["config"]
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((batch, frames, config.input_size)).astype(np.float32)
    lengths = np.full((batch,), frames, np.int32)
    inputs = {"feats": feats, "feats_lengths": lengths}
    torch.set_num_threads(threads)
    tf, tl = torch.from_numpy(feats), torch.from_numpy(lengths)

    def eager():
        with torch.inference_mode():
            graphs["model"](tf, tl)

    calls = {"pytorch eager": eager}
    for name in ("plain", "fused", "int8"):
        if graphs[name]:
            session = _session(graphs[name], threads)
            calls[{"plain": "onnxruntime"}.get(name, name)] = (lambda s: lambda: s.run(None, inputs))(session)
    return interleaved_ms(calls, repeats)


def fusion_steps(preset: str, work: str, frames: int, threads: int, repeats: int) -> list[tuple[str, float, float]]:
    """(step, ms with ORT_ENABLE_BASIC, ms with ORT_ENABLE_ALL) for the exported graph and each fusion step."""
    import onnx

    from . import EspnetFamily
    from .fusion import CPU_FUSIONS, _optimized

    config = EspnetFamily().preset(preset)
    plain = os.path.join(work, f"{preset}.onnx")
    rng = np.random.default_rng(0)
    inputs = {"feats": rng.standard_normal((1, frames, config.input_size)).astype(np.float32),
              "feats_lengths": np.full((1,), frames, np.int32)}
    kept = ()
    paths = [("exported", plain)]
    for name, switches in CPU_FUSIONS.items():
        kept = kept + switches
        path = os.path.join(work, f"{preset}_step_{name}.onnx")
        onnx.save(_optimized(plain, config, kept), path)
        paths.append((f"+ {name}", path))
    calls = {}
    for name, path in paths:
        for level in ("basic", "all"):
            calls[(name, level)] = (lambda s: lambda: s.run(None, inputs))(_session(path, threads, level))
    timed = interleaved_ms(calls, repeats)
    return [(name, timed[(name, "basic")], timed[(name, "all")]) for name, _ in paths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ascend_asr.families.espnet.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", default="transformer_base,conformer_base")
    parser.add_argument("--frames", default="100,1000", help="input frames (10 ms each): 100 = 1 s, 1000 = 10 s")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    import logging

    import onnxruntime
    import torch

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    presets = args.presets.split(",")
    frames = [int(f) for f in args.frames.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    table, steps = [], {}
    with tempfile.TemporaryDirectory(prefix="espnet_bench_") as work:
        for preset in presets:
            graphs = build_graphs(preset, work)
            for f in frames:
                for b in batches:
                    timings = time_engines(graphs, f, b, args.threads, args.repeats)
                    table.append({"model": preset, "frames": f, "batch": b, **timings})
            steps[preset] = fusion_steps(preset, work, max(frames), args.threads, args.repeats)
    engines = ["pytorch eager", "onnxruntime", "fused", "int8"]
    print(f"\nESPnet encoder + CTC head, median ms per batch (torch {torch.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, {args.threads} threads, {args.repeats} runs; provisional if the CPU is shared)")
    print("| model | input | batch | " + " | ".join(engines) + " | fused / ort | int8 / ort |")
    print("|---|---|---|" + "---|" * (len(engines) + 2))
    for row in table:
        cells = [f"{row[e]:.1f}" if e in row else "-" for e in engines]
        ratio = lambda e: f"{row[e] / row['onnxruntime']:.2f}" if e in row else "-"  # noqa: E731
        seconds = row["frames"] / FRAMES_PER_SECOND
        print(f"| {row['model']} | {row['frames']} frames ({seconds:g} s) | {row['batch']} | " + " | ".join(cells) +
              f" | {ratio('fused')} | {ratio('int8')} |")
    for preset, rows in steps.items():
        print(f"\nfusion steps, {preset}, {max(frames)} frames, batch 1 (ms; onnxruntime basic / all optimisations)")
        print("| graph | ORT_ENABLE_BASIC | ORT_ENABLE_ALL |\n|---|---|---|")
        for name, basic, full in rows:
            print(f"| {name} | {basic:.1f} | {full:.1f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"table": table, "fusion_steps": steps, "threads": args.threads}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
