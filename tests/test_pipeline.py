"""End to end: preprocess -> infer -> score on real clips, bad inputs, resuming, ModelZoo scripts."""
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from ascend_asr.decoding import greedy_ctc
from ascend_asr.demo import run_demo
from ascend_asr.infer import InferOptions, infer
from ascend_asr.prep import open_prep
from ascend_asr.preprocess import preprocess
from ascend_asr.score import score_results
from ascend_asr.tensor_files import parse_info_line, read_jsonl

from .conftest import CLIPS, CLIPS_MANIFEST, REPO


def run_infer(bundle, prep, out, **kw):
    console = io.StringIO()
    summary = infer(bundle.om_path, prep, str(out), InferOptions(progress=False, **kw), out=console)
    return summary, console.getvalue()


def hyps_by_id(results):
    return {r["id"]: r["hyp"] for r in read_jsonl(os.path.join(results, "hyps.jsonl"))}


def test_prep_layout_matches_what_ascend_tools_read(demo_prep, small_profile):
    prep = open_prep(demo_prep)
    assert len(prep.rows) == 8 and prep.info["failed"] == 0
    for spec in small_profile.inputs:
        files = sorted(os.listdir(os.path.join(demo_prep, spec.name)))
        assert files == [f"{i:012d}.bin" for i in range(8)]
    with open(os.path.join(demo_prep, "jasper_small.info")) as f:
        lines = [parse_info_line(line, "info") for line in f]
    assert len(lines) == 16 and lines[0][0] == 0 and lines[1][0] == 0
    for index, path, shape in lines:
        row = prep.rows[index]
        itemsize = 4
        assert os.path.getsize(path) == int(np.prod(shape)) * itemsize
        if "feats" in path:
            assert shape == (1, 64, row["padded_frames"])
    first = prep.rows[0]
    assert first["id"] == "61-70968-0001" and first["text"] == "give not so earnest a mind to these mummeries child"
    lens = np.fromfile(os.path.join(demo_prep, "feat_lens", first["stem"] + ".bin"), dtype="<i4")
    assert lens.tolist() == [first["frames"]] and first["padded_frames"] in (256, 512, 1024)


def test_infer_falls_back_visibly_and_writes_ais_bench_summary(small_bundles, demo_prep, tmp_path):
    summary, console = run_infer(small_bundles[1], demo_prep, tmp_path / "r")
    assert "FALLBACK" in console and "onnxruntime-cpu" in console
    assert summary["backend"] == "onnxruntime-cpu" and summary["fallback"] is True
    for key in ("NPU_compute_time", "H2D_latency", "D2H_latency"):
        assert set(summary[key]) == {"min", "max", "mean", "median", "percentile(99%)", "count"}
    assert summary["NPU_compute_time"]["count"] == 8 and summary["throughput"] > 0
    assert 0 < summary["padding_efficiency"] <= 1 and summary["rtf"] > 0
    assert summary["utterances"]["scored"] == 8 and summary["wer"] is not None
    with open(tmp_path / "r" / "summary.json") as f:
        assert json.load(f)["fallback"] is True


def test_transcripts_equal_pytorch_and_do_not_depend_on_batch_size(small_bundles, demo_prep, small_model, tmp_path):
    run_infer(small_bundles[1], demo_prep, tmp_path / "b1")
    run_infer(small_bundles[4], demo_prep, tmp_path / "b4")
    b1, b4 = hyps_by_id(tmp_path / "b1"), hyps_by_id(tmp_path / "b4")
    assert b1 == b4 and len(b1) == 8
    prep = open_prep(demo_prep)
    vocab = small_bundles[1].vocabulary
    for row in prep.rows:
        t = prep.load(row)
        with torch.no_grad():
            probs, lens = small_model(torch.from_numpy(t["feats"]), torch.from_numpy(t["feat_lens"]))
        assert b1[row["id"]] == vocab.decode(greedy_ctc(probs[0].numpy(), int(lens[0]), vocab.blank))


