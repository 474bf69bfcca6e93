"""LSTM-CTC's export I/O, as ModelZoo's LSTM pth2onnx names it (plus the lengths, which it lacks)."""
from __future__ import annotations

from ..base import IOSpec, tensor


def io_spec(feature_size: int = 243, num_classes: int = 41) -> IOSpec:
    """actual_input_1 [B, T, F] + input_lengths [B] -> output1: log-probs [T', B, C] (time-major),
    output_lengths [B]. input_lengths feeds output_lengths only, never the scores."""
    return IOSpec(inputs=(tensor("actual_input_1", "float32", ["batch", "frames", feature_size], "features"),
                          tensor("input_lengths", "int32", ["batch"], "lengths")),
                  outputs=(tensor("output1", "float32", ["out_frames", "batch", num_classes], "log_probs"),
                           tensor("output_lengths", "int32", ["batch"], "out_lengths")))


IO = io_spec()
