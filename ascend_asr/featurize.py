"""Audio -> model features, one path for preprocessing, the benchmark's stream and the training recipe."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .audio import load_audio
from .batching import smallest_gear
from .errors import ShapeError


class Features(NamedTuple):
    feats: np.ndarray  # [F, T] float32, zero beyond the valid frames
    valid: int  # valid frames
    gear: int | None  # the smallest compiled frame count that holds them (None: no gears given)
    duration: float  # seconds of the audio as read, before any silence trimming


def featurize(frontend, audio, gears=None, *, resample: bool = True, mix_to_mono: bool = True,
              profile_source: str = "") -> Features:
    """Features of one utterance: `audio` is a path (read at the frontend's rate) or samples at that rate.

    The frontend's own sample preparation (silence trimming) runs first; given the compiled frame
    `gears`, audio too long for the largest raises ShapeError before any feature is computed.
    """
    rate = frontend.params.sample_rate
    name = audio if isinstance(audio, str) else "audio"
    samples = load_audio(audio, rate, resample=resample, mix_to_mono=mix_to_mono) if isinstance(audio, str) else audio
    duration = len(samples) / rate
    samples = frontend.prepare_samples(samples)
    gear = None
    if gears:
        needed = frontend.aligned_frames(len(samples))
        gear = smallest_gear(needed, gears)
        if gear is None:
            largest = max(gears)
            raise ShapeError(
                f"{name}: {len(samples) / rate:.2f} s needs {needed} frames, but the largest compiled shape holds "
                f"{largest} frames ({largest * frontend.hop_length / rate:.2f} s); split the audio or add a larger "
                f"frame gear to the profile ({profile_source or 'frames:'})")
    feats, valid = frontend(samples)
    return Features(feats, valid, gear, duration)
