"""env.sh: sourcing it finds CANN or prints one line, and never breaks the caller's shell."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_CANN = "/usr/local/Ascend/ascend-toolkit/set_env.sh"


def _bash(script, home):
    env = {k: v for k, v in os.environ.items() if k != "ASCEND_TOOLKIT_HOME"}
    env["HOME"] = str(home)
    return subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=20)


def _lines_before(marker, stdout):
    lines = stdout.splitlines()
    assert any(line.startswith(marker) for line in lines), stdout
    return lines[:next(i for i, line in enumerate(lines) if line.startswith(marker))]


@pytest.mark.skipif(os.path.exists(SYSTEM_CANN), reason="a real CANN toolkit is installed")
def test_without_cann_one_line_and_alive(tmp_path):
    result = _bash("source ./env.sh; echo ALIVE $?", tmp_path)
    assert "ALIVE 0" in result.stdout.splitlines()
    before = _lines_before("ALIVE", result.stdout)
    assert len(before) == 1 and before[0].startswith("[ascend-asr]"), result.stdout
    assert result.stderr == ""


def test_errexit_not_leaked(tmp_path):
    result = _bash("source ./env.sh; false; echo STILL", tmp_path)
    assert result.stdout.splitlines()[-1] == "STILL"
    assert result.returncode == 0


def test_helpers_not_leaked(tmp_path):
    result = _bash("source ./env.sh; declare -F _ascend_asr_find_cann; echo VAR=${_ascend_asr_cann_env-unset}",
                   tmp_path)
    assert result.stdout.splitlines()[-1] == "VAR=unset"
    assert "_ascend_asr_find_cann" not in result.stdout


@pytest.mark.skipif(os.path.exists(SYSTEM_CANN), reason="a real CANN toolkit is installed and wins")
def test_sources_home_cann(tmp_path):
    fake = tmp_path / "Ascend" / "ascend-toolkit" / "set_env.sh"
    fake.parent.mkdir(parents=True)
    fake.write_text("export FAKE_CANN=1\n")
    result = _bash('source ./env.sh; echo "FAKE=$FAKE_CANN"', tmp_path)
    assert result.stdout.splitlines()[-1] == "FAKE=1"
    before = _lines_before("FAKE=", result.stdout)
    assert len(before) == 1 and before[0].startswith("[ascend-asr]"), result.stdout
    assert str(fake) in before[0]
