"""int8 quantisation for the CPU path: static QDQ (calibrated on the gate's utterances, per-channel weights) and
dynamic (weights int8, activations quantised on the fly).

Static QDQ uses uint8 activations and int8 weights (U8S8): onnxruntime's x86 kernels (AVX2/AVX-512 VNNI) run
u8 x s8 products natively; with int8 activations (S8S8, quantize_static's default) the fused QLinearConv falls
to a slower path: measured on jasper_small at 512 frames, one thread, 7.4x (U8S8) against 1.15x (S8S8) the
fp32 model at batch 1, 4.2x against 1.4x at batch 8.
"""
from __future__ import annotations

import os
import tempfile

import onnx

from ..errors import OptionError
from .graph_steps import mark_cpu_only

INT8_KINDS = ("static", "dynamic")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# dynamic quantisation of these only: its ConvInteger runs slower than fp32 Conv on onnxruntime's CPU provider
# (issue 14 measured Jasper at 0.28x), while MatMul/LSTM/GRU gain
DYNAMIC_OP_TYPES = ("MatMul", "Gemm", "LSTM", "GRU", "Attention")
# static QDQ quantises the compute-heavy operators only: QDQ pairs around the element-wise and data-movement
# operators (Mul by a mask, Add, Reshape, Transpose) add rounding error and Q/DQ work for no faster kernel
STATIC_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _calibration_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if name not in methods:
        raise OptionError(f"--calibration-method {name!r}: choose one of {', '.join(methods)}")
    return methods[name]


def excluded_nodes(model: onnx.ModelProto, op_types=(), nodes=()) -> list[str]:
    """Node names to leave in fp32: the nodes named, and every node of the op types named. A name that is not in
    the graph is an OptionError (a typo would otherwise quantise what the user meant to keep)."""
    names = {n.name for n in model.graph.node}
    unknown = sorted(set(nodes) - names)
    if unknown:
        raise OptionError(f"--exclude-nodes: {unknown[:5]} are not nodes of the model (e.g. {sorted(names)[:3]}); "
                          "give node names as the graph has them (`python -m onnx.tools...` or Netron shows them)")
    return sorted(set(nodes) | {n.name for n in model.graph.node if n.op_type in set(op_types)})


def length_arithmetic_nodes(model: onnx.ModelProto, features: str) -> list[str]:
    """Nodes whose values do not come from the features (Shape and Size pass on a shape, not values): the
    length, mask and shape arithmetic. Quantised, a length computed in float would be rounded to the nearest
    int8 step (Jasper's output lengths off by up to 11 frames), so int8 always leaves them in fp32."""
    carries = {features}
    for node in model.graph.node:  # ONNX nodes are stored in topological order
        if node.op_type not in ("Shape", "Size") and any(i in carries for i in node.input):
            carries.update(node.output)
    return sorted(n.name for n in model.graph.node if n.name and not any(o in carries for o in n.output))


def quantized_op_count(model: onnx.ModelProto) -> int:
    """Quantised operators in `model` (QDQ pairs, integer kernels): 0 when quantisation found nothing to do."""
    return sum(1 for n in model.graph.node if n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear",
                                                             "ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM",
                                                             "QLinearConv", "QLinearMatMul"))


def quantize(source: str, target: str, kind: str, reader=None, exclude=(), method: str = "minmax") -> str:
    """`source` quantised to `target` (written through a temporary file); `reader` calibrates static QDQ."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if kind not in INT8_KINDS:
        raise OptionError(f"int8 kind {kind!r}: choose one of {INT8_KINDS}")
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser's "consider pre-processing" advice on the root logger
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".onnx", dir=folder)
    os.close(fd)
    try:
        if kind == "static":
            reader.rewind()
            quantize_static(source, tmp, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            op_types_to_quantize=list(STATIC_OP_TYPES),
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=list(exclude), calibrate_method=_calibration_method(method),
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        else:
            quantize_dynamic(source, tmp, op_types_to_quantize=list(DYNAMIC_OP_TYPES), per_channel=True,
                             weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude))
        model = onnx.load(tmp)
        onnx.save(mark_cpu_only(model, f"int8_{kind}"), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
