"""Model profiles (atc_profiles/*.yaml): I/O tensors, compiled shapes, frontend, vocabulary, ATC options."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field

import yaml

from .errors import ProfileError
from .tensor_files import DTYPES
from .text import Vocabulary

BATCH, FRAMES, OUT_FRAMES = "batch", "frames", "out_frames"
SYMBOLS = (BATCH, FRAMES, OUT_FRAMES)
INPUT_ROLES = ("features", "lengths")
OUTPUT_ROLES = ("log_probs", "probs", "out_lengths")
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PREFIX = "package:"  # a profile path "package:assets/..." lies inside the installed ascend_asr package


def _profile_dir() -> str:
    """The profiles' folder: ascend_asr/atc_profiles/ in an installed package (wheel, `pip install .`), else the
    source checkout's top-level atc_profiles/ (what an editable install and a plain checkout see)."""
    try:
        from importlib.resources import files

        packaged = files("ascend_asr") / "atc_profiles"
        if packaged.is_dir():
            return str(packaged)
    except (ImportError, TypeError, NotImplementedError):
        pass
    return os.path.join(os.path.dirname(PACKAGE_DIR), "atc_profiles")


PROFILE_DIR = _profile_dir()

# onnx.TensorProto element types (the numbers are ONNX's); onnx itself is needed only to convert
_ONNX_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 11: "float64", 3: "int8", 2: "uint8", 9: "bool"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple  # ints and symbols from SYMBOLS
    role: str

    def axis(self, symbol: str) -> int | None:
        return self.shape.index(symbol) if symbol in self.shape else None

    def concrete(self, batch: int, frames: int | None = None, out_frames: int | None = None) -> tuple:
        values = {BATCH: batch, FRAMES: frames, OUT_FRAMES: out_frames}
        return tuple(values[d] if isinstance(d, str) else d for d in self.shape)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "role": self.role}

    @classmethod
    def from_dict(cls, d: dict, source: str, roles) -> "TensorSpec":
        try:
            spec = cls(str(d["name"]), str(d["dtype"]), tuple(d["shape"]), str(d["role"]))
        except (KeyError, TypeError) as exc:
            raise ProfileError(f"{source}: a tensor needs name, dtype, shape and role; found {d}") from exc
        if spec.dtype not in DTYPES:
            raise ProfileError(f"{source}: tensor {spec.name}: dtype {spec.dtype!r} not in {sorted(DTYPES)}")
        if spec.role not in roles:
            raise ProfileError(f"{source}: tensor {spec.name}: role {spec.role!r} not in {roles}")
        bad = [d for d in spec.shape if not (isinstance(d, int) and d > 0 or d in SYMBOLS)]
        if bad:
            raise ProfileError(f"{source}: tensor {spec.name}: dims {bad} are neither positive ints nor {SYMBOLS}")
        return spec


