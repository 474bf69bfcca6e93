"""A LibriSpeech-like duration mix made of real speech, for throughput measurements.

    python -m ascend_asr.recipes.duration_mix --speech ../shared/data/speech --count 300 --seed 0 --output mix

Durations are drawn lognormal (median 6 s, 5th percentile about 1.7 s, 95th about 20 s, as LibriSpeech's
test sets), clipped to [MIN_SECONDS, MAX_SECONDS]. Each utterance concatenates real clips (the shared
speech folder's manifest.tsv and fsdd.tsv: recordings with transcripts, licences per row there) separated by
short silences up to its drawn duration; its text is the clips' transcripts in order. Written as 16 kHz
16-bit mono WAV under OUTPUT/audio/ plus OUTPUT/manifest.tsv (path, text, duration, source). The same seed
gives the same mix. The audio is generated data: keep it out of version control.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from statistics import NormalDist

import numpy as np

from ..datasets import BadEntry, read_manifest
from ..errors import ManifestError
from ..runner import run

MEDIAN_SECONDS = 6.0
SIGMA = 0.75  # ln(20/6)/1.645 = 0.73 and ln(6/1.7)/1.645 = 0.77: 5th percentile 1.75 s, 95th 20.6 s
MIN_SECONDS = 0.5
MAX_SECONDS = 35.0
SAMPLE_RATE = 16000
GAP_SECONDS = (0.1, 0.4)  # silence between two clips
SENTENCE_SHARE = 0.5  # chance of taking a sentence (manifest.tsv) rather than a digit (fsdd.tsv) when both fit
SOURCES = ("manifest.tsv", "fsdd.tsv")


def draw_durations(count: int, seed: int = 0) -> np.ndarray:
    """`count` durations in seconds: lognormal(ln MEDIAN_SECONDS, SIGMA), clipped to [MIN_SECONDS, MAX_SECONDS].

    Stratified: one draw from each of `count` equal-probability slices of the distribution, in a random
    order, so that even a few hundred draws have the target's percentiles (independent draws of 300 put the
    95th percentile anywhere from 16 to 23 s).
    """
    rng = np.random.default_rng(seed)
    u = (rng.permutation(count) + rng.uniform(size=count)) / count
    z = np.array([NormalDist().inv_cdf(float(min(max(v, 1e-12), 1 - 1e-12))) for v in u])
    return np.clip(np.exp(math.log(MEDIAN_SECONDS) + SIGMA * z), MIN_SECONDS, MAX_SECONDS)


def read_clips(speech_dir: str) -> list[tuple[str, str, float, str]]:
    """(audio path, text, duration, kind) of every clip with a transcript and a duration in the speech folder."""
    clips = []
    for name in SOURCES:
        path = os.path.join(speech_dir, name)
        if not os.path.isfile(path):
            raise ManifestError(f"{path}: not found; give --speech the shared speech folder (with {' and '.join(SOURCES)})")
        for entry in read_manifest(path):
            if isinstance(entry, BadEntry):
                raise ManifestError(f"{entry.source}: {entry.message}")
            if entry.text.strip() and entry.duration:
                clips.append((entry.audio_path, entry.text.strip(), float(entry.duration),
                              "digit" if name == "fsdd.tsv" else "sentence"))
    if not clips:
        raise ManifestError(f"{speech_dir}: no clips with a transcript and a duration in {', '.join(SOURCES)}")
    return clips


def plan_mix(clips: list, count: int, seed: int = 0) -> list[dict]:
    """Which clips make each utterance, and the silences between them; no audio is read.

    Clips are added while they fit in what is left of the drawn duration (a sentence or a digit, at random);
    the remainder becomes extra silence spread over the gaps (at the end for a single clip). A draw shorter
    than every clip takes the shortest clip, so its utterance is slightly longer than drawn.
    """
    rng = np.random.default_rng([seed, 1])
    durations = draw_durations(count, seed)
    kinds = {k: [i for i, c in enumerate(clips) if c[3] == k] for k in ("sentence", "digit")}
    shortest = min(range(len(clips)), key=lambda i: clips[i][2])
    plans = []
    for n, target in enumerate(durations):
        chosen, gaps, total = [], [], 0.0
        while True:
            gap = rng.uniform(*GAP_SECONDS) if chosen else 0.0
            room = target - total - gap
            pools = [[i for i in kinds[k] if clips[i][2] <= room] for k in ("sentence", "digit")]
            pools = [p for p in pools if p]
            if not pools:
                break
            pool = pools[0] if len(pools) == 1 or rng.random() < SENTENCE_SHARE else pools[1]
            chosen.append(int(pool[rng.integers(len(pool))]))
            gaps.append(gap)
            total += gap + clips[chosen[-1]][2]
        if not chosen:
            chosen, gaps, total = [shortest], [0.0], clips[shortest][2]
        leftover = max(0.0, float(target) - total)
        if len(chosen) > 1:
            gaps = [0.0] + [g + leftover / (len(chosen) - 1) for g in gaps[1:]]
            tail = 0.0
        else:
            tail = leftover
        plans.append({"id": f"mix_{n:05d}", "drawn": float(target), "clips": chosen, "gaps": gaps, "tail": tail})
    return plans


def render(plan: dict, clips: list, cache: dict) -> np.ndarray:
    """The utterance's samples at 16 kHz: its clips (resampled as the loader does) with silence between."""
    from ..audio import load_audio

    parts = []
    for index, gap in zip(plan["clips"], plan["gaps"]):
        if index not in cache:
            cache[index] = load_audio(clips[index][0], SAMPLE_RATE)
        parts += [np.zeros(int(round(gap * SAMPLE_RATE)), np.float32), cache[index].astype(np.float32)]
    parts.append(np.zeros(int(round(plan["tail"] * SAMPLE_RATE)), np.float32))
    return np.concatenate(parts)


