"""Jasper (NVIDIA DeepLearningExamples, PyTorch/SpeechRecognition/Jasper), for inference and export.

Module and parameter names follow NVIDIA's `jasper/model.py`, so their checkpoints load as is.
Lengths are tensors all the way through, so the exported graph masks each utterance by its
own length instead of a value baked in at trace time.
"""
from __future__ import annotations

import copy
import re
import sys

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import CheckpointError
from ..checkpoints import half_precision, load_state_dict_strict, read_checkpoint
from .config import JasperConfig
from .io import IO

ACTIVATIONS = {"relu": nn.ReLU, "hardtanh": lambda: nn.Hardtanh(0.0, 20.0), "selu": nn.SELU}


class MaskedConv1d(nn.Conv1d):
    """Conv1d that zeroes input frames at or beyond each utterance's length first."""

    def __init__(self, *args, masked: bool = True, **kwargs):
        self.masked = masked
        super().__init__(*args, **kwargs)

    def get_seq_len(self, lens: torch.Tensor) -> torch.Tensor:
        pad, k, d, s = self.padding[0], self.kernel_size[0], self.dilation[0], self.stride[0]
        # floor in float, as the ModelZoo export does: exact for lengths < 2**24, and floor (not
        # truncation) also for a zero length
        return (torch.floor((lens.float() + (2 * pad - d * (k - 1) - 1)) / s) + 1).to(lens.dtype)

    def forward(self, x: torch.Tensor, lens: torch.Tensor | None = None):
        if self.masked:
            steps = torch.arange(x.shape[2], device=x.device).unsqueeze(0)
            keep = steps < lens.unsqueeze(1).to(steps.dtype)
            x = x * keep.unsqueeze(1).to(x.dtype)
            lens = self.get_seq_len(lens)
        return super().forward(x), lens


class JasperBlock(nn.Module):
    def __init__(self, infilters, filters, repeat=3, kernel_size=(11,), stride=(1,), dilation=(1,),
                 dropout=0.2, activation=None, residual=True, residual_panes=(), use_conv_masks=False):
        super().__init__()
        padding = (kernel_size[0] // 2) * dilation[0]
        if stride[0] > 1 and dilation[0] > 1:
            raise ValueError("'same' padding with both stride and dilation is not supported")
        self.use_conv_masks = use_conv_masks
        self.conv = nn.ModuleList()
        for i in range(repeat):
            self.conv.extend(self._conv_bn(infilters if i == 0 else filters, filters, kernel_size=kernel_size,
                                           stride=stride, dilation=dilation, padding=padding))
            if i < repeat - 1:
                self.conv.extend(self._act_dropout(dropout, activation))
        self.res = nn.ModuleList() if residual else None
        self.dense_residual = residual and len(residual_panes) > 0
        if residual:
            for panes in (list(residual_panes) or [infilters]):
                self.res.append(nn.ModuleList(self._conv_bn(panes, filters, kernel_size=1)))
        self.out = nn.Sequential(*self._act_dropout(dropout, activation))

    def _conv_bn(self, in_channels, out_channels, **kw):
        return [MaskedConv1d(in_channels, out_channels, masked=self.use_conv_masks, bias=False, **kw),
                nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.1)]

    @staticmethod
    def _act_dropout(dropout, activation):
        return [activation() if activation else nn.Hardtanh(0.0, 20.0), nn.Dropout(p=dropout)]

    def forward(self, xs: list, xs_lens: torch.Tensor | None):
        out, lens = xs[-1], xs_lens
        for layer in self.conv:
            if isinstance(layer, MaskedConv1d):
                out, lens = layer(out, lens)
            else:
                out = layer(out)
        if self.res is not None:
            for pane, (res_conv, res_bn) in zip(xs, self.res):
                out = out + res_bn(res_conv(pane, xs_lens)[0])
        out = self.out(out)
        return (xs + [out] if self.dense_residual else [out]), lens


