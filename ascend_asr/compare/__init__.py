"""`ascend-asr compare`: two forms of one model (PyTorch checkpoint, ONNX, optimised ONNX, bundle on a backend)
run over the same utterances, compared output by output and, with --layers, tensor by tensor.

    python -m ascend_asr.compare A B --input prep/ [--layers] [--dump DIR] [--json out.json]

sources.py (what A and B can be), layers.py (exposing intermediate tensors), matching.py (which tensor is which),
comparison.py (the run and the metrics, from ascend_asr.parity), dump.py (msit's npy layout), report.py (tables),
cli.py (the command line).
"""
from .cli import main
from .comparison import CompareOptions, compare

__all__ = ["CompareOptions", "compare", "main"]
