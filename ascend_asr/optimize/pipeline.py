"""The optimize pipeline: named steps over an exported ONNX, each gated against the fp32 model.

Two lines of models come out of it. The ATC line stays a standard fp32 graph (the export, then `simplify`):
ATC gets it with the precision mode the fp16 simulations chose. The CPU line (`ort-opt`, `int8`) is for
onnxruntime only. A step whose candidate breaks the gate writes nothing, the report says why, and the run
ends with a GateError: the previous step's model stays the result.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, replace

import onnx

from ..bundle import write_cpu_manifest
from ..errors import OptionError
from ..profiles import Profile, load_profile
from . import fp16, graph_steps, int8, sensitivity
from .calibration import HELDOUT_MANIFEST, as_calibration_reader, batch_feeds, load_utterances
from .gate import GateError, evaluate
from .report import StepRecord, write_report
from .runs import paired_ratios, run_utterances, session

STEPS = ("simplify", "ort-opt", "fp16", "int8")
INT8_MODES = ("auto", "static", "dynamic")
CLEARLY_FASTER = 1.05  # a CPU model is chosen over a simpler one only when this much faster (timing noise)


@dataclass(frozen=True)
class OptimizeOptions:
    steps: tuple = STEPS
    manifest: str = HELDOUT_MANIFEST
    output_dir: str | None = None  # default: NAME.optimized/ beside the model
    int8_mode: str = "auto"  # auto: static and dynamic, the faster of those passing the gate
    calibration_method: str = "minmax"
    exclude_op_types: tuple = ()
    exclude_nodes: tuple = ()
    sensitivity: bool = True
    fp16_modes: tuple = fp16.FP16_MODES
    mix_block_list: tuple = fp16.DEFAULT_MIX_BLOCK_LIST
    threads: int = 1
    repeats: int = 10
    speed_batches: tuple = (1, 8)
    max_utterances: int | None = None
    write_profile: str | None = None

    def check(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown or not self.steps or len(set(self.steps)) != len(self.steps):
            raise OptionError(f"--steps {','.join(self.steps)}: give distinct steps among {','.join(STEPS)}")
        if self.int8_mode not in INT8_MODES:
            raise OptionError(f"--int8-mode {self.int8_mode!r}: choose one of {', '.join(INT8_MODES)}")
        if self.calibration_method not in int8.CALIBRATION_METHODS:
            raise OptionError(f"--calibration-method {self.calibration_method!r}: choose one of "
                              f"{', '.join(int8.CALIBRATION_METHODS)}")
        bad = [m for m in self.fp16_modes if m not in fp16.FP16_MODES]
        if bad:
            raise OptionError(f"fp16 modes {bad}: choose among {', '.join(fp16.FP16_MODES)}")
        if "int8" not in self.steps and (self.exclude_nodes or self.exclude_op_types):
            raise OptionError("--exclude-nodes/--exclude-op-types apply to the int8 step, which --steps leaves out")
        if self.max_utterances is not None and self.max_utterances < 1:
            raise OptionError(f"--max-utterances {self.max_utterances}: give a whole number of utterances, 1 or more")
        if self.threads < 0 or self.repeats < 1:
            raise OptionError(f"--threads {self.threads} / --repeats {self.repeats}: threads >= 0, repeats >= 1")


class _Run:
    """One optimize run: the fp32 reference, the utterances, and the records of the steps so far."""

    def __init__(self, model: str, profile: Profile, options: OptimizeOptions, out):
        self.model, self.profile, self.options, self.out = model, profile, options, out
        self.name = os.path.splitext(os.path.basename(model))[0]
        self.folder = options.output_dir or os.path.join(os.path.dirname(os.path.abspath(model)),
                                                         self.name + ".optimized")
        os.makedirs(self.folder, exist_ok=True)
        self.thresholds = profile.thresholds()
        self.utterances = load_utterances(options.manifest, profile, options.max_utterances)
        self.reference = run_utterances(model, self.utterances)
        self.speed_feeds = {b: batch_feeds(self.utterances, profile, b) for b in options.speed_batches}
        self.fp32_session = session(model, options.threads)
        self.records: list[StepRecord] = []

    def path(self, suffix: str) -> str:
        """Where a model that passed its gate lies: NAME.<suffix>.onnx."""
        return os.path.join(self.folder, f"{self.name}.{suffix}.onnx")

    def candidate(self, suffix: str) -> str:
        """Where a step's model waits for its gate (hidden; moved to path(suffix) only when it passes, so a
        rejected candidate never replaces a model a previous run kept)."""
        return os.path.join(self.folder, f".{self.name}.{suffix}.candidate.onnx")

    def publish(self, staged: str) -> str:
        """Move a candidate to its published name, path(suffix)."""
        folder, base = os.path.split(staged)
        if not base.startswith(".") or not base.endswith(".candidate.onnx"):
            return staged
        final = os.path.join(folder, base[1:-len(".candidate.onnx")] + ".onnx")
        os.replace(staged, final)
        return final

    def gate(self, path: str, opt_level: str = "all"):
        return evaluate(self.profile, self.utterances, self.reference,
                        run_utterances(path, self.utterances, opt_level), self.thresholds)

    def speed(self, path: str) -> dict:
        """fp32 seconds / this model's seconds per batch size, timed in alternation (paired_ratios)."""
        candidate = session(path, self.options.threads)
        ratios = {}
        for b, feeds in self.speed_feeds.items():
            calls = {"fp32": lambda: self.fp32_session.run(None, feeds), "candidate": lambda: candidate.run(None, feeds)}
            ratios[f"batch{b}"] = paired_ratios(calls, "fp32", self.options.repeats)["candidate"]
        return ratios

    def say(self, text: str) -> None:
        print(f"[ascend-asr] optimize: {text}", file=self.out, flush=True)

    def keep(self, step: str, path: str, kind: str, gate, speed=True, notes: str = "", **details) -> StepRecord:
        """A passing model: published under its name, with its manifest (so infer runs it), and its record."""
        path = self.publish(path)
        write_cpu_manifest(self.profile, path, kind, self.model, details={"step": step})
        record = StepRecord(step, "pass", path, os.path.getsize(path), self.speed(path) if speed else {}, gate,
                            notes, details)
        self.records.append(record)
        self.say(f"{step}: passes ({_summary(gate)}) -> {path}")
        return record

    def reject(self, step: str, path: str, gate, notes: str = "", **details) -> StepRecord:
        size = os.path.getsize(path) if os.path.exists(path) else None
        if os.path.exists(path):
            os.remove(path)  # a model that broke its gate is not left where it could be taken for a result
        record = StepRecord(step, "breach", None, size, {}, gate, notes, details)
        self.records.append(record)
        self.say(f"{step}: BREAKS the gate: {'; '.join(gate.broken())}")
        return record


