"""Several devices on one host: one infer worker process per device, the work split by frames, one results/.

    python -m ascend_asr.infer --model M.om --input prep/ --output results/ --device 0,1,2,3   # or --device all

The parent holds results/'s lock, splits the pending utterances by total frames (largest first onto the
least-loaded device: deterministic), and starts one worker process per device. Each worker runs the normal infer
path on its share, on its device, into its own folder `results/devices/<id>/` (under that folder's own lock). The
parent then merges every device's hyps into `results/hyps.jsonl` (stem order, each utterance once) and writes
`results/summary.json` with per-device and total throughput. A rerun after an interruption first merges what the
devices finished, then splits only what is left, so nothing is redone or duplicated.

`all` is every device pyACL (`acl.rt.get_device_count()`) or `npu-smi info` reports. Without an NPU, `--backend
onnxruntime --device 0,1` runs that many onnxruntime worker processes on the CPU (each says so in the summary);
with `--backend auto` each worker announces its own FALLBACK and so does the summary. A named device that does not
exist, or a worker that fails, fails the run with an error naming the device; what the other devices finished is
merged and kept.

Worker processes are started fresh (never forked from a process that may hold ACL state) and stop when their
parent dies. `python -m ascend_asr.multi_device --bench ...` measures 1, 2, 4 ... devices against one another.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone

from tqdm import tqdm

from .errors import BackendError, OptionError, TensorFileError
from .lock import FolderLock, check_not_locked
from .prep import META, PREP_JSON, bin_path, input_dir, open_prep, stem_of, write_info_file
from .results import (
    OUTPUTS,
    SUMMARY,
    append_segment,
    claim,
    hyps_path,
    read_hyps,
    read_segments,
    read_summary,
    segment_totals,
    write_summary,
)
from .runner import run, watch_parent
from .tensor_files import read_jsonl, refuse_symlink, write_json_atomic, write_text_atomic

ALL = "all"
DEVICES = "devices"  # results/devices/<id>/: one device's infer folder
SHARE = "share.json"  # written by the parent: what one worker does
REPORT = "device.json"  # written by the worker when its share is done
DEVICE_KEYS = ("NPU_compute_time", "H2D_latency", "D2H_latency", "throughput", "batches",
               "end_to_end_utterances_per_s", "padding_efficiency", "timings_missing")
RELAYED_LINES = 40  # a failing worker's last lines of output are quoted in the error


def parse_devices(text: str) -> list[int] | str:
    """`--device`: one id (`0`), several (`0,1,2,3`) or `all`."""
    text = str(text).strip()
    if text.lower() == ALL:
        return ALL
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise OptionError(f"--device {text!r}: give a device id (0), several (0,1,2,3) or all")
    devices = [int(p) for p in parts]
    if len(set(devices)) != len(devices):
        raise OptionError(f"--device {text!r}: a device is named twice; name each once")
    return devices


def device_folder(output: str, device: int) -> str:
    return os.path.join(output, DEVICES, str(device))


def _device_folders(output: str) -> list[str]:
    root = os.path.join(output, DEVICES)
    if not os.path.isdir(root) or os.path.islink(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root), key=lambda d: (len(d), d)) if d.isdigit()]


def needs_workers(devices: list[int] | str, output: str) -> bool:
    """Several devices, `all`, or a results/ that devices wrote into earlier (merged first, so a rerun with one
    device neither redoes nor duplicates what they finished)."""
    return devices == ALL or len(devices) > 1 or bool(_device_folders(output))


def infer_on(device_arg: str, model: str, prep_dir: str, output: str, options, out=sys.stdout) -> dict:
    """What `python -m ascend_asr.infer --device ...` runs: plain infer on one device, else one worker per device."""
    from .infer import infer

    devices = parse_devices(device_arg)
    if not needs_workers(devices, output):
        return infer(model, prep_dir, output, replace(options, device=devices[0]), out=out)
    return infer_devices(model, prep_dir, output, devices, options, out=out)


# --- which devices ---------------------------------------------------------------------------------------------

def _importable(module: str) -> bool:
    from .backends import _importable as importable

    return importable(module)


def npu_device_count(backend: str) -> tuple[int | None, str]:
    """(devices, who said so): pyACL's count for acl/auto when `acl` imports, else npu-smi's; None when neither
    can tell (no NPU runtime, no npu-smi)."""
    if backend in ("auto", "acl") and _importable("acl"):
        from .backends.acl_backend import device_count, import_acl

        try:
            return device_count(import_acl()), "pyACL (acl.rt.get_device_count)"
        except BackendError as exc:
            if backend == "acl":
                raise
            reason = f"pyACL is not usable ({exc})"
    else:
        reason = "pyACL does not import"
    if backend in ("auto", "ais_bench", "acl"):
        from .doctor import npu_smi_devices

        smi, count, _, note = npu_smi_devices()
        if smi and count is not None:
            return count, "npu-smi info"
        reason += f"; npu-smi: {note}"
    return None, reason


def resolve_devices(devices: list[int] | str, backend: str) -> tuple[list[int], str | None]:
    """The device ids to run on, and the FALLBACK reason when they are CPU worker processes under `auto`.
    A named device that the NPU runtime does not see is an error naming it (never a silent CPU worker)."""
    if backend == "onnxruntime":
        if devices == ALL:
            raise OptionError("--device all counts NPU devices; with --backend onnxruntime give the number of CPU "
                              "worker processes as a list of ids, e.g. --device 0,1")
        return devices, None
    count, source = npu_device_count(backend)
    if devices == ALL:
        if not count:
            if backend != "auto":
                said = source if count is None else f"{source} reports 0"
                raise BackendError(f"--device all: no NPU device answers ({said}); check `npu-smi info` and "
                                   "`ascend-asr doctor`")
            return [0], (f"--device all: no NPU device answers ({source}); one worker on the CPU")
        return list(range(count)), None
    if count:
        missing = [d for d in devices if d >= count]
        if missing:
            raise BackendError(f"device {missing[0]}: {source} reports {count} device(s) (ids 0 to {count - 1}), so "
                               f"device {', '.join(map(str, missing))} cannot be opened; name devices that exist "
                               "(`npu-smi info`), or --device all")
        return devices, None
    if backend != "auto":
        return devices, None  # each worker's backend says why its device cannot be opened
    return devices, f"no NPU device answers ({source})"


# --- splitting the work ----------------------------------------------------------------------------------------

def row_frames(row: dict) -> int:
    """What one utterance costs the device: its padded frames (its true frames if that is all the row has)."""
    for key in ("padded_frames", "frames"):
        v = row.get(key) if isinstance(row, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return 1


def split_by_frames(rows: list[dict], devices: list[int]) -> dict[int, list[dict]]:
    """Each device's share: largest utterance first onto the device with the fewest frames so far (ties: the
    earlier utterance, the earlier device), so the same rows and devices always give the same split. Each share
    keeps the rows' order."""
    load = {d: 0 for d in devices}
    owner = {}
    order = sorted(range(len(rows)), key=lambda i: (-row_frames(rows[i]), i))
    for i in order:
        d = min(devices, key=lambda d: (load[d], devices.index(d)))
        load[d] += row_frames(rows[i])
        owner[i] = d
    return {d: [r for i, r in enumerate(rows) if owner[i] == d] for d in devices}


