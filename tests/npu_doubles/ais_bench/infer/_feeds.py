"""Turning infer() feeds into what aclruntime takes (shared by both generations)."""
import aclruntime
import numpy as np

TORCH_TENSOR_TYPES = ("torch.FloatTensor", "torch.DoubleTensor", "torch.HalfTensor",
                      "torch.BFloat16Tensor", "torch.ByteTensor", "torch.CharTensor",
                      "torch.ShortTensor", "torch.LongTensor", "torch.BoolTensor",
                      "torch.IntTensor")
NUMPY_SCALARS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                 np.float16, np.float32, np.float64)


def convert(feed, contiguous=True):
    """-> (input for run(), its shape). UP makes arrays contiguous; OLD passed them raw."""
    if isinstance(feed, np.ndarray):
        array = np.ascontiguousarray(feed) if contiguous else feed
        return array, array.shape
    if type(feed) in NUMPY_SCALARS:
        array = np.array(feed)
        return array, [feed.size]
    if isinstance(feed, aclruntime.Tensor):
        return feed, feed.shape
    if hasattr(feed, "type") and callable(feed.type) and feed.type() in TORCH_TENSOR_TYPES:
        array = feed.numpy()
        if contiguous or not feed.is_contiguous():
            array = np.ascontiguousarray(array)
        return array, array.shape
    raise RuntimeError(f"type:{type(feed)} invalid")


def base_tensors(arrays):
    """Host arrays as (pointer, nbytes): the session reads the bytes, whatever the dtype."""
    return [aclruntime.BaseTensor(a.__array_interface__["data"][0], a.nbytes) for a in arrays]


def dims_string(descs, shapes):
    return ";".join(f"{d.name}:{','.join(str(v) for v in s)}" for d, s in zip(descs, shapes))


def to_arrays(tensors):
    for t in tensors:
        t.to_host()
    return [np.array(t) for t in tensors]
