"""Dataset manifests: TSV, JSON lines, NVIDIA JSON, and the LibriSpeech folder layout.

Every reader yields `Utterance`s, or a `BadEntry` for a line it cannot use, so that one
malformed line is reported and skipped without losing the rest of the dataset.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Iterator, Union

from .errors import ManifestError

AUDIO_KEYS = ("audio_filepath", "path", "audio", "wav")
TEXT_KEYS = ("text", "transcript")


@dataclass(frozen=True)
class Utterance:
    id: str
    audio_path: str
    text: str
    duration: float | None = None
    source: str = ""  # "manifest:line", for error messages


@dataclass(frozen=True)
class BadEntry:
    source: str
    message: str


Entry = Union[Utterance, BadEntry]


def read_manifest(path: str, data_dir: str | None = None) -> Iterator[Entry]:
    """Entries of a manifest file or a LibriSpeech folder, in order.

    Relative audio paths are read from `data_dir` when given, else from the manifest's folder.
    A missing or unknown manifest raises ManifestError here, before any entry is read.
    """
    if os.path.isdir(path):
        return _read_librispeech(path, _librispeech_transcripts(path))
    from .audio import special_file_problem

    problem = special_file_problem(path)
    if problem:
        raise ManifestError(f"{path}: {problem}, not a manifest file; give a .tsv, .jsonl, NVIDIA or "
                            "deepspeech.pytorch .json manifest or a LibriSpeech folder")
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: manifest not found; give a .tsv, .jsonl, NVIDIA or deepspeech.pytorch .json "
                            "manifest or a LibriSpeech folder")
    base = data_dir or os.path.dirname(os.path.abspath(path))
    if path.endswith(".tsv"):
        entries = _read_tsv(path, base)
    elif path.endswith(".jsonl"):
        entries = _read_jsonl(path, base)
    elif path.endswith(".json"):
        entries = _read_json(path, base)
    else:
        raise ManifestError(f"{path}: unknown manifest type; use .tsv (columns path, text[, duration]), "
                            ".jsonl, NVIDIA .json, or a LibriSpeech folder")
    return unique_ids(entries)


def unique_ids(entries: Iterator[Entry]) -> Iterator[Entry]:
    """Repeated ids get the first free suffix -1, -2, ... (never one already taken)."""
    taken: set[str] = set()
    for entry in entries:
        if isinstance(entry, Utterance):
            new_id, n = entry.id, 0
            while new_id in taken:
                n += 1
                new_id = f"{entry.id}-{n}"
            taken.add(new_id)
            if new_id != entry.id:
                entry = Utterance(new_id, entry.audio_path, entry.text, entry.duration, entry.source)
        yield entry


def _utterance_id(audio_path: str) -> str:
    return os.path.splitext(os.path.basename(audio_path))[0]


def _require_strings(**fields) -> None:
    for name, value in fields.items():
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, found {value!r}")


def _duration(value, source: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"duration must be a number of seconds, found {value!r}")
    duration = float(value)
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, found {value!r}")
    return duration


def _lines(path: str, first_line_bom: bool = False) -> Iterator[tuple[int, str | BadEntry]]:
    """(line number, text) per line, each decoded on its own: a line that is not UTF-8 becomes a
    BadEntry, so that one bad byte costs one line, not the rest of the file."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if first_line_bom and line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, BadEntry(f"{path}:{line_no}", f"not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} "
                                                             f"at column {exc.start + 1}); re-save the file as UTF-8 "
                                                             "or fix or remove the line")
                continue
            yield line_no, text.rstrip("\r\n")


