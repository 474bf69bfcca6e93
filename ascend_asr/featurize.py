"""Audio -> model features, one path for preprocessing, the benchmark's stream and the training recipe."""
from __future__ import annotations

import multiprocessing
from typing import NamedTuple

import numpy as np

from .audio import check_finite, load_audio
from .batching import smallest_gear
from .errors import AudioError, ShapeError


class Features(NamedTuple):
    feats: np.ndarray  # [F, T] float32, zero beyond the valid frames
    valid: int  # valid frames
    gear: int | None  # the smallest compiled frame count that holds them (None: no gears given)
    duration: float  # seconds of the audio as read, before any silence trimming
    trim_start: float = 0.0  # seconds of leading silence the frontend trimmed (its features start there)


def featurize(frontend, audio, gears=None, *, resample: bool = True, mix_to_mono: bool = True,
              profile_source: str = "") -> Features:
    """Features of one utterance: `audio` is a path (read at the frontend's rate) or samples at that rate.

    The frontend's own sample preparation (silence trimming) runs first; given the compiled frame
    `gears`, audio too long for the largest raises ShapeError before any feature is computed.
    """
    rate = frontend.params.sample_rate
    name = audio if isinstance(audio, str) else "audio"
    if isinstance(audio, str):
        if gears and not getattr(frontend.params, "trim_silence", False):
            _refuse_long_file(frontend, audio, gears, profile_source)  # before reading it all into memory
        samples = load_audio(audio, rate, resample=resample, mix_to_mono=mix_to_mono)
    else:
        samples = np.asarray(audio)
        check_finite(samples, name)
    duration = len(samples) / rate
    start = 0
    if hasattr(frontend, "kept_span"):  # a frontend that trims says where its features start
        start, end = frontend.kept_span(samples)
        samples = samples[start:end]
    else:
        samples = frontend.prepare_samples(samples)
    gear = None
    if gears:
        needed = frontend.aligned_frames(len(samples))
        gear = smallest_gear(needed, gears)
        if gear is None:
            raise _too_long(frontend, name, len(samples) / rate, needed, gears, profile_source)
    feats, valid = frontend(samples)
    if not np.isfinite(feats).all():
        raise AudioError(f"{name}: the {frontend.name} frontend gave non-finite features (NaN or Inf) from "
                         f"{len(samples)} finite samples (extreme or clipped values?); check the recording "
                         "(e.g. `sox in.wav -n stats`) or remove it from the manifest")
    return Features(feats, valid, gear, duration, start / rate)


def _too_long(frontend, name: str, seconds: float, needed: int, gears, profile_source: str) -> ShapeError:
    largest = max(gears)
    rate = frontend.params.sample_rate
    return ShapeError(
        f"{name}: {seconds:.2f} s needs {needed} frames, but the largest compiled shape holds "
        f"{largest} frames ({largest * frontend.hop_length / rate:.2f} s); split the audio or add a larger "
        f"frame gear to the profile ({profile_source or 'frames:'})")


def _refuse_long_file(frontend, path: str, gears, profile_source: str) -> None:
    """A file whose header already says it is too long is refused without decoding it."""
    import soundfile as sf

    try:
        info = sf.info(path)
        seconds = info.frames / info.samplerate
    except Exception:  # unreadable headers are reported by load_audio with the fix
        return
    samples = int(seconds * frontend.params.sample_rate)
    needed = frontend.aligned_frames(samples)
    # one hop of slack: resampling may round the length, and a file on the boundary is decided after decoding
    if smallest_gear(frontend.aligned_frames(max(0, samples - frontend.hop_length)), gears) is None:
        raise _too_long(frontend, path, seconds, needed, gears, profile_source)


def worker_context(method: str = "forkserver"):
    """The start method of a worker pool where the platform has it, else spawn. infer's decode workers start
    from a clean server process (forkserver), never forked from a parent that runs a model's threads;
    preprocess, whose parent runs no model, forks its feature workers (no re-import, and they see the parent's
    modules as they are)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(method if method in methods else "spawn")
