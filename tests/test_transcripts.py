"""Word-timed transcripts from hyps.jsonl (transcripts.py) and `score --format`."""
import json
import os

import pytest

from ascend_asr.errors import TensorFileError
from ascend_asr.score import score_results
from ascend_asr.transcripts import ctm_lines, cues, file_names, srt_text, vtt_text, write_transcripts

WORDS = [{"word": "hello", "start": 0.5, "end": 0.9, "confidence": 0.91},
         {"word": "world", "start": 1.0, "end": 1.42, "confidence": 0.8},
         {"word": "again", "start": 3.0, "end": 3.5, "confidence": 0.7}]


def row(stem="000000000000", utt="utt 1", words=WORDS):
    return {"stem": stem, "id": utt, "hyp": " ".join(w["word"] for w in words), "ref": "hello world again",
            "duration": 4.0, "frames": 400, "out_frames": 200, "words": words, "confidence": 0.8}


def test_ctm_has_one_line_per_word_with_start_duration_and_confidence():
    assert ctm_lines([row()]) == ["utt_1 1 0.50 0.40 hello 0.9100", "utt_1 1 1.00 0.42 world 0.8000",
                                  "utt_1 1 3.00 0.50 again 0.7000"]


def test_a_long_pause_starts_a_new_cue_and_long_lines_are_split():
    assert cues(WORDS) == [(0.5, 1.42, "hello world"), (3.0, 3.5, "again")]
    many = [{"word": f"w{i}", "start": i * 0.3, "end": i * 0.3 + 0.2} for i in range(10)]
    assert [len(text.split()) for _, _, text in cues(many)] == [7, 3]


def test_srt_and_vtt_number_and_format_their_times():
    srt = srt_text(WORDS)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:01,420\nhello world\n\n2\n00:00:03,000 --> 00:00:03,500\nagain")
    vtt = vtt_text(WORDS)
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.420\nhello world\n")
    assert srt_text([{"word": "x", "start": 3725.0049, "end": 3726.0, "confidence": 1}]).split("\n")[1] == \
        "01:02:05,005 --> 01:02:06,000"


def test_file_names_are_safe_and_unique():
    names = file_names([row("000000000000", "../a b"), row("000000000001", "../a b")])
    assert names == {"000000000000": "_a_b", "000000000001": "_a_b_000000000001"}


def test_rows_without_word_times_are_refused_with_the_fix(tmp_path):
    old = row()
    del old["words"]
    with pytest.raises(TensorFileError, match="rerun infer"):
        write_transcripts(str(tmp_path), [old], "ctm")


def test_score_writes_the_transcripts_and_the_upstream_metrics(tmp_path):
    (tmp_path / "hyps.jsonl").write_text(json.dumps(row()) + "\n")
    report = score_results(str(tmp_path), "srt")
    assert os.path.isfile(tmp_path / "transcripts" / "srt" / "utt_1.srt")
    assert report["upstream"]["cer_no_spaces"] == 0.0 and "deepspeech.pytorch" in \
        report["upstream"]["definitions"]["cer_no_spaces"]
    score_results(str(tmp_path), "ctm")
    assert (tmp_path / "transcripts.ctm").read_text().count("\n") == 3
