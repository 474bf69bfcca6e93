"""ATC: command lines built from a profile, the chip to build for, and running `atc`."""
from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING

from .errors import AtcError
from .profiles import BATCH, FRAMES, Profile

if TYPE_CHECKING:  # annotations only: onnx is needed to convert, never to infer
    import onnx

DEFAULT_SOC_VERSION = "Ascend310P3"


def input_shape_arg(profile: Profile, batch: int, frames: int | None) -> str:
    """'feats:1,64,4000;feat_lens:1'; with frames=None the frames axis is -1 (a gear axis)."""
    parts = []
    for spec in profile.inputs:
        dims = [batch if d == BATCH else (-1 if frames is None else frames) if d == FRAMES else d
                for d in spec.shape]
        parts.append(f"{spec.name}:{','.join(str(d) for d in dims)}")
    return ";".join(parts)


def dynamic_dims_arg(profile: Profile) -> str:
    """One gear per frame count; each gear gives a value for every -1 in --input_shape, in order."""
    per_gear = sum(spec.shape.count(FRAMES) for spec in profile.inputs)
    return ";".join(",".join([str(f)] * per_gear) for f in profile.frames)


def out_nodes_arg(model: onnx.ModelProto, output_names) -> str | None:
    """'prob;label': --out_nodes in its output-name form, or None where that form cannot name them.

    Why this form: for ONNX, ATC names the OM's outputs "<op>:<idx>:<tensor>" without --out_nodes or
    with the output-name form, but only "<op>:<idx>" with the node form ("node:0;node2:1"), the op
    possibly a fused name, so the OM no longer says which tensor each output is. The output-name form
    keeps the tensor names *and* pins the outputs and their order to the profile's (without
    --out_nodes the order is ATC's, and the OM also carries every other graph output), so the
    manifest's output order is the OM's and a runtime can still match by position if it must.
    It needs CANN >= 6.0.1 (reference, Corrections). A name holding ':' or ';' would read as the node
    form or as two names: then no --out_nodes at all (the names are matched by tensor, in any order).
    """
    graph_outputs = [o.name for o in model.graph.output]
    names = list(output_names)
    unknown = [n for n in names if n not in graph_outputs]
    if unknown:
        raise AtcError(f"outputs {unknown} are not outputs of the ONNX graph (its outputs: {graph_outputs}); "
                       "fix the profile's output names or export again")
    if not names or any(":" in n or ";" in n or not n.strip() for n in names):
        return None
    return ";".join(names)


def atc_command(profile: Profile, onnx_path: str, output_base: str, batch: int,
                soc_version: str | None = None, model: onnx.ModelProto | None = None) -> list[str]:
    """The ModelZoo command (framework 5, ND, static --input_shape) plus our additions."""
    gears = len(profile.frames) > 1
    options = profile.atc
    cmd = ["atc", "--framework=5", f"--model={onnx_path}", f"--output={output_base}",
           f"--input_format={options.get('input_format', 'ND')}",
           f"--input_shape={input_shape_arg(profile, batch, None if gears else profile.frames[0])}"]
    if gears:
        cmd.append(f"--dynamic_dims={dynamic_dims_arg(profile)}")
    cmd.append(f"--soc_version={soc_version or DEFAULT_SOC_VERSION}")
    for key in ("precision_mode", "op_select_implmode"):
        if options.get(key):
            cmd.append(f"--{key}={options[key]}")
    if model is not None:
        out_nodes = out_nodes_arg(model, [o.name for o in profile.outputs])
        if out_nodes:  # the output-name form only, never "node:0" (see out_nodes_arg)
            cmd.append(f"--out_nodes={out_nodes}")
    cmd.append(f"--log={options.get('log', 'error')}")
    return cmd


# what `ascend-asr optimize` writes for the CPU path only: never a graph for ATC, which gets the fp32 graph and a
# --precision_mode (ATC quantises and lowers precision itself, from the fp32 weights)
_QUANTISED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger",
                  "QLinearConv", "QLinearMatMul", "DynamicQuantizeLSTM")
_LOW_PRECISION = {3: "int8", 2: "uint8", 10: "float16"}  # onnx.TensorProto element types
CPU_ONLY_DOMAINS = ("com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc")
CPU_ONLY_MARK = "ascend_asr.cpu_only"  # metadata optimize leaves in every model that is not for ATC: its kind


