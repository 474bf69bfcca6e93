"""ascend_asr.audio: loading, resampling, channel mixing, refusals, and silence trimming."""
import os

import numpy as np
import pytest
import soundfile as sf

from ascend_asr.audio import load_audio, resample_audio, trim_silence
from ascend_asr.errors import AscendAsrError, AudioError

CLIPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "ascend_asr", "assets", "speech", "clips")
CARDS = os.path.join(CLIPS, "cards-001.wav")      # 16 kHz mono PCM_16
JACKSON = os.path.join(CLIPS, "3_jackson_0.wav")  # 8 kHz mono PCM_16


def test_pcm16_scaled_by_32768(tmp_path):
    ints = np.array([0, 1, -1, 16384, -16384, 32767, -32768, 1234], dtype=np.int16)
    path = str(tmp_path / "ints.wav")
    sf.write(path, ints, 16000, subtype="PCM_16")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, ints.astype(np.float32) / 32768)


def test_real_clip_scaled_by_32768():
    ints, rate = sf.read(CARDS, dtype="int16")
    assert rate == 16000
    y = load_audio(CARDS)
    assert y.dtype == np.float32 and y.shape == ints.shape
    np.testing.assert_array_equal(y, ints.astype(np.float32) / 32768)


def test_8k_resampled_to_16k():
    frames = sf.info(JACKSON).frames
    y = load_audio(JACKSON)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 2 * frames) <= 4
    assert np.abs(y).max() > 0.01  # the speech survived


def test_resample_audio_doubles_length():
    x = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
    y = resample_audio(x, 8000, 16000)
    assert y.dtype == np.float32
    assert abs(len(y) - 16000) <= 4


def test_resample_false_refuses_with_rates_and_fix():
    with pytest.raises(AudioError) as info:
        load_audio(JACKSON, resample=False)
    msg = str(info.value)
    for part in (JACKSON, "8000", "16000", "resample"):
        assert part in msg


def test_stereo_mixed_to_mono(tmp_path):
    left, rate = sf.read(CARDS, dtype="int16")
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = str(tmp_path / "stereo.wav")
    sf.write(path, stereo, rate, subtype="PCM_16")
    y = load_audio(path)
    assert y.ndim == 1 and y.shape == left.shape
    np.testing.assert_allclose(y, left.astype(np.float32) / 32768 / 2, atol=1e-4)


def test_stereo_refused_without_mixing(tmp_path):
    left, rate = sf.read(CARDS, dtype="int16")
    path = str(tmp_path / "stereo.wav")
    sf.write(path, np.stack([left, left], axis=1), rate, subtype="PCM_16")
    with pytest.raises(AudioError) as info:
        load_audio(path, mix_to_mono=False)
    assert path in str(info.value) and "channel" in str(info.value)


def test_missing_file_names_path(tmp_path):
    path = str(tmp_path / "nope.wav")
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert path in str(info.value)


def test_empty_wav_names_path(tmp_path):
    path = str(tmp_path / "empty.wav")
    sf.write(path, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    assert sf.info(path).frames == 0
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert path in str(info.value)


def test_garbage_bytes_names_path(tmp_path):
    path = str(tmp_path / "x.wav")
    with open(path, "wb") as f:
        f.write(b"this is not audio at all \x00\x01\x02" * 20)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert path in str(info.value)


def test_audio_error_is_package_error():
    assert issubclass(AudioError, AscendAsrError) and issubclass(AscendAsrError, Exception)


@pytest.mark.parametrize("lead, tail", [(5300, 7000), (3001, 5000)])
def test_trim_matches_librosa(lead, tail):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    clip = load_audio(CARDS)
    y = np.concatenate([np.zeros(lead, dtype=np.float32), clip,
                        (1e-5 * rng.standard_normal(tail)).astype(np.float32)])
    expected = librosa.effects.trim(y, top_db=60)[0]
    got = trim_silence(y)
    assert len(got) < len(y)  # the padding was actually cut
    np.testing.assert_array_equal(got, expected)


def test_trim_matches_librosa_on_fades():
    """Decaying edges cross -60 dB gradually, so the threshold itself is exercised."""
    librosa = pytest.importorskip("librosa")
    n = np.arange(16000)
    fade = (0.3 * np.sin(2 * np.pi * 300 * n / 16000) * np.exp(-n / 1500)).astype(np.float32)
    y = np.concatenate([fade[::-1], load_audio(CARDS), fade])
    expected = librosa.effects.trim(y, top_db=60)[0]
    got = trim_silence(y)
    assert len(got) < len(y)
    np.testing.assert_array_equal(got, expected)
    assert len(trim_silence(y, top_db=50)) < len(got) < len(trim_silence(y, top_db=70))
