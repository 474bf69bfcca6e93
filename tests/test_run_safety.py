"""Run safety: one run per folder (locks), no writes through links or outside the folder, no duplicates,
and summary totals over every resumed segment."""
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from ascend_asr import infer as infer_module
from ascend_asr.errors import TensorFileError
from ascend_asr.infer import InferOptions, infer
from ascend_asr.lock import LOCK_NAME, FolderLock, RunLockedError
from ascend_asr.preprocess import preprocess
from ascend_asr.score import score_results
from ascend_asr.tensor_files import read_jsonl

from .conftest import CLIPS_MANIFEST, REPO

HOLD = """
import os, sys, time
import ascend_asr.{module} as m
real = m.{target}
def held(*a, **k):
    open(sys.argv[1], "w").close()            # started, lock held
    while os.path.exists(sys.argv[2]):         # until the test lets it go
        time.sleep(0.02)
    return real(*a, **k)
m.{target} = held
from ascend_asr.runner import run
sys.exit(run(m.main, sys.argv[3:]))
"""


def run_infer(bundle, prep, out, **kw):
    return infer(bundle.om_path, str(prep), str(out), InferOptions(progress=False, **kw), out=io.StringIO())


def copy_prep(demo_prep, tmp_path):
    target = tmp_path / "prep"
    shutil.copytree(demo_prep, target)
    return target


