"""What a model family declares: everything about a model that the generic pipeline must not know.

The pipeline (prep/, bundles, ATC, backends, batching, decoding, results/) learns what it needs
from a profile and a bundle manifest. A family is where those come from: it reads its upstream
project's configs and checkpoints, builds the model of any size they describe, states the
export I/O and the output-length rule, maps the upstream feature settings onto a frontend, and
names its default deployment profile. Declarations here import neither torch nor onnx; the
model code behind `build`, `load` and `save` does, and is imported only when called.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CheckpointError, ProfileError


@dataclass(frozen=True)
class IOSpec:
    """The exported graph's tensors as profile dicts (name, dtype, shape with symbols, role), and the
    output-length rule for models without an `out_lengths` output: (frames - 1) // time_stride + 1."""

    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    time_stride: int = 1

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's dynamic_axes: every symbolic dimension by its symbol."""
        return {t["name"]: {i: d for i, d in enumerate(t["shape"]) if isinstance(d, str)}
                for t in (*self.inputs, *self.outputs)}

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t["name"] for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t["name"] for t in self.outputs)


def tensor(name: str, dtype: str, shape: list, role: str) -> dict:
    return {"name": name, "dtype": dtype, "shape": list(shape), "role": role}


@dataclass(frozen=True)
class UpstreamModel:
    """What a family read from upstream files: the model config, and the profile settings they fix."""

    config: Any                      # the family's config dataclass
    frontend: dict | None = None     # frontend parameters (without `name`) to override in the profile
    vocabulary: dict | None = None   # profile vocabulary spec
    source: str = ""                 # the files it came from, for messages


@dataclass(frozen=True)
class RecipeSettings:
    """How the training recipe trains the family's reference (ascend_asr.recipes.train_reference)."""

    epochs: int
    batch_frames: int      # padded frames per batch (batch size x longest utterance)
    learning_rate: float


class Family(abc.ABC):
    """One model family. Subclasses set the class attributes and implement the methods."""

    name: str = ""
    default_profile: str = ""        # atc_profiles/<name>.yaml: ATC options, batch sizes, gears
    frontend: str = ""               # the frontend the family's features come from
    # frontends the family itself defines: (frontend class with a `name`, its parameter dataclass) pairs;
    # ascend_asr.frontends finds them through the registry, so a family package owns its feature definition
    frontends: tuple = ()
    vocabulary_kind: str = "characters"  # or "phones"
    reference_profile: str = ""      # the trained reference shipped in assets/models, by profile
    reference_checkpoint: str = ""   # its file name there
    checkpoint_storage: str = "fp16"  # the precision the family's save writes the weights in (model card)
    # module with main(argv) for chunk-by-chunk streaming with carried states (`infer --streaming`,
    # `ascend-asr stream`), when the family streams
    streaming: str = ""
    # commands the family adds to `ascend-asr`: (name, module with main(argv), one-line help)
    commands: tuple = ()
    config_help: str = ""            # what --config takes, for the CLI
    masks_padding: bool = True       # False: an utterance's scores depend on the frames it is padded to
    recipe: RecipeSettings | None = None
    presets: dict[str, Callable[[], Any]] = {}
    config_class: type | None = None  # the config dataclass: from_dict(d) and to_dict()

    # -- configs (pure Python) -------------------------------------------------------------------
    def preset(self, name: str):
        if name not in self.presets:
            raise ProfileError(f"{self.name}: no config named {name!r}; presets: {sorted(self.presets)}, "
                               f"or give the upstream config file ({self.config_help})")
        return self.presets[name]()

    def config_from_dict(self, d: dict):
        """The config from its profile form (`model_config:` as a mapping)."""
        return self.config_class.from_dict(d)

    def config_to_dict(self, config) -> dict:
        """The profile form of a config: `config_from_dict(config_to_dict(c)) == c`."""
        return config.to_dict()

    def resolve_config(self, model_config=None):
        """A profile's `model_config`: a preset name or a mapping."""
        if isinstance(model_config, dict):
            try:
                return self.config_from_dict(model_config)
            except ProfileError:
                raise
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise ProfileError(f"{self.name}: model_config {model_config} does not describe a model ({exc}); "
                                   f"write it with `ascend-asr profile` or name a preset ({', '.join(self.presets)})"
                                   ) from None
        if not model_config:
            raise ProfileError(f"{self.name}: the profile names no model_config; presets: {sorted(self.presets)}")
        return self.preset(str(model_config))

    @abc.abstractmethod
    def read_upstream(self, config_path: str | None = None, checkpoint: str | None = None) -> UpstreamModel:
        """The model exactly as upstream files describe it (its config file, or the checkpoint itself)."""

    def needs_config(self):
        raise ProfileError(f"{self.name}: give --config ({self.config_help}), or a preset as the profile's "
                           f"model_config ({', '.join(sorted(self.presets))})")

    @abc.abstractmethod
    def model_sizes(self, config) -> tuple[int, int]:
        """(feature size the model takes, output classes it gives), to check a profile against its model."""

    def check_sizes(self, config, feature_size: int, num_classes: int, source: str) -> None:
        """The profile's frontend and vocabulary must fit the model its model_config builds."""
        features, classes = self.model_sizes(config)
        if (features, classes) != (feature_size, num_classes):
            raise ProfileError(
                f"{source}: the {self.name} model takes {features} features and gives {classes} classes, but the "
                f"profile's frontend gives {feature_size} features and its vocabulary has {num_classes} labels "
                "(blank included); make the frontend, vocabulary and model_config come from the same upstream files "
                "(ascend-asr profile --config/--checkpoint, or --base a profile whose vocabulary fits)")

    @abc.abstractmethod
    def io_spec(self, feature_size: int, num_classes: int) -> IOSpec:
        """The export I/O for features of `feature_size` and `num_classes` output classes."""

    # -- models (PyTorch, imported on call) ------------------------------------------------------
    @abc.abstractmethod
    def build(self, config):
        """A torch.nn.Module in inference mode, with upstream's parameter names."""

    @abc.abstractmethod
    def load(self, checkpoint: str, config, **options):
        """`build(config)` with the checkpoint (in its upstream format) loaded strictly."""

    def save(self, model, profile, path: str, info: dict) -> None:
        """Write `model` in the family's upstream checkpoint format (the training recipe)."""
        raise NotImplementedError(f"{self.name}: no upstream checkpoint writer")

    def training_outputs(self, model, inputs):
        """(log-probs [T, B, C], output lengths [B]) for CTC training, from the profile's input tensors."""
        raise NotImplementedError(f"{self.name}: not trainable by the recipe")

    def reference_checkpoint_path(self) -> str | None:
        """The shipped trained checkpoint, or None."""
        if not self.reference_checkpoint:
            return None
        path = os.path.join(REFERENCE_DIR, self.reference_checkpoint)
        return path if os.path.isfile(path) else None


REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "models")


def positive_int(value, what: str) -> int:
    """`value` if it is a whole number of at least 1 (not a bool, not "64", not 64.0), else a ProfileError."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ProfileError(f"{what} {value!r} is not a positive integer")
    return value


def require_file(path: str, what: str, error=ProfileError) -> str:
    if not path or not os.path.isfile(path):
        raise error(f"{path}: {what} not found; check the path")
    return path


def require_checkpoint(path: str) -> str:
    return require_file(path, "checkpoint", CheckpointError)
