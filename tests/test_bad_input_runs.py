"""Catalogue of bad run conditions (locks, links, traversal, duplicates, foreign or broken results folders,
unwritable outputs): each is refused with a project error naming the file and the fix, and changes nothing."""
import io
import json
import os
import shutil
import socket

import pytest

from ascend_asr.errors import AscendAsrError, TensorFileError
from ascend_asr.infer import InferOptions, infer
from ascend_asr.lock import LOCK_NAME, FolderLock, RunLockedError
from ascend_asr.preprocess import preprocess
from ascend_asr.score import score_results
from ascend_asr.tensor_files import JsonlAppender, write_json_atomic

from .conftest import CLIPS_MANIFEST


class Env:
    """What a case needs: the shared bundles and prep/ (copied before any change), and a scratch folder."""

    def __init__(self, tmp_path, bundles, demo_prep, profile):
        self.tmp, self.bundles, self.demo_prep, self.profile = tmp_path, bundles, demo_prep, profile

    def prep(self):
        target = self.tmp / "prep"
        if not target.exists():
            shutil.copytree(self.demo_prep, target)
        return target

    def results(self):
        """A finished results folder of the demo prep."""
        out = self.tmp / "r"
        if not out.exists():
            self.infer(out=out)
        return out

    def infer(self, prep=None, out=None, **kw):
        return infer(self.bundles[1].om_path, str(prep or self.demo_prep), str(out or self.tmp / "r"),
                     InferOptions(progress=False, **kw), out=io.StringIO())

    def preprocess(self, out=None, **kw):
        return preprocess(CLIPS_MANIFEST, str(out or self.tmp / "prep"), self.profile, progress=False, **kw)

    def edit_jsonl(self, path, change):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)))

    def edit_json(self, path, change):
        path.write_text(json.dumps(change(json.loads(path.read_text()))))


def lock_file(folder, **holder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "command": "x",
                                                "started": "t", **holder}))
    return folder / LOCK_NAME


# each case: (name, setup(env) -> (action, file named in the message), error class, words of the fix)
def held_infer(env):
    out = env.tmp / "r"
    env.held = FolderLock(str(out)).acquire()
    return lambda: env.infer(out=out), out


def held_preprocess(env):
    out = env.tmp / "prep"
    env.held = FolderLock(str(out)).acquire()
    return lambda: env.preprocess(out=out), out


def foreign_host_lock(env):
    path = lock_file(env.tmp / "r", host="another-host.example", pid=4242)
    return lambda: env.infer(out=env.tmp / "r"), path


def prep_being_written(env):
    prep = env.prep()
    env.held = FolderLock(str(prep)).acquire()
    return lambda: env.infer(prep=prep), prep


def lock_symlink(env):
    (env.tmp / "r").mkdir()
    (env.tmp / "r" / LOCK_NAME).symlink_to(env.tmp / "elsewhere")
    return lambda: env.infer(), env.tmp / "r" / LOCK_NAME


def link_in_results(name):
    def setup(env):
        out = env.results()
        victim = env.tmp / "victim"
        shutil.move(out / name, victim)
        (out / name).symlink_to(victim)
        return lambda: env.infer(out=out), out / name
    return setup


def outputs_symlink(env):
    (env.tmp / "r" / "outputs").mkdir(parents=True)
    (env.tmp / "r" / "outputs" / "000000000003_1.npy").symlink_to(env.tmp / "victim.npy")
    return lambda: env.infer(save_outputs="npy"), env.tmp / "r" / "outputs" / "000000000003_1.npy"


def meta_symlink(env):
    prep = env.prep()
    shutil.move(prep / "meta.jsonl", env.tmp / "victim.jsonl")
    (prep / "meta.jsonl").symlink_to(env.tmp / "victim.jsonl")
    return lambda: env.preprocess(out=prep), prep / "meta.jsonl"


def appender_symlink(env):
    (env.tmp / "x.jsonl").symlink_to(env.tmp / "victim")
    return lambda: JsonlAppender(str(env.tmp / "x.jsonl")), env.tmp / "x.jsonl"


def meta_stem(stem):
    def setup(env):
        prep = env.prep()
        env.edit_jsonl(prep / "meta.jsonl", lambda rows: [{**rows[0], "stem": stem}] + rows[1:])
        return lambda: env.infer(prep=prep, save_outputs="bin"), prep / "meta.jsonl"
    return setup


def hyps_stem_traversal(env):
    out = env.results()
    env.edit_jsonl(out / "hyps.jsonl", lambda rows: [{**rows[0], "stem": "../../PWNED"}] + rows[1:])
    return lambda: score_results(str(out)), out / "hyps.jsonl"


