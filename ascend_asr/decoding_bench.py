"""Is beam decoding the bottleneck? Decoding time per utterance beside the model's onnxruntime time, one core.

    python -m ascend_asr.decoding_bench --fsdd ../shared/data/speech [--models jasper_small] [--utterances 100]

For each model, in one run and on the same utterances (the held-out sentences in seen voices, then digits):
onnxruntime with one intra-op thread runs the bundle on each prep/ tensor (batch 1, the utterance's gear, as
infer feeds it), then greedy and the lexicon beam (width 10, the shipped LM, word times and confidences
included) decode its output; every figure is the mean per utterance, after one warm-up pass (LM look-ahead
caches filled, as in a long run). Figures depend on the machine's load: rerun on a quiet one.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np


def bench_model(profile_name: str, manifests: dict, work_dir: str, utterances: int = 100, log=print) -> dict:
    from .backends import open_session
    from .batching import assemble, pick_frames, row, time_major
    from .bundle import open_bundle
    from .decoding import FrameClock, OutputLayout
    from .decoding_eval import lm_path
    from .decoding_eval_data import model_outputs
    from .prep import open_prep
    from .transcribe import DecoderSettings, make_transcriber

    model_outputs(profile_name, manifests, work_dir, log)  # bundle and prep/ made (cached)
    model_dir = os.path.join(work_dir, profile_name)
    bundle = open_bundle(os.path.join(model_dir, "bundles", f"{profile_name}_bs1.onnx"))
    layout, vocab, clock = OutputLayout.of(bundle), bundle.vocabulary, FrameClock.of(bundle)
    decoders = {name: make_transcriber(vocab, layout.scores_are_probs, settings, clock, out=io.StringIO())
                for name, settings in (("greedy", DecoderSettings()),
                                       ("lexicon_beam10", DecoderSettings("beam", 10, lm_path(profile_name),
                                                                          lexicon="lm")))}
    figures = {}
    with open_session(bundle, "onnxruntime", out=io.StringIO(), ort_threads=1) as session:
        for set_name in ("sentences_seen_voices", "digits"):
            prep = open_prep(os.path.join(model_dir, "prep", set_name))
            rows = prep.rows[:utterances]
            feeds = [assemble([prep.load(r)], bundle.inputs, 1, pick_frames(r["padded_frames"], bundle.frames, 1))
                     for r in rows]
            times = {"onnxruntime_1_thread": [], **{name: [] for name in decoders}}
            for attempt in range(2):  # the first pass warms up onnxruntime and the LM caches
                for r, feed in zip(rows, feeds):
                    start = time.perf_counter()
                    outputs = session.run(feed)
                    model_s = time.perf_counter() - start
                    scores = time_major(row(outputs, layout.scores, 0), layout.scores)
                    length = layout.valid_frames(r["frames"], row(outputs, layout.lengths, 0) if layout.lengths
                                                 else None)
                    spent = {}
                    for name, decode in decoders.items():
                        start = time.perf_counter()
                        decode(scores, length, frames=r["frames"])
                        spent[name] = time.perf_counter() - start
                    if attempt:
                        times["onnxruntime_1_thread"].append(model_s)
                        for name, s in spent.items():
                            times[name].append(s)
            means = {k: 1e3 * float(np.mean(v)) for k, v in times.items()}
            figures[set_name] = {"utterances": len(rows), "ms_per_utterance": means,
                                 "beam_over_model": means["lexicon_beam10"] / means["onnxruntime_1_thread"]}
            log(f"[decoding-bench] {profile_name} {set_name} ({len(rows)} utt): onnxruntime 1 thread "
                f"{means['onnxruntime_1_thread']:.2f} ms, greedy {means['greedy']:.2f} ms, lexicon beam 10 "
                f"{means['lexicon_beam10']:.2f} ms per utterance "
                f"(beam / model {figures[set_name]['beam_over_model']:.2f})")
    return figures


def main(argv=None) -> int:
    from .decoding_eval import MODELS
    from .decoding_eval_data import build_sets

    p = argparse.ArgumentParser(prog="python -m ascend_asr.decoding_bench", description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", required=True, help="folder with fsdd.tsv and the FSDD recordings")
    p.add_argument("--work-dir", default=os.path.expanduser("~/.cache/ascend_asr/decoding_eval"))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--utterances", type=int, default=100)
    args = p.parse_args(argv)
    manifests = build_sets(args.fsdd, os.path.join(args.work_dir, "data"))
    for model in (m for m in args.models.split(",") if m):
        bench_model(model, manifests, os.path.join(args.work_dir, "outputs"), args.utterances)
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
