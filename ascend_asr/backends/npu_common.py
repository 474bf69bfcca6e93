"""What the pyACL and ais_bench backends share: ACL dtypes and return codes, feeds, output names."""
from __future__ import annotations

import importlib

import numpy as np

from ..errors import BackendError, ShapeError

# aclDataType values (acl_base.h); bf16 (27) has no numpy type and no place in our bundles.
ACL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.uint8, 6: np.int16, 7: np.uint16,
              8: np.uint32, 9: np.int64, 10: np.uint64, 11: np.float64, 12: np.bool_}

# acl_base.h / runtime codes we can say something useful about.
ACL_CODES = {
    100000: ("ACL_ERROR_INVALID_PARAM", "a parameter is invalid: check buffer sizes, dims and handles"),
    100001: ("ACL_ERROR_UNINITIALIZE", "ACL is not initialised: acl.init() must run first"),
    100002: ("ACL_ERROR_REPEAT_INITIALIZE", "acl.init() already ran in this process (harmless)"),
    100003: ("ACL_ERROR_INVALID_FILE", "the file is missing or unreadable: check the path and permissions"),
    100011: ("ACL_ERROR_INVALID_MODEL_ID", "the model id is unknown: was the model unloaded?"),
    100012: ("ACL_ERROR_DESERIALIZE_MODEL", "the .om cannot be read: is it an OM built by ATC for this "
                                            "chip (--soc_version must match acl.get_soc_name()) and this CANN?"),
    100013: ("ACL_ERROR_PARSE_MODEL", "the .om cannot be parsed: rebuild it with this CANN's ATC"),
    100024: ("ACL_ERROR_FAILURE", "the call failed: see the device log (ASCEND_SLOG_PRINT_TO_STDOUT=1)"),
    507033: ("ACL_ERROR_RT_DEV_SETUP_ERROR", "the device could not be opened: check `npu-smi info`, the driver "
                                             "and firmware, ASCEND_RT_VISIBLE_DEVICES and --device"),
    507011: ("ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", "the device did not finish in time: check `npu-smi info`"),
    507899: ("ACL_ERROR_RT_INTERNAL_ERROR", "runtime internal error: check the driver and the device log"),
}
REPEAT_INITIALIZE = 100002


def describe_code(code: int) -> str:
    name, advice = ACL_CODES.get(code, ("unknown ACL error", "see the CANN error code list and the device "
                                                            "log (ASCEND_SLOG_PRINT_TO_STDOUT=1)"))
    return f"{code} ({name}: {advice})"


def check(ret: int, call: str) -> None:
    if ret != 0:
        raise BackendError(f"{call} returned {describe_code(ret)}")


def numpy_dtype_of(acl_dtype: int, where: str) -> np.dtype:
    if int(acl_dtype) not in ACL_DTYPES:
        raise BackendError(f"{where}: aclDataType {int(acl_dtype)} has no numpy equivalent; "
                           "convert the model with fp32/fp16/int inputs and outputs")
    return np.dtype(ACL_DTYPES[int(acl_dtype)])


def import_runtime(module: str, what: str):
    """Import a CANN Python module, or explain where it comes from."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(f"cannot import {module!r} ({exc}): {what} comes with the CANN toolkit; "
                           "`source env.sh` on a host with CANN, or choose --backend onnxruntime") from exc


def cast_feed(model_path: str, name: str, array: np.ndarray, dtype: np.dtype, expected_bytes: int) -> np.ndarray:
    """Cast to the model's dtype (the runtime checks bytes, never dtypes) and check the byte count."""
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.nbytes != expected_bytes:
        raise BackendError(f"{model_path}: input {name}: {array.nbytes} bytes (shape {list(array.shape)}, {dtype}) but the "
                           f"model needs {expected_bytes} bytes; check the batch size and frames against the "
                           "bundle's compiled shapes")
    return array


def match_names(model_names: list[str], wanted: list[str], kind: str, model_path: str) -> dict[str, int]:
    """Index in the model of each wanted tensor, by name, never by position.

    ATC may name an ONNX output 'node:index:tensor'; the tensor part then counts as the name.
    """
    found = {}
    for name in wanted:
        hits = [i for i, m in enumerate(model_names) if m == name or m.endswith(":" + name)]
        if len(hits) != 1:
            raise BackendError(f"{model_path}: {kind} {name!r} {'is ambiguous' if hits else 'not found'} among "
                               f"the model's {kind}s {model_names}; convert again with the bundle's ATC command "
                               "(its --out_nodes pins names and order)")
        found[name] = hits[0]
    return found


def gear_error(shapes: dict[str, tuple], gears: list[dict[str, tuple]]) -> ShapeError:
    listed = "; ".join(", ".join(f"{n}{list(s)}" for n, s in g.items()) for g in gears)
    fed = ", ".join(f"{n}{list(s)}" for n, s in shapes.items())
    return ShapeError(f"no compiled gear holds the batch {fed}; compiled gears: {listed}; pad to one of them or "
                      "add a gear to the profile and convert again")
