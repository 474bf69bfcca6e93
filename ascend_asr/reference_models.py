"""The trained reference models shipped with the package (made by ascend_asr.recipes.train_reference)."""
from __future__ import annotations

import os

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "models")
# profile -> checkpoint file, in the family's upstream format
REFERENCE_CHECKPOINTS = {
    "jasper_small": "jasper_small.pt",
    "deepspeech2_small": "deepspeech2_small.ckpt",
    "lstm_ctc_char": "lstm_ctc_char.pth.tar",
}


def reference_checkpoint(profile_name: str) -> str | None:
    """The shipped trained checkpoint of a profile, or None when the profile has none."""
    name = REFERENCE_CHECKPOINTS.get(profile_name)
    path = os.path.join(REFERENCE_DIR, name) if name else None
    return path if path and os.path.isfile(path) else None
