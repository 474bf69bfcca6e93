"""Fake pyACL (`import acl`) for the ascend-asr tests; see tests/npu_doubles/README.md.

Calls return what pyACL returns (a bare ret, a `(value, ret)` pair, or a bare value), per the
reference §4/§9. `acl.rt`, `acl.mdl` and `acl.util` are attribute namespaces as in pyACL.
`acl._double` is the test handle: live(), init_calls, calls, fail(), executed, last_error.
"""
import os as _os
import types as _types

import fake_npu as _npu

from . import _codes as _C
from . import _mdl, _rt, _util  # importing them registers their functions
from ._state import BARE as _BARE
from ._state import DOUBLE as _double
from ._state import PUBLIC as _PUBLIC
from ._state import RET as _RET
from ._state import api as _api


@_api("init", _RET)
def init(config_path=None):
    """Once per process: a second call (also after finalize, or after aclruntime initialised
    ACL in this process) returns ACL_ERROR_REPEAT_INITIALIZE (100002)."""
    with _double.lock:
        _double.init_calls += 1
        state = _npu.STATE
        if state.initialized or state.finalized:
            return _double.error(_C.REPEAT_INITIALIZE, "ACL is already initialized in this "
                                 "process (acl.init may be called once per process)")
        if config_path and not _os.path.isfile(config_path):
            return _double.error(_C.INVALID_FILE, f"acl.init: no such config {config_path}")
        state.initialized = True
    return _C.SUCCESS


@_api("finalize", _RET)
def finalize():
    with _double.lock:
        state = _npu.STATE
        if not state.initialized:
            code = _C.REPEAT_FINALIZE if state.finalized else _C.UNINITIALIZE
            return _double.error(code, "acl.finalize without a live acl.init")
        state.initialized, state.finalized = False, True
    return _C.SUCCESS


@_api("get_soc_name", _BARE(None))
def get_soc_name():
    """e.g. "Ascend310P3"; None before acl.init or without a device (a null char* in C)."""
    if not _npu.STATE.initialized or _npu.device_count() <= 0:
        return None
    return _npu.soc_name()


@_api("get_recent_err_msg", _BARE(""))
def get_recent_err_msg():
    return _double.last_error


def _namespace(name: str) -> _types.ModuleType:
    ns = _types.ModuleType(f"acl.{name}")
    ns.__dict__.update(_PUBLIC[name])
    return ns


rt = _namespace("rt")
mdl = _namespace("mdl")
util = _namespace("util")
globals().update(_PUBLIC[""])
del _mdl, _rt, _util
