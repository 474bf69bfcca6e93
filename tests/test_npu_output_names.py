"""OM output names as ATC gives them for ONNX (reference, Corrections): "<op>:<idx>:<tensor>" without
--out_nodes or with its output-name form, "<op>:<idx>" with its node form, and plain names. convert
emits the output-name form only; the backends match every form; the fake ATC names outputs the same way."""
import glob
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ascend_asr.atc import atc_command, out_nodes_arg
from ascend_asr.backends.npu_common import match_names as npu_common_match_names
from ascend_asr.backends.output_names import match_names, names_no_tensor, tensor_name
from ascend_asr.bundle import convert, open_bundle, sha256
from ascend_asr.errors import AtcError, BackendError
from ascend_asr.infer import InferOptions, infer
from ascend_asr.profiles import known_profiles, load_profile
from ascend_asr.tensor_files import read_jsonl

from .npu_doubles import control

OM = "/models/jasper_bs4.om"
NODE_FORM = re.compile(r":\d+(;|$)")  # "node:0" entries


# -- the matcher -------------------------------------------------------------------------------------------
def test_plain_names_match_by_name_in_any_order():
    assert match_names(["label", "prob"], ["prob", "label"], "output", OM) == {"prob": 1, "label": 0}


def test_op_idx_tensor_names_match_by_the_tensor_after_the_op_and_index():
    model = ["ArgMax_93:0:label", "/decoder/LogSoftmax:0:prob"]
    assert match_names(model, ["prob", "label"], "output", OM) == {"prob": 1, "label": 0}


@pytest.mark.parametrize("fused", [
    "PartitionedCall_/decoder/LogSoftmax_Cast_12",  # a fused/subgraph op name, with '/' and '_'
    "trans_TransData_7/decoder/LogSoftmax",
    "sub:graph:LogSoftmax",  # even ':' inside the op: the name is read from the right
])
def test_fused_op_names_do_not_matter(fused):
    model = [f"{fused}:0:prob", "ArgMax_93:1:label"]
    assert match_names(model, ["prob", "label"], "output", OM) == {"prob": 0, "label": 1}
    assert tensor_name(f"{fused}:0:prob", "prob")
    assert names_no_tensor(f"{fused}:3")


def test_the_tensor_part_must_be_the_whole_name():
    assert not tensor_name("op:0:myprob", "prob")
    assert not tensor_name("op:0:x:prob", "prob")  # its tensor is "x:prob"
    assert not tensor_name("op:prob", "prob")  # no index
    assert not tensor_name("xprob", "prob")
    assert tensor_name("Identity_3:0:Identity:0", "Identity:0")  # a tensor name with ':' (tf2onnx style)
    with pytest.raises(BackendError, match="'prob' not found"):
        match_names(["op:0:myprob", "op:1:label"], ["prob", "label"], "output", OM)


def test_exact_names_win_over_tensor_suffixes():
    assert match_names(["Identity:0", "op:0:Identity:0"], ["Identity:0"], "output", OM) == {"Identity:0": 0}


def test_op_idx_names_fall_back_to_the_recorded_order():
    # node form of --out_nodes: no tensor names; the manifest's order (the order --out_nodes pinned) decides
    assert match_names(["LogSoftmax_fused_3:0", "ArgMax_93:0"], ["prob", "label"], "output", OM) == \
        {"prob": 0, "label": 1}
    assert match_names(["a:0", "b:0"], ["label"], "output", OM, order=["prob", "label"]) == {"label": 1}
    # a named output and an unnamed one, consistent with the order
    assert match_names(["x:0", "y:0:label"], ["prob", "label"], "output", OM) == {"prob": 0, "label": 1}


def test_op_idx_names_are_refused_when_the_order_cannot_hold():
    with pytest.raises(BackendError) as err:  # three outputs, two recorded: which is which?
        match_names(["a:0", "b:0", "c:0"], ["prob", "label"], "output", OM)
    message = str(err.value)
    assert OM in message and "['a:0', 'b:0', 'c:0']" in message and "3 outputs, not 2" in message
    with pytest.raises(BackendError, match="not that one"):  # label named at 0, but recorded at 1
        match_names(["y:0:label", "x:0"], ["prob", "label"], "output", OM)
    with pytest.raises(BackendError, match="names another tensor"):
        match_names(["x:0:other", "y:0"], ["prob", "label"], "output", OM)


def test_ambiguous_matches_are_refused_naming_the_model_and_the_names():
    with pytest.raises(BackendError) as err:
        match_names(["a:0:prob", "b:1:prob"], ["prob"], "output", OM)
    message = str(err.value)
    assert OM in message and "ambiguous" in message and "['a:0:prob', 'b:1:prob']" in message
    with pytest.raises(BackendError, match="both match"):  # two wanted names, one tensor
        match_names(["a:1:0:prob"], ["prob", "0:prob"], "output", OM)


def test_inputs_are_never_matched_by_position():
    with pytest.raises(BackendError, match=f"{OM}: input 'feats' not found among the model's inputs"):
        match_names(["x", "feat_lens", "ascend_mbatch_shape_data"], ["feats", "feat_lens"], "input", OM)


