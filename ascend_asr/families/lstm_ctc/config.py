"""LSTM-CTC configs: presets, ModelZoo's `conf/ctc_config.yaml`, and the training package's parameters.

ModelZoo's `steps/train_ctc.py` turns the YAML's CNN strings ("[(1, 32), (32, 32)]") into values with
`eval`; here they are parsed as Python literals and nothing else. It builds
`rnn_param` {rnn_input_size, rnn_hidden_size, rnn_layers, rnn_type: nn.LSTM, bidirectional, batch_norm}
and `cnn_param` {batch_norm, activate_function, layer: [[channel, kernel, stride, padding, pooling]...]},
and `save_package` stores both beside `num_class`: blank + UNK + the units of `vocab_file` (the YAML's
`output_class_dim` is not read upstream; here it stands in, + 2, when the units file is absent).
`batch_norm:` appears twice in the YAML; YAML keeps the last, which upstream uses for both.
`bidirectional: True` there means each layer pairs a forward LSTM with one over the flipped frames.
"""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import asdict, dataclass

import yaml

from ...errors import CheckpointError, ProfileError
from ...timit import read_units
from ..base import positive_int

NUM_CLASSES = 41  # blank, UNK and the 39 folded TIMIT phones
FEATURE_SIZE = 243  # 81-dim Kaldi fbank spliced with 2 frames of right context
SPECIALS = 2  # blank and UNK come before the units (upstream's Vocab)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "hardtanh")
# torch.nn classes as the package pickles them -> our activation names
ACTIVATION_CLASSES = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Hardtanh": "hardtanh"}


@dataclass(frozen=True)
class LstmCtcConfig:
    input_size: int = FEATURE_SIZE
    hidden_size: int = 384
    num_layers: int = 4
    num_classes: int = NUM_CLASSES
    conv_channels: tuple = (32, 32)              # output channels per CNN layer (input: 1, then the previous)
    conv_kernels: tuple = ((3, 3), (3, 3))       # (time, feature)
    conv_strides: tuple = ((1, 2), (2, 2))
    conv_paddings: tuple = ((1, 1), (1, 1))
    activation: str = "relu"

    def __post_init__(self):
        lists = (self.conv_channels, self.conv_kernels, self.conv_strides, self.conv_paddings)
        if len({len(x) for x in lists}) != 1:
            raise ProfileError(f"LSTM-CTC CNN settings disagree in length: channels {self.conv_channels}, kernels "
                               f"{self.conv_kernels}, strides {self.conv_strides}, paddings {self.conv_paddings}")
        if self.activation not in ACTIVATIONS:
            raise ProfileError(f"LSTM-CTC activation {self.activation!r}: known {ACTIVATIONS}")
        if min(self.hidden_size, self.num_layers, self.num_classes, self.input_size) < 1:
            raise ProfileError(f"LSTM-CTC sizes must be positive: {self}")

    def to_dict(self) -> dict:
        return {k: [list(v) if isinstance(v, tuple) else v for v in value] if isinstance(value, tuple) else value
                for k, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "LstmCtcConfig":
        d = dict(d)
        for key in ("conv_channels", "conv_kernels", "conv_strides", "conv_paddings"):
            if key in d:
                d[key] = tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in d[key])
        return cls(**d)

    def output_length(self, frames: int) -> int:
        """Output frames for `frames` input frames: each convolution's time-axis arithmetic."""
        for (k, _), (s, _), (p, _) in zip(self.conv_kernels, self.conv_strides, self.conv_paddings):
            frames = (frames + 2 * p - k) // s + 1
        return frames


def lstm_ctc() -> LstmCtcConfig:
    """ModelZoo conf/ctc_config.yaml."""
    return LstmCtcConfig()


def lstm_ctc_small() -> LstmCtcConfig:
    """The same structure and key names, small enough for tests."""
    return LstmCtcConfig(hidden_size=32, conv_channels=(8, 8))


def lstm_ctc_char() -> LstmCtcConfig:
    """A character-vocabulary variant (blank, UNK, space, a-z, apostrophe): the trained reference."""
    return LstmCtcConfig(hidden_size=160, num_layers=3, num_classes=30, conv_channels=(16, 16))


