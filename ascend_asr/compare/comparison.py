"""Run A and B over the utterances of a prep/ folder and compare what they give, output by output and, with
layers, tensor by tensor; A is the reference (msit's "golden"), B the candidate."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..batching import assemble, smallest_gear
from ..decoding import output_frames
from ..errors import OptionError, ProfileError, ShapeError, TensorFileError
from ..parity import Breach, Thresholds, breaches, compare_tensors, pooled
from ..prep import open_prep
from ..profiles import BATCH, OUT_FRAMES, load_profile
from .matching import match_layers, match_outputs
from .sources import open_source

REPORT_FORMAT = "ascend-asr-compare/1"
BACKENDS = ("auto", "onnxruntime", "acl", "ais_bench")


@dataclass(frozen=True)
class CompareOptions:
    profile: str | None = None  # name or YAML; default: the profile prep/ was made with
    layers: bool = False
    dump: str | None = None  # folder for msit-layout tensor dumps
    limit: int | None = None  # the first N utterances of prep/
    backend: str = "auto"  # for bundles given as NAME.om / NAME.json
    device: int = 0
    min_cosine: float | None = None  # threshold overrides (None: the profile's, else parity.py's defaults)
    max_red: float | None = None
    max_abs: float | None = None
    min_argmax_agreement: float | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise OptionError(f"--backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise OptionError(f"--limit {self.limit!r}: give a whole number of at least 1")
        for key in ("min_cosine", "max_red", "max_abs", "min_argmax_agreement"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0):
                raise OptionError(f"--{key.replace('_', '-')} {value!r}: give a finite number of at least 0")


def thresholds_for(profile, options: CompareOptions) -> Thresholds:
    """The profile's parity thresholds (its `parity:` mapping, where profiles have one), else parity.py's
    defaults; then the command line's overrides."""
    parity = getattr(profile, "parity", None) if profile is not None else None
    if callable(getattr(profile, "thresholds", None)):  # profiles with a `parity:` mapping read it themselves
        try:
            parity = profile.thresholds()
        except ValueError as exc:
            raise ProfileError(str(exc)) from None
    if isinstance(parity, Thresholds):
        base = parity
    else:
        try:
            base = Thresholds.from_mapping(parity if isinstance(parity, dict) else None,
                                           getattr(profile, "source", "") or "profile")
        except ValueError as exc:
            raise ProfileError(str(exc)) from None
    overrides = {k: getattr(options, k) for k in ("min_cosine", "max_red", "max_abs", "min_argmax_agreement")
                 if getattr(options, k) is not None}
    return dataclasses.replace(base, **overrides)


def resolve_profile(name: str | None, prep):
    """--profile, else the profile prep/ was made with when it can be found; None when neither is known."""
    if name:
        return load_profile(name)
    try:
        return load_profile(prep.info.get("profile") or "")
    except ProfileError:
        return None


def common_frames(needed: int, sources) -> int:
    """The frame count every source takes: prep/'s padding, or the smallest compiled gear they share."""
    gear_sets = [set(s.gears) for s in sources if s.gears]
    if not gear_sets:
        return needed
    shared = set.intersection(*gear_sets)
    frames = smallest_gear(needed, shared)
    if frames is None:
        described = "; ".join(f"{s.label}: {sorted(s.gears)}" for s in sources if s.gears)
        raise ShapeError(f"the utterance needs {needed} frames, and no frame gear shared by the models holds it "
                         f"({described}); compare models converted with the same profile")
    return frames


def first_row(array: np.ndarray, spec) -> np.ndarray:
    axis = spec.axis(BATCH) if spec is not None and spec.axis(BATCH) is not None else 0
    return np.take(np.asarray(array), 0, axis=axis) if np.ndim(array) else np.asarray(array)


def valid_part(array: np.ndarray, spec, valid: int | None) -> np.ndarray:
    """One utterance's output cut to its valid frames, where the spec says which axis holds them."""
    if spec is None or valid is None or OUT_FRAMES not in spec.shape:
        return array
    dims = [d for d in spec.shape if d != BATCH]
    axis = dims.index(OUT_FRAMES)
    return np.take(array, np.arange(min(valid, array.shape[axis])), axis=axis)