class JasperEncoder(nn.Module):
    def __init__(self, config: JasperConfig):
        super().__init__()
        self.use_conv_masks = config.use_conv_masks
        self.layers = nn.ModuleList()
        in_feats, dense_panes = config.in_feats, []
        for blk in copy.deepcopy(config.blocks):
            if blk.pop("residual_dense", False):
                dense_panes = dense_panes + [in_feats]
                panes = dense_panes
            else:
                panes = []
            blk.pop("activation", None)  # the encoder's activation applies to every block (NVIDIA's too)
            self.layers.append(JasperBlock(in_feats, activation=ACTIVATIONS[config.activation],
                                           residual_panes=panes, use_conv_masks=config.use_conv_masks, **blk))
            in_feats = blk["filters"]
        self.out_feats = in_feats

    def forward(self, x, lens):
        out = [x]
        for layer in self.layers:
            out, lens = layer(out, lens)
        return out, lens


class JasperDecoderForCTC(nn.Module):
    def __init__(self, in_feats: int, n_classes: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv1d(in_feats, n_classes, kernel_size=1, bias=True))

    def forward(self, enc_out: list) -> torch.Tensor:
        return F.log_softmax(self.layers(enc_out[-1]).transpose(1, 2), dim=2)


class Jasper(nn.Module):
    """feats [B, 64, T] float32, feat_lens [B] int32 -> log-probs [B, T', 29], lengths [B] int32."""

    input_names = IO.input_names
    output_names = IO.output_names
    dynamic_axes = IO.dynamic_axes()

    def __init__(self, config: JasperConfig = JasperConfig()):
        super().__init__()
        if not config.use_conv_masks:
            raise ValueError("use_conv_masks=False cannot mask padded frames; results would depend on padding")
        self.config = config
        self.encoder = JasperEncoder(config)
        self.decoder = JasperDecoderForCTC(self.encoder.out_feats, config.n_classes)

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        enc, enc_lens = self.encoder(feats, feat_lens)
        return self.decoder(enc), enc_lens

    def example_inputs(self, batch: int = 1, frames: int = 256):
        feats = torch.randn(batch, self.config.in_feats, frames)
        lens = torch.full((batch,), frames, dtype=torch.int32)
        return feats, lens


_V1_RULES = ((r"^jasper_encoder\.encoder\.", "encoder.layers."),
             (r"^jasper_decoder\.decoder_layers\.", "decoder.layers."),
             (r"^module\.", ""))
_V1_DROPPED = ("acoustic_model.", "audio_preprocessor.")


def convert_v1_state_dict(state_dict: dict) -> dict:
    """NVIDIA `helpers.convert_v1_state_dict`: v1 key names to the current ones."""
    converted = {}
    for key, value in state_dict.items():
        if key.startswith(_V1_DROPPED):
            continue
        for pattern, replacement in _V1_RULES:
            key = re.sub(pattern, replacement, key)
        converted[key] = value
    return converted


def load_jasper_checkpoint(model: Jasper, path: str, use_ema: bool = True) -> Jasper:
    """Load an NVIDIA checkpoint strictly into `model`, as NVIDIA's `Checkpointer.load` picks the weights:
    `ema_state_dict` when asked for and present (a run without EMA saves it as None), else `state_dict`;
    a bare state dict is accepted too."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict ({{'state_dict': ...}}), found {type(ckpt).__name__}")
    key = "ema_state_dict" if use_ema and isinstance(ckpt.get("ema_state_dict"), dict) else "state_dict"
    if key in ckpt:
        state = ckpt[key]
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        key, state = "bare state dict", ckpt
    else:
        raise CheckpointError(f"{path}: expected 'state_dict' or 'ema_state_dict' in the checkpoint, "
                              f"found keys {sorted(map(str, ckpt))[:10]}")
    if use_ema and key == "state_dict" and "ema_state_dict" in ckpt:
        print(f"[ascend-asr] {path}: ema_state_dict is empty (trained without EMA); loading state_dict",
              file=sys.stderr)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: {key} is not a mapping of tensors; is this an NVIDIA Jasper checkpoint?")
    state = {k: v.float() if v.is_floating_point() else v for k, v in convert_v1_state_dict(state).items()}
    load_state_dict_strict(model, state, f"{path} ({key})")
    return model.train(False)  # inference mode


def save_jasper_checkpoint(model: Jasper, path: str, info: dict) -> None:
    """NVIDIA DeepLearningExamples' Jasper checkpoint: {'epoch', 'step', 'best_wer', 'state_dict'}."""
    torch.save({"epoch": info["epoch"], "step": info["step"], "best_wer": info.get("wer"),
                "state_dict": half_precision(model.state_dict())}, path)
