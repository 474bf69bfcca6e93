"""Word-timed transcripts from results/hyps.jsonl: NIST CTM, SubRip (SRT) and WebVTT.

    ascend-asr score --results results/ --format ctm     -> results/transcripts.ctm (one file, every utterance)
    ascend-asr score --results results/ --format srt     -> results/transcripts/srt/<id>.srt (one per utterance)
    ascend-asr score --results results/ --format vtt     -> results/transcripts/vtt/<id>.vtt

CTM lines are `<utterance id> 1 <start> <duration> <word> <confidence>` (seconds, 2 decimals as sclite reads
them). Subtitle cues hold up to MAX_CUE_WORDS words and MAX_CUE_CHARS characters, and a pause longer than
CUE_PAUSE_S starts a new cue. Times are those infer wrote: from the start of the audio the features were
computed on (after the frontend's silence trimming, for frontends that trim).
"""
from __future__ import annotations

import os
import re

from .errors import TensorFileError
from .tensor_files import write_text_atomic

FORMATS = ("ctm", "srt", "vtt")
MAX_CUE_WORDS = 7
MAX_CUE_CHARS = 42
CUE_PAUSE_S = 1.0


def _words(row: dict, source: str) -> list[dict]:
    words = row.get("words")
    if words is None:
        raise TensorFileError(f"{source}: utterance {row.get('id')!r} has no word times (results of an older infer); "
                              "rerun infer into a new --output folder to get them")
    for w in words:
        if not isinstance(w, dict) or not isinstance(w.get("word"), str) or not all(
                isinstance(w.get(k), (int, float)) and not isinstance(w.get(k), bool) for k in ("start", "end")):
            raise TensorFileError(f"{source}: utterance {row.get('id')!r}: a word entry {w!r:.80} is not "
                                  "{word, start, end, confidence} as infer writes it; rerun infer")
    return words


def ctm_lines(rows: list[dict], source: str = "hyps.jsonl") -> list[str]:
    lines = []
    for row in rows:
        utt = re.sub(r"\s+", "_", str(row["id"]))
        for w in _words(row, source):
            confidence = w.get("confidence")
            lines.append(f"{utt} 1 {w['start']:.2f} {max(0.0, w['end'] - w['start']):.2f} {w['word']}"
                         + (f" {confidence:.4f}" if isinstance(confidence, (int, float)) else ""))
    return lines


def cues(words: list[dict]) -> list[tuple[float, float, str]]:
    """(start, end, text) subtitle cues of one utterance's words."""
    out, current = [], []
    for w in words:
        text = " ".join(x["word"] for x in current + [w])
        if current and (len(current) >= MAX_CUE_WORDS or len(text) > MAX_CUE_CHARS
                        or w["start"] - current[-1]["end"] > CUE_PAUSE_S):
            out.append((current[0]["start"], current[-1]["end"], " ".join(x["word"] for x in current)))
            current = []
        current.append(w)
    if current:
        out.append((current[0]["start"], current[-1]["end"], " ".join(x["word"] for x in current)))
    return out


def _clock(seconds: float, decimal: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def srt_text(words: list[dict]) -> str:
    blocks = [f"{n}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n" for n, (a, b, text) in
              enumerate(cues(words), 1)]
    return "\n".join(blocks)


def vtt_text(words: list[dict]) -> str:
    blocks = [f"{_clock(a, '.')} --> {_clock(b, '.')}\n{text}\n" for a, b, text in cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def file_names(rows: list[dict]) -> dict[str, str]:
    """{stem: file name} from each utterance id, made safe (and unique: the stem is added on a clash)."""
    names, used = {}, set()
    for row in rows:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(row["id"])).lstrip(".") or row["stem"]
        if name in used:
            name = f"{name}_{row['stem']}"
        used.add(name)
        names[row["stem"]] = name
    return names


def write_transcripts(results_dir: str, rows: list[dict], fmt: str) -> str:
    """Write the transcripts of `rows` (hyps.jsonl) in `fmt`; returns the file or folder written."""
    source = os.path.join(results_dir, "hyps.jsonl")
    if fmt == "ctm":
        path = os.path.join(results_dir, "transcripts.ctm")
        write_text_atomic(path, "".join(line + "\n" for line in ctm_lines(rows, source)))
        return path
    if fmt not in FORMATS:
        raise TensorFileError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    folder = os.path.join(results_dir, "transcripts", fmt)
    os.makedirs(folder, exist_ok=True)
    render = srt_text if fmt == "srt" else vtt_text
    names = file_names(rows)
    for row in rows:
        write_text_atomic(os.path.join(folder, f"{names[row['stem']]}.{fmt}"), render(_words(row, source)))
    return folder
