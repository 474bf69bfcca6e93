"""One utterance's scores -> a transcript with N-best, word times and confidences.

`DecoderSettings` gathers the decoding options of infer (and of the evaluation and benchmark commands);
`make_transcriber` turns them into a function of (scores [T, V], valid input frames, model output length).

Decoders:
- greedy: best path; word times come from the path itself.
- beam, `lexicon none`: the ctcdecode-style prefix beam search of beam_search.py (characters or phones).
- beam, `lexicon lm` or a lexicon file: word_beam.py's lexicon-constrained search, open vocabulary through
  `unk_score`, hotwords; `lexicon unigrams`: its free spelling, searched and scored as pyctcdecode 0.5 does
  (blank- and label-ending paths as separate beams, beams 10 nats below the best pruned, the LM's unigrams
  checking partial words, an empty word scored at the end of an utterance that ends in a space).
- beam, `lexicon auto` (the default): `lm` for a word LM over an alphabet with a space, else `none`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import OptionError
from .timestamps import WordTiming, best_path_spans, utterance_confidence, word_timings

LEXICON_MODES = ("auto", "none", "lm", "unigrams")  # or a lexicon file (any other value)
PYCTCDECODE_PRUNE_LOGP = -10.0  # pyctcdecode's beam_prune_logp default, used by `lexicon unigrams`


@dataclass(frozen=True)
class DecoderSettings:
    kind: str = "greedy"  # or "beam"
    beam_width: int = 10
    lm: str | None = None
    alpha: float = 0.5
    beta: float = 1.0
    lexicon: str = "auto"  # auto | none | lm | unigrams | a lexicon file
    unk_score: float = -10.0  # natural-log score of a word outside the lexicon (-inf: closed vocabulary)
    hotwords: str | None = None  # file: one word or phrase per line (optionally a tab and a boost)
    hotword_weight: float = 10.0
    token_min_logp: float = -5.0  # per frame, labels below this log-probability are not tried
    beam_prune_logp: float = -10.0  # beams this far below the best are dropped (pyctcdecode's default)
    nbest: int = 1


@dataclass(frozen=True)
class Transcript:
    text: str
    ids: tuple
    out_frames: int | None
    words: tuple = ()  # WordTiming per word
    confidence: float | None = None
    nbest: tuple = ()  # ((text, score), ...) best first, when more than one was asked for

    def fields(self) -> dict:
        """The hyps.jsonl fields beyond the transcript: words with times and confidences, N-best."""
        out = {"words": [w.to_dict() for w in self.words],
               "confidence": None if self.confidence is None else round(self.confidence, 4)}
        if self.nbest:
            out["nbest"] = [{"hyp": text, "score": round(score, 4)} for text, score in self.nbest]
        return out


@dataclass(frozen=True)
class _Search:
    """The chosen search, prepared once (LM loaded, lexicon built)."""

    kind: str
    decode: object = None  # (log_probs, length) -> [(ids, score)], best first


def resolve_lexicon_mode(settings: DecoderSettings, boundary: int | None) -> str:
    mode = settings.lexicon
    if mode == "auto":
        return "lm" if settings.lm and boundary is not None else "none"
    return mode


def word_boundary(vocab) -> int | None:
    """The label that separates words (a space), or None (phone or unit vocabularies)."""
    return vocab.labels.index(" ") if " " in vocab.labels else None


def check_settings(settings: DecoderSettings, boundary: int | None, model_known: bool = True) -> None:
    """Options that are wrong whatever the model (model_known False), and those wrong for this vocabulary."""
    if settings.kind not in ("greedy", "beam"):
        raise OptionError(f"--decoder {settings.kind!r}: choose greedy or beam")
    for name in ("alpha", "beta", "hotword_weight", "token_min_logp"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OptionError(f"--{name.replace('_', '-')} {value!r}: give a finite number")
    if isinstance(settings.unk_score, bool) or not isinstance(settings.unk_score, (int, float)) \
            or math.isnan(settings.unk_score) or settings.unk_score > 0:
        raise OptionError(f"--unk-score {settings.unk_score!r}: give a log-score <= 0 (e.g. -10), or -inf for a "
                          "closed vocabulary")
    if isinstance(settings.nbest, bool) or not isinstance(settings.nbest, int) or not 1 <= settings.nbest <= 100:
        raise OptionError(f"--nbest {settings.nbest!r}: give a whole number from 1 to 100")
    if not isinstance(settings.lexicon, str) or not settings.lexicon:
        raise OptionError(f"--lexicon {settings.lexicon!r}: give auto, none, lm, unigrams or a lexicon file")
    if not model_known:
        return
    mode = resolve_lexicon_mode(settings, boundary)
    if boundary is None and mode != "none":
        raise OptionError(f"--lexicon {settings.lexicon}: this model's labels have no space, so it has no words to "
                          "look up (a phone or character-unit model): use --lexicon none (a phone-level LM works "
                          "as before)")
    if mode in ("lm", "unigrams") and not settings.lm:
        raise OptionError(f"--lexicon {mode} takes its words from the language model: give --lm, or a lexicon file")
    if settings.hotwords and mode == "none":
        raise OptionError("--hotwords needs a word-level search: add --lexicon lm (or a lexicon file), or drop "
                          "--hotwords")


def _prepare(vocab, settings: DecoderSettings, out) -> _Search:
    from .decoding import check_beam_width, check_lm_words, load_language_model

    boundary = word_boundary(vocab)
    check_settings(settings, boundary)
    if settings.kind == "greedy":
        return _Search("greedy")
    check_beam_width(settings.beam_width)
    mode = resolve_lexicon_mode(settings, boundary)
    lm = None
    if settings.lm:
        if os.path.isfile(settings.lm):
            check_lm_words(settings.lm, vocab, boundary, out)
        lm = load_language_model(settings.lm)
    if mode == "none":
        from .beam_search import prefix_beam_search_nbest

        def decode(log_probs, length):
            return prefix_beam_search_nbest(log_probs, length, vocab.blank, settings.beam_width, lm=lm,
                                            alpha=settings.alpha, beta=settings.beta, word_boundary=boundary,
                                            labels=vocab.labels)
        return _Search("beam", decode)
    scorer = word_scorer(vocab, settings, lm, mode, boundary)
    from .word_beam import word_beam_search

    pyctcdecode_like = mode == "unigrams"  # its beams, pruning and end-of-utterance scoring (word_beam.py)
    prune = PYCTCDECODE_PRUNE_LOGP if pyctcdecode_like else settings.beam_prune_logp

    def decode(log_probs, length):
        hyps = word_beam_search(log_probs, length, vocab.labels, vocab.blank, boundary, scorer,
                                settings.beam_width, settings.token_min_logp, nbest=settings.nbest,
                                beam_prune_logp=prune, split_beams=pyctcdecode_like)
        return [(spell_words(h.words, vocab, boundary), h.score) for h in hyps]
    return _Search("beam", decode)


def word_scorer(vocab, settings: DecoderSettings, lm, mode: str, boundary: int):
    """The WordScorer of a lexicon mode: its lexicon (LM words, a file, plus hotwords) and hotword boosts."""
    from .hotwords import read_hotwords
    from .language_model import arpa_unigrams
    from .lexicon import Lexicon, read_lexicon_words
    from .word_beam import WordScorer

    hotwords = read_hotwords(settings.hotwords, settings.hotword_weight, vocab.normalize) \
        if settings.hotwords else {}
    if mode == "unigrams":
        words = arpa_unigrams(settings.lm)
        if words is None:
            raise OptionError(f"{settings.lm}: --lexicon unigrams reads the words of an ARPA LM; this one is not "
                              "ARPA text (a kenlm binary?): give the .arpa, or --lexicon FILE")
        return WordScorer(lm, settings.alpha, settings.beta, None, settings.unk_score, hotwords,
                          frozenset(words) - {"<s>", "</s>", "<unk>"}, empty_final_word=True)
    if mode == "lm":
        words = arpa_unigrams(settings.lm)
        if words is None:
            raise OptionError(f"{settings.lm}: --lexicon lm reads the words of an ARPA LM; this one is not ARPA "
                              "text (a kenlm binary?): give the .arpa, or a lexicon file to --lexicon")
        source = settings.lm
    else:
        words, source = read_lexicon_words(mode), mode
    lexicon = Lexicon.build(list(words) + list(hotwords), vocab.labels, vocab.blank, boundary, source)
    return WordScorer(lm, settings.alpha, settings.beta, lexicon, settings.unk_score, hotwords)


def spell_words(words, vocab, boundary: int) -> list[int]:
    """Label ids of words joined by the boundary label."""
    from .lexicon import spell

    table = {label: i for i, label in enumerate(vocab.labels) if i not in (vocab.blank, boundary)}
    ids: list[int] = []
    for k, word in enumerate(words):
        if k:
            ids.append(boundary)
        ids.extend(spell(word, table) or [])
    return ids


def make_transcriber(vocab, scores_are_probs: bool, settings: DecoderSettings = DecoderSettings(),
                     seconds_per_frame=None, out=None):
    """A function (scores [T, V], valid output frames, offset seconds) -> Transcript.

    seconds_per_frame: a function (valid output frames, valid input frames or None) -> seconds per output
    frame (decoding.FrameClock), or None (word times 0; words and confidences still given). An LM most of
    whose words the labels cannot spell is refused."""
    search = _prepare(vocab, settings, out)
    boundary = word_boundary(vocab)

    def transcribe(scores: np.ndarray, length: int | None, offset: float = 0.0, frames: int | None = None) \
            -> Transcript:
        valid = scores if length is None else scores[: max(0, int(length))]
        log_probs = np.log(np.maximum(valid, 1e-30)) if scores_are_probs else np.asarray(valid)
        spans, nbest = None, ()
        if search.kind == "greedy":
            ids, spans = best_path_spans(log_probs, vocab.blank)
        else:
            hyps = search.decode(np.asarray(log_probs, dtype=np.float64), None)
            ids = list(hyps[0][0])
            if settings.nbest > 1:
                nbest = tuple((vocab.decode(h), float(s)) for h, s in hyps[: settings.nbest])
        seconds = seconds_per_frame(len(log_probs), frames) if seconds_per_frame else 0.0
        try:
            words = word_timings(log_probs, ids, vocab.blank, boundary, vocab.labels, seconds, offset, spans) \
                if len(log_probs) else []
        except ValueError:  # no CTC path spells them (a decoder that dropped frames): no times
            words = []
        if seconds_per_frame is None:
            words = [WordTiming(w.word, 0.0, 0.0, w.confidence) for w in words]
        return Transcript(vocab.decode(ids), tuple(ids), length, tuple(words),
                          utterance_confidence(words, log_probs), nbest)
    return transcribe
