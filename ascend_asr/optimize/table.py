"""The README's speed and accuracy table: each shipped model as PyTorch eager, fp32 / simplified / ort-opt / int8
on onnxruntime, and the fp16 simulations of ATC's precision modes.

    python -m ascend_asr.optimize.table [--models jasper_small,deepspeech2_small,lstm_ctc_char] [--repeats 20]
        [--frames 512] [--output table.md]

Speed is a ratio to PyTorch eager on the same input in the same run (batch 1 and 8; 1 and 2 threads, set for
both: torch.set_num_threads and onnxruntime's intra_op_num_threads). WER/CER deltas are against the fp32
export on the bundled held-out clips. fp16 rows are simulations (a prediction of ATC's precision_mode on an
NPU): their speed on a CPU means nothing and is not shown. Figures from a shared machine are provisional.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

from ..profiles import load_profile
from ..tensor_files import write_text_atomic
from .calibration import HELDOUT_MANIFEST, batch_feeds, load_utterances
from .gate import GateError
from .pipeline import OptimizeOptions, optimize
from .runs import paired_ratios, session

MODELS = ("jasper_small", "deepspeech2_small", "lstm_ctc_char")
BATCHES = (1, 8)
THREADS = (1, 2)
ROWS = (("fp32", "fp32 (export)"), ("simplify", "simplified"), ("ort-opt", "ort-opt"), ("int8:static", "int8 static"),
        ("int8:dynamic", "int8 dynamic"), ("int8:static+sensitivity", "int8 static + sensitivity"))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def measure_model(name: str, work: str, repeats: int, frames: int | None, out) -> dict:
    """The optimize report of one shipped model, plus the speed of every model it wrote against PyTorch eager."""
    import torch

    from ..export import export_onnx
    from ..families import load_model, reference_checkpoint

    profile = load_profile(name)
    checkpoint = reference_checkpoint(name)
    if checkpoint is None:
        raise GateError(f"profile {name}: no shipped checkpoint to measure")
    model = load_model(profile, checkpoint)
    exported = export_onnx(model, os.path.join(work, f"{name}.onnx"))
    folder = os.path.join(work, f"{name}.optimized")
    try:
        optimize(exported, profile, OptimizeOptions(output_dir=folder, repeats=3, speed_batches=(1,)), out=out)
    except GateError as exc:  # a failing step is part of the table: its row says why
        print(f"[ascend-asr] table: {name}: {exc}", file=out)
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    utterances = load_utterances(HELDOUT_MANIFEST, profile)
    input_names = [spec.name for spec in profile.inputs]
    files = {s["step"]: s["file"] for s in report["steps"] if s.get("file") and not s["step"].startswith("fp16")}
    files["fp32, ORT optimisation off"] = exported
    speed: dict = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        sessions = {step: session(path, threads, "disable" if "off" in step else "all", spinning=False)
                    for step, path in files.items()}
        for batch in BATCHES:
            feeds = batch_feeds(utterances, profile, batch, frames)
            args = [torch.from_numpy(feeds[name]) for name in input_names]
            calls = {step: (lambda s=s: s.run(None, feeds)) for step, s in sessions.items()}
            calls["pytorch eager"] = lambda: model(*args)
            with torch.inference_mode():
                ratios = paired_ratios(calls, "pytorch eager", repeats)
            for step, ratio in ratios.items():
                speed.setdefault(step, {})[f"b{batch}_t{threads}"] = ratio
    return {"name": name, "report": report, "speed": speed,
            "frames": frames or max(u.gear for u in utterances)}


def _cell(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(results: list, repeats: int) -> str:
    import onnxruntime
    import torch

    keys = [f"b{b}_t{t}" for t in THREADS for b in BATCHES]
    lines = [f"Speed: × PyTorch eager (same input, same run); {_cpu_name()}, {os.cpu_count()} CPUs; torch "
             f"{torch.__version__}, onnxruntime {onnxruntime.__version__}; median over {repeats} rounds of the "
             "paired ratio (each round times every variant once, in rotating order; idle threads sleep: "
             "OMP_WAIT_POLICY=PASSIVE, onnxruntime allow_spinning=0); threads set "
             "for both (torch.set_num_threads, ORT intra_op_num_threads). Input: the held-out clips' features "
             "padded to " + ", ".join(f"{r['name']} {r['frames']}" for r in results) + " frames. WER/CER Δ: "
             "points against the fp32 export on the 9 held-out clips (one word is 2.1 WER points). fp16 rows are "
             "simulations of ATC's precision modes: predicted WER cost only (their CPU speed means nothing).", "",
             "| model | variant | size (KB) | b1 1 thr | b8 1 thr | b1 2 thr | b8 2 thr | WER Δ | CER Δ | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        steps = {s["step"]: s for s in r["report"]["steps"]}
        lines.append(f"| {r['name']} | PyTorch eager | - | 1.00 | 1.00 | 1.00 | 1.00 | - | - | |")
        for step, label in ROWS:
            s = steps.get(step)
            if s is None:
                continue
            speed = r["speed"].get(step, {})
            size = _cell(s["size"] / 1024, ".0f") if s.get("size") else "-"
            lines.append(f"| {r['name']} | {label} | {size} | " + " | ".join(_cell(speed.get(k)) for k in keys)
                         + f" | {_cell(s.get('wer_delta'), '+.2f')} | {_cell(s.get('cer_delta'), '+.2f')} | "
                         f"{s['verdict']} |")
        off = r["speed"].get("fp32, ORT optimisation off", {})
        lines.append(f"| {r['name']} | fp32, ORT optimisation off | - | " + " | ".join(_cell(off.get(k)) for k in keys)
                     + " | - | - | |")
        for step, s in steps.items():
            if step.startswith("fp16:"):
                lines.append(f"| {r['name']} | ATC {step[5:]} (simulated) | - | - | - | - | - | "
                             f"{_cell(s.get('wer_delta'), '+.2f')} | {_cell(s.get('cer_delta'), '+.2f')} | "
                             f"{s['verdict']} |")
        lines.append(f"| {r['name']} | chosen | | | | | | | | ATC: {r['report']['precision']['atc_precision_mode']}; "
                     f"CPU: {r['report']['precision']['cpu_model']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.optimize.table", description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--frames", type=int, help="pad the inputs to this many frames (default: the clips' gear)")
    p.add_argument("--work-dir", help="where exports and optimized models go (default: a temporary folder)")
    p.add_argument("--output", help="also write the table here")
    args = p.parse_args(argv)
    # timed in alternation, neither runtime's idle threads may spin on the cores the other needs: onnxruntime's
    # sessions here do not spin (spinning=False), and PyTorch's OpenMP threads sleep when set before torch loads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    work = args.work_dir or tempfile.mkdtemp(prefix="ascend_asr_table.")
    os.makedirs(work, exist_ok=True)
    results = [measure_model(m.strip(), work, args.repeats, args.frames, sys.stderr)
               for m in args.models.split(",") if m.strip()]
    table = markdown(results, args.repeats)
    print(table)
    if args.output:
        write_text_atomic(args.output, table)
    return 0


if __name__ == "__main__":
    from ..runner import run

    sys.exit(run(main))