def test_npu_common_delegates():
    model = ["a:0", "b:0:label"]
    assert npu_common_match_names(model, ["prob", "label"], "output", OM) == \
        match_names(model, ["prob", "label"], "output", OM)


# -- convert emits the output-name form, never the node form ---------------------------------------------
def graph_for(profile, producer_prefix="/decoder/"):
    """A graph with the profile's inputs and outputs, each output made by a node with a path-like name."""
    def value(spec):
        dims = [d if isinstance(d, int) else str(d) for d in spec.shape]
        return helper.make_tensor_value_info(spec.name, helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype)), dims)

    first = profile.inputs[0].name
    nodes = [helper.make_node("Identity", [first], [spec.name], name=f"{producer_prefix}Op_{i}")
             for i, spec in enumerate(profile.outputs)]
    graph = helper.make_graph(nodes, "g", [value(s) for s in profile.inputs], [value(s) for s in profile.outputs])
    return helper.make_model(graph)


@pytest.mark.parametrize("profile_name", known_profiles())
def test_atc_command_never_emits_the_node_form(profile_name):
    profile = load_profile(profile_name)
    model = graph_for(profile)
    cmd = atc_command(profile, "m.onnx", "m", profile.batch_sizes[0], "Ascend310P3", model)
    (out_nodes,) = [c.split("=", 1)[1] for c in cmd if c.startswith("--out_nodes")]
    assert not NODE_FORM.search(out_nodes) and "/" not in out_nodes, out_nodes
    assert out_nodes.split(";") == [o.name for o in profile.outputs]  # the profile's = the manifest's order


def test_names_the_output_name_form_cannot_carry_give_no_out_nodes():
    profile = load_profile("jasper")
    model = graph_for(profile)
    model.graph.output[0].name = "prob:0"
    assert out_nodes_arg(model, ["prob:0", "label"]) is None
    with pytest.raises(AtcError, match=r"\['nope'\] are not outputs of the ONNX graph"):
        out_nodes_arg(model, ["nope", "label"])


# -- the fake ATC names outputs as ATC does -----------------------------------------------------------------
def tiny_onnx(path):
    """x [1,4] -> y = x*2 (node "/mul/Mul"), m = y+1 (node "/add/Add")."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = helper.make_tensor_value_info("m", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"], name="/mul/Mul"),
         helper.make_node("Add", ["y", "one"], ["m"], name="/add/Add")],
        "tiny", [x], [y, m],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
                     helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


@pytest.fixture
def fake_atc(monkeypatch):
    control.activate(monkeypatch)
    import fake_atc
    import fake_om
    yield fake_atc, fake_om
    control.purge()


@pytest.mark.parametrize("out_nodes,names", [
    (None, ["/add/Add:0:m", "/mul/Mul:0:y"]),  # no --out_nodes: ATC's order (here reversed), tensor names kept
    ("y;m", ["/mul/Mul:0:y", "/add/Add:0:m"]),  # the output-name form: order pinned, tensor names kept
    ("m", ["/add/Add:0:m"]),
    ("/mul/Mul:0;/add/Add:0", ["/mul/Mul:0", "/add/Add:0"]),  # the node form: no tensor names
])
def test_fake_atc_names_outputs_as_atc_does(fake_atc, tmp_path, out_nodes, names):
    atc, om_file = fake_atc
    model = tiny_onnx(str(tmp_path / "t.onnx"))
    argv = ["--framework=5", f"--model={model}", f"--output={tmp_path / 't'}", "--soc_version=Ascend310P3"]
    assert atc.main(argv + ([f"--out_nodes={out_nodes}"] if out_nodes else [])) == 0
    (path,) = glob.glob(str(tmp_path / "t*.om"))
    assert [o["name"] for o in om_file.read_header(path)["outputs"]] == names
    os.chmod(path, 0o640)
    import acl
    import aclruntime
    assert acl.init() == 0 and acl.rt.set_device(0) == 0
    model_id, ret = acl.mdl.load_from_file(path)
    desc = acl.mdl.create_desc()
    assert ret == 0 and acl.mdl.get_desc(desc, model_id) == 0
    assert [acl.mdl.get_output_name_by_index(desc, i) for i in range(acl.mdl.get_num_outputs(desc))] == names
    assert acl.mdl.destroy_desc(desc) == 0 and acl.mdl.unload(model_id) == 0 and acl.rt.reset_device(0) == 0
    session = aclruntime.InferenceSession(path, 0, aclruntime.session_options())
    assert [d.name for d in session.get_outputs()] == names
    session.free_resource()


@pytest.mark.parametrize("out_nodes,error", [
    ("nope", "E10016"),  # an unknown output name
    ("y;nope", "E10016"),
    ("x", "E10016"),  # a graph input is no node's output
    ("/nope/Op:0", "E10016"),  # an unknown node
    ("/mul/Mul:1", "E10001"),  # a node's output index out of range
    ("y;/add/Add:0", "E10001"),  # the two forms mixed
    ("y;y", "E10001"),
])
def test_fake_atc_still_validates_out_nodes(fake_atc, tmp_path, capsys, out_nodes, error):
    atc, _ = fake_atc
    model = tiny_onnx(str(tmp_path / "t.onnx"))
    argv = ["--framework=5", f"--model={model}", f"--output={tmp_path / 't'}", "--soc_version=Ascend310P3",
            f"--out_nodes={out_nodes}"]
    assert atc.main(argv) == 1
    assert error in capsys.readouterr().out
    assert not glob.glob(str(tmp_path / "t*.om"))


# -- OMs named in each form give the transcripts onnxruntime gives -------------------------------------------
@pytest.fixture(scope="module")
def named_bundles(tmp_path_factory, small_profile, small_onnx):
    """One bs4 gear bundle per naming form of its OM's outputs; each manifest describes its OM and command."""
    root = tmp_path_factory.mktemp("named")
    base_dir = root / "base"
    with pytest.MonkeyPatch.context() as mp:
        control.activate(mp)
        try:
            (base,) = convert(small_profile, small_onnx, str(base_dir), batch_sizes=[4], build_om=True,
                              soc_version="Ascend310P3")
            import fake_om
            bundles = {"output_name": base}
            model = onnx.load(base.onnx_path)
            producer = {t: f"{n.name}:{i}" for n in model.graph.node for i, t in enumerate(n.output)}
            node_form = ";".join(producer[o.name] for o in base.outputs)  # what convert emitted before
            plain = [c for c in base.manifest["atc_command"] if not c.startswith("--out_nodes")]
            nodes = plain[:-1] + [f"--out_nodes={node_form}", plain[-1]]
            for form, cmd in (("none", plain), ("node", nodes), ("plain", base.manifest["atc_command"])):
                folder = root / form
                folder.mkdir()
                shutil.copy(base.onnx_path, folder)
                subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True)
                (built,) = glob.glob(str(folder / f"{base.name}*.om"))
                om = str(folder / f"{base.name}.om")
                os.replace(built, om)
                if form == "plain":  # outputs named plainly (as ATC names inputs), in reverse order
                    header, onnx_bytes = fake_om._read(om)
                    header["outputs"] = header["outputs"][::-1]
                    for out in header["outputs"]:
                        out["name"] = out["tensor"]
                    kept = onnx.load_from_string(onnx_bytes)
                    kept.graph.output.reverse()
                    fake_om.write(om, header, kept.SerializeToString())
                os.chmod(om, 0o640)
                manifest = dict(base.manifest, atc_command=cmd,
                                om=dict(base.manifest["om"], size=os.path.getsize(om), sha256=sha256(om)))
                with open(folder / f"{base.name}.json", "w") as f:
                    json.dump(manifest, f)
                bundles[form] = open_bundle(om)
        finally:
            control.purge()
    return bundles


