"""Word times and confidences from the CTC alignment (ascend_asr/timestamps.py, transcribe.py)."""
import json
import os

import numpy as np
import pytest
import torch

from ascend_asr.batching import assemble
from ascend_asr.decoding import FrameClock, OutputLayout
from ascend_asr.families import get_family, load_model, reference_checkpoint
from ascend_asr.prep import open_prep
from ascend_asr.preprocess import preprocess
from ascend_asr.profiles import load_profile
from ascend_asr.timestamps import best_path_spans, ctc_align, model_stride, word_timings
from ascend_asr.transcribe import DecoderSettings, make_transcriber

HERE = os.path.dirname(os.path.abspath(__file__))
CLIP = os.path.join(HERE, "fixtures", "timestamps", "words.wav")
TRUTH = os.path.join(HERE, "fixtures", "timestamps", "words.json")
MODELS = os.path.join(os.path.dirname(HERE), "ascend_asr", "assets", "models")


def model_log_probs(profile_name, tmp_path):
    """The shipped model's log-probabilities on the clip, through preprocess and the family's PyTorch model."""
    profile = load_profile(profile_name)
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\tduration\ttext\n{CLIP}\t4.9\tseven three nine one five two\n")
    preprocess(str(manifest), str(tmp_path / "prep"), profile, progress=False)
    prep = open_prep(str(tmp_path / "prep"))
    row = prep.rows[0]
    feeds = assemble([prep.load(row)], profile.inputs, 1, row["padded_frames"])
    model = load_model(profile, reference_checkpoint(profile_name))
    with torch.no_grad():
        log_probs, lens = get_family(profile.family).training_outputs(
            model, [torch.from_numpy(feeds[s.name]) for s in profile.inputs])
    return profile, log_probs[: int(lens[0]), 0].numpy(), row["frames"]


def transcribe_clip(profile_name, tmp_path, lexicon="lm"):
    profile, log_probs, frames = model_log_probs(profile_name, tmp_path)
    settings = DecoderSettings("beam", lm=os.path.join(MODELS, f"{profile_name}_words_bigram.arpa"), lexicon=lexicon)
    transcriber = make_transcriber(profile.vocabulary, OutputLayout.of(profile).scores_are_probs, settings,
                                   FrameClock.of(profile))
    return transcriber(log_probs, len(log_probs), frames=frames)


def test_word_times_are_within_three_output_frames_of_the_known_boundaries(tmp_path):
    """LSTM-CTC (40 ms output frames: 10 ms hop x 2 skipped x stride 2) on six words with known silences: every
    start and end within 0.1 s but the start of "three" (0.12 s early: its spike comes with the faint "th")."""
    truth = json.load(open(TRUTH))["words"]
    transcript = transcribe_clip("lstm_ctc_char", tmp_path)
    assert len(transcript.words) == len(truth)
    right = [(w, t) for w, t in zip(transcript.words, truth) if w.word == t["word"]]
    assert len(right) >= 5  # it hears "nine" as "five"; the times of the others are checked
    errors = [abs(w.start - t["start"]) for w, t in right] + [abs(w.end - t["end"]) for w, t in right]
    assert max(errors) <= 0.125, (transcript.words, truth)
    assert sum(e <= 0.1 for e in errors) >= len(errors) - 1
    assert all(0.0 < w.confidence <= 1.0 for w in transcript.words)
    assert 0.0 < transcript.confidence <= 1.0


def test_words_separated_by_pauses_without_spaces_are_still_words_with_their_starts(tmp_path):
    """Jasper emits only blanks across a pause (greedy: one glued word); the lexicon search ends a word there.
    Its CTC spikes start each word within 0.1 s; they end up to 0.3 s early (the last spike comes before
    a word's final sound dies away), so ends are only checked not to run late."""
    truth = json.load(open(TRUTH))["words"]
    transcript = transcribe_clip("jasper_small", tmp_path)
    assert [w.word for w in transcript.words] == [t["word"] for t in truth]
    for word, true in zip(transcript.words, truth):
        assert abs(word.start - true["start"]) <= 0.1, (word, true)
        assert true["start"] < word.end <= true["end"] + 0.1, (word, true)


