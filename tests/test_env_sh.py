"""env.sh: sourcing it finds CANN in every install layout (fake trees here) or prints one line, says which
set_env.sh it sourced and where it looked, and never breaks the caller's shell."""
import os
import shutil
import subprocess

import pytest

from ascend_asr.doctor import LAYOUTS, cann_candidates

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLEARED = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_ASR_CANN_ROOTS", "ASCEND_ASR_CANN_INSTALL_INFO",
           "ASCEND_ASR_CANN_SEARCHED", "ASCEND_ASR_CANN_SET_ENV")


class Tree:
    """A fake host: SYSTEM stands for /usr/local/Ascend, HOME/Ascend for the user's, ETC_INFO for
    /etc/Ascend/ascend_cann_install.info."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.system = tmp_path / "usr_local_Ascend"
        self.user = self.home / "Ascend"
        self.etc_info = tmp_path / "etc_Ascend" / "ascend_cann_install.info"
        self.user_info = self.user / "ascend_cann_install.info"
        self.home.mkdir()

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env.update(HOME=str(self.home), ASCEND_ASR_CANN_ROOTS=f"{self.system}:{self.user}",
                   ASCEND_ASR_CANN_INSTALL_INFO=f"{self.etc_info}:{self.user_info}")
        env.update(extra)
        return env

    def set_env(self, folder, name):
        """A fake set_env.sh under `folder` that exports what CANN's does (and says which it is)."""
        path = folder / "set_env.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'export FAKE_CANN="{name}"\nexport ASCEND_HOME_PATH="{folder}"\n')
        return str(path)

    def bash(self, script, shell="bash", **extra):
        return subprocess.run([shell, "-c", script], cwd=REPO, env=self.env(**extra), capture_output=True,
                              text=True, timeout=20)


REPORT = 'echo "RC=$?"; echo "FAKE=${FAKE_CANN-}"; echo "SET_ENV=$ASCEND_ASR_CANN_SET_ENV"; ' \
         'echo "SEARCHED=$ASCEND_ASR_CANN_SEARCHED"'


def sourced(tree, prelude="", **extra):
    """Source env.sh in bash: (its own output lines, {RC, FAKE, SET_ENV, SEARCHED})."""
    result = tree.bash(f"{prelude}source ./env.sh; {REPORT}", **extra)
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    own, values = lines[:-4], dict(line.split("=", 1) for line in lines[-4:])
    return own, values


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


