"""N-gram language models for CTC beam search.

Every score is a **natural logarithm**, the base of the acoustic log-probabilities it is added to.
ARPA files and kenlm work in log10, so both adapters here multiply by ln(10).

`history` is the tuple of words since the start of the sentence, without `<s>`: the adapters put
the sentence-start context in themselves. A "word" is whatever unit the LM was trained on (a word
for an English word LM, a phone for a phone LM).

kenlm is an optional dependency (`pip install kenlm`, compiled from source); `ArpaLM` reads ARPA
text files in pure Python and gives the same scores for the models it can load.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

from .errors import AscendAsrError

LN10 = math.log(10.0)
UNK_LOG10 = -100.0  # what kenlm substitutes for an ARPA file without <unk>
_CACHE_LIMIT = 1_000_000  # entries; caches are cleared when they grow past it


@runtime_checkable
class LanguageModel(Protocol):
    def score(self, history: tuple[str, ...], word: str) -> float:
        """ln P(word | <s> history)."""

    def end_score(self, history: tuple[str, ...]) -> float:
        """ln P(</s> | <s> history)."""


def _import_kenlm():
    try:
        import kenlm
    except ImportError as exc:
        raise ImportError(
            "KenLM language models need the optional kenlm package: pip install kenlm "
            "(or pip install 'ascend-asr[lm]'). ascend_asr.language_model.ArpaLM reads ARPA files without it."
        ) from exc
    return kenlm


class KenLM:
    """A kenlm model (ARPA or kenlm binary) behind the `LanguageModel` protocol.

    Only the last `order - 1` words of a history can matter to an n-gram model, so states and
    scores are cached under that context (plus whether it still reaches back to `<s>`).
    """

    def __init__(self, path):
        kenlm = _import_kenlm()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"language model not found: {path}")
        self._kenlm = kenlm
        self._model = _open_kenlm(kenlm, path)
        self.order = int(self._model.order)
        self._states: dict = {}
        self._scores: dict = {}

    def score(self, history: tuple[str, ...], word: str) -> float:
        return LN10 * self._log10(history, word)

    def end_score(self, history: tuple[str, ...]) -> float:
        return LN10 * self._log10(history, "</s>")

    def __contains__(self, word: str) -> bool:
        """Whether the model has `word` (otherwise it is scored as <unk>)."""
        return word in self._model

    def _context(self, history: tuple[str, ...]) -> tuple[bool, tuple[str, ...]]:
        n = self.order - 1
        if len(history) >= n:
            return False, tuple(history[len(history) - n:])
        return True, tuple(history)

    def _state(self, context: tuple[bool, tuple[str, ...]]):
        state = self._states.get(context)
        if state is None:
            begin, words = context
            state = self._kenlm.State()
            if begin:
                self._model.BeginSentenceWrite(state)
            else:
                self._model.NullContextWrite(state)
            for word in words:
                out = self._kenlm.State()
                self._model.BaseScore(state, word, out)
                state = out
            if len(self._states) > _CACHE_LIMIT:
                self._states.clear()
            self._states[context] = state
        return state

    def _log10(self, history: tuple[str, ...], word: str) -> float:
        context = self._context(history)
        key = (context, word)
        value = self._scores.get(key)
        if value is None:
            value = self._model.BaseScore(self._state(context), word, self._kenlm.State())
            if len(self._scores) > _CACHE_LIMIT:
                self._scores.clear()
            self._scores[key] = value
        return value


KENLM_BINARY_MAGIC = b"mmap lm "


def _kenlm_reason(exc: BaseException) -> str:
    """kenlm's message without its C++ signature: the part after 'threw ...Exception.', on one line."""
    text = " ".join(str(exc).split())
    if "Exception." in text:
        text = text.split("Exception.", 1)[1].strip()
    text = text.rstrip(")").strip()
    return (text[:240] + "...") if len(text) > 240 else (text or type(exc).__name__)


