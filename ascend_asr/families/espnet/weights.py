"""ESPnet2 state dicts onto EspnetCTCModel, strictly.

ESPnetASRModel's state dict also holds `frontend.logmel.melmat` (the mel matrix, a buffer) and, for hybrid
CTC/attention models, the attention `decoder.*`. CTC inference uses neither: the decoder is left out, and
the mel matrix is compared with the profile frontend's own, so features computed outside the graph are
the ones the model was trained on. Every other key must match the model exactly.
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import CheckpointError
from ..checkpoints import load_state_dict_strict

UNUSED_BY_CTC = ("decoder.", "criterion_att.", "lm.")


def load_espnet_state(model, state: dict, source: str, mel_matrix: np.ndarray | None = None,
                      feats_stats: dict | None = None):
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_BY_CTC)}
    melmat = state.pop("frontend.logmel.melmat", None)
    others = sorted(k for k in state if k.startswith("frontend."))
    if others:
        raise CheckpointError(f"{source}: frontend parameters {others[:5]} (a trained frontend) are not implemented; "
                              "only ESPnet's default STFT + log-mel frontend")
    if melmat is not None and mel_matrix is not None:
        scale = float(np.abs(mel_matrix).max()) or 1.0  # relative: a float16-stored matrix still matches
        if tuple(melmat.shape) != mel_matrix.shape or \
                float(np.abs(melmat.float().numpy() - mel_matrix).max()) > 1e-3 * scale:
            raise CheckpointError(f"{source}: its frontend.logmel.melmat {tuple(melmat.shape)} differs from the "
                                  f"profile frontend's mel matrix {mel_matrix.shape}; make the profile frontend from "
                                  "the same config.yaml (ascend-asr profile --family espnet --config <model>)")
    if feats_stats is not None and "normalize.mean" in state:
        from .normalize import stats_from_npz

        mean, std = stats_from_npz(feats_stats["count"], feats_stats["sum"], feats_stats["sum_square"])
        if np.abs(state["normalize.mean"].double().numpy() - mean).max() > 2e-3 * max(1.0, np.abs(mean).max()):
            raise CheckpointError(f"{source}: normalize.mean differs from its feats_stats.npz; the statistics file "
                                  "belongs to another model")
        del std  # GlobalMVN derives std the same way; the state dict's buffers are used
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    load_state_dict_strict(model, state, source)
    return model.train(False)


def global_mvn_buffers(feats_stats: dict) -> dict[str, torch.Tensor]:
    """normalize.mean / normalize.std as GlobalMVN computes them from feats_stats.npz (float32)."""
    from .normalize import stats_from_npz

    mean, std = stats_from_npz(feats_stats["count"], feats_stats["sum"], feats_stats["sum_square"])
    return {"normalize.mean": torch.from_numpy(mean).float(), "normalize.std": torch.from_numpy(std).float()}
