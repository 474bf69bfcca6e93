"""CTC prefix beam search that knows words: a lexicon trie, a word LM with look-ahead, hotwords, open vocabulary.

The search is ctcdecode's (each prefix keeps the log-mass of its paths ending in blank, pb, and in its last
label, pnb; masses reaching one prefix are summed). A prefix is a word state: the words completed so far, the
partial word, its lexicon node and the last label (for the CTC repeat rule). Word scores enter as bonuses on
the extensions that change the state, so a prefix's mass always includes every word score it has earned:

- **lexicon** (`WordScorer(lexicon=...)`): a partial word is worth its best completion, alpha * max over the
  lexicon words below its trie node of ln P_lm(word | history) (hotword boosts included); spelling one more
  label moves to the child node and the bonus is the difference of the two look-aheads, so a word that is
  finished has paid exactly alpha * ln P_lm(word | history) + beta. A label outside the trie leaves the
  lexicon at the cost `unk_score` (-inf: closed vocabulary), and an out-of-lexicon word then pays
  unk_score / AVG_WORD_LEN per label beyond AVG_WORD_LEN (long unknown words are how glued words look).
- **free spelling** (`lexicon=None`), scored as pyctcdecode scores it: a word pays alpha * ln P_lm + beta
  when it ends, plus alpha * ln(10) * unk_score if it is not among `unigrams`; a partial word that is no
  prefix of any unigram pays unk_score (times len / AVG_WORD_LEN beyond that length) while it lasts.

Frames are pruned as pyctcdecode does: per frame, only labels with log-probability >= token_min_logp (and
the best label) are tried; beams more than beam_prune_logp below the best are dropped.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from .language_model import LN10
from .lexicon import Lexicon, RangeMax

LOOKAHEAD_CONTEXT_WORDS = 20_000  # larger lexicons look ahead without the LM context (cost: one LM query per word)
AVG_WORD_LEN = 6  # characters: beyond it an unknown (partial) word pays more per label (pyctcdecode's rule)
NEG_INF = -math.inf


@dataclass(frozen=True)
class Hypothesis:
    words: tuple  # the transcript's words
    score: float  # log-mass of its paths, every word score included (natural log)


@dataclass
class WordScorer:
    """Word scores of one decoding setup (LM, weights, lexicon, hotwords); caches LM look-aheads across
    utterances, so one scorer serves a whole run."""

    lm: object | None = None  # language_model.LanguageModel (natural-log scores)
    alpha: float = 0.5
    beta: float = 1.0
    lexicon: Lexicon | None = None
    unk_score: float = -10.0
    hotwords: dict = field(default_factory=dict)  # word -> boost (natural log)
    unigrams: frozenset | None = None  # free spelling only: the LM's words (pyctcdecode's partial-word check)
    empty_final_word: bool = False  # free spelling: an utterance ending without a partial word scores an empty
    # word at its end, as pyctcdecode 0.5 does (an <unk> for the LM): only for comparisons with it

    def __post_init__(self):
        self._order = int(getattr(self.lm, "order", 3)) if self.lm is not None else 1
        self._lookahead: dict = {}
        self._contexts: dict = {}
        self._word_scores: dict = {}
        self._prefixes = None
        if self.lexicon is None and self.unigrams is not None:
            self._prefixes = {w[:i] for w in self.unigrams for i in range(1, len(w) + 1)}

    # --- word scores ---------------------------------------------------------------------------------
    def context(self, history: tuple) -> tuple:
        """The part of the history the LM can see (words it does not know as <unk>: one context for all)."""
        found = self._contexts.get(history)
        if found is None:
            n = self._order - 1
            recent = history if len(history) <= n else history[len(history) - n:]
            found = () if self.lm is None else tuple(w if w in self.lm else "<unk>" for w in recent)
            if len(self._contexts) > 100_000:
                self._contexts.clear()
            self._contexts[history] = found
        return found

    def word_score(self, history: tuple, word: str) -> float:
        """alpha * ln P(word | history) + hotword boost (no beta); in lexicon mode a lexicon word the LM does
        not know scores unk_score instead of the LM's <unk> (-100 in log10 for an LM without <unk>)."""
        boost = self.hotwords.get(word, 0.0)
        if self.lm is None:
            return boost
        if self.lexicon is not None and word not in self.lm:
            return self.unk_score + boost
        return self.alpha * self.lm.score(history, word) + boost

    def _lexicon_scores(self, context: tuple) -> np.ndarray:
        """Per trie node: the best word score below it, given the LM context (computed once per context). A
        lexicon of more than LOOKAHEAD_CONTEXT_WORDS words looks ahead with the sentence-start context only
        (one pass over the words instead of one per context); finished words still pay their exact LM score."""
        if len(self.lexicon) > LOOKAHEAD_CONTEXT_WORDS:
            context = ()
        values = self._lookahead.get(context)
        if values is None:
            lex = self.lexicon
            scores = np.array([self.word_score(context, w) for w in lex.words])
            values = RangeMax(scores).over(lex.span_lo, lex.span_hi)
            values[0] = 0.0  # the root: no word started, nothing earned yet
            if len(self._lookahead) * lex.nodes > 50_000_000:  # about 400 MB of look-aheads: start again
                self._lookahead.clear()
            self._lookahead[context] = values
        return values

    def _partial_penalty(self, partial: str) -> float:
        """Free spelling: pyctcdecode's score of a partial word (0 while it can still become a unigram)."""
        if not partial or self._prefixes is None or partial in self._prefixes:
            return 0.0
        return self.unk_score * max(1.0, len(partial) / AVG_WORD_LEN)

    def _oov_length_penalty(self, length: int) -> float:
        """Lexicon mode: what the length-th label of an out-of-lexicon word costs."""
        return self.unk_score / AVG_WORD_LEN if length > AVG_WORD_LEN else 0.0

    # --- transitions (on word states) ----------------------------------------------------------------
    def spell(self, state: tuple, label: int, char: str):
        """(next state, bonus) for spelling `label` inside a word, or None where the lexicon forbids it.
        A state is (history, partial word, lexicon node: -1 outside it, None in free spelling)."""
        history, partial, node = state
        if self.lexicon is None:
            new = partial + char
            return (history, new, None), self._partial_penalty(new) - self._partial_penalty(partial)
        if node >= 0:
            child = self.lexicon.child(node, label)
            here = self._lexicon_scores(self.context(history))
            if child >= 0:
                return (history, partial + char, child), here[child] - here[node]
            if node and self.lexicon.word_at[node] >= 0:  # a word ended without a space: a pause
                return self._next_word(state, label, char)
            if self.unk_score == NEG_INF:
                return None
            return (history, partial + char, -1), self.unk_score - here[node]
        new = partial + char
        return (history, new, -1), self._oov_length_penalty(len(new))

    def _next_word(self, state: tuple, label: int, char: str):
        """A lexicon word followed by the first label of the next one with no boundary label between them
        (models trained with spaces between words emit only blanks across a long pause): the word ends there."""
        finished, bonus = self.finish_word(state)
        step = self.spell(finished, label, char)
        if step is None:
            return None
        return step[0], bonus + step[1]

    def finish_word(self, state: tuple):
        """(state after the word boundary, bonus) for ending the partial word, or None where forbidden."""
        history, partial, node = state
        if not partial:
            return state, 0.0
        if self.lexicon is None:
            return (history + (partial,), "", None), self.finish_word_free(history, partial)
        if node >= 0:
            here = self._lexicon_scores(self.context(history))[node]
            word = self.lexicon.word_at[node]
            if word >= 0:
                return (history + (partial,), "", 0), self.word_score(history, partial) + self.beta - here
            if self.unk_score == NEG_INF:
                return None
            return (history + (partial,), "", 0), self.unk_score + self.beta - here
        return (history + (partial,), "", 0), self.beta

    def finish_word_free(self, history: tuple, partial: str) -> float:
        """Free spelling: the bonus of ending `partial` (pyctcdecode's word score)."""
        bonus = self.word_score(history, partial) + self.beta - self._partial_penalty(partial)
        if self.lm is not None and self.unigrams is not None and (partial not in self.unigrams or
                                                                  partial not in self.lm):
            bonus += self.alpha * LN10 * self.unk_score
        return bonus

    def end(self, state: tuple) -> float:
        """End of the utterance: the partial word ends, then end-of-sentence (-inf where forbidden)."""
        if self.empty_final_word and self.lexicon is None and self.lm is not None and not state[1]:
            state = (state[0], "", None)
            return self.finish_word_free(state[0], "") + self.alpha * self.lm.end_score(state[0] + ("",))
        finished = self.finish_word(state)
        if finished is None:
            return NEG_INF
        (history, _, _), bonus = finished
        if self.lm is not None:
            bonus += self.alpha * self.lm.end_score(history)
        return bonus


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _frame_plan(frames: np.ndarray, blank: int, token_min_logp: float):
    """Per frame: (candidate labels other than blank, the frame's log-probabilities as a list, blank's), with
    runs of frames where only blank is a candidate folded into one step: across such a frame every beam's mass
    moves to its blank-ending paths (pb = total + lp[blank]), which ranks the beams as before, so a run is
    one step with the summed blank log-probability (exact under the candidate pruning)."""
    keep = frames >= token_min_logp
    keep[np.arange(len(frames)), frames.argmax(axis=1)] = True
    keep[:, blank] = False
    busy = keep.any(axis=1)
    plan, run = [], 0.0
    blank_lp = frames[:, blank].tolist()
    for t in range(len(frames)):
        if not busy[t]:
            run += blank_lp[t]
            continue
        if run:
            plan.append(((), None, run))
            run = 0.0
        row = frames[t]
        lp_blank = blank_lp[t] if row[blank] >= token_min_logp else NEG_INF
        plan.append((np.flatnonzero(keep[t]).tolist(), row.tolist(), lp_blank))
    if run:
        plan.append(((), None, run))
    return plan


