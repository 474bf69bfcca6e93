"""CTC prefix beam search: exactness against greedy and brute force, pruning, length masking, LM fusion."""
import itertools
import math
import sys

import numpy as np
import pytest

from ascend_asr.beam_search import prefix_beam_search, prefix_beam_search_nbest
from ascend_asr.decoding import greedy_ctc
from ascend_asr.language_model import LN10, ArpaLM, KenLM, LanguageModel
from ascend_asr.text import ENGLISH_LABELS, Vocabulary

JASPER = Vocabulary.from_spec({"labels": list(ENGLISH_LABELS), "blank": "last"})  # " ", a..z, "'", blank 28


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def random_case(rng, peak=0.0, noise=(0.5, 1.0, 3.0)):
    """Random [T, V] log-probs; with peak > 0, logits favour a random path (repeats and blanks included)."""
    t, v = int(rng.integers(0, 40)), int(rng.integers(2, 7))
    blank = int(rng.choice([0, v - 1, rng.integers(0, v)]))
    logits = rng.standard_normal((t, v)) * rng.choice(noise)
    if peak:
        logits[np.arange(t), rng.integers(0, v, size=t)] += peak
    length = None if rng.random() < 0.3 else int(rng.integers(0, t + 3))
    return log_softmax(logits), length, blank


def collapse(path, blank):
    out, previous = [], blank
    for c in path:
        if c != blank and c != previous:
            out.append(c)
        previous = c
    return tuple(out)


def brute_force(log_probs, blank, combine):
    """Every alignment enumerated: {prefix: log-mass} (combine: logaddexp = total, maximum = best path)."""
    masses = {}
    t, v = log_probs.shape
    for path in itertools.product(range(v), repeat=t):
        lp = log_probs[np.arange(t), path].sum()
        prefix = collapse(path, blank)
        masses[prefix] = combine(masses.get(prefix, -np.inf), lp)
    return masses


def frames(vocab, spec):
    """Log-probs from per-frame {label string: probability}; the remaining mass is spread over the others."""
    index = {label: i for i, label in enumerate(vocab.labels)}
    probs = np.empty((len(spec), vocab.size))
    for t, frame in enumerate(spec):
        others = vocab.size - len(frame)
        probs[t] = (1.0 - sum(frame.values())) / others if others else 0.0
        for label, p in frame.items():
            probs[t, index[label]] = p
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs > 0).all()
    return np.log(probs)


# --- exactness without an LM -------------------------------------------------------------------------------

def test_beam_1_best_path_equals_greedy_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(600):
        log_probs, length, blank = random_case(rng, peak=float(rng.choice([0.0, 2.0, 8.0])))
        assert prefix_beam_search(log_probs, length, blank, beam_width=1, merge="max") == \
            greedy_ctc(log_probs, length, blank)


def test_beam_1_equals_greedy_on_peaked_inputs():
    rng = np.random.default_rng(1)
    for _ in range(400):
        log_probs, length, blank = random_case(rng, peak=12.0)
        assert prefix_beam_search(log_probs, length, blank, beam_width=1) == greedy_ctc(log_probs, length, blank)


def test_top_1_pruning_leaves_only_the_greedy_path_at_any_beam_width():
    rng = np.random.default_rng(2)
    for _ in range(300):
        log_probs, length, blank = random_case(rng)
        for beam in (1, 4):
            assert prefix_beam_search(log_probs, length, blank, beam_width=beam, cutoff_top_n=1) == \
                greedy_ctc(log_probs, length, blank)


def test_blank_between_equal_labels_keeps_both():
    vocab = Vocabulary(("a", "b", "<blank>"), 2)
    aa = frames(vocab, [{"a": 0.9}, {"a": 0.9}, {"<blank>": 0.9}, {"a": 0.9}, {"a": 0.9}, {"b": 0.9}])
    for merge in ("sum", "max"):
        assert prefix_beam_search(aa, None, 2, merge=merge) == [0, 0, 1]
        assert prefix_beam_search(aa, None, 2, beam_width=1, merge=merge) == [0, 0, 1]


@pytest.mark.parametrize("merge, combine", [("sum", np.logaddexp), ("max", np.maximum)])
def test_wide_beam_finds_every_prefix_with_its_exact_mass(merge, combine):
    rng = np.random.default_rng(3)
    for _ in range(25):
        t, v = int(rng.integers(1, 6)), int(rng.integers(2, 5))
        blank = int(rng.integers(0, v))
        log_probs = log_softmax(rng.standard_normal((t, v)) * 2)
        expected = brute_force(log_probs, blank, combine)
        nbest = prefix_beam_search_nbest(log_probs, None, blank, beam_width=10_000, merge=merge)
        assert {tuple(p): s for p, s in nbest} == pytest.approx(expected, abs=1e-9)
        assert nbest[0][1] == pytest.approx(max(expected.values()))


