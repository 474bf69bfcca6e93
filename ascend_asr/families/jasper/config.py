"""Jasper configs: presets, and NVIDIA DeepLearningExamples' YAML (`configs/jasper*.yaml`) read as it is.

NVIDIA's YAML keeps the blocks under `jasper.encoder.blocks`, and writes repeated blocks as YAML
aliases (`- &B1 {...}` then `- *B1`), so after loading both entries are one dict. NVIDIA's
encoder pops `residual_dense` from each block it builds; with shared dicts the second copy would
lose it. Every block here is its own copy before anything reads it.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import yaml

from ...errors import ProfileError
from ..base import positive_int

NUM_CLASSES = 29  # 28 labels + blank (last)
ACTIVATIONS = ("relu", "hardtanh", "selu")
# JasperBlock's parameters as NVIDIA's config validation accepts them; a block-level `activation` passes
# there but is overwritten by the encoder's, as here. Anything else (NeMo's kernel_size_factor) is refused.
BLOCK_KEYS = {"filters", "repeat", "kernel_size", "stride", "dilation", "dropout", "residual", "residual_dense",
              "activation"}


def _block(filters, repeat, kernel, dropout, stride=1, dilation=1, residual=True, residual_dense=True):
    return {"filters": filters, "repeat": repeat, "kernel_size": [kernel], "stride": [stride],
            "dilation": [dilation], "dropout": dropout, "residual": residual, "residual_dense": residual_dense}


# configs/jasper10x5dr_speedp-online_speca.yaml, `jasper: encoder: blocks:`
JASPER_10X5DR_BLOCKS = [
    _block(256, 1, 11, 0.2, stride=2, residual=False, residual_dense=False),
    *[_block(256, 5, 11, 0.2) for _ in range(2)],
    *[_block(384, 5, 13, 0.2) for _ in range(2)],
    *[_block(512, 5, 17, 0.2) for _ in range(2)],
    *[_block(640, 5, 21, 0.3) for _ in range(2)],
    *[_block(768, 5, 25, 0.3) for _ in range(2)],
    _block(896, 1, 29, 0.4, dilation=2, residual=False, residual_dense=False),
    _block(1024, 1, 1, 0.4, residual=False, residual_dense=False),
]

JASPER_SMALL_BLOCKS = [
    _block(64, 1, 11, 0.1, stride=2, residual=False, residual_dense=False),
    *[_block(96, 2, 11, 0.1) for _ in range(2)],
    *[_block(128, 2, 13, 0.1) for _ in range(2)],
    _block(160, 1, 17, 0.1, dilation=2, residual=False, residual_dense=False),
    _block(192, 1, 1, 0.1, residual=False, residual_dense=False),
]


@dataclass(frozen=True)
class JasperConfig:
    blocks: list = field(default_factory=lambda: copy.deepcopy(JASPER_10X5DR_BLOCKS))
    in_feats: int = 64
    n_classes: int = NUM_CLASSES
    activation: str = "relu"
    use_conv_masks: bool = True
    frame_splicing: int = 1

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ProfileError(f"Jasper activation {self.activation!r}: known {ACTIVATIONS}")
        if self.frame_splicing != 1:
            raise ProfileError(f"Jasper frame_splicing={self.frame_splicing}: only 1 is supported (as NVIDIA's "
                               "feature code, which raises for other values)")
        for i, block in enumerate(self.blocks):
            unknown = sorted(set(block) - BLOCK_KEYS)
            missing = sorted({"filters", "repeat", "kernel_size", "dropout"} - set(block))
            if unknown or missing:
                raise ProfileError(f"Jasper block {i}: unknown keys {unknown}, missing keys {missing}")

    @classmethod
    def from_dict(cls, d: dict) -> "JasperConfig":
        """Our profile form (the fields above), or NVIDIA's YAML as loaded."""
        if "jasper" in d:
            return config_from_nvidia(d)
        return cls(**{**d, "blocks": [dict(b) for b in d.get("blocks", JASPER_10X5DR_BLOCKS)]})

    def to_dict(self) -> dict:
        return {"blocks": [dict(b) for b in self.blocks], "in_feats": self.in_feats, "n_classes": self.n_classes,
                "activation": self.activation, "use_conv_masks": self.use_conv_masks,
                "frame_splicing": self.frame_splicing}


def jasper_10x5dr() -> JasperConfig:
    return JasperConfig()


def jasper_small() -> JasperConfig:
    return JasperConfig(blocks=copy.deepcopy(JASPER_SMALL_BLOCKS))


PRESETS = {"jasper10x5dr": jasper_10x5dr, "jasper_small": jasper_small}


def read_nvidia_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read NVIDIA's Jasper YAML ({exc})") from exc
    if not isinstance(cfg, dict) or not isinstance(cfg.get("jasper"), dict):
        raise ProfileError(f"{path}: no 'jasper:' section; expected NVIDIA's configs/jasper10x5dr_*.yaml layout")
    return cfg


