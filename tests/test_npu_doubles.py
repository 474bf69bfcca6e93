"""The NPU test doubles (tests/npu_doubles) held to the reference (ascend_api.md §1, §2, §4, §5,
§9): return shapes, codes, byte-only checks, gears, accounting, generations, async timing."""
import glob
import inspect
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.npu_doubles import control

H2H, H2D, D2H, D2D = 0, 1, 2, 3
START = "ATC start working now, please wait for a moment."
SUCCESS = "ATC run success, welcome to the next use."
FAILED = "ATC run failed, Please check the detail log, Try 'atc --help' for more information"


def tiny_onnx(path):
    """x float32 [B,4,T], n int32 [B] -> y = x*2 (node mul_node), m = n+1 (node add_node)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4, "T"])
    n = helper.make_tensor_value_info("n", TensorProto.INT32, ["B"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4, "T"])
    m = helper.make_tensor_value_info("m", TensorProto.INT32, ["B"])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"], name="mul_node"),
         helper.make_node("Add", ["n", "one"], ["m"], name="add_node")],
        "tiny", [x, n], [y, m],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
                     helper.make_tensor("one", TensorProto.INT32, [], [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                ir_version=8), path)
    return path


# what ATC names the tiny model's outputs without --out_nodes ("<op>:<idx>:<tensor>"); aclruntime's
# run() takes these names (InferSession passes its outputs_names)
OM_Y, OM_M = "mul_node:0:y", "add_node:0:m"


def atc_args(model, output, shape="x:1,4,8;n:1", *extra, soc="Ascend310P3"):
    return ["--framework=5", f"--model={model}", f"--output={output}", "--input_format=ND",
            f"--input_shape={shape}", f"--soc_version={soc}", "--log=error", *extra]


@pytest.fixture(scope="module")
def oms(tmp_path_factory):
    """Fake OMs of the tiny model, built once with the in-process fake ATC."""
    root = tmp_path_factory.mktemp("oms")
    model = tiny_onnx(str(root / "tiny.onnx"))
    builds = {
        "static": atc_args(model, root / "static"),
        "gear": atc_args(model, root / "gear", "x:1,4,-1;n:1", "--dynamic_dims=8;16"),
        "batch": atc_args(model, root / "batch", "x:-1,4,8;n:-1", "--dynamic_batch_size=1,2"),
        "fp16": atc_args(model, root / "fp16", "x:1,4,8;n:1",
                         "--out_nodes=mul_node:0;add_node:0", "--output_type=FP16"),
    }
    paths = {"onnx": model, "root": str(root)}
    with pytest.MonkeyPatch.context() as mp:
        control.activate(mp)
        import fake_atc
        for name, argv in builds.items():
            assert fake_atc.main([str(a) for a in argv]) == 0, name
            (path,) = glob.glob(f"{root}/{name}*.om")
            os.chmod(path, 0o640)
            paths[name] = path
        control.purge()
    return paths


@pytest.fixture
def npu(monkeypatch):
    """Activate the doubles; call the fixture again with other knobs to re-activate."""
    def on(**knobs):
        control.activate(monkeypatch, **knobs)
    on()
    yield on
    control.purge()


# ---------------------------------------------------------------------------------- ATC
def run_atc(args, **env):
    return subprocess.run(["atc", *map(str, args)], check=False, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_atc_cli_success_writes_suffixed_om(npu, tmp_path):
    model = tiny_onnx(str(tmp_path / "m.onnx"))
    args = atc_args(model, tmp_path / "out", "x:1,4,-1;n:1", "--dynamic_dims", "8;16")
    done = run_atc(args)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0] == START and lines[-1] == SUCCESS
    (om,) = glob.glob(str(tmp_path / "out*.om"))
    assert om.endswith("out_linux_x86_64.om")
    import fake_om
    header = fake_om.read_header(om)
    assert [(t["name"], t["dtype"], t["dims"], t["size"]) for t in header["inputs"]] == [
        ("x", 0, [1, 4, -1], 4 * 4 * 16), ("n", 3, [1], 4),
        ("ascend_mbatch_shape_data", 9, [4], 32)]
    assert header["gears"] == [[1, 4, 8, 1], [1, 4, 16, 1]]
    # no --out_nodes: the OM's outputs come in the reverse of the ONNX order, named "<op>:<idx>:<tensor>"
    assert [(o["name"], o["tensor"]) for o in header["outputs"]] == [("add_node:0:m", "m"), ("mul_node:0:y", "y")]
    assert header["outputs"][1]["gear_dims"] == [[1, 4, 8], [1, 4, 16]]
    assert header["outputs"][1]["dims"] == [1, 4, 16] and header["outputs"][1]["size"] == 256


def test_atc_empty_suffix_and_out_nodes_fp16(npu, tmp_path, monkeypatch, oms):
    import fake_atc
    import fake_om
    monkeypatch.setenv("FAKE_ATC_OM_SUFFIX", "")
    assert fake_atc.main(map(str, atc_args(oms["onnx"], tmp_path / "plain"))) == 0
    assert os.listdir(tmp_path) == ["plain.om"]
    om = fake_om.load(oms["fp16"])
    # the node form of --out_nodes: "<op>:<idx>", no tensor name
    assert [(o["name"], o["tensor"], o["dtype"]) for o in om.outputs] == [("mul_node:0", "y", 1),
                                                                         ("add_node:0", "m", 3)]
    y, m = om.run([np.ones((1, 4, 8), np.float32), np.array([4], np.int32)])
    assert y.dtype == np.float16 and np.all(y == 2) and m.tolist() == [5]


BAD_ATC = {
    "soc": ["--soc_version=Ascend999"],
    "framework": ["--framework=3"],
    "model_missing": ["--model=/nonexistent/model.onnx"],
    "unknown_input": ["--input_shape=x:1,4,8;nope:1"],
    "rank": ["--input_shape=x:1,4;n:1"],
    "minus_one_alone": ["--input_shape=x:1,4,-1;n:1"],
    "dims_needs_nd": ["--input_shape=x:1,4,-1;n:1", "--dynamic_dims=8;16", "--input_format=NCHW"],
    "one_gear": ["--input_shape=x:1,4,-1;n:1", "--dynamic_dims=8"],
    "values_per_gear": ["--input_shape=x:1,4,-1;n:1", "--dynamic_dims=8,1;16,1"],
    "too_many_gears": ["--input_shape=x:1,4,-1;n:1",
                       "--dynamic_dims=" + ";".join(str(i) for i in range(1, 102))],
    "out_node_name": ["--out_nodes=nope:0"],
    "out_node_index": ["--out_nodes=mul_node:1"],
    "precision": ["--precision_mode=fastest"],
    "implmode": ["--op_select_implmode=fast"],
    "log": ["--log=verbose"],
    "unknown_flag": ["--frobnicate=1"],
}


@pytest.mark.parametrize("case", sorted(BAD_ATC))
def test_atc_rejects_invalid_command_lines(npu, tmp_path, capsys, oms, case):
    import fake_atc
    argv = [str(a) for a in atc_args(oms["onnx"], tmp_path / "bad")]
    for extra in BAD_ATC[case]:  # later flags override earlier ones
        key = extra.split("=")[0]
        argv = [a for a in argv if a.split("=")[0] != key] + [extra]
    assert fake_atc.main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == FAILED
    assert any(line.startswith(("E1", "ERROR:")) for line in out)
    assert not glob.glob(str(tmp_path / "*.om"))


def test_atc_cli_failure_exit_status_and_forced_failure(npu, tmp_path, oms):
    done = run_atc(atc_args(oms["onnx"], tmp_path / "x", soc="Ascend310X9"))
    assert done.returncode == 1 and "E10001" in done.stdout and "--soc_version" in done.stdout
    assert done.stdout.splitlines()[-1] == FAILED
    forced = run_atc(atc_args(oms["onnx"], tmp_path / "y"), FAKE_ATC_FAIL="disk full")
    lines = forced.stdout.splitlines()
    assert forced.returncode == 1 and lines[0] == START and lines[-1] == FAILED
    assert len([line for line in lines if "progress" in line]) == 60
    assert "disk full" in lines[-2]
    assert not glob.glob(str(tmp_path / "*.om"))


def test_fake_om_loader_validates_magic(npu, tmp_path):
    import fake_om
    junk = tmp_path / "junk.om"
    junk.write_bytes(b"not an om at all")
    with pytest.raises(fake_om.FakeOmError) as err:
        fake_om.load(str(junk))
    assert err.value.kind == "not_om"
    with pytest.raises(fake_om.FakeOmError) as err:
        fake_om.load(str(tmp_path / "missing.om"))
    assert err.value.kind == "missing"


def test_npu_smi(npu):
    done = subprocess.run(["npu-smi", "info"], check=False, capture_output=True, text=True)
    assert done.returncode == 0
    assert any(" 310P3 " in line and "Ascend" not in line for line in done.stdout.splitlines())
    gone = subprocess.run(["npu-smi", "info"], check=False, capture_output=True, text=True,
                          env={**os.environ, "FAKE_NPU_DEVICES": "0"})
    assert gone.returncode != 0


# --------------------------------------------------------------------------------- pyACL
class Rig:
    """pyACL set-up for one OM as ModelZoo's acl_net.py does it, with a teardown in order."""

    def __init__(self, acl, om_path, in_sizes=None, out_sizes=None):
        self.acl = acl
        assert acl.init() == 0
        assert acl.rt.set_device(0) == 0
        self.ctx, ret = acl.rt.create_context(0)
        assert ret == 0
        self.model, ret = acl.mdl.load_from_file(om_path)
        assert ret == 0
        self.desc = acl.mdl.create_desc()
        assert acl.mdl.get_desc(self.desc, self.model) == 0
        self.ins, self.outs = acl.mdl.create_dataset(), acl.mdl.create_dataset()
        self.ptrs, self.bufs, self.in_ptrs, self.out_ptrs = [], [], [], []
        n_in, n_out = acl.mdl.get_num_inputs(self.desc), acl.mdl.get_num_outputs(self.desc)
        for i in range(n_in):
            size = (in_sizes or {}).get(i, acl.mdl.get_input_size_by_index(self.desc, i))
            self.in_ptrs.append(self._buffer(self.ins, size))
        for j in range(n_out):
            size = (out_sizes or {}).get(j, acl.mdl.get_output_size_by_index(self.desc, j))
            self.out_ptrs.append(self._buffer(self.outs, size))

    def _buffer(self, dataset, size):
        ptr, ret = self.acl.rt.malloc(size, 0)
        assert ret == 0
        buf = self.acl.create_data_buffer(ptr, size)
        _, ret = self.acl.mdl.add_dataset_buffer(dataset, buf)
        assert ret == 0
        self.ptrs.append(ptr)
        self.bufs.append(buf)
        return ptr

    def h2d(self, i, array):
        data = array.tobytes()
        return self.acl.rt.memcpy(self.in_ptrs[i], len(data), self.acl.util.bytes_to_ptr(data),
                                  len(data), H2D)

    def d2h(self, j, dtype):
        dims, ret = self.acl.mdl.get_cur_output_dims(self.desc, j)
        assert ret == 0
        count = int(np.prod(dims["dims"]))
        size = count * np.dtype(dtype).itemsize
        host, ret = self.acl.rt.malloc_host(size)
        assert self.acl.rt.memcpy(host, size, self.out_ptrs[j], size, D2H) == 0
        data = self.acl.util.ptr_to_bytes(host, size)
        assert self.acl.rt.free_host(host) == 0
        return np.frombuffer(data, dtype, count).reshape(dims["dims"])

    def set_gear(self, dims):
        index, ret = self.acl.mdl.get_input_index_by_name(self.desc, "ascend_mbatch_shape_data")
        assert ret == 0
        return self.acl.mdl.set_input_dynamic_dims(
            self.model, self.ins, index, {"dimCount": len(dims), "name": "", "dims": dims})

    def execute(self):
        return self.acl.mdl.execute(self.model, self.ins, self.outs)

    def close(self):
        acl = self.acl
        assert all(acl.destroy_data_buffer(b) == 0 for b in self.bufs)
        assert all(acl.rt.free(p) == 0 for p in self.ptrs)
        assert acl.mdl.destroy_dataset(self.ins) == 0 and acl.mdl.destroy_dataset(self.outs) == 0
        assert acl.mdl.unload(self.model) == 0 and acl.mdl.destroy_desc(self.desc) == 0
        assert acl.rt.destroy_context(self.ctx) == 0 and acl.rt.reset_device(0) == 0
        assert acl.finalize() == 0


