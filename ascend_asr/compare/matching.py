"""Which tensor of B is which tensor of A.

Outputs: by name, else by role (the profile's or the bundle manifest's `log_probs`, `out_lengths`, ...).

Intermediate tensors:
- ONNX and ONNX: by tensor name, where both graphs have a float tensor of that name and shape made by the same op
  type. An optimised graph keeps most names (onnxslim, onnxruntime offline optimisation, onnxconverter-common's
  fp16, QDQ int8 keep the producing node's output name) and drops those of fused nodes; only names in both are
  compared. A fusion that hands a removed node's output name to another op (the QDQ quantiser's Conv+Relu) makes
  a different value under one name: such a name is compared with B's quantized copy `<name>_DequantizeLinear_Output`
  where there is one, else not at all.
- PyTorch and PyTorch: by module path.
- PyTorch and ONNX: through torch.onnx's node naming. The TorchScript exporter names each node
  `<scope>/<Op>_<k>`, the scope being the unqualified names of the called modules around it
  (`/encoder/layers.0/conv.0/Conv`; layers.onnx_scopes). A module's output is the float tensor that a node in its
  scope makes and a node outside it reads (or a graph output), when exactly one such tensor has the module
  output's shape. The match is then checked against the data flow, so that a module the exporter folded away
  cannot lend its neighbour's tensor: where a module that reads the output in PyTorch left no node in the graph
  (a BatchNorm folded into the convolution before it), the ONNX tensor holds that module's result and is
  matched to it, not to the convolution's; and every module that reads the tensor in the graph must have been
  handed it in PyTorch. Modules called more than once are left out (their scopes are ambiguous).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..errors import OptionError
from .layers import ancestors, onnx_scopes
from .sources import PYTORCH, Source


@dataclass(frozen=True)
class OutputPair:
    a: str
    b: str
    spec: object  # A's TensorSpec (or B's when A has none): where the batch and frame axes are; None if unknown
    role: str | None


def match_outputs(a: Source, b: Source) -> list[OutputPair]:
    """Each output of A with B's output of the same name, else of the same role (when each side has one)."""
    pairs, used = [], set()

    def role(spec):
        return spec.role if spec is not None else None

    for name, spec in a.outputs.items():
        other = name if name in b.outputs else None
        if other is None and role(spec) is not None:
            same_role = [n for n, s in b.outputs.items() if role(s) == role(spec)]
            other = same_role[0] if len(same_role) == 1 else None
        if other is None or other in used:
            continue
        used.add(other)
        pairs.append(OutputPair(name, other, spec if spec is not None else b.outputs[other],
                                role(spec) or role(b.outputs[other])))
    if not pairs:
        raise OptionError(f"A {a.path} (outputs {list(a.outputs)}) and B {b.path} (outputs {list(b.outputs)}) share "
                          "no output by name or role: they are not two forms of one model; compare models of one "
                          "profile (give --profile so that output roles are known)")
    return pairs


@dataclass(frozen=True)
class LayerMatch:
    pairs: tuple  # (A tensor name, B tensor name), in A's production order
    a_total: int  # intermediate float tensors A exposed
    b_total: int
    how: str  # how names were matched

    def as_dict(self) -> dict:
        return {"matched": len(self.pairs), "a_tensors": self.a_total, "b_tensors": self.b_total, "how": self.how}


def _shape(array):
    return tuple(getattr(array, "shape", ()))


def match_layers(a: Source, a_run, b: Source, b_run) -> LayerMatch:
    """Pairs of intermediate tensors from one utterance's runs of A and B (see the module's docstring)."""
    a_tensors, b_tensors = a_run.tensors or {}, b_run.tensors or {}
    if a.kind == PYTORCH and b.kind == PYTORCH:
        pairs = [(n, n) for n in a_tensors if n in b_tensors and _shape(a_tensors[n]) == _shape(b_tensors[n])]
        how = "by module path"
    elif a.kind == PYTORCH or b.kind == PYTORCH:
        torch_side, onnx_side = (a, b) if a.kind == PYTORCH else (b, a)
        torch_run, onnx_run = (a_run, b_run) if a.kind == PYTORCH else (b_run, a_run)
        found = torch_to_onnx(torch_run.torch_run, onnx_side.graph, onnx_run.tensors)
        if a.kind == PYTORCH:
            pairs = list(found.items())
        else:  # in A's (the graph's) order
            back = {o: t for t, o in found.items()}
            pairs = [(o, back[o]) for o in a_tensors if o in back]
        how = "PyTorch module path -> torch.onnx node scope, checked against the data flow"
    else:
        pairs = onnx_to_onnx(a.graph, a_tensors, b.graph, b_tensors)
        how = "by ONNX tensor name and producing op type"
    return LayerMatch(tuple(pairs), len(a_tensors), len(b_tensors), how)


QDQ_SUFFIX = "_DequantizeLinear_Output"  # onnxruntime.quantization's name for a tensor's quantized-dequantized copy


