"""`ascend-asr profile`: a deployment profile whose model, frontend, vocabulary and I/O come from upstream files.

    ascend-asr profile --family jasper --config jasper10x5dr_speedp-online_speca.yaml --output my_jasper.yaml
    ascend-asr profile --family deepspeech2 --checkpoint an4_pretrained_v3.ckpt --output my_ds2.yaml
    ascend-asr profile --family lstm_ctc --config conf/ctc_config.yaml --output my_lstm.yaml
    ascend-asr profile --family jasper --config jasper.yaml --gears auto --manifest dev.tsv --output my_jasper.yaml

The family's default profile gives what upstream files do not say (batch sizes, frame gears, ATC
options); every command then takes `--profile my.yaml`. `--gears auto --manifest DATA` plans the frame gears
and batch sizes from the dataset's lengths instead (as `ascend-asr plan` does).
"""
from __future__ import annotations

import argparse
import os
import sys

import yaml

from .families import family_names, get_family
from .families.base import Family, UpstreamModel
from .profiles import (family_io, find_profile, parse_batch_sizes, parse_frames, profile_from_dict,
                       resolve_profile_path)
from .tensor_files import write_text_atomic


def profile_dict(family: Family, upstream: UpstreamModel, name: str, base: str | None = None,
                 frames: list[int] | None = None, batch_sizes: list[int] | None = None) -> dict:
    """The base profile (the family's default) with the upstream model, frontend and vocabulary put in."""
    base_path = find_profile(base or family.default_profile)
    with open(base_path, encoding="utf-8") as f:
        d = yaml.safe_load(f)
    d = {k: v for k, v in d.items() if k not in ("inputs", "outputs", "time_stride")}
    if upstream.vocabulary:
        d.pop("warning", None)  # the base's warning is about its stand-in vocabulary, now replaced
    d["name"] = name
    d["family"] = family.name
    d["model_config"] = family.config_to_dict(upstream.config)
    d["frontend"] = {**d["frontend"], **(upstream.frontend or {})}
    if d["frontend"].get("cmvn_stats"):  # the written profile lives elsewhere: resolve against the base's folder
        d["frontend"]["cmvn_stats"] = resolve_profile_path(str(d["frontend"]["cmvn_stats"]), base_path)
    if upstream.vocabulary:
        d["vocabulary"] = upstream.vocabulary
    if frames:
        d["frames"] = sorted(frames)
    if batch_sizes:
        d["batch_sizes"] = batch_sizes
    from .frontends import build_frontend
    from .text import Vocabulary

    family.check_sizes(upstream.config, build_frontend(d["frontend"]).feature_size,
                       Vocabulary.from_spec(d["vocabulary"]).size,
                       f"{upstream.source or 'the upstream files'} on base profile {os.path.basename(base_path)}")
    d.update(family_io(d, base_path))
    d["source"] = {"upstream": os.path.abspath(upstream.source) if upstream.source else None,
                   "base_profile": os.path.basename(base_path)}
    return d


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr profile", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--family", required=True, choices=family_names())
    p.add_argument("--config", help="the family's upstream config file")
    p.add_argument("--checkpoint", help="an upstream checkpoint that records its own config (DeepSpeech2, "
                                        "an LSTM-CTC training package)")
    p.add_argument("--output", required=True, help="profile YAML to write")
    p.add_argument("--name", help="profile name (default: the output file's stem)")
    p.add_argument("--base", help="profile to take batch sizes, gears and ATC options from "
                                  "(default: the family's own)")
    p.add_argument("--frames", help="comma-separated frame gears (default: the base profile's)")
    p.add_argument("--batch-sizes", help="comma-separated batch sizes (default: the base profile's; with --gears "
                                         "auto, the candidates)")
    p.add_argument("--gears", choices=["auto"], help="auto: plan frame gears and batch sizes from --manifest's "
                                                     "lengths (ascend-asr plan)")
    p.add_argument("--manifest", help="with --gears auto: the dataset whose lengths the gears are planned for")
    p.add_argument("--max-gears", type=int, help="with --gears auto: gear budget, 2 to 100 (default 16)")
    return p


def check_gear_options(args) -> None:
    from .errors import OptionError

    if args.gears == "auto":
        if not args.manifest:
            raise OptionError("--gears auto plans the gears from a dataset's lengths: give --manifest DATA")
        if args.frames:
            raise OptionError("--gears auto and --frames both set the frame gears; drop one of them")
    elif args.manifest or args.max_gears is not None:
        raise OptionError("--manifest and --max-gears do something only with --gears auto; add it or drop them")


def plan_gears_into(d: dict, manifest: str, max_gears: int | None) -> None:
    """Replace the profile mapping's frames and batch sizes (its own, the candidates) by those planned for
    `manifest` with its frontend."""
    from .frontends import build_frontend
    from .plan_cli import manifest_frames, plan_for
    from .planner import DEFAULT_GEARS

    frontend = build_frontend(d["frontend"])
    plan = plan_for(frontend, manifest_frames(frontend, manifest), DEFAULT_GEARS if max_gears is None else max_gears,
                    d["batch_sizes"])
    d["frames"], d["batch_sizes"] = list(plan.gears), list(plan.batch_sizes)
    print(f"[ascend-asr] planned {len(plan.gears)} gears for {plan.utterances} utterances of {manifest}: "
          f"{', '.join(map(str, plan.gears))}; batch sizes {', '.join(map(str, plan.batch_sizes))}; predicted "
          f"padding efficiency {plan.efficiency:.3f}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    family = get_family(args.family)
    upstream = family.read_upstream(args.config, args.checkpoint)
    name = args.name or os.path.splitext(os.path.basename(args.output))[0]
    check_gear_options(args)
    d = profile_dict(family, upstream, name, args.base, list(parse_frames(args.frames)) if args.frames else None,
                     list(parse_batch_sizes(args.batch_sizes)) if args.batch_sizes else None)
    if args.gears == "auto":
        plan_gears_into(d, args.manifest, args.max_gears)
    profile_from_dict(dict(d), args.output)  # refuse to write a profile that would not load
    header = f"# written by ascend-asr profile --family {family.name} from {upstream.source or 'presets'}\n"
    write_text_atomic(args.output, header + yaml.safe_dump(d, sort_keys=False, allow_unicode=True, default_flow_style=None))
    print(f"[ascend-asr] profile {name} ({family.name}) -> {args.output}")
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
