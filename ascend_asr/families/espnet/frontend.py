"""ESPnet2's `default` frontend (espnet2/asr/frontend/default.py): STFT, power, log-mel, per utterance.

ESPnet computes `torch.stft(center=True, pad_mode="reflect", window=<periodic window of win_length centred
in n_fft>)`, the power |X|^2, `power @ librosa.filters.mel(fs, n_fft, n_mels, fmin, fmax, htk=False)` (Slaney
scale and area normalisation), `clamp(min=1e-10)` and the natural log. Normalisation (`global_mvn`,
`utterance_mvn`) is the model's first layer here, as in ESPnetASRModel, so the features are the log-mels.

In a padded ESPnet batch the last frames of a shorter utterance see zeros instead of the reflected signal
(its STFT runs over the padded waveform); computed per utterance, as here, every utterance gets what
ESPnet gives it alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import AudioError, ProfileError
from ...mel import slaney_mel_filterbank

WINDOWS = ("hann", "hamming", "blackman", "bartlett")


@dataclass(frozen=True)
class EspnetFrontendParams:
    """`frontend_conf` of an ESPnet2 config.yaml; `fft_length` is ESPnet's `n_fft` (any length, e.g. 400)."""

    sample_rate: int = 16000        # fs
    fft_length: int = 512           # n_fft
    win_length: int | None = None   # None: n_fft
    hop_length: int = 128
    window: str = "hann"
    center: bool = True
    normalized: bool = False
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None       # None: fs / 2
    log_floor: float = 1e-10        # LogMel's clamp(min=1e-10)
    pad_align: int = 1              # not ESPnet's: frames padded to a multiple (the graph masks them)


def periodic_window(name: str, length: int) -> np.ndarray:
    """torch.{name}_window(length) (periodic=True), in float64."""
    n = np.arange(length)
    phase = 2 * np.pi * n / length
    if name == "hann":
        return 0.5 - 0.5 * np.cos(phase)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(phase)
    if name == "blackman":
        return 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2 * phase)
    if name == "bartlett":
        return 1 - np.abs(2 * n / length - 1)
    raise ProfileError(f"espnet_default window {name!r}: known {list(WINDOWS)}")


class EspnetDefaultFrontend:
    """Log-mel features [n_mels, frames] of one utterance, as ESPnet's DefaultFrontend computes them."""

    name = "espnet_default"

    def __init__(self, params: EspnetFrontendParams = EspnetFrontendParams(), seed: int | None = None):
        self.params = params
        p = params
        self.win_length = p.win_length or p.fft_length
        if self.win_length > p.fft_length or self.win_length < 2 or p.hop_length < 1:
            raise ProfileError(f"espnet_default: win_length {self.win_length} must be 2..fft_length "
                               f"({p.fft_length}) and hop_length {p.hop_length} at least 1")
        if p.window not in WINDOWS:
            raise ProfileError(f"espnet_default window {p.window!r}: known {list(WINDOWS)}")
        self.hop_length = p.hop_length
        window = np.zeros(p.fft_length)
        left = (p.fft_length - self.win_length) // 2  # torch.stft centres a shorter window in n_fft
        window[left:left + self.win_length] = periodic_window(p.window, self.win_length)
        self.window = window
        fmax = p.sample_rate / 2 if p.fmax is None else p.fmax
        self.mel_basis_t = np.ascontiguousarray(
            slaney_mel_filterbank(p.sample_rate, p.fft_length, p.n_mels, p.fmin, fmax).T, dtype=np.float64)

    @property
    def feature_size(self) -> int:
        return self.params.n_mels

    def num_frames(self, num_samples: int) -> int:
        """ESPnet's Stft output length: (N + 2 * (n_fft // 2) - n_fft) // hop + 1 when centred."""
        p = self.params
        padded = num_samples + 2 * (p.fft_length // 2) if p.center else num_samples
        return max(0, (padded - p.fft_length) // p.hop_length + 1)

    def aligned_frames(self, num_samples: int) -> int:
        frames, align = self.num_frames(num_samples), max(1, self.params.pad_align)
        return -(-frames // align) * align

    def valid_frames(self, num_samples: int) -> int:
        return self.num_frames(num_samples)

    def prepare_samples(self, samples: np.ndarray) -> np.ndarray:
        return samples

    def mel_matrix(self) -> np.ndarray:
        """[1 + n_fft // 2, n_mels] float32: what ESPnet stores as `frontend.logmel.melmat`."""
        return self.mel_basis_t.astype(np.float32)

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        p = self.params
        x = np.asarray(samples, dtype=np.float64)
        half = p.fft_length // 2
        if x.ndim != 1 or (p.center and len(x) <= half) or (not p.center and len(x) < p.fft_length):
            raise AudioError(f"audio of {len(x)} samples is too short for ESPnet's STFT: it needs more than "
                             f"{half if p.center else p.fft_length - 1} samples; remove it from the manifest")
        padded = np.pad(x, half, mode="reflect") if p.center else x
        n_frames = self.num_frames(len(x))
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(n_frames, p.fft_length), strides=(padded.strides[0] * p.hop_length, padded.strides[0]),
            writeable=False)
        spectrum = np.fft.rfft(frames * self.window, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        if p.normalized:  # torch.stft(normalized=True) scales by n_fft ** -0.5
            power = power / p.fft_length
        mel = np.log(np.maximum(power @ self.mel_basis_t, p.log_floor))
        return mel.T.astype(np.float32), n_frames


def frontend_from_espnet(cfg: dict, source: str) -> dict:
    """espnet_default parameters from config.yaml's `frontend_conf` (ESPnet's defaults where absent)."""
    conf = dict(cfg.get("frontend_conf") or {})
    refused = {"onesided": True, "htk": False, "apply_stft": True, "log_base": None}
    for key, supported in refused.items():
        if key in conf and conf[key] != supported:
            raise ProfileError(f"{source}: frontend_conf {key}: {conf[key]!r} is not implemented (only {supported!r})")
    if (conf.get("frontend_conf") or {}).get("use_wpe") or (conf.get("frontend_conf") or {}).get("use_beamformer"):
        raise ProfileError(f"{source}: frontend_conf.frontend_conf: WPE / beamforming is not implemented")
    fs = conf.get("fs", 16000)
    if isinstance(fs, str):  # ESPnet accepts "16k" (humanfriendly.parse_size)
        digits = fs.lower().rstrip("hz").rstrip()
        fs = int(float(digits[:-1]) * 1000) if digits.endswith("k") else int(digits)
    out = {"sample_rate": int(fs), "fft_length": int(conf.get("n_fft", 512)),
           "win_length": conf.get("win_length"), "hop_length": int(conf.get("hop_length", 128)),
           "window": conf.get("window", "hann"), "center": bool(conf.get("center", True)),
           "normalized": bool(conf.get("normalized", False)), "n_mels": int(conf.get("n_mels", 80)),
           "fmin": float(conf.get("fmin") or 0.0), "fmax": None if conf.get("fmax") is None else float(conf["fmax"])}
    if out["window"] is None:
        raise ProfileError(f"{source}: frontend_conf window: null (a rectangular window) is not implemented")
    return out
