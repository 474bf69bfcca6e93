"""ESPnet's sinusoidal position encodings (espnet/nets/pytorch_backend/transformer/embedding.py), computed in
the graph from the sequence length, so no table caps the length.

ESPnet keeps a table of `max_len` rows (5000) and extends it when a longer input arrives; each row is
sin/cos(position * div_term) in float32, interleaved (even channels sin, odd cos). The same products are
computed here for the positions a forward needs, which gives ESPnet's values for any length:
- PositionalEncoding (abs_pos): positions 0 .. T-1, x * sqrt(d) + pe;
- RelPositionalEncoding (rel_pos, latest): relative positions T-1 down to -(T-1), 2T-1 rows;
- LegacyRelPositionalEncoding (legacy_rel_pos): ESPnet builds the table counting down from its size, so
  position t is (max(max_len, T) - 1 - t): the values depend on max_len and on the length, as upstream's
  do; they are computed per utterance (see the class).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoids(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """[N, d_model]: sin(p * div) at even channels, cos(p * div) at odd ones, for float32 positions [N]."""
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    angles = positions.to(torch.float32).unsqueeze(1) * div_term.to(positions.device)
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=2).reshape(-1, d_model)


def frame_positions(x: torch.Tensor) -> torch.Tensor:
    """0 .. T-1 for x [B, T, D], as a traced (dynamic) range."""
    ones = torch.ones_like(x[0, :, 0])
    return torch.cumsum(ones, dim=0) - 1


class PositionalEncoding(nn.Module):
    """abs_pos: x * sqrt(d) + pe[0:T]."""

    needs_lengths = False

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model, self.xscale = d_model, math.sqrt(d_model)

    def forward(self, x: torch.Tensor):
        return x * self.xscale + sinusoids(frame_positions(x), self.d_model).unsqueeze(0)


class RelPositionalEncoding(nn.Module):
    """rel_pos (latest): (x * sqrt(d), pe at relative positions T-1 .. -(T-1)) [1, 2T-1, d]."""

    needs_lengths = False

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model, self.xscale = d_model, math.sqrt(d_model)

    def forward(self, x: torch.Tensor):
        t = frame_positions(x)
        last = t[-1:]  # T - 1
        relative = torch.cat([last - t, -(t[1:])])  # T-1 .. 0, then -1 .. -(T-1)
        return x * self.xscale, sinusoids(relative, self.d_model).unsqueeze(0)


class LegacyRelPositionalEncoding(nn.Module):
    """legacy_rel_pos: x * sqrt(d), and the encodings LegacyRelPositionMultiHeadedAttention reads.

    ESPnet gives an utterance of n frames the encodings of positions L-1 .. L-n, L = max(max_len, n), and its
    legacy shift pairs frames i >= j with position L - n + (i - j): the encoding of an offset depends on the
    utterance's own length. In a padded batch ESPnet uses the padded length there, so every frame of a
    shorter utterance changes. Here each utterance gets its own: (lower [B, T, d], upper [B, T, d]) with
    lower[b, k] = pe(L_b - n_b + k) for offsets k = i - j, and upper[b, k] = pe(L_b - 1 - k), which the
    shift reads above the diagonal (offsets j - i = k + 2, from query row i + 1).
    """

    needs_lengths = True

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model, self.xscale, self.max_len = d_model, math.sqrt(d_model), max_len

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        t = frame_positions(x).unsqueeze(0)                                  # [1, T]
        n = lengths.to(torch.float32).unsqueeze(1)                           # [B, 1]
        table = torch.clamp(n, min=float(self.max_len))                      # L_b: ESPnet's table size
        lower = sinusoids((table - n + t).reshape(-1), self.d_model)
        upper = sinusoids((table - 1 - t).reshape(-1), self.d_model)
        shape = (x.size(0), x.size(1), self.d_model)
        return x * self.xscale, (lower.reshape(shape), upper.reshape(shape))
