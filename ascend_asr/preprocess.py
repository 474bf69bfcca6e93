"""Dataset manifest -> prep/: features and lengths as .bin per utterance, streamed.

Memory stays flat whatever the dataset size: one utterance is in memory at a time. A bad
utterance is reported, counted and skipped; a rerun resumes where the last run stopped.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import dataclass

from tqdm import tqdm

from .datasets import BadEntry, read_manifest
from .errors import AscendAsrError, TensorFileError
from .featurize import featurize
from .frontends import build_frontend, frontend_spec
from .prep import (
    FAILURES,
    META,
    PREP_FORMAT,
    PREP_JSON,
    bin_path,
    open_prep,
    stem_of,
    utterance_tensors,
    write_info_file,
)
from .profiles import Profile, load_profile
from .runner import run
from .tensor_files import JsonlAppender, read_jsonl, write_bin, write_json_atomic


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
    return itertools.chain.from_iterable(readers)


def preprocess(manifest, output: str, profile: Profile | str, data_dir: str | None = None,
               resample: bool = True, mix_to_mono: bool = True, limit: int | None = None,
               progress: bool = True, input_dirs: dict | None = None, log=None) -> PrepSummary:
    """Write prep/ for `manifest`; `input_dirs` maps input names to other folders (absolute or
    relative to `output`), as the ModelZoo scripts' --save_bin_0/--save_bin_1 do."""
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
    with JsonlAppender(os.path.join(output, META)) as meta:
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
            try:
                utt = featurize(frontend, entry.audio_path, profile.frames, resample=resample,
                                mix_to_mono=mix_to_mono, profile_source=profile.source)
            except AscendAsrError as exc:
                message = str(exc) if entry.audio_path in str(exc) else f"{entry.audio_path}: {exc}"
                failures.append({"stem": stem, "id": entry.id, "audio": entry.audio_path, "source": entry.source,
                                 "error": message})
                tqdm.write(f"[ascend-asr] skipped {entry.id}: {message}", file=log)
                continue
            tensors = utterance_tensors(utt.feats, utt.valid, profile.inputs, utt.gear)
            for spec, tensor in zip(profile.inputs, tensors.values()):
                write_bin(bin_path(output, spec, stem, input_dirs), tensor, spec.dtype)
            duration = utt.duration  # of the file, before any silence trimming
            meta.write({"stem": stem, "id": entry.id, "audio": entry.audio_path, "duration": round(duration, 4),
                        "frames": utt.valid, "padded_frames": utt.gear,
                        "text": profile.vocabulary.normalize(entry.text), "raw_text": entry.text})
            written += 1
            audio_seconds += duration
    prep = sorted(read_jsonl(os.path.join(output, META)), key=lambda r: r["stem"])
    write_info_file(os.path.join(output, f"{profile.name}.info"), output, profile.inputs, prep, input_dirs)
    write_json_atomic(os.path.join(output, FAILURES), failures)
    write_json_atomic(os.path.join(output, PREP_JSON),
                      {**settings, "utterances": len(prep), "failed": len(failures), "manifest": manifest})

    return PrepSummary(output, written, resumed, len(failures), audio_seconds)


def _resume_state(output: str, settings: dict) -> dict[str, dict]:
    """Meta rows (by stem) already written by an earlier run with the same settings."""
    os.makedirs(output, exist_ok=True)
    for spec in settings["inputs"]:
        os.makedirs(os.path.join(output, settings["input_dirs"].get(spec["name"], spec["name"])), exist_ok=True)
    rows = read_jsonl(os.path.join(output, META))
    if not rows:
        write_json_atomic(os.path.join(output, PREP_JSON), {**settings, "utterances": 0, "failed": 0})
        return {}
    previous = open_prep(output).info
    for key in ("profile", "frontend", "inputs", "frames", "input_dirs"):
        if previous.get(key) != settings[key]:
            raise TensorFileError(f"{output}: was made with another {key} ({previous.get(key)!r}); "
                                  "write to a new --output folder or delete this one")
    return {r["stem"]: r for r in rows}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr preprocess", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", required=True, help=".tsv, .jsonl, NVIDIA .json, or a LibriSpeech folder")
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--output", required=True, help="prep/ folder to write (resumed if it exists)")
    p.add_argument("--data-dir", help="folder that relative audio paths start from (default: the manifest's)")
    p.add_argument("--no-resample", action="store_true", help="refuse audio at another sample rate")
    p.add_argument("--no-mix", action="store_true", help="refuse audio with more than one channel")
    p.add_argument("--limit", type=int, help="only the first N manifest entries")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = preprocess(args.manifest, args.output, args.profile, args.data_dir, resample=not args.no_resample,
                         mix_to_mono=not args.no_mix, limit=args.limit, progress=not args.no_progress)
    print(f"[ascend-asr] prep: {summary.written} written, {summary.resumed} resumed, {summary.failed} failed, "
          f"{summary.audio_seconds:.1f} s of audio -> {summary.output}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