def atc_graph_problem(model: onnx.ModelProto) -> str | None:
    """Why `model` must not be handed to ATC (None when it may): onnxruntime's own operators (Microsoft
    domains, from `optimize`'s ort-opt step), quantised (QDQ / int8) nodes, or int8/fp16 weights."""
    custom = sorted({n.domain for n in model.graph.node if n.domain in CPU_ONLY_DOMAINS})
    if custom:
        ops = sorted({n.op_type for n in model.graph.node if n.domain in CPU_ONLY_DOMAINS})
        return (f"it holds onnxruntime-only operators of domain {', '.join(custom)} ({', '.join(ops[:6])}), which "
                "ATC does not know (an `ascend-asr optimize` ort-opt model is for the CPU path only)")
    quantised = sorted({n.op_type for n in model.graph.node if n.op_type in _QUANTISED_OPS})
    if quantised:
        return (f"it is quantised ({', '.join(quantised)} nodes): an int8 model is for the CPU path only; ATC "
                "takes the fp32 graph and lowers precision itself (the profile's precision_mode)")
    low = sorted({_LOW_PRECISION[t.data_type] for t in model.graph.initializer if t.data_type in _LOW_PRECISION})
    if low:
        return (f"its weights are {'/'.join(low)}: `ascend-asr optimize` fp16/int8 models are simulations and CPU "
                "models; ATC takes the fp32 graph and the profile's precision_mode")
    mark = next((p.value for p in model.metadata_props if p.key == CPU_ONLY_MARK), None)
    if mark:
        return (f"`ascend-asr optimize` marked it as a CPU-only {mark} model (an fp16 simulation predicts what ATC's "
                "precision_mode costs; ATC applies that mode itself to the fp32 graph)")
    return None


def check_atc_graph(model: onnx.ModelProto, onnx_path: str) -> None:
    """AtcError when `model` is not an fp32 graph ATC can take (atc_graph_problem)."""
    problem = atc_graph_problem(model)
    if problem:
        raise AtcError(f"{onnx_path}: not a graph for ATC: {problem}; convert the fp32 model instead (the exported "
                       "NAME.onnx, or optimize's gated NAME.simplified.onnx) and set the precision with the "
                       "profile's precision.atc_precision_mode (optimize --write-profile records it)")


def command_line(cmd: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in cmd)


# -- running ATC -------------------------------------------------------------------------------
LOG_TAIL_LINES = 40
_NPU_SMI_CHIP = re.compile(r"\b(310P\d|310B\d|310|910B\d|910_\w+|910[A-Z]?)\b")


def find_atc(atc: str | None = None) -> str | None:
    """The atc executable: the one given, else the one on PATH (after `source env.sh`). A given path that exists
    but cannot be run is an AtcError saying so (not "not found")."""
    if atc and os.sep in atc and os.path.exists(atc):
        if os.path.isdir(atc):
            raise AtcError(f"--atc {atc}: a folder, not the atc executable; give the path of atc itself "
                           "(e.g. $ASCEND_TOOLKIT_HOME/bin/atc)")
        if not os.access(atc, os.X_OK):
            raise AtcError(f"--atc {atc}: exists but is not executable; give the CANN toolkit's atc "
                           f"(e.g. $ASCEND_TOOLKIT_HOME/bin/atc), or `chmod +x {atc}` if it is one")
    return shutil.which(atc or "atc")


def detect_soc_version() -> str | None:
    """'Ascend310P3' from pyACL's acl.get_soc_name(), else from `npu-smi info`; None without a device."""
    from .backends.acl_backend import (  # lazily: pyACL exists only after env.sh
        import_acl,
        init_acl,
    )
    from .errors import BackendError

    try:
        acl = import_acl()
        init_acl(acl)
        name = acl.get_soc_name()
        if name:
            return str(name)
    except BackendError:
        pass  # no pyACL here
    except Exception:  # noqa: BLE001 - an older or broken pyACL must not stop a conversion; npu-smi may know
        pass
    smi = shutil.which("npu-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "info"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = _NPU_SMI_CHIP.search(proc.stdout) if proc.returncode == 0 else None
        if match:
            return "Ascend" + match.group(1)
    return None


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def run_atc(cmd: list[str], workdir: str, log_path: str, atc: str, failed_log_path: str | None = None) -> str:
    """Run an ATC command in `workdir`, its output saved to `log_path`; returns the produced .om.

    Newer CANN names the file <output>_<os>_<arch>.om, so it is found by glob and renamed to
    <output>.om. A failure moves the log to `failed_log_path` (if given) and raises with its last lines.
    """
    output = next(part.split("=", 1)[1] for part in cmd if part.startswith("--output="))
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"$ {command_line(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run([atc, *cmd[1:]], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise AtcError(f"cannot run {atc}: {exc}") from exc
    produced = sorted(glob.glob(os.path.join(workdir, glob.escape(output) + "*.om")))
    if proc.returncode != 0 or len(produced) != 1:
        if failed_log_path:
            os.replace(log_path, failed_log_path)
            log_path = failed_log_path
        if proc.returncode != 0:
            raise AtcError(f"ATC failed (exit status {proc.returncode}) for {output}; the last {LOG_TAIL_LINES} "
                           f"lines of {log_path}:\n{log_tail(log_path)}")
        raise AtcError(f"ATC reported success but {len(produced)} files match {output}*.om "
                       f"({[os.path.basename(p) for p in produced]}); see {log_path}")
    om = os.path.join(workdir, output + ".om")
    if produced[0] != om:
        os.replace(produced[0], om)
    os.chmod(om, os.stat(om).st_mode & ~0o022)  # ais_bench refuses group/other-writable models
    return om
