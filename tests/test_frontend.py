"""The Jasper frontend against independent implementations of asr_models.md §A.3."""
import math
import os

import librosa
import numpy as np
import pytest
import torch

from ascend_asr.audio import load_audio
from ascend_asr.errors import AudioError
from ascend_asr.frontends import JasperFilterbank, JasperFilterbankParams, build_frontend, frontend_spec
from ascend_asr.mel import slaney_mel_filterbank

from .conftest import ASSETS, CLIPS

REAL_CLIPS = [os.path.join(CLIPS, "librivox-0880.wav"), os.path.join(CLIPS, "goforward.wav"),
              os.path.join(ASSETS, "LibriSpeech/test-clean/61/70968/61-70968-0001.flac"),
              os.path.join(CLIPS, "3_jackson_0.wav")]


def numpy_reference(x: np.ndarray) -> np.ndarray:
    """§A.3 written out frame by frame in float64: np.hanning (symmetric) centred in a 512-point
    frame, full complex FFT, librosa's Slaney mel, log(x + 1e-20), per-feature unbiased std."""
    x = x.astype(np.float64)
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    padded = np.pad(x, 256, mode="reflect")
    window = np.zeros(512)
    window[96:416] = np.hanning(320)
    fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=0, fmax=8000, dtype=np.float64)
    n_frames = 1 + len(x) // 160
    out = np.empty((64, n_frames))
    for t in range(n_frames):
        spectrum = np.fft.fft(padded[t * 160: t * 160 + 512] * window)[:257]
        out[:, t] = np.log(fb @ np.abs(spectrum) ** 2 + 1e-20)
    valid = math.ceil(len(x) / 160)
    mean = out[:, :valid].mean(axis=1, keepdims=True)
    std = out[:, :valid].std(axis=1, ddof=1, keepdims=True)
    out = (out - mean) / (std + 1e-5)
    out[:, valid:] = 0
    return out


def torch_reference(x: np.ndarray) -> np.ndarray:
    """NVIDIA FilterbankFeatures' own calls: torch.stft(center, reflect), torch.hann_window(periodic=False)."""
    x = torch.from_numpy(x)[None]
    x = torch.cat([x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]], dim=1)
    spec = torch.stft(x, n_fft=512, hop_length=160, win_length=320, center=True, pad_mode="reflect",
                      window=torch.hann_window(320, periodic=False), return_complex=True)
    fb = torch.tensor(librosa.filters.mel(sr=16000, n_fft=512, n_mels=64), dtype=torch.float)
    m = torch.log(torch.matmul(fb, spec.abs().pow(2)) + 1e-20)[0]
    valid = math.ceil(x.shape[1] / 160)
    mean, std = m[:, :valid].mean(dim=1, keepdim=True), m[:, :valid].std(dim=1, keepdim=True)
    m = (m - mean) / (std + 1e-5)
    m[:, valid:] = 0
    return m.numpy()


def relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("path", REAL_CLIPS, ids=os.path.basename)
def test_matches_numpy_reference_on_real_audio(path):
    x = load_audio(path)
    feats, valid = JasperFilterbank()(x)
    ref = numpy_reference(x)
    assert feats.shape == ref.shape and feats.dtype == np.float32
    assert valid == math.ceil(len(x) / 160)
    assert relative_error(feats, ref) <= 1e-4
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-4)


def test_matches_nvidia_torch_stft_formulation():
    x = load_audio(REAL_CLIPS[2])
    feats, _ = JasperFilterbank()(x)
    assert relative_error(feats, torch_reference(x)) <= 1e-4


def test_mel_filterbank_equals_librosa_slaney():
    ours = slaney_mel_filterbank(16000, 512, 64)
    np.testing.assert_allclose(ours, librosa.filters.mel(sr=16000, n_fft=512, n_mels=64), rtol=1e-5, atol=1e-8)


def test_frame_counts_and_zeros_beyond_valid_frames():
    fe = JasperFilterbank()
    x = load_audio(REAL_CLIPS[0])[: 160 * 200]  # 160 divides N: one STFT frame more than valid frames
    feats, valid = fe(x)
    assert feats.shape[1] == 201 and valid == 200
    assert np.all(feats[:, 200:] == 0) and np.any(feats[:, 199] != 0)
    assert fe.aligned_frames(len(x)) == 208


def test_dither_is_off_by_default_and_changes_features_when_on():
    x = load_audio(REAL_CLIPS[1])
    a, _ = JasperFilterbank()(x)
    b, _ = JasperFilterbank()(x)
    np.testing.assert_array_equal(a, b)
    d, _ = JasperFilterbank(JasperFilterbankParams(dither=1e-5), seed=0)(x)
    assert not np.array_equal(a, d)


def test_too_short_audio_is_a_clear_error():
    with pytest.raises(AudioError, match="too short"):
        JasperFilterbank()(np.zeros(200, dtype=np.float32))


def test_spec_round_trips_and_rejects_unknown_parameters():
    fe = build_frontend({"name": "jasper_filterbank", "n_mels": 64, "trim_silence": True})
    assert build_frontend(frontend_spec(fe)).params == fe.params
    with pytest.raises(Exception, match="unknown parameters"):
        build_frontend({"name": "jasper_filterbank", "n_filt": 64})