def test_acl_return_shapes_flow_and_accounting(npu, oms):
    import acl
    assert acl.rt.get_device_count() == (1, 0)
    rig = Rig(acl, oms["static"])
    d = rig.desc
    assert type(d) is int and type(rig.ins) is int and type(rig.bufs[0]) is int  # bare handles
    assert acl.mdl.get_num_inputs(d) == 2 and acl.mdl.get_num_outputs(d) == 2
    assert acl.mdl.get_input_size_by_index(d, 0) == 128
    assert acl.mdl.get_input_dims(d, 0) == ({"name": "x", "dimCount": 3, "dims": [1, 4, 8]}, 0)
    assert acl.mdl.get_input_data_type(d, 1) == 3 and acl.mdl.get_input_format(d, 0) == 2
    assert acl.mdl.get_output_name_by_index(d, 0) == "add_node:0:m"  # reversed ONNX order, as ATC names it
    assert acl.mdl.get_input_index_by_name(d, "n") == (1, 0)
    assert acl.mdl.add_dataset_buffer(rig.ins, rig.bufs[0])[0] == rig.ins  # (dataset, ret)
    assert acl.mdl.get_dataset_num_buffers(rig.ins) == 3
    acl.mdl.destroy_dataset(rig.ins)  # rebuild the input dataset without the extra buffer
    rig.ins = acl.mdl.create_dataset()
    for b in rig.bufs[:2]:
        acl.mdl.add_dataset_buffer(rig.ins, b)
    assert acl.get_soc_name() == "Ascend310P3"
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 8)
    assert rig.h2d(0, x) == 0 and rig.h2d(1, np.array([41], np.int32)) == 0
    assert rig.execute() == 0
    assert rig.d2h(0, np.int32).tolist() == [42]
    np.testing.assert_array_equal(rig.d2h(1, np.float32), x * 2)
    assert acl._double.live()["models"] == 1
    rig.close()
    assert set(acl._double.live().values()) == {0}
    assert acl._double.init_calls == 1
    calls = acl._double.calls
    assert calls.index("mdl.load_from_file") < calls.index("mdl.execute") < calls.index("mdl.unload")