@dataclass(frozen=True)
class Profile:
    name: str
    family: str
    model_config: object  # a preset name of the family, or the config as a mapping (from upstream files)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch_sizes: tuple[int, ...]
    frames: tuple[int, ...]  # frame gears, ascending
    frontend: dict
    vocabulary: Vocabulary
    atc: dict = field(default_factory=dict)
    time_stride: int = 1  # output frames = (input frames - 1) // stride + 1, for models without out_lengths
    warning: str = ""  # printed by convert and infer, e.g. a vocabulary that still needs checking
    source: str = ""
    parity: dict = field(default_factory=dict)  # the optimisation gate's thresholds (parity.Thresholds keys)
    precision: dict = field(default_factory=dict)  # what `ascend-asr optimize` chose (see check_precision)

    def thresholds(self):
        """The gate's thresholds: parity.py's defaults, overridden by the profile's `parity:` mapping."""
        from .parity import Thresholds

        return Thresholds.from_mapping(self.parity, f"{self.source or self.name}: parity")

    def output_frames(self, frames: int) -> int:
        from .decoding import output_frames

        return output_frames(frames, self.time_stride)

    def input(self, role: str) -> TensorSpec:
        return next(t for t in self.inputs if t.role == role)

    def output(self, role: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.role == role), None)

    def to_dict(self) -> dict:
        return {"name": self.name, "family": self.family, "model_config": self.model_config,
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "batch_sizes": list(self.batch_sizes), "frames": list(self.frames),
                "frontend": dict(self.frontend), "vocabulary": self.vocabulary.to_spec(), "atc": dict(self.atc),
                "time_stride": self.time_stride,
                **({"parity": dict(self.parity)} if self.parity else {}),
                **({"precision": dict(self.precision)} if self.precision else {})}

    def validate_onnx(self, model, onnx_path: str) -> None:
        """Every profile input and output exists in the graph with the same rank, dtype and fixed dimensions
        (a symbolic ONNX dimension accepts any value; a fixed one must equal the profile's value, and a
        profile symbol on a fixed ONNX axis must only ever take that value), and the scores output has one
        class per vocabulary label."""
        graph_inputs = {v.name: v for v in model.graph.input}
        graph_outputs = {v.name: v for v in model.graph.output}
        for kind, specs, graph in (("input", self.inputs, graph_inputs), ("output", self.outputs, graph_outputs)):
            for spec in specs:
                if spec.name not in graph:
                    raise ProfileError(f"{self.source}: {kind} {spec.name!r} is not in {onnx_path}, whose {kind}s "
                                       f"are {sorted(graph)}; fix the profile's {kind} names or export again")
                ttype = graph[spec.name].type.tensor_type
                rank = len(ttype.shape.dim)
                if rank != len(spec.shape):
                    raise ProfileError(f"{self.source}: {kind} {spec.name}: profile rank {len(spec.shape)} "
                                       f"{list(spec.shape)}, ONNX rank {rank} in {onnx_path}")
                dtype = _ONNX_DTYPES.get(ttype.elem_type, str(ttype.elem_type))
                if dtype != spec.dtype:
                    raise ProfileError(f"{self.source}: {kind} {spec.name}: profile dtype {spec.dtype}, "
                                       f"ONNX dtype {dtype} in {onnx_path}")
                graph_dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                              for d in ttype.shape.dim]
                self._check_dims(kind, spec, graph_dims, onnx_path)

    def _check_dims(self, kind: str, spec: TensorSpec, graph_dims: list, onnx_path: str) -> None:
        shown = [d if d is not None else "?" for d in graph_dims]
        scores = spec.role in ("log_probs", "probs")
        for axis, (mine, theirs) in enumerate(zip(spec.shape, graph_dims)):
            if theirs is None:
                continue  # symbolic (or unknown) in the graph: any value
            if isinstance(mine, int):
                if mine == theirs:
                    continue
                if scores and axis == len(spec.shape) - 1:
                    raise ProfileError(
                        f"{self.source}: the vocabulary has {self.vocabulary.size} labels (blank included), but "
                        f"output {spec.name} of {onnx_path} has {theirs} classes (shape {shown}); decoding would "
                        f"map scores to the wrong labels: give the profile the model's own vocabulary "
                        f"({theirs} labels, blank included), or export the model this vocabulary belongs to")
                raise ProfileError(
                    f"{self.source}: {kind} {spec.name} axis {axis}: the profile says {mine}, the ONNX graph "
                    f"{onnx_path} fixes {theirs} (profile shape {list(spec.shape)}, ONNX shape {shown}); fix the "
                    f"profile (e.g. the frontend's feature size) to match the model, or export the model again")
            values = {BATCH: self.batch_sizes, FRAMES: self.frames}.get(mine)
            if values is not None and set(values) != {theirs}:
                key = "batch_sizes" if mine == BATCH else "frames"
                raise ProfileError(
                    f"{self.source}: {kind} {spec.name} axis {axis} is {mine!r} with {key} {list(values)}, but "
                    f"the ONNX graph {onnx_path} fixes it at {theirs} (ONNX shape {shown}); set {key}: [{theirs}] "
                    f"in the profile, or export the model with a dynamic {mine} axis")