# --- merging ---------------------------------------------------------------------------------------------------

def merge(output: str, prep_rows: list[dict], log=None) -> int:
    """Every device folder's hyps into results/hyps.jsonl: each stem once (results/ first, then the devices in
    order), in prep (stem) order, written atomically; saved outputs moved into results/outputs/. Returns the
    number of rows."""
    rows, seen = [], set()
    for folder in [output] + _device_folders(output):
        for r in read_hyps(folder, log):
            if r["stem"] not in seen:
                seen.add(r["stem"])
                rows.append(r)
    rank = {r["stem"]: i for i, r in enumerate(prep_rows)}
    rows.sort(key=lambda r: (rank.get(r["stem"], len(rank)), r["stem"]))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path = hyps_path(output)
    current = open(path, encoding="utf-8").read() if os.path.isfile(path) and not os.path.islink(path) else None
    if text != current:
        write_text_atomic(path, text)
    for folder in _device_folders(output):
        _move_outputs(os.path.join(folder, OUTPUTS), os.path.join(output, OUTPUTS))
    return len(rows)


def _move_outputs(source: str, target: str) -> None:
    if not os.path.isdir(source) or os.path.islink(source):
        return
    refuse_symlink(target)
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source)):
        src = os.path.join(source, name)
        if os.path.isfile(src) and not os.path.islink(src):
            dst = os.path.join(target, name)
            refuse_symlink(dst)
            os.replace(src, dst)


