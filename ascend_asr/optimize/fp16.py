"""fp16 simulations of ATC's precision modes, run on onnxruntime to predict what each mode costs in WER.

How each mode is simulated (ATC --precision_mode, reference/ascend_api.md; accuracy must_keep_origin_dtype >
allow_fp32_to_fp16 > allow_mix_precision > force_fp16):
- force_fp16: every operator runs in fp16, so every float tensor (weights, inputs and outputs of every node)
  is rounded to fp16;
- allow_fp32_to_fp16: an operator keeps fp32 where it has an fp32 kernel, else fp16: the Cube-unit
  operators (Conv, ConvTranspose, MatMul, Gemm, LSTM, GRU: fp16 only on Ascend 310/310P) get fp16 inputs,
  weights and outputs, the rest stays fp32;
- allow_mix_precision: fp16 except the operators of a block list (ATC's mix-precision black list: reductions,
  exp/log, softmax, normalisations by default), which keep fp32;
- must_keep_origin_dtype: the fp32 graph itself (nothing to simulate; ATC refuses it where an operator has no
  fp32 kernel on the chip).

"fp16" is simulated, not run: each fp16 tensor passes through Cast(float16) -> Cast(float) and the arithmetic
stays fp32. That is what the Cube unit does (fp16 operands, fp32 accumulation, fp16 result) and it keeps fp16's
range (values past 65504 become inf), which is what breaks models; it understates errors of operators that
accumulate in fp16 on the Vector unit. onnxconverter-common's convert_float_to_float16 is not used to run real
fp16: its graphs fail to load on two of the three shipped models (a Cast to float whose output it retypes as
float16) and onnxruntime's CPU provider lacks fp16 kernels for most of these operators.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP16_MODES = ("force_fp16", "allow_mix_precision", "allow_fp32_to_fp16")
ACCURACY_ORDER = ("must_keep_origin_dtype", "allow_fp32_to_fp16", "allow_mix_precision", "force_fp16")  # best first
CUBE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN")
DEFAULT_MIX_BLOCK_LIST = ("Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2",
                          "ReduceLogSumExp", "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Div",
                          "BatchNormalization", "LayerNormalization", "InstanceNormalization", "Erf")
# operators whose float tensors are shapes, indices or control values, never computed in fp16 on the device
_NOT_ARITHMETIC = ("Shape", "Size", "Range", "ConstantOfShape", "Cast", "Constant", "Equal", "Less", "Greater",
                   "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "NonZero", "Floor", "Ceil")


def _fp16_node(node: onnx.NodeProto, mode: str, block_list) -> bool:
    if node.op_type in _NOT_ARITHMETIC:
        return False
    if mode == "force_fp16":
        return True
    if mode == "allow_fp32_to_fp16":
        return node.op_type in CUBE_OPS
    if mode == "allow_mix_precision":
        return node.op_type not in block_list
    raise ValueError(f"fp16 simulation of {mode!r}: choose one of {FP16_MODES}")


def _float_tensors(model: onnx.ModelProto) -> set:
    """Names of the float32 tensors of the graph (shape inference fills in the intermediates' types)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    floats = {v.name for v in (*g.value_info, *g.input, *g.output)
              if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    floats |= {t.name for t in g.initializer if t.data_type == TensorProto.FLOAT}
    return floats


def simulate(model: onnx.ModelProto, mode: str, block_list=DEFAULT_MIX_BLOCK_LIST) -> onnx.ModelProto:
    """A copy of `model` whose fp16 operators under ATC's `mode` see and give fp16-rounded float tensors."""
    from .graph_steps import mark_cpu_only

    sim = onnx.ModelProto()
    sim.CopyFrom(model)
    graph = sim.graph
    floats = _float_tensors(sim)
    initializers = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # a weight only fp16 operators read is rounded in place; one that fp32 operators read too gets a rounded twin
    for name, tensor in initializers.items():
        users = consumers.get(name, [])
        if name in floats and users and all(_fp16_node(n, mode, block_list) for n in users):
            with np.errstate(over="ignore"):
                tensor.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(tensor).astype(np.float16).astype(np.float32), name))
            floats.discard(name)  # already fp16 values
    rounded: dict[str, str] = {}  # tensor -> its fp16-rounded twin, made once and shared by the fp16 consumers
    new_nodes: list = []

    def round_trip(name: str) -> str:
        if name not in rounded:
            if name in initializers:
                values = numpy_helper.to_array(initializers[name])
                with np.errstate(over="ignore"):
                    graph.initializer.append(numpy_helper.from_array(
                        values.astype(np.float16).astype(np.float32), name + "__fp16"))
            else:
                half = name + "__half"
                new_nodes.append(helper.make_node("Cast", [name], [half], to=TensorProto.FLOAT16,
                                                  name=name + "__to_fp16"))
                new_nodes.append(helper.make_node("Cast", [half], [name + "__fp16"], to=TensorProto.FLOAT,
                                                  name=name + "__to_fp32"))
            rounded[name] = name + "__fp16"
        return rounded[name]

    fp16_outputs: list[str] = []
    for node in graph.node:
        if _fp16_node(node, mode, block_list):
            for i, name in enumerate(node.input):
                if name and name in floats:
                    node.input[i] = round_trip(name)
            fp16_outputs += [o for o in node.output if o in floats]
        new_nodes.append(node)
    # an fp16 operator's output is fp16 for every consumer: its consumers read the rounded twin
    produced = {}
    for name in fp16_outputs:
        if name in graph_outputs:
            continue  # a graph output keeps its name; it is rounded below
        produced[name] = round_trip(name)
    for node in new_nodes:
        if node.op_type == "Cast" and node.name.endswith(("__to_fp16", "__to_fp32")):
            continue
        for i, name in enumerate(node.input):
            if name in produced:
                node.input[i] = produced[name]
    for name in fp16_outputs:
        if name in graph_outputs:  # rename the producer's output, round it into the output's own name
            producer = next(n for n in new_nodes if name in n.output)
            producer.output[list(producer.output).index(name)] = name + "__fp32"
            new_nodes.append(helper.make_node("Cast", [name + "__fp32"], [name + "__half"], to=TensorProto.FLOAT16,
                                              name=name + "__out_to_fp16"))
            new_nodes.append(helper.make_node("Cast", [name + "__half"], [name], to=TensorProto.FLOAT,
                                              name=name + "__out_to_fp32"))
    del graph.node[:]
    graph.node.extend(_topological(new_nodes, graph))
    del graph.value_info[:]
    return mark_cpu_only(sim, f"fp16 simulation of {mode}")


def _topological(nodes: list, graph: onnx.GraphProto) -> list:
    """The nodes in an order where each runs after its inputs' producers (the Casts were appended out of order)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("fp16 simulation: the rewritten graph has a cycle or a missing input")
        ready_ids = {id(n) for n in ready}
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    return ordered
