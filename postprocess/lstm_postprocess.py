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
import re
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.decoding import greedy_ctc  # noqa: E402
from ascend_asr.errors import AscendAsrError  # noqa: E402
from ascend_asr.metrics import char_errors, percent  # noqa: E402
from ascend_asr.prep import open_prep  # noqa: E402
from ascend_asr.profiles import load_profile  # noqa: E402
from ascend_asr.tensor_files import natural_key  # noqa: E402
from ascend_asr.timit import decode_phones, phone_error_rate, read_units, timit_vocabulary  # noqa: E402

BATCH_FILE = re.compile(r"inputs_(\d+)$")  # ModelZoo preprocess: lstm_bin_bs{B}/inputs_{i}.bin


def vocabulary_for(profile, conf_path: str | None):
    """ModelZoo's data/units order when --conf names an existing vocab_file, else the profile's."""
    if conf_path:
        with open(conf_path, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        if conf.get("decode_type", "Greedy") != "Greedy":
            print(f"[ascend-asr] decode_type {conf['decode_type']!r} in {conf_path}: only greedy decoding is "
                  "implemented; decoding greedily")
        units = conf.get("vocab_file")
        if units and os.path.isfile(units):
            print(f"[ascend-asr] vocabulary from {units}")
            return timit_vocabulary(read_units(units))
    return profile.vocabulary


def read_output(path: str, rows: int, n_classes: int, dtype: str) -> np.ndarray:
    """A time-major output [frames, rows, n_classes] (scores) or [rows] (lengths)."""
    array = np.load(path) if path.endswith(".npy") else np.fromfile(path, dtype=dtype)
    per_step = rows * n_classes if n_classes else rows
    if array.size == 0 or array.size % per_step:
        sys.exit(f"{path}: {array.size} values are not whole steps of {rows} rows x {n_classes or 1}; "
                 "is --batchsize right, and is this an output of the same model?")
    return array.reshape(-1, rows, n_classes) if n_classes else array.reshape(rows)


def output_files(folder: str, index: int) -> dict[str, str]:
    """{stem: path} of ais_bench outputs `<stem>_<index>.npy|bin`."""
    names = sorted((f for f in os.listdir(folder) if re.search(rf"_{index}\.(npy|bin)$", f)), key=natural_key)
    return {f.rsplit("_", 1)[0]: os.path.join(folder, f) for f in names}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conf", help="ModelZoo conf/ctc_config.yaml (optional: vocab_file, decode_type)")
    p.add_argument("--npu_path", required=True, help="folder of the outputs (<stem>_0.npy|bin)")
    p.add_argument("--batchsize", type=int, default=1, help="rows per batched ModelZoo file (inputs_<i>_0.*)")
    p.add_argument("--prep_dir", default="./prep", help="prep/ folder written by preprocess/lstm_preprocess.py")
    p.add_argument("--profile", default="lstm_ctc")
    p.add_argument("--save_predictions", help="write '<id> <phones>' per utterance")
    args = p.parse_args(argv)
    profile = load_profile(args.profile)
    vocab = vocabulary_for(profile, args.conf)
    prep = open_prep(args.prep_dir)
    by_stem = {r["stem"]: i for i, r in enumerate(prep.rows)}
    scores_dtype = (profile.output("log_probs") or profile.output("probs")).dtype
    lengths_dtype = profile.output("out_lengths").dtype if profile.output("out_lengths") else "int32"
    score_files, length_files = output_files(args.npu_path, 0), output_files(args.npu_path, 1)
    if not score_files:
        sys.exit(f"{args.npu_path}: no <stem>_0.npy or <stem>_0.bin outputs")
    results = []  # (id, reference, hypothesis)
    for stem, path in score_files.items():
        batch = BATCH_FILE.match(stem)
        if stem in by_stem:
            first, rows = by_stem[stem], 1
        elif batch:
            first, rows = int(batch.group(1)) * args.batchsize, args.batchsize
        else:
            print(f"[ascend-asr] {path}: not an utterance of {args.prep_dir}; skipped")
            continue
        scores = read_output(path, rows, vocab.size, scores_dtype)
        lengths = read_output(length_files[stem], rows, 0, lengths_dtype) if stem in length_files else None
        for r, meta in enumerate(prep.rows[first:first + rows]):
            length = int(lengths[r]) if lengths is not None else (meta["frames"] + 1) // 2
            hyp = decode_phones(greedy_ctc(scores[:, r], length, vocab.blank), vocab)
            # raw_text: the manifest's phone string (meta "text" is normalised for character vocabularies)
            results.append((meta["id"], meta.get("raw_text", meta["text"]), hyp))
    per = phone_error_rate((ref, hyp) for _, ref, hyp in results)
    cer = sum((char_errors(ref, hyp) for _, ref, hyp in results), start=char_errors("", ""))
    print(f"Phone error rate (PER) on test set: {100 * per.rate if per.rate is not None else float('nan'):.4f}  "
          f"({per.errors}/{per.reference_length} phones, {len(results)} utterances)")
    print(f"Character error rate of the phone strings: {percent(cer.rate)}")
    if args.save_predictions:
        with open(args.save_predictions, "w", encoding="utf-8") as f:
            f.writelines(f"{utt_id} {hyp}\n" for utt_id, _, hyp in results)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AscendAsrError as exc:
        sys.exit(f"[ascend-asr] error: {exc}")
