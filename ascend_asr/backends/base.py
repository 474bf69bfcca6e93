"""The session interface every runtime backend implements."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timings:
    """Milliseconds per executed batch, as ais_bench reports them."""

    compute_ms: list = field(default_factory=list)
    h2d_ms: list = field(default_factory=list)
    d2h_ms: list = field(default_factory=list)


class Session(abc.ABC):
    """One loaded model: describe it, run batches, report timings, close."""

    name: str = "abstract"
    fallback: bool = False

    def __init__(self):
        self.timings = Timings()

    @abc.abstractmethod
    def input_names(self) -> list[str]:
        ...

    @abc.abstractmethod
    def output_names(self) -> list[str]:
        ...

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; outputs come back by name, never by position."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