def test_resumed_run_neither_redoes_nor_duplicates(small_bundles, demo_prep, tmp_path):
    out = tmp_path / "r"
    run_infer(small_bundles[4], demo_prep, out)
    path = out / "hyps.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # interrupted: 3 done, one torn line
    summary, _ = run_infer(small_bundles[4], demo_prep, out)
    rows = read_jsonl(str(path))
    assert sorted(r["stem"] for r in rows) == sorted({r["stem"] for r in rows}) and len(rows) == 8
    assert summary["utterances"]["resumed"] == 3 and summary["utterances"]["this_run"] == 5


def test_score_command_matches_the_summary(small_bundles, demo_prep, tmp_path):
    summary, _ = run_infer(small_bundles[1], demo_prep, tmp_path / "r")
    report = score_results(str(tmp_path / "r"))
    assert report["wer"] == summary["wer"] and report["cer"] == summary["cer"]
    assert len(report["per_utterance"]) == 8


def write_bad_inputs(folder):
    """A manifest mixing good clips with every kind of bad input; returns its path."""
    good = os.path.join(CLIPS, "goforward.wav")
    clip, rate = sf.read(good, dtype="int16")
    sf.write(folder / "stereo.wav", np.stack([clip, clip], axis=1), rate)
    shutil.copy(os.path.join(CLIPS, "3_jackson_0.wav"), folder / "8khz.wav")
    sf.write(folder / "empty.wav", np.zeros(0, np.int16), 16000)
    sf.write(folder / "long.wav", np.tile(clip, 5), rate)  # ~14 s: more than the 1024-frame gear
    rows = [f"{good}\tgo forward ten meters", "stereo.wav\tgo forward ten meters", "8khz.wav\tthree",
            "missing.wav\tnothing", "empty.wav\tnothing", "long.wav\ttoo long", "only-one-column",
            f"{os.path.join(CLIPS, 'cards-001.wav')}\tten of clubs"]
    manifest = folder / "bad.tsv"
    manifest.write_text("path\ttext\n" + "\n".join(rows) + "\n")
    return str(manifest)


def test_bad_inputs_are_reported_and_skipped_while_the_rest_finishes(tmp_path, small_profile, small_bundles, capsys):
    manifest = write_bad_inputs(tmp_path)
    summary = preprocess(manifest, str(tmp_path / "prep"), small_profile, progress=False)
    err = capsys.readouterr().err
    assert summary.written == 4 and summary.failed == 4  # good, stereo (mixed), 8 kHz (resampled), cards
    assert "missing.wav" in err and "not found" in err
    assert "empty.wav" in err and "empty" in err
    assert "long.wav" in err and "largest compiled shape holds 1024 frames" in err
    assert "bad.tsv:8" in err and "columns" in err
    with open(tmp_path / "prep" / "failures.json") as f:
        assert len(json.load(f)) == 4
    result, _ = run_infer(small_bundles[1], str(tmp_path / "prep"), tmp_path / "r")
    assert result["utterances"]["scored"] == 4 and result["utterances"]["failed_in_preprocess"] == 4


def test_resampling_and_mixing_can_be_refused(tmp_path, small_profile, capsys):
    manifest = write_bad_inputs(tmp_path)
    summary = preprocess(manifest, str(tmp_path / "prep"), small_profile, progress=False, resample=False,
                         mix_to_mono=False)
    err = capsys.readouterr().err
    assert summary.written == 2
    assert "8khz.wav: expected 16000 Hz, found 8000 Hz" in err and "stereo.wav: expected 1 channel, found 2" in err


def test_wrong_size_bin_fails_that_utterance_only(tmp_path, small_profile, small_bundles, capsys):
    prep = str(tmp_path / "prep")
    preprocess(CLIPS_MANIFEST, prep, small_profile, progress=False)
    victim = os.path.join(prep, "feats", "000000000002.bin")
    with open(victim, "r+b") as f:
        f.truncate(1000)
    summary, _ = run_infer(small_bundles[4], prep, tmp_path / "r")
    err = capsys.readouterr().err
    assert victim in err and "1000 bytes" in err and "expected" in err
    assert summary["utterances"]["failed"] == 1 and summary["utterances"]["scored"] == 7


