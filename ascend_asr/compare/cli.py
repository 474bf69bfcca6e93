"""`ascend-asr compare A B --input prep/`: two forms of one model, output by output and layer by layer.

    ascend-asr compare jasper.pt jasper.onnx --input prep/ --profile jasper_small
    ascend-asr compare model.onnx model.int8.onnx --input prep/ --layers --json compare.json
    ascend-asr compare model.onnx bundles/jasper_bs1.om --input prep/ --backend acl

A and B are each a PyTorch checkpoint in its family's upstream format (with --profile), an ONNX file (exported,
simplified, optimised, fp16 or int8), or a bundle (NAME.om / NAME.json on --backend; NAME.onnx on onnxruntime).
A is the reference. Metrics are msit's (cosine, max and mean |d|, relative Euclidean distance, KL for
probabilities) plus frame-argmax agreement, on each utterance's valid output frames; the worst utterance decides.

Exit status: 0 when every compared tensor is within the thresholds, 1 when a threshold breaks (the first
broken tensor is named, in A's order), 2 on bad input (a missing file, models that do not correspond, ...).
"""
from __future__ import annotations

import argparse
import sys

from ..runner import run
from .comparison import BACKENDS, CompareOptions, compare
from .report import print_report

EXIT_PASS, EXIT_BREACH = 0, 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr compare", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("a", metavar="A", help="the reference: checkpoint, ONNX, or bundle")
    p.add_argument("b", metavar="B", help="the candidate: checkpoint, ONNX, or bundle")
    p.add_argument("--input", required=True, help="prep/ folder written by preprocess (its utterances are fed to both)")
    p.add_argument("--profile", help="profile name or YAML (needed for a checkpoint; default: the one prep/ was "
                                     "made with)")
    p.add_argument("--layers", action="store_true",
                   help="also compare every intermediate tensor matched across A and B, and name the first that "
                        "breaks a threshold")
    p.add_argument("--dump", metavar="DIR", help="write each side's tensors in msit's npy dump layout, for "
                                                 "`msit debug compare` on a machine with an NPU")
    p.add_argument("--limit", type=int, help="compare the first N utterances only")
    p.add_argument("--min-cosine", type=float, help="override the profile's threshold (default 0.99)")
    p.add_argument("--max-red", type=float, help="override the relative Euclidean distance threshold (default 0.05)")
    p.add_argument("--max-abs", type=float, help="also gate max |d| (e.g. 1e-4 for fp32 parity; default: not gated)")
    p.add_argument("--min-argmax-agreement", type=float, help="also gate frame-argmax agreement (0..1)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="where a bundle given as NAME.om/NAME.json runs (default auto: the NPU if there is one, "
                        "else its ONNX on onnxruntime, announced)")
    p.add_argument("--device", type=int, default=0, help="NPU device id for acl / ais_bench")
    p.add_argument("--json", metavar="FILE", help="write the whole report (every layer, every utterance) as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    options = CompareOptions(profile=args.profile, layers=args.layers, dump=args.dump, limit=args.limit,
                             backend=args.backend, device=args.device, min_cosine=args.min_cosine,
                             max_red=args.max_red, max_abs=args.max_abs,
                             min_argmax_agreement=args.min_argmax_agreement)
    report = compare(args.a, args.b, args.input, options)
    print_report(report)
    if args.json:
        from ..tensor_files import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"[ascend-asr] report: {args.json}")
    return EXIT_BREACH if report["verdict"] == "fail" else EXIT_PASS


if __name__ == "__main__":
    sys.exit(run(main))