def known_profiles() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PROFILE_DIR) if f.endswith(".yaml")) if os.path.isdir(PROFILE_DIR) else []


def find_profile(name_or_path: str) -> str:
    if os.path.isfile(name_or_path):
        return name_or_path
    candidate = os.path.join(PROFILE_DIR, f"{name_or_path}.yaml")
    if os.path.isfile(candidate):
        return candidate
    raise ProfileError(f"profile {name_or_path!r} not found: neither a file nor a known profile name; "
                       f"known: {', '.join(known_profiles()) or 'none'} (in {PROFILE_DIR})")


def resolve_profile_path(path: str, source: str) -> str:
    """A path inside a profile: "package:REL" is REL inside the installed ascend_asr package (so it resolves in
    a wheel install and a checkout alike); another relative path is relative to the profile file's folder."""
    if path.startswith(PACKAGE_PREFIX):
        return os.path.join(PACKAGE_DIR, *path[len(PACKAGE_PREFIX):].strip("/").split("/"))
    if not os.path.isabs(path) and os.path.isfile(source):
        return os.path.normpath(os.path.join(os.path.dirname(source), path))
    return path


def load_profile(name_or_path: str) -> Profile:
    path = find_profile(name_or_path)
    try:
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})") from exc
    return profile_from_dict(d, path)


# the keys a profile may have: those Profile.to_dict writes, plus `warning` and the `source` that
# `ascend-asr profile` records
PROFILE_KEYS = ("name", "family", "model_config", "inputs", "outputs", "batch_sizes", "frames", "frontend",
                "vocabulary", "atc", "time_stride", "warning", "source", "parity", "precision")
MAX_FRAMES = 100_000  # one gear's frame count: 1000 s at a 10 ms hop, far past any compiled ASR graph
# ATC's documented values (docs: ATC parameters); soc_version is checked for its form only
ATC_CHOICES = {
    "precision_mode": ("force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision",
                       "allow_mix_precision_fp16", "force_fp32", "cube_fp16in_fp32out", "allow_mix_precision_bf16",
                       "allow_fp32_to_bf16"),
    "op_select_implmode": ("high_performance", "high_precision", "high_precision_for_all",
                           "high_performance_for_all"),
    "log": ("debug", "info", "warning", "error", "null"),
    "input_format": ("ND", "NCHW", "NHWC", "NCDHW", "NDHWC"),
}
ATC_KEYS = (*ATC_CHOICES, "soc_version")


def check_frames(values, where: str, fix: str, align: int = 1) -> tuple[int, ...]:
    """Frame gears as a sorted tuple: a non-empty list of distinct whole numbers from 1 to MAX_FRAMES (no
    256.5, no strings, no bools), multiples of `align`, at most 100 (ATC --dynamic_dims); else ProfileError
    naming `where`, what was found and `fix`."""
    values = distinct_whole_numbers(values, where, "frame gears", MAX_FRAMES,
                                    f"frame gears are whole numbers from 1 to {MAX_FRAMES}", fix)
    if len(values) > 100:
        raise ProfileError(f"{where}: {len(values)} frame gears; ATC --dynamic_dims allows at most 100 ({fix})")
    unaligned = [f for f in values if align > 1 and f % align]
    if unaligned:
        raise ProfileError(f"{where}: frame gears {unaligned} are not multiples of the frontend's "
                           f"pad_align={align}; {fix}")
    return tuple(sorted(int(v) for v in values))


