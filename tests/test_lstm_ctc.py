"""LSTM-CTC (TIMIT) pipeline: Kaldi frontend, model parity and checkpoints, TIMIT reader, PER, ModelZoo scripts.

TIMIT is licensed: the corpus tests run on a tiny fake TIMIT tree of real speech clips with
made-up .PHN files. No number here is a TIMIT result.
"""
import importlib.util
import io
import os
import struct
from contextlib import redirect_stdout

import kaldi_native_fbank as knf
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch
import yaml

from ascend_asr import frontends
from ascend_asr.families import get_family
from ascend_asr.audio import load_audio
from ascend_asr.bundle import convert
from ascend_asr.datasets import BadEntry
from ascend_asr.decoding import greedy_ctc
from ascend_asr.errors import CheckpointError
from ascend_asr.export import export_onnx
from ascend_asr.infer import InferOptions, infer
from ascend_asr.kaldi_fbank import KaldiFbankSpliced, KaldiFbankSplicedParams, read_cmvn_stats
from ascend_asr.families.lstm_ctc.config import PRESETS as CONFIGS
from ascend_asr.families.lstm_ctc.model import LstmCtc, load_lstm_ctc_checkpoint
from ascend_asr.prep import open_prep
from ascend_asr.profiles import PROFILE_DIR, load_profile
from ascend_asr.timit import (
    decode_phones,
    fold_phones,
    phone_error_rate,
    read_units,
    timit_utterances,
    timit_vocabulary,
    units_in_order_of_appearance,
)

from .conftest import CLIPS, REPO, perturb_batchnorm

FRAMES = 390  # the profile's frame count (ModelZoo inputs_max_length)
BLANK = 0


def test_frontend_and_family_are_registered():
    assert frontends.FRONTENDS[KaldiFbankSpliced.name] == (KaldiFbankSpliced, KaldiFbankSplicedParams)
    family = get_family("lstm_ctc")
    assert family.frontend == KaldiFbankSpliced.name and not family.masks_padding
    assert isinstance(family.build(family.preset("lstm_ctc_small")), LstmCtc)


def clip(name):
    return load_audio(os.path.join(CLIPS, name))


@pytest.fixture(scope="module")
def speech_390_frames():
    """Real speech of exactly 390 Kaldi frames (25 ms windows every 10 ms): 400 + 389 * 160 samples."""
    samples = np.concatenate([clip("librivox-0880.wav"), clip("cards-001.wav")])
    return samples[: 400 + 389 * 160]


def kaldi_fbank(samples):
    """compute-fbank-feats --window-type=hamming --num-mel-bins=80 --use-energy --dither=0 (16-bit scale)."""
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.mel_opts.num_bins = 80
    opts.use_energy = True
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(16000, (np.asarray(samples, np.float64) * 32768).tolist())
    computer.input_finished()
    return np.array([computer.get_frame(i) for i in range(computer.num_frames_ready)], dtype=np.float64)


def kaldi_text_matrix(matrix, key=None):
    rows = "\n".join("  " + " ".join(repr(float(v)) for v in row) for row in matrix)
    return (f"{key}  " if key else " ") + "[\n" + rows + " ]\n"


@pytest.fixture(scope="module")
def cmvn_stats(tmp_path_factory):
    """compute-cmvn-stats of another real clip, written as Kaldi text (--binary=false)."""
    feats = kaldi_fbank(clip("goforward.wav"))
    stats = np.zeros((2, feats.shape[1] + 1))
    stats[0, :-1], stats[0, -1], stats[1, :-1] = feats.sum(0), len(feats), (feats ** 2).sum(0)
    path = tmp_path_factory.mktemp("cmvn") / "global_fbank_cmvn.txt"
    path.write_text(kaldi_text_matrix(stats))
    return str(path), stats


def upstream_features(samples, stats):
    """§C.2 from ModelZoo's code: apply-cmvn --norm-vars=true, make_context(0, 2), skip_feat(2), pad to even."""
    feat = kaldi_fbank(samples)
    count = stats[0, -1]
    mean = stats[0, :-1] / count
    feat = (feat - mean) / np.sqrt(stats[1, :-1] / count - mean ** 2)
    context = [feat]
    for _ in range(2):
        context.append(np.vstack((context[-1][1:], context[-1][-1])))
    feat = np.hstack(context)
    feat = np.vstack([feat[i] for i in range(feat.shape[0]) if i % 2 == 0])
    if len(feat) % 2:
        feat = np.vstack([feat, np.zeros((1, feat.shape[1]))])
    return feat


