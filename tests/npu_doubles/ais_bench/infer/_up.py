"""ais_bench UP (2024-25) InferSession / MultiDeviceSession / MemorySummary on fake aclruntime."""
import logging
import time

import aclruntime
import numpy as np

from . import _checks as chk
from ._feeds import base_tensors, convert, dims_string, to_arrays

logger = logging.getLogger("ais_bench")
PIPELINE_SAMPLES_MAX = 512
ITERATION_TIMES_MAX = 65536


class InferSession:
    def __init__(self, device_id: int, model_path: str, acl_json_path: str | None = None,
                 debug: bool = False, loop: int = 1):
        chk.check_model_path_legality(model_path)
        chk.check_acl_json_path_legality(acl_json_path)
        chk.check_device_range_valid(device_id)
        chk.check_loop_size(loop)
        self.device_id, self.model_path, self.loop = device_id, model_path, loop
        self.acl_json_path, self.debug = acl_json_path, debug
        self.options = aclruntime.session_options()
        if acl_json_path is not None:
            self.options.acl_json_path = acl_json_path
        self.options.log_level = 1 if debug else 2
        self.options.loop = loop
        self.session = aclruntime.InferenceSession(model_path, device_id, self.options)
        self.outputs_names = [d.name for d in self.session.get_outputs()]
        self.intensors_desc = self.session.get_inputs()
        self.outtensors_desc = self.session.get_outputs()
        self.infer_mode_switch = {"static": self._static_prepare,
                                  "dymbatch": self._dymbatch_prepare,
                                  "dymhw": self._dymhw_prepare,
                                  "dymdims": self._dymdims_prepare,
                                  "dymshape": self._dymshape_prepare}

    # -- descriptions and settings --------------------------------------------------------
    def get_inputs(self):
        self.intensors_desc = self.session.get_inputs()
        return self.intensors_desc

    def get_outputs(self):
        self.outtensors_desc = self.session.get_outputs()
        return self.outtensors_desc

    def set_loop_count(self, loop):
        self.session.options().loop = loop

    def set_context(self):
        self.session.set_context()

    def set_staticbatch(self):
        self.session.set_staticbatch()

    def set_dynamic_batchsize(self, dym_batch):
        self.session.set_dynamic_batchsize(dym_batch)

    def set_dynamic_hw(self, w: int, h: int):
        self.session.set_dynamic_hw(w, h)

    def get_max_dym_batchsize(self):
        return self.session.get_max_dym_batchsize()

    def set_dynamic_dims(self, dym_dims: str):
        self.session.set_dynamic_dims(dym_dims)

    def set_dynamic_shape(self, dym_shape: str):
        self.session.set_dynamic_shape(dym_shape)

    def set_custom_outsize(self, custom_sizes):
        self.session.set_custom_outsize(custom_sizes)

    def create_tensor_from_fileslist(self, desc, files):
        return self.session.create_tensor_from_fileslist(desc, files)

    def create_tensor_from_arrays_to_device(self, arrays):
        tensor = aclruntime.Tensor(arrays)
        tensor.to_device(self.device_id)
        return tensor

    def get_dym_aipp_input_exist(self):
        return self.session.get_dym_aipp_input_exist()

    def check_dym_aipp_input_exist(self):
        self.session.check_dym_aipp_input_exist()

    @staticmethod
    def convert_tensors_to_host(tensors):
        for t in tensors:
            t.to_host()

    @staticmethod
    def convert_tensors_to_arrays(tensors):
        return [np.array(t) for t in tensors]

    # -- running --------------------------------------------------------------------------
    def run(self, feeds, out_array=False):
        if feeds and isinstance(feeds[0], np.ndarray):
            inputs = base_tensors(feeds)  # `feeds` keeps the arrays alive during the call
        else:
            inputs = feeds
        outputs = self.session.run(self.outputs_names, inputs)
        return to_arrays(outputs) if out_array else outputs

    def run_pipeline(self, infilelist, output, auto_shape=False, auto_dims=False, outfmt="BIN",
                     pure_infer_mode=False, extra_session=None):
        options = aclruntime.infer_options()
        options.output_dir, options.auto_dym_shape, options.auto_dym_dims = \
            output, auto_shape, auto_dims
        options.out_format, options.pure_infer_mode = outfmt, pure_infer_mode
        self.session.run_pipeline(infilelist, options, extra_session or [])

    def infer(self, feeds, mode="static", custom_sizes=100000, out_array=True):
        chk.check_list(feeds, chk.MODEL_INPUT_TENSOR_COUNT_MAX, allow_empty=False)
        chk.check_bool_value(out_array)
        chk.check_custom_size(custom_sizes, mode)
        inputs, shapes = [], []
        for feed in feeds:
            value, shape = convert(feed)
            inputs.append(value)
            shapes.append(shape)
        self.infer_mode_switch[mode](shapes, custom_sizes)
        return self.run(inputs, out_array)

    def infer_pipeline(self, feeds_list, mode="static", custom_sizes=100000):
        chk.check_list(feeds_list, PIPELINE_SAMPLES_MAX, allow_empty=False)
        chk.check_custom_size(custom_sizes, mode)
        inputs_list, shapes_list, keep = [], [], []
        for feeds in feeds_list:
            chk.check_list(feeds, chk.MODEL_INPUT_TENSOR_COUNT_MAX, allow_empty=False)
            arrays, shapes = [], []
            for feed in feeds:
                value, shape = convert(feed)
                if isinstance(value, aclruntime.Tensor):
                    value = np.array(value)
                    shape = value.shape
                arrays.append(value)
                shapes.append(shape)
            keep.append(arrays)
            inputs_list.append(base_tensors(arrays))
            shapes_list.append(shapes)
        if mode == "dymshape":
            sizes = [custom_sizes] * len(self.get_outputs()) if isinstance(custom_sizes, int) \
                else custom_sizes
            self.session.set_custom_outsize(sizes)
        elif mode != "dymdims":  # static/dymbatch/dymhw: prepared once, from the last sample
            self.infer_mode_switch[mode](shapes_list[-1], custom_sizes)
        outputs = self.session.run_pipeline(self.outputs_names, inputs_list, shapes_list,
                                            mode == "dymshape", mode == "dymdims")
        return [self.convert_tensors_to_arrays(o) for o in outputs]

    def infer_iteration(self, feeds, in_out_list=None, iteration_times=1, mode="static",
                        custom_sizes=100000):
        chk.check_list(feeds, chk.MODEL_INPUT_TENSOR_COUNT_MAX, allow_empty=False)
        chk.check_custom_size(custom_sizes, mode)
        chk.check_positive_integer(iteration_times)
        if iteration_times > ITERATION_TIMES_MAX:
            raise ValueError(f"iteration times over max limit: {ITERATION_TIMES_MAX}")
        in_out_list = in_out_list or []
        chk.check_in_out_list(in_out_list, self.get_inputs(), self.get_outputs())
        inputs, shapes = [], []
        for feed in feeds:
            value, shape = convert(feed)
            if isinstance(value, aclruntime.Tensor):
                raise RuntimeError(f"type:{type(feed)} invalid")  # noqa: TRY004 - as upstream
            inputs.append(self.create_tensor_from_arrays_to_device(value))
            shapes.append(shape)
        self.infer_mode_switch[mode](shapes, custom_sizes)
        outputs = self.session.run(self.outputs_names, inputs)
        for _ in range(iteration_times - 1):
            for i, reused in enumerate(in_out_list):
                if reused >= 0:
                    inputs[i] = outputs[reused]
            outputs = self.session.run(self.outputs_names, inputs)
        return to_arrays(outputs)

    # -- summaries and teardown -----------------------------------------------------------
    def summary(self):
        return self.session.sumary()

    def reset_summaryinfo(self):
        self.session.reset_sumaryinfo()

    def free_resource(self):
        if hasattr(self.session, "free_resource"):
            self.session.free_resource()

    @staticmethod
    def finalize():
        if hasattr(aclruntime.InferenceSession, "finalize"):
            aclruntime.InferenceSession.finalize()

    # -- mode preparation -----------------------------------------------------------------
    def _static_prepare(self, shapes, custom_sizes):
        self.set_staticbatch()

    def _dymbatch_prepare(self, shapes, custom_sizes):
        descs = self.get_inputs()
        if len(shapes) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        for desc, shape in zip(descs, shapes):
            for j, dim in enumerate(shape):
                if desc.shape[j] < 0:
                    self.set_dynamic_batchsize(dim)
                    return
                if desc.shape[j] != dim:
                    raise RuntimeError("input datas and intensors dim not matched!")
        raise RuntimeError("not a dymbatch model!")

    def _dymhw_prepare(self, shapes, custom_sizes):
        descs = self.get_inputs()
        if len(shapes) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        for desc, shape in zip(descs, shapes):
            if len(desc.shape) > 3 and desc.shape[2] < 0 and desc.shape[3] < 0:
                self.set_dynamic_hw(shape[2], shape[3])
                return
        raise RuntimeError("not a dymhw model!")

    def _dymdims_prepare(self, shapes, custom_sizes):
        descs = self.get_inputs()
        if len(shapes) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        self.session.set_dynamic_dims(dims_string(descs, shapes))

    def _dymshape_prepare(self, shapes, custom_sizes):
        descs = self.get_inputs()
        if len(shapes) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        self.session.set_dynamic_shape(dims_string(descs, shapes))
        if isinstance(custom_sizes, int):
            custom_sizes = [custom_sizes] * len(self.get_outputs())
        elif not isinstance(custom_sizes, list):
            raise RuntimeError(  # noqa: TRY004 - as upstream
                f"custom_sizes:{custom_sizes} type:{type(custom_sizes)} invalid")
        self.session.set_custom_outsize(custom_sizes)


