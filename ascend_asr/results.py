"""The results/ folder: what infer writes and score reads.

    results/hyps.jsonl      hypothesis and reference per utterance, appended as it goes (a rerun resumes)
    results/run.json        which model and prep/ the folder belongs to (resuming with others is refused)
    results/summary.json    ais_bench timing keys, wall time, RTF, backend, fallback, WER/CER, failures
    results/outputs/        raw outputs as ais_bench names them (<stem>_<k>.bin|npy), with --save-outputs
    results/score.json      WER and CER per utterance and in total (score)
"""
from __future__ import annotations

import json
import os

from .errors import TensorFileError
from .tensor_files import read_jsonl, write_json_atomic

HYPS = "hyps.jsonl"
RUN = "run.json"
SUMMARY = "summary.json"
OUTPUTS = "outputs"
SCORE = "score.json"


def hyps_path(results_dir: str) -> str:
    return os.path.join(results_dir, HYPS)


def read_hyps(results_dir: str) -> list[dict]:
    """Finished utterances of a results folder ([] for a new one)."""
    return read_jsonl(hyps_path(results_dir))


def read_scored_hyps(results_dir: str) -> list[dict]:
    """The hypotheses of a finished (or partial) run; a missing or empty results folder is an error."""
    if not os.path.isdir(results_dir):
        raise TensorFileError(f"{results_dir}: results folder not found; run `python -m ascend_asr.infer --model M "
                              f"--input PREP --output {results_dir}` first, or give the folder infer wrote")
    rows = read_hyps(results_dir)
    if not rows:
        raise TensorFileError(f"{hyps_path(results_dir)}: no hypotheses; run `python -m ascend_asr.infer` first")
    return rows


def claim(results_dir: str, identity: dict) -> None:
    """Record which model and prep/ a results folder belongs to; resuming with others is refused."""
    path = os.path.join(results_dir, RUN)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != identity:
            raise TensorFileError(f"{results_dir}: holds results of {previous['model']} on {previous['prep']}, not "
                                  f"{identity['model']} on {identity['prep']}; write to a new --output folder")
    elif read_hyps(results_dir):
        raise TensorFileError(f"{results_dir}: has {HYPS} but no {RUN}, so its origin is unknown; "
                              "write to a new --output folder")
    else:
        write_json_atomic(path, identity)


def output_path(results_dir: str, stem: str, index: int, fmt: str) -> str:
    """ais_bench naming of raw output `index` of one utterance: outputs/<stem>_<index>.<fmt>."""
    return os.path.join(results_dir, OUTPUTS, f"{stem}_{index}.{fmt}")


def write_summary(results_dir: str, summary: dict) -> str:
    path = os.path.join(results_dir, SUMMARY)
    write_json_atomic(path, summary)
    return path


def write_score(results_dir: str, report: dict) -> str:
    path = os.path.join(results_dir, SCORE)
    write_json_atomic(path, report)
    return path
