"""prep/ and results/ files: raw .bin tensors, ModelZoo info files, JSON lines; atomic writes."""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import sys
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
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def refuse_symlink(path: str) -> None:
    """Outputs are never written through (or over) a symbolic link planted where a file belongs."""
    if os.path.islink(path):
        raise TensorFileError(f"{path}: is a symbolic link (to {os.readlink(path)}); ascend-asr does not write "
                              "through links: remove the link (or write to a new output folder) and rerun")


def _make_folder(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise TensorFileError(f"{folder}: cannot create this folder, a file is in the way ({exc.strerror}); "
                              "remove the file or choose another output folder") from exc
    except OSError as exc:
        raise TensorFileError(f"{folder}: cannot create this folder ({exc.strerror}); "
                              "choose a writable output folder") from exc


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    The rename replaces the path itself, so nothing is ever written into an existing file; a path
    that is a symbolic link is refused rather than replaced.
    """
    folder = os.path.dirname(os.path.abspath(path))
    _make_folder(folder)
    refuse_symlink(path)
    if os.path.isdir(path):
        raise TensorFileError(f"{path}: is a folder where a file is written; remove it or choose another output")
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise TensorFileError(f"{path}: cannot write in {folder} ({exc.strerror}); make it writable, free "
                              "some space, or choose another output folder; a rerun resumes") from exc
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


def write_npy_atomic(path: str, array: np.ndarray) -> None:
    """np.save into a temporary file renamed over `path` (np.save(path) would write through a link)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _refuse_json_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_format_json(path: str, expected_format: str, error: type, what: str, how_to_make: str) -> dict:
    """A JSON file stamped {"format": expected_format}; missing or foreign files raise `error`."""
    if os.path.isdir(path):
        raise error(f"{path}: a folder, expected the {what} (a JSON file); create it with `{how_to_make}`")
    if not os.path.isfile(path):
        raise error(f"{path}: not found; create the {what} with `{how_to_make}`")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); check its permissions or recreate it "
                    f"with `{how_to_make}`") from exc
    if not raw.strip():
        raise error(f"{path}: empty file, expected the {what} (JSON); recreate it with `{how_to_make}`")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_json_constant)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}), expected the {what} (JSON); "
                    f"recreate it with `{how_to_make}`") from None
    except ValueError as exc:  # json.JSONDecodeError, and NaN/Infinity refused below
        raise error(f"{path}: not valid JSON ({exc}), expected the {what}; recreate it with `{how_to_make}`") \
            from None
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


_INFO_LINE = re.compile(r"^(\d+)\s+(\S+)\s+\((\d+(?:,\d+)*),?\)$", re.ASCII)
_MAX_DIGITS = 18  # an index or dimension longer than this is not a count (and would not fit int64)


def parse_info_line(line: str, source: str) -> tuple[int, str, tuple[int, ...]]:
    """'<index> <path> (d0,d1,...)' -> (index, path, shape); the shape is parsed, never evaluated."""
    m = _INFO_LINE.match(line.strip()) if isinstance(line, str) else None
    if not m or any(len(d) > _MAX_DIGITS for d in [m.group(1), *m.group(3).split(",")]):
        found = line.strip() if isinstance(line, str) else line
        raise TensorFileError(f"{source}: expected '<index> <path> (d0,d1,...)' with ASCII decimal numbers, found "
                              f"{found!r}; rewrite the info file with `ascend-asr preprocess`")
    dims = tuple(int(d) for d in m.group(3).split(","))
    return int(m.group(1)), m.group(2), dims


def read_info(path: str) -> list[tuple[int, str, tuple[int, ...]]]:
    entries = []
    for n, line in _decoded_lines(path):
        if isinstance(line, TensorFileError):
            raise line
        if line.strip():
            entries.append(parse_info_line(line, f"{path}:{n}"))
    return entries


