"""The family registry: every built-in family is complete, plug-ins arrive through entry points, and the
generic pipeline never imports a family's module."""
import ast
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ascend_asr.families import family_names, get_family, reference_checkpoint
from ascend_asr.errors import ProfileError
from ascend_asr.profiles import find_profile, load_profile

from .conftest import REPO

PIPELINE = ("audio", "batching", "bundle", "atc", "convert", "datasets", "decoding", "infer", "prep", "preprocess",
            "profiles", "score", "tensor_files", "text", "metrics", "beam_search", "language_model", "backends", "compare", "parity",
            "transcribe", "word_beam", "lexicon", "timestamps", "hotwords", "transcripts", "streaming", "cli", "optimize")


@pytest.mark.parametrize("name", ["jasper", "deepspeech2", "lstm_ctc", "espnet", "paddle_ds2_online"])
def test_builtin_family_declares_everything_in_one_place(name):
    family = get_family(name)
    profile = load_profile(family.default_profile)
    assert profile.family == name and os.path.isfile(find_profile(family.default_profile))
    assert reference_checkpoint(family.reference_profile) == family.reference_checkpoint_path() is not None
    assert family.recipe is not None
    for preset in family.presets:
        config = family.preset(preset)
        assert family.config_from_dict(family.config_to_dict(config)) == config
        with torch.device("meta"):
            model = family.build(config)
        io = family.io_spec(64, 29)
        assert tuple(model.input_names) == io.input_names and tuple(model.output_names) == io.output_names
    # the profile's I/O is the family's, for its frontend and vocabulary
    shipped = load_profile(family.reference_profile)
    assert [t.role for t in shipped.inputs] == ["features", "lengths"]


def test_unknown_family_and_preset_name_the_known_ones():
    with pytest.raises(ProfileError, match="known: .*jasper"):
        get_family("wav2vec")
    with pytest.raises(ProfileError, match="jasper10x5dr"):
        get_family("jasper").preset("jasper_huge")


PLUGIN = '''
from ascend_asr.families.base import Family, IOSpec, UpstreamModel, tensor

class TinyFamily(Family):
    name = "tiny"
    default_profile = "jasper_small"
    presets = {"tiny": lambda: {"width": 4}}

    def config_from_dict(self, d): return dict(d)
    def config_to_dict(self, c): return dict(c)
    def read_upstream(self, config_path=None, checkpoint=None): return UpstreamModel(config={"width": 4})
    def model_sizes(self, config): return 64, 29
    def io_spec(self, feature_size, num_classes):
        return IOSpec((tensor("x", "float32", ["batch", feature_size, "frames"], "features"),
                       tensor("n", "int32", ["batch"], "lengths")),
                      (tensor("y", "float32", ["batch", "out_frames", num_classes], "log_probs"),), time_stride=4)
    def build(self, config): raise NotImplementedError
    def load(self, checkpoint, config, **options): raise NotImplementedError

class Broken:
    pass
'''


def test_a_family_from_another_package_registers_through_entry_points(tmp_path):
    (tmp_path / "tiny_family.py").write_text(PLUGIN)
    dist = tmp_path / "tiny_family-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-family\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ascend_asr.families]\ntiny = tiny_family:TinyFamily\n"
                                           "broken = tiny_family:Broken\n")
    profile = tmp_path / "tiny.yaml"
    profile.write_text(open(find_profile("jasper_small"), encoding="utf-8").read()
                       .replace("family: jasper", "family: tiny").replace("name: jasper_small", "name: tiny"))
    code = textwrap.dedent(f"""
        from ascend_asr.families import family_names
        from ascend_asr.profiles import load_profile
        p = load_profile({str(profile)!r})
        print(sorted(family_names()), p.family, p.inputs[0].name, p.outputs[0].shape, p.time_stride)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{sorted(family_names() + ['tiny'])} tiny x ('batch', 'out_frames', 29) 4"
    assert "family plug-in broken" in done.stderr  # a broken plug-in is named, the others still load


def family_references(source: str, families: set) -> list[str]:
    """Imports of a family's module (any spelling) and get_family("<name>") calls in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").replace("ascend_asr.", "").split(".")
            names = {a.name for a in node.names}
            if (parts[0] == "families" and len(parts) > 1 and parts[1] in families) or \
                    (parts[-1] == "families" and names & families):
                found.append(f"from {node.module} import {sorted(names)}")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names
                      if len(a.name.split(".")) > 2 and a.name.split(".")[1:3][0] == "families"
                      and a.name.split(".")[2] in families]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_family":
            found += [f"get_family({arg.value!r})" for arg in node.args
                      if isinstance(arg, ast.Constant) and arg.value in families]
    return found


def test_the_check_sees_every_spelling_of_a_family_reference():
    families = set(family_names())
    code = ("from .families import jasper\nimport ascend_asr.families.lstm_ctc.model\n"
            "from ascend_asr.families.deepspeech2 import io\nget_family('jasper')\nfrom .families import get_family\n")
    assert len(family_references(code, families)) == 4


def test_the_generic_pipeline_never_imports_a_family_module():
    families = set(family_names())
    for name in PIPELINE:
        path = os.path.join(REPO, "ascend_asr", name)
        files = [os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py")] if os.path.isdir(path) \
            else [path + ".py"]
        for file in files:
            found = family_references(open(file, encoding="utf-8").read(), families)
            assert not found, f"{file}: {found}: the pipeline must learn from the profile and the registry"


def test_a_family_declares_its_own_frontend(monkeypatch):
    """A family package owns its feature definition: ascend_asr.frontends finds it through the registry."""
    import dataclasses

    import numpy as np

    from ascend_asr import families, frontends

    @dataclasses.dataclass(frozen=True)
    class HalfRateParams:
        sample_rate: int = 16000
        bins: int = 3

    class HalfRate:
        name = "half_rate_test"

        def __init__(self, params, seed=None):
            self.params = params

        @property
        def feature_size(self):
            return self.params.bins

    import types

    declaring = types.SimpleNamespace(name="with_frontend", frontends=((HalfRate, HalfRateParams),))
    with_family = dict(families.registry(), with_frontend=declaring)
    monkeypatch.setattr(families, "registry", lambda: with_family)
    built = frontends.build_frontend({"name": "half_rate_test", "bins": 5})
    assert isinstance(built, HalfRate) and built.feature_size == 5
    with pytest.raises(ProfileError, match="bins: expected a whole number"):
        frontends.build_frontend({"name": "half_rate_test", "bins": np.float32(2.5).item()})
