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


_ONNX_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime_ns) -> sha256, for this process


def check_onnx(bundle: Bundle) -> None:
    """The .onnx must be the graph the manifest describes (its size and SHA-256 at conversion), not one
    modified or replaced since: onnxruntime would run it without complaint. The digest is cached per
    (path, size, modification time) within the process, so a second session on one bundle costs nothing."""
    path, fix = bundle.onnx_path, ("run `ascend-asr convert` again so that the ONNX and its manifest come from one "
                                   "conversion (or restore the bundle's original .onnx)")
    expected = bundle.manifest.get("onnx_sha256")
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise BackendError(f"{path}: the bundle's ONNX cannot be read ({exc.strerror}); {fix}") from exc
    size = bundle.manifest.get("onnx_size")
    if size is not None and stat.st_size != size:
        raise BackendError(f"{path} is {stat.st_size} bytes, but {bundle.name}.json describes a {size}-byte ONNX "
                           f"(modified or replaced since the conversion); {fix}")
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    digest = _ONNX_DIGESTS.get(key)
    if digest is None:
        try:
            digest = sha256(path)
        except OSError as exc:
            raise BackendError(f"{path}: the bundle's ONNX cannot be read ({exc.strerror}); {fix}") from exc
        _ONNX_DIGESTS[key] = digest
    if digest != expected:
        raise BackendError(f"{path} has SHA-256 {digest[:16]}..., but {bundle.name}.json records "
                           f"{str(expected)[:16]}... (modified or replaced since the conversion); {fix}")


def check_session_shapes(bundle: Bundle, session) -> None:
    """Every dimension the loaded graph fixes agrees with the manifest's tensors at its batch size (a manifest
    edited after conversion, e.g. its vocabulary and class count, is refused before any audio is decoded)."""
    declared = {t.name: t for t in (*bundle.inputs, *bundle.outputs)}
    for kind, wanted, found in (("inputs", bundle.inputs, session.input_names()),
                                ("outputs", bundle.outputs, session.output_names())):
        missing = [t.name for t in wanted if t.name not in found]
        if missing:
            raise BackendError(f"{bundle.name}.json names {kind} {missing}, but {bundle.onnx_path} has {found}; "
                               "the manifest was edited or belongs to another model: run `ascend-asr convert` again")
    for name, shape in session.declared_shapes().items():
        spec = declared.get(name)
        if spec is None or shape is None:
            continue
        want = spec.concrete(bundle.batch_size)
        if len(want) != len(shape) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                           for a, b in zip(want, shape)):
            raise BackendError(f"{bundle.onnx_path}: tensor {name} has shape {list(shape)}, but "
                               f"{bundle.name}.json declares {list(spec.shape)} (batch {bundle.batch_size}); "
                               "the manifest was edited or belongs to another model: run `ascend-asr convert` again")


def _open_onnxruntime(bundle: Bundle, fallback: bool = False, threads: int = 0, opt_level: str = "all") -> Session:
    check_onnx(bundle)
    session = OnnxRuntimeSession(bundle.onnx_path, fallback=fallback, threads=threads, opt_level=opt_level)
    try:
        check_session_shapes(bundle, session)
    except BaseException:
        session.close()
        raise
    return session


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
                 out=sys.stdout, ort_threads: int = 0, ort_opt_level: str = "all") -> Session:
    """Open `bundle` on `backend`; `auto` falls back to onnxruntime on the CPU and says so. `ort_threads` and
    `ort_opt_level` configure an onnxruntime session (requested or fallback): intra-op threads (0: every core)
    and graph optimisation level (onnxruntime_backend.OPT_LEVELS)."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if mode not in MODES:
        raise BackendError(f"unknown mode {mode!r}; choose one of {MODES}")
    if backend == "onnxruntime":
        session = _open_onnxruntime(bundle, threads=ort_threads, opt_level=ort_opt_level)
        print(f"[ascend-asr] backend: {session.name} (requested), model {bundle.onnx_path}", file=out)
        return session
    if backend == "acl":
        session = _open_acl(bundle, device, mode)
    elif backend == "ais_bench":
        session = _open_ais_bench(bundle, device)
    else:
        session, reason = _auto(bundle, device, mode)
        if session is None:
            session = _open_onnxruntime(bundle, fallback=True, threads=ort_threads, opt_level=ort_opt_level)
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
    "check_om",
    "check_onnx",
    "open_session",
    "run_pipelined",
]
