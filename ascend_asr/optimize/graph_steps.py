"""The fp32 graph steps: simplify (onnxslim; the result is still a graph for ATC) and ort-opt (onnxruntime's
offline optimisation; CPU path only: its com.microsoft operators and NCHWc layouts are never handed to ATC)."""
from __future__ import annotations

import onnx

from ..atc import CPU_ONLY_MARK
from ..errors import AscendAsrError
from ..tensor_files import atomic_path


def mark_cpu_only(model: onnx.ModelProto, kind: str) -> onnx.ModelProto:
    """Record in the model that it is for the CPU path only (convert refuses it for ATC)."""
    for prop in model.metadata_props:
        if prop.key == CPU_ONLY_MARK:
            prop.value = kind
            return model
    model.metadata_props.add(key=CPU_ONLY_MARK, value=kind)
    return model


def save_model(model: onnx.ModelProto, path: str) -> str:
    """onnx.save through a temporary file renamed over `path` (checked by onnx.checker first)."""
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, tmp)
    return path


def simplify(source: str, target: str) -> str:
    """onnxslim: constant folding, dead-code and shape-subgraph elimination, Conv+BN and other fusions, all in
    standard ONNX operators at the source's opset (so ATC still takes the result)."""
    try:
        import onnxslim
    except ImportError as exc:
        raise AscendAsrError("the simplify step needs onnxslim: pip install 'ascend-asr[optimize]'") from exc
    model = onnx.load(source)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    slim = onnxslim.slim(model)
    if slim is None:
        raise AscendAsrError(f"{source}: onnxslim could not simplify the model")
    slim_opset = next(o.version for o in slim.opset_import if o.domain in ("", "ai.onnx"))
    if slim_opset != opset:  # ATC accepts a narrow opset range: the graph must stay at the exported one
        raise AscendAsrError(f"{source}: onnxslim changed the opset from {opset} to {slim_opset}")
    return save_model(slim, target)


def ort_optimize(source: str, target: str, level: str = "all") -> str:
    """onnxruntime's graph optimisations written out (SessionOptions.optimized_model_filepath): at level "all"
    they include layout transforms and fused com.microsoft operators for this machine's CPU, so the file is
    for the CPU path on a machine like this one only."""
    import onnxruntime as ort

    from .runs import OPT_LEVELS

    with atomic_path(target) as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
        options.optimized_model_filepath = tmp
        options.log_severity_level = 3
        ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        model = onnx.load(tmp)
        onnx.save(mark_cpu_only(model, "ort_opt"), tmp)
    return target
