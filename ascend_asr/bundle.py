"""Bundles: NAME.onnx (the graph handed to ATC) + NAME.json (its manifest) [+ NAME.om]."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .atc import (
    DEFAULT_SOC_VERSION,
    atc_command,
    check_atc_graph,
    command_line,
    detect_soc_version,
    find_atc,
    run_atc,
)
from .errors import AscendAsrError, AtcError, BackendError, OptionError, ProfileError
from .frontends import build_frontend, frontend_spec
from .profiles import BATCH, FRAMES, Profile, TensorSpec, check_batch_sizes, class_count, load_profile
from .tensor_files import read_format_json, write_json_atomic
from .text import Vocabulary

if TYPE_CHECKING:  # onnx is imported only where a bundle is made (static_graph, convert): infer needs
    import onnx  # neither onnx nor torch, so the base install has neither

BUNDLE_FORMAT = "ascend-asr-bundle/1"


def import_onnx():
    """onnx, which only making a bundle needs (the `export` extra)."""
    try:
        import onnx
    except ImportError as exc:
        raise AscendAsrError("converting to a bundle needs the onnx package, which the base install leaves out: "
                             "pip install 'ascend-asr[export]' (inference on an existing bundle needs no onnx)") from exc
    return onnx


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
        spec = self.manifest["vocabulary"]
        return Vocabulary(tuple(spec["labels"]), int(spec["blank"]), spec.get("separator", ""))

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.directory, self.name + ".json")

    def input(self, role: str) -> TensorSpec:
        return next(t for t in self.inputs if t.role == role)

    def output(self, role: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.role == role), None)

    def check(self) -> None:
        """The manifest agrees with itself before any work starts: its batch size is one the runtime can take
        and the one its compiled shapes use, and its vocabulary has one label per class of the scores output
        (a shorter one fails while decoding, a longer one decodes to the wrong labels)."""
        where, fix = self.manifest_path, ("convert again (`ascend-asr convert --profile PROFILE --onnx MODEL.onnx "
                                          "--output-dir DIR`) rather than editing a bundle's manifest")
        try:
            batch = self.manifest["batch_size"]
            check_batch_sizes([batch], f"{where}: batch_size", fix)
            shapes = {int(s["batch"]) for s in self.manifest["shapes"]}
            vocab, scores = self.vocabulary, self.output("log_probs") or self.output("probs")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackendError(f"{where}: malformed bundle manifest ({type(exc).__name__}: {exc}); {fix}") from exc
        except ProfileError as exc:
            raise BackendError(f"{where}: {exc}; {fix}") from exc
        if shapes != {batch}:
            raise BackendError(f"{where}: batch_size {batch}, but its compiled shapes have batch {sorted(shapes)}; "
                               f"{fix}")
        if scores is None:
            raise BackendError(f"{where}: no 'log_probs' or 'probs' output among {[t.name for t in self.outputs]}; "
                               f"{fix}")
        classes = class_count(scores)
        if classes is not None and classes != vocab.size:
            raise BackendError(f"{where}: the vocabulary has {vocab.size} labels (blank included), but output "
                               f"{scores.name} has {classes} classes (shape {list(scores.shape)}); decoding would "
                               f"fail or pick the wrong labels: {fix}, with the model's own vocabulary in the profile")

    def output_frames(self, frames: int) -> int:
        """Valid output frames for `frames` valid input frames, when the model does not output them."""
        from .decoding import output_frames

        return output_frames(frames, int(self.manifest.get("time_stride", 1)))


def open_bundle(model_path: str, validate: bool = True) -> Bundle:
    """The bundle of NAME.om, NAME.onnx or NAME.json (the manifest must sit beside it), its manifest's schema
    checked (check_manifest) unless `validate` is False (doctor, which reports on what is there)."""
    directory, filename = os.path.split(os.path.abspath(model_path))
    name, ext = os.path.splitext(filename)
    if ext not in (".om", ".onnx", ".json"):
        raise BackendError(f"{model_path}: expected a .om, .onnx or .json bundle file")
    manifest = read_format_json(os.path.join(directory, name + ".json"), BUNDLE_FORMAT, BackendError,
                                "bundle manifest", "ascend-asr convert --profile PROFILE --onnx MODEL.onnx "
                                "--output-dir DIR")
    if validate:
        check_manifest(manifest, os.path.join(directory, name + ".json"), name)
    return Bundle(name, directory, manifest)


_MANIFEST_FIX = ("convert again (`ascend-asr convert --profile PROFILE --onnx MODEL.onnx --output-dir DIR`) rather "
                 "than editing a bundle's manifest")


def check_manifest(manifest: dict, where: str, name: str | None = None) -> None:
    """The whole manifest schema, before anything is run: every field the runtime reads is present and of its
    type and range, so a damaged manifest is one run-level BackendError naming `where`, the field, what was
    expected and found, never a failure per utterance."""
    from .frontends import check_frontend_spec
    from .profiles import check_frames
    from .text import vocabulary_problem

    def fail(field: str, expected: str, found) -> None:
        raise BackendError(f"{where}: {field}: expected {expected}, found {found!r:.100}; {_MANIFEST_FIX}")

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    required = ("name", "batch_size", "frames", "shapes", "inputs", "outputs", "vocabulary", "time_stride",
                "frontend", "onnx_sha256")
    missing = [k for k in required if k not in manifest]
    if missing:
        raise BackendError(f"{where}: malformed bundle manifest: missing fields {missing}; {_MANIFEST_FIX}")
    if not isinstance(manifest["name"], str) or (name is not None and manifest["name"] != name):
        fail("name", f"the bundle's file name {name!r}", manifest["name"])
    try:
        check_batch_sizes([manifest["batch_size"]], "batch_size", _MANIFEST_FIX)
        frames = check_frames(manifest["frames"], "frames", _MANIFEST_FIX)
    except ProfileError as exc:
        raise BackendError(f"{where}: {exc}") from None
    try:
        check_frontend_spec(manifest["frontend"], "")
    except ProfileError as exc:
        raise BackendError(f"{where}: {str(exc).split('; fix the profile')[0]}; {_MANIFEST_FIX}") from None
    if list(frames) != list(manifest["frames"]):
        fail("frames", "ascending frame gears", manifest["frames"])
    shapes = manifest["shapes"]
    if (not isinstance(shapes, list) or not shapes
            or not all(isinstance(x, dict) and whole(x.get("batch")) and whole(x.get("frames")) for x in shapes)):
        fail("shapes", "a list of {batch, frames} with whole numbers", shapes)
    if sorted(x["frames"] for x in shapes) != list(frames):
        fail("shapes", f"one shape per frame gear {list(frames)}", shapes)
    if "gear_mode" in manifest and manifest["gear_mode"] != ("dymdims" if len(frames) > 1 else "static"):
        fail("gear_mode", repr("dymdims" if len(frames) > 1 else "static") + f" for {len(frames)} gear(s)",
             manifest["gear_mode"])
    for key, roles in (("inputs", ("features", "lengths")), ("outputs", ("log_probs", "probs", "out_lengths"))):
        tensors = manifest[key]
        if not isinstance(tensors, list) or not all(isinstance(t, dict) for t in tensors):
            fail(key, "a list of tensors {name, dtype, shape, role}", tensors)
        try:
            specs = [TensorSpec.from_dict(t, key, roles) for t in tensors]
        except ProfileError as exc:
            raise BackendError(f"{where}: {exc}; {_MANIFEST_FIX}") from None
        names = [t.name for t in specs]
        if any(not n for n in names) or len(set(names)) != len(names):
            fail(f"{key} names", "distinct non-empty tensor names", names)
        if key == "inputs" and sorted(t.role for t in specs) != ["features", "lengths"]:
            fail("inputs", "one 'features' and one 'lengths' tensor", [t.role for t in specs])
    stride = manifest["time_stride"]
    if not whole(stride) or not 1 <= stride <= 64:
        fail("time_stride", "a whole number from 1 to 64 (input frames per output frame)", stride)
    vocab = manifest["vocabulary"]
    if not isinstance(vocab, dict) or not isinstance(vocab.get("labels"), list):
        fail("vocabulary", "a mapping with 'labels' (a list) and 'blank' (an id)", vocab)
    problem = vocabulary_problem(tuple(vocab["labels"]), vocab.get("blank"))
    if problem:
        raise BackendError(f"{where}: vocabulary: {problem}; {_MANIFEST_FIX}")
    if vocab.get("separator", "") not in ("", " "):
        fail("vocabulary.separator", "'' or ' '", vocab.get("separator"))
    digest = manifest["onnx_sha256"]
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        fail("onnx_sha256", "the ONNX file's SHA-256 (64 hex digits)", digest)
    if "onnx_size" in manifest and (not whole(manifest["onnx_size"]) or manifest["onnx_size"] < 1):
        fail("onnx_size", "the ONNX file's size in bytes", manifest["onnx_size"])
    om = manifest.get("om")
    if om is not None and not (isinstance(om, dict) and om.get("file") == f"{manifest['name']}.om"
                               and whole(om.get("size")) and isinstance(om.get("sha256"), str)):
        fail("om", f"null or {{file: {manifest['name']}.om, size, sha256}}", om)


def check_bundle_name(name, where: str) -> str:
    """A bundle name is one plain file name: NAME_bsB.onnx/.json/.om are written inside --output-dir, so a name
    with a separator or '..' would write elsewhere."""
    if (not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".") or "/" in name
            or "\\" in name or "\0" in name or name != name.strip() or len(name) > 200):
        raise OptionError(f"{where}: bundle name {name!r} is not a plain file name (it would be written outside "
                          "--output-dir); use letters, digits, '-', '_' and '.' only, e.g. --name my_model")
    return name


def load_onnx_model(onnx_path: str):
    """onnx.load, with an empty or undecodable file told as "not an ONNX model" (a project error)."""
    onnx = import_onnx()
    fix = "give the .onnx file `ascend-asr export` (or torch.onnx.export) wrote"
    if os.path.getsize(onnx_path) == 0:
        raise ProfileError(f"{onnx_path}: empty file, not an ONNX model; {fix}")
    try:
        model = onnx.load(onnx_path)
    except Exception as exc:  # google.protobuf DecodeError, and others from a truncated file
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ProfileError(f"{onnx_path}: not an ONNX model ({reason}); {fix}") from None
    if not model.graph.node and not model.graph.input:
        raise ProfileError(f"{onnx_path}: not an ONNX model (no graph inside: the bytes decode as an empty "
                           f"protobuf); {fix}")
    return model


def static_graph(model: onnx.ModelProto, profile: Profile, batch: int) -> onnx.ModelProto:
    """Fix every input axis the profile fixes for this batch size; a multi-gear frames axis stays symbolic."""
    onnx = import_onnx()

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


def _check_symbolic_class_count(profile: Profile, model: onnx.ModelProto, onnx_path: str) -> None:
    """A graph whose class axis is symbolic (a Reshape before the softmax) shows its class count only when it
    runs: run it once on zeros (batch 1, the smallest gear) and compare with the vocabulary. Best effort: a
    graph onnxruntime cannot run here is left to the runtime checks."""
    scores = profile.output("log_probs") or profile.output("probs")
    graph_out = next((v for v in model.graph.output if v.name == scores.name), None)
    dims = graph_out.type.tensor_type.shape.dim if graph_out is not None else ()
    if not dims or dims[-1].HasField("dim_value"):
        return  # fixed: validate_onnx compared it
    try:
        import numpy as np
        import onnxruntime as ort

        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        frames = profile.frames[0]
        feeds = {t.name: (np.zeros(t.concrete(1, frames), dtype=t.dtype) if t.role == "features"
                          else np.full(t.concrete(1, frames), frames, dtype=t.dtype)) for t in profile.inputs}
        classes = int(session.run([scores.name], feeds)[0].shape[-1])
    except Exception:  # noqa: BLE001 - the probe only adds a check; the runtime checks stay
        return
    if classes != profile.vocabulary.size:
        raise ProfileError(
            f"{profile.source}: the vocabulary has {profile.vocabulary.size} labels (blank included), but output "
            f"{scores.name} of {onnx_path} has {classes} classes (found by running it once); decoding would map "
            f"scores to the wrong labels: give the profile the model's own vocabulary ({classes} labels, blank "
            "included), or export the model this vocabulary belongs to")


def resolve_soc_version(given: str | None, profile: Profile, building: bool) -> tuple[str, str]:
    """The chip to build for and where that choice came from."""
    if given:
        return given, "given"
    detected = detect_soc_version()
    if detected:
        return detected, "detected on this host"
    if profile.atc.get("soc_version"):
        return profile.atc["soc_version"], f"from {profile.source}"
    if building:
        raise AtcError("no --soc-version given and no Ascend device here to detect it from; pass the target's "
                       "chip, e.g. --soc-version Ascend310P3 (`npu-smi info` on the target shows it): an OM only "
                       "runs on the chip it was built for")
    return DEFAULT_SOC_VERSION, "default (pass --soc-version for your chip)"


def plan(profile: Profile, model: onnx.ModelProto, name: str, batch_sizes, soc_version: str) -> list[tuple]:
    """(batch, bundle name, ATC command) per batch size; the command runs in the bundle's folder."""
    return [(batch, f"{name}_bs{batch}",
             atc_command(profile, f"{name}_bs{batch}.onnx", f"{name}_bs{batch}", batch, soc_version, model))
            for batch in batch_sizes]


