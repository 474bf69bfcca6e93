"""Catalogue of bad inputs that concern ONE utterance: each is reported with its file, line or id and the
fix, skipped and counted, while every good utterance of the same run still finishes (issue 12, item 1).

Three batch runs carry most cases: one preprocess of a TSV manifest mixing the real clips with bad audio
files and bad lines, one of a JSONL manifest, and one infer over a copy of prep/ with damaged rows and
tensors. Each parametrised case then looks up its own failure entry."""
import json
import re
import os

import numpy as np
import pytest
import soundfile as sf

from ascend_asr import infer as infer_cli
from ascend_asr import preprocess as preprocess_cli
from ascend_asr.datasets import BadEntry, Utterance, read_manifest
from ascend_asr.errors import AscendAsrError, AudioError, ShapeError, TensorFileError
from ascend_asr.featurize import featurize
from ascend_asr.frontends import build_frontend
from ascend_asr.runner import EXIT_UTTERANCES_FAILED
from ascend_asr.preprocess import preprocess
from ascend_asr.tensor_files import read_jsonl
from ascend_asr.text import ENGLISH_LABELS, normalize_transcript

from .conftest import CLIPS

GOOD = ["cards-001.wav", "goforward.wav", "tidigits-2934z.wav", "librivox-0880.wav"]
RATE = 16000


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _float_wav(path, samples):
    sf.write(path, samples, RATE, subtype="FLOAT")


