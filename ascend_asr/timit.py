"""TIMIT for the LSTM-CTC phone recognizer: corpus reader, 61 -> 39 phone folding, vocabulary, PER.

Follows ModelZoo LSTM's `local/timit_data_prep.sh` and `local/normalize_phone.py`: SA sentences
excluded; train = every speaker under TRAIN/, dev = the 50 speakers of Kaldi's `conf/dev_spk.list`,
test = the 24 core-test speakers (`conf/test_spk.list`), both found under TEST/; utterance ids
`<SPEAKER>_<SENTENCE>` sorted; phones of the `.PHN` files folded to 39 with
`phones.60-48-39.map` (column 3), `q` deleted, consecutive duplicates kept.

TIMIT is licensed by the LDC: nothing here ships or was scored on it. Its `.WAV` files are NIST
SPHERE, which soundfile (libsndfile) reads as they are.
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Iterator

from .datasets import BadEntry, Entry, Utterance
from .errors import ManifestError
from .metrics import ErrorCounts, word_errors
from .tensor_files import write_text_atomic
from .text import Vocabulary

# phones.60-48-39.map, third column; q has no mapping and is deleted
PHONE_MAP_61_TO_39 = {
    "aa": "aa", "ae": "ae", "ah": "ah", "ao": "aa", "aw": "aw", "ax": "ah", "ax-h": "ah", "axr": "er",
    "ay": "ay", "b": "b", "bcl": "sil", "ch": "ch", "d": "d", "dcl": "sil", "dh": "dh", "dx": "dx",
    "eh": "eh", "el": "l", "em": "m", "en": "n", "eng": "ng", "epi": "sil", "er": "er", "ey": "ey",
    "f": "f", "g": "g", "gcl": "sil", "h#": "sil", "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih",
    "iy": "iy", "jh": "jh", "k": "k", "kcl": "sil", "l": "l", "m": "m", "n": "n", "ng": "ng", "nx": "n",
    "ow": "ow", "oy": "oy", "p": "p", "pau": "sil", "pcl": "sil", "q": None, "r": "r", "s": "s",
    "sh": "sh", "t": "t", "tcl": "sil", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw", "v": "v",
    "w": "w", "y": "y", "z": "z", "zh": "sh",
}

# The model's classes are blank, UNK, then the phones in order of first appearance in the sorted
# train transcripts (steps/get_model_units.py -> data/units), which needs the corpus to derive.
# Without it, alphabetical order stands in; `read_units` / `units_in_order_of_appearance` give
# the real order from data/units or from the train set.
PHONES_39 = tuple(sorted({p for p in PHONE_MAP_61_TO_39.values() if p}))
BLANK, UNK = "blank", "UNK"  # data_loader.Vocab: {"blank": 0, "UNK": 1}

# Kaldi egs/timit/s5/conf/dev_spk.list
DEV_SPEAKERS = frozenset("""
faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 fdms0 fedw0 mgjf0
mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0
mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1
""".split())
# ModelZoo conf/test_spk.list: the core test set
CORE_TEST_SPEAKERS = frozenset("""
mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0 mbpm0 mklt0 fnlp0 mcmj0 mjdh0
fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0
""".split())
SUBSETS = ("train", "dev", "test")


def fold_phones(phones: Iterable[str], source: str = "") -> list[str]:
    """61 TIMIT phones -> 39 (q deleted, duplicates kept); an unknown phone raises ManifestError."""
    folded = []
    for phone in phones:
        if phone not in PHONE_MAP_61_TO_39:
            raise ManifestError(f"{source}: {phone!r} is not a TIMIT phone; known: {sorted(PHONE_MAP_61_TO_39)}")
        if PHONE_MAP_61_TO_39[phone]:
            folded.append(PHONE_MAP_61_TO_39[phone])
    return folded


def read_phn(path: str) -> list[str]:
    """The phone column of a .PHN file ('<begin sample> <end sample> <phone>' per line)."""
    phones = []
    with open(path, encoding="ascii") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise ManifestError(f"{path}:{line_no}: expected '<begin> <end> <phone>', found {line.strip()!r}")
            phones.append(fields[2])
    return phones


def _subdirs(path: str) -> list[str]:
    return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))) if os.path.isdir(path) else []


def _find(names: list[str], wanted: str) -> str | None:
    return next((n for n in names if n.lower() == wanted), None)


def speaker_dirs(root: str, subset: str) -> list[str]:
    """Speaker folders of a subset (TRAIN|TEST/DR*/SPEAKER, any letter case)."""
    if subset not in SUBSETS:
        raise ManifestError(f"unknown TIMIT subset {subset!r}; use one of {SUBSETS}")
    top = _find(_subdirs(root), "train" if subset == "train" else "test")
    if top is None:
        raise ManifestError(f"{root}: no TRAIN/ or TEST/ folder; give the TIMIT root (holding TRAIN/ and TEST/)")
    wanted = None if subset == "train" else DEV_SPEAKERS if subset == "dev" else CORE_TEST_SPEAKERS
    folders = []
    for region in (d for d in _subdirs(os.path.join(root, top)) if d.lower().startswith("dr")):
        for speaker in _subdirs(os.path.join(root, top, region)):
            if wanted is None or speaker.lower() in wanted:
                folders.append(os.path.join(root, top, region, speaker))
    return folders


def timit_utterances(root: str, subset: str) -> Iterator[Entry]:
    """Utterances of a subset, sorted by id, text = folded phones separated by spaces.

    A sentence whose .PHN is missing or malformed is yielded as a BadEntry, not lost silently.
    """
    found = []
    for folder in speaker_dirs(root, subset):
        speaker = os.path.basename(folder)
        files = os.listdir(folder)
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() != ".wav" or stem.lower().startswith("sa"):
                continue
            found.append((f"{speaker}_{stem}", os.path.join(folder, name), _find_phn(files, stem, folder)))
    for utt_id, wav, phn in sorted(found):
        if phn is None:
            yield BadEntry(wav, f"no .PHN transcription beside {wav}; restore it or remove the audio")
            continue
        try:
            text = " ".join(fold_phones(read_phn(phn), phn))
        except (ManifestError, UnicodeDecodeError) as exc:
            yield BadEntry(phn, str(exc))
            continue
        yield Utterance(utt_id, wav, text, None, phn)


def _find_phn(files: list[str], stem: str, folder: str) -> str | None:
    name = next((f for f in files if f.lower() == stem.lower() + ".phn"), None)
    return None if name is None else os.path.join(folder, name)


def write_timit_manifest(root: str, subset: str, path: str) -> list[BadEntry]:
    """A .jsonl manifest (id, path, text) of a subset for `ascend_asr.preprocess`; returns the bad entries.

    JSON lines keep TIMIT's ids: sentence names alone (SX43) repeat across speakers.
    """
    rows, bad = [], []
    for entry in timit_utterances(root, subset):
        if isinstance(entry, BadEntry):
            bad.append(entry)
        else:
            rows.append(json.dumps({"id": entry.id, "path": os.path.abspath(entry.audio_path), "text": entry.text}))
    if not rows:
        raise ManifestError(f"{root}: no {subset} utterances found (speaker folders under TRAIN|TEST/DR*/)")
    write_text_atomic(path, "\n".join(rows) + "\n")
    return bad


def units_in_order_of_appearance(transcripts: Iterable[str]) -> list[str]:
    """steps/get_model_units.py: each phone once, in order of first appearance."""
    return list(dict.fromkeys(phone for text in transcripts for phone in text.split()))


def read_units(path: str) -> list[str]:
    """The phones of ModelZoo's `data/units`, in data_loader.Vocab's order (one unit per line)."""
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: units file not found; it is data/units of ModelZoo's data preparation")
    with open(path, encoding="utf-8") as f:
        # Vocab.read_lang: a line of several tokens is '<key> <units...>'
        lines = [line.split(" ") for line in f.read().splitlines() if line.strip()]
    units = [u for fields in lines for u in (fields[1:] if len(fields) > 1 else fields)]
    return [u for u in dict.fromkeys(units) if u not in (BLANK, UNK)]


def timit_vocabulary(phones: Iterable[str] = PHONES_39) -> Vocabulary:
    """blank (id 0), UNK (id 1), then the phones in the model's order."""
    return Vocabulary((BLANK, UNK, *phones), 0, separator=" ")


def decode_phones(ids, vocabulary: Vocabulary) -> str:
    """Class ids -> phones separated by spaces (blank dropped)."""
    return " ".join(vocabulary.labels[i] for i in ids if i != vocabulary.blank)


def phone_error_rate(pairs) -> ErrorCounts:
    """PER over (reference, hypothesis) phone strings: edit distance over phone tokens / reference phones.

    The ModelZoo scripts print this number as "Word error rate".
    """
    total = ErrorCounts(0, 0)
    for reference, hypothesis in pairs:
        total += word_errors(reference, hypothesis)
    return total


def fold_to_39(phones: Iterable[str], source: str = "") -> list[str]:
    """Phones of either set -> the 39: a 39-set phone (sil included) stays, a 61-set phone is folded (q
    deleted); anything else raises ManifestError (fold_phones)."""
    kept = set(PHONES_39)
    return [folded for p in phones for folded in ([p] if p in kept else fold_phones([p], source))]


def folded_phone_error_rate(pairs) -> ErrorCounts:
    """TIMIT PER with 39-phone folding of both sides (reference and hypothesis phone strings)."""
    return phone_error_rate((" ".join(fold_to_39(r.split())), " ".join(fold_to_39(h.split()))) for r, h in pairs)
