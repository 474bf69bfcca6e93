"""Kaldi fbank + global CMVN + frame splicing: the LSTM-CTC (TIMIT) frontend, 243-dim features.

The ModelZoo LSTM (Diamondfan/CTC_pytorch) computes its features in Kaldi: `compute-fbank-feats`
with `conf/fbank.conf` (`--window-type=hamming --num-mel-bins=80 --use-energy`, every other option
at its Kaldi default), then `apply-cmvn --norm-vars=true` with global statistics of the train set,
then in Python `make_context(feat, 0, 2)` and `skip_feat(feat, 2)` (utils/tools.py) and zero
padding to an even frame count (utils/data_loader.py). Here the fbank comes from
kaldi-native-fbank, which implements Kaldi's `compute-fbank-feats` without Kaldi.

CMVN statistics (`cmvn_stats`) are what `compute-cmvn-stats` writes: a 2 x (D+1) matrix whose
first row holds the per-dimension sums and the frame count (last column), and whose second row
holds the sums of squares (last column 0). Accepted forms:
  * Kaldi text (`--binary=false`, as ModelZoo's make_feat.sh writes `global_fbank_cmvn.txt`):
    `[ s_1 ... s_D n \\n q_1 ... q_D 0 ]`, optionally preceded by an archive key;
  * Kaldi binary (`\\0B` + `DM`/`FM` matrix, optionally preceded by an archive key);
  * NumPy: a `.npy` file, or plain text of 2 x (D+1) numbers (`np.savetxt`), same layout.
A relative path is read from the current directory.
"""
from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass

import numpy as np

from .errors import AudioError, ProfileError

# Kaldi reads 16-bit PCM as integers: its features, its dither amplitude and the CMVN statistics
# of a Kaldi-trained model all assume samples in [-32768, 32767], not [-1, 1].
KALDI_INT16_SCALE = 32768.0
KALDI_VAR_FLOOR = 1e-20  # apply-cmvn's variance floor (transform/cmvn.cc)


@dataclass(frozen=True)
class KaldiFbankSplicedParams:
    """Defaults: ModelZoo LSTM `conf/fbank.conf` and `conf/ctc_config.yaml`."""

    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    num_mel_bins: int = 80
    use_energy: bool = True  # log-energy in column 0 (Kaldi's place when not htk-compat)
    window_type: str = "hamming"
    dither: float = 0.0  # Kaldi's default is 1.0 (random); off for reproducible inference
    waveform_scale: float = KALDI_INT16_SCALE
    cmvn_stats: str | None = None  # global CMVN statistics file; None: no normalisation
    norm_vars: bool = True  # apply-cmvn --norm-vars=true
    left_context: int = 0  # ctc_config.yaml left_ctx
    right_context: int = 2  # right_ctx
    skip_frames: int = 2  # n_skip_frame: keep frames whose index % skip_frames == 0
    pad_align: int = 2  # n_downsample: zero-pad the frame count to a multiple of this


class KaldiFbankSpliced:
    """Samples -> features [(num_mel_bins + use_energy) * (left + 1 + right), T] (243 x T by default).

    T is the spliced-and-skipped frame count padded to `pad_align`; the valid count returned
    with it is the count before that padding. The profile's frame count (390) is reached by the
    zero padding every pipeline applies after the frontend.
    """

    name = "kaldi_fbank_spliced"

    def __init__(self, params: KaldiFbankSplicedParams = KaldiFbankSplicedParams(), seed: int | None = None):
        # seed is accepted for the frontend interface; kaldi-native-fbank's dither cannot be seeded
        try:
            import kaldi_native_fbank as knf
        except ImportError as exc:
            raise ProfileError("the kaldi_fbank_spliced frontend needs kaldi-native-fbank: "
                               "pip install kaldi-native-fbank") from exc

        self.params = params
        self.frame_length = int(params.sample_rate * params.frame_length_ms / 1000)
        self.frame_shift = int(params.sample_rate * params.frame_shift_ms / 1000)
        # one output frame spans skip_frames Kaldi frame shifts (preprocess reports durations with it)
        self.hop_length = self.frame_shift * max(1, params.skip_frames)
        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = params.sample_rate
        opts.frame_opts.frame_length_ms = params.frame_length_ms
        opts.frame_opts.frame_shift_ms = params.frame_shift_ms
        opts.frame_opts.dither = params.dither
        opts.frame_opts.window_type = params.window_type
        opts.frame_opts.snip_edges = True
        opts.mel_opts.num_bins = params.num_mel_bins
        opts.use_energy = params.use_energy
        self._knf, self._options = knf, opts
        self._cmvn: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def fbank_size(self) -> int:
        return self.params.num_mel_bins + int(self.params.use_energy)

    @property
    def feature_size(self) -> int:
        return self.fbank_size * (self.params.left_context + 1 + self.params.right_context)

    def kaldi_frames(self, num_samples: int) -> int:
        """Kaldi frames with snip-edges: whole windows only."""
        return 0 if num_samples < self.frame_length else 1 + (num_samples - self.frame_length) // self.frame_shift

    def num_frames(self, num_samples: int) -> int:
        """Frames after skipping, before alignment padding."""
        return math.ceil(self.kaldi_frames(num_samples) / max(1, self.params.skip_frames))

    def aligned_frames(self, num_samples: int) -> int:
        align = self.params.pad_align
        frames = self.num_frames(num_samples)
        return frames if align <= 1 else align * math.ceil(frames / align)

    def valid_frames(self, num_samples: int) -> int:
        return self.num_frames(num_samples)

    def prepare_samples(self, samples: np.ndarray) -> np.ndarray:
        return samples

    def fbank(self, samples: np.ndarray) -> np.ndarray:
        """Kaldi log-mel filterbank [T, num_mel_bins + use_energy] (float32), before CMVN."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1 or len(x) < self.frame_length:
            raise AudioError(f"audio of {len(x)} samples is too short for the frontend: it needs at least "
                             f"{self.frame_length} samples ({self.params.frame_length_ms:.0f} ms); "
                             "remove it from the manifest")
        computer = self._knf.OnlineFbank(self._options)
        computer.accept_waveform(self.params.sample_rate, x * np.float32(self.params.waveform_scale))
        computer.input_finished()
        return np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)]).astype(np.float32)

    def load_cmvn(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(scale, offset) of the global CMVN, read once; None without statistics."""
        if self._cmvn is None and self.params.cmvn_stats:
            stats = read_cmvn_stats(self.params.cmvn_stats)
            if stats.shape[1] - 1 != self.fbank_size:
                raise ProfileError(f"{self.params.cmvn_stats}: CMVN statistics of {stats.shape[1] - 1} dims, but the "
                                   f"fbank has {self.fbank_size} (num_mel_bins={self.params.num_mel_bins} + energy); "
                                   "use the statistics of the features the model was trained on")
            self._cmvn = cmvn_transform(stats, self.params.norm_vars, self.params.cmvn_stats)
        return self._cmvn

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """Return features [feature_size, aligned frames] (float32) and the valid frame count."""
        p = self.params
        feats = self.fbank(samples)
        cmvn = self.load_cmvn()
        if cmvn is not None:
            scale, offset = cmvn
            feats = feats * scale + offset  # float32, as apply-cmvn scales then adds
        feats = skip_frames(splice_frames(feats, p.left_context, p.right_context), p.skip_frames)
        valid = feats.shape[0]
        aligned = valid if p.pad_align <= 1 else p.pad_align * math.ceil(valid / p.pad_align)
        out = np.zeros((self.feature_size, aligned), dtype=np.float32)
        out[:, :valid] = feats.T
        return out, valid


