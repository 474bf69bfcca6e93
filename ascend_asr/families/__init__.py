"""The model families: one registry, open to other packages through the entry-point group
`ascend_asr.families` (each entry point names a Family subclass or instance)."""
from __future__ import annotations

import functools
import sys
from importlib import metadata

from ..errors import ProfileError
from .base import Family, IOSpec, UpstreamModel

ENTRY_POINT_GROUP = "ascend_asr.families"
BUILTIN = ("ascend_asr.families.jasper:JasperFamily", "ascend_asr.families.deepspeech2:DeepSpeech2Family",
           "ascend_asr.families.lstm_ctc:LstmCtcFamily",
           "ascend_asr.families.paddle_ds2_online:PaddleDs2OnlineFamily",
           "ascend_asr.families.espnet:EspnetFamily")


def _instance(obj) -> Family:
    family = obj() if isinstance(obj, type) else obj
    if not isinstance(family, Family) or not family.name:
        raise ProfileError(f"{obj!r} is not a named ascend_asr.families.Family")
    return family


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(__import__(module, fromlist=[attr]), attr)


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Family]:
    """Built-in families, then those other installed packages declare (a plug-in cannot replace a built-in)."""
    families = {}
    for target in BUILTIN:
        family = _instance(_load(target))
        families[family.name] = family
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            family = _instance(entry.load())
        except Exception as exc:  # a broken plug-in must not break the built-in families
            print(f"[ascend-asr] warning: family plug-in {entry.name} ({entry.value}) failed to load: {exc}", file=sys.stderr)
            continue
        families.setdefault(family.name, family)
    return families


def get_family(name: str) -> Family:
    families = registry()
    if name not in families:
        raise ProfileError(f"unknown model family {name!r}; known: {sorted(families)} (others register through "
                           f"the entry-point group {ENTRY_POINT_GROUP!r})")
    return families[name]


def family_names() -> list[str]:
    return sorted(registry())


def profile_sizes(profile) -> tuple[int, int]:
    """(feature size of the profile's frontend, labels of its vocabulary, blank included)."""
    from ..frontends import build_frontend

    return build_frontend(profile.frontend).feature_size, profile.vocabulary.size


def profile_config(profile):
    """(family, model config) of a profile, checked against its frontend and vocabulary."""
    family = get_family(profile.family)
    config = family.resolve_config(profile.model_config)
    family.check_sizes(config, *profile_sizes(profile), profile.source or profile.name)
    return family, config


def build_model(profile):
    """The profile's model (family and model_config) with fresh weights, in inference mode."""
    family, config = profile_config(profile)
    return family.build(config)


def load_model(profile, checkpoint: str, **options):
    """The profile's model with `checkpoint` (the family's upstream format) loaded strictly."""
    family, config = profile_config(profile)
    return family.load(checkpoint, config, **options)


def model_config_for(family: Family, profile=None, config_path: str | None = None, checkpoint: str | None = None,
                     preset: str | None = None):
    """The model config, from (first that is given) an upstream config file, a preset name, the profile's
    model_config, or what the checkpoint itself records (a family without that says what to give)."""
    if not config_path and not preset:
        return profile_config(profile)[1] if profile is not None else family.read_upstream(None, checkpoint).config
    config = family.read_upstream(config_path, checkpoint).config if config_path else family.preset(preset)
    if profile is not None:
        family.check_sizes(config, *profile_sizes(profile),
                           f"{config_path or preset} with profile {profile.source or profile.name}")
    return config


def reference_checkpoint(profile_name: str) -> str | None:
    """The shipped trained checkpoint of a profile (a family's reference), or None."""
    family = next((f for f in registry().values() if f.reference_profile == profile_name), None)
    return family.reference_checkpoint_path() if family else None


__all__ = ["model_config_for", "reference_checkpoint", "build_model", "load_model", "Family", "IOSpec", "UpstreamModel", "get_family", "family_names", "registry", "ENTRY_POINT_GROUP"]
