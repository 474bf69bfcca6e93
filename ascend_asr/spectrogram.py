"""DeepSpeech2's spectrogram frontend (deepspeech.pytorch V3.0 `SpectrogramParser`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import AudioError, ProfileError


@dataclass(frozen=True)
class SpectrogramParams:
    sample_rate: int = 16000
    window_size: float = 0.02
    window_stride: float = 0.01
    window: str = "hamming"
    normalize: bool = True
    pad_align: int = 1


def periodic_window(name: str, length: int) -> np.ndarray:
    """scipy.signal.get_window(name, length, fftbins=True): the periodic form librosa uses."""
    n = np.arange(length)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * n / length)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * n / length)
    raise ProfileError(f"spectrogram window {name!r}: use hamming or hann")


class DeepSpeechSpectrogram:
    """log1p |STFT| with global normalisation, as deepspeech.pytorch computes it with librosa 0.8.

    n_fft = win_length = window_size * rate, hop = window_stride * rate, centred frames with
    reflect padding (librosa 0.8's default; 0.10 changed it, so it is set explicitly here),
    magnitude, log1p, then (x - mean) / std over the whole matrix (torch's unbiased std).
    Padding to a compiled shape comes after normalisation, with zeros, as the ModelZoo collate pads.
    """

    name = "deepspeech_spectrogram"

    def __init__(self, params: SpectrogramParams = SpectrogramParams(), seed: int | None = None):
        self.params = params
        self.n_fft = self.win_length = int(params.sample_rate * params.window_size)
        self.hop_length = int(params.sample_rate * params.window_stride)
        self.window = periodic_window(params.window, self.win_length)

    @property
    def feature_size(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length

    def aligned_frames(self, num_samples: int) -> int:
        align, frames = self.params.pad_align, self.num_frames(num_samples)
        return frames if align <= 1 else align * -(-frames // align)

    def valid_frames(self, num_samples: int) -> int:
        return self.num_frames(num_samples)  # every centred frame is real audio

    def prepare_samples(self, samples: np.ndarray) -> np.ndarray:
        return samples

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """Return the spectrogram [n_fft/2 + 1, 1 + N // hop] (float32) and its frame count."""
        x = np.asarray(samples, dtype=np.float64)
        half = self.n_fft // 2
        if x.ndim != 1 or len(x) <= half:
            raise AudioError(f"audio of {len(x)} samples is too short for the spectrogram: it needs more than "
                             f"{half} samples; remove it from the manifest")
        padded = np.pad(x, half, mode="reflect")
        n_frames = self.num_frames(len(x))
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(n_frames, self.n_fft), strides=(padded.strides[0] * self.hop_length, padded.strides[0]),
            writeable=False)
        spect = np.log1p(np.abs(np.fft.rfft(frames * self.window, axis=1))).T  # [F, T]
        if self.params.normalize:
            std = spect.std(ddof=1) if spect.size > 1 else 0.0
            spect = (spect - spect.mean()) / (std if std > 0 else 1.0)
        return spect.astype(np.float32), n_frames