class _Tally:
    """Per-utterance metrics of one tensor pair, and whatever made them impossible."""

    def __init__(self, a: str, b: str, role=None):
        self.a, self.b, self.role = a, b, role
        self.per_utterance: list = []  # (stem, id, TensorMetrics, extra)
        self.problems: list = []

    def pooled(self):
        return pooled(m for _, _, m, _ in self.per_utterance) if self.per_utterance else None


def compare(a_path: str, b_path: str, prep_dir: str, options: CompareOptions = CompareOptions(),
            out=None) -> dict:
    """The comparison report of B against A over prep/'s utterances (see report.py for its layout); `out` takes
    the console lines (a backend's choice, skipped utterances), stdout by default."""
    out = out or sys.stdout
    prep = open_prep(prep_dir)
    rows = prep.rows[: options.limit] if options.limit else prep.rows
    if not rows:
        raise TensorFileError(f"{prep_dir}: no utterances to compare; preprocess a manifest whose audio loads")
    profile = resolve_profile(options.profile, prep)
    if profile is not None and [t.name for t in profile.inputs] != [t.name for t in prep.inputs]:
        raise TensorFileError(f"{prep_dir}: inputs {[t.name for t in prep.inputs]} do not match profile "
                              f"{profile.name} inputs {[t.name for t in profile.inputs]}; preprocess with the "
                              "profile of the models compared")
    thresholds = thresholds_for(profile, options)
    record = options.layers or bool(options.dump)
    with contextlib.ExitStack() as stack:
        sources = []
        for label, path in (("A", a_path), ("B", b_path)):
            source = open_source(label, path, profile, prep.inputs, layers=options.layers, record=record,
                                 backend=options.backend, device=options.device, out=out)
            stack.callback(source.close)
            bundle = getattr(source, "bundle", None)
            if bundle is not None:
                from ..infer import check_compatible

                check_compatible(bundle, prep)
            sources.append(source)
        a, b = sources
        pairs = match_outputs(a, b)
        stride = _time_stride(profile, sources)
        fixed = {s.batch for s in sources if s.batch}
        common_batch = fixed.pop() if len(fixed) == 1 else 1
        writer = None
        if options.dump:
            from .dump import DumpWriter

            writer = DumpWriter(options.dump, sources)
        outputs = [_Tally(p.a, p.b, p.role) for p in pairs]
        layer_match, layers, skipped = None, [], []
        for row in rows:
            try:
                tensors = prep.load(row)
                frames = common_frames(row["padded_frames"], sources)
            except (TensorFileError, ShapeError) as exc:  # one utterance's problem: reported, the rest compared
                skipped.append({"stem": row["stem"], "id": row.get("id"), "error": str(exc)})
                print(f"[ascend-asr] skipped {row.get('id')}: {exc}", file=out)
                continue
            runs = {s.label: s.run(assemble([tensors], prep.inputs, s.batch or common_batch, frames))
                    for s in sources}
            _compare_outputs(pairs, outputs, runs, row, stride)
            if options.layers:
                if layer_match is None:
                    layer_match = match_layers(a, runs["A"], b, runs["B"])
                    layers = [_Tally(x, y) for x, y in layer_match.pairs]
                _compare_layers(layers, runs, row)
            if writer is not None:
                writer.write(row["stem"], row.get("id"), runs)
        if writer is not None:
            writer.close()
    if not any(t.per_utterance for t in outputs):
        raise TensorFileError(f"{prep_dir}: none of the {len(rows)} utterance(s) could be compared "
                              f"({skipped[0]['error'] if skipped else 'no outputs'})")
    return _report(a, b, prep_dir, profile, thresholds, outputs, layer_match, layers, skipped, options)


def _time_stride(profile, sources) -> int:
    if profile is not None:
        return int(profile.time_stride)
    for s in sources:
        bundle = getattr(s, "bundle", None)
        if bundle is not None:
            return int(bundle.manifest.get("time_stride", 1))
    return 1


