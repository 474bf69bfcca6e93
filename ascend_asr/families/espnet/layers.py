"""The pieces ESPnet's encoder layers share: LayerNorm (eps 1e-12), the position-wise feed-forward, the
activations of `get_activation`, and the Conformer convolution module with its BatchNorm.

The convolution module is ESPnet's (pointwise conv, GLU, depthwise conv, BatchNorm, activation, pointwise
conv) with one addition: frames beyond an utterance's length are zeroed before the depthwise convolution.
ESPnet does not mask there, so in its padded batches the last valid frames of a shorter utterance read
the padding's values; zeroed, they read what an utterance alone reads (the convolution's zero padding).
"""
from __future__ import annotations

import torch
from torch import nn


class LayerNorm(nn.LayerNorm):
    def __init__(self, size: int):
        super().__init__(size, eps=1e-12)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


ACTIVATIONS = {"swish": Swish, "relu": nn.ReLU, "tanh": nn.Tanh, "hardtanh": nn.Hardtanh, "selu": nn.SELU}


class PositionwiseFeedForward(nn.Module):
    def __init__(self, idim: int, hidden_units: int, activation: nn.Module):
        super().__init__()
        self.w_1 = nn.Linear(idim, hidden_units)
        self.w_2 = nn.Linear(hidden_units, idim)
        self.activation = activation

    def forward(self, x):
        return self.w_2(self.activation(self.w_1(x)))


class ConvolutionModule(nn.Module):
    def __init__(self, channels: int, kernel_size: int, activation: nn.Module):
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, kernel_size=1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        self.norm = nn.BatchNorm1d(channels)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, kernel_size=1)
        self.activation = activation

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        """x [B, T, C], mask [B, 1, T] (True on valid frames)."""
        x = nn.functional.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        x = x.masked_fill(~mask, 0.0)
        x = self.activation(self.norm(self.depthwise_conv(x)))
        return self.pointwise_conv2(x).transpose(1, 2)


def valid_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, 1, T]: True on each utterance's first `length` frames (ESPnet's ~make_pad_mask(lengths)[:, None])."""
    positions = torch.arange(frames, device=lengths.device).unsqueeze(0)
    return (positions < lengths.unsqueeze(1).to(positions.dtype)).unsqueeze(1)
