"""Intermediate tensors, exposed by name: every float value of an ONNX graph as an extra graph output, and
every module output of a PyTorch model through forward hooks (named by module path).

An ONNX graph's nodes are stored in topological order, and a PyTorch model's forward hooks fire in the order
its modules finish, so both sides list their tensors in the order they are produced: the order in which the
first tensor that breaks a threshold is looked for.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np

# onnx.TensorProto element types of floating-point tensors: FLOAT, FLOAT16, DOUBLE, BFLOAT16
FLOAT_TYPES = frozenset({1, 10, 11, 16})


@dataclass(frozen=True)
class GraphTensors:
    """What comparison and dumping need of an ONNX graph: its exposed tensors and who makes and reads them."""

    order: tuple  # exposed tensor names (float, or of a type shape inference could not tell), topologically
    producer: dict  # tensor -> (node name, output index); node names as msit names unnamed nodes
    op_type: dict  # tensor -> op type of the node that makes it
    consumers: dict  # tensor -> tuple of the node names that read it
    graph_inputs: tuple
    graph_outputs: frozenset
    node_inputs: tuple  # (node name, input index, tensor) for node inputs that are graph inputs (msit dumps them)


def node_names(graph) -> list[str]:
    """Each node's name; an unnamed node is called `<op_type>_<index>`, as msit's ONNX dump calls it."""
    names, taken = [], {n.name for n in graph.node if n.name}
    for index, node in enumerate(graph.node):
        name = node.name
        if not name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            taken.add(name)
        names.append(name)
    return names


def _known_types(model) -> dict[str, int]:
    """Element type of every value shape inference can tell (an unknown op leaves its outputs out)."""
    import onnx

    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]  # stale hints (onnxconverter-common's fp16 leaves some) would be taken as types
    try:
        inferred = onnx.shape_inference.infer_shapes(bare)
    except Exception:  # noqa: BLE001 - ops from other domains (com.microsoft after ort-opt): types stay unknown
        inferred = bare
    types = {}
    graph = inferred.graph
    for v in (*graph.value_info, *graph.input, *graph.output):
        t = v.type.tensor_type.elem_type if v.type.HasField("tensor_type") else 0
        if t:
            types[v.name] = t
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def expose_tensors(model) -> tuple[object, GraphTensors]:
    """A copy of `model` whose graph outputs also hold every intermediate float value (Constant nodes left out:
    they are weights), and the description of those tensors. Values whose type is unknown are exposed too and
    dropped after the run if they are not float."""
    import onnx

    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    graph = exposed.graph
    types = _known_types(model)
    del graph.value_info[:]  # onnxruntime infers them again; a stale one would contradict an exposed output
    names = node_names(graph)
    graph_inputs = tuple(v.name for v in graph.input)
    outputs = {v.name for v in graph.output}
    initializers = {i.name for i in graph.initializer}
    producer, op_type, consumers, order, node_inputs = {}, {}, defaultdict(list), [], []
    for name, node in zip(names, graph.node):
        for i, tensor in enumerate(node.input):
            if tensor:
                consumers[tensor].append(name)
                if tensor in graph_inputs and tensor not in initializers:
                    node_inputs.append((name, i, tensor))
        if node.op_type == "Constant":
            continue
        for j, tensor in enumerate(node.output):
            if not tensor:
                continue
            producer[tensor] = (name, j)
            op_type[tensor] = node.op_type
            if types.get(tensor, 1) in FLOAT_TYPES:
                order.append(tensor)
    for tensor in order:
        if tensor not in outputs:
            graph.output.append(onnx.ValueInfoProto(name=tensor))
    return exposed, GraphTensors(tuple(order), producer, op_type, {k: tuple(v) for k, v in consumers.items()},
                                 graph_inputs, frozenset(outputs), tuple(node_inputs))


def is_float(array) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind == "f"


# -- PyTorch --------------------------------------------------------------------------------------------------


def float_tensors(obj) -> list:
    """The floating-point tensors in a module's inputs or outputs, flattened (tuples, lists, dicts), in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj] if obj.is_floating_point() else []
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        found = []
        for item in obj:
            found.extend(float_tensors(item))
        return found
    return []


def identity(tensor) -> tuple:
    """Which storage a tensor is: two module outputs with one identity are one value (a pass-through module)."""
    return (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.storage_offset())


@dataclass
class TorchRun:
    """What the hooks saw during one forward pass."""

    tensors: dict  # tensor name -> np.ndarray, in the order modules finished
    origin: dict  # tensor name -> (module path, output index among the module's float outputs)
    identity: dict  # tensor name -> identity of the tensor it was copied from
    inputs: dict  # module path -> set of identities of its float inputs
    outputs: dict  # module path -> list of identities of its float outputs
    calls: dict  # module path -> times called


class TorchRecorder:
    """Forward hooks on every submodule of `model`: each module output as a numpy copy, named by module path
    (`encoder.layers.0.conv.0`; `path:k` when a module gives several float tensors). A module that hands on a
    tensor unchanged (a container's last child's output, dropout in inference) adds no second copy."""

    def __init__(self, model):
        self._handles = []
        for path, module in model.named_modules():
            if path:
                self._handles.append(module.register_forward_pre_hook(partial(self._before, path)))
                self._handles.append(module.register_forward_hook(partial(self._after, path)))
        self.start()

    def start(self) -> None:
        self.run = TorchRun({}, {}, {}, defaultdict(set), defaultdict(list), defaultdict(int))
        self._by_identity: dict = {}
        self._alive: list = []  # the tensors seen, kept alive so that no storage is reused during the pass

    def _before(self, path, module, args):
        self.run.calls[path] += 1
        for t in float_tensors(args):
            self._alive.append(t)
            self.run.inputs[path].add(identity(t))

    def _after(self, path, module, args, output):
        found = float_tensors(output)
        for k, t in enumerate(found):
            self._alive.append(t)
            ident = identity(t)
            self.run.outputs[path].append(ident)
            value = t.detach().cpu().numpy().copy()
            earlier = self._by_identity.get(ident)
            if earlier is not None and np.array_equal(self.run.tensors[earlier], value, equal_nan=True):
                continue  # the same value, already recorded under the inner module that made it
            name = path if len(found) == 1 else f"{path}:{k}"
            self.run.tensors[name] = value
            self.run.origin[name] = (path, k)
            self.run.identity[name] = ident
            self._by_identity[ident] = name

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._alive = []


def unqualified(path: str) -> str:
    """The name torch.onnx gives a module's scope: the last atom of its path, with the numeric atoms after the
    last non-numeric one (`encoder.layers.0` -> `layers.0`, `res.0.0` stays whole); torch/onnx/utils.py
    `_unqualified_variable_name`."""
    atoms = path.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return path


def ancestors(path: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]."""
    atoms = path.split(".")
    return [".".join(atoms[: i + 1]) for i in range(len(atoms))]


def onnx_scopes(called) -> dict[str, str]:
    """The node-name scope torch.onnx's TorchScript exporter gives each called module: `/` + the unqualified
    names of its called ancestors and itself (`encoder.layers.0.out.0` -> `/encoder/layers.0/out/out.0`);
    containers that are only iterated (ModuleList) are never called and add no level."""
    scopes = {}
    for path in called:
        chain = [unqualified(p) for p in ancestors(path) if p in called]
        scopes[path] = "/" + "/".join(chain)
    return scopes

