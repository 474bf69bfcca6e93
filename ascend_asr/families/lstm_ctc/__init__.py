"""LSTM-CTC phone recognizer (Ascend ModelZoo `LSTM_ID0468_for_PyTorch`, TIMIT)."""
from __future__ import annotations

from ...errors import CheckpointError
from ...timit import timit_vocabulary
from ..base import Family, RecipeSettings, UpstreamModel, require_checkpoint, require_file
from .config import PRESETS, LstmCtcConfig, read_ctc_config
from .io import io_spec


class LstmCtcFamily(Family):
    name = "lstm_ctc"
    default_profile = "lstm_ctc"
    frontend = "kaldi_fbank_spliced"
    vocabulary_kind = "phones"
    reference_profile = "lstm_ctc_char"
    reference_checkpoint = "lstm_ctc_char.pth.tar"
    config_help = "ModelZoo's conf/ctc_config.yaml (its vocab_file, when present, gives the phone order)"
    presets = PRESETS
    config_class = LstmCtcConfig
    io_spec = staticmethod(io_spec)  # the export I/O for (feature size, classes)
    masks_padding = False  # its backward LSTMs start in the padding
    recipe = RecipeSettings(epochs=12, batch_frames=6000, learning_rate=1.5e-3)

    def read_upstream(self, config_path=None, checkpoint=None) -> UpstreamModel:
        """ctc_config.yaml (model, feature context, units), else the training package's own parameters."""
        if config_path:
            config, frontend, units = read_ctc_config(require_file(config_path, "ModelZoo ctc_config.yaml"))
            vocabulary = timit_vocabulary(units).to_spec() if units else None
            upstream = UpstreamModel(config=config, frontend=frontend, vocabulary=vocabulary, source=config_path)
            if checkpoint:
                self._check_package(checkpoint, config)
            return upstream
        if not checkpoint:
            self.needs_config()
        from .model import config_of_checkpoint

        config = config_of_checkpoint(require_checkpoint(checkpoint))
        if config is None:
            raise CheckpointError(f"{checkpoint}: a bare state dict carries no model parameters; give --config "
                                  f"({self.config_help}) or a preset ({', '.join(sorted(self.presets))})")
        return UpstreamModel(config=config, source=checkpoint)

    def _check_package(self, checkpoint: str, config: LstmCtcConfig) -> None:
        from .model import config_of_checkpoint

        recorded = config_of_checkpoint(require_checkpoint(checkpoint))
        if recorded is not None and recorded != config:
            raise CheckpointError(f"{checkpoint}: its training package was built with {recorded}, but the config "
                                  f"describes {config}; give the config it was trained with")

    def model_sizes(self, config: LstmCtcConfig) -> tuple[int, int]:
        return config.input_size, config.num_classes

    def build(self, config):
        from .model import LstmCtc

        return LstmCtc(config).train(False)

    def load(self, checkpoint: str, config, **options):
        from .model import load_lstm_ctc_checkpoint

        return load_lstm_ctc_checkpoint(self.build(config), require_checkpoint(checkpoint))

    def save(self, model, profile, path: str, info: dict) -> None:
        from .model import save_training_package

        save_training_package(model, path, info)

    def training_outputs(self, model, inputs):
        log_probs, lens = model(*inputs)
        return log_probs, lens.long()
