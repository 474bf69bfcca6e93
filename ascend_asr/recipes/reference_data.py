"""The recipe's data: synthesized sentences and digit strings plus recorded FSDD digits.

    work_dir/audio/<set>/<id>.wav and work_dir/<set>.tsv (path, duration, text, voice)

Sets: `train`; `test_sentences_seen_voices` (unseen sentences, training voices);
`test_sentences_unseen_voices` (unseen sentences, held-out accent and variants);
`test_digits_heldout_speaker` (every FSDD recording of the speaker left out of training).
Everything follows from the seed; a rerun reuses the audio already made for the same settings.
"""
from __future__ import annotations

import csv
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import soundfile as sf

from ..errors import ManifestError
from . import corpus
from .synthesis import speed_perturb, synthesize
from .voices import random_voice

TEST_SETS = ("test_sentences_seen_voices", "test_sentences_unseen_voices", "test_digits_heldout_speaker")
FSDD_MANIFEST = "fsdd.tsv"


@dataclass(frozen=True)
class DataSettings:
    seed: int = 0
    train_sentences: int = 4000
    train_digit_strings: int = 1500
    test_sentences_seen_voices: int = 200
    test_sentences_unseen_voices: int = 100
    held_out_speaker: str = "theo"
    digit_speed_factors: tuple = (0.9, 1.1)  # recorded training digits are also kept at these speeds


@dataclass(frozen=True)
class Item:
    path: str
    text: str
    voice: str
    make: tuple = ()  # ("tts", Voice) or ("speed", source, factor) or () for a file that exists


def read_fsdd(fsdd_dir: str) -> list[dict]:
    """Rows of `fsdd.tsv` (path, text, ...) with absolute paths and the speaker from the file name."""
    manifest = os.path.join(fsdd_dir, FSDD_MANIFEST)
    if not os.path.isfile(manifest):
        raise ManifestError(f"{manifest}: not found; point --fsdd at a folder holding fsdd.tsv (columns path, text) "
                            "and the FSDD recordings it names, e.g. ../shared/data/speech")
    rows = []
    with open(manifest, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=2):
            name = os.path.basename(row.get("path") or "")
            parts = os.path.splitext(name)[0].split("_")
            if len(parts) != 3 or not row.get("text"):
                raise ManifestError(f"{manifest}:{line_no}: expected an FSDD file name "
                                    f"'{{digit}}_{{speaker}}_{{take}}.wav' and a text, found {row}")
            # absolute: the rows end up in manifests elsewhere, which resolve relative paths against their own folder
            rows.append({"path": os.path.abspath(os.path.join(fsdd_dir, row["path"])), "text": row["text"],
                         "speaker": parts[1]})
    return rows


def plan(settings: DataSettings, fsdd_dir: str, work_dir: str) -> dict[str, list[Item]]:
    """Every item of every set, with how to make its audio; deterministic in the settings."""
    rng = random.Random(settings.seed)
    audio = os.path.join(work_dir, "audio")
    n_test = settings.test_sentences_seen_voices + settings.test_sentences_unseen_voices
    test_sentences = corpus.sentences(n_test, seed=settings.seed + 1)
    train_sentences = corpus.sentences(settings.train_sentences, seed=settings.seed + 2, exclude=set(test_sentences))
    digit_strings = corpus.digit_strings(settings.train_digit_strings, seed=settings.seed + 3)

    def tts(set_name, index, text, held_out=False):
        voice = random_voice(rng, held_out=held_out)
        return Item(os.path.join(audio, set_name, f"{set_name}_{index:05d}.wav"), text, voice.label, ("tts", voice))

    sets = {"train": [tts("train", i, t) for i, t in enumerate(train_sentences + digit_strings)]}
    seen = settings.test_sentences_seen_voices
    sets["test_sentences_seen_voices"] = [tts("test_sentences_seen_voices", i, t)
                                          for i, t in enumerate(test_sentences[:seen])]
    sets["test_sentences_unseen_voices"] = [tts("test_sentences_unseen_voices", i, t, held_out=True)
                                            for i, t in enumerate(test_sentences[seen:])]
    fsdd = read_fsdd(fsdd_dir)
    speakers = sorted({r["speaker"] for r in fsdd})
    if settings.held_out_speaker not in speakers:
        raise ManifestError(f"{fsdd_dir}/{FSDD_MANIFEST}: no recordings of the held-out speaker "
                            f"{settings.held_out_speaker!r}; speakers: {speakers}")
    for row in fsdd:
        voice = f"fsdd:{row['speaker']}"
        if row["speaker"] == settings.held_out_speaker:
            sets["test_digits_heldout_speaker"] = sets.get("test_digits_heldout_speaker", []) + [
                Item(row["path"], row["text"], voice)]
            continue
        sets["train"].append(Item(row["path"], row["text"], voice))
        stem = os.path.splitext(os.path.basename(row["path"]))[0]
        for factor in settings.digit_speed_factors:
            sets["train"].append(Item(os.path.join(audio, "train", f"fsdd_{stem}_sp{factor}.wav"), row["text"],
                                      voice, ("speed", row["path"], factor)))
    return sets


def _make(item: Item) -> None:
    if not item.make or os.path.isfile(item.path):
        return
    if item.make[0] == "tts":
        synthesize(item.text, item.make[1], item.path)
    else:
        speed_perturb(item.make[1], item.path, item.make[2])


def build(settings: DataSettings, fsdd_dir: str, work_dir: str, workers: int = 4, log=print) -> dict[str, str]:
    """Make the audio and write one manifest per set; returns {set: manifest path}."""
    os.makedirs(work_dir, exist_ok=True)
    stamp = os.path.join(work_dir, "data_settings.json")
    wanted = json.loads(json.dumps({**asdict(settings), "fsdd_dir": os.path.abspath(fsdd_dir)}))
    if os.path.isfile(stamp):
        with open(stamp, encoding="utf-8") as f:
            if json.load(f) != wanted:
                raise ManifestError(f"{work_dir} holds data made with other settings ({stamp}); "
                                    "use another --work-dir or delete that folder")
    with open(stamp, "w", encoding="utf-8") as f:
        json.dump(wanted, f, indent=2)
    sets = plan(settings, fsdd_dir, work_dir)
    todo = [item for items in sets.values() for item in items if item.make and not os.path.isfile(item.path)]
    if todo:
        log(f"[recipe] synthesizing {len(todo)} utterances into {work_dir}/audio ...")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_make, todo))
    manifests = {}
    for name, items in sets.items():
        path = os.path.join(work_dir, f"{name}.tsv")
        with open(path + ".part", "w", encoding="utf-8", newline="") as f:
            f.write("path\tduration\ttext\tvoice\n")
            for item in items:
                f.write(f"{item.path}\t{sf.info(item.path).duration:.3f}\t{item.text}\t{item.voice}\n")
        os.replace(path + ".part", path)
        manifests[name] = path
        log(f"[recipe] {name}: {len(items)} utterances -> {path}")
    return manifests


