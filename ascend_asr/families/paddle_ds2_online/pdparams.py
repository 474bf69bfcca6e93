"""Reading PaddleSpeech's `.pdparams` without paddle, and without running anything the file names.

`paddle.save(model.state_dict(), "avg_1.pdparams")` (Checkpoint.save_parameters) writes a plain pickle
(protocol 4 by default) of a dict {structured name: numpy array}; each array pickles as
`numpy._core.multiarray._reconstruct` (`numpy.core.multiarray` under numpy 1.x), `numpy.ndarray` and
`numpy.dtype`. Older paddle versions add a `StructuredToParameterName@@` entry (a dict of names); a
tensor over 2**22 elements saved with protocol 2/3 is split into slices listed under
`UnpackBigParamInfor@@`. Here every global the pickle names must be one of those numpy functions and
classes or a plain builtin container; anything else is refused, as is BUILD on a class or function.
"""
from __future__ import annotations

import collections
import io
import os
import pickle

import numpy as np

from ...errors import CheckpointError
from ..safe_pickle import restricted_unpickler

_RECONSTRUCT = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
ALLOWED = {
    "numpy._core.multiarray._reconstruct": _RECONSTRUCT,
    "numpy.core.multiarray._reconstruct": _RECONSTRUCT,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    "collections.OrderedDict": collections.OrderedDict,
    **{f"builtins.{t.__name__}": t for t in (str, int, float, bool, dict, list, tuple, set, frozenset, bytes)},
}
NAME_TABLE_KEY = "StructuredToParameterName@@"
SPLIT_KEY = "UnpackBigParamInfor@@"
MAX_BYTES = 8 << 30  # a DS2 checkpoint is ~0.2-1 GB; a larger "pickle" is not one we know


_RestrictedUnpickler = restricted_unpickler(ALLOWED)


def read_pdparams(path: str) -> dict[str, np.ndarray]:
    """{name: float32/int array} of a `.pdparams` file, through the restricted unpickler."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: a folder; give the .pdparams file (exp/<name>/checkpoints/avg_N.pdparams)")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found; check the path")
    size = os.path.getsize(path)
    if size == 0 or size > MAX_BYTES:
        raise CheckpointError(f"{path}: {size} bytes is not a PaddleSpeech .pdparams file (paddle.save's pickle)")
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"\x80"):
        hint = " (a .pdiparams inference file: use `ascend-asr import-paddle`)" if path.endswith(".pdiparams") else ""
        raise CheckpointError(f"{path}: not a pickle, so not what paddle.save writes{hint}; give the training "
                              "checkpoint avg_N.pdparams")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: refused or unreadable ({type(exc).__name__}: {str(exc)[:200]}); only numpy "
                              "arrays in a dict of names may appear in a .pdparams file") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not the dict of named arrays paddle.save writes "
                              "for a state_dict")
    if SPLIT_KEY in obj:
        raise CheckpointError(f"{path}: saved with tensors split in slices ({SPLIT_KEY}: pickle protocol 2/3); "
                              "load and re-save it with paddle.save(state, path, protocol=4)")
    state = {}
    for key, value in obj.items():
        if key == NAME_TABLE_KEY:
            continue
        if not isinstance(key, str) or not isinstance(value, np.ndarray) or value.dtype == object:
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a numeric array; "
                                  "expected paddle.save(model.state_dict())")
        state[key] = value
    return state


def write_pdparams(state: dict[str, np.ndarray], path: str) -> None:
    """What paddle.save(state_dict) writes (protocol 4, a dict of numpy arrays), atomically."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump({k: np.ascontiguousarray(v) for k, v in state.items()}, f, protocol=4)
    os.replace(tmp, path)


__all__ = ["read_pdparams", "write_pdparams", "ALLOWED"]