# --- the parent ------------------------------------------------------------------------------------------------

class _Worker:
    """One device's worker process, its output relayed line by line with the device's name."""

    def __init__(self, device: int, label: str, share_path: str, out):
        self.device, self.label = device, label
        self.tail = deque(maxlen=RELAYED_LINES)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "ascend_asr.multi_device", "--worker", share_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     env=env, start_new_session=True)  # Ctrl-C reaches the parent, which forwards it
        self._relay = threading.Thread(target=self._relay_lines, args=(out,), daemon=True)
        self._relay.start()

    def _relay_lines(self, out) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.tail.append(line)
            with contextlib.suppress(Exception):
                tqdm.write(f"[{self.label}] {line}", file=out)

    def finish(self) -> int:
        rc = self.proc.wait()
        self._relay.join(timeout=5)
        return rc

def stop_all(workers: list, grace_s: float = 30.0) -> None:
    """SIGTERM to every worker at once (a background job's workers ignore SIGINT; the runner unwinds on
    SIGTERM and keeps what was finished), then one shared deadline; a worker still running then is killed."""
    for w in workers:
        if w.proc.poll() is None:
            with contextlib.suppress(OSError):
                w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def _label(device: int, backend: str) -> str:
    return f"cpu worker {device}" if backend == "onnxruntime" else f"device {device}"


