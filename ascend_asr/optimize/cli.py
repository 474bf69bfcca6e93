"""`ascend-asr optimize`: gated optimisation steps over an exported ONNX (simplify, ort-opt, fp16, int8).

    python -m ascend_asr.optimize --model exported.onnx --profile jasper_small [--steps simplify,int8]

Each step's candidate is compared with the fp32 model on real utterances (default: the bundled held-out clips);
one that breaks the profile's parity thresholds fails the run and leaves the previous model as the result.
"""
from __future__ import annotations

import argparse

from ..profiles import load_profile
from .calibration import HELDOUT_MANIFEST
from .fp16 import DEFAULT_MIX_BLOCK_LIST
from .int8 import CALIBRATION_METHODS
from .pipeline import INT8_MODES, STEPS, OptimizeOptions, optimize


def _names(text: str) -> tuple:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else ()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr optimize", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the exported fp32 ONNX (ascend-asr export)")
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--manifest", default=HELDOUT_MANIFEST,
                   help="utterances to gate and calibrate on (default: the bundled held-out clips)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, in order (default {','.join(STEPS)})")
    p.add_argument("--output-dir", help="where the models and report go (default: NAME.optimized/ beside --model)")
    p.add_argument("--int8-mode", default="auto", choices=INT8_MODES,
                   help="static QDQ, dynamic, or auto: both, the faster of those passing the gate")
    p.add_argument("--calibration-method", default="minmax", choices=CALIBRATION_METHODS)
    p.add_argument("--exclude-op-types", default="", help="op types int8 leaves in fp32, e.g. LSTM,Softmax")
    p.add_argument("--exclude-nodes", default="", help="node names int8 leaves in fp32")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="when int8 breaks the gate, fail instead of searching for nodes to keep in fp32")
    p.add_argument("--mix-block-list", default=",".join(DEFAULT_MIX_BLOCK_LIST),
                   help="op types the allow_mix_precision simulation keeps in fp32")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for the speed figures")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per speed figure (median)")
    p.add_argument("--max-utterances", type=int, help="gate on the manifest's first N utterances only")
    p.add_argument("--write-profile", help="write a copy of the profile with the chosen `precision:` here")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    options = OptimizeOptions(steps=_names(args.steps), manifest=args.manifest, output_dir=args.output_dir,
                              int8_mode=args.int8_mode, calibration_method=args.calibration_method,
                              exclude_op_types=_names(args.exclude_op_types), exclude_nodes=_names(args.exclude_nodes),
                              sensitivity=not args.no_sensitivity, mix_block_list=_names(args.mix_block_list),
                              threads=args.threads, repeats=args.repeats, max_utterances=args.max_utterances,
                              write_profile=args.write_profile)
    optimize(args.model, load_profile(args.profile), options)
    return 0
