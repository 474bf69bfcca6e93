"""The session interface every runtime backend implements, and the pipelined loop over it."""
from __future__ import annotations

import abc
import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timings:
    """Milliseconds per executed batch, as ais_bench reports them."""

    compute_ms: list = field(default_factory=list)
    h2d_ms: list = field(default_factory=list)
    d2h_ms: list = field(default_factory=list)


class Pending(abc.ABC):
    """A submitted batch; result() waits for it and returns its outputs by name."""

    @abc.abstractmethod
    def result(self) -> dict[str, np.ndarray]:
        ...


class Done(Pending):
    def __init__(self, outputs: dict[str, np.ndarray]):
        self._outputs = outputs

    def result(self) -> dict[str, np.ndarray]:
        return self._outputs


class Session(abc.ABC):
    """One loaded model: describe it, run batches (or submit them), report timings, close."""

    name: str = "abstract"
    # batches whose timing could not be read, per timing block (a timing failure never fails a batch)
    missing_timings: dict = {}
    fallback: bool = False
    mode: str = "sync"
    max_in_flight: int = 1  # batches that may be on the device at once (2+ when asynchronous)

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

    def submit(self, feeds: dict[str, np.ndarray]) -> Pending:
        """Start one batch; synchronous backends finish it before returning."""
        return Done(self.run(feeds))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_pipelined(session: Session, batches: Iterable[tuple[dict, object]],
                  consume: Callable[[object, dict], None]) -> None:
    """Submit each (feeds, context) and call consume(context, outputs) in submission order.

    Up to session.max_in_flight batches stay on the device, so the host work of producing the
    next batch (the `batches` iterator) and of consuming the previous one overlaps device work.
    """
    in_flight = collections.deque()
    for feeds, context in batches:
        in_flight.append((session.submit(feeds), context))
        if len(in_flight) >= session.max_in_flight:
            pending, ctx = in_flight.popleft()
            consume(ctx, pending.result())
    while in_flight:
        pending, ctx = in_flight.popleft()
        consume(ctx, pending.result())