PRESETS = {"lstm_ctc": lstm_ctc, "lstm_ctc_small": lstm_ctc_small, "lstm_ctc_char": lstm_ctc_char}


def literal(value, key: str, source: str):
    """A Python literal from the YAML ("[(1, 32), (32, 32)]", "None"), parsed, never evaluated."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise ProfileError(f"{source}: {key}: {value!r} is not a Python literal") from exc


def _check_rnn(rnn_type, bidirectional, source: str) -> None:
    name = str(rnn_type).rsplit(".", 1)[-1]
    if name != "LSTM":
        raise ProfileError(f"{source}: rnn_type {rnn_type!r}: only nn.LSTM is implemented")
    if bidirectional is False:
        raise ProfileError(f"{source}: bidirectional: False is not implemented (ModelZoo's model always pairs a "
                           "forward and a flipped LSTM per layer)")


def _cnn_layers(layers, source: str) -> dict:
    """Our conv settings from [[(in, out), kernel, stride, padding, pooling], ...]."""
    channels, kernels, strides, paddings = [], [], [], []
    for i, layer in enumerate(layers):
        try:
            (_, out), kernel, stride, padding = layer[:4]
            pooling = layer[4] if len(layer) > 4 else None
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"{source}: CNN layer {i} {layer!r} is not [(in, out), kernel, stride, padding]") from exc
        if pooling is not None:
            raise ProfileError(f"{source}: CNN layer {i} has pooling {pooling!r}; only pooling None is implemented")
        pair = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else (int(v), int(v)))
        channels.append(int(out))
        kernels.append(pair(kernel))
        strides.append(pair(stride))
        paddings.append(pair(padding))
    return {"conv_channels": tuple(channels), "conv_kernels": tuple(kernels), "conv_strides": tuple(strides),
            "conv_paddings": tuple(paddings)}


def vocab_file_candidates(vocab_file: str, config_path: str) -> list[str]:
    """Where ModelZoo's `vocab_file: 'data/units'` may be: upstream opens it from the current directory (its
    1p/ folder, which holds conf/ctc_config.yaml); also beside the config's conf/ folder, and beside the config."""
    if os.path.isabs(vocab_file):
        return [vocab_file]
    conf_dir = os.path.dirname(os.path.abspath(config_path))
    return list(dict.fromkeys([os.path.abspath(vocab_file), os.path.join(os.path.dirname(conf_dir), vocab_file),
                               os.path.join(conf_dir, vocab_file)]))


def read_vocab_file(vocab_file, config_path: str) -> list[str] | None:
    """The units in upstream's order, or None (with a warning when the config names a file that is not found)."""
    if not vocab_file:
        return None
    if not isinstance(vocab_file, str):
        raise ProfileError(f"{config_path}: vocab_file {vocab_file!r} is not a path")
    candidates = vocab_file_candidates(vocab_file, config_path)
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        print(f"[ascend-asr] warning: {config_path}: vocab_file {vocab_file!r} not found (looked in "
              f"{', '.join(candidates)}); the phone order falls back to the profile's stand-in", file=sys.stderr)
        return None
    return read_units(found)


def read_ctc_config(path: str) -> tuple[LstmCtcConfig, dict, list | None]:
    """(model config, frontend overrides, units or None) from ModelZoo's conf/ctc_config.yaml."""
    try:
        with open(path, encoding="utf-8") as f:
            conf = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read ModelZoo's ctc_config.yaml ({exc})") from exc
    if not isinstance(conf, dict) or "rnn_hidden_size" not in conf:
        raise ProfileError(f"{path}: no rnn_hidden_size; expected ModelZoo's LSTM conf/ctc_config.yaml")
    try:
        return _from_ctc_config(conf, path)
    except ProfileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ProfileError(f"{path}: not a ctc_config.yaml ModelZoo's train_ctc.py would build ({type(exc).__name__}: "
                           f"{exc}); compare it with ModelZoo's conf/ctc_config.yaml") from None


