"""CTC decoding of per-frame (log-)probabilities, over each utterance's valid output frames.

One path for every decoder of model outputs (infer, the ModelZoo postprocess adapters, the recipes):
`OutputLayout.of(profile or bundle)` says where the scores are and how many of their frames are
valid, `decode_utterance` applies it to one utterance.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np


def output_frames(frames: int, time_stride: int = 1) -> int:
    """Valid output frames of a model that subsamples time by `time_stride`, for `frames` valid input
    frames: (frames - 1) // time_stride + 1 (a strided convolution's; the rule for models without
    an `out_lengths` output)."""
    return (int(frames) - 1) // int(time_stride) + 1


@dataclass(frozen=True)
class OutputLayout:
    """What decoding needs to know of a model's outputs, from its profile or its bundle manifest."""

    scores: object  # TensorSpec of the 'log_probs' or 'probs' output
    lengths: object | None = None  # TensorSpec of 'out_lengths', when the model outputs them
    time_stride: int = 1

    @classmethod
    def of(cls, model) -> "OutputLayout":
        """The layout of a Profile or a Bundle."""
        stride = getattr(model, "time_stride", None)
        if stride is None:  # a Bundle: the manifest records its profile's rule
            stride = model.manifest.get("time_stride", 1)
        return cls(model.output("log_probs") or model.output("probs"), model.output("out_lengths"), int(stride))

    @property
    def scores_are_probs(self) -> bool:
        return self.scores.role == "probs"

    def valid_frames(self, frames: int | None = None, out_length=None) -> int | None:
        """The model's own output length when it has one, else the output-length rule on the valid
        input frames; None (every frame, padding included) when neither is known."""
        if out_length is not None:
            return int(out_length)
        return None if frames is None else output_frames(frames, self.time_stride)


def decode_utterance(layout: OutputLayout, decode, scores: np.ndarray, frames: int | None = None,
                     out_length=None) -> tuple[int | None, list[int]]:
    """(valid output frames, label ids) of one utterance's time-major scores [T, V]; `decode` is a
    decoder of make_decoder, or any (scores, valid frames) -> ids."""
    length = layout.valid_frames(frames, out_length)
    return length, decode(scores, length)


def greedy_ctc(scores: np.ndarray, length: int | None, blank: int) -> list[int]:
    """Best path over the first `length` frames of scores [T, V]: collapse repeats, drop blanks.

    Frames at or beyond `length` are padding and are never decoded (NVIDIA's length mask).
    """
    frames = scores if length is None else scores[: max(0, int(length))]
    if len(frames) == 0:
        return []
    best = frames.argmax(axis=-1)
    previous = np.concatenate([[blank], best[:-1]])
    return best[(best != blank) & (best != previous)].tolist()


def load_language_model(path: str):
    """kenlm when installed (ARPA or binary), else the pure-Python ARPA reader."""
    from .errors import ProfileError
    from .language_model import ArpaLM, KenLM

    if not os.path.isfile(path):
        raise ProfileError(f"{path}: language model not found; give an ARPA file (or a kenlm binary, with kenlm "
                           "installed) to --lm")
    try:
        import kenlm  # noqa: F401
    except ImportError:
        if not path.endswith(".arpa"):
            raise ProfileError(f"{path}: a binary LM needs kenlm (pip install -e '.[lm]'); or give an .arpa file")
        return ArpaLM(path)
    return KenLM(path)


def check_lm_words(lm_path: str, vocab, boundary: int | None, out=None) -> None:
    """Refuse an LM most of whose words the labels cannot spell (an upper-case ARPA for a lower-case alphabet:
    every hypothesis word would be <unk> to it, silently); warn when a minority cannot be spelled."""
    from .errors import ProfileError
    from .language_model import arpa_unigrams, unspellable_words

    words = arpa_unigrams(lm_path)  # the \1-grams: section only, before the whole LM is loaded
    if not words:
        return  # a kenlm binary: its words cannot be listed
    bad, checked = unspellable_words(words, vocab.labels, vocab.blank, boundary)
    if not bad:
        return
    unit = "words spelled with" if boundary is not None else "labels among"
    alphabet = "".join(sorted(label for i, label in enumerate(vocab.labels) if i not in (vocab.blank, boundary)))
    examples = ", ".join(repr(w) for w in bad[:5])
    shown = alphabet if boundary is not None else " ".join(sorted(set(vocab.labels) - {vocab.labels[vocab.blank]}))
    if checked == 0 or len(bad) * 2 > checked:
        cased = sum(1 for w in bad if w.lower() != w)
        hint = " (the LM is upper-case: lowercase it, e.g. `tr '[:upper:]' '[:lower:]' < LM > lm.arpa`)" \
            if cased * 2 > len(bad) else ""
        raise ProfileError(
            f"{lm_path}: {len(bad)} of its {checked} words are not {unit} the model's labels ({shown!r}), e.g. "
            f"{examples}: to this model's hypotheses they are all <unk>, which would silently ruin beam search; "
            f"use an LM built on text in the model's alphabet{hint}")
    print(f"[ascend-asr] WARNING ({lm_path}): {len(bad)} of its {checked} words are not {unit} the model's labels, "
          f"e.g. {examples}; the model can never produce them (normalise the LM's text to the model's alphabet)",
          file=out if out is not None else sys.stderr)


