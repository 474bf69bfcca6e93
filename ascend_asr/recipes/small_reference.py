"""A family's reference trained by the recipe (train_reference) on a smaller draw of its data, so that it
trains in minutes on 2 CPU cores.

    python -m ascend_asr.recipes.small_reference --family paddle_ds2_online --fsdd /abs/path/to/speech \\
        [--output ascend_asr/assets/models] [--work-dir ~/.cache/ascend_asr/reference_small] [--epochs N]

Same data generator, features, trainer, evaluation and card as every reference; only the data sizes differ
(SMALL_DATA). Every family shares one work dir, so the synthesized corpus is made once; the features are
cached per profile in it. The card is amended to name this command and the smaller data.
"""
from __future__ import annotations

import dataclasses
import os
import sys

from ..families import get_family
from ..runner import run as run_command
from .card_notes import SECTIONS
from .reference_data import DataSettings
from .train_reference import DEFAULT_WORK_DIR, build_parser, run, say

# a third of the sentences and digit strings, FSDD at its recorded speed only, smaller held-out sets
SMALL_DATA = DataSettings(train_sentences=1200, train_digit_strings=400, test_sentences_seen_voices=100,
                          test_sentences_unseen_voices=50, digit_speed_factors=())
SMALL_WORK_DIR = DEFAULT_WORK_DIR + "_small"


def small_parser(prog: str = "python -m ascend_asr.recipes.small_reference"):
    parser = build_parser()
    parser.prog = prog
    parser.description = __doc__.splitlines()[0]
    parser.set_defaults(work_dir=SMALL_WORK_DIR)
    return parser


def train_small(args, sizes: DataSettings = SMALL_DATA, log=say) -> dict:
    """The recipe on `sizes` (tests give tinier ones) for `args` (small_parser's); the card names this command."""
    settings = dataclasses.replace(sizes, seed=args.seed, held_out_speaker=args.held_out_speaker)
    report = run(args, data_settings=settings, log=log)
    card = os.path.join(args.output, f"{get_family(args.family).reference_profile}.md")
    if "evaluation" in report and os.path.isfile(card):
        amend_card(card, args.family, args.threads, SECTIONS.get(args.family, ""))
    return report


def amend_card(card: str, family: str, threads: int, section: str = "") -> None:
    """The shared card names train_reference and the full data; say which command and sizes made it."""
    with open(card, encoding="utf-8") as f:
        text = f.read()
    text = text.replace(f"python -m ascend_asr.recipes.train_reference --family {family}",
                        f"python -m ascend_asr.recipes.small_reference --family {family}")
    text = text.replace("at speeds 1.0, . ", "at speed 1.0 only. ")  # no extra speeds (digit_speed_factors=())
    text = text.split("\n## Smaller training data\n")[0].rstrip("\n") + "\n" + SMALL_SECTION.format(
        family=family, threads=threads) + section
    with open(card + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(card + ".tmp", card)


SMALL_SECTION = """
## Smaller training data

The training data sizes are smaller than the full recipe's (SMALL_DATA in ascend_asr/recipes/small_reference.py)
to train in minutes on 2 CPU cores. This checkpoint came from `python -m ascend_asr.recipes.small_reference
--family {family} --fsdd /work/shared/data/speech --threads {threads}` (an absolute --fsdd).
"""


def main(argv=None) -> int:
    train_small(small_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
