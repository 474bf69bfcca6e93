"""ais_bench OLD (mid-2023) InferSession / MemorySummary on the fake aclruntime: no argument
checks, sumary()/reset_sumaryinfo(), infer() without out_array that accepts any sequence,
prepares only dymshape/dymdims (other mode strings are ignored) and passes arrays raw."""
import aclruntime
import numpy as np

from ._feeds import base_tensors, convert, dims_string, to_arrays


class InferSession:
    def __init__(self, device_id: int, model_path: str, acl_json_path: str | None = None,
                 debug: bool = False, loop: int = 1):
        self.device_id, self.model_path, self.loop = device_id, model_path, loop
        options = aclruntime.session_options()
        if acl_json_path is not None:
            options.acl_json_path = acl_json_path
        options.log_level = 1 if debug else 2
        options.loop = loop
        self.session = aclruntime.InferenceSession(model_path, device_id, options)
        self.outputs_names = [d.name for d in self.session.get_outputs()]

    def get_inputs(self):
        self.intensors_desc = self.session.get_inputs()
        return self.intensors_desc

    def get_outputs(self):
        self.outtensors_desc = self.session.get_outputs()
        return self.outtensors_desc

    def set_loop_count(self, loop):
        self.session.options().loop = loop

    def set_staticbatch(self):
        self.session.set_staticbatch()

    def set_dynamic_batchsize(self, dym_batch):
        self.session.set_dynamic_batchsize(dym_batch)

    def set_dynamic_hw(self, w: int, h: int):
        self.session.set_dynamic_hw(w, h)

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

    def convert_tensors_to_host(self, tensors):
        for t in tensors:
            t.to_host()

    def convert_tensors_to_arrays(self, tensors):
        return [np.array(t) for t in tensors]

    def run(self, feeds, out_array=False):
        inputs = base_tensors(feeds) if feeds and isinstance(feeds[0], np.ndarray) else feeds
        outputs = self.session.run(self.outputs_names, inputs)
        return to_arrays(outputs) if out_array else outputs

    def reset_sumaryinfo(self):
        self.session.reset_sumaryinfo()

    def sumary(self):
        return self.session.sumary()

    def finalize(self):
        if hasattr(self.session, "finalize"):
            self.session.finalize()

    def infer(self, feeds, mode="static", custom_sizes=100000):
        inputs, shapes = [], []
        for feed in feeds:
            value, shape = convert(feed, contiguous=False)
            inputs.append(value)
            shapes.append(shape)
        if mode in ("dymshape", "dymdims"):
            dims = dims_string(self.get_inputs(), shapes)
            if mode == "dymshape":
                self.session.set_dynamic_shape(dims)
                if isinstance(custom_sizes, int):
                    custom_sizes = [custom_sizes] * len(self.get_outputs())
                elif not isinstance(custom_sizes, list):
                    raise RuntimeError(f"custom_sizes:{custom_sizes} type:{type(custom_sizes)} "
                                       "invalid")
                self.session.set_custom_outsize(custom_sizes)
            else:
                self.session.set_dynamic_dims(dims)
        return self.run(inputs, out_array=True)


class MemorySummary:
    @staticmethod
    def get_H2D_time_list():
        return aclruntime.MemorySummary().H2D_time_list

    @staticmethod
    def get_D2H_time_list():
        return aclruntime.MemorySummary().D2H_time_list

    @staticmethod
    def reset():
        aclruntime.MemorySummary().reset()