def _summary(gate) -> str:
    worst = min(gate.outputs.values(), key=lambda m: m.cosine)
    return f"cosine {worst.cosine:.6f}, RED {worst.red:.4g}, WER delta {gate.errors.wer_delta:+.2f}"


def _step_simplify(run: _Run, current: str) -> str | None:
    target = run.candidate("simplified")
    graph_steps.simplify(current, target)
    gate = run.gate(target)
    if not gate.passed:
        run.reject("simplify", target, gate)
        return None
    return run.keep("simplify", target, "simplified", gate,
                    notes="standard ONNX at the export's opset: for ATC too").file


def _step_ort_opt(run: _Run, current: str) -> bool:
    target = run.candidate("ort")
    graph_steps.ort_optimize(current, target)
    gate = run.gate(target)
    if not gate.passed:
        run.reject("ort-opt", target, gate)
        return False
    run.keep("ort-opt", target, "ort_opt", gate,
             notes="CPU only: onnxruntime-specific operators and layouts for this machine's CPU; never for ATC")
    return True


def _step_fp16(run: _Run, current: str) -> dict:
    """Each ATC precision mode simulated; mode -> GateResult. A breach here predicts a cost, it fails nothing."""
    model = onnx.load(current)
    results = {}
    for mode in run.options.fp16_modes:
        target = run.candidate(f"fp16-{mode}")
        graph_steps.save_model(fp16.simulate(model, mode, run.options.mix_block_list), target)
        gate = run.gate(target, opt_level="disable")
        results[mode] = gate
        note = ("prediction of ATC --precision_mode=" + mode + "; simulated (fp16 rounding, fp32 arithmetic): "
                "its speed on a CPU says nothing of an NPU's")
        if mode == "allow_mix_precision":
            note += f"; block list (kept fp32): {', '.join(run.options.mix_block_list)}"
        if gate.passed:
            run.keep(f"fp16:{mode}", target, f"fp16 simulation of {mode}", gate, speed=False, notes=note)
        else:
            target = run.publish(target)
            write_cpu_manifest(run.profile, target, f"fp16 simulation of {mode}", run.model)
            run.records.append(StepRecord(f"fp16:{mode}", "breach", target, os.path.getsize(target), {}, gate,
                                          note + "; kept for inspection, this mode is not chosen"))
            run.say(f"fp16:{mode}: would break the gate on an NPU: {'; '.join(gate.broken())}")
    return results


