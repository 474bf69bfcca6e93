"""`ascend-asr plan`: frame gears and batch sizes chosen from a dataset's lengths, and the profile that compiles them.

    ascend-asr plan --manifest dev.tsv --profile jasper_small --max-gears 16 --batch-sizes 1,4,8 --output plan.yaml
    ascend-asr plan --prep prep/ --profile jasper_small

Frame counts come from the manifest's durations (else each file's header; no audio is decoded) through the
profile frontend's frame arithmetic, or from a prep/ folder's meta.jsonl. Durations are those of the files
before any silence trimming, so the planned gears can only be generous. The gears minimise the padded frames
fed with length-sorted batches (ascend_asr/planner.py states the cost exactly); the predictions assume that
compute is proportional to padded frames.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field

import yaml

from .datasets import BadEntry, read_manifest
from .errors import OptionError, ProfileError
from .frontends import build_frontend, frontend_spec
from .planner import DEFAULT_GEARS, MAX_GEARS, MIN_GEARS, PlanCost, evaluate, pad_to_max, plan_gears
from .profiles import PACKAGE_PREFIX, find_profile, load_profile, parse_batch_sizes, profile_from_dict
from .tensor_files import write_text_atomic

DURATION_ROUNDING_S = 0.005  # manifests round durations (often to 1/100 s): the top gear holds this much more
SHOWN_SKIPS = 5


@dataclass
class DatasetFrames:
    """Per-utterance frame counts: `frames` as preprocess pads them (aligned), `valid` the true counts."""
    source: str
    frames: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # messages
    cover: int | None = None  # frames the top gear must hold (rounded manifest durations), if more
    counted: str = "from the audio's length, before any silence trimming"

    def skip(self, message: str, log) -> None:
        if len(self.skipped) < SHOWN_SKIPS:
            print(f"[ascend-asr] skipped {message}", file=log)
        self.skipped.append(message)


def manifest_frames(frontend, manifest: str, data_dir: str | None = None, log=None) -> DatasetFrames:
    """Frame counts of a manifest's utterances: from its durations, else from each file's header (never
    decoding the audio); a bad entry or unreadable header is skipped and counted."""
    import soundfile as sf

    log = log or sys.stderr
    rate = frontend.params.sample_rate
    data = DatasetFrames(manifest)
    longest_given = None
    for entry in read_manifest(manifest, data_dir):
        if isinstance(entry, BadEntry):
            data.skip(f"{entry.source}: {entry.message}", log)
            continue
        if entry.duration is not None:
            samples = int(round(entry.duration * rate))
            longest_given = max(longest_given or 0, samples)
        else:
            try:
                info = sf.info(entry.audio_path)
                samples = int(round(info.frames * rate / info.samplerate))
            except Exception as exc:  # an unreadable header costs this entry only
                data.skip(f"{entry.id} ({entry.source}): cannot read the audio header of {entry.audio_path} "
                          f"({type(exc).__name__}: {exc}); give its duration in the manifest or fix the file", log)
                continue
        _add(data, frontend, samples, f"{entry.id} ({entry.source})", log)
    if longest_given is not None:
        slack = int(math.ceil(DURATION_ROUNDING_S * rate))
        data.cover = frontend.aligned_frames(longest_given + slack)
    return data


def _add(data: DatasetFrames, frontend, samples: int, name: str, log) -> None:
    aligned, valid = frontend.aligned_frames(samples), frontend.valid_frames(samples)
    if aligned <= 0 or valid <= 0:
        data.skip(f"{name}: {samples} samples give no {frontend.name} frames (too short)", log)
        return
    data.frames.append(int(aligned))
    data.valid.append(int(valid))


def prep_frames(frontend, prep: str, log=None) -> DatasetFrames:
    """Frame counts of a prep/ folder's utterances, from meta.jsonl: `aligned_frames` where recorded, else the
    most the true count `frames` can need (the largest audio length with that many valid frames, aligned), and
    never more than the gear preprocess put it in (`padded_frames`)."""
    from .prep import open_prep

    log = log or sys.stderr
    opened = open_prep(prep, log)
    recorded = dict(opened.info.get("frontend") or {})
    mine = frontend_spec(frontend)
    differ = sorted(k for k in set(recorded) | set(mine)
                    if k != "cmvn_stats" and recorded.get(k) != mine.get(k))
    if differ:
        raise ProfileError(f"{prep}: made with another frontend than the profile's (differing: {', '.join(differ)}); "
                           "plan with the profile prep/ was made with, or plan from the manifest (--manifest)")
    data = DatasetFrames(prep, counted="as preprocess counted them (after any silence trimming)")
    needs: dict[int, int] = {}
    for row in opened.rows:
        valid, padded, aligned = row.get("frames"), row.get("padded_frames"), row.get("aligned_frames")
        name = f"{row.get('id', row['stem'])} ({prep}/meta.jsonl)"
        if type(valid) is not int or valid <= 0 or (padded is not None and type(padded) is not int):
            data.skip(f"{name}: frames {valid!r} / padded_frames {padded!r} are not positive whole numbers", log)
            continue
        if type(aligned) is not int:
            if valid not in needs:
                needs[valid] = frontend.aligned_frames(_longest_samples(frontend, valid))
            aligned = needs[valid] if padded is None else min(needs[valid], padded)
        data.frames.append(int(aligned))
        data.valid.append(int(valid))
    return data


def _longest_samples(frontend, valid: int) -> int:
    """The largest audio length (samples) whose valid frame count is at most `valid`."""
    low, high = 0, max(1, frontend.hop_length) * (valid + 1)
    while frontend.valid_frames(high) <= valid:
        low, high = high, 2 * high
    while high - low > 1:  # valid_frames(low) <= valid < valid_frames(high)
        middle = (low + high) // 2
        low, high = (middle, high) if frontend.valid_frames(middle) <= valid else (low, middle)
    return low


def plan_for(frontend, data: DatasetFrames, max_gears: int, batch_sizes) -> PlanCost:
    """The planner on a dataset's frame counts, at the frontend's alignment."""
    if not data.frames:
        raise ProfileError(f"{data.source}: no utterance to plan gears for ({len(data.skipped)} skipped)")
    return plan_gears(data.frames, align=max(1, int(frontend.params.pad_align)), max_gears=max_gears,
                      batch_sizes=batch_sizes, valid=data.valid, cover=data.cover)


def dataset_frames(frontend, manifest: str | None = None, prep: str | None = None, data_dir: str | None = None,
                   log=None) -> DatasetFrames:
    return prep_frames(frontend, prep, log) if prep else manifest_frames(frontend, manifest, data_dir, log)


def planned_profile(profile_path: str, plan: PlanCost) -> dict:
    """The profile YAML at `profile_path` with its `frames:` and `batch_sizes:` replaced by the plan's; a
    relative CMVN path made absolute, since the written profile lives elsewhere."""
    with open(profile_path, encoding="utf-8") as f:
        d = yaml.safe_load(f)
    if not isinstance(d, dict):
        raise ProfileError(f"{profile_path}: a profile is a YAML mapping; found {type(d).__name__}")
    d["frames"] = list(plan.gears)
    d["batch_sizes"] = list(plan.batch_sizes)
    frontend = d.get("frontend")
    stats = frontend.get("cmvn_stats") if isinstance(frontend, dict) else None
    if stats and not str(stats).startswith(PACKAGE_PREFIX) and not os.path.isabs(str(stats)):
        d["frontend"] = {**frontend, "cmvn_stats": os.path.normpath(os.path.join(os.path.dirname(
            os.path.abspath(profile_path)), str(stats)))}
    return d


def budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not MIN_GEARS <= value <= MAX_GEARS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from {MIN_GEARS} to {MAX_GEARS} (ATC "
                                         f"--dynamic_dims allows at most {MAX_GEARS} gears)")
    return value


def report(plan: PlanCost, data: DatasetFrames, profile, frontend, out=None) -> None:
    out = out or sys.stdout
    hop_ms = 1000 * frontend.hop_length / frontend.params.sample_rate
    n = plan.utterances
    print(f"[ascend-asr] plan for {n} utterances from {data.source}"
          f"{f' ({len(data.skipped)} skipped)' if data.skipped else ''}: profile {profile.name}, "
          f"{frontend.name} ({hop_ms:g} ms hop, pad_align {frontend.params.pad_align})", file=out)
    print(f"  gears ({len(plan.gears)}): {', '.join(map(str, plan.gears))}", file=out)
    print(f"  utterances per gear: {', '.join(f'{g}:{k}' for g, k in plan.per_gear)}", file=out)
    print(f"  batch sizes: {', '.join(map(str, plan.batch_sizes))} ({plan.calls} batches, length-sorted)", file=out)
    baseline = pad_to_max(data.frames, plan.gears[-1], data.valid)
    current = evaluate(data.frames, profile.frames, profile.batch_sizes, data.valid)
    print(f"  predicted padding efficiency {plan.efficiency:.3f} (pad-to-max {baseline.efficiency:.3f}, "
          f"the profile's gears {current.efficiency:.3f})", file=out)
    print(f"  predicted utterances/s: {plan.speedup_over(baseline):.2f}x pad-to-max ({plan.gears[-1]} frames, "
          f"batch 1)", file=out)
    dropped = (f"; the profile's gears drop {current.dropped} of {n} utterances (longer than "
               f"{max(profile.frames)} frames)" if current.dropped else "")
    shown = f"{plan.speedup_over(current):.2f}x" if current.utterances else "n/a (they hold none)"
    print(f"  predicted utterances/s: {shown} the profile's gears {'/'.join(map(str, profile.frames))} at batch "
          f"{','.join(map(str, profile.batch_sizes))}{dropped}", file=out)
    print(f"  (compute assumed proportional to padded frames; frame counts {data.counted})", file=out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr plan", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", help="dataset manifest (.tsv, .jsonl, NVIDIA .json) or LibriSpeech folder")
    source.add_argument("--prep", help="a prep/ folder (its meta.jsonl frame counts)")
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--data-dir", help="folder of the manifest's relative audio paths (default: the manifest's)")
    p.add_argument("--max-gears", type=budget, default=DEFAULT_GEARS,
                   help=f"gear budget, {MIN_GEARS} to {MAX_GEARS} (default {DEFAULT_GEARS}): more gears cost ATC "
                        "compile time and device memory")
    p.add_argument("--batch-sizes", help="candidate batch sizes, comma-separated (default: the profile's); the "
                                         "plan keeps those it uses")
    p.add_argument("--output", help="profile YAML to write: the input profile with frames and batch_sizes replaced")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir and args.prep:
        raise OptionError("--data-dir does nothing with --prep (prep/ records its frame counts); drop it")
    profile = load_profile(args.profile)
    frontend = build_frontend(profile.frontend)
    sizes = parse_batch_sizes(args.batch_sizes) if args.batch_sizes is not None else profile.batch_sizes
    data = dataset_frames(frontend, args.manifest, args.prep, args.data_dir)
    plan = plan_for(frontend, data, args.max_gears, sizes)
    report(plan, data, profile, frontend)
    if args.output:
        d = planned_profile(find_profile(args.profile), plan)
        profile_from_dict(dict(d), args.output)  # refuse to write a profile that would not load
        header = (f"# written by ascend-asr plan from {data.source} ({plan.utterances} utterances, "
                  f"{args.max_gears} gears at most): predicted padding efficiency {plan.efficiency:.3f}\n")
        write_text_atomic(args.output, header + yaml.safe_dump(d, sort_keys=False, allow_unicode=True,
                                                               default_flow_style=None))
        print(f"[ascend-asr] profile {d.get('name')} with the planned gears -> {args.output}")
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