def test_acl_init_once_per_process(npu):
    import acl
    assert acl.init() == 0 and acl.init() == 100002
    assert acl.finalize() == 0 and acl.finalize() == 100037
    assert acl.init() == 100002 and acl._double.init_calls == 3


def test_acl_devices_and_thread_contexts(npu):
    npu(devices=2)
    import acl
    acl.init()
    assert acl.rt.set_device(2) == 507033 and acl.rt.set_device(1) == 0
    ptr, ret = acl.rt.malloc(64, 0)
    assert ret == 0
    seen = {}

    def worker():  # a new thread has no context until it sets one
        seen["before"] = acl.rt.malloc(64, 0)[1]
        ctx, _ = acl.rt.create_context(1)
        seen["after"] = acl.rt.malloc(64, 0)
        acl.rt.free(seen["after"][0])
        acl.rt.destroy_context(ctx)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["before"] == 107002 and seen["after"][1] == 0
    assert acl.rt.free(ptr) == 0 and acl.rt.free(ptr) == 100000  # freeing twice
    assert acl.rt.reset_device(1) == 0 and acl.rt.reset_device(1) == 100000


def test_acl_memcpy_checks_kind_and_sizes(npu):
    import acl
    acl.init()
    acl.rt.set_device(0)
    dev, _ = acl.rt.malloc(64, 0)
    dev2, _ = acl.rt.malloc(64, 0)
    host, _ = acl.rt.malloc_host(64)
    data = bytes(range(64))
    src = acl.util.bytes_to_ptr(data)
    assert src == id(data) + bytes.__basicsize__ - 1  # the bytes object's own buffer
    assert acl.rt.memcpy(dev, 64, src, 65, H2D) == 100000        # count > dest_max
    assert acl.rt.memcpy(dev + 8, 64, src, 64, H2D) == 100000    # dest_max > bytes left
    assert acl.rt.memcpy(host, 64, src, 64, H2D) == 100000       # H2D into host memory
    assert acl.rt.memcpy(dev, 64, host, 64, D2H) == 100000       # D2H from host memory
    assert acl.rt.memcpy(dev, 64, dev2, 64, H2H) == 100000       # H2H touching the device
    assert acl.rt.memcpy(dev, 64, src, 64, 7) == 100000          # not a kind
    assert acl.rt.memcpy(dev, 64, src, 64, H2D) == 0
    assert acl.rt.memcpy(dev2, 64, dev, 64, D2D) == 0
    assert acl.rt.memcpy(host, 64, dev2, 64, D2H) == 0
    assert acl.util.ptr_to_bytes(host, 64) == data
    with pytest.raises(RuntimeError, match="device memory"):
        acl.util.ptr_to_bytes(dev, 64)
    assert acl.rt.free_host(host) == 0 and acl.rt.free(dev) == 0 and acl.rt.free(dev2) == 0


