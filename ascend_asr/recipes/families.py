"""Per model family: its reference profile, training outputs, and upstream checkpoint format."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..models.deepspeech2 import output_lengths
from ..models.deepspeech_checkpoint import write_lightning_checkpoint
from ..profiles import Profile


def _half(state: dict) -> dict:
    """fp16 storage for the shipped fixture; every loader casts back to float32."""
    return {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in state.items()}


def jasper_outputs(model, inputs):
    log_probs, lens = model(*inputs)
    return log_probs.transpose(0, 1), lens.long()


def deepspeech2_outputs(model, inputs):
    spect, lengths = inputs
    return torch.log_softmax(model.logits(spect, lengths), dim=-1).transpose(0, 1), output_lengths(lengths.long())


def lstm_ctc_outputs(model, inputs):
    log_probs, lens = model(*inputs)
    return log_probs, lens.long()


def save_jasper(model: nn.Module, profile: Profile, path: str, info: dict) -> None:
    """NVIDIA DeepLearningExamples' Jasper checkpoint: {'epoch', 'step', 'best_wer', 'state_dict'}."""
    torch.save({"epoch": info["epoch"], "step": info["step"], "best_wer": info.get("wer"),
                "state_dict": _half(model.state_dict())}, path)


def save_deepspeech2(model: nn.Module, profile: Profile, path: str, info: dict) -> None:
    """deepspeech.pytorch V3.0's PyTorch Lightning checkpoint."""
    labels = list(profile.vocabulary.labels)
    write_lightning_checkpoint(path, _half(model.state_dict()), labels, model.config.hidden_size,
                               model.config.hidden_layers, dict(sample_rate=profile.frontend["sample_rate"],
                                                                window_size=profile.frontend["window_size"],
                                                                window_stride=profile.frontend["window_stride"],
                                                                window=profile.frontend["window"]),
                               epoch=info["epoch"], global_step=info["step"], learning_rate=info["learning_rate"],
                               score=info.get("wer"))


def save_lstm_ctc(model: nn.Module, profile: Profile, path: str, info: dict) -> None:
    """ModelZoo LSTM's training package: the parameters it was built with plus 'state_dict'."""
    cfg = model.config
    torch.save({"cnn_param": {"layer": [[list(cfg.conv_channels)]], "activate_function": nn.ReLU},
                "rnn_param": {"rnn_input_size": cfg.input_size, "rnn_hidden_size": cfg.hidden_size,
                              "rnn_layers": cfg.num_layers, "rnn_type": nn.LSTM, "bidirectional": True,
                              "batch_norm": True},
                "num_class": cfg.num_classes, "_drop_out": 0.0, "epoch": info["epoch"],
                "state_dict": _half(model.state_dict())}, path)


@dataclass(frozen=True)
class Family:
    name: str
    profile: str
    outputs: Callable          # (model, input tensors) -> (log-probs [T, B, C], output lengths)
    save: Callable             # (model, profile, path, info) -> None, the upstream format
    checkpoint_name: str
    epochs: int
    batch_frames: int          # padded frames per batch (batch size x longest utterance)
    learning_rate: float
    pad_to_gear: bool = False  # pad batches to a compiled frame gear, as inference does (no length masking)


FAMILIES = {
    "jasper": Family("jasper", "jasper_small", jasper_outputs, save_jasper, "jasper_small.pt",
                     epochs=20, batch_frames=12000, learning_rate=3e-3),
    "deepspeech2": Family("deepspeech2", "deepspeech2_small", deepspeech2_outputs, save_deepspeech2,
                          "deepspeech2_small.ckpt", epochs=7, batch_frames=12000, learning_rate=1.5e-3),
    "lstm_ctc": Family("lstm_ctc", "lstm_ctc_char", lstm_ctc_outputs, save_lstm_ctc, "lstm_ctc_char.pth.tar",
                       epochs=12, batch_frames=6000, learning_rate=1.5e-3, pad_to_gear=True),
}