def convert(profile: Profile | str, onnx_path: str, output_dir: str, name: str | None = None,
            batch_sizes=None, soc_version: str | None = None, build_om: bool | None = None,
            atc: str | None = None, dry_run: bool = False, out=None) -> list[Bundle]:
    """Write one bundle per batch size: NAME_bs{B}.onnx, NAME_bs{B}.json and, where ATC ran, NAME_bs{B}.om.

    build_om None runs ATC when `atc` is found (on PATH after `source env.sh`); True requires it.
    Each bundle is built in a hidden folder and moved into place only when complete, manifest
    last, so a failing ATC leaves no half-written bundle (only its log, NAME_bsB.atc-failed.log).
    dry_run prints the ATC commands and writes nothing.
    """
    onnx = import_onnx()
    if isinstance(profile, str):
        profile = load_profile(profile)
    if batch_sizes is not None:  # checked before the graph, and against it as the profile's own would be
        batch_sizes = check_batch_sizes(batch_sizes, f"batch sizes {batch_sizes!r} for {profile.source or profile.name}",
                                        "pass batch sizes such as 1,4,8,16, or none to use the profile's "
                                        f"{list(profile.batch_sizes)}")
        profile = dataclasses.replace(profile, batch_sizes=batch_sizes)
    check_bundle_name(name or profile.name, "--name" if name else f"{profile.source}: name")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OptionError(f"--output-dir {output_dir}: an existing file, not a folder; give a folder (it is created "
                          "when missing)")
    if os.path.isdir(onnx_path):
        raise ProfileError(f"{onnx_path}: a folder, not an ONNX model; give the .onnx file `ascend-asr export` wrote")
    if not os.path.isfile(onnx_path):
        raise ProfileError(f"{onnx_path}: ONNX model not found; export it first (`ascend-asr export`)")
    model = load_onnx_model(onnx_path)
    check_atc_graph(model, onnx_path)
    profile.validate_onnx(model, onnx_path)
    _check_symbolic_class_count(profile, model, onnx_path)
    atc_path = find_atc(atc) if build_om is not False else None
    if build_om and atc_path is None:
        raise AtcError(f"{atc or 'atc'} not found; `source env.sh` on a host with the CANN toolkit, or pass --atc PATH")
    building = atc_path is not None and not dry_run
    soc, soc_origin = resolve_soc_version(soc_version, profile, building)
    name = name or profile.name
    steps = plan(profile, model, name, profile.batch_sizes, soc)
    if dry_run:
        print(f"# --soc_version={soc}: {soc_origin}; run each command in the bundle folder", file=out)
        for _, _, cmd in steps:
            print(command_line(cmd), file=out)
        return []
    source_hash = sha256(onnx_path)
    os.makedirs(output_dir, exist_ok=True)
    bundles = []
    for batch, bundle_name, cmd in steps:
        stage = tempfile.mkdtemp(prefix=f".{bundle_name}.", dir=output_dir)
        try:
            staged_onnx = os.path.join(stage, bundle_name + ".onnx")
            onnx.save(static_graph(model, profile, batch), staged_onnx)
            onnx.checker.check_model(staged_onnx)
            om = None
            if building:
                om = run_atc(cmd, stage, os.path.join(stage, bundle_name + ".atc.log"), atc_path,
                             failed_log_path=os.path.join(output_dir, bundle_name + ".atc-failed.log"))
            manifest = _manifest(profile, bundle_name, batch, cmd, soc, soc_origin, onnx_path, source_hash,
                                 staged_onnx, om)
            os.replace(staged_onnx, os.path.join(output_dir, bundle_name + ".onnx"))
            if om:
                os.replace(om, os.path.join(output_dir, bundle_name + ".om"))
                os.replace(os.path.join(stage, bundle_name + ".atc.log"),
                           os.path.join(output_dir, bundle_name + ".atc.log"))
            write_json_atomic(os.path.join(output_dir, bundle_name + ".json"), manifest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        bundles.append(Bundle(bundle_name, os.path.abspath(output_dir), manifest))
    return bundles


def _manifest(profile: Profile, bundle_name: str, batch: int, cmd: list[str], soc: str, soc_origin: str,
              source_path: str, source_hash: str, onnx_file: str, om_file: str | None) -> dict:
    return {
        **_model_fields(profile, bundle_name, batch, source_path, source_hash, onnx_file),
        "soc_version": soc,
        "soc_version_origin": soc_origin,
        "atc_command": cmd,
        "atc_command_line": command_line(cmd),
        "atc_run_from": "this bundle's folder (the command's paths are relative to it)",
        "om": None if om_file is None else {"file": bundle_name + ".om", "size": os.path.getsize(om_file),
                                            "sha256": sha256(om_file), "atc_log": bundle_name + ".atc.log"},
    }


def _model_fields(profile: Profile, bundle_name: str, batch: int, source_path: str, source_hash: str,
                  onnx_file: str) -> dict:
    """What every bundle manifest records about its model: shapes, I/O, vocabulary, frontend, sources."""
    return {
        "format": BUNDLE_FORMAT,
        "name": bundle_name,
        "profile": profile.name,
        "family": profile.family,
        "model_config": profile.model_config,
        "batch_size": batch,
        "frames": list(profile.frames),
        "shapes": [{"batch": batch, "frames": f} for f in profile.frames],
        "gear_mode": "dymdims" if len(profile.frames) > 1 else "static",
        "inputs": [t.to_dict() for t in profile.inputs],
        # in the OM's order: the ATC command's --out_nodes="prob;label" pins it to this list, and the NPU
        # backends match an OM output named "<op>:<idx>" (no tensor name) by its position here
        "outputs": [t.to_dict() for t in profile.outputs],
        "vocabulary": profile.vocabulary.to_spec(),
        "time_stride": profile.time_stride,
        "warning": profile.warning,
        "frontend": frontend_spec(build_frontend(profile.frontend)),
        "source_model": {"path": os.path.abspath(source_path), "sha256": source_hash},
        "onnx_sha256": sha256(onnx_file),
        "onnx_size": os.path.getsize(onnx_file),
    }


def write_cpu_manifest(profile: Profile, onnx_path: str, kind: str, source_path: str, batch_size: int = 1,
                       details: dict | None = None) -> Bundle:
    """NAME.json beside NAME.onnx (an `ascend-asr optimize` model whose batch and frame axes stay dynamic), so
    that `python -m ascend_asr.infer --model NAME.onnx` runs it on onnxruntime as it runs a converted bundle.
    Such a bundle has no ATC command: `kind` (e.g. int8_static) is for the CPU path only."""
    directory, filename = os.path.split(os.path.abspath(onnx_path))
    name = check_bundle_name(os.path.splitext(filename)[0], onnx_path)
    check_batch_sizes([batch_size], f"{onnx_path}: batch size", "pass a batch size from 1 to 1024")
    manifest = {
        **_model_fields(profile, name, batch_size, source_path, sha256(source_path), onnx_path),
        "cpu_only": True,
        "model_kind": kind,
        "optimize": dict(details or {}),
        "om": None,
    }
    check_manifest(manifest, os.path.join(directory, name + ".json"), name)
    write_json_atomic(os.path.join(directory, name + ".json"), manifest)
    return Bundle(name, directory, manifest)
