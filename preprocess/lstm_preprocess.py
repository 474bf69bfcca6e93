"""Drop-in for ModelZoo's LSTM_preprocess_data.py: TIMIT audio -> prep/ with ascend-asr's Kaldi frontend.

    python preprocess/lstm_preprocess.py --conf=./conf/ctc_config.yaml --batchsize=16 \
        --timit_dir /data/TIMIT --subset dev [--cmvn data/global_fbank_cmvn.txt]

ModelZoo reads the Kaldi feature archives of its data preparation (`test_scp_path`); this script
computes the same features from the audio (Kaldi fbank, global CMVN, splicing, frame skipping), so
it takes the TIMIT folder (or a manifest whose text is the phone string) and the train set's CMVN
statistics instead. --conf is optional: its left_ctx, right_ctx, n_skip_frame and n_downsample
override the profile's frontend. Every utterance is written (ModelZoo drops the last partial
batch); one .bin per utterance, which `python -m ascend_asr.infer` batches for any batch size.
"""
import argparse
import dataclasses
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.errors import AscendAsrError  # noqa: E402
from ascend_asr.kaldi_fbank import KaldiFbankSpliced, KaldiFbankSplicedParams  # noqa: E402
from ascend_asr.preprocess import preprocess  # noqa: E402
from ascend_asr.profiles import load_profile  # noqa: E402
from ascend_asr.timit import SUBSETS, write_timit_manifest  # noqa: E402

# ModelZoo ctc_config.yaml key -> our frontend parameter
CONF_TO_FRONTEND = {"left_ctx": "left_context", "right_ctx": "right_context", "n_skip_frame": "skip_frames",
                    "n_downsample": "pad_align"}


def frontend_from_conf(frontend: dict, conf_path: str | None, cmvn: str | None) -> dict:
    frontend = dict(frontend)
    if conf_path:
        with open(conf_path, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        frontend.update({ours: conf[theirs] for theirs, ours in CONF_TO_FRONTEND.items() if theirs in conf})
    if cmvn:
        frontend["cmvn_stats"] = cmvn
    return frontend


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conf", help="ModelZoo conf/ctc_config.yaml (optional; context and skipping settings)")
    p.add_argument("--batchsize", type=int, default=1, help="names the default --save_bin folder, as ModelZoo")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--timit_dir", help="TIMIT root holding TRAIN/ and TEST/")
    source.add_argument("--manifest", help=".jsonl or .tsv manifest whose text is the folded phone string")
    p.add_argument("--subset", default="dev", choices=SUBSETS, help="with --timit_dir (ModelZoo validates on dev)")
    p.add_argument("--cmvn", help="CMVN statistics (compute-cmvn-stats); default: the profile's cmvn_stats")
    p.add_argument("--profile", default="lstm_ctc", help="profile name or YAML path")
    p.add_argument("--save_bin", help="folder for the actual_input_1 .bin files (default ./lstm_bin_bs{batchsize})")
    p.add_argument("--prep_dir", default="./prep", help="where prep.json, meta.jsonl, the info file and lengths go")
    args = p.parse_args(argv)
    profile = load_profile(args.profile)
    profile = dataclasses.replace(profile, frontend=frontend_from_conf(profile.frontend, args.conf, args.cmvn))
    params = {k: v for k, v in profile.frontend.items() if k != "name"}
    KaldiFbankSpliced(KaldiFbankSplicedParams(**params)).load_cmvn()  # a missing statistics file fails here, once
    manifest = args.manifest
    if args.timit_dir:
        os.makedirs(args.prep_dir, exist_ok=True)
        manifest = os.path.join(args.prep_dir, f"timit_{args.subset}.jsonl")
        for bad in write_timit_manifest(args.timit_dir, args.subset, manifest):
            print(f"[ascend-asr] skipped {bad.source}: {bad.message}", file=sys.stderr)
    save_bin = os.path.abspath(args.save_bin or f"./lstm_bin_bs{args.batchsize}")
    features = profile.input("features").name
    summary = preprocess(manifest, args.prep_dir, profile, input_dirs={features: save_bin}, progress=False)
    print(f"{summary.written} written, {summary.resumed} resumed, {summary.failed} failed -> {save_bin}, "
          f"{args.prep_dir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AscendAsrError as exc:
        sys.exit(f"[ascend-asr] error: {exc}")
