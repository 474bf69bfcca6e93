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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.lstm import run_preprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402
from ascend_asr.timit import SUBSETS  # noqa: E402


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
    return run_preprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
