"""Drop-in for ModelZoo's deepspeech2_postprocess.py: ais_bench outputs -> greedy transcripts -> WER, CER.

    python postprocess/deepspeech2_postprocess.py --out_path result/ --save_path ./data/an4_dataset/test \
        --label_file labels.json

Reads <stem>_0.bin (or .txt / .npy, as ais_bench --outfmt writes them) and decodes each
utterance's floor((T - 1) / 2) + 1 valid frames (the ModelZoo script's int(T / 2) drops one for odd T).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.decoding import greedy_ctc  # noqa: E402
from ascend_asr.errors import TensorFileError  # noqa: E402
from ascend_asr.metrics import percent, score  # noqa: E402
from ascend_asr.prep import open_prep  # noqa: E402
from ascend_asr.profiles import load_profile  # noqa: E402
from ascend_asr.text import Vocabulary  # noqa: E402


def read_output(out_path: str, stem: str, n_classes: int) -> np.ndarray:
    """[T', n_classes] scores of one utterance, from whichever format ais_bench wrote."""
    for ext in ("bin", "npy", "txt"):
        path = os.path.join(out_path, f"{stem}_0.{ext}")
        if os.path.exists(path):
            data = {"bin": lambda: np.fromfile(path, dtype=np.float32), "npy": lambda: np.load(path),
                    "txt": lambda: np.loadtxt(path, dtype=np.float32)}[ext]()
            if data.size % n_classes:
                raise TensorFileError(f"{path}: {data.size} values is not T x {n_classes}")
            return data.reshape(-1, n_classes)
    raise TensorFileError(f"{out_path}: no {stem}_0.bin|npy|txt; run ais_bench with --input spect,sizes "
                          f"--output {out_path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_path", required=True, help="ais_bench output folder")
    p.add_argument("--save_path", required=True, help="the preprocess --save_path (references, frame counts)")
    p.add_argument("--label_file", help="labels.json (default: the profile's labels)")
    p.add_argument("--profile", default="deepspeech2")
    args = p.parse_args(argv)
    profile = load_profile(args.profile)
    vocab = profile.vocabulary
    if args.label_file:
        with open(args.label_file, encoding="utf-8") as f:
            labels = json.load(f)
        vocab = Vocabulary(tuple(labels), labels.index("_"))
    pairs = []
    for row in open_prep(args.save_path).rows:
        scores = read_output(args.out_path, row["stem"], vocab.size)
        hyp = vocab.decode(greedy_ctc(scores, profile.output_frames(row["frames"]), vocab.blank))
        pairs.append((row["text"], hyp))
    total = score(pairs)
    print(f"Test Summary \tAverage WER {percent(total.wer)}\tAverage CER {percent(total.cer)} "
          f"({total.utterances} utterances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
