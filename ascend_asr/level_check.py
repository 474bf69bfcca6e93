"""Is a model's frontend level-sensitive? Features and transcripts of the same audio at lower levels.

    python -m ascend_asr.level_check --fsdd ../shared/data/speech [--gains 1,0.1] [--utterances 40]

For each shipped model: (1) its frontend's features of held-out sentences scaled by g in floating point (the
frontend alone) against gain 1: parity.py's cosine and relative Euclidean distance, worst utterance; (2) greedy
WER/CER of the model on the same sentences at each gain, written as 16-bit WAV as a quiet recording is, through
the deployment path (decoding_eval_data: export, bundle, preprocess, onnxruntime). A frontend whose
normalisation absorbed the level would give identical features (cosine 1) and identical transcripts.
DeepSpeech2's frontend takes log1p of the magnitude spectrogram before its per-utterance normalisation: a gain g
turns log1p(S) into log1p(g S), which is not log1p(S) plus a constant (for small S it is about g S), so the
normalisation cannot remove it. Jasper's log-mel (log(mel + 2^-24), then per-feature normalisation) turns a gain
into an added constant that the normalisation removes, except in bins near the guard. The LSTM's global CMVN
(fixed statistics) removes nothing.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def scaled_manifest(manifest: str, gain: float, work_dir: str, limit: int) -> str:
    """A copy of `manifest`'s first `limit` clips scaled by `gain` (16-bit WAV), and its manifest."""
    import soundfile as sf

    folder = os.path.join(work_dir, f"gain_{gain:g}")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(work_dir, f"sentences_gain_{gain:g}.tsv")
    with open(manifest, encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    lines = ["path\tduration\ttext"]
    for line in rows[:limit]:
        path, duration, text = line.split("\t")[:3]
        target = os.path.join(folder, os.path.basename(path).rsplit(".", 1)[0] + ".wav")
        if not os.path.isfile(target):
            samples, rate = sf.read(path, dtype="float64")
            sf.write(target, samples * gain, rate, subtype="PCM_16")
        lines.append(f"{target}\t{duration}\t{text}")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return out


def feature_parity(profile_name: str, manifest: str, gains, limit: int) -> dict:
    """Features of the clips scaled in floating point (no 16-bit requantisation: the frontend alone) against
    the unscaled ones: parity.py's metrics of the worst utterance."""
    from .audio import load_audio
    from .featurize import featurize
    from .frontends import build_frontend
    from .parity import compare_tensors, pooled
    from .profiles import load_profile

    frontend = build_frontend(load_profile(profile_name).frontend)
    paths = [line.split("\t")[0] for line in open(manifest, encoding="utf-8").read().splitlines()[1:limit + 1]]
    clips = [load_audio(path, frontend.params.sample_rate) for path in paths]
    out = {}
    for g in gains:
        if g == 1.0:
            continue
        metrics = []
        for samples in clips:
            a, b = featurize(frontend, samples), featurize(frontend, samples * np.float32(g))
            if a.valid == b.valid:
                metrics.append(compare_tensors(a.feats[:, :a.valid], b.feats[:, :b.valid]))
        pool = pooled(metrics)
        out[g] = {"cosine": pool.cosine, "relative_euclidean_distance": pool.red, "utterances": len(metrics)}
    return out


def main(argv=None) -> int:
    from .decoding_eval_data import build_sets, model_outputs
    from .decoding_eval import MODELS, transcripts
    from .metrics import percent, score
    from .transcribe import DecoderSettings

    p = argparse.ArgumentParser(prog="python -m ascend_asr.level_check", description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", required=True)
    p.add_argument("--work-dir", default=os.path.expanduser("~/.cache/ascend_asr/decoding_eval"))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--gains", default="1,0.1")
    p.add_argument("--utterances", type=int, default=40)
    args = p.parse_args(argv)
    gains = sorted({1.0, *(float(g) for g in args.gains.split(","))}, reverse=True)
    sets = build_sets(args.fsdd, os.path.join(args.work_dir, "data"))
    level_dir = os.path.join(args.work_dir, "level")
    manifests = {g: scaled_manifest(sets["sentences_seen_voices"], g, level_dir, args.utterances) for g in gains}
    for model in (m for m in args.models.split(",") if m):
        parity = feature_parity(model, sets["sentences_seen_voices"], gains, args.utterances)
        data = model_outputs(model, {f"level_gain_{g:g}": m for g, m in manifests.items()},
                             os.path.join(args.work_dir, "outputs"))
        vocab = data["profile"].vocabulary
        for g in gains:
            result = score(transcripts(data["sets"][f"level_gain_{g:g}"], vocab, DecoderSettings()), warn=False)
            features = "" if g == 1.0 else (f"; features vs gain 1: cosine {parity[g]['cosine']:.4f}, relative "
                                             f"Euclidean distance {parity[g]['relative_euclidean_distance']:.4f}")
            print(f"[level] {model} gain {g:g} ({20 * np.log10(g):+.0f} dB): greedy WER {percent(result.wer)} "
                  f"CER {percent(result.cer)}{features}")
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