def test_acl_execute_reinterprets_bytes_never_converts(npu, oms):
    import acl
    rig = Rig(acl, oms["static"])
    wrong = np.linspace(0.5, 8.0, 16)  # float64: 128 bytes, the size of x (float32 1x4x8)
    assert wrong.nbytes == acl.mdl.get_input_size_by_index(rig.desc, 0)
    assert rig.h2d(0, wrong) == 0 and rig.h2d(1, np.array([1], np.int32)) == 0
    assert rig.execute() == 0
    y = rig.d2h(1, np.float32)
    np.testing.assert_array_equal(y, np.frombuffer(wrong.tobytes(), np.float32).reshape(1, 4, 8) * 2)
    assert not np.allclose(y.ravel()[:16], wrong * 2)
    rig.close()


def test_acl_gears(npu, oms):
    import acl
    rig = Rig(acl, oms["gear"])
    d = rig.desc
    count, ret = acl.mdl.get_input_dynamic_gear_count(d, -1)
    assert (count, ret) == (2, 0)
    dims, ret = acl.mdl.get_input_dynamic_dims(d, -1, count)
    assert ret == 0 and [g["dims"] for g in dims] == [[1, 4, 8, 1], [1, 4, 16, 1]]
    assert acl.mdl.get_input_dims(d, 0)[0]["dims"] == [1, 4, -1]
    x = np.ones((1, 4, 16), np.float32)
    rig.h2d(0, x)
    rig.h2d(1, np.array([0], np.int32))
    assert rig.execute() != 0                       # no gear set on the dataset yet
    assert rig.set_gear([1, 4, 12, 1]) != 0         # not a compiled gear
    index = acl.mdl.get_num_inputs(d) - 1
    assert acl.mdl.set_input_dynamic_dims(rig.model, rig.ins, index,
                                          {"dimCount": 3, "name": "", "dims": [1, 4, 16, 1]}) != 0
    assert rig.set_gear([1, 4, 16, 1]) == 0
    assert rig.execute() == 0
    assert acl.mdl.get_cur_output_dims(d, 1)[0]["dims"] == [1, 4, 16]
    assert rig.d2h(1, np.float32).shape == (1, 4, 16)
    assert acl._double.executed[-1] == (rig.model, (1, 4, 16, 1))
    rig.close()
    small = Rig(acl_reset(npu), oms["gear"], in_sizes={0: 128})
    small.set_gear([1, 4, 16, 1])
    assert small.execute() != 0                     # x's buffer holds 128 bytes, gear needs 256
    assert small.set_gear([1, 4, 8, 1]) == 0 and small.execute() == 0
    small.close()