def test_summed_beam_1_can_beat_greedy():
    """Greedy takes the best single path ("ab", 0.24); the prefix "a" has more mass (0.48)."""
    vocab = Vocabulary(("a", "b", "<blank>"), 2)
    log_probs = np.log(np.array([[0.6, 1e-9, 0.4 - 1e-9], [0.3, 0.4, 0.3]]))
    assert greedy_ctc(log_probs, None, 2) == [0, 1]
    assert prefix_beam_search(log_probs, None, 2, beam_width=1, merge="max") == [0, 1]
    assert prefix_beam_search(log_probs, None, 2, beam_width=1) == [0]
    assert vocab.decode(prefix_beam_search(log_probs, None, 2)) == "a"
    masses = brute_force(log_probs, 2, np.logaddexp)
    assert masses[(0,)] == pytest.approx(math.log(0.48), abs=1e-6) and masses[(0, 1)] < masses[(0,)]


def test_pruning_does_not_change_results_on_peaked_inputs():
    rng = np.random.default_rng(4)
    for _ in range(200):
        log_probs, length, blank = random_case(rng, peak=6.0, noise=(0.5, 1.0))  # p(best) ~ 0.99
        full = prefix_beam_search(log_probs, length, blank, cutoff_top_n=100)
        assert prefix_beam_search(log_probs, length, blank, cutoff_top_n=3) == full
        assert prefix_beam_search(log_probs, length, blank, cutoff_prob=0.99) == full


def test_frames_beyond_length_are_never_decoded():
    rng = np.random.default_rng(5)
    log_probs = log_softmax(rng.standard_normal((30, 29)) * 3)
    decoded = prefix_beam_search(log_probs, 17, 28)
    assert decoded == prefix_beam_search(log_probs[:17], None, 28)
    garbage = log_probs.copy()
    garbage[17:] = np.log(np.full(29, 0.01 / 28))
    garbage[17:, 5] = np.log(0.99)
    assert prefix_beam_search(garbage, 17, 28) == decoded
    assert prefix_beam_search(garbage, np.int64(17), 28) == decoded
    assert prefix_beam_search(log_probs, 0, 28) == []
    assert prefix_beam_search(log_probs[:0], None, 28) == []
    assert prefix_beam_search(log_probs, 99, 28) == prefix_beam_search(log_probs, None, 28)


def test_blank_skip_drops_confident_blank_frames():
    """The LSTM TIMIT recipe's skip: a confidently blank frame no longer separates equal labels."""
    vocab = Vocabulary(("a", "<blank>"), 1)
    log_probs = frames(vocab, [{"a": 0.95}, {"<blank>": 0.95}, {"a": 0.95}])
    assert prefix_beam_search(log_probs, None, 1) == [0, 0]
    assert prefix_beam_search(log_probs, None, 1, blank_skip_threshold=0.9) == [0]
    assert prefix_beam_search(log_probs[1:2], None, 1, blank_skip_threshold=0.9) == []


def test_nbest_is_sorted_unique_and_led_by_the_best():
    rng = np.random.default_rng(6)
    log_probs = log_softmax(rng.standard_normal((40, 6)) * 2)
    nbest = prefix_beam_search_nbest(log_probs, None, 0, beam_width=8)
    scores = [s for _, s in nbest]
    assert len(nbest) == 8 and scores == sorted(scores, reverse=True)
    assert len({tuple(p) for p, _ in nbest}) == 8
    assert nbest[0][0] == prefix_beam_search(log_probs, None, 0, beam_width=8)
    normalized = prefix_beam_search_nbest(log_probs, None, 0, beam_width=8, length_normalize=True)
    by_prefix = {tuple(p): s for p, s in nbest}
    for prefix, score in normalized:
        assert score == pytest.approx(by_prefix[tuple(prefix)] / max(1, len(prefix)))


def test_bad_inputs_are_refused():
    probs = np.full((5, 4), 0.25)
    with pytest.raises(ValueError, match="log-probabilities"):
        prefix_beam_search(probs, None, 0)
    with pytest.raises(ValueError, match="labels"):
        prefix_beam_search(np.log(probs), None, 0, lm=object())
    with pytest.raises(ValueError, match="merge"):
        prefix_beam_search(np.log(probs), None, 0, merge="mean")
    with pytest.raises(ValueError, match="blank"):
        prefix_beam_search(np.log(probs), None, 4)
    with pytest.raises(ValueError, match="word_boundary"):
        prefix_beam_search(np.log(probs), None, 0, word_boundary=0)


