"""ESPnet2 CTC models (Conformer and Transformer encoders) as ESPnet packs them: config.yaml, the *.pth
state dict, feats_stats.npz and the token list, read from the zip `espnet2.bin.pack` writes, its unpacked
folder, or the files themselves. Neither espnet nor espnet_onnx is needed."""
from __future__ import annotations

import os

from ..base import Family, RecipeSettings, UpstreamModel, require_checkpoint
from .config import PRESETS, EspnetConfig, config_from_espnet
from .frontend import EspnetDefaultFrontend, EspnetFrontendParams, frontend_from_espnet
from .io import io_spec


class EspnetFamily(Family):
    name = "espnet"
    default_profile = "espnet_conformer"
    frontend = EspnetDefaultFrontend.name
    frontends = ((EspnetDefaultFrontend, EspnetFrontendParams),)
    reference_profile = "espnet_conformer_small"
    reference_checkpoint = "espnet_conformer_small.zip"
    config_help = ("ESPnet2's packed model zip (espnet2.bin.pack asr / espnet_model_zoo), its unpacked folder, "
                   "or exp/asr_train_*/config.yaml")
    presets = PRESETS
    config_class = EspnetConfig
    io_spec = staticmethod(io_spec)  # the export I/O for (feature size, classes)
    recipe = RecipeSettings(epochs=30, batch_frames=12000, learning_rate=2e-3)

    def read_upstream(self, config_path=None, checkpoint=None) -> UpstreamModel:
        """config.yaml gives the encoder, the frontend and the token list: inside a pack (zip or folder) given
        as --config or --checkpoint, or a config.yaml given with its .pth."""
        from .packed import read_packed
        from .tokens import check_bpemodel, profile_labels

        source = config_path or checkpoint
        if not source:
            self.needs_config()
        pth = checkpoint if config_path and checkpoint and checkpoint.endswith(".pth") else None
        packed = read_packed(source, pth)
        config = config_from_espnet(packed.config, packed.source)
        token_type = packed.config.get("token_type", "char")
        tokens = list(packed.config["token_list"])
        if token_type == "bpe" and packed.bpemodel is not None:
            check_bpemodel(packed.bpemodel, tokens, packed.source)  # skipped without sentencepiece
        vocabulary = {"labels": profile_labels(tokens, token_type), "blank": 0}
        return UpstreamModel(config=config, frontend=frontend_from_espnet(packed.config, packed.source),
                             vocabulary=vocabulary, source=packed.source)

    def model_sizes(self, config: EspnetConfig) -> tuple[int, int]:
        return config.input_size, config.vocab_size

    def build(self, config):
        from .model import EspnetCTCModel

        return EspnetCTCModel(config).train(False)

    def load(self, checkpoint: str, config, frontend: dict | None = None, **options):
        """A packed model (zip, folder or config.yaml beside its .pth) or a bare *.pth, strictly. `frontend`
        (the profile's, without `name`) is checked against the model's mel matrix; by default the pack's own."""
        from ..safe_pickle import restricted_load
        from .packed import read_packed, state_dict_of
        from .weights import load_espnet_state

        stats = None
        if checkpoint and os.path.isfile(checkpoint) and checkpoint.endswith(".pth"):
            state = state_dict_of(restricted_load(require_checkpoint(checkpoint), {}), checkpoint)
        else:
            packed = read_packed(checkpoint)
            state, stats = packed.state_dict(), packed.feats_stats
            frontend = frontend or frontend_from_espnet(packed.config, packed.source)
        spec = {k: v for k, v in (frontend or {}).items() if k != "name"}
        mel = EspnetDefaultFrontend(EspnetFrontendParams(**spec)).mel_matrix() if spec else None
        return load_espnet_state(self.build(config), state, checkpoint, mel, stats)

    def save(self, model, profile, path: str, info: dict) -> None:
        from .pack_writer import write_packed

        write_packed(model, profile, path, info)

    def training_outputs(self, model, inputs):
        log_probs, lens = model(*inputs)
        return log_probs.transpose(0, 1), lens.long()
