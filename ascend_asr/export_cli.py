"""`ascend-asr export`: checkpoint -> ONNX, with the profile's model family and config."""
from __future__ import annotations

import argparse
import sys

import torch

from .export import OPSET, export_onnx
from .models import build_model, load_model
from .profiles import load_profile


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ascend-asr export", description=__doc__.splitlines()[0])
    p.add_argument("--profile", required=True, help="profile name or YAML path (gives family and config)")
    p.add_argument("--checkpoint", help="upstream checkpoint (.pt); required unless --random-init")
    p.add_argument("--random-init", action="store_true", help="seeded random weights (smoke tests only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="load 'state_dict' even if 'ema_state_dict' exists")
    p.add_argument("--opset", type=int, default=OPSET)
    p.add_argument("--output", required=True, help="ONNX file to write")
    args = p.parse_args(argv)
    profile = load_profile(args.profile)
    if args.random_init:
        torch.manual_seed(args.seed)
        model = build_model(profile.family, profile.model_config)
        print("[ascend-asr] WARNING: random weights: the exported model recognizes nothing")
    elif args.checkpoint:
        model = load_model(profile.family, profile.model_config, args.checkpoint)
    else:
        p.error("give --checkpoint, or --random-init for a smoke test")
    export_onnx(model, args.output, opset=args.opset)
    print(f"[ascend-asr] exported {profile.family}/{profile.model_config} -> {args.output} (opset {args.opset})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
