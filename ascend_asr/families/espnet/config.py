"""ESPnet2 ASR configs: the `config.yaml` ESPnet writes at training time, read as it is, and presets.

ESPnet dumps every argument of `asr_train` into `config.yaml`; the model is built from `frontend`,
`frontend_conf`, `normalize`, `normalize_conf`, `encoder`, `encoder_conf` and `token_list`. A key the
user left out is absent from `encoder_conf`, and ESPnet then uses the encoder's own default: those
defaults are written out here (ConformerEncoder / TransformerEncoder of espnet 202511). Anything this
family does not implement is refused by name instead of being built differently.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import yaml

from ...errors import ProfileError
from ..base import positive_int

ENCODERS = ("conformer", "transformer")
INPUT_LAYERS = ("conv2d", "conv2d6", "conv2d8")
NORMALIZERS = ("global_mvn", "utterance_mvn", None)
ACTIVATIONS = ("swish", "relu", "tanh", "hardtanh", "selu")

# espnet2/asr/encoder/conformer_encoder.py ConformerEncoder.__init__ defaults (espnet 202511)
CONFORMER_DEFAULTS = {
    "output_size": 256, "attention_heads": 4, "linear_units": 2048, "num_blocks": 6, "input_layer": "conv2d",
    "normalize_before": True, "concat_after": False, "positionwise_layer_type": "linear", "macaron_style": False,
    "rel_pos_type": "legacy", "pos_enc_layer_type": "rel_pos", "selfattention_layer_type": "rel_selfattn",
    "activation_type": "swish", "use_cnn_module": True, "zero_triu": False, "cnn_module_kernel": 31,
    "max_pos_emb_len": 5000,
}
# espnet2/asr/encoder/transformer_encoder.py TransformerEncoder.__init__ defaults: abs_pos, ReLU feed-forward
TRANSFORMER_DEFAULTS = {
    "output_size": 256, "attention_heads": 4, "linear_units": 2048, "num_blocks": 6, "input_layer": "conv2d",
    "normalize_before": True, "concat_after": False, "positionwise_layer_type": "linear",
    "pos_enc_layer_type": "abs_pos",
}
# encoder_conf keys that only matter in training (dropout, stochastic depth) or are checked to be harmless
TRAINING_ONLY = {"dropout_rate", "positional_dropout_rate", "attention_dropout_rate", "stochastic_depth_rate",
                 "layer_drop_rate", "use_flash_attn", "padding_idx", "positionwise_conv_kernel_size"}
# keys whose non-default value changes inference in a way this family does not implement
REFUSED = {"interctc_use_conditioning": False, "ctc_trim": False, "qk_norm": False}


@dataclass(frozen=True)
class EspnetConfig:
    """One ESPnet2 CTC encoder: normalisation, encoder and CTC head (the frontend lives in the profile)."""

    input_size: int = 80            # n_mels of the frontend
    vocab_size: int = 5000          # len(token_list); the CTC blank is id 0 (ESPnet's <blank>)
    encoder: str = "conformer"
    output_size: int = 256
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 12
    input_layer: str = "conv2d"
    normalize_before: bool = True
    concat_after: bool = False
    macaron_style: bool = True
    rel_pos_type: str = "latest"           # conformer: latest | legacy
    pos_enc_layer_type: str = "rel_pos"    # conformer: rel_pos | abs_pos; transformer: abs_pos
    selfattention_layer_type: str = "rel_selfattn"  # conformer: rel_selfattn | selfattn
    activation_type: str = "swish"
    use_cnn_module: bool = True
    zero_triu: bool = False
    cnn_module_kernel: int = 31
    max_pos_emb_len: int = 5000     # only the legacy relative encoding depends on it (its positions count down)
    normalize: str | None = "global_mvn"
    norm_means: bool = True
    norm_vars: bool = True          # utterance_mvn's default is False; the reader sets it from the config

    def __post_init__(self):
        for name in ("input_size", "vocab_size", "output_size", "attention_heads", "linear_units", "num_blocks",
                     "cnn_module_kernel", "max_pos_emb_len"):
            positive_int(getattr(self, name), f"ESPnet {name}")
        checks = {"encoder": (self.encoder, ENCODERS), "input_layer": (self.input_layer, INPUT_LAYERS),
                  "normalize": (self.normalize, NORMALIZERS), "activation_type": (self.activation_type, ACTIVATIONS)}
        for name, (value, known) in checks.items():
            if value not in known:
                raise ProfileError(f"ESPnet {name} {value!r} is not implemented here; known: {list(known)}")
        if self.output_size % self.attention_heads:
            raise ProfileError(f"ESPnet output_size {self.output_size} is not a multiple of attention_heads "
                               f"{self.attention_heads} (ESPnet asserts the same)")
        if self.cnn_module_kernel % 2 == 0:
            raise ProfileError(f"ESPnet cnn_module_kernel {self.cnn_module_kernel} must be odd (ESPnet asserts it)")
        if self.encoder == "transformer" and self.pos_enc_layer_type != "abs_pos":
            raise ProfileError(f"ESPnet transformer pos_enc_layer_type {self.pos_enc_layer_type!r}: only abs_pos")
        if self.encoder == "conformer":
            attention = self.attention_kind()
            if attention is None:
                raise ProfileError(f"ESPnet conformer: pos_enc_layer_type {self.pos_enc_layer_type!r} with "
                                   f"selfattention_layer_type {self.selfattention_layer_type!r} and rel_pos_type "
                                   f"{self.rel_pos_type!r} is not a combination ESPnet builds (or not implemented: "
                                   "rel_pos+rel_selfattn, or abs_pos+selfattn)")

    def attention_kind(self) -> str | None:
        """'rel_latest', 'rel_legacy' or 'abs': what ConformerEncoder builds after its rel_pos_type rewrite."""
        if self.encoder == "transformer":
            return "abs"
        pos, att = self.pos_enc_layer_type, self.selfattention_layer_type
        if self.rel_pos_type == "legacy":
            pos = "legacy_rel_pos" if pos == "rel_pos" else pos
            att = "legacy_rel_selfattn" if att == "rel_selfattn" else att
        elif self.rel_pos_type != "latest" or "legacy" in pos or "legacy" in att:
            return None
        return {("rel_pos", "rel_selfattn"): "rel_latest", ("legacy_rel_pos", "legacy_rel_selfattn"): "rel_legacy",
                ("abs_pos", "selfattn"): "abs"}.get((pos, att))

    @classmethod
    def from_dict(cls, d: dict) -> "EspnetConfig":
        """Our profile form (the fields above), or an ESPnet config.yaml as loaded."""
        if "encoder_conf" in d or "token_list" in d:
            return config_from_espnet(d)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ProfileError(f"ESPnet model_config: unknown keys {unknown}; known: {sorted(fields)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def subsampling(self) -> int:
        return {"conv2d": 4, "conv2d6": 6, "conv2d8": 8}[self.input_layer]


CHAR_VOCABULARY = 31  # <blank>, <unk>, space, a-z, apostrophe, <sos/eos> (the profiles' character list)


def conformer_small() -> EspnetConfig:
    """The trained reference: 4 Conformer blocks of 64 (rel_pos latest, macaron, kernel 15) on 80 log-mels,
    utterance_mvn (ESPnet's per-utterance mean normalisation: no statistics file to carry)."""
    return EspnetConfig(input_size=80, vocab_size=CHAR_VOCABULARY, output_size=64, attention_heads=4,
                        linear_units=256, num_blocks=4, cnn_module_kernel=15, normalize="utterance_mvn",
                        norm_vars=False)


def conformer_base() -> EspnetConfig:
    """The encoder of ESPnet's LibriSpeech-100 Conformer recipe (egs2/librispeech_100/asr1/conf/tuning/
    train_asr_conformer_*.yaml): 12 blocks of 256, 4 heads, 1024 units, kernel 31, macaron, rel_pos latest,
    conv2d; with the profiles' character vocabulary."""
    return EspnetConfig(input_size=80, vocab_size=CHAR_VOCABULARY, output_size=256, attention_heads=4,
                        linear_units=1024, num_blocks=12, cnn_module_kernel=31)


def transformer_base() -> EspnetConfig:
    """ESPnet's Transformer encoder defaults for ASR: 12 blocks of 256, 4 heads, 2048 units, conv2d."""
    return EspnetConfig(input_size=80, vocab_size=CHAR_VOCABULARY, encoder="transformer", output_size=256,
                        attention_heads=4, linear_units=2048, num_blocks=12, macaron_style=False,
                        pos_enc_layer_type="abs_pos", selfattention_layer_type="selfattn", activation_type="relu",
                        use_cnn_module=False)


PRESETS = {"conformer_small": conformer_small, "conformer_base": conformer_base, "transformer_base": transformer_base}


def read_espnet_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read ESPnet's config.yaml ({exc})") from exc
    if not isinstance(cfg, dict) or "encoder" not in cfg or "token_list" not in cfg:
        raise ProfileError(f"{path}: no 'encoder' or 'token_list'; expected the config.yaml ESPnet2's asr_train "
                           "writes (exp/asr_train_*/config.yaml, also inside the packed model zip)")
    return cfg


def config_from_espnet(cfg: dict, source: str = "ESPnet config.yaml", token_list: list | None = None
                       ) -> EspnetConfig:
    """The encoder as ESPnet2's ASRTask.build_model builds it from `cfg`; `token_list` when the config
    names a token file instead of listing the tokens."""
    try:
        tokens = token_list if token_list is not None else cfg.get("token_list")
        if not isinstance(tokens, list) or not tokens:
            raise ProfileError("token_list is not a list of tokens (give the token file beside it)")
        for key in ("preencoder", "postencoder"):
            if cfg.get(key) not in (None, "none"):
                raise ProfileError(f"{key}: {cfg[key]!r} is not implemented (only models without one)")
        if cfg.get("frontend", "default") != "default":
            raise ProfileError(f"frontend {cfg.get('frontend')!r}: only ESPnet's 'default' (STFT + log-mel)")
        model = cfg.get("model", "espnet")
        if model not in ("espnet", None):
            raise ProfileError(f"model {model!r}: only ESPnet2's 'espnet' (ESPnetASRModel) is implemented")
        encoder = cfg["encoder"]
        if encoder not in ENCODERS:
            raise ProfileError(f"encoder {encoder!r} is not implemented; known: {list(ENCODERS)}")
        conf = dict(cfg.get("encoder_conf") or {})
        defaults = CONFORMER_DEFAULTS if encoder == "conformer" else TRANSFORMER_DEFAULTS
        for key, harmless in REFUSED.items():
            if conf.pop(key, harmless) != harmless:
                raise ProfileError(f"encoder_conf {key}: {not harmless!r} is not implemented")
        conf.pop("interctc_layer_idx", None)  # intermediate CTC adds training losses only (no conditioning)
        unknown = sorted(set(conf) - set(defaults) - TRAINING_ONLY)
        if unknown:
            raise ProfileError(f"encoder_conf keys {unknown} are not implemented for the {encoder} encoder")
        merged = {**defaults, **{k: v for k, v in conf.items() if k in defaults}}
        if merged.pop("positionwise_layer_type") != "linear":
            raise ProfileError("positionwise_layer_type: only 'linear' is implemented")
        frontend_conf = cfg.get("frontend_conf") or {}
        input_size = cfg.get("input_size") or frontend_conf.get("n_mels", 80)
        normalize = cfg.get("normalize")
        norm_conf = cfg.get("normalize_conf") or {}
        norm_vars_default = normalize == "global_mvn"  # GlobalMVN: True; UtteranceMVN: False
        if encoder == "transformer":
            merged.update(macaron_style=False, selfattention_layer_type="selfattn", activation_type="relu",
                          use_cnn_module=False)
        return EspnetConfig(input_size=positive_int(input_size, "n_mels"), vocab_size=len(tokens), encoder=encoder,
                            normalize=normalize, norm_means=bool(norm_conf.get("norm_means", True)),
                            norm_vars=bool(norm_conf.get("norm_vars", norm_vars_default)), **merged)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{source}: not an ESPnet2 ASR config this family reads ({type(exc).__name__}: {exc}); "
                           "compare it with the config.yaml ESPnet's asr_train writes") from None
