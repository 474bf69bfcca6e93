"""Graph rewrites of an exported ESPnet encoder, each checked against the unfused graph before it is kept.

CPU (onnxruntime): the transformer fusions of `onnxruntime.transformers.optimizer` that apply to these
graphs, one at a time: LayerNormalization, SkipLayerNormalization (residual + LayerNorm) and Attention
(the absolute-position self-attention of Transformer encoders; the relative-position attention of
Conformers has no onnxruntime kernel, and is left as MatMul/Softmax). Each one is gated on its own on a
padded batch (valid frames only) with ascend_asr.parity, then the ones that pass are applied together
and gated again. Dynamic int8 (MatMul weights) is offered separately, with the same gate.

ATC: an ONNX of standard-domain operators only (no com.microsoft), simplified by onnxslim (constant
folding, dead-node removal, shape arithmetic folded) and gated the same way; the dynamic `frames` axis
stays, so the profile's gears compile from one graph.

Where this hooks into the gated optimize pipeline (ascend_asr/optimize/, being written): `fuse_for_cpu`,
`graph_for_atc` and `quantize_int8` each return a FusionReport whose `breaches` are ascend_asr.parity
Breach objects; the pipeline can call them as family-provided steps and keep its own gate and records.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...errors import ExportError
from ...parity import Thresholds, breaches, compare_tensors, pooled
from ...tensor_files import atomic_path

# fusion name -> the FusionOptions switches that turn on only it
CPU_FUSIONS = {
    "layer_norm": ("enable_layer_norm",),
    "skip_layer_norm": ("enable_skip_layer_norm", "enable_bias_skip_layer_norm"),
    "attention": ("enable_attention",),
}
FUSED_OPS = {"layer_norm": ("LayerNormalization",), "skip_layer_norm": ("SkipLayerNormalization",),
             "attention": ("Attention", "MultiHeadAttention")}
ALL_SWITCHES = ("enable_gelu", "enable_layer_norm", "enable_attention", "enable_skip_layer_norm",
                "enable_embed_layer_norm", "enable_bias_skip_layer_norm", "enable_bias_gelu",
                "enable_gelu_approximation", "enable_qordered_matmul", "enable_shape_inference",
                "enable_gemm_fast_gelu", "enable_group_norm", "enable_skip_group_norm", "enable_bias_splitgelu",
                "enable_packed_qkv", "enable_packed_kv", "enable_bias_add", "enable_rotary_embeddings")
STANDARD_DOMAINS = ("", "ai.onnx")
# fp32 rewrites must stay near-exact; int8 is held to the profile-level thresholds
EXACT = Thresholds(min_cosine=0.99999, max_red=1e-4, min_argmax_agreement=0.99, max_abs=1e-3)
INT8 = Thresholds()


@dataclass(frozen=True)
class FusionReport:
    name: str
    fused_ops: dict = field(default_factory=dict)   # op type -> count in the result
    metrics: dict = field(default_factory=dict)     # ascend_asr.parity TensorMetrics.as_dict(), pooled
    breaches: tuple = ()                            # parity Breach objects; empty when the gate passed
    kept: bool = False                              # applied to the written graph

    def line(self) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in self.fused_ops.items() if v) or "nothing fused"
        gate = "passed" if not self.breaches else "failed: " + "; ".join(map(str, self.breaches))
        return f"{self.name}: {ops}; parity gate {gate}" + ("" if self.kept else " (not kept)")


def parity_inputs(feature_size: int, lengths=(300, 173, 241), seed: int = 0) -> dict[str, np.ndarray]:
    """A padded batch of random features with distinct lengths (the gate compares valid frames only)."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((len(lengths), max(lengths) + 11, feature_size)).astype(np.float32)
    return {"feats": feats, "feats_lengths": np.asarray(lengths, np.int32)}


def run_graph(model_or_path, inputs: dict, threads: int = 1) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    source = model_or_path if isinstance(model_or_path, (str, bytes)) else model_or_path.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]).run(None, inputs)


