"""The ESPnet family's export I/O: features and their lengths in, CTC log-probs and output lengths out
(espnet_onnx's encoder takes the features only, so its padding counts as speech)."""
from __future__ import annotations

from ..base import IOSpec, tensor


def io_spec(feature_size: int = 80, num_classes: int = 5000) -> IOSpec:
    """feats [B, T, F] + feats_lengths [B] -> ctc_log_probs [B, T', C], encoder_out_lens [B]."""
    return IOSpec(inputs=(tensor("feats", "float32", ["batch", "frames", feature_size], "features"),
                          tensor("feats_lengths", "int32", ["batch"], "lengths")),
                  outputs=(tensor("ctc_log_probs", "float32", ["batch", "out_frames", num_classes], "log_probs"),
                           tensor("encoder_out_lens", "int32", ["batch"], "out_lengths")))


IO = io_spec()