def check_atc_options(atc, source: str) -> dict:
    """The profile's `atc:` mapping: known keys, and values ATC documents (a typo would fail only in ATC)."""
    if atc is None:
        return {}
    if not isinstance(atc, dict):
        raise ProfileError(f"{source}: atc: expected a mapping of ATC options, found {atc!r:.80}; known keys: "
                           f"{list(ATC_KEYS)}")
    unknown = sorted((k for k in atc if k not in ATC_KEYS), key=str)
    if unknown:
        raise ProfileError(f"{source}: atc: unknown options {unknown}; known: {list(ATC_KEYS)} (others are not "
                           "passed to ATC)")
    for key, choices in ATC_CHOICES.items():
        if key in atc and atc[key] not in choices:
            raise ProfileError(f"{source}: atc.{key}: {atc[key]!r} is not one of ATC's values {list(choices)}; "
                               f"set one of them (see ATC's --{key})")
    soc = atc.get("soc_version")
    if soc is not None and not (isinstance(soc, str) and soc.startswith("Ascend") and soc.isalnum()):
        raise ProfileError(f"{source}: atc.soc_version: {soc!r} is not a chip name such as Ascend310P3 "
                           "(`npu-smi info` shows it)")
    return dict(atc)


def check_parity(parity, source: str) -> dict:
    """The profile's `parity:` mapping: the gate thresholds parity.Thresholds knows, as numbers."""
    from .parity import Thresholds

    if parity is None:
        return {}
    if not isinstance(parity, dict):
        raise ProfileError(f"{source}: parity: expected a mapping of gate thresholds (e.g. min_cosine: 0.99), found "
                           f"{parity!r:.80}; known keys: {sorted(Thresholds.__dataclass_fields__)}")
    try:
        Thresholds.from_mapping(parity, f"{source}: parity")
    except ValueError as exc:
        raise ProfileError(f"{exc}; fix or remove the key (defaults: ascend_asr/parity.py)") from None
    return dict(parity)


# `precision:` what `ascend-asr optimize --write-profile` records for one model
CPU_MODEL_KINDS = ("fp32", "simplified", "ort_opt", "int8_static", "int8_dynamic")
_NAME_LISTS = ("int8_exclude_nodes", "int8_exclude_op_types", "mix_precision_block_list")
PRECISION_KEYS = ("atc_precision_mode", "cpu_model", *_NAME_LISTS, "predicted_wer_delta", "report")


def check_precision(precision, atc: dict, source: str) -> dict:
    """The profile's `precision:` mapping (known keys, ATC's precision modes, lists of names); its
    atc_precision_mode is the one ATC gets, so an `atc.precision_mode` that says otherwise is refused."""
    if precision is None:
        return {}
    if not isinstance(precision, dict):
        raise ProfileError(f"{source}: precision: expected a mapping (atc_precision_mode, cpu_model, ...), found "
                           f"{precision!r:.80}")
    unknown = sorted((k for k in precision if k not in PRECISION_KEYS), key=str)
    if unknown:
        raise ProfileError(f"{source}: precision: unknown keys {unknown}; known: {list(PRECISION_KEYS)}")
    modes = ATC_CHOICES["precision_mode"]
    mode = precision.get("atc_precision_mode")
    if mode is not None and mode not in modes:
        raise ProfileError(f"{source}: precision.atc_precision_mode: {mode!r} is not one of ATC's values {list(modes)}")
    if mode is not None and atc.get("precision_mode") not in (None, mode):
        raise ProfileError(f"{source}: precision.atc_precision_mode is {mode!r} but atc.precision_mode is "
                           f"{atc['precision_mode']!r}; ATC takes one: make them equal or drop atc.precision_mode")
    kind = precision.get("cpu_model")
    if kind is not None and kind not in CPU_MODEL_KINDS:
        raise ProfileError(f"{source}: precision.cpu_model: {kind!r} is not one of {list(CPU_MODEL_KINDS)}")
    for key in _NAME_LISTS:
        names = precision.get(key)
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) and n for n in names)):
            raise ProfileError(f"{source}: precision.{key}: expected a list of node or op-type names, found "
                               f"{names!r:.80}")
    costs = precision.get("predicted_wer_delta")
    if costs is not None and (not isinstance(costs, dict) or any(
            k not in modes or isinstance(v, bool) or not isinstance(v, numbers.Real) for k, v in costs.items())):
        raise ProfileError(f"{source}: precision.predicted_wer_delta: expected a mapping of ATC precision modes to "
                           f"WER points, found {costs!r:.80}")
    if "report" in precision and not isinstance(precision["report"], str):
        raise ProfileError(f"{source}: precision.report: expected the optimize report's path, found "
                           f"{precision['report']!r:.80}")
    return dict(precision)


