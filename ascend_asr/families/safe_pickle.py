"""Loading full-pickle checkpoints without their packages and without running their code.

Some upstream checkpoints pickle more than tensors: configuration objects of omegaconf, hydra
or the training code, enums, even torch.nn modules. `torch.load(weights_only=True)` refuses
them, and a plain `torch.load` would import those packages and run whatever the pickle names.
Here every global a pickle names must be on an explicit list: torch's tensor rebuilders and a
few builtin types load as themselves; each listed foreign class loads as an inert stand-in that
only records its arguments and state. Any other global is refused.
"""
from __future__ import annotations

import _compat_pickle
import collections
import os
import pickle
import types
import zipfile

import torch

from ..errors import CheckpointError

# What torch.save writes for tensors and their containers (storages are resolved by torch.load itself).
TORCH_GLOBALS = {
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": torch._utils._rebuild_parameter_with_state,
    "torch._tensor._rebuild_from_type_v2": torch._tensor._rebuild_from_type_v2,
    "torch.nn.parameter.Parameter": torch.nn.Parameter,
    "torch.Size": torch.Size,
    "torch.device": torch.device,
    "collections.OrderedDict": collections.OrderedDict,
    "collections.defaultdict": collections.defaultdict,
    **{f"builtins.{t.__name__}": t for t in (str, int, float, bool, complex, bytes, dict, list, tuple, set,
                                             frozenset, slice, type(None))},
    **{f"torch.{name}": getattr(torch, name) for name in ("float32", "float16", "float64", "int32", "int64",
                                                          "bfloat16", "uint8", "int8", "bool")},
}


# what BUILD must never target: the allowed globals themselves (functions, classes, modules)
GLOBAL_KINDS = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType)


class Inert:
    """A stand-in for a pickled class we neither import nor run: it keeps what the pickle gave it."""

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<inert {self.pickled_name}>"


def stand_ins(names) -> dict[str, type]:
    """One inert class per dotted global name."""
    return {name: type(name.rsplit(".", 1)[1], (Inert,), {"pickled_name": name}) for name in names}


def python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (pickle protocol 2, what torch.save writes: `__builtin__.unicode`) as Python 3's,
    the mapping pickle itself applies and a find_class override would otherwise skip."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


_ANSI = None


def one_line(exc: BaseException, limit: int = 200) -> str:
    """torch.load's message as one line: its first non-empty line, ANSI colour codes removed."""
    import re

    global _ANSI
    _ANSI = _ANSI or re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    # torch's weights-only refusal opens with two paragraphs of advice; the line that says why comes later
    telling = [line for line in lines if "Unsupported global" in line or "Unsupported operand" in line]
    first = (telling or [line for line in lines if line] or [type(exc).__name__])[0]
    first = first.replace("WeightsUnpickler error: ", "")
    return first if len(first) <= limit else first[:limit] + "..."


# what another family's checkpoint shows in its pickle: (markers, the family, what it is)
_FAMILY_MARKERS = (
    ((b"omegaconf", b"deepspeech_pytorch"), "deepspeech2", "a deepspeech.pytorch Lightning checkpoint"),
    ((b"rnn_param",), "lstm_ctc", "a ModelZoo LSTM-CTC (CTC_pytorch) package"),
    ((b"torch.nn.modules.rnn\nLSTM",), "lstm_ctc", "a ModelZoo LSTM-CTC (CTC_pytorch) package"),
)


def checkpoint_precheck(path: str) -> None:
    """Refuse what is no checkpoint at all before torch.load: a folder, an empty file, bytes that are neither a
    zip archive (torch.save since 1.6) nor a pickle (the legacy format, starting with PROTO 0x80)."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: a folder, not a checkpoint file; give the .pt/.pth/.ckpt file itself")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found; check the path")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint; give the file torch.save wrote "
                              "(the download or copy may have failed)")
    if not head.startswith(b"PK") and not head.startswith(b"\x80"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither the zip archive torch.save writes nor a "
                              "legacy pickle); give the file torch.save wrote")


def family_hint(path: str) -> str:
    """'; this looks like ... : use --family X' when the archive's pickle names another family's classes, else ''."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(name)[:4 << 20] if name else b""
        else:
            with open(path, "rb") as f:
                data = f.read(4 << 20)
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return ""
    for markers, family, what in _FAMILY_MARKERS:
        if any(m in data for m in markers):
            return f"; it looks like {what}: use --family {family}"
    return ""


