"""Drop-in for ModelZoo's deepspeech2_postprocess.py: ais_bench outputs -> greedy transcripts -> WER, CER.

    python postprocess/deepspeech2_postprocess.py --out_path result/ --save_path ./data/an4_dataset/test \
        --label_file labels.json

Reads <stem>_0.bin (or .txt / .npy, as ais_bench --outfmt writes them) and decodes each
utterance's floor((T - 1) / 2) + 1 valid frames (the ModelZoo script's int(T / 2) drops one for odd T).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.deepspeech2 import run_postprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_path", required=True, help="ais_bench output folder")
    p.add_argument("--save_path", required=True, help="the preprocess --save_path (references, frame counts)")
    p.add_argument("--label_file", help="labels.json (default: the profile's labels)")
    p.add_argument("--profile", default="deepspeech2")
    return run_postprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
