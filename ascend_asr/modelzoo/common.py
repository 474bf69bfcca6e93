"""What every ModelZoo adapter shares: agg_txts.json, ais_bench output names, input files."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import yaml

from ..errors import ProfileError, TensorFileError
from ..tensor_files import natural_key, write_json_atomic


def read_input_file(path: str, what: str, fix: str, error: type = TensorFileError, parse=json.load):
    """A script's input file, parsed (JSON by default); missing, unreadable or malformed raises `error`
    naming the file and `fix`."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found; {fix}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror}); {fix}") from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise error(f"{path}: not a valid {what} ({exc}); {fix}") from exc


def read_yaml_config(path: str, what: str) -> dict:
    """A ModelZoo YAML config (an empty file is an empty mapping)."""
    return read_input_file(path, what, "check the path (--conf)", ProfileError, yaml.safe_load) or {}


def require_output_folder(folder: str, how: str) -> str:
    """The folder of ais_bench outputs a postprocess script reads."""
    if not os.path.isdir(folder):
        raise TensorFileError(f"{folder}: output folder not found; {how}")
    return folder


AIS_BENCH_COMMAND = ("python3 -m ais_bench --model MODEL.om --input <the --save_bin folders> --output OUT "
                     "--output_dirname result")


def require_outputs(folder: str, files, how: str) -> None:
    """A postprocess folder with no model outputs in it would score nothing (eval_wer: nan, exit 0): refuse it."""
    if not files:
        raise TensorFileError(f"{folder}: no model outputs (<stem>_0.bin) in this folder; {how}: ais_bench writes "
                              f"them (`{AIS_BENCH_COMMAND}`), or `ascend-asr infer --save-outputs bin`")


def preprocess_exit_status(summary, listed_in: str) -> int:
    """What `ascend-asr preprocess` returns: EXIT_UTTERANCES_FAILED (3) when every utterance failed, else 0."""
    import sys

    from ..runner import EXIT_UTTERANCES_FAILED

    succeeded = summary.written + getattr(summary, "resumed", 0)
    if summary.failed and not succeeded:
        print(f"[ascend-asr] error: {summary.failed} utterance(s) failed (no utterance succeeded); they are listed "
              f"in {listed_in}", file=sys.stderr, flush=True)
        return EXIT_UTTERANCES_FAILED
    return 0


def write_agg_txts(path: str, rows: list[dict]) -> None:
    """ModelZoo Jasper's agg_txts.json ({'txts', 'preds', 'logits'}), plus the file stems, so
    that outputs pair with references by name even when an utterance was skipped."""
    write_json_atomic(path, {"txts": [r["text"] for r in rows], "stems": [r["stem"] for r in rows],
                             "preds": [], "logits": []})


def stem_of_output(path: str) -> str:
    """'<dir>/000000000003_0.bin' -> '000000000003' (ais_bench: <input stem>_<output index>)."""
    return os.path.basename(path).rsplit("_", 1)[0]


def output_files(folder: str, index: int) -> list[str]:
    """ais_bench result files of output `index` (<stem>_<index>.bin), in natural order."""
    files = glob.glob(os.path.join(folder, f"*_{index}.bin"))
    return sorted(files, key=lambda p: natural_key(os.path.basename(p)))


def read_scores(path: str, n_classes: int, rows: int = 1) -> np.ndarray:
    """A raw float32 [rows, T, n_classes] score file (rows: utterances in it, batch axis first)."""
    data = np.fromfile(path, dtype=np.float32)
    if data.size == 0 or data.size % (n_classes * rows):
        raise TensorFileError(f"{path}: {data.size} float32 values is not {rows} rows of T x {n_classes} classes; "
                              "is this an output of the same model (float32, class axis last)?")
    return data.reshape(rows, -1, n_classes)
