"""Audio loading: any soundfile format to mono float32 at the model's sample rate."""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from .errors import AudioError

SAMPLE_RATE = 16000
TRIM_FRAME_LENGTH = 2048  # librosa.effects.trim defaults, as the NVIDIA Jasper pipeline calls it
TRIM_HOP_LENGTH = 512


def special_file_problem(path: str) -> str:
    """What `path` is when it exists but is no regular file ("a folder", "not a regular file (a FIFO)", "a broken
    symbolic link or a link loop"), or "" (a regular file, or nothing there at all)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if os.path.islink(path):
            return f"a broken symbolic link or a link loop ({exc.strerror})"
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return ""
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "special")
    return f"not a regular file ({kind})"


def load_audio(path: str, sample_rate: int = SAMPLE_RATE, *, resample: bool = True,
               mix_to_mono: bool = True) -> np.ndarray:
    """Read `path` as float32 mono samples in [-1, 1] at `sample_rate`.

    Integer PCM is scaled by 2**-(bits-1) (soundfile does this); several channels are averaged
    unless `mix_to_mono` is False; another sample rate is resampled with libsoxr unless
    `resample` is False. Either refusal raises AudioError naming the file and the fix.
    """
    problem = special_file_problem(path)
    if problem:
        raise AudioError(f"{path}: {problem}, not an audio file; point the manifest at a WAV or FLAC file")
    if not os.path.isfile(path):
        raise AudioError(f"{path}: audio file not found; check the manifest's path "
                         "(relative paths are read from the manifest's folder)")
    try:
        samples, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's errors, and anything else a malformed file provokes
        raise AudioError(f"{path}: cannot decode audio ({exc}); convert it to WAV or FLAC, "
                         "e.g. `sox in out.wav`") from exc
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: audio is empty (0 samples); re-record it or remove it from the manifest")
    channels = samples.shape[1]
    if channels > 1 and not mix_to_mono:
        raise AudioError(f"{path}: expected 1 channel, found {channels}; mix it down "
                         f"(`sox {path} -c 1 out.wav`) or allow mixing to mono")
    check_finite(samples, path)
    mono = samples.mean(axis=1, dtype=np.float32) if channels > 1 else samples[:, 0]
    if file_rate != sample_rate:
        if not resample:
            raise AudioError(f"{path}: expected {sample_rate} Hz, found {file_rate} Hz; resample it "
                             f"(`sox {path} -r {sample_rate} out.wav`) or allow resampling")
        mono = resample_audio(mono, file_rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_finite(samples: np.ndarray, name: str = "audio") -> None:
    """Refuse NaN or infinite samples (a corrupt float WAV): they would turn every feature into NaN."""
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        kinds = "/".join(k for k, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf))
                         if test(samples).any())
        raise AudioError(f"{name}: {bad} of {finite.size} samples are not finite ({kinds}); the file is corrupt: "
                         "re-export it (e.g. `sox in.wav -e signed -b 16 out.wav`) or remove it from the manifest")


def resample_audio(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with libsoxr at its high-quality setting."""
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def trim_silence(samples: np.ndarray, top_db: float = 60.0, frame_length: int = TRIM_FRAME_LENGTH,
                 hop_length: int = TRIM_HOP_LENGTH) -> np.ndarray:
    """Cut leading and trailing frames quieter than `top_db` below the loudest frame."""
    start, end = silence_bounds(samples, top_db, frame_length, hop_length)
    return samples[start:end]


def silence_bounds(samples: np.ndarray, top_db: float = 60.0, frame_length: int = TRIM_FRAME_LENGTH,
                   hop_length: int = TRIM_HOP_LENGTH) -> tuple[int, int]:
    """(start, end) sample indices of what trimming keeps: the definition of `librosa.effects.trim` (centred,
    zero-padded RMS frames; power in dB relative to the maximum, floored at 1e-10), which the NVIDIA Jasper
    evaluation applies. All silent: (0, 0)."""
    pad = frame_length // 2
    padded = np.pad(samples.astype(np.float64), pad)
    n_frames = 1 + (len(padded) - frame_length) // hop_length
    cumsum = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    starts = np.arange(n_frames) * hop_length
    mean_square = (cumsum[starts + frame_length] - cumsum[starts]) / frame_length
    power_db = 10.0 * np.log10(np.maximum(mean_square, 1e-10))
    power_db -= 10.0 * np.log10(max(1e-10, mean_square.max()))
    loud = np.flatnonzero(power_db > -top_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * hop_length), min(len(samples), int((loud[-1] + 1) * hop_length))
