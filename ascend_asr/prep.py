"""The prep/ folder: one .bin folder per model input, an info file, meta.jsonl, prep.json."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import TensorFileError
from .profiles import FRAMES, TensorSpec
from .tensor_files import (
    format_shape,
    read_bin,
    read_format_json,
    read_jsonl,
    write_text_atomic,
)

META = "meta.jsonl"
FAILURES = "failures.json"
PREP_JSON = "prep.json"
PREP_FORMAT = "ascend-asr-prep/1"


def stem_of(index: int) -> str:
    """File stem of the utterance at manifest position `index` (ModelZoo's naming, naturally sorted)."""
    return f"{index:012d}"


def input_dir(prep_dir: str, spec: TensorSpec, input_dirs: dict | None = None) -> str:
    """Folder of one input's .bin files: <prep>/<input name> unless mapped elsewhere (ModelZoo flags)."""
    return os.path.join(prep_dir, (input_dirs or {}).get(spec.name, spec.name))


def bin_path(prep_dir: str, spec: TensorSpec, stem: str, input_dirs: dict | None = None) -> str:
    return os.path.join(input_dir(prep_dir, spec, input_dirs), stem + ".bin")


def utterance_shape(spec: TensorSpec, padded_frames: int) -> tuple:
    return spec.concrete(batch=1, frames=padded_frames)


@dataclass(frozen=True)
class PrepDir:
    path: str
    info: dict  # prep.json
    rows: list  # meta.jsonl, in manifest order

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), t["role"]) for t in self.info["inputs"])

    def load(self, row: dict) -> dict[str, np.ndarray]:
        """Every input tensor of one utterance, each checked against its expected byte size."""
        dirs = self.info.get("input_dirs")
        return {spec.name: read_bin(bin_path(self.path, spec, row["stem"], dirs), spec.dtype,
                                    utterance_shape(spec, row["padded_frames"]))
                for spec in self.inputs}


def open_prep(path: str) -> PrepDir:
    info = read_format_json(os.path.join(path, PREP_JSON), PREP_FORMAT, TensorFileError, "prep folder",
                            "ascend-asr preprocess --manifest M --profile P --output DIR")
    rows = sorted(read_jsonl(os.path.join(path, META)), key=lambda r: r["stem"])
    return PrepDir(path, info, rows)


def write_info_file(path: str, prep_dir: str, inputs, rows, input_dirs: dict | None = None) -> None:
    """ModelZoo info file: '<index> <path> (d0,d1,...)', one line per input per utterance."""
    lines = []
    for index, row in enumerate(rows):
        for spec in inputs:
            shape = utterance_shape(spec, row["padded_frames"])
            lines.append(f"{index} {bin_path(prep_dir, spec, row['stem'], input_dirs)} {format_shape(shape)}")
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


def features_to_layout(feats: np.ndarray, spec: TensorSpec, frames: int) -> np.ndarray:
    """[F, T] frontend features -> the input's per-utterance layout, zero-padded to `frames`."""
    padded = np.zeros((feats.shape[0], frames), dtype=np.float32)
    padded[:, : feats.shape[1]] = feats
    dims = [d for d in spec.shape if d != "batch"]
    frames_axis = dims.index(FRAMES)
    feature_axis = next(i for i, d in enumerate(dims) if isinstance(d, int) and d == feats.shape[0])
    if frames_axis < feature_axis:
        padded = padded.T
    return padded.reshape(utterance_shape(spec, frames))


def utterance_tensors(feats: np.ndarray, valid: int, inputs, frames: int) -> dict[str, np.ndarray]:
    """One utterance's model inputs (batch axis of size 1): features padded to `frames`, and its length."""
    tensors = {}
    for spec in inputs:
        if spec.role == "features":
            tensors[spec.name] = features_to_layout(feats, spec, frames).astype(spec.dtype, copy=False)
        else:
            tensors[spec.name] = np.full(utterance_shape(spec, frames), valid, dtype=spec.dtype)
    return tensors
