"""Which activations' quantisation hurts most, and keeping them in fp32 until the gate passes (bounded effort).

Heuristic: in the static QDQ model, every quantised activation T passes through QuantizeLinear ->
DequantizeLinear. Running that model once on a few utterances with T and its round trip exposed gives each
activation's own quantisation noise, the relative Euclidean distance (parity.py) between T and DQ(Q(T)): local,
so an error inherited from upstream does not count against a downstream tensor. Activations are kept in fp32
worst first, in doubling groups (1, 2, 4, 8, ...): keeping T in fp32 means excluding the node that produces it
and the nodes that read it (the quantiser puts a QDQ pair on a tensor when either end is quantised). After each
group the model is requantised and gated, for at most MAX_ROUNDS rounds: the first group that passes is kept;
otherwise the pass gives up and reports every round's metrics.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from ..parity import relative_euclidean_distance
from .runs import run_utterances

MAX_ROUNDS = 5
PROBE_UTTERANCES = 3


@dataclass(frozen=True)
class Round:
    excluded: tuple  # node names kept in fp32
    gate: object  # GateResult
    path: str


@dataclass(frozen=True)
class SensitivityResult:
    ranking: tuple  # (activation, nodes that keep it in fp32, its quantisation noise), worst first
    rounds: tuple  # Round per attempt
    passed: bool
    always_excluded: tuple = ()  # nodes every round leaves in fp32 (the user's, the length arithmetic)

    def as_dict(self) -> dict:
        return {"heuristic": "quantisation noise (RED of each activation against its QDQ round trip); the worst "
                             "activations kept in fp32 in doubling groups",
                "ranking": [{"activation": t, "nodes": [x for x in n if x not in self.always_excluded], "noise_red": e}
                            for t, n, e in self.ranking[:20]],
                "rounds": [{"excluded": [n for n in r.excluded if n not in self.always_excluded], **r.gate.as_dict()}
                           for r in self.rounds],
                "passed": self.passed}


def _exposing(model: onnx.ModelProto, names, folder: str) -> str:
    """A copy of `model`, saved in `folder`, with `names` added as graph outputs."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for name in names:
        copy.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    fd, out = tempfile.mkstemp(suffix=".onnx", dir=folder)
    os.close(fd)
    onnx.save(copy, out)
    return out


def rank_nodes(fp32_path: str, quantized_path: str, utterances, folder: str) -> tuple:
    """(activation, the nodes that keep it in fp32, its quantisation noise) for each quantised activation of the
    static QDQ model at `quantized_path`, worst first."""
    quantized = onnx.load(quantized_path)
    readers: dict = {}
    for node in quantized.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    trips = {}  # activation -> its DequantizeLinear output
    for node in quantized.graph.node:
        if node.op_type == "QuantizeLinear":
            dq = next((r for r in readers.get(node.output[0], []) if r.op_type == "DequantizeLinear"), None)
            if dq is not None:
                trips.setdefault(node.input[0], dq.output[0])
    graph_outputs = {o.name for o in quantized.graph.output}
    exposed = sorted({n for pair in trips.items() for n in pair} - graph_outputs)
    path = _exposing(quantized, exposed, folder)
    try:
        runs = run_utterances(path, utterances[:PROBE_UTTERANCES], opt_level="disable")
    finally:
        os.remove(path)
    fp32 = onnx.load(fp32_path)
    producer = {o: n.name for n in fp32.graph.node for o in n.output}
    consumers: dict = {}
    for node in fp32.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    ranking = []
    for tensor, trip in trips.items():
        noise = max(relative_euclidean_distance(r[tensor], r[trip]) for r in runs)
        nodes = sorted({n for n in [producer.get(tensor), *consumers.get(tensor, [])] if n})
        if nodes:
            ranking.append((tensor, tuple(nodes), float(noise)))
    ranking.sort(key=lambda item: -item[2])
    return tuple(ranking)


def search(ranking, requantize, gate, always_excluded=(), max_rounds: int = MAX_ROUNDS) -> SensitivityResult:
    """Keep the worst 1, 2, 4, ... activations of `ranking` in fp32 (plus `always_excluded` nodes):
    `requantize(excluded)` writes a model and returns its path, `gate(path)` its GateResult. Stops at the first
    pass, after `max_rounds`, or when every ranked activation is already kept."""
    rounds = []
    count = 1
    for _ in range(max_rounds if ranking else 0):
        excluded = tuple(sorted(set(always_excluded) | {n for _, nodes, _ in ranking[:count] for n in nodes}))
        path = requantize(excluded)
        result = gate(path)
        rounds.append(Round(excluded, result, path))
        if result.passed:
            return SensitivityResult(tuple(ranking), tuple(rounds), True, tuple(always_excluded))
        if count >= len(ranking):
            break
        count *= 2
    return SensitivityResult(tuple(ranking), tuple(rounds), False, tuple(always_excluded))