@pytest.mark.parametrize("kaldi_frames", [390, 101])
def test_features_equal_kaldi_fbank_with_cmvn_splicing_and_skipping(speech_390_frames, cmvn_stats, kaldi_frames):
    samples = speech_390_frames[: 400 + (kaldi_frames - 1) * 160]
    profile = load_profile("lstm_ctc_small")
    frontend = frontends.build_frontend({**profile.frontend, "cmvn_stats": cmvn_stats[0]})
    feats, valid = frontend(samples)
    expected = upstream_features(samples, cmvn_stats[1])
    assert valid == (kaldi_frames + 1) // 2 and feats.shape == (243, len(expected)) and len(expected) % 2 == 0
    assert frontend.aligned_frames(len(samples)) == len(expected) and frontend.feature_size == 243
    np.testing.assert_allclose(feats.T, expected, rtol=1e-4, atol=1e-4)
    assert not feats[:, valid:].any()
    if kaldi_frames == 390:
        assert valid == 195 and feats.shape[1] == 196  # 390 Kaldi frames -> 195 kept, padded to even


def test_cmvn_statistics_read_from_kaldi_text_binary_and_numpy(tmp_path, cmvn_stats):
    _, stats = cmvn_stats
    (tmp_path / "ark.txt").write_text(kaldi_text_matrix(stats, key="global"))
    binary = b"\x00BDM " + struct.pack("<bibi", 4, 2, 4, stats.shape[1]) + stats.astype("<f8").tobytes()
    (tmp_path / "cmvn.ark").write_bytes(b"global " + binary)
    np.save(tmp_path / "cmvn.npy", stats)
    np.savetxt(tmp_path / "plain.txt", stats)
    for name in ("ark.txt", "cmvn.ark", "cmvn.npy", "plain.txt"):
        np.testing.assert_allclose(read_cmvn_stats(str(tmp_path / name)), stats, rtol=1e-12)
    np.save(tmp_path / "wrong.npy", stats[:, :40])
    frontend = KaldiFbankSpliced(KaldiFbankSplicedParams(cmvn_stats=str(tmp_path / "wrong.npy")))
    with pytest.raises(Exception, match="39 dims, but the fbank has 81"):
        frontend(clip("cards-001.wav"))


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return perturb_batchnorm(LstmCtc(CONFIGS["lstm_ctc_small"]())).train(False)


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory, small_model):
    return export_onnx(small_model, str(tmp_path_factory.mktemp("onnx") / "lstm_ctc_small.onnx"))


@pytest.fixture(scope="module")
def real_batch(cmvn_stats):
    """Two real utterances as model inputs [2, 390, 243] with their valid frame counts."""
    frontend = KaldiFbankSpliced(KaldiFbankSplicedParams(cmvn_stats=cmvn_stats[0]))
    feats, lens = [], []
    for name in ("goforward.wav", "cards-001.wav"):
        f, valid = frontend(clip(name))
        padded = np.zeros((FRAMES, 243), np.float32)
        padded[: f.shape[1]] = f.T
        feats.append(padded)
        lens.append(valid)
    return np.stack(feats), np.array(lens, np.int32)


def run_torch(model, feats, lens):
    with torch.no_grad():
        log_probs, out_lens = model(torch.from_numpy(feats), torch.from_numpy(lens))
    return log_probs.numpy(), out_lens.numpy()


def transcripts(log_probs, lens):
    """Greedy phone ids per utterance of time-major log-probs [T, B, V]."""
    return [greedy_ctc(log_probs[:, b], n, BLANK) for b, n in enumerate(lens)]