def _compare_outputs(pairs, tallies, runs: dict, row: dict, stride: int) -> None:
    a_out, b_out = runs["A"].outputs, runs["B"].outputs
    lengths = next((p for p in pairs if p.role == "out_lengths"), None)
    valid = (int(np.ravel(first_row(a_out[lengths.a], lengths.spec))[0]) if lengths is not None
             else output_frames(row["frames"], stride))
    for pair, tally in zip(pairs, tallies):
        ref = valid_part(first_row(a_out[pair.a], pair.spec), pair.spec, valid)
        cand = valid_part(first_row(b_out[pair.b], pair.spec), pair.spec, valid)
        if ref.shape != cand.shape:
            raise OptionError(f"output {pair.a} of A has shape {list(ref.shape)}, {pair.b} of B has "
                              f"{list(cand.shape)} (utterance {row.get('id')}): they are not two forms of one "
                              "model; compare models of one profile")
        tally.per_utterance.append((row["stem"], row.get("id"), compare_tensors(ref, cand),
                                    {"valid_frames": valid if OUT_FRAMES in getattr(pair.spec, "shape", ()) else None,
                                     "integer": ref.dtype.kind in "iub", "exact": bool(np.array_equal(ref, cand))}))


def _compare_layers(tallies, runs: dict, row: dict) -> None:
    a_t, b_t = runs["A"].tensors or {}, runs["B"].tensors or {}
    for tally in tallies:
        ref, cand = a_t.get(tally.a), b_t.get(tally.b)
        if ref is None or cand is None or ref.shape != cand.shape:
            tally.problems.append({"stem": row["stem"], "error": "missing" if ref is None or cand is None else
                                   f"shapes {list(ref.shape)} and {list(cand.shape)}"})
            continue
        tally.per_utterance.append((row["stem"], row.get("id"), compare_tensors(ref, cand), {}))


def _entry(tally: _Tally, thresholds: Thresholds, per_utterance: bool) -> dict:
    metrics = tally.pooled()
    found = []
    if metrics is not None:
        found = breaches(metrics, thresholds, tally.a)
        if any(extra.get("integer") for *_, extra in tally.per_utterance):
            found += [Breach("max_abs", metrics.max_abs, 0.0, tally.a)] if metrics.max_abs > 0 else []
    entry = {"a": tally.a, "b": tally.b, "metrics": metrics.as_dict() if metrics else None,
             "breaches": [str(x) for x in found], "breach_details": [dataclasses.asdict(x) for x in found]}
    if tally.role is not None:
        entry["role"] = tally.role
    if per_utterance:
        entry["per_utterance"] = [{"stem": s, "id": i, **m.as_dict(), **{k: v for k, v in e.items() if v is not None}}
                                  for s, i, m, e in tally.per_utterance]
    if tally.problems:
        entry["not_compared"] = tally.problems
    return entry


def _report(a, b, prep_dir, profile, thresholds, outputs, layer_match, layers, skipped, options) -> dict:
    output_entries = [_entry(t, thresholds, True) for t in outputs]
    report = {
        "format": REPORT_FORMAT,
        "a": a.describe(), "b": b.describe(), "reference": "A",
        "prep": os.path.abspath(prep_dir), "profile": profile.name if profile is not None else None,
        "utterances": len({s for t in outputs for s, *_ in t.per_utterance}),
        "skipped": skipped,
        "thresholds": dataclasses.asdict(thresholds),
        "outputs": output_entries,
        "layers": None,
        "first_broken": None,
    }
    first = None
    if layer_match is not None:
        entries = [_entry(t, thresholds, False) for t in layers]
        report["layers"] = {**layer_match.as_dict(), "tensors": entries}
        first = next((e for e in entries if e["breaches"]), None)
        if first is not None:
            report["first_broken"] = {"where": "layer", "a": first["a"], "b": first["b"],
                                      "index": entries.index(first), "breaches": first["breaches"],
                                      "details": first["breach_details"]}
    if report["first_broken"] is None:
        broken_output = next((e for e in output_entries if e["breaches"]), None)
        if broken_output is not None:
            report["first_broken"] = {"where": "output", "a": broken_output["a"], "b": broken_output["b"],
                                      "breaches": broken_output["breaches"],
                                      "details": broken_output["breach_details"]}
    broken = any(e["breaches"] for e in output_entries) or first is not None
    report["verdict"] = "fail" if broken else "pass"
    if options.dump:
        report["dump"] = os.path.abspath(options.dump)
    return report


__all__ = ["CompareOptions", "compare", "thresholds_for"]
