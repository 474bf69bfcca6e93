"""acl.mdl (models, descriptions, datasets) and the data-buffer functions of the fake pyACL."""
from __future__ import annotations

import ctypes

import fake_npu
import fake_om
import numpy as np

from . import _codes as C
from ._rt import lookup_stream
from ._state import BARE, PAIR, RET, api, require_context
from ._state import DOUBLE as D


class LoadedModel:
    def __init__(self, model_id: int, om: fake_om.FakeOm, device: int):
        self.id = model_id
        self.om = om
        self.device = device
        self.last_gear: int | None = None  # gear of the last set_input_dynamic_dims
        self.queued: dict = {}  # stream -> executions queued and not finished


def io_dims(name: str, dims) -> dict:
    return {"name": name, "dimCount": len(dims), "dims": list(dims)}


EMPTY_DIMS = {"name": "", "dimCount": 0, "dims": []}


# -- loading ------------------------------------------------------------------------------
@api("mdl.load_from_file", PAIR(0))
def load_from_file(model_path):
    device, code = require_context()
    if code:
        return 0, code
    if not isinstance(model_path, str):
        return 0, D.error(C.INVALID_PARAM, "load_from_file: the path must be a str")
    try:
        om = fake_om.load(model_path)
    except fake_om.FakeOmError as exc:
        code = C.INVALID_FILE if exc.kind == "missing" else C.DESERIALIZE_MODEL
        return 0, D.error(code, f"EE1001: load model {model_path} failed: {exc}")
    if om.soc_version != fake_npu.soc_name():
        # hardware refuses an OM built for another chip at load time; the exact code is not
        # documented, DESERIALIZE_MODEL is the closest ACL code
        return 0, D.error(C.DESERIALIZE_MODEL, f"E19999: the OM was built for "
                          f"{om.soc_version} but device {device} is {fake_npu.soc_name()}")
    with D.lock:
        model_id = D.new_model_id()
        D.models[model_id] = LoadedModel(model_id, om, device)
    return model_id, C.SUCCESS


@api("mdl.unload", RET)
def unload(model_id):
    with D.lock:
        if D.models.pop(model_id, None) is None:
            return D.error(C.INVALID_MODEL_ID, f"unload: unknown model id {model_id}")
    return C.SUCCESS


# -- model description --------------------------------------------------------------------
@api("mdl.create_desc", BARE(0))
def create_desc():
    with D.lock:
        handle = D.new_handle()
        D.descs[handle] = None
    return handle


@api("mdl.destroy_desc", RET)
def destroy_desc(model_desc):
    with D.lock:
        if model_desc not in D.descs:
            return D.error(C.INVALID_PARAM, f"destroy_desc: unknown desc {model_desc}")
        del D.descs[model_desc]
    return C.SUCCESS


@api("mdl.get_desc", RET)
def get_desc(model_desc, model_id):
    with D.lock:
        if model_desc not in D.descs:
            return D.error(C.INVALID_PARAM, f"get_desc: unknown desc {model_desc}")
        if model_id not in D.models:
            return D.error(C.INVALID_MODEL_ID, f"get_desc: unknown model id {model_id}")
        D.descs[model_desc] = D.models[model_id]
    return C.SUCCESS


def _model(desc) -> LoadedModel | None:
    return D.descs.get(desc)


def _tensor(desc, index, outputs=False):
    m = _model(desc)
    if m is None or not isinstance(index, int):
        return None
    tensors = m.om.outputs if outputs else m.om.inputs
    return tensors[index] if 0 <= index < len(tensors) else None


@api("mdl.get_num_inputs", BARE(0))
def get_num_inputs(model_desc):
    m = _model(model_desc)
    return len(m.om.inputs) if m else 0


@api("mdl.get_num_outputs", BARE(0))
def get_num_outputs(model_desc):
    m = _model(model_desc)
    return len(m.om.outputs) if m else 0


@api("mdl.get_input_size_by_index", BARE(0))
def get_input_size_by_index(model_desc, index):
    t = _tensor(model_desc, index)
    return t["size"] if t else 0


