"""Static batches: utterances padded to a compiled shape, rows padded to the batch size."""
from __future__ import annotations

import numpy as np

from .errors import ShapeError
from .profiles import BATCH, FRAMES, OUT_FRAMES, TensorSpec


def smallest_gear(frames_needed: int, compiled_frames) -> int | None:
    """The smallest compiled frame count that holds `frames_needed`, or None."""
    return next((f for f in sorted(compiled_frames) if f >= frames_needed), None)


def pick_frames(frames_needed: int, compiled_frames, batch_size: int) -> int:
    """The smallest compiled frame count that holds `frames_needed`; else an error listing them."""
    frames = smallest_gear(frames_needed, compiled_frames)
    if frames is not None:
        return frames
    shapes = ", ".join(f"{batch_size}x{f}" for f in sorted(compiled_frames))
    raise ShapeError(f"a batch needs {frames_needed} frames, more than every compiled shape (batch x frames: "
                     f"{shapes}); add a larger frame gear to the profile and convert again")


def assemble(utterances: list[dict[str, np.ndarray]], specs, batch_size: int, frames: int) -> dict[str, np.ndarray]:
    """Stack per-utterance tensors (batch axis of size 1) into one batch of `batch_size` rows.

    The frames axis is zero-padded to `frames`; missing rows repeat the first utterance (as
    ais_bench pads its last batch) and are dropped from the results.
    """
    if not 0 < len(utterances) <= batch_size:
        raise ValueError(f"{len(utterances)} utterances for a batch of {batch_size}")
    batch = {}
    for spec in specs:
        b_axis = spec.axis(BATCH)
        f_axis = spec.axis(FRAMES)
        parts = []
        for utt in utterances:
            array = utt[spec.name]
            if f_axis is not None and array.shape[f_axis] < frames:
                pad = [(0, 0)] * array.ndim
                pad[f_axis] = (0, frames - array.shape[f_axis])
                array = np.pad(array, pad)
            parts.append(array)
        parts += [parts[0]] * (batch_size - len(parts))
        batch[spec.name] = np.concatenate(parts, axis=b_axis)
    return batch


def row(outputs: dict[str, np.ndarray], spec: TensorSpec, index: int) -> np.ndarray:
    """One utterance's slice of a batched output, batch axis removed."""
    return np.take(outputs[spec.name], index, axis=spec.axis(BATCH))


def time_major(scores: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A per-utterance score slice as [T, V], whatever the output's axis order."""
    dims = [d for d in spec.shape if d != BATCH]
    return scores if dims.index(OUT_FRAMES) == 0 else np.moveaxis(scores, dims.index(OUT_FRAMES), 0)


def padding_efficiency(true_frames: int, fed_frames: int) -> float | None:
    """Valid frames over the frames fed to the model (padding rows of a partial batch included)."""
    return true_frames / fed_frames if fed_frames else None


def plan_batches(rows: list[dict], compiled_frames, batch_sizes) -> list[tuple[int, int, list[dict]]]:
    """Length-sorted static batches: (frames, batch size, rows) per batch, for rows of meta.jsonl.

    Each utterance goes to the smallest compiled gear that holds its `padded_frames`, so no utterance is
    padded to a longer one's gear. Gears are visited largest first and, within a gear, utterances longest
    first (ties by stem), so the order depends only on the data. Each batch takes the largest of
    `batch_sizes` that the gear's remaining utterances fill; a remainder smaller than every batch size
    goes in one batch of the smallest (its missing rows padded as `assemble` does). Rows that fit no gear
    raise ShapeError: check them first (`pick_frames`)."""
    sizes = sorted(set(batch_sizes), reverse=True)
    if not sizes or sizes[-1] < 1:
        raise ValueError(f"batch sizes {batch_sizes!r}: give at least one positive batch size")
    groups: dict[int, list[dict]] = {}
    for r in rows:
        groups.setdefault(pick_frames(r["padded_frames"], compiled_frames, sizes[-1]), []).append(r)
    plan = []
    for frames in sorted(groups, reverse=True):
        group = sorted(groups[frames], key=lambda r: (-r["frames"], r["stem"]))
        while group:
            size = next((b for b in sizes if b <= len(group)), sizes[-1])
            plan.append((frames, size, group[:size]))
            group = group[size:]
    return plan
