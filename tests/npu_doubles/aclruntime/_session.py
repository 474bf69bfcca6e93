"""aclruntime.InferenceSession on a fake OM (reference §2, §9)."""
from __future__ import annotations

import ctypes
import os
import re
import sys
import threading
import time

import fake_npu
import fake_om
import numpy as np

from ._types import (
    BaseTensor,
    Tensor,
    _MemoryTimes,
    dtype,
    session_options,
    sumary,
    tensor_desc,
)

LOOP_MAX = 100000
BATCH_MAX = 4096
HW_MAX = 65536
CUSTOM_SIZE_MAX = 16 * 1024 ** 3
CUSTOM_COUNT_MAX = 256
DEVICE_ID_MAX = 255
# "in0:1,3,32,32;in1:4,3,32,32"
DYM_STRING = re.compile(r"^[^:;,]+:\d+(,\d+)*(;[^:;,]+:\d+(,\d+)*)*$")
# error texts of aclruntime's GetError: "[<code>][<text>] "
GENERAL_FAILURE = "[-1][ACL: general failure] "
INVALID_PARAM = "[1][ACL: invalid parameter] "  # what a failed CHECK_RET_EQ(..., SUCCESS) gives
RUNTIME_FAILURE = "[3][ACL: runtime failure] "
NOT_INITIALIZED = "[100001][ACL is not initialized] "
INVALID_MODEL_ID = "[100011][Invalid model ID] "
OUTPUT_SIZE_ZERO = "[3011][Infer: find outputsize is zero please check outputsize is set correct] "


def _log_error(message: str) -> None:
    print(f"[ERROR] {message}", file=sys.stderr)


def _fail(text: str, detail: str = "") -> RuntimeError:
    if detail:
        _log_error(detail)
    return RuntimeError(text)


def _check_model_file(path: str) -> bool:
    """The C++ File::CheckFileBeforeRead(path, OM) gate (UP): a regular, non-symlink .om file."""
    return (os.path.isfile(path) and not os.path.islink(path)
            and os.path.splitext(path)[1] == ".om")


