"""ascend_asr.text (normalisation, vocabulary) and ascend_asr.datasets (manifest readers)."""
import json
import os

import pytest

from ascend_asr.datasets import BadEntry, Utterance, read_manifest
from ascend_asr.errors import ManifestError
from ascend_asr.text import ENGLISH_LABELS, Vocabulary, normalize_transcript

SPEECH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "ascend_asr", "assets", "speech")


def norm(text):
    return normalize_transcript(text, ENGLISH_LABELS)


# --- text ---------------------------------------------------------------------------------

def test_lowercases():
    assert norm("HELLO World") == "hello world"


def test_keeps_apostrophes():
    assert norm("Don't stop") == "don't stop"


def test_punctuation_becomes_space():
    assert norm("hello,world!stop-now") == "hello world stop now"


def test_whitespace_collapses():
    assert norm("  a \t\n  b   c  ") == "a b c"


@pytest.mark.parametrize("text, expected", [
    ("the 21st day", "the twenty first day"),
    ("in 1995", "in nineteen ninety five"),
    ("3 cats", "three cats"),
])
def test_numbers_expand(text, expected):
    assert norm(text) == expected


def test_abbreviation_mister():
    assert norm("Mr. Smith") == "mister smith"


def test_ampersand_becomes_and():
    assert norm("salt&pepper") == "salt and pepper"


def test_non_ascii_folded():
    assert norm("Café naïve") == "cafe naive"


def test_output_only_uses_labels():
    out = norm("Héllo #42, Dr. Ng: 50% @home + 1.5 $3!")
    assert set(out) <= set(ENGLISH_LABELS)


def test_vocab_blank_last_is_28():
    vocab = Vocabulary.from_spec({"labels": list(ENGLISH_LABELS), "blank": "last"})
    assert len(ENGLISH_LABELS) == 28
    assert vocab.blank == 28 and vocab.size == 29
    assert vocab.labels[:28] == ENGLISH_LABELS


def test_vocab_blank_defaults_to_last():
    assert Vocabulary.from_spec({"labels": list(ENGLISH_LABELS)}).blank == 28


def test_vocab_decode_skips_blanks():
    vocab = Vocabulary.from_spec({"labels": list(ENGLISH_LABELS), "blank": "last"})
    # ' '=0, a=1 ... h=8, i=9, "'"=27
    assert vocab.decode([28, 8, 28, 9, 28, 0, 27, 28]) == "hi '"


def test_vocab_encode_drops_unknown():
    vocab = Vocabulary.from_spec({"labels": list(ENGLISH_LABELS), "blank": "last"})
    assert vocab.encode("hi! 'X<") == [8, 9, 0, 27]
    assert vocab.decode(vocab.encode("a b")) == "a b"


# --- datasets -----------------------------------------------------------------------------

def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_reads_rows_and_resolves_paths(tmp_path):
    manifest = _write(tmp_path / "m.tsv", "path\tduration\ttext\n"
                                           "a.wav\t1.5\thello there\n"
                                           "sub/c.wav\t\tworld\n")
    entries = list(read_manifest(manifest))
    assert entries == [
        Utterance("a", os.path.join(str(tmp_path), "a.wav"), "hello there", 1.5, f"{manifest}:2"),
        Utterance("c", os.path.join(str(tmp_path), "sub", "c.wav"), "world", None, f"{manifest}:3"),
    ]


def test_tsv_wrong_column_count_is_bad_entry(tmp_path):
    manifest = _write(tmp_path / "m.tsv", "path\tduration\ttext\n"
                                           "a.wav\t1.5\thello\n"
                                           "b.wav\t2.0\n"
                                           "c.wav\t3.0\tworld\n")
    entries = list(read_manifest(manifest))
    assert [type(e) for e in entries] == [Utterance, BadEntry, Utterance]
    assert entries[1].source == f"{manifest}:3"
    assert [e.id for e in entries if isinstance(e, Utterance)] == ["a", "c"]


def test_tsv_without_text_column_raises(tmp_path):
    manifest = _write(tmp_path / "m.tsv", "path\tduration\na.wav\t1.0\n")
    with pytest.raises(ManifestError) as info:
        list(read_manifest(manifest))
    assert manifest in str(info.value)


