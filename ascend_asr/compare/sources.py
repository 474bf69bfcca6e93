"""What A and B can be, and how each runs one utterance.

- a PyTorch checkpoint in its family's upstream format (the profile says which family and model config),
- an ONNX file (exported, simplified, ort-optimised, fp16 or int8 graphs alike), run on onnxruntime,
- a bundle (NAME.om or NAME.json) on a backend: pyACL, ais_bench, or onnxruntime on the bundle's ONNX.
  A bundle's NAME.onnx given directly is that ONNX on onnxruntime, its manifest still read for output roles
  and compiled shapes.

Every source is fed the same tensors: one utterance, padded to a frame count every source accepts, repeated
to each source's batch size (rows past the first are dropped from the outputs).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from ..bundle import Bundle, load_onnx_model, open_bundle
from ..errors import AscendAsrError, BackendError, OptionError, ProfileError, TensorFileError
from ..profiles import BATCH, FRAMES, Profile, TensorSpec
from .layers import GraphTensors, TorchRecorder, expose_tensors, is_float

PYTORCH, ONNX, BUNDLE = "pytorch", "onnx", "bundle"
NPU_BACKENDS = ("acl", "ais_bench")
# onnx.TensorProto element types -> numpy, for casting feeds to what a graph takes (fp16 inputs, int64 lengths)
_ONNX_NUMPY = {1: np.float32, 10: np.float16, 11: np.float64, 6: np.int32, 7: np.int64, 2: np.uint8, 3: np.int8,
               9: np.bool_}

SOURCE_HELP = ("a PyTorch checkpoint in its family's upstream format (with --profile), an ONNX file, or a bundle "
               "(NAME.om or NAME.json)")


@dataclass
class Run:
    """One source's results for one utterance."""

    outputs: dict  # output name -> array (the whole batch, as the model gave it)
    tensors: dict | None = None  # intermediate tensor name -> array, in production order (with --layers/--dump)
    torch_run: object | None = None  # layers.TorchRun of a PyTorch source
    feeds: dict = field(default_factory=dict)  # what it was fed, by input name


class Source:
    """A model that runs one utterance at a time."""

    label: str  # "A" or "B"
    path: str
    kind: str
    backend: str
    batch: int | None = None  # fixed batch size, or None (any)
    gears: tuple | None = None  # frame counts it accepts, or None (any)
    graph: GraphTensors | None = None  # an ONNX source's exposed tensors (with --layers/--dump)
    onnx_model = None  # the ONNX graph it runs, where there is one

    def __init__(self, label: str, path: str):
        self.label, self.path = label, path
        self.outputs: dict[str, TensorSpec | None] = {}
        self.input_types: dict[str, type] = {}

    def describe(self) -> dict:
        return {"path": self.path, "kind": self.kind, "backend": self.backend}

    def cast(self, feeds: dict) -> dict:
        return {k: v.astype(self.input_types[k], copy=False) if k in self.input_types else v for k, v in feeds.items()}

    def run(self, feeds: dict) -> Run:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _specs_for(names, profile: Profile | None) -> dict[str, TensorSpec | None]:
    known = {t.name: t for t in profile.outputs} if profile is not None else {}
    return {n: known.get(n) for n in names}


class TorchSource(Source):
    kind, backend = PYTORCH, "pytorch-cpu"

    def __init__(self, label: str, path: str, profile: Profile, prep_inputs, record: bool):
        super().__init__(label, path)
        try:
            import torch
        except ImportError as exc:
            raise AscendAsrError(f"{label} {path}: running a PyTorch checkpoint needs torch, which the base install "
                                 "leaves out: pip install 'ascend-asr[export]'") from exc

        from ..families import load_model

        self._torch = torch
        self.model = load_model(profile, path)
        self.input_names = tuple(self.model.input_names)
        wanted = [t.name for t in prep_inputs]
        if sorted(self.input_names) != sorted(wanted):
            raise TensorFileError(f"{label} {path}: the {profile.name} model takes inputs {list(self.input_names)}, "
                                  f"but prep/ holds {wanted}; compare models of one profile, on a prep/ folder made "
                                  "with it")
        self.outputs = _specs_for(self.model.output_names, profile)
        self.recorder = TorchRecorder(self.model) if record else None

    def run(self, feeds: dict) -> Run:
        torch = self._torch
        if self.recorder is not None:
            self.recorder.start()
        with torch.no_grad():
            result = self.model(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names))
        result = result if isinstance(result, (tuple, list)) else (result,)
        outputs = {name: t.detach().cpu().numpy() for name, t in zip(self.outputs, result)}
        if self.recorder is None:
            return Run(outputs, feeds=feeds)
        run = self.recorder.run
        return Run(outputs, dict(run.tensors), run, feeds)

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def _graph_dims(model, prep_inputs) -> tuple[int | None, int | None, dict]:
    """(fixed batch, fixed frames, input types) of an ONNX graph, read at the axes prep/'s inputs name."""
    by_name = {v.name: v for v in model.graph.input}
    batch = frames = None
    types = {}
    for spec in prep_inputs:
        value = by_name[spec.name]
        types[spec.name] = _ONNX_NUMPY.get(value.type.tensor_type.elem_type)
        dims = value.type.tensor_type.shape.dim
        for symbol in (BATCH, FRAMES):
            axis = spec.axis(symbol)
            if axis is not None and axis < len(dims) and dims[axis].HasField("dim_value"):
                if symbol == BATCH:
                    batch = dims[axis].dim_value
                else:
                    frames = dims[axis].dim_value
    return batch, frames, {k: v for k, v in types.items() if v is not None}