def input_dirs(value):
    def setup(env):
        prep = env.prep()
        env.edit_json(prep / "prep.json", lambda info: {**info, "input_dirs": value})
        return lambda: env.infer(prep=prep), prep / "prep.json"
    return setup


def preprocess_input_dirs_changed(env):
    prep = env.prep()
    env.edit_json(prep / "prep.json", lambda info: {**info, "input_dirs": {"feats": "moved"}})
    return lambda: env.preprocess(out=prep), prep


def duplicated_hyps(env):
    out = env.results()
    lines = (out / "hyps.jsonl").read_text().splitlines(keepends=True)
    (out / "hyps.jsonl").write_text("".join(lines + lines[1:2]))
    return lambda: score_results(str(out)), out / "hyps.jsonl"


def conflicting_meta_rows(env):
    prep = env.prep()
    env.edit_jsonl(prep / "meta.jsonl", lambda rows: rows + [{**rows[0], "audio": "/other.wav"}])
    return lambda: env.infer(prep=prep), prep / "meta.jsonl"


def hyps_without_run_json(env):
    out = env.results()
    (out / "run.json").unlink()
    return lambda: env.infer(out=out), out / "hyps.jsonl"


def run_json_text(text):
    def setup(env):
        out = env.results()
        (out / "run.json").write_text(text)
        return lambda: env.infer(out=out), out / "run.json"
    return setup


def run_json_other_model(env):
    out = env.results()
    env.edit_json(out / "run.json", lambda run: {**run, "model": "someone_elses_bs1"})
    return lambda: env.infer(out=out), out / "run.json"


def run_json_other_hash(env):
    out = env.results()
    env.edit_json(out / "run.json", lambda run: {**run, "onnx_sha256": "0" * 64})
    return lambda: env.infer(out=out), out / "run.json"


def damaged_segment_record(env):
    out = env.results()
    with open(out / "segments.jsonl", "a") as f:
        f.write('{"utterances": 3, "compute_ms": "fast"}\n')
    return lambda: env.infer(out=out), out / "segments.jsonl"


def output_is_a_file(env):
    (env.tmp / "r").write_text("not a folder")
    return lambda: env.infer(), env.tmp / "r"


def prep_output_is_a_file(env):
    (env.tmp / "prep").write_text("not a folder")
    return lambda: env.preprocess(), env.tmp / "prep"


def output_below_a_file(env):
    (env.tmp / "file").write_text("")
    return lambda: env.infer(out=env.tmp / "file" / "r"), env.tmp / "file" / "r"


def outputs_folder_is_a_file(env):
    (env.tmp / "r").mkdir()
    (env.tmp / "r" / "outputs").write_text("")
    return lambda: env.infer(save_outputs="bin"), env.tmp / "r" / "outputs"


def summary_is_a_folder(env):
    (env.tmp / "r" / "summary.json").mkdir(parents=True)
    return lambda: env.infer(), env.tmp / "r" / "summary.json"


def score_a_file(env):
    (env.tmp / "r").write_text("")
    return lambda: score_results(str(env.tmp / "r")), env.tmp / "r"


def score_empty_folder(env):
    (env.tmp / "r").mkdir()
    return lambda: score_results(str(env.tmp / "r")), env.tmp / "r" / "hyps.jsonl"


def score_foreign_rows(env):
    (env.tmp / "r").mkdir()
    (env.tmp / "r" / "hyps.jsonl").write_text('{"name": "not ours"}\n')
    return lambda: score_results(str(env.tmp / "r")), env.tmp / "r" / "hyps.jsonl"


def unwritable_results(env):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (env.tmp / "r").mkdir()
    os.chmod(env.tmp / "r", 0o500)
    return lambda: env.infer(), env.tmp / "r"


def atomic_write_over_link(env):
    (env.tmp / "s.json").symlink_to(env.tmp / "victim")
    return lambda: write_json_atomic(str(env.tmp / "s.json"), {}), env.tmp / "s.json"


