"""The chunk graph: DeepSpeech2InferModel's interface (chunk + lengths + LSTM states in, probabilities, lengths
and final states out) exported to ONNX, its int8 variant with an asserted parity gate, and its static OM.

The states are declared [layers, batch, hidden] (only the batch symbolic): the fix paddle2onnx needs too.
For an OM everything is static: batch = stream slots, frames = the chunk window; ATC gets one --input_shape.
"""
from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

from ....errors import ExportError
from ....parity import Thresholds, breaches, compare_tensors, pooled
from .chunks import ChunkPlan

INPUTS = ("audio_chunk", "audio_chunk_lens", "chunk_state_h_box", "chunk_state_c_box")
OUTPUTS = ("probs", "probs_lens", "final_state_h_box", "final_state_c_box")
OPSET = 13
# int8 is gated on the chunk outputs by the optimisation gate's defaults; the convolutions stay fp32
# (the example's nodes_to_exclude 'p2o.Conv.0,p2o.Conv.2': the first layers carry the most error)
INT8_THRESHOLDS = Thresholds()
FP32_MAX_ABS = 1e-4


def load_model(checkpoint: str, config_path: str | None = None, profile=None):
    """PaddleDs2Online (states in and out) from a .pdparams and its recipe YAML or a profile's model_config."""
    from ... import get_family, profile_config

    family = get_family("paddle_ds2_online")
    if config_path:
        config = family.read_upstream(config_path).config
    elif profile is not None:
        config = profile_config(profile)[1]
    else:
        raise ExportError("the chunk graph needs the model's config: --config (recipe YAML) or --profile")
    return family.load(checkpoint, config).model


