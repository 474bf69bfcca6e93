"""The main job on bundled data: checkpoint -> ONNX -> bundle -> prep/ -> results/ -> WER.

    python -m ascend_asr.demo [--profile jasper_small|deepspeech2_small|lstm_ctc_char] [--checkpoint ckpt]
                              [--decoder beam]   # lexicon beam search with the model's shipped word LM

By default it runs the shipped trained reference model of the profile (ascend_asr/assets/models) on
bundled held-out audio: FSDD digits of a speaker no model was trained on, and synthesized sentences
no model heard. A profile without a shipped model gets seeded random weights, and says so.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from .bundle import convert
from .export import export_onnx
from .infer import InferOptions, infer, print_summary
from .families import build_model, load_model, reference_checkpoint
from .preprocess import preprocess
from .profiles import load_profile
from .results import read_hyps

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "speech")
DEMO_MANIFEST = os.path.join(ASSETS, "heldout", "manifest.tsv")
DEMO_PROFILE = "jasper_small"


def save_random_checkpoint(profile, path: str, seed: int) -> None:
    """A seeded random model saved in NVIDIA's checkpoint format, so the real loader reads it."""
    torch.manual_seed(seed)
    model = build_model(profile)
    state = model.state_dict()
    torch.save({"epoch": 0, "state_dict": state, "ema_state_dict": state}, path)


def shipped_lm(profile_name: str) -> str | None:
    """The word LM shipped beside a reference model (its training transcripts' bigram), or None."""
    path = os.path.join(os.path.dirname(ASSETS), "models", f"{profile_name}_words_bigram.arpa")
    return path if os.path.isfile(path) else None


def run_demo(work_dir: str, checkpoint: str | None = None, profile_name: str = DEMO_PROFILE,
             manifest: str = DEMO_MANIFEST, batch_size: int = 1, seed: int = 0, backend: str = "auto",
             progress: bool = True, out=sys.stdout, decoder: str = "greedy") -> dict:
    start = time.perf_counter()
    profile = load_profile(profile_name)
    os.makedirs(work_dir, exist_ok=True)
    if checkpoint is None:
        checkpoint = reference_checkpoint(profile.name)
        if checkpoint is not None:
            print(f"[ascend-asr] trained reference model: {checkpoint} (model card: "
                  f"{os.path.join(os.path.dirname(checkpoint), profile.name + '.md')})", file=out)
    if checkpoint is None:
        checkpoint = os.path.join(work_dir, f"{profile.name}_random_seed{seed}.pt")
        save_random_checkpoint(profile, checkpoint, seed)
        print(f"[ascend-asr] NOTE: no trained checkpoint given; using seeded random weights ({checkpoint}). "
              "Transcripts are noise and WER is ~100% until trained weights are supplied.", file=out)
    model = load_model(profile, checkpoint)
    onnx_path = export_onnx(model, os.path.join(work_dir, f"{profile.name}.onnx"))
    bundle = convert(profile, onnx_path, os.path.join(work_dir, "bundles"), batch_sizes=[batch_size])[0]
    prep_dir = os.path.join(work_dir, "prep")
    results_dir = os.path.join(work_dir, "results")
    preprocess(manifest, prep_dir, profile, progress=progress)
    beam = {}
    if decoder == "beam":
        lm = shipped_lm(profile.name)
        beam = {"decoder": "beam", **({"lm": lm} if lm else {})}
        print(f"[ascend-asr] beam search, lexicon from {lm or 'none (no shipped LM)'}", file=out)
    summary = infer(bundle.om_path, prep_dir, results_dir, InferOptions(backend=backend, progress=progress, **beam),
                    out=out)
    for r in read_hyps(results_dir):
        times = " ".join(f"{w['word']}[{w['start']:.2f}-{w['end']:.2f}]" for w in r.get("words", []))
        print(f"{r['id']}\n  REF: {r['ref']}\n  HYP: {r['hyp']}\n  words (s): {times}", file=out)
    print_summary(summary, out=out)
    total = time.perf_counter() - start
    print(f"[ascend-asr] demo: {total:.1f} s end to end for {summary['audio_seconds']:.1f} s of audio "
          f"(pipeline RTF {total / summary['audio_seconds']:.3f}); artifacts in {work_dir}", file=out)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.demo", description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="demo_out")
    p.add_argument("--checkpoint", help="a checkpoint of the profile's config, in its family's upstream format "
                                        "(default: the shipped reference model)")
    p.add_argument("--profile", default=DEMO_PROFILE)
    p.add_argument("--manifest", default=DEMO_MANIFEST)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--backend", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decoder", default="greedy", choices=("greedy", "beam"),
                   help="beam: lexicon beam search with the profile's shipped word LM")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    run_demo(args.work_dir, args.checkpoint, args.profile, args.manifest, args.batch_size, args.seed,
             args.backend, not args.no_progress, decoder=args.decoder)
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
