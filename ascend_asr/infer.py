"""Offline inference: a bundle + prep/ -> results/ (hyps.jsonl, summary.json[, raw outputs]).

    python -m ascend_asr.infer --model jasper_bs1.om --input prep/ --output results/

Without an NPU the bundle's ONNX runs on onnxruntime, and the console and the summary say so.
A rerun into the same results/ resumes: finished utterances are neither redone nor duplicated.
Batches are length-sorted (each utterance at the smallest gear that holds it, longest first); hyps.jsonl
rows are appended as batches finish and the file is rewritten in stem (manifest) order when a run ends.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from tqdm import tqdm

from .backends import BACKENDS, MODES, Session, Timings, open_session, run_pipelined
from .backends.onnxruntime_backend import OPT_LEVELS
from .batching import assemble, pick_frames, plan_batches, row, time_major
from .bundle import Bundle, open_bundle
from .decoding import FrameClock, OutputLayout
from .featurize import worker_context
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
    write_summary,
)
from .runner import EXIT_UTTERANCES_FAILED, run, worker_process_setup
from .profiles import BATCH
from .transcribe import DecoderSettings, check_settings, make_transcriber, resolve_lexicon_mode, word_boundary
from .tensor_files import (
    TRIM_START_KEY,
    META_FIELDS,
    JsonlAppender,
    check_row,
    output_write_error,
    write_bin,
    write_npy_atomic,
    write_text_atomic,
)


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
    lexicon: str = "auto"  # beam: auto | none | lm | unigrams | a lexicon file (transcribe.py)
    unk_score: float = -10.0  # beam with a lexicon: score of a word outside it (-inf: closed vocabulary)
    hotwords: str | None = None  # beam with a lexicon: file of words/phrases to boost
    hotword_weight: float = 10.0
    nbest: int = 1  # hypotheses kept per utterance in hyps.jsonl (beam)
    progress: bool = True
    decode_workers: int = 0  # processes that decode while the device runs (0: decode in this process)
    ort_threads: int = 0  # onnxruntime intra-op threads (0: every core)
    ort_opt_level: str = "all"  # onnxruntime graph optimisation: disable, basic, extended or all
    stems: tuple | None = None  # only these prep/ utterances (one device's share, from multi_device); None: all

    def __post_init__(self):
        check_options(self)


BEAM_OPTIONS = {"lm": None, "lm_alpha": 0.5, "lm_beta": 1.0, "beam_width": 10, "lexicon": "auto", "unk_score": -10.0,
                "hotwords": None, "hotword_weight": 10.0, "nbest": 1}  # beam search's, and their defaults


def decoder_settings(options: "InferOptions") -> DecoderSettings:
    return DecoderSettings(options.decoder, options.beam_width, options.lm, options.lm_alpha, options.lm_beta,
                           options.lexicon, options.unk_score, options.hotwords, options.hotword_weight,
                           nbest=options.nbest)


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
    check_settings(decoder_settings(options), None, model_known=False)
    if options.save_outputs not in (None, "bin", "npy"):
        raise OptionError(f"--save-outputs {options.save_outputs!r}: choose bin or npy")
    for k, example in (("decode_workers", 4), ("ort_threads", 4)):
        value = getattr(options, k)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise OptionError(f"--{k.replace('_', '-')} {value!r}: give a whole number of at least 0 (e.g. {example})")
    if options.ort_opt_level not in OPT_LEVELS:
        raise OptionError(f"--ort-opt-level {options.ort_opt_level!r}: choose one of {', '.join(OPT_LEVELS)}")


def selected_rows(prep: PrepDir, stems) -> list[dict]:
    """prep/'s rows, or only those whose stem is in `stems` (each of which prep/ must hold)."""
    if stems is None:
        return prep.rows
    wanted = set(stems)
    rows = [r for r in prep.rows if r["stem"] in wanted]
    if len(rows) != len(wanted):
        unknown = sorted(wanted - {r["stem"] for r in rows})
        raise TensorFileError(f"{prep.path}: {len(unknown)} utterance(s) asked for are not in {META} (stem "
                              f"{unknown[0]}); give stems of this prep/ folder")
    return rows


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


