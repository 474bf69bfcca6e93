"""The fake OM container shared by the doubles (written by bin/atc, read by acl and aclruntime).

Layout: MAGIC, one JSON header line, then the ONNX bytes. The embedded ONNX already has its
graph outputs in OM order, so running it yields the OM's outputs by position.

Header fields (all written by bin/atc):
  format            "ascend-asr-fake-om/1"
  soc_version       e.g. "Ascend310P3"; a model only loads on a device of this chip
  framework         5
  precision_mode, op_select_implmode, input_format, output_type (or null), out_nodes (or null)
  out_nodes_form    null (no --out_nodes), "output_name" ("prob;label") or "node" ("node:0;node2:1")
  dynamic           null (static), "dims" (--dynamic_dims) or "batch" (--dynamic_batch_size)
  inputs            [{name, dtype (aclDataType), format (aclFormat), dims (-1 on gear axes),
                      size (bytes at the largest gear), hidden}]; gear models end with the
                    hidden input `ascend_mbatch_shape_data` (int64, dims [k], size 8*k)
  gears             [[all data inputs' dims concatenated], ...] (what set_input_dynamic_dims takes)
  dynamic_values    the values given to --dynamic_dims / --dynamic_batch_size, one list per gear
  outputs           [{name, tensor, dtype, format, dims (at the largest gear), size (max bytes),
                      gear_dims ([dims per gear], [] for static models)}]; `name` is the OM's name,
                    as ATC gives it for ONNX: "<op>:<idx>:<tensor>" (no --out_nodes, or its
                    output-name form) or "<op>:<idx>" (node form), op = the producing ONNX node;
                    `tensor` is the ONNX tensor name. pyACL's get_output_name_by_index and
                    aclruntime's get_outputs()[i].name report `name`.
  source            {model, sha256} of the ONNX file given to atc
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

import numpy as np

MAGIC = b"ASCEND-ASR-FAKE-OM\n"
FORMAT = "ascend-asr-fake-om/1"
MBATCH_NAME = "ascend_mbatch_shape_data"

# aclDataType values and their numpy dtypes (acl_base.h)
ACL_FLOAT, ACL_FLOAT16, ACL_INT8, ACL_INT32, ACL_UINT8 = 0, 1, 2, 3, 4
ACL_INT16, ACL_UINT16, ACL_UINT32, ACL_INT64, ACL_UINT64 = 6, 7, 8, 9, 10
ACL_DOUBLE, ACL_BOOL = 11, 12
ACL_TO_NUMPY = {
    ACL_FLOAT: np.float32, ACL_FLOAT16: np.float16, ACL_INT8: np.int8, ACL_INT32: np.int32,
    ACL_UINT8: np.uint8, ACL_INT16: np.int16, ACL_UINT16: np.uint16, ACL_UINT32: np.uint32,
    ACL_INT64: np.int64, ACL_UINT64: np.uint64, ACL_DOUBLE: np.float64, ACL_BOOL: np.bool_,
}
NUMPY_TO_ACL = {np.dtype(v): k for k, v in ACL_TO_NUMPY.items()}
# onnx TensorProto.DataType -> aclDataType
ONNX_TO_ACL = {1: ACL_FLOAT, 10: ACL_FLOAT16, 3: ACL_INT8, 6: ACL_INT32, 2: ACL_UINT8,
               5: ACL_INT16, 4: ACL_UINT16, 12: ACL_UINT32, 7: ACL_INT64, 13: ACL_UINT64,
               11: ACL_DOUBLE, 9: ACL_BOOL}
# aclFormat
FORMAT_NCHW, FORMAT_NHWC, FORMAT_ND = 0, 1, 2
FORMAT_BY_NAME = {"NCHW": FORMAT_NCHW, "NHWC": FORMAT_NHWC, "ND": FORMAT_ND}


class FakeOmError(Exception):
    """kind: 'missing' (no such file), 'not_om' (bad magic) or 'corrupt' (bad header/ONNX)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def itemsize(acl_dtype: int) -> int:
    return np.dtype(ACL_TO_NUMPY[acl_dtype]).itemsize


def acl_dtype_of(np_dtype) -> int | None:
    return NUMPY_TO_ACL.get(np.dtype(np_dtype))