def _lines(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def infer_devices(model: str, prep_dir: str, output: str, devices: list[int] | str, options, out=sys.stdout) -> dict:
    """Run `model` over prep/ on several devices at once into results/ (see the module's doc)."""
    with FolderLock(output, "results"):
        check_not_locked(prep_dir, "prep folder")
        return _infer_devices(model, prep_dir, output, devices, options, out)


def _infer_devices(model, prep_dir, output, devices, options, out) -> dict:
    from .infer import _infer, check_compatible, open_bundles

    wall_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    bundles = open_bundles(model)  # each checked before any worker starts
    bundle = bundles[-1]  # the largest batch size
    prep = open_prep(prep_dir)
    check_compatible(bundle, prep)
    claim(output, {"model": ",".join(b.name for b in bundles),  # as infer claims it: one run, however many devices
                   "onnx_sha256": ",".join(b.manifest["onnx_sha256"] for b in bundles),
                   "prep": os.path.abspath(prep.path), "prep_profile": prep.info["profile"]})
    ids, fallback = resolve_devices(devices, options.backend)
    root = os.path.join(output, DEVICES)
    refuse_symlink(root)
    merge(output, prep.rows, out)  # what an interrupted run's devices finished counts as done
    finished = {r["stem"] for r in read_hyps(output)}
    pending = [r for r in prep.rows if r["stem"] not in finished]
    if not pending:  # nothing left: the summary the finished run wrote stands (no session, no new segment)
        print(f"[ascend-asr] all {len(finished)} utterances are done; nothing to run on the devices", file=out)
        existing = read_summary(output)
        if existing is not None and "multi_device" in existing:
            return existing
        return _infer(model, prep_dir, output, replace(options, device=ids[0]), out)
    if fallback:
        print(f"[ascend-asr] FALLBACK: {fallback}; {len(ids)} worker process(es) run {bundle.name}.onnx on "
              "onnxruntime on the CPU", file=out)
    shares = split_by_frames(pending, ids)
    run_id = uuid.uuid4().hex
    workers, before = [], {}
    for d in ids:
        folder = device_folder(output, d)
        refuse_symlink(folder)
        os.makedirs(folder, exist_ok=True)
        before[d] = len(read_segments(folder))
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, REPORT))
    label = {d: _label(d, options.backend) for d in ids}
    print(f"[ascend-asr] {len(pending)} utterances on {len(ids)} {'workers' if options.backend == 'onnxruntime' else 'devices'}"
          f" ({len(finished)} done before): " + ", ".join(
              f"{label[d]}: {len(shares[d])} utt, {sum(map(row_frames, shares[d]))} frames" for d in ids), file=out)
    failed, interrupted = {}, None
    bar = tqdm(total=len(pending), desc="infer", unit="utt", disable=not options.progress)
    try:
        for d in ids:
            if not shares[d]:
                continue
            folder = device_folder(output, d)
            share = os.path.join(folder, SHARE)
            write_json_atomic(share, {
                "run": run_id, "device": d, "model": ",".join(os.path.abspath(m) for m in model.split(",")),
                "prep": os.path.abspath(prep_dir), "output": os.path.abspath(folder),
                "options": {k: v for k, v in vars(options).items() if k not in ("device", "progress", "stems")},
                "stems": [r["stem"] for r in shares[d]]})
            workers.append(_Worker(d, label[d], share, out))
        counted = {d: _lines(hyps_path(device_folder(output, d))) for d in ids}
        while any(w.proc.poll() is None for w in workers):
            time.sleep(0.25)
            done = sum(_lines(hyps_path(device_folder(output, d))) - counted[d] for d in ids)
            bar.update(max(done - bar.n, 0))
        for w in workers:
            rc = w.finish()
            if rc != 0:
                failed[w.device] = (rc, [line for line in w.tail if line.strip()])
    except BaseException as exc:  # Ctrl-C, SIGTERM, anything: stop the workers, keep what they finished
        interrupted = exc
        stop_all(workers)
    finally:
        bar.close()
        span = time.perf_counter() - wall_start
        reports = _reports(output, ids, run_id, before)
        merge(output, prep.rows, out)
        record = _merged_segment(output, started, reports, options, interrupted is not None or bool(failed))
        record["wall_time_s"] = span
        with contextlib.suppress(Exception) if interrupted else contextlib.nullcontext():
            append_segment(output, record)
    if interrupted is not None:
        raise interrupted
    if failed:
        d, (rc, tail) = next(iter(failed.items()))
        errors = [line for line in tail if "error" in line.lower()] or tail
        others = [str(x) for x in failed if x != d]
        raise BackendError(f"{label[d]} failed (exit {rc}): {errors[-1] if errors else 'no output'}"
                           + (f"; also failed: device {', '.join(others)}" if others else "")
                           + f". What the other devices finished is merged into {hyps_path(output)}; fix the device "
                             "(`npu-smi info`, `ascend-asr doctor`) and rerun to finish its share, or rerun with "
                             "--device naming the devices that work")
    summary = _summary(output, prep, bundle, reports, ids, label, fallback, finished, time.perf_counter() - wall_start)
    write_summary(output, summary)
    for entry in summary["multi_device"]["devices"]:
        rate = entry["end_to_end_utterances_per_s"]
        print(f"[ascend-asr] {entry['label']}: {entry['utterances']} utt, {entry['batches']} batches, "
              f"{'n/a' if rate is None else f'{rate:.1f}'} utt/s ({entry['backend']}, "
              f"fallback={str(entry['fallback']).lower()})", file=out)
    total = summary["multi_device"]["total"]
    print(f"[ascend-asr] total: {total['utterances']} utt on {total['devices']} device(s), "
          f"{total['end_to_end_utterances_per_s'] or 0:.1f} utt/s while the devices ran, "
          f"{total['utterances_per_s'] or 0:.1f} utt/s over the whole run ({total['wall_time_s']:.2f} s)", file=out)
    return summary


