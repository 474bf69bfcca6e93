"""Offline inference: a bundle + prep/ -> results/ (hyps.jsonl, summary.json[, raw outputs]).

    python -m ascend_asr.infer --model jasper_bs1.om --input prep/ --output results/

Without an NPU the bundle's ONNX runs on onnxruntime, and the console and the summary say so.
A rerun into the same results/ resumes: finished utterances are neither redone nor duplicated.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from tqdm import tqdm

from .backends import BACKENDS, MODES, open_session, run_pipelined
from .batching import assemble, pick_frames, row, time_major
from .bundle import Bundle, open_bundle
from .decoding import OutputLayout, decode_utterance, make_decoder
from .errors import AscendAsrError, BackendError, OptionError, TensorFileError, describe_exception
from .metrics import percent, score
from .prep import FAILURES, META, PrepDir, open_prep
from .lock import FolderLock, check_not_locked
from .results import (
    SUMMARY,
    append_segment,
    claim,
    hyps_path,
    output_path,
    read_hyps,
    read_segments,
    segment_totals,
    timing_stats,
    write_summary,
)
from .runner import EXIT_UTTERANCES_FAILED, run
from .tensor_files import META_FIELDS, JsonlAppender, check_row, output_write_error, write_bin, write_npy_atomic


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

    def __post_init__(self):
        check_options(self)


BEAM_OPTIONS = {"lm": None, "lm_alpha": 0.5, "lm_beta": 1.0, "beam_width": 10}  # beam search's, and their defaults


def check_options(options: InferOptions) -> None:
    """Options that contradict each other or would do nothing are refused before any work: an LM, its weights or
    a beam width with greedy decoding (which uses none of them); the command line also refuses them when given
    at their default values (`main`)."""
    if options.decoder not in ("greedy", "beam"):
        raise OptionError(f"--decoder {options.decoder!r}: choose greedy or beam")
    if options.decoder == "greedy":
        refuse_unused_beam_options([k for k, default in BEAM_OPTIONS.items() if getattr(options, k) != default])
    if isinstance(options.beam_width, bool) or not isinstance(options.beam_width, int) or options.beam_width < 1:
        raise OptionError(f"--beam-width {options.beam_width!r}: give a whole number of at least 1 (e.g. 10)")
    for k in ("lm_alpha", "lm_beta"):
        value = getattr(options, k)
        if not isinstance(value, (int, float)) or not np.isfinite(value):
            raise OptionError(f"--{k.replace('_', '-')} {value!r}: give a finite number (e.g. "
                              f"{BEAM_OPTIONS[k]})")
    if options.save_outputs not in (None, "bin", "npy"):
        raise OptionError(f"--save-outputs {options.save_outputs!r}: choose bin or npy")


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


def refuse_unused_beam_options(unused) -> None:
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        one = len(unused) == 1
        raise OptionError(f"{flags} {'does' if one else 'do'} nothing with --decoder greedy, which uses no language "
                          f"model and no beam: add --decoder beam to use {'it' if one else 'them'}, or drop {flags}")


def check_class_count(bundle: Bundle, outputs: dict) -> None:
    """The model's scores have one class per vocabulary label (a graph whose class axis is symbolic is only
    known to agree once it has run)."""
    spec = OutputLayout.of(bundle).scores
    scores = outputs.get(spec.name)
    if scores is not None and np.ndim(scores) == len(spec.shape) and scores.shape[-1] != bundle.vocabulary.size:
        raise BackendError(f"{bundle.manifest_path}: the vocabulary has {bundle.vocabulary.size} labels (blank "
                           f"included), but the model's {spec.name} output has {scores.shape[-1]} classes; decoding "
                           "would fail or pick the wrong labels: put the model's own vocabulary in the profile and "
                           "run `ascend-asr convert` again")


def infer(model: str, prep_dir: str, output: str, options: InferOptions = InferOptions(), out=sys.stdout) -> dict:
    """Run `model` over prep/ into results/, holding results/'s lock (a second infer on the same folder is
    refused while this one runs) and refusing a prep/ that a preprocess is still writing."""
    with FolderLock(output, "results"):
        check_not_locked(prep_dir, "prep folder")
        return _infer(model, prep_dir, output, options, out)


def _infer(model: str, prep_dir: str, output: str, options: InferOptions, out) -> dict:
    wall_start = time.perf_counter()
    segment_started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    bundle = open_bundle(model)
    bundle.check()  # its vocabulary against its scores output, its batch size: before anything else is read
    prep = open_prep(prep_dir)
    check_compatible(bundle, prep)
    vocab = bundle.vocabulary
    if bundle.manifest.get("warning"):
        print(f"[ascend-asr] WARNING ({bundle.name}): {bundle.manifest['warning']}", file=out)
    layout = OutputLayout.of(bundle)
    decode = make_decoder(vocab, layout.scores_are_probs, options.decoder, options.beam_width, options.lm,
                          options.lm_alpha, options.lm_beta, out=out)
    claim(output, {"model": bundle.name, "onnx_sha256": bundle.manifest["onnx_sha256"],
                   "prep": os.path.abspath(prep.path), "prep_profile": prep.info["profile"]})
    finished = {r["stem"] for r in read_hyps(output)}
    pending = [r for r in prep.rows if r["stem"] not in finished]
    failures, fed_frames, true_frames = [], 0, 0
    batch_size = bundle.batch_size

    def skip(meta, exc: Exception) -> None:
        """One utterance failed, whatever the reason: report it with the fix, count it, go on."""
        utt = f"{prep.path}: utterance {meta.get('id', '?')} (stem {meta.get('stem', '?')})"
        if isinstance(exc, AscendAsrError):
            message = f"{utt}: {exc}"
        else:  # not a refusal of ours: say where it came from, so that a bug stays visible
            message = (f"{utt}: unexpected {describe_exception(exc)}; rerun preprocess for it (or remove its line "
                       "from meta.jsonl), and report this if it recurs")
        failures.append({"stem": meta.get("stem"), "id": meta.get("id"), "error": message})
        tqdm.write(f"[ascend-asr] skipped {message}", file=sys.stderr)
        bar.update(1)

    def batches():
        """(feeds, rows) per batch; unreadable or too-long utterances are reported and skipped."""
        rows, tensors = [], []
        meta_path = os.path.join(prep.path, META)
        fix = f"rerun preprocess into a new folder, or remove the line from {meta_path}"

        def flush():
            nonlocal fed_frames
            frames = pick_frames(max(r["padded_frames"] for r in rows), bundle.frames, batch_size)
            fed_frames += frames * batch_size
            return assemble(tensors, bundle.inputs, batch_size, frames), rows

        for meta in pending:
            try:
                check_row(meta, META_FIELDS, f"{meta_path} (stem {meta.get('stem', '?')})", fix)
                if meta["padded_frames"] is None or meta["frames"] > meta["padded_frames"]:
                    raise TensorFileError(f"{meta_path} (stem {meta['stem']}): frames {meta['frames']} exceed "
                                          f"padded_frames {meta['padded_frames']}; {fix}")
                pick_frames(meta["padded_frames"], bundle.frames, batch_size)  # fits a compiled shape?
                loaded = prep.load(meta)
            except Exception as exc:  # one utterance's problem, whatever its type
                skip(meta, exc)
                continue
            tensors.append(loaded)
            rows.append(meta)
            if len(rows) == batch_size:
                yield flush()
                rows, tensors = [], []
        if rows:  # the last, partial batch (also when the very last utterance was skipped)
            yield flush()

    def consume(rows, outputs):
        nonlocal true_frames
        check_class_count(bundle, outputs)  # a run-level error, before any utterance of the batch is decoded
        done_rows = 0
        for i, meta in enumerate(rows):
            try:
                scores = time_major(row(outputs, layout.scores, i), layout.scores)
                out_len, ids = decode_utterance(layout, decode, scores, meta["frames"],
                                                row(outputs, layout.lengths, i) if layout.lengths else None)
                hyp = vocab.decode(ids)
            except Exception as exc:  # a decoding failure costs this utterance only
                skip(meta, exc)
                continue
            target = None
            try:
                if options.save_outputs:
                    target = os.path.join(output, "outputs")
                    _save_outputs(output, meta["stem"], outputs, bundle, i, options.save_outputs)
                target = hyps_path(output)
                hyps.write({"stem": meta["stem"], "id": meta["id"], "hyp": hyp, "ref": meta["text"],
                            "duration": meta["duration"], "frames": meta["frames"], "out_frames": out_len})
            except OSError as exc:  # disk full, permissions: the run's problem, not the utterance's
                raise output_write_error(exc, exc.filename or target, output) from exc
            true_frames += meta["frames"]
            done_rows += 1
        bar.update(done_rows)

    with open_session(bundle, options.backend, options.device, options.mode, out=out) as session, \
            JsonlAppender(hyps_path(output)) as hyps, \
            tqdm(total=len(pending), desc="infer", unit="utt", disable=not options.progress) as bar:
        loop_start = time.perf_counter()
        completed = False
        try:
            run_pipelined(session, batches(), consume)
            completed = True
        finally:  # this segment's record, also when it is interrupted: a resumed run's totals include it
            segment = _segment_record(output, finished, segment_started, time.perf_counter() - loop_start,
                                      session, fed_frames, true_frames, failures)
            if not completed:
                segment.update(complete=False, wall_time_s=time.perf_counter() - wall_start)
                with contextlib.suppress(Exception):
                    append_segment(output, segment)
        backend_name, fallback, mode = session.name, session.fallback, session.mode

    results = read_hyps(output)
    total = score((r["ref"], r["hyp"]) for r in results)
    segment["wall_time_s"] = time.perf_counter() - wall_start
    append_segment(output, segment)
    totals = segment_totals(read_segments(output), results, batch_size)  # over every segment of the folder
    summary = {
        "model": bundle.name, "backend": backend_name, "fallback": fallback, "mode": mode,
        "device": options.device if backend_name in ("acl", "ais_bench") else None,
        "batch_size": batch_size,
        "decoder": {"kind": options.decoder, **({"beam_width": options.beam_width, "lm": options.lm,
                                                  "lm_alpha": options.lm_alpha, "lm_beta": options.lm_beta}
                                                 if options.decoder == "beam" else {})},
        "compiled_shapes": bundle.manifest["shapes"],
        # timing blocks, wall time, audio, RTF, failures: totals over every segment (a resumed run included);
        # end_to_end_utterances_per_s counts host + device work, as pipelined
        **{k: v for k, v in totals.items() if k not in ("failures", "segments")},
        "utterances": {"total": len(prep.rows) + prep.info.get("failed", 0), "scored": len(results),
                       "this_run": segment["utterances"], "resumed": len(finished),
                       "failed": len(totals["failures"]), "failed_in_preprocess": prep.info.get("failed", 0),
                       "segments": len(totals["segments"])},
        "failures": totals["failures"], "segments": totals["segments"],
        **{k: v for k, v in total.to_dict().items() if k != "utterances"},
        "error_rate": vocab.error_rate_name,  # "wer" holds token errors: phone error rate for phone vocabularies
    }
    write_summary(output, summary)
    return summary


def _segment_record(output: str, resumed: set, started: str, loop_wall: float, session, fed_frames: int,
                    true_frames: int, failures: list) -> dict:
    """What one infer run into results/ did (kept in segments.jsonl): its utterances, audio and raw timings."""
    try:
        mine = [r for r in read_hyps(output) if r["stem"] not in resumed]
    except AscendAsrError:
        mine = []
    timings = session.timings
    return {"segment": len(read_segments(output)) + 1, "started": started, "complete": True,
            "backend": session.name, "fallback": session.fallback, "mode": session.mode,
            "utterances": len(mine), "failed": len(failures), "audio_seconds": sum(r["duration"] for r in mine),
            "loop_wall_s": loop_wall, "wall_time_s": None, "fed_frames": fed_frames, "true_frames": true_frames,
            "compute_ms": list(timings.compute_ms), "h2d_ms": list(timings.h2d_ms), "d2h_ms": list(timings.d2h_ms),
            "timings_missing": dict(session.missing_timings), "failures": list(failures)}


def _save_outputs(output: str, stem: str, outputs: dict, bundle: Bundle, index: int, fmt: str) -> None:
    """ais_bench naming: <stem>_<k>.bin|npy, one file per output, batch axis kept (size 1)."""
    for k, spec in enumerate(bundle.outputs):
        array = np.expand_dims(row(outputs, spec, index), spec.axis("batch"))
        path = output_path(output, stem, k, fmt)
        if fmt == "bin":
            write_bin(path, array, spec.dtype)
        else:
            write_npy_atomic(path, array)  # never through a link planted where the file goes


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
    p.add_argument("--beam-width", type=int, help="beams kept by --decoder beam (default 10)")
    p.add_argument("--lm", help="n-gram language model for --decoder beam (ARPA; kenlm binary with kenlm installed)")
    p.add_argument("--lm-alpha", type=float, help="LM weight, for --decoder beam (default 0.5)")
    p.add_argument("--lm-beta", type=float, help="word insertion bonus, for --decoder beam (default 1.0)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 if any utterance failed, here or in preprocess (without it: only if none succeeded); "
                        "failures are listed in OUTPUT/summary.json and INPUT/failures.json")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    given = [k for k in BEAM_OPTIONS if getattr(args, k) is not None]  # on the command line, even at a default
    if args.decoder == "greedy":
        refuse_unused_beam_options(given)
    beam = {k: getattr(args, k) for k in given}
    summary = infer(args.model, args.input, args.output,
                    InferOptions(backend=args.backend, device=args.device, mode=args.mode,
                                 save_outputs=args.save_outputs, decoder=args.decoder, progress=not args.no_progress,
                                 **beam))
    print_summary(summary)
    print(f"[ascend-asr] results: {hyps_path(args.output)}, {os.path.join(args.output, SUMMARY)}")
    u = summary["utterances"]
    failed = u["failed"] + u["failed_in_preprocess"]
    if failed and (args.strict or not u["scored"]):
        where = os.path.join(args.output, SUMMARY) + " (failures)"
        if u["failed_in_preprocess"]:
            where += f" and {os.path.join(args.input, FAILURES)}"
        why = "--strict" if u["scored"] else "no utterance succeeded"
        print(f"[ascend-asr] error: {failed} utterance(s) failed ({why}); they are listed in {where}",
              file=sys.stderr)
        return EXIT_UTTERANCES_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
