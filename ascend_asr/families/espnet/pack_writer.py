"""Write a model in ESPnet2's packed format (what `espnet2.bin.pack asr` writes): the recipe's reference.

The zip holds `meta.yaml`, `exp/asr_train_<name>/config.yaml` with the keys ESPnet2's
`ASRTask.build_model` reads (so `ASRTask.build_model_from_file` rebuilds the model, decoder-less CTC:
`decoder: null`, `ctc_weight: 1.0`), `exp/asr_train_<name>/valid.loss.ave.pth` (ESPnetASRModel's state dict:
`frontend.logmel.melmat` in float32, `normalize.*`, `encoder.*`, `ctc.ctc_lo.*` stored as float16 to keep
the reference small; ESPnet's load_state_dict casts them back) and, for global_mvn,
`exp/asr_stats_raw/train/feats_stats.npz`.
"""
from __future__ import annotations

import dataclasses
import io
import os
import platform
import time
import zipfile

import numpy as np
import torch
import yaml

from ...tensor_files import atomic_path
from ..checkpoints import half_precision
from .config import CONFORMER_DEFAULTS, TRANSFORMER_DEFAULTS
from .frontend import EspnetDefaultFrontend, EspnetFrontendParams
from .tokens import WORD_START

ESPNET_VERSION = "202511"  # the release whose config.yaml layout this writes


def espnet_token_list(labels, token_type: str = "char") -> list[str]:
    """The profile labels back in ESPnet's spelling (" " as <space> for char models)."""
    if token_type == "char":
        return ["<space>" if label == " " else label for label in labels]
    return [label.replace(" ", WORD_START) for label in labels]


def espnet_config(model, profile, name: str, stats_file: str | None) -> dict:
    config = model.config
    fe = {k: v for k, v in profile.frontend.items() if k != "name"}
    encoder_keys = CONFORMER_DEFAULTS if config.encoder == "conformer" else TRANSFORMER_DEFAULTS
    values = dataclasses.asdict(config)
    encoder_conf = {k: values[k] for k in encoder_keys if k in values}
    encoder_conf.update(positionwise_layer_type="linear", dropout_rate=0.1, positional_dropout_rate=0.1,
                        attention_dropout_rate=0.0)
    normalize_conf = {}
    if config.normalize == "global_mvn":
        normalize_conf = {"stats_file": stats_file, "norm_means": config.norm_means, "norm_vars": config.norm_vars}
    elif config.normalize == "utterance_mvn":
        normalize_conf = {"norm_means": config.norm_means, "norm_vars": config.norm_vars}
    return {
        "config": None, "output_dir": f"exp/asr_train_{name}", "ngpu": 0, "seed": 0, "collect_stats": False,
        "token_list": espnet_token_list(profile.vocabulary.labels), "init": None, "input_size": None,
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": None,
                     "zero_infinity": True},
        "joint_net_conf": None, "use_preprocessor": True, "token_type": "char", "bpemodel": None,
        "non_linguistic_symbols": None, "cleaner": None, "g2p": None,
        "frontend": "default",
        "frontend_conf": {"fs": fe["sample_rate"], "n_fft": fe["fft_length"], "win_length": fe.get("win_length"),
                          "hop_length": fe["hop_length"], "window": fe.get("window", "hann"),
                          "center": fe.get("center", True), "normalized": fe.get("normalized", False),
                          "n_mels": fe["n_mels"], "fmin": _whole(fe.get("fmin", 0)), "fmax": _whole(fe.get("fmax"))},
        "specaug": None, "specaug_conf": {},
        "normalize": config.normalize, "normalize_conf": normalize_conf,
        "model": "espnet", "model_conf": {"ctc_weight": 1.0},
        "preencoder": None, "preencoder_conf": {},
        "encoder": config.encoder, "encoder_conf": encoder_conf,
        "postencoder": None, "postencoder_conf": {},
        "decoder": None, "decoder_conf": {},
        "preprocessor": "default", "preprocessor_conf": {},
        "required": ["output_dir", "token_list"], "version": ESPNET_VERSION, "distributed": False,
    }


def _whole(value):
    """DefaultFrontend declares fmin/fmax Optional[int] (typeguard-checked): 0.0 is written as 0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def feats_stats(model, count: float) -> dict[str, np.ndarray]:
    """collect_stats' count/sum/sum_square that give GlobalMVN's mean and std back."""
    mean = model.normalize.mean.double().numpy()
    std = model.normalize.std.double().numpy()
    return {"count": np.asarray(int(count)), "sum": (mean * count).astype(np.float32),
            "sum_square": ((std ** 2 + mean ** 2) * count).astype(np.float32)}


def write_packed(model, profile, path: str, info: dict) -> None:
    name = profile.name
    exp = f"exp/asr_train_{name}"
    stats_name = "exp/asr_stats_raw/train/feats_stats.npz" if model.config.normalize == "global_mvn" else None
    fe = {k: v for k, v in profile.frontend.items() if k != "name"}
    mel = EspnetDefaultFrontend(EspnetFrontendParams(**fe)).mel_matrix()
    state = {"frontend.logmel.melmat": torch.from_numpy(mel), **half_precision(model.state_dict())}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    meta = {"espnet": ESPNET_VERSION, "files": {"asr_model_file": f"{exp}/valid.loss.ave.pth"},
            "python": platform.python_version(), "timestamp": float(info.get("timestamp", time.time())),
            "torch": str(torch.__version__), "yaml_files": {"asr_train_config": f"{exp}/config.yaml"}}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.yaml", yaml.safe_dump(meta, sort_keys=True))
        archive.writestr(f"{exp}/config.yaml",
                         yaml.safe_dump(espnet_config(model, profile, name, stats_name), sort_keys=False))
        archive.writestr(f"{exp}/valid.loss.ave.pth", buffer.getvalue())
        if stats_name:
            stats = io.BytesIO()
            np.savez(stats, **feats_stats(model, info.get("stats_count", 1)))
            archive.writestr(stats_name, stats.getvalue())
