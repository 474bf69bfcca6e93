"""The ESPnet Conformer-CTC reference: small_reference for the espnet family, written in ESPnet2's packed
format with its model card.

    python -m ascend_asr.recipes.espnet_reference --fsdd ../shared/data/speech \\
        [--output ascend_asr/assets/models] [--work-dir ~/.cache/ascend_asr/reference_espnet] [--epochs N]

The checkpoint is `espnet_conformer_small.zip` (meta.yaml, config.yaml, the state dict), which ESPnet
202511's ASRTask.build_model_from_file rebuilds.
"""
from __future__ import annotations

import sys

from ..runner import run as run_command
from .small_reference import SMALL_DATA, small_parser, train_small
from .train_reference import DEFAULT_WORK_DIR

ESPNET_DATA = SMALL_DATA  # the name this recipe gave the smaller data first


def main(argv=None) -> int:
    parser = small_parser("python -m ascend_asr.recipes.espnet_reference")
    parser.set_defaults(family="espnet", work_dir=DEFAULT_WORK_DIR + "_espnet")
    for action in parser._actions:
        if action.dest == "family":
            action.required = False
    args = parser.parse_args(argv)
    if args.family != "espnet":
        parser.error("this recipe trains the espnet reference only; use ascend_asr.recipes.small_reference")
    train_small(args)  # the card gets card_notes.ESPNET
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
