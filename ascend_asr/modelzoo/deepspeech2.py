"""ModelZoo DeepSpeech2: deepspeech2_preprocess.py and deepspeech2_postprocess.py, on ascend-asr's
spectrogram and decoding."""
from __future__ import annotations

import os

import numpy as np

from ..decoding import OutputLayout, decode_utterance, make_decoder
from ..errors import ProfileError, TensorFileError
from ..metrics import percent, score
from ..prep import open_prep
from ..preprocess import preprocess
from ..profiles import load_profile
from ..tensor_files import write_text_atomic
from ..text import Vocabulary
from .common import preprocess_exit_status, read_input_file, require_output_folder, require_outputs

BLANK = "_"  # deepspeech.pytorch's labels.json puts the CTC blank first, as "_"


def read_labels(label_file: str) -> list:
    labels = read_input_file(label_file, "labels file", "give deepspeech.pytorch's labels.json (--label_file)",
                             ProfileError)
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ProfileError(f"{label_file}: expected a JSON list of label strings (deepspeech.pytorch's labels.json)")
    return labels


def check_labels(label_file: str, labels) -> None:
    given = read_labels(label_file)
    if list(given) != list(labels):
        raise ProfileError(f"{label_file}: labels {given} differ from the profile's {list(labels)}; "
                           "use a profile made for these labels (--profile)")


def run_preprocess(args) -> int:
    """preprocess/deepspeech2_preprocess.py: manifest -> <save_path>/spect, <save_path>/sizes, targets.txt."""
    profile = load_profile(args.profile)
    if args.label_file:
        check_labels(args.label_file, profile.vocabulary.labels)
    features, lengths = profile.input("features"), profile.input("lengths")
    summary = preprocess(args.data_file, args.save_path, profile,
                         input_dirs={features.name: "spect", lengths.name: "sizes"})
    rows = open_prep(args.save_path).rows
    write_text_atomic(os.path.join(args.save_path, "targets.txt"), "".join(r["text"] + "\n" for r in rows))
    print(f"{summary.written} written, {summary.failed} failed -> {args.save_path}/spect, {args.save_path}/sizes")
    return preprocess_exit_status(summary, os.path.join(args.save_path, "failures.json"))


def read_output(out_path: str, stem: str, n_classes: int) -> np.ndarray:
    """[T', n_classes] scores of one utterance, from whichever format ais_bench wrote."""
    for ext in ("bin", "npy", "txt"):
        path = os.path.join(out_path, f"{stem}_0.{ext}")
        if os.path.exists(path):
            data = {"bin": lambda: np.fromfile(path, dtype=np.float32), "npy": lambda: np.load(path),
                    "txt": lambda: np.loadtxt(path, dtype=np.float32)}[ext]()
            if data.size % n_classes:
                raise TensorFileError(f"{path}: {data.size} values is not T x {n_classes}")
            return data.reshape(-1, n_classes)
    raise TensorFileError(f"{out_path}: no {stem}_0.bin|npy|txt; run ais_bench with --input spect,sizes "
                          f"--output {out_path}")


def run_postprocess(args) -> int:
    """postprocess/deepspeech2_postprocess.py: ais_bench outputs + the preprocess --save_path -> WER, CER."""
    profile = load_profile(args.profile)
    vocab = profile.vocabulary
    if args.label_file:
        labels = read_labels(args.label_file)
        if BLANK not in labels:
            raise ProfileError(f"{args.label_file}: no blank label {BLANK!r}; give deepspeech.pytorch's labels.json")
        vocab = Vocabulary(tuple(labels), labels.index(BLANK))
    layout = OutputLayout.of(profile)
    decode = make_decoder(vocab, layout.scores_are_probs)
    rows = open_prep(args.save_path).rows
    require_output_folder(args.out_path, "give the --output folder of ais_bench (<stem>_0.bin)")
    require_outputs(args.out_path, [f for f in os.listdir(args.out_path) if f.endswith(("_0.bin", "_0.npy"))],
                    "give the --output folder of ais_bench")
    pairs = []
    for row in rows:
        scores = read_output(args.out_path, row["stem"], vocab.size)
        _, ids = decode_utterance(layout, decode, scores, frames=row["frames"])
        pairs.append((row["text"], vocab.decode(ids)))
    total = score(pairs)
    print(f"Test Summary \tAverage WER {percent(total.wer)}\tAverage CER {percent(total.cer)} "
          f"({total.utterances} utterances)")
    return 0
