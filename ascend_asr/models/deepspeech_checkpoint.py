"""deepspeech.pytorch V3.0 checkpoints: PyTorch Lightning pickles with the whole training config inside."""
from __future__ import annotations

from .safe_pickle import plain, restricted_load, stand_ins

# Every foreign global a V3.0 Lightning checkpoint names, as omegaconf, hydra and deepspeech_pytorch
# pickle their objects; each loads as an inert stand-in.
DEEPSPEECH_GLOBALS = (
    *(f"omegaconf.{m}" for m in ("dictconfig.DictConfig", "listconfig.ListConfig", "base.ContainerMetadata",
                                 "base.Metadata", "nodes.AnyNode", "nodes.StringNode", "nodes.IntegerNode",
                                 "nodes.FloatNode", "nodes.BooleanNode", "nodes.EnumNode", "nodes.BytesNode",
                                 "nodes.PathNode", "nodes.ValueNode")),
    *(f"deepspeech_pytorch.configs.train_config.{c}" for c in (
        "DeepSpeechConfig", "DataConfig", "SpectConfig", "AugmentationConfig", "BiDirectionalConfig",
        "UniDirectionalConfig", "OptimConfig", "AdamConfig", "SGDConfig", "CheckpointConfig", "ModelConfig")),
    *(f"deepspeech_pytorch.configs.lightning_config.{c}" for c in ("ModelCheckpointConf", "TrainerConf")),
    "hydra_configs.pytorch_lightning.callbacks.ModelCheckpointConf",
    *(f"deepspeech_pytorch.enums.{e}" for e in ("RNNType", "SpectrogramWindow", "DecoderType", "MultiGPUType",
                                                "DistributedBackend")),
    *(f"torch.nn.modules.rnn.{r}" for r in ("LSTM", "GRU", "RNN")),
    "typing.Any",
)


def read_lightning_checkpoint(path: str) -> dict:
    """The checkpoint as plain Python: `state_dict` tensors, `hyper_parameters` as dicts and values."""
    return plain(restricted_load(path, stand_ins(DEEPSPEECH_GLOBALS)))