def test_viterbi_alignment_of_the_best_path_labels_is_the_best_path():
    rng = np.random.default_rng(0)
    logits = 3 * rng.standard_normal((60, 6))
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ids, spans = best_path_spans(log_probs, 0)
    assert ctc_align(log_probs, ids, 0) == spans


def test_alignment_of_a_repeated_label_keeps_a_blank_between_them():
    blank, a = 0, 1
    lp = np.log(np.array([[0.1, 0.9], [0.1, 0.9], [0.6, 0.4], [0.1, 0.9]]))
    assert ctc_align(lp, [a, a], blank) == [(0, 1), (3, 3)]
    with pytest.raises(ValueError):
        ctc_align(lp[:2], [a, a, a], blank)  # three labels, two of them equal, need at least 4 frames


def test_words_split_at_the_boundary_with_times_from_the_frame_clock():
    labels = ["_", " ", "a", "b"]
    lp = np.full((8, 4), np.log(0.01))
    for t, label in enumerate([2, 2, 0, 1, 3, 3, 0, 0]):
        lp[t, label] = np.log(0.97)
    ids, spans = best_path_spans(lp, 0)
    words = word_timings(lp, ids, 0, 1, labels, seconds=0.04, offset=1.0, spans=spans)
    assert [(w.word, w.start, w.end) for w in words] == [("a", 1.0, 1.08), ("bb"[:1], 1.16, 1.24)]
    assert all(abs(w.confidence - 0.97) < 1e-9 for w in words)


def test_the_model_stride_follows_its_own_output_length_when_the_declared_rule_disagrees():
    assert model_stride(1, 40, 40) == 1.0
    assert model_stride(1, 39, 20) == 2.0  # Jasper's first convolution strides by 2: ceil(39 / 2)
    assert model_stride(2, 39, 20) == 2.0
    assert model_stride(1, 100, 34) == 3.0
    assert model_stride(1, 100, 30) == pytest.approx(100 / 30)  # no stride's rule gives 30: the ratio


def test_alignment_of_a_long_transcript_walks_back_through_every_state():
    """More than 127 CTC states (a long sentence): the back-pointers step back from any state."""
    rng = np.random.default_rng(3)
    truth = rng.integers(1, 6, 90).tolist()
    truth = [label for k, label in enumerate(truth) if k == 0 or label != truth[k - 1]]
    log_probs = np.full((3 * len(truth), 6), np.log(0.01))
    for k, label in enumerate(truth):
        log_probs[3 * k, label] = log_probs[3 * k + 1, 0] = log_probs[3 * k + 2, 0] = np.log(0.95)
    assert ctc_align(log_probs, truth, 0) == [(3 * k, 3 * k) for k in range(len(truth))]


def test_preprocess_records_where_trimmed_features_start_so_word_times_count_from_the_file(tmp_path):
    """Jasper's frontend trims leading silence: meta.jsonl says how much, and infer adds it to word times."""
    import soundfile as sf

    from ascend_asr.tensor_files import TRIM_START_KEY

    samples, rate = sf.read(CLIP, dtype="float32")
    padded = tmp_path / "padded.wav"
    sf.write(str(padded), np.concatenate([np.zeros(int(0.6 * rate), np.float32), samples]), rate)
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\tduration\ttext\n{padded}\t5.5\tseven three nine one five two\n{CLIP}\t4.9\tseven\n")
    preprocess(str(manifest), str(tmp_path / "prep"), load_profile("jasper_small"), progress=False)
    rows = open_prep(str(tmp_path / "prep")).rows
    # the clip's own lead-in is faint noise above -60 dB, so only the added digital silence is cut, up to the
    # trimming window's half width (64 ms) plus one hop (32 ms)
    assert abs(rows[0][TRIM_START_KEY] - rows[1].get(TRIM_START_KEY, 0.0) - 0.6) <= 0.1
    untrimmed = tmp_path / "prep_lstm"
    preprocess(str(manifest), str(untrimmed), load_profile("lstm_ctc_char"), progress=False)
    assert all(TRIM_START_KEY not in row for row in open_prep(str(untrimmed)).rows)
