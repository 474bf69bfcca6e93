"""A copy of a profile with the precision optimize chose (`--write-profile`): convert then hands ATC that mode."""
from __future__ import annotations

import os

import yaml

from ..errors import ProfileError
from ..profiles import PACKAGE_PREFIX, Profile, load_profile
from ..tensor_files import write_text_atomic


def write_profile_copy(profile: Profile, path: str, precision: dict) -> Profile:
    """`profile`'s YAML with `precision:` set (and atc.precision_mode made the same), written to `path` and read
    back through the profile checks. Relative paths inside it are made absolute (the copy may live elsewhere)."""
    if not profile.source or not os.path.isfile(profile.source):
        raise ProfileError(f"profile {profile.name}: no YAML file to copy (from {profile.source!r}); give --profile "
                           "as a profile name or a YAML path")
    if os.path.abspath(path) == os.path.abspath(profile.source):
        raise ProfileError(f"--write-profile {path}: the profile itself; write the copy elsewhere (a shipped profile "
                           "is not overwritten)")
    with open(profile.source, encoding="utf-8") as f:
        d = yaml.safe_load(f)
    d["precision"] = dict(precision)
    if isinstance(d.get("atc"), dict) and precision.get("atc_precision_mode"):
        d["atc"]["precision_mode"] = precision["atc_precision_mode"]
    frontend = d.get("frontend") or {}
    stats = frontend.get("cmvn_stats")
    if isinstance(stats, str) and stats and not stats.startswith(PACKAGE_PREFIX) and not os.path.isabs(stats):
        frontend["cmvn_stats"] = os.path.normpath(os.path.join(os.path.dirname(profile.source), stats))
    header = f"# {os.path.basename(profile.source)} with the precision `ascend-asr optimize` chose\n"
    write_text_atomic(path, header + yaml.safe_dump(d, sort_keys=False, allow_unicode=True))
    return load_profile(path)