def _reports(output: str, ids: list[int], run_id: str, before: dict) -> dict:
    """Per device: this run's segment records (also an interrupted worker's) and its report, when it finished."""
    reports = {}
    for d in ids:
        folder = device_folder(output, d)
        try:
            segments = read_segments(folder)[before[d]:]
        except TensorFileError:
            segments = []
        report = None
        path = os.path.join(folder, REPORT)
        with contextlib.suppress(OSError, ValueError):
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
        if not isinstance(report, dict) or report.get("run") != run_id:
            report = None
        if segments or report:
            reports[d] = {"segments": segments, "report": report}
    return reports


def _merged_segment(output: str, started: str, reports: dict, options, incomplete: bool) -> dict:
    """results/segments.jsonl's record of this run: the devices' segments added up; loop_wall_s is the span
    from the first device's first batch to the last device's last (so utterances / loop_wall_s is the total
    throughput of the devices together)."""
    segments = [s for r in reports.values() for s in r["segments"]]
    spans = [(r["report"]["loop_started_at"], r["report"]["loop_ended_at"]) for r in reports.values() if r["report"]]
    loop_wall = (max(e for _, e in spans) - min(s for s, _ in spans)) if spans else \
        max((s.get("loop_wall_s") or 0 for s in segments), default=0.0)
    backends = sorted({s.get("backend") for s in segments if s.get("backend")})
    return {"segment": len(read_segments(output)) + 1, "started": started, "complete": not incomplete,
            "backend": ",".join(backends) or None, "fallback": any(s.get("fallback") for s in segments),
            "mode": options.mode, "devices": sorted(reports),
            "utterances": sum(s.get("utterances", 0) for s in segments),
            "failed": sum(s.get("failed", 0) for s in segments),
            "audio_seconds": sum(s.get("audio_seconds") or 0 for s in segments), "loop_wall_s": loop_wall,
            "wall_time_s": None, "fed_frames": sum(s.get("fed_frames") or 0 for s in segments),
            "true_frames": sum(s.get("true_frames") or 0 for s in segments),
            "fed_rows": sum(s.get("fed_rows") or 0 for s in segments),
            **{k: [v for s in segments for v in s.get(k, [])] for k in ("compute_ms", "h2d_ms", "d2h_ms")},
            "timings_missing": {k: sum((s.get("timings_missing") or {}).get(k, 0) for s in segments)
                                for k in {k for s in segments for k in (s.get("timings_missing") or {})}},
            "failures": [f for s in segments for f in s.get("failures", [])]}


