"""prep/ and results/ files: raw .bin tensors, ModelZoo info files, JSON lines; atomic writes."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile

import numpy as np

from .errors import TensorFileError

DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8, "int8": np.int8, "float64": np.float64, "bool": np.bool_}


def numpy_dtype(name: str) -> np.dtype:
    if name not in DTYPES:
        raise TensorFileError(f"unsupported dtype {name!r}; use one of {sorted(DTYPES)}")
    return np.dtype(DTYPES[name]).newbyteorder("<")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give; mkstemp alone gives 0600


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_format_json(path: str, expected_format: str, error: type, what: str, how_to_make: str) -> dict:
    """A JSON file stamped {"format": expected_format}; missing or foreign files raise `error`."""
    if not os.path.isfile(path):
        raise error(f"{path}: not found; create the {what} with `{how_to_make}`")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise error(f"{path}: not an ascend-asr {what} (format {found!r}, expected {expected_format!r})")
    return data


def write_bin(path: str, array: np.ndarray, dtype: str) -> None:
    """Raw little-endian bytes, no header: what ais_bench and np.fromfile read."""
    write_bytes_atomic(path, np.ascontiguousarray(array, dtype=numpy_dtype(dtype)).tobytes())


def read_bin(path: str, dtype: str, shape) -> np.ndarray:
    """Read a raw .bin, checking its size against `shape` and `dtype` first."""
    dt = numpy_dtype(dtype)
    expected = int(np.prod(shape)) * dt.itemsize
    try:
        actual = os.path.getsize(path)
    except OSError as exc:
        raise TensorFileError(f"{path}: cannot read ({exc}); rerun preprocessing for this utterance") from exc
    if actual != expected:
        raise TensorFileError(f"{path}: {actual} bytes, expected {expected} ({dtype} {tuple(shape)}); "
                              "the file is truncated or was made for another profile: rerun preprocessing")
    return np.fromfile(path, dtype=dt).reshape(shape)


def natural_key(name: str):
    """Sort key that orders 'data2' before 'data10', as ais_bench reads input folders."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def format_shape(shape) -> str:
    dims = ",".join(str(int(d)) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


_INFO_LINE = re.compile(r"^(\d+)\s+(\S+)\s+\((\d+(?:,\d+)*),?\)$")


def parse_info_line(line: str, source: str) -> tuple[int, str, tuple[int, ...]]:
    """'<index> <path> (d0,d1,...)' -> (index, path, shape); the shape is parsed, never evaluated."""
    m = _INFO_LINE.match(line.strip())
    if not m:
        raise TensorFileError(f"{source}: expected '<index> <path> (d0,d1,...)', found {line.strip()!r}")
    dims = tuple(int(d) for d in m.group(3).split(","))
    return int(m.group(1)), m.group(2), dims


def read_info(path: str) -> list[tuple[int, str, tuple[int, ...]]]:
    with open(path, encoding="utf-8") as f:
        return [parse_info_line(line, f"{path}:{n}") for n, line in enumerate(f, start=1) if line.strip()]


def read_jsonl(path: str) -> list[dict]:
    """JSON lines; a torn last line (an interrupted append, no newline) is ignored."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    complete = text[:text.rfind("\n") + 1]
    rows = []
    for n, line in enumerate(complete.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TensorFileError(f"{path}:{n}: not valid JSON ({exc}); remove the line and rerun") from exc
    return rows


class JsonlAppender:
    """Appends one JSON object per line and flushes it, so finished work survives an interruption.

    A torn last line left by an interrupted run is cut off first.
    """

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            _drop_torn_tail(path)
        self._file = open(path, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _drop_torn_tail(path: str) -> None:
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