def start_held(tmp_path, module, target, argv):
    """A real `python -m ascend_asr.<module>` run, held inside `target` until release() is called."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    gate.write_text("")
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(module=module, target=target), str(started), str(gate),
                             *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)

    def release():
        gate.unlink()
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err
    return proc, release


def test_second_infer_on_one_folder_is_refused_naming_the_holder(small_bundles, demo_prep, tmp_path):
    out = tmp_path / "r"
    proc, release = start_held(tmp_path, "infer", "run_pipelined",
                               ["--model", small_bundles[1].om_path, "--input", demo_prep, "--output", str(out),
                                "--no-progress"])
    with pytest.raises(RunLockedError) as caught:
        run_infer(small_bundles[4], demo_prep, out)
    message = str(caught.value)
    assert str(out) in message and f"pid {proc.pid}" in message and socket.gethostname() in message
    assert "ascend_asr.infer" not in message or "--output" in message  # the holder's command line
    assert "--output" in message and "started" in message and "wait for that run to finish" in message
    code, _, err = release()
    assert code == 0, err
    rows = read_jsonl(str(out / "hyps.jsonl"))
    assert len(rows) == 8 and len({r["stem"] for r in rows}) == 8  # the refused run wrote nothing
    assert not (out / LOCK_NAME).exists()


def test_second_preprocess_on_one_folder_is_refused_and_infer_waits_for_it(small_profile, small_bundles, tmp_path):
    prep = tmp_path / "prep"
    proc, release = start_held(tmp_path, "preprocess", "featurize",
                               ["--manifest", CLIPS_MANIFEST, "--profile", "jasper_small", "--output", str(prep),
                                "--no-progress"])
    with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
        preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False)
    with pytest.raises(RunLockedError, match="still being written"):
        run_infer(small_bundles[1], prep, tmp_path / "r")
    assert not (tmp_path / "r").exists()  # the refused infer left no folder behind
    code, _, err = release()
    assert code == 0, err
    assert len(read_jsonl(str(prep / "meta.jsonl"))) == 8
    assert len((prep / "jasper_small.info").read_text().splitlines()) == 16


def test_stale_lock_after_kill_9_is_taken_over(small_bundles, demo_prep, tmp_path, capsys):
    out = tmp_path / "r"
    proc, _ = start_held(tmp_path, "infer", "run_pipelined",
                         ["--model", small_bundles[1].om_path, "--input", demo_prep, "--output", str(out),
                          "--no-progress"])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (out / LOCK_NAME).exists()  # kill -9 leaves it behind
    summary = run_infer(small_bundles[1], demo_prep, out)
    err = capsys.readouterr().err
    assert "taking over the stale lock" in err and f"pid {proc.pid} is no longer running" in err
    assert summary["utterances"]["scored"] == 8 and not (out / LOCK_NAME).exists()


def test_lock_file_naming_a_dead_pid_is_taken_over(small_profile, tmp_path, capsys):
    prep = tmp_path / "prep"
    prep.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (prep / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                               "command": "ascend-asr preprocess", "started": "yesterday"}))
    summary = preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False, limit=2)
    assert summary.written == 2 and "taking over the stale lock" in capsys.readouterr().err
    assert not (prep / LOCK_NAME).exists()


def test_lock_is_released_after_an_error_and_an_interrupt(small_bundles, demo_prep, tmp_path, monkeypatch):
    out = tmp_path / "r"

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(infer_module, "run_pipelined", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_infer(small_bundles[1], demo_prep, out)
    assert not (out / LOCK_NAME).exists()
    with pytest.raises(Exception):
        run_infer(small_bundles[1], str(tmp_path / "no-prep"), out)
    assert not (out / LOCK_NAME).exists()
    with FolderLock(str(out)), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        with FolderLock(str(out)):
            pass


@pytest.mark.parametrize("name", ["hyps.jsonl", "summary.json", "segments.jsonl"])
def test_planted_symlink_in_results_is_refused_and_its_target_untouched(small_bundles, demo_prep, tmp_path, name):
    out, victim = tmp_path / "r", tmp_path / "victim.txt"
    run_infer(small_bundles[1], demo_prep, out)
    shutil.move(out / name, victim)  # the link points at a file with the same (valid) content
    (out / name).symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(TensorFileError, match="symbolic link") as caught:
        run_infer(small_bundles[1], demo_prep, out)
    assert str(out / name) in str(caught.value) and "remove the link" in str(caught.value)
    assert victim.read_bytes() == before and os.path.islink(out / name)


def test_planted_symlink_as_an_outputs_file_is_refused(small_bundles, demo_prep, tmp_path):
    out, victim = tmp_path / "r", tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    (out / "outputs").mkdir(parents=True)
    (out / "outputs" / "000000000000_0.bin").symlink_to(victim)
    with pytest.raises(TensorFileError, match="symbolic link"):
        run_infer(small_bundles[1], demo_prep, out, save_outputs="bin")
    assert victim.read_bytes() == b"precious"


def test_planted_meta_symlink_target_is_not_truncated(small_profile, demo_prep, tmp_path):
    prep = copy_prep(demo_prep, tmp_path)
    victim = tmp_path / "victim.jsonl"
    victim.write_text((prep / "meta.jsonl").read_text() + '{"torn')  # a torn tail would be cut off
    before = victim.read_bytes()
    (prep / "meta.jsonl").unlink()
    (prep / "meta.jsonl").symlink_to(victim)
    with pytest.raises(TensorFileError, match="symbolic link"):
        preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False)
    assert victim.read_bytes() == before


def test_meta_stem_traversal_is_refused_and_nothing_is_written_outside(small_bundles, demo_prep, tmp_path):
    base = tmp_path / "a" / "b" / "c" / "d"
    base.mkdir(parents=True)
    prep = copy_prep(demo_prep, base)
    rows = read_jsonl(str(prep / "meta.jsonl"))
    rows[0]["stem"] = "../../../../PWNED"
    shutil.copy(prep / "feats" / "000000000000.bin", base / "PWNED.bin")
    (prep / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = json.loads((prep / "prep.json").read_text())
    info["input_dirs"] = {"feats": "feats/x/y/z", "feat_lens": "feat_lens/x/y/z"}
    (prep / "prep.json").write_text(json.dumps(info))
    with pytest.raises(TensorFileError) as caught:
        run_infer(small_bundles[1], prep, base / "results", save_outputs="bin")
    assert "meta.jsonl" in str(caught.value) and "PWNED" in str(caught.value)
    assert not list(tmp_path.rglob("PWNED_*"))


@pytest.mark.parametrize("folder", ["../elsewhere", "feats/../../elsewhere", "/"])
def test_prep_json_input_dirs_outside_prep_are_refused(small_bundles, demo_prep, tmp_path, folder):
    prep = copy_prep(demo_prep, tmp_path)
    info = json.loads((prep / "prep.json").read_text())
    info["input_dirs"] = {"feats": folder}
    (prep / "prep.json").write_text(json.dumps(info))
    if folder == "/":  # an absolute folder is what the user gave preprocess (ModelZoo's --save_bin_0): read only
        summary = run_infer(small_bundles[1], prep, tmp_path / "r")
        assert summary["utterances"]["scored"] == 0 and summary["utterances"]["failed"] == 8
        return
    with pytest.raises(TensorFileError, match="reaches outside") as caught:
        run_infer(small_bundles[1], prep, tmp_path / "r")
    assert "prep.json" in str(caught.value)


def test_preprocess_refuses_input_dirs_other_than_the_users(small_profile, tmp_path):
    prep = tmp_path / "prep"
    preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False, limit=1)
    info = json.loads((prep / "prep.json").read_text())
    info["input_dirs"] = {"feats": str(tmp_path / "elsewhere")}
    (prep / "prep.json").write_text(json.dumps(info))
    with pytest.raises(TensorFileError, match="another input_dirs"):
        preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False)
    assert not (tmp_path / "elsewhere").exists()


def test_duplicated_hyps_are_refused_by_score_and_deduplicated_on_resume(small_bundles, demo_prep, tmp_path):
    out = tmp_path / "r"
    first = run_infer(small_bundles[1], demo_prep, out)
    hyps = out / "hyps.jsonl"
    lines = hyps.read_text().splitlines(keepends=True)
    hyps.write_text("".join(lines + lines[2:5]))  # two runs at once, as an older version allowed
    with pytest.raises(TensorFileError) as caught:
        score_results(str(out))
    message = str(caught.value)
    assert str(hyps) in message and json.loads(lines[2])["id"] in message and "rerun the same infer" in message
    resumed = run_infer(small_bundles[1], demo_prep, out)
    assert resumed["utterances"]["scored"] == 8 and resumed["wer"] == first["wer"]
    assert len(hyps.read_text().splitlines()) == 8
    assert score_results(str(out))["utterances"] == 8


def test_duplicated_meta_rows_count_once(small_profile, small_bundles, demo_prep, tmp_path):
    prep = copy_prep(demo_prep, tmp_path)
    meta = prep / "meta.jsonl"
    lines = meta.read_text().splitlines(keepends=True)
    meta.write_text("".join(lines + lines[:3]))
    summary = run_infer(small_bundles[1], prep, tmp_path / "r")
    assert summary["utterances"]["scored"] == 8 and len(read_jsonl(str(tmp_path / "r" / "hyps.jsonl"))) == 8
    preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False)
    assert len(meta.read_text().splitlines()) == 8
    assert json.loads((prep / "prep.json").read_text())["utterances"] == 8


def test_resumed_infer_totals_equal_a_one_shot_run(small_bundles, demo_prep, tmp_path, monkeypatch):
    one_shot = run_infer(small_bundles[1], demo_prep, tmp_path / "one")
    real = infer_module.run_pipelined

    def interrupted_after_three(session, batches, consume):
        def three():
            for n, batch in enumerate(batches):
                if n == 3:
                    raise KeyboardInterrupt
                yield batch
        return real(session, three(), consume)

    out = tmp_path / "r"
    monkeypatch.setattr(infer_module, "run_pipelined", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_infer(small_bundles[1], demo_prep, out)
    monkeypatch.setattr(infer_module, "run_pipelined", real)
    partial = len(read_jsonl(str(out / "hyps.jsonl")))
    assert 0 < partial < 8
    resumed = run_infer(small_bundles[1], demo_prep, out)
    again = run_infer(small_bundles[1], demo_prep, out)  # a full resume: nothing left to do
    for summary in (resumed, again):
        u = summary["utterances"]
        assert u["scored"] == 8 and u["failed"] == 0 and u["segments"] == summary["segments"][-1]["segment"]
        assert summary["audio_seconds"] == pytest.approx(one_shot["audio_seconds"])
        assert summary["NPU_compute_time"]["count"] == summary["batches"] == one_shot["batches"] == 8
        assert isinstance(summary["rtf"], float) and summary["rtf"] > 0
        assert summary["wer"] == one_shot["wer"] and summary["untimed_utterances"] == 0
        assert summary["wall_time_s"] >= sum(s["wall_time_s"] for s in summary["segments"][:-1])
    assert resumed["utterances"]["this_run"] == 8 - partial and again["utterances"]["this_run"] == 0
    assert [s["complete"] for s in again["segments"]] == [False, True, True]
    assert [s["utterances"] for s in again["segments"]] == [partial, 8 - partial, 0]
    assert "RTF n/a" not in _printed(again)


def _printed(summary):
    console = io.StringIO()
    infer_module.print_summary(summary, out=console)
    return console.getvalue()


def test_resumed_infer_over_an_extended_prep_and_preprocess_totals(small_profile, small_bundles, tmp_path):
    prep, out = tmp_path / "prep", tmp_path / "r"
    preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False, limit=3)
    first = run_infer(small_bundles[4], prep, out)
    extended = preprocess(CLIPS_MANIFEST, str(prep), small_profile, progress=False)
    info = json.loads((prep / "prep.json").read_text())
    assert (extended.written, extended.resumed) == (5, 3) and info["utterances"] == 8
    assert [(r["written"], r["resumed"]) for r in info["runs"]] == [(3, 0), (5, 3)]
    assert info["audio_seconds"] == pytest.approx(extended.audio_seconds, abs=1e-3)
    summary = run_infer(small_bundles[4], prep, out)
    assert summary["utterances"]["scored"] == 8 and summary["utterances"]["this_run"] == 5
    assert summary["audio_seconds"] == pytest.approx(info["audio_seconds"], abs=1e-3)
    assert summary["batches"] == first["batches"] + 2  # 3 utterances in 1 batch of 4, then 5 in 2
    assert summary["rtf"] == pytest.approx(summary["wall_time_s"] / summary["audio_seconds"])


def test_feature_workers_exit_when_preprocess_is_killed_and_the_rerun_resumes(tmp_path):
    """After kill -9 of `preprocess --workers 2`, forked workers used to live on holding the folder's lock, so
    the rerun was refused naming a dead pid."""
    import signal
    import subprocess
    import sys
    import time

    manifest = tmp_path / "many.tsv"
    rows = open(CLIPS_MANIFEST, encoding="utf-8").read().splitlines()
    base = os.path.dirname(CLIPS_MANIFEST)
    header, body = rows[0], [r for r in rows[1:] if r.strip()]
    absolute = [os.path.join(base, r.split("\t")[0]) + "\t" + "\t".join(r.split("\t")[1:]) for r in body]
    manifest.write_text(header + "\n" + "\n".join(absolute * 150) + "\n")
    command = [sys.executable, "-m", "ascend_asr.preprocess", "--manifest", str(manifest), "--profile",
               "jasper_small", "--output", str(tmp_path / "prep"), "--no-progress", "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2.5)  # the workers notice within a second
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the first run's group
