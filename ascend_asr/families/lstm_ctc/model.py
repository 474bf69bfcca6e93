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

import torch
from torch import nn

from ...errors import CheckpointError
from ..checkpoints import half_precision, load_state_dict_strict, read_checkpoint
from ..safe_pickle import plain, restricted_load, stand_ins
from .config import LstmCtcConfig, config_from_package
from .io import IO

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "hardtanh": nn.Hardtanh}


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class LayerCNN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: tuple, stride: tuple, padding: tuple,
                 activation: str):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=padding)
        self.batch_norm = nn.BatchNorm2d(out_channels)
        self.activation = ACTIVATIONS[activation]()

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
    -> output1 log-probs [T', B, 41] (time-major), output_lengths [B] int32, both by the convolutions'
    time-axis arithmetic (ceil(T / 2) for ModelZoo's config).

    input_lengths only feeds output_lengths (the upstream graph has no length input; ModelZoo
    derives the decoded length from a frame ratio, which equals ceil(len / 2) for every length
    up to 390).
    """

    input_names = IO.input_names
    output_names = IO.output_names
    dynamic_axes = IO.dynamic_axes()

    def __init__(self, config: LstmCtcConfig = LstmCtcConfig()):
        super().__init__()
        self.config = config
        layers, channels, features = [], 1, config.input_size
        convs = zip(config.conv_channels, config.conv_kernels, config.conv_strides, config.conv_paddings)
        for n, (out_channels, kernel, stride, padding) in enumerate(convs):
            layers.append((str(n), LayerCNN(channels, out_channels, kernel, stride, padding, config.activation)))
            channels, features = out_channels, conv_output_size(features, kernel[1], stride[1], padding[1])
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
        return self.log_softmax(x), self.output_lengths(input_lengths)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Each convolution's time-axis arithmetic (ceil(len / 2) for ModelZoo's config)."""
        c = self.config
        for (k, _), (s, _), (p, _) in zip(c.conv_kernels, c.conv_strides, c.conv_paddings):
            lengths = torch.div(lengths + (2 * p - k), s, rounding_mode="floor") + 1
        return lengths

    def example_inputs(self, batch: int = 1, frames: int = 390):
        feats = torch.randn(batch, frames, self.config.input_size)
        lens = torch.full((batch,), frames, dtype=torch.int32)
        return feats, lens


MODULE_PREFIX = "module."  # nn.DataParallel


# torch.nn classes the training package names as values (rnn_type, activation functions)
TRAINING_PACKAGE_GLOBALS = (*(f"torch.nn.modules.rnn.{c}" for c in ("LSTM", "GRU", "RNN")),
                            *(f"torch.nn.modules.activation.{c}" for c in ("ReLU", "Hardtanh", "Tanh", "Sigmoid")))


def read_package(path: str):
    """The checkpoint as saved: a state dict, {'state_dict': ...}, or the training package."""
    try:
        return read_checkpoint(path)
    except CheckpointError:
        return restricted_load(path, stand_ins(TRAINING_PACKAGE_GLOBALS))


def config_of_checkpoint(path: str) -> LstmCtcConfig | None:
    """The config a training package records (rnn_param, cnn_param, num_class), or None for a state dict."""
    package = read_package(path)
    if isinstance(package, dict) and "rnn_param" in package:
        return config_from_package(plain(package), path)
    return None


def save_training_package(model: LstmCtc, path: str, info: dict) -> None:
    """What ModelZoo's CTC_Model.save_package writes: the parameters the model was built with plus its
    weights (fp16 here, for the shipped reference)."""
    c = model.config
    channels = list(zip((1, *c.conv_channels[:-1]), c.conv_channels))
    cnn = {"batch_norm": True, "activate_function": ACTIVATIONS[c.activation],
           "layer": [[io, k, s, p, None] for io, k, s, p in zip(channels, c.conv_kernels, c.conv_strides,
                                                                c.conv_paddings)]}
    torch.save({"rnn_param": {"rnn_input_size": c.input_size, "rnn_hidden_size": c.hidden_size,
                              "rnn_layers": c.num_layers, "rnn_type": nn.LSTM, "bidirectional": True,
                              "batch_norm": True},
                "add_cnn": True, "cnn_param": cnn, "num_class": c.num_classes, "_drop_out": 0.0,
                "epoch": info["epoch"], "state_dict": half_precision(model.state_dict())}, path)


def load_lstm_ctc_checkpoint(model: LstmCtc, path: str) -> LstmCtc:
    """Load a ModelZoo checkpoint ({'state_dict': ...} or a bare state dict) strictly into `model`.

    `module.` prefixes are stripped. The training script's full package also pickles torch.nn
    classes ('rnn_param': {'rnn_type': nn.LSTM}, activations in 'cnn_param'); it loads through the
    restricted unpickler, where those classes are inert stand-ins and nothing else may appear.
    """
    ckpt = read_package(path)
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