def _bad(value):
    def make(path):
        x = _tone(1.0)
        x[RATE // 2] = value
        _float_wav(path, x)
    return make


def _truncated_header(path):
    sf.write(path, _tone(1.0), RATE, subtype="PCM_16")
    with open(path, "rb") as f:
        head = f.read(20)
    with open(path, "wb") as f:
        f.write(head)


def _bad_codec(path):
    """A RIFF/WAVE header whose format chunk names codec 0x1234, which nothing decodes."""
    sf.write(path, _tone(0.5), RATE, subtype="PCM_16")
    data = bytearray(open(path, "rb").read())
    fmt = data.index(b"fmt ")
    data[fmt + 8:fmt + 10] = (0x1234).to_bytes(2, "little")
    open(path, "wb").write(bytes(data))


# audio cases of the TSV batch: name -> (maker or None for a missing file, expected words in the message)
AUDIO = {
    "missing": (None, "audio file not found"),
    "empty_file": (lambda p: open(p, "wb").close(), "cannot decode audio"),
    "empty_wav": (lambda p: sf.write(p, np.zeros(0, np.float32), RATE), "audio is empty"),
    "nan": (_bad(np.nan), "not finite (NaN)"),
    "pos_inf": (_bad(np.inf), "not finite (+Inf)"),
    "neg_inf": (_bad(-np.inf), "not finite (-Inf)"),
    "too_long": (lambda p: sf.write(p, _tone(12.0), RATE), "largest compiled shape"),
    "too_short": (lambda p: sf.write(p, _tone(0.01), RATE), "too short"),
    "truncated_header": (_truncated_header, "cannot decode audio"),
    "unknown_codec": (_bad_codec, "cannot decode audio"),
    "not_audio": (lambda p: open(p, "w").write("this is a text file, not audio\n" * 50), "cannot decode audio"),
}
FIXES = ("remove it from the manifest", "convert it", "check the manifest", "re-record", "split the audio",
         "re-export", "fix or remove", "give seconds")


@pytest.fixture(scope="module")
def tsv_batch(tmp_path_factory, small_profile):
    """One preprocess of the real clips and every bad case: (prep dir, failures by name, meta rows)."""
    root = tmp_path_factory.mktemp("hostile")
    lines = [b"path\tduration\ttext"]
    for name in GOOD:
        lines.append(f"{os.path.join(CLIPS, name)}\t\tgood {name}".encode())
    for name, (make, _) in AUDIO.items():
        path = root / f"{name}.wav"
        if make:
            make(str(path))
        lines.append(f"{name}.wav\t\tbad {name}".encode())
    good = os.path.join(CLIPS, "cards-001.wav")
    lines.append(f"{good}\t\tcaf".encode() + b"\xe9 latin-1 byte")  # bad_utf8
    lines.append(f"{good}\t\t".encode() + b"x" * 140_000)  # huge_field: a good utterance
    lines.append(b"only-one-column")  # missing_columns
    lines.append(f"{good}\tabc\tbad duration".encode())  # bad_duration
    lines.append(f"{good}\tnan\tnan duration".encode())  # nan_duration
    lines.append(f"{good}\t\tduplicate id".encode())  # duplicate_id: finishes as cards-001-2
    manifest = root / "hostile.tsv"
    manifest.write_bytes(b"\n".join(lines) + b"\n")
    out = str(root / "prep")
    status = preprocess_cli.main(["--manifest", str(manifest), "--profile", small_profile.source, "--output", out,
                                  "--no-progress"])
    failures = json.load(open(os.path.join(out, "failures.json")))
    return str(manifest), out, failures, read_jsonl(os.path.join(out, "meta.jsonl")), status


def _failure(failures, needle):
    found = [f for f in failures if needle in f.get("audio", "") or needle in f.get("source", "")]
    assert len(found) == 1, (needle, failures)
    return found[0]


def _line_of(manifest, marker: bytes) -> int:
    return next(n for n, line in enumerate(open(manifest, "rb"), start=1) if marker in line)


@pytest.mark.parametrize("name", list(AUDIO))
def test_bad_audio_is_skipped_with_its_file_and_fix(tsv_batch, name):
    manifest, _, failures, meta, _ = tsv_batch
    entry = _failure(failures, f"{name}.wav")
    assert entry["audio"] in entry["error"] and AUDIO[name][1] in entry["error"], entry
    assert any(fix in entry["error"] for fix in FIXES), entry
    assert entry["source"] == f"{manifest}:{_line_of(manifest, f'{name}.wav'.encode())}"
    # every good utterance of the same run finished
    assert {os.path.basename(r["audio"]) for r in meta} >= set(GOOD)


@pytest.mark.parametrize("name, marker, words", [
    ("bad_utf8", b"latin-1 byte", "not UTF-8"),
    ("missing_columns", b"only-one-column", "expected 3 tab-separated columns"),
    ("bad_duration", b"bad duration", "bad duration"),
    ("nan_duration", b"nan duration", "finite number of seconds"),
])
def test_bad_manifest_line_costs_that_line_only(tsv_batch, name, marker, words):
    manifest, _, failures, meta, _ = tsv_batch
    source = f"{manifest}:{_line_of(manifest, marker)}"
    entry = next(f for f in failures if f["source"] == source)
    assert words in entry["error"] and ("fix or remove" in entry["error"] or "give seconds" in entry["error"]
                                        or "re-save" in entry["error"]), entry


def test_batch_summary_counts_every_bad_case_and_keeps_the_good(tsv_batch):
    _, out, failures, meta, status = tsv_batch
    assert status == 0  # some failed, not all, no --strict
    assert len(failures) == len(AUDIO) + 4
    prep = json.load(open(os.path.join(out, "prep.json")))
    assert prep["failed"] == len(failures) and prep["utterances"] == len(meta) == len(GOOD) + 2


def test_huge_field_is_read_as_one_good_utterance(tsv_batch):
    meta = tsv_batch[3]
    huge = [r for r in meta if len(r["raw_text"]) == 140_000]
    assert len(huge) == 1 and huge[0]["text"] == "x" * 140_000


def test_duplicate_ids_both_finish_under_distinct_ids(tsv_batch):
    ids = [r["id"] for r in tsv_batch[3] if r["audio"].endswith("cards-001.wav")]
    assert sorted(ids) == ["cards-001", "cards-001-1", "cards-001-2"]


@pytest.mark.parametrize("option, clip, words", [
    ("--no-resample", "3_jackson_0.wav", "expected 16000 Hz, found 8000 Hz"),
    ("--no-mix", "stereo.wav", "expected 1 channel, found 2"),
])
def test_refused_format_with_strict_exits_3(tmp_path, small_profile, option, clip, words, capsys):
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.stack([_tone(1.0), _tone(1.0)], axis=1), RATE)
    path = str(stereo) if clip == "stereo.wav" else os.path.join(CLIPS, clip)
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{os.path.join(CLIPS, 'cards-001.wav')}\tten of clubs\n{path}\tx\n")
    out = tmp_path / "prep"
    argv = ["--manifest", str(manifest), "--profile", small_profile.source, "--output", str(out), "--no-progress",
            option]
    assert preprocess_cli.main(argv + ["--strict"]) == EXIT_UTTERANCES_FAILED
    err = capsys.readouterr().err
    assert "1 utterance(s) failed (--strict)" in err and str(out / "failures.json") in err
    entry = json.load(open(out / "failures.json"))[0]
    assert words in entry["error"] and path in entry["error"] and ("sox" in entry["error"])
    assert len(read_jsonl(str(out / "meta.jsonl"))) == 1  # the good one finished


def test_all_utterances_failed_exits_3_without_strict(tmp_path, small_profile, capsys):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\nnope.wav\tx\nnope2.wav\ty\n")
    status = preprocess_cli.main(["--manifest", str(manifest), "--profile", small_profile.source, "--output",
                                  str(tmp_path / "prep"), "--no-progress"])
    assert status == EXIT_UTTERANCES_FAILED
    assert "2 utterance(s) failed (no utterance succeeded)" in capsys.readouterr().err