def _keep_split(nxt: dict, beam_width: int, beam_prune_logp: float | None) -> dict:
    """The best `beam_width` of the (prefix, ends in blank) and (prefix, ends in its label) masses."""
    entries = [(pb, key, 0) for key, (pb, _) in nxt.items() if pb > NEG_INF]
    entries += [(pnb, key, 1) for key, (_, pnb) in nxt.items() if pnb > NEG_INF]
    if not entries:
        return {}
    entries = heapq.nlargest(beam_width, entries, key=lambda e: e[0])
    if beam_prune_logp is not None:
        floor = entries[0][0] + beam_prune_logp
        entries = [e for e in entries if e[0] >= floor]
    kept: dict = {}
    for mass, key, ends_in_label in entries:
        pb, pnb = kept.get(key, (NEG_INF, NEG_INF))
        kept[key] = (pb, mass) if ends_in_label else (mass, pnb)
    return kept


_LABEL_SLOTS = 1 << 16  # labels per prefix in the transition cache's int keys


class _Prefixes:
    """The prefixes of one search as ints: id -> (word state, last label), and their transitions, cached."""

    def __init__(self, scorer: WordScorer, labels, boundary: int):
        self.scorer, self.labels, self.boundary = scorer, labels, boundary
        root = ((), "", None if scorer.lexicon is None else 0)
        self.states = [root]
        self.last = [-1]  # -1: no label yet
        self._ids = {(root, -1): 0}
        self.steps: dict = {}  # prefix * _LABEL_SLOTS + label -> (child, bonus) or None

    def step(self, prefix: int, label: int):
        """(child prefix id, bonus), or None where the label is forbidden after this prefix."""
        key = prefix * _LABEL_SLOTS + label
        found = self.steps.get(key, False)
        if found is False:
            state = self.states[prefix]
            if label == self.boundary:
                moved = self.scorer.finish_word(state)
            else:
                moved = self.scorer.spell(state, label, self.labels[label])
            if moved is None:
                found = None
            else:
                child_key = (moved[0], label)
                child = self._ids.get(child_key)
                if child is None:
                    child = self._ids[child_key] = len(self.states)
                    self.states.append(moved[0])
                    self.last.append(label)
                found = (child, moved[1])
            self.steps[key] = found
        return found


