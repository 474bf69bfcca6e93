"""Drop-in for ModelZoo's deepspeech2_preprocess.py: same flags, ascend-asr's spectrogram and checks.

    python preprocess/deepspeech2_preprocess.py --data_file data/an4_test_manifest.json \
        --save_path ./data/an4_dataset/test --label_file labels.json

Writes <save_path>/spect/<stem>.bin (float32 1x1x161x621) and <save_path>/sizes/<stem>.bin
(int32 1), the ais_bench inputs (`--input spect,sizes`), plus targets.txt and ascend-asr's
prep metadata. Unlike the ModelZoo script, each utterance is its own file, its size is its true
frame count (not a fraction of 621), and an utterance longer than 621 frames is reported and skipped.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ascend_asr.errors import ProfileError  # noqa: E402
from ascend_asr.prep import open_prep  # noqa: E402
from ascend_asr.preprocess import preprocess  # noqa: E402
from ascend_asr.profiles import load_profile  # noqa: E402
from ascend_asr.tensor_files import write_text_atomic  # noqa: E402


def check_labels(label_file: str, labels) -> None:
    with open(label_file, encoding="utf-8") as f:
        given = json.load(f)
    if list(given) != list(labels):
        raise ProfileError(f"{label_file}: labels {given} differ from the profile's {list(labels)}; "
                           "use a profile made for these labels (--profile)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_file", required=True, help="deepspeech.pytorch manifest (root_path + samples)")
    p.add_argument("--save_path", required=True)
    p.add_argument("--label_file", help="labels.json; checked against the profile's labels")
    p.add_argument("--profile", default="deepspeech2")
    args = p.parse_args(argv)
    profile = load_profile(args.profile)
    if args.label_file:
        check_labels(args.label_file, profile.vocabulary.labels)
    features, lengths = profile.input("features"), profile.input("lengths")
    summary = preprocess(args.data_file, args.save_path, profile,
                         input_dirs={features.name: "spect", lengths.name: "sizes"})
    rows = open_prep(args.save_path).rows
    write_text_atomic(os.path.join(args.save_path, "targets.txt"), "".join(r["text"] + "\n" for r in rows))
    print(f"{summary.written} written, {summary.failed} failed -> {args.save_path}/spect, {args.save_path}/sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
