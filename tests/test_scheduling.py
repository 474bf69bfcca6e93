"""Length-sorted scheduling, feature and decode workers, onnxruntime options (issue 13, items 2 and 3)."""
import io
import json
import os
import shutil

import pytest

from ascend_asr import infer as infer_module
from ascend_asr.backends import open_session
from ascend_asr.batching import pick_frames, plan_batches, smallest_gear
from ascend_asr.bundle import convert
from ascend_asr.demo import DEMO_MANIFEST
from ascend_asr.errors import OptionError
from ascend_asr.export import export_onnx
from ascend_asr.families import load_model, reference_checkpoint
from ascend_asr.infer import InferOptions, build_parser, infer
from ascend_asr.preprocess import preprocess
from ascend_asr.profiles import load_profile
from ascend_asr.tensor_files import read_jsonl

from .conftest import ASSETS, CLIPS_MANIFEST


def run_infer(model, prep, out, **kw):
    return infer(model, str(prep), str(out), InferOptions(progress=False, **kw), out=io.StringIO())


def hyps(results):
    return read_jsonl(os.path.join(str(results), "hyps.jsonl"))


def hyp_by_id(results):
    return {r["id"]: r["hyp"] for r in hyps(results)}


def manifest_order(rows, compiled_frames, batch_sizes):
    """What infer did before length sorting: batches of the batch size in manifest order, padded to the gear of
    their longest utterance."""
    size = max(batch_sizes)
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    return [(pick_frames(max(r["padded_frames"] for r in c), compiled_frames, size), size, c) for c in chunks]


def test_plan_batches_groups_by_gear_largest_batch_first():
    gears = (100, 200, 400)
    lengths = [390, 12, 150, 99, 201, 100, 30, 180, 50, 399, 77, 160, 10]
    rows = [{"stem": f"{i:012d}", "frames": n, "padded_frames": smallest_gear(n, gears)} for i, n in enumerate(lengths)]
    plan = plan_batches(rows, gears, [1, 4])
    assert plan == plan_batches(list(reversed(rows)), gears, [4, 1])  # deterministic: the data decides, not the order
    assert sorted(r["stem"] for _, _, batch in plan for r in batch) == sorted(r["stem"] for r in rows)  # each once
    for frames, size, batch in plan:
        assert 0 < len(batch) <= size and all(smallest_gear(r["padded_frames"], gears) == frames for r in batch)
        assert [r["frames"] for r in batch] == sorted((r["frames"] for r in batch), reverse=True)
    assert [f for f, _, _ in plan] == sorted((f for f, _, _ in plan), reverse=True)  # largest gear first
    # gear 400 and gear 200: 3 utterances each -> 3 batches of 1; gear 100: 7 -> one batch of 4, then 3 of 1
    assert [(f, s, len(b)) for f, s, b in plan] == [(400, 1, 1)] * 3 + [(200, 1, 1)] * 3 + [(100, 4, 4)] \
        + [(100, 1, 1)] * 3
    # a remainder smaller than every batch size: one padded batch of the smallest
    assert [(f, s, len(b)) for f, s, b in plan_batches(rows, gears, [4])] == [(400, 4, 3), (200, 4, 3), (100, 4, 4),
                                                                               (100, 4, 3)]
    true = sum(lengths)
    fed = sum(f * s for f, s, _ in plan_batches(rows, gears, [4]))
    fed_manifest = sum(f * s for f, s, _ in manifest_order(rows, gears, [4]))
    assert true / fed >= true / fed_manifest


