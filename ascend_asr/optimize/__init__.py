"""`ascend-asr optimize`: gated optimisation of an exported ONNX (see pipeline.py); the speed table (table.py)."""
from .cli import main
from .gate import GateError, GateResult
from .pipeline import STEPS, OptimizeOptions, optimize

__all__ = ["GateError", "GateResult", "OptimizeOptions", "STEPS", "main", "optimize"]
