"""Profiles validated against ONNX graphs; bundles and the ATC command lines they record."""
import json
import os

import onnx
import pytest
import yaml

from ascend_asr.bundle import convert, open_bundle
from ascend_asr.errors import BackendError, ProfileError
from ascend_asr.profiles import PROFILE_DIR, family_io, load_profile, profile_from_dict


def profile_dict(name="jasper"):
    """The shipped profile as a mapping, with the I/O its family declares written out (so a test can spoil it)."""
    path = os.path.join(PROFILE_DIR, f"{name}.yaml")
    with open(path) as f:
        d = yaml.safe_load(f)
    return {**family_io(d, path), **d}


def test_shipped_profiles_load_and_match_the_exported_graph(small_onnx):
    model = onnx.load(small_onnx)
    for name in ("jasper", "jasper_small"):
        profile = load_profile(name)
        profile.validate_onnx(model, small_onnx)
        assert profile.vocabulary.blank == 28 and profile.vocabulary.size == 29
    assert load_profile("jasper").frames == (4000,)


def test_profile_input_name_missing_from_graph_is_named(small_onnx):
    d = profile_dict()
    d["inputs"][0]["name"] = "features"
    profile = profile_from_dict(d, "bad.yaml")
    with pytest.raises(ProfileError) as err:
        profile.validate_onnx(onnx.load(small_onnx), small_onnx)
    assert "'features'" in str(err.value) and small_onnx in str(err.value) and "feats" in str(err.value)


@pytest.mark.parametrize("field,value,message", [
    ("dtype", "float16", "dtype float16"),
    ("shape", ["batch", "frames"], "rank 2"),
])
def test_profile_disagreeing_with_graph_dtype_or_rank_fails(small_onnx, field, value, message):
    d = profile_dict()
    d["inputs"][0][field] = value
    with pytest.raises(ProfileError, match=message):
        profile_from_dict(d, "bad.yaml").validate_onnx(onnx.load(small_onnx), small_onnx)


def test_malformed_profiles_are_refused():
    d = profile_dict()
    d["frames"] = [4001]
    with pytest.raises(ProfileError, match="pad_align"):
        profile_from_dict(d, "x.yaml")
    d = profile_dict()
    del d["vocabulary"]
    with pytest.raises(ProfileError, match="missing keys"):
        profile_from_dict(d, "x.yaml")
    with pytest.raises(ProfileError, match="not found"):
        load_profile("no_such_profile")


def test_convert_writes_static_bundles_with_modelzoo_atc_commands(tmp_path, small_onnx):
    bundles = convert("jasper", small_onnx, str(tmp_path), soc_version="Ascend310")
    assert [b.batch_size for b in bundles] == [1, 4, 8, 16]
    for b in bundles:
        graph = onnx.load(b.onnx_path)
        dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input]
        assert dims == [[b.batch_size, 64, 4000], [b.batch_size]]
        cmd = b.manifest["atc_command"]
        assert cmd[:2] == ["atc", "--framework=5"]
        assert f"--input_shape=feats:{b.batch_size},64,4000;feat_lens:{b.batch_size}" in cmd
        assert "--input_format=ND" in cmd and "--soc_version=Ascend310" in cmd and f"--output=jasper_bs{b.batch_size}" in cmd
        assert not any(c.startswith("--dynamic_dims") for c in cmd)
        with open(os.path.join(tmp_path, b.name + ".json")) as f:
            manifest = json.load(f)
        for key in ("profile", "inputs", "outputs", "shapes", "vocabulary", "frontend", "source_model", "atc_command_line"):
            assert key in manifest
        assert manifest["source_model"]["sha256"] and manifest["vocabulary"]["blank"] == 28


def test_gear_profile_keeps_frames_dynamic_and_lists_gears(small_bundles):
    b = small_bundles[4]
    dims = onnx.load(b.onnx_path).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 4 and dims[2].dim_param == "frames"
    assert "--input_shape=feats:4,64,-1;feat_lens:4" in b.manifest["atc_command"]
    assert "--dynamic_dims=256;512;1024" in b.manifest["atc_command"]
    assert any(c.startswith("--out_nodes=") for c in b.manifest["atc_command"])


def test_open_bundle_resolves_om_name_and_needs_the_manifest(small_bundles, tmp_path):
    b = small_bundles[1]
    assert open_bundle(b.om_path).onnx_path == b.onnx_path
    with pytest.raises(BackendError, match="ascend-asr convert"):
        open_bundle(str(tmp_path / "nothing_bs1.om"))


def test_jasper_builds_from_nvidia_yaml_and_modelzoo_model_config_maps_the_frontend(tmp_path):
    import torch

    from ascend_asr.modelzoo import profile_for_model_config
    from ascend_asr.families.jasper.config import JASPER_SMALL_BLOCKS, JasperConfig, jasper_small
    from ascend_asr.families.jasper.model import Jasper

    labels = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]
    nvidia = {"labels": labels,
              "input_val": {"audio_dataset": {"sample_rate": 16000, "trim_silence": False},
                            "filterbank_features": {"n_filt": 64, "n_fft": 512, "window_size": 0.02,
                                                    "window_stride": 0.01, "pad_align": 16, "frame_splicing": 1,
                                                    "window": "hann"}},
              "jasper": {"encoder": {"in_feats": 64, "activation": "relu", "use_conv_masks": True},
                         "blocks": JASPER_SMALL_BLOCKS}}
    from_yaml = Jasper(JasperConfig.from_dict(nvidia)).state_dict()
    reference = Jasper(jasper_small()).state_dict()
    assert {k: tuple(v.shape) for k, v in from_yaml.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    assert isinstance(from_yaml["decoder.layers.0.bias"], torch.Tensor) and from_yaml["decoder.layers.0.bias"].numel() == 29
    path = tmp_path / "jasper10x5dr_speedp-online_speca.yaml"
    path.write_text(yaml.safe_dump(nvidia))
    profile = profile_for_model_config(str(path), "jasper", max_duration=40, pad_to_max_duration=True)
    assert profile.frames == (4000,) and profile.frontend["trim_silence"] is False
    assert profile.vocabulary.blank == 28
