"""Running a candidate model on onnxruntime: its outputs on the gate utterances, and its speed against another."""
from __future__ import annotations

import statistics
import time

from ..errors import BackendError

# onnxruntime graph optimisation for gate runs: "all" (what infer uses) except for the fp16 simulations, whose
# fp32 -> fp16 -> fp32 Cast pairs must not be optimised away ("disable")
OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


def session(path: str, threads: int = 0, opt_level: str = "all", spinning: bool = True):
    """An onnxruntime CPU session of `path`: `threads` intra-op threads (0: onnxruntime's default). spinning=False
    lets its pool threads sleep as soon as a run ends (else they spin a while, taking the cores from whatever
    runs next: PyTorch's threads, when the two are timed in alternation)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    options.log_severity_level = 3  # the quantised graphs' "folded constant" notices are not for the user
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise BackendError(f"{path}: onnxruntime cannot load the model ({' '.join(str(exc).split())[:300]})") from exc


def run_utterances(path: str, utterances, opt_level: str = "all", threads: int = 0) -> list:
    """Per utterance, {output name: array} of `path` run at batch 1."""
    sess = session(path, threads, opt_level)
    names = [o.name for o in sess.get_outputs()]
    results = []
    for utt in utterances:
        try:
            results.append(dict(zip(names, sess.run(None, utt.feeds))))
        except Exception as exc:
            raise BackendError(f"{path}: onnxruntime failed on utterance {utt.id} "
                               f"({' '.join(str(exc).split())[:300]})") from exc
    return results


def paired_ratios(calls: dict, reference: str, repeats: int, warmup: int = 2) -> dict:
    """name -> median over rounds of (reference's seconds / name's seconds), each round timing every call once
    in a rotating order: paired in time, so a neighbour's load that comes and goes slows both sides of a ratio."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    ratios: dict = {name: [] for name in names}
    for r in range(repeats):
        seconds = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            calls[name]()
            seconds[name] = time.perf_counter() - start
        for name in names:
            ratios[name].append(seconds[reference] / seconds[name])
    return {name: statistics.median(values) for name, values in ratios.items()}