def test_sorting_never_changes_a_jasper_transcript(small_bundles, demo_prep, tmp_path, monkeypatch):
    """jasper_small is batch- and gear-invariant: sorted batch 4, manifest-order batch 4 and batch 1 agree."""
    sorted4 = run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "sorted4")
    one = run_infer(small_bundles[1].om_path, demo_prep, tmp_path / "one")
    both = run_infer(f"{small_bundles[4].om_path},{small_bundles[1].om_path}", demo_prep, tmp_path / "both")
    monkeypatch.setattr(infer_module, "plan_batches", manifest_order)
    manifest4 = run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "manifest4")
    assert hyp_by_id(tmp_path / "sorted4") == hyp_by_id(tmp_path / "manifest4") == hyp_by_id(tmp_path / "one") \
        == hyp_by_id(tmp_path / "both")
    assert len(hyps(tmp_path / "one")) == 8
    assert sorted4["padding_efficiency"] >= manifest4["padding_efficiency"]
    assert both["padding_efficiency"] >= sorted4["padding_efficiency"]  # remainders at batch 1, not padded rows
    assert both["batch_sizes"] == [1, 4] and both["model"] == f"{small_bundles[1].name},{small_bundles[4].name}"
    for name in ("sorted4", "one", "both", "manifest4"):  # hyps.jsonl in stem order whatever the batches
        stems = [r["stem"] for r in hyps(tmp_path / name)]
        assert stems == sorted(stems)


def test_bundles_of_another_model_are_refused_together(small_bundles, tmp_path):
    other = json.loads(open(small_bundles[4].manifest_path).read())
    other["time_stride"] = 3
    folder = tmp_path / "other"
    folder.mkdir()
    for ext in (".onnx",):
        shutil.copy(os.path.join(small_bundles[4].directory, small_bundles[4].name + ext), folder)
    (folder / (small_bundles[4].name + ".json")).write_text(json.dumps(other))
    with pytest.raises(OptionError, match="time_stride"):
        infer_module.open_bundles(f"{small_bundles[1].om_path},{folder / small_bundles[4].name}.om")
    with pytest.raises(OptionError, match="batch size"):
        infer_module.open_bundles(f"{small_bundles[1].om_path},{small_bundles[1].om_path}")


@pytest.fixture(scope="module")
def lstm_char(tmp_path_factory):
    """The shipped lstm_ctc_char reference model at batch 1 and 4, and prep/ of the held-out clips."""
    tmp = tmp_path_factory.mktemp("lstm_char")
    profile = load_profile("lstm_ctc_char")
    onnx_path = export_onnx(load_model(profile, reference_checkpoint(profile.name)), str(tmp / "lstm.onnx"))
    bundles = {b.batch_size: b for b in convert(profile, onnx_path, str(tmp / "bundles"), batch_sizes=[1, 4],
                                                build_om=False)}
    preprocess(DEMO_MANIFEST, str(tmp / "prep"), profile, progress=False)
    return bundles, str(tmp / "prep")


def test_sorting_never_changes_an_lstm_transcript(lstm_char, tmp_path):
    """The LSTM's scores depend on the gear it is padded to (its backward layers start in the padding), so the
    reference is batch 1, where each utterance runs at its own smallest gear, as length sorting batches it; the
    manifest-order batching of before could pad an utterance to a longer neighbour's gear."""
    bundles, prep = lstm_char
    run_infer(bundles[4].om_path, prep, tmp_path / "sorted4")
    run_infer(bundles[1].om_path, prep, tmp_path / "one")
    run_infer(f"{bundles[1].om_path},{bundles[4].om_path}", prep, tmp_path / "both")
    assert hyp_by_id(tmp_path / "sorted4") == hyp_by_id(tmp_path / "one") == hyp_by_id(tmp_path / "both")
    assert len(hyps(tmp_path / "one")) == len(read_jsonl(os.path.join(prep, "meta.jsonl")))


def test_hyps_order_is_stable_across_a_resumed_run(small_bundles, demo_prep, tmp_path, monkeypatch):
    run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "full")
    decoded = []
    real = infer_module.decode_one

    def interrupted(*args):
        if len(decoded) == 5:  # during the second batch: the first one's rows are written
            raise KeyboardInterrupt
        decoded.append(1)
        return real(*args)

    monkeypatch.setattr(infer_module, "decode_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "resumed")
    written = len(hyps(tmp_path / "resumed"))
    assert 0 < written < 8
    monkeypatch.setattr(infer_module, "decode_one", real)
    summary = run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "resumed")
    assert summary["utterances"]["resumed"] == written and summary["utterances"]["scored"] == 8
    assert (tmp_path / "resumed" / "hyps.jsonl").read_bytes() == (tmp_path / "full" / "hyps.jsonl").read_bytes()


