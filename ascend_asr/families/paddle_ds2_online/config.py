"""PaddleSpeech DeepSpeech2-online configs: presets, and the recipe's YAML files read as upstream reads them.

The aishell `asr0` recipe (examples/aishell/asr0/conf/deepspeech2_online.yaml) gives the network
(`num_conv_layers`, `num_rnn_layers`, `rnn_layer_size`, `rnn_direction`, `num_fc_layers`,
`fc_layers_size_list`, `use_gru`, `blank_id`), `vocab_filepath` (data/lang_char/vocab.txt) and
`preprocess_config` (conf/preprocess.yaml, whose `process:` list holds `fbank_kaldi` and `cmvn_json`).
Upstream's trainer sets `input_dim` from the features (the fbank's `n_mels`) and `output_dim` from the
vocabulary (paddlespeech/s2t/exps/deepspeech2/model.py), then `DeepSpeech2Model.from_config` builds
the model. Paths inside the files are relative to the recipe folder (the parent of conf/), from
which upstream's run.sh runs.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import yaml

from ...errors import ProfileError
from ..base import positive_int

CONV_CHANNELS = 32  # Conv2dSubsampling4Pure(feat_size, 32): fixed upstream (models/ds2/deepspeech2.py)


@dataclass(frozen=True)
class PaddleDs2OnlineConfig:
    feature_size: int = 161
    num_classes: int = 14
    num_rnn_layers: int = 5
    rnn_layer_size: int = 1024
    num_fc_layers: int = 0
    fc_layers_size_list: tuple = ()
    num_conv_layers: int = 2  # upstream builds two convolutions whatever this says; kept for the record
    blank_id: int = 0
    use_gru: bool = False

    def __post_init__(self):
        for name in ("feature_size", "num_classes", "num_rnn_layers", "rnn_layer_size"):
            positive_int(getattr(self, name), f"PaddleSpeech DS2 {name}")
        if self.feature_size < 7:
            raise ProfileError(f"PaddleSpeech DS2 feature_size {self.feature_size}: the two 3x3 stride-2 "
                               "convolutions need at least 7 feature bins")
        if len(self.fc_layers_size_list) < self.num_fc_layers:
            raise ProfileError(f"PaddleSpeech DS2: num_fc_layers {self.num_fc_layers} but fc_layers_size_list "
                               f"{list(self.fc_layers_size_list)} names fewer sizes")
        if not 0 <= self.blank_id < self.num_classes:
            raise ProfileError(f"PaddleSpeech DS2 blank_id {self.blank_id} is not a class of {self.num_classes}")

    @property
    def conv_output_size(self) -> int:
        """Conv2dSubsampling4Pure.output_dim: 32 channels x the feature bins left after two 3x3 stride-2 convs."""
        return ((self.feature_size - 1) // 2 - 1) // 2 * CONV_CHANNELS

    @property
    def encoder_size(self) -> int:
        return self.fc_layers_size_list[self.num_fc_layers - 1] if self.num_fc_layers else self.rnn_layer_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fc_layers_size_list"] = list(self.fc_layers_size_list)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PaddleDs2OnlineConfig":
        d = dict(d)
        d["fc_layers_size_list"] = tuple(d.get("fc_layers_size_list") or ())
        return cls(**d)


def output_length(frames: int) -> int:
    """Conv2dSubsampling4Pure: ((T - 1) // 2 - 1) // 2 output frames, never below 0."""
    return max(0, ((frames - 1) // 2 - 1) // 2)


def small() -> PaddleDs2OnlineConfig:
    """The recipe's structure with 161 bins, two LSTM layers of 64 and the 14-label demo vocabulary."""
    return PaddleDs2OnlineConfig(num_rnn_layers=2, rnn_layer_size=64)


def aishell_structure(num_classes: int) -> PaddleDs2OnlineConfig:
    """The aishell asr0 deepspeech2_online.yaml network (5 forward LSTMs of 1024, no FC) for `num_classes`."""
    return PaddleDs2OnlineConfig(num_classes=num_classes)


PRESETS = {"paddle_ds2_online_small": small}


# -- the recipe's YAML files -------------------------------------------------------------------
def _load_yaml(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); give PaddleSpeech's {what}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a YAML mapping, found {type(data).__name__}; give PaddleSpeech's {what}")
    return data


def recipe_path(value, config_path: str, key: str) -> str:
    """A path from the recipe: absolute, else relative to the recipe folder (conf/'s parent, where run.sh runs),
    else relative to the config's own folder."""
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{config_path}: {key}: expected a path, found {value!r}")
    value = value.strip()
    if os.path.isabs(value):
        return value
    conf_dir = os.path.dirname(os.path.abspath(config_path))
    for base in (os.path.dirname(conf_dir), conf_dir):
        candidate = os.path.join(base, value)
        if os.path.exists(candidate):
            return candidate
    raise ProfileError(f"{config_path}: {key}: {value!r} not found in the recipe folder {os.path.dirname(conf_dir)} "
                       f"nor beside the config; give the recipe's files in their layout (conf/, data/)")


def _network(conf: dict, path: str, feature_size: int, num_classes: int) -> PaddleDs2OnlineConfig:
    if conf.get("rnn_direction", "forward") != "forward":
        raise ProfileError(f"{path}: rnn_direction {conf.get('rnn_direction')!r}: only 'forward' (the online, "
                           "streamable model) is this family; 'bidirect' is PaddleSpeech's offline DS2")
    use_gru = conf.get("use_gru", False)
    if not isinstance(use_gru, bool):
        raise ProfileError(f"{path}: use_gru {use_gru!r}: expected True or False")
    num_fc = conf.get("num_fc_layers", 0)
    if isinstance(num_fc, bool) or not isinstance(num_fc, int) or num_fc < 0:
        raise ProfileError(f"{path}: num_fc_layers {num_fc!r} is not a whole number >= 0")
    sizes = conf.get("fc_layers_size_list", ())
    sizes = tuple(sizes) if isinstance(sizes, (list, tuple)) else ()  # the recipe writes "-1," when unused
    if num_fc and (len(sizes) < num_fc or not all(isinstance(s, int) and s > 0 for s in sizes[:num_fc])):
        raise ProfileError(f"{path}: num_fc_layers: {num_fc} needs fc_layers_size_list with {num_fc} positive "
                           f"sizes, found {conf.get('fc_layers_size_list')!r}")
    feat_dim = conf.get("feat_dim")
    if feat_dim is not None and feat_dim != feature_size:
        raise ProfileError(f"{path}: feat_dim {feat_dim} disagrees with the fbank's n_mels {feature_size} in its "
                           "preprocess_config; upstream builds the model from n_mels: make them equal")
    return PaddleDs2OnlineConfig(
        feature_size=feature_size, num_classes=num_classes,
        num_rnn_layers=positive_int(conf.get("num_rnn_layers", 4), f"{path}: num_rnn_layers"),
        rnn_layer_size=positive_int(conf.get("rnn_layer_size", 1024), f"{path}: rnn_layer_size"),
        num_fc_layers=num_fc, fc_layers_size_list=sizes[:num_fc],
        num_conv_layers=conf.get("num_conv_layers", 2), blank_id=conf.get("blank_id", 0), use_gru=use_gru)


def read_preprocess(path: str) -> dict:
    """Frontend parameters (without `name`) from preprocess.yaml: fbank_kaldi, then cmvn_json. SpecAugment steps
    (time_warp, freq_mask, time_mask) are training-only upstream and skipped; dither is training-only too
    (LogMelSpectrogramKaldi uses it only when train=True)."""
    conf = _load_yaml(path, "conf/preprocess.yaml")
    steps = conf.get("process")
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ProfileError(f"{path}: no `process:` list of steps; expected PaddleSpeech's conf/preprocess.yaml")
    kinds = [s.get("type") for s in steps]
    if not kinds or kinds[0] != "fbank_kaldi":
        raise ProfileError(f"{path}: the first step is {kinds[:1]}, expected fbank_kaldi (the DS2-online recipe's "
                           "features); other feature types are not implemented")
    fbank = steps[0]
    unknown = sorted(set(fbank) - {"type", "fs", "n_mels", "n_shift", "win_length", "dither", "energy_floor"})
    if unknown:
        raise ProfileError(f"{path}: fbank_kaldi options {unknown} are not implemented")
    frontend = {"sample_rate": fbank.get("fs", 16000), "n_mels": fbank.get("n_mels", 80),
                "n_shift": fbank.get("n_shift", 160), "win_length": fbank.get("win_length", 400),
                "energy_floor": float(fbank.get("energy_floor", 0.0))}
    for key in ("sample_rate", "n_mels", "n_shift", "win_length"):
        positive_int(frontend[key], f"{path}: fbank_kaldi {key}:")
    cmvn = [s for s in steps[1:] if s.get("type") == "cmvn_json"]
    inference = [s.get("type") for s in steps[1:] if s.get("type") not in ("cmvn_json", "time_warp", "freq_mask",
                                                                            "time_mask")]
    if inference:
        raise ProfileError(f"{path}: steps {inference} are not implemented (the recipe has fbank_kaldi, cmvn_json "
                           "and SpecAugment)")
    if cmvn:
        frontend["cmvn_stats"] = recipe_path(cmvn[0].get("cmvn_path"), path, "cmvn_json cmvn_path")
    return frontend


def read_vocab(path: str) -> list[str]:
    """Upstream's load_dict: the first word of each line; <blank> put first and <eos> last when absent."""
    try:
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n").split(" ")[0] for line in f]
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read vocab.txt ({exc}); give the recipe's data/lang_char/vocab.txt") from None
    if "<blank>" not in tokens:
        tokens.insert(0, "<blank>")
    if "<eos>" not in tokens:
        tokens.append("<eos>")
    dup = sorted({t for t in tokens if tokens.count(t) > 1}) if len(set(tokens)) != len(tokens) else []
    if dup:
        raise ProfileError(f"{path}: tokens {dup[:5]} appear twice; a vocab.txt has one token a line")
    return tokens


def read_recipe(config_path: str) -> tuple[PaddleDs2OnlineConfig, dict, dict]:
    """(model config, frontend parameters, vocabulary spec) from the recipe's deepspeech2_online.yaml."""
    conf = _load_yaml(config_path, "conf/deepspeech2_online.yaml")
    if "rnn_layer_size" not in conf or "preprocess_config" not in conf:
        raise ProfileError(f"{config_path}: no rnn_layer_size/preprocess_config; expected PaddleSpeech's "
                           "examples/*/asr0/conf/deepspeech2_online.yaml")
    frontend = read_preprocess(recipe_path(conf["preprocess_config"], config_path, "preprocess_config"))
    labels = read_vocab(recipe_path(conf.get("vocab_filepath"), config_path, "vocab_filepath"))
    config = _network(conf, config_path, frontend["n_mels"], len(labels))
    # the decoder text: <space> is a space (TextFeaturizer.char_detokenize); the specials decode to nothing
    shown = [" " if t == "<space>" else t for t in labels]
    return config, frontend, {"labels": shown, "blank": config.blank_id, "separator": ""}