def acl_reset(npu):
    """A fresh process for the doubles (acl.init works again)."""
    control.purge()
    npu()
    import acl
    return acl


def test_acl_output_buffer_too_small(npu, oms):
    import acl
    rig = Rig(acl, oms["static"], out_sizes={1: 64})
    rig.h2d(0, np.zeros((1, 4, 8), np.float32))
    rig.h2d(1, np.zeros(1, np.int32))
    assert rig.execute() != 0
    rig.close()


def test_acl_load_errors_and_soc_mismatch(npu, oms, tmp_path):
    import acl
    acl.init()
    acl.rt.set_device(0)
    assert acl.mdl.load_from_file(str(tmp_path / "none.om")) == (0, 100003)
    junk = tmp_path / "junk.om"
    junk.write_bytes(b"\x00" * 64)
    assert acl.mdl.load_from_file(str(junk))[1] == 100012
    acl = acl_reset(npu)
    npu(soc="Ascend910B3")
    import acl
    acl.init()
    acl.rt.set_device(0)
    assert acl.mdl.load_from_file(oms["static"])[1] == 100012
    assert "Ascend310P3" in acl.get_recent_err_msg()


def test_acl_fault_injection_and_double_destroy(npu, oms):
    import acl
    rig = Rig(acl, oms["static"])
    acl._double.fail("rt.malloc", 207001)
    assert acl.rt.malloc(16, 0) == (0, 207001)
    ptr, ret = acl.rt.malloc(16, 0)
    assert ret == 0 and acl.rt.free(ptr) == 0
    acl._double.fail("mdl.execute", 507011, times=2)
    assert rig.execute() == 507011 and rig.execute() == 507011 and rig.execute() == 0
    acl._double.fail("mdl.create_desc", 100000)
    assert acl.mdl.create_desc() == 0  # bare return: the failure value
    rig.close()
    assert acl.mdl.destroy_dataset(rig.ins) == 100000
    assert acl.destroy_data_buffer(rig.bufs[0]) == 100000
    assert acl.mdl.destroy_desc(rig.desc) == 100000
    assert acl.rt.destroy_context(rig.ctx) == 100000
    assert acl.mdl.unload(rig.model) == 100011


