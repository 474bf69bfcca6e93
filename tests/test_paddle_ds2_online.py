"""PaddleSpeech DeepSpeech2 online: the recipe's files and a .pdparams read without paddle, checked against
outputs PaddleSpeech's own code produced (tests/fixtures/upstream/paddlespeech_ds2_online, README there)."""
import os
import pickle
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ascend_asr.audio import load_audio
from ascend_asr.errors import CheckpointError, ProfileError
from ascend_asr.export import export_onnx
from ascend_asr.families import build_model, get_family
from ascend_asr.families.paddle_ds2_online.frontend import PaddleFbank, PaddleFbankParams, read_mean_std
from ascend_asr.families.paddle_ds2_online.model import save_pdparams
from ascend_asr.families.paddle_ds2_online.pdparams import read_pdparams
from ascend_asr.frontends import build_frontend
from ascend_asr.profiles import load_profile

from .conftest import CLIPS
from .paddle_fixture import CONFIG, HERE, PDPARAMS, TOL, reference_outputs



@pytest.fixture(scope="module")
def ref():
    return reference_outputs()


@pytest.fixture(scope="module")
def family():
    return get_family("paddle_ds2_online")


@pytest.fixture(scope="module")
def model(family):
    return family.load(PDPARAMS, family.read_upstream(CONFIG).config).model


def padded(ref):
    lens = ref["lens"]
    x = np.zeros((len(lens), lens.max(), ref["features_0"].shape[1]), np.float32)
    for i, n in enumerate(lens):
        x[i, :n] = ref[f"features_{i}"]
    return x, lens


def run(model, *arrays):
    with torch.no_grad():
        return [o.numpy() for o in model(*(torch.from_numpy(np.asarray(a)) for a in arrays))]


def test_recipe_files_give_the_network_features_and_vocabulary_upstream_builds(family):
    upstream = family.read_upstream(CONFIG)
    c = upstream.config
    assert (c.feature_size, c.num_classes, c.num_rnn_layers, c.rnn_layer_size, c.num_fc_layers) == (41, 14, 2, 24, 0)
    assert upstream.frontend == {"sample_rate": 16000, "n_mels": 41, "n_shift": 160, "win_length": 400,
                                 "energy_floor": 0.0, "cmvn_stats": os.path.join(HERE, "data", "mean_std.json")}
    labels = upstream.vocabulary["labels"]
    assert labels[0] == "<blank>" and labels[-1] == "<eos>" and labels[-2] == " " and len(labels) == 14
    # every parameter upstream saves has our name (Paddle's second copy of each LSTM weight, `.0.cell.`, aside)
    with open(os.path.join(HERE, "state_dict_keys.txt")) as f:
        upstream_keys = {line.split()[0] for line in f if ".0.cell." not in line}
    assert set(build_model_of(family, c).state_dict()) == upstream_keys


def build_model_of(family, config):
    return family.build(config).model


