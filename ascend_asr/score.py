"""Score results/: WER and CER per utterance and in total, from hyps.jsonl; word-timed transcripts.

Besides jiwer's WER and CER, score.json holds each model family's upstream metric (`upstream`: deepspeech.pytorch's
CER without spaces; TIMIT PER with 39-phone folding for phone models), each with the definition used.
`--format ctm|srt|vtt` also writes the transcripts with word times (transcripts.py).
"""
from __future__ import annotations

import argparse
import sys

from .metrics import char_errors, empty_reference_warning, percent, score, upstream_metrics, word_errors
from .results import read_scored_hyps, read_summary, write_score
from .transcripts import FORMATS, write_transcripts
from .runner import run


def score_results(results_dir: str, fmt: str | None = None) -> dict:
    rows = read_scored_hyps(results_dir)
    total = score(((r["ref"], r["hyp"]) for r in rows), warn=False)  # print_report warns
    per_utt = [{"id": r["id"], "ref": r["ref"], "hyp": r["hyp"],
                "wer": word_errors(r["ref"], r["hyp"]).rate, "cer": char_errors(r["ref"], r["hyp"]).rate}
               for r in rows]
    empty = [r["id"] for r in rows if not str(r["ref"]).split()]
    phones = (read_summary(results_dir) or {}).get("error_rate") == "PER"
    report = {**total.to_dict(), "upstream": upstream_metrics(((r["ref"], r["hyp"]) for r in rows), phones),
              "empty_reference_ids": empty, "per_utterance": per_utt}
    if fmt:
        report["transcripts"] = write_transcripts(results_dir, rows, fmt)
    write_score(results_dir, report)
    return report


def print_report(report: dict, verbose: bool = False, out=sys.stdout) -> None:
    if verbose:
        for u in report["per_utterance"]:
            print(f"{u['id']}: WER {percent(u['wer'])}\n  REF: {u['ref']}\n  HYP: {u['hyp']}", file=out)
    print(f"WER {percent(report['wer'])} ({report['word_errors']}/{report['reference_words']} words)  "
          f"CER {percent(report['cer'])} ({report['char_errors']}/{report['reference_chars']} chars)  "
          f"utterances {report['utterances']}"
          + (f" ({report['empty_references']} with an empty reference, not scored)"
             if report.get("empty_references") else ""), file=out)
    upstream = report.get("upstream") or {}
    for key, definition in (upstream.get("definitions") or {}).items():
        print(f"  {key} {percent(upstream.get(key))}: {definition}", file=out)
    if report.get("transcripts"):
        print(f"[ascend-asr] transcripts: {report['transcripts']}", file=out)
    if report.get("empty_references"):
        ids = report.get("empty_reference_ids") or []
        print(empty_reference_warning(report["empty_references"], report["utterances"])
              + (f"; ids: {', '.join(map(str, ids[:10]))}{' ...' if len(ids) > 10 else ''} (all in score.json)"
                 if ids else ""), file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ascend-asr score", description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, help="results/ folder written by infer")
    p.add_argument("--verbose", action="store_true", help="print every utterance")
    p.add_argument("--format", choices=FORMATS, help="also write word-timed transcripts: ctm (one file), srt or vtt "
                   "(one file per utterance)")
    args = p.parse_args(argv)
    print_report(score_results(args.results, args.format), args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
