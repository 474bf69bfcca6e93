"""ESPnet's feature normalisations (espnet2/layers/global_mvn.py, utterance_mvn.py) over valid frames.

GlobalMVN keeps `mean` and `std` buffers (from feats_stats.npz: mean = sum / count, std =
sqrt(max(sum_square / count - mean^2, eps))), subtracts the mean, zeroes padded frames and divides by std.
UtteranceMVN uses each utterance's own mean (and, with norm_vars, its standard deviation) over its valid
frames. Padded frames leave both as zeros here (ESPnet leaves -mean in utterance_mvn's padding; nothing
valid reads those frames).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def stats_from_npz(count, sums, sum_squares, eps: float = 1.0e-20) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) as GlobalMVN derives them from collect_stats' feats_stats.npz."""
    mean = np.asarray(sums, dtype=np.float64) / count
    var = np.asarray(sum_squares, dtype=np.float64) / count - mean * mean
    return mean, np.sqrt(np.maximum(var, eps))


class GlobalMVN(nn.Module):
    def __init__(self, size: int, norm_means: bool = True, norm_vars: bool = True):
        super().__init__()
        self.norm_means, self.norm_vars = norm_means, norm_vars
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def forward(self, x: torch.Tensor, keep: torch.Tensor):
        if self.norm_means:
            x = x - self.mean.to(x.dtype)
        x = x * keep
        if self.norm_vars:
            x = x / self.std.to(x.dtype)
        return x


class UtteranceMVN(nn.Module):
    def __init__(self, norm_means: bool = True, norm_vars: bool = False, eps: float = 1.0e-20):
        super().__init__()
        self.norm_means, self.norm_vars, self.eps = norm_means, norm_vars, eps

    def forward(self, x: torch.Tensor, keep: torch.Tensor):
        count = keep.sum(dim=1, keepdim=True).clamp(min=1.0)
        x = x * keep
        mean = x.sum(dim=1, keepdim=True) / count
        centred = (x - mean) * keep
        if self.norm_vars:
            std = torch.clamp((centred.pow(2).sum(dim=1, keepdim=True) / count).sqrt(), min=self.eps)
            out = (centred / std) if self.norm_means else (x / std)
        else:
            out = centred if self.norm_means else x
        return out * keep
