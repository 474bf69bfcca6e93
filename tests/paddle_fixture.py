"""The PaddleSpeech DS2-online fixture made by upstream's code (tests/fixtures/upstream/paddlespeech_ds2_online)."""
import os

import numpy as np

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "upstream", "paddlespeech_ds2_online")
CONFIG = os.path.join(HERE, "conf", "deepspeech2_online.yaml")
PDPARAMS = os.path.join(HERE, "exp", "deepspeech2_online", "checkpoints", "avg_1.pdparams")
TOL = 1e-4


def reference_outputs() -> dict:
    return dict(np.load(os.path.join(HERE, "reference_outputs.npz")))
