"""PyTorch -> ONNX export with real (traced-through) lengths, checked by onnx.checker."""
from __future__ import annotations

import os
import warnings

import onnx
import torch

from .tensor_files import atomic_path

OPSET = 13  # ATC accepts ONNX opsets 11-15 in CANN 8.x (9-18 in 7.0); 13 is inside both ranges
OPSET_RANGE = (9, 18)  # what some CANN release's ATC accepts (9-18 in CANN 7.0) and the TorchScript exporter writes
OPSET_CANN8 = (11, 15)  # what CANN 8.x's ATC accepts


def check_opset(opset) -> int:
    """An opset ATC can take: 9-18 (CANN 7.0), 11-15 for CANN 8.x; anything else is refused before exporting."""
    from .errors import OptionError

    if isinstance(opset, bool) or not isinstance(opset, int) or not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise OptionError(f"--opset {opset!r}: ATC accepts ONNX opsets {OPSET_CANN8[0]}-{OPSET_CANN8[1]} in CANN "
                          f"8.x ({OPSET_RANGE[0]}-{OPSET_RANGE[1]} in CANN 7.0); pass one of those, or leave "
                          f"--opset out for {OPSET}")
    return opset


def export_onnx(model: torch.nn.Module, path: str, opset: int = OPSET, example_frames: int = 256) -> str:
    """Export `model` (eval mode) with batch and time axes dynamic; returns `path`.

    The model declares `input_names`, `output_names`, `example_inputs(batch, frames)` and
    `dynamic_axes`; the export traces with two utterances of different lengths so that no
    length can be folded into a constant.
    """
    check_opset(opset)
    model = model.train(False)  # inference mode
    inputs = model.example_inputs(batch=2, frames=example_frames)
    lengths = inputs[-1]
    lengths[-1] = max(1, int(lengths[0]) // 2)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: ATC-friendly ops
        # Models build their LSTM initial states from the input's batch size, so any batch size works.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        try:
            torch.onnx.export(model, inputs, tmp, input_names=list(model.input_names),
                              output_names=list(model.output_names), dynamic_axes=model.dynamic_axes,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
            onnx.checker.check_model(tmp)
        except Exception as exc:  # torch.onnx errors carry the whole graph: keep the first line
            from .errors import ExportError

            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ExportError(f"{path}: the ONNX exporter failed at opset {opset} ({type(exc).__name__}: "
                              f"{first[:200]}); export with the default --opset {OPSET}, or report the model "
                              "config that fails") from None
    return path
