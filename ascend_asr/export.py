"""PyTorch -> ONNX export with real (traced-through) lengths, checked by onnx.checker."""
from __future__ import annotations

import os
import warnings

import onnx
import torch

from .tensor_files import atomic_path

OPSET = 13  # ATC accepts ONNX opsets 11-15 in CANN 8.x (9-18 in 7.0); 13 is inside both ranges


def export_onnx(model: torch.nn.Module, path: str, opset: int = OPSET, example_frames: int = 256) -> str:
    """Export `model` (eval mode) with batch and time axes dynamic; returns `path`.

    The model declares `input_names`, `output_names`, `example_inputs(batch, frames)` and
    `dynamic_axes`; the export traces with two utterances of different lengths so that no
    length can be folded into a constant.
    """
    model = model.train(False)  # inference mode
    inputs = model.example_inputs(batch=2, frames=example_frames)
    lengths = inputs[-1]
    lengths[-1] = max(1, int(lengths[0]) // 2)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: ATC-friendly ops
        # Models build their LSTM initial states from the input's batch size, so any batch size works.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(model, inputs, tmp, input_names=list(model.input_names),
                          output_names=list(model.output_names), dynamic_axes=model.dynamic_axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
        onnx.checker.check_model(tmp)
    return path