def test_jsonl_malformed_line_is_bad_entry(tmp_path):
    manifest = _write(tmp_path / "m.jsonl",
                      json.dumps({"audio_filepath": "a.wav", "text": "one", "duration": 1.25}) + "\n"
                      + '{"audio_filepath": "b.wav", "text": \n'
                      + json.dumps({"audio_filepath": "d/c.wav", "text": "three"}) + "\n")
    entries = list(read_manifest(manifest))
    assert [type(e) for e in entries] == [Utterance, BadEntry, Utterance]
    assert entries[1].source == f"{manifest}:2"
    a, c = entries[0], entries[2]
    assert (a.id, a.audio_path, a.text, a.duration) == ("a", os.path.join(str(tmp_path), "a.wav"), "one", 1.25)
    assert (c.id, c.audio_path, c.text, c.duration) == ("c", os.path.join(str(tmp_path), "d", "c.wav"), "three", None)


def test_nvidia_json_picks_speed_one(tmp_path):
    items = [{"transcript": "hello world",
              "files": [{"fname": "wav/u1-sp0.9.wav", "speed": 0.9, "duration": 2.2},
                        {"fname": "wav/u1.wav", "speed": 1.0, "duration": 2.0},
                        {"fname": "wav/u1-sp1.1.wav", "speed": 1.1, "duration": 1.8}],
              "original_duration": 2.0}]
    manifest = _write(tmp_path / "m.json", json.dumps(items))
    (entry,) = list(read_manifest(manifest))
    assert isinstance(entry, Utterance)
    assert entry.id == "u1"
    assert entry.audio_path == os.path.join(str(tmp_path), "wav", "u1.wav")
    assert entry.text == "hello world" and entry.duration == 2.0


def test_librispeech_folder():
    entries = list(read_manifest(os.path.join(SPEECH, "LibriSpeech")))
    assert all(isinstance(e, Utterance) for e in entries)
    assert [(e.id, e.text) for e in entries] == [
        ("61-70968-0001", "GIVE NOT SO EARNEST A MIND TO THESE MUMMERIES CHILD"),
        ("61-70968-0002", "A GOLDEN FORTUNE AND A HAPPY LIFE"),
    ]
    for e in entries:
        assert e.audio_path.endswith(e.id + ".flac") and os.path.isfile(e.audio_path)


def test_duplicate_ids_get_suffix(tmp_path):
    manifest = _write(tmp_path / "m.tsv", "path\ttext\nx/u.wav\tone\ny/u.wav\ttwo\nz/u.wav\tthree\n")
    entries = list(read_manifest(manifest))
    assert [e.id for e in entries] == ["u", "u-1", "u-2"]
    assert [e.text for e in entries] == ["one", "two", "three"]


def test_missing_manifest_raises(tmp_path):
    path = str(tmp_path / "absent.tsv")
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert path in str(info.value)


def test_bundled_manifest():
    entries = list(read_manifest(os.path.join(SPEECH, "manifest.tsv")))
    assert len(entries) == 8
    assert all(isinstance(e, Utterance) for e in entries)
    assert len({e.id for e in entries}) == 8
    for e in entries:
        assert os.path.isfile(e.audio_path), e.audio_path
        assert e.text and e.duration > 0


def test_renamed_duplicates_never_collide_with_existing_ids(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\na/u.wav\tx\nb/u.wav\ty\nc/u-1.wav\tz\n")
    ids = [e.id for e in read_manifest(str(manifest))]
    assert len(set(ids)) == 3 and ids[:2] == ["u", "u-1"]


def test_manifest_values_of_the_wrong_type_are_bad_entries_not_crashes(tmp_path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"path": 5, "text": "x"}\n{"path": "a.wav", "text": null}\n{"path": "b.wav", "text": "ok"}\n')
    entries = list(read_manifest(str(jsonl)))
    assert [type(e).__name__ for e in entries] == ["BadEntry", "BadEntry", "Utterance"]
    nvidia = tmp_path / "m.json"
    nvidia.write_text(json.dumps([{"transcript": "x", "files": ["x.wav"]},
                                  {"transcript": "y", "files": [{"fname": "y.wav", "speed": 1.0}]}]))
    entries = list(read_manifest(str(nvidia)))
    assert isinstance(entries[0], BadEntry) and isinstance(entries[1], Utterance)


def test_a_chinese_vocabulary_keeps_its_characters_and_drops_spaces_and_punctuation():
    """AISHELL-style references (PaddleSpeech's vocab.txt) are scored by character, not folded to ASCII."""
    from ascend_asr.text import normalize_transcript

    labels = ["<blank>", "<unk>", "今", "天", "气", "很", "好", "<eos>"]
    assert normalize_transcript("今天 天气，很好！", labels) == "今天天气很好"
    assert normalize_transcript("今天\u3000好", labels + [" "]) == "今天 好"  # a vocabulary with a space keeps it