def nbytes(dims, acl_dtype: int) -> int:
    return int(np.prod(dims, dtype=np.int64)) * itemsize(acl_dtype)


def write(path: str, header: dict, onnx_bytes: bytes) -> None:
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
        f.write(onnx_bytes)


def read_header(path: str) -> dict:
    return _read(path)[0]


def _read(path: str):
    if not os.path.isfile(path):
        raise FakeOmError("missing", f"no such file: {path}")
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise FakeOmError("not_om", f"{path} is not an OM file (bad magic)")
        line = f.readline()
        rest = f.read()
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise FakeOmError("corrupt", f"{path}: unreadable OM header") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FakeOmError("corrupt", f"{path}: unknown OM header format")
    return header, rest


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str) -> FakeOm:
    """Validate and load (the onnxruntime session is built here, at model-load time)."""
    header, onnx_bytes = _read(path)
    om = FakeOm(header, onnx_bytes)
    try:
        om.session()
    except Exception as exc:
        raise FakeOmError("corrupt", f"{path}: the embedded model does not load: {exc}") from exc
    return om


class FakeOm:
    """A loaded fake OM: I/O descriptions, gears, and the embedded ONNX run on onnxruntime."""

    def __init__(self, header: dict, onnx_bytes: bytes):
        self.header = header
        self.onnx_bytes = onnx_bytes
        self.soc_version = header["soc_version"]
        self.dynamic = header.get("dynamic")
        self.inputs = header["inputs"]  # including the hidden mbatch input
        self.data_inputs = [t for t in self.inputs if not t.get("hidden")]
        self.outputs = header["outputs"]
        self.gears = [tuple(g) for g in header.get("gears", [])]
        self.dynamic_values = [tuple(v) for v in header.get("dynamic_values", [])]
        self._session = None
        self._lock = threading.Lock()

    @property
    def mbatch_index(self) -> int | None:
        for i, t in enumerate(self.inputs):
            if t["name"] == MBATCH_NAME:
                return i
        return None

    def gear_index(self, dims) -> int | None:
        key = tuple(int(d) for d in dims)
        return self.gears.index(key) if key in self.gears else None

    def input_shapes(self, gear: int | None) -> list[list[int]]:
        """Shapes of the data inputs at a gear (None: the static shapes)."""
        if gear is None:
            return [list(t["dims"]) for t in self.data_inputs]
        flat, shapes = list(self.gears[gear]), []
        for t in self.data_inputs:
            n = len(t["dims"])
            shapes.append(flat[:n])
            flat = flat[n:]
        return shapes

    def output_shapes(self, gear: int | None) -> list[list[int]]:
        if gear is None:
            return [list(o["dims"]) for o in self.outputs]
        return [list(o["gear_dims"][gear]) for o in self.outputs]

    def input_bytes(self, gear: int | None) -> list[int]:
        return [nbytes(s, t["dtype"]) for s, t in zip(self.input_shapes(gear), self.data_inputs)]

    def session(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                self._session = ort.InferenceSession(self.onnx_bytes, opts,
                                                     providers=["CPUExecutionProvider"])
            return self._session

    def run(self, arrays) -> list[np.ndarray]:
        """Data-input arrays (already in the OM dtypes) -> outputs in OM order and OM dtypes.

        FAKE_NPU_COMPUTE=0 skips onnxruntime and returns zeros of the right shapes: for
        throughput benchmarks on small hosts, where the fake device's CPU work would otherwise
        compete with the host work it is meant to overlap (a real NPU uses no host CPU).
        """
        if os.environ.get("FAKE_NPU_COMPUTE", "1") == "0":
            gear = self.gear_index([d for a in arrays for d in a.shape]) if self.gears else None
            shapes = self.output_shapes(gear)
            return [np.zeros(shape, dtype=ACL_TO_NUMPY[o["dtype"]]) for shape, o in zip(shapes, self.outputs)]
        sess = self.session()
        feeds = {t["name"]: a for t, a in zip(self.data_inputs, arrays)}
        results = sess.run(None, feeds)
        return [np.ascontiguousarray(r, dtype=ACL_TO_NUMPY[o["dtype"]])
                for r, o in zip(results, self.outputs)]