# --- language models ---------------------------------------------------------------------------------------

def arpa(*orders):
    """ARPA text (kenlm's layout: tab after the probability and before the back-off) from, per order,
    lines "logprob words [backoff]"."""
    out = ["\\data\\"] + [f"ngram {n}={len(grams)}" for n, grams in enumerate(orders, 1)]
    for n, grams in enumerate(orders, 1):
        out += ["", f"\\{n}-grams:"]
        for line in grams:
            fields = line.split()
            out.append("\t".join([fields[0], " ".join(fields[1:n + 1])] + fields[n + 1:]))
    return "\n".join(out + ["", "\\end\\", ""])


WORD_ARPA = arpa(
    ["-99 <s> -0.3", "-1.0 </s>", "-1.0 <unk>", "-0.7 i -0.3", "-2.5 bat -0.3", "-1.0 bet -0.3", "-0.8 you -0.3"],
    ["-0.2 <s> i", "-0.3 i bet", "-2.0 i bat", "-0.2 bet you", "-0.5 bat you", "-0.1 you </s>"],
)

TRIGRAM_ARPA = arpa(
    ["-1.0 <unk> 0", "-99 <s> -0.5", "-0.7 </s> 0", "-0.6 a -0.4", "-0.8 b -0.2", "-0.9 c -0.3"],
    ["-0.3 <s> a -0.1", "-0.5 a b -0.25", "-0.4 b c", "-0.2 c </s>", "-0.6 b a -0.15"],
    ["-0.1 <s> a b", "-0.05 a b c"],
)

PHONES = Vocabulary(("<blank>", "sil", "b", "aa", "ae", "t"), 0)  # blank first, as in the LSTM recipe

PHONE_ARPA = arpa(
    ["-99 <s> -0.2", "-1.0 </s>", "-1.0 <unk>", "-0.8 sil -0.2", "-0.8 b -0.2", "-0.9 aa -0.2", "-0.9 ae -0.2",
     "-0.8 t -0.2"],
    ["-0.1 <s> sil", "-0.3 sil b", "-0.2 b aa", "-2.0 b ae", "-0.3 aa t", "-0.3 ae t", "-0.3 t sil"],
)


def _kenlm(path):
    pytest.importorskip("kenlm")
    return KenLM(path)


LM_KINDS = [pytest.param(ArpaLM, id="arpa"), pytest.param(_kenlm, id="kenlm")]


@pytest.fixture
def write(tmp_path):
    def write(name, text):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def test_arpa_reader_backs_off_like_the_arpa_definition(write):
    lm = ArpaLM(write("tri.arpa", TRIGRAM_ARPA))
    assert isinstance(lm, LanguageModel) and lm.order == 3
    cases = {
        ((), "a"): -0.3,                     # <s> a
        (("a",), "b"): -0.1,                 # <s> a b
        (("a", "b"), "c"): -0.05,            # a b c
        (("a", "b"), "a"): -0.25 - 0.6,      # bo(a b) + p(a | b)
        (("a", "b", "c"), "a"): -0.3 - 0.6,  # bo(b c)=0, bo(c) + p(a)
        (("b",), "a"): -0.6,                 # bo(<s> b)=0, p(a | b)
        (("a",), "zzz"): -0.1 - 0.4 - 1.0,   # out of vocabulary: <unk>
    }
    for (history, word), log10 in cases.items():
        assert lm.score(history, word) == pytest.approx(log10 * LN10)
    assert lm.end_score(("a", "b", "c")) == pytest.approx(-0.2 * LN10)


def test_arpa_reader_refuses_malformed_files(write):
    with pytest.raises(ValueError, match="do not match"):
        ArpaLM(write("bad.arpa", TRIGRAM_ARPA.replace("ngram 3=2", "ngram 3=3")))
    # text before \data\ (SRILM writes some) and space-separated fields also read
    spaced = ArpaLM(write("spaced.arpa", "a header\n" + TRIGRAM_ARPA.replace("\t", " ")))
    assert spaced.score(("a", "b"), "c") == pytest.approx(-0.05 * LN10)
    with pytest.raises(ValueError, match="not an ARPA"):
        ArpaLM(write("none.arpa", "hello\n"))


