"""Bundles: NAME.onnx (the graph handed to ATC) + NAME.json (its manifest) [+ NAME.om]."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import onnx

from .atc import atc_command, command_line
from .errors import BackendError, ProfileError
from .frontends import build_frontend, frontend_spec
from .profiles import BATCH, FRAMES, Profile, TensorSpec, load_profile
from .tensor_files import atomic_path, read_format_json, write_json_atomic
from .text import Vocabulary

BUNDLE_FORMAT = "ascend-asr-bundle/1"


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A converted model as the runtime sees it, read back from NAME.json."""

    name: str
    directory: str
    manifest: dict

    @property
    def onnx_path(self) -> str:
        return os.path.join(self.directory, self.name + ".onnx")

    @property
    def om_path(self) -> str:
        return os.path.join(self.directory, self.name + ".om")

    @property
    def batch_size(self) -> int:
        return int(self.manifest["batch_size"])

    @property
    def frames(self) -> tuple[int, ...]:
        return tuple(self.manifest["frames"])

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), t["role"]) for t in self.manifest["inputs"])

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), t["role"]) for t in self.manifest["outputs"])

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(tuple(self.manifest["vocabulary"]["labels"]), int(self.manifest["vocabulary"]["blank"]))

    def input(self, role: str) -> TensorSpec:
        return next(t for t in self.inputs if t.role == role)

    def output(self, role: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.role == role), None)


def open_bundle(model_path: str) -> Bundle:
    """The bundle of NAME.om, NAME.onnx or NAME.json (the manifest must sit beside it)."""
    directory, filename = os.path.split(os.path.abspath(model_path))
    name, ext = os.path.splitext(filename)
    if ext not in (".om", ".onnx", ".json"):
        raise BackendError(f"{model_path}: expected a .om, .onnx or .json bundle file")
    manifest = read_format_json(os.path.join(directory, name + ".json"), BUNDLE_FORMAT, BackendError,
                                "bundle manifest", "ascend-asr convert --profile PROFILE --onnx MODEL.onnx "
                                "--output-dir DIR")
    return Bundle(name, directory, manifest)


def static_graph(model: onnx.ModelProto, profile: Profile, batch: int) -> onnx.ModelProto:
    """Fix every input axis the profile fixes for this batch size; a multi-gear frames axis stays symbolic."""
    static = onnx.ModelProto()
    static.CopyFrom(model)
    single_gear = profile.frames[0] if len(profile.frames) == 1 else None
    by_name = {v.name: v for v in static.graph.input}
    for spec in profile.inputs:
        dims = by_name[spec.name].type.tensor_type.shape.dim
        for dim, value in zip(dims, spec.shape):
            if value == FRAMES and single_gear is None:
                dim.ClearField("dim_value")
                dim.dim_param = FRAMES
            else:
                concrete = batch if value == BATCH else single_gear if value == FRAMES else value
                dim.ClearField("dim_param")
                dim.dim_value = concrete
    for out in static.graph.output:
        spec = next((s for s in profile.outputs if s.name == out.name), None)
        if spec is not None and BATCH in spec.shape:
            out.type.tensor_type.shape.dim[spec.shape.index(BATCH)].dim_value = batch
    return onnx.shape_inference.infer_shapes(static)


def convert(profile: Profile | str, onnx_path: str, output_dir: str, name: str | None = None,
            batch_sizes=None, soc_version: str | None = None) -> list[Bundle]:
    """Write one bundle per batch size: NAME_bs{B}.onnx and NAME_bs{B}.json."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    if not os.path.isfile(onnx_path):
        raise ProfileError(f"{onnx_path}: ONNX model not found; export it first (`ascend-asr export`)")
    model = onnx.load(onnx_path)
    profile.validate_onnx(model, onnx_path)
    source_hash = sha256(onnx_path)
    name = name or profile.name
    bundles = []
    for batch in batch_sizes or profile.batch_sizes:
        bundle_name = f"{name}_bs{batch}"
        graph = static_graph(model, profile, batch)
        out_onnx = os.path.join(output_dir, bundle_name + ".onnx")
        with atomic_path(out_onnx) as tmp:
            onnx.save(graph, tmp)
            onnx.checker.check_model(tmp)
        cmd = atc_command(profile, os.path.basename(out_onnx), bundle_name, batch, soc_version, graph)
        gears = len(profile.frames) > 1
        manifest = {
            "format": BUNDLE_FORMAT,
            "name": bundle_name,
            "profile": profile.name,
            "family": profile.family,
            "model_config": profile.model_config,
            "batch_size": batch,
            "frames": list(profile.frames),
            "shapes": [{"batch": batch, "frames": f} for f in profile.frames],
            "gear_mode": "dymdims" if gears else "static",
            "inputs": [t.to_dict() for t in profile.inputs],
            "outputs": [t.to_dict() for t in profile.outputs],
            "vocabulary": profile.vocabulary.to_spec(),
            "frontend": frontend_spec(build_frontend(profile.frontend)),
            "source_model": {"path": os.path.abspath(onnx_path), "sha256": source_hash},
            "onnx_sha256": sha256(out_onnx),
            "atc_command": cmd,
            "atc_command_line": command_line(cmd),
            "atc_run_from": "this bundle's folder (the command's paths are relative to it)",
        }
        write_json_atomic(os.path.join(output_dir, bundle_name + ".json"), manifest)
        bundles.append(Bundle(bundle_name, os.path.abspath(output_dir), manifest))
    return bundles
