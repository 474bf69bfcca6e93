"""pyACL events, error codes and finalize, on doubles as strict as CANN (issue 11, items 2, 4, 5, 6):
timing pairs on one stream each, a bounded event set reused by every batch, resets where the CANN
generation needs them, timing failures that never fail a batch, error messages with CANN's own
words, and acl.finalize() once at interpreter exit."""
import glob
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ascend_asr.backends import run_pipelined
from ascend_asr.backends.acl_backend import AclSession
from ascend_asr.backends.npu_common import ACL_CODES, describe_code
from ascend_asr.errors import BackendError

from .npu_doubles import control

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS_PER_SLOT = 8  # six timing events (three pairs) and two sync events
ACL_EVENT_SYNC, ACL_EVENT_TIME_LINE = 0x1, 0x8


@pytest.fixture(scope="module")
def tiny_om(tmp_path_factory):
    """A static fake OM of y = x * 2 (x float32 [1, 4, 8]), built by the in-process fake ATC."""
    root = tmp_path_factory.mktemp("acl_events")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"], name="mul_node")], "tiny", [x], [y],
                              initializer=[helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    model = str(root / "tiny.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), model)
    with pytest.MonkeyPatch.context() as mp:
        control.activate(mp)
        import fake_atc
        argv = ["--framework=5", f"--model={model}", f"--output={root / 'tiny'}", "--input_format=ND",
                "--input_shape=x:1,4,8", "--soc_version=Ascend310P3", "--log=error"]
        assert fake_atc.main(argv) == 0
        control.purge()
    (path,) = glob.glob(str(root / "tiny*.om"))
    os.chmod(path, 0o640)
    return path


@pytest.fixture(params=["new", "old"])
def doubles(monkeypatch, request):
    """The doubles in both event generations (FAKE_ACL_EVENTS)."""
    control.activate(monkeypatch, acl_events=request.param)
    import acl
    yield acl
    control.purge()


def y_of(out):
    (key,) = [k for k in out if k == "y" or k.endswith(":y") or k.startswith("mul_node:")]
    return out[key]


def batch(k):
    return {"x": np.full((1, 4, 8), k % 97, np.float32)}


def test_async_2000_batches_reuse_one_bounded_event_set(doubles, tiny_om):
    acl = doubles
    seen, live = [], []

    def consume(k, out):
        np.testing.assert_array_equal(y_of(out), 2 * batch(k)["x"])
        seen.append(k)
        if k % 500 == 0:
            live.append(acl._double.live()["events"])

    with AclSession(tiny_om, mode="async") as session:
        run_pipelined(session, ((batch(k), k) for k in range(2000)), consume)
        timings, missing = session.timings, session.missing_timings
    assert seen == list(range(2000))
    assert len(timings.h2d_ms) == len(timings.compute_ms) == len(timings.d2h_ms) == 2000
    assert all(v >= 0 for v in timings.h2d_ms + timings.compute_ms + timings.d2h_ms)
    assert missing == {"h2d_ms": 0, "compute_ms": 0, "d2h_ms": 0}
    assert set(live) == {2 * EVENTS_PER_SLOT}  # never one more than the session opened with
    calls = acl._double.calls
    assert calls.count("rt.create_event") + calls.count("rt.create_event_with_flag") == 2 * EVENTS_PER_SLOT
    assert calls.count("rt.reset_event") == 2 * 2000  # both sync events, after every wait
    if os.environ["FAKE_ACL_EVENTS"] == "new":  # feature detected: the sync events carry ACL_EVENT_SYNC
        assert calls.count("rt.create_event_with_flag") == 2 * 2
    assert acl._double.live()["events"] == 0


def test_the_session_fits_a_tight_event_cap_and_says_when_it_does_not(monkeypatch, doubles, tiny_om):
    """With the device's cap at exactly what the session needs, every batch still runs: events are
    never created per batch. One fewer and opening fails with the runtime's code and words."""
    monkeypatch.setenv("FAKE_ACL_EVENT_CAP", str(2 * EVENTS_PER_SLOT))
    with AclSession(tiny_om, mode="async") as session:
        run_pipelined(session, ((batch(k), k) for k in range(200)), lambda k, out: None)
    monkeypatch.setenv("FAKE_ACL_EVENT_CAP", str(2 * EVENTS_PER_SLOT - 1))
    monkeypatch.setenv("FAKE_ACL_EVENT_WAIT_S", "0.05")
    with pytest.raises(BackendError) as err:
        AclSession(tiny_om, mode="async")
    message = str(err.value)
    assert "207007" in message and "ACL_ERROR_RT_NO_EVENT_RESOURCE" in message and "CANN says:" in message
    assert sum(doubles._double.live().values()) == 0


@pytest.mark.parametrize("failing,times", [("rt.event_elapsed_time", 3), ("rt.record_event", 1)])
def test_a_timing_failure_never_fails_the_batch(doubles, tiny_om, failing, times):
    acl = doubles
    acl._double.fail(failing, 107000, times=times)  # the first record_event of a batch times H2D
    outputs = []
    with AclSession(tiny_om, mode="async") as session:
        run_pipelined(session, ((batch(k), k) for k in range(6)), lambda k, out: outputs.append(y_of(out)))
        timings, missing = session.timings, session.missing_timings
    for k, y in enumerate(outputs):
        np.testing.assert_array_equal(y, 2 * batch(k)["x"])
    assert sum(missing.values()) == times
    for key in ("h2d_ms", "compute_ms", "d2h_ms"):
        assert len(getattr(timings, key)) + missing[key] == 6
    if failing == "rt.record_event":
        assert missing["h2d_ms"] == 1


def test_a_sync_event_failure_does_fail_the_batch(doubles, tiny_om):
    """The events that order the streams are not timing: their failure is the batch's."""
    doubles._double.fail("rt.stream_wait_event", 107000)
    with pytest.raises(BackendError, match=r"stream_wait_event \(copied\) returned 107000"):
        with AclSession(tiny_om, mode="async") as session:
            session.run(batch(0))
    assert sum(doubles._double.live().values()) == 0


# ---------------------------------------------------------------------- the doubles' event rules
@pytest.fixture
def rt(doubles):
    acl = doubles
    assert acl.init() == 0 and acl.rt.set_device(0) == 0
    ctx, _ = acl.rt.create_context(0)
    yield acl
    acl.rt.destroy_context(ctx)
    acl.rt.reset_device(0)


def test_elapsed_time_needs_both_events_on_one_stream(rt):
    acl = rt
    (a, _), (b, _) = acl.rt.create_stream(), acl.rt.create_stream()
    start, end, other = (acl.rt.create_event()[0] for _ in range(3))
    assert acl.rt.record_event(start, a) == 0 and acl.rt.record_event(end, a) == 0
    assert acl.rt.record_event(other, b) == 0  # how the old backend timed D2H and compute
    assert acl.rt.synchronize_stream(a) == 0 and acl.rt.synchronize_stream(b) == 0
    ms, ret = acl.rt.event_elapsed_time(start, end)
    assert ret == 0 and ms >= 0
    assert acl.rt.event_elapsed_time(start, other)[1] == 107000
    assert "different streams" in acl.get_recent_err_msg()


def test_event_cap_waits_then_fails_and_a_destroy_frees_a_place(monkeypatch, rt):
    acl = rt
    monkeypatch.setenv("FAKE_ACL_EVENT_WAIT_S", "0.05")
    events = [acl.rt.create_event() for _ in range(1023)]
    assert all(ret == 0 for _, ret in events)
    t0 = time.perf_counter()
    assert acl.rt.create_event() == (0, 207007)
    assert time.perf_counter() - t0 >= 0.04  # it waited for a release first
    monkeypatch.setenv("FAKE_ACL_EVENT_WAIT_S", "5")
    threading.Timer(0.05, acl.rt.destroy_event, (events[0][0],)).start()
    handle, ret = acl.rt.create_event()
    assert ret == 0 and handle
    for event, _ in events[1:] + [(handle, 0)]:
        assert acl.rt.destroy_event(event) == 0
    assert acl._double.live()["events"] == 0


def test_reset_rules_of_each_generation(rt):
    acl = rt
    (a, _), (b, _) = acl.rt.create_stream(), acl.rt.create_stream()
    plain, _ = acl.rt.create_event()
    if os.environ["FAKE_ACL_EVENTS"] == "new":
        assert acl.rt.reset_event(plain, b) == 107000  # current CANN: never on create_event's events
        sync, ret = acl.rt.create_event_with_flag(ACL_EVENT_SYNC)
        assert ret == 0
        timed, _ = acl.rt.create_event_with_flag(ACL_EVENT_TIME_LINE)
        assert acl.rt.record_event(timed, a) == 0
        assert acl.rt.stream_wait_event(b, timed) == 107000  # waiting needs ACL_EVENT_SYNC
        for _ in range(3):  # no reset needed between recordings
            assert acl.rt.record_event(sync, a) == 0 and acl.rt.stream_wait_event(b, sync) == 0
        assert acl.rt.reset_event(sync, b) == 0
        assert acl.rt.record_event(sync, a) == 0 and acl.rt.synchronize_stream(a) == 0
        assert acl.rt.event_elapsed_time(sync, sync)[1] == 107000  # no ACL_EVENT_TIME_LINE: no timestamp
        assert acl.rt.create_event_with_flag(0x40)[1] == 107000
    else:
        assert not hasattr(acl.rt, "create_event_with_flag")
        assert acl.rt.record_event(plain, a) == 0 and acl.rt.stream_wait_event(b, plain) == 0
        assert acl.rt.record_event(plain, a) == 107000  # older CANN: reset after the wait first
        assert "reset_event" in acl.get_recent_err_msg()
        assert acl.rt.reset_event(plain, b) == 0
        assert acl.rt.record_event(plain, a) == 0
    assert acl.rt.synchronize_stream(a) == 0 and acl.rt.synchronize_stream(b) == 0


def test_set_input_dynamic_dims_wants_a_list(rt, tmp_path):
    """pyACL's wrapper checks PyList_Check on dims['dims']: a tuple is refused."""
    acl = rt
    import fake_atc
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "T"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "T"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              str(tmp_path / "g.onnx"))
    assert fake_atc.main(["--framework=5", f"--model={tmp_path / 'g.onnx'}", f"--output={tmp_path / 'g'}",
                          "--input_format=ND", "--input_shape=x:1,4,-1", "--dynamic_dims=8;16",
                          "--soc_version=Ascend310P3", "--log=error"]) == 0
    (om,) = glob.glob(str(tmp_path / "g*.om"))
    model, ret = acl.mdl.load_from_file(om)
    assert ret == 0
    desc = acl.mdl.create_desc()
    acl.mdl.get_desc(desc, model)
    ds = acl.mdl.create_dataset()
    for i in range(acl.mdl.get_num_inputs(desc)):
        size = acl.mdl.get_input_size_by_index(desc, i)
        acl.mdl.add_dataset_buffer(ds, acl.create_data_buffer(acl.rt.malloc(size, 0)[0], size))
    index, _ = acl.mdl.get_input_index_by_name(desc, "ascend_mbatch_shape_data")
    assert acl.mdl.set_input_dynamic_dims(model, ds, index, {"dimCount": 3, "name": "", "dims": (1, 4, 8)}) != 0
    assert acl.mdl.set_input_dynamic_dims(model, ds, index, {"dimCount": 3, "name": "", "dims": [1, 4, 8]}) == 0


# ---------------------------------------------------------------------------------- error codes
def test_codes_are_named_as_cann_names_them():
    expected = {100024: "ACL_ERROR_OP_NOT_FOUND", 500001: "ACL_ERROR_FAILURE", 507011: "ACL_ERROR_RT_MODEL_EXECUTE",
                507046: "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", 507899: "ACL_ERROR_RT_DRV_INTERNAL_ERROR",
                507000: "ACL_ERROR_RT_INTERNAL_ERROR", 145012: "ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID",
                145013: "ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID", 107002: "ACL_ERROR_RT_CONTEXT_NULL",
                507033: "ACL_ERROR_RT_DEV_SETUP_ERROR", 207007: "ACL_ERROR_RT_NO_EVENT_RESOURCE"}
    for code, name in expected.items():
        assert ACL_CODES[code][0] == name
        assert describe_code(code).startswith(f"{code} ({name}: ") and len(ACL_CODES[code][1]) > 20
    assert "timeout" not in ACL_CODES[507011][1].lower()


def test_acl_errors_carry_cann_recent_message(doubles, tiny_om):
    acl = doubles
    acl._double.fail("mdl.execute_async", 507011)
    with pytest.raises(BackendError) as err:
        with AclSession(tiny_om, mode="async") as session:
            session.run(batch(0))
    message = str(err.value)
    assert "acl.mdl.execute_async returned 507011 (ACL_ERROR_RT_MODEL_EXECUTE" in message
    assert "CANN says: injected failure 507011 in mdl.execute_async" in message


def test_no_recent_message_adds_nothing(monkeypatch, doubles, tiny_om):
    monkeypatch.setattr(doubles, "get_recent_err_msg", lambda: "")
    doubles._double.fail("rt.create_stream", 207001)
    with pytest.raises(BackendError) as err:
        AclSession(tiny_om)
    assert "207001 (ACL_ERROR_RT_MEMORY_ALLOCATION" in str(err.value) and "CANN says" not in str(err.value)


# ------------------------------------------------------------------------------------- finalize
EXIT_SCRIPT = """
import atexit, json, sys
import numpy as np

def report():  # registered before ascend_asr's hook, so it runs after it
    import acl, fake_npu
    calls = acl._double.calls
    print("REPORT " + json.dumps({"finalize": calls.count("finalize"), "live": acl._double.live(),
                                  "last": calls[-1], "finalized": fake_npu.STATE.finalized}))
atexit.register(report)

from ascend_asr.backends.acl_backend import AclSession
import acl
feeds = {"x": np.ones((1, 4, 8), np.float32)}
for mode in ("sync", "async", "async"):
    with AclSession(OM, mode=mode) as session:
        session.run(feeds)
    assert acl._double.calls.count("finalize") == 0, "finalized per session"
left_open = AclSession(OM, mode="async")  # never closed: released at exit, before finalize
left_open.run(feeds)
if WITH_AIS_BENCH:
    from ascend_asr.backends.ais_bench_backend import AisBenchSession
    with AisBenchSession(OM) as s:
        s.run(feeds)
print("BODY DONE")
"""


@pytest.mark.parametrize("with_ais_bench", [False, True])
def test_finalize_runs_once_at_exit_after_every_session(monkeypatch, tiny_om, with_ais_bench):
    control.activate(monkeypatch)
    try:
        script = f"OM = {tiny_om!r}\nWITH_AIS_BENCH = {with_ais_bench}\n" + textwrap.dedent(EXIT_SCRIPT)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([control.DOUBLES_DIR, REPO])}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    finally:
        control.purge()
    assert done.returncode == 0, done.stderr
    assert "BODY DONE" in done.stdout
    report = json.loads(done.stdout.split("REPORT ", 1)[1])
    assert report["finalize"] == 1 and report["last"] == "finalize" and report["finalized"] is True
    assert sum(report["live"].values()) == 0, report["live"]
    assert "finalize" not in done.stderr
