"""Checkpoint reading and strict state-dict loading shared by every model family."""
from __future__ import annotations

import pickle
import zipfile

import torch

from ..errors import CheckpointError

# Buffers that BatchNorm adds but inference never reads; older checkpoints lack them.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def read_checkpoint(path: str) -> dict:
    """torch.load with weights_only=True: tensors and plain containers, no arbitrary code."""
    from .safe_pickle import checkpoint_precheck, family_hint, one_line

    checkpoint_precheck(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: cannot read as a weights-only PyTorch checkpoint ({type(exc).__name__}: "
                              f"{one_line(exc)}){family_hint(path)}; otherwise re-save it with "
                              "torch.save({'state_dict': model.state_dict()}, path)") from None


def load_state_dict_strict(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """Load every parameter and buffer; any other difference lists the keys and fails."""
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state_dict and not k.endswith(OPTIONAL_SUFFIXES))
    unexpected = sorted(k for k in state_dict if k not in expected)
    mismatched = sorted(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                        for k, v in state_dict.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape))
    if missing or unexpected or mismatched:
        parts = [f"{source}: checkpoint does not match the model"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
        parts.append("check that the model config matches the one the checkpoint was trained with")
        raise CheckpointError("\n  ".join(parts))
    model.load_state_dict(state_dict, strict=False)
    bad = [name for name, tensor in list(model.named_parameters()) + list(model.named_buffers())
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise CheckpointError(f"{source}: non-finite values (NaN or Inf) in {len(bad)} tensor(s) after loading: "
                              f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; the checkpoint is damaged (or "
                              "saved from a diverged training run): use an earlier or the original checkpoint")


def half_precision(state: dict) -> dict:
    """fp16 storage (the shipped references); every loader casts back to float32."""
    return {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in state.items()}
