"""Streaming inference for PaddleSpeech's DeepSpeech2 online model: chunk by chunk, many streams at once.

`python -m ascend_asr.streaming --checkpoint avg_1.pdparams --config conf/deepspeech2_online.yaml
 --manifest data.tsv --chunk-frames 4 --streams 8 --backend onnxruntime --output results/`
(`python -m ascend_asr.infer --streaming ...` delegates here). `bench` prints the RTF table.
"""
from __future__ import annotations

import argparse
import os
import sys

from ....errors import ManifestError
from ....runner import EXIT_UTTERANCES_FAILED
from .chunks import ChunkPlan
from .run import BACKENDS, StreamingOptions, model_source, stream, write_results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.streaming", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="the recipe's .pdparams (exp/<name>/checkpoints/avg_N.pdparams)")
    p.add_argument("--config", help="its conf/deepspeech2_online.yaml (network, preprocess.yaml, vocab.txt, CMVN)")
    p.add_argument("--profile", help="a paddle_ds2_online profile instead of --config (default paddle_ds2_online)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", help="dataset manifest (.tsv/.jsonl/.json or a LibriSpeech folder)")
    source.add_argument("--audio", nargs="+", help="audio files")
    p.add_argument("--chunk-frames", type=int, default=1,
                   help="decoder chunk size in output frames (window (N-1)*4+7 feature frames, stride 4N); "
                        "1 is PaddleSpeech's online engine")
    p.add_argument("--streams", type=int, default=4, help="streams run at once (batch slots)")
    p.add_argument("--backend", default="onnxruntime", choices=BACKENDS)
    p.add_argument("--int8", action="store_true", help="onnxruntime dynamic int8, gated against fp32")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime / Paddle Inference threads")
    p.add_argument("--device", type=int, default=0, help="NPU device (acl, ais_bench)")
    p.add_argument("--soc-version", default="Ascend310P3", help="the chip ATC builds the static-chunk OM for")
    p.add_argument("--atc", help="the atc executable (default: the one on PATH)")
    p.add_argument("--paddle-model-dir", help="--backend paddle: the recipe's exported inference model folder")
    p.add_argument("--work", help="where the chunk graphs go (default OUTPUT/graphs)")
    p.add_argument("--output", required=True, help="results folder: summary.json, hyps.jsonl")
    p.add_argument("--strict", action="store_true", help="exit 3 when any utterance failed (default: only when all did)")
    return p


def entries_of(args) -> tuple[list[tuple[str, str]], dict]:
    if args.audio:
        return [(os.path.splitext(os.path.basename(a))[0], a) for a in args.audio], {}
    from ....datasets import BadEntry, read_manifest

    entries, references = [], {}
    for entry in read_manifest(args.manifest):
        if isinstance(entry, BadEntry):
            raise ManifestError(f"{entry.source}: {entry.message}")
        entries.append((entry.id, entry.audio_path))
        references[entry.id] = entry.text
    return entries, references


def print_summary(summary: dict, out=None) -> None:
    lat = summary["chunk_latency_ms"]
    rates = "".join(f"  {k.upper()} {100 * summary[k]:.2f}%" for k in ("wer", "cer") if summary.get(k) is not None)
    failed = f" ({len(summary['failed'])} failed: summary.json lists them)" if summary.get("failed") else ""
    print(f"[ascend-asr] streaming {summary['backend']}: {summary['utterances']} utterances{failed}, {summary['streams']} "
          f"streams, chunk {summary['chunk_frames']} frames (window {summary['window_frames']}, stride "
          f"{summary['stride_frames']}); per-chunk latency mean {lat['mean']:.2f} ms p50 {lat['p50']:.2f} p95 "
          f"{lat['p95']:.2f}; RTF {summary['rtf']:.4f} (model; features {summary['feature_seconds']:.2f} s){rates}",
          file=out or sys.stdout)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    entries, references = entries_of(args)
    options = StreamingOptions(chunk_frames=ChunkPlan(args.chunk_frames).chunk_frames, streams=args.streams,
                               backend=args.backend, int8=args.int8, threads=args.threads, device=args.device,
                               soc_version=args.soc_version, atc=args.atc, paddle_model_dir=args.paddle_model_dir)
    summary = stream(args.checkpoint, entries, model_source(args.profile, args.config), options,
                     args.work or os.path.join(args.output, "graphs"), references)
    write_results(args.output, summary)
    print_summary(summary)
    return EXIT_UTTERANCES_FAILED if summary["failed"] and args.strict else 0