def _step_int8(run: _Run, current: str):
    """(kind, path, record) of the int8 model chosen, or None when none passes (after the sensitivity pass)."""
    opts = run.options
    source = onnx.load(current)
    chosen_by_user = int8.excluded_nodes(source, opts.exclude_op_types, opts.exclude_nodes)
    # what an earlier run recorded in the profile (precision.int8_exclude_*), where this graph has those nodes
    recorded = run.profile.precision
    names = {n.name for n in source.graph.node}
    chosen_by_user += int8.excluded_nodes(source, recorded.get("int8_exclude_op_types", ()),
                                          [n for n in recorded.get("int8_exclude_nodes", ()) if n in names])
    lengths = set(int8.length_arithmetic_nodes(source, run.profile.input("features").name))
    excluded = sorted(set(chosen_by_user) | lengths)

    def shown(names):  # the exclusions worth reporting: the length arithmetic is always left out
        return sorted(set(names) - lengths)
    one_shape = opts.calibration_method != "minmax"  # histogram calibrators stack the activations of every feed
    reader = as_calibration_reader(run.utterances, run.profile if one_shape else None)
    kinds = int8.INT8_KINDS if opts.int8_mode == "auto" else (opts.int8_mode,)
    passing, gates = [], {}
    for kind in kinds:
        target = run.candidate(f"int8-{kind}")
        int8.quantize(current, target, kind, reader, excluded, opts.calibration_method)
        if not int8.quantized_op_count(onnx.load(target)):
            os.remove(target)
            run.records.append(StepRecord(f"int8:{kind}", "skipped", notes=f"nothing to quantise ({kind} int8 "
                                          f"quantises {', '.join(int8.DYNAMIC_OP_TYPES)} only): the fp32 model"))
            run.say(f"int8:{kind}: nothing to quantise")
            continue
        gate = gates[kind] = run.gate(target)
        if gate.passed:
            passing.append((kind, run.keep(f"int8:{kind}", target, f"int8_{kind}", gate, excluded=shown(excluded),
                                           length_nodes_in_fp32=len(lengths))))
        else:
            run.reject(f"int8:{kind}", target, gate, excluded=shown(excluded), length_nodes_in_fp32=len(lengths))
    if not passing and opts.sensitivity and any(r.verdict == "breach" for r in run.records[-len(kinds):]):
        kind = "static" if "static" in kinds else kinds[0]
        probe = run.candidate(f"int8-{kind}-probe")
        int8.quantize(current, probe, kind, reader, excluded, opts.calibration_method)
        try:
            ranking = sensitivity.rank_nodes(current, probe, run.utterances, run.folder)
        finally:
            os.remove(probe)
        attempt = run.candidate(f"int8-{kind}-sensitivity")

        def requantize(exclude):
            return int8.quantize(current, attempt, kind, reader, exclude, opts.calibration_method)
        result = sensitivity.search(ranking, requantize, run.gate, excluded)
        last = result.rounds[-1] if result.rounds else None
        if last is None:
            run.records.append(StepRecord(f"int8:{kind}+sensitivity", "breach", gate=gates.get(kind), notes=(
                f"no quantised activation to rank ({kind} int8 has no QuantizeLinear/DequantizeLinear pairs): the "
                "sensitivity pass works on static QDQ")))
        elif result.passed:
            passing.append((kind, run.keep(f"int8:{kind}+sensitivity", attempt, f"int8_{kind}", last.gate,
                                           excluded=shown(last.excluded), sensitivity=result.as_dict())))
        else:
            run.reject(f"int8:{kind}+sensitivity", attempt, last.gate, notes="the sensitivity pass gave up",
                       excluded=shown(last.excluded), sensitivity=result.as_dict())
    if not passing:
        return None
    kind, record = max(passing, key=lambda item: item[1].speed.get("batch1", 0.0))
    chosen = run.path("int8")
    os.replace(record.file, chosen)
    os.remove(os.path.splitext(record.file)[0] + ".json")  # its manifest is written again for the new name
    write_cpu_manifest(run.profile, chosen, f"int8_{kind}", run.model,
                       details={"step": record.step, "excluded": record.details.get("excluded", [])})
    index = run.records.index(record)
    run.records[index] = replace(record, verdict="chosen", file=chosen,
                                 notes=f"the fastest int8 model passing the gate ({kind})")
    return kind, chosen, run.records[index]


def chosen_atc_mode(fp16_results: dict) -> str:
    """The fastest ATC precision mode whose simulation passed (accuracy order reversed), else the fp32 one."""
    for mode in reversed(fp16.ACCURACY_ORDER):
        gate = fp16_results.get(mode)
        if gate is not None and gate.passed:
            return mode
    return "must_keep_origin_dtype"


