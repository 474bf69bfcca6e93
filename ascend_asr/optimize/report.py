"""optimize's report: report.json (everything) and report.md (a table per step), written atomically."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..tensor_files import write_json_atomic, write_text_atomic

VERDICTS = ("reference", "pass", "breach", "chosen", "skipped")


@dataclass(frozen=True)
class StepRecord:
    step: str  # simplify, ort-opt, fp16:<mode>, int8:static, int8:dynamic, int8:sensitivity
    verdict: str
    file: str | None = None  # the model written (None: rejected, nothing written)
    size: int | None = None
    speed: dict = field(default_factory=dict)  # "batch1"/"batch8" -> fp32 seconds / this model's seconds
    gate: object | None = None  # GateResult
    notes: str = ""
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"step": self.step, "verdict": self.verdict, "file": self.file, "size": self.size,
                "speed_ratio_vs_fp32_ort": dict(self.speed), "notes": self.notes,
                **(self.gate.as_dict() if self.gate is not None else {}), **self.details}


def _finite(value):
    """JSON has no NaN or inf: they are written as strings (an overflowed model's metrics are exactly these)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _fmt(value, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def markdown(report: dict) -> str:
    c = report["conditions"]
    lines = [f"# ascend-asr optimize: {os.path.basename(report['model'])} ({report['profile']})", "",
             f"Gate utterances: {c['utterances']} from {c['manifest']}; thresholds {c['thresholds']}.",
             f"Speed: onnxruntime {c['onnxruntime']} on {c['machine']}, {c['threads']} intra-op thread(s), batches "
             f"{c['speed_batches']} at {c['speed_frames']} input frames: the fp32 export's time over the model's, "
             f"timed in alternation, median over {c['repeats']} rounds (provisional when the machine is shared).", "",
             "| step | verdict | file | size (KB) | speed b1 | speed b8 | output | cosine | max abs | mean abs | RED | KL "
             "| argmax agr. | WER Δ | CER Δ |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["steps"]:
        size = _fmt(s["size"] / 1024, ".0f") if s.get("size") else "-"
        speed = s.get("speed_ratio_vs_fp32_ort", {})
        outputs = s.get("outputs") or {"-": {}}
        for i, (name, m) in enumerate(outputs.items()):
            head = [s["step"], s["verdict"], os.path.basename(s["file"]) if s.get("file") else "-", size,
                    _fmt(speed.get("batch1"), ".2f"), _fmt(speed.get("batch8"), ".2f")] if i == 0 else [""] * 6
            tail = [_fmt(s.get("wer_delta"), "+.2f"), _fmt(s.get("cer_delta"), "+.2f")] if i == 0 else ["", ""]
            lines.append("| " + " | ".join(head + [name] + [_fmt(m.get(k)) for k in (
                "cosine", "max_abs", "mean_abs", "red", "kl", "argmax_agreement")] + tail) + " |")
    for s in report["steps"]:
        if s.get("breaches"):
            lines.append(f"\n**{s['step']}** breaks its gate: " + "; ".join(s["breaches"]))
        if s.get("notes"):
            lines.append(f"\n*{s['step']}*: {s['notes']}")
        for r in (s.get("sensitivity") or {}).get("rounds", []):
            lines.append(f"- excluded {r['excluded']}: " + ("passes" if r["passed"] else "; ".join(r["breaches"])))
    lines += ["", "## Chosen", "", "```yaml", "precision:"]
    lines += [f"  {k}: {v}" for k, v in report["precision"].items() if k != "report"]
    lines += ["```", ""]
    return "\n".join(lines)


def write_report(folder: str, report: dict) -> tuple[str, str]:
    """report.json and report.md in `folder`."""
    report = _finite(report)
    json_path, md_path = os.path.join(folder, "report.json"), os.path.join(folder, "report.md")
    write_json_atomic(json_path, report)
    write_text_atomic(md_path, markdown(report))
    return json_path, md_path
