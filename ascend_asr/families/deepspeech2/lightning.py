"""deepspeech.pytorch V3.0 checkpoints: PyTorch Lightning pickles with the whole training config inside."""
from __future__ import annotations

import contextlib
import enum
import sys
import types
import typing

import torch

from ..safe_pickle import plain, restricted_load, stand_ins

# Every foreign global a V3.0 Lightning checkpoint names, as omegaconf, hydra and deepspeech_pytorch
# pickle their objects; each loads as an inert stand-in.
DEEPSPEECH_GLOBALS = (
    *(f"omegaconf.{m}" for m in ("dictconfig.DictConfig", "listconfig.ListConfig", "base.ContainerMetadata",
                                 "base.Metadata", "nodes.AnyNode", "nodes.StringNode", "nodes.IntegerNode",
                                 "nodes.FloatNode", "nodes.BooleanNode", "nodes.EnumNode", "nodes.BytesNode",
                                 "nodes.PathNode", "nodes.ValueNode")),
    *(f"deepspeech_pytorch.configs.train_config.{c}" for c in (
        "DeepSpeechConfig", "DeepSpeechTrainerConf", "DataConfig", "SpectConfig", "AugmentationConfig",
        "BiDirectionalConfig", "UniDirectionalConfig", "OptimConfig", "AdamConfig", "SGDConfig", "CheckpointConfig",
        "GCSCheckpointConfig", "ModelConfig")),
    # Lightning 1.1/1.2 keys `callbacks` by the callback class: V3.0's checkpoint handlers
    *(f"deepspeech_pytorch.checkpoint.{c}" for c in ("CheckpointHandler", "FileCheckpointHandler",
                                                     "GCSCheckpointHandler")),
    *(f"deepspeech_pytorch.configs.lightning_config.{c}" for c in ("ModelCheckpointConf", "TrainerConf")),
    "hydra_configs.pytorch_lightning.callbacks.ModelCheckpointConf",
    *(f"deepspeech_pytorch.enums.{e}" for e in ("RNNType", "SpectrogramWindow", "DecoderType", "MultiGPUType",
                                                "DistributedBackend")),
    *(f"torch.nn.modules.rnn.{r}" for r in ("LSTM", "GRU", "RNN")),
    "typing.Any",
)


def read_lightning_checkpoint(path: str) -> dict:
    """The checkpoint as plain Python: `state_dict` tensors, `hyper_parameters` as dicts and values."""
    return plain(restricted_load(path, stand_ins(DEEPSPEECH_GLOBALS)))


class _Pickled:
    """An object pickled by its attributes under an upstream class name."""

    def __init__(self, **state):
        self.__dict__.update(state)

    def __getstate__(self):
        return dict(self.__dict__)


@contextlib.contextmanager
def _upstream_names(classes: dict[str, object]):
    """Make `module.Name` importable for pickle while the checkpoint is written, then remove it."""
    added, replaced = [], []
    missing = object()
    try:
        for dotted, obj in classes.items():
            module_name, name = dotted.rsplit(".", 1)
            parts = module_name.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix not in sys.modules:
                    sys.modules[prefix] = types.ModuleType(prefix)
                    added.append(prefix)
            obj.__module__, obj.__qualname__ = module_name, name
            replaced.append((sys.modules[module_name], name, getattr(sys.modules[module_name], name, missing)))
            setattr(sys.modules[module_name], name, obj)
        yield
    finally:
        for module, name, old in reversed(replaced):  # an imported omegaconf keeps its own classes
            if old is missing:
                delattr(module, name)
            else:
                setattr(module, name, old)
        for name in reversed(added):
            sys.modules.pop(name, None)