def optimize(model: str, profile: Profile | str, options: OptimizeOptions = OptimizeOptions(), out=sys.stdout) -> dict:
    """Run the steps; returns the report (also written as report.json and report.md). A gating step that breaks
    its gate raises GateError after the report is written."""
    import onnxruntime

    options.check()
    if isinstance(profile, str):
        profile = load_profile(profile)
    if not os.path.isfile(model):
        raise OptionError(f"--model {model}: ONNX model not found; export it first (`ascend-asr export`)")
    from ..bundle import load_onnx_model

    profile.validate_onnx(load_onnx_model(model), model)
    run = _Run(model, profile, options, out)
    run.records.append(StepRecord("fp32", "reference", os.path.abspath(model), os.path.getsize(model),
                                  {f"batch{b}": 1.0 for b in options.speed_batches},
                                  run.gate(model)))
    current, failure, fp16_results, int8_choice = model, None, {}, None
    for step in options.steps:
        if step == "simplify":
            simplified = _step_simplify(run, current)
            if simplified is None:
                failure = "simplify"
                break
            current = simplified
        elif step == "ort-opt":
            if not _step_ort_opt(run, current):
                failure = "ort-opt"
                break
        elif step == "fp16":
            fp16_results = _step_fp16(run, current)
        elif step == "int8":
            int8_choice = _step_int8(run, current)
            if int8_choice is None:
                failure = "int8"
                break
    cpu_candidates = [r for r in run.records if r.verdict in ("pass", "chosen", "reference")
                      and not r.step.startswith("fp16") and r.speed]
    fastest = cpu_candidates[0]  # the fp32 export; a later model replaces it only when clearly faster
    for record in cpu_candidates[1:]:
        if record.speed.get("batch1", 0.0) >= CLEARLY_FASTER * fastest.speed.get("batch1", 0.0):
            fastest = record
    cpu_kind = {"fp32": "fp32", "simplify": "simplified", "ort-opt": "ort_opt"}.get(
        fastest.step, f"int8_{int8_choice[0]}" if int8_choice else "fp32")
    precision = {"atc_precision_mode": chosen_atc_mode(fp16_results) if fp16_results else
                 profile.atc.get("precision_mode", "force_fp16"),
                 "cpu_model": cpu_kind}
    if fp16_results:
        precision["predicted_wer_delta"] = {m: round(g.errors.wer_delta, 3) for m, g in fp16_results.items()}
        if precision["atc_precision_mode"] == "allow_mix_precision":
            precision["mix_precision_block_list"] = list(options.mix_block_list)
    if int8_choice and int8_choice[2].details.get("excluded"):
        precision["int8_exclude_nodes"] = list(int8_choice[2].details["excluded"])
    precision["report"] = os.path.abspath(os.path.join(run.folder, "report.json"))
    report = {
        "model": os.path.abspath(model), "profile": profile.name, "output_dir": os.path.abspath(run.folder),
        "conditions": {"manifest": options.manifest, "utterances": len(run.utterances),
                       "thresholds": profile.thresholds().__dict__, "machine": f"{platform.machine()} "
                       f"{platform.processor() or ''} ({os.cpu_count()} CPUs)".replace("  ", " "),
                       "onnxruntime": onnxruntime.__version__, "threads": options.threads,
                       "repeats": options.repeats, "speed_batches": list(options.speed_batches),
                       "speed_frames": max(u.gear for u in run.utterances)},
        "atc_model": os.path.abspath(current),
        "cpu_model": fastest.file,
        "precision": precision,
        "steps": [r.as_dict() for r in run.records],
        "failed_step": failure,
    }
    json_path, md_path = write_report(run.folder, report)
    if options.write_profile and not failure:  # a run that failed a gate chose nothing to record
        from .profile_copy import write_profile_copy

        write_profile_copy(profile, options.write_profile, precision)
        run.say(f"profile with the chosen precision: {options.write_profile}")
    run.say(f"report: {json_path}, {md_path}")
    if failure:
        broken = next(r for r in reversed(run.records) if r.verdict == "breach")
        why = "; ".join(broken.gate.broken()) if broken.gate is not None else broken.notes
        raise GateError(f"step {failure} breaks its gate against the fp32 model ({why}); "
                        f"nothing was written for it and {os.path.basename(current)} stays the result; see {md_path}. "
                        "Loosen the profile's parity: thresholds only if the WER change is acceptable, or leave the "
                        f"step out (--steps)")
    run.say(f"for ATC: {current} with precision_mode {precision['atc_precision_mode']}; for the CPU: "
            f"{fastest.file} ({cpu_kind})")
    return report
