"""Gear planning: the frame gears (ATC --dynamic_dims) and batch sizes that minimise padded compute on a dataset.

Pure functions over frame counts. The cost model, which every function here shares:

* Each utterance needs `frames` input frames (the frontend's aligned count, as preprocess pads it) and is fed
  in the smallest gear that holds it; an utterance longer than every gear is dropped (counted, not fed).
* Within a gear, utterances are batched length-sorted: each batch takes the largest batch size that the
  gear's remaining utterances fill, and a remainder smaller than every batch size goes in one batch of the
  smallest, its missing rows padded (`batch_rows`; the rule of `batching.plan_batches`). For a set of batch
  sizes where each divides the next (1,4,8,16) this is also the fewest padded rows any batching could give.
* The cost of a plan is the total padded frames fed to the model:

      padded = sum over gears g of  g * rows(n_g)       (rows(n) = n's rows after batch padding)

  with ties broken by the fewest device calls (batches), then the fewest gears and batch sizes (each one
  costs ATC compile time and device memory).
* Compute is assumed proportional to padded frames, so predicted utterances per second relative to another
  plan are (utterances / padded frames) over (its utterances / its padded frames). Per-call overheads and
  a device's better efficiency at larger batches are not modelled: they favour batching further, never
  change which gears hold which utterances at a given batch size.

`plan_gears` finds the exact optimum by dynamic programming over the sorted distinct lengths (an optimal
gear always equals the longest utterance it holds, so candidate gears are the distinct lengths), for every
subset of the candidate batch sizes.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .errors import ProfileError

MAX_GEARS = 100  # ATC --dynamic_dims accepts at most 100 gears
MIN_GEARS = 2
DEFAULT_GEARS = 16
MAX_BATCH_CANDIDATES = 8  # every subset of the candidates is planned: 255 dynamic programs at most


@dataclass(frozen=True)
class PlanCost:
    """What feeding `frames` through `gears` at `batch_sizes` costs under the module's model."""
    gears: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    utterances: int  # fed (held by a gear)
    dropped: int  # longer than every gear
    padded_frames: int  # frames fed, batch-padding rows included
    true_frames: int  # valid frames of the utterances fed
    calls: int  # batches (device calls)
    per_gear: tuple[tuple[int, int], ...]  # (gear, utterances it holds)

    @property
    def efficiency(self) -> float:
        """Padding efficiency: valid frames over padded frames fed."""
        return self.true_frames / self.padded_frames if self.padded_frames else 0.0

    @property
    def throughput(self) -> float:
        """Utterances per padded frame: predicted utterances per second, up to the device's frames per second."""
        return self.utterances / self.padded_frames if self.padded_frames else 0.0

    def speedup_over(self, other: "PlanCost") -> float:
        """Predicted utterances per second of this plan over `other`'s (compute proportional to padded frames)."""
        return self.throughput / other.throughput if other.throughput else math.inf


