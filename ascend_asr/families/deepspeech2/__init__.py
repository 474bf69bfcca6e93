"""DeepSpeech2 as deepspeech.pytorch V3.0 builds and saves it (ModelZoo's Deepspeech2 on AN4)."""
from __future__ import annotations

from ...errors import CheckpointError
from ..base import Family, RecipeSettings, UpstreamModel, require_checkpoint
from .config import PRESETS, DeepSpeech2Config
from .io import io_spec


class DeepSpeech2Family(Family):
    name = "deepspeech2"
    default_profile = "deepspeech2"
    frontend = "deepspeech_spectrogram"
    reference_profile = "deepspeech2_small"
    reference_checkpoint = "deepspeech2_small.ckpt"
    config_help = "none: a V3.0 Lightning checkpoint carries its own hyper_parameters"
    presets = PRESETS
    config_class = DeepSpeech2Config
    io_spec = staticmethod(io_spec)  # the export I/O for (feature size, classes)
    recipe = RecipeSettings(epochs=7, batch_frames=12000, learning_rate=1.5e-3)

    def read_upstream(self, config_path=None, checkpoint=None) -> UpstreamModel:
        """The model, labels and spectrogram settings from the checkpoint's `hyper_parameters`."""
        if config_path:
            raise CheckpointError(f"{config_path}: DeepSpeech2 takes no --config; its Lightning checkpoint "
                                  "(--checkpoint) carries the hyper-parameters")
        if not checkpoint:
            raise CheckpointError("deepspeech2: give --checkpoint (a deepspeech.pytorch V3.0 Lightning checkpoint)")
        from .model import config_of_checkpoint

        found = config_of_checkpoint(require_checkpoint(checkpoint))
        if found is None:
            raise CheckpointError(f"{checkpoint}: a bare state dict carries no hyper-parameters; name a preset "
                                  f"({', '.join(sorted(self.presets))}) as the profile's model_config instead")
        config, labels, frontend = found
        return UpstreamModel(config=config, frontend=frontend,
                             vocabulary={"labels": labels, "blank": labels.index("_")}, source=checkpoint)

    def model_sizes(self, config: DeepSpeech2Config) -> tuple[int, int]:
        return config.feature_size, config.num_classes

    def build(self, config):
        from .model import DeepSpeech2

        return DeepSpeech2(config).train(False)

    def load(self, checkpoint: str, config, **options):
        from .model import load_deepspeech2_checkpoint

        return load_deepspeech2_checkpoint(self.build(config), require_checkpoint(checkpoint))

    def save(self, model, profile, path: str, info: dict) -> None:
        from ..checkpoints import half_precision
        from .lightning import write_lightning_checkpoint

        fe = profile.frontend
        write_lightning_checkpoint(path, half_precision(model.state_dict()), list(profile.vocabulary.labels),
                                   model.config.hidden_size, model.config.hidden_layers,
                                   {k: fe[k] for k in ("sample_rate", "window_size", "window_stride", "window")},
                                   epoch=info["epoch"], global_step=info["step"],
                                   learning_rate=info["learning_rate"], score=info.get("wer"),
                                   rnn_type=model.config.rnn_type)

    def training_outputs(self, model, inputs):
        import torch

        from .model import output_lengths

        spect, lengths = inputs
        return torch.log_softmax(model.logits(spect, lengths), dim=-1).transpose(0, 1), output_lengths(lengths.long())
