"""Model families: builders by config name, and their checkpoint loaders."""
from __future__ import annotations

import torch

from ..errors import ProfileError
from . import deepspeech2, jasper, lstm_ctc

FAMILIES = {
    "jasper": (jasper.Jasper, jasper.CONFIGS, jasper.load_jasper_checkpoint),
    "deepspeech2": (deepspeech2.DeepSpeech2, deepspeech2.CONFIGS, deepspeech2.load_deepspeech2_checkpoint),
    "lstm_ctc": (lstm_ctc.LstmCtc, lstm_ctc.CONFIGS, lstm_ctc.load_lstm_ctc_checkpoint),
}


def build_model(family: str, config: str) -> torch.nn.Module:
    if family not in FAMILIES:
        raise ProfileError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    model_cls, configs, _ = FAMILIES[family]
    if config not in configs:
        raise ProfileError(f"unknown {family} config {config!r}; known: {sorted(configs)}")
    return model_cls(configs[config]()).train(False)  # inference mode


def load_model(family: str, config: str, checkpoint: str) -> torch.nn.Module:
    """Build the model and load `checkpoint` into it strictly (its upstream format)."""
    model = build_model(family, config)
    return FAMILIES[family][2](model, checkpoint)
