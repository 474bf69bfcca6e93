"""Compatibility with the Ascend ModelZoo scripts: their configs, flags and file conventions."""
from __future__ import annotations

import dataclasses
import glob
import math
import os

import numpy as np
import yaml

from .errors import ProfileError, TensorFileError
from .profiles import Profile, load_profile
from .tensor_files import natural_key, write_json_atomic
from .text import Vocabulary


def profile_for_model_config(model_config: str, default_profile: str, max_duration: float | None = None,
                             pad_to_max_duration: bool = False) -> Profile:
    """Our profile, or NVIDIA's Jasper YAML mapped onto `default_profile`; --max_duration with
    --pad_to_max_duration becomes one frame gear (40 s -> 4000 frames, as ModelZoo pads)."""
    profile = load_profile(default_profile)
    if model_config and os.path.isfile(model_config):
        with open(model_config, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        if isinstance(cfg, dict) and "input_val" in cfg:
            profile = _apply_nvidia_config(profile, cfg, model_config)
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


def _apply_nvidia_config(profile: Profile, cfg: dict, source: str) -> Profile:
    fb = cfg["input_val"].get("filterbank_features", {})
    ds = cfg["input_val"].get("audio_dataset", {})
    if fb.get("frame_splicing", 1) != 1:
        raise ProfileError(f"{source}: frame_splicing={fb['frame_splicing']} is not supported (NVIDIA raises too)")
    frontend = dict(profile.frontend)
    for ours, theirs in (("sample_rate", "sample_rate"), ("window_size", "window_size"),
                         ("window_stride", "window_stride"), ("n_fft", "n_fft"), ("n_mels", "n_filt"),
                         ("pad_align", "pad_align")):
        if theirs in fb:
            frontend[ours] = fb[theirs]
    frontend["trim_silence"] = bool(ds.get("trim_silence", frontend.get("trim_silence", False)))
    vocab = Vocabulary.from_spec({"labels": cfg["labels"], "blank": "last"}) if "labels" in cfg else profile.vocabulary
    return dataclasses.replace(profile, frontend=frontend, vocabulary=vocab, source=source)


def write_agg_txts(path: str, rows: list[dict]) -> None:
    """ModelZoo Jasper's agg_txts.json ({'txts', 'preds', 'logits'}), plus the file stems, so
    that outputs pair with references by name even when an utterance was skipped."""
    write_json_atomic(path, {"txts": [r["text"] for r in rows], "stems": [r["stem"] for r in rows],
                             "preds": [], "logits": []})


def stem_of_output(path: str) -> str:
    """'<dir>/000000000003_0.bin' -> '000000000003' (ais_bench: <input stem>_<output index>)."""
    return os.path.basename(path).rsplit("_", 1)[0]


def output_files(folder: str, index: int) -> list[str]:
    """ais_bench result files of output `index` (<stem>_<index>.bin), in natural order."""
    files = glob.glob(os.path.join(folder, f"*_{index}.bin"))
    return sorted(files, key=lambda p: natural_key(os.path.basename(p)))


def read_scores(path: str, n_classes: int, rows: int = 1) -> np.ndarray:
    """A raw float32 [rows, T, n_classes] score file (rows: utterances in it, batch axis first)."""
    data = np.fromfile(path, dtype=np.float32)
    if data.size == 0 or data.size % (n_classes * rows):
        raise TensorFileError(f"{path}: {data.size} float32 values is not {rows} rows of T x {n_classes} classes; "
                              "is this an output of the same model (float32, class axis last)?")
    return data.reshape(rows, -1, n_classes)