def test_pdparams_reproduces_upstream_probabilities_and_final_states(model, ref):
    x, lens = padded(ref)
    h0 = np.zeros((2, 2, 24), np.float32)
    probs, out_lens, h, c = run(model, x, lens, h0, h0)
    assert out_lens.tolist() == ref["probs_lens"].tolist() == [((n - 1) // 2 - 1) // 2 for n in lens]
    for b, n in enumerate(out_lens):
        assert np.abs(probs[b, :n] - ref["probs"][b, :n]).max() < TOL
    # final states at each utterance's own last frame, as Paddle's sequence_length masking gives them
    assert np.abs(h - ref["final_h"]).max() < TOL and np.abs(c - ref["final_c"]).max() < TOL
    # a padded batch gives each utterance what it gives alone
    alone = run(model, x[:1, :lens[0]], lens[:1], h0[:, :1], h0[:, :1])[0]
    assert np.abs(alone[0] - ref["probs_alone_0"][0]).max() < TOL
    assert np.abs(alone[0] - probs[0, :out_lens[0]]).max() < TOL


def test_one_chunk_from_given_states_matches_the_exported_upstream_model(model, ref):
    probs, out_lens, h, c = run(model, ref["step_input"], ref["step_lens"], ref["step_h0"], ref["step_c0"])
    assert out_lens.tolist() == ref["step_probs_lens"].tolist() == [4, 2]
    for b, n in enumerate(out_lens):
        assert np.abs(probs[b, :n] - ref["step_probs"][b, :n]).max() < TOL
    assert np.abs(h - ref["step_h1"]).max() < TOL and np.abs(c - ref["step_c1"]).max() < TOL


def test_features_match_paddlespeech_fbank_kaldi_and_cmvn_json(ref):
    fbank = build_frontend({"name": "paddle_kaldi_fbank", "n_mels": 41,
                            "cmvn_stats": os.path.join(HERE, "data", "mean_std.json")})
    for i, clip in enumerate(("cards-001.wav", "goforward.wav")):
        feats, valid = fbank(load_audio(os.path.join(CLIPS, clip)))
        assert valid == feats.shape[1] == len(ref[f"features_{i}"])
        assert np.abs(feats.T - ref[f"features_{i}"]).max() < TOL
    # the recipe's 161 bins, before CMVN: Paddle computes the mel banks in float32, hence the looser bound
    raw = PaddleFbank(PaddleFbankParams(n_mels=161)).fbank(load_audio(os.path.join(CLIPS, "cards-001.wav")))
    assert raw.shape == ref["fbank161_0"].shape and np.abs(raw - ref["fbank161_0"]).max() < 1e-3


def test_export_masks_by_length_and_matches_upstream(model, family, ref, tmp_path):
    whole = family.build(model.config)
    whole.model.load_state_dict(model.state_dict())
    path = export_onnx(whole, str(tmp_path / "whole.onnx"))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x, lens = padded(ref)
    probs, out_lens = session.run(None, {"audio_chunk": x, "audio_chunk_lens": lens})
    for b, n in enumerate(out_lens):
        assert np.abs(probs[b, :n] - ref["probs"][b, :n]).max() < TOL
    alone, _ = session.run(None, {"audio_chunk": x[:1, :lens[0]], "audio_chunk_lens": lens[:1]})
    assert np.abs(alone[0] - probs[0, :out_lens[0]]).max() < TOL


def test_saved_pdparams_has_paddles_layout_and_loads_back(model, family, tmp_path):
    path = str(tmp_path / "copy.pdparams")
    save_pdparams(model, path)
    saved, original = read_pdparams(path), read_pdparams(PDPARAMS)
    assert set(saved) == set(original)
    assert all(saved[k].shape == original[k].shape and np.allclose(saved[k], original[k]) for k in original)
    again = family.load(path, model.config).model
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_gru_and_fc_layers_reproduce_upstream_whole_and_chunk_by_chunk(family):
    """The paths the aishell recipe leaves unused (use_gru: True, num_fc_layers: 1), against PaddleSpeech."""
    from ascend_asr.families.paddle_ds2_online.streaming.chunks import ChunkPlan
    from ascend_asr.families.paddle_ds2_online.streaming.scheduler import run_streams
    from ascend_asr.families.paddle_ds2_online.streaming.steps import torch_step

    variant = os.path.join(HERE, "variant_gru_fc")
    config = family.read_upstream(os.path.join(variant, "conf", "deepspeech2_online.yaml")).config
    assert config.use_gru and (config.num_fc_layers, config.fc_layers_size_list, config.encoder_size) == (1, (6,), 6)
    model = family.load(os.path.join(variant, "exp", "deepspeech2_online", "checkpoints", "avg_1.pdparams"),
                        config).model
    ref = dict(np.load(os.path.join(variant, "reference_outputs.npz")))
    x, lens = padded(ref)
    h0 = np.zeros((2, 2, 8), np.float32)
    probs, out_lens, h, c = run(model, x, lens, h0, h0 + 1)
    for b, n in enumerate(out_lens):
        assert np.abs(probs[b, :n] - ref["probs"][b, :n]).max() < TOL
    assert np.abs(h - ref["final_h"]).max() < TOL and np.array_equal(c, h0 + 1)  # a GRU passes the c box through
    results, _ = run_streams([("u0", ref["features_0"]), ("u1", ref["features_1"])], torch_step(model), ChunkPlan(4),
                             2, 2, 8, 13)
    for i, r in enumerate(sorted(results, key=lambda r: r.key)):
        assert np.abs(r.probs - ref["chunk4_probs"][i, :len(r.probs)]).max() < TOL
        assert np.abs(r.final_h - ref["chunk4_final_h"][:, i]).max() < TOL


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("content, message", [
    (pickle.dumps({"x": Payload()}, protocol=4), "posix.system is not on the allowed list"),
    (b"PK\x03\x04 a torch zip", "not a pickle"),
    (pickle.dumps([np.zeros(2)], protocol=4), "holds a list"),
    (pickle.dumps({"w": np.array([1, "x"], dtype=object)}, protocol=4), "not a numeric array"),
], ids=["os.system", "zip", "list", "object-array"])
def test_a_pdparams_that_is_not_arrays_is_refused_without_running_it(content, message, tmp_path):
    path = tmp_path / "bad.pdparams"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_pdparams(str(path))


def test_a_checkpoint_of_another_shape_names_the_keys(family, tmp_path):
    config = family.read_upstream(CONFIG).config
    other = family.build(type(config)(**{**config.to_dict(), "rnn_layer_size": 16, "fc_layers_size_list": ()}))
    path = str(tmp_path / "other.pdparams")
    save_pdparams(other.model, path)
    with pytest.raises(CheckpointError, match="shape mismatches .*encoder.rnn.0.weight_hh_l0"):
        family.load(path, config)


@pytest.mark.parametrize("edit, message", [
    (("rnn_direction: forward", "rnn_direction: bidirect"), "only 'forward'"),
    (("num_fc_layers: 0", "num_fc_layers: 1"), "needs fc_layers_size_list with 1 positive sizes"),
    (("feat_dim: 41", "feat_dim: 161"), "feat_dim 161 disagrees with the fbank's n_mels 41"),
    (("vocab_filepath: data/lang_char/vocab.txt", "vocab_filepath: data/missing.txt"), "not found in the recipe"),
])
def test_a_recipe_we_cannot_follow_is_refused_naming_the_file(edit, message, family, tmp_path):
    import shutil

    recipe = tmp_path / "recipe"
    shutil.copytree(HERE, recipe, ignore=shutil.ignore_patterns("exp", "*.npz"))
    conf = recipe / "conf" / "deepspeech2_online.yaml"
    text = conf.read_text(encoding="utf-8")
    assert edit[0] in text
    conf.write_text(text.replace(*edit), encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        family.read_upstream(str(conf))


def test_the_default_profile_builds_and_declares_the_family_io(family):
    profile = load_profile(family.default_profile)
    model = build_model(profile)
    io = family.io_spec(161, 14)
    assert tuple(model.input_names) == io.input_names == tuple(t.name for t in profile.inputs)
    assert tuple(model.output_names) == io.output_names == tuple(t.name for t in profile.outputs)
    for name in family.presets:
        config = family.preset(name)
        assert family.config_from_dict(family.config_to_dict(config)) == config


def test_training_outputs_are_ctc_log_probs_over_the_valid_frames(family):
    """What the training recipe takes: [T', B, C] log-probabilities and the output lengths; CTC trains through them."""
    profile = load_profile("paddle_ds2_online_char")  # the profile a trained reference would have
    torch.manual_seed(0)
    model = build_model(profile).train(True)
    feats, lens = torch.randn(2, 120, model.model.config.feature_size), torch.tensor([120, 75])
    log_probs, out_lens = family.training_outputs(model, [feats, lens])
    assert out_lens.tolist() == [29, 18] and log_probs.shape == (29, 2, profile.vocabulary.size)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(29, 2), atol=1e-5)
    loss = torch.nn.CTCLoss(blank=profile.vocabulary.blank)(log_probs, torch.tensor([3, 4, 5, 6, 7]), out_lens,
                                                            torch.tensor([3, 2]))
    loss.backward()
    assert model.model.decoder.ctc_lo.weight.grad.abs().sum() > 0
    assert model.model.encoder.rnn[0].weight_ih_l0.grad.abs().sum() > 0


def test_the_shipped_reference_is_a_pdparams_of_its_profile_with_the_training_cmvn(family):
    """assets/models/paddle_ds2_online_char.pdparams: Paddle's names and layouts (each LSTM weight under both of
    its names, Linear weights [in, out]), loaded strictly with its profile; the CMVN statistics of its training
    features ship beside it and give a finite, positive std per fbank bin."""
    from ascend_asr.families import reference_checkpoint

    profile = load_profile(family.reference_profile)
    config = family.resolve_config(profile.model_config)
    arrays = read_pdparams(reference_checkpoint(family.reference_profile))
    for layer in range(config.num_rnn_layers):
        for torch_name, cell_name in (("weight_ih_l0", "weight_ih"), ("weight_hh_l0", "weight_hh")):
            assert np.array_equal(arrays[f"encoder.rnn.{layer}.{torch_name}"],
                                  arrays[f"encoder.rnn.{layer}.0.cell.{cell_name}"])
    assert arrays["decoder.ctc_lo.weight"].shape == (config.rnn_layer_size, profile.vocabulary.size)
    family.load(reference_checkpoint(family.reference_profile), config)  # strict: no missing or unexpected key
    mean, std = read_mean_std(profile.frontend["cmvn_stats"])
    assert mean.shape == std.shape == (config.feature_size,) and np.all(np.isfinite(mean)) and np.all(std > 0.1)


@pytest.mark.skipif(not all(shutil.which(t) for t in ("espeak-ng", "flite", "sox")),
                    reason="needs espeak-ng, flite and sox (.ci/run installs them)")
def test_the_small_recipe_trains_and_saves_this_family_loadable_on_a_tiny_set(family, tmp_path):
    """small_reference --family paddle_ds2_online end to end at the smallest scale: the .pdparams loads back, the
    CMVN statistics are written beside it, and the card names the small recipe's command."""
    from ascend_asr.recipes.reference_data import DataSettings
    from ascend_asr.recipes.small_reference import small_parser, train_small

    fsdd = tmp_path / "speech"
    (fsdd / "fsdd").mkdir(parents=True)
    rows = []
    for speaker, source in (("jackson", "3_jackson_0.wav"), ("theo", "7_theo_1.wav")):
        name = f"{source.split('_')[0]}_{speaker}_0.wav"
        shutil.copy(os.path.join(CLIPS, source), fsdd / "fsdd" / name)
        rows.append(f"fsdd/{name}\t0.5\t{['three', 'seven'][speaker == 'theo']}\tFSDD\tCC-BY-SA-4.0")
    (fsdd / "fsdd.tsv").write_text("path\tduration\ttext\tsource\tlicense\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    args = small_parser().parse_args(["--family", "paddle_ds2_online", "--fsdd", str(fsdd), "--work-dir",
                                      str(tmp_path / "work"), "--output", str(out), "--max-steps", "2", "--epochs", "1"])
    tiny = DataSettings(train_sentences=3, train_digit_strings=1, test_sentences_seen_voices=1,
                        test_sentences_unseen_voices=1, digit_speed_factors=())
    report = train_small(args, tiny, log=lambda message: None)
    assert report["training"]["step"] <= 2 and set(report["evaluation"]) == {
        "test_sentences_seen_voices", "test_sentences_unseen_voices", "test_digits_heldout_speaker"}
    profile = load_profile(family.reference_profile)
    family.load(str(out / family.reference_checkpoint), family.resolve_config(profile.model_config))
    assert read_mean_std(str(out / "paddle_ds2_online_char_cmvn.txt"))[0].shape == (40,)
    card = (out / "paddle_ds2_online_char.md").read_text()
    assert "small_reference --family paddle_ds2_online" in card and "train_reference --family" not in card
    assert card.count("## Smaller training data") == 1 and "SMALL_DATA" in card