CASES = [
    ("lock: infer on a folder another infer holds", held_infer, RunLockedError, "wait for that run"),
    ("lock: preprocess on a folder another preprocess holds", held_preprocess, RunLockedError, "wait for that run"),
    ("lock: held from another host", foreign_host_lock, RunLockedError, "delete"),
    ("lock: infer on a prep/ still being preprocessed", prep_being_written, RunLockedError, "wait for it"),
    ("lock: the lock file is a link", lock_symlink, RunLockedError, "remove it"),
    ("link: hyps.jsonl", link_in_results("hyps.jsonl"), TensorFileError, "remove the link"),
    ("link: summary.json", link_in_results("summary.json"), TensorFileError, "remove the link"),
    ("link: segments.jsonl", link_in_results("segments.jsonl"), TensorFileError, "remove the link"),
    ("link: an outputs file", outputs_symlink, TensorFileError, "remove the link"),
    ("link: prep meta.jsonl on resume", meta_symlink, TensorFileError, "remove the link"),
    ("link: any JSON-lines append", appender_symlink, TensorFileError, "remove the link"),
    ("link: any atomic write", atomic_write_over_link, TensorFileError, "remove the link"),
    ("traversal: meta stem ../../../../PWNED", meta_stem("../../../../PWNED"), TensorFileError, "preprocess again"),
    ("traversal: meta stem an absolute path", meta_stem("/tmp/PWNED"), TensorFileError, "preprocess again"),
    ("stem: not 12 digits", meta_stem("0001"), TensorFileError, "preprocess again"),
    ("stem: not a string", meta_stem(7), TensorFileError, "preprocess again"),
    ("traversal: hyps stem, score", hyps_stem_traversal, TensorFileError, "new folder"),
    ("traversal: prep.json input_dirs ..", input_dirs({"feats": "../x"}), TensorFileError, "preprocess again"),
    ("traversal: prep.json input_dirs a/../..", input_dirs({"feats": "a/../../x"}), TensorFileError,
     "preprocess again"),
    ("prep.json input_dirs: not a mapping", input_dirs(["feats"]), TensorFileError, "preprocess again"),
    ("prep.json input_dirs: an unknown input", input_dirs({"nope": "x"}), TensorFileError, "preprocess again"),
    ("prep.json input_dirs: not the user's, on resume", preprocess_input_dirs_changed, TensorFileError,
     "new --output folder"),
    ("duplicates: hyps.jsonl, score", duplicated_hyps, TensorFileError, "rerun the same infer command"),
    ("duplicates: two different meta rows for one stem", conflicting_meta_rows, TensorFileError, "remove the wrong"),
    ("foreign results: hyps.jsonl without run.json", hyps_without_run_json, TensorFileError, "new --output folder"),
    ("run.json: not JSON", run_json_text("{not json"), TensorFileError, "new --output folder"),
    ("run.json: not a run record", run_json_text('{"x": 1}'), TensorFileError, "new --output folder"),
    ("run.json: a list", run_json_text("[]"), TensorFileError, "new --output folder"),
    ("run.json: another model", run_json_other_model, TensorFileError, "new --output folder"),
    ("run.json: same name, another ONNX", run_json_other_hash, TensorFileError, "new --output folder"),
    ("segments.jsonl: a damaged record", damaged_segment_record, TensorFileError, "remove the line"),
    ("output: results path is a file", output_is_a_file, RunLockedError, "give a folder"),
    ("output: prep path is a file", prep_output_is_a_file, RunLockedError, "give a folder"),
    ("output: below a file", output_below_a_file, RunLockedError, "choose a writable"),
    ("output: outputs/ is a file", outputs_folder_is_a_file, TensorFileError, "remove the file"),
    ("output: summary.json is a folder", summary_is_a_folder, TensorFileError, "remove it or write to a new"),
    ("output: results folder not writable", unwritable_results, RunLockedError, "writable"),
    ("score: a file for the results folder", score_a_file, TensorFileError, "first"),
    ("score: an empty results folder", score_empty_folder, TensorFileError, "infer` first"),
    ("score: rows infer did not write", score_foreign_rows, TensorFileError, "rerun infer"),
]


@pytest.mark.parametrize("name,setup,error,fix", CASES, ids=[c[0] for c in CASES])
def test_bad_run_condition_is_refused_with_the_file_and_the_fix(name, setup, error, fix, tmp_path, small_bundles,
                                                                demo_prep, small_profile):
    env = Env(tmp_path, small_bundles, demo_prep, small_profile)
    env.held = None
    action, named = setup(env)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()}
    try:
        with pytest.raises(AscendAsrError) as caught:
            action()
    finally:
        if env.held:
            env.held.release()
    message = str(caught.value)
    assert isinstance(caught.value, error), (type(caught.value), message)
    assert str(named) in message, message
    assert fix in message, message
    assert "\n" not in message
    for path, data in before.items():  # nothing that was there changed (targets of planted links included)
        if path.name not in (LOCK_NAME,):
            assert path.read_bytes() == data, path
    assert not list(tmp_path.parent.rglob("PWNED_*"))  # what a traversal would write (PWNED_<k>.bin)