def test_acl_util_generations(npu):
    import acl
    # current pyACL exports both (reference, Corrections); the backend prefers bytes_to_ptr
    assert "bytes_to_ptr" in dir(acl.util) and hasattr(acl.util, "numpy_to_ptr")
    assert hasattr(acl.util, "ptr_to_bytes") and hasattr(acl.util, "ptr_to_numpy")
    npu(acl_api="old")
    import acl
    assert "bytes_to_ptr" not in dir(acl.util) and not hasattr(acl.util, "ptr_to_bytes")
    acl.init()
    acl.rt.set_device(0)
    host, _ = acl.rt.malloc_host(16)
    a = np.arange(4, dtype=np.float32)
    assert acl.rt.memcpy(host, 16, acl.util.numpy_to_ptr(a), 16, H2H) == 0
    view = acl.util.ptr_to_numpy(host, (4,), np.dtype(np.float32).num)
    assert view.tolist() == [0, 1, 2, 3]


def test_acl_async_streams_serialised_and_nonblocking(npu, oms):
    npu(latency_ms=50)
    import acl
    rig = Rig(acl, oms["static"])
    second_in, second_out = acl.mdl.create_dataset(), acl.mdl.create_dataset()
    for k, buf in enumerate(rig.bufs):  # the same buffers, in a second pair of datasets
        acl.mdl.add_dataset_buffer(second_in if k < 2 else second_out, buf)
    host, _ = acl.rt.malloc_host(128)
    src = np.full((1, 4, 8), 3, np.float32).tobytes()
    acl.rt.memcpy(host, 128, acl.util.bytes_to_ptr(src), 128, H2H)
    streams = [acl.rt.create_stream()[0] for _ in range(2)]
    events = [acl.rt.create_event()[0] for _ in range(4)]
    second_model, ret = acl.mdl.load_from_file(oms["static"])  # one model may not run on two streams at once
    assert ret == 0
    t0 = time.perf_counter()
    for k, (s, model, ins, outs) in enumerate(zip(streams, (rig.model, second_model), (rig.ins, second_in),
                                                  (rig.outs, second_out))):
        assert acl.rt.memcpy_async(rig.in_ptrs[0], 128, host, 128, H2D, s) == 0
        assert acl.rt.record_event(events[2 * k], s) == 0
        assert acl.mdl.execute_async(model, ins, outs, s) == 0
        assert acl.rt.record_event(events[2 * k + 1], s) == 0
    submitted = time.perf_counter() - t0
    assert all(acl.rt.synchronize_stream(s) == 0 for s in streams)
    total = time.perf_counter() - t0
    assert submitted < 0.03                      # execute_async returns at once
    assert 0.095 <= total < 0.4                  # one device: 2 x 50 ms, not 50 ms
    for k in range(2):
        ms, ret = acl.rt.event_elapsed_time(events[2 * k], events[2 * k + 1])
        assert ret == 0 and ms >= 49
    assert np.all(rig.d2h(1, np.float32) == 6)
    assert acl.mdl.execute_async(rig.model, rig.ins, rig.outs, streams[0]) == 0
    assert acl.mdl.execute_async(rig.model, second_in, second_out, streams[1]) == 100000  # still queued on s0
    assert acl.rt.synchronize_stream(streams[0]) == 0
    assert acl.mdl.execute_async(rig.model, second_in, second_out, streams[1]) == 0  # s0 done: now allowed
    assert acl.rt.synchronize_stream(streams[1]) == 0 and acl.mdl.unload(second_model) == 0
    assert acl.rt.destroy_event(events[0]) == 0 and acl.rt.destroy_event(events[0]) == 100000
    acl._double.fail("mdl.execute_async", 1)
    acl.mdl.execute_async(rig.model, rig.ins, rig.outs, streams[0])
    assert acl.rt.memcpy_async(host, 128, host, 128, H2H, streams[0]) == 0
    assert acl.rt.synchronize_stream(streams[0]) == 207000  # H2H async fails on the stream
    assert acl.rt.synchronize_stream(streams[0]) == 0
    t1 = time.perf_counter()
    assert rig.execute() == 0 and time.perf_counter() - t1 >= 0.049  # sync execute blocks


def test_acl_async_failure_surfaces_at_sync(npu, oms):
    import acl
    rig = Rig(acl, oms["gear"])
    s, _ = acl.rt.create_stream()
    assert acl.mdl.execute_async(rig.model, rig.ins, rig.outs, s) == 0  # no gear set
    assert acl.rt.synchronize_stream(s) != 0
    assert acl.rt.synchronize_stream(s) == 0
    assert acl.rt.destroy_stream(s) == 0 and acl.rt.destroy_stream(s) == 100000


