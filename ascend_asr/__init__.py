"""ascend-asr: speech-recognition models from checkpoint to Ascend OM, with a visible CPU fallback."""

__version__ = "0.1.0"
