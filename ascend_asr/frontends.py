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
        start, end = self.kept_span(samples)
        return samples[start:end]

    def kept_span(self, samples: np.ndarray) -> tuple[int, int]:
        """(start, end) of the samples prepare_samples keeps: word times add the trimmed start back."""
        if not self.params.trim_silence:
            return 0, len(samples)
        from .audio import silence_bounds

        return silence_bounds(samples, self.params.trim_top_db)

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


def known_frontends() -> dict:
    """name -> (frontend class, parameter dataclass): the built-in ones plus those a family declares in its
    `frontends` attribute (a family package owns its frontend; the pipeline learns it from the registry)."""
    from .families import registry

    known = dict(FRONTENDS)
    for family in registry().values():
        for cls, params_cls in getattr(family, "frontends", ()) or ():
            known.setdefault(cls.name, (cls, params_cls))
    return known


MAX_N_FFT = 65536
MAX_MEL_BINS = 512
KALDI_WINDOWS = ("hamming", "hanning", "povey", "rectangular", "sine", "blackman")
_FRONTEND_FIX = "fix the profile's frontend: mapping (or run `ascend-asr profile` again)"


def _range_problem(name: str, value, params: dict) -> str:
    """What is wrong with one frontend parameter's value (its type already checked), or ""."""
    def outside(low, high, low_open=False):
        if (value <= low if low_open else value < low) or value > high:
            return f"{name}: {value!r} is outside {'(' if low_open else '['}{low}, {high}]"
        return ""

    if name == "sample_rate":
        return outside(1000, 384000)
    if name in ("window_size", "window_stride"):
        return (problem := outside(0, 1.0, low_open=True)) and problem + " seconds"
    if name in ("frame_length_ms", "frame_shift_ms"):
        return (problem := outside(0, 1000.0, low_open=True)) and problem + " milliseconds"
    if name == "n_fft":
        if value < 2 or value > MAX_N_FFT or value & (value - 1):
            return f"n_fft: {value} is not a power of two from 2 to {MAX_N_FFT}"
        return ""
    if name in ("n_mels", "num_mel_bins"):
        return outside(1, MAX_MEL_BINS)
    if name == "preemph":
        return outside(0.0, 1.0)
    if name in ("log_zero_guard", "std_eps", "trim_top_db", "waveform_scale"):
        return outside(0, 1e30, low_open=True)
    if name == "dither":
        return outside(0.0, 1e30)
    if name == "pad_align":
        return outside(0, 4096)
    if name in ("left_context", "right_context"):
        return outside(0, 64)
    if name == "skip_frames":
        return outside(1, 64)
    if name == "window" and value not in ("hamming", "hann"):
        return f"window: {value!r} is not hamming or hann"
    if name == "window_type" and value not in KALDI_WINDOWS:
        return f"window_type: {value!r} is not one of Kaldi's {list(KALDI_WINDOWS)}"
    return ""


def _type_problem(name: str, value, annotation) -> str:
    """Types exactly as the parameter dataclass declares them: int (not bool, not 64.0), float (an int is fine,
    NaN/Inf are not), bool, str, and `X | None`."""
    text = str(annotation)
    if "None" in text and value is None:
        return ""
    if text.startswith("int") or annotation is int:
        ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif text.startswith("float") or annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        want = "a finite number"
    elif text.startswith("bool") or annotation is bool:
        ok, want = isinstance(value, bool), "true or false"
    elif text.startswith("str") or annotation is str:
        ok, want = isinstance(value, str), "a string" + (" or null" if "None" in text else "")
    else:
        return ""
    return "" if ok else f"{name}: expected {want}, found {value!r:.60}"


def check_frontend_spec(spec, where: str = "") -> tuple[str, dict]:
    """(name, parameters) of a profile's `frontend:` mapping, every parameter of the type its dataclass field
    declares and within range; otherwise ProfileError naming `where` (the profile or prep.json), the parameter,
    what was expected and found, and the fix."""
    prefix = f"{where}: frontend" if where else "frontend"
    if not isinstance(spec, dict):
        raise ProfileError(f"{prefix}: expected a mapping with 'name' and parameters, found {spec!r:.80}; "
                           f"{_FRONTEND_FIX}")
    spec = dict(spec)
    name = spec.pop("name", None)
    frontends = known_frontends()
    if not isinstance(name, str) or name not in frontends:
        raise ProfileError(f"{prefix}: unknown frontend {name!r}; known: {sorted(frontends)}")
    _, params_cls = frontends[name]
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(spec) - set(fields), key=str)
    if unknown:
        raise ProfileError(f"{prefix} {name}: unknown parameters {unknown}; known: {sorted(fields)}")
    import typing

    hints = typing.get_type_hints(params_cls)
    problems = [_type_problem(key, value, hints.get(key, fields[key].type)) for key, value in spec.items()]
    problems = [p for p in problems if p]
    if not problems:
        merged = {**{k: f.default for k, f in fields.items()}, **spec}
        problems = [p for p in (_range_problem(k, v, merged) for k, v in spec.items()) if p]
        if not problems:
            problems = _geometry_problems(name, merged)
    if problems:
        raise ProfileError(f"{prefix} {name}: {'; '.join(problems)}; {_FRONTEND_FIX}")
    return name, spec


def _geometry_problems(name: str, p: dict) -> list[str]:
    """Windows that are at least 2 samples, hops of at least 1, and n_fft that holds the window."""
    if "frame_length_ms" in p and "frame_shift_ms" in p:
        window, hop = int(p["sample_rate"] * p["frame_length_ms"] / 1000), int(p["sample_rate"] * p["frame_shift_ms"] / 1000)
    elif "window_size" in p and "window_stride" in p:
        window, hop = int(p["sample_rate"] * p["window_size"]), int(p["sample_rate"] * p["window_stride"])
    else:  # a family's frontend with other geometry parameters checks them itself
        return []
    problems = []
    if window < 2:
        problems.append(f"the window is {window} samples at {p['sample_rate']} Hz: it needs at least 2")
    if hop < 1:
        problems.append(f"the hop is {hop} samples at {p['sample_rate']} Hz: it needs at least 1")
    if "n_fft" in p and window > p["n_fft"]:
        problems.append(f"n_fft {p['n_fft']} is smaller than the window of {window} samples")
    if name == DeepSpeechSpectrogram.name and window > MAX_N_FFT:
        problems.append(f"the window of {window} samples (its FFT size) exceeds {MAX_N_FFT}")
    return problems


def build_frontend(spec: dict, seed: int | None = None, source: str = ""):
    """Build a frontend from a profile's `frontend:` mapping (`name` plus parameters), checked first
    (check_frontend_spec); `source` names the file it came from in errors."""
    name, params = check_frontend_spec(spec, source)
    cls, params_cls = known_frontends()[name]
    return cls(params_cls(**params), seed=seed)


def frontend_spec(frontend) -> dict:
    """The mapping `build_frontend` takes back: recorded in bundles and prep/."""
    return {"name": frontend.name, **dataclasses.asdict(frontend.params)}
