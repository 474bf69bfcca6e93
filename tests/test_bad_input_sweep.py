"""The hostile sweep's findings: each bad input is one project error naming the file (or field) and the fix,
or a visible warning, never a traceback or a silent change."""
import copy
import json
import os
import shutil
import types

import numpy as np
import pytest
import torch
import yaml

from ascend_asr.bundle import check_bundle_name, convert, open_bundle
from ascend_asr.datasets import read_manifest
from ascend_asr.decoding import load_language_model, make_decoder
from ascend_asr.errors import (
    AtcError,
    AudioError,
    BackendError,
    CheckpointError,
    ManifestError,
    OptionError,
    ProfileError,
    TensorFileError,
)
from ascend_asr.audio import load_audio
from ascend_asr.families.checkpoints import load_state_dict_strict, read_checkpoint
from ascend_asr.families.safe_pickle import restricted_load
from ascend_asr.language_model import ArpaError
from ascend_asr.metrics import score
from ascend_asr.prep import open_prep
from ascend_asr.profiles import PROFILE_DIR, load_profile
from ascend_asr.text import ENGLISH_LABELS, Vocabulary, normalize_transcript

from .conftest import CLIPS_MANIFEST


def check(exc_info, names, *fix):
    message = str(exc_info.value)
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message and "\x1b[" not in message
    for part in (names, *fix):
        assert part in message, (part, message)


# -- 1a: a bad --lm with kenlm installed -------------------------------------------------------------------
LM_CASES = {
    "random_bytes": bytes(range(256)) * 4,
    "empty": b"",
    "data_without_counts": b"\\data\\\n\\end\\\n",
    "huge_order": b"\\data\\\nngram 1=1\nngram 99=1\n\n\\1-grams:\n-1 a\n\n\\end\\\n",
    "non_numeric_prob": b"\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\nx a\n-1 b\n\n\\2-grams:\n-1 a b\n\n\\end\\\n",
    "nan_inf": b"\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\nnan a\ninf b\n\n\\2-grams:\n-1 a b\n\n\\end\\\n",
    "count_mismatch": b"\\data\\\nngram 1=5\nngram 2=1\n\n\\1-grams:\n-1 a\n\n\\2-grams:\n-1 a a\n\n\\end\\\n",
    "latin1_word": "\\data\\\nngram 1=1\n\n\\1-grams:\n-1 caf\xe9\n\n\\end\\\n".encode("latin-1"),
    "fake_binary": b"mmap lm http://kheafield.com/code format version 5\n\0" + bytes(200),
}


@pytest.mark.parametrize("case", sorted(LM_CASES))
def test_bad_lm_is_one_project_error(tmp_path, case):
    pytest.importorskip("kenlm")
    path = tmp_path / f"{case}.arpa"
    path.write_bytes(LM_CASES[case])
    with pytest.raises(ArpaError) as exc_info:
        load_language_model(str(path))
    check(exc_info, str(path))
    assert any(fix in str(exc_info.value) for fix in ("rebuild it", "give a valid ARPA file"))


# -- 1b: invalid JSON in prep.json / a bundle manifest -----------------------------------------------------
JSON_CASES = {"garbage": b"{not json", "empty": b"", "latin1": b'{"format": "\xe9"}', "nan": b'{"format": NaN}',
              "folder": None}


@pytest.fixture(scope="module")
def bundle_copy(small_bundles, tmp_path_factory):
    def make(mutate=None, name="bad"):
        folder = tmp_path_factory.mktemp(name)
        b = small_bundles[1]
        shutil.copy(b.onnx_path, folder / f"{b.name}.onnx")
        manifest = copy.deepcopy(b.manifest)
        if mutate:
            mutate(manifest)
        (folder / f"{b.name}.json").write_text(json.dumps(manifest))
        return str(folder / f"{b.name}.json")
    return make


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_bad_prep_json_is_one_project_error(tmp_path, demo_prep, case):
    prep = tmp_path / "prep"
    shutil.copytree(demo_prep, prep)
    os.remove(prep / "prep.json")
    if JSON_CASES[case] is None:
        os.mkdir(prep / "prep.json")
    else:
        (prep / "prep.json").write_bytes(JSON_CASES[case])
    with pytest.raises(TensorFileError) as exc_info:
        open_prep(str(prep))
    check(exc_info, str(prep / "prep.json"), "ascend-asr preprocess")


