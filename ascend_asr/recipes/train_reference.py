"""Train a small reference model of one family on the recipe's data, and evaluate it on the held-out set.

    python -m ascend_asr.recipes.train_reference --family jasper --fsdd ../shared/data/speech \\
        [--work-dir ~/.cache/ascend_asr/reference] [--output reference_models]

Makes the data (synthesized sentences and digit strings, FSDD digits with one speaker held out),
computes features with the profile's frontend, trains with a fixed seed, saves the checkpoint in
the family's upstream format, then scores PyTorch and the exported ONNX model on every held-out
set and writes the model card beside the checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import torch

from ..datasets import read_manifest
from ..families import build_model, family_names, get_family
from ..profiles import load_profile
from ..runner import run as run_command
from .cmvn import write_cmvn_stats
from .features import manifest_features
from .reference_data import DataSettings, build, read_fsdd
from .speech_tools import check_tools
from .training import TrainSettings, cer_of, greedy_transcripts, train

DEFAULT_WORK_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ascend_asr", "reference")
MONITOR_UTTERANCES = 100


def family_profile(family, output: str, manifests: dict, threads: int, log):
    """The family's profile; a CMVN frontend gets statistics of this training set, written to `output`."""
    profile = load_profile(family.reference_profile)
    if "cmvn_stats" not in profile.frontend:
        return profile
    target = os.path.join(output, os.path.basename(profile.frontend["cmvn_stats"] or f"{profile.name}_cmvn.txt"))
    paths = [e.audio_path for e in read_manifest(manifests["train"])]
    log(f"[recipe] global CMVN statistics of {len(paths)} training utterances -> {target}")
    write_cmvn_stats(paths, profile.frontend, target, workers=threads)
    return dataclasses.replace(profile, frontend=dict(profile.frontend, cmvn_stats=os.path.abspath(target)))


def say(message: str) -> None:
    print(message, flush=True)  # progress of a half-hour job: never held in a buffer


def run(args, data_settings: DataSettings | None = None, log=say) -> dict:
    """The whole recipe for `args` (build_parser's); `data_settings` overrides the data sizes (tests)."""
    read_fsdd(args.fsdd)  # the one input file: a wrong --fsdd fails before the tools are checked
    check_tools()
    torch.set_num_threads(args.threads)
    family = get_family(args.family)
    os.makedirs(args.output, exist_ok=True)
    data_settings = data_settings or DataSettings(seed=args.seed, held_out_speaker=args.held_out_speaker)
    manifests = build(data_settings, args.fsdd, os.path.join(args.work_dir, "data"), workers=2 * args.threads,
                      log=log)
    profile = family_profile(family, args.output, manifests, args.threads, log)
    checkpoint = os.path.join(args.output, family.reference_checkpoint)
    if args.eval_only:
        from .evaluate_reference import evaluate_and_write_card
        return {"evaluation": evaluate_and_write_card(args.family, checkpoint, profile, manifests, args, log=log)}
    cache = os.path.join(args.work_dir, "features")
    feats, texts = manifest_features(manifests["train"], profile, cache, workers=args.threads, log=log)
    monitor_sets = {}
    for name in ("test_sentences_seen_voices", "test_digits_heldout_speaker"):
        f, t = manifest_features(manifests[name], profile, cache, workers=args.threads, log=log)
        monitor_sets[name] = (f[:MONITOR_UTTERANCES], t[:MONITOR_UTTERANCES])

    def monitor(model):  # printed only: the saved model is the last one, never picked by these numbers
        return {f"cer_{name.split('_')[1]}": cer_of(greedy_transcripts(model, family, profile, f), t)
                for name, (f, t) in monitor_sets.items()}

    settings = TrainSettings(seed=args.seed, epochs=args.epochs or family.recipe.epochs,
                             batch_frames=family.recipe.batch_frames, learning_rate=family.recipe.learning_rate, max_steps=args.max_steps)
    torch.manual_seed(args.seed)
    model = build_model(profile)
    result = train(model, family, profile, feats, texts, settings, monitor=monitor, log=log)
    family.save(model, profile, checkpoint, result)
    log(f"[recipe] saved {checkpoint} ({os.path.getsize(checkpoint) / 1e6:.1f} MB)")
    report = {"family": args.family, "profile": profile.name, "checkpoint": checkpoint,
              "parameters": sum(p.numel() for p in model.parameters()),
              "training": {**dataclasses.asdict(settings), **{k: v for k, v in result.items() if k != "history"}},
              "history": result["history"], "data": dataclasses.asdict(data_settings),
              "threads": args.threads, "torch": torch.__version__}
    with open(os.path.join(args.output, f"{profile.name}.training.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    if not args.no_eval:
        from .evaluate_reference import evaluate_and_write_card
        report["evaluation"] = evaluate_and_write_card(args.family, checkpoint, profile, manifests, args, log=log)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.recipes.train_reference",
                                description=__doc__.splitlines()[0])
    p.add_argument("--family", required=True, choices=[n for n in family_names() if get_family(n).recipe])
    p.add_argument("--fsdd", required=True, help="folder with fsdd.tsv and the FSDD recordings it names")
    p.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="synthesized audio and feature caches")
    p.add_argument("--output", default="reference_models", help="checkpoint, statistics and model card")
    p.add_argument("--held-out-speaker", default=DataSettings.held_out_speaker)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads and worker processes")
    p.add_argument("--epochs", type=int, help="override the family's epoch count")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (smoke runs)")
    p.add_argument("--no-eval", action="store_true", help="train and save only")
    p.add_argument("--eval-only", action="store_true", help="evaluate the checkpoint already in --output")
    return p


def main(argv=None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
