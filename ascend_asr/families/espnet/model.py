"""ESPnet2 CTC inference (ESPnetASRModel.encode + CTC.log_softmax) with ESPnet's parameter names:
`normalize.*`, `encoder.*`, `ctc.ctc_lo.*`.

feats [B, T, n_mels] (the espnet_default frontend's log-mels) + feats_lengths [B] int32 ->
ctc_log_probs [B, T', vocab] + encoder_out_lens [B] int32. The lengths drive masks all the way through,
so any batch gives each utterance what it gives alone.
"""
from __future__ import annotations

import torch
from torch import nn

from .conformer import ConformerEncoder
from .config import EspnetConfig
from .io import io_spec
from .normalize import GlobalMVN, UtteranceMVN
from .transformer import TransformerEncoder


class CTC(nn.Module):
    def __init__(self, vocab_size: int, encoder_output_size: int):
        super().__init__()
        self.ctc_lo = nn.Linear(encoder_output_size, vocab_size)

    def log_softmax(self, hs: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.ctc_lo(hs), dim=2)


class EspnetCTCModel(nn.Module):
    def __init__(self, config: EspnetConfig):
        super().__init__()
        self.config = config
        io = io_spec(config.input_size, config.vocab_size)
        self.input_names, self.output_names, self.dynamic_axes = io.input_names, io.output_names, io.dynamic_axes()
        if config.normalize == "global_mvn":
            self.normalize = GlobalMVN(config.input_size, config.norm_means, config.norm_vars)
        elif config.normalize == "utterance_mvn":
            self.normalize = UtteranceMVN(config.norm_means, config.norm_vars)
        else:
            self.normalize = None
        self.encoder = (ConformerEncoder if config.encoder == "conformer" else TransformerEncoder)(config)
        self.ctc = CTC(config.vocab_size, config.output_size)

    def encode(self, feats: torch.Tensor, feats_lengths: torch.Tensor):
        """(encoder_out [B, T', D], encoder_out_lens [B] int64)."""
        lengths = feats_lengths.to(torch.int64)
        positions = torch.arange(feats.size(1), device=feats.device).unsqueeze(0)
        keep = (positions < lengths.unsqueeze(1)).unsqueeze(2).to(feats.dtype)  # [B, T, 1]
        x = self.normalize(feats, keep) if self.normalize is not None else feats * keep
        return self.encoder(x, lengths)

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor):
        encoder_out, encoder_out_lens = self.encode(feats, feats_lengths)
        return self.ctc.log_softmax(encoder_out), encoder_out_lens.to(torch.int32)

    def example_inputs(self, batch: int = 1, frames: int = 256):
        feats = torch.randn(batch, frames, self.config.input_size)
        return feats, torch.full((batch,), frames, dtype=torch.int32)