def _read_tsv(path: str, base: str) -> Iterator[Entry]:
    """Tab-separated, no quoting (as csv.QUOTE_NONE reads it), any field length."""
    lines = _lines(path, first_line_bom=True)
    first = next(lines, (1, None))[1]
    if isinstance(first, BadEntry):
        raise ManifestError(f"{first.source}: the header line is {first.message}")
    if first is None:
        raise ManifestError(f"{path}: empty manifest: no header; the first line names the tab-separated columns "
                            "'path' and 'text' ('duration' and 'id' optional), one utterance per line after it")
    header = first.split("\t")
    if "path" not in header or "text" not in header:
        raise ManifestError(f"{path}:1: expected a header with columns 'path' and 'text' "
                            f"(tab-separated, 'duration' optional), found {header}")
    col = {name: i for i, name in enumerate(header)}
    ids_seen: dict[str, int] = {}
    for line_no, text in lines:
        if isinstance(text, BadEntry):
            yield text
            continue
        source = f"{path}:{line_no}"
        row = text.split("\t")
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield BadEntry(source, f"expected {len(header)} tab-separated columns {header}, found {len(row)}; "
                                   "fix or remove the line")
            continue
        try:
            duration = _duration(row[col["duration"]], source) if "duration" in col else None
        except ValueError as exc:
            yield BadEntry(source, f"bad duration ({exc}); give seconds as a number or leave it empty")
            continue
        if not row[col["path"]].strip():
            yield BadEntry(source, "empty audio path; fix or remove the line")
            continue
        audio = os.path.join(base, row[col["path"]])
        utt_id = _utterance_id(audio)
        if "id" in col:  # an explicit id column is honoured: unique and non-empty
            utt_id = row[col["id"]].strip()
            if not utt_id:
                yield BadEntry(source, "empty id in the 'id' column; give every line an id, or drop the column "
                                       "to use the audio file names")
                continue
            if utt_id in ids_seen:
                yield BadEntry(source, f"id {utt_id!r} was already used on line {ids_seen[utt_id]}; ids must be "
                                       "unique: fix or remove the line")
                continue
            ids_seen[utt_id] = line_no
        yield Utterance(utt_id, audio, row[col["text"]], duration, source)


def _read_jsonl(path: str, base: str) -> Iterator[Entry]:
    for line_no, line in _lines(path, first_line_bom=True):
        if isinstance(line, BadEntry):
            yield line
            continue
        if not line.strip():
            continue
        source = f"{path}:{line_no}"
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise TypeError(f"found a JSON {type(item).__name__}, not an object")
            audio_key = next((k for k in AUDIO_KEYS if k in item), None)
            text_key = next((k for k in TEXT_KEYS if k in item), None)
            if audio_key is None:
                raise ValueError(f"no {AUDIO_KEYS[0]!r} field (nor {', '.join(map(repr, AUDIO_KEYS[1:]))})")
            if text_key is None:
                raise ValueError("no 'text' field (nor 'transcript')")
            audio, text = item[audio_key], item[text_key]
            _require_strings(audio=audio, text=text)
            if not audio.strip():
                raise ValueError("empty audio path")
            duration = _duration(item.get("duration"), source)
            utt_id = item.get("id")
            if utt_id is not None and (isinstance(utt_id, bool) or not isinstance(utt_id, (str, int))):
                raise TypeError(f"id must be a string, found {utt_id!r}")
        except Exception as exc:  # anything a malformed line provokes costs that line only
            yield BadEntry(source, f"expected a JSON object with one of {AUDIO_KEYS} and one of {TEXT_KEYS} "
                                   f"({type(exc).__name__}: {exc}); fix or remove the line")
            continue
        audio = os.path.join(base, audio)
        yield Utterance(str(utt_id) if utt_id not in (None, "") else _utterance_id(audio), audio, text, duration,
                        source)


