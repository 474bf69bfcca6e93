"""DeepSpeech2 configs: presets, and the hyper-parameters a deepspeech.pytorch V3.0 checkpoint carries.

V3.0 builds the model from `hyper_parameters.model_cfg` (`BiDirectionalConfig`: rnn_type, hidden_size,
hidden_layers; `UniDirectionalConfig` adds lookahead_context), the labels from `labels` (blank is
`_`), and the spectrogram from `spect_cfg` (sample_rate, window_size, window_stride, window).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ...errors import CheckpointError, ProfileError

NUM_CLASSES = 29
RNN_TYPES = ("lstm", "gru", "rnn")  # deepspeech_pytorch.enums.RNNType
BLANK = "_"
SPECTROGRAM_WINDOWS = ("hamming", "hann")  # what ascend_asr.spectrogram implements


@dataclass(frozen=True)
class DeepSpeech2Config:
    hidden_size: int = 1024
    hidden_layers: int = 5
    num_classes: int = NUM_CLASSES
    sample_rate: int = 16000
    window_size: float = 0.02
    rnn_type: str = "lstm"

    def __post_init__(self):
        if self.rnn_type not in RNN_TYPES:
            raise ProfileError(f"DeepSpeech2 rnn_type {self.rnn_type!r}: known {RNN_TYPES}")
        if self.hidden_layers < 1 or self.hidden_size < 1:
            raise ProfileError(f"DeepSpeech2 needs hidden_layers >= 1 and hidden_size >= 1, got "
                               f"{self.hidden_layers} and {self.hidden_size}")

    @property
    def feature_size(self) -> int:
        return int(math.floor(self.sample_rate * self.window_size / 2) + 1)  # 161

    @property
    def rnn_input_size(self) -> int:
        freq = self.feature_size
        freq = int(math.floor(freq + 2 * 20 - 41) / 2 + 1)  # 81
        freq = int(math.floor(freq + 2 * 10 - 21) / 2 + 1)  # 41
        return freq * 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeepSpeech2Config":
        return cls(**d)


def deepspeech2_an4() -> DeepSpeech2Config:
    """The AN4 model of the V3.0 release: 5 bidirectional LSTM layers of 1024."""
    return DeepSpeech2Config()


def deepspeech2_small() -> DeepSpeech2Config:
    """Same architecture, 2 bidirectional LSTM layers of 160 (2.6 M parameters): the trained reference."""
    return DeepSpeech2Config(hidden_size=160, hidden_layers=2)


PRESETS = {"deepspeech2": deepspeech2_an4, "deepspeech2_small": deepspeech2_small}


def enum_name(value) -> str:
    """An upstream enum as read from the pickle: its value, or (RNNType's values are torch.nn classes) the
    class's dotted name; 'torch.nn.modules.rnn.LSTM' -> 'lstm'."""
    return str(value).rsplit(".", 1)[-1].lower()


def _section(hparams: dict, key: str, source: str) -> dict:
    value = hparams.get(key)
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: hyper_parameters.{key} is missing or not a mapping ({type(value).__name__});"
                              " is this a deepspeech.pytorch V3.0 checkpoint?")
    return value


def config_from_hyper_parameters(hparams: dict, source: str) -> tuple[DeepSpeech2Config, list, dict]:
    """(model config, labels, spectrogram parameters) from a V3.0 checkpoint's `hyper_parameters`."""
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{source}: hyper_parameters is {type(hparams).__name__}, not a mapping; is this a "
                              "deepspeech.pytorch V3.0 checkpoint?")
    model_cfg = _section(hparams, "model_cfg", source)
    spect = _section(hparams, "spect_cfg", source)
    labels = hparams.get("labels")
    if not isinstance(labels, list) or BLANK not in labels:
        raise CheckpointError(f"{source}: hyper_parameters.labels must be the label list with the blank {BLANK!r}")
    if "lookahead_context" in model_cfg:
        raise CheckpointError(f"{source}: a unidirectional DeepSpeech2 (UniDirectionalConfig, lookahead "
                              f"{model_cfg['lookahead_context']}) is not supported; export a bidirectional model")
    try:
        config = DeepSpeech2Config(hidden_size=int(model_cfg["hidden_size"]),
                                   hidden_layers=int(model_cfg["hidden_layers"]), num_classes=len(labels),
                                   sample_rate=int(spect.get("sample_rate", 16000)),
                                   window_size=float(spect.get("window_size", 0.02)),
                                   rnn_type=enum_name(model_cfg.get("rnn_type", "lstm")))
    except (KeyError, TypeError, ValueError, ProfileError) as exc:
        raise CheckpointError(f"{source}: hyper_parameters.model_cfg {model_cfg} does not describe a DeepSpeech2 "
                              f"({exc})") from exc
    window = enum_name(spect.get("window", "hamming"))
    if window not in SPECTROGRAM_WINDOWS:
        raise CheckpointError(f"{source}: spect_cfg.window {window!r}: the deepspeech_spectrogram frontend implements "
                              f"{SPECTROGRAM_WINDOWS} (V3.0 also allows blackman and bartlett)")
    frontend = {"sample_rate": config.sample_rate, "window_size": config.window_size,
                "window_stride": float(spect.get("window_stride", 0.01)),
                "window": window}
    return config, list(labels), frontend
