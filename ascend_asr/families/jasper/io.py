"""Jasper's export I/O, as ModelZoo's Jasper_pth2onnx.py names it."""
from __future__ import annotations

from ..base import IOSpec, tensor


def io_spec(feature_size: int = 64, num_classes: int = 29) -> IOSpec:
    """feats [B, F, T] + feat_lens [B] -> prob: log-probs [B, T', C], label: encoded lengths [B]."""
    return IOSpec(inputs=(tensor("feats", "float32", ["batch", feature_size, "frames"], "features"),
                          tensor("feat_lens", "int32", ["batch"], "lengths")),
                  outputs=(tensor("prob", "float32", ["batch", "out_frames", num_classes], "log_probs"),
                           tensor("label", "int32", ["batch"], "out_lengths")))


IO = io_spec()