# ---------------------------------------------------------------------------- aclruntime
def test_aclruntime_size_check_not_dtype(npu, oms):
    import aclruntime
    sess = aclruntime.InferenceSession(oms["static"], 0, aclruntime.session_options())
    x, n = np.ones((1, 4, 8), np.float32), np.array([1], np.int32)
    short = np.ones((1, 4, 4), np.float32)
    with pytest.raises(RuntimeError) as err:
        sess.run([OM_Y], [aclruntime.BaseTensor(short.ctypes.data, short.nbytes),
                         aclruntime.BaseTensor(n.ctypes.data, n.nbytes)])
    assert str(err.value) == "[-1][ACL: general failure] "
    as_int = np.ones((1, 4, 8), np.int32)   # same bytes, wrong dtype: accepted, reinterpreted
    as_float = np.ones(1, np.float32)
    (y, m) = sess.run([OM_Y, OM_M], [aclruntime.BaseTensor(as_int.ctypes.data, as_int.nbytes),
                                   aclruntime.BaseTensor(as_float.ctypes.data, 4)])
    y.to_host()
    np.testing.assert_array_equal(np.array(y), np.frombuffer(as_int.tobytes(), np.float32)
                                  .reshape(1, 4, 8) * 2)
    with pytest.raises(RuntimeError, match="tensor is in npu"):
        np.array(m)
    good = sess.run([OM_M], [aclruntime.BaseTensor(x.ctypes.data, x.nbytes),
                            aclruntime.BaseTensor(n.ctypes.data, n.nbytes)])
    assert good[0].dtype == aclruntime.int32


def test_aclruntime_descs_enum_and_gears(npu, oms):
    import aclruntime
    assert int(aclruntime.float16) == 1 and str(aclruntime.float32) == "dtype.float32"
    assert aclruntime.dtype.double is aclruntime.double and int(aclruntime.bool) == 12
    assert aclruntime.float32 != 0  # a pybind enum does not equal a plain int
    sess = aclruntime.InferenceSession(oms["gear"], 0, aclruntime.session_options())
    ins = sess.get_inputs()
    assert [d.name for d in ins] == ["x", "n"]  # no ascend_mbatch_shape_data
    assert ins[0].shape == [1, 4, -1] and ins[0].size == 256 and ins[0].datatype == aclruntime.float32
    with pytest.raises(RuntimeError, match="format of dynamic dims"):
        sess.set_dynamic_dims("x=1,4,8")
    with pytest.raises(RuntimeError, match=r"^\[-1\]"):
        sess.set_dynamic_dims("x:1,4,12;n:1")
    x, n = np.ones((1, 4, 8), np.float32), np.array([1], np.int32)
    feeds = [aclruntime.BaseTensor(x.ctypes.data, x.nbytes),
             aclruntime.BaseTensor(n.ctypes.data, n.nbytes)]
    sess.set_staticbatch()
    with pytest.raises(RuntimeError):
        sess.run([OM_Y], feeds)  # a gear model run without a gear
    sess.set_dynamic_dims("x:1,4,8;n:1")
    assert sess.get_inputs()[0].realsize == 128
    (y,) = sess.run([OM_Y], feeds)
    assert y.shape == [1, 4, 8]


def test_aclruntime_latency_and_timings(npu, oms):
    npu(latency_ms=20)
    import aclruntime
    opts = aclruntime.session_options()
    opts.loop = 2
    sess = aclruntime.InferenceSession(oms["static"], 0, opts)
    x, n = np.ones((1, 4, 8), np.float32), np.array([1], np.int32)
    sess.run([OM_Y], [aclruntime.BaseTensor(x.ctypes.data, 128), aclruntime.BaseTensor(n.ctypes.data, 4)])
    times = sess.sumary().exec_time_list
    assert len(times) == 2 and all(end - start >= 19 for start, end in times)
    assert times[1][0] >= times[0][1]
    assert sess.reset_sumaryinfo() == 0 and sess.sumary().exec_time_list == []


