"""The wheel, installed with its base dependencies into a fresh virtualenv without torch or onnx, runs
preprocess -> infer -> score on a jasper_small bundle and recognizes the held-out clips as recorded.

The bundle is made here, in the test environment (export needs torch); everything after it runs in the
virtualenv, from the installed package (its profiles, its bundled clips). Installing the base dependencies
fetches numpy, onnxruntime, soundfile, soxr, jiwer, tqdm, PyYAML and kaldi-native-fbank (about 50 MB, most of it
onnxruntime and numpy, the first time; pip's cache serves them after that); with the wheels at hand the whole
test takes about 10 s.

Without a network (pip cannot fetch the dependencies) the test skips and says so; with the environment variable
CI or ASCEND_ASR_WHEEL_TEST=required set (.ci/run sets the latter) it fails instead.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "reference_transcripts.json")
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "ascend_asr", "atc_profiles")
NETWORK_SIGNS = ("No matching distribution", "Could not find a version", "NewConnectionError", "Max retries",
                 "Temporary failure in name resolution", "Network is unreachable", "ConnectionError",
                 "ReadTimeoutError", "Could not fetch URL")


def required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("ASCEND_ASR_WHEEL_TEST") == "required"


def run(cmd, cwd, env=None, timeout=300, what="", network=False, venv=False):
    """stdout of cmd; a failure fails the test, except (where not required()) a virtualenv that cannot be made
    (no ensurepip, e.g. Debian without python3-venv) or a pip that cannot reach its index: those skip."""
    done = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        log = (done.stdout + done.stderr)[-4000:]
        if not required() and (venv or network and any(sign in log for sign in NETWORK_SIGNS)):
            why = "cannot make a virtualenv here" if venv else "apparently for lack of network"
            pytest.skip(f"{what} failed, {why} (set CI=1 to fail instead):\n{log}")
        pytest.fail(f"{what} failed (exit {done.returncode}): {' '.join(map(str, cmd))}\n{log}")
    return done.stdout


def clean_env(venv) -> dict:
    """The virtualenv's interpreter and scripts first; nothing of this checkout or environment leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def can_build_here() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    try:
        import wheel  # noqa: F401
        return True
    except ImportError:
        version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
        return version >= (70, 1)


def build_wheel(tmp_path) -> str:
    """The wheel, built from a copy of the sources (so the checkout gets no build/ folder)."""
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=ignore)
        elif os.path.isfile(path):
            shutil.copy2(path, src / name)
    wheels = tmp_path / "wheels"
    # with setuptools here (and its bdist_wheel: setuptools >= 70.1 or the wheel package), build offline in this
    # environment; else in pip's isolated build environment, which fetches setuptools
    isolation = ["--no-build-isolation"] if can_build_here() else []
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", wheels, src], tmp_path,
        what="building the wheel", network=not isolation)
    built = [f for f in os.listdir(wheels) if f.endswith(".whl")]
    assert len(built) == 1, built
    return str(wheels / built[0])


def make_bundle(tmp_path) -> str:
    """The shipped trained jasper_small, exported and converted here (needs torch and onnx)."""
    from ascend_asr.bundle import convert
    from ascend_asr.export import export_onnx
    from ascend_asr.families import load_model, reference_checkpoint
    from ascend_asr.profiles import load_profile

    profile = load_profile("jasper_small")
    model = load_model(profile, reference_checkpoint("jasper_small"))
    onnx_path = export_onnx(model, str(tmp_path / "jasper_small.onnx"))
    bundle = convert(profile, onnx_path, str(tmp_path / "bundle"), batch_sizes=[max(profile.batch_sizes)],
                     build_om=False)[0]
    return bundle.onnx_path


INSPECT = textwrap.dedent("""
    import importlib.util, json, os, sys
    import ascend_asr, ascend_asr.infer, ascend_asr.preprocess, ascend_asr.score, ascend_asr.cli
    from ascend_asr.profiles import PROFILE_DIR, known_profiles, load_profile
    print(json.dumps({
        "package": os.path.dirname(ascend_asr.__file__),
        "profile_dir": PROFILE_DIR,
        "profiles": known_profiles(),
        "cmvn_stats": load_profile("lstm_ctc_char").frontend["cmvn_stats"],
        "importable": {m: importlib.util.find_spec(m) is not None for m in ("torch", "onnx")},
        "imported": sorted(m for m in ("torch", "onnx") if m in sys.modules),
    }))
""")


def test_wheel_installs_without_torch_and_runs_preprocess_infer_score(tmp_path):
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path, what="creating a virtualenv", venv=True)
    env = clean_env(venv)
    python = venv / "bin" / "python"
    # the wheel and its base dependencies only (pip's cache is used: no --no-cache-dir)
    run([python, "-m", "pip", "install", "--quiet", wheel], tmp_path, env=env, timeout=600,
        what="installing the wheel's base dependencies", network=True)

    work = tmp_path / "work"  # not the checkout: `python -m` would put its ascend_asr/ on sys.path
    work.mkdir()
    info = json.loads(run([python, "-c", INSPECT], work, env=env, what="inspecting the install").splitlines()[-1])
    package = info["package"]
    assert package.startswith(str(venv)), info
    assert info["importable"] == {"torch": False, "onnx": False}, info
    assert info["imported"] == [], info
    assert info["profile_dir"] == os.path.join(package, "atc_profiles"), info
    assert {"jasper_small", "deepspeech2_small", "lstm_ctc_char"} <= set(info["profiles"]), info
    assert info["cmvn_stats"].startswith(package) and os.path.isfile(info["cmvn_stats"]), info

    model = make_bundle(tmp_path)
    manifest = os.path.join(package, "assets", "speech", "heldout", "manifest.tsv")
    ascend_asr = venv / "bin" / "ascend-asr"
    run([ascend_asr, "preprocess", "--manifest", manifest, "--profile", "jasper_small", "--output", "prep",
         "--no-progress"], work, env=env, what="ascend-asr preprocess")
    run([python, "-m", "ascend_asr.infer", "--model", model, "--input", "prep", "--output", "results",
         "--backend", "onnxruntime", "--no-progress"], work, env=env, what="python -m ascend_asr.infer")
    report = run([ascend_asr, "score", "--results", "results"], work, env=env, what="ascend-asr score")
    assert "WER" in report and "CER" in report, report

    with open(work / "results" / "hyps.jsonl", encoding="utf-8") as f:
        hyps = {row["id"]: row["hyp"] for row in map(json.loads, filter(str.strip, f))}
    with open(TRANSCRIPTS, encoding="utf-8") as f:
        assert hyps == json.load(f)["jasper_small"]
    assert os.path.isfile(work / "results" / "score.json")