@api("mdl.get_output_size_by_index", BARE(0))
def get_output_size_by_index(model_desc, index):
    t = _tensor(model_desc, index, outputs=True)
    return t["size"] if t else 0


@api("mdl.get_input_dims", PAIR(EMPTY_DIMS))
def get_input_dims(model_desc, index):
    t = _tensor(model_desc, index)
    if t is None:
        return dict(EMPTY_DIMS), D.error(C.INVALID_PARAM, "get_input_dims: bad desc or index")
    return io_dims(t["name"], t["dims"]), C.SUCCESS


@api("mdl.get_input_dims_v2", PAIR(EMPTY_DIMS))
def get_input_dims_v2(model_desc, index):
    return get_input_dims.__wrapped__(model_desc, index)


@api("mdl.get_output_dims", PAIR(EMPTY_DIMS))
def get_output_dims(model_desc, index):
    t = _tensor(model_desc, index, outputs=True)
    if t is None:
        return dict(EMPTY_DIMS), D.error(C.INVALID_PARAM, "get_output_dims: bad desc or index")
    return io_dims(t["name"], t["dims"]), C.SUCCESS  # the largest gear's dims


@api("mdl.get_cur_output_dims", PAIR(EMPTY_DIMS))
def get_cur_output_dims(model_desc, index):
    """Dims at the gear last set on the model (before any set: the largest gear's dims)."""
    m, t = _model(model_desc), _tensor(model_desc, index, outputs=True)
    if t is None:
        return dict(EMPTY_DIMS), D.error(C.INVALID_PARAM, "get_cur_output_dims: bad index")
    if m.id not in D.models:
        return dict(EMPTY_DIMS), D.error(C.INVALID_MODEL_ID, "get_cur_output_dims: unloaded")
    dims = t["dims"] if m.last_gear is None else t["gear_dims"][m.last_gear]
    return io_dims(t["name"], dims), C.SUCCESS


@api("mdl.get_input_data_type", BARE(-1))
def get_input_data_type(model_desc, index):
    t = _tensor(model_desc, index)
    return t["dtype"] if t else -1  # ACL_DT_UNDEFINED


@api("mdl.get_output_data_type", BARE(-1))
def get_output_data_type(model_desc, index):
    t = _tensor(model_desc, index, outputs=True)
    return t["dtype"] if t else -1


@api("mdl.get_input_format", BARE(-1))
def get_input_format(model_desc, index):
    t = _tensor(model_desc, index)
    return t["format"] if t else -1  # ACL_FORMAT_UNDEFINED


@api("mdl.get_output_format", BARE(-1))
def get_output_format(model_desc, index):
    t = _tensor(model_desc, index, outputs=True)
    return t["format"] if t else -1


@api("mdl.get_input_name_by_index", BARE(""))
def get_input_name_by_index(model_desc, index):
    t = _tensor(model_desc, index)
    return t["name"] if t else ""


@api("mdl.get_output_name_by_index", BARE(""))
def get_output_name_by_index(model_desc, index):
    t = _tensor(model_desc, index, outputs=True)
    return t["name"] if t else ""


def _index_by_name(model_desc, name, outputs):
    m = _model(model_desc)
    tensors = (m.om.outputs if outputs else m.om.inputs) if m else []
    for i, t in enumerate(tensors):
        if t["name"] == name:
            return i, C.SUCCESS
    return 0, D.error(C.INVALID_PARAM, f"no tensor named {name!r}")


@api("mdl.get_input_index_by_name", PAIR(0))
def get_input_index_by_name(model_desc, name):
    return _index_by_name(model_desc, name, outputs=False)


@api("mdl.get_output_index_by_name", PAIR(0))
def get_output_index_by_name(model_desc, name):
    return _index_by_name(model_desc, name, outputs=True)


@api("mdl.get_input_dynamic_gear_count", PAIR(0))
def get_input_dynamic_gear_count(model_desc, index):
    m = _model(model_desc)
    if m is None or index != -1:  # index is reserved and must be -1
        return 0, D.error(C.INVALID_PARAM, "get_input_dynamic_gear_count: bad desc or index")
    return (len(m.om.gears) if m.om.dynamic == "dims" else 0), C.SUCCESS


