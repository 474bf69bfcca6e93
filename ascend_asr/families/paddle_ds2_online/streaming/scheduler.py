"""Many streams at once: one batch slot per stream, each with its own LSTM states, a finished stream's slot
handed to the next utterance (its states reset to zero), one model call per step for every live slot.

Only numpy here: the step function is the backend (torch, onnxruntime, an NPU session, Paddle Inference).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .chunks import ChunkPlan

# step(audio_chunk [S, W, F], audio_chunk_lens [S] int64, h [L, S, H], c [L, S, H]) -> (probs, lens, h, c)
Step = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple]


@dataclass
class StreamResult:
    key: str
    probs: np.ndarray          # [T', C]: every chunk's valid frames, in order
    frames: int                # feature frames of the utterance
    chunks: int
    final_h: np.ndarray        # [L, H] after the stream's last chunk
    final_c: np.ndarray


@dataclass
class StreamStats:
    step_seconds: list = field(default_factory=list)  # one entry per model call (all live slots at once)
    live_slots: list = field(default_factory=list)

    def summary(self, audio_seconds: float) -> dict:
        ms = np.asarray(self.step_seconds) * 1000.0
        total = float(np.sum(self.step_seconds))
        return {"steps": len(ms), "chunk_latency_ms": {"mean": float(ms.mean()) if len(ms) else 0.0,
                                                       "p50": float(np.percentile(ms, 50)) if len(ms) else 0.0,
                                                       "p95": float(np.percentile(ms, 95)) if len(ms) else 0.0},
                "model_seconds": total, "audio_seconds": audio_seconds,
                "rtf": total / audio_seconds if audio_seconds else None,
                "mean_live_slots": float(np.mean(self.live_slots)) if self.live_slots else 0.0}


class _Slot:
    def __init__(self, key: str, feats: np.ndarray, chunks: int):
        self.key, self.feats, self.chunks, self.index, self.probs = key, feats, chunks, 0, []


def run_streams(utterances: Iterable[tuple[str, np.ndarray]], step: Step, plan: ChunkPlan, slots: int,
                layers: int, hidden: int, feature_size: int,
                on_result: Callable[[StreamResult], None] | None = None) -> tuple[list[StreamResult], StreamStats]:
    """Stream every (key, features [T, F]) through `step` on `slots` batch slots; results in finishing order."""
    pending = iter(utterances)
    live: list[_Slot | None] = [None] * slots
    h = np.zeros((layers, slots, hidden), dtype=np.float32)
    c = np.zeros_like(h)
    results, stats = [], StreamStats()

    def refill(i: int) -> None:
        item = next(pending, None)
        live[i] = None if item is None else _Slot(item[0], item[1], plan.num_chunks(len(item[1])))
        h[:, i] = 0.0
        c[:, i] = 0.0

    for i in range(slots):
        refill(i)
    while any(s is not None for s in live):
        batch = np.zeros((slots, plan.window, feature_size), dtype=np.float32)
        lens = np.zeros(slots, dtype=np.int64)
        for i, s in enumerate(live):
            if s is not None:
                batch[i], lens[i] = plan.chunk(s.feats, s.index)
        start = time.perf_counter()
        probs, out_lens, h_new, c_new = step(batch, lens, h, c)
        stats.step_seconds.append(time.perf_counter() - start)
        stats.live_slots.append(sum(s is not None for s in live))
        h[...], c[...] = h_new, c_new
        for i, s in enumerate(live):
            if s is None:
                continue
            s.probs.append(np.asarray(probs[i, :int(out_lens[i])]))
            s.index += 1
            if s.index == s.chunks:
                result = StreamResult(s.key, np.concatenate(s.probs), len(s.feats), s.chunks, h[:, i].copy(),
                                      c[:, i].copy())
                results.append(result)
                if on_result:
                    on_result(result)
                refill(i)
    return results, stats