def config_from_nvidia(cfg: dict, source: str = "NVIDIA Jasper YAML") -> JasperConfig:
    """`jasper.encoder` (in_feats, activation, use_conv_masks, frame_splicing, blocks) and the labels.

    The blocks sit under `jasper.encoder.blocks` (DeepLearningExamples); `jasper.blocks` is read too.
    Classes are the labels plus the blank, as NVIDIA's `helpers.add_ctc_blank`. NVIDIA's encoder requires
    `in_feats` and `activation`; `use_conv_masks` defaults to False there, which we refuse (padding would
    leak into every utterance), so it must be given.
    """
    try:
        jasper = cfg["jasper"]
        encoder = jasper.get("encoder") or {}
        if not isinstance(encoder, dict):
            raise ProfileError(f"jasper.encoder is {type(encoder).__name__}, not a mapping")
        blocks = encoder.get("blocks", jasper.get("blocks"))
        if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
            raise ProfileError("no list of block mappings under jasper.encoder.blocks")
        if not isinstance(cfg.get("labels"), list):
            raise ProfileError("no 'labels' list; the number of classes comes from it")
        missing = [k for k in ("in_feats", "activation", "use_conv_masks") if k not in encoder]
        if missing:
            raise ProfileError(f"jasper.encoder lacks {missing} (NVIDIA's encoder requires in_feats and activation; "
                               "use_conv_masks must be true)")
        if encoder["use_conv_masks"] is not True:
            raise ProfileError("use_conv_masks is not true: without masks every utterance's outputs depend on its "
                               "padding (NVIDIA's Triton export uses that form; export the masked config)")
        config = JasperConfig(blocks=[_nvidia_block(dict(b), i) for i, b in enumerate(blocks)],  # aliases broken
                              in_feats=positive_int(encoder["in_feats"], "in_feats"),
                              n_classes=len(cfg["labels"]) + 1, activation=str(encoder["activation"]),
                              use_conv_masks=True,
                              frame_splicing=positive_int(encoder.get("frame_splicing", 1), "frame_splicing"))
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ProfileError(f"{source}: not a Jasper config NVIDIA's code would build ({type(exc).__name__}: "
                           f"{exc}); compare it with configs/jasper10x5dr_speedp-online_speca.yaml") from None
    return config


def _nvidia_block(block: dict, index: int) -> dict:
    """One block as NVIDIA's JasperBlock takes it: list-valued kernel/stride/dilation, 'same' padding only,
    residual defaulting to True; a block may not both stride and dilate."""
    block = copy.deepcopy(block)
    if block.pop("padding", "same") != "same":
        raise ProfileError(f"block {index}: only padding 'same' is implemented (NVIDIA's JasperBlock too)")
    for key in ("kernel_size", "stride", "dilation"):
        if key in block and not (isinstance(block[key], list) and block[key]
                                 and all(isinstance(v, int) and v > 0 for v in block[key])):
            raise ProfileError(f"block {index}: {key} {block[key]!r} must be a list of positive ints, as NVIDIA's")
    for key in ("filters", "repeat"):
        positive_int(block.get(key), f"block {index} {key}")
    if block.get("stride", [1])[0] > 1 and block.get("dilation", [1])[0] > 1:
        raise ProfileError(f"block {index}: stride and dilation both above 1 (NVIDIA's JasperBlock refuses it)")
    return block


# NVIDIA `input_val.filterbank_features` key -> our jasper_filterbank parameter
FILTERBANK_KEYS = {"sample_rate": "sample_rate", "window_size": "window_size", "window_stride": "window_stride",
                   "n_filt": "n_mels"}
# NVIDIA's FilterbankFeatures defaults, where a config leaves a key out (common/features.py)
NVIDIA_DEFAULTS = {"sample_rate": 8000, "window_size": 0.02, "window_stride": 0.01, "window": "hamming",
                   "normalize": "per_feature", "n_fft": None, "preemph": 0.97, "n_filt": 64, "lowfreq": 0,
                   "highfreq": None, "log": True, "pad_align": 8, "frame_splicing": 1}


def frontend_from_nvidia(cfg: dict, source: str) -> dict:
    """jasper_filterbank parameters from `input_val` (the evaluation pipeline's settings), with NVIDIA's own
    defaults for what it leaves out; settings this frontend does not implement are refused.

    Dither stays off: NVIDIA adds it even in evaluation, which makes results irreproducible.
    """
    try:
        section = cfg.get("input_val") or cfg.get("input_eval") or {}
        fb = {**NVIDIA_DEFAULTS, **(section.get("filterbank_features") or {})}
        dataset = section.get("audio_dataset") or {}
        refused = {"frame_splicing": fb["frame_splicing"] != 1, "window": fb["window"] != "hann",
                   "normalize": fb["normalize"] != "per_feature", "lowfreq": fb["lowfreq"] != 0,
                   "highfreq": fb["highfreq"] not in (None, fb["sample_rate"] / 2), "log": fb["log"] is not True}
        bad = {k: fb[k] for k, is_bad in refused.items() if is_bad}
        if bad:
            raise ProfileError(f"filterbank_features {bad}: the jasper_filterbank frontend implements NVIDIA's "
                               "hann window, per_feature normalisation, log features over 0..sample_rate/2, "
                               "frame_splicing 1")
        frontend = {ours: fb[theirs] for theirs, ours in FILTERBANK_KEYS.items()}
        win_length = int(fb["sample_rate"] * fb["window_size"])
        frontend["n_fft"] = fb["n_fft"] or 2 ** math.ceil(math.log2(win_length))
        frontend["pad_align"] = fb["pad_align"]
        frontend["preemph"] = 0.0 if fb["preemph"] is None else float(fb["preemph"])  # None: no pre-emphasis
        if "trim_silence" in dataset:
            frontend["trim_silence"] = bool(dataset["trim_silence"])
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{source}: input_val is not NVIDIA's layout ({type(exc).__name__}: {exc})") from None
    return frontend
