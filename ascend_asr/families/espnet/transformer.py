"""ESPnet2's TransformerEncoder (espnet2/asr/encoder/transformer_encoder.py) for CTC inference:
Conv2dSubsampling with absolute positions, `num_blocks` EncoderLayers (self-attention, ReLU feed-forward,
pre- or post-LayerNorm, optional concat_after), `after_norm` when normalize_before."""
from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadedAttention
from .embedding import PositionalEncoding
from .layers import LayerNorm, PositionwiseFeedForward, valid_mask
from .subsampling import Conv2dSubsampling


class TransformerEncoderLayer(nn.Module):
    def __init__(self, size: int, self_attn: nn.Module, feed_forward: nn.Module, normalize_before: bool,
                 concat_after: bool):
        super().__init__()
        self.self_attn, self.feed_forward = self_attn, feed_forward
        self.norm1, self.norm2 = LayerNorm(size), LayerNorm(size)
        self.normalize_before, self.concat_after = normalize_before, concat_after
        if concat_after:
            self.concat_linear = nn.Linear(size + size, size)

    def forward(self, x, mask):
        residual = x
        if self.normalize_before:
            x = self.norm1(x)
        if self.concat_after:
            x = residual + self.concat_linear(torch.cat((x, self.self_attn(x, x, x, mask)), dim=-1))
        else:
            x = residual + self.self_attn(x, x, x, mask)
        if not self.normalize_before:
            x = self.norm1(x)
        residual = x
        if self.normalize_before:
            x = self.norm2(x)
        x = residual + self.feed_forward(x)
        if not self.normalize_before:
            x = self.norm2(x)
        return x


class TransformerEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.output_size
        self.embed = Conv2dSubsampling(config.input_size, d, config.input_layer,
                                       PositionalEncoding(d, config.max_pos_emb_len))
        self.encoders = nn.ModuleList(
            TransformerEncoderLayer(d, MultiHeadedAttention(config.attention_heads, d),
                                    PositionwiseFeedForward(d, config.linear_units, nn.ReLU()),
                                    config.normalize_before, config.concat_after)
            for _ in range(config.num_blocks))
        self.normalize_before = config.normalize_before
        if config.normalize_before:
            self.after_norm = LayerNorm(d)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor):
        xs, lengths = self.embed(xs, lengths)
        mask = valid_mask(lengths, xs.size(1))
        for layer in self.encoders:
            xs = layer(xs, mask)
        if self.normalize_before:
            xs = self.after_norm(xs)
        return xs, lengths

