"""Offline inference: a bundle + prep/ -> results/ (hyps.jsonl, summary.json[, raw outputs]).

    python -m ascend_asr.infer --model jasper_bs1.om --input prep/ --output results/

Without an NPU the bundle's ONNX runs on onnxruntime, and the console and the summary say so.
A rerun into the same results/ resumes: finished utterances are neither redone nor duplicated.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .backends import BACKENDS, MODES, open_session, run_pipelined
from .batching import assemble, pick_frames, row, time_major
from .bundle import Bundle, open_bundle
from .decoding import OutputLayout, decode_utterance, make_decoder
from .errors import AscendAsrError, TensorFileError
from .metrics import percent, score
from .prep import PrepDir, open_prep
from .results import SUMMARY, claim, hyps_path, output_path, read_hyps, write_summary
from .runner import run
from .tensor_files import JsonlAppender, write_bin


def timing_stats(values) -> dict:
    """ais_bench's statistics block (milliseconds)."""
    if not values:
        return {"min": None, "max": None, "mean": None, "median": None, "percentile(99%)": None, "count": 0}
    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "median": float(np.median(v)),
            "percentile(99%)": float(np.percentile(v, 99)), "count": int(v.size)}


@dataclass(frozen=True)
class InferOptions:
    backend: str = "auto"
    device: int = 0
    mode: str = "async"  # async keeps two batches on the NPU while the host prepares and decodes
    save_outputs: str | None = None  # "bin" or "npy"
    decoder: str = "greedy"  # or "beam": CTC prefix beam search
    beam_width: int = 10
    lm: str | None = None  # n-gram LM (ARPA, or kenlm binary) for beam search
    lm_alpha: float = 0.5
    lm_beta: float = 1.0
    progress: bool = True


def check_compatible(bundle: Bundle, prep: PrepDir) -> None:
    """prep/ must hold the inputs the bundle expects, made by the frontend it was converted with."""
    expected = [(t.name, t.dtype, t.role) for t in bundle.inputs]
    found = [(t.name, t.dtype, t.role) for t in prep.inputs]
    if expected != found:
        raise TensorFileError(f"{prep.path}: inputs {found} do not match bundle {bundle.name} inputs {expected}; "
                              "preprocess again with the bundle's profile")
    if prep.info["frontend"] != bundle.manifest["frontend"]:
        raise TensorFileError(f"{prep.path}: made with frontend {prep.info['frontend']}, but {bundle.name} was "
                              f"converted with {bundle.manifest['frontend']}; preprocess again with its profile")


def infer(model: str, prep_dir: str, output: str, options: InferOptions = InferOptions(), out=sys.stdout) -> dict:
    wall_start = time.perf_counter()
    bundle = open_bundle(model)
    prep = open_prep(prep_dir)
    check_compatible(bundle, prep)
    vocab = bundle.vocabulary
    if bundle.manifest.get("warning"):
        print(f"[ascend-asr] WARNING ({bundle.name}): {bundle.manifest['warning']}", file=out)
    layout = OutputLayout.of(bundle)
    decode = make_decoder(vocab, layout.scores_are_probs, options.decoder, options.beam_width, options.lm,
                          options.lm_alpha, options.lm_beta)
    claim(output, {"model": bundle.name, "onnx_sha256": bundle.manifest["onnx_sha256"],
                   "prep": os.path.abspath(prep.path), "prep_profile": prep.info["profile"]})
    finished = {r["stem"] for r in read_hyps(output)}
    pending = [r for r in prep.rows if r["stem"] not in finished]
    failures, fed_frames, true_frames = [], 0, 0
    batch_size = bundle.batch_size

    def batches():
        """(feeds, rows) per batch; unreadable or too-long utterances are reported and skipped."""
        nonlocal fed_frames
        rows, tensors = [], []
        for meta in pending:
            try:
                pick_frames(meta["padded_frames"], bundle.frames, batch_size)  # fits a compiled shape?
                tensors.append(prep.load(meta))
                rows.append(meta)
            except AscendAsrError as exc:
                failures.append({"stem": meta["stem"], "id": meta["id"], "error": str(exc)})
                tqdm.write(f"[ascend-asr] skipped {meta['id']}: {exc}", file=sys.stderr)
                bar.update(1)
            if len(rows) == batch_size or (rows and meta is pending[-1]):
                frames = pick_frames(max(r["padded_frames"] for r in rows), bundle.frames, batch_size)
                fed_frames += frames * batch_size
                yield assemble(tensors, bundle.inputs, batch_size, frames), rows
                rows, tensors = [], []

    def consume(rows, outputs):
        nonlocal true_frames
        for i, meta in enumerate(rows):
            scores = time_major(row(outputs, layout.scores, i), layout.scores)
            out_len, ids = decode_utterance(layout, decode, scores, meta["frames"],
                                            row(outputs, layout.lengths, i) if layout.lengths else None)
            hyp = vocab.decode(ids)
            if options.save_outputs:
                _save_outputs(output, meta["stem"], outputs, bundle, i, options.save_outputs)
            hyps.write({"stem": meta["stem"], "id": meta["id"], "hyp": hyp, "ref": meta["text"],
                        "duration": meta["duration"], "frames": meta["frames"], "out_frames": out_len})
            true_frames += meta["frames"]
        bar.update(len(rows))

    with open_session(bundle, options.backend, options.device, options.mode, out=out) as session, \
            JsonlAppender(hyps_path(output)) as hyps, \
            tqdm(total=len(pending), desc="infer", unit="utt", disable=not options.progress) as bar:
        loop_start = time.perf_counter()
        run_pipelined(session, batches(), consume)
        loop_wall = time.perf_counter() - loop_start
        timings, missing_timings = session.timings, dict(session.missing_timings)
        backend_name, fallback, mode = session.name, session.fallback, session.mode

    results = read_hyps(output)
    total = score((r["ref"], r["hyp"]) for r in results)
    wall = time.perf_counter() - wall_start
    failed_stems = {f["stem"] for f in failures}
    done = len(pending) - len(failures)
    audio = sum(r["duration"] for r in pending if r["stem"] not in failed_stems)
    compute = timing_stats(timings.compute_ms)
    summary = {
        "model": bundle.name, "backend": backend_name, "fallback": fallback, "mode": mode,
        "device": options.device if backend_name in ("acl", "ais_bench") else None,
        "batch_size": batch_size,
        "decoder": {"kind": options.decoder, **({"beam_width": options.beam_width, "lm": options.lm,
                                                  "lm_alpha": options.lm_alpha, "lm_beta": options.lm_beta}
                                                 if options.decoder == "beam" else {})},
        "compiled_shapes": bundle.manifest["shapes"],
        "NPU_compute_time": compute, "H2D_latency": timing_stats(timings.h2d_ms),
        "D2H_latency": timing_stats(timings.d2h_ms), "timings_missing": missing_timings,
        "throughput": 1000.0 * batch_size / compute["mean"] if compute["count"] else None,
        "batches": compute["count"],
        "end_to_end_utterances_per_s": done / loop_wall if done else None,  # host + device, as pipelined
        "wall_time_s": wall, "audio_seconds": audio, "rtf": wall / audio if audio else None,
        "padding_efficiency": true_frames / fed_frames if fed_frames else None,
        "utterances": {"total": len(prep.rows) + prep.info.get("failed", 0), "scored": len(results),
                       "this_run": done, "resumed": len(finished),
                       "failed": len(failures), "failed_in_preprocess": prep.info.get("failed", 0)},
        "failures": failures, **{k: v for k, v in total.to_dict().items() if k != "utterances"},
        "error_rate": vocab.error_rate_name,  # "wer" holds token errors: phone error rate for phone vocabularies
    }
    write_summary(output, summary)
    return summary