JSONL_LINES = {
    "non_string_text": (b'{"audio_filepath": "A", "text": 42}', "text must be a string"),
    "not_an_object": (b'["A", "text"]', "not an object"),
    "invalid_json": (b'{"audio_filepath": "A", "text": ', "JSONDecodeError"),
    "bad_utf8": (b'{"audio_filepath": "A", "text": "caf\xe9"}', "not UTF-8"),
    "negative_duration": (b'{"audio_filepath": "A", "text": "x", "duration": -1}', "finite number of seconds"),
    "bool_duration": (b'{"audio_filepath": "A", "text": "x", "duration": true}', "duration must be a number"),
    "object_id": (b'{"audio_filepath": "A", "text": "x", "id": {"a": 1}}', "id must be a string"),
}


@pytest.mark.parametrize("name", list(JSONL_LINES))
def test_bad_jsonl_line_is_one_bad_entry(tmp_path, name):
    good = os.path.join(CLIPS, "cards-001.wav").encode()
    line, words = JSONL_LINES[name]
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"audio_filepath": "%s", "text": "ten of clubs"}\n' % good + line.replace(b'"A"', b'"%s"' % good)
                         + b'\n{"audio_filepath": "%s", "text": "again"}\n' % good)
    entries = list(read_manifest(str(manifest)))
    assert [type(e) for e in entries] == [Utterance, BadEntry, Utterance]
    assert entries[1].source == f"{manifest}:2" and words in entries[1].message
    assert "fix or remove" in entries[1].message or "re-save" in entries[1].message


def test_librispeech_transcript_with_a_bad_byte_costs_one_line(tmp_path):
    chapter = tmp_path / "61" / "70968"
    chapter.mkdir(parents=True)
    (chapter / "61-70968.trans.txt").write_bytes(b"61-70968-0001 GIVE NOT SO\n61-70968-0002 CAF\xc3\n"
                                                 b"61-70968-0003 A GOLDEN FORTUNE\n")
    entries = list(read_manifest(str(tmp_path)))
    assert [type(e) for e in entries] == [Utterance, BadEntry, Utterance]
    assert entries[1].source.endswith("61-70968.trans.txt:2") and "not UTF-8" in entries[1].message


def test_nvidia_json_with_an_absurd_speed_is_one_bad_entry(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"transcript": "a", "files": [{"fname": "a.wav", "speed": 1}]},
                                    {"transcript": "b", "files": [{"fname": "b.wav", "speed": 10 ** 400}]}]))
    entries = list(read_manifest(str(manifest)))
    assert isinstance(entries[0], Utterance) and isinstance(entries[1], BadEntry)
    assert entries[1].source == f"{manifest}[1]" and "fix or remove the entry" in entries[1].message


# --- prep/ rows and tensors, one infer over a damaged copy of prep/ -------------------------------------

def _drop(field):
    return lambda row, prep: row.pop(field)


def _set(field, value):
    return lambda row, prep: row.__setitem__(field, value)


def _truncate_bin(row, prep):
    path = os.path.join(prep, "feats", row["stem"] + ".bin")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 4)


def _delete_bin(row, prep):
    os.unlink(os.path.join(prep, "feat_lens", row["stem"] + ".bin"))


ROWS = {  # damage applied to one meta row each -> words expected in its failure
    "missing_frames": (_drop("frames"), "field 'frames' is missing"),
    "missing_text": (_drop("text"), "field 'text' is missing"),
    "frames_as_string": (_set("frames", "12"), "field 'frames' must be an integer >= 0"),
    "negative_duration": (_set("duration", -3), "field 'duration' must be a number >= 0"),
    "id_not_a_string": (_set("id", 7), "field 'id' must be a str"),
    "frames_beyond_padding": (_set("frames", 10 ** 6), "exceed padded_frames"),
    "padded_not_compiled": (_set("padded_frames", 300), "300"),
    "bin_wrong_size": (_truncate_bin, "bytes, expected"),
    "bin_missing": (_delete_bin, "cannot read"),
}


