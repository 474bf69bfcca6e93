"""ModelZoo Jasper: Jasper_preprocess.py and Jasper_postprocess.py, on ascend-asr's frontend and decoding."""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import yaml

from ..errors import ProfileError
from ..families import get_family
from ..profiles import Profile, load_profile
from ..text import Vocabulary
from ..decoding import OutputLayout, decode_utterance, make_decoder
from ..errors import TensorFileError
from ..metrics import percent, score
from ..prep import open_prep
from ..preprocess import preprocess
from .common import (
    output_files,
    preprocess_exit_status,
    read_input_file,
    read_scores,
    require_output_folder,
    require_outputs,
    stem_of_output,
    write_agg_txts,
)


def profile_for_model_config(model_config: str, default_profile: str, max_duration: float | None = None,
                             pad_to_max_duration: bool = False) -> Profile:
    """Our profile, or NVIDIA's Jasper YAML read by the jasper family onto `default_profile` (its model,
    labels and feature settings); --max_duration with --pad_to_max_duration becomes one frame gear
    (40 s -> 4000 frames, as ModelZoo pads)."""
    profile = load_profile(default_profile)
    if model_config and os.path.isfile(model_config):
        cfg = read_input_file(model_config, "model config", "give a profile or NVIDIA's Jasper YAML (--model_config)",
                              ProfileError, yaml.safe_load)
        if isinstance(cfg, dict) and "jasper" in cfg:
            profile = _apply_nvidia_config(profile, model_config)
        else:
            profile = load_profile(model_config)
    elif model_config:
        profile = load_profile(model_config)
    if pad_to_max_duration:
        if not max_duration:
            raise ProfileError("--pad_to_max_duration needs --max_duration (seconds)")
        fe = profile.frontend
        rate = fe.get("sample_rate", 16000)
        win, hop = int(rate * fe.get("window_size", 0.02)), int(rate * fe.get("window_stride", 0.01))
        align = fe.get("pad_align", 16)
        frames = 1 + math.ceil((max_duration * rate - win) / hop)
        frames = align * math.ceil(frames / align) if align > 1 else frames
        profile = dataclasses.replace(profile, frames=(frames,))
    return profile


def _apply_nvidia_config(profile: Profile, source: str) -> Profile:
    family = get_family(profile.family)
    upstream = family.read_upstream(source)
    vocab = Vocabulary.from_spec(upstream.vocabulary) if upstream.vocabulary else profile.vocabulary
    return dataclasses.replace(profile, model_config=family.config_to_dict(upstream.config),
                               frontend={**profile.frontend, **upstream.frontend}, vocabulary=vocab, source=source)


def run_preprocess(args) -> int:
    """preprocess/jasper_preprocess.py: manifests -> --save_bin_0 (feats), --save_bin_1 (feat_lens), agg_txts.json."""
    profile = profile_for_model_config(args.model_config, "jasper", args.max_duration, args.pad_to_max_duration)
    dirs = {profile.inputs[0].name: os.path.abspath(args.save_bin_0),
            profile.inputs[1].name: os.path.abspath(args.save_bin_1)}
    summary = preprocess(args.val_manifests, args.prep_dir, profile, data_dir=args.dataset_dir, input_dirs=dirs)
    print(f"{summary.written} written, {summary.failed} failed -> {args.save_bin_0}, {args.save_bin_1}")
    write_agg_txts(args.json_file, open_prep(args.prep_dir).rows)
    return preprocess_exit_status(summary, os.path.join(args.prep_dir, "failures.json"))


def run_postprocess(args) -> int:
    """postprocess/jasper_postprocess.py: ais_bench outputs + agg_txts.json -> eval_wer."""
    profile = profile_for_model_config(args.model_config, "jasper")
    vocab = profile.vocabulary
    layout = OutputLayout.of(profile)
    decode = make_decoder(vocab, layout.scores_are_probs)
    agg = read_input_file(args.json_file, "agg_txts.json", "give the --json_file that jasper_preprocess.py wrote")
    if not isinstance(agg, dict) or not isinstance(agg.get("txts"), list):
        raise TensorFileError(f"{args.json_file}: expected agg_txts.json ({{'txts': [...], ...}}); give the "
                              "--json_file that jasper_preprocess.py wrote")
    require_output_folder(args.save_bin, "give the --output folder of ais_bench (<stem>_0.bin, <stem>_1.bin)")
    score_files, length_files = output_files(args.save_bin, 0), output_files(args.save_bin, 1)
    require_outputs(args.save_bin, score_files, "give the --output folder of ais_bench")
    if length_files and len(length_files) != len(score_files):
        raise TensorFileError(f"{args.save_bin}: {len(score_files)} *_0.bin but {len(length_files)} *_1.bin files; "
                              "give a folder holding both outputs of every utterance")
    if not length_files:
        print("[ascend-asr] no *_1.bin lengths: decoding every frame, padding included (ModelZoo behaviour)")
    predictions = {}
    for i, path in enumerate(score_files):
        lengths = np.fromfile(length_files[i], dtype=np.int32) if length_files else [None]
        for r, scores in enumerate(read_scores(path, vocab.size, rows=len(lengths))):
            key = stem_of_output(path) if len(lengths) == 1 else f"{stem_of_output(path)}[{r}]"
            predictions[key] = vocab.decode(decode_utterance(layout, decode, scores, out_length=lengths[r])[1])
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