def export_model(model, path: str) -> str:
    """`model` (PaddleDs2Online) -> ONNX at `path`, batch and chunk frames symbolic, written atomically."""
    import onnx
    import torch

    dynamic = {"audio_chunk": {0: "batch", 1: "frames"}, "audio_chunk_lens": {0: "batch"},
               "chunk_state_h_box": {1: "batch"}, "chunk_state_c_box": {1: "batch"},
               "probs": {0: "batch", 1: "out_frames"}, "probs_lens": {0: "batch"},
               "final_state_h_box": {1: "batch"}, "final_state_c_box": {1: "batch"}}
    feats, lens, h, c = model.example_inputs(batch=2, frames=67)
    lens[1] = 40  # two lengths, so that none is folded into a constant
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.onnx"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.train(False), (feats, lens, h, c), tmp, input_names=list(INPUTS),
                              output_names=list(OUTPUTS), dynamic_axes=dynamic, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
        onnx.checker.check_model(tmp)
        os.replace(tmp, path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        first = next((l.strip() for l in str(exc).splitlines() if l.strip()), type(exc).__name__)
        raise ExportError(f"{path}: exporting the chunk graph failed ({type(exc).__name__}: {first[:200]})") from None
    return path


def export_chunk_graph(checkpoint: str, config_path: str | None, path: str, profile=None) -> str:
    return export_model(load_model(checkpoint, config_path, profile), path)


def probe_chunks(model_config, plan: ChunkPlan, batch: int = 3, count: int = 4, seed: int = 0) -> list[dict]:
    """Feeds for a parity check: chunks of features with the lengths a stream sees (full, partial, none)."""
    rng = np.random.default_rng(seed)
    L, H, F = model_config.num_rnn_layers, model_config.rnn_layer_size, model_config.feature_size
    feeds = []
    for i in range(count):
        lens = np.full(batch, plan.window, dtype=np.int64)
        if i == count - 1:
            lens[-1] = max(1, plan.window - 3)
        feeds.append({"audio_chunk": rng.standard_normal((batch, plan.window, F)).astype(np.float32),
                      "audio_chunk_lens": lens,
                      "chunk_state_h_box": (0.5 * rng.standard_normal((L, batch, H))).astype(np.float32),
                      "chunk_state_c_box": (0.5 * rng.standard_normal((L, batch, H))).astype(np.float32)})
    return feeds


def chunk_parity(reference_run, candidate_run, feeds: list[dict], thresholds: Thresholds,
                 max_abs: float | None = None) -> tuple[dict, list]:
    """Metrics (ascend_asr.parity) of the candidate's probabilities and states against the reference's, pooled
    over `feeds`, on valid frames only; and the breaches of `thresholds` (plus max_abs when given)."""
    limit = dataclasses.replace(thresholds, max_abs=max_abs)
    per_output = {name: [] for name in ("probs", "final_state_h_box", "final_state_c_box")}
    for feed in feeds:
        ref, cand = reference_run(feed), candidate_run(feed)
        for b, n in enumerate(ref[1]):
            per_output["probs"].append(compare_tensors(ref[0][b, :int(n)], cand[0][b, :int(n)]))
        per_output["final_state_h_box"].append(compare_tensors(ref[2], cand[2]))
        per_output["final_state_c_box"].append(compare_tensors(ref[3], cand[3]))
    report, found = {}, []
    for name, metrics in per_output.items():
        m = pooled(metrics)
        report[name] = m.as_dict()
        found += breaches(m, limit, name)
    return report, found


def ort_runner(path: str, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(list(OUTPUTS), feed)


def torch_runner(model):
    import torch

    def run(feed):
        with torch.no_grad():
            out = model(*(torch.from_numpy(np.asarray(feed[n])) for n in INPUTS))
        return [o.numpy() for o in out]

    return run


def quantize_int8(fp32_path: str, int8_path: str, model_config, plan: ChunkPlan,
                  thresholds: Thresholds = INT8_THRESHOLDS) -> dict:
    """Dynamic int8 (MatMul and LSTM weights; the two convolutions excluded), gated against the fp32 graph.
    Raises ExportError naming the breaches; returns the parity report."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = f"{int8_path}.tmp{os.getpid()}.onnx"
    folded = f"{int8_path}.folded{os.getpid()}.onnx"
    try:
        # constant folding first (the example's ort_opt.py step): paddle2onnx computes LSTM weights from
        # initialisers through Split/Concat, and the quantiser only quantises weights that are initialisers
        fold_constants(fp32_path, folded)
        model = onnx.load(folded)
        convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
        quantize_dynamic(folded, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "LSTM", "Gemm"],
                         per_channel=True, nodes_to_exclude=convs)
    finally:
        if os.path.exists(folded):
            os.remove(folded)
    quantized = [n.op_type for n in onnx.load(tmp).graph.node if n.op_type in QUANTIZED_OPS]
    if not quantized:
        os.remove(tmp)
        raise ExportError(f"{fp32_path}: dynamic quantisation found no MatMul/LSTM weight to quantise; nothing "
                          "would be gained, so no int8 graph is written")
    feeds = probe_chunks(model_config, plan)
    report, found = chunk_parity(ort_runner(fp32_path), ort_runner(tmp), feeds, thresholds)
    if found:
        os.remove(tmp)
        raise ExportError(f"{int8_path}: int8 parity gate failed against {fp32_path}: {'; '.join(map(str, found))}")
    os.replace(tmp, int8_path)
    return report


QUANTIZED_OPS = ("DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul")


def fold_constants(source: str, target: str) -> str:
    """onnxruntime's basic optimisations (constant folding, redundant nodes), saved as a standard ONNX graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = target
    options.log_severity_level = 3
    ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return target


def input_shape_arg(model_config, slots: int, plan: ChunkPlan) -> str:
    L, H, F = model_config.num_rnn_layers, model_config.rnn_layer_size, model_config.feature_size
    return (f"audio_chunk:{slots},{plan.window},{F};audio_chunk_lens:{slots};"
            f"chunk_state_h_box:{L},{slots},{H};chunk_state_c_box:{L},{slots},{H}")


def atc_command(onnx_path: str, output_base: str, model_config, slots: int, plan: ChunkPlan, atc_options: dict,
                soc_version: str) -> list[str]:
    """A static-chunk OM: one --input_shape (stream slots, window, states), the outputs named in order."""
    cmd = ["atc", "--framework=5", f"--model={onnx_path}", f"--output={output_base}",
           f"--input_format={atc_options.get('input_format', 'ND')}",
           f"--input_shape={input_shape_arg(model_config, slots, plan)}", f"--soc_version={soc_version}"]
    for key in ("precision_mode", "op_select_implmode"):
        if atc_options.get(key):
            cmd.append(f"--{key}={atc_options[key]}")
    cmd += [f"--out_nodes={';'.join(OUTPUTS)}", f"--log={atc_options.get('log', 'error')}"]
    return cmd


def build_om(onnx_path: str, workdir: str, name: str, model_config, slots: int, plan: ChunkPlan, atc_options: dict,
             soc_version: str, atc: str | None = None) -> tuple[str, list[str]]:
    """Run ATC (the one on PATH unless given); (the .om, the command)."""
    from ....atc import find_atc, run_atc
    from ....errors import AtcError

    executable = find_atc(atc)
    if executable is None:
        raise AtcError("atc not found: source CANN's set_env.sh (or give --atc); the streaming OM needs ATC")
    cmd = atc_command(os.path.abspath(onnx_path), name, model_config, slots, plan, atc_options, soc_version)
    om = run_atc(cmd, workdir, os.path.join(workdir, f"{name}.atc.log"), executable)
    return om, cmd