class OnnxSource(Source):
    """An ONNX graph on onnxruntime (CPU); with `expose`, every intermediate float value is an output too."""

    kind, backend = ONNX, "onnxruntime-cpu"

    def __init__(self, label: str, path: str, profile: Profile | None, prep_inputs, expose: bool,
                 bundle: Bundle | None = None, threads: int = 0):
        super().__init__(label, path)
        import onnxruntime as ort

        self.bundle = bundle
        model = load_onnx_model(path)
        self.onnx_model = model
        names = [v.name for v in model.graph.input]
        wanted = [t.name for t in prep_inputs]
        if sorted(names) != sorted(wanted):
            raise TensorFileError(f"{label} {path}: the graph's inputs are {names}, but prep/ holds {wanted}; compare "
                                  "models of one profile, on a prep/ folder made with it")
        self.batch, fixed_frames, self.input_types = _graph_dims(model, prep_inputs)
        self.gears = bundle.frames if bundle is not None else (fixed_frames,) if fixed_frames else None
        self.outputs = ({t.name: t for t in bundle.outputs} if bundle is not None
                        else _specs_for([v.name for v in model.graph.output], profile))
        if expose:
            model, self.graph = expose_tensors(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(model.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"{label} {path}: onnxruntime cannot load the model ({exc})") from exc
        self._names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: dict) -> Run:
        feeds = self.cast(feeds)
        try:
            values = self._session.run(None, feeds)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"{self.label} {self.path}: onnxruntime failed to run the model "
                               f"({' '.join(str(exc).split())[:300]})") from exc
        by_name = dict(zip(self._names, values))
        outputs = {n: by_name[n] for n in self.outputs}
        tensors = None
        if self.graph is not None:
            tensors = {n: by_name[n] for n in self.graph.order if is_float(by_name.get(n))}
        return Run(outputs, tensors, None, feeds)


class BundleSource(Source):
    """A bundle's OM on an NPU backend (or, with --backend auto and no NPU, its ONNX on onnxruntime, announced)."""

    kind = BUNDLE

    def __init__(self, label: str, path: str, bundle: Bundle, backend: str, device: int, out):
        super().__init__(label, path)
        from ..backends import open_session

        self.bundle = bundle
        self.batch, self.gears = bundle.batch_size, bundle.frames
        self.outputs = {t.name: t for t in bundle.outputs}
        self._session = open_session(bundle, backend, device, mode="sync", out=out)
        self.backend = self._session.name + (" (fallback)" if self._session.fallback else "")

    def run(self, feeds: dict) -> Run:
        outputs = self._session.run(self.cast(feeds))
        return Run({n: outputs[n] for n in self.outputs}, None, None, feeds)

    def close(self) -> None:
        self._session.close()


def _bundle_beside(onnx_path: str) -> Bundle | None:
    """The bundle whose NAME.onnx this is (a NAME.json manifest beside it), else None."""
    manifest = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.isfile(manifest):
        return None
    try:
        return open_bundle(onnx_path)
    except BackendError:
        return None  # a JSON file of another kind: the ONNX stands alone


def open_source(label: str, path: str, profile: Profile | None, prep_inputs, *, layers: bool, record: bool,
                backend: str = "auto", device: int = 0, out=None) -> Source:
    """Source `label` ("A" or "B") from its path, by what the file is; `record` exposes intermediate tensors."""
    out = out or sys.stdout
    ext = os.path.splitext(path or "")[1].lower()
    manifest_beside = ext == ".om" and os.path.isfile(os.path.splitext(path)[0] + ".json")
    if not path or not (os.path.exists(path) or manifest_beside):  # NAME.om of a bundle converted without ATC
        raise OptionError(f"{label} {path!r}: not found; give {SOURCE_HELP}")
    if os.path.isdir(path):
        raise OptionError(f"{label} {path}: a folder; give {SOURCE_HELP}")
    if ext in (".om", ".json"):
        bundle = open_bundle(path)
        bundle.check()
        if backend in NPU_BACKENDS and layers:
            raise OptionError(f"--layers: {label} {path} runs as an OM on {backend}, which exposes no intermediate "
                              "tensors; compare its ONNX instead (--backend onnxruntime, or give "
                              f"{bundle.name}.onnx), or dump the other side with --dump and run `msit debug "
                              "compare` on the NPU")
        if backend in NPU_BACKENDS or (backend == "auto" and not layers):
            return BundleSource(label, path, bundle, backend, device, out)
        from ..backends import check_onnx

        check_onnx(bundle)  # the ONNX the manifest describes, not one replaced since
        if backend == "auto":
            print(f"[ascend-asr] {label}: --layers reads intermediate tensors, which an OM does not expose: running "
                  f"{bundle.name}.onnx on onnxruntime", file=out)
        return OnnxSource(label, bundle.onnx_path, None, prep_inputs, record, bundle)
    if ext == ".onnx":
        bundle = _bundle_beside(path)
        if bundle is not None:
            from ..backends import check_onnx

            check_onnx(bundle)
        return OnnxSource(label, path, profile, prep_inputs, record, bundle)
    if profile is None:
        raise ProfileError(f"{label} {path}: a PyTorch checkpoint needs the profile that builds its model: pass "
                           "--profile NAME (e.g. jasper_small)")
    return TorchSource(label, path, profile, prep_inputs, record)
