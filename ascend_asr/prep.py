"""The prep/ folder: one .bin folder per model input, an info file, meta.jsonl, prep.json."""
from __future__ import annotations

import os
import re
import sys
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


STEM = re.compile(r"^[0-9]{12}$")  # what stem_of writes; nothing else ever names a file


def stem_of(index: int) -> str:
    """File stem of the utterance at manifest position `index` (ModelZoo's naming, naturally sorted)."""
    return f"{index:012d}"


def check_stem(stem, source: str) -> str:
    """A stem read back from a file must be one stem_of writes (12 digits): it names files, so a stem
    such as '../../x' would reach outside its folder."""
    if not isinstance(stem, str) or not STEM.match(stem):
        raise TensorFileError(f"{source}: stem {stem!r} is not a 12-digit utterance stem as preprocess writes; "
                              "the file was edited or made by another tool: preprocess again into a new folder")
    return stem


def safe_name(name, source: str, what: str) -> str:
    """A file or folder name taken from data: one plain path component, never '..', a separator or empty."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name or name != name.strip():
        raise TensorFileError(f"{source}: {what} {name!r} is not a plain file name (it would reach outside its "
                              "folder); use letters, digits, '-', '_' and '.' only")
    return name


def inside(folder: str, path: str) -> bool:
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def input_dir(prep_dir: str, spec: TensorSpec, input_dirs: dict | None = None) -> str:
    """Folder of one input's .bin files: <prep>/<input name> unless mapped elsewhere (ModelZoo flags)."""
    return os.path.join(prep_dir, (input_dirs or {}).get(spec.name, spec.name))


def bin_path(prep_dir: str, spec: TensorSpec, stem: str, input_dirs: dict | None = None) -> str:
    return os.path.join(input_dir(prep_dir, spec, input_dirs), check_stem(stem, f"{prep_dir}: utterance") + ".bin")


def info_path(prep_dir: str, profile_name: str) -> str:
    """prep/<profile>.info; the profile's name must be a plain file name."""
    return os.path.join(prep_dir, safe_name(profile_name, prep_dir, "profile name") + ".info")


def check_input_dirs(prep_dir: str, input_dirs, inputs, source: str) -> dict:
    """`input_dirs` read back from prep.json: a mapping of input names to folders. A relative folder must
    stay inside prep/; an absolute one is what the user gave preprocess (--save_bin_0 ...): infer only
    reads `<folder>/<12-digit stem>.bin` files there."""
    if input_dirs is None:
        return {}
    names = {spec.name for spec in inputs}
    if not isinstance(input_dirs, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                   for k, v in input_dirs.items()):
        raise TensorFileError(f"{source}: input_dirs must map input names to folders, found {input_dirs!r}; "
                              "preprocess again into a new folder")
    for name, folder in input_dirs.items():
        if name not in names:
            raise TensorFileError(f"{source}: input_dirs names {name!r}, which is not an input ({sorted(names)}); "
                                  "preprocess again into a new folder")
        if "\0" in folder:
            raise TensorFileError(f"{source}: input_dirs[{name!r}] is not a valid path; preprocess again")
        if not os.path.isabs(folder) and (".." in folder.replace("\\", "/").split("/")
                                          or not inside(prep_dir, os.path.join(prep_dir, folder))):
            raise TensorFileError(f"{source}: input_dirs[{name!r}] = {folder!r} reaches outside {prep_dir}; a "
                                  "relative input folder must stay inside prep/: preprocess again into a new folder")
    return dict(input_dirs)