@pytest.mark.parametrize("case", ["garbage", "empty", "nan"])
def test_bad_bundle_json_is_one_project_error(bundle_copy, case):
    path = bundle_copy()
    with open(path, "wb") as f:
        f.write(JSON_CASES[case])
    with pytest.raises(BackendError) as exc_info:
        open_bundle(path)
    check(exc_info, path, "ascend-asr convert")


# -- 1c: a damaged bundle manifest is one run-level error -------------------------------------------------
def _set(path, value):
    def mutate(m):
        *parents, last = path.split(".")
        target = m
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return mutate


MANIFEST_CASES = {
    "inputs_missing": ("inputs", KeyError, "inputs"),
    "outputs_missing": ("outputs", KeyError, "outputs"),
    "sha_missing": ("onnx_sha256", KeyError, "onnx_sha256"),
    "sha_wrong_type": ("onnx_sha256", 5, "onnx_sha256"),
    "time_stride_0": ("time_stride", 0, "time_stride"),
    "time_stride_neg": ("time_stride", -2, "time_stride"),
    "time_stride_float": ("time_stride", 1.5, "time_stride"),
    "blank_0_with_blank_label_last": ("vocabulary.blank", 0, "'<blank>' is label 28"),
    "blank_str": ("vocabulary.blank", "28", "blank id must be a whole number"),
    "labels_int": ("vocabulary.labels", list(range(29)), "non-empty strings"),
    "labels_spaces": ("vocabulary.labels", [" "] * 28 + ["<blank>"], "more than once"),
    "batch_size_str": ("batch_size", "one", "batch_size"),
    "frames_empty": ("frames", [], "frames"),
    "frames_neg": ("frames", [-256], "frames"),
    "frames_huge": ("frames", [10 ** 9], "frames"),
    "shapes_str": ("shapes", "x", "shapes"),
    "shapes_other_frames": ("shapes", [{"batch": 1, "frames": 10 ** 9}], "shapes"),
    "output_name_empty": ("outputs.0.name", "", "outputs"),
    "output_names_repeated": ("outputs.1.name", "prob", "outputs names"),
    "name_traversal": ("name", "../../x", "name"),
    "frontend_nmels_str": ("frontend.n_mels", "64", "n_mels"),
    "gear_mode_bad": ("gear_mode", "weird", "gear_mode"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_damaged_manifest_is_refused_when_opened(bundle_copy, case):
    field, value, says = MANIFEST_CASES[case]
    path = bundle_copy(_set(field, value), name=case)
    with pytest.raises(BackendError) as exc_info:
        open_bundle(path)
    check(exc_info, path, says, "convert again")


def test_good_manifest_still_opens(small_bundles):
    bundle = open_bundle(small_bundles[1].manifest_path)
    bundle.check()


# -- 1d: profiles with wrong types and ranges ---------------------------------------------------------------
def _profile(tmp_path, mutate):
    with open(os.path.join(PROFILE_DIR, "jasper_small.yaml"), encoding="utf-8") as f:
        d = yaml.safe_load(f)
    mutate(d)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


PROFILE_CASES = {
    "frontend_list": ("frontend", [1, 2], "frontend"),
    "n_mels_neg": ("frontend.n_mels", -64, "n_mels"),
    "n_mels_str": ("frontend.n_mels", "64", "n_mels"),
    "n_mels_float": ("frontend.n_mels", 64.0, "n_mels"),
    "n_mels_huge": ("frontend.n_mels", 100000, "n_mels"),
    "n_fft_huge": ("frontend.n_fft", 1073741824, "n_fft"),
    "n_fft_not_pow2": ("frontend.n_fft", 500, "n_fft"),
    "n_fft_below_window": ("frontend.n_fft", 128, "n_fft"),
    "sample_rate_0": ("frontend.sample_rate", 0, "sample_rate"),
    "sample_rate_1": ("frontend.sample_rate", 1, "sample_rate"),
    "window_stride_0": ("frontend.window_stride", 0, "window_stride"),
    "window_size_neg": ("frontend.window_size", -0.02, "window_size"),
    "trim_top_db_neg": ("frontend.trim_top_db", -60, "trim_top_db"),
    "preemph_str": ("frontend.preemph", "x", "preemph"),
    "dither_nan": ("frontend.dither", float("nan"), "dither"),
    "trim_silence_str": ("frontend.trim_silence", "yes", "trim_silence"),
    "blank_str": ("vocabulary.blank", "first?", "blank"),
    "labels_int": ("vocabulary.labels", list(range(28)), "labels"),
    "labels_str": ("vocabulary.labels", "abc", "labels"),
    "frames_float": ("frames", [256.5], "frames"),
    "frames_trillion": ("frames", [1000000000000], "frames"),
    "frames_duplicate": ("frames", [1024, 256, 256], "more than once"),
    "unknown_key": ("frobnicate", 1, "unknown keys ['frobnicate']"),
    "atc_precision_mode": ("atc.precision_mode", "fastest_please", "precision_mode"),
    "atc_unknown_option": ("atc.soc", "Ascend310P3", "unknown options"),
    "time_stride_0": ("time_stride", 0, "time_stride"),
}


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_bad_profile_is_one_project_error(tmp_path, case):
    field, value, says = PROFILE_CASES[case]
    path = _profile(tmp_path, _set(field, value))
    with pytest.raises(ProfileError) as exc_info:
        load_profile(path)
    check(exc_info, path, says)


def test_profile_with_the_keys_ascend_asr_profile_writes_loads(tmp_path):
    path = _profile(tmp_path, _set("source", {"upstream": None, "base_profile": "jasper_small.yaml"}))
    assert load_profile(path).frames == (256, 512, 1024)


def test_every_shipped_profile_still_loads():
    for name in ("jasper", "jasper_small", "deepspeech2", "deepspeech2_small", "lstm_ctc", "lstm_ctc_char",
                 "lstm_ctc_small"):
        load_profile(name)


@pytest.mark.parametrize("spec, says", [
    ({"labels": ["a", "b"], "blank": "first?"}, "blank"),
    ({"labels": [1, 2]}, "non-empty strings"),
    ({"labels": ["a", "a"]}, "more than once"),
    ({"labels": ["a", "<blank>", "b"], "blank": 0}, "'<blank>' is label 1"),
    ({"labels": ["a"], "blank": True}, "blank"),
    ("abc", "expected a mapping"),
])
def test_vocabulary_spec_refused(spec, says):
    with pytest.raises(ProfileError) as exc_info:
        Vocabulary.from_spec(spec, "profile.yaml")
    check(exc_info, "profile.yaml", says)


# -- 1e: convert -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", ""])
def test_convert_refuses_a_bundle_name_that_is_no_plain_file_name(name):
    with pytest.raises(OptionError) as exc_info:
        check_bundle_name(name, "--name")
    check(exc_info, "--name", "plain file name")


@pytest.mark.parametrize("content, says", [(b"", "empty file, not an ONNX model"),
                                           (b"\x12\x34garbage" * 50, "not an ONNX model")])
def test_convert_refuses_a_file_that_is_no_onnx(tmp_path, small_profile, content, says):
    pytest.importorskip("onnx")
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(content)
    with pytest.raises(ProfileError) as exc_info:
        convert(small_profile, str(onnx_path), str(tmp_path / "out"), build_om=False)
    check(exc_info, str(onnx_path), says, "ascend-asr export")


def test_convert_refuses_an_output_dir_that_is_a_file(tmp_path, small_profile, small_onnx):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OptionError) as exc_info:
        convert(small_profile, small_onnx, str(target), build_om=False)
    check(exc_info, str(target), "not a folder")


def test_atc_that_is_not_executable_is_told_so(tmp_path):
    from ascend_asr.atc import find_atc

    atc = tmp_path / "atc"
    atc.write_text("#!/bin/sh\n")
    atc.chmod(0o644)
    with pytest.raises(AtcError) as exc_info:
        find_atc(str(atc))
    check(exc_info, str(atc), "not executable")


# -- 1f: export --opset ----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [0, 1, 8, 19, 999])
def test_export_refuses_an_opset_atc_cannot_take(opset):
    from ascend_asr.export import check_opset

    with pytest.raises(OptionError) as exc_info:
        check_opset(opset)
    check(exc_info, f"--opset {opset}", "11-15 in CANN 8.x", "9-18 in CANN 7.0")


def test_export_cli_refuses_the_opset_before_loading(tmp_path):
    from ascend_asr.export_cli import main

    with pytest.raises(OptionError, match="--opset 999"):
        main(["--family", "jasper", "--random-init", "--output", str(tmp_path / "m.onnx"), "--opset", "999"])


# -- 2a / 2b / 2d: prep/ ------------------------------------------------------------------------------------
@pytest.fixture
def prep_copy(tmp_path, demo_prep):
    target = tmp_path / "prep"
    shutil.copytree(demo_prep, target)
    return target


def _meta(prep):
    return [json.loads(line) for line in (prep / "meta.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(prep_copy, value):
    prep = open_prep(str(prep_copy))
    row = prep.rows[0]
    path = prep_copy / "feats" / f"{row['stem']}.bin"
    data = np.fromfile(path, dtype=np.float32)
    data[3] = value
    data.tofile(path)
    with pytest.raises(TensorFileError) as exc_info:
        prep.load(row)
    check(exc_info, str(path), "non-finite", "rerun preprocess")
    prep.load(prep.rows[1])  # the others still load


@pytest.mark.parametrize("length", [10, -1, 100000])
def test_lengths_bin_must_equal_meta_frames(prep_copy, length):
    prep = open_prep(str(prep_copy))
    row = prep.rows[0]
    path = prep_copy / "feat_lens" / f"{row['stem']}.bin"
    np.array([length], dtype=np.int32).tofile(path)
    with pytest.raises(TensorFileError) as exc_info:
        prep.load(row)
    check(exc_info, str(path), f"frames {row['frames']}", "rerun preprocess")


def test_duplicate_ids_on_two_stems_are_refused(prep_copy):
    from ascend_asr.prep import read_meta

    rows = _meta(prep_copy)
    rows[1]["id"] = rows[0]["id"]
    (prep_copy / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TensorFileError) as exc_info:
        read_meta(str(prep_copy), refuse_duplicate_ids=True)
    check(exc_info, "meta.jsonl", rows[0]["stem"], rows[1]["stem"], "remove the wrong row")
    with pytest.raises(TensorFileError):  # the default: preprocess keeps ids unique, even across joined manifests
        open_prep(str(prep_copy))


# -- 2c: empty references --------------------------------------------------------------------------------
def test_empty_references_are_left_out_with_a_warning(capsys):
    total = score([("", "one two three four"), ("hello world", "hello word")])
    assert total.words.reference_length == 2 and total.words.errors == 1
    assert total.empty_references == 1 and total.to_dict()["empty_references"] == 1
    assert "1 of 2 utterance(s) have an empty reference" in capsys.readouterr().err


def test_score_lists_empty_reference_ids(tmp_path, capsys):
    from ascend_asr import score as score_module

    rows = [{"id": "a", "ref": "", "hyp": "x y"}, {"id": "b", "ref": "one", "hyp": "one"}]
    score_module.read_scored_hyps = lambda folder: rows  # noqa: the report, not the folder's reading, is tested
    written = {}
    score_module.write_score = lambda folder, report: written.update(report)
    try:
        report = score_module.score_results(str(tmp_path))
        import sys

        score_module.print_report(report, out=sys.stdout)
    finally:
        import importlib

        importlib.reload(score_module)
    assert report["empty_reference_ids"] == ["a"] and written["empty_references"] == 1
    assert report["wer"] == 0.0
    captured = capsys.readouterr()
    assert "1 with an empty reference, not scored" in captured.out
    assert "ids: a" in captured.err


# -- 2e: beam width --------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [100000000, 0, 2.5])
def test_beam_width_out_of_bounds_is_refused(width):
    vocab = Vocabulary(("a", "<blank>"), 1)
    with pytest.raises(OptionError) as exc_info:
        make_decoder(vocab, False, "beam", beam_width=width)
    check(exc_info, "--beam-width", "1 to 1024")


# -- 2f: ModelZoo adapters ------------------------------------------------------------------------------
def test_modelzoo_preprocess_exit_status_when_every_utterance_failed(capsys):
    from ascend_asr.modelzoo.common import preprocess_exit_status
    from ascend_asr.runner import EXIT_UTTERANCES_FAILED

    failed = types.SimpleNamespace(written=0, resumed=0, failed=3)
    assert preprocess_exit_status(failed, "prep/failures.json") == EXIT_UTTERANCES_FAILED
    assert "prep/failures.json" in capsys.readouterr().err
    assert preprocess_exit_status(types.SimpleNamespace(written=2, resumed=0, failed=1), "x") == 0


def test_jasper_postprocess_refuses_an_empty_output_folder(tmp_path):
    from ascend_asr.modelzoo.jasper import run_postprocess

    agg = tmp_path / "agg_txts.json"
    agg.write_text(json.dumps({"txts": ["a"], "stems": ["000000000000"], "preds": [], "logits": []}))
    (tmp_path / "out").mkdir()
    args = types.SimpleNamespace(model_config="jasper_small", json_file=str(agg), save_bin=str(tmp_path / "out"),
                                 save_predictions=None)
    with pytest.raises(TensorFileError) as exc_info:
        run_postprocess(args)
    check(exc_info, str(tmp_path / "out"), "ais_bench")


# -- 2g: non-finite weights -------------------------------------------------------------------------------
def test_nan_weight_is_refused_after_loading():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["0.weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError) as exc_info:
        load_state_dict_strict(model, state, "ck.pt")
    check(exc_info, "ck.pt", "0.weight", "non-finite")


# -- 2h: TSV id column, NUL in text -----------------------------------------------------------------------
def test_tsv_id_column_is_honoured(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("id\tpath\ttext\nfirst\ta.wav\thello\nsecond\ta.wav\tworld\n\tb.wav\tx\nfirst\tc.wav\ty\n")
    entries = list(read_manifest(str(path)))
    assert [e.id for e in entries[:2]] == ["first", "second"]
    assert "empty id" in entries[2].message and "already used on line 2" in entries[3].message


def test_nul_in_text_is_dropped_with_a_warning(capsys):
    assert normalize_transcript("hel\x00lo", ENGLISH_LABELS) == "hello"
    assert "U+0000" in capsys.readouterr().err


# -- 3: vague errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("content, says", [(b"", "empty file, not a PyTorch checkpoint"),
                                           (bytes(range(7, 250)), "not a PyTorch checkpoint")])
@pytest.mark.parametrize("loader", ["read_checkpoint", "restricted_load"])
def test_checkpoint_that_is_no_checkpoint(tmp_path, content, says, loader):
    path = tmp_path / "ck.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc_info:
        read_checkpoint(str(path)) if loader == "read_checkpoint" else restricted_load(str(path), {})
    check(exc_info, str(path), says)


def _foreign_checkpoint(tmp_path, module_name):
    import sys

    class Foreign:  # pickled by reference to a module named like the other family's
        pass

    module = types.ModuleType(module_name)
    Foreign.__module__, Foreign.__qualname__ = module_name, "Conf"
    module.Conf = Foreign
    sys.modules[module_name] = module
    try:
        path = tmp_path / "ck.pt"
        torch.save({"config": Foreign(), "state_dict": {}}, path)
    finally:
        del sys.modules[module_name]
    return str(path)


@pytest.mark.parametrize("family", ["deepspeech2", "lstm_ctc"])
def test_checkpoint_of_another_family_gets_a_hint(tmp_path, family):
    from ascend_asr.profiles import PACKAGE_DIR

    path = (os.path.join(PACKAGE_DIR, "assets", "models", "deepspeech2_small.ckpt") if family == "deepspeech2"
            else _foreign_checkpoint(tmp_path, "rnn_param"))
    for loader in (lambda: read_checkpoint(path), lambda: restricted_load(path, {})):
        with pytest.raises(CheckpointError) as exc_info:
            loader()
        check(exc_info, path, f"--family {family}")


def test_special_files_as_audio(tmp_path):
    fifo = tmp_path / "x.fifo.wav"
    os.mkfifo(fifo)
    folder = tmp_path / "x.wav"
    folder.mkdir()
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    for path, says in ((fifo, "not a regular file (a FIFO)"), (folder, "a folder"), (loop, "link loop"),
                       ("/dev/zero", "not a regular file")):
        with pytest.raises(AudioError) as exc_info:
            load_audio(str(path))
        check(exc_info, str(path), says)


def test_dev_zero_as_manifest():
    with pytest.raises(ManifestError) as exc_info:
        read_manifest("/dev/zero")
    check(exc_info, "/dev/zero", "not a regular file")


def test_empty_tsv_manifest(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("")
    with pytest.raises(ManifestError) as exc_info:
        list(read_manifest(str(path)))
    check(exc_info, str(path), "empty manifest: no header")


def test_jsonl_line_without_text(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio_filepath": "a.wav"}\n')
    (entry,) = list(read_manifest(str(path)))
    assert "no 'text' field" in entry.message and "StopIteration" not in entry.message
    assert str(path) in entry.source


def test_clips_manifest_still_reads():
    assert len([e for e in read_manifest(CLIPS_MANIFEST) if hasattr(e, "audio_path")]) == 8


def test_a_manifest_naming_an_output_the_graph_lacks_is_one_run_level_error(small_bundles, demo_prep, tmp_path):
    """Before: KeyError per utterance at batching (each told to rerun preprocess)."""
    import json
    import shutil

    from ascend_asr.errors import BackendError
    from ascend_asr.infer import InferOptions, infer

    bundle = small_bundles[1]
    folder = tmp_path / "b"
    shutil.copytree(bundle.directory, folder)
    manifest_path = folder / f"{bundle.name}.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["outputs"][0]["name"] = "nope"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BackendError, match=r"names outputs \['nope'\].*convert"):
        infer(str(folder / f"{bundle.name}.onnx"), demo_prep, str(tmp_path / "r"),
              InferOptions(backend="onnxruntime", progress=False))


def test_infer_refuses_results_inside_prep(demo_prep, small_bundles, tmp_path):
    from ascend_asr.errors import OptionError
    from ascend_asr.infer import InferOptions, infer

    with pytest.raises(OptionError, match="overlap"):
        infer(small_bundles[1].onnx_path, demo_prep, demo_prep, InferOptions(backend="onnxruntime", progress=False))