def align_up(frames: int, align: int) -> int:
    return frames if align <= 1 else align * -(-int(frames) // align)


def batch_rows(n: int, batch_sizes) -> tuple[int, int]:
    """(rows, batches) for `n` utterances of one gear: batches of the largest size that the remaining
    utterances fill, and a remainder below every size in one batch of the smallest (rows padded)."""
    sizes = sorted(set(batch_sizes), reverse=True)
    rows = calls = 0
    for size in sizes:
        k, n = divmod(n, size)
        rows, calls = rows + k * size, calls + k
    if n:
        rows, calls = rows + sizes[-1], calls + 1
    return rows, calls


def evaluate(frames, gears, batch_sizes=(1,), valid=None) -> PlanCost:
    """The cost of feeding utterances needing `frames` (aligned) through `gears` at `batch_sizes`;
    `valid` are their true frame counts for the padding efficiency (default: `frames`)."""
    frames = np.asarray(frames, dtype=np.int64)
    valid = frames if valid is None else np.asarray(valid, dtype=np.int64)
    gears = tuple(sorted(set(int(g) for g in gears)))
    sizes = tuple(sorted(set(int(b) for b in batch_sizes)))
    slot = np.searchsorted(np.asarray(gears), frames, side="left")  # index of the smallest gear >= frames
    held = slot < len(gears)
    padded = calls = 0
    per_gear = []
    for i, g in enumerate(gears):
        n = int(np.count_nonzero(slot == i))
        rows, k = batch_rows(n, sizes) if n else (0, 0)
        padded, calls = padded + g * rows, calls + k
        per_gear.append((g, n))
    return PlanCost(gears, sizes, int(held.sum()), int((~held).sum()), int(padded), int(valid[held].sum()),
                    int(calls), tuple(per_gear))


def pad_to_max(frames, max_frames: int | None = None, valid=None, batch_size: int = 1) -> PlanCost:
    """ModelZoo's strategy: every utterance padded to one shape (default: the longest), `batch_size` rows."""
    return evaluate(frames, [max_frames or int(np.max(frames))], [batch_size], valid)


def uniform_gears(max_frames: int, count: int, align: int = 1) -> tuple[int, ...]:
    """`count` evenly spaced gears up to `max_frames`, each aligned up."""
    return tuple(sorted({align_up(math.ceil(max_frames * (i + 1) / count), align) for i in range(count)}))


def check_budget(max_gears) -> int:
    if isinstance(max_gears, bool) or not isinstance(max_gears, (int, np.integer)) \
            or not MIN_GEARS <= max_gears <= MAX_GEARS:
        raise ProfileError(f"gear budget {max_gears!r}: give a whole number from {MIN_GEARS} to {MAX_GEARS} "
                           f"(ATC --dynamic_dims allows at most {MAX_GEARS} gears; each one costs compile time "
                           "and device memory), e.g. --max-gears 16")
    return int(max_gears)


def plan_gears(frames, align: int = 1, max_gears: int = DEFAULT_GEARS, batch_sizes=(1,), valid=None,
               cover: int | None = None) -> PlanCost:
    """The gears (at most `max_gears`, multiples of `align`, the largest holding the longest utterance and
    at least `cover` frames) and the subset of the candidate `batch_sizes` that minimise the padded frames
    fed (see the module's docstring for the cost and its tie-breaks), found exactly."""
    max_gears = check_budget(max_gears)
    candidates = tuple(sorted(set(int(b) for b in batch_sizes)))
    if not candidates or candidates[0] < 1:
        raise ProfileError(f"batch sizes {batch_sizes!r}: give at least one positive batch size")
    if len(candidates) > MAX_BATCH_CANDIDATES:
        raise ProfileError(f"{len(candidates)} candidate batch sizes {list(candidates)}: give at most "
                           f"{MAX_BATCH_CANDIDATES} (every subset of them is planned)")
    aligned = np.asarray([align_up(int(f), align) for f in frames], dtype=np.int64)
    if aligned.size == 0:
        raise ProfileError("no utterances to plan gears for: the dataset gave no frame counts")
    if aligned.min() <= 0:
        raise ProfileError(f"frame counts must be positive; found {int(aligned.min())}")
    lengths, counts = np.unique(aligned, return_counts=True)
    values = lengths.copy()
    if cover is not None and align_up(int(cover), align) > int(values[-1]):
        # the top gear must hold `cover`: a candidate length with no utterance, so the DP may give it a gear of
        # its own (no cost) or merge the longest utterances into it, whichever the budget makes cheaper
        values = np.append(values, align_up(int(cover), align))
        counts = np.append(counts, 0)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    best = None
    for r in range(1, len(candidates) + 1):
        for sizes in itertools.combinations(candidates, r):
            gears, key = _optimal_gears(values, cumulative, sizes, max_gears)
            rank = (key, len(gears), len(sizes))
            if best is None or rank < best[0]:
                best = (rank, gears, sizes)
    _, gears, sizes = best
    return evaluate(aligned, gears, sizes, valid)


def _batch_rows_array(n: np.ndarray, sizes) -> tuple[np.ndarray, np.ndarray]:
    """`batch_rows` over an array of utterance counts."""
    n = np.asarray(n, dtype=np.int64)
    rows, calls = np.zeros_like(n), np.zeros_like(n)
    for size in sorted(set(sizes), reverse=True):
        k, n = np.divmod(n, size)
        rows, calls = rows + k * size, calls + k
    remainder = n > 0
    return rows + remainder * min(sizes), calls + remainder


def _optimal_gears(values: np.ndarray, cumulative: np.ndarray, sizes, max_gears: int):
    """Dynamic program: best[k][j] = the least cost of holding the j shortest distinct lengths in k gears,
    the last gear at values[j-1]; cost(i, j) = values[j-1] * rows(cumulative[j] - cumulative[i]). Costs are
    compared as padded frames, then calls, as one integer key: padded * (N + 1) + calls (exact in int64, or
    in Python integers for datasets too large for it)."""
    m, n_total = len(values), int(cumulative[-1])
    scale = n_total + 1
    bound = (int(values.max()) * (n_total + m * max(sizes)) + 1) * scale
    exact64 = bound < 2 ** 60
    inf = 2 ** 61 if exact64 else math.inf  # inf + inf still fits in int64
    dtype = np.int64 if exact64 else object
    upper = np.triu(np.ones((m + 1, m + 1), dtype=bool), k=1)  # group i..j-1 needs i < j
    count = np.where(upper, cumulative[None, :] - cumulative[:, None], 0)
    table_rows, table_calls = _batch_rows_array(np.arange(n_total + 1), sizes)  # for every group size
    rows, calls = table_rows[count], table_calls[count]
    del count
    gear_of = np.concatenate([[0], values]).astype(dtype)
    cost = np.where(upper, gear_of[None, :] * rows.astype(dtype) * scale + calls.astype(dtype), inf).astype(dtype)
    del rows, calls, upper
    previous = np.full(m + 1, inf, dtype=dtype)
    previous[0] = 0
    columns = np.arange(m + 1)
    choice = np.zeros((min(max_gears, m) + 1, m + 1), dtype=np.int64)
    best_key, best_k = None, 0
    total = np.empty_like(cost)
    for k in range(1, min(max_gears, m) + 1):
        np.add(previous[:, None], cost, out=total)  # both at most inf: no overflow
        choice[k] = np.argmin(total, axis=0)
        current = np.minimum(total[choice[k], columns], inf)
        current[0] = inf
        if best_key is None or current[m] < best_key:  # strictly less: the fewest gears among equals
            best_key, best_k = current[m], k
        previous = current
    gears, j = [], m
    for k in range(best_k, 0, -1):
        gears.append(int(values[j - 1]))
        j = int(choice[k][j])
    return tuple(sorted(gears)), int(best_key)
