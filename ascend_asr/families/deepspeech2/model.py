"""DeepSpeech2 as deepspeech.pytorch V3.0 builds it, with its state-dict names, exportable with real lengths.

Upstream packs each batch for its LSTMs and masks the convolutions with a Python loop over
`length.item()`; traced to ONNX that loop bakes the dummy's length in (ModelZoo's export masks
for 621 frames whatever the input). Here the mask is a comparison with the lengths, and each
bidirectional LSTM runs its backward direction on every sequence reversed within its own
length, so padding never reaches a real frame, in PyTorch and in the exported graph alike.
"""
from __future__ import annotations

import torch
from torch import nn

from ...errors import CheckpointError
from ..checkpoints import load_state_dict_strict
from .config import DeepSpeech2Config, config_from_hyper_parameters
from .io import IO
from .lightning import read_lightning_checkpoint

# deepspeech.pytorch's supported_rnns, and the one-direction kernel each runs
RNN_MODULES = {"lstm": (nn.LSTM, torch._VF.lstm), "gru": (nn.GRU, torch._VF.gru), "rnn": (nn.RNN, torch._VF.rnn_tanh)}

def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """floor((T - 1) / 2) + 1: the time stride of the first convolution (ModelZoo's int(T / 2) is off by one)."""
    return torch.div(lengths - 1, 2, rounding_mode="floor") + 1


def time_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, T] True where t < length."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


class SequenceWise(nn.Module):
    """Apply a module to [T*N, H] rows of a [T, N, H] sequence."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        t, n = x.size(0), x.size(1)
        return self.module(x.reshape(t * n, -1)).reshape(t, n, -1)


class MaskConv(nn.Module):
    """Zero every time step at or beyond the output length after each module."""

    def __init__(self, seq_module: nn.Sequential):
        super().__init__()
        self.seq_module = seq_module

    def forward(self, x, lengths):
        for module in self.seq_module:
            x = module(x)
            x = x * time_mask(lengths, x.size(3))[:, None, None, :].to(x.dtype)
        return x


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [T, N, H] with each sequence's first `length` steps reversed; padding stays in place."""
    t = torch.arange(x.size(0), device=x.device)[:, None]  # [T, 1]
    index = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [T, N]
    return torch.gather(x, 0, index[:, :, None].expand(-1, -1, x.size(2)))


class BatchRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, batch_norm: bool = True, rnn_type: str = "lstm"):
        super().__init__()
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        module, self.kernel = RNN_MODULES[rnn_type]
        self.is_lstm = rnn_type == "lstm"
        self.rnn = module(input_size=input_size, hidden_size=hidden_size, bidirectional=True, bias=True)

    def _direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        rnn = self.rnn
        weights = [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zeros = x.new_zeros(1, x.size(1), rnn.hidden_size)
        state = (zeros, zeros) if self.is_lstm else zeros
        return self.kernel(x, state, weights, True, 1, 0.0, False, False, False)[0]

    def forward(self, x, lengths):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        forward = self._direction(x, "")  # causal: padding comes after every real step
        backward = reverse_within_lengths(self._direction(reverse_within_lengths(x, lengths), "_reverse"), lengths)
        # directions summed, padding zeroed as pad_packed_sequence leaves it
        return (forward + backward) * time_mask(lengths, x.size(0)).T[:, :, None].to(x.dtype)


class DeepSpeech2(nn.Module):
    """[B, 1, 161, T] spectrogram + [B] lengths -> [B, T', 29] softmax probabilities, T' = floor((T-1)/2)+1."""

    input_names = IO.input_names
    output_names = IO.output_names
    dynamic_axes = IO.dynamic_axes()

    def __init__(self, config: DeepSpeech2Config = DeepSpeech2Config()):
        super().__init__()
        self.config = config
        self.conv = MaskConv(nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(32, 32, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20, inplace=True)))
        hidden = config.hidden_size
        self.rnns = nn.Sequential(BatchRNN(config.rnn_input_size, hidden, batch_norm=False, rnn_type=config.rnn_type),
                                  *(BatchRNN(hidden, hidden, rnn_type=config.rnn_type)
                                    for _ in range(config.hidden_layers - 1)))
        self.fc = nn.Sequential(SequenceWise(nn.Sequential(nn.BatchNorm1d(hidden),
                                                           nn.Linear(hidden, config.num_classes, bias=False))))

    def forward(self, spect: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(spect, lengths), dim=-1)  # InferenceBatchSoftmax: softmax at inference

    def logits(self, spect: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T', classes] scores before the softmax: what training's CTC loss takes."""
        out_lengths = output_lengths(lengths.to(torch.int64))
        x = self.conv(spect, out_lengths)
        b, c, f, t = x.shape
        x = x.reshape(b, c * f, t).permute(2, 0, 1)  # [T, B, C*F]
        for rnn in self.rnns:
            x = rnn(x, out_lengths)
        return self.fc(x).transpose(0, 1)

    def example_inputs(self, batch: int = 1, frames: int = 256):
        return (torch.randn(batch, 1, self.config.feature_size, frames),
                torch.full((batch,), frames, dtype=torch.int32))


def config_of_checkpoint(path: str):
    """(config, labels, spectrogram parameters) from a V3.0 checkpoint's hyper_parameters, or None for a
    bare state dict (which carries no hyper-parameters)."""
    checkpoint = read_lightning_checkpoint(path)
    if isinstance(checkpoint, dict) and "hyper_parameters" in checkpoint:
        return config_from_hyper_parameters(checkpoint["hyper_parameters"], path)
    return None


def load_deepspeech2_checkpoint(model: DeepSpeech2, path: str) -> DeepSpeech2:
    """A deepspeech.pytorch Lightning checkpoint (or a bare state dict), loaded strictly."""
    checkpoint = read_lightning_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no state_dict of tensors in it; expected a deepspeech.pytorch checkpoint")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    load_state_dict_strict(model, state, path)
    return model.train(False)