def _manifest_with_a_bad_file(tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_bytes(b"RIFF, but not a wave file at all")
    lines = open(CLIPS_MANIFEST).read().splitlines()
    rows = [lines[0]] + [os.path.join(os.path.dirname(CLIPS_MANIFEST), line) for line in lines[1:4]] \
        + [f"{bad}\t1.0\tbroken\ttest\tnone"] + [os.path.join(os.path.dirname(CLIPS_MANIFEST), line)
                                                  for line in lines[4:]]
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return str(manifest)


def test_preprocess_workers_write_the_same_prep_folder(tmp_path, small_profile):
    manifest = _manifest_with_a_bad_file(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    first = preprocess(manifest, str(one), small_profile, progress=False, workers=1, log=io.StringIO())
    second = preprocess(manifest, str(two), small_profile, progress=False, workers=2, log=io.StringIO())
    assert first.written == second.written == 8 and first.failed == second.failed == 1
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != ".lock")
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file() and p.name != ".lock")
    assert len([f for f in files if f.suffix == ".bin"]) == 16
    for f in files:
        a, b = (one / f).read_bytes(), (two / f).read_bytes()
        if f.name == "prep.json":
            a, b = json.loads(a), json.loads(b)
            for info in (a, b):
                for run in info["runs"]:
                    del run["started"], run["wall_time_s"]
        elif f.suffix == ".info":
            b = b.replace(str(two).encode(), str(one).encode())  # the info file names each .bin by its path
        assert a == b, f
    failures = json.loads((one / "failures.json").read_text())
    assert [f["stem"] for f in failures] == ["000000000003"] and "not_audio.wav" in failures[0]["error"]
    # a rerun with workers resumes: nothing redone
    again = preprocess(manifest, str(two), small_profile, progress=False, workers=2, log=io.StringIO())
    assert again.written == 0 and again.resumed == 8
    assert (two / "meta.jsonl").read_bytes() == (one / "meta.jsonl").read_bytes()


@pytest.mark.parametrize("decoder", [{"decoder": "greedy"}, {"decoder": "beam", "beam_width": 4, "lm": os.path.join(
    os.path.dirname(ASSETS), "models", "jasper_small_words_bigram.arpa")}], ids=["greedy", "beam_lm"])
def test_decode_workers_give_the_same_hyps(small_bundles, demo_prep, tmp_path, decoder):
    here = run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "here", save_outputs="npy", **decoder)
    pool = run_infer(small_bundles[4].om_path, demo_prep, tmp_path / "pool", save_outputs="npy", decode_workers=2,
                     **decoder)
    assert pool["decode_workers"] == 2 and here["decode_workers"] == 0
    assert (tmp_path / "pool" / "hyps.jsonl").read_bytes() == (tmp_path / "here" / "hyps.jsonl").read_bytes()
    assert sorted(os.listdir(tmp_path / "pool" / "outputs")) == sorted(os.listdir(tmp_path / "here" / "outputs"))


def test_onnxruntime_options_reach_the_session(small_bundles, demo_prep, tmp_path, monkeypatch):
    import onnxruntime as ort

    with open_session(small_bundles[1], "onnxruntime", out=io.StringIO(), ort_threads=1,
                      ort_opt_level="basic") as session:
        options = session._session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opened = []
    real = infer_module.open_session

    def recording(*args, **kw):
        session = real(*args, **kw)
        opened.append(session._session.get_session_options())
        return session

    monkeypatch.setattr(infer_module, "open_session", recording)
    summary = run_infer(small_bundles[1].om_path, demo_prep, tmp_path / "r", ort_threads=2, ort_opt_level="disable")
    assert [(o.intra_op_num_threads, o.graph_optimization_level) for o in opened] == \
        [(2, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)]
    assert summary["onnxruntime"] == {"threads": 2, "opt_level": "disable"}
    args = build_parser().parse_args(["--model", "m", "--input", "i", "--output", "o", "--ort-threads", "3",
                                      "--ort-opt-level", "extended", "--decode-workers", "2"])
    assert (args.ort_threads, args.ort_opt_level, args.decode_workers) == (3, "extended", 2)
    with pytest.raises(OptionError, match="--ort-opt-level"):
        InferOptions(ort_opt_level="fast")
    with pytest.raises(OptionError, match="--decode-workers"):
        InferOptions(decode_workers=-1)
