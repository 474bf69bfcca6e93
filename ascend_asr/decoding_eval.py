"""Decoding evaluation of the shipped models: greedy vs lexicon beam + LM, open vocabulary, pyctcdecode
agreement, upstream metrics, and decoding time beside the model's own.

    python -m ascend_asr.decoding_eval --fsdd ../shared/data/speech --work-dir ~/.cache/ascend_asr/decoding_eval
    python -m ascend_asr.decoding_eval ... --bench          # decode time per utterance vs onnxruntime, one core
    python -m ascend_asr.decoding_eval ... --agreement      # our `--lexicon unigrams` beam vs pyctcdecode

Data and log-probabilities: decoding_eval_data.py (held-out digits of an unseen speaker, the recipe's unseen
closed-vocabulary sentences in seen and unseen voices, 40 open-vocabulary sentences). Every decoder reads the
same log-probabilities, the ones infer decodes (onnxruntime, batch 1). The LM is each model's shipped word
bigram of the training transcripts (closed vocabulary: 267 words); `lexicon lm` spells only its words unless
`--unk-score` lets a word outside it through.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from .decoding_eval_data import SETS, model_outputs
from .metrics import percent, score, upstream_metrics

MODELS = ("jasper_small", "deepspeech2_small", "lstm_ctc_char")
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "models")
GLUE_MARGIN = 3  # characters


def lm_path(profile_name: str) -> str:
    return os.path.join(ASSETS, f"{profile_name}_words_bigram.arpa")


def glued_words(reference: str, hypothesis: str) -> int:
    """Hypothesis words longer than every reference word by GLUE_MARGIN characters or more: several words
    run together ("wrotheirbir")."""
    longest = max((len(w) for w in reference.split()), default=0)
    return sum(len(w) >= longest + GLUE_MARGIN for w in hypothesis.split())


def decoders(profile_name: str, unk_score: float = -10.0) -> dict:
    """name -> DecoderSettings of the decoders compared."""
    from .transcribe import DecoderSettings

    lm = lm_path(profile_name)
    return {
        "greedy": DecoderSettings(),
        "beam_lm": DecoderSettings("beam", lm=lm, lexicon="none"),  # the previous beam: no lexicon
        "lexicon_beam_lm": DecoderSettings("beam", lm=lm, lexicon="lm", unk_score=unk_score),
        "lexicon_beam_lm_closed": DecoderSettings("beam", lm=lm, lexicon="lm", unk_score=-np.inf),
    }


def transcripts(utterances, vocab, settings) -> list[tuple[str, str]]:
    from .transcribe import make_transcriber

    transcribe = make_transcriber(vocab, False, settings)
    return [(u.ref, transcribe(u.log_probs, None).text) for u in utterances]


def evaluate_model(profile_name: str, manifests: dict, work_dir: str, log=print) -> dict:
    data = model_outputs(profile_name, manifests, work_dir, log)
    vocab = data["profile"].vocabulary
    phones = vocab.separator == " "
    results = {}
    for name, settings in decoders(profile_name).items():
        per_set = {}
        for set_name, utterances in data["sets"].items():
            pairs = transcripts(utterances, vocab, settings)
            total = score(pairs, warn=False)
            per_set[set_name] = {"utterances": len(pairs), "wer": total.wer, "cer": total.cer,
                                 "glued_words": sum(glued_words(r, h) for r, h in pairs),
                                 "upstream": upstream_metrics(pairs, phones),
                                 "cer_worse_than_greedy": None}
            if name != "greedy":
                greedy = results["greedy"][set_name]["_pairs"]
                per_set[set_name]["cer_worse_than_greedy"] = sum(
                    score([p], warn=False).cer > score([g], warn=False).cer for p, g in zip(pairs, greedy))
            per_set[set_name]["_pairs"] = pairs
        results[name] = per_set
        log(f"[decoding-eval] {profile_name} {name}: " + "  ".join(
            f"{s} WER {percent(v['wer'])} CER {percent(v['cer'])}" for s, v in per_set.items()))
    for per_set in results.values():
        for v in per_set.values():
            v.pop("_pairs")
    return {"decoders": results, "ort_ms_per_utterance": data["ort_ms_per_utterance"]}


def markdown_table(all_results: dict) -> str:
    """The README's held-out table: greedy and lexicon beam + LM, closed-vocabulary sets, then open vocabulary."""
    head = ("| model | decoder | digits, held-out speaker: WER | unseen sentences, seen voices: WER (CER) | "
            "unseen sentences, unseen voices: WER (CER) | open-vocabulary sentences: WER (CER) | glued words |\n"
            "|---|---|---|---|---|---|---|\n")
    rows = []
    names = {"greedy": "greedy", "beam_lm": "beam + LM, no lexicon (before)",
             "lexicon_beam_lm": "lexicon beam + LM (unk -10)", "lexicon_beam_lm_closed": "lexicon beam + LM, closed"}
    for model, result in all_results.items():
        for name, per_set in result["decoders"].items():
            cells = [percent(per_set["digits"]["wer"])]
            for s in ("sentences_seen_voices", "sentences_unseen_voices", "open_sentences"):
                cells.append(f"{percent(per_set[s]['wer'])} ({percent(per_set[s]['cer'])})")
            glued = sum(per_set[s]["glued_words"] for s in SETS if s != "digits")
            rows.append(f"| `{model}` | {names[name]} | " + " | ".join(cells) + f" | {glued} |")
    return head + "\n".join(rows) + "\n"


