"""The command-line speech tools the recipe runs, checked before any work starts."""
from __future__ import annotations

import shutil

from ..errors import AscendAsrError

REQUIRED = {
    "espeak-ng": "synthesizes the training sentences (several accents and voice variants)",
    "flite": "synthesizes the training sentences (voices awb, rms, slt, kal16)",
    "sox": "converts synthesized audio to 16 kHz mono and speed-perturbs the recorded digits",
}
INSTALL_HINT = ("install them with your package manager, e.g. `sudo apt-get update && sudo apt-get install "
                "espeak-ng flite sox` (Debian/Ubuntu) or `brew install espeak-ng flite sox` (macOS); "
                "the recipe installs nothing itself")


class MissingToolError(AscendAsrError):
    pass


def check_tools(which=shutil.which) -> dict[str, str]:
    """Paths of the required tools; every missing one is named, with what it is for and how to install it."""
    found = {tool: which(tool) for tool in REQUIRED}
    missing = [tool for tool, path in found.items() if not path]
    if missing:
        lines = [f"  {tool}: {REQUIRED[tool]}" for tool in missing]
        raise MissingToolError("the training recipe needs tools that are not on PATH:\n" + "\n".join(lines)
                               + f"\n{INSTALL_HINT}")
    return found
