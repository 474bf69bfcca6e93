"""Drop-in for ModelZoo's Jasper_postprocess.py: ais_bench outputs + agg_txts.json -> WER.

    python postprocess/jasper_postprocess.py --model_config jasper --save_bin result/ \
        --json_file agg_txts.json [--save_predictions preds.txt]

Unlike the ModelZoo script it decodes only each utterance's valid frames when the encoded
lengths (output 1, `*_1.bin`) sit beside the scores (`*_0.bin`).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.jasper import run_postprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_config", default="jasper")
    p.add_argument("--save_bin", required=True, help="folder of ais_bench outputs (<stem>_0.bin, <stem>_1.bin)")
    p.add_argument("--json_file", default="./agg_txts.json")
    p.add_argument("--save_predictions")
    return run_postprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