def test_onnxruntime_matches_pytorch(small_model, small_onnx, real_batch):
    feats, lens = real_batch
    t_probs, t_lens = run_torch(small_model, feats, lens)
    o_probs, o_lens = ort.InferenceSession(small_onnx).run(None, {"actual_input_1": feats, "input_lengths": lens})
    assert o_probs.shape == (195, 2, 41)
    np.testing.assert_array_equal(o_lens, (lens + 1) // 2)
    np.testing.assert_array_equal(o_lens, t_lens)
    assert np.abs(o_probs - t_probs).max() <= 1e-4
    np.testing.assert_allclose(np.exp(o_probs).sum(-1), 1.0, atol=1e-4)
    assert transcripts(o_probs, o_lens) == transcripts(t_probs, t_lens)


def test_batch_of_two_decodes_as_one_at_a_time(small_onnx, real_batch):
    feats, lens = real_batch
    session = ort.InferenceSession(small_onnx)
    together, together_lens = session.run(None, {"actual_input_1": feats, "input_lengths": lens})
    for b in range(2):
        alone, alone_lens = session.run(None, {"actual_input_1": feats[b:b + 1], "input_lengths": lens[b:b + 1]})
        assert np.abs(alone[:, 0] - together[:, b]).max() <= 1e-5
        assert transcripts(alone, alone_lens) == [transcripts(together, together_lens)[b]]


def test_upstream_state_dict_names_load_and_a_wrong_key_is_listed(tmp_path, small_model, real_batch):
    state = small_model.state_dict()
    assert {"conv.0.conv.weight", "conv.1.batch_norm.running_var", "rnns.0.rnn.weight_ih_l0",
            "rnns.0.rnn_w.weight_hh_l0", "rnns.3.batch_norm.weight", "fc.0.running_mean", "fc.1.weight"} <= set(state)
    assert not any(k.startswith("rnns.0.batch_norm") or "bias_" in k or k == "fc.1.bias" for k in state)
    path = tmp_path / "ctc_best_model.pth"
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, path)
    loaded = get_family("lstm_ctc").load(str(path), CONFIGS["lstm_ctc_small"]())
    feats, lens = real_batch
    np.testing.assert_array_equal(run_torch(loaded, feats, lens)[0], run_torch(small_model, feats, lens)[0])

    renamed = {("fc.2.weight" if k == "fc.1.weight" else k): v for k, v in state.items()}
    torch.save({"state_dict": renamed}, path)
    with pytest.raises(CheckpointError) as err:
        load_lstm_ctc_checkpoint(LstmCtc(CONFIGS["lstm_ctc_small"]()), str(path))
    assert "missing keys (1): fc.1.weight" in str(err.value) and "unexpected keys (1): fc.2.weight" in str(err.value)

    # the training package pickles torch.nn classes: loaded through the restricted unpickler
    torch.save({"rnn_param": {"rnn_type": torch.nn.LSTM, "rnn_layers": 4},
                "cnn_param": {"activation_function": torch.nn.ReLU}, "epoch": 3, "state_dict": state}, path)
    loaded = load_lstm_ctc_checkpoint(LstmCtc(CONFIGS["lstm_ctc_small"]()), str(path))
    np.testing.assert_array_equal(run_torch(loaded, feats, lens)[0], run_torch(small_model, feats, lens)[0])

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))
    torch.save({"rnn_param": {"rnn_type": Exploit()}, "state_dict": state}, path)  # anything else is refused
    with pytest.raises(CheckpointError, match="system is not on the allowed list"):
        load_lstm_ctc_checkpoint(LstmCtc(CONFIGS["lstm_ctc_small"]()), str(path))


def test_full_config_is_modelzoos_shape():
    model = LstmCtc(CONFIGS["lstm_ctc"]()).train(False)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["rnns.0.rnn.weight_ih_l0"] == (4 * 384, 32 * 61)  # 243 features -> 122 -> 61, 32 channels
    assert shapes["rnns.1.rnn_w.weight_ih_l0"] == (1536, 768) and shapes["fc.1.weight"] == (41, 768)
    log_probs, out_lens = model(torch.zeros(1, FRAMES, 243), torch.tensor([FRAMES], dtype=torch.int32))
    assert tuple(log_probs.shape) == (195, 1, 41) and out_lens.tolist() == [195]


def test_profiles_validate_against_the_graph_and_convert(tmp_path, small_onnx):
    for name in ("lstm_ctc", "lstm_ctc_small"):
        profile = load_profile(name)
        profile.validate_onnx(onnx.load(small_onnx), small_onnx)
        assert profile.vocabulary.labels[:3] == ("blank", "UNK", "aa") and profile.vocabulary.size == 41
        assert profile.output("log_probs").axis("batch") == 1
    assert load_profile("lstm_ctc").batch_sizes == (1, 4, 8, 16) and load_profile("lstm_ctc").frames == (390,)
    (bundle,) = convert("lstm_ctc_small", small_onnx, str(tmp_path), batch_sizes=[2], build_om=False)
    assert "actual_input_1:2,390,243;input_lengths:2" in bundle.manifest["atc_command_line"]
    feats = np.zeros((2, FRAMES, 243), np.float32)
    log_probs, out_lens = ort.InferenceSession(bundle.onnx_path).run(
        None, {"actual_input_1": feats, "input_lengths": np.array([FRAMES, 7], np.int32)})
    assert log_probs.shape == (195, 2, 41) and out_lens.tolist() == [195, 4]


def write_clip(path, name, fmt):
    data, rate = sf.read(os.path.join(CLIPS, name), dtype="int16")
    sf.write(path, data, rate, format=fmt, subtype="PCM_16")


