"""ESPnet2 packed models, read locally: the zip `espnet2.bin.pack asr` writes (and espnet_model_zoo
downloads), the folder it unpacks to, or a config.yaml with its .pth.

The zip holds `meta.yaml` (`yaml_files.asr_train_config`, `files.asr_model_file`, paths inside the
archive), the training `config.yaml`, the state dict (`*.pth`: torch.save(model.state_dict())), the
`feats_stats.npz` that `normalize_conf.stats_file` names and, for BPE models, the sentencepiece model that
`bpemodel` names. Members are read by name; nothing is extracted to a path the archive chooses.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np
import yaml

from ...errors import CheckpointError, ProfileError

MAX_MEMBER_BYTES = 4 << 30  # a member larger than this is not a model we read (or a zip bomb)


@dataclass(frozen=True)
class PackedModel:
    """What a packed ESPnet2 ASR model holds, as read (the state dict is loaded on demand)."""

    source: str                      # the zip, folder or config.yaml given
    config: dict                     # config.yaml as loaded
    model_file: str                  # the .pth, as named in meta.yaml / given
    feats_stats: dict | None = None  # count, sum, sum_square (collect_stats' feats_stats.npz), when present
    bpemodel: bytes | None = None    # the sentencepiece model, when the config names one and it is there
    _reader: object = field(default=None, repr=False, compare=False)

    def state_dict(self) -> dict:
        """The .pth through the project's restricted unpickler (tensors and plain containers only)."""
        return self._reader.state_dict(self.model_file)


class _Files:
    """Members of a zip, or files under a folder, by their archive-relative names."""

    def __init__(self, root: str):
        self.root = root
        self.zip = zipfile.is_zipfile(root) if os.path.isfile(root) else False

    def names(self) -> list[str]:
        if self.zip:
            with zipfile.ZipFile(self.root) as archive:
                return archive.namelist()
        return [os.path.relpath(os.path.join(d, f), self.root) for d, _, fs in os.walk(self.root) for f in fs]

    def find(self, name: str) -> str | None:
        """`name` as stored, or a stored name that ends with it (configs record paths relative to the recipe)."""
        name = os.path.normpath(name).lstrip("./") if name else ""
        names = self.names()
        if name in names:
            return name
        ends = [n for n in names if n.endswith("/" + name)]
        return ends[0] if len(ends) == 1 else None

    def read(self, name: str) -> bytes:
        if self.zip:
            with zipfile.ZipFile(self.root) as archive:
                info = archive.getinfo(name)
                if info.file_size > MAX_MEMBER_BYTES:
                    raise CheckpointError(f"{self.root}: member {name} is {info.file_size} bytes; not an ESPnet model")
                return archive.read(name)
        path = os.path.realpath(os.path.join(self.root, name))
        if not path.startswith(os.path.realpath(self.root) + os.sep):
            raise CheckpointError(f"{self.root}: {name} points outside the model folder")
        with open(path, "rb") as f:
            return f.read()

    def state_dict(self, name: str) -> dict:
        from ..safe_pickle import restricted_load

        if not self.zip:
            return state_dict_of(restricted_load(os.path.join(self.root, name), {}), f"{self.root}/{name}")
        with tempfile.TemporaryDirectory(prefix="espnet_pth_") as tmp:
            path = os.path.join(tmp, os.path.basename(name))
            with open(path, "wb") as f:
                f.write(self.read(name))
            return state_dict_of(restricted_load(path, {}), f"{self.root}:{name}")


class _Single(_Files):
    """A config.yaml and a .pth given as two paths."""

    def __init__(self, config_path: str, model_file: str):
        super().__init__(os.path.dirname(os.path.abspath(config_path)))
        self.config_path, self.model_file = config_path, model_file

    def state_dict(self, name: str) -> dict:
        from ..safe_pickle import restricted_load

        return state_dict_of(restricted_load(name, {}), name)


def state_dict_of(obj, source: str) -> dict:
    import torch

    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # the trainer's checkpoint.pth: {'model', 'reporter', 'optimizers', ...}
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: expected ESPnet's model state dict (torch.save(model.state_dict())), "
                              f"found {type(obj).__name__}; give the *.pth the packed model names")
    return dict(obj)


def _yaml(data: bytes, where: str) -> dict:
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(loaded, dict):
        raise ProfileError(f"{where}: expected a mapping, found {type(loaded).__name__}")
    return loaded


def _stats(files: _Files, config: dict, source: str) -> dict | None:
    stats_file = (config.get("normalize_conf") or {}).get("stats_file")
    name = files.find(stats_file) if stats_file else None
    if name is None:
        name = next((n for n in files.names() if n.endswith("feats_stats.npz")), None)
    if name is None:
        return None
    try:
        with np.load(io.BytesIO(files.read(name)), allow_pickle=False) as npz:
            if {"count", "sum", "sum_square"} <= set(npz.files):
                return {"count": float(npz["count"]), "sum": npz["sum"].astype(np.float64),
                        "sum_square": npz["sum_square"].astype(np.float64)}
            raise ProfileError(f"{source}: {name} lacks count/sum/sum_square (found {npz.files}); "
                               "expected collect_stats' feats_stats.npz")
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ProfileError(f"{source}: cannot read {name} as feats_stats.npz ({exc})") from None


def read_packed(path: str, checkpoint: str | None = None) -> PackedModel:
    """A packed model: zip, unpacked folder (with meta.yaml), or config.yaml (+ `checkpoint`, its .pth)."""
    if not path or not os.path.exists(path):
        raise ProfileError(f"{path}: not found; give ESPnet's packed model zip, its unpacked folder, or config.yaml")
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        from .config import read_espnet_yaml

        config = read_espnet_yaml(path)
        if checkpoint is None:
            pths = sorted(f for f in os.listdir(os.path.dirname(os.path.abspath(path))) if f.endswith(".pth"))
            pths = [p for p in pths if p != "checkpoint.pth"] or pths
            if len(pths) != 1:
                raise CheckpointError(f"{path}: give --checkpoint (the .pth); beside the config are {pths or 'none'}")
            checkpoint = os.path.join(os.path.dirname(os.path.abspath(path)), pths[0])
        files = _Single(path, checkpoint)
        return PackedModel(path, config, checkpoint, _stats(files, config, path), _bpe(files, config), files)
    files = _Files(path)
    meta_name = files.find("meta.yaml")
    if meta_name is None:
        raise ProfileError(f"{path}: no meta.yaml; expected the zip espnet2.bin.pack writes (or its unpacked folder)")
    meta = _yaml(files.read(meta_name), f"{path}:{meta_name}")
    base = os.path.dirname(meta_name)
    try:
        config_name = meta["yaml_files"]["asr_train_config"]
        model_name = checkpoint or meta["files"]["asr_model_file"]
    except (KeyError, TypeError):
        raise ProfileError(f"{path}: meta.yaml names no yaml_files.asr_train_config / files.asr_model_file; "
                           "is this an ASR model pack?") from None
    found = {n: files.find(os.path.join(base, n)) for n in (config_name, model_name)}
    missing = [n for n, f in found.items() if f is None]
    if missing:
        raise ProfileError(f"{path}: meta.yaml names {missing}, which the archive lacks")
    config = _yaml(files.read(found[config_name]), f"{path}:{config_name}")
    return PackedModel(path, config, found[model_name], _stats(files, config, path), _bpe(files, config), files)


def _bpe(files: _Files, config: dict) -> bytes | None:
    name = config.get("bpemodel")
    found = files.find(name) if name else None
    return files.read(found) if found else None
