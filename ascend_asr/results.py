"""The results/ folder: what infer writes and score reads.

    results/hyps.jsonl      hypothesis and reference per utterance, appended as it goes (a rerun resumes)
    results/run.json        which model and prep/ the folder belongs to (resuming with others is refused)
    results/segments.jsonl  one record per infer run into the folder (counts, wall time, raw timings), so
                            that summary.json totals every resumed segment
    results/summary.json    ais_bench timing keys, wall time, RTF, backend, fallback, WER/CER, failures
    results/outputs/        raw outputs as ais_bench names them (<stem>_<k>.bin|npy), with --save-outputs
    results/score.json      WER and CER per utterance and in total (score)
"""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from .errors import TensorFileError
from .prep import check_stem, dedupe_rows
from .tensor_files import (
    HYPS_FIELDS,
    JsonlAppender,
    check_row,
    read_jsonl,
    refuse_symlink,
    write_json_atomic,
    write_text_atomic,
)

HYPS = "hyps.jsonl"
RUN = "run.json"
SUMMARY = "summary.json"
OUTPUTS = "outputs"
SCORE = "score.json"
SEGMENTS = "segments.jsonl"
RUN_KEYS = ("model", "onnx_sha256", "prep", "prep_profile")


def hyps_path(results_dir: str) -> str:
    return os.path.join(results_dir, HYPS)


def _checked_hyps(results_dir: str) -> list[dict]:
    path = hyps_path(results_dir)
    rows = read_jsonl(path)
    for n, row in enumerate(rows, start=1):
        check_row(row, HYPS_FIELDS, f"{path} (row {n})", "this is not a hyps.jsonl row as infer writes it: remove "
                  "the line and rerun infer on this folder (it redoes that utterance)")
        check_stem(row["stem"], f"{path} (row {n})")
    return rows


def read_hyps(results_dir: str, log=None) -> list[dict]:
    """Finished utterances of a results folder ([] for a new one), each stem once: rows written twice (by
    an older version, or two runs at once) are dropped, and stderr says so."""
    return dedupe_rows(_checked_hyps(results_dir), hyps_path(results_dir), log)


def read_scored_hyps(results_dir: str) -> list[dict]:
    """The hypotheses of a finished (or partial) run; a missing or empty results folder is an error, and so
    is an utterance scored twice (it would count twice)."""
    if not os.path.isdir(results_dir):
        raise TensorFileError(f"{results_dir}: results folder not found; run `python -m ascend_asr.infer --model M "
                              f"--input PREP --output {results_dir}` first, or give the folder infer wrote")
    rows = _checked_hyps(results_dir)
    if not rows:
        raise TensorFileError(f"{hyps_path(results_dir)}: no hypotheses; run `python -m ascend_asr.infer` first")
    counts = Counter(r["stem"] for r in rows)
    repeated = [stem for stem, n in counts.items() if n > 1]
    if repeated:
        first = next(r for r in rows if r["stem"] == repeated[0])
        raise TensorFileError(
            f"{hyps_path(results_dir)}: utterance {first['id']!r} (stem {repeated[0]}) appears {counts[repeated[0]]} "
            f"times ({len(repeated)} utterances repeated), so it would be scored twice; rerun the same infer command "
            "on this folder, which keeps each utterance once, or infer again into a new --output folder")
    return rows


def _read_run(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TensorFileError(f"{path}: unreadable ({exc}); this folder's origin is unknown: write to a new "
                              "--output folder") from exc
    if not isinstance(previous, dict) or any(k not in previous for k in RUN_KEYS):
        raise TensorFileError(f"{path}: not a run record of ascend-asr infer (needs {', '.join(RUN_KEYS)}); "
                              "write to a new --output folder")
    return previous


def claim(results_dir: str, identity: dict) -> None:
    """Record which model and prep/ a results folder belongs to; resuming with others is refused.

    A resumed folder's hyps.jsonl is rewritten with each utterance once if rows were appended twice
    (by an older version, or by two runs at once before the lock existed), so that score accepts it.
    """
    for name in (HYPS, RUN, SUMMARY, SEGMENTS, SCORE):  # before any work: never written through a planted link
        target = os.path.join(results_dir, name)
        refuse_symlink(target)
        if os.path.isdir(target):
            raise TensorFileError(f"{target}: is a folder where infer writes a file; remove it or write to a new "
                                  "--output folder")
    path = os.path.join(results_dir, RUN)
    if os.path.lexists(path):
        previous = _read_run(path)
        _drop_duplicate_hyps(results_dir, identity if previous == identity else None)
        read_segments(results_dir)  # a damaged record is refused now, not after the work
        if previous != identity:
            changed = [k for k in RUN_KEYS if previous.get(k) != identity.get(k)]
            if changed and changed != ["model"] and previous["model"] == identity["model"]:
                raise TensorFileError(f"{path}: this folder holds results of {previous['model']} on "
                                      f"{previous['prep']} with another {' and '.join(changed)}; write to a new "
                                      "--output folder")
            raise TensorFileError(f"{path}: this folder holds results of {previous['model']} on {previous['prep']}, not "
                                  f"{identity['model']} on {identity['prep']}; write to a new --output folder")
    elif read_hyps(results_dir):
        raise TensorFileError(f"{hyps_path(results_dir)}: exists but {RUN} does not, so its origin is unknown; "
                              "write to a new --output folder")
    else:
        write_json_atomic(path, identity)


def _drop_duplicate_hyps(results_dir: str, identity: dict | None) -> None:
    if identity is None:
        return  # another run's folder: claim refuses it, nothing is rewritten
    rows = _checked_hyps(results_dir)
    unique = read_hyps(results_dir)
    if len(unique) != len(rows):
        write_text_atomic(hyps_path(results_dir), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in unique))