# manifest keys in which bundles of one model at several batch sizes differ (`--model A,B`); all others must agree
PER_BATCH_SIZE_KEYS = {"name", "batch_size", "shapes", "onnx_sha256", "onnx_size", "soc_version_origin",
                       "atc_command", "atc_command_line", "atc_run_from", "om"}


def open_bundles(model: str) -> list[Bundle]:
    """The bundle(s) that `--model` names: one, or several of one model at other batch sizes (comma-separated),
    smallest batch size first. Their manifests must agree except in PER_BATCH_SIZE_KEYS."""
    paths = [m.strip() for m in model.split(",")] if "," in model else [model]
    if any(not p for p in paths):
        raise OptionError(f"--model {model!r}: an empty bundle name; give NAME.om[,NAME2.om ...]")
    bundles = sorted((open_bundle(p) for p in paths), key=lambda b: b.batch_size)
    for b in bundles:
        b.check()  # its vocabulary against its scores output, its batch size: before anything else is read
    sizes = [b.batch_size for b in bundles]
    if len(set(sizes)) != len(sizes):
        raise OptionError(f"--model {model!r}: two bundles with one batch size ({sizes}); give one bundle per "
                          "batch size")
    first = bundles[0]
    for b in bundles[1:]:
        differ = sorted(k for k in set(first.manifest) | set(b.manifest)
                        if k not in PER_BATCH_SIZE_KEYS and first.manifest.get(k) != b.manifest.get(k))
        if differ:
            raise OptionError(f"--model {model!r}: {b.manifest_path} and {first.manifest_path} differ in "
                              f"{', '.join(differ)}; bundles run together must be one model converted at several "
                              "batch sizes (`ascend-asr convert` with one profile and ONNX)")
    return bundles


class _SessionsByBatchSize(Session):
    """Several sessions of one model, one per batch size: each batch runs on the one of its size."""

    def __init__(self, sessions: dict[int, Session], inputs):
        self._sessions, self._spec = sessions, inputs[0]  # the batch size is read off the first input
        first = next(iter(sessions.values()))
        self.name, self.fallback, self.mode = first.name, first.fallback, first.mode
        self.max_in_flight = min(s.max_in_flight for s in sessions.values())

    @property
    def timings(self) -> Timings:
        merged = Timings()
        for s in self._sessions.values():
            for k in ("compute_ms", "h2d_ms", "d2h_ms"):
                getattr(merged, k).extend(getattr(s.timings, k))
        return merged

    @property
    def missing_timings(self) -> dict:
        merged = {}
        for s in self._sessions.values():
            for k, v in s.missing_timings.items():
                merged[k] = merged.get(k, 0) + v
        return merged

    def input_names(self):
        return next(iter(self._sessions.values())).input_names()

    def output_names(self):
        return next(iter(self._sessions.values())).output_names()

    def session_for(self, feeds: dict) -> Session:
        spec = self._spec
        return self._sessions[feeds[spec.name].shape[spec.axis(BATCH)]]

    def run(self, feeds):
        return self.session_for(feeds).run(feeds)

    def submit(self, feeds):
        return self.session_for(feeds).submit(feeds)


_DECODER = None  # in a decode worker process: (layout, vocabulary, decode function)


def _init_decode_worker(parent_pid: int, vocab, layout: OutputLayout, settings, clock: FrameClock):
    worker_process_setup(parent_pid)
    global _DECODER
    _DECODER = (layout, vocab, make_transcriber(vocab, layout.scores_are_probs, settings, clock,
                                                out=io.StringIO()))  # its warnings were printed by the parent's