@api("mdl.get_input_dynamic_dims", PAIR([]))
def get_input_dynamic_dims(model_desc, index, gear_count):
    m = _model(model_desc)
    if m is None or index != -1 or m.om.dynamic != "dims" or gear_count != len(m.om.gears):
        return [], D.error(C.INVALID_PARAM, "get_input_dynamic_dims: bad desc, index or count")
    return [io_dims("", g) for g in m.om.gears], C.SUCCESS


@api("mdl.get_dynamic_batch", PAIR({"batchCount": 0, "batch": []}))
def get_dynamic_batch(model_desc):
    m = _model(model_desc)
    if m is None:
        return {"batchCount": 0, "batch": []}, D.error(C.INVALID_PARAM, "bad desc")
    batches = [v[0] for v in m.om.dynamic_values] if m.om.dynamic == "batch" else []
    return {"batchCount": len(batches), "batch": batches}, C.SUCCESS


# -- gears --------------------------------------------------------------------------------
def _set_gear(model_id, dataset, index, gear_of, kind):
    """Write the chosen gear into the dataset's ascend_mbatch_shape_data buffer, as ACL does;
    execute reads it back from there."""
    with D.lock:
        m = D.models.get(model_id)
        if m is None:
            return D.error(C.INVALID_MODEL_ID, f"unknown model id {model_id}")
        om = m.om
        if om.dynamic != kind:
            return D.error(C.INVALID_PARAM, f"the model is not a dynamic-{kind} model")
        bufs = D.datasets.get(dataset)
        if bufs is None or index != om.mbatch_index or index >= len(bufs):
            return D.error(C.INVALID_PARAM, f"index {index} is not {fake_om.MBATCH_NAME}'s "
                           "buffer in this dataset")
        buf = D.data_buffers.get(bufs[index])
        need = om.inputs[index]["size"]
        a, left = D.mem.find(buf[0]) if buf else (None, 0)
        if a is None or a.kind != "device" or buf[1] < need or left < need:
            return D.error(C.INVALID_PARAM, f"{fake_om.MBATCH_NAME} needs a {need}-byte "
                           "device buffer")
        gear = gear_of(om)
        if gear is None:
            return D.error(C.INVALID_PARAM, "not one of the compiled gears")
        data = np.asarray(om.gears[gear], dtype=np.int64).tobytes()
        ctypes.memmove(buf[0], data, len(data))
        m.last_gear = gear
    return C.SUCCESS


@api("mdl.set_input_dynamic_dims", RET)
def set_input_dynamic_dims(model_id, dataset, index, dims):
    def gear_of(om):
        # pyACL's wrapper checks PyList_Check: a tuple is refused
        if not isinstance(dims, dict) or not isinstance(dims.get("dims"), list):
            return None
        values = list(dims["dims"])
        if dims.get("dimCount") != len(values) or not all(isinstance(v, int) for v in values):
            return None
        return om.gear_index(values)
    return _set_gear(model_id, dataset, index, gear_of, "dims")


@api("mdl.set_dynamic_batch_size", RET)
def set_dynamic_batch_size(model_id, dataset, index, batch_size):
    def gear_of(om):
        batches = [v[0] for v in om.dynamic_values]
        return batches.index(batch_size) if batch_size in batches else None
    return _set_gear(model_id, dataset, index, gear_of, "batch")


# -- datasets and data buffers ------------------------------------------------------------
@api("mdl.create_dataset", BARE(0))
def create_dataset():
    with D.lock:
        handle = D.new_handle()
        D.datasets[handle] = []
    return handle


@api("mdl.destroy_dataset", RET)
def destroy_dataset(dataset):
    with D.lock:
        if D.datasets.pop(dataset, None) is None:
            return D.error(C.INVALID_PARAM, f"destroy_dataset: unknown dataset {dataset}")
    return C.SUCCESS  # its data buffers stay alive: destroy them separately


