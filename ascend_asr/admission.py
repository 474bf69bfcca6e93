"""Admission of one utterance before its audio is read: what the manifest already says about it.

A manifest that gives a duration (a TSV `duration` column, NVIDIA's `original_duration`, a JSONL
`duration`) lets a file too long for the largest compiled shape be refused before it is decoded:
a 20-minute file would otherwise cost hundreds of MB only to be refused once its samples are in memory.
"""
from __future__ import annotations

from .errors import ShapeError

TOLERANCE_S = 0.5  # a manifest's duration may be rounded, or measured before a resampler's edge samples
TRIM_FACTOR = 2.0  # silence trimming (leading and trailing only) is not expected to remove more than half a file


def capacity_seconds(frontend, gears) -> float:
    """Seconds of audio the largest compiled frame gear holds."""
    return max(gears) * frontend.hop_length / frontend.params.sample_rate


def check_manifest_duration(entry, frontend, gears, profile_source: str = "") -> None:
    """Refuse `entry` (a datasets.Utterance) when its manifest duration already exceeds what the largest gear
    holds (plus a tolerance; twice that when the frontend trims silence first, which can only shorten it)."""
    duration = getattr(entry, "duration", None)
    if not gears or duration is None:
        return
    capacity = capacity_seconds(frontend, gears)
    trims = bool(getattr(frontend.params, "trim_silence", False))
    limit = (TRIM_FACTOR * capacity if trims else capacity) + TOLERANCE_S
    if duration <= limit:
        return
    trimmed = f", {TRIM_FACTOR:g}x that since the frontend trims silence first," if trims else ""
    raise ShapeError(
        f"{entry.audio_path}: the manifest ({entry.source}) gives {duration:.2f} s, but the largest compiled shape "
        f"holds {max(gears)} frames ({capacity:.2f} s{trimmed} plus {TOLERANCE_S:g} s of tolerance); refused "
        f"before reading the audio: split the audio or add a larger frame gear to the profile "
        f"({profile_source or 'frames:'}); if the manifest's duration is wrong, correct it")
