"""Consistency checks before work starts (issue 12, item 4): profiles against the ONNX graph, batch sizes,
the bundle's ONNX hash, vocabulary against the scores output, LM words against the labels, options that
would do nothing, and manifest durations too long for any compiled shape.

Each catalogue case asserts the error class, that the message names the file (or option) and the fix."""
from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass

import pytest
import yaml

from ascend_asr import backends, preprocess as preprocess_module
from ascend_asr.admission import check_manifest_duration
from ascend_asr.bundle import convert, open_bundle
from ascend_asr.convert import main as convert_main
from ascend_asr.datasets import Utterance
from ascend_asr.decoding import make_decoder
from ascend_asr.errors import BackendError, OptionError, ProfileError, ShapeError
from ascend_asr.export_cli import main as export_main
from ascend_asr.frontends import build_frontend
from ascend_asr.infer import InferOptions, infer, main as infer_main
from ascend_asr.preprocess import preprocess
from ascend_asr.profiles import PROFILE_DIR, family_io, load_profile, profile_from_dict
from ascend_asr.runner import ERROR_PREFIX, run

from .conftest import CLIPS


def profile_dict(name="jasper_small"):
    path = os.path.join(PROFILE_DIR, f"{name}.yaml")
    with open(path) as f:
        d = yaml.safe_load(f)
    return {**family_io(d, path), **d}


def copy_bundle(bundle, folder) -> str:
    """A private copy of a bundle (its .onnx and .json), returning the copy's .onnx path."""
    os.makedirs(folder, exist_ok=True)
    for ext in (".onnx", ".json"):
        shutil.copy2(os.path.join(bundle.directory, bundle.name + ext), folder)
    return os.path.join(folder, bundle.name + ".onnx")


