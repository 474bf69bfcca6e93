"""Every entry point goes through the one runner: a missing input file is one line naming it (exit 2, no
traceback); Ctrl-C and SIGTERM say how to resume (exit 130, 143). The commands run as subprocesses, all
at once, so the whole file costs about one interpreter start per core."""
import os
import signal
import subprocess
import sys
import time

import pytest

from ascend_asr.cli import all_commands

COMMANDS = all_commands()
from ascend_asr.errors import ProfileError
from ascend_asr.runner import INTERRUPTED, run

from .conftest import CLIPS_MANIFEST, REPO

MISSING = "missing-input"  # a folder that does not exist under each test's tmp_path


def console_script() -> list[str]:
    """The installed `ascend-asr` (beside this interpreter), else the same entry function."""
    script = os.path.join(os.path.dirname(sys.executable), "ascend-asr")
    if os.path.isfile(script):
        return [script]
    return [sys.executable, "-c", "import sys; from ascend_asr.cli import main; sys.exit(main())"]


def command_args(m: str, out: str) -> dict[str, list[str]]:
    """Arguments of each command, with its input file under the missing folder `m`."""
    return {
        "export": ["--profile", "jasper_small", "--checkpoint", f"{m}/jasper.pt", "--output", f"{out}/m.onnx"],
        "profile": ["--family", "jasper", "--config", f"{m}/jasper.yaml", "--output", f"{out}/p.yaml"],
        "plan": ["--manifest", f"{m}/m.tsv", "--profile", "jasper_small"],
        "convert": ["--profile", "jasper_small", "--onnx", f"{m}/m.onnx", "--output-dir", f"{out}/bundles"],
        "optimize": ["--model", f"{m}/m.onnx", "--profile", "jasper_small", "--output-dir", f"{out}/optimized"],
        "compare": [f"{m}/a.onnx", f"{m}/b.onnx", "--input", f"{m}/prep"],
        "import-paddle": ["--model-dir", f"{m}/inference", "--output", f"{out}/paddle.onnx"],
        "stream": ["--checkpoint", f"{m}/avg_1.pdparams", "--audio", f"{m}/a.wav", "--output", f"{out}/stream"],
        "preprocess": ["--manifest", f"{m}/m.tsv", "--profile", "jasper_small", "--output", f"{out}/prep"],
        "infer": ["--model", f"{m}/m_bs1.onnx", "--input", f"{m}/prep", "--output", f"{out}/results"],
        "score": ["--results", f"{m}/results"],
        "demo": ["--checkpoint", f"{m}/jasper.pt", "--work-dir", f"{out}/demo"],
        "benchmark": ["--manifest", f"{m}/m.tsv"],
        "bench": ["--model", f"{m}/m_bs1.json", "--manifest", f"{m}/m.tsv", "--output", f"{out}/bench"],
        "doctor": ["--model", f"{m}/m_bs1.json"],
    }


def script_args(m: str, out: str) -> dict[str, list[str]]:
    return {
        "preprocess/jasper_preprocess.py": ["--val_manifests", f"{m}/m.json", "--save_bin_0", f"{out}/d0",
                                            "--save_bin_1", f"{out}/d1", "--json_file", f"{out}/agg.json",
                                            "--prep_dir", f"{out}/prep"],
        "preprocess/deepspeech2_preprocess.py": ["--data_file", f"{m}/an4.json", "--save_path", f"{out}/test"],
        "preprocess/deepspeech2_preprocess.py --label_file": ["--data_file", CLIPS_MANIFEST, "--save_path",
                                                             f"{out}/test", "--label_file", f"{m}/labels.json"],
        "preprocess/lstm_preprocess.py": ["--conf", f"{m}/ctc_config.yaml", "--manifest", f"{m}/m.jsonl",
                                          "--save_bin", f"{out}/bin", "--prep_dir", f"{out}/prep"],
        "postprocess/jasper_postprocess.py": ["--save_bin", f"{m}/result", "--json_file", f"{m}/agg_txts.json"],
        "postprocess/jasper_postprocess.py --save_bin": ["--save_bin", f"{m}/result", "--json_file", f"{out}/agg.json"],
        "postprocess/deepspeech2_postprocess.py": ["--out_path", f"{m}/result", "--save_path", f"{m}/test"],
        "postprocess/lstm_postprocess.py": ["--npu_path", f"{m}/result", "--prep_dir", f"{m}/prep"],
    }


