"""Jasper (NVIDIA DeepLearningExamples `PyTorch/SpeechRecognition/Jasper`), as ModelZoo deploys it."""
from __future__ import annotations

from ..base import Family, RecipeSettings, UpstreamModel, require_checkpoint, require_file
from .config import PRESETS, JasperConfig, config_from_nvidia, frontend_from_nvidia, read_nvidia_yaml
from .io import io_spec


class JasperFamily(Family):
    name = "jasper"
    default_profile = "jasper"
    frontend = "jasper_filterbank"
    reference_profile = "jasper_small"
    reference_checkpoint = "jasper_small.pt"
    config_help = "NVIDIA's configs/jasper10x5dr_speedp-online_speca.yaml or another YAML of that layout"
    presets = PRESETS
    config_class = JasperConfig
    io_spec = staticmethod(io_spec)  # the export I/O for (feature size, classes)
    recipe = RecipeSettings(epochs=20, batch_frames=12000, learning_rate=3e-3)

    def read_upstream(self, config_path=None, checkpoint=None) -> UpstreamModel:
        """NVIDIA's YAML gives the model, the labels and the feature settings; its checkpoints hold weights only."""
        if not config_path:
            self.needs_config()
        cfg = read_nvidia_yaml(require_file(config_path, "NVIDIA Jasper YAML"))
        labels = list(cfg["labels"]) if isinstance(cfg.get("labels"), list) else None
        return UpstreamModel(config=config_from_nvidia(cfg, config_path),
                             frontend=frontend_from_nvidia(cfg, config_path),
                             vocabulary={"labels": labels, "blank": "last"} if labels else None, source=config_path)

    def model_sizes(self, config: JasperConfig) -> tuple[int, int]:
        return config.in_feats, config.n_classes

    def build(self, config):
        from .model import Jasper

        return Jasper(config).train(False)  # inference mode

    def load(self, checkpoint: str, config, use_ema: bool = True, **options):
        from .model import load_jasper_checkpoint

        return load_jasper_checkpoint(self.build(config), require_checkpoint(checkpoint), use_ema=use_ema)

    def save(self, model, profile, path: str, info: dict) -> None:
        from .model import save_jasper_checkpoint

        save_jasper_checkpoint(model, path, info)

    def training_outputs(self, model, inputs):
        log_probs, lens = model(*inputs)
        return log_probs.transpose(0, 1), lens.long()