def _open_kenlm(kenlm, path: Path):
    """kenlm.Model(path), with every failure of kenlm (OSError, UnicodeDecodeError, RuntimeError...) turned into
    one ArpaError naming the file. ARPA text gets the pure-Python reader's header check first (cheap: it stops at
    the first n-gram section), so the common mistakes are told in our words, with the line."""
    fix = "check it with kenlm's query or rebuild it (lmplz, build_binary)"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(len(KENLM_BINARY_MAGIC))
    except OSError as exc:
        raise ArpaError(f"{path}: cannot read the language model ({exc.strerror or exc}); check the --lm path") \
            from exc
    if size == 0:
        raise ArpaError(f"{path}: empty file, not a valid ARPA or kenlm binary; {fix}")
    if head != KENLM_BINARY_MAGIC:
        check_arpa_header(path)
    try:
        return kenlm.Model(str(path))
    except Exception as exc:  # kenlm raises OSError, UnicodeDecodeError (in its own message) and others
        raise ArpaError(f"{path}: not a valid ARPA or kenlm binary: {_kenlm_reason(exc)}; {fix}") from None


def check_arpa_header(path) -> dict[int, int]:
    """The \\data\\ counts of an ARPA text file, read up to its first n-gram section (the file's head only).
    Raises ArpaError naming the file and line when that head is not ARPA: not UTF-8, no \\data\\, a line that
    is not 'ngram N=count', orders not 1..N."""
    declared: dict[int, int] = {}
    in_data = False
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(_utf8_lines(f, path), 1):
                line = raw.strip()
                where = f"{path}:{number}"
                if not line:
                    continue
                if line == "\\data\\":
                    in_data = True
                elif in_data and line.startswith("\\"):
                    break
                elif in_data:
                    n, eq, count = line[len("ngram "):].partition("=")
                    if not line.startswith("ngram ") or not eq:
                        raise ArpaError(f"{where}: expected 'ngram N=count' in \\data\\, got {line[:80]!r}; "
                                        f"{_ARPA_FIX}")
                    order = _count(n.strip(), "N in 'ngram N=count'", where)
                    declared[order] = _count(count.strip(), "the count in 'ngram N=count'", where)
                if number > 10_000 and not in_data:
                    break
    except OSError as exc:
        raise ArpaError(f"{path}: cannot read the language model ({exc.strerror or exc}); check the --lm path") \
            from exc
    if not declared:
        raise ArpaError(f"{path}: not a valid ARPA or kenlm binary: no \\data\\ header with 'ngram N=count' "
                        f"lines; {_ARPA_FIX}")
    if sorted(declared) != list(range(1, len(declared) + 1)):
        raise ArpaError(f"{path}: the \\data\\ header declares n-gram orders {sorted(declared)}, expected 1..N "
                        f"with none missing; {_ARPA_FIX}")
    return declared


class ArpaLM:
    """A back-off n-gram model read from an ARPA text file, in pure Python.

    P(w | h) is the stored n-gram probability of the longest `h' w` found (h' a suffix of h),
    times the back-off weights of the contexts that were dropped on the way; words outside the
    vocabulary are `<unk>` (log10 -100 when the file has none, as in kenlm).
    """

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                self._probs, self._backoffs, self.order = parse_arpa(_utf8_lines(f, path), str(path))
        except OSError as exc:
            raise ArpaError(f"{path}: cannot read the language model ({exc.strerror or exc}); check the --lm path") \
                from exc
        self._probs.setdefault(("<unk>",), UNK_LOG10)
        self._vocab = {ngram[0] for ngram in self._probs if len(ngram) == 1}
        self._cache: dict = {}

    def score(self, history: tuple[str, ...], word: str) -> float:
        return LN10 * self._log10(history, word)

    def end_score(self, history: tuple[str, ...]) -> float:
        return LN10 * self._log10(history, "</s>")

    def __contains__(self, word: str) -> bool:
        """Whether the model has `word` (otherwise it is scored as <unk>)."""
        return word in self._vocab and word not in ("<unk>", "<s>", "</s>")

    def _log10(self, history: tuple[str, ...], word: str) -> float:
        n = self.order - 1
        context = (("<s>",) + tuple(history))[-n:] if n else ()
        context = tuple(w if w in self._vocab else "<unk>" for w in context)
        word = word if word in self._vocab else "<unk>"
        key = (context, word)
        value = self._cache.get(key)
        if value is None:
            value = self._backoff_log10(context, word)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = value
        return value

    def _backoff_log10(self, context: tuple[str, ...], word: str) -> float:
        penalty = 0.0
        while True:
            prob = self._probs.get(context + (word,))
            if prob is not None:
                return penalty + prob
            penalty += self._backoffs.get(context, 0.0)
            context = context[1:]  # the unigram always exists (word is in the vocabulary or <unk>)


class ArpaError(AscendAsrError, ValueError):
    """An ARPA file that cannot be read (a ValueError too, as parse_arpa raised before)."""


