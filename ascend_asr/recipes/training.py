"""CTC training on cached features: length-bucketed batches, SpecAugment, AdamW, warmup + cosine.

Seeded and single-process (torch threads fixed), so a rerun on the same machine repeats the run.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..decoding import OutputLayout, decode_utterance, make_decoder
from ..metrics import score
from ..prep import utterance_tensors
from ..profiles import Profile
from ..families.base import Family


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    epochs: int = 20
    batch_frames: int = 12000
    learning_rate: float = 3e-3
    warmup_steps: int = 300
    weight_decay: float = 1e-3
    grad_clip: float = 5.0
    freq_masks: int = 2
    freq_mask_share: float = 0.15  # widest mask, as a share of the feature dimension
    time_masks: int = 2
    time_mask_share: float = 0.05  # widest mask, as a share of the utterance
    max_steps: int | None = None   # stop early (tests, smoke runs)


def make_batches(lengths: list[int], batch_frames: int, rng: random.Random) -> list[list[int]]:
    """Utterances of similar length together (lengths jittered each epoch), batches in random order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] * rng.uniform(0.9, 1.1))
    batches, current, longest = [], [], 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if current and longest_if_added * (len(current) + 1) > batch_frames:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def spec_augment(feats: np.ndarray, settings: TrainSettings, rng: np.random.Generator) -> np.ndarray:
    """Zero (the normalised mean) random feature bands and time spans of [F, T] features."""
    feats = feats.copy()
    n_feats, frames = feats.shape
    for _ in range(settings.freq_masks):
        width = int(rng.integers(0, int(n_feats * settings.freq_mask_share) + 1))
        start = int(rng.integers(0, n_feats - width + 1))
        feats[start:start + width] = 0
    for _ in range(settings.time_masks):
        width = int(rng.integers(0, int(frames * settings.time_mask_share) + 1))
        start = int(rng.integers(0, frames - width + 1))
        feats[:, start:start + width] = 0
    return feats


def batch_tensors(profile: Profile, feats: list[np.ndarray], frames: int) -> list[torch.Tensor]:
    """The model's inputs for a batch, in the profile's layout and order, padded to `frames`."""
    per_utt = [utterance_tensors(f.astype(np.float32), f.shape[1], profile.inputs, frames) for f in feats]
    return [torch.from_numpy(np.concatenate([u[spec.name] for u in per_utt], axis=0)) for spec in profile.inputs]


def padded_frames(profile: Profile, family: Family, longest: int) -> int:
    if not family.masks_padding:  # the smallest compiled shape that holds the batch, as inference picks it
        return min(f for f in profile.frames if f >= longest)
    align = int(profile.frontend.get("pad_align", 1))
    return align * math.ceil(longest / align) if align > 1 else longest


def greedy_transcripts(model, family: Family, profile: Profile, feats: list[np.ndarray], batch: int = 16):
    """PyTorch greedy transcripts of cached features, in order (evaluation mode)."""
    model.train(False)
    vocab = profile.vocabulary
    layout = OutputLayout.of(profile)
    decode = make_decoder(vocab, layout.scores_are_probs)
    hyps = []
    with torch.no_grad():
        for start in range(0, len(feats), batch):
            chunk = feats[start:start + batch]
            inputs = batch_tensors(profile, chunk, padded_frames(profile, family, max(f.shape[1] for f in chunk)))
            log_probs, lens = family.training_outputs(model, inputs)
            log_probs = log_probs.transpose(0, 1).numpy()
            hyps += [vocab.decode(decode_utterance(layout, decode, lp, out_length=n)[1])
                     for lp, n in zip(log_probs, lens)]
    return hyps


def train(model, family: Family, profile: Profile, feats: list[np.ndarray], texts: list[str],
          settings: TrainSettings, monitor=None, log=print) -> dict:
    """Train `model` in place; `monitor(model)` -> {name: CER} is printed after every epoch."""
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    np_rng = np.random.default_rng(settings.seed)
    vocab = profile.vocabulary
    targets = [torch.tensor(vocab.encode(t), dtype=torch.long) for t in texts]
    keep = [i for i, t in enumerate(targets) if len(t) > 0 and feats[i].shape[1] <= max(profile.frames)]
    lengths = [feats[i].shape[1] for i in keep]
    steps_per_epoch = len(make_batches(lengths, settings.batch_frames, random.Random(0)))
    total = steps_per_epoch * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)

    def lr_at(step):
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, total - settings.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    ctc = torch.nn.CTCLoss(blank=vocab.blank, reduction="mean", zero_infinity=True)
    log(f"[recipe] training {profile.name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{len(keep)} utterances, {steps_per_epoch} steps per epoch, {total} steps")
    step, start, history = 0, time.perf_counter(), []
    for epoch in range(settings.epochs):
        model.train(True)
        losses = []
        for batch in make_batches(lengths, settings.batch_frames, rng):
            if step >= total:
                break
            idx = [keep[i] for i in batch]
            chunk = [spec_augment(feats[i], settings, np_rng) for i in idx]
            inputs = batch_tensors(profile, chunk, padded_frames(profile, family, max(f.shape[1] for f in chunk)))
            log_probs, out_lens = family.training_outputs(model, inputs)
            tgt = [targets[i] for i in idx]
            loss = ctc(log_probs.float(), torch.cat(tgt), out_lens, torch.tensor([len(t) for t in tgt]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
        entry = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(losses)) if losses else None,
                 "minutes": (time.perf_counter() - start) / 60}
        if monitor is not None:
            entry.update(monitor(model))
        history.append(entry)
        log("[recipe] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        if step >= total:
            break
    model.train(False)
    return {"epoch": history[-1]["epoch"], "step": step, "history": history,
            "minutes": (time.perf_counter() - start) / 60, "learning_rate": settings.learning_rate}


def cer_of(hyps: list[str], refs: list[str]) -> float:
    return score(zip(refs, hyps)).cer