class MultiDeviceSession:
    """Simplified: runs each feeds entry in this process, one after another (the real one uses a
    process pool). Like the real one, errors are only logged, and `self.summary` is a dict that
    shadows the method."""

    def __init__(self, model_path: str, acl_json_path: str | None = None, debug: bool = False,
                 loop: int = 1):
        chk.check_model_path_legality(model_path)
        chk.check_acl_json_path_legality(acl_json_path)
        chk.check_loop_size(loop)
        self.model_path, self.acl_json_path, self.debug, self.loop = \
            model_path, acl_json_path, debug, loop
        self.summary = {}

    def _each(self, device_feeds, call):
        chk.check_dict(device_feeds, 32, allow_empty=False)
        outputs, self.summary = {}, {}
        for device_id, entries in device_feeds.items():
            chk.check_device_range_valid(device_id)
            chk.check_list(entries, 32, allow_empty=False)
            for entry in entries:
                try:
                    session = InferSession(device_id, self.model_path, self.acl_json_path,
                                           self.debug, self.loop)
                    start = time.time()
                    result = call(session, entry)
                    end = time.time()
                except Exception as exc:  # noqa: BLE001 - the real error_callback only logs
                    logger.error(f"subprocess run failed error_callback:{exc}")
                    continue
                outputs.setdefault(device_id, []).append(result)
                self.summary.setdefault(device_id, []).append((end - start) * 1000)
        return outputs

    def infer(self, device_feeds: dict, mode="static", custom_sizes=100000):
        chk.check_custom_size(custom_sizes, mode)
        return self._each(device_feeds, lambda s, f: s.infer(f, mode, custom_sizes))

    def infer_pipeline(self, device_feeds_list: dict, mode="static", custom_sizes=100000):
        chk.check_custom_size(custom_sizes, mode)
        return self._each(device_feeds_list, lambda s, f: s.infer_pipeline(f, mode, custom_sizes))

    def infer_iteration(self, device_feeds: dict, in_out_list=None, iteration_times=1,
                        mode="static", custom_sizes=None):
        chk.check_custom_size(custom_sizes, mode)
        return self._each(device_feeds, lambda s, f: s.infer_iteration(
            f, in_out_list, iteration_times, mode, custom_sizes))


class MemorySummary:
    @staticmethod
    def get_h2d_time_list():
        return aclruntime.MemorySummary().H2D_time_list

    @staticmethod
    def get_d2h_time_list():
        return aclruntime.MemorySummary().D2H_time_list

    @staticmethod
    def reset():
        aclruntime.MemorySummary().reset()