def entry_points(m: str, out: str) -> dict[str, list[str]]:
    """{name: argv} of every entry point, each given an input under `m` that does not exist."""
    py = sys.executable
    commands = command_args(m, out)
    runs = {f"ascend-asr {name}": [*console_script(), name, *args] for name, args in commands.items()}
    runs.update({f"python -m {COMMANDS[name][0]}": [py, "-m", COMMANDS[name][0], *args]
                 for name, args in commands.items()})
    runs["python -m ascend_asr.cli preprocess"] = [py, "-m", "ascend_asr.cli", "preprocess", *commands["preprocess"]]
    runs["python -m ascend_asr.recipes.train_reference"] = [
        py, "-m", "ascend_asr.recipes.train_reference", "--family", "jasper", "--fsdd", f"{m}/fsdd",
        "--output", f"{out}/reference", "--work-dir", f"{out}/work"]
    runs.update({name: [py, os.path.join(REPO, name.split()[0]), *args] for name, args in script_args(m, out).items()})
    return runs


@pytest.fixture(scope="module")
def missing_input_runs(tmp_path_factory):
    """(missing folder, {name: CompletedProcess-like (returncode, stderr)}), all run in parallel."""
    tmp = tmp_path_factory.mktemp("entry_points")
    missing, out = str(tmp / MISSING), str(tmp / "out")
    os.makedirs(out)
    with open(os.path.join(out, "agg.json"), "w") as f:
        f.write('{"txts": ["one"], "stems": ["000000000000"]}')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen(argv, cwd=str(tmp), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, argv in entry_points(missing, out).items()}
    results = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, err)
    return missing, results


ENTRY_POINT_NAMES = list(entry_points("m", "o"))


@pytest.mark.parametrize("name", ENTRY_POINT_NAMES)
def test_a_missing_input_file_is_one_line_naming_it_and_exit_2(missing_input_runs, name):
    missing, results = missing_input_runs
    returncode, err = results[name]
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("[ascend-asr] error: ") and missing in lines[0], err
    assert returncode == 2, err


def test_every_command_and_script_is_covered():
    names = " ".join(ENTRY_POINT_NAMES)
    for command, (module, _) in COMMANDS.items():
        assert f"ascend-asr {command}" in ENTRY_POINT_NAMES and f"python -m {module}" in ENTRY_POINT_NAMES
    for folder in ("preprocess", "postprocess"):
        for script in os.listdir(os.path.join(REPO, folder)):
            if script.endswith(".py"):
                assert f"{folder}/{script}" in names


def long_manifest(tmp_path, copies: int = 3000) -> str:
    """The bundled clips over and over: minutes of preprocessing."""
    with open(CLIPS_MANIFEST, encoding="utf-8") as f:
        header, *rows = [line for line in f.read().splitlines() if line.strip()]
    base = os.path.dirname(CLIPS_MANIFEST)
    col = header.split("\t").index("path")
    lines = [header]
    for i in range(copies):
        cells = rows[i % len(rows)].split("\t")
        cells[col] = os.path.join(base, cells[col])
        lines.append("\t".join(cells))
    path = tmp_path / "long.tsv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_ctrl_c_and_sigterm_say_how_to_resume_and_exit_130_and_143(tmp_path):
    manifest = long_manifest(tmp_path)
    procs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prep = tmp_path / f"prep_{sig.name}"
        procs[sig] = (prep, subprocess.Popen(
            [sys.executable, "-m", "ascend_asr.preprocess", "--manifest", manifest, "--profile", "jasper_small",
             "--output", str(prep), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True))
    for sig, (prep, proc) in procs.items():
        deadline = time.monotonic() + 120
        while not (prep / "meta.jsonl").is_file() or not (prep / "meta.jsonl").stat().st_size:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "preprocess wrote nothing in 120 s"
            time.sleep(0.05)
        proc.send_signal(sig)
    for sig, (prep, proc) in procs.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + sig, err
        assert err.strip().splitlines() == [INTERRUPTED], err
        rows = (prep / "meta.jsonl").read_text()
        assert rows.endswith("\n")  # finished utterances are whole lines: a rerun resumes after them


def test_runner_in_process(capsys):
    def fails(argv):
        raise ProfileError(f"{argv[0]}: profile not found; give a profile name or YAML path")

    assert run(fails, ["p.yaml"]) == 2
    assert capsys.readouterr().err == "[ascend-asr] error: p.yaml: profile not found; give a profile name or YAML path\n"

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run(interrupted) == 130 and capsys.readouterr().err == INTERRUPTED + "\n"

    def terminated(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        return 0

    before = signal.getsignal(signal.SIGTERM)
    assert run(terminated) == 143 and capsys.readouterr().err == INTERRUPTED + "\n"
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the runner's only while it runs

    def bug(argv):
        raise ValueError("a genuine bug")

    with pytest.raises(ValueError, match="a genuine bug"):  # never flattened into one line
        run(bug)
    assert run(lambda argv: None) == 0 and run(lambda argv: 3) == 3