def output_path(results_dir: str, stem: str, index: int, fmt: str) -> str:
    """ais_bench naming of raw output `index` of one utterance: outputs/<stem>_<index>.<fmt>."""
    check_stem(stem, f"{os.path.join(results_dir, OUTPUTS)}: output name")
    if fmt not in ("bin", "npy") or not isinstance(index, int) or index < 0:
        raise TensorFileError(f"{results_dir}: output {index!r} in format {fmt!r}; use --save-outputs bin or npy")
    return os.path.join(results_dir, OUTPUTS, f"{stem}_{index}.{fmt}")


def segments_path(results_dir: str) -> str:
    return os.path.join(results_dir, SEGMENTS)


def append_segment(results_dir: str, record: dict) -> None:
    with JsonlAppender(segments_path(results_dir)) as f:
        f.write(record)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 0


def read_segments(results_dir: str) -> list[dict]:
    """The segment records of a results folder, each checked: totals are computed from them."""
    path = segments_path(results_dir)
    rows = read_jsonl(path)
    for n, r in enumerate(rows, start=1):
        ok = isinstance(r, dict) and isinstance(r.get("utterances"), int) and all(
            r.get(k) is None or _number(r.get(k)) for k in ("wall_time_s", "loop_wall_s", "audio_seconds",
                                                              "fed_frames", "true_frames")) and all(
            isinstance(r.get(k, []), list) and all(_number(v) for v in r.get(k, []))
            for k in ("compute_ms", "h2d_ms", "d2h_ms")) and isinstance(r.get("failures", []), list) \
            and isinstance(r.get("timings_missing", {}), dict)
        if not ok:
            raise TensorFileError(f"{path} (row {n}): not a segment record as infer writes it; remove the line (that "
                                  "run's timings are then not counted) and rerun")
    return rows


def timing_stats(values) -> dict:
    """ais_bench's statistics block (milliseconds)."""
    if not values:
        return {"min": None, "max": None, "mean": None, "median": None, "percentile(99%)": None, "count": 0}
    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()), "median": float(np.median(v)),
            "percentile(99%)": float(np.percentile(v, 99)), "count": int(v.size)}


def segment_totals(segments: list[dict], scored: list[dict], batch_size: int) -> dict:
    """Totals over every infer segment of a results folder: counts, audio, wall time, RTF, timing blocks,
    and the failures that are still failures (an utterance that failed once and then finished is not)."""
    def total(key, cast=float):
        return cast(sum(s.get(key) or 0 for s in segments))

    compute = [v for s in segments for v in s.get("compute_ms", [])]
    h2d = [v for s in segments for v in s.get("h2d_ms", [])]
    d2h = [v for s in segments for v in s.get("d2h_ms", [])]
    compute_stats = timing_stats(compute)
    wall, audio, loop_wall = total("wall_time_s"), total("audio_seconds"), total("loop_wall_s")
    done, fed, true = total("utterances", int), total("fed_frames", int), total("true_frames", int)
    finished = {r["stem"] for r in scored}
    failures = {}
    for s in segments:  # the latest failure of each stem that never finished
        for f in s.get("failures", []):
            if isinstance(f, dict) and f.get("stem") not in finished:
                failures[f.get("stem")] = f
    missing = {}
    for s in segments:
        for k, v in (s.get("timings_missing") or {}).items():
            missing[k] = missing.get(k, 0) + (v if isinstance(v, int) else 1)
    return {
        "NPU_compute_time": compute_stats, "H2D_latency": timing_stats(h2d), "D2H_latency": timing_stats(d2h),
        "timings_missing": missing,
        "throughput": 1000.0 * batch_size / compute_stats["mean"] if compute_stats["count"] else None,
        "batches": compute_stats["count"],
        "end_to_end_utterances_per_s": done / loop_wall if done and loop_wall else None,
        "wall_time_s": wall, "audio_seconds": audio, "rtf": wall / audio if audio else None,
        "padding_efficiency": true / fed if fed else None,
        "timed_utterances": done, "untimed_utterances": max(len(scored) - done, 0),
        "failures": list(failures.values()),
        "segments": [{k: s.get(k) for k in ("segment", "started", "backend", "fallback", "utterances", "failed",
                                             "audio_seconds", "wall_time_s", "complete")} for s in segments],
    }


def read_summary(results_dir: str) -> dict | None:
    """The summary a finished run wrote, or None (absent or unreadable: it is rewritten by the next run)."""
    path = os.path.join(results_dir, SUMMARY)
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def write_summary(results_dir: str, summary: dict) -> str:
    path = os.path.join(results_dir, SUMMARY)
    write_json_atomic(path, summary)
    return path


def write_score(results_dir: str, report: dict) -> str:
    path = os.path.join(results_dir, SCORE)
    write_json_atomic(path, report)
    return path
