"""`ascend-asr stream` and `python -m ascend_asr.infer --streaming`: chunk-by-chunk recognition with carried
states, run by the family that streams (Family.streaming names its module); `--profile` picks the family
when several do."""
from __future__ import annotations

import importlib
import sys

from .errors import OptionError
from .runner import run


def streaming_family(argv: list[str]):
    """The family whose streaming main takes `argv`: the `--profile`'s, else the one family that streams."""
    from .families import get_family, registry

    profile = _option(argv, "--profile")
    if profile:
        from .profiles import load_profile

        family = get_family(load_profile(profile).family)
        if not family.streaming:
            raise OptionError(f"--profile {profile}: family {family.name} has no streaming mode; families that "
                              f"stream: {sorted(f.name for f in registry().values() if f.streaming)}")
        return family
    streaming = [f for f in registry().values() if f.streaming]
    if len(streaming) != 1:
        raise OptionError(f"several families stream ({sorted(f.name for f in streaming)}): pick one with --profile"
                          if streaming else "no model family here has a streaming mode")
    return streaming[0]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return importlib.import_module(streaming_family(argv).streaming).main(argv)


if __name__ == "__main__":
    sys.exit(run(main))
