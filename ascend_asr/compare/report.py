"""The comparison report as tables on the console (the JSON form is comparison.compare's dict, as is)."""
from __future__ import annotations

import sys

LAYERS_AROUND = 3  # layer rows shown before the first broken one (all of them are in --json)
LAYERS_AFTER = 5
LAYERS_SHOWN_WHEN_ALL_PASS = 12


def _num(value, digits: int = 6) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def _row(name: str, metrics: dict | None, verdict: str, width: int) -> str:
    if metrics is None:
        return f"{name:<{width}}  (not compared)"
    return (f"{name:<{width}}  {_num(metrics['cosine'], 8):>12}  {_num(metrics['max_abs'], 4):>10}  "
            f"{_num(metrics['mean_abs'], 4):>10}  {_num(metrics['red'], 4):>10}  {_num(metrics['kl'], 4):>10}  "
            f"{_num(metrics['argmax_agreement'], 4):>8}  {verdict}")


def _header(first: str, width: int) -> str:
    return (f"{first:<{width}}  {'cosine':>12}  {'max|d|':>10}  {'mean|d|':>10}  {'RED':>10}  {'KL':>10}  "
            f"{'argmax':>8}  verdict")


def _name(entry: dict) -> str:
    return entry["a"] if entry["a"] == entry["b"] else f"{entry['a']} ~ {entry['b']}"


def _verdict(entry: dict) -> str:
    return "BREAK: " + "; ".join(d["metric"] for d in entry["breach_details"]) if entry["breaches"] else "ok"


def print_report(report: dict, out=None) -> None:
    out = out or sys.stdout
    a, b = report["a"], report["b"]
    print(f"A (reference): {a['path']} [{a['kind']}, {a['backend']}]", file=out)
    print(f"B (candidate): {b['path']} [{b['kind']}, {b['backend']}]", file=out)
    t = report["thresholds"]
    limits = [f"cosine >= {t['min_cosine']:g}", f"RED <= {t['max_red']:g}"]
    if t.get("min_argmax_agreement"):
        limits.append(f"argmax agreement >= {t['min_argmax_agreement']:g}")
    if t.get("max_abs") is not None:
        limits.append(f"max|d| <= {t['max_abs']:g}")
    print(f"utterances: {report['utterances']}" + (f" ({len(report['skipped'])} skipped)" if report["skipped"] else "")
          + f"; thresholds: {', '.join(limits)}", file=out)

    outputs = report["outputs"]
    width = max([len("output")] + [len(_name(e)) for e in outputs])
    print("\noutputs (valid frames, worst utterance):", file=out)
    print(_header("output", width), file=out)
    for entry in outputs:
        print(_row(_name(entry), entry["metrics"], _verdict(entry), width), file=out)
    utt_width = max([len("utterance")] + [len(str(u["id"])) for e in outputs for u in e["per_utterance"]])
    for entry in outputs:
        if entry["metrics"] is None or len(entry["per_utterance"]) < 2:
            continue
        print(f"\n{_name(entry)} per utterance:", file=out)
        print(_header("utterance", utt_width), file=out)
        for u in entry["per_utterance"]:
            print(_row(str(u["id"]), u, "", utt_width), file=out)

    layers = report.get("layers")
    if layers is not None:
        print(f"\nlayers: {layers['matched']} tensor pairs matched {layers['how']} (A exposes {layers['a_tensors']} "
              f"float tensors, B {layers['b_tensors']}); all of them are in --json", file=out)
        tensors = layers["tensors"]
        first = report.get("first_broken")
        if first is not None and first["where"] == "layer":
            start = max(0, first["index"] - LAYERS_AROUND)
            shown = tensors[start: first["index"] + LAYERS_AFTER + 1]
        else:
            shown = tensors[:LAYERS_SHOWN_WHEN_ALL_PASS]
        if shown:
            width = max([len("tensor")] + [len(_name(e)) for e in shown])
            print(_header("tensor (A order)", width), file=out)
            for entry in shown:
                print(_row(_name(entry), entry["metrics"], _verdict(entry), width), file=out)
            if len(shown) < len(tensors):
                print(f"... {len(tensors) - len(shown)} more", file=out)

    first = report.get("first_broken")
    if first is not None:
        print(f"\nfirst broken ({first['where']}, in A's order): {first['a']}"
              + (f" (B: {first['b']})" if first["b"] != first["a"] else "") + ": "
              + "; ".join(f"{d['metric']} {d['value']:.6g} (limit {d['limit']:g})" for d in first["details"]),
              file=out)
    if report.get("dump"):
        print(f"tensors dumped in msit's layout: {report['dump']} (index: dump.json)", file=out)
    print(f"verdict: {report['verdict'].upper()}", file=out)