def upstream_table(all_results: dict, decoder: str = "lexicon_beam_lm") -> str:
    lines = ["| model | set | WER (jiwer) | CER (jiwer, spaces) | CER without spaces (deepspeech.pytorch) |",
             "|---|---|---|---|---|"]
    for model, result in all_results.items():
        for s, v in result["decoders"][decoder].items():
            u = v["upstream"]
            lines.append(f"| `{model}` | {s} | {percent(u['wer'])} | {percent(u['cer'])} | "
                         f"{percent(u['cer_no_spaces'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ascend_asr.decoding_eval", description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", required=True, help="folder with fsdd.tsv and the FSDD recordings")
    p.add_argument("--work-dir", default=os.path.expanduser("~/.cache/ascend_asr/decoding_eval"))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seen", type=int, default=200, help="recipe sentences in seen voices (default 200)")
    p.add_argument("--unseen", type=int, default=100, help="recipe sentences in unseen voices (default 100)")
    p.add_argument("--bench", action="store_true", help="also time decoding against onnxruntime on one core")
    p.add_argument("--bench-utterances", type=int, default=100)
    p.add_argument("--agreement", action="store_true", help="also compare with pyctcdecode (needs it installed)")
    p.add_argument("--output", help="JSON file for every figure (default WORK_DIR/decoding_eval.json)")
    args = p.parse_args(argv)
    from .decoding_eval_data import build_sets

    manifests = build_sets(args.fsdd, os.path.join(args.work_dir, "data"), args.seen, args.unseen)
    models = [m for m in args.models.split(",") if m]
    outputs = os.path.join(args.work_dir, "outputs")
    results = {m: evaluate_model(m, manifests, outputs) for m in models}
    print(markdown_table(results))
    print(upstream_table(results))
    if args.agreement:
        from .pyctcdecode_agreement import agreement_report

        results["_pyctcdecode"] = {m: agreement_report(m, model_outputs(m, manifests, outputs)) for m in models}
    if args.bench:
        from .decoding_bench import bench_model

        results["_bench"] = {m: bench_model(m, manifests, outputs, args.bench_utterances) for m in models}
    path = args.output or os.path.join(args.work_dir, "decoding_eval.json")
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".part", path)
    print(f"[decoding-eval] every figure: {path}")
    return 0


if __name__ == "__main__":
    from .runner import run

    sys.exit(run(main))
