"""aclruntime value types: dtype/type enums, tensor_desc, BaseTensor, Tensor, options, sumary."""
from __future__ import annotations

import time
from typing import ClassVar

import fake_npu
import fake_om
import numpy as np

GENERATION = None  # set by __init__


class _Enum:
    """pybind11-style enum: int(x) is the value, str(x) is 'dtype.float32', and (as for a
    non-arithmetic pybind enum) x == 0 is False: only members of the same enum compare equal."""
    _by_value: dict
    __members__: dict

    def __new__(cls, value):
        try:
            return cls._by_value[int(value)]
        except KeyError:
            raise ValueError(f"{value} is not a valid {cls.__name__}") from None

    @classmethod
    def _make(cls, name, value):
        member = object.__new__(cls)
        member.name, member.value = name, value
        cls._by_value[value] = member
        cls.__members__[name] = member
        setattr(cls, name, member)
        return member

    def __int__(self):
        return self.value

    __index__ = __int__

    def __eq__(self, other):
        return type(other) is type(self) and other.value == self.value

    def __hash__(self):
        return hash((type(self).__name__, self.value))

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"

    def __repr__(self):
        return f"<{type(self).__name__}.{self.name}: {self.value}>"


class dtype(_Enum):
    _by_value, __members__ = {}, {}


class MemType(_Enum):
    """Exported as aclruntime.type (named apart here so the builtin `type` stays usable)."""
    _by_value, __members__ = {}, {}


MemType.__name__ = MemType.__qualname__ = "type"


# registered names -> aclDataType (the enum registers "double", not "double64"; no bf16)
DTYPES = {"int8": 2, "uint8": 4, "int16": 6, "uint16": 7, "int32": 3, "uint32": 8, "int64": 9,
          "uint64": 10, "float16": 1, "float32": 0, "double": 11, "bool": 12}
for _name, _value in DTYPES.items():
    dtype._make(_name, _value)
for _value, _name in enumerate(("memory_host", "memory_device", "memory_dvpp")):
    MemType._make(_name, _value)


def dtype_of_numpy(np_dtype) -> dtype:
    acl = fake_om.acl_dtype_of(np_dtype)
    return dtype(acl) if acl in dtype._by_value else dtype.uint8  # unknown buffer format: uint8


class tensor_desc:
    def __init__(self):
        self.name, self.datatype, self.format = "", dtype.float32, 0
        self.shape, self.size, self.realsize = [], 0, 0

    def _copy(self) -> tensor_desc:
        d = tensor_desc()
        d.__dict__.update(self.__dict__)
        d.shape = list(self.shape)
        return d

    def __repr__(self):
        return (f"tensor_desc(name={self.name!r}, datatype={self.datatype}, format={self.format}, "
                f"shape={self.shape}, size={self.size}, realsize={self.realsize})")


class session_options:
    def __init__(self):
        self.loop, self.log_level, self.acl_json_path = 1, 2, ""


class infer_options:
    def __init__(self):
        self.output_dir, self.auto_dym_shape, self.auto_dym_dims = "", False, False
        self.out_format, self.pure_infer_mode = "BIN", False
        self.output_names, self.shapes_list = [], []


class sumary:
    def __init__(self, exec_time_list=None):
        self.exec_time_list = list(exec_time_list or [])


class _MemoryTimes:
    """Process-wide copy times (ms), as aclruntime keeps them in one global summary."""
    h2d: ClassVar[list] = []
    d2h: ClassVar[list] = []


class MemorySummary:
    """A view of the process-wide H2D/D2H copy times (ms)."""

    @property
    def H2D_time_list(self):
        return list(_MemoryTimes.h2d)

    @property
    def D2H_time_list(self):
        return list(_MemoryTimes.d2h)

    def reset(self):
        _MemoryTimes.h2d.clear()
        _MemoryTimes.d2h.clear()


def _int_arg(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{what}: incompatible function arguments ({value!r} is not an unsigned int)")
    return value


class BaseTensor:
    """A raw host buffer: (address, byte count). The session copies it to the device itself."""

    def __init__(self, buf, size):
        self.buf = _int_arg(buf, "BaseTensor.__init__")
        self.size = _int_arg(size, "BaseTensor.__init__")


class Tensor:
    """Tensor(ndarray) copies the array into a new host tensor."""

    def __init__(self, array=None, *, _device=None):
        if not isinstance(array, np.ndarray):
            raise TypeError("Tensor.__init__(): incompatible constructor arguments "
                            "(a numpy.ndarray is required)")
        self._data = np.array(array, copy=True, order="C")
        self._dtype = dtype_of_numpy(self._data.dtype)
        self._type = MemType.memory_host if _device is None else MemType.memory_device
        self._device = -1 if _device is None else _device

    @property
    def shape(self):
        return list(self._data.shape)

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def type(self):
        return self._type

    def _nbytes(self) -> int:
        return self._data.nbytes

    def to_device(self, device_id):
        _int_arg(device_id, "Tensor.to_device")
        if device_id >= fake_npu.device_count():
            raise RuntimeError("[507033][Error code unknown] ")
        self._type, self._device = MemType.memory_device, device_id

    def to_dvpp(self, device_id):
        self.to_device(device_id)
        self._type = MemType.memory_dvpp

    def to_host(self):
        if self._type is not MemType.memory_host:
            start = time.perf_counter()
            self._data = self._data.copy()
            _MemoryTimes.d2h.append((time.perf_counter() - start) * 1000.0)
            self._type, self._device = MemType.memory_host, -1

    def __array__(self, dtype=None, copy=None):
        if self._type is not MemType.memory_host:
            raise RuntimeError("tensor is in npu. can't convert to numpy array")
        return self._data if dtype is None else self._data.astype(dtype)

    def __repr__(self):
        return f"<aclruntime.Tensor shape={self.shape} dtype={self._dtype} type={self._type}>"