class InferenceSession:
    def __init__(self, model_path, device_id, options):
        if not isinstance(model_path, str) or isinstance(device_id, bool) \
                or not isinstance(device_id, int) or device_id < 0 \
                or not isinstance(options, session_options):
            raise TypeError("__init__(): incompatible constructor arguments. The following "
                            "argument types are supported:\n    1. aclruntime.InferenceSession"
                            "(arg0: str, arg1: int, arg2: aclruntime.session_options)")
        from . import GENERATION
        self._generation = GENERATION
        if not 0 < options.loop <= LOOP_MAX:
            raise _fail("loop num out of range. Please check.", "loop size out of range")
        if not 1 <= options.log_level <= 4:
            raise _fail("log level out of range. Please check.", "log level out of range")
        if GENERATION == "new" and not _check_model_file(model_path):
            raise _fail("please check model path", "model path illegal, please check.")
        if options.acl_json_path and not (os.path.isfile(options.acl_json_path)
                                          and options.acl_json_path.endswith(".json")):
            raise _fail("please check acl json path", "acl json path illegal, please check.")
        if device_id > DEVICE_ID_MAX:
            raise _fail("device id is out of range", f"device id should be in [0, {DEVICE_ID_MAX}]")
        state = fake_npu.STATE
        with state.lock:
            if state.finalized:
                raise _fail(NOT_INITIALIZED, "ACL was finalized in this process")
            state.initialized = True  # aclruntime calls aclInit itself (repeat init tolerated)
        if device_id >= fake_npu.device_count():
            raise _fail("[507033][Error code unknown] ", f"open device {device_id} failed")
        try:
            om = fake_om.load(model_path)
        except fake_om.FakeOmError as exc:
            raise _fail(INVALID_PARAM, f"load model from file failed: {exc}") from None
        if om.soc_version != fake_npu.soc_name():
            raise _fail(INVALID_PARAM, f"load model failed: the OM was built for "
                        f"{om.soc_version}, the device is {fake_npu.soc_name()}")
        self._om, self._device, self._options = om, device_id, options
        self._lock = threading.RLock()
        self._zero = time.perf_counter()
        self._times: list = []
        self._mode = "static"
        self._gear: int | None = None
        self._custom_sizes: list[int] = []
        self._freed = False
        self._inputs = [self._desc(t) for t in om.data_inputs]
        self._outputs = [self._desc(t) for t in om.outputs]

    @staticmethod
    def _desc(t) -> tensor_desc:
        d = tensor_desc()
        d.name, d.datatype, d.format = t["name"], dtype(t["dtype"]), t["format"]
        d.shape, d.size, d.realsize = list(t["dims"]), t["size"], t["size"]
        return d

    # -- descriptions ---------------------------------------------------------------------
    def get_inputs(self):
        """Copies; the hidden ascend_mbatch_shape_data input is not listed."""
        return [d._copy() for d in self._inputs]

    def get_outputs(self):
        return [d._copy() for d in self._outputs]

    def options(self):
        return self._options

    def _alive(self):
        if self._freed:
            raise _fail(INVALID_MODEL_ID, "the session's resources were freed")
        if not fake_npu.STATE.initialized:
            raise _fail(NOT_INITIALIZED, "ACL was finalized in this process")

    # -- dynamic modes --------------------------------------------------------------------
    def set_staticbatch(self):
        self._alive()
        with self._lock:
            self._mode, self._gear = "static", None  # realsize is left as it was (as in C++)
        return 0

    def set_dynamic_batchsize(self, batchsize):
        self._alive()
        if not 0 < int(batchsize) <= BATCH_MAX:
            raise _fail("dynamic batchsize out of range. Please check.")
        om = self._om
        batches = [v[0] for v in om.dynamic_values] if om.dynamic == "batch" else []
        if batchsize not in batches:
            raise _fail(INVALID_PARAM, f"batch size {batchsize} is not a compiled gear {batches}")
        with self._lock:
            for d in self._inputs:
                if -1 in d.shape:
                    d.realsize = d.size * batchsize // max(batches)
            self._mode, self._gear = "batch", batches.index(batchsize)
        return 0

    def get_max_dym_batchsize(self):
        om = self._om
        return max(v[0] for v in om.dynamic_values) if om.dynamic == "batch" else 0

    def set_dynamic_hw(self, width, height):
        self._alive()
        if not 0 < width <= HW_MAX:
            raise _fail("width of dymHW out of range. Please check.")
        if not 0 < height <= HW_MAX:
            raise _fail("height of dymHW out of range. Please check.")
        raise _fail(INVALID_PARAM, "not a dynamic image size model (the fake ATC builds none)")

    def set_dynamic_dims(self, dym_dims):
        self._alive()
        if not isinstance(dym_dims, str) or not DYM_STRING.match(dym_dims):
            raise _fail("the format of dynamic dims string is illegal, please check")
        om = self._om
        if om.dynamic != "dims":
            raise _fail(GENERAL_FAILURE, "the dynamic_dims parameter is not specified for "
                        "model conversion")
        parsed = []
        for part in dym_dims.split(";"):
            name, _, dims = part.partition(":")
            parsed.append((name, [int(v) for v in dims.split(",")]))
        flat = [v for _, dims in parsed for v in dims]  # concatenated in the string's order
        gear = om.gear_index(flat)
        if gear is None:
            raise _fail(GENERAL_FAILURE, "check dynamic dims failed, please set correct "
                        f"dymDims paramenter: {dym_dims} is not one of {om.gears}")
        with self._lock:
            by_name = {d.name: d for d in self._inputs}
            for name, dims in parsed:
                if name in by_name:
                    d = by_name[name]
                    d.realsize = fake_om.nbytes(dims, int(d.datatype))
            self._mode, self._gear = "dims", gear
        return 0

    def set_dynamic_shape(self, dym_shape):
        self._alive()
        if not isinstance(dym_shape, str) or not DYM_STRING.match(dym_shape):
            raise _fail("the format of dynamic shape string is illegal, please check")
        raise _fail(GENERAL_FAILURE, "not a dynamic shape model (the fake ATC builds none)")

    def set_custom_outsize(self, custom_sizes):
        if len(custom_sizes) > CUSTOM_COUNT_MAX:
            raise _fail("length of custom size list out of range. Please check.")
        if any(not 0 < s <= CUSTOM_SIZE_MAX for s in custom_sizes):
            raise _fail("custom size num out of range. Please check.")
        self._alive()
        with self._lock:
            self._custom_sizes = [int(s) for s in custom_sizes]
        return 0

    def set_context(self):
        self._alive()

    def get_dym_aipp_input_exist(self):
        return 0

    def check_dym_aipp_input_exist(self):
        raise _fail(GENERAL_FAILURE, "the model has no dynamic AIPP input")

    # -- running --------------------------------------------------------------------------
    def _gather(self, feeds) -> list[bytes]:
        """Feeds -> raw input bytes, checked like CheckIn*AndFillBaseTensor (bytes, not dtype)."""
        inputs = self._inputs
        if isinstance(feeds, dict):
            if len(feeds) != len(inputs) or any(d.name not in feeds for d in inputs):
                raise _fail(GENERAL_FAILURE, "feeds do not name every model input")
            feeds = [feeds[d.name] for d in inputs]
        feeds = list(feeds)
        if feeds and all(isinstance(f, BaseTensor) for f in feeds):
            if len(feeds) != len(inputs):
                raise _fail(RUNTIME_FAILURE, f"feeds size: {len(feeds)} not equal to model "
                            f"tensor desc size: {len(inputs)}")
            raw = []
            for i, (f, d) in enumerate(zip(feeds, inputs)):
                if f.size != d.realsize:
                    raise _fail(GENERAL_FAILURE, f"check i:{i} name:{d.name} in size:{f.size} "
                                f"needsize:{d.realsize} not match")
                start = time.perf_counter()
                raw.append(ctypes.string_at(f.buf, f.size) if f.size else b"")
                _MemoryTimes.h2d.append((time.perf_counter() - start) * 1000.0)
            return raw
        if not all(isinstance(f, Tensor) for f in feeds):
            raise TypeError("run(): incompatible function arguments (feeds must be a list of "
                            "aclruntime.Tensor, a list of aclruntime.BaseTensor or a dict)")
        raw = []
        for i, (f, d) in enumerate(zip(feeds, inputs)):
            if f._nbytes() != d.realsize:
                raise _fail(GENERAL_FAILURE, f"check i:{i} name:{d.name} in size:{f._nbytes()} "
                            f"needsize:{d.realsize} not match")
            if f.device != self._device:  # a host pointer handed to the model fails on the NPU
                raise _fail(GENERAL_FAILURE, f"input {i} is not on device {self._device} "
                            "(call to_device first)")
            raw.append(f._data.tobytes())
        if len(raw) != len(inputs):
            raise _fail(GENERAL_FAILURE, f"intensors in:{len(raw)} need:{len(inputs)} not match")
        return raw

    def _execute(self, raw: list[bytes]):
        om = self._om
        gear = None
        if om.gears:
            if self._mode not in ("dims", "batch") or self._gear is None:
                raise _fail(GENERAL_FAILURE, "check failed: a dynamic-gear model needs "
                            "set_dynamic_dims / set_dynamic_batchsize before run")
            gear = self._gear
        shapes = om.input_shapes(gear)
        arrays = []
        for data, t, shape in zip(raw, om.data_inputs, shapes):
            need = fake_om.nbytes(shape, t["dtype"])
            if len(data) != need:  # realsize and the gear disagree (e.g. static after dims)
                raise _fail(GENERAL_FAILURE, f"input {t['name']} holds {len(data)} bytes, the "
                            f"gear needs {need}")
            arrays.append(np.frombuffer(data, dtype=fake_om.ACL_TO_NUMPY[t["dtype"]])
                          .reshape(shape))
        sizes = [self._custom_sizes[i] if i < len(self._custom_sizes) else o["size"]
                 for i, o in enumerate(om.outputs)]
        if any(s == 0 for s in sizes):
            raise _fail(OUTPUT_SIZE_ZERO)
        results = None
        for _ in range(self._options.loop):
            try:
                results, start, end = fake_npu.execute(self._device, lambda: om.run(arrays))
            except Exception as exc:  # noqa: BLE001 - a model failing on the device
                raise _fail(GENERAL_FAILURE, f"acl execute failed: {exc}") from None
            t0, t1 = (start - self._zero) * 1000.0, (end - self._zero) * 1000.0
            with self._lock:
                self._times.append((t0, t1) if self._generation == "new" else t1 - t0)
        for r, s, o in zip(results, sizes, om.outputs):
            if r.nbytes > s:
                raise _fail(GENERAL_FAILURE, f"output {o['name']} needs {r.nbytes} bytes, "
                            f"{s} were allocated")
        return results

    def run(self, out_names, feeds):
        self._alive()
        if not isinstance(out_names, (list, tuple)):
            raise TypeError("run(): incompatible function arguments")
        index = {o["name"]: i for i, o in enumerate(self._om.outputs)}
        raw = self._gather(feeds)
        for name in out_names:
            if name not in index:
                raise _fail(GENERAL_FAILURE, f"outnames {name} not valid")
        with self._lock:
            results = self._execute(raw)
        return [Tensor(results[index[n]], _device=self._device) for n in out_names]

    def run_pipeline(self, *args):
        """Only the in-memory overload: (out_names, inputs_list, shapes_list, auto_dym_shape,
        auto_dym_dims) -> list of lists of host Tensors."""
        if len(args) != 5:
            raise NotImplementedError("fake aclruntime: the file-based run_pipeline overload "
                                      "is not faked")
        out_names, inputs_list, shapes_list, auto_shape, auto_dims = args
        outputs = []
        for inputs, shapes in zip(inputs_list, shapes_list):
            if auto_shape:
                raise _fail(GENERAL_FAILURE, "not a dynamic shape model")
            if auto_dims:
                self.set_dynamic_dims(";".join(
                    f"{d.name}:{','.join(str(int(v)) for v in s)}"
                    for d, s in zip(self._inputs, shapes)))
            tensors = self.run(out_names, inputs)
            for t in tensors:
                t.to_host()
            outputs.append(tensors)
        return outputs

    def create_tensor_from_fileslist(self, desc, files):
        chunks = []
        for name in files:
            with open(name, "rb") as f:
                chunks.append(f.read())
        data = b"".join(chunks)
        arr = np.frombuffer(data, dtype=fake_om.ACL_TO_NUMPY[int(desc.datatype)])
        return Tensor(arr, _device=self._device)

    # -- summaries and teardown -----------------------------------------------------------
    def sumary(self):
        with self._lock:
            return sumary(self._times)

    def reset_sumaryinfo(self):
        with self._lock:
            self._times.clear()
        return 0


def _free_resource(self):
    """UP only: destroys the model, its memory and the session's context."""
    self._freed = True
    return 0


def _finalize():
    """UP only (static): aclFinalize for the whole process."""
    state = fake_npu.STATE
    with state.lock:
        state.initialized, state.finalized = False, True
    return 0


def install_generation(generation: str) -> None:
    if generation == "new":
        InferenceSession.free_resource = _free_resource
        InferenceSession.finalize = staticmethod(_finalize)
