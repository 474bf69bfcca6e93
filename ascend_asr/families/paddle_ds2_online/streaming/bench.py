"""`python -m ascend_asr.streaming bench`: streaming RTF at several chunk sizes for every backend here, in one run.

Rows: Paddle Inference (when paddle is importable: the recipe's exported model, --paddle-model-dir),
onnxruntime fp32, onnxruntime int8 (gated against fp32 first), and the NPU path (a static-chunk OM per chunk
size through pyACL, when `acl` is importable: the doubles or CANN). RTF = model seconds / audio seconds
(features excluded, computed once); every row streams the same utterances on the same number of slots and
threads. Ratios are against onnxruntime fp32 at the same chunk size.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

from .chunks import ChunkPlan
from .graph import FP32_MAX_ABS, Thresholds, build_om, chunk_parity, export_model, ort_runner, probe_chunks, \
    quantize_int8, torch_runner
from .run import load_features, model_source
from .scheduler import run_streams
from .steps import npu_step, onnxruntime_step, paddle_step


def _chunk_sizes(text: str) -> list[int]:
    try:
        return [ChunkPlan(int(v)).chunk_frames for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give chunk sizes as 1,4,16") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.streaming bench", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config", help="the recipe's conf/deepspeech2_online.yaml")
    p.add_argument("--profile")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest")
    src.add_argument("--audio", nargs="+")
    p.add_argument("--chunk-frames", type=_chunk_sizes, default=[1, 4, 16])
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="runs per cell; the median RTF's run is reported")
    p.add_argument("--paddle-model-dir", help="the recipe's exported inference model (the Paddle Inference row)")
    p.add_argument("--soc-version", default="Ascend310P3")
    p.add_argument("--work", required=True, help="folder for the graphs and bench.json")
    return p


def measure(args) -> dict:
    from ... import get_family
    from ....frontends import build_frontend
    from . import entries_of

    source = model_source(args.profile, args.config)
    model = get_family("paddle_ds2_online").load(args.checkpoint, source.config).model
    entries, _ = entries_of(args)
    utterances, audio_seconds, _ = load_features(entries, build_frontend(source.frontend))
    os.makedirs(args.work, exist_ok=True)
    fp32 = export_model(model, os.path.join(args.work, "chunk.onnx"))
    c = source.config
    gate, found = chunk_parity(torch_runner(model), ort_runner(fp32), probe_chunks(c, ChunkPlan(4)), Thresholds(),
                               FP32_MAX_ABS)
    if found:
        raise RuntimeError(f"export parity: {found}")
    rows, notes = {}, {}
    try:
        int8 = os.path.join(args.work, "chunk.int8.onnx")
        notes["int8_parity"] = quantize_int8(fp32, int8, c, ChunkPlan(4))
        int8_sizes = (os.path.getsize(fp32), os.path.getsize(int8))
    except Exception as exc:  # the gate refused: the row says why
        int8, int8_sizes, notes["int8"] = None, None, str(exc)
    backends = {}
    if importlib.util.find_spec("paddle") and args.paddle_model_dir:
        backends["paddle inference"] = lambda plan: (paddle_step(args.paddle_model_dir, threads=args.threads), None)
    else:
        notes["paddle inference"] = "not run: " + ("paddle is not installed here" if not importlib.util.find_spec(
            "paddle") else "no --paddle-model-dir")
    backends["onnxruntime fp32"] = lambda plan: (onnxruntime_step(fp32, args.threads), None)
    if int8:
        backends["onnxruntime int8"] = lambda plan: (onnxruntime_step(int8, args.threads), None)
    if importlib.util.find_spec("acl"):
        def npu(plan):
            om, _ = build_om(fp32, args.work, f"chunk_s{args.streams}_c{plan.chunk_frames}", c, args.streams, plan,
                             source.atc, args.soc_version)
            return npu_step(om, "acl")
        backends["npu (acl)"] = npu
    else:
        notes["npu (acl)"] = "not run: pyACL is not importable (source CANN's set_env.sh, or the doubles' activate.sh)"
    for name, make in backends.items():
        for size in args.chunk_frames:
            plan = ChunkPlan(size)
            step, close = make(plan)
            try:
                _warm_up(step, plan, args.streams, c)
                runs = sorted((run_streams(utterances, step, plan, args.streams, c.num_rnn_layers, c.rnn_layer_size,
                                           c.feature_size)[1].summary(audio_seconds)
                               for _ in range(max(1, args.repeats))), key=lambda r: r["rtf"])
            finally:
                if close:
                    close()
            rows.setdefault(name, {})[size] = runs[len(runs) // 2]
    return {"rows": rows, "notes": notes, "export_parity": gate, "audio_seconds": audio_seconds,
            "utterances": len(utterances), "streams": args.streams, "threads": args.threads,
            "model": {"layers": c.num_rnn_layers, "hidden": c.rnn_layer_size, "classes": c.num_classes,
                      "features": c.feature_size}, "onnx_bytes": int8_sizes}


def _warm_up(step, plan: ChunkPlan, slots: int, c) -> None:
    """One untimed call: first calls pay for graph optimisation and allocation."""
    import numpy as np

    state = np.zeros((c.num_rnn_layers, slots, c.rnn_layer_size), dtype=np.float32)
    step(np.zeros((slots, plan.window, c.feature_size), dtype=np.float32),
         np.full(slots, plan.window, dtype=np.int64), state, state.copy())


def table(result: dict, sizes: list[int]) -> str:
    """Markdown: RTF (and mean per-chunk latency) per backend and chunk size, ratios against onnxruntime fp32."""
    base = result["rows"].get("onnxruntime fp32", {})
    head = "| backend | " + " | ".join(f"chunk {s}: RTF (x fp32 speed), ms/chunk" for s in sizes) + " |"
    lines = [head, "|---|" + "---|" * len(sizes)]
    for name, row in result["rows"].items():
        cells = []
        for s in sizes:
            r = row[s]
            ratio = base[s]["rtf"] / r["rtf"] if s in base and r["rtf"] else float("nan")
            cells.append(f"{r['rtf']:.4f} ({ratio:.2f}x), {r['chunk_latency_ms']['mean']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    result = measure(args)
    text = table(result, args.chunk_frames)
    m = result["model"]
    print(f"streaming RTF, {result['utterances']} utterances ({result['audio_seconds']:.1f} s of audio), "
          f"{args.streams} streams, {args.threads} thread(s); model {m['layers']}x{m['hidden']} LSTM, "
          f"{m['features']} bins, {m['classes']} classes")
    print(text)
    for name, why in result["notes"].items():
        if name != "int8_parity":
            print(f"- {name}: {why}")
    if result["onnx_bytes"]:
        print(f"- ONNX size fp32 {result['onnx_bytes'][0] / 1e6:.1f} MB, int8 {result['onnx_bytes'][1] / 1e6:.1f} MB")
    if "int8_parity" in result["notes"]:
        p = result["notes"]["int8_parity"]["probs"]
        print(f"- int8 vs fp32 probabilities: cosine {p['cosine']:.5f}, RED {p['red']:.4f}, frame-argmax agreement "
              f"{p['argmax_agreement']:.3f}")
    path = os.path.join(args.work, "bench.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({**result, "table": text}, f, indent=1, default=str)
    os.replace(path + ".tmp", path)
    print(f"[ascend-asr] {path}", file=sys.stderr)
    return 0