def dedupe_rows(rows: list, source: str, log=None, key: str = "stem") -> list:
    """Rows with a repeated `key` (an older version or two runs at once appended twice) kept once: the
    first; two different rows for one key are an error."""
    seen, unique = {}, []
    for row in rows:
        k = row.get(key) if isinstance(row, dict) else None
        if k in seen:
            if seen[k] != row and {**seen[k], "hyp": None} != {**row, "hyp": None}:
                raise TensorFileError(f"{source}: two different rows for {key} {k} (id {row.get('id')!r}); remove "
                                      "the wrong one, or write to a new output folder")
            continue
        seen[k] = row
        unique.append(row)
    if len(unique) != len(rows):
        print(f"[ascend-asr] {source}: {len(rows) - len(unique)} duplicated rows ignored (written twice by an "
              "older version or by two runs at once)", file=log or sys.stderr)
    return unique


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
        fix = "rerun preprocess for this utterance (delete its meta.jsonl row, or preprocess into a new folder)"
        tensors = {}
        for spec in self.inputs:
            path = bin_path(self.path, spec, row["stem"], dirs)
            array = read_bin(path, spec.dtype, utterance_shape(spec, row["padded_frames"]))
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                bad = int(array.size - np.count_nonzero(np.isfinite(array)))
                raise TensorFileError(f"{path}: {bad} non-finite values (NaN or Inf) in input {spec.name}; the "
                                      f"features are damaged: {fix}")
            if spec.role == "lengths":
                frames, padded = row.get("frames"), row["padded_frames"]
                if isinstance(frames, int) and not isinstance(frames, bool):
                    if not 1 <= frames <= padded:
                        raise TensorFileError(f"{path}: meta.jsonl frames {frames} is outside 1..{padded} (its "
                                              f"padded_frames); {fix}")
                    found = sorted({int(v) for v in np.unique(array)})
                    if found != [frames]:
                        raise TensorFileError(f"{path}: lengths {found[:5]} disagree with meta.jsonl frames "
                                              f"{frames} (stem {row['stem']}); {fix}")
            tensors[spec.name] = array
        return tensors


def check_unique_ids(rows: list, source: str, refuse: bool, log=None) -> None:
    """One id per stem: results (hyps.jsonl, score) are keyed by id, so an id on two stems would have one
    utterance's result stand for the other's. Refused (TensorFileError naming both stems) when `refuse`, else a
    warning on `log` (stderr) naming them."""
    stems_of: dict = {}
    repeated = []
    for row in rows:
        key = row.get("id")
        if isinstance(key, (str, int)) and not isinstance(key, bool):
            if key in stems_of and stems_of[key] != row["stem"]:
                repeated.append((key, stems_of[key], row["stem"]))
            stems_of.setdefault(key, row["stem"])
    if not repeated:
        return
    key, first, second = repeated[0]
    message = (f"{source}: id {key!r} is on two stems, {first} and {second}" +
               (f" (and {len(repeated) - 1} more repeated ids)" if len(repeated) > 1 else "") +
               ": results are keyed by id, so one would stand for the other; remove the wrong row (and its .bin "
               "files), or preprocess again into a new folder from manifests with unique ids")
    if refuse:
        raise TensorFileError(message)
    print(f"[ascend-asr] WARNING: {message}", file=log or sys.stderr, flush=True)


# Refusing repeated ids outright needs preprocess to make ids unique across several manifests joined in one
# run (ModelZoo's --val_manifests): until it does, prep/ folders it wrote legitimately repeat them, and a
# repeated id is a visible warning.
REFUSE_DUPLICATE_IDS = True


def read_meta(path: str, log=None, refuse_duplicate_ids: bool | None = None) -> list[dict]:
    """meta.jsonl rows, stems checked and duplicates dropped, in stem order. A stem names files, so one that
    preprocess cannot have written stops the run; other fields are checked per utterance by infer (a damaged
    row costs that utterance only)."""
    source = os.path.join(path, META)
    rows = read_jsonl(source)
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise TensorFileError(f"{source} (row {n}): expected a JSON object; remove the line and rerun preprocess "
                                  "to redo that utterance")
        check_stem(row.get("stem"), f"{source} (row {n})")
    rows = dedupe_rows(rows, source, log)
    check_unique_ids(rows, source, REFUSE_DUPLICATE_IDS if refuse_duplicate_ids is None else refuse_duplicate_ids,
                     log)
    return sorted(rows, key=lambda r: r["stem"])


def open_prep(path: str, log=None) -> PrepDir:
    source = os.path.join(path, PREP_JSON)
    info = read_format_json(source, PREP_FORMAT, TensorFileError, "prep folder",
                            "ascend-asr preprocess --manifest M --profile P --output DIR")
    rows = read_meta(path, log)
    prep = PrepDir(path, info, rows)
    try:
        inputs = prep.inputs
    except (KeyError, TypeError, ValueError) as exc:
        raise TensorFileError(f"{source}: inputs are malformed ({exc!r}); preprocess again into a new folder") from exc
    info["input_dirs"] = check_input_dirs(path, info.get("input_dirs"), inputs, source)
    return prep


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
