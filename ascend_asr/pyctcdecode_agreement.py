"""Our beam (`--lexicon unigrams`) against pyctcdecode on the same log-probabilities, vocabulary and kenlm model.

Shared settings: beam width 10, alpha 0.5, beta 1.0, unk offset -10, token_min_logp -5, beam_prune_logp -10,
the LM's unigrams; log-probabilities clipped at ln(1e-15) as pyctcdecode clips them. Each disagreement is
explained by scoring both transcripts with our scorer (`transcript_score`): when pyctcdecode's transcript scores
higher, our beam missed it; when ours scores higher, pyctcdecode's beam missed ours or scored it differently
(it merges a transcript ending in a space with the same transcript without it and keeps the first one's
scoring, so the merged beam may be scored with an empty final word, an <unk>).

pyctcdecode is a test extra (`pip install --no-deps pyctcdecode pygtrie`: its numpy<2 pin is only metadata).
"""
from __future__ import annotations

import numpy as np

from .language_model import KenLM

SHARED = {"beam_width": 10, "alpha": 0.5, "beta": 1.0, "unk_score": -10.0, "token_min_logp": -5.0,
          "beam_prune_logp": -10.0}
CLIP = float(np.log(1e-15))


def pyctcdecode_decoder(vocab, lm_path: str):
    from pyctcdecode import build_ctcdecoder

    labels = ["" if i == vocab.blank else label for i, label in enumerate(vocab.labels)]
    return build_ctcdecoder(labels, lm_path, alpha=SHARED["alpha"], beta=SHARED["beta"],
                            unk_score_offset=SHARED["unk_score"])


def our_transcriber(vocab, lm_path: str):
    from .transcribe import DecoderSettings, make_transcriber

    settings = DecoderSettings("beam", SHARED["beam_width"], lm_path, SHARED["alpha"], SHARED["beta"], "unigrams",
                               SHARED["unk_score"], token_min_logp=SHARED["token_min_logp"])
    return make_transcriber(vocab, False, settings)


def ctc_log_likelihood(log_probs: np.ndarray, ids, blank: int) -> float:
    """ln P(ids | log_probs): the CTC forward sum over every alignment."""
    lp = np.asarray(log_probs, dtype=np.float64)
    ext = [blank]
    for i in ids:
        ext += [i, blank]
    ext = np.array(ext)
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(len(ext), -np.inf)
    alpha[:2] = lp[0, ext[:2]]
    for t in range(1, len(lp)):
        one = np.concatenate([[-np.inf], alpha[:-1]])
        two = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha[:-2]]), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, one), two) + lp[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(ext) > 1 else alpha[-1])


def transcript_score(text: str, log_probs, vocab, scorer) -> float:
    """Our total score of a transcript: its CTC log-likelihood plus every word score and end of sentence."""
    from .transcribe import spell_words, word_boundary

    boundary = word_boundary(vocab)
    words = tuple(text.split())
    ids = spell_words(words, vocab, boundary)
    blank_only = float(np.sum(np.asarray(log_probs)[:, vocab.blank]))
    total = ctc_log_likelihood(log_probs, ids, vocab.blank) if ids else blank_only
    history: tuple = ()
    for word in words[:-1]:
        total += scorer.finish_word_free(history, word)
        history += (word,)
    return total + scorer.end((history, words[-1] if words else "", None))


def agreement_report(profile_name: str, data: dict) -> dict:
    from .decoding_eval import lm_path
    from .transcribe import word_scorer

    vocab = data["profile"].vocabulary
    lm = lm_path(profile_name)
    theirs, ours = pyctcdecode_decoder(vocab, lm), our_transcriber(vocab, lm)
    from .transcribe import DecoderSettings, word_boundary

    scorer = word_scorer(vocab, DecoderSettings("beam", lm=lm, lexicon="unigrams"), KenLM(lm), "unigrams",
                         word_boundary(vocab))
    total, disagreements = 0, []
    for set_name, utterances in data["sets"].items():
        for u in utterances:
            lp = np.clip(u.log_probs.astype(np.float64), CLIP, 0.0)
            a = theirs.decode_beams(lp, beam_width=SHARED["beam_width"], beam_prune_logp=SHARED["beam_prune_logp"],
                                    token_min_logp=SHARED["token_min_logp"])[0][0]
            b = " ".join(ours(lp, None).text.split())
            total += 1
            if a != b:
                score_a, score_b = transcript_score(a, lp, vocab, scorer), transcript_score(b, lp, vocab, scorer)
                disagreements.append({"set": set_name, "id": u.id, "pyctcdecode": a, "ours": b,
                                      "our_score_of_pyctcdecode": round(score_a, 3), "our_score_of_ours":
                                      round(score_b, 3), "higher": "pyctcdecode's" if score_a > score_b else "ours"})
    agree = total - len(disagreements)
    print(f"[pyctcdecode] {profile_name}: {agree}/{total} best hypotheses identical ({100 * agree / total:.2f}%)")
    for d in disagreements:
        print(f"  {d['id']}: pyctcdecode {d['pyctcdecode']!r} ({d['our_score_of_pyctcdecode']}) vs ours "
              f"{d['ours']!r} ({d['our_score_of_ours']}): {d['higher']} scores higher under our scoring")
    return {"utterances": total, "identical": agree, "agreement": agree / total, "disagreements": disagreements}