def restricted_unpickler(table: dict[str, object]) -> type:
    """A pickle Unpickler that resolves only the globals of `table` (dotted name -> object; protocol-2 names
    mapped to Python 3 first) and refuses BUILD on a global."""

    class Unpickler(pickle._Unpickler):  # the Python implementation: its BUILD can be checked
        dispatch = dict(pickle._Unpickler.dispatch)

        def find_class(self, module: str, name: str):
            module, name = python3_name(module, name)
            key = f"{module}.{name}"
            if key not in table:
                raise pickle.UnpicklingError(f"global {key} is not on the allowed list")
            return table[key]

        def load_build(self):
            # BUILD sets attributes on the object below it; on an allowed global (a torch function, a class)
            # that would change it for the whole process, for every later load
            target = self.stack[-2]  # the state is on top, the object it is for below it
            if isinstance(target, GLOBAL_KINDS):
                raise pickle.UnpicklingError(f"BUILD on the global {target!r}: a checkpoint may set "
                                             "state on the objects it creates, never on a function or class")
            pickle._Unpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    return Unpickler


def restricted_load(path: str, allowed: dict[str, object]) -> object:
    """torch.load(path) where the pickle may name only TORCH_GLOBALS and `allowed` (dotted name -> object)."""
    checkpoint_precheck(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            # torch.load hands TorchScript archives to torch.jit.load, which never sees our unpickler
            raise CheckpointError(f"{path}: a TorchScript archive, whose code would run on loading; "
                                  "give the training checkpoint (state_dict) instead")
    Unpickler = restricted_unpickler({**TORCH_GLOBALS, **allowed})
    pickle_module = types.ModuleType("ascend_asr_restricted_pickle")
    pickle_module.Unpickler = Unpickler
    pickle_module.load = lambda f, **kwargs: Unpickler(f, **kwargs).load()
    pickle_module.__dict__.update(UnpicklingError=pickle.UnpicklingError)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=pickle_module)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError, ValueError, KeyError,
            zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: refused or unreadable ({type(exc).__name__}: {one_line(exc)}); only "
                              "tensors, plain containers and the configuration classes of the model's upstream "
                              f"project may appear in it{family_hint(path)}") from None


MAX_DEPTH = 64  # configuration trees are shallow; a deeper (or cyclic) one is not a checkpoint we know
MAX_NODES = 1_000_000  # shared references are converted once; a pickle whose tree is bigger is not a config


def plain(obj, depth: int = 0, memo: dict | None = None):
    """Stand-ins turned into plain Python: omegaconf containers and nodes into dicts, lists and values,
    enums into their values, other objects into their state. Each object is converted once (a pickle
    can reference one list from two places, 40 times over, in 1.5 kB)."""
    memo = {"_nodes": 0} if memo is None else memo
    key = id(obj)
    if key in memo:
        return memo[key][1]
    memo["_nodes"] += 1
    if memo["_nodes"] > MAX_NODES:
        raise CheckpointError(f"the checkpoint's objects hold more than {MAX_NODES} nodes; not a configuration")
    result = _plain(obj, depth, memo)
    memo[key] = (obj, result)  # obj kept alive so its id is not reused during the walk
    return result


def _plain(obj, depth: int, memo: dict):
    if depth > MAX_DEPTH:
        raise CheckpointError(f"the checkpoint's objects nest deeper than {MAX_DEPTH} levels (or form a cycle)")
    if isinstance(obj, Inert):
        state = obj.state[0] if isinstance(obj.state, tuple) and obj.state else obj.state
        name = obj.pickled_name.rsplit(".", 1)[1]
        field = "_content" if name in ("DictConfig", "ListConfig") else "_val" if name.endswith("Node") else None
        if field:
            return plain(state.get(field) if isinstance(state, dict) else None, depth + 1, memo)
        if obj.args and state is None:  # an enum, rebuilt from its value
            return plain(obj.args[0], depth + 1, memo)
        return plain(state, depth + 1, memo)
    if isinstance(obj, type) and issubclass(obj, Inert):
        return obj.pickled_name  # a class referenced as a value (e.g. rnn_type=torch.nn.LSTM)
    if isinstance(obj, dict):
        return {plain(k, depth + 1, memo): plain(v, depth + 1, memo) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v, depth + 1, memo) for v in obj) if not hasattr(obj, "_fields") else obj
    return obj