def write_lightning_checkpoint(path: str, state_dict: dict, labels, hidden_size: int, hidden_layers: int,
                               spect: dict, epoch: int = 0, global_step: int = 0, learning_rate: float = 1.5e-4,
                               score: float | None = None, rnn_type: str = "lstm") -> None:
    """Save as PyTorch Lightning saves deepspeech.pytorch V3.0 models: `state_dict` plus
    `hyper_parameters` holding omegaconf DictConfigs of deepspeech_pytorch's config classes.

    Neither package is needed: the objects are written under their upstream class names with
    the attribute layout omegaconf pickles (`_metadata`, `_parent`, `_content`, `_flags_cache`).
    """
    def cls(name):
        return type(name, (_Pickled,), {})

    names = ["DictConfig", "ListConfig", "ContainerMetadata", "Metadata", "AnyNode", "StringNode", "IntegerNode",
             "FloatNode", "EnumNode", "BiDirectionalConfig", "SpectConfig", "AdamConfig", "ModelCheckpointConf"]
    c = {n: cls(n) for n in names}
    rnn_types = enum.Enum("RNNType", {"lstm": "lstm", "rnn": "rnn", "gru": "gru"})
    window = enum.Enum("SpectrogramWindow", {"hamming": "hamming", "hann": "hann", "blackman": "blackman",
                                             "bartlett": "bartlett"})
    modules = {**{f"omegaconf.dictconfig.{n}": c[n] for n in ("DictConfig",)},
               "omegaconf.listconfig.ListConfig": c["ListConfig"],
               **{f"omegaconf.base.{n}": c[n] for n in ("ContainerMetadata", "Metadata")},
               **{f"omegaconf.nodes.{n}": c[n] for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode",
                                                          "EnumNode")},
               **{f"deepspeech_pytorch.configs.train_config.{n}": c[n] for n in ("BiDirectionalConfig",
                                                                                  "SpectConfig", "AdamConfig")},
               "deepspeech_pytorch.enums.RNNType": rnn_types, "deepspeech_pytorch.enums.SpectrogramWindow": window,
               "hydra_configs.pytorch_lightning.callbacks.ModelCheckpointConf": c["ModelCheckpointConf"]}

    def node(kind, value):
        return c[kind](_val=value, _metadata=c["Metadata"](ref_type=typing.Any, object_type=None, optional=True,
                                                             key=None, flags={}), _parent=None)

    def dict_config(content, object_type):
        return c["DictConfig"](_metadata=c["ContainerMetadata"](
            ref_type=typing.Any, object_type=object_type, optional=True, key=None, flags={}, key_type=typing.Any,
            element_type=typing.Any), _parent=None, _content=content, _flags_cache=None)

    model_cfg = dict_config({"rnn_type": node("EnumNode", rnn_types[rnn_type]),
                             "hidden_size": node("IntegerNode", hidden_size),
                             "hidden_layers": node("IntegerNode", hidden_layers)}, c["BiDirectionalConfig"])
    spect_cfg = dict_config({"sample_rate": node("IntegerNode", spect["sample_rate"]),
                             "window_size": node("FloatNode", spect["window_size"]),
                             "window_stride": node("FloatNode", spect["window_stride"]),
                             "window": node("EnumNode", window[spect["window"]])}, c["SpectConfig"])
    hparams = dict_config({
        "labels": c["ListConfig"](_content=[node("StringNode", label) for label in labels], _metadata=None,
                                  _parent=None),
        "model_cfg": model_cfg, "precision": node("IntegerNode", 32),
        "optim_cfg": dict_config({"learning_rate": node("FloatNode", learning_rate)}, c["AdamConfig"]),
        "spect_cfg": spect_cfg}, None)
    callbacks = {c["ModelCheckpointConf"]: {"best_model_score": torch.tensor(score if score is not None else 0.0)}}
    with _upstream_names(modules):
        torch.save({"epoch": epoch, "global_step": global_step, "pytorch-lightning_version": "1.2.8",
                    "state_dict": state_dict, "hparams_name": "kwargs", "hyper_parameters": hparams,
                    "callbacks": callbacks, "optimizer_states": [], "lr_schedulers": []}, path)
