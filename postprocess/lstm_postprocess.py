"""Drop-in for ModelZoo's LSTM_postprocess_data.py: time-major outputs + prep/ references -> PER.

    python postprocess/lstm_postprocess.py --conf=./conf/ctc_config.yaml --npu_path=./result/ \
        --batchsize=16 --prep_dir ./prep

Outputs are ais_bench's (or `ascend_asr.infer --save-outputs`) `<stem>_0.bin|npy`, scores
[frames, batch, 41] with the batch on axis 1, and, when present, `<stem>_1.*` lengths. A stem
that is one utterance's holds one row; ModelZoo's batched `inputs_<i>_0.*` hold --batchsize rows,
utterances i*B .. i*B+B-1. Without lengths, ceil(frames / 2) of the utterance is decoded (ModelZoo's
frame-ratio rule gives the same). Greedy decoding only. The score is the phone error rate; ModelZoo
prints the same number as "Word error rate".
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.modelzoo.lstm import run_postprocess  # noqa: E402
from ascend_asr.runner import run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conf", help="ModelZoo conf/ctc_config.yaml (optional: vocab_file, decode_type)")
    p.add_argument("--npu_path", required=True, help="folder of the outputs (<stem>_0.npy|bin)")
    p.add_argument("--batchsize", type=int, default=1, help="rows per batched ModelZoo file (inputs_<i>_0.*)")
    p.add_argument("--prep_dir", default="./prep", help="prep/ folder written by preprocess/lstm_preprocess.py")
    p.add_argument("--profile", default="lstm_ctc")
    p.add_argument("--save_predictions", help="write '<id> <phones>' per utterance")
    return run_postprocess(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run(main))
