"""The model card shipped beside each reference checkpoint."""
from __future__ import annotations

import hashlib
import os

from ..metrics import percent

SET_TITLES = {
    "test_sentences_seen_voices": "unseen sentences, seen voices",
    "test_sentences_unseen_voices": "unseen sentences, unseen voices",
    "test_digits_heldout_speaker": "held-out FSDD speaker's digits",
}


def results_table(results: dict) -> list[str]:
    lines = ["| held-out set | utterances | WER | CER | WER, beam + LM | CER, beam + LM | PyTorch = onnxruntime |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        same = r["utterances"] - r["transcripts_differing"]
        lines.append(f"| {SET_TITLES.get(name, name)} | {r['utterances']} | {percent(r['wer'])} | "
                     f"{percent(r['cer'])} | {percent(r.get('wer_beam_lm'))} | {percent(r.get('cer_beam_lm'))} | "
                     f"{same}/{r['utterances']} |")
    return lines


def write_model_card(path: str, profile, checkpoint: str, training: dict, results: dict,
                     storage: str = "fp16") -> None:
    """`storage`: the precision the family's save writes the weights in."""
    with open(checkpoint, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    t, d = training["training"], training["data"]
    params = training.get("parameters")
    lines = [
        f"# {profile.name}: a small {profile.family} reference model",
        "",
        f"- **Checkpoint**: `{os.path.basename(checkpoint)}` ({os.path.getsize(checkpoint) / 1e6:.1f} MB, "
        f"{storage} storage, sha256 `{digest[:16]}…`), in the upstream format the `{profile.family}` loader reads.",
        f"- **Architecture**: profile `{profile.name}`, config `{profile.model_config}`"
        + (f", {params:,} parameters" if params else "") + ".",
        f"- **Recipe**: `python -m ascend_asr.recipes.train_reference --family {training['family']} "
        f"--fsdd ../shared/data/speech --seed {d['seed']}` ({t['epoch']} epochs, {t['step']} steps, "
        f"{t['minutes']:.1f} min on {training['threads']} CPU threads, torch {training['torch']}).",
        "- **Data**: English sentences from the recipe's own grammar (closed vocabulary of about 270 words) and "
        "digit strings, synthesized with espeak-ng (7 accents x 12 voice variants, random rate and pitch) and "
        "flite (awb, rms, slt, kal16), 25% band-limited to 3.8 kHz; plus the Free Spoken Digit Dataset "
        f"(CC-BY-SA-4.0) of every speaker but `{d['held_out_speaker']}`, at speeds 1.0, "
        + ", ".join(str(f) for f in d["digit_speed_factors"]) + ". "
        f"{d['train_sentences']} sentences and {d['train_digit_strings']} digit strings.",
        "- **Held out**: sentences never used in training (new combinations of the same words), spoken by the "
        "training voices and by voices never trained on (the West Midlands accent and the m6, f4, klatt3 "
        f"variants); every recording of FSDD speaker `{d['held_out_speaker']}`.",
        "- **Decoding**: greedy CTC, and CTC prefix beam search (width 10) with a word bigram LM of the training "
        "transcripts (`" + f"{profile.name}_words_bigram.arpa" + "`, alpha 0.5, beta 1.0, closed vocabulary). Scores come "
        "from the exported ONNX model on onnxruntime through `ascend_asr.infer`; PyTorch greedy transcripts are "
        "compared with onnxruntime's one by one on the same tensors.",
        "",
        "## Held-out results",
        "",
        *results_table(results),
        "",
        "## Limits",
        "",
        "Synthetic speech and one closed vocabulary: this model demonstrates the pipeline on real "
        "recognition, it is not a general English recognizer. Expect high error rates on open-vocabulary "
        "or natural read speech (LibriSpeech).",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