def word_beam_search(log_probs: np.ndarray, length: int | None, labels, blank: int, boundary: int,
                     scorer: WordScorer, beam_width: int = 10, token_min_logp: float = -5.0,
                     beam_prune_logp: float | None = None, nbest: int = 1,
                     split_beams: bool = False) -> list[Hypothesis]:
    """Up to `nbest` distinct transcripts, best first (never empty); log_probs [T, V] natural-log.

    split_beams: a prefix's blank-ending and label-ending masses compete for the beam as two beams (as
    pyctcdecode keeps them), instead of one prefix beam with their sum (ctcdecode)."""
    frames = np.asarray(log_probs, dtype=np.float64)
    if length is not None:
        frames = frames[: max(0, int(length))]
    prefixes = _Prefixes(scorer, labels, boundary)
    last_of, step, known = prefixes.last, prefixes.step, prefixes.steps.get
    beams = {0: (0.0, NEG_INF)}  # prefix id -> (pb, pnb)
    add = _logaddexp
    both_inf = (NEG_INF, NEG_INF)

    for candidates, lp, blank_lp in _frame_plan(frames, blank, token_min_logp):
        if lp is None:  # a run of blank-only frames
            beams = {key: (add(pb, pnb) + blank_lp, NEG_INF) for key, (pb, pnb) in beams.items()}
            continue
        nxt: dict = {}
        get = nxt.get
        for key, (pb, pnb) in beams.items():
            total = add(pb, pnb)
            last = last_of[key]
            stay_nb = NEG_INF
            for c in candidates:
                if c == last:  # the repeat collapses into this prefix
                    stay_nb = add(stay_nb, pnb + lp[c])
                    source = pb  # a repeated label is a new one only after a blank
                    if source == NEG_INF:
                        continue
                else:
                    source = total
                moved = known(key * _LABEL_SLOTS + c, False)  # the cached transition, without a call
                if moved is False:
                    moved = step(key, c)
                if moved is None:
                    continue
                child, bonus = moved
                b, nb = get(child, both_inf)
                nxt[child] = (b, add(nb, source + lp[c] + bonus))
            b, nb = get(key, both_inf)
            nxt[key] = (add(b, total + blank_lp), add(nb, stay_nb))
        if split_beams:
            kept_beams = _keep_split(nxt, beam_width, beam_prune_logp)
            if kept_beams:
                beams = kept_beams
            continue
        totals = {key: add(pb, pnb) for key, (pb, pnb) in nxt.items()}
        kept = heapq.nlargest(beam_width, totals, key=totals.__getitem__) if len(totals) > beam_width else \
            sorted(totals, key=totals.__getitem__, reverse=True)
        if beam_prune_logp is not None:
            floor = totals[kept[0]] + beam_prune_logp
            kept = [k for k in kept if totals[k] >= floor]
        kept = [k for k in kept if totals[k] > NEG_INF]
        if kept:
            beams = {k: nxt[k] for k in kept}

    results: dict = {}
    for key, (pb, pnb) in beams.items():
        state = prefixes.states[key]
        mass = add(pb, pnb)
        history, partial, _ = state
        words = history + ((partial,) if partial else ())
        score = mass + scorer.end(state)
        if words in results:  # one transcript reached through two word states (a trailing boundary): summed
            score = add(results[words].score, score)
        results[words] = Hypothesis(words, score)
    ranked = sorted(results.values(), key=lambda h: -h.score)
    finite = [h for h in ranked if h.score > NEG_INF]
    return (finite or ranked)[: max(1, nbest)]
