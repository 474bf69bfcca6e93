"""Lexicon-constrained beam search (lexicon.py, word_beam.py, transcribe.py): the lexicon, the LM look-ahead,
open vocabulary, pauses without spaces, hotwords, N-best, and the options infer refuses."""
import math
import string

import numpy as np
import pytest

from ascend_asr.errors import OptionError, ProfileError
from ascend_asr.infer import InferOptions
from ascend_asr.language_model import ArpaLM
from ascend_asr.lexicon import Lexicon, RangeMax, read_lexicon_words, spell
from ascend_asr.text import Vocabulary
from ascend_asr.pyctcdecode_agreement import ctc_log_likelihood
from ascend_asr.transcribe import DecoderSettings, make_transcriber, resolve_lexicon_mode
from ascend_asr.word_beam import WordScorer, word_beam_search

LABELS = ("_", " ") + tuple(string.ascii_lowercase)
VOCAB = Vocabulary(LABELS, 0)
BLANK, SPACE = 0, 1
ID = {c: i for i, c in enumerate(LABELS)}


def frames(*columns, floor=1e-4):
    """Log-probabilities [T, V]: each column a {label: probability} (the rest share what is left, >= floor)."""
    out = np.full((len(columns), len(LABELS)), floor)
    for t, column in enumerate(columns):
        for label, p in column.items():
            out[t, ID[label]] = p
        rest = [i for i in range(len(LABELS)) if LABELS[i] not in column]
        out[t, rest] = max(floor, (1 - sum(column.values())) / len(rest))
    return np.log(out / out.sum(axis=1, keepdims=True))


def spelled(text):
    """Confident frames spelling `text`, a blank after each label."""
    cols = []
    for c in text:
        cols += [{c: 0.98}, {"_": 0.98}]
    return cols


def lexicon(*words):
    return Lexicon.build(words, LABELS, BLANK, SPACE)


def test_lexicon_trie_spans_each_prefix_as_one_range_of_the_sorted_words():
    lex = lexicon("cat", "car", "cart", "dog", "zebra!")  # "zebra!" cannot be spelled: left out
    assert lex.words == ("car", "cart", "cat", "dog")
    node = lex.child(lex.child(0, ID["c"]), ID["a"])
    assert [lex.words[i] for i in range(lex.span_lo[node], lex.span_hi[node])] == ["car", "cart", "cat"]
    assert lex.word_at[lex.child(node, ID["r"])] == 0 and lex.child(node, ID["x"]) == -1
    with pytest.raises(ProfileError, match="none of its words"):
        lexicon("ÄÖÜ")


def test_multi_character_labels_spell_longest_first():
    assert spell("thee", {"t": 0, "h": 1, "th": 2, "e": 3}) == [2, 3, 3]
    assert spell("x", {"t": 0}) is None


def test_range_maximum_matches_brute_force():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(37)
    lo = rng.integers(0, 37, 200)
    hi = np.minimum(37, lo + rng.integers(1, 20, 200))
    assert np.allclose(RangeMax(values).over(lo, hi), [values[a:b].max() for a, b in zip(lo, hi)])