def _summary(output, prep, bundle, reports, ids, label, fallback, resumed, wall) -> dict:
    """infer's summary (one device's keys, totals over every segment of results/) plus `multi_device`: each
    device's throughput, batches and timing blocks of this run, and the total."""
    from .metrics import score

    results = read_hyps(output)
    segments = read_segments(output)
    batches = sum(len(s.get("compute_ms") or []) for s in segments)
    rows = sum(s.get("fed_rows") or 0 for s in segments)
    # rows per batch as fed (several bundles: a mix of batch sizes), else the bundle's batch size
    batch_size = rows / batches if rows and batches else bundle.batch_size
    totals = segment_totals(segments, results, batch_size)
    base = next((r["report"]["summary"] for r in reports.values() if r["report"]), {})
    devices = []
    for d in ids:
        if d not in reports:
            continue
        segs = reports[d]["segments"]
        t = segment_totals(segs, [], batch_size)
        last = segs[-1] if segs else {}
        devices.append({"device": d, "label": label[d], "backend": last.get("backend"),
                        "fallback": bool(last.get("fallback")), "mode": last.get("mode"),
                        "utterances": sum(s.get("utterances", 0) for s in segs),
                        "failed": sum(s.get("failed", 0) for s in segs),
                        "loop_wall_s": sum(s.get("loop_wall_s") or 0 for s in segs),
                        "wall_time_s": sum(s.get("wall_time_s") or 0 for s in segs),
                        **{k: t[k] for k in DEVICE_KEYS}})
    this_run = sum(e["utterances"] for e in devices)
    record = read_segments(output)[-1]
    backends = sorted({e["backend"] for e in devices if e["backend"]})
    total = {"devices": len(devices), "utterances": this_run, "batches": sum(e["batches"] for e in devices),
             "wall_time_s": wall, "utterances_per_s": this_run / wall if wall else None,
             "device_span_s": record["loop_wall_s"],
             "end_to_end_utterances_per_s": this_run / record["loop_wall_s"] if record["loop_wall_s"] else None,
             "sum_of_device_utterances_per_s": sum(e["end_to_end_utterances_per_s"] or 0 for e in devices)}
    if len(backends) > 1:
        print(f"[ascend-asr] WARNING: the devices ran on different backends ({', '.join(backends)}); see "
              f"{os.path.join(output, SUMMARY)} (multi_device.devices)", file=sys.stderr)
    metrics = score((r["ref"], r["hyp"]) for r in results).to_dict()
    return {
        **{k: base.get(k) for k in ("model", "mode", "batch_size", "decoder", "decoding", "compiled_shapes")},
        **({"batch_sizes": base["batch_sizes"]} if base.get("batch_sizes") else {}),
        "model": base.get("model", bundle.name), "batch_size": base.get("batch_size", batch_size),
        "backend": ",".join(backends) or None, "fallback": bool(fallback) or any(e["fallback"] for e in devices),
        "device": None, "devices": ids,
        **{k: v for k, v in totals.items() if k not in ("failures", "segments")},
        "utterances": {"total": len(prep.rows) + prep.info.get("failed", 0), "scored": len(results),
                       "this_run": this_run, "resumed": len(resumed), "failed": len(totals["failures"]),
                       "failed_in_preprocess": prep.info.get("failed", 0), "segments": len(totals["segments"])},
        "failures": totals["failures"], "segments": totals["segments"],
        **{k: v for k, v in metrics.items() if k != "utterances"},
        "error_rate": base.get("error_rate", bundle.vocabulary.error_rate_name),
        "multi_device": {"devices": devices, "total": total},
    }


# --- the worker ------------------------------------------------------------------------------------------------

def worker(share_path: str) -> int:
    """One device's share: infer into its folder, then a report the parent reads."""
    from .infer import InferOptions, infer

    watch_parent(os.getppid())  # stops as on SIGTERM (keeping what it finished) if the parent dies
    with open(share_path, encoding="utf-8") as f:
        share = json.load(f)
    options = InferOptions(**share["options"], device=share["device"], progress=False, stems=tuple(share["stems"]))
    summary = infer(share["model"], share["prep"], share["output"], options)
    ended = time.time()
    segment = read_segments(share["output"])[-1]
    # the loop ended just before infer's summary work (reading hyps back, scoring): a small tail, taken as none
    write_json_atomic(os.path.join(share["output"], REPORT), {
        "run": share["run"], "device": share["device"], "loop_ended_at": ended,
        "loop_started_at": ended - segment["loop_wall_s"],
        "summary": {k: summary.get(k) for k in ("model", "backend", "fallback", "mode", "batch_size", "decoder", "decoding",
                                                "compiled_shapes", "error_rate")}})
    return 0


# --- the benchmark ---------------------------------------------------------------------------------------------