def _from_ctc_config(conf: dict, path: str) -> tuple[LstmCtcConfig, dict, list | None]:
    if conf.get("mel", False) or conf.get("feature_type", "fbank") != "fbank":
        raise ProfileError(f"{path}: mel {conf.get('mel')!r}, feature_type {conf.get('feature_type')!r}: only the "
                           "Kaldi fbank features of the deployed model (mel: False, feature_type: fbank) are implemented")
    _check_rnn(conf.get("rnn_type", "nn.LSTM"), conf.get("bidirectional", True), path)
    if not conf.get("batch_norm", True):
        raise ProfileError(f"{path}: batch_norm: False is not implemented (ModelZoo's deployed model has them)")
    if not conf.get("add_cnn", True):
        raise ProfileError(f"{path}: add_cnn: False is not implemented (the deployed model has its two CNN layers)")
    layers = _int(conf, "layers", 2, path)
    parsed = {k: literal(conf.get(k), k, path) for k in ("channel", "kernel_size", "stride", "padding", "pooling")}
    short = {k: v for k, v in parsed.items() if v is not None and (not isinstance(v, (list, tuple)) or len(v) < layers)}
    if short or any(parsed[k] is None for k in ("channel", "kernel_size", "stride", "padding")):
        raise ProfileError(f"{path}: layers: {layers}, but channel/kernel_size/stride/padding/pooling give "
                           f"{ {k: parsed[k] for k in parsed} }; each needs one entry per layer")
    pooling = parsed["pooling"]
    rows = [[parsed["channel"][i], parsed["kernel_size"][i], parsed["stride"][i], parsed["padding"][i],
             pooling[i] if pooling is not None else None] for i in range(layers)]
    units = read_vocab_file(conf.get("vocab_file"), path)
    num_classes = SPECIALS + (len(units) if units else _int(conf, "output_class_dim", 39, path))
    config = LstmCtcConfig(input_size=_int(conf, "rnn_input_size", FEATURE_SIZE, path),
                           hidden_size=_int(conf, "rnn_hidden_size", None, path),
                           num_layers=_int(conf, "rnn_layers", 4, path),
                           num_classes=num_classes, activation=str(conf.get("activation_function", "relu")).lower(),
                           **_cnn_layers(rows, path))
    frontend = {ours: conf[theirs] for theirs, ours in (("left_ctx", "left_context"), ("right_ctx", "right_context"),
                                                         ("n_skip_frame", "skip_frames"), ("n_downsample", "pad_align"))
                if theirs in conf}
    if "feature_dim" in conf:
        frontend["num_mel_bins"] = _int(conf, "feature_dim", None, path) - 1  # Kaldi fbank with energy: mel bins + 1
    return config, frontend, units


def _int(conf: dict, key: str, default, path: str) -> int:
    return positive_int(conf.get(key, default), f"{path}: {key}:")


def config_from_package(package: dict, source: str) -> LstmCtcConfig:
    """The config from a training package's rnn_param, cnn_param and num_class (save_package)."""
    try:
        rnn, cnn, num_class = package["rnn_param"], package.get("cnn_param") or {}, package["num_class"]
        _check_rnn(rnn.get("rnn_type", "LSTM"), rnn.get("bidirectional", True), source)
        if not package.get("add_cnn", True) or not rnn.get("batch_norm", True):
            raise ProfileError(f"{source}: add_cnn or batch_norm False is not implemented")
        activation = cnn.get("activate_function", "ReLU")
        activation = ACTIVATION_CLASSES.get(str(activation).rsplit(".", 1)[-1], str(activation).lower())
        return LstmCtcConfig(input_size=int(rnn["rnn_input_size"]), hidden_size=int(rnn["rnn_hidden_size"]),
                             num_layers=int(rnn["rnn_layers"]), num_classes=int(num_class), activation=activation,
                             **_cnn_layers(cnn.get("layer") or [], source))
    except (KeyError, TypeError, ValueError, ProfileError) as exc:
        raise CheckpointError(f"{source}: the training package's rnn_param/cnn_param/num_class do not describe an "
                              f"LSTM-CTC model ({exc})") from exc