def om_output_names(bundle):
    header = json.loads(open(bundle.om_path, "rb").read().split(b"\n", 2)[1])
    return [o["name"] for o in header["outputs"]]


def test_each_bundle_has_the_naming_form_it_stands_for(named_bundles):
    tensors = r"(prob|label)"
    assert all(re.fullmatch(r".+:0:" + tensors, n) for n in om_output_names(named_bundles["output_name"]))
    assert [n.rsplit(":", 1)[1] for n in om_output_names(named_bundles["output_name"])] == ["prob", "label"]
    assert [n.rsplit(":", 1)[1] for n in om_output_names(named_bundles["none"])] == ["label", "prob"]
    assert all(re.fullmatch(r"[^:]+:0", n) for n in om_output_names(named_bundles["node"]))
    assert om_output_names(named_bundles["plain"]) == ["label", "prob"]
    assert [o.name for o in named_bundles["output_name"].outputs] == ["prob", "label"]  # the manifest's order


def hyps(folder):
    return {r["id"]: r["hyp"] for r in read_jsonl(os.path.join(str(folder), "hyps.jsonl"))}


@pytest.fixture(scope="module")
def reference_hyps(tmp_path_factory, named_bundles, demo_prep):
    out = tmp_path_factory.mktemp("ort")
    infer(named_bundles["output_name"].onnx_path, demo_prep, str(out),
          InferOptions(progress=False, backend="onnxruntime"), out=io.StringIO())
    return hyps(out)


@pytest.mark.parametrize("form", ["output_name", "none", "node", "plain"])
@pytest.mark.parametrize("backend,mode", [("acl", "sync"), ("acl", "async"), ("ais_bench", "sync")])
def test_every_naming_form_gives_the_onnxruntime_transcripts(monkeypatch, tmp_path, named_bundles, reference_hyps,
                                                             demo_prep, form, backend, mode):
    control.activate(monkeypatch)
    try:
        summary = infer(named_bundles[form].om_path, demo_prep, str(tmp_path),
                        InferOptions(progress=False, backend=backend, mode=mode), out=io.StringIO())
    finally:
        control.purge()
    assert summary["backend"] == backend and summary["fallback"] is False
    assert hyps(tmp_path) == reference_hyps and len(reference_hyps) == 8
