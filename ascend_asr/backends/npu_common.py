"""What the pyACL and ais_bench backends share: ACL dtypes and return codes, feeds, output names."""
from __future__ import annotations

import importlib
import sys

import numpy as np

from ..errors import BackendError, ShapeError

# aclDataType values (acl_base.h); bf16 (27) has no numpy type and no place in our bundles.
ACL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.uint8, 6: np.int16, 7: np.uint16,
              8: np.uint32, 9: np.int64, 10: np.uint64, 11: np.float64, 12: np.bool_}

# Codes we can say something useful about: acl_base.h (1xxxxx/5xxxxx ACL), ge_error_codes.h (145xxx),
# rt_error_codes.h (107xxx, 207xxx, 507xxx runtime). Each: (name, what to do).
_SLOG = "run again with ASCEND_SLOG_PRINT_TO_STDOUT=1 (or read ~/ascend/log) for the device log"
ACL_CODES = {
    100000: ("ACL_ERROR_INVALID_PARAM", "a parameter is invalid: check buffer sizes, dims and handles"),
    100001: ("ACL_ERROR_UNINITIALIZE", "ACL is not initialised: acl.init() must run first"),
    100002: ("ACL_ERROR_REPEAT_INITIALIZE", "acl.init() already ran in this process (harmless)"),
    100003: ("ACL_ERROR_INVALID_FILE", "the file is missing or unreadable: check the path and permissions"),
    100011: ("ACL_ERROR_INVALID_MODEL_ID", "the model id is unknown: was the model unloaded?"),
    100012: ("ACL_ERROR_DESERIALIZE_MODEL", "the .om cannot be read: is it an OM built by ATC for this "
                                            "chip (--soc_version must match acl.get_soc_name()) and this CANN?"),
    100013: ("ACL_ERROR_PARSE_MODEL", "the .om cannot be parsed: rebuild it with this CANN's ATC"),
    100024: ("ACL_ERROR_OP_NOT_FOUND", "an operator of the model is not available in this CANN's operator "
                                       "library: rebuild the OM with this CANN's ATC for this chip, or check "
                                       "ASCEND_OPP_PATH (source CANN's set_env.sh)"),
    100037: ("ACL_ERROR_REPEAT_FINALIZE", "acl.finalize() already ran in this process: no device work is "
                                          "possible after it"),
    107000: ("ACL_ERROR_RT_PARAM_INVALID", "the runtime refused a parameter (stream, event, pointer or size): "
                                           + _SLOG),
    107002: ("ACL_ERROR_RT_CONTEXT_NULL", "no context is bound to the calling thread: acl.rt.set_context(ctx) "
                                          "must run in every thread that uses the device"),
    145012: ("ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID", "the input bytes do not fit the selected gear: check "
                                                          "that the batch was padded to a compiled shape and that "
                                                          "the ascend_mbatch_shape_data buffer is allocated"),
    145013: ("ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID", "the dynamic batch/dims set is not one of the model's "
                                                        "compiled gears: pick a gear listed by the bundle or "
                                                        "convert again with the gear added"),
    207000: ("ACL_ERROR_RT_FEATURE_NOT_SUPPORT", "this chip or CANN does not support the call: check the CANN "
                                                 "version against the OM and the API generation"),
    207001: ("ACL_ERROR_RT_MEMORY_ALLOCATION", "device memory is exhausted: use a smaller batch size or free "
                                               "other processes on the device (`npu-smi info`)"),
    207007: ("ACL_ERROR_RT_NO_EVENT_RESOURCE", "the device has no events left (1023 on Atlas inference "
                                               "products): another process holds them, or events leak"),
    500001: ("ACL_ERROR_FAILURE", "the call failed: " + _SLOG),
    507000: ("ACL_ERROR_RT_INTERNAL_ERROR", "runtime internal error: check the driver and firmware versions "
                                            "against CANN; " + _SLOG),
    507011: ("ACL_ERROR_RT_MODEL_EXECUTE", "the model failed while executing on the device: check the OM was "
                                           "built for this chip and CANN, the inputs match a compiled shape, "
                                           "and " + _SLOG),
    507033: ("ACL_ERROR_RT_DEV_SETUP_ERROR", "the device could not be opened: check `npu-smi info`, the driver "
                                             "and firmware, ASCEND_RT_VISIBLE_DEVICES and --device"),
    507046: ("ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", "the device did not finish in time: check `npu-smi info` for a "
                                                 "hung or busy device; " + _SLOG),
    507899: ("ACL_ERROR_RT_DRV_INTERNAL_ERROR", "driver internal error: check the driver is loaded and matches "
                                                "CANN (`npu-smi info`), that the device is not held by another "
                                                "container or process; " + _SLOG),
}
REPEAT_INITIALIZE = 100002
REPEAT_FINALIZE = 100037


def describe_code(code: int) -> str:
    name, advice = ACL_CODES.get(code, ("unknown ACL error", "see the CANN error code list and the device "
                                                            "log (ASCEND_SLOG_PRINT_TO_STDOUT=1)"))
    return f"{code} ({name}: {advice})"


def recent_acl_message() -> str:
    """acl.get_recent_err_msg() of the calling thread (the runtime's own words for its last error),
    or "" when pyACL is not loaded, lacks it, or has nothing to say. Never imports acl itself."""
    acl = sys.modules.get("acl")
    get = getattr(acl, "get_recent_err_msg", None)
    if get is None:
        return ""
    try:
        message = get()
    except Exception:  # noqa: BLE001 - the message is a hint; never let it hide the error
        return ""
    return message.strip() if isinstance(message, str) else ""


def check(ret: int, call: str) -> None:
    if ret != 0:
        recent = recent_acl_message()
        raise BackendError(f"{call} returned {describe_code(ret)}" + (f"; CANN says: {recent}" if recent else ""))


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


def match_names(model_names: list[str], wanted: list[str], kind: str, model_path: str,
                order: list[str] | None = None) -> dict[str, int]:
    """Index in the model of each wanted tensor, by name ('name', 'op:idx:name'), else by the recorded order
    for ATC's 'op:idx' names; see output_names.match_names."""
    from .output_names import match_names as match

    return match(model_names, wanted, kind, model_path, order)


def gear_error(shapes: dict[str, tuple], gears: list[dict[str, tuple]]) -> ShapeError:
    listed = "; ".join(", ".join(f"{n}{list(s)}" for n, s in g.items()) for g in gears)
    fed = ", ".join(f"{n}{list(s)}" for n, s in shapes.items())
    return ShapeError(f"no compiled gear holds the batch {fed}; compiled gears: {listed}; pad to one of them or "
                      "add a gear to the profile and convert again")
