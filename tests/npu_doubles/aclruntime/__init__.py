"""Fake aclruntime (the pybind backend of ais_bench) for the ascend-asr tests.

Generation from FAKE_AIS_BENCH_API at import ("new" = UP: exec_time_list holds
(start_ms, end_ms) pairs, InferenceSession has free_resource() and static finalize();
"old": float durations, neither method). See tests/npu_doubles/README.md.
"""
import os as _os

import numpy as _np

from . import _types
from ._session import InferenceSession
from ._session import install_generation as _install
from ._types import (
    BaseTensor,
    MemorySummary,
    Tensor,
    dtype,
    infer_options,
    session_options,
    sumary,
    tensor_desc,
)
from ._types import MemType as type

GENERATION = _os.environ.get("FAKE_AIS_BENCH_API", "new")
if GENERATION not in ("new", "old"):
    raise ImportError(f"FAKE_AIS_BENCH_API must be 'new' or 'old', not {GENERATION!r}")
_types.GENERATION = GENERATION
__all__ = ["BaseTensor", "InferenceSession", "MemorySummary", "Tensor", "batch", "dtype",
           "infer_options", "model", "session_options", "sumary", "tensor_desc", "type"]
_install(GENERATION)


def model(modelPath, deviceId=0, options=None):  # pybind's argument names
    return InferenceSession(modelPath, deviceId, options or session_options())


def batch(inputs, keep_dims=False):
    """Concatenate host Tensors along axis 0 (stack them when keep_dims is False)."""
    arrays = [_np.array(t) for t in inputs]
    return Tensor(_np.concatenate(arrays) if keep_dims else _np.stack(arrays))


# RegisterEnumTypeToModule: every enum value is also a module attribute
for _member in list(dtype.__members__.values()) + list(type.__members__.values()):
    globals()[_member.name] = _member
del _member