def decode_one(layout: OutputLayout, vocab, decode, scores, frames: int, length, offset: float = 0.0):
    """(output frames, Transcript, None), or (None, None, the exception) when this utterance cannot be decoded.
    `decode` is a transcriber (transcribe.make_transcriber); `offset`: seconds of audio before the first
    feature frame (a frontend's trimmed leading silence, when preprocess records it), added to word times."""
    try:
        out_len = layout.valid_frames(frames, length)
        return out_len, decode(scores, out_len, offset, frames=frames), None
    except Exception as exc:  # a decoding failure costs this utterance only
        return None, None, exc


def _decode_in_worker(items: list) -> list:
    layout, vocab, decode = _DECODER
    results = []
    for item in items:
        out_len, hyp, exc = decode_one(layout, vocab, decode, *item)
        if exc is not None:
            try:
                pickle.dumps(exc)
            except Exception:  # an exception that cannot cross processes travels as its description
                exc = RuntimeError(describe_exception(exc))
        results.append((out_len, hyp, exc))
    return results


def sort_hyps(results_dir: str) -> None:
    """Rewrite hyps.jsonl in stem (manifest) order, atomically and never through a link: rows are appended as
    batches finish (length-sorted, so not in stem order) and a resumed run appends after the rows it found."""
    rows = read_hyps(results_dir)
    if [r["stem"] for r in rows] != sorted(r["stem"] for r in rows):
        write_text_atomic(hyps_path(results_dir), "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                          for r in sorted(rows, key=lambda r: r["stem"])))


def infer(model: str, prep_dir: str, output: str, options: InferOptions = InferOptions(), out=sys.stdout) -> dict:
    """Run `model` over prep/ into results/, holding results/'s lock (a second infer on the same folder is
    refused while this one runs) and refusing a prep/ that a preprocess is still writing."""
    check_separate_folders(prep_dir, output)
    with FolderLock(output, "results"):
        check_not_locked(prep_dir, "prep folder")
        return _infer(model, prep_dir, output, options, out)


def check_separate_folders(prep_dir: str, output: str) -> None:
    """results/ is a folder of its own: not prep/, not inside it, not holding it."""
    prep, results = os.path.realpath(prep_dir), os.path.realpath(output)
    if prep == results or results.startswith(prep + os.sep) or prep.startswith(results + os.sep):
        raise OptionError(f"--output {output} and --input {prep_dir} overlap; give results a folder of its own "
                          "(e.g. --output results)")


def _infer(model: str, prep_dir: str, output: str, options: InferOptions, out) -> dict:
    wall_start = time.perf_counter()
    segment_started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    bundles = open_bundles(model)  # each checked: before anything else is read
    bundle = bundles[0]
    prep = open_prep(prep_dir)
    if not prep.rows:
        raise TensorFileError(f"{prep_dir}: no utterances to infer ({prep.info.get('failed', 0)} failed in preprocess, "
                              "listed in failures.json); preprocess a manifest whose audio loads")
    check_compatible(bundle, prep)
    vocab = bundle.vocabulary
    if bundle.manifest.get("warning"):
        print(f"[ascend-asr] WARNING ({bundle.name}): {bundle.manifest['warning']}", file=out)
    layout = OutputLayout.of(bundle)
    clock = FrameClock.of(bundle)
    settings = decoder_settings(options)
    decode = make_transcriber(vocab, layout.scores_are_probs, settings, clock, out=out)
    claim(output, {"model": ",".join(b.name for b in bundles),
                   "onnx_sha256": ",".join(b.manifest["onnx_sha256"] for b in bundles),
                   "prep": os.path.abspath(prep.path), "prep_profile": prep.info["profile"]})
    finished = {r["stem"] for r in read_hyps(output)}
    pending = [r for r in selected_rows(prep, options.stems) if r["stem"] not in finished]
    failures, fed_frames, true_frames, fed_batches = [], 0, 0, []
    batch_sizes = [b.batch_size for b in bundles]
    batch_size = batch_sizes[-1]  # the largest

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

    meta_path = os.path.join(prep.path, META)
    fix = f"rerun preprocess into a new folder, or remove the line from {meta_path}"

    def schedulable(meta) -> bool:
        """A meta row that names a length that fits a compiled gear (else it is reported and skipped)."""
        try:
            check_row(meta, META_FIELDS, f"{meta_path} (stem {meta.get('stem', '?')})", fix)
            if meta["padded_frames"] is None or meta["frames"] > meta["padded_frames"]:
                raise TensorFileError(f"{meta_path} (stem {meta['stem']}): frames {meta['frames']} exceed "
                                      f"padded_frames {meta['padded_frames']}; {fix}")
            pick_frames(meta["padded_frames"], bundle.frames, batch_size)  # fits a compiled shape?
        except Exception as exc:  # one utterance's problem, whatever its type
            skip(meta, exc)
            return False
        return True

    def batches():
        """(feeds, rows) per batch, length-sorted (batching.plan_batches): each utterance at the smallest gear
        that holds it, whatever the manifest order; unreadable utterances are reported and skipped."""
        nonlocal fed_frames
        for frames, size, planned in plan_batches([m for m in pending if schedulable(m)], bundle.frames,
                                                  batch_sizes):
            rows, tensors = [], []
            for meta in planned:
                try:
                    tensors.append(prep.load(meta))
                except Exception as exc:  # one utterance's problem, whatever its type
                    skip(meta, exc)
                    continue
                rows.append(meta)
            if rows:
                fed_frames += frames * size
                fed_batches.append(size)
                yield assemble(tensors, bundle.inputs, size, frames), rows

    in_flight = deque()  # (future, rows, row indices, outputs) of batches being decoded by the pool, in order

    def consume(rows, outputs):
        check_class_count(bundle, outputs)  # a run-level error, before any utterance of the batch is decoded
        items, kept = [], []
        for i, meta in enumerate(rows):
            try:
                scores = time_major(row(outputs, layout.scores, i), layout.scores)
                items.append((scores, meta["frames"], row(outputs, layout.lengths, i) if layout.lengths else None,
                              float(meta.get(TRIM_START_KEY) or 0.0)))
            except Exception as exc:  # costs this utterance only
                skip(meta, exc)
                continue
            kept.append(i)
        if pool is None:
            write(rows, kept, outputs, [decode_one(layout, vocab, decode, *item) for item in items])
            return
        in_flight.append((pool.submit(_decode_in_worker, items), rows, kept, outputs))
        while in_flight and (len(in_flight) > 2 * options.decode_workers or in_flight[0][0].done()):
            drain_one()

    def drain_one():
        future, rows, kept, outputs = in_flight.popleft()
        write(rows, kept, outputs, future.result())

    def write(rows, kept, outputs, decoded):
        """Hypotheses (and raw outputs) of one batch, in its order."""
        nonlocal true_frames
        done_rows = 0
        for i, (out_len, hyp, exc) in zip(kept, decoded):
            meta = rows[i]
            if exc is not None:
                skip(meta, exc)
                continue
            target = None
            try:
                if options.save_outputs:
                    target = os.path.join(output, "outputs")
                    _save_outputs(output, meta["stem"], outputs, bundle, i, options.save_outputs)
                target = hyps_path(output)
                hyps.write({"stem": meta["stem"], "id": meta["id"], "hyp": hyp.text, "ref": meta["text"],
                            "duration": meta["duration"], "frames": meta["frames"], "out_frames": out_len,
                            **hyp.fields()})
            except OSError as exc:  # disk full, permissions: the run's problem, not the utterance's
                raise output_write_error(exc, exc.filename or target, output) from exc
            true_frames += meta["frames"]
            done_rows += 1
        bar.update(done_rows)

    pool = None
    with contextlib.ExitStack() as stack:
        if options.decode_workers and pending:  # started before any model session, so it inherits none
            pool = stack.enter_context(ProcessPoolExecutor(
                options.decode_workers, mp_context=worker_context(), initializer=_init_decode_worker,
                initargs=(os.getpid(), vocab, layout, settings, clock)))
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # an interrupted run waits for none
        sessions = {b.batch_size: stack.enter_context(open_session(b, options.backend, options.device, options.mode,
                                                                   out=out, ort_threads=options.ort_threads,
                                                                   ort_opt_level=options.ort_opt_level))
                    for b in bundles}
        session = sessions[batch_size] if len(sessions) == 1 else _SessionsByBatchSize(sessions, bundle.inputs)
        hyps = stack.enter_context(JsonlAppender(hyps_path(output)))
        bar = stack.enter_context(tqdm(total=len(pending), desc="infer", unit="utt", disable=not options.progress))
        loop_start = time.perf_counter()
        completed = False
        try:
            run_pipelined(session, batches(), consume)
            while in_flight:  # hypotheses still being decoded by the pool, in order
                drain_one()
            completed = True
        finally:  # this segment's record, also when it is interrupted: a resumed run's totals include it
            segment = _segment_record(output, finished, segment_started, time.perf_counter() - loop_start,
                                      session, fed_frames, true_frames, failures, sum(fed_batches))
            if not completed:
                segment.update(complete=False, wall_time_s=time.perf_counter() - wall_start)
                with contextlib.suppress(Exception):
                    append_segment(output, segment)
        backend_name, fallback, mode = session.name, session.fallback, session.mode

    sort_hyps(output)  # stem order, whatever order the length-sorted batches finished in
    results = read_hyps(output)
    total = score((r["ref"], r["hyp"]) for r in results)
    segment["wall_time_s"] = time.perf_counter() - wall_start
    append_segment(output, segment)
    # several batch sizes: throughput counts this run's mean batch size
    per_batch = batch_size if len(bundles) == 1 or not fed_batches else sum(fed_batches) / len(fed_batches)
    totals = segment_totals(read_segments(output), results, per_batch)  # over every segment of the folder
    summary = {
        "model": ",".join(b.name for b in bundles), "backend": backend_name, "fallback": fallback, "mode": mode,
        "device": options.device if backend_name in ("acl", "ais_bench") else None,
        "batch_size": batch_size,
        **({"batch_sizes": batch_sizes} if len(bundles) > 1 else {}),
        "scheduling": "length-sorted",  # batches of one gear each, longest first (batching.plan_batches)
        **({"onnxruntime": {"threads": options.ort_threads, "opt_level": options.ort_opt_level}}
           if backend_name.startswith("onnxruntime") else {}),
        "decode_workers": options.decode_workers,
        "decoder": {"kind": options.decoder, **({"beam_width": options.beam_width, "lm": options.lm,
                                                  "lm_alpha": options.lm_alpha, "lm_beta": options.lm_beta}
                                                 if options.decoder == "beam" else {})},
        # the word-level search and what hyps.jsonl's words, confidences and N-best mean (transcribe.py)
        "decoding": {**({"lexicon": resolve_lexicon_mode(settings, word_boundary(vocab)),
                         "unk_score": options.unk_score, "hotwords": options.hotwords,
                         "hotword_weight": options.hotword_weight, "nbest": options.nbest}
                        if options.decoder == "beam" else {}),
                     "word_times": "CTC alignment of the transcript; seconds = output frame x frontend hop x model "
                                   "stride, from the start of the audio the features were computed on (after "
                                   "silence trimming, for frontends that trim)",
                     "confidence": "word: geometric mean of the aligned path's posteriors over its frames; "
                                   "utterance: geometric mean of its words'"},
        "compiled_shapes": [shape for b in bundles for shape in b.manifest["shapes"]],
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
                    true_frames: int, failures: list, fed_rows: int = 0) -> dict:
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
            "fed_rows": fed_rows,  # batch rows fed, padding rows included: throughput at the batch sizes used
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
    p.add_argument("--model", required=True,
                   help="bundle file: NAME.om, NAME.onnx or NAME.json; or several bundles of one model at other batch "
                        "sizes, comma-separated (NAME_bs1.om,NAME_bs8.om): each gear's batches take the largest "
                        "batch size its utterances fill")
    p.add_argument("--input", required=True, help="prep/ folder written by preprocess")
    p.add_argument("--output", required=True, help="results/ folder (resumed if it exists)")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--device", default="0", help="NPU device id (logical, as npu-smi shows it); several (0,1,2,3) "
                   "or all: one worker process per device, the utterances split by frames (results/devices/<id>/)")
    p.add_argument("--mode", default="async", choices=MODES,
                   help="pyACL only: async overlaps host and device work on two streams")
    p.add_argument("--save-outputs", choices=("bin", "npy"), help="also write raw outputs as ais_bench names them")
    p.add_argument("--streaming", action="store_true",
                   help="chunk-by-chunk streaming with carried states, for a family that streams, e.g. "
                        "--streaming --chunk-frames 4; its options: python -m ascend_asr.streaming --help")
    p.add_argument("--decoder", default="greedy", choices=("greedy", "beam"))
    p.add_argument("--beam-width", type=int, help="beams kept by --decoder beam (default 10)")
    p.add_argument("--lm", help="n-gram language model for --decoder beam (ARPA; kenlm binary with kenlm installed)")
    p.add_argument("--lm-alpha", type=float, help="LM weight, for --decoder beam (default 0.5)")
    p.add_argument("--lm-beta", type=float, help="word insertion bonus, for --decoder beam (default 1.0)")
    p.add_argument("--lexicon", help="--decoder beam: auto (default: the LM's words when it is a word LM, else none), "
                   "lm (the LM's words), a lexicon file (one word per line), unigrams (free spelling scored against "
                   "the LM's words, as pyctcdecode) or none (the plain prefix beam search)")
    p.add_argument("--unk-score", type=float, help="--decoder beam with a lexicon: log-score of a word outside it "
                   "(default -10; --unk-score=-inf: closed vocabulary, only lexicon words)")
    p.add_argument("--hotwords", help="--decoder beam with a lexicon: file of words or phrases to prefer, one per line "
                   "(optionally a tab and a boost)")
    p.add_argument("--hotword-weight", type=float, help="boost of a hotword without its own (default 10)")
    p.add_argument("--nbest", type=int, help="--decoder beam: hypotheses kept per utterance in hyps.jsonl (default 1)")
    p.add_argument("--decode-workers", type=int, default=0,
                   help="processes that decode (beam search, LM) while the device runs the next batches "
                        "(default 0: decode in this process)")
    p.add_argument("--ort-threads", type=int, default=0,
                   help="onnxruntime intra-op threads (default 0: every core)")
    p.add_argument("--ort-opt-level", default="all", choices=tuple(OPT_LEVELS),
                   help="onnxruntime graph optimisation level (default all)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 if any utterance failed, here or in preprocess (without it: only if none succeeded); "
                        "failures are listed in OUTPUT/summary.json and INPUT/failures.json")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--streaming" in argv:  # chunk by chunk with carried states: the streaming family's own options
        from .streaming import main as streaming_main

        return streaming_main([a for a in argv if a != "--streaming"])
    args = build_parser().parse_args(argv)
    given = [k for k in BEAM_OPTIONS if getattr(args, k) is not None]  # on the command line, even at a default
    if args.decoder == "greedy":
        refuse_unused_beam_options(given)
    beam = {k: getattr(args, k) for k in given}
    from .multi_device import infer_on  # one device: infer; several: a worker process each

    summary = infer_on(args.device, args.model, args.input, args.output,
                       InferOptions(backend=args.backend, mode=args.mode,
                                    save_outputs=args.save_outputs, decoder=args.decoder, progress=not args.no_progress,
                                    decode_workers=args.decode_workers, ort_threads=args.ort_threads,
                                    ort_opt_level=args.ort_opt_level, **beam))
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