def test_lexicon_file_takes_the_first_field_of_each_line(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("hello h e l l o\n\nworld\tw er l d\n")
    assert read_lexicon_words(str(path)) == ["hello", "world"]
    with pytest.raises(ProfileError, match="not found"):
        read_lexicon_words(str(tmp_path / "missing.txt"))


def test_a_closed_lexicon_corrects_a_misspelling_the_acoustics_prefer():
    cols = spelled("c") + [{"u": 0.55, "a": 0.43}, {"_": 0.98}] + spelled("t")
    lp = frames(*cols)
    greedy = make_transcriber(VOCAB, False)(lp, None).text
    assert greedy == "cut"
    scorer = WordScorer(lexicon=lexicon("cat", "dog"), unk_score=-math.inf)
    assert word_beam_search(lp, None, LABELS, BLANK, SPACE, scorer)[0].words == ("cat",)


def test_an_unknown_word_gets_through_only_with_a_finite_unk_score():
    lp = frames(*spelled("zq cat"))
    closed = WordScorer(lexicon=lexicon("cat", "dog"), unk_score=-math.inf)
    opened = WordScorer(lexicon=lexicon("cat", "dog"), unk_score=-3.0)
    assert word_beam_search(lp, None, LABELS, BLANK, SPACE, opened)[0].words == ("zq", "cat")
    assert "zq" not in word_beam_search(lp, None, LABELS, BLANK, SPACE, closed)[0].words


def test_words_across_a_pause_without_a_space_label_stay_apart():
    """Models trained with spaces emit only blanks across a long pause: the lexicon ends the word there."""
    lp = frames(*(spelled("cat") + [{"_": 0.98}] * 6 + spelled("dog")))
    assert make_transcriber(VOCAB, False)(lp, None).text == "catdog"
    scorer = WordScorer(lexicon=lexicon("cat", "dog"), unk_score=-10.0)
    assert word_beam_search(lp, None, LABELS, BLANK, SPACE, scorer)[0].words == ("cat", "dog")


BIGRAM_ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.3
-0.5\tcat\t-0.2
-2.5\tcar\t-0.2
-3.0\tdog\t-0.2

\\2-grams:
-0.3\t<s> cat
-0.4\tcar dog

\\end\\
"""


@pytest.fixture
def unigram_lm(tmp_path):
    """A word bigram over cat, car and dog (kenlm needs order 2 at least)."""
    path = tmp_path / "lm.arpa"
    path.write_text(BIGRAM_ARPA)
    return str(path)


def test_look_ahead_scores_telescope_to_the_lm_score_of_each_finished_word(unigram_lm):
    """Partial words carry their best completion; once finished, a word has paid alpha * ln P + beta exactly."""
    lm = ArpaLM(unigram_lm)
    scorer = WordScorer(lm=lm, alpha=0.7, beta=0.4, lexicon=lexicon("cat", "car", "dog"), unk_score=-math.inf)
    best = word_beam_search(frames(*spelled("car dog")), None, LABELS, BLANK, SPACE, scorer, beam_width=20)[0]
    assert best.words == ("car", "dog")
    words_score = 0.7 * (lm.score((), "car") + lm.score(("car",), "dog") + lm.end_score(("car", "dog"))) + 2 * 0.4
    acoustic = ctc_log_likelihood(frames(*spelled("car dog")), [ID[c] for c in "car dog"], BLANK)
    assert best.score - acoustic == pytest.approx(words_score, abs=0.01)  # 0.01: paths the pruning never tried


def test_lm_prefers_the_likelier_word_when_the_acoustics_hesitate(unigram_lm):
    lp = frames(*(spelled("ca") + [{"t": 0.45, "r": 0.53}, {"_": 0.98}]))
    no_lm = WordScorer(lexicon=lexicon("cat", "car"), unk_score=-math.inf)
    with_lm = WordScorer(lm=ArpaLM(unigram_lm), alpha=1.0, lexicon=lexicon("cat", "car"), unk_score=-math.inf)
    assert word_beam_search(lp, None, LABELS, BLANK, SPACE, no_lm)[0].words == ("car",)
    assert word_beam_search(lp, None, LABELS, BLANK, SPACE, with_lm)[0].words == ("cat",)


def test_a_hotword_wins_over_the_word_the_lm_prefers(unigram_lm, tmp_path):
    lp = frames(*(spelled("ca") + [{"t": 0.5, "b": 0.48}, {"_": 0.98}]))
    hotwords = tmp_path / "hot.txt"
    hotwords.write_text("cab\t12.0\n")
    plain = DecoderSettings("beam", lm=unigram_lm, lexicon="lm")
    boosted = DecoderSettings("beam", lm=unigram_lm, lexicon="lm", hotwords=str(hotwords))
    assert make_transcriber(VOCAB, False, plain)(lp, None).text == "cat"
    # not in the LM: it joins the lexicon and scores unk_score (-10) plus its boost
    assert make_transcriber(VOCAB, False, boosted)(lp, None).text == "cab"


def test_nbest_lists_distinct_transcripts_best_first(unigram_lm):
    lp = frames(*(spelled("ca") + [{"t": 0.5, "r": 0.48}, {"_": 0.98}]))
    transcript = make_transcriber(VOCAB, False, DecoderSettings("beam", lm=unigram_lm, lexicon="lm", nbest=3))(lp, None)
    texts = [t for t, _ in transcript.nbest]
    scores = [s for _, s in transcript.nbest]
    assert texts[0] == transcript.text and len(set(texts)) == len(texts) >= 2
    assert scores == sorted(scores, reverse=True)
    assert transcript.fields()["nbest"][0]["hyp"] == transcript.text


def test_a_lexicon_file_constrains_the_search_without_an_lm(tmp_path):
    lp = frames(*(spelled("c") + [{"u": 0.55, "a": 0.43}, {"_": 0.98}] + spelled("t")))
    words = tmp_path / "words.txt"
    words.write_text("cat\ndog\n")
    closed = DecoderSettings("beam", lexicon=str(words), unk_score=-math.inf)
    assert make_transcriber(VOCAB, False, closed)(lp, None).text == "cat"
    assert make_transcriber(VOCAB, False, DecoderSettings("beam", lexicon="none"))(lp, None).text == "cut"


def test_auto_lexicon_is_the_lm_words_for_a_word_lm_and_none_otherwise():
    assert resolve_lexicon_mode(DecoderSettings("beam", lm="lm.arpa"), SPACE) == "lm"
    assert resolve_lexicon_mode(DecoderSettings("beam"), SPACE) == "none"
    assert resolve_lexicon_mode(DecoderSettings("beam", lm="phones.arpa"), None) == "none"


@pytest.mark.parametrize("options,message", [
    ({"decoder": "greedy", "lexicon": "lm"}, "--lexicon"),
    ({"decoder": "greedy", "hotwords": "h.txt"}, "--hotwords"),
    ({"decoder": "beam", "nbest": 0}, "--nbest"),
    ({"decoder": "beam", "unk_score": 3.0}, "--unk-score"),
])
def test_infer_refuses_decoding_options_that_contradict_each_other(options, message):
    with pytest.raises(OptionError, match=message):
        InferOptions(**options)


def test_phone_models_have_no_words_to_look_up(unigram_lm):
    phones = Vocabulary(("blank", "UNK", "aa", "b"), 0, separator=" ")
    with pytest.raises(OptionError, match="no space"):
        make_transcriber(phones, False, DecoderSettings("beam", lm=unigram_lm, lexicon="lm"))
    make_transcriber(phones, False, DecoderSettings("beam", lexicon="auto"))  # auto: the plain beam


def test_lexicon_modes_that_read_the_lm_need_one():
    with pytest.raises(OptionError, match="give --lm"):
        make_transcriber(VOCAB, False, DecoderSettings("beam", lexicon="lm"))


def test_a_large_lexicon_looks_ahead_without_context_and_words_still_pay_their_exact_lm_score(unigram_lm,
                                                                                             monkeypatch):
    import ascend_asr.word_beam as word_beam

    monkeypatch.setattr(word_beam, "LOOKAHEAD_CONTEXT_WORDS", 1)  # every lexicon is "large"
    lm = ArpaLM(unigram_lm)
    scorer = WordScorer(lm=lm, alpha=0.7, beta=0.4, lexicon=lexicon("cat", "car", "dog"), unk_score=-math.inf)
    best = word_beam_search(frames(*spelled("car dog")), None, LABELS, BLANK, SPACE, scorer, beam_width=20)[0]
    words_score = 0.7 * (lm.score((), "car") + lm.score(("car",), "dog") + lm.end_score(("car", "dog"))) + 2 * 0.4
    acoustic = ctc_log_likelihood(frames(*spelled("car dog")), [ID[c] for c in "car dog"], BLANK)
    assert best.words == ("car", "dog") and best.score - acoustic == pytest.approx(words_score, abs=0.01)
    assert list(scorer._lookahead) == [()]
