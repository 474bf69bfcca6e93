"""Feature frontends: audio samples -> model input features, one class per definition."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .errors import AudioError, ProfileError
from .mel import slaney_mel_filterbank
from .kaldi_fbank import KaldiFbankSpliced, KaldiFbankSplicedParams
from .spectrogram import DeepSpeechSpectrogram, SpectrogramParams


@dataclass(frozen=True)
class JasperFilterbankParams:
    """NVIDIA Jasper `FilterbankFeatures` (DeepLearningExamples, common/features.py)."""

    sample_rate: int = 16000
    window_size: float = 0.02
    window_stride: float = 0.01
    n_fft: int = 512
    n_mels: int = 64
    preemph: float = 0.97
    log_zero_guard: float = 1e-20
    std_eps: float = 1e-5
    dither: float = 0.0  # NVIDIA applies 1e-5 even in eval; off here so results are reproducible
    pad_align: int = 16
    trim_silence: bool = False
    trim_top_db: float = 60.0


class JasperFilterbank:
    """Log-mel filterbank with per-feature normalisation over the valid frames.

    Equivalent to torch.stft(center=True, reflect) with a symmetric Hann window of
    `window_size` seconds centred in an `n_fft` frame, power spectrum, Slaney mel filters,
    log(x + 1e-20), (x - mean) / (unbiased std + 1e-5) over the ceil(N / hop) valid frames,
    zeros beyond them.
    """

    name = "jasper_filterbank"

    def __init__(self, params: JasperFilterbankParams = JasperFilterbankParams(), seed: int | None = None):
        self.params = params
        self.win_length = int(params.sample_rate * params.window_size)
        self.hop_length = int(params.sample_rate * params.window_stride)
        if self.win_length > params.n_fft:
            raise ProfileError(f"window of {self.win_length} samples exceeds n_fft={params.n_fft}")
        n = np.arange(self.win_length)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (self.win_length - 1))
        # The window sits centred in the n_fft frame; its zero margins only shift the frame,
        # which leaves the power spectrum unchanged, so only win_length samples are framed.
        self.window_offset = (params.n_fft - self.win_length) // 2
        self.mel_basis_t = np.ascontiguousarray(
            slaney_mel_filterbank(params.sample_rate, params.n_fft, params.n_mels).T, dtype=np.float64)
        self._rng = np.random.default_rng(seed)

    @property
    def feature_size(self) -> int:
        return self.params.n_mels

    def num_frames(self, num_samples: int) -> int:
        """STFT frames for `num_samples`, before alignment padding."""
        return 1 + num_samples // self.hop_length

    def aligned_frames(self, num_samples: int) -> int:
        align = self.params.pad_align
        frames = self.num_frames(num_samples)
        return frames if align <= 1 else align * math.ceil(frames / align)

    def valid_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    def prepare_samples(self, samples: np.ndarray) -> np.ndarray:
        """Silence trimming, when enabled; applied before features are computed."""
        if self.params.trim_silence:
            from .audio import trim_silence

            samples = trim_silence(samples, self.params.trim_top_db)
        return samples

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """Return features [n_mels, 1 + N // hop] (float32) and the valid frame count."""
        p = self.params
        # float64 throughout: in bands the audio leaves empty (8 kHz sources resampled to 16 kHz)
        # float32 rounding noise would dominate the power, and log() magnifies it
        x = np.asarray(samples, dtype=np.float64)
        half = p.n_fft // 2
        if x.ndim != 1 or len(x) <= half:
            raise AudioError(f"audio of {len(x)} samples is too short for the frontend: it needs more than "
                             f"{half} samples ({half / p.sample_rate * 1000:.0f} ms); remove it from the manifest")
        if p.dither > 0:
            x = x + p.dither * self._rng.standard_normal(len(x))
        if p.preemph:
            x = np.concatenate([x[:1], x[1:] - p.preemph * x[:-1]])
        padded = np.pad(x, half, mode="reflect")
        n_frames = self.num_frames(len(x))
        frames = np.lib.stride_tricks.as_strided(
            padded[self.window_offset:], shape=(n_frames, self.win_length),
            strides=(padded.strides[0] * self.hop_length, padded.strides[0]), writeable=False)
        spectrum = np.fft.rfft(frames * self.window, n=p.n_fft, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        mel = np.log(power @ self.mel_basis_t + p.log_zero_guard)  # [T, n_mels]
        valid = min(self.valid_frames(len(x)), n_frames)
        head = mel[:valid]
        mean = head.mean(axis=0)
        std = head.std(axis=0, ddof=1) if valid > 1 else np.zeros_like(mean)
        feats = np.zeros((p.n_mels, n_frames), dtype=np.float32)
        feats[:, :valid] = ((head - mean) / (std + p.std_eps)).T
        return feats, valid


FRONTENDS = {JasperFilterbank.name: (JasperFilterbank, JasperFilterbankParams),
             DeepSpeechSpectrogram.name: (DeepSpeechSpectrogram, SpectrogramParams),
             KaldiFbankSpliced.name: (KaldiFbankSpliced, KaldiFbankSplicedParams)}


def build_frontend(spec: dict, seed: int | None = None):
    """Build a frontend from a profile's `frontend:` mapping (`name` plus parameters)."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in FRONTENDS:
        raise ProfileError(f"unknown frontend {name!r}; known: {sorted(FRONTENDS)}")
    cls, params_cls = FRONTENDS[name]
    known = {f.name for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ProfileError(f"frontend {name}: unknown parameters {unknown}; known: {sorted(known)}")
    return cls(params_cls(**spec), seed=seed)


def frontend_spec(frontend) -> dict:
    """The mapping `build_frontend` takes back: recorded in bundles and prep/."""
    return {"name": frontend.name, **dataclasses.asdict(frontend.params)}
