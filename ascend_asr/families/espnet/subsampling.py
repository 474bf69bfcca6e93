"""ESPnet's Conv2dSubsampling (conv2d: /4), Conv2dSubsampling6 and Conv2dSubsampling8
(espnet/nets/pytorch_backend/transformer/subsampling.py), with ESPnet's module and parameter names.

Output lengths follow the convolutions: an output frame is valid when every input frame it reads is, which
is what ESPnet's mask slicing (`mask[:, :, :-2:2][:, :, :-2:2]`) gives an utterance alone:
conv2d ((T-1)//2 - 1)//2, conv2d6 ((T-1)//2 - 2)//3, conv2d8 (((T-1)//2 - 1)//2 - 1)//2. ESPnet slices the
mask of a padded batch instead, which counts up to one frame per stage more for an utterance followed by
padding; those frames read padding, so they are left out here and a padded batch gives each utterance
its own result.
"""
from __future__ import annotations

import torch
from torch import nn

# (kernel, stride) of each Conv2d, in order, per input layer
STAGES = {"conv2d": ((3, 2), (3, 2)), "conv2d6": ((3, 2), (5, 3)), "conv2d8": ((3, 2), (3, 2), (3, 2))}
# frames ESPnet's check_short_utt requires (it raises TooShortUttError below them)
MIN_FRAMES = {"conv2d": 7, "conv2d6": 11, "conv2d8": 15}


def conv_length(length, kernel: int, stride: int):
    """Frames of a kernel/stride convolution without padding: (L - kernel) // stride + 1, 0 when L < kernel.
    Lengths are never negative, so the division truncates (one integer Div in the graph, no floor logic)."""
    if not isinstance(length, torch.Tensor):
        return (length - kernel) // stride + 1 if length >= kernel else 0
    frames = torch.div((length - kernel).clamp(min=0), stride, rounding_mode="trunc") + 1
    return torch.where(length >= kernel, frames, torch.zeros_like(frames))


def subsampled_length(length, input_layer: str):
    for kernel, stride in STAGES[input_layer]:
        length = conv_length(length, kernel, stride)
    return length


class Conv2dSubsampling(nn.Module):
    """x [B, T, idim] -> [B, T', odim], then the position encoding (rel encodings return (x, pos_emb))."""

    def __init__(self, idim: int, odim: int, input_layer: str, pos_enc: nn.Module):
        super().__init__()
        self.input_layer = input_layer
        layers, freq = [], idim
        for i, (kernel, stride) in enumerate(STAGES[input_layer]):
            layers += [nn.Conv2d(1 if i == 0 else odim, odim, kernel, stride), nn.ReLU()]
            freq = (freq - kernel) // stride + 1
        if freq < 1:
            raise ValueError(f"{input_layer} needs more than {idim} features")
        self.conv = nn.Sequential(*layers)
        linear = nn.Linear(odim * freq, odim)
        if input_layer == "conv2d8":  # Conv2dSubsampling8 keeps the linear and the encoding apart
            self.out, self.pos_enc = linear, pos_enc
        else:
            self.out = nn.Sequential(linear, pos_enc)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = self.conv(x.unsqueeze(1))  # [B, C, T', F']
        b, c, t, f = x.size()
        lengths = subsampled_length(lengths, self.input_layer)
        if self.input_layer == "conv2d8":
            x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
            return self.pos_enc(x, lengths) if self.pos_enc.needs_lengths else self.pos_enc(x), lengths
        linear, pos_enc = self.out
        x = linear(x.transpose(1, 2).reshape(b, t, c * f))
        return pos_enc(x, lengths) if pos_enc.needs_lengths else pos_enc(x), lengths
