"""Dataset manifest -> prep/: features and lengths as .bin per utterance, streamed.

Memory stays flat whatever the dataset size: one utterance is in memory at a time. A bad
utterance is reported, counted and skipped; a rerun resumes where the last run stopped.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone

from tqdm import tqdm

from .admission import check_manifest_duration
from .datasets import BadEntry, read_manifest, unique_ids
from .errors import AscendAsrError, OptionError, TensorFileError, describe_exception
from .featurize import featurize, worker_context
from .frontends import build_frontend, frontend_spec
from .lock import FolderLock
from .prep import (
    FAILURES,
    META,
    PREP_FORMAT,
    PREP_JSON,
    bin_path,
    info_path,
    open_prep,
    read_meta,
    stem_of,
    utterance_tensors,
    write_info_file,
)
from .profiles import Profile, load_profile
from .runner import EXIT_UTTERANCES_FAILED, run, worker_process_setup
from .tensor_files import (
    TRIM_START_KEY,
    JsonlAppender,
    output_write_error,
    read_jsonl,
    write_bin,
    write_json_atomic,
    write_text_atomic,
)


@dataclass(frozen=True)
class PrepSummary:
    output: str
    written: int
    resumed: int
    failed: int
    audio_seconds: float


def read_manifests(manifests, data_dir: str | None):
    """Entries of one manifest, or of several in a row (as ModelZoo's --val_manifests); a missing
    manifest is an error before anything is read or written."""
    readers = [read_manifest(m, data_dir) for m in ([manifests] if isinstance(manifests, str) else manifests)]
    return unique_ids(itertools.chain.from_iterable(readers))  # ids stay unique across manifests too


def preprocess(manifest, output: str, *args, **kwargs) -> PrepSummary:
    """Write prep/ for `manifest` (arguments as _preprocess), holding the folder's lock: a second
    preprocess on the same folder is refused while this one runs (ascend_asr/lock.py)."""
    with FolderLock(output, "prep"):
        return _preprocess(manifest, output, *args, **kwargs)


_WORKER = None  # in a feature worker process: (frontend, profile, resample, mix_to_mono)


def _init_worker(parent_pid: int, profile: Profile, resample: bool, mix_to_mono: bool) -> None:
    worker_process_setup(parent_pid)  # forked from the runner's process: signals and the parent's death
    global _WORKER
    _WORKER = (build_frontend(profile.frontend), profile, resample, mix_to_mono)  # one frontend per worker


def _featurize_in_worker(entry):
    return _featurize_entry(entry, *_WORKER)


def _featurize_entry(entry, frontend, profile: Profile, resample: bool, mix_to_mono: bool) -> tuple:
    """("ok", model input tensors, valid frames, duration) of one manifest entry, or ("error", whether the
    error is one of ours, its text, its description): what crosses back from a worker process."""
    try:
        check_manifest_duration(entry, frontend, profile.frames, profile.source)  # before reading the audio
        utt = featurize(frontend, entry.audio_path, profile.frames, resample=resample,
                        mix_to_mono=mix_to_mono, profile_source=profile.source)
        tensors = utterance_tensors(utt.feats, utt.valid, profile.inputs, utt.gear)
    except Exception as exc:  # whatever one utterance provokes costs that utterance only
        return "error", isinstance(exc, AscendAsrError), str(exc), describe_exception(exc)
    # duration of the file, before any silence trimming; trim_start: where the features start in it
    return "ok", tensors, utt.valid, utt.gear, utt.duration, utt.trim_start


def _failure_message(audio_path: str, ours: bool, text: str, described: str) -> str:
    if ours:
        return text if audio_path in text else f"{audio_path}: {text}"
    # not a refusal of ours: say where it came from, so that a bug stays visible
    return (f"{audio_path}: unexpected {described}; check the file (e.g. `sox --i {audio_path}`) or remove it from "
            "the manifest, and report this if the file plays normally")


def default_workers() -> int:
    """Feature worker processes by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _preprocess(manifest, output: str, profile: Profile | str, data_dir: str | None = None,
                resample: bool = True, mix_to_mono: bool = True, limit: int | None = None,
                progress: bool = True, input_dirs: dict | None = None, log=None, workers: int = 1) -> PrepSummary:
    """Write prep/ for `manifest`; `input_dirs` maps input names to other folders (absolute or
    relative to `output`), as the ModelZoo scripts' --save_bin_0/--save_bin_1 do. With `workers` > 1,
    features are computed in that many processes and written here in manifest order, so prep/ is the
    same byte for byte as with one."""
    started, wall_start = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    log = log or sys.stderr
    if isinstance(profile, str):
        profile = load_profile(profile)
    frontend = build_frontend(profile.frontend)
    settings = {"format": PREP_FORMAT, "profile": profile.name, "frontend": frontend_spec(frontend),
                "inputs": [t.to_dict() for t in profile.inputs], "frames": list(profile.frames),
                "vocabulary": profile.vocabulary.to_spec(), "input_dirs": dict(input_dirs or {})}
    entries = read_manifests(manifest, data_dir)
    done = _resume_state(output, settings)
    failures = []
    resumed = written = 0
    audio_seconds = 0.0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"--workers {workers!r}: give a whole number of at least 1 (e.g. {default_workers()})")

    def finish(stem, entry, result) -> None:
        """Write one computed utterance (or count its failure), in manifest order."""
        nonlocal written, audio_seconds
        if result[0] == "ok":
            _, tensors, valid, gear, duration, trim_start = result
            try:
                text = profile.vocabulary.normalize(entry.text)
            except Exception as exc:  # whatever one utterance provokes costs that utterance only
                result = "error", isinstance(exc, AscendAsrError), str(exc), describe_exception(exc)
        if result[0] == "error":
            message = _failure_message(entry.audio_path, *result[1:])
            failures.append({"stem": stem, "id": entry.id, "audio": entry.audio_path, "source": entry.source,
                             "error": message})
            tqdm.write(f"[ascend-asr] skipped {entry.id} ({entry.source}): {message}", file=log)
            return
        target = None
        try:
            for spec, tensor in zip(profile.inputs, tensors.values()):
                target = bin_path(output, spec, stem, input_dirs)
                write_bin(target, tensor, spec.dtype)
            target = os.path.join(output, META)
            meta.write({"stem": stem, "id": entry.id, "audio": entry.audio_path, "duration": round(duration, 4),
                        "frames": valid, "padded_frames": gear, "text": text, "raw_text": entry.text,
                        **({TRIM_START_KEY: round(trim_start, 4)} if trim_start else {})})
        except OSError as exc:  # disk full, permissions: the run's problem, not the utterance's
            raise output_write_error(exc, target or output, output) from exc
        written += 1
        audio_seconds += duration

    def finish_first() -> None:
        stem, entry, future = queue.popleft()
        try:
            result = future.result()
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory, a crash in a native library)
            raise AscendAsrError(f"{entry.audio_path}: a feature worker process died while preprocessing this "
                                 f"utterance or one near it ({exc}); rerun the same command (it resumes), with "
                                 "--workers 1 to find the file if it recurs") from exc
        finish(stem, entry, result)

    queue, pool = deque(), None  # (stem, entry, future) computing in the pool, in manifest order
    with contextlib.ExitStack() as stack:
        meta = stack.enter_context(JsonlAppender(os.path.join(output, META)))
        for index, entry in enumerate(tqdm(entries, desc="preprocess", unit="utt", disable=not progress)):
            if limit is not None and index >= limit:
                break
            stem = stem_of(index)
            if isinstance(entry, BadEntry):
                failures.append({"stem": stem, "source": entry.source, "error": entry.message})
                tqdm.write(f"[ascend-asr] skipped {entry.source}: {entry.message}", file=log)
                continue
            if stem in done:
                if done[stem]["audio"] != entry.audio_path:
                    raise TensorFileError(
                        f"{output}: utterance {stem} was made from {done[stem]['audio']}, but this manifest has "
                        f"{entry.audio_path} there; write another dataset to a new --output folder")
                resumed += 1
                audio_seconds += done[stem]["duration"]
                continue
            if workers == 1:
                finish(stem, entry, _featurize_entry(entry, frontend, profile, resample, mix_to_mono))
                continue
            if pool is None:  # started on the first utterance to compute: none for a finished folder
                pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=worker_context("fork"),
                                                               initializer=_init_worker,
                                                               initargs=(os.getpid(), profile, resample,
                                                                         mix_to_mono)))
                stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # interrupted: wait for none
            queue.append((stem, entry, pool.submit(_featurize_in_worker, entry)))
            while len(queue) > 4 * workers or (queue and queue[0][2].done()):  # memory stays bounded
                finish_first()
        while queue:
            finish_first()
    prep = read_meta(output)
    failures = _merged_failures(output, failures, prep, limit)
    this_run = {"started": started, "wall_time_s": round(time.perf_counter() - wall_start, 3), "written": written,
                "resumed": resumed, "failed": len(failures), "limit": limit}
    try:
        write_info_file(info_path(output, profile.name), output, profile.inputs, prep, input_dirs)
        write_json_atomic(os.path.join(output, FAILURES), failures)
        write_json_atomic(os.path.join(output, PREP_JSON),
                          {**settings, "utterances": len(prep), "failed": len(failures), "manifest": manifest,
                           "audio_seconds": round(sum(r["duration"] for r in prep
                                                      if type(r.get("duration")) in (int, float)), 4),
                           "runs": _previous_runs(output) + [this_run]})
    except OSError as exc:
        raise output_write_error(exc, exc.filename or output, output) from exc

    return PrepSummary(output, written, resumed, len(failures), audio_seconds)


