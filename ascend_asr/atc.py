"""ATC command lines built from a profile (running ATC comes with the NPU path)."""
from __future__ import annotations

import shlex

import onnx

from .profiles import BATCH, FRAMES, Profile

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


def out_nodes_arg(model: onnx.ModelProto, output_names) -> str:
    """'node:index;...' for the nodes producing each output: pins the OM's output order."""
    producers = {}
    for node in model.graph.node:
        for index, name in enumerate(node.output):
            producers[name] = f"{node.name}:{index}"
    return ";".join(producers[name] for name in output_names if name in producers)


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
    cmd.append(f"--soc_version={soc_version or options.get('soc_version') or DEFAULT_SOC_VERSION}")
    for key in ("precision_mode", "op_select_implmode"):
        if options.get(key):
            cmd.append(f"--{key}={options[key]}")
    if model is not None:
        nodes = out_nodes_arg(model, [o.name for o in profile.outputs])
        if nodes:
            cmd.append(f"--out_nodes={nodes}")
    cmd.append(f"--log={options.get('log', 'error')}")
    return cmd


def command_line(cmd: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in cmd)
