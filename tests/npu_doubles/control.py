"""Switching the NPU doubles on in a test (and off again).

    from tests.npu_doubles import control

    @pytest.fixture
    def npu(monkeypatch):
        control.activate(monkeypatch, latency_ms=5, soc="Ascend310P3")
        yield
        control.purge()
"""
from __future__ import annotations

import os
import sys

DOUBLES_DIR = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.join(DOUBLES_DIR, "bin")
MODULES = ("acl", "aclruntime", "ais_bench", "fake_om", "fake_npu", "fake_atc")


def purge() -> None:
    """Forget the doubles' modules (and stop the fake streams' threads), so that the next import
    starts a fresh process state in the generation the environment asks for."""
    acl = sys.modules.get("acl")
    double = getattr(acl, "_double", None)
    if double is not None and hasattr(double, "shutdown"):
        double.shutdown()
    for name in list(sys.modules):
        if name.split(".")[0] in MODULES:
            del sys.modules[name]


def activate(monkeypatch, *, latency_ms: float = 0.0, devices: int = 1,
             soc: str = "Ascend310P3", acl_api: str = "new", ais_bench_api: str = "new",
             acl_events: str = "new") -> None:
    """Put the doubles first on sys.path, PYTHONPATH (for child Pythons) and PATH (atc, npu-smi),
    set their environment knobs, and purge earlier imports. monkeypatch undoes the paths and
    variables; call purge() on teardown to drop the modules."""
    if {acl_api, ais_bench_api, acl_events} - {"new", "old"}:
        raise ValueError("acl_api, ais_bench_api and acl_events are 'new' or 'old'")
    monkeypatch.setenv("FAKE_NPU_LATENCY_MS", str(latency_ms))
    monkeypatch.setenv("FAKE_NPU_DEVICES", str(devices))
    monkeypatch.setenv("FAKE_NPU_SOC", soc)
    monkeypatch.setenv("FAKE_ACL_API", acl_api)
    monkeypatch.setenv("FAKE_AIS_BENCH_API", ais_bench_api)
    monkeypatch.setenv("FAKE_ACL_EVENTS", acl_events)
    monkeypatch.setenv("NPU_DOUBLES_PYTHON", sys.executable)  # what bin/atc runs
    monkeypatch.syspath_prepend(DOUBLES_DIR)
    python_path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", DOUBLES_DIR + (os.pathsep + python_path if python_path else ""))
    monkeypatch.setenv("PATH", BIN_DIR + os.pathsep + os.environ.get("PATH", ""))
    purge()
