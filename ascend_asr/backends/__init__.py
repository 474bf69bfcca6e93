"""Runtime backends and the choice between them; a CPU fallback is always announced.

`auto` takes pyACL when `acl` imports and the device answers, else ais_bench when it imports and
opens the model on the device, else onnxruntime on the bundle's ONNX, with a FALLBACK line.
"""
from __future__ import annotations

import importlib.util
import os
import sys

from ..bundle import Bundle, sha256
from ..errors import BackendError
from .base import Done, Pending, Session, Timings, run_pipelined
from .onnxruntime_backend import OnnxRuntimeSession

BACKENDS = ("auto", "acl", "ais_bench", "onnxruntime")
MODES = ("async", "sync")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken module
        return False


def bundle_gears(bundle: Bundle) -> list[dict[str, tuple]]:
    """Each compiled shape as {input name: shape}."""
    return [{t.name: t.concrete(s["batch"], s["frames"]) for t in bundle.inputs} for s in bundle.manifest["shapes"]]


def check_om(bundle: Bundle) -> None:
    """The .om must be the one the manifest describes, not a leftover of another conversion."""
    om = bundle.manifest.get("om")
    if not os.path.isfile(bundle.om_path):
        raise BackendError(f"{bundle.om_path} not found: convert on a host with CANN (`source env.sh`, so that atc "
                           "is on PATH): `ascend-asr convert` then builds the OM with the manifest's ATC command")
    if not om or os.path.getsize(bundle.om_path) != om["size"] or sha256(bundle.om_path) != om["sha256"]:
        raise BackendError(f"{bundle.om_path} is not the OM described by {bundle.name}.json (converted without ATC, "
                           "or rebuilt since); run `ascend-asr convert` again so that both come from one conversion")


def _open_acl(bundle: Bundle, device: int, mode: str) -> Session:
    from .acl_backend import AclSession

    check_om(bundle)
    return AclSession(bundle.om_path, device, mode, input_names=[t.name for t in bundle.inputs],
                      output_names=[t.name for t in bundle.outputs])


def _open_ais_bench(bundle: Bundle, device: int) -> Session:
    from .ais_bench_backend import AisBenchSession

    check_om(bundle)
    return AisBenchSession(bundle.om_path, device, bundle_gears(bundle) if bundle.manifest["gear_mode"] != "static"
                           else None, [t.name for t in bundle.inputs], [t.name for t in bundle.outputs])


def _acl_device_answers(device: int) -> str | None:
    """None when pyACL sees `device`; else why not."""
    from .acl_backend import device_count, import_acl

    try:
        count = device_count(import_acl())
    except BackendError as exc:
        return f"pyACL is importable but not usable ({exc})"
    return None if device < count else f"pyACL sees {count} device(s), so device {device} does not answer"


def _auto(bundle: Bundle, device: int, mode: str) -> tuple[Session | None, str]:
    """An NPU session, or None and the reason none can be used."""
    have_acl, have_ais = _importable("acl"), _importable("ais_bench")
    if not (have_acl or have_ais):
        from ..doctor import cann_hint  # where env.sh looked for CANN (or would look), and the fix

        return None, f"no NPU runtime: neither the 'acl' nor the 'ais_bench' Python module is importable; {cann_hint()}"
    if not os.path.isfile(bundle.om_path):
        return None, (f"an NPU runtime is importable but {bundle.om_path} does not exist (convert on a host "
                      "with CANN, or run the ATC command in the bundle's manifest)")
    reasons = []
    if have_acl:
        why_not = _acl_device_answers(device)
        if why_not is None:
            try:
                return _open_acl(bundle, device, mode), ""
            except BackendError as exc:
                reasons.append(f"pyACL could not open the model ({exc})")
        else:
            reasons.append(why_not)
    if have_ais:
        try:
            return _open_ais_bench(bundle, device), ""
        except BackendError as exc:
            reasons.append(f"ais_bench could not open the model ({exc})")
    return None, "; ".join(reasons)


def open_session(bundle: Bundle, backend: str = "auto", device: int = 0, mode: str = "async",
                 out=sys.stdout) -> Session:
    """Open `bundle` on `backend`; `auto` falls back to onnxruntime on the CPU and says so."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if mode not in MODES:
        raise BackendError(f"unknown mode {mode!r}; choose one of {MODES}")
    if backend == "onnxruntime":
        session = OnnxRuntimeSession(bundle.onnx_path)
        print(f"[ascend-asr] backend: {session.name} (requested), model {bundle.onnx_path}", file=out)
        return session
    if backend == "acl":
        session = _open_acl(bundle, device, mode)
    elif backend == "ais_bench":
        session = _open_ais_bench(bundle, device)
    else:
        session, reason = _auto(bundle, device, mode)
        if session is None:
            session = OnnxRuntimeSession(bundle.onnx_path, fallback=True)
            print(f"[ascend-asr] FALLBACK: {reason}; running {bundle.name}.onnx on {session.name} "
                  f"instead of {bundle.name}.om", file=out)
            return session
    print(f"[ascend-asr] backend: {session.name} ({session.mode}) on device {device}, model {bundle.om_path}",
          file=out)
    return session


__all__ = [
    "BACKENDS",
    "MODES",
    "Done",
    "OnnxRuntimeSession",
    "Pending",
    "Session",
    "Timings",
    "bundle_gears",
    "open_session",
    "run_pipelined",
]
