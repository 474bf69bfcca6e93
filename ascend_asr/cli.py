"""`ascend-asr <command>`: one entry point for every stage of the pipeline."""
from __future__ import annotations

import importlib
import sys

from .runner import run

COMMANDS = {
    "export": ("ascend_asr.export_cli", "upstream checkpoint (+ its config) -> ONNX"),
    "profile": ("ascend_asr.profile_cli", "a deployment profile from upstream config/checkpoint files"),
    "plan": ("ascend_asr.plan_cli", "frame gears and batch sizes from a dataset's lengths -> a profile"),
    "convert": ("ascend_asr.convert", "ONNX + profile -> bundles (NAME.onnx + NAME.json [+ NAME.om])"),
    "optimize": ("ascend_asr.optimize", "exported ONNX -> gated simplify / ort-opt / fp16 simulations of ATC modes / int8 (report.md)"),
    "compare": ("ascend_asr.compare", "two forms of one model (checkpoint, ONNX, optimised ONNX, bundle): per output and per layer"),
    "preprocess": ("ascend_asr.preprocess", "dataset manifest -> prep/ (.bin per input, info, meta)"),
    "infer": ("ascend_asr.infer", "bundle + prep/ -> results/ (hyps.jsonl, summary.json)"),
    "stream": ("ascend_asr.streaming", "chunk-by-chunk streaming with carried states (families that stream); 'stream bench': the RTF table"),
    "score": ("ascend_asr.score", "results/ -> WER, CER"),
    "demo": ("ascend_asr.demo", "the whole pipeline on the bundled clips"),
    "benchmark": ("ascend_asr.benchmark", "frontend speed, demo RTF, preprocessing memory"),
    "bench": ("ascend_asr.bench", "bundle + dataset -> throughput report (report.md, bench.json, plots)"),
    "doctor": ("ascend_asr.doctor", "CANN, pyACL/ais_bench, devices, atc, onnxruntime [+ a bundle]: why NPU or CPU"),
}


def main(argv=None) -> int:
    """`ascend-asr <command> ...`: the command's main, through the one runner (errors, interruptions)."""
    return run(dispatch, argv)


def all_commands() -> dict:
    """The pipeline's commands plus those the model families add (Family.commands)."""
    from .families import registry

    commands = dict(COMMANDS)
    for family in registry().values():
        for name, module, help_text in family.commands:
            commands.setdefault(name, (module, help_text))
    return commands


def dispatch(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = all_commands()
    if not argv or argv[0] not in commands:
        print("usage: ascend-asr <command> [options]\n\ncommands:")
        for name, (_, help_text) in commands.items():
            print(f"  {name:<13} {help_text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(commands[argv[0]][0]).main(argv[1:])

if __name__ == "__main__":
    sys.exit(main())
