"""Drop-in for ModelZoo's deepspeech2_preprocess.py: same flags, ascend-asr's spectrogram and checks.

    python preprocess/deepspeech2_preprocess.py --data_file data/an4_test_manifest.json \
        --save_path ./data/an4_dataset/test --label_file labels.json

Writes <save_path>/spect/<stem>.bin (float32 1x1x161x621) and <save_path>/sizes/<stem>.bin
(int32 1), the ais_bench inputs (`--input spect,sizes`), plus targets.txt and ascend-asr's
prep metadata. Unlike the ModelZoo script, each utterance is its own file, its size is its true
frame count (not a fraction of 621), and an utterance longer than 621 frames is reported and skipped.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.deepspeech2 import run_preprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_file", required=True, help="deepspeech.pytorch manifest (root_path + samples)")
    p.add_argument("--save_path", required=True)
    p.add_argument("--label_file", help="labels.json; checked against the profile's labels")
    p.add_argument("--profile", default="deepspeech2")
    return run_preprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
