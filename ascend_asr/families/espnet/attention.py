"""ESPnet's multi-head attentions (espnet/nets/pytorch_backend/transformer/attention.py) with its parameter
names: MultiHeadedAttention (selfattn), RelPositionMultiHeadedAttention (rel_selfattn, "latest") and
LegacyRelPositionMultiHeadedAttention (legacy_rel_selfattn).

`mask` is [B, 1, T] (True on valid frames), as ESPnet's. ESPnet fills the scores of padded keys with the
float32 minimum before the softmax and zeroes their weights after it; here -10000 is added to them, which
gives the same exact zeros (exp underflows) in float32 and float16, never NaN when an utterance has no
valid frame (the zero-filled runs of ATC), and the additive form onnxruntime's attention fusion knows.
"""
from __future__ import annotations

import math

import torch
from torch import nn


MASKED = -10000.0  # exp(MASKED + score - max) is 0 in float32 and float16: a padded key gets no weight


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """[B, 1, 1, T] additive bias: 0 on valid keys, MASKED on padding (the form onnxruntime's attention
    fusion recognises; ESPnet fills the float minimum instead, with the same zero weights)."""
    return (1.0 - mask.unsqueeze(1).to(torch.float32)) * MASKED


class MultiHeadedAttention(nn.Module):
    def __init__(self, n_head: int, n_feat: int):
        super().__init__()
        self.d_k, self.h = n_feat // n_head, n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)

    def forward_qkv(self, query, key, value):
        """[B, H, T, d_k] each."""
        b = query.size(0)
        q = self.linear_q(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
        k = self.linear_k(key).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(value).view(b, -1, self.h, self.d_k).transpose(1, 2)
        return q, k, v

    def forward_attention(self, value, scores, mask):
        b = value.size(0)
        x = torch.matmul(torch.softmax(scores + attention_bias(mask), dim=-1), value)  # [B, H, T, d_k]
        return self.linear_out(x.transpose(1, 2).reshape(b, -1, self.h * self.d_k))

    def forward(self, query, key, value, mask):
        q, k, v = self.forward_qkv(query, key, value)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        return self.forward_attention(v, scores, mask)


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    """Transformer-XL style scores with the relative encodings of RelPositionalEncoding (2T-1 positions)."""

    def __init__(self, n_head: int, n_feat: int, zero_triu: bool = False):
        super().__init__(n_head, n_feat)
        self.zero_triu = zero_triu
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(self.h, self.d_k))

    def rel_shift(self, x):
        """ESPnet's shift: [B, H, T, P] -> [B, H, T, T], row i taking the columns of relative positions i - j.
        P = 2T-1 (latest)."""
        b, h, t, p = x.size()
        padded = torch.cat([torch.zeros_like(x[..., :1]), x], dim=-1)  # [B, H, T, P+1]
        shifted = padded.reshape(b, h, p + 1, t)[:, :, 1:].reshape(b, h, t, p)
        shifted = shifted[:, :, :, : p // 2 + 1]
        if self.zero_triu:
            ones = torch.ones_like(shifted[0, 0])
            shifted = shifted * torch.tril(ones, shifted.size(3) - shifted.size(2))
        return shifted

    def forward(self, query, key, value, pos_emb, mask):
        q, k, v = self.forward_qkv(query, key, value)
        q = q.transpose(1, 2)  # [B, T, H, d_k]
        p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        matrix_ac = torch.matmul(q_u, k.transpose(-2, -1))
        matrix_bd = self.rel_shift(torch.matmul(q_v, p.transpose(-2, -1)))
        return self.forward_attention(v, (matrix_ac + matrix_bd) / math.sqrt(self.d_k), mask)


class LegacyRelPositionMultiHeadedAttention(RelPositionMultiHeadedAttention):
    """The pre-2021 form (espnet PR 2816), as ESPnet computes it for each utterance alone.

    Upstream's shift of q_v . p^T [T, T] (zero column, reshape, drop a row) gives, for an utterance of n
    frames: at j <= i the encoding of offset i - j read from row i (position L - n + i - j), at j = i + 1
    zero, at j >= i + 2 the encoding at index j - i - 2 read from row i + 1 (a wrap into the next row).
    The same three parts are gathered here from per-utterance encodings (LegacyRelPositionalEncoding), so
    a padded batch gives each utterance its own result.
    """

    def forward(self, query, key, value, pos_emb, mask):
        lower_pe, upper_pe = pos_emb
        q, k, v = self.forward_qkv(query, key, value)
        b, h, t, _ = q.size()
        q = q.transpose(1, 2)
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)                        # [B, H, T, d_k]
        matrix_ac = torch.matmul(q_u, k.transpose(-2, -1))

        def project(pe):
            return self.linear_pos(pe).view(b, -1, self.h, self.d_k).permute(0, 2, 3, 1)  # [B, H, d_k, T]

        rows = frame_positions_like(q_v)
        offset = rows.unsqueeze(1) - rows.unsqueeze(0)                      # i - j
        by_offset = torch.matmul(q_v, project(lower_pe))                   # [B, H, T, k]
        lower = torch.gather(by_offset, 3, offset.clamp(min=0).expand(b, h, t, t))
        bd = lower.masked_fill(offset < 0, 0.0)
        if not self.zero_triu:
            next_row = torch.cat([q_v[:, :, 1:], torch.zeros_like(q_v[:, :, :1])], dim=2)
            by_index = torch.matmul(next_row, project(upper_pe))
            upper = torch.gather(by_index, 3, (-offset - 2).clamp(min=0).expand(b, h, t, t))
            bd = bd + upper.masked_fill(offset > -2, 0.0)
        return self.forward_attention(v, (matrix_ac + bd) / math.sqrt(self.d_k), mask)


def frame_positions_like(x: torch.Tensor) -> torch.Tensor:
    """0 .. T-1 (int64) for x [B, H, T, D]."""
    return torch.cumsum(torch.ones_like(x[0, 0, :, 0], dtype=torch.int64), dim=0) - 1