def test_kenlm_adapter_matches_the_arpa_reader(write):
    path = write("tri.arpa", TRIGRAM_ARPA)
    kenlm_lm, arpa_lm = _kenlm(path), ArpaLM(path)
    assert kenlm_lm.order == 3
    rng = np.random.default_rng(7)
    words = ["a", "b", "c", "zzz"]
    for _ in range(300):
        history = tuple(rng.choice(words, size=int(rng.integers(0, 5))).tolist())
        word = str(rng.choice(words))
        assert kenlm_lm.score(history, word) == pytest.approx(arpa_lm.score(history, word), abs=1e-5)
        assert kenlm_lm.end_score(history) == pytest.approx(arpa_lm.end_score(history), abs=1e-5)


def test_kenlm_missing_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "kenlm", None)
    with pytest.raises(ImportError, match="pip install kenlm"):
        KenLM(tmp_path / "any.arpa")


def i_b_t_you():
    """'i bat you' acoustically, but barely: the vowel frame is a 0.50 / e 0.45."""
    spec = [{"i": 0.9}, {"<blank>": 0.9}, {" ": 0.9}, {"b": 0.9}, {"a": 0.5, "e": 0.45}, {"t": 0.9},
            {" ": 0.9}, {"y": 0.9}, {"o": 0.9}, {"u": 0.9}, {"<blank>": 0.9}]
    return frames(JASPER, spec)


@pytest.mark.parametrize("make_lm", LM_KINDS)
def test_word_lm_overrides_a_slight_acoustic_preference(make_lm, write):
    lm = make_lm(write("words.arpa", WORD_ARPA))
    log_probs = i_b_t_you()
    space = JASPER.labels.index(" ")

    def decode(alpha, **kw):
        ids = prefix_beam_search(log_probs, None, JASPER.blank, lm=lm, alpha=alpha, beta=1.0,
                                 word_boundary=space, labels=JASPER.labels, **kw)
        return JASPER.decode(ids)

    assert JASPER.decode(prefix_beam_search(log_probs, None, JASPER.blank)) == "i bat you"
    assert decode(0.0) == "i bat you"
    assert decode(0.8) == "i bet you"
    assert decode(0.8, beam_width=2) == "i bet you"


@pytest.mark.parametrize("make_lm", LM_KINDS)
def test_word_lm_score_adds_sentence_log_prob_and_word_bonus(make_lm, write):
    """Every path of a prefix gets the same LM factor, so the LM moves a prefix's score by exactly
    alpha * ln P(i bet you </s>) + 3 beta (the last word and </s> scored at the end)."""
    lm = make_lm(write("words.arpa", WORD_ARPA))
    log_probs = i_b_t_you()
    space, alpha, beta = JASPER.labels.index(" "), 0.7, 0.4
    plain = dict((JASPER.decode(p), s) for p, s in prefix_beam_search_nbest(log_probs, None, 28, beam_width=64))
    fused = dict((JASPER.decode(p), s) for p, s in prefix_beam_search_nbest(
        log_probs, None, 28, beam_width=64, lm=lm, alpha=alpha, beta=beta, word_boundary=space,
        labels=JASPER.labels))
    sentence = (-0.2 - 0.3 - 0.2 - 0.1) * LN10
    assert fused["i bet you"] - plain["i bet you"] == pytest.approx(alpha * sentence + 3 * beta, abs=1e-4)


@pytest.mark.parametrize("make_lm", LM_KINDS)
def test_token_level_phone_lm(make_lm, write):
    lm = make_lm(write("phones.arpa", PHONE_ARPA))
    log_probs = frames(PHONES, [{"sil": 0.9}, {"b": 0.9}, {"ae": 0.5, "aa": 0.45}, {"<blank>": 0.9},
                                {"t": 0.9}, {"sil": 0.9}])

    def decode(alpha):
        ids = prefix_beam_search(log_probs, None, PHONES.blank, lm=lm, alpha=alpha, beta=0.0, labels=PHONES.labels)
        return " ".join(PHONES.labels[i] for i in ids)

    assert decode(0.0) == "sil b ae t sil"
    assert decode(0.5) == "sil b aa t sil"


def test_a_frame_without_any_finite_score_keeps_the_beam():
    """All -inf (e.g. an underflowed frame) must not empty the beam."""
    log_probs = np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]]))
    broken = np.vstack([log_probs[:2], np.full((1, 3), -np.inf), log_probs[2:]])
    assert prefix_beam_search(broken, None, 0, 4) == prefix_beam_search(log_probs, None, 0, 4) == [1, 2, 1]
