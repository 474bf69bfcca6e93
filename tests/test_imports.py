"""The base install (no torch, no onnx) is what inference needs: the inference modules import neither, and the
profiles (with the files they name) are found wherever the package is."""
import os
import subprocess
import sys
import textwrap

import pytest

from ascend_asr.errors import ProfileError
from ascend_asr.profiles import PACKAGE_DIR, PROFILE_DIR, find_profile, load_profile, resolve_profile_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFERENCE_MODULES = ("ascend_asr.infer", "ascend_asr.preprocess", "ascend_asr.score", "ascend_asr.cli",
                     "ascend_asr.bundle", "ascend_asr.atc", "ascend_asr.backends.onnxruntime_backend")

# Run in a fresh interpreter: this one has long imported torch for other tests.
CHECK = textwrap.dedent("""
    import importlib, sys
    for name in sys.argv[1:]:
        importlib.import_module(name)
    from ascend_asr.profiles import known_profiles, load_profile
    from ascend_asr.frontends import build_frontend
    for name in known_profiles():
        build_frontend(load_profile(name).frontend)
    from ascend_asr.families import registry
    registry()
    heavy = sorted(m for m in ("torch", "onnx") if m in sys.modules)
    print("heavy:", heavy)
    sys.exit(1 if heavy else 0)
""")


def test_inference_modules_import_neither_torch_nor_onnx():
    done = subprocess.run([sys.executable, "-c", CHECK, *INFERENCE_MODULES], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_profiles_found_by_name_and_unknown_names_listed():
    assert os.path.isfile(find_profile("jasper_small"))
    assert os.path.dirname(find_profile("jasper_small")) == PROFILE_DIR
    with pytest.raises(ProfileError) as err:
        find_profile("no_such_profile")
    for name in ("jasper_small", "deepspeech2_small", "lstm_ctc_char"):
        assert name in str(err.value)


def test_package_paths_in_profiles_resolve_inside_the_package(tmp_path):
    stats = load_profile("lstm_ctc_char").frontend["cmvn_stats"]
    assert stats == os.path.join(PACKAGE_DIR, "assets", "models", "lstm_ctc_char_cmvn.txt")
    assert os.path.isfile(stats)
    source = tmp_path / "p.yaml"
    source.write_text("{}")
    assert resolve_profile_path("stats.txt", str(source)) == str(tmp_path / "stats.txt")
    assert resolve_profile_path("/abs/stats.txt", str(source)) == "/abs/stats.txt"
    assert resolve_profile_path("package:assets/x.txt", "inline") == os.path.join(PACKAGE_DIR, "assets", "x.txt")
