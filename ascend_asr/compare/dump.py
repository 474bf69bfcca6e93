"""--dump DIR: each source's tensors in msit's npy dump layout, one folder per utterance.

msit's ONNX dump (Ascend/msit, msit/components/debug/compare/msquickcmp/onnx_model/onnx_dump_data.py,
`_save_dump_data`, and common/dump_data.py, `_generate_dump_data_file_name`) writes, under
`{output}/{timestamp}/`:

    dump_data/onnx/{node name}.{output index}.{timestamp in µs}.npy     one per node output
    dump_data/onnx/input_{node name}.{input index}.{timestamp}.npy       node inputs that are model inputs
    dump_data/onnx/mapping.csv                                           `{short name},{long name}` for names
                                                                         over 255 characters, saved as
                                                                         `{timestamp}{k}.npy`
    input/input_{k}.bin                                                  the model inputs, raw

where the node name has `.` and `/` replaced by `_` (msaccucmp splits file names on `.`) and an unnamed node
is called `{op_type}_{index}`. Here `{timestamp}` is the utterance's stem, and each side has its own folder:

    DIR/dump.json                         which side is which model, and each utterance's folder
    DIR/A/<stem>/dump_data/onnx/...       an ONNX source (or a bundle's ONNX on onnxruntime)
    DIR/A/<stem>/dump_data/pytorch/...    a PyTorch source: the same file pattern, named by module path (msit
                                          has no rule to match these to OM operators; they are for reading)
    DIR/A/<stem>/input/input_{k}.bin      what was fed, in the graph's input order

On a machine with an NPU: `msit debug compare -gm MODEL.onnx -om MODEL.om -i DIR/A/<stem>/input/input_0.bin,...`
reruns both sides there; with the OM's own dump (`msit debug dump`), `msit debug compare -mp NPU_DUMP
-gp DIR/A/<stem>/dump_data/onnx` compares against these files. Only float tensors are written (the ones
compared here); integer shape arithmetic is left out.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..tensor_files import write_bin, write_json_atomic, write_npy_atomic, write_text_atomic
from .sources import PYTORCH, Source

DUMP_FORMAT = "ascend-asr-compare-dump/1"
MAX_FILE_NAME_LEN = 255  # msit's limit, past which a file gets a short name and a mapping.csv line


def msit_name(name: str) -> str:
    """msit's `_to_valid_name`: '.' and '/' become '_'."""
    return name.replace(".", "_").replace("/", "_")


class DumpWriter:
    """Writes each utterance's tensors as it is compared, and the index (dump.json) at the end."""

    def __init__(self, folder: str, sources: list[Source]):
        self.folder = folder
        self.sources = sources
        self.index = {"format": DUMP_FORMAT, "layout": "msit npy dump (onnx_dump_data.py)", "sides": {},
                      "utterances": []}
        for s in sources:
            self.index["sides"][s.label] = {**s.describe(), "dumped": s.graph is not None or s.kind == PYTORCH}
        self._last_us = 0

    def _timestamp(self) -> int:
        """µs since the epoch, as msit stamps files; strictly increasing, so no two files share a name."""
        self._last_us = max(self._last_us + 1, round(time.time() * 1e6))
        return self._last_us

    def _file(self, folder: str, name: str, index: int, mapping: list) -> str:
        file_name = f"{msit_name(name)}.{index}.{self._timestamp()}.npy"
        if len(file_name) > MAX_FILE_NAME_LEN:
            short = f"{self._timestamp()}{len(mapping)}.npy"
            mapping.append(f"{short},{file_name}\n")
            file_name = short
        return os.path.join(folder, file_name)

    def write(self, stem: str, utterance_id, runs: dict) -> None:
        """runs: {label: sources.Run} of one utterance."""
        entry = {"stem": stem, "id": utterance_id, "folders": {}}
        for source in self.sources:
            run = runs[source.label]
            root = os.path.join(self.folder, source.label, stem)
            if source.graph is not None:
                self._write_onnx(source, run, root)
            elif source.kind == PYTORCH and run.tensors is not None:
                self._write_pytorch(run, root)
            else:
                continue
            entry["folders"][source.label] = os.path.relpath(root, self.folder)
        self.index["utterances"].append(entry)

    def _write_inputs(self, names, feeds: dict, root: str) -> None:
        for k, name in enumerate(names):
            array = np.asarray(feeds[name])
            write_bin(os.path.join(root, "input", f"input_{k}.bin"), array, array.dtype.name)

    def _write_onnx(self, source: Source, run, root: str) -> None:
        graph, folder, mapping = source.graph, os.path.join(root, "dump_data", "onnx"), []
        self._write_inputs(graph.graph_inputs, run.feeds, root)
        values = {**run.tensors, **run.outputs}
        for node, i, tensor in graph.node_inputs:
            write_npy_atomic(self._file(folder, "input_" + node, i, mapping), np.asarray(run.feeds[tensor]))
        for tensor in graph.order:
            if tensor in values:
                node, j = graph.producer[tensor]
                write_npy_atomic(self._file(folder, node, j, mapping), values[tensor])
        if mapping:
            write_text_atomic(os.path.join(folder, "mapping.csv"), "".join(mapping))

    def _write_pytorch(self, run, root: str) -> None:
        folder, mapping = os.path.join(root, "dump_data", "pytorch"), []
        self._write_inputs(list(run.feeds), run.feeds, root)
        for name, value in run.tensors.items():
            path, k = run.torch_run.origin[name]
            write_npy_atomic(self._file(folder, path, k, mapping), value)
        if mapping:
            write_text_atomic(os.path.join(folder, "mapping.csv"), "".join(mapping))

    def close(self) -> None:
        write_json_atomic(os.path.join(self.folder, "dump.json"), self.index)
