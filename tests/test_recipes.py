"""The reference-model recipe: tool checks, data plan (what is held out), CMVN statistics, batching,
and a tiny end-to-end run of each family through training, the upstream checkpoint and evaluation."""
import json
import os
import random
import shutil

import numpy as np
import pytest

from ascend_asr.kaldi_fbank import read_cmvn_stats
from ascend_asr.families import load_model
from ascend_asr.profiles import load_profile
from ascend_asr.recipes import corpus
from ascend_asr.recipes.cmvn import write_cmvn_stats
from ascend_asr.recipes.reference_data import DataSettings, plan
from ascend_asr.recipes.speech_tools import MissingToolError, check_tools
from ascend_asr.recipes.training import make_batches
from ascend_asr.recipes.voices import FLITE_VOICES, espeak_names

from .conftest import CLIPS

TOOLS = all(shutil.which(t) for t in ("espeak-ng", "flite", "sox"))


def test_missing_tools_are_named_with_what_they_do_and_how_to_install_them():
    with pytest.raises(MissingToolError) as err:
        check_tools(which=lambda tool: None if tool in ("flite", "sox") else f"/usr/bin/{tool}")
    message = str(err.value)
    assert "flite:" in message and "sox:" in message and "espeak-ng:" not in message
    assert "apt-get install espeak-ng flite sox" in message and "installs nothing" in message


@pytest.fixture()
def fsdd_dir(tmp_path):
    """An FSDD folder in the shared layout: fsdd.tsv plus recordings of two speakers."""
    root = tmp_path / "speech"
    (root / "fsdd").mkdir(parents=True)
    rows = []
    for speaker, source in (("jackson", "3_jackson_0.wav"), ("theo", "7_theo_1.wav")):
        for take in range(2):
            digit = source.split("_")[0]
            name = f"{digit}_{speaker}_{take}.wav"
            shutil.copy(os.path.join(CLIPS, source), root / "fsdd" / name)
            rows.append(f"fsdd/{name}\t0.5\t{corpus.DIGITS[int(digit)]}\tFSDD\tCC-BY-SA-4.0")
    (root / "fsdd.tsv").write_text("path\tduration\ttext\tsource\tlicense\n" + "\n".join(rows) + "\n")
    return str(root)


def test_plan_holds_out_sentences_voices_and_the_speaker(fsdd_dir, tmp_path):
    settings = DataSettings(train_sentences=400, train_digit_strings=50, test_sentences_seen_voices=60,
                            test_sentences_unseen_voices=40, held_out_speaker="theo")
    sets = plan(settings, fsdd_dir, str(tmp_path))
    assert plan(settings, fsdd_dir, str(tmp_path)) == sets  # seeded
    train_texts = {i.text for i in sets["train"]}
    for name in ("test_sentences_seen_voices", "test_sentences_unseen_voices"):
        assert not {i.text for i in sets[name]} & train_texts
    train_voices = {i.voice for i in sets["train"]}
    unseen = {f"espeak-ng:{n}" for n in espeak_names(held_out=True)}
    assert {i.voice for i in sets["test_sentences_unseen_voices"]} <= unseen and not train_voices & unseen
    assert {i.voice for i in sets["test_sentences_seen_voices"]} <= (
        {f"espeak-ng:{n}" for n in espeak_names(held_out=False)} | {f"flite:{v}" for v in FLITE_VOICES})
    assert {i.voice for i in sets["test_digits_heldout_speaker"]} == {"fsdd:theo"} and "fsdd:theo" not in train_voices
    # recorded training digits: the original plus one speed-perturbed copy per factor
    assert sum(i.voice == "fsdd:jackson" for i in sets["train"]) == 2 * (1 + len(settings.digit_speed_factors))
    assert plan(DataSettings(seed=1), fsdd_dir, str(tmp_path))["train"][0].text != sets["train"][0].text


def test_a_missing_held_out_speaker_names_the_speakers_there(fsdd_dir, tmp_path):
    with pytest.raises(Exception, match=r"'nobody'.*\['jackson', 'theo'\]"):
        plan(DataSettings(held_out_speaker="nobody"), fsdd_dir, str(tmp_path))


def test_test_sentences_use_only_the_training_vocabulary():
    test = corpus.sentences(300, seed=1)
    train = corpus.sentences(4000, seed=2, exclude=set(test))
    train_words = {w for s in train for w in s.split()}
    assert {w for s in test for w in s.split()} <= train_words <= corpus.vocabulary()


