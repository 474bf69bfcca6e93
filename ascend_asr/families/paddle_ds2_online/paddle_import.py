"""`ascend-asr import-paddle`: a PaddleSpeech DS2-online Paddle inference model -> ONNX, gated on Paddle Predictor.

The recipe's export stage (DeepSpeech2InferModel.export + paddle.jit.save) declares the LSTM states
`[None, None, None]`; paddle2onnx then cannot convert the `split` of the states into layers ("target
dimension is dynamic") and aborts the process. The static-state fix: a copy of the program (PIR
model.json) whose two state inputs are declared `[num_rnn_layers, -1, hidden]`, the sizes read from the
program's own `rnn` ops; the user's files are never changed. paddle2onnx runs in a child process (it aborts
rather than raising), with `optimize_tool None` (its default, polygraphy, pip-installs onnx_graphsurgeon at
run time). The outputs are renamed to the family's names (probs, probs_lens, final_state_h_box,
final_state_c_box), so both routes to ONNX have one interface. Parity: Paddle Predictor (the reference)
against onnxruntime on chunks of several sizes, batch sizes and random states, with ascend_asr.parity's
metrics, asserted; with --pdparams/--config also our exporter's graph against this one.

paddle2onnx's LSTM carries no sequence_length: in a padded batch the probabilities of the valid frames are
right (the LSTMs are causal) but the final states of the shorter utterances run on into the padding.
Needs the `paddle` extra (paddlepaddle, paddle2onnx).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from ...errors import ExportError, OptionError
from ...parity import Thresholds, breaches, compare_tensors, pooled

from .streaming.graph import INPUTS, OUTPUTS

OUTPUT_NAMES = OUTPUTS  # probs, probs_lens, final_state_h_box, final_state_c_box: our exporter's names
STATE_INPUTS = INPUTS[2:]
FP32_MAX_ABS = 1e-4  # a conversion, not an optimisation: fp32 stays within this everywhere


def program_files(model_dir: str, prefix: str | None) -> tuple[str, str]:
    """(program, params) of a Paddle inference model: PREFIX.json (PIR, paddle >= 3) or PREFIX.pdmodel."""
    if not os.path.isdir(model_dir):
        raise OptionError(f"--model-dir {model_dir}: not a folder; give the folder paddle.jit.save wrote "
                          "(exp/<name>/checkpoints/ in a PaddleSpeech recipe)")
    names = os.listdir(model_dir)
    prefixes = [prefix] if prefix else sorted({n.rsplit(".", 1)[0] for n in names if n.endswith(".pdiparams")})
    for p in prefixes:
        for ext in (".json", ".pdmodel"):
            if f"{p}{ext}" in names and f"{p}.pdiparams" in names:
                return os.path.join(model_dir, p + ext), os.path.join(model_dir, p + ".pdiparams")
    raise OptionError(f"--model-dir {model_dir}: no PREFIX.json/PREFIX.pdmodel with PREFIX.pdiparams "
                      f"{'for prefix ' + prefix if prefix else ''}(found {sorted(names)[:10]}); give --model-prefix")


def _ops(program: dict):
    """Every op dict of a PIR JSON program, at any depth."""
    stack = [program]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("#"), str) and node["#"].startswith("1."):
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _attr(op: dict, name: str):
    return next((a["AT"].get("D") for a in op.get("A", []) if a.get("N") == name), None)


def fix_state_shapes(program_json: str, source: str) -> tuple[str, int, int]:
    """The PIR program with the state inputs declared [layers, -1, hidden]; (text, layers, hidden)."""
    program = json.loads(program_json)
    rnns = [op for op in _ops(program) if op["#"] == "1.rnn"]
    if not rnns:
        raise ExportError(f"{source}: no rnn op in the program; not a PaddleSpeech DS2 online model")
    modes, hidden = {_attr(op, "mode") for op in rnns}, {_attr(op, "hidden_size") for op in rnns}
    if modes != {"LSTM"} or len(hidden) != 1 or any(_attr(op, "num_layers") != 1 for op in rnns):
        raise ExportError(f"{source}: rnn ops {sorted(map(str, modes))} of hidden sizes {sorted(map(str, hidden))}; "
                          "the DS2 online model has one single-layer LSTM per layer, all of one size")
    layers, size = len(rnns), int(hidden.pop())
    found = 0
    for op in _ops(program):
        if op["#"] == "1.data" and _attr(op, "name") in STATE_INPUTS:
            for a in op["A"]:
                if a.get("N") == "shape":
                    a["AT"]["D"] = [layers, -1, size]
            for out in op.get("O", []):
                out["TT"]["D"][1] = [layers, -1, size]
            found += 1
    if found != len(STATE_INPUTS):
        raise ExportError(f"{source}: inputs {list(STATE_INPUTS)} not found in the program; export it with "
                          "DeepSpeech2InferModel.export() (rnn_direction forward)")
    return json.dumps(program, separators=(",", ":")), layers, size


_CONVERT = ("import sys, paddle2onnx\n"
            "paddle2onnx.export(sys.argv[1], sys.argv[2], sys.argv[3], opset_version=int(sys.argv[4]),"
            " enable_onnx_checker=True, optimize_tool='None')\n")


def paddle2onnx_convert(program: str, params: str, onnx_path: str, opset: int) -> None:
    done = subprocess.run([sys.executable, "-c", _CONVERT, program, params, onnx_path, str(opset)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not os.path.isfile(onnx_path):
        lines = [l for l in (done.stderr + done.stdout).splitlines() if "ERROR" in l or "Error" in l]
        raise ExportError(f"{program}: paddle2onnx failed (exit {done.returncode}): "
                          f"{(lines or ['no message'])[0][:300]}; is the paddle extra installed "
                          "(pip install paddlepaddle paddle2onnx --no-deps)?")


def rename_and_name_batch(onnx_path: str) -> None:
    """Outputs renamed to OUTPUT_NAMES (Paddle's fetch order), every batch axis named 'batch', states [L, batch, H]."""
    import onnx

    model = onnx.load(onnx_path)
    outputs = list(model.graph.output)
    if len(outputs) != len(OUTPUT_NAMES):
        raise ExportError(f"{onnx_path}: {len(outputs)} outputs, expected {len(OUTPUT_NAMES)} (probs, lengths, h, c)")
    renames = {o.name: new for o, new in zip(outputs, OUTPUT_NAMES)}
    for node in model.graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
        node.input[:] = [renames.get(n, n) for n in node.input]
    for o in outputs:
        o.name = renames[o.name]
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        axis = 1 if value.name in (*STATE_INPUTS, *OUTPUT_NAMES[2:]) else 0
        if len(dims) > axis:
            dims[axis].dim_param = "batch"
    onnx.save(model, onnx_path)


class PaddlePredictor:
    """Paddle Inference on the CPU: feeds by input name, outputs in fetch order (Paddle's names)."""

    def __init__(self, program: str, params: str, threads: int = 1):
        import paddle.inference as pi

        config = pi.Config(program, params)
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        config.disable_glog_info()
        self._predictor = pi.create_predictor(config)
        self.input_names = self._predictor.get_input_names()
        self.output_names = self._predictor.get_output_names()

    def run(self, feeds: dict) -> list[np.ndarray]:
        for name in self.input_names:
            handle = self._predictor.get_input_handle(name)
            handle.reshape(feeds[name].shape)
            handle.copy_from_cpu(np.ascontiguousarray(feeds[name]))
        self._predictor.run()
        return [self._predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]


def probe_feeds(feature_size: int, layers: int, hidden: int, seed: int = 0) -> list[dict]:
    """Chunks the gate compares on: window sizes 7, 19, 67 (decoder chunks 1, 4, 16), batch 1 and 3,
    random features and states, full lengths (paddle2onnx's graph carries no sequence_length)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for batch, window in ((1, 7), (3, 19), (2, 67)):
        feeds.append({"audio_chunk": rng.standard_normal((batch, window, feature_size)).astype(np.float32),
                      "audio_chunk_lens": np.full(batch, window, dtype=np.int64),
                      **{n: rng.standard_normal((layers, batch, hidden)).astype(np.float32) for n in STATE_INPUTS}})
    return feeds


def compare_runs(reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]], thresholds: Thresholds,
                 max_abs: float | None) -> tuple[dict, list]:
    """Per output: pooled metrics over the probe feeds, and the breaches (max_abs on top of the gate's)."""
    report, found = {}, []
    limit = dataclasses.replace(thresholds, max_abs=max_abs)
    for i, name in enumerate(OUTPUT_NAMES):
        metrics = pooled(compare_tensors(np.asarray(r[i], np.float64), np.asarray(c[i], np.float64))
                         for r, c in zip(reference, candidate))
        report[name] = metrics.as_dict()
        found += breaches(metrics, limit, name)
    return report, found


def import_paddle(model_dir: str, output: str, prefix: str | None = None, opset: int = 13,
                  pdparams: str | None = None, config: str | None = None, thresholds: Thresholds = Thresholds(),
                  int8_output: str | None = None) -> dict:
    """Convert, gate, write `output` (and OUTPUT.parity.json) atomically; with `int8_output`, also the dynamic int8
    graph, gated against `output` (streaming.graph.quantize_int8). The parity report."""
    import onnxruntime as ort

    program, params = program_files(model_dir, prefix)
    if not program.endswith(".json"):
        raise ExportError(f"{program}: a pre-PIR program; the static-state fix edits PIR JSON (paddle >= 3 writes it): "
                          "load and re-save the model with paddle.jit.save under paddle 3")
    with open(program, encoding="utf-8") as f:
        fixed, layers, hidden = fix_state_shapes(f.read(), program)
    work = tempfile.mkdtemp(prefix="import_paddle_")
    try:
        fixed_program = os.path.join(work, "model.json")
        with open(fixed_program, "w", encoding="utf-8") as f:
            f.write(fixed)
        tmp_onnx = os.path.join(work, "model.onnx")
        paddle2onnx_convert(fixed_program, params, tmp_onnx, opset)
        rename_and_name_batch(tmp_onnx)
        predictor = PaddlePredictor(program, params)
        feature_size = _feature_size(tmp_onnx)
        feeds = probe_feeds(feature_size, layers, hidden)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # paddle2onnx leaves unused initialisers; onnxruntime warns about each
        session = ort.InferenceSession(tmp_onnx, options, providers=["CPUExecutionProvider"])
        reference = [predictor.run(f) for f in feeds]
        imported = [session.run(list(OUTPUT_NAMES), f) for f in feeds]
        report = {"paddle_vs_onnx": None, "layers": layers, "hidden": hidden, "feature_size": feature_size}
        report["paddle_vs_onnx"], found = compare_runs(reference, imported, thresholds, FP32_MAX_ABS)
        if pdparams or config:
            ours, more = _compare_with_our_export(pdparams, config, tmp_onnx, feeds, imported, thresholds, work)
            report["ours_vs_imported"] = ours
            found += more
        if found:
            raise ExportError(f"{output}: parity gate failed: {'; '.join(map(str, found))}")
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        shutil.move(tmp_onnx, output + ".tmp")
        os.replace(output + ".tmp", output)
        if int8_output:
            from types import SimpleNamespace

            from .streaming.chunks import ChunkPlan
            from .streaming.graph import quantize_int8

            sizes = SimpleNamespace(num_rnn_layers=layers, rnn_layer_size=hidden, feature_size=feature_size)
            report["int8_vs_fp32"] = quantize_int8(output, int8_output, sizes, ChunkPlan(4), thresholds)
        _write_json(output + ".parity.json", report)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _feature_size(onnx_path: str) -> int:
    import onnx

    dims = onnx.load(onnx_path).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def _compare_with_our_export(pdparams, config, imported_onnx, feeds, imported, thresholds, work):
    if not (pdparams and config):
        raise OptionError("--pdparams and --config go together: the checkpoint and its recipe YAML")
    import onnxruntime as ort

    from .streaming.graph import export_chunk_graph

    ours_path = export_chunk_graph(pdparams, config, os.path.join(work, "ours.onnx"))
    session = ort.InferenceSession(ours_path, providers=["CPUExecutionProvider"])
    ours = [session.run(list(OUTPUT_NAMES), f) for f in feeds]
    return compare_runs(imported, ours, thresholds, FP32_MAX_ABS)


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascend-asr import-paddle", description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", required=True, help="the folder paddle.jit.save wrote (PREFIX.json + PREFIX.pdiparams)")
    p.add_argument("--model-prefix", help="PREFIX when the folder holds several models (e.g. avg_1.jit)")
    p.add_argument("--output", required=True, help="the ONNX file to write (and OUTPUT.parity.json beside it)")
    p.add_argument("--opset", type=int, default=13)
    p.add_argument("--pdparams", help="the training checkpoint of the same model: also gate our exporter's graph")
    p.add_argument("--config", help="its recipe conf/deepspeech2_online.yaml (with --pdparams)")
    p.add_argument("--int8", metavar="OUTPUT", help="also write onnxruntime's dynamic int8 graph, gated against fp32")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    missing = [m for m in ("paddle", "paddle2onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise OptionError(f"import-paddle needs the paddle extra ({', '.join(missing)} missing): "
                          "pip install paddlepaddle==3.3.1 && pip install --no-deps paddle2onnx==2.1.0")
    report = import_paddle(args.model_dir, args.output, args.model_prefix, args.opset, args.pdparams, args.config,
                           int8_output=args.int8)
    for route, outputs in (("paddle vs onnxruntime", report["paddle_vs_onnx"]),
                           ("ours vs imported", report.get("ours_vs_imported")),
                           ("int8 vs fp32", report.get("int8_vs_fp32"))):
        for name, m in (outputs or {}).items():
            print(f"[ascend-asr] {route:22s} {name:18s} cosine {m['cosine']:.7f}  max|d| {m['max_abs']:.2e}  "
                  f"RED {m['red']:.2e}")
    print(f"[ascend-asr] wrote {args.output} ({report['layers']} LSTM layers of {report['hidden']}); parity in "
          f"{args.output}.parity.json")
    return 0


if __name__ == "__main__":
    from ...runner import run

    sys.exit(run(main))
