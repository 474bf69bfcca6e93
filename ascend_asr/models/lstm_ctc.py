"""LSTM-CTC phone recognizer (ModelZoo `LSTM_ID0468_for_PyTorch` `models/model_ctc.py`), for inference and export.

The ModelZoo version, not Diamondfan/CTC_pytorch's: each "bidirectional" layer is two
unidirectional bias-free LSTMs, `rnn` over the frames and `rnn_w` over the time-flipped frames.
Module names follow that code, so its state dict loads as is (after `module.` is stripped):

    conv.{0,1}.conv.{weight,bias}                           Conv2d 3x3, strides (1,2) and (2,2), padding 1
    conv.{0,1}.batch_norm.{weight,bias,running_mean,running_var,num_batches_tracked}   BatchNorm2d
    rnns.{0..3}.rnn.{weight_ih_l0,weight_hh_l0}             nn.LSTM(bias=False), forward in time
    rnns.{0..3}.rnn_w.{weight_ih_l0,weight_hh_l0}           nn.LSTM(bias=False), on the flipped input
    rnns.{1..3}.batch_norm.{weight,bias,running_mean,running_var,num_batches_tracked}  BatchNorm1d (not layer 0)
    fc.0.{weight,bias,running_mean,running_var,num_batches_tracked}                    BatchNorm1d
    fc.1.weight                                             Linear, no bias

There are no sequence lengths inside: the backward LSTM starts in the zero padding of the
390-frame input, so the scores of an utterance depend on the padded frame count (one frame gear)
but never on the other utterances of its batch.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CheckpointError
from .checkpoints import load_state_dict_strict, read_checkpoint
from .safe_pickle import restricted_load, stand_ins

NUM_CLASSES = 41  # blank, UNK and the 39 folded TIMIT phones
FEATURE_SIZE = 243  # 81-dim Kaldi fbank spliced with 2 frames of right context
CONV_STRIDES = ((1, 2), (2, 2))  # (time, feature); ctc_config.yaml stride
KERNEL, PADDING = 3, 1


@dataclass(frozen=True)
class LstmCtcConfig:
    input_size: int = FEATURE_SIZE
    hidden_size: int = 384
    num_layers: int = 4
    num_classes: int = NUM_CLASSES
    conv_channels: tuple = (32, 32)


def lstm_ctc() -> LstmCtcConfig:
    """ModelZoo conf/ctc_config.yaml."""
    return LstmCtcConfig()


def lstm_ctc_small() -> LstmCtcConfig:
    """The same structure and key names, small enough for tests."""
    return LstmCtcConfig(hidden_size=32, conv_channels=(8, 8))


def lstm_ctc_char() -> LstmCtcConfig:
    """A character-vocabulary variant (blank, UNK, space, a-z, apostrophe): the trained reference."""
    return LstmCtcConfig(hidden_size=160, num_layers=3, num_classes=30, conv_channels=(16, 16))


CONFIGS = {"lstm_ctc": lstm_ctc, "lstm_ctc_small": lstm_ctc_small, "lstm_ctc_char": lstm_ctc_char}


def conv_output_size(size: int, stride: int) -> int:
    return (size + 2 * PADDING - KERNEL) // stride + 1


class LayerCNN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: tuple):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=KERNEL, stride=stride, padding=PADDING)
        self.batch_norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, x):
        return self.activation(self.batch_norm(self.conv(x)))


class BatchRNN(nn.Module):
    """[T, B, C] -> [T, B, 2H]: optional BatchNorm over channels, then forward and flipped LSTMs."""

    def __init__(self, input_size: int, hidden_size: int, batch_norm: bool):
        super().__init__()
        self.batch_norm = nn.BatchNorm1d(input_size) if batch_norm else None
        self.rnn = nn.LSTM(input_size=input_size, hidden_size=hidden_size, bias=False)
        self.rnn_w = nn.LSTM(input_size=input_size, hidden_size=hidden_size, bias=False)

    def forward(self, x):
        if self.batch_norm is not None:
            x = self.batch_norm(x.transpose(-1, -2)).transpose(-1, -2)
        forward, _ = self.rnn(x)
        backward, _ = self.rnn_w(torch.flip(x, [0]))
        return torch.cat((forward, torch.flip(backward, [0])), 2)


class LstmCtc(nn.Module):
    """actual_input_1 [B, T, 243] float32, input_lengths [B] int32
    -> output1 log-probs [ceil(T/2), B, 41] (time-major), output_lengths [B] int32 = ceil(len / 2).

    input_lengths only feeds output_lengths (the upstream graph has no length input; ModelZoo
    derives the decoded length from a frame ratio, which equals ceil(len / 2) for every length
    up to 390).
    """

    input_names = ("actual_input_1", "input_lengths")
    output_names = ("output1", "output_lengths")
    dynamic_axes = {"actual_input_1": {0: "batch", 1: "frames"}, "input_lengths": {0: "batch"},
                    "output1": {0: "out_frames", 1: "batch"}, "output_lengths": {0: "batch"}}

    def __init__(self, config: LstmCtcConfig = LstmCtcConfig()):
        super().__init__()
        self.config = config
        layers, channels, features = [], 1, config.input_size
        for n, (out_channels, stride) in enumerate(zip(config.conv_channels, CONV_STRIDES)):
            layers.append((str(n), LayerCNN(channels, out_channels, stride)))
            channels, features = out_channels, conv_output_size(features, stride[1])
        self.conv = nn.Sequential(OrderedDict(layers))
        rnn_width = 2 * config.hidden_size
        self.rnns = nn.Sequential(OrderedDict(
            (str(i), BatchRNN(channels * features if i == 0 else rnn_width, config.hidden_size, batch_norm=i > 0))
            for i in range(config.num_layers)))
        self.fc = nn.Sequential(nn.BatchNorm1d(rnn_width), nn.Linear(rnn_width, config.num_classes, bias=False))
        self.log_softmax = nn.LogSoftmax(dim=-1)

    def forward(self, actual_input_1: torch.Tensor, input_lengths: torch.Tensor):
        x = self.conv(actual_input_1.unsqueeze(1))  # [B, C, T', F']
        x = x.transpose(1, 2).flatten(2)  # [B, T', C * F'], channel-major as upstream's view
        x = self.rnns(x.transpose(0, 1))  # [T', B, 2H]
        frames, batch, width = x.shape
        x = self.fc(x.reshape(frames * batch, width)).reshape(frames, batch, self.config.num_classes)
        # the second conv's time stride of 2 with padding 1: floor((len - 1) / 2) + 1 = ceil(len / 2)
        return self.log_softmax(x), (input_lengths + 1) // 2

    def example_inputs(self, batch: int = 1, frames: int = 390):
        feats = torch.randn(batch, frames, self.config.input_size)
        lens = torch.full((batch,), frames, dtype=torch.int32)
        return feats, lens


MODULE_PREFIX = "module."  # nn.DataParallel


# torch.nn classes the training package names as values (rnn_type, activation functions)
TRAINING_PACKAGE_GLOBALS = (*(f"torch.nn.modules.rnn.{c}" for c in ("LSTM", "GRU", "RNN")),
                            *(f"torch.nn.modules.activation.{c}" for c in ("ReLU", "Hardtanh", "Tanh", "Sigmoid")))


def load_lstm_ctc_checkpoint(model: LstmCtc, path: str) -> LstmCtc:
    """Load a ModelZoo checkpoint ({'state_dict': ...} or a bare state dict) strictly into `model`.

    `module.` prefixes are stripped. The training script's full package also pickles torch.nn
    classes ('rnn_param': {'rnn_type': nn.LSTM}, activations in 'cnn_param'); it loads through the
    restricted unpickler, where those classes are inert stand-ins and nothing else may appear.
    """
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError:
        ckpt = restricted_load(path, stand_ins(TRAINING_PACKAGE_GLOBALS))
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        state = ckpt["state_dict"]
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt  # a bare state dict
    else:
        found = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected {{'state_dict': ...}} or a state dict, found {found}")
    state = {(k[len(MODULE_PREFIX):] if k.startswith(MODULE_PREFIX) else k): v.float() if v.is_floating_point() else v
             for k, v in state.items()}
    load_state_dict_strict(model, state, f"{path} (state_dict)")
    return model.train(False)  # inference mode