@api("mdl.add_dataset_buffer", PAIR(0))
def add_dataset_buffer(dataset, data_buffer):
    with D.lock:
        if dataset not in D.datasets or data_buffer not in D.data_buffers:
            return dataset, D.error(C.INVALID_PARAM, "add_dataset_buffer: unknown handle")
        D.datasets[dataset].append(data_buffer)
    return dataset, C.SUCCESS


@api("mdl.get_dataset_num_buffers", BARE(0))
def get_dataset_num_buffers(dataset):
    return len(D.datasets.get(dataset, []))


@api("mdl.get_dataset_buffer", BARE(0))
def get_dataset_buffer(dataset, index):
    bufs = D.datasets.get(dataset, [])
    return bufs[index] if isinstance(index, int) and 0 <= index < len(bufs) else 0


@api("create_data_buffer", BARE(0))
def create_data_buffer(data, size):
    if not isinstance(data, int) or not isinstance(size, int) or size < 0:
        return 0  # pyACL returns a null handle on failure
    with D.lock:
        handle = D.new_handle()
        D.data_buffers[handle] = [data, size]
    return handle


@api("destroy_data_buffer", RET)
def destroy_data_buffer(data_buffer):
    with D.lock:
        if D.data_buffers.pop(data_buffer, None) is None:
            return D.error(C.INVALID_PARAM, f"destroy_data_buffer: unknown {data_buffer}")
    return C.SUCCESS


@api("update_data_buffer", RET)
def update_data_buffer(data_buffer, data, size):
    with D.lock:
        if data_buffer not in D.data_buffers or size < 0:
            return D.error(C.INVALID_PARAM, "update_data_buffer: unknown buffer or bad size")
        D.data_buffers[data_buffer] = [data, size]
    return C.SUCCESS


@api("get_data_buffer_addr", BARE(0))
def get_data_buffer_addr(data_buffer):
    return D.data_buffers.get(data_buffer, [0, 0])[0]


@api("get_data_buffer_size", BARE(0))
def get_data_buffer_size(data_buffer):
    return D.data_buffers.get(data_buffer, [0, 0])[1]


@api("get_data_buffer_size_v2", BARE(0))
def get_data_buffer_size_v2(data_buffer):
    return D.data_buffers.get(data_buffer, [0, 0])[1]


# -- execution ----------------------------------------------------------------------------
def _prepare(model_id, in_ds, out_ds):
    """Validate datasets against the model and read the inputs -> (code, plan)."""
    with D.lock:
        m = D.models.get(model_id)
        if m is None:
            return D.error(C.INVALID_MODEL_ID, f"execute: unknown model id {model_id}"), None
        ins, outs = D.datasets.get(in_ds), D.datasets.get(out_ds)
        if ins is None or outs is None:
            return D.error(C.INVALID_PARAM, "execute: unknown dataset"), None
        om = m.om
        if len(ins) != len(om.inputs) or len(outs) != len(om.outputs):
            return D.error(C.INVALID_PARAM, f"execute: the model has {len(om.inputs)} input(s) "
                           f"and {len(om.outputs)} output(s), the datasets hold {len(ins)} and "
                           f"{len(outs)} buffer(s)"), None
        bufs = [D.data_buffers.get(b) for b in ins + outs]
        if any(b is None for b in bufs):
            return D.error(C.INVALID_PARAM, "execute: a dataset holds a destroyed buffer"), None

        def device_span(buf, need, what):
            a, left = D.mem.find(buf[0])
            if a is None or a.kind != "device" or a.device != m.device:
                return f"{what} is not device memory of device {m.device}"
            if buf[1] > left:
                return f"{what} claims {buf[1]} bytes but its allocation has {left} left"
            if buf[1] < need:
                return f"{what} holds {buf[1]} bytes, the gear needs {need}"
            return None

        gear = None
        if om.gears:
            mb = om.mbatch_index
            problem = device_span(bufs[mb], om.inputs[mb]["size"], fake_om.MBATCH_NAME)
            if problem:
                return D.error(C.INVALID_PARAM, f"execute: {problem}"), None
            k = len(om.gears[0])
            values = np.frombuffer(ctypes.string_at(bufs[mb][0], 8 * k), dtype=np.int64)
            gear = om.gear_index(values.tolist())
            if gear is None:
                return D.error(C.INVALID_PARAM, "execute: no gear set on this input dataset "
                               "(acl.mdl.set_input_dynamic_dims)"), None
        arrays = []
        shapes, out_shapes = om.input_shapes(gear), om.output_shapes(gear)
        for i, (t, shape) in enumerate(zip(om.data_inputs, shapes)):
            need = fake_om.nbytes(shape, t["dtype"])
            problem = device_span(bufs[i], need, f"input {i} ({t['name']})")
            if problem:
                return D.error(C.INVALID_PARAM, f"execute: {problem}"), None
            raw = ctypes.string_at(bufs[i][0], need)  # bytes, reinterpreted as the OM dtype
            arrays.append(np.frombuffer(raw, dtype=fake_om.ACL_TO_NUMPY[t["dtype"]])
                          .reshape(shape))
        targets = []
        for j, (t, shape) in enumerate(zip(om.outputs, out_shapes)):
            buf = bufs[len(ins) + j]
            problem = device_span(buf, fake_om.nbytes(shape, t["dtype"]),
                                  f"output {j} ({t['name']})")
            if problem:
                return D.error(C.INVALID_PARAM, f"execute: {problem}"), None
            targets.append(buf[0])
    return C.SUCCESS, (m, gear, arrays, targets)