def replicate_prep(source: str, target: str, times: int) -> str:
    """A prep/ holding every utterance of `source` `times` times (ids `<id>#<k>`, bins hard-linked where the file
    system allows): enough batches to measure devices against one another."""
    prep = open_prep(source)
    os.makedirs(target, exist_ok=False)
    info = {k: v for k, v in prep.info.items() if k != "input_dirs"}  # every bin is copied into the new folder
    for spec in prep.inputs:
        os.makedirs(input_dir(target, spec), exist_ok=True)
    rows = []
    for k in range(times):
        for r in prep.rows:
            stem = stem_of(len(rows))
            for spec in prep.inputs:
                src, dst = bin_path(source, spec, r["stem"], prep.info.get("input_dirs")), bin_path(target, spec, stem)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            rows.append(dict(r, stem=stem, id=f"{r['id']}#{k}"))
    write_text_atomic(os.path.join(target, META), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_info_file(os.path.join(target, f"{prep.info['profile']}.info"), target, prep.inputs, rows)
    write_json_atomic(os.path.join(target, PREP_JSON), dict(info, utterances=len(rows), failed=0, audio_seconds=sum(
        r.get("duration") or 0 for r in rows), replicated={
        "from": os.path.abspath(source), "times": times}))
    return target


def bench(model: str, prep_dir: str, counts: list[int], repeat: int, options, work: str | None, out=sys.stdout) -> dict:
    """Each device count on the same prep/ (its utterances `repeat` times), into fresh results/: utterances per
    second, and whether every utterance's hypothesis is the same as on one device."""
    work = work or tempfile.mkdtemp(prefix="ascend-asr-devices-")
    prep = replicate_prep(prep_dir, os.path.join(work, "prep"), repeat) if repeat > 1 else prep_dir
    rows, hyps = [], {}
    for n in counts:
        results = os.path.join(work, f"results_{n}")
        summary = infer_devices(model, prep, results, list(range(n)), replace(options, progress=False),
                                out=open(os.devnull, "w"))
        total = summary["multi_device"]["total"]
        hyps[n] = {r["id"]: r["hyp"] for r in read_jsonl(hyps_path(results))}
        rows.append({"devices": n, "utterances": total["utterances"], "batches": total["batches"],
                     "device_span_s": total["device_span_s"], "wall_time_s": total["wall_time_s"],
                     "utt_per_s_devices": total["end_to_end_utterances_per_s"],
                     "utt_per_s_wall": total["utterances_per_s"], "backend": summary["backend"],
                     "fallback": summary["fallback"]})
    first = rows[0]
    print(f"{'devices':>7} {'utt':>6} {'batches':>7} {'span s':>7} {'wall s':>7} {'utt/s':>8} {'ratio':>6} "
          f"{'utt/s wall':>10} {'ratio':>6}  identical", file=out)
    for r in rows:
        r["ratio"] = r["utt_per_s_devices"] / first["utt_per_s_devices"]
        r["ratio_wall"] = r["utt_per_s_wall"] / first["utt_per_s_wall"]
        r["identical"] = hyps[r["devices"]] == hyps[first["devices"]]
        print(f"{r['devices']:>7} {r['utterances']:>6} {r['batches']:>7} {r['device_span_s']:>7.2f} "
              f"{r['wall_time_s']:>7.2f} {r['utt_per_s_devices']:>8.1f} {r['ratio']:>6.2f} {r['utt_per_s_wall']:>10.1f} "
              f"{r['ratio_wall']:>6.2f}  {r['identical']}", file=out)
    print(f"backend {first['backend']}, fallback={str(first['fallback']).lower()}; utt/s: utterances over the span from "
          "the first device's first batch to the last device's last; utt/s wall: over the whole run, worker start-up "
          f"included; work folder {work}", file=out)
    return {"rows": rows, "work": work}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.multi_device",
                                description="Measure infer on 1, 2, 4 ... devices (one worker process each)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--bench", action="store_true", help="run the measurement (the only mode for users)")
    p.add_argument("--model", help="bundle file: NAME.om, NAME.onnx or NAME.json")
    p.add_argument("--input", help="prep/ folder written by preprocess")
    p.add_argument("--devices", default="1,2,4", help="device counts to compare (default 1,2,4)")
    p.add_argument("--repeat", type=int, default=20, help="use each prep/ utterance this many times (default 20)")
    p.add_argument("--backend", default="auto", choices=("auto", "acl", "ais_bench", "onnxruntime"))
    p.add_argument("--mode", default="async", choices=("async", "sync"))
    p.add_argument("--work", help="folder for the replicated prep/ and each run's results/ (default: a new temp dir)")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if not (args.bench and args.model and args.input):
        p.error("give --bench --model M --input PREP")
    from .infer import InferOptions

    counts = [int(c) for c in args.devices.split(",")]
    bench(args.model, args.input, counts, args.repeat, InferOptions(backend=args.backend, mode=args.mode), args.work)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
