"""Drop-in for ModelZoo's Jasper_preprocess.py: same flags, ascend-asr's frontend and checks.

    python preprocess/jasper_preprocess.py --dataset_dir DIR --val_manifests M.json \
        --model_config jasper --max_duration 40 --pad_to_max_duration \
        --save_bin_0 ./prep_data_0 --save_bin_1 ./prep_data_1 --json_file ./agg_txts.json

--model_config takes a profile (atc_profiles/NAME.yaml or its name) or NVIDIA's Jasper YAML.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.jasper import run_preprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset_dir", help="folder that manifest audio paths start from")
    p.add_argument("--val_manifests", nargs="+", required=True, help="NVIDIA .json, .tsv, .jsonl or LibriSpeech folder")
    p.add_argument("--model_config", default="jasper")
    p.add_argument("--max_duration", type=float)
    p.add_argument("--pad_to_max_duration", action="store_true")
    p.add_argument("--save_bin_0", default="./prep_data_0", help="folder for input 0 (feats)")
    p.add_argument("--save_bin_1", default="./prep_data_1", help="folder for input 1 (feat_lens)")
    p.add_argument("--json_file", default="./agg_txts.json")
    p.add_argument("--prep_dir", default="./prep", help="where prep.json, meta.jsonl and the info file go")
    for unused in ("--device_id", "--cpu_run", "--sync_infer"):  # accepted for compatibility; no effect here
        p.add_argument(unused, help=argparse.SUPPRESS)
    return run_preprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
