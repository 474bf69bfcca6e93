"""Chunk arithmetic of PaddleSpeech's online DS2 decoder.

CRNNEncoder.forward_chunk_by_chunk and the online ASR engine (paddlespeech/server/engine/asr/online/python/
asr_engine.py, `decode`) feed the model windows of `(chunk - 1) * subsampling + receptive_field` feature
frames, one every `subsampling * chunk` frames, where `chunk` is the decoder chunk size in output frames,
subsampling 4 and receptive field 7 (Conv2dSubsampling4Pure: two 3x3 convolutions of stride 2,
2 * (3 - 1) + 3); each window yields exactly `chunk` output frames, the same ones whole-utterance inference
gives at those positions, and the LSTM states carry over from window to window. The last window is padded
with zeros (forward_chunk_by_chunk) and its length says how many frames are real.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ....errors import OptionError
from ..config import output_length

SUBSAMPLING = 4       # Conv2dSubsampling4Pure.subsampling_rate
RECEPTIVE_FIELD = 7   # Conv2dSubsampling4Pure.receptive_field_length


@dataclass(frozen=True)
class ChunkPlan:
    chunk_frames: int  # decoder chunk size: output frames per window

    def __post_init__(self):
        if isinstance(self.chunk_frames, bool) or not isinstance(self.chunk_frames, int) or self.chunk_frames < 1:
            raise OptionError(f"--chunk-frames {self.chunk_frames!r}: give a whole number of output frames per chunk "
                              "(1 is PaddleSpeech's online engine; 4, 16 trade latency for speed)")

    @property
    def window(self) -> int:
        """Feature frames per chunk (forward_chunk_by_chunk's chunk_size)."""
        return (self.chunk_frames - 1) * SUBSAMPLING + RECEPTIVE_FIELD

    @property
    def stride(self) -> int:
        """Feature frames between chunk starts (chunk_stride)."""
        return SUBSAMPLING * self.chunk_frames

    def num_chunks(self, frames: int) -> int:
        """forward_chunk_by_chunk's count: enough windows to cover `frames` (at least one)."""
        return 1 if frames <= self.window else math.ceil((frames - self.window) / self.stride) + 1

    def chunk(self, feats: np.ndarray, index: int) -> tuple[np.ndarray, int]:
        """Window `index` of features [T, F], zero-padded to `window` frames, and its real frame count."""
        start = index * self.stride
        part = feats[start:start + self.window]
        out = np.zeros((self.window, feats.shape[1]), dtype=np.float32)
        out[:len(part)] = part
        return out, len(part)


__all__ = ["ChunkPlan", "output_length", "RECEPTIVE_FIELD", "SUBSAMPLING"]
