"""Mel filterbanks: the Slaney-style definition librosa.filters.mel uses by default."""
from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Hz per mel below the break frequency
_MIN_LOG_HZ = 1000.0
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(freqs: np.ndarray) -> np.ndarray:
    freqs = np.asarray(freqs, dtype=np.float64)
    linear = freqs / _F_SP
    log_part = _MIN_LOG_HZ / _F_SP + np.log(np.maximum(freqs, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(freqs >= _MIN_LOG_HZ, log_part, linear)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(mels >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - min_log_mel)), _F_SP * mels)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
    """[n_mels, 1 + n_fft//2] triangular filters, area-normalised ("slaney"), in float32."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)
