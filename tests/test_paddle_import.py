"""`ascend-asr import-paddle`: the recipe's Paddle inference model -> ONNX through paddle2onnx, with the
static-state fix, gated on Paddle Predictor and on our exporter's graph (needs the paddle extra)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from ascend_asr.errors import ExportError
from ascend_asr.families.paddle_ds2_online.paddle_import import fix_state_shapes, program_files

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "upstream", "paddlespeech_ds2_online")
MODEL_DIR = os.path.join(HERE, "exp", "deepspeech2_online", "checkpoints")
HAVE_PADDLE = bool(importlib.util.find_spec("paddle") and importlib.util.find_spec("paddle2onnx"))
needs_paddle = pytest.mark.skipif(not HAVE_PADDLE, reason="the paddle extra is not installed: pip install "
                                  "paddlepaddle==3.3.1 && pip install --no-deps paddle2onnx==2.1.0")


def data_shapes(program: dict) -> dict:
    from ascend_asr.families.paddle_ds2_online.paddle_import import _attr, _ops

    return {_attr(op, "name"): _attr(op, "shape") for op in _ops(program) if op["#"] == "1.data"}


def test_the_static_state_fix_declares_layers_and_hidden_from_the_programs_rnn_ops():
    program, params = program_files(MODEL_DIR, None)
    assert program.endswith("avg_1.jit.json") and params.endswith("avg_1.jit.pdiparams")
    with open(program, encoding="utf-8") as f:
        text = f.read()
    assert data_shapes(json.loads(text))["chunk_state_h_box"] == [-1, -1, -1]  # as upstream's export() declares
    fixed, layers, hidden = fix_state_shapes(text, program)
    shapes = data_shapes(json.loads(fixed))
    assert (layers, hidden) == (2, 24)
    assert shapes["chunk_state_h_box"] == shapes["chunk_state_c_box"] == [2, -1, 24]
    assert shapes["audio_chunk"] == [-1, -1, 41]


def test_a_program_without_lstm_layers_is_refused():
    with pytest.raises(ExportError, match="no rnn op"):
        fix_state_shapes(json.dumps({"program": {"regions": []}}), "x.json")


@needs_paddle
def test_import_route_is_gated_on_paddle_and_agrees_with_the_pdparams_route(tmp_path):
    from ascend_asr.families.paddle_ds2_online.paddle_import import main

    out = str(tmp_path / "imported.onnx")
    assert main(["--model-dir", MODEL_DIR, "--output", out, "--pdparams", os.path.join(MODEL_DIR, "avg_1.pdparams"),
                 "--config", os.path.join(HERE, "conf", "deepspeech2_online.yaml")]) == 0
    report = json.load(open(out + ".parity.json"))
    for route in ("paddle_vs_onnx", "ours_vs_imported"):
        for name, m in report[route].items():
            assert m["max_abs"] < 1e-4 and m["cosine"] > 0.9999, (route, name, m)


@needs_paddle
def test_paddle2onnx_leaves_padded_batches_unmasked_in_the_states(tmp_path):
    """What the import route does with a padded batch: probabilities on valid frames are right (the LSTMs are
    causal), the shorter utterance's final states are not (no sequence_length in paddle2onnx's LSTM)."""
    import onnxruntime as ort

    from ascend_asr.families.paddle_ds2_online.paddle_import import import_paddle

    out = str(tmp_path / "imported.onnx")
    import_paddle(MODEL_DIR, out)
    ref = np.load(os.path.join(HERE, "reference_outputs.npz"))  # Paddle's DeepSpeech2InferModel, lengths [19, 13]
    probs, lens, h, _ = ort.InferenceSession(out).run(None, {
        "audio_chunk": ref["step_input"], "audio_chunk_lens": ref["step_lens"],
        "chunk_state_h_box": ref["step_h0"], "chunk_state_c_box": ref["step_c0"]})
    assert lens.tolist() == [4, 2]
    for b, n in enumerate(lens):
        assert np.abs(probs[b, :n] - ref["step_probs"][b, :n]).max() < 1e-4
    assert np.abs(h[:, 0] - ref["step_h1"][:, 0]).max() < 1e-4  # the full-length utterance
    assert np.abs(h[:, 1] - ref["step_h1"][:, 1]).max() > 1e-2  # the padded one ran on into the padding


@pytest.mark.skipif(HAVE_PADDLE, reason="the paddle extra is installed here")
def test_without_the_paddle_extra_the_command_says_what_to_install(tmp_path):
    from ascend_asr.errors import OptionError
    from ascend_asr.families.paddle_ds2_online.paddle_import import main

    with pytest.raises(OptionError, match="pip install paddlepaddle==3.3.1 && pip install --no-deps paddle2onnx"):
        main(["--model-dir", MODEL_DIR, "--output", str(tmp_path / "x.onnx")])


@needs_paddle
def test_paddle_inference_streams_like_upstreams_chunk_by_chunk():
    """The Paddle Inference row of the RTF table runs the recipe's exported model through the same scheduler."""
    from ascend_asr.families.paddle_ds2_online.streaming.chunks import ChunkPlan
    from ascend_asr.families.paddle_ds2_online.streaming.scheduler import run_streams
    from ascend_asr.families.paddle_ds2_online.streaming.steps import paddle_step

    ref = np.load(os.path.join(HERE, "reference_outputs.npz"))
    results, _ = run_streams([("u0", ref["features_0"]), ("u1", ref["features_1"])], paddle_step(MODEL_DIR),
                             ChunkPlan(4), 2, 2, 24, 41)
    for i, r in enumerate(sorted(results, key=lambda r: r.key)):
        n = int(ref["probs_lens"][i])
        assert np.abs(r.probs - ref["chunk4_probs"][i, :n]).max() < 1e-4
        assert np.abs(r.final_h - ref["chunk4_final_h"][:, i]).max() < 1e-4