@pytest.mark.parametrize("where", ["system", "user"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_is_found_sourced_and_named(tree, where, layout):
    root = tree.system if where == "system" else tree.user
    path = tree.set_env((root / layout).parent, layout)
    own, values = sourced(tree)
    assert values["FAKE"] == layout and values["SET_ENV"] == path and values["RC"] == "0"
    assert len(own) == 1 and own[0].startswith("[ascend-asr] CANN environment: sourced " + path), own
    searched = values["SEARCHED"].split(":")
    assert searched[-1] == path
    assert searched == cann_candidates(tree.env())[:len(searched)]  # Python walks the same places, same order


def test_toolkit_wins_over_runtime_and_system_over_user(tree):
    tree.set_env(tree.user / "ascend-toolkit", "user toolkit")
    tree.set_env(tree.system / "nnrt", "system nnrt")
    tree.set_env(tree.system / "cann", "system cann 8.5")
    assert sourced(tree)[1]["FAKE"] == "system cann 8.5"


@pytest.mark.parametrize("var,folder,expected", [
    ("ASCEND_TOOLKIT_HOME", "opt/ascend-toolkit/latest", "opt/ascend-toolkit"),  # set_env.sh beside latest/
    ("ASCEND_HOME_PATH", "opt/cann-8.5.0", "opt/cann-8.5.0"),                    # CANN 8.5: in the folder itself
])
def test_a_cann_already_in_the_shell_comes_first(tree, var, folder, expected):
    path = tree.set_env(tree.tmp / expected, "from " + var)
    (tree.tmp / folder).mkdir(parents=True, exist_ok=True)
    tree.set_env(tree.system / "ascend-toolkit", "system toolkit")
    values = sourced(tree, **{var: str(tree.tmp / folder)})[1]
    assert values["FAKE"] == "from " + var and values["SET_ENV"] == path


def test_install_info_records_the_install_root(tree):
    custom = tree.tmp / "opt" / "Ascend"
    path = tree.set_env(custom / "cann", "custom cann")
    tree.etc_info.parent.mkdir(parents=True)
    tree.etc_info.write_text(f"UserName=HwHiAiUser\r\nUserGroup=HwHiAiUser\r\nInstall_Path={custom}/\r\n")
    own, values = sourced(tree)
    assert values["FAKE"] == "custom cann" and values["SET_ENV"] == path and path in own[0]


def test_user_install_info_with_a_path_line_naming_the_package_folder(tree):
    package = tree.tmp / "pkgs" / "nnrt" / "latest"
    tree.set_env(package, "nnrt package")
    tree.user_info.parent.mkdir(parents=True)
    tree.user_info.write_text(f"version=8.0.RC1\npath=\"{package}\"\n")
    assert sourced(tree)[1]["FAKE"] == "nnrt package"


def test_without_cann_one_line_nothing_changed_and_python_agrees_on_the_places(tree):
    tree.etc_info.parent.mkdir(parents=True)
    tree.etc_info.write_text(f"Install_Path={tree.tmp / 'gone'}\n")  # recorded, since uninstalled
    own, values = sourced(tree)
    assert len(own) == 1 and own[0].startswith("[ascend-asr] no CANN found"), own
    assert "ascend-asr doctor" in own[0] and str(tree.system) in own[0]
    assert values == {"RC": "0", "FAKE": "", "SET_ENV": "", "SEARCHED": values["SEARCHED"]}
    searched = values["SEARCHED"].split(":")
    assert searched == cann_candidates(tree.env())
    assert f"{tree.tmp / 'gone'}/set_env.sh" in searched and f"{tree.user}/nnae/latest/set_env.sh" in searched


@pytest.mark.skipif(any(os.path.exists(p) for p in ("/usr/local/Ascend", "/etc/Ascend/ascend_cann_install.info")),
                    reason="a real CANN is installed")
def test_default_places_without_cann(tree):
    env = {k: v for k, v in tree.env().items() if k not in ("ASCEND_ASR_CANN_ROOTS", "ASCEND_ASR_CANN_INSTALL_INFO")}
    result = subprocess.run(["bash", "-c", f"source ./env.sh; {REPORT}"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=20)
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("[ascend-asr] no CANN found") and result.stderr == ""
    searched = lines[-1].removeprefix("SEARCHED=").split(":")
    assert searched[0] == "/usr/local/Ascend/ascend-toolkit/set_env.sh"
    assert f"{tree.home}/Ascend/cann/set_env.sh" in searched and searched == cann_candidates(env)


@pytest.mark.parametrize("found", [False, True])
def test_the_shell_stays_usable(tree, found):
    if found:
        tree.set_env(tree.system / "nnae", "nnae")
    # errexit and nounset in the caller's shell: nothing in env.sh trips them, and it sets neither
    result = tree.bash("set -eu; source ./env.sh; echo \"AFTER $?\"; false || echo RECOVERED; "
                       "set +eu; source ./env.sh >/dev/null; false; echo \"STILL $?\"; case $- in *e*) echo LEAKED;; esac")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:] == ["AFTER 0", "RECOVERED", "STILL 1"], result.stdout


@pytest.mark.parametrize("found", [False, True])
def test_nothing_leaked_but_the_exported_variables(tree, found):
    if found:
        tree.set_env(tree.system / "ascend-toolkit", "toolkit")
    script = ("compgen -v | sort > before.v; compgen -A function | sort > before.f; source ./env.sh >/dev/null; "
              "compgen -v | sort > after.v; compgen -A function | sort > after.f; "
              "comm -13 before.v after.v; echo FUNCTIONS; comm -3 before.f after.f; "
              "echo EXPORTED; env | grep -o '^ASCEND_ASR_[A-Z_]*' | sort")
    shutil.copy(os.path.join(REPO, "env.sh"), str(tree.tmp))  # run where the scratch files go
    result = subprocess.run(["bash", "-c", script], cwd=str(tree.tmp), env=tree.env(), capture_output=True,
                            text=True, timeout=20)
    new_vars, rest = result.stdout.split("FUNCTIONS\n")
    functions, exported = rest.split("EXPORTED\n")
    expected = {"ASCEND_ASR_CANN_SEARCHED", "ASCEND_ASR_CANN_SET_ENV"}
    if found:
        expected |= {"FAKE_CANN", "ASCEND_HOME_PATH"}  # what the (fake) set_env.sh exports
    assert set(new_vars.split()) - {"_", "PIPESTATUS"} == expected, new_vars  # (bash sets those two)
    assert functions.strip() == ""
    assert {"ASCEND_ASR_CANN_SEARCHED", "ASCEND_ASR_CANN_SET_ENV"} <= set(exported.split())  # for child processes


@pytest.mark.skipif(shutil.which("dash") is None, reason="no dash (a POSIX sh) here")
def test_posix_sh_can_source_it_too(tree):
    tree.set_env(tree.user / "cann", "user cann")
    result = tree.bash(". ./env.sh; echo \"FAKE=$FAKE_CANN RC=$?\"", shell="dash")
    assert result.stderr == "" and result.stdout.splitlines()[-1] == "FAKE=user cann RC=0", result.stdout