def test_preprocess_resume_skips_finished_and_refuses_another_profile(tmp_path, small_profile):
    prep = str(tmp_path / "prep")
    first = preprocess(CLIPS_MANIFEST, prep, small_profile, progress=False, limit=3)
    second = preprocess(CLIPS_MANIFEST, prep, small_profile, progress=False)
    assert (first.written, second.written, second.resumed) == (3, 5, 3)
    assert len(open_prep(prep).rows) == 8
    with pytest.raises(Exception, match="another profile"):
        preprocess(CLIPS_MANIFEST, prep, "jasper", progress=False)


def test_modelzoo_scripts_round_trip_through_ais_bench_file_names(tmp_path, small_bundles):
    """jasper_preprocess.py -> (ais_bench-named outputs) -> jasper_postprocess.py gives our WER."""
    prep = tmp_path / "prep"
    subprocess.run([sys.executable, os.path.join(REPO, "preprocess", "jasper_preprocess.py"),
                    "--val_manifests", CLIPS_MANIFEST, "--model_config", "jasper_small",
                    "--save_bin_0", str(tmp_path / "prep_data_0"), "--save_bin_1", str(tmp_path / "prep_data_1"),
                    "--json_file", str(tmp_path / "agg_txts.json"), "--prep_dir", str(prep)], check=True)
    assert len(os.listdir(tmp_path / "prep_data_0")) == 8 and len(os.listdir(tmp_path / "prep_data_1")) == 8
    summary, _ = run_infer(small_bundles[1], str(prep), tmp_path / "r", save_outputs="bin")
    outputs = sorted(os.listdir(tmp_path / "r" / "outputs"))
    assert outputs[:2] == ["000000000000_0.bin", "000000000000_1.bin"] and len(outputs) == 16
    done = subprocess.run([sys.executable, os.path.join(REPO, "postprocess", "jasper_postprocess.py"),
                           "--model_config", "jasper_small", "--save_bin", str(tmp_path / "r" / "outputs"),
                           "--json_file", str(tmp_path / "agg_txts.json")], check=True, capture_output=True, text=True)
    assert f"eval_wer: {100 * summary['wer']}" in done.stdout


def test_demo_main_command_prints_wer_rtf_backend_and_fallback(tmp_path):
    console = io.StringIO()
    run_demo(str(tmp_path / "demo"), progress=False, out=console)
    text = console.getvalue()
    for needle in ("WER ", "CER ", "RTF ", "backend=onnxruntime-cpu", "fallback=true", "trained reference model"):
        assert needle in text
    assert text.count("REF:") == text.count("HYP:") == 9
    summary = json.load(open(tmp_path / "demo" / "results" / "summary.json"))
    assert summary["cer"] <= 0.10  # the trained model recognizes the held-out clips


def test_log_probs_do_not_depend_on_batch_size(small_bundles, demo_prep, tmp_path):
    for b in (1, 4):
        run_infer(small_bundles[b], demo_prep, tmp_path / f"b{b}", save_outputs="npy")
    for row in read_jsonl(str(tmp_path / "b1" / "hyps.jsonl")):
        a = np.load(tmp_path / "b1" / "outputs" / f"{row['stem']}_0.npy")[0, : row["out_frames"]]
        b = np.load(tmp_path / "b4" / "outputs" / f"{row['stem']}_0.npy")[0, : row["out_frames"]]
        assert np.abs(a - b).max() <= 1e-4


def test_resuming_with_another_dataset_or_model_is_refused(tmp_path, small_profile, small_bundles, small_onnx):
    prep = str(tmp_path / "prep")
    preprocess(CLIPS_MANIFEST, prep, small_profile, progress=False, limit=2)
    other = tmp_path / "other.tsv"
    other.write_text(f"path\ttext\n{os.path.join(CLIPS, 'cards-001.wav')}\tten of clubs\n")
    with pytest.raises(Exception, match="new --output"):
        preprocess(str(other), prep, small_profile, progress=False)
    run_infer(small_bundles[1], prep, tmp_path / "r")
    from ascend_asr.bundle import convert
    renamed = convert(small_profile, small_onnx, str(tmp_path / "b"), name="other", batch_sizes=[1])[0]
    with pytest.raises(Exception, match="holds results of jasper_small_bs1"):
        run_infer(renamed, prep, tmp_path / "r")


