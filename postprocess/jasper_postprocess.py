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
from ascend_asr.modelzoo import output_files, profile_for_model_config, read_scores, stem_of_output  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_config", default="jasper")
    p.add_argument("--save_bin", required=True, help="folder of ais_bench outputs (<stem>_0.bin, <stem>_1.bin)")
    p.add_argument("--json_file", default="./agg_txts.json")
    p.add_argument("--save_predictions")
    args = p.parse_args(argv)
    vocab = profile_for_model_config(args.model_config, "jasper").vocabulary
    with open(args.json_file, encoding="utf-8") as f:
        agg = json.load(f)
    score_files, length_files = output_files(args.save_bin, 0), output_files(args.save_bin, 1)
    if length_files and len(length_files) != len(score_files):
        sys.exit(f"{args.save_bin}: {len(score_files)} *_0.bin but {len(length_files)} *_1.bin files")
    if not length_files:
        print("[ascend-asr] no *_1.bin lengths: decoding every frame, padding included (ModelZoo behaviour)")
    predictions = {}
    for i, path in enumerate(score_files):
        lengths = np.fromfile(length_files[i], dtype=np.int32) if length_files else [None]
        for r, scores in enumerate(read_scores(path, vocab.size, rows=len(lengths))):
            key = stem_of_output(path) if len(lengths) == 1 else f"{stem_of_output(path)}[{r}]"
            predictions[key] = vocab.decode(greedy_ctc(scores, lengths[r], vocab.blank))
    stems = agg.get("stems")
    if stems and any(s in predictions for s in stems):  # pair by file name
        pairs = [(ref, predictions[s]) for s, ref in zip(stems, agg["txts"]) if s in predictions]
        if len(pairs) < len(stems):
            print(f"[ascend-asr] warning: no output for {len(stems) - len(pairs)} of {len(stems)} references; "
                  "scoring the others")
    else:  # ModelZoo's agg_txts.json: pair by position
        if len(predictions) != len(agg["txts"]):
            print(f"[ascend-asr] warning: {len(predictions)} outputs for {len(agg['txts'])} references; "
                  "pairing by position")
        pairs = list(zip(agg["txts"], predictions.values()))
    total = score(pairs)
    print(f"eval_wer: {100 * total.wer if total.wer is not None else float('nan')}  "
          f"(WER {percent(total.wer)}, CER {percent(total.cer)}, {total.utterances} utterances)")
    if args.save_predictions:
        with open(args.save_predictions, "w", encoding="utf-8") as f:
            f.write("\n".join(hyp for _, hyp in pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
