"""ModelZoo LSTM-CTC (TIMIT phones): LSTM_preprocess_data.py and LSTM_postprocess_data.py, on ascend-asr's
Kaldi frontend and decoding."""
from __future__ import annotations

import dataclasses
import os
import re
import sys

import numpy as np

from ..decoding import OutputLayout, decode_utterance, make_decoder
from ..errors import TensorFileError
from ..kaldi_fbank import KaldiFbankSpliced, KaldiFbankSplicedParams
from ..metrics import char_errors, percent
from ..prep import open_prep
from ..preprocess import preprocess
from ..profiles import load_profile
from ..tensor_files import natural_key
from ..timit import decode_phones, phone_error_rate, read_units, timit_vocabulary, write_timit_manifest
from .common import preprocess_exit_status, read_yaml_config, require_output_folder

# ModelZoo ctc_config.yaml key -> our frontend parameter
CONF_TO_FRONTEND = {"left_ctx": "left_context", "right_ctx": "right_context", "n_skip_frame": "skip_frames",
                    "n_downsample": "pad_align"}
BATCH_FILE = re.compile(r"inputs_(\d+)$")  # ModelZoo preprocess: lstm_bin_bs{B}/inputs_{i}.bin
FRAME_RATIO = 2  # ModelZoo decodes ceil(frames / 2) output frames when there are no lengths (the LSTM halves time)


def frontend_from_conf(frontend: dict, conf_path: str | None, cmvn: str | None) -> dict:
    frontend = dict(frontend)
    if conf_path:
        conf = read_yaml_config(conf_path, "ModelZoo ctc_config.yaml")
        frontend.update({ours: conf[theirs] for theirs, ours in CONF_TO_FRONTEND.items() if theirs in conf})
    if cmvn:
        frontend["cmvn_stats"] = cmvn
    return frontend


def run_preprocess(args) -> int:
    """preprocess/lstm_preprocess.py: TIMIT audio (or a phone manifest) -> --save_bin, --prep_dir."""
    profile = load_profile(args.profile)
    profile = dataclasses.replace(profile, frontend=frontend_from_conf(profile.frontend, args.conf, args.cmvn))
    params = {k: v for k, v in profile.frontend.items() if k != "name"}
    KaldiFbankSpliced(KaldiFbankSplicedParams(**params)).load_cmvn()  # a missing statistics file fails here, once
    manifest = args.manifest
    if args.timit_dir:
        os.makedirs(args.prep_dir, exist_ok=True)
        manifest = os.path.join(args.prep_dir, f"timit_{args.subset}.jsonl")
        for bad in write_timit_manifest(args.timit_dir, args.subset, manifest):
            print(f"[ascend-asr] skipped {bad.source}: {bad.message}", file=sys.stderr)
    save_bin = os.path.abspath(args.save_bin or f"./lstm_bin_bs{args.batchsize}")
    features = profile.input("features").name
    summary = preprocess(manifest, args.prep_dir, profile, input_dirs={features: save_bin}, progress=False)
    print(f"{summary.written} written, {summary.resumed} resumed, {summary.failed} failed -> {save_bin}, "
          f"{args.prep_dir}")
    return preprocess_exit_status(summary, os.path.join(args.prep_dir, "failures.json"))


def vocabulary_for(profile, conf_path: str | None):
    """ModelZoo's data/units order when --conf names an existing vocab_file, else the profile's."""
    if conf_path:
        conf = read_yaml_config(conf_path, "ModelZoo ctc_config.yaml")
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
        raise TensorFileError(f"{path}: {array.size} values are not whole steps of {rows} rows x {n_classes or 1}; "
                              "is --batchsize right, and is this an output of the same model?")
    return array.reshape(-1, rows, n_classes) if n_classes else array.reshape(rows)


def output_files(folder: str, index: int) -> dict[str, str]:
    """{stem: path} of ais_bench outputs `<stem>_<index>.npy|bin`."""
    names = sorted((f for f in os.listdir(folder) if re.search(rf"_{index}\.(npy|bin)$", f)), key=natural_key)
    return {f.rsplit("_", 1)[0]: os.path.join(folder, f) for f in names}


def run_postprocess(args) -> int:
    """postprocess/lstm_postprocess.py: time-major outputs + prep/ references -> phone error rate."""
    profile = load_profile(args.profile)
    vocab = vocabulary_for(profile, args.conf)
    prep = open_prep(args.prep_dir)
    by_stem = {r["stem"]: i for i, r in enumerate(prep.rows)}
    layout = dataclasses.replace(OutputLayout.of(profile), time_stride=FRAME_RATIO)
    decode = make_decoder(vocab, layout.scores_are_probs)
    lengths_dtype = layout.lengths.dtype if layout.lengths else "int32"
    require_output_folder(args.npu_path, "give the folder of the model's outputs (--npu_path)")
    score_files, length_files = output_files(args.npu_path, 0), output_files(args.npu_path, 1)
    if not score_files:
        raise TensorFileError(f"{args.npu_path}: no <stem>_0.npy or <stem>_0.bin outputs; give the folder "
                              "ais_bench (or `python -m ascend_asr.infer --save-outputs`) wrote them to")
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
        scores = read_output(path, rows, vocab.size, layout.scores.dtype)
        lengths = read_output(length_files[stem], rows, 0, lengths_dtype) if stem in length_files else None
        for r, meta in enumerate(prep.rows[first:first + rows]):
            _, ids = decode_utterance(layout, decode, scores[:, r], frames=meta["frames"],
                                      out_length=None if lengths is None else lengths[r])
            # raw_text: the manifest's phone string (meta "text" is normalised for character vocabularies)
            results.append((meta["id"], meta.get("raw_text", meta["text"]), decode_phones(ids, vocab)))
    per = phone_error_rate((ref, hyp) for _, ref, hyp in results)
    cer = sum((char_errors(ref, hyp) for _, ref, hyp in results), start=char_errors("", ""))
    print(f"Phone error rate (PER) on test set: {100 * per.rate if per.rate is not None else float('nan'):.4f}  "
          f"({per.errors}/{per.reference_length} phones, {len(results)} utterances)")
    print(f"Character error rate of the phone strings: {percent(cer.rate)}")
    if args.save_predictions:
        with open(args.save_predictions, "w", encoding="utf-8") as f:
            f.writelines(f"{utt_id} {hyp}\n" for utt_id, _, hyp in results)
    return 0