# ----------------------------------------------------------------------------- ais_bench
def test_ais_bench_new_generation_surface(npu, oms):
    import aclruntime
    from ais_bench.infer.interface import InferSession, MemorySummary
    sess = InferSession(0, oms["static"])
    assert hasattr(sess, "summary") and not hasattr(sess, "sumary")
    assert hasattr(sess, "free_resource") and hasattr(aclruntime.InferenceSession, "finalize")
    assert isinstance(inspect.getattr_static(InferSession, "finalize"), staticmethod)
    assert "out_array" in inspect.signature(InferSession.infer).parameters
    assert hasattr(MemorySummary, "get_h2d_time_list") and not hasattr(MemorySummary, "get_H2D_time_list")
    x, n = np.arange(32, dtype=np.float32).reshape(1, 4, 8), np.array([2], np.int32)
    with pytest.raises(ValueError, match="not a list"):
        sess.infer((x, n))
    with pytest.raises(ValueError, match="infer mode is illegal"):
        sess.infer([x, n], mode="dynamic")
    with pytest.raises(TypeError):
        sess.infer([x, n], out_array=1)
    with pytest.raises(RuntimeError, match=r"^\[-1\]\[ACL: general failure\] $"):
        sess.infer([x.astype(np.float64), n])  # twice the bytes
    sess.set_loop_count(3)
    m, y = sess.infer([x, n])
    assert m.dtype == np.int32 and m.tolist() == [3]
    assert y.dtype == np.float32 and np.array_equal(y, x * 2)
    times = sess.summary().exec_time_list
    assert len(times) == 3 and all(isinstance(t, tuple) and len(t) == 2 for t in times)
    sess.reset_summaryinfo()
    assert sess.summary().exec_time_list == []
    outs = sess.infer_pipeline([[x, n], [x + 1, n]])
    assert len(outs) == 2 and np.array_equal(outs[1][1], (x + 1) * 2)
    assert MemorySummary.get_h2d_time_list()
    devs = sess.infer([x, n], out_array=False)
    assert isinstance(devs[0], aclruntime.Tensor)
    sess.free_resource()
    InferSession.finalize()


def test_ais_bench_old_generation_surface(npu, oms):
    npu(ais_bench_api="old")
    import aclruntime
    from ais_bench.infer.interface import InferSession, MemorySummary
    sess = InferSession(0, oms["static"])
    assert hasattr(sess, "sumary") and hasattr(sess, "reset_sumaryinfo")
    assert not hasattr(sess, "summary") and not hasattr(sess, "free_resource")
    assert not hasattr(sess, "infer_pipeline")
    assert not hasattr(aclruntime.InferenceSession, "finalize")
    assert "out_array" not in inspect.signature(InferSession.infer).parameters
    assert hasattr(MemorySummary, "get_H2D_time_list") and not hasattr(MemorySummary, "get_h2d_time_list")
    x, n = np.ones((1, 4, 8), np.float32), np.array([2], np.int32)
    m, y = sess.infer((x, n), mode="anything")  # tuples and unknown modes were accepted
    assert m.tolist() == [3] and np.all(y == 2)
    (t,) = sess.sumary().exec_time_list
    assert isinstance(t, float)


def test_ais_bench_constructor_validation(npu, oms, tmp_path_factory):
    from ais_bench.infer.interface import InferSession
    with pytest.raises(TypeError):
        InferSession(np.int64(0), oms["static"])
    with pytest.raises(ValueError):
        InferSession(256, oms["static"])
    with pytest.raises(ValueError):
        InferSession(0, oms["static"], loop=0)
    with pytest.raises(RuntimeError, match="empty model path"):
        InferSession(0, "")
    root = tmp_path_factory.mktemp("paths")
    link = root / "link.om"
    link.symlink_to(oms["static"])
    writable = root / "writable.om"
    writable.write_bytes(Path(oms["static"]).read_bytes())
    writable.chmod(0o664)
    renamed = root / "model.bin"
    renamed.write_bytes(b"x")
    renamed.chmod(0o640)
    spaced = root / "a b.om"
    spaced.write_bytes(b"x")
    for bad in (link, writable, renamed, spaced, root / "missing.om", root):
        with pytest.raises(ValueError):
            InferSession(0, str(bad))


def test_ais_bench_dynamic_modes(npu, oms):
    from ais_bench.infer.interface import InferSession
    gear = InferSession(0, oms["gear"])
    x, n = np.ones((1, 4, 16), np.float32), np.array([7], np.int32)
    m, y = gear.infer([x, n], mode="dymdims")
    assert y.shape == (1, 4, 16) and m.tolist() == [8]
    with pytest.raises(RuntimeError):
        gear.infer([np.ones((1, 4, 12), np.float32), n], mode="dymdims")  # not a gear
    with pytest.raises(RuntimeError):
        gear.infer([x, n])  # static mode on a gear model
    batch = InferSession(0, oms["batch"])
    assert batch.get_inputs()[0].shape == [-1, 4, 8]
    m, y = batch.infer([np.ones((2, 4, 8), np.float32), np.array([1, 2], np.int32)],
                       mode="dymbatch")
    assert y.shape == (2, 4, 8) and m.tolist() == [2, 3]
    fp16 = InferSession(0, oms["fp16"])
    y, m = fp16.infer([np.ones((1, 4, 8), np.float32), n])
    assert y.dtype == np.float16 and m.dtype == np.int32
