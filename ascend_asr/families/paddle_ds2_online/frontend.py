"""The DS2-online recipe's features: PaddleSpeech's `fbank_kaldi` then `cmvn_json` (conf/preprocess.yaml).

Upstream (PaddleSpeech, read at 969f3399):
- paddlespeech/audio/transform/spectrogram.py, LogMelSpectrogramKaldi: frame length win_length / (fs/1000)
  ms, shift n_shift / (fs/1000) ms, `dither` only when train=True, energy_floor (0.0 in the recipe), and
  every other option at paddleaudio's kaldi.fbank defaults;
- audio/paddleaudio/compliance/kaldi.py, fbank (torchaudio's Kaldi-compatible port): povey window
  (symmetric Hann ** 0.85), remove_dc_offset, preemphasis 0.97 with the frame's first sample replicated,
  FFT size rounded up to a power of two (400 -> 512), power spectrum, mel banks from 20 Hz to Nyquist
  (`1127 ln(1 + f/700)`, triangles in mel, the Nyquist bin weighted 0), log(max(x, 1e-7)), snip_edges;
- the samples are int16 values (soundfile.read(dtype="int16") in s2t/io/reader.py; the online engine
  reads the PCM bytes as int16), hence waveform_scale 32768 for our float samples in [-1, 1];
- paddlespeech/audio/transform/cmvn.py, GlobalCMVN: mean = mean_stat / frame_num,
  std = max(sqrt(var_stat / frame_num - mean^2), 1e-20), x = (x - mean) / std, from data/mean_std.json.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ...errors import AudioError, ProfileError

LOG_FLOOR = 1e-7  # kaldi.py _get_epsilon
STD_FLOOR = 1e-20  # GlobalCMVN std_floor


@dataclass(frozen=True)
class PaddleFbankParams:
    sample_rate: int = 16000
    n_mels: int = 161
    n_shift: int = 160      # samples
    win_length: int = 400   # samples
    energy_floor: float = 0.0
    dither: float = 0.0     # the recipe's 0.1 applies in training only
    waveform_scale: float = 32768.0  # upstream feeds int16 sample values
    low_freq: float = 20.0
    preemphasis: float = 0.97
    cmvn_stats: str | None = None  # the recipe's cmvn_path (data/mean_std.json); None: no normalisation


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def mel_banks(n_mels: int, n_fft: int, sample_rate: int, low_freq: float) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular weights (kaldi.py _get_mel_banks, its last FFT bin weighted 0)."""
    high_freq = 0.5 * sample_rate
    low, high = float(mel_scale(low_freq)), float(mel_scale(high_freq))
    delta = (high - low) / (n_mels + 1)
    left = low + np.arange(n_mels)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    mel = mel_scale(sample_rate / n_fft * np.arange(n_fft // 2))[None, :]
    weights = np.maximum(0.0, np.minimum((mel - left) / (center - left), (right - mel) / (right - center)))
    return np.concatenate([weights, np.zeros((n_mels, 1))], axis=1).T


def read_mean_std(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) from PaddleSpeech's mean_std.json (compute_mean_std.py: mean_stat, var_stat, frame_num), or from
    the same sums in compute-cmvn-stats' matrix (what ascend_asr.recipes writes; read by kaldi_fbank)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
        if not head.startswith(b"{"):
            from ...kaldi_fbank import read_cmvn_stats

            matrix = read_cmvn_stats(path)
            stats = {"mean_stat": matrix[0, :-1], "var_stat": matrix[1, :-1], "frame_num": matrix[0, -1]}
        else:
            with open(path, encoding="utf-8") as f:
                stats = json.load(f)
        count = stats["frame_num"]
        mean = np.asarray(stats["mean_stat"], dtype=np.float64) / count
        var = np.asarray(stats["var_stat"], dtype=np.float64) / count - mean ** 2
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the CMVN statistics ({exc.strerror or exc}); give the recipe's "
                           "data/mean_std.json as the frontend's cmvn_path") from None
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise ProfileError(f"{path}: not PaddleSpeech CMVN statistics ({type(exc).__name__}: {exc}); expected JSON "
                           "with mean_stat, var_stat (lists) and frame_num, as utils/compute_mean_std.py writes") from None
    if mean.ndim != 1 or mean.shape != var.shape or not count or count < 1:
        raise ProfileError(f"{path}: mean_stat and var_stat must be lists of one length and frame_num >= 1")
    return mean, np.maximum(np.sqrt(np.maximum(var, 0.0)), STD_FLOOR)


class PaddleFbank:
    """Samples in [-1, 1] -> features [n_mels, T] (float32), T = 1 + (N - win_length) // n_shift."""

    name = "paddle_kaldi_fbank"

    def __init__(self, params: PaddleFbankParams = PaddleFbankParams(), seed: int | None = None):
        p = self.params = params
        if p.win_length < 2 or p.n_shift < 1 or p.n_mels < 4:
            raise ProfileError(f"{self.name}: win_length {p.win_length}, n_shift {p.n_shift}, n_mels {p.n_mels}: "
                               "the window needs 2 samples, the shift 1 and the mel banks 4 bins")
        self.hop_length = p.n_shift
        self.n_fft = 1 << (p.win_length - 1).bit_length()
        n = np.arange(p.win_length)
        self.window = (0.5 - 0.5 * np.cos(2 * math.pi * n / (p.win_length - 1))) ** 0.85  # povey
        self.banks = mel_banks(p.n_mels, self.n_fft, p.sample_rate, p.low_freq)
        self._cmvn = None
        self._rng = np.random.default_rng(seed)

    @property
    def feature_size(self) -> int:
        return self.params.n_mels

    def num_frames(self, num_samples: int) -> int:
        win = self.params.win_length
        return 0 if num_samples < win else 1 + (num_samples - win) // self.params.n_shift

    def aligned_frames(self, num_samples: int) -> int:
        return self.num_frames(num_samples)

    def valid_frames(self, num_samples: int) -> int:
        return self.num_frames(num_samples)

    def prepare_samples(self, samples: np.ndarray) -> np.ndarray:
        return samples

    def cmvn(self):
        if self._cmvn is None and self.params.cmvn_stats:
            mean, std = read_mean_std(self.params.cmvn_stats)
            if mean.shape[0] != self.params.n_mels:
                raise ProfileError(f"{self.params.cmvn_stats}: statistics of {mean.shape[0]} bins, but the fbank has "
                                   f"{self.params.n_mels}; use the mean_std.json of the recipe the model was trained with")
            self._cmvn = (mean, std)
        return self._cmvn

    def fbank(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel fbank [T, n_mels] (float64), before CMVN."""
        p = self.params
        x = np.asarray(samples, dtype=np.float64) * p.waveform_scale
        frames = self.num_frames(len(x)) if x.ndim == 1 else 0
        if frames < 1:
            raise AudioError(f"audio of {len(x)} samples is too short for the frontend: it needs at least "
                             f"{p.win_length} samples ({p.win_length / p.sample_rate * 1000:.0f} ms); remove it "
                             "from the manifest")
        strided = np.lib.stride_tricks.as_strided(x, shape=(frames, p.win_length),
                                                  strides=(x.strides[0] * p.n_shift, x.strides[0]), writeable=False)
        if p.dither:
            strided = strided + p.dither * self._rng.standard_normal(strided.shape)
        strided = strided - strided.mean(axis=1, keepdims=True)
        previous = np.concatenate([strided[:, :1], strided[:, :-1]], axis=1)
        windowed = (strided - p.preemphasis * previous) * self.window
        spectrum = np.abs(np.fft.rfft(windowed, n=self.n_fft, axis=1)) ** 2
        return np.log(np.maximum(spectrum @ self.banks, LOG_FLOOR))

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        feats = self.fbank(samples)
        cmvn = self.cmvn()
        if cmvn is not None:
            feats = (feats - cmvn[0]) / cmvn[1]
        return np.ascontiguousarray(feats.T, dtype=np.float32), feats.shape[0]