PHN = "0 2000 h#\n2000 2400 q\n2400 3000 bcl\n3000 3600 b\n3600 5200 ao\n5200 6000 pau\n6000 8000 h#\n"
PHN_2 = "0 1500 h#\n1500 3000 ix\n3000 4500 zh\n4500 6000 dcl\n6000 7000 d\n7000 9000 h#\n"


@pytest.fixture(scope="module")
def fake_timit(tmp_path_factory):
    """TRAIN (with an SA sentence and a sentence without .PHN), two dev speakers, a core-test and another speaker.

    Real clips (16 kHz, NIST SPHERE as TIMIT ships them, or RIFF) with made-up transcriptions.
    """
    root = tmp_path_factory.mktemp("TIMIT")
    files = [("TRAIN/DR1/FCJF0/SA1", "cards-001.wav", PHN), ("TRAIN/DR1/FCJF0/SI1027", "cards-001.wav", PHN),
             ("TRAIN/DR1/FCJF0/SX127", "cards-001.wav", None),
             ("TEST/DR1/FAKS0/SX43", "goforward.wav", PHN), ("TEST/DR4/MRJM4/SI1489", "cards-001.wav", PHN_2),
             ("TEST/DR4/FAKS0/SA2", "cards-001.wav", PHN),
             ("TEST/DR2/MDAB0/SI1039", "librivox-0880.wav", PHN_2), ("TEST/DR3/MZZZ0/SX1", "cards-001.wav", PHN)]
    for i, (stem, name, phn) in enumerate(files):
        os.makedirs(root / os.path.dirname(stem), exist_ok=True)
        write_clip(str(root / (stem + ".WAV")), name, "NIST" if i % 2 else "WAV")
        if phn:
            (root / (stem + ".PHN")).write_text(phn)
    return str(root)


def test_timit_reader_subsets_sa_exclusion_and_folding(fake_timit):
    train = list(timit_utterances(fake_timit, "train"))
    assert [type(e).__name__ for e in train] == ["Utterance", "BadEntry"]  # SA1 excluded, SX127 has no .PHN
    assert train[0].id == "FCJF0_SI1027" and train[0].text == "sil sil b aa sil sil"  # q deleted, not merged
    assert isinstance(train[1], BadEntry) and "SX127" in train[1].message
    dev = list(timit_utterances(fake_timit, "dev"))
    assert [u.id for u in dev] == ["FAKS0_SX43", "MRJM4_SI1489"] and dev[1].text == "sil ih sh sil d sil"
    assert [u.id for u in timit_utterances(fake_timit, "test")] == ["MDAB0_SI1039"]
    assert fold_phones(["ax-h", "axr", "el", "em", "en", "eng", "hv", "nx", "ux", "epi", "kcl"]) == \
        ["ah", "er", "l", "m", "n", "ng", "hh", "n", "uw", "sil", "sil"]
    with pytest.raises(Exception, match="not a TIMIT phone"):
        fold_phones(["h#", "xx"])


def test_vocabulary_units_and_phone_error_rate(tmp_path):
    assert units_in_order_of_appearance(["sil b aa sil", "aa k sil"]) == ["sil", "b", "aa", "k"]
    (tmp_path / "units").write_text("sil\nb\naa\nk\n")
    vocab = timit_vocabulary(read_units(str(tmp_path / "units")))
    assert vocab.labels == ("blank", "UNK", "sil", "b", "aa", "k") and vocab.blank == 0
    assert decode_phones(greedy_ctc(np.eye(6)[[0, 2, 2, 0, 3, 4, 4, 0, 2]], None, 0), vocab) == "sil b aa sil"
    per = phone_error_rate([("sil b aa sil", "b aa aa sil"), ("sil k", "sil k")])
    assert (per.errors, per.reference_length) == (2, 6)  # edit distance over phones / reference phones


