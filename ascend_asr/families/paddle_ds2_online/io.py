"""DS2-online's export I/O, named as PaddleSpeech's DeepSpeech2InferModel.export() names its inputs.

Whole utterances (the generic pipeline): audio_chunk [B, T, F] + audio_chunk_lens [B] (int64, as upstream)
-> probs [B, T', C] (softmax) + probs_lens [B], T' = ((T - 1) // 2 - 1) // 2.
Streaming (streaming/graph.py): the same plus chunk_state_h_box / chunk_state_c_box [layers, B, hidden]
in, final_state_h_box / final_state_c_box out, as the online engine feeds and reads them; the states have no
role in a profile, so the streaming module declares that graph itself.
"""
from __future__ import annotations

from ..base import IOSpec, tensor

TIME_STRIDE = 4  # only a stand-in: the graph outputs its lengths (probs_lens)


def io_spec(feature_size: int = 161, num_classes: int = 14) -> IOSpec:
    return IOSpec(inputs=(tensor("audio_chunk", "float32", ["batch", "frames", feature_size], "features"),
                          tensor("audio_chunk_lens", "int64", ["batch"], "lengths")),
                  outputs=(tensor("probs", "float32", ["batch", "out_frames", num_classes], "probs"),
                           tensor("probs_lens", "int64", ["batch"], "out_lengths")),
                  time_stride=TIME_STRIDE)


IO = io_spec()
