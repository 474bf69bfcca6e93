"""Drop-in for ModelZoo's Jasper_postprocess.py: ais_bench outputs + agg_txts.json -> WER.

    python postprocess/jasper_postprocess.py --model_config jasper --save_bin result/ \
        --json_file agg_txts.json [--save_predictions preds.txt]

Unlike the ModelZoo script it decodes only each utterance's valid frames when the encoded
lengths (output 1, `*_1.bin`) sit beside the scores (`*_0.bin`).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.decoding import greedy_ctc  # noqa: E402
from ascend_asr.metrics import percent, score  # noqa: E402
from ascend_asr.modelzoo import output_files, profile_for_model_config, read_scores  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_config", default="jasper")
    p.add_argument("--save_bin", required=True, help="folder of ais_bench outputs (<stem>_0.bin, <stem>_1.bin)")
    p.add_argument("--json_file", default="./agg_txts.json")
    p.add_argument("--save_predictions")
    args = p.parse_args(argv)
    vocab = profile_for_model_config(args.model_config, "jasper").vocabulary
    with open(args.json_file, encoding="utf-8") as f:
        references = json.load(f)["txts"]
    score_files, length_files = output_files(args.save_bin, 0), output_files(args.save_bin, 1)
    if not length_files:
        print("[ascend-asr] no *_1.bin lengths: decoding every frame, padding included (ModelZoo behaviour)")
    predictions = []
    for i, path in enumerate(score_files):
        scores = read_scores(path, vocab.size)[0]
        length = int(np.fromfile(length_files[i], dtype=np.int32)[0]) if length_files else None
        predictions.append(vocab.decode(greedy_ctc(scores, length, vocab.blank)))
    if len(predictions) != len(references):
        print(f"[ascend-asr] warning: {len(predictions)} outputs for {len(references)} references; "
              "scoring the first min of both")
    total = score(zip(references, predictions))
    print(f"eval_wer: {100 * total.wer if total.wer is not None else float('nan')}  "
          f"(WER {percent(total.wer)}, CER {percent(total.cer)}, {total.utterances} utterances)")
    if args.save_predictions:
        with open(args.save_predictions, "w", encoding="utf-8") as f:
            f.write("\n".join(predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