def splice_frames(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    """[x_{t-left} .. x_t .. x_{t+right}] per frame, edge frames repeated (upstream `make_context`)."""
    if left == 0 and right == 0:
        return feats
    offsets = np.arange(-left, right + 1)
    index = np.clip(np.arange(len(feats))[:, None] + offsets, 0, len(feats) - 1)
    return feats[index].reshape(len(feats), -1)


def skip_frames(feats: np.ndarray, skip: int) -> np.ndarray:
    """Frames whose index is a multiple of `skip` (upstream `skip_feat`)."""
    return feats if skip <= 1 else feats[::skip]


def cmvn_transform(stats: np.ndarray, norm_vars: bool, source: str = "CMVN statistics"):
    """apply-cmvn's per-dimension (scale, offset), float32: x * scale + offset."""
    dim = stats.shape[1] - 1
    count = stats[0, dim]
    if count < 1.0:
        raise ProfileError(f"{source}: frame count {count} (last column of the first row) is below 1; "
                           "these are not compute-cmvn-stats statistics")
    mean = stats[0, :dim] / count
    if norm_vars:
        var = np.maximum(stats[1, :dim] / count - mean * mean, KALDI_VAR_FLOOR)
        scale = 1.0 / np.sqrt(var)
    else:
        scale = np.ones(dim)
    return scale.astype(np.float32), (-mean * scale).astype(np.float32)


def read_cmvn_stats(path: str) -> np.ndarray:
    """A 2 x (D+1) float64 statistics matrix from Kaldi text/binary, .npy or plain text (module doc)."""
    if not os.path.isfile(path):
        raise ProfileError(f"{path}: CMVN statistics not found (from {os.getcwd()}); give the train set's "
                           "global_fbank_cmvn.txt (compute-cmvn-stats) as the frontend's cmvn_stats")
    with open(path, "rb") as f:
        data = f.read()
    try:
        if data.startswith(b"\x93NUMPY"):
            stats = np.load(path, allow_pickle=False)
        elif b"\x00B" in data[:256]:
            stats = _kaldi_binary_matrix(data[data.index(b"\x00B") + 2:])
        else:
            text = data.decode("ascii")
            text = text[text.index("[") + 1:] if "[" in text else text
            stats = np.array([float(v) for v in re.split(r"\s+", text.replace("]", " ").strip()) if v])
            stats = stats.reshape(2, -1) if stats.size % 2 == 0 else stats
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ProfileError(f"{path}: cannot read CMVN statistics ({exc}); expected compute-cmvn-stats output "
                           "(Kaldi text or binary) or a 2 x (D+1) .npy / text matrix") from exc
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
        raise ProfileError(f"{path}: CMVN statistics must be a 2 x (D+1) matrix (sums + count, sums of squares), "
                           f"found shape {stats.shape}")
    return stats


def _kaldi_binary_matrix(data: bytes) -> np.ndarray:
    """Kaldi binary Matrix after its '\\0B' marker: 'DM ' or 'FM ', int32 rows, int32 cols, data."""
    token, _, rest = data.partition(b" ")
    dtypes = {b"DM": "<f8", b"FM": "<f4"}
    if token not in dtypes:
        raise ValueError(f"Kaldi binary token {token!r}, expected DM or FM (a matrix)")
    size_rows, rows, size_cols, cols = struct.unpack("<bibi", rest[:10])
    if (size_rows, size_cols) != (4, 4):
        raise ValueError("Kaldi binary matrix dims are not int32")
    values = np.frombuffer(rest[10:], dtype=dtypes[token], count=rows * cols)
    return values.reshape(rows, cols)
