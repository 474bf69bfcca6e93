"""The utterances optimize gates and calibrates on: a manifest's audio through the profile's frontend."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from ..batching import assemble
from ..datasets import BadEntry, read_manifest
from ..errors import AscendAsrError, ManifestError
from ..featurize import featurize
from ..frontends import build_frontend
from ..prep import utterance_tensors
from ..profiles import Profile

# the bundled held-out clips (FSDD digits of an unseen speaker, synthesized sentences no model heard)
HELDOUT_MANIFEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "speech",
                                "heldout", "manifest.tsv")


@dataclass(frozen=True)
class GateUtterance:
    """One utterance as the model sees it at batch 1: its inputs padded to the smallest gear that holds it."""

    id: str
    text: str  # the reference, normalised to the vocabulary
    feeds: dict  # input name -> array with a batch axis of 1
    valid_frames: int
    gear: int


def load_utterances(manifest: str, profile: Profile, limit: int | None = None, out=sys.stderr) -> tuple:
    """The manifest's utterances featurised by the profile's frontend. An utterance that cannot be read is
    reported on `out` and skipped; none left is a ManifestError."""
    frontend = build_frontend(profile.frontend, source=profile.source)
    utterances, skipped = [], 0
    for entry in read_manifest(manifest):
        if limit is not None and len(utterances) >= limit:
            break
        if isinstance(entry, BadEntry):
            print(f"[ascend-asr] skipped {entry.source}: {entry.message}", file=out)
            skipped += 1
            continue
        try:
            utt = featurize(frontend, entry.audio_path, profile.frames, profile_source=profile.source)
        except AscendAsrError as exc:
            print(f"[ascend-asr] skipped {entry.source or entry.audio_path}: {exc}", file=out)
            skipped += 1
            continue
        utterances.append(GateUtterance(entry.id, profile.vocabulary.normalize(entry.text),
                                        utterance_tensors(utt.feats, utt.valid, profile.inputs, utt.gear),
                                        utt.valid, utt.gear))
    if not utterances:
        raise ManifestError(f"{manifest}: no utterance could be featurised for profile {profile.name} ({skipped} "
                            "skipped); give a manifest of readable audio that fits the profile's frame gears")
    return tuple(utterances)


def batch_feeds(utterances, profile: Profile, batch: int, frames: int | None = None) -> dict:
    """One batch of `batch` rows (the utterances repeated as needed), padded to `frames` (default: the largest
    of their gears): the input the speed figures are measured on."""
    frames = frames or max(u.gear for u in utterances)
    rows = [utterances[i % len(utterances)].feeds for i in range(batch)]
    return assemble(rows, profile.inputs, batch, frames)


class FeedsReader:
    """onnxruntime.quantization's CalibrationDataReader over the utterances' batch-1 feeds; with `profile`, each
    padded to the largest gear among them (the histogram calibrators, entropy and percentile, stack every
    batch's activations into one array, so all must have one shape)."""

    def __init__(self, utterances, profile: Profile | None = None):
        if profile is None:
            self._feeds = [u.feeds for u in utterances]
        else:
            frames = max(u.gear for u in utterances)
            self._feeds = [assemble([u.feeds], profile.inputs, 1, frames) for u in utterances]
        self._next = 0

    def get_next(self):
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return {k: np.asarray(v) for k, v in self._feeds[self._next - 1].items()}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self._feeds)


def as_calibration_reader(utterances, profile: Profile | None = None):
    """A FeedsReader that onnxruntime.quantization accepts as a CalibrationDataReader (one shape with `profile`)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(FeedsReader, CalibrationDataReader):
        pass

    return _Reader(utterances, profile)