@pytest.fixture(scope="module")
def damaged_infer(tmp_path_factory, small_profile, small_bundles):
    root = tmp_path_factory.mktemp("damaged")
    manifest = root / "m.tsv"
    manifest.write_text("path\ttext\n" + "".join(f"{os.path.join(CLIPS, n)}\t{n}\n" for n in GOOD * 4))
    prep = str(root / "prep")
    preprocess(str(manifest), prep, small_profile, progress=False)
    rows = read_jsonl(os.path.join(prep, "meta.jsonl"))
    assert len(rows) == 16 > len(ROWS) + 4
    victims = {}
    # the last row is damaged too: the batch before it must still be run
    for (name, (damage, _)), row in zip(ROWS.items(), rows[-len(ROWS):]):
        victims[name] = row["stem"]
        damage(row, prep)
    with open(os.path.join(prep, "meta.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    out = str(root / "results")
    status = infer_cli.main(["--model", small_bundles[4].om_path, "--input", prep, "--output", out,
                             "--no-progress"])
    summary = json.load(open(os.path.join(out, "summary.json")))
    return prep, out, summary, victims, len(rows), status


@pytest.mark.parametrize("name", list(ROWS))
def test_damaged_prep_row_is_skipped_with_its_id_and_fix(damaged_infer, name):
    prep, out, summary, victims, total, _ = damaged_infer
    entry = next(f for f in summary["failures"] if f["stem"] == victims[name])
    assert ROWS[name][1] in entry["error"], entry
    assert victims[name] in entry["error"] and prep in entry["error"]
    assert any(fix in entry["error"] for fix in ("rerun preprocess", "remove the line", "rerun preprocessing",
                                                 "add a larger frame gear", "split the audio")), entry


def test_damaged_prep_keeps_every_good_utterance(damaged_infer):
    _, out, summary, victims, total, status = damaged_infer
    hyps = read_jsonl(os.path.join(out, "hyps.jsonl"))
    assert summary["utterances"]["failed"] == len(victims) and len(hyps) == total - len(victims)
    assert {h["stem"] for h in hyps}.isdisjoint(victims.values())
    assert status == 0


def test_infer_strict_exits_3_and_names_the_summary(damaged_infer, small_bundles, tmp_path, capsys):
    prep = damaged_infer[0]
    status = infer_cli.main(["--model", small_bundles[1].om_path, "--input", prep, "--output", str(tmp_path / "r"),
                             "--no-progress", "--strict"])
    assert status == EXIT_UTTERANCES_FAILED
    err = capsys.readouterr().err
    assert f"{len(ROWS)} utterance(s) failed (--strict)" in err and str(tmp_path / "r" / "summary.json") in err


# --- samples and features given directly, and references ------------------------------------------------

@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "+Inf"), (-np.inf, "-Inf")])
def test_non_finite_samples_are_refused_before_the_frontend(small_profile, value, kind):
    x = _tone(1.0)
    x[100] = value
    with pytest.raises(AudioError, match=f"not finite \\({re.escape(kind)}\\).*remove it from the manifest"):
        featurize(build_frontend(small_profile.frontend), x, small_profile.frames)


def test_non_finite_features_are_refused(small_profile):
    frontend = build_frontend(small_profile.frontend)

    class Broken:
        name, params, hop_length = frontend.name, frontend.params, frontend.hop_length
        prepare_samples = staticmethod(lambda x: x)
        aligned_frames = staticmethod(frontend.aligned_frames)

        def __call__(self, samples):
            feats, valid = frontend(samples)
            feats[0, 0] = np.nan
            return feats, valid

    with pytest.raises(AudioError, match="non-finite features.*remove it from the manifest"):
        featurize(Broken(), _tone(1.0), small_profile.frames)


def test_too_long_file_is_refused_from_its_header(tmp_path, small_profile):
    import dataclasses

    path = str(tmp_path / "long.wav")
    sf.write(path, _tone(30.0), RATE)
    frontend = build_frontend({**dataclasses.asdict(build_frontend(small_profile.frontend).params),
                               "name": "jasper_filterbank", "trim_silence": False})
    with pytest.raises(ShapeError, match="largest compiled shape.*split the audio"):
        featurize(frontend, path, small_profile.frames)


@pytest.mark.parametrize("text, expected", [
    ("½ a cup", "one half a cup"),
    ("1½ cups", "one and one half cups"),
    ("3/4 of it", "three quarters of it"),
    ("2/3", "two thirds"),
    ("the 1st and 22nd", "the first and twenty second"),
    ("24/7", "twenty four seven"),
    ("12/25/2020", "twelve twenty five twenty twenty"),
    ("€5", "five euros"),
    ("m²", "m squared"),
    ("٣ apples", "three apples"),
    ("10" * 8, " ".join(["one zero"] * 8)),
])
def test_reference_numbers_are_never_wrong(text, expected):
    assert normalize_transcript(text, ENGLISH_LABELS) == expected


def test_unknown_symbol_is_dropped_with_one_warning(capsys):
    assert normalize_transcript("a ☃ b", ENGLISH_LABELS) == "a b"
    assert normalize_transcript("c ☃ d", ENGLISH_LABELS) == "c d"
    err = capsys.readouterr().err
    assert err.count("SNOWMAN") == 1 and "spell it out in the manifest" in err


def test_errors_are_project_errors():
    for cls in (AudioError, ShapeError, TensorFileError):
        assert issubclass(cls, AscendAsrError)