def onnx_to_onnx(a_graph, a_tensors: dict, b_graph, b_tensors: dict) -> list:
    """(A name, B name) pairs: one name, made by the same op type in both graphs. Where B's tensor of that name
    comes from another op (the QDQ quantiser drops a Relu after a Conv and gives the Conv its output name: the
    values are then the Conv's), B's `<name>_DequantizeLinear_Output` stands for it when B has one."""
    pairs = []
    for name, value in a_tensors.items():
        if name in b_tensors and a_graph.op_type.get(name) == b_graph.op_type.get(name) \
                and _shape(b_tensors[name]) == _shape(value):
            pairs.append((name, name))
        elif name + QDQ_SUFFIX in b_tensors and _shape(b_tensors[name + QDQ_SUFFIX]) == _shape(value):
            pairs.append((name, name + QDQ_SUFFIX))
    return pairs


def _within(scope: str, outer: str) -> bool:
    return outer == "" or scope == outer or scope.startswith(outer + "/")


def _scope_of(node_name: str) -> str:
    return node_name.rsplit("/", 1)[0] if "/" in node_name else ""


class _Scopes:
    """The exported graph seen through one PyTorch run: each called module's node scope, the tensors that leave
    each scope, and the scopes that hold nodes at all."""

    def __init__(self, run, graph, onnx_tensors: dict):
        scopes = onnx_scopes({p for p, n in run.calls.items() if n == 1})
        counts = Counter(scopes.values())
        self.run, self.graph = run, graph
        self.of = {p: s for p, s in scopes.items() if counts[s] == 1}  # module path -> scope (unambiguous ones)
        self.module_of = {s: p for p, s in self.of.items()}
        self.boundary: dict = {}  # scope -> tensors made inside it and read outside it (or graph outputs)
        for tensor in graph.order:
            if tensor not in onnx_tensors:
                continue
            readers = [_scope_of(n) for n in graph.consumers.get(tensor, ())]
            scope = _scope_of(graph.producer[tensor][0])
            while scope:
                if tensor in graph.graph_outputs or any(not _within(r, scope) for r in readers):
                    self.boundary.setdefault(scope, []).append(tensor)
                scope = _scope_of(scope)
        self.with_nodes = {_scope_of(n) for n, _ in graph.producer.values()}
        self.with_nodes.update(_scope_of(n) for names in graph.consumers.values() for n in names)

    def module_at(self, scope: str) -> str:
        """The innermost module whose scope holds `scope` ('' for the model itself)."""
        while scope:
            if scope in self.module_of:
                return self.module_of[scope]
            scope = _scope_of(scope)
        return ""

    def vanished_readers(self, name: str, path: str) -> list:
        """Modules that read the output `name` of module `path` in PyTorch and left no node in the graph (folded
        into the producer by the exporter); a module that only hands its input on (dropout) does not count."""
        ident, own, found = self.run.identity[name], set(ancestors(path)), []
        for module, idents in self.run.inputs.items():
            if ident not in idents or module in own or module.startswith(path + ".") or module not in self.of:
                continue
            if all(o in idents for o in self.run.outputs.get(module, ())):
                continue
            if not any(_within(s, self.of[module]) for s in self.with_nodes):
                found.append(module)
        return found

    def handed_alike(self, name: str, path: str, tensor: str, made_in: str) -> bool:
        """Whether every module that reads `tensor` outside the scope it is made in was handed the PyTorch tensor
        `name` (itself or through an ancestor the producer does not share: an op in a common ancestor's own
        forward proves nothing)."""
        ident = self.run.identity[name]
        own = set(ancestors(path)) | set(ancestors(self.module_at(made_in)) if self.module_at(made_in) else ())
        for node in self.graph.consumers.get(tensor, ()):
            if _within(_scope_of(node), made_in):
                continue
            reader = self.module_at(_scope_of(node))
            if reader == "" or reader in own:
                continue
            entry = [p for p in ancestors(reader) if p not in own and p in self.of]
            if not any(ident in self.run.inputs.get(p, ()) for p in entry):
                return False
        return True


def torch_to_onnx(run, graph, onnx_tensors: dict) -> dict:
    """{PyTorch tensor name: ONNX tensor name} for the module outputs the graph can be shown to hold. A module
    output that only a folded module reads (a convolution before its BatchNorm) is not in the graph; the folded
    module's output is, under the producer's name, and is matched instead."""
    scopes = _Scopes(run, graph, onnx_tensors)
    found, taken = {}, set()
    for name, (path, _) in run.origin.items():
        scope = scopes.of.get(path)
        if scope is None:
            continue
        shape = run.tensors[name].shape
        candidates = [t for t in scopes.boundary.get(scope, ()) if _shape(onnx_tensors[t]) == shape]
        if len(candidates) != 1 or candidates[0] in taken:
            continue
        tensor, folded = candidates[0], scopes.vanished_readers(name, path)
        if not folded:
            match = name
        elif len(folded) == 1:
            outputs = [n for n, (p, _) in run.origin.items() if p == folded[0]]
            match = outputs[0] if len(outputs) == 1 and run.tensors[outputs[0]].shape == shape else None
            if match is not None and scopes.vanished_readers(match, folded[0]):
                match = None
        else:
            match = None
        if match is not None and scopes.handed_alike(match, run.origin[match][0], tensor, scope):
            found[match] = tensor
            taken.add(tensor)
    return found
