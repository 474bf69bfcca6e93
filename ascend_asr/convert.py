"""`ascend-asr convert`: ONNX + profile -> one bundle per batch size (NAME_bsB.onnx + .json)."""
from __future__ import annotations

import argparse
import sys

from .bundle import convert


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ascend-asr convert", description=__doc__.splitlines()[0])
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--onnx", required=True, help="exported model (dynamic batch and frames)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--name", help="bundle name prefix (default: the profile's name)")
    p.add_argument("--batch-sizes", help="comma-separated subset of the profile's batch sizes")
    p.add_argument("--soc-version", help="ATC --soc_version, e.g. Ascend310P3")
    args = p.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else None
    for bundle in convert(args.profile, args.onnx, args.output_dir, args.name, sizes, args.soc_version):
        print(f"[ascend-asr] bundle {bundle.onnx_path} (+ .json)\n  ATC: {bundle.manifest['atc_command_line']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
