"""ESPnet2's ConformerEncoder (espnet2/asr/encoder/conformer_encoder.py) for CTC inference: Conv2dSubsampling
with the configured position encoding, `num_blocks` Conformer layers (espnet/nets/pytorch_backend/conformer/
encoder_layer.py: optional macaron feed-forward at half scale, self-attention, convolution module, feed-forward,
`norm_final` when the convolution module is used), `after_norm` when normalize_before."""
from __future__ import annotations

import torch
from torch import nn

from .attention import LegacyRelPositionMultiHeadedAttention, MultiHeadedAttention, RelPositionMultiHeadedAttention
from .embedding import LegacyRelPositionalEncoding, PositionalEncoding, RelPositionalEncoding
from .layers import ACTIVATIONS, ConvolutionModule, LayerNorm, PositionwiseFeedForward, valid_mask
from .subsampling import Conv2dSubsampling

# attention kind (EspnetConfig.attention_kind) -> (position encoding, attention class)
KINDS = {"rel_latest": (RelPositionalEncoding, RelPositionMultiHeadedAttention),
         "rel_legacy": (LegacyRelPositionalEncoding, LegacyRelPositionMultiHeadedAttention),
         "abs": (PositionalEncoding, MultiHeadedAttention)}


class ConformerEncoderLayer(nn.Module):
    def __init__(self, size, self_attn, feed_forward, feed_forward_macaron, conv_module, normalize_before,
                 concat_after):
        super().__init__()
        self.self_attn, self.feed_forward = self_attn, feed_forward
        self.feed_forward_macaron, self.conv_module = feed_forward_macaron, conv_module
        self.norm_ff, self.norm_mha = LayerNorm(size), LayerNorm(size)
        self.ff_scale = 1.0
        if feed_forward_macaron is not None:
            self.norm_ff_macaron, self.ff_scale = LayerNorm(size), 0.5
        if conv_module is not None:
            self.norm_conv, self.norm_final = LayerNorm(size), LayerNorm(size)
        self.normalize_before, self.concat_after = normalize_before, concat_after
        if concat_after:
            self.concat_linear = nn.Linear(size + size, size)

    def _residual(self, x, norm, block, scale=1.0):
        """x + scale * block(norm(x)) (pre-norm) or norm(x + scale * block(x)) (post-norm)."""
        out = x + scale * block(norm(x) if self.normalize_before else x)
        return out if self.normalize_before else norm(out)

    def forward(self, x, pos_emb, mask):
        if self.feed_forward_macaron is not None:
            x = self._residual(x, self.norm_ff_macaron, self.feed_forward_macaron, self.ff_scale)

        def attend(h):
            att = self.self_attn(h, h, h, mask) if pos_emb is None else self.self_attn(h, h, h, pos_emb, mask)
            return self.concat_linear(torch.cat((h, att), dim=-1)) if self.concat_after else att

        x = self._residual(x, self.norm_mha, attend)
        if self.conv_module is not None:
            x = self._residual(x, self.norm_conv, lambda h: self.conv_module(h, mask))
        x = self._residual(x, self.norm_ff, self.feed_forward, self.ff_scale)
        if self.conv_module is not None:
            x = self.norm_final(x)
        return x


class ConformerEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.output_size
        pos_class, attention_class = KINDS[config.attention_kind()]
        self.relative = config.attention_kind() != "abs"
        self.embed = Conv2dSubsampling(config.input_size, d, config.input_layer,
                                       pos_class(d, config.max_pos_emb_len))

        def attention():
            if self.relative:
                return attention_class(config.attention_heads, d, config.zero_triu)
            return attention_class(config.attention_heads, d)

        def feed_forward():
            return PositionwiseFeedForward(d, config.linear_units, ACTIVATIONS[config.activation_type]())

        self.encoders = nn.ModuleList(
            ConformerEncoderLayer(
                d, attention(), feed_forward(), feed_forward() if config.macaron_style else None,
                ConvolutionModule(d, config.cnn_module_kernel, ACTIVATIONS[config.activation_type]())
                if config.use_cnn_module else None,
                config.normalize_before, config.concat_after)
            for _ in range(config.num_blocks))
        self.normalize_before = config.normalize_before
        if config.normalize_before:
            self.after_norm = LayerNorm(d)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor):
        xs, lengths = self.embed(xs, lengths)
        xs, pos_emb = xs if isinstance(xs, tuple) else (xs, None)
        mask = valid_mask(lengths, xs.size(1))
        for layer in self.encoders:
            xs = layer(xs, pos_emb, mask)
        if self.normalize_before:
            xs = self.after_norm(xs)
        return xs, lengths
