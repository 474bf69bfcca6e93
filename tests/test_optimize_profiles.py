"""The profile's `parity:` and `precision:` mappings: known keys and values only, one precision mode for ATC."""
import pytest
import yaml

from ascend_asr.atc import atc_command
from ascend_asr.errors import ProfileError
from ascend_asr.parity import MIN_COSINE, Thresholds
from ascend_asr.profiles import PROFILE_DIR, profile_from_dict


def _shipped(name="jasper_small"):
    with open(f"{PROFILE_DIR}/{name}.yaml") as f:
        return yaml.safe_load(f)


def test_parity_thresholds_override_the_defaults():
    d = {**_shipped(), "parity": {"min_cosine": 0.999, "max_wer_delta": 1}}
    t = profile_from_dict(d, "p.yaml").thresholds()
    assert t == Thresholds(min_cosine=0.999, max_wer_delta=1.0)
    assert profile_from_dict(_shipped(), "p.yaml").thresholds().min_cosine == MIN_COSINE


@pytest.mark.parametrize("parity, message", [({"min_cosin": 0.9}, "unknown parity threshold"),
                                             ({"max_red": "small"}, "parity.max_red must be a number"),
                                             ([0.99], "expected a mapping of gate thresholds")])
def test_bad_parity_mappings_are_refused(parity, message):
    with pytest.raises(ProfileError, match=message):
        profile_from_dict({**_shipped(), "parity": parity}, "p.yaml")


@pytest.mark.parametrize("precision, message", [
    ({"atc_precision_mode": "fp16_please"}, "not one of ATC's values"),
    ({"cpu_model": "int4"}, "precision.cpu_model"),
    ({"int8_exclude_nodes": "conv1"}, "expected a list of node"),
    ({"predicted_wer_delta": {"force_fp16": "big"}}, "predicted_wer_delta"),
    ({"chosen_by": "me"}, "unknown keys"),
    ({"atc_precision_mode": "force_fp16"}, "atc.precision_mode is 'allow_fp32_to_fp16'"),
])
def test_bad_precision_mappings_are_refused(precision, message):
    with pytest.raises(ProfileError, match=message):
        profile_from_dict({**_shipped(), "precision": precision}, "p.yaml")


def test_the_recorded_precision_mode_is_the_one_atc_gets():
    d = _shipped()
    del d["atc"]["precision_mode"]
    profile = profile_from_dict({**d, "precision": {"atc_precision_mode": "allow_mix_precision",
                                                    "cpu_model": "int8_static"}}, "p.yaml")
    assert "--precision_mode=allow_mix_precision" in atc_command(profile, "m.onnx", "m", 1)
    assert profile.to_dict()["precision"]["cpu_model"] == "int8_static"
