"""PaddleSpeech's DeepSpeech2 online model (paddlespeech/s2t/models/ds2/deepspeech2.py, DeepSpeech2InferModel
with rnn_direction 'forward') in PyTorch, with PaddleSpeech's parameter names.

encoder.conv      Conv2dSubsampling4Pure: Conv2D(1, 32, 3, stride 2) + ReLU + Conv2D(32, 32, 3, 2) + ReLU over
                  [B, 1, T, F], then [B, T', 32 * F'] (channel-major). Its parent class also builds
                  `out` (Linear(32 * F', 32)), which the forward never uses but the checkpoint holds.
encoder.rnn.i     one unidirectional LSTM (GRU with use_gru) per layer, run on the valid frames only
                  (sequence_length): its final states are those of each utterance's last valid frame. A GRU
                  has no cell state: the c box passes through, as upstream returns init_state_c_box.
encoder.layernorm_list.i   LayerNorm after each LSTM (epsilon 1e-5).
encoder.fc_layers_list.i   optional Linear + ReLU.
decoder.ctc_lo    Linear to the vocabulary; softmax over it.

Paddle stores a Linear's weight as [in, out] (torch: [out, in]) and an LSTM's weights twice: as
`weight_ih_l0` ... (the flat, cuDNN-style copy) and as `0.cell.weight_ih` ... (its cell); the gate order
(LSTM: input, forget, cell, output; GRU: reset, update, candidate) and the two biases are torch's.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError
from ..checkpoints import load_state_dict_strict
from .config import CONV_CHANNELS, PaddleDs2OnlineConfig
from .io import IO
from .pdparams import read_pdparams, write_pdparams

CELL_SUFFIXES = {"0.cell.weight_ih": "weight_ih_l0", "0.cell.weight_hh": "weight_hh_l0",
                 "0.cell.bias_ih": "bias_ih_l0", "0.cell.bias_hh": "bias_hh_l0"}


def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """((T - 1) // 2 - 1) // 2, at least 0 (x_len in Conv2dSubsampling4Pure.forward)."""
    half = torch.div(lengths - 1, 2, rounding_mode="floor")
    return torch.div(half - 1, 2, rounding_mode="floor").clamp(min=0)


class Conv2dSubsampling4Pure(nn.Module):
    def __init__(self, feature_size: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, CONV_CHANNELS, 3, 2), nn.ReLU(),
                                  nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, 2), nn.ReLU())
        bins = ((feature_size - 1) // 2 - 1) // 2
        self.out = nn.Sequential(nn.Linear(CONV_CHANNELS * bins, CONV_CHANNELS))  # upstream's, unused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.unsqueeze(1))  # [B, C, T', F']
        return x.transpose(1, 2).flatten(2)  # [B, T', C * F']


class CRNNEncoder(nn.Module):
    def __init__(self, config: PaddleDs2OnlineConfig):
        super().__init__()
        self.config = config
        self.conv = Conv2dSubsampling4Pure(config.feature_size)
        hidden = config.rnn_layer_size
        rnn = nn.GRU if config.use_gru else nn.LSTM
        self.rnn = nn.ModuleList(rnn(config.conv_output_size if i == 0 else hidden, hidden, batch_first=True)
                                 for i in range(config.num_rnn_layers))
        self.layernorm_list = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-5) for _ in range(config.num_rnn_layers))
        sizes = (hidden, *config.fc_layers_size_list[:config.num_fc_layers])
        self.fc_layers_list = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x, lengths, h0, c0):
        x = self.conv(x)
        out_lengths = output_lengths(lengths.to(torch.int64))
        h_out, c_out = [], []
        for i, (rnn, norm) in enumerate(zip(self.rnn, self.layernorm_list)):
            x, (h, c) = run_rnn(rnn, x, out_lengths, h0[i:i + 1], c0[i:i + 1])
            h_out.append(h)
            c_out.append(c)
            x = norm(x)
        for fc in self.fc_layers_list:
            x = torch.relu(fc(x))
        return x, out_lengths, torch.cat(h_out), torch.cat(c_out)


def run_rnn(rnn: nn.Module, x, lengths, h0, c0):
    """The LSTM (GRU) over each utterance's valid frames (exported as ONNX LSTM/GRU with sequence_lens); an
    utterance with no valid frame keeps its states, as Paddle's sequence_length masking does."""
    total = x.shape[1]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    if isinstance(rnn, nn.GRU):
        y, h = rnn(packed, h0)
        c = c0
    else:
        y, (h, c) = rnn(packed, (h0, c0))
    y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=total)
    keep = (lengths > 0).view(1, -1, 1)
    return y, (torch.where(keep, h, h0), torch.where(keep, c, c0))


class CTCDecoder(nn.Module):
    def __init__(self, encoder_size: int, num_classes: int):
        super().__init__()
        self.ctc_lo = nn.Linear(encoder_size, num_classes)