def test_errors_without_a_path_get_the_audio_path(tmp_path, small_profile, capsys):
    short = tmp_path / "short.wav"
    sf.write(short, np.ones(200, np.int16), 16000)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\nshort.wav\tx\n")
    summary = preprocess(str(manifest), str(tmp_path / "prep"), small_profile, progress=False)
    err = capsys.readouterr().err
    assert summary.failed == 1 and f"{short}: audio of 200 samples is too short" in err and "remove it" in err


def test_recorded_duration_is_the_files_before_trimming(demo_prep):
    for row in open_prep(demo_prep).rows:
        info = sf.info(row["audio"])
        assert row["duration"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)


def test_modelzoo_preprocess_joins_several_manifests_and_postprocess_pairs_by_stem(tmp_path, small_bundles):
    librispeech = os.path.join(os.path.dirname(CLIPS), "LibriSpeech")
    prep = tmp_path / "prep"
    subprocess.run([sys.executable, os.path.join(REPO, "preprocess", "jasper_preprocess.py"),
                    "--val_manifests", CLIPS_MANIFEST, librispeech, "--model_config", "jasper_small",
                    "--save_bin_0", str(tmp_path / "d0"), "--save_bin_1", str(tmp_path / "d1"),
                    "--json_file", str(tmp_path / "agg.json"), "--prep_dir", str(prep)], check=True)
    assert len(os.listdir(tmp_path / "d0")) == 10
    with open(tmp_path / "agg.json") as f:
        assert len(json.load(f)["txts"]) == 10
    run_infer(small_bundles[1], str(prep), tmp_path / "r", save_outputs="bin")
    rows = read_jsonl(str(tmp_path / "r" / "hyps.jsonl"))
    for k in (0, 1):  # an utterance without outputs must not shift the others' references
        os.unlink(tmp_path / "r" / "outputs" / f"{rows[2]['stem']}_{k}.bin")
    from ascend_asr.metrics import score
    expected = score((r["ref"], r["hyp"]) for r in rows if r["stem"] != rows[2]["stem"])
    done = subprocess.run([sys.executable, os.path.join(REPO, "postprocess", "jasper_postprocess.py"),
                           "--model_config", "jasper_small", "--save_bin", str(tmp_path / "r" / "outputs"),
                           "--json_file", str(tmp_path / "agg.json")], check=True, capture_output=True, text=True)
    assert f"eval_wer: {100 * expected.wer}" in done.stdout and "no output for 1 of 10" in done.stdout


def test_beam_search_decoder_from_the_infer_command(small_bundles, demo_prep, tmp_path):
    """--decoder beam decodes each utterance's valid log-probs with prefix beam search, space as word boundary."""
    from ascend_asr.beam_search import prefix_beam_search

    summary, _ = run_infer(small_bundles[1], demo_prep, tmp_path / "beam", decoder="beam", beam_width=8,
                           save_outputs="npy")
    assert summary["decoder"] == {"kind": "beam", "beam_width": 8, "lm": None, "lm_alpha": 0.5, "lm_beta": 1.0}
    vocab = small_bundles[1].vocabulary
    rows = read_jsonl(os.path.join(tmp_path, "beam", "hyps.jsonl"))
    assert len(rows) == 8
    for r in rows:
        log_probs = np.load(os.path.join(tmp_path, "beam", "outputs", f"{r['stem']}_0.npy"))[0]
        expected = prefix_beam_search(log_probs.astype(np.float64), r["out_frames"], vocab.blank, 8,
                                      word_boundary=vocab.labels.index(" "), labels=vocab.labels)
        assert r["hyp"] == vocab.decode(expected)
