"""Synthetic voices: which exist, which train, and which are held out for the unseen-voice test."""
from __future__ import annotations

import random
from dataclasses import dataclass

# espeak-ng's English accents (its gmw voices) and voice variants (pitch/formant/klatt sets)
ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-029", "en-us-nyc",
                  "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3"]
FLITE_VOICES = ["awb", "rms", "slt", "kal16"]

# Held out from training entirely: one accent, and three variants in every accent.
HELD_OUT_ACCENTS = ["en-gb-x-gbcwmd"]
HELD_OUT_VARIANTS = ["m6", "f4", "klatt3"]


@dataclass(frozen=True)
class Voice:
    engine: str        # "espeak-ng" or "flite"
    name: str          # espeak-ng "accent+variant", or a flite voice
    rate: float        # espeak-ng words per minute, or flite duration stretch
    pitch: float       # espeak-ng pitch 0-99, or flite mean F0 in Hz
    band_limited: bool  # passed through a 3.8 kHz low-pass, like the 8 kHz recorded digits

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}"


def espeak_names(held_out: bool) -> list[str]:
    names = []
    for accent in ESPEAK_ACCENTS:
        for variant in ESPEAK_VARIANTS:
            unseen = accent in HELD_OUT_ACCENTS or variant in HELD_OUT_VARIANTS
            if unseen == held_out:
                names.append(f"{accent}+{variant}")
    return names


def random_voice(rng: random.Random, held_out: bool = False, band_limited_share: float = 0.25) -> Voice:
    """A seen (training) or unseen voice with a random speaking rate and pitch."""
    band = rng.random() < band_limited_share
    if not held_out and rng.random() < 0.3:
        return Voice("flite", rng.choice(FLITE_VOICES), round(rng.uniform(0.85, 1.2), 2),
                     round(rng.uniform(90, 180)), band)
    return Voice("espeak-ng", rng.choice(espeak_names(held_out)), rng.randint(130, 200), rng.randint(25, 75), band)