def make_mix(speech_dir: str, output: str, count: int = 300, seed: int = 0, out=sys.stdout) -> str:
    """Write the mix (WAV files and manifest.tsv) under `output`; returns the manifest's path."""
    import soundfile as sf

    clips = read_clips(speech_dir)
    plans = plan_mix(clips, count, seed)
    audio_dir = os.path.join(output, "audio")
    os.makedirs(audio_dir, exist_ok=True)
    cache, lines, total = {}, ["path\ttext\tduration\tsource"], 0.0
    for plan in plans:
        samples = render(plan, clips, cache)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak > 1.0:
            samples = samples / peak
        rel = f"audio/{plan['id']}.wav"
        sf.write(os.path.join(output, rel), samples, SAMPLE_RATE, subtype="PCM_16")
        text = " ".join(clips[i][1] for i in plan["clips"])
        duration = len(samples) / SAMPLE_RATE
        total += duration
        lines.append(f"{rel}\t{text}\t{duration:.3f}\tduration mix (seed {seed}) of {len(plan['clips'])} clips "
                     f"from {os.path.basename(os.path.abspath(speech_dir))}")
    manifest = os.path.join(output, "manifest.tsv")
    tmp = manifest + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, manifest)
    d = np.array([p["drawn"] for p in plans])
    print(f"[ascend-asr] {count} utterances, {total / 60:.1f} min of audio (drawn durations: median "
          f"{np.median(d):.2f} s, 5th percentile {np.percentile(d, 5):.2f} s, 95th {np.percentile(d, 95):.2f} s, "
          f"max {d.max():.2f} s): {manifest}", file=out)
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.recipes.duration_mix", description=__doc__.splitlines()[0])
    p.add_argument("--speech", required=True, help="the shared speech folder (manifest.tsv, fsdd.tsv and their audio)")
    p.add_argument("--count", type=int, default=300, help="utterances (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", required=True, help="folder for audio/*.wav and manifest.tsv")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count: give at least 1")
    make_mix(args.speech, args.output, args.count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