def _merged_failures(output: str, failures: list, prep: list, limit: int | None) -> list:
    """This run's failures, plus earlier runs' failures of utterances this run did not reach (--limit),
    less any finished since. (Reconstructed after an editing accident: helper B, please check.)"""
    try:
        with open(os.path.join(output, FAILURES), encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError):
        previous = []
    done = {r["stem"] for r in prep} | {f["stem"] for f in failures}
    kept = [f for f in previous if isinstance(previous, list) and isinstance(f, dict) and isinstance(f.get("stem"), str)
            and f["stem"] not in done and limit is not None and f["stem"] >= stem_of(limit)]
    return sorted(failures + kept, key=lambda f: f["stem"])


def _previous_runs(output: str) -> list:
    """The "runs" recorded in prep.json by earlier runs ([] for a new folder).
    (Reconstructed after an editing accident: helper B, please check.)"""
    try:
        with open(os.path.join(output, PREP_JSON), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return []
    runs = info.get("runs") if isinstance(info, dict) else None
    return runs if isinstance(runs, list) else []


def _resume_state(output: str, settings: dict) -> dict[str, dict]:
    """Meta rows (by stem) already written by an earlier run with the same settings."""
    os.makedirs(output, exist_ok=True)
    for spec in settings["inputs"]:
        os.makedirs(os.path.join(output, settings["input_dirs"].get(spec["name"], spec["name"])), exist_ok=True)
    rows = read_meta(output)
    if rows and len(rows) != len(read_jsonl(os.path.join(output, META))):  # duplicated rows: keep each once
        write_text_atomic(os.path.join(output, META),
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    if not rows:
        write_json_atomic(os.path.join(output, PREP_JSON), {**settings, "utterances": 0, "failed": 0})
        return {}
    previous = open_prep(output).info
    for key in ("profile", "frontend", "inputs", "frames", "input_dirs"):
        if previous.get(key) != settings[key]:
            raise TensorFileError(f"{output}: was made with another {key} ({previous.get(key)!r}); "
                                  "write to a new --output folder or delete this one")
    return {r["stem"]: r for r in rows}


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr preprocess", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True, help=".tsv, .jsonl, NVIDIA .json, or a LibriSpeech folder")
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--output", required=True, help="prep/ folder to write (resumed if it exists)")
    p.add_argument("--data-dir", help="folder that relative audio paths start from (default: the manifest's)")
    p.add_argument("--no-resample", action="store_true", help="refuse audio at another sample rate")
    p.add_argument("--no-mix", action="store_true", help="refuse audio with more than one channel")
    p.add_argument("--limit", type=positive_int, help="only the first N manifest entries")
    p.add_argument("--workers", type=positive_int, default=default_workers(),
                   help="processes computing features (default: the cores, here %(default)s); prep/ is the same "
                        "whatever the number")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 if any utterance failed (without it: only if every one failed); "
                        "failures are listed in OUTPUT/failures.json")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = preprocess(args.manifest, args.output, args.profile, args.data_dir, resample=not args.no_resample,
                         mix_to_mono=not args.no_mix, limit=args.limit, progress=not args.no_progress,
                         workers=args.workers)
    print(f"[ascend-asr] prep: {summary.written} written, {summary.resumed} resumed, {summary.failed} failed, "
          f"{summary.audio_seconds:.1f} s of audio -> {summary.output}")
    return exit_status(summary.failed, summary.written + summary.resumed, args.strict,
                       os.path.join(summary.output, FAILURES))


def exit_status(failed: int, succeeded: int, strict: bool, listed_in: str) -> int:
    """0, or EXIT_UTTERANCES_FAILED (3) when every utterance failed, or with `strict` when any did."""
    if failed and (strict or not succeeded):
        why = "--strict" if succeeded else "no utterance succeeded"
        print(f"[ascend-asr] error: {failed} utterance(s) failed ({why}); they are listed in {listed_in}",
              file=sys.stderr)
        return EXIT_UTTERANCES_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
