"""Running espeak-ng, flite and sox: text to 16 kHz mono 16-bit WAV, and speed perturbation."""
from __future__ import annotations

import os
import subprocess
import tempfile

from ..errors import AscendAsrError
from .voices import Voice

SAMPLE_RATE = 16000
BAND_LIMIT_EFFECT = ["sinc", "-3.8k"]  # the band an 8 kHz recording holds


class SynthesisError(AscendAsrError):
    pass


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SynthesisError(f"{what}: `{' '.join(cmd)}` exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")


def _sox_to_16k(src: str, dst: str, effects: list[str], what: str) -> None:
    _run(["sox", "-V1", src, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", dst, *effects], what)


def synthesize(text: str, voice: Voice, path: str) -> None:
    """Speak `text` with `voice` into `path`; written atomically, so a crash leaves no partial file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path) or ".") as tmp:
        raw = os.path.join(tmp, "raw.wav")
        if voice.engine == "espeak-ng":
            _run(["espeak-ng", "-v", voice.name, "-s", str(int(voice.rate)), "-p", str(int(voice.pitch)), "-w", raw,
                  text], f"{path}: espeak-ng")
        elif voice.engine == "flite":
            _run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={voice.rate}",
                  "--setf", f"int_f0_target_mean={voice.pitch}", "-t", text, "-o", raw], f"{path}: flite")
        else:
            raise SynthesisError(f"{path}: unknown synthesis engine {voice.engine!r}")
        out = os.path.join(tmp, "out.wav")
        _sox_to_16k(raw, out, BAND_LIMIT_EFFECT if voice.band_limited else [], f"{path}: sox")
        os.replace(out, path)


def speed_perturb(src: str, dst: str, factor: float) -> None:
    """Kaldi-style speed perturbation (tempo and pitch together, as sox `speed`), resampled to 16 kHz."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = dst + ".part.wav"
    _sox_to_16k(src, tmp, ["speed", str(factor)], f"{dst}: sox speed {factor}")
    os.replace(tmp, dst)
