"""DeepSpeech2's export I/O, as ModelZoo's Deepspeech2 pth2onnx names it."""
from __future__ import annotations

from ..base import IOSpec, tensor

TIME_STRIDE = 2  # the first convolution's: output frames floor((T - 1) / 2) + 1


def io_spec(feature_size: int = 161, num_classes: int = 29) -> IOSpec:
    """spect [B, 1, F, T] + transcript (ModelZoo's name for the lengths) [B] -> out: softmax [B, T', C]."""
    return IOSpec(inputs=(tensor("spect", "float32", ["batch", 1, feature_size, "frames"], "features"),
                          tensor("transcript", "int32", ["batch"], "lengths")),
                  outputs=(tensor("out", "float32", ["batch", "out_frames", num_classes], "probs"),),
                  time_stride=TIME_STRIDE)


IO = io_spec()