def _run(plan) -> int:
    m, gear, arrays, targets = plan
    try:
        results, _, _ = fake_npu.execute(m.device, lambda: m.om.run(arrays))
    except Exception as exc:  # noqa: BLE001 - onnxruntime failing is a device-side error
        return D.error(C.RT_MODEL_EXECUTE, f"execute: the model failed on the device: {exc}")
    with D.lock:
        for addr, r in zip(targets, results):
            a, left = D.mem.find(addr)
            if a is None or left < r.nbytes:  # freed while the model ran
                return D.error(C.INVALID_PARAM, "execute: an output buffer was freed")
            ctypes.memmove(addr, r.ctypes.data, r.nbytes)
        D.executed.append((m.id, m.om.gears[gear] if gear is not None else None))
    return C.SUCCESS


@api("mdl.execute", RET)
def execute(model_id, input_dataset, output_dataset):
    device, code = require_context()
    if code:
        return code
    m = D.models.get(model_id)
    if m is not None and m.device != device:
        return D.error(C.INVALID_PARAM, f"execute: model {model_id} is on device {m.device}, "
                       f"this thread's context is on device {device}")
    code, plan = _prepare(model_id, input_dataset, output_dataset)
    return code or _run(plan)


@api("mdl.execute_async", RET)
def execute_async(model_id, input_dataset, output_dataset, stream):
    _, code = require_context()
    if code:
        return code
    s = lookup_stream(stream)
    with D.lock:
        if model_id not in D.models:
            return D.error(C.INVALID_MODEL_ID, f"execute_async: unknown model id {model_id}")
        if s is None or input_dataset not in D.datasets or output_dataset not in D.datasets:
            return D.error(C.INVALID_PARAM, "execute_async: unknown stream or dataset")

        # aclmdlExecuteAsync: one model must not run on several streams at once.
        m = D.models[model_id]
        busy = [other for other, n in m.queued.items() if n and other is not s]
        if busy:
            return D.error(C.INVALID_PARAM, f"execute_async: model {model_id} still has work queued on another "
                           "stream; a model may not execute on several streams concurrently")
        m.queued[s] = m.queued.get(s, 0) + 1

    def task():  # buffers are read when the stream gets here (after queued copies)
        try:
            code, plan = _prepare(model_id, input_dataset, output_dataset)
            return code or _run(plan)
        finally:
            with D.lock:
                m.queued[s] -= 1

    s.submit(task)
    return C.SUCCESS
