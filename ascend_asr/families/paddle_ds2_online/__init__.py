"""PaddleSpeech's DeepSpeech2 online (streaming) model: the aishell asr0 recipe's deepspeech2_online.yaml."""
from __future__ import annotations

from ...errors import CheckpointError
from ..base import Family, RecipeSettings, UpstreamModel, require_checkpoint, require_file
from .config import PRESETS, PaddleDs2OnlineConfig, read_recipe
from .frontend import PaddleFbank, PaddleFbankParams
from .io import io_spec


class PaddleDs2OnlineFamily(Family):
    name = "paddle_ds2_online"
    default_profile = "paddle_ds2_online"
    reference_profile = "paddle_ds2_online_char"
    reference_checkpoint = "paddle_ds2_online_char.pdparams"
    frontend = PaddleFbank.name
    frontends = ((PaddleFbank, PaddleFbankParams),)
    config_help = "the recipe's conf/deepspeech2_online.yaml (its preprocess_config and vocab_filepath beside it)"
    presets = PRESETS
    checkpoint_storage = "fp32"  # the model card's word: save_pdparams writes float32, as paddle.save does
    # trained on the small data (python -m ascend_asr.recipes.small_reference --family paddle_ds2_online)
    recipe = RecipeSettings(epochs=30, batch_frames=12000, learning_rate=2e-3)
    config_class = PaddleDs2OnlineConfig
    io_spec = staticmethod(io_spec)  # the whole-utterance export I/O for (feature size, classes)
    streaming = "ascend_asr.families.paddle_ds2_online.streaming"
    commands = (("import-paddle", "ascend_asr.families.paddle_ds2_online.paddle_import",
                 "PaddleSpeech DS2-online inference model -> ONNX (paddle2onnx, gated on Paddle Predictor)"),)

    def read_upstream(self, config_path=None, checkpoint=None) -> UpstreamModel:
        """Network, fbank + CMVN settings and vocabulary from the recipe's YAML files; a .pdparams records no
        config (its shapes do not fix the feature size), so the YAML is needed."""
        if not config_path:
            raise CheckpointError(f"{checkpoint or 'paddle_ds2_online'}: a .pdparams records no configuration; give "
                                  f"--config ({self.config_help})")
        config, frontend, vocabulary = read_recipe(require_file(config_path, "conf/deepspeech2_online.yaml"))
        return UpstreamModel(config=config, frontend=frontend, vocabulary=vocabulary, source=config_path)

    def model_sizes(self, config: PaddleDs2OnlineConfig) -> tuple[int, int]:
        return config.feature_size, config.num_classes

    def build(self, config):
        from .model import PaddleDs2Online, WholeUtterance

        return WholeUtterance(PaddleDs2Online(config)).train(False)

    def load(self, checkpoint: str, config, **options):
        from .model import load_pdparams

        whole = self.build(config)
        load_pdparams(whole.model, require_checkpoint(checkpoint))
        return whole

    def save(self, model, profile, path: str, info: dict) -> None:
        """Checkpoint.save_parameters: the .pdparams, and its .json of infos beside it."""
        import json

        from .model import save_pdparams

        save_pdparams(model.model, path)
        with open(path[:-len(".pdparams")] + ".json" if path.endswith(".pdparams") else path + ".json", "w") as f:
            json.dump({k: info[k] for k in ("epoch", "step") if k in info}, f)

    def training_outputs(self, model, inputs):
        return model.log_probs(*inputs)