def load_script(relative):
    spec = importlib.util.spec_from_file_location(os.path.basename(relative)[:-3], os.path.join(REPO, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modelzoo_scripts_score_phone_error_rate_from_time_major_outputs(tmp_path, fake_timit, cmvn_stats,
                                                                        small_model, small_onnx):
    """lstm_preprocess.py -> convert -> infer (onnxruntime, batch 2) -> lstm_postprocess.py == PER from PyTorch."""
    with open(os.path.join(PROFILE_DIR, "lstm_ctc_small.yaml")) as f:
        profile = yaml.safe_load(f)
    profile["frontend"]["cmvn_stats"] = cmvn_stats[0]
    profile_path = tmp_path / "lstm_with_cmvn.yaml"
    profile_path.write_text(yaml.safe_dump(profile))
    prep = tmp_path / "prep"
    with redirect_stdout(io.StringIO()):
        load_script("preprocess/lstm_preprocess.py").main(
            ["--timit_dir", fake_timit, "--subset", "dev", "--batchsize", "2", "--profile", str(profile_path),
             "--save_bin", str(tmp_path / "lstm_bin_bs2"), "--prep_dir", str(prep)])
    assert sorted(os.listdir(tmp_path / "lstm_bin_bs2")) == ["000000000000.bin", "000000000001.bin"]
    (bundle,) = convert(str(profile_path), small_onnx, str(tmp_path / "bundles"), batch_sizes=[2], build_om=False)
    infer(bundle.onnx_path, str(prep), str(tmp_path / "results"), InferOptions(save_outputs="npy", progress=False),
          out=io.StringIO())
    assert np.load(tmp_path / "results" / "outputs" / "000000000000_0.npy").shape == (195, 1, 41)

    rows = open_prep(str(prep)).rows
    pairs = []
    for row in rows:
        inputs = open_prep(str(prep)).load(row)
        log_probs, lens = run_torch(small_model, inputs["actual_input_1"], inputs["input_lengths"])
        pairs.append((row["raw_text"], decode_phones(transcripts(log_probs, lens)[0], timit_vocabulary())))
    assert [r["id"] for r in rows] == ["FAKS0_SX43", "MRJM4_SI1489"]
    assert [r["raw_text"] for r in rows] == ["sil sil b aa sil sil", "sil ih sh sil d sil"]
    expected = phone_error_rate(pairs)
    console = io.StringIO()
    with redirect_stdout(console):
        load_script("postprocess/lstm_postprocess.py").main(
            ["--npu_path", str(tmp_path / "results" / "outputs"), "--batchsize", "2", "--prep_dir", str(prep),
             "--profile", str(profile_path)])
    line = (f"Phone error rate (PER) on test set: {100 * expected.rate:.4f}  "
            f"({expected.errors}/{expected.reference_length} phones, 2 utterances)")
    assert line in console.getvalue()

    # ModelZoo's batched naming, batch on axis 1 and no lengths file: ceil(frames / 2) from prep/
    batched = tmp_path / "batched"
    batched.mkdir()
    outputs = [np.load(tmp_path / "results" / "outputs" / f"{r['stem']}_0.npy") for r in rows]
    np.concatenate(outputs, axis=1).tofile(batched / "inputs_0_0.bin")
    console = io.StringIO()
    with redirect_stdout(console):
        load_script("postprocess/lstm_postprocess.py").main(
            ["--npu_path", str(batched), "--batchsize", "2", "--prep_dir", str(prep), "--profile", str(profile_path)])
    assert line in console.getvalue()


def test_pipeline_scores_phone_error_rate_on_space_separated_phones(monkeypatch, tmp_path, fake_timit, small_onnx):
    """TIMIT manifest -> preprocess -> convert (fake ATC) -> infer on pyACL and onnxruntime -> PER."""
    from ascend_asr.bundle import convert
    from ascend_asr.infer import InferOptions, infer
    from ascend_asr.preprocess import preprocess
    from ascend_asr.profiles import load_profile
    from ascend_asr.tensor_files import read_jsonl
    from ascend_asr.timit import write_timit_manifest

    from .npu_doubles import control

    profile = load_profile("lstm_ctc_small")
    manifest = str(tmp_path / "dev.jsonl")
    write_timit_manifest(fake_timit, "dev", manifest)
    prep = str(tmp_path / "prep")
    preprocess(manifest, prep, profile, progress=False)
    control.activate(monkeypatch)
    try:
        bundle = convert(profile, small_onnx, str(tmp_path / "b"), batch_sizes=[2], build_om=True)[0]
        summaries = {b: infer(bundle.om_path, prep, str(tmp_path / b), InferOptions(backend=b, progress=False),
                              out=open(os.devnull, "w")) for b in ("acl", "onnxruntime")}
    finally:
        control.purge()
    rows = {b: read_jsonl(str(tmp_path / b / "hyps.jsonl")) for b in summaries}
    assert [r["hyp"] for r in rows["acl"]] == [r["hyp"] for r in rows["onnxruntime"]]
    assert rows["acl"][1]["ref"] == "sil ih sh sil d sil"  # phone references kept as tokens
    vocab = profile.vocabulary
    assert any(r["hyp"] for r in rows["acl"])  # the random model emits phones, space-separated
    for r in rows["acl"]:
        assert all(token in vocab.labels for token in r["hyp"].split())
    assert summaries["acl"]["error_rate"] == "PER" and summaries["acl"]["backend"] == "acl"
