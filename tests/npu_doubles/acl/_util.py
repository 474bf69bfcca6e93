"""acl.util in two generations (FAKE_ACL_API, read at import like a different CANN install):
new = bytes_to_ptr / ptr_to_bytes and also numpy_to_ptr / ptr_to_numpy (current pyACL exports
both; ptr_to_numpy is deprecated), old = numpy_to_ptr / ptr_to_numpy only."""
from __future__ import annotations

import ctypes
import os

import numpy as np

from ._state import BARE, api
from ._state import DOUBLE as D

GENERATION = os.environ.get("FAKE_ACL_API", "new")
if GENERATION not in ("new", "old"):
    raise ImportError(f"FAKE_ACL_API must be 'new' or 'old', not {GENERATION!r}")


def _host_span(ptr, size, what):
    """Reading device memory from the host crashes on hardware; refuse it loudly instead."""
    if not isinstance(ptr, int) or not ptr or size < 0:
        raise ValueError(f"acl.util.{what}: bad pointer {ptr!r} or size {size!r}")
    a, left = D.mem.find(ptr)
    if a is not None and a.kind == "device":
        raise RuntimeError(f"acl.util.{what}: {ptr:#x} is device memory; copy it to the host "
                           "first (acl.rt.memcpy ... ACL_MEMCPY_DEVICE_TO_HOST)")
    if a is not None and size > left:
        raise RuntimeError(f"acl.util.{what}: {size} bytes requested, {left} left at {ptr:#x}")


if GENERATION == "new":
    @api("util.bytes_to_ptr", BARE(0))
    def bytes_to_ptr(data):
        """The address of the bytes object's own buffer (no copy): the caller must keep `data`
        alive until every copy from it has run, as with the real pyACL."""
        if not isinstance(data, bytes):
            raise TypeError(f"bytes_to_ptr() argument must be bytes, not {type(data).__name__}")
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0

    @api("util.ptr_to_bytes", BARE(b""))
    def ptr_to_bytes(ptr, size):
        _host_span(ptr, size, "ptr_to_bytes")
        return ctypes.string_at(ptr, size)


# both generations
_NUM_TO_DTYPE = {}
for _t in set(np.sctypeDict.values()):
    try:
        _NUM_TO_DTYPE.setdefault(np.dtype(_t).num, np.dtype(_t))
    except TypeError:
        pass

@api("util.numpy_to_ptr", BARE(0))
def numpy_to_ptr(array):
    """The address of the array's data, strides ignored (as pyACL: pass contiguous arrays)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"numpy_to_ptr() argument must be a numpy.ndarray, "
                        f"not {type(array).__name__}")
    return array.__array_interface__["data"][0]

@api("util.ptr_to_numpy", BARE(None))
def ptr_to_numpy(ptr, shape, npy_type):
    """A numpy view (no copy) of host memory; npy_type is a numpy type number (NPY_FLOAT=11)."""
    dtype = _NUM_TO_DTYPE.get(npy_type)
    if dtype is None:
        raise ValueError(f"acl.util.ptr_to_numpy: unknown numpy type number {npy_type}")
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    _host_span(ptr, size, "ptr_to_numpy")
    raw = (ctypes.c_char * size).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