def gate(reference: list, candidate, thresholds: Thresholds, name: str) -> tuple[dict, tuple]:
    """Pooled parity of the log-probs over each utterance's valid frames (`candidate`: outputs, or a
    callable giving them); a graph that fails to run or changes the lengths breaches the gate."""
    from ...parity import Breach

    try:
        cand_lp, cand_len = (candidate() if callable(candidate) else candidate)[:2]
    except Exception as exc:  # noqa: BLE001 - a rewritten graph that cannot run is a gate failure
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}, \
            (Breach("fails_to_run", 1.0, 0.0, name),)
    ref_lp, ref_len = reference[:2]
    if not np.array_equal(ref_len, cand_len):
        return {"lengths": cand_len.tolist()}, (Breach("lengths_differ", 1.0, 0.0, name),)
    metrics = pooled(compare_tensors(ref_lp[b, :n], cand_lp[b, :n]) for b, n in enumerate(ref_len.tolist()))
    return metrics.as_dict(), tuple(breaches(metrics, thresholds, name))


def op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _optimized(path: str, config, switches) -> object:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    for name in ALL_SWITCHES:
        if hasattr(options, name):
            setattr(options, name, name in switches)
    return optimize_model(path, model_type="bert", num_heads=config.attention_heads, hidden_size=config.output_size,
                          opt_level=0, optimization_options=options, verbose=False).model


def fuse_for_cpu(onnx_path: str, out_path: str, config, inputs: dict | None = None,
                 thresholds: Thresholds = EXACT) -> list[FusionReport]:
    """Add the CPU fusions one at a time (onnxruntime fuses Attention and SkipLayerNormalization only around
    a fused LayerNormalization, so each step keeps the ones before it), gate each step against the unfused
    graph, and write the last step that fused something and passed. One report per step."""
    import logging

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    inputs = inputs or parity_inputs(config.input_size)
    reference = run_graph(onnx_path, inputs)
    reports, kept, best = [], (), None
    for name, switches in CPU_FUSIONS.items():
        model = _optimized(onnx_path, config, kept + switches)
        counts = op_counts(model)
        fused = {op: counts.get(op, 0) for op in FUSED_OPS[name]}
        metrics, found = gate(reference, lambda: run_graph(model, inputs), thresholds, name)
        useful = any(fused.values()) and not found
        reports.append(FusionReport(name, fused, metrics, found, useful))
        if useful:
            kept, best = kept + switches, model
    if best is not None:
        _save(best, out_path)
    return reports


def graph_for_atc(onnx_path: str, out_path: str, config, inputs: dict | None = None,
                  thresholds: Thresholds = EXACT) -> list[FusionReport]:
    """onnxslim's simplification (with its shape inference, else without it, else none: the exported graph),
    the first variant that passes the parity gate written; every graph is checked for standard ops only."""
    import onnx
    import onnxslim

    inputs = inputs or parity_inputs(config.input_size)
    reference = run_graph(onnx_path, inputs)
    original = onnx.load(onnx_path)
    reports = []
    variants = (("onnxslim", lambda: onnxslim.slim(onnx.load(onnx_path))),
                ("onnxslim, no shape inference", lambda: onnxslim.slim(onnx.load(onnx_path), no_shape_infer=True)),
                ("exported graph", lambda: original))
    for name, make in variants:
        model = make()
        foreign = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in STANDARD_DOMAINS})
        if foreign:
            raise ExportError(f"{onnx_path}: the ATC graph holds non-standard operators {foreign}")
        metrics, found = gate(reference, lambda: run_graph(model, inputs), thresholds, f"atc: {name}")
        sizes = {"nodes before": len(original.graph.node), "nodes after": len(model.graph.node)}
        reports.append(FusionReport(f"atc: {name}", sizes, metrics, found, not found))
        if not found:
            _save(model, out_path)
            break
    return reports


def quantize_int8(onnx_path: str, out_path: str, config, inputs: dict | None = None,
                  thresholds: Thresholds = INT8) -> FusionReport:
    """Dynamic int8 of the MatMul weights (onnxruntime.quantization), gated at the profile thresholds."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    inputs = inputs or parity_inputs(config.input_size)
    with tempfile.TemporaryDirectory(prefix="espnet_int8_") as tmp:
        candidate = os.path.join(tmp, "int8.onnx")
        quantize_dynamic(onnx_path, candidate, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        metrics, found = gate(run_graph(onnx_path, inputs), lambda: run_graph(candidate, inputs), thresholds, "int8")
        model = onnx.load(candidate)
    report = FusionReport("int8", {"MatMulInteger": op_counts(model).get("MatMulInteger", 0)}, metrics, found,
                          not found)
    if not found:
        _save(model, out_path)
    return report


def _save(model, out_path: str) -> None:
    import onnx

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with atomic_path(out_path) as tmp:
        onnx.save(model, tmp)