_ARPA_FIX = "give a valid ARPA file (as written by kenlm's lmplz or SRILM's ngram-count) to --lm"


def _utf8_lines(f, path):
    for number, raw in enumerate(f, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArpaError(f"{path}:{number}: not UTF-8 text ({exc.reason} at column {exc.start + 1}); "
                            f"{_ARPA_FIX}") from exc


def _count(text: str, what: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ArpaError(f"{where}: {what} must be a whole number, found {text!r}; {_ARPA_FIX}")
    return int(text)


def _log10_value(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value == math.inf:
        raise ArpaError(f"{where}: expected a log10 value, found {text!r}; {_ARPA_FIX}")
    return value


def parse_arpa(lines: Iterable[str], source: str = "ARPA") -> tuple[dict, dict, int]:
    """(log10 probabilities, log10 back-off weights, order) of an ARPA file, keyed by word tuples.

    A malformed file raises ArpaError naming `source`, the line and the fix."""
    probs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    declared: dict[int, int] = {}
    found: dict[int, int] = {}
    section = None  # "data", an n-gram order, or "end"
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line:
            continue
        if line == "\\data\\":
            section = "data"
        elif line == "\\end\\":
            section = "end"
            break
        elif line.startswith("\\") and line.endswith("-grams:"):
            section = _count(line[1:-len("-grams:")], "the n-gram order", where)
            if section < 1 or section not in declared or section in found:
                raise ArpaError(f"{where}: section {line!r} is not one the \\data\\ header declares once "
                                f"({sorted(declared)}); {_ARPA_FIX}")
            found[section] = 0
        elif section == "data":
            n, eq, count = line[len("ngram "):].partition("=")
            if not line.startswith("ngram ") or not eq:
                raise ArpaError(f"{where}: expected 'ngram N=count' in \\data\\, got {line!r}; {_ARPA_FIX}")
            order = _count(n.strip(), "N in 'ngram N=count'", where)
            if order < 1:
                raise ArpaError(f"{where}: n-gram order {order} must be at least 1; {_ARPA_FIX}")
            declared[order] = _count(count.strip(), "the count in 'ngram N=count'", where)
        elif isinstance(section, int):
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise ArpaError(f"{where}: a {section}-gram needs {section + 1} or {section + 2} fields, found "
                                f"{len(fields)}; {_ARPA_FIX}")
            words = tuple(fields[1:section + 1])
            probs[words] = _log10_value(fields[0], where)
            if len(fields) == section + 2:
                backoffs[words] = _log10_value(fields[-1], where)
            found[section] += 1
        # text before \data\ is a free-form header
    if section != "end" or not declared:
        raise ArpaError(f"{source}: not an ARPA file: missing \\data\\ or \\end\\; {_ARPA_FIX}")
    if found != declared:
        raise ArpaError(f"{source}: ARPA n-gram counts {found} do not match the \\data\\ header {declared}; "
                        f"{_ARPA_FIX}")
    return probs, backoffs, max(declared)


def arpa_unigrams(path) -> set[str] | None:
    """The words of an ARPA file's \\1-grams: section (read up to the next section, not the whole file), or None
    when the file is not ARPA text (a kenlm binary): its loader reports what is wrong with it."""
    words: set[str] = set()
    in_unigrams = False
    try:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if line == "\\1-grams:":
                    in_unigrams = True
                elif line.startswith("\\"):
                    if in_unigrams:
                        return words
                elif in_unigrams and line:
                    fields = line.split()
                    if len(fields) >= 2:
                        words.add(fields[1])
    except (OSError, UnicodeDecodeError):
        return None
    return words if in_unigrams else None


SPECIAL_WORDS = ("<s>", "</s>", "<unk>")


def unspellable_words(words, labels, blank: int, word_boundary: int | None) -> tuple[list[str], int]:
    """(the LM's words the labels cannot produce, how many words were checked), special tokens (<s>, </s>, <unk>,
    anything in angle brackets) aside. With a word boundary label (a space) a word is spelled by the other
    labels, one character each; without one every label is a word of its own (a phone or character LM)."""
    usable = [w for w in words if w not in SPECIAL_WORDS and not (w.startswith("<") and w.endswith(">"))]
    alphabet = {label for i, label in enumerate(labels) if i != blank and i != word_boundary}
    if word_boundary is None:
        return sorted(w for w in usable if w not in alphabet), len(usable)
    return sorted(w for w in usable if not set(w) <= alphabet), len(usable)