def _decoded_lines(path: str):
    """(line number, text without its newline) per line, each decoded on its own; a line that is not
    UTF-8 comes as a TensorFileError (to raise or skip), and the last item may lack a newline."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TensorFileError(f"{path}: cannot read ({exc.strerror or exc}); check the path and its permissions") from exc
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield n, raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            yield n, TensorFileError(f"{path}:{n}: not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} at column "
                                     f"{exc.start + 1}); the file is corrupt: remove the line and rerun")


def read_jsonl(path: str) -> list[dict]:
    """JSON lines, one object each (a missing file is []).

    The last line may lack its newline: it is kept if it is a complete JSON object, and dropped with
    a warning on stderr if it is torn (an interrupted append); any other bad line is a TensorFileError
    naming the line.
    """
    if not os.path.exists(path):
        return []
    lines = list(_decoded_lines(path))
    torn_ok = lines[-1][0] if lines and lines[-1][1] != "" else None  # the last line has no newline
    rows = []
    for n, line in lines:
        try:
            if isinstance(line, TensorFileError):
                raise line
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise TensorFileError(f"{path}:{n}: not valid JSON ({exc}); remove the line and rerun") from exc
            if not isinstance(row, dict):
                raise TensorFileError(f"{path}:{n}: expected a JSON object, found a {type(row).__name__}; "
                                      "remove the line and rerun")
        except TensorFileError:
            if n == torn_ok:
                print(f"[ascend-asr] warning: {path}:{n}: ignoring a torn last line without a newline (an interrupted "
                      "write); a resumed run redoes it", file=sys.stderr)
                continue
            raise
        rows.append(row)
    return rows


_NUMBER = "number"


def check_row(row: dict, fields: dict, source: str, fix: str) -> dict:
    """`row` (one JSON line) checked against `fields` ({name: type, tuple of types, or "number"}; None
    in a tuple allows null); a missing or mistyped field is a TensorFileError naming `source` and `fix`."""
    if not isinstance(row, dict):
        raise TensorFileError(f"{source}: expected a JSON object, found {type(row).__name__}; {fix}")
    for name, kind in fields.items():
        if name not in row:
            raise TensorFileError(f"{source}: field {name!r} is missing; {fix}")
        value, kinds = row[name], kind if isinstance(kind, tuple) else (kind,)
        if value is None and None in kinds:
            continue
        if isinstance(value, bool):
            ok = bool in kinds
        elif _NUMBER in kinds and isinstance(value, (int, float)):
            ok = math.isfinite(value) and value >= 0
        else:
            ok = any(isinstance(k, type) and isinstance(value, k) for k in kinds)
            ok = ok and not (isinstance(value, int) and value < 0)
        if not ok:
            wanted = " or ".join("a number >= 0" if k == _NUMBER else "null" if k is None else
                                 "an integer >= 0" if k is int else f"a {k.__name__}" for k in kinds)
            raise TensorFileError(f"{source}: field {name!r} must be {wanted}, found {value!r}; {fix}")
    return row


META_FIELDS = {"stem": str, "id": str, "audio": str, "duration": _NUMBER, "frames": int,
               "padded_frames": (int, None), "text": str}  # a prep/meta.jsonl row, as preprocess writes it
TRIM_START_KEY = "trim_start_s"  # optional meta field: seconds of leading silence the frontend trimmed
HYPS_FIELDS = {"stem": str, "id": str, "hyp": str, "ref": str, "duration": _NUMBER, "frames": int,
               "out_frames": (int, None)}  # a results/hyps.jsonl row, as infer writes it


def output_write_error(exc: OSError, path: str, output: str) -> TensorFileError:
    """A failed write of an output (disk full, permission, read-only file system): a run-level error."""
    reason = {errno.ENOSPC: "the disk is full: free some space", errno.EDQUOT: "the disk quota is exhausted",
              errno.EACCES: f"permission denied: make {output} writable",
              errno.EPERM: f"permission denied: make {output} writable",
              errno.EROFS: "the file system is read-only: write to another --output folder"}.get(
        exc.errno, "fix the cause")
    return TensorFileError(f"{path}: cannot write ({exc.strerror or exc}); {reason}, then rerun the same command: "
                           "it resumes with the utterances already finished")


class JsonlAppender:
    """Appends one JSON object per line and flushes it, so finished work survives an interruption.

    A torn last line left by an interrupted run is cut off first.
    """

    def __init__(self, path: str):
        _make_folder(os.path.dirname(os.path.abspath(path)))
        refuse_symlink(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                refuse_symlink(path)  # planted between the check and the open
            raise TensorFileError(f"{path}: cannot append ({exc.strerror}); make it a writable file or choose "
                                  "another output folder") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise TensorFileError(f"{path}: not a regular file; remove it or choose another output folder")
        _drop_torn_tail(fd)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _drop_torn_tail(fd: int) -> None:
    """Cut a torn last line (no newline) off the file open as `fd` (never reopened by name)."""
    size = os.fstat(fd).st_size
    if not size:
        return
    data = os.pread(fd, size, 0)
    if not data.endswith(b"\n"):
        if _is_json_object(data[data.rfind(b"\n") + 1:]):  # complete, only its newline is missing: keep it,
            os.pwrite(fd, b"\n", size)  # as read_jsonl does
        else:
            os.ftruncate(fd, data.rfind(b"\n") + 1)


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False