def profile_from_dict(d: dict, source: str) -> Profile:
    if not isinstance(d, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping; found {type(d).__name__}")
    unknown = sorted((k for k in d if k not in PROFILE_KEYS), key=str)
    if unknown:
        raise ProfileError(f"{source}: unknown keys {unknown}; known: {list(PROFILE_KEYS)} (a misspelt key would "
                           "be ignored: fix or remove it)")
    required = ("name", "family", "batch_sizes", "frames", "frontend", "vocabulary")
    missing = [k for k in required if k not in d]
    if missing:
        raise ProfileError(f"{source}: missing keys {missing}")
    from .frontends import check_frontend_spec

    check_frontend_spec(d["frontend"], source)
    vocabulary = Vocabulary.from_spec(d["vocabulary"], source)
    if not isinstance(d["family"], str) or not d["family"]:
        raise ProfileError(f"{source}: family: expected a family name such as jasper, found {d['family']!r}")
    time_stride = d.get("time_stride", 1)
    if isinstance(time_stride, bool) or not isinstance(time_stride, int) or not 1 <= time_stride <= 64:
        raise ProfileError(f"{source}: time_stride: expected a whole number from 1 to 64 (input frames per output "
                           f"frame), found {time_stride!r}")
    if "inputs" not in d or "outputs" not in d or "time_stride" not in d:
        d = {**family_io(d, source), **d}
    for key in ("inputs", "outputs"):
        if not isinstance(d[key], list) or not all(isinstance(t, dict) for t in d[key]):
            raise ProfileError(f"{source}: {key}: expected a list of tensors (name, dtype, shape, role), found "
                               f"{d[key]!r:.80}")
    inputs = tuple(TensorSpec.from_dict(t, source, INPUT_ROLES) for t in d["inputs"])
    outputs = tuple(TensorSpec.from_dict(t, source, OUTPUT_ROLES) for t in d["outputs"])
    if sorted(t.role for t in inputs) != sorted(INPUT_ROLES):
        raise ProfileError(f"{source}: inputs need exactly one 'features' and one 'lengths' tensor")
    if not any(t.role in ("log_probs", "probs") for t in outputs):
        raise ProfileError(f"{source}: outputs need a 'log_probs' or 'probs' tensor")
    align = int(d["frontend"].get("pad_align", 1))
    frames = check_frames(d["frames"], f"{source}: frames", "set e.g. frames: [256, 512, 1024] in the profile",
                          align)
    batch_sizes = check_batch_sizes(d["batch_sizes"], f"{source}: batch_sizes", "set e.g. batch_sizes: [1, 4, 8, 16] in the profile")
    _check_class_count(outputs, vocabulary, source)
    frontend = dict(d["frontend"])
    if frontend.get("cmvn_stats"):
        frontend["cmvn_stats"] = resolve_profile_path(str(frontend["cmvn_stats"]), source)
    model_config = d.get("model_config", "")
    atc = check_atc_options(d.get("atc"), source)
    precision = check_precision(d.get("precision"), atc, source)
    if precision.get("atc_precision_mode"):
        atc["precision_mode"] = precision["atc_precision_mode"]  # what the gated simulations chose
    return Profile(name=str(d["name"]), family=str(d["family"]),
                   model_config=dict(model_config) if isinstance(model_config, dict) else str(model_config),
                   inputs=inputs, outputs=outputs, batch_sizes=batch_sizes, frames=frames,
                   frontend=frontend, vocabulary=vocabulary,
                   atc=atc, time_stride=int(d.get("time_stride", 1)),
                   warning=str(d.get("warning") or ""), source=source,
                   parity=check_parity(d.get("parity"), source), precision=precision)


MAX_BATCH_SIZE = 1024
BATCH_SIZE_LIMITS = (f"batch sizes are whole numbers from 1 to {MAX_BATCH_SIZE}: every batch size is one static "
                     "graph whose input and output buffers grow with it (ais_bench and pyACL refuse batches above "
                     "4096, and past a few dozen utterances a larger batch adds memory, not NPU throughput)")


def distinct_whole_numbers(values, where: str, noun: str, high: int, limits: str, fix: str) -> list:
    """`values` as a list of distinct whole numbers from 1 to `high` (no bools, no 256.5, no strings), or a
    ProfileError naming `where`, what was found, the `limits` and the `fix`."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise ProfileError(f"{where}: expected a list of {noun}, found {values!r:.80}; {limits}; {fix}")
    values = list(values)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 1 <= v <= high]
    if not values or bad:
        found = f"{', '.join(repr(v) for v in bad[:5])} in {values[:10]!r}" if bad else "an empty list"
        raise ProfileError(f"{where}: {found}: {limits}; {fix}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ProfileError(f"{where}: {noun} {repeated} are listed more than once in {values[:10]!r}; "
                           f"list each once ({fix})")
    return values


def check_batch_sizes(values, where: str, fix: str) -> tuple[int, ...]:
    """`values` as a tuple of batch sizes, or a ProfileError naming `where` (the file or option), what was
    found, the limits and `fix` (e.g. "pass --batch-sizes 1,4,8,16")."""
    values = distinct_whole_numbers(values, where, "batch sizes", MAX_BATCH_SIZE, BATCH_SIZE_LIMITS, fix)
    return tuple(int(v) for v in values)


def parse_whole_numbers(text: str, option: str, limits: str, fix: str) -> list[int]:
    """A command line's comma-separated whole numbers ("1,4,8"); a non-number is a ProfileError naming `option`."""
    values = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            values.append(int(item))
        except ValueError:
            raise ProfileError(f"{option} {text!r}: {item!r} is not a whole number; {limits}; {fix}") from None
    return values


def parse_batch_sizes(text: str, option: str = "--batch-sizes") -> tuple[int, ...]:
    """A command line's comma-separated batch sizes ("1,4,8"), checked as check_batch_sizes does."""
    fix = f"e.g. {option} 1,4,8,16"
    return check_batch_sizes(parse_whole_numbers(text, option, BATCH_SIZE_LIMITS, fix), f"{option} {text}", fix)


def parse_frames(text: str, option: str = "--frames") -> tuple[int, ...]:
    """A command line's comma-separated frame gears ("256,512,1024"), checked as check_frames does (alignment
    to the frontend is checked where the profile is assembled)."""
    fix = f"e.g. {option} 256,512,1024"
    limits = f"frame gears are whole numbers from 1 to {MAX_FRAMES}"
    return check_frames(parse_whole_numbers(text, option, limits, fix), f"{option} {text}", fix)


def class_count(spec: TensorSpec) -> int | None:
    """The class (label) dimension of a scores output: its last axis, when fixed."""
    last = spec.shape[-1] if spec.shape else None
    return last if isinstance(last, int) else None


def _check_class_count(outputs, vocabulary: Vocabulary, source: str) -> None:
    for spec in outputs:
        classes = class_count(spec) if spec.role in ("log_probs", "probs") else None
        if classes is not None and classes != vocabulary.size:
            raise ProfileError(
                f"{source}: output {spec.name} has {classes} classes (shape {list(spec.shape)}), but the vocabulary "
                f"has {vocabulary.size} labels (blank included); decoding would map scores to the wrong labels "
                f"(or fail): make the vocabulary the model's own ({classes} labels, blank included) or fix the "
                "output shape")


def family_io(d: dict, source: str) -> dict:
    """inputs, outputs and time_stride as the profile's family declares them, for the profile's frontend
    (feature size) and vocabulary (classes): a profile need not repeat them."""
    from .families import get_family
    from .frontends import build_frontend

    io = get_family(str(d["family"])).io_spec(build_frontend(d["frontend"], source=source).feature_size,
                                               Vocabulary.from_spec(d["vocabulary"], source).size)
    return {"inputs": [dict(t) for t in io.inputs], "outputs": [dict(t) for t in io.outputs],
            "time_stride": io.time_stride}
