"""`ascend-asr convert`: ONNX + profile -> one bundle per batch size (NAME_bsB.onnx + .json [+ .om]).

ATC runs when `atc` is on PATH (after `source env.sh`); its log is saved as NAME_bsB.atc.log.
"""
from __future__ import annotations

import argparse
import sys

from .bundle import convert
from .errors import OptionError
from .profiles import parse_batch_sizes
from .runner import run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ascend-asr convert", description=__doc__.splitlines()[0])
    p.add_argument("--profile", required=True, help="profile name (atc_profiles/NAME.yaml) or YAML path")
    p.add_argument("--onnx", required=True, help="exported model (dynamic batch and frames)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--name", help="bundle name prefix (default: the profile's name)")
    p.add_argument("--batch-sizes", help="comma-separated batch sizes (default: the profile's)")
    p.add_argument("--soc-version", help="ATC --soc_version, e.g. Ascend310P3 (default: detected from the device "
                                         "via acl.get_soc_name() or npu-smi, else the profile's)")
    atc = p.add_mutually_exclusive_group()
    atc.add_argument("--atc", help="the atc executable (default: atc on PATH)")
    atc.add_argument("--no-atc", action="store_true", help="write the bundles' ONNX and manifests only")
    p.add_argument("--dry-run", action="store_true", help="print the ATC commands and write nothing")
    args = p.parse_args(argv)
    sizes = parse_batch_sizes(args.batch_sizes) if args.batch_sizes is not None else None
    if args.dry_run and args.no_atc:
        raise OptionError("--no-atc does nothing with --dry-run, which runs no ATC and writes nothing (it prints "
                          "the ATC commands); drop one of them")
    build_om = False if args.no_atc else (True if args.atc else None)
    bundles = convert(args.profile, args.onnx, args.output_dir, args.name, sizes, args.soc_version,
                      build_om=build_om, atc=args.atc, dry_run=args.dry_run)
    if bundles and bundles[0].manifest.get("warning"):
        print(f"[ascend-asr] WARNING ({args.profile}): {bundles[0].manifest['warning']}")
    for bundle in bundles:
        om = bundle.manifest["om"]
        built = f"+ {bundle.name}.om ({bundle.manifest['soc_version']})" if om else "no .om (ATC not run)"
        print(f"[ascend-asr] bundle {bundle.onnx_path} (+ .json) {built}")
    if bundles and not bundles[0].manifest["om"] and not args.no_atc:
        print("[ascend-asr] atc not found: the bundles run on onnxruntime; to build OMs, `source env.sh` on a host "
              "with CANN and convert again (the ATC commands are in each manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