class PaddleDs2Online(nn.Module):
    """audio_chunk [B, T, F], audio_chunk_lens [B] int64, chunk_state_h_box / chunk_state_c_box [L, B, H]
    -> probs [B, T', C], probs_lens [B], final_state_h_box, final_state_c_box (DeepSpeech2InferModel.forward)."""

    def __init__(self, config: PaddleDs2OnlineConfig = PaddleDs2OnlineConfig()):
        super().__init__()
        self.config = config
        self.encoder = CRNNEncoder(config)
        self.decoder = CTCDecoder(config.encoder_size, config.num_classes)

    def forward(self, audio_chunk, audio_chunk_lens, chunk_state_h_box, chunk_state_c_box):
        x, lengths, h, c = self.encoder(audio_chunk, audio_chunk_lens, chunk_state_h_box, chunk_state_c_box)
        return torch.softmax(self.decoder.ctc_lo(x), dim=-1), lengths, h, c

    def zero_states(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.config.num_rnn_layers, batch, self.config.rnn_layer_size)
        return torch.zeros(shape), torch.zeros(shape)

    def example_inputs(self, batch: int = 1, frames: int = 256):
        return (torch.randn(batch, frames, self.config.feature_size),
                torch.full((batch,), frames, dtype=torch.int64), *self.zero_states(batch))


class WholeUtterance(nn.Module):
    """The generic pipeline's graph: whole utterances from zero states, probabilities and their lengths."""

    input_names = IO.input_names
    output_names = IO.output_names
    dynamic_axes = IO.dynamic_axes()

    def __init__(self, model: PaddleDs2Online):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, audio_chunk, audio_chunk_lens):
        probs, lengths, _, _ = self.model(audio_chunk, audio_chunk_lens, *self._zero_states(audio_chunk))
        return probs, lengths

    def _zero_states(self, audio_chunk):
        h0, c0 = self.model.zero_states(1)
        batch = audio_chunk.shape[0]
        return h0.expand(-1, batch, -1).contiguous(), c0.expand(-1, batch, -1).contiguous()

    def log_probs(self, audio_chunk, audio_chunk_lens):
        """([T', B, C] log-softmax, [B] lengths): what CTC training takes (CTCDecoderBase.log_softmax)."""
        x, lengths, _, _ = self.model.encoder(audio_chunk, audio_chunk_lens, *self._zero_states(audio_chunk))
        return torch.log_softmax(self.model.decoder.ctc_lo(x), dim=-1).transpose(0, 1), lengths

    def example_inputs(self, batch: int = 1, frames: int = 256):
        return self.model.example_inputs(batch, frames)[:2]


# -- checkpoints ---------------------------------------------------------------------------------
def _is_linear_weight(model: nn.Module, name: str) -> bool:
    module_name = name.rsplit(".", 1)[0]
    return name.endswith(".weight") and isinstance(model.get_submodule(module_name), nn.Linear)


def state_from_paddle(model: PaddleDs2Online, arrays: dict, source: str) -> dict[str, torch.Tensor]:
    """Paddle names and layouts -> this model's state dict: cell copies checked against the flat weights and
    dropped, Linear weights transposed."""
    state = {}
    for key, value in arrays.items():
        prefix, _, tail = key.rpartition(".0.cell.")
        if tail and f"0.cell.{tail}" in CELL_SUFFIXES:
            flat = f"{prefix}.{CELL_SUFFIXES['0.cell.' + tail]}"
            if flat in arrays and not np.array_equal(arrays[flat], value):
                raise CheckpointError(f"{source}: {key} differs from {flat}; Paddle keeps one LSTM weight under both "
                                      "names, so the checkpoint is damaged")
            if flat in arrays:
                continue
            key = flat
        tensor = torch.from_numpy(np.array(value, dtype=np.float32 if value.dtype.kind == "f" else value.dtype))
        try:
            if _is_linear_weight(model, key) and tensor.ndim == 2:
                tensor = tensor.T.contiguous()
        except AttributeError:
            pass  # not a module of this model: load_state_dict_strict names it
        state[key] = tensor
    return state


def state_to_paddle(model: PaddleDs2Online) -> dict[str, np.ndarray]:
    """This model's weights as Paddle names and layouts (both LSTM copies), for write_pdparams."""
    arrays = {}
    for key, tensor in model.state_dict().items():
        value = tensor.detach().cpu().numpy().astype(np.float32)
        if _is_linear_weight(model, key):
            value = value.T
        arrays[key] = np.ascontiguousarray(value)
        prefix, _, leaf = key.rpartition(".")
        cell = {v: k for k, v in CELL_SUFFIXES.items()}.get(leaf)
        if cell and ".rnn." in key:
            arrays[f"{prefix}.{cell}"] = arrays[key]
    return arrays


def load_pdparams(model: PaddleDs2Online, path: str) -> PaddleDs2Online:
    state = state_from_paddle(model, read_pdparams(path), path)
    load_state_dict_strict(model, state, path)
    return model.train(False)


def save_pdparams(model: PaddleDs2Online, path: str) -> None:
    write_pdparams(state_to_paddle(model), path)