def edit_manifest(onnx_path, edit) -> None:
    path = onnx_path[:-5] + ".json"
    with open(path) as f:
        manifest = json.load(f)
    edit(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


ARPA = """\\data\\
ngram 1={n}
ngram 2=1

\\1-grams:
{rows}

\\2-grams:
-0.5\t<s> </s>

\\end\\
"""


def write_arpa(path, words) -> str:
    rows = "\n".join(f"-1.0\t{w}" for w in ["<s>", "</s>", *words])
    with open(path, "w") as f:
        f.write(ARPA.format(n=len(words) + 2, rows=rows))
    return str(path)


@dataclass
class Ctx:
    tmp: object
    onnx: str
    bundles: dict
    prep: str


# --- the cases: each does one bad thing and returns nothing (the raise is the point) ---

def profile_80_mel_bins(c):
    d = profile_dict()
    d["frontend"]["n_mels"] = 80
    del d["inputs"], d["outputs"]  # the family's I/O, sized by the 80-bin frontend
    convert(profile_from_dict(d, "mel80.yaml"), c.onnx, str(c.tmp / "b"), build_om=False)


def profile_vocabulary_shorter_than_graph(c):
    d = profile_dict()
    d["vocabulary"]["labels"] = d["vocabulary"]["labels"][:-1]
    del d["inputs"], d["outputs"]
    convert(profile_from_dict(d, "short_vocab.yaml"), c.onnx, str(c.tmp / "b"), build_om=False)


def profile_vocabulary_longer_than_graph(c):
    d = profile_dict()
    d["vocabulary"]["labels"] = d["vocabulary"]["labels"] + ["-"]
    del d["inputs"], d["outputs"]
    convert(profile_from_dict(d, "long_vocab.yaml"), c.onnx, str(c.tmp / "b"), build_om=False)


def profile_outputs_disagree_with_its_vocabulary(c):
    d = profile_dict()
    d["outputs"][0]["shape"] = ["batch", "out_frames", 40]
    profile_from_dict(d, "classes40.yaml")


def profile_symbol_on_a_fixed_graph_axis(c):
    # a bundle's graph fixes batch at 1; a profile asking for batch 4 on it would build a broken graph
    d = profile_dict()
    d["batch_sizes"] = [1, 4]
    convert(profile_from_dict(d, "batch_on_fixed.yaml"), c.bundles[1].onnx_path, str(c.tmp / "b"), build_om=False)


def profile_batch(value):
    def case(c):
        d = profile_dict()
        d["batch_sizes"] = value
        profile_from_dict(d, "batches.yaml")
    return case


def convert_api_batch(value):
    def case(c):
        convert("jasper_small", c.onnx, str(c.tmp / "b"), batch_sizes=value, build_om=False)
    return case


def convert_cli_batch(text):
    def case(c):
        convert_main(["--profile", "jasper_small", "--onnx", c.onnx, "--output-dir", str(c.tmp / "b"),
                      "--no-atc", f"--batch-sizes={text}"])
    return case


def convert_dry_run_with_no_atc(c):
    convert_main(["--profile", "jasper_small", "--onnx", c.onnx, "--output-dir", str(c.tmp / "b"),
                  "--no-atc", "--dry-run"])


def bundle_onnx_appended(c):
    path = copy_bundle(c.bundles[1], str(c.tmp / "bundle"))
    with open(path, "ab") as f:
        f.write(b"\0")
    backends.open_session(open_bundle(path), "onnxruntime", out=io.StringIO())


def bundle_onnx_same_size_other_bytes(c):
    path = copy_bundle(c.bundles[1], str(c.tmp / "bundle"))
    edit_manifest(path, lambda m: m.update(onnx_sha256="0" * 64))  # as if the graph had been replaced
    backends.open_session(open_bundle(path), "auto", out=io.StringIO())


def bundle_manifest_vocabulary_shortened(c):
    path = copy_bundle(c.bundles[1], str(c.tmp / "bundle"))
    edit_manifest(path, lambda m: m["vocabulary"].update(labels=m["vocabulary"]["labels"][1:], blank=27))
    infer(path, c.prep, str(c.tmp / "results"), InferOptions(backend="onnxruntime", progress=False),
          out=io.StringIO())


def bundle_manifest_vocabulary_and_outputs_edited(c):
    path = copy_bundle(c.bundles[1], str(c.tmp / "bundle"))

    def edit(m):
        m["vocabulary"].update(labels=m["vocabulary"]["labels"][1:], blank=27)
        m["outputs"][0]["shape"] = ["batch", "out_frames", 28]
    edit_manifest(path, edit)
    infer(path, c.prep, str(c.tmp / "results"), InferOptions(backend="onnxruntime", progress=False),
          out=io.StringIO())


def bundle_manifest_batch_size_edited(c):
    path = copy_bundle(c.bundles[1], str(c.tmp / "bundle"))
    edit_manifest(path, lambda m: m.update(batch_size=100000))
    infer(path, c.prep, str(c.tmp / "results"), InferOptions(backend="onnxruntime", progress=False),
          out=io.StringIO())


def lm_upper_case(c):
    lm = write_arpa(c.tmp / "UPPER.arpa", ["HELLO", "WORLD", "IT'S", "A", "TEST"])
    make_decoder(load_profile("jasper_small").vocabulary, False, "beam", 4, lm)


def infer_lm_with_greedy(c):
    lm = write_arpa(c.tmp / "lm.arpa", ["hello"])
    infer_main(["--model", c.bundles[1].onnx_path, "--input", c.prep, "--output", str(c.tmp / "r"), "--lm", lm])


def infer_lm_alpha_with_greedy(c):
    infer_main(["--model", c.bundles[1].onnx_path, "--input", c.prep, "--output", str(c.tmp / "r"),
                "--lm-alpha", "0.5"])  # even at its default value: given, it would do nothing


def infer_options_beam_width_with_greedy(c):
    InferOptions(decoder="greedy", beam_width=32)


def infer_beam_width_zero(c):
    InferOptions(decoder="beam", beam_width=0)


def export_no_ema_for_deepspeech2(c):
    export_main(["--family", "deepspeech2", "--checkpoint", str(c.tmp / "ds2.ckpt"), "--no-ema",
                 "--output", str(c.tmp / "m.onnx")])


def export_random_init_with_checkpoint(c):
    export_main(["--profile", "jasper_small", "--random-init", "--checkpoint", str(c.tmp / "j.pt"),
                 "--output", str(c.tmp / "m.onnx")])


def export_seed_without_random_init(c):
    export_main(["--profile", "jasper_small", "--checkpoint", str(c.tmp / "j.pt"), "--seed", "3",
                 "--output", str(c.tmp / "m.onnx")])


def manifest_duration_too_long(c):
    frontend = build_frontend(load_profile("jasper_small").frontend)
    entry = Utterance("long", str(c.tmp / "twenty_minutes.wav"), "text", 1200.0, "m.tsv line 2")
    check_manifest_duration(entry, frontend, (256, 512, 1024), "jasper_small.yaml")


BATCH_FIX = "1 to 1024"
CATALOGUE = [
    # (case, error class, substrings: the file or option named, and the fix)
    ("profile_80_mel_bins", profile_80_mel_bins, ProfileError, ["mel80.yaml", "jasper_small.onnx", "80", "64",
                                                                "fix the profile"]),
    ("vocab_shorter_than_outputs", profile_vocabulary_shorter_than_graph, ProfileError,
     ["short_vocab.yaml", "28 labels", "29 classes", "model's own vocabulary"]),
    ("vocab_longer_than_outputs", profile_vocabulary_longer_than_graph, ProfileError,
     ["long_vocab.yaml", "30 labels", "29 classes", "model's own vocabulary"]),
    ("profile_outputs_vs_vocab", profile_outputs_disagree_with_its_vocabulary, ProfileError,
     ["classes40.yaml", "40 classes", "29 labels", "make the vocabulary"]),
    ("profile_batch_on_fixed_axis", profile_symbol_on_a_fixed_graph_axis, ProfileError,
     ["batch_on_fixed.yaml", "jasper_small_bs1.onnx", "batch_sizes: [1]"]),
    ("profile_batch_0", profile_batch([0]), ProfileError, ["batches.yaml", "batch_sizes", BATCH_FIX]),
    ("profile_batch_-1", profile_batch([1, -1]), ProfileError, ["batches.yaml", "-1", BATCH_FIX]),
    ("profile_batch_100000", profile_batch([100000]), ProfileError, ["batches.yaml", "100000", BATCH_FIX]),
    ("profile_batch_string", profile_batch(["4"]), ProfileError, ["batches.yaml", "'4'", BATCH_FIX]),
    ("profile_batch_float", profile_batch([1.5]), ProfileError, ["batches.yaml", "1.5", BATCH_FIX]),
    ("profile_batch_empty", profile_batch([]), ProfileError, ["batches.yaml", "empty", BATCH_FIX]),
    ("profile_batch_twice", profile_batch([4, 4]), ProfileError, ["batches.yaml", "more than once"]),
    ("convert_api_batch_0", convert_api_batch([0]), ProfileError, ["jasper_small.yaml", BATCH_FIX, "1,4,8,16"]),
    ("convert_cli_batch_0", convert_cli_batch("0"), ProfileError, ["--batch-sizes", BATCH_FIX, "1,4,8,16"]),
    ("convert_cli_batch_-1", convert_cli_batch("-1"), ProfileError, ["--batch-sizes", "-1", "1,4,8,16"]),
    ("convert_cli_batch_100000", convert_cli_batch("1,100000"), ProfileError, ["--batch-sizes", "100000", "4096"]),
    ("convert_cli_batch_non_int", convert_cli_batch("4x"), ProfileError, ["--batch-sizes", "'4x'", "1,4,8,16"]),
    ("convert_dry_run_no_atc", convert_dry_run_with_no_atc, OptionError, ["--no-atc", "--dry-run", "drop"]),
    ("bundle_onnx_modified", bundle_onnx_appended, BackendError, ["jasper_small_bs1.onnx", "convert` again"]),
    ("bundle_onnx_hash", bundle_onnx_same_size_other_bytes, BackendError,
     ["jasper_small_bs1.onnx", "SHA-256", "convert` again"]),
    ("bundle_manifest_vocab", bundle_manifest_vocabulary_shortened, BackendError,
     ["jasper_small_bs1.json", "28 labels", "29 classes", "convert again"]),
    ("bundle_manifest_vocab_and_outputs", bundle_manifest_vocabulary_and_outputs_edited, BackendError,
     ["jasper_small_bs1.onnx", "prob", "convert` again"]),
    ("bundle_manifest_batch", bundle_manifest_batch_size_edited, BackendError,
     ["jasper_small_bs1.json", "100000", "convert again"]),
    ("lm_upper_case", lm_upper_case, ProfileError, ["UPPER.arpa", "'HELLO'", "lowercase"]),
    ("infer_lm_with_greedy", infer_lm_with_greedy, OptionError, ["--lm", "--decoder beam"]),
    ("infer_lm_alpha_with_greedy", infer_lm_alpha_with_greedy, OptionError, ["--lm-alpha", "--decoder beam"]),
    ("infer_options_beam_width_greedy", infer_options_beam_width_with_greedy, OptionError,
     ["--beam-width", "--decoder beam"]),
    ("infer_beam_width_0", infer_beam_width_zero, OptionError, ["--beam-width", "at least 1"]),
    ("export_no_ema_deepspeech2", export_no_ema_for_deepspeech2, OptionError, ["--no-ema", "deepspeech2", "drop"]),
    ("export_random_init_checkpoint", export_random_init_with_checkpoint, OptionError,
     ["--checkpoint", "--random-init", "drop"]),
    ("export_seed_without_random_init", export_seed_without_random_init, OptionError, ["--seed", "drop --seed"]),
    ("manifest_duration_too_long", manifest_duration_too_long, ShapeError,
     ["twenty_minutes.wav", "m.tsv line 2", "1200.00 s", "before reading the audio", "split the audio"]),
]


@pytest.fixture
def ctx(tmp_path, small_onnx, small_bundles, demo_prep):
    return Ctx(tmp_path, small_onnx, small_bundles, demo_prep)


@pytest.mark.parametrize("case,error,needles", [pytest.param(f, e, n, id=i) for i, f, e, n in CATALOGUE])
def test_inconsistent_input_is_refused_before_work_starts(ctx, case, error, needles):
    with pytest.raises(error) as err:
        case(ctx)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert not os.path.exists(ctx.tmp / "results" / "hyps.jsonl")  # refused before any utterance ran


def test_the_runner_prints_one_line_with_exit_2(ctx, capsys):
    code = run(convert_main, ["--profile", "jasper_small", "--onnx", ctx.onnx, "--output-dir", str(ctx.tmp / "b"),
                              "--batch-sizes", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(ERROR_PREFIX) and "--batch-sizes" in err[0]
    assert not os.path.exists(ctx.tmp / "b")


def test_lm_with_a_few_unspellable_words_warns_and_decodes(tmp_path, small_profile):
    lm = write_arpa(tmp_path / "mostly.arpa", ["hello", "world", "it's", "a", "café"])
    out = io.StringIO()
    decode = make_decoder(small_profile.vocabulary, False, "beam", 4, lm, out=out)
    assert callable(decode)
    warning = out.getvalue()
    assert "WARNING" in warning and "mostly.arpa" in warning and "'café'" in warning and "1 of its 5" in warning


def test_matching_lm_and_beam_options_are_accepted_silently(tmp_path, small_profile):
    lm = write_arpa(tmp_path / "ok.arpa", ["hello", "world", "it's"])
    out = io.StringIO()
    make_decoder(small_profile.vocabulary, False, "beam", 4, lm, out=out)
    assert out.getvalue() == ""
    InferOptions(decoder="beam", lm=lm, lm_alpha=0.8, lm_beta=2.0, beam_width=4)  # no error
    InferOptions()  # greedy at the defaults


def test_clean_bundle_opens_and_its_hash_is_computed_once_per_process(tmp_path, small_bundles, monkeypatch):
    path = copy_bundle(small_bundles[4], str(tmp_path / "bundle"))
    bundle = open_bundle(path)
    bundle.check()
    calls = []
    real = backends.sha256
    monkeypatch.setattr(backends, "sha256", lambda p: calls.append(p) or real(p))
    for _ in range(2):
        with backends.open_session(bundle, "onnxruntime", out=io.StringIO()) as session:
            assert session.name.startswith("onnxruntime")
    assert calls == [path]
    os.utime(path, ns=(1, 1))  # touched: hashed again, and still the same graph
    backends.open_session(bundle, "onnxruntime", out=io.StringIO()).close()
    assert len(calls) == 2


def test_clean_profiles_and_batch_sizes_convert(tmp_path, small_onnx):
    bundles = convert("jasper_small", small_onnx, str(tmp_path), batch_sizes=[2, 1024], build_om=False)
    assert [b.batch_size for b in bundles] == [2, 1024]
    assert all(b.manifest["onnx_size"] == os.path.getsize(b.onnx_path) for b in bundles)
    assert load_profile("jasper_small").batch_sizes == (1, 4)


def test_manifest_durations_within_the_largest_gear_are_admitted():
    profile = load_profile("jasper_small")  # trims silence: twice the 10.24 s gear, plus tolerance
    frontend = build_frontend(profile.frontend)
    for seconds in (None, 3.0, 10.24, 20.9):
        check_manifest_duration(Utterance("u", "a.wav", "t", seconds, "m.tsv line 2"), frontend, profile.frames)
    with pytest.raises(ShapeError):
        check_manifest_duration(Utterance("u", "a.wav", "t", 21.2, "m.tsv line 2"), frontend, profile.frames)
    plain = build_frontend({**profile.frontend, "trim_silence": False})
    check_manifest_duration(Utterance("u", "a.wav", "t", 10.5, "m.tsv line 2"), plain, profile.frames)
    with pytest.raises(ShapeError, match="10.24 s plus"):
        check_manifest_duration(Utterance("u", "a.wav", "t", 11.0, "m.tsv line 2"), plain, profile.frames)


def test_preprocess_refuses_an_over_long_manifest_duration_without_opening_the_audio(tmp_path, monkeypatch):
    clip = os.path.join(CLIPS, "librivox-0880.wav")
    huge = tmp_path / "twenty_minutes.wav"
    shutil.copy(clip, huge)
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\tduration\n{clip}\the was not an ill disposed young man\t2.99\n"
                        f"{huge}\tlong\t1200.0\n{clip}\tagain\t2.99\n")
    opened = []
    real = preprocess_module.featurize
    monkeypatch.setattr(preprocess_module, "featurize", lambda fe, audio, *a, **k: opened.append(audio) or
                        real(fe, audio, *a, **k))
    summary = preprocess(str(manifest), str(tmp_path / "prep"), "jasper_small", progress=False,
                         log=io.StringIO())
    assert str(huge) not in opened and opened == [clip, clip]
    assert (summary.written, summary.failed) == (2, 1)
    with open(tmp_path / "prep" / "failures.json") as f:
        failures = json.load(f)
    assert len(failures) == 1 and str(huge) in failures[0]["error"]
    assert "before reading the audio" in failures[0]["error"]