def _read_json(path: str, base: str) -> Iterator[Entry]:
    """NVIDIA's JSON list, or deepspeech.pytorch's {"root_path", "samples"} (AN4)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} at offset {exc.start}); "
                            "re-save the file as UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); expected NVIDIA's JSON list or "
                            "deepspeech.pytorch's {'root_path', 'samples'}") from exc
    if isinstance(data, dict) and "samples" in data:
        if not isinstance(data["samples"], list):
            raise ManifestError(f"{path}: 'samples' must be a list of {{'wav_path', 'transcript_path'}}, found "
                                f"{type(data['samples']).__name__}")
        root = data.get("root_path")
        if root is not None and not isinstance(root, str):
            raise ManifestError(f"{path}: 'root_path' must be a folder path (a string), found {root!r}")
        return _read_deepspeech_json(path, data)
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of utterances (NVIDIA format) or an object with "
                            f"'root_path' and 'samples' (deepspeech.pytorch), found {type(data).__name__}")
    return _read_nvidia_json(path, base, data)


def _read_deepspeech_json(path: str, data: dict) -> Iterator[Entry]:
    """deepspeech.pytorch V3.0: {"root_path": dir, "samples": [{"wav_path", "transcript_path"}]}, paths
    relative to root_path, each transcript in its own text file."""
    root = data.get("root_path") or os.path.dirname(os.path.abspath(path))
    if not os.path.isabs(root):
        root = os.path.join(os.path.dirname(os.path.abspath(path)), root)
    for i, item in enumerate(data["samples"]):
        source = f"{path}[samples][{i}]"
        try:
            _require_strings(wav_path=item["wav_path"], transcript_path=item["transcript_path"])
            audio = os.path.join(root, item["wav_path"])
            with open(os.path.join(root, item["transcript_path"]), encoding="utf-8") as f:
                text = f.read().strip()
        except Exception as exc:  # anything a malformed entry provokes costs that entry only
            yield BadEntry(source, f"expected {{'wav_path', 'transcript_path'}} with a readable transcript "
                                   f"({type(exc).__name__}: {exc}); fix or remove the entry")
            continue
        yield Utterance(_utterance_id(audio), audio, text, None, source)


def _read_nvidia_json(path: str, base: str, items: list) -> Iterator[Entry]:
    """NVIDIA DeepLearningExamples manifest: a JSON list of {transcript, files:[{fname, speed}], ...}."""
    for i, item in enumerate(items):
        source = f"{path}[{i}]"
        try:
            files = item["files"]
            chosen = next((x for x in files if float(x.get("speed", 1)) == 1.0), files[0])
            _require_strings(fname=chosen["fname"], transcript=item["transcript"])
            audio = os.path.join(base, chosen["fname"])
            duration = _duration(item.get("original_duration", chosen.get("duration")), source)
        except Exception as exc:  # anything a malformed entry provokes costs that entry only
            yield BadEntry(source, f"expected {{'transcript', 'files': [{{'fname', 'speed'}}]}} "
                                   f"({type(exc).__name__}: {exc}); fix or remove the entry")
            continue
        yield Utterance(_utterance_id(audio), audio, item["transcript"], duration, source)


def _librispeech_transcripts(root: str) -> list[str]:
    """<root>/**/<spk>-<chapter>.trans.txt, sorted."""
    transcripts = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                         if f.endswith(".trans.txt"))
    if not transcripts:
        raise ManifestError(f"{root}: no *.trans.txt found; expected the LibriSpeech layout "
                            "<speaker>/<chapter>/<speaker>-<chapter>.trans.txt")
    return transcripts


def _read_librispeech(root: str, transcripts: list[str]) -> Iterator[Entry]:
    """LibriSpeech: <root>/**/<spk>-<chapter>.trans.txt with lines '<utt-id> <TEXT>'."""
    for trans in transcripts:
        folder = os.path.dirname(trans)
        for line_no, line in _lines(trans):
            if isinstance(line, BadEntry):
                yield line
                continue
            if not line.strip():
                continue
            source = f"{trans}:{line_no}"
            utt_id, _, text = line.strip().partition(" ")
            if not text or utt_id in (".", "..") or "/" in utt_id or "\\" in utt_id:
                yield BadEntry(source, "expected '<utterance-id> <TRANSCRIPT>' (the id a file name in the same "
                                       "folder); fix or remove the line")
                continue
            audio = next((os.path.join(folder, utt_id + ext) for ext in (".flac", ".wav")
                          if os.path.exists(os.path.join(folder, utt_id + ext))),
                         os.path.join(folder, utt_id + ".flac"))
            yield Utterance(utt_id, audio, text, None, source)