MAX_BEAM_WIDTH = 1024


def check_beam_width(beam_width) -> int:
    """A beam width from 1 to MAX_BEAM_WIDTH: the search keeps and extends that many prefixes per frame (time and
    memory grow with it), and past a few hundred a CTC beam finds nothing a narrower one misses."""
    from .errors import OptionError

    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise OptionError(f"--beam-width {beam_width!r}: expected a whole number from 1 to {MAX_BEAM_WIDTH} (each "
                          "frame extends every kept prefix, so time and memory grow with the width, and beyond a few "
                          "hundred the results stop improving); e.g. --beam-width 10 to 100")
    return beam_width


def make_decoder(vocab, scores_are_probs: bool, kind: str = "greedy", beam_width: int = 10,
                 lm_path: str | None = None, alpha: float = 0.5, beta: float = 1.0, out=None, *,
                 lexicon: str = "none", unk_score: float = -10.0, hotwords: str | None = None,
                 hotword_weight: float = 10.0, token_min_logp: float = -5.0):
    """A function (scores [T, V], valid frames) -> label ids: greedy, or CTC prefix beam search
    (with an n-gram LM over words when the alphabet has a space, else over single labels).
    `lexicon` other than "none" selects the lexicon-constrained word search (transcribe.py: lm, unigrams, auto
    or a lexicon file). An LM whose words the labels mostly cannot spell is refused (a few: a warning on `out`)."""
    if kind == "greedy":
        return lambda scores, length: greedy_ctc(scores, length, vocab.blank)
    if kind != "beam":
        raise ValueError(f"decoder {kind!r}: choose greedy or beam")
    if lexicon != "none":
        from .transcribe import DecoderSettings, make_transcriber

        transcribe = make_transcriber(vocab, scores_are_probs, DecoderSettings(
            kind, beam_width, lm_path, alpha, beta, lexicon, unk_score, hotwords, hotword_weight, token_min_logp),
            out=out)
        return lambda scores, length: list(transcribe(scores, length).ids)
    from .beam_search import prefix_beam_search

    check_beam_width(beam_width)
    boundary = vocab.labels.index(" ") if " " in vocab.labels else None
    if lm_path:
        if os.path.isfile(lm_path):
            check_lm_words(lm_path, vocab, boundary, out)
        lm = load_language_model(lm_path)
    else:
        lm = None

    def decode(scores, length):
        log_probs = np.log(np.maximum(scores, 1e-30)) if scores_are_probs else scores
        return prefix_beam_search(np.asarray(log_probs, dtype=np.float64), length, vocab.blank, beam_width, lm=lm,
                                  alpha=alpha, beta=beta, word_boundary=boundary, labels=vocab.labels)
    return decode


@dataclass(frozen=True)
class FrameClock:
    """Seconds per output frame of a model: its frontend's hop times its time stride, checked against the
    model's own output length (timestamps.frame_seconds); picklable, for decode workers."""

    frontend: dict  # the frontend spec of the profile or bundle
    time_stride: int = 1

    @classmethod
    def of(cls, model) -> "FrameClock":
        """The clock of a Profile or a Bundle."""
        spec = model.manifest["frontend"] if hasattr(model, "manifest") else model.frontend
        return cls(dict(spec), OutputLayout.of(model).time_stride)

    def __call__(self, out_frames: int, frames: int | None = None) -> float:
        from .timestamps import frame_seconds

        return frame_seconds(self._frontend(), self.time_stride, frames, out_frames)

    def _frontend(self):
        built = self.__dict__.get("_built")
        if built is None:
            from .frontends import build_frontend

            built = build_frontend(self.frontend)
            object.__setattr__(self, "_built", built)
        return built

    def __getstate__(self):
        return {"frontend": self.frontend, "time_stride": self.time_stride}

    def __setstate__(self, state):
        object.__setattr__(self, "frontend", state["frontend"])
        object.__setattr__(self, "time_stride", state["time_stride"])