def test_cmvn_statistics_are_kaldi_sums_of_the_fbank(tmp_path):
    profile = load_profile("lstm_ctc_char")
    clips = [os.path.join(CLIPS, c) for c in ("cards-001.wav", "goforward.wav")]
    path = write_cmvn_stats(clips, profile.frontend, str(tmp_path / "cmvn.txt"), workers=1)
    stats = read_cmvn_stats(path)
    from ascend_asr.audio import load_audio
    from ascend_asr.frontends import build_frontend
    frontend = build_frontend(dict(profile.frontend, cmvn_stats=None))
    fbank = np.concatenate([frontend.fbank(load_audio(c)) for c in clips]).astype(np.float64)
    assert stats.shape == (2, 82) and stats[0, -1] == len(fbank)
    np.testing.assert_allclose(stats[0, :-1], fbank.sum(axis=0), rtol=1e-8)
    np.testing.assert_allclose(stats[1, :-1], (fbank ** 2).sum(axis=0), rtol=1e-8)


def test_batches_cover_every_utterance_once_within_the_frame_budget():
    rng = random.Random(0)
    lengths = [rng.randint(20, 400) for _ in range(500)]
    batches = make_batches(lengths, 4000, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 4000 for b in batches)
    assert make_batches(lengths, 4000, random.Random(1)) == batches


@pytest.mark.skipif(not TOOLS, reason="needs espeak-ng, flite and sox (.ci/run installs them)")
@pytest.mark.parametrize("family", ["jasper", "deepspeech2", "lstm_ctc"])
def test_recipe_runs_end_to_end_on_a_tiny_set(family, fsdd_dir, tmp_path):
    from ascend_asr.recipes.train_reference import build_parser, run

    args = build_parser().parse_args(["--family", family, "--fsdd", fsdd_dir, "--work-dir", str(tmp_path / "work"),
                                      "--output", str(tmp_path / "out"), "--epochs", "3", "--max-steps", "2"])
    tiny = DataSettings(train_sentences=3, train_digit_strings=1, test_sentences_seen_voices=2,
                        test_sentences_unseen_voices=1, digit_speed_factors=(1.1,))
    report = run(args, tiny, log=lambda message: None)
    profile = load_profile(report["profile"])
    if family == "lstm_ctc":  # the recipe's own CMVN statistics, beside the checkpoint
        stats = read_cmvn_stats(str(tmp_path / "out" / "lstm_ctc_char_cmvn.txt"))
        assert stats[0, -1] > 0
        profile = load_profile(report["profile"])  # the shipped statistics path is only read when features are made
    load_model(profile, report["checkpoint"])  # the upstream-format loader
    evaluation = report["evaluation"]
    assert set(evaluation) == {"test_sentences_seen_voices", "test_sentences_unseen_voices",
                               "test_digits_heldout_speaker"}
    assert [evaluation[s]["utterances"] for s in evaluation] == [2, 1, 2]
    card = (tmp_path / "out" / f"{profile.name}.md").read_text()
    assert "| held-out FSDD speaker's digits | 2 |" in card and "train_reference --family " + family in card
    saved = json.loads((tmp_path / "out" / f"{profile.name}.training.json").read_text())
    assert saved["training"]["step"] == 2 and saved["data"]["train_sentences"] == 3


def test_training_is_seeded_a_rerun_gives_identical_weights():
    """The recipe's reproducibility claim at the smallest scale: same seed, same data -> same weights."""
    import torch

    from ascend_asr.families import build_model
    from ascend_asr.families import get_family
    from ascend_asr.recipes.training import TrainSettings, train

    profile = load_profile("jasper_small")
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((64, int(n))).astype(np.float16) for n in rng.integers(40, 120, size=12)]
    texts = ["one two", "three", "four five six", "seven", "eight nine", "zero"] * 2
    settings = TrainSettings(seed=3, epochs=2, batch_frames=400, warmup_steps=2)

    def weights(seed):
        torch.manual_seed(seed)
        model = build_model(load_profile("jasper_small"))
        train(model, get_family("jasper"), profile, feats, texts, settings, log=lambda message: None)
        return model.state_dict()

    first, second = weights(0), weights(0)
    assert all(torch.equal(first[k], second[k]) for k in first)
    torch.manual_seed(0)
    initial = build_model(load_profile("jasper_small")).state_dict()
    assert not torch.equal(first["decoder.layers.0.weight"], initial["decoder.layers.0.weight"])  # it did train


def test_a_relative_fsdd_folder_gives_absolute_recording_paths(fsdd_dir, monkeypatch):
    """The rows end up in manifests in other folders: a relative --fsdd (as the model cards write it) must not
    be resolved against them."""
    from ascend_asr.recipes.reference_data import read_fsdd

    parent, name = os.path.split(fsdd_dir)
    monkeypatch.chdir(parent)
    rows = read_fsdd(name)
    assert all(os.path.isabs(r["path"]) and os.path.isfile(r["path"]) for r in rows)
