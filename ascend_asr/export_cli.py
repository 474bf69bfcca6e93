"""`ascend-asr export`: an upstream checkpoint -> ONNX, the model built exactly as its upstream files describe it.

    ascend-asr export --family jasper --config jasper10x5dr_speedp-online_speca.yaml --checkpoint ckpt.pt --output m.onnx
    ascend-asr export --family deepspeech2 --checkpoint an4_pretrained_v3.ckpt --output m.onnx   # hyper_parameters
    ascend-asr export --family lstm_ctc --config conf/ctc_config.yaml --checkpoint ctc_best.pth --output m.onnx
    ascend-asr export --profile jasper_small --checkpoint jasper_small.pt --output m.onnx       # the profile's config
"""
from __future__ import annotations

import argparse
import inspect
import sys

from .errors import OptionError
from .families import family_names, get_family, model_config_for
from .profiles import load_profile


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr export", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--family", choices=family_names(), help="model family (the config comes from its files)")
    source.add_argument("--profile", help="profile name or YAML path (gives family and model config)")
    p.add_argument("--config", help="the family's upstream config file (NVIDIA's Jasper YAML, ModelZoo's "
                                    "ctc_config.yaml); overrides the profile's model config")
    p.add_argument("--model-config", help="a preset of the family instead of --config (e.g. jasper10x5dr)")
    p.add_argument("--checkpoint", help="upstream checkpoint; required unless --random-init")
    p.add_argument("--random-init", action="store_true", help="seeded random weights (smoke tests only)")
    p.add_argument("--seed", type=int, help="--random-init's seed (default 0)")
    p.add_argument("--no-ema", action="store_true", help="Jasper: load 'state_dict' even if 'ema_state_dict' exists")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's, 13)")
    p.add_argument("--output", required=True, help="ONNX file to write")
    return p


def check_options(args) -> None:
    """Options that would be ignored are refused, with the one to drop."""
    if args.random_init:
        ignored = [flag for flag, on in (("--checkpoint", args.checkpoint), ("--no-ema", args.no_ema)) if on]
        if ignored:
            raise OptionError(f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} nothing with --random-init, "
                              "which loads no checkpoint: drop --random-init to export the checkpoint, or drop "
                              f"{', '.join(ignored)}")
    elif args.seed is not None:
        raise OptionError("--seed does nothing without --random-init (a checkpoint's weights are not random): "
                          "drop --seed")
    if getattr(args, "opset", None) is not None:  # before any checkpoint is read
        from .export import check_opset

        check_opset(args.opset)
    if args.config and args.model_config:
        raise OptionError("--config and --model-config both give the model config, and --model-config would be "
                          "ignored: give one of them")


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.checkpoint and not args.random_init:
        p.error("give --checkpoint, or --random-init for a smoke test")
    check_options(args)
    profile = load_profile(args.profile) if args.profile else None
    family = get_family(profile.family if profile else args.family)
    if args.no_ema and "use_ema" not in inspect.signature(family.load).parameters:
        raise OptionError(f"--no-ema does nothing for the {family.name} family, whose checkpoints have no EMA "
                          "weights (only Jasper's do); drop --no-ema")
    config = model_config_for(family, profile, args.config, None if args.random_init else args.checkpoint,
                              args.model_config)
    import torch  # the export extra: imported only once the inputs are known to be good

    from .export import OPSET, check_opset, export_onnx

    if args.random_init:
        torch.manual_seed(args.seed or 0)
        model = family.build(config)
        print("[ascend-asr] WARNING: random weights: the exported model recognizes nothing")
    else:
        model = family.load(args.checkpoint, config, use_ema=not args.no_ema)
    opset = check_opset(OPSET if args.opset is None else args.opset)
    export_onnx(model, args.output, opset=opset)
    parameters = sum(t.numel() for t in model.parameters())
    print(f"[ascend-asr] exported {family.name} ({parameters / 1e6:.2f} M parameters) -> {args.output} "
          f"(opset {opset})")
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