def _save_outputs(output: str, stem: str, outputs: dict, bundle: Bundle, index: int, fmt: str) -> None:
    """ais_bench naming: <stem>_<k>.bin|npy, one file per output, batch axis kept (size 1)."""
    for k, spec in enumerate(bundle.outputs):
        array = np.expand_dims(row(outputs, spec, index), spec.axis("batch"))
        path = output_path(output, stem, k, fmt)
        if fmt == "bin":
            write_bin(path, array, spec.dtype)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, array)


def print_summary(summary: dict, out=sys.stdout) -> None:
    u = summary["utterances"]
    failed = u["failed"] + u["failed_in_preprocess"]
    rtf = "n/a" if summary["rtf"] is None else f"{summary['rtf']:.4f}"
    print(f"{summary.get('error_rate', 'WER')} {percent(summary['wer'])}  CER {percent(summary['cer'])}  RTF {rtf}  "
          f"utterances {u['scored']} (failed {failed})  backend={summary['backend']}  "
          f"fallback={str(summary['fallback']).lower()}", file=out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.infer", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="bundle file: NAME.om, NAME.onnx or NAME.json")
    p.add_argument("--input", required=True, help="prep/ folder written by preprocess")
    p.add_argument("--output", required=True, help="results/ folder (resumed if it exists)")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--device", type=int, default=0, help="NPU device id (logical, as npu-smi shows it)")
    p.add_argument("--mode", default="async", choices=MODES,
                   help="pyACL only: async overlaps host and device work on two streams")
    p.add_argument("--save-outputs", choices=("bin", "npy"), help="also write raw outputs as ais_bench names them")
    p.add_argument("--decoder", default="greedy", choices=("greedy", "beam"))
    p.add_argument("--beam-width", type=int, default=10)
    p.add_argument("--lm", help="n-gram language model for --decoder beam (ARPA; kenlm binary with kenlm installed)")
    p.add_argument("--lm-alpha", type=float, default=0.5, help="LM weight")
    p.add_argument("--lm-beta", type=float, default=1.0, help="word insertion bonus")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = infer(args.model, args.input, args.output,
                    InferOptions(backend=args.backend, device=args.device, mode=args.mode,
                                 save_outputs=args.save_outputs, decoder=args.decoder, beam_width=args.beam_width,
                                 lm=args.lm, lm_alpha=args.lm_alpha, lm_beta=args.lm_beta,
                                 progress=not args.no_progress))
    print_summary(summary)
    print(f"[ascend-asr] results: {hyps_path(args.output)}, {os.path.join(args.output, SUMMARY)}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
