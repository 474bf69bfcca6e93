"""`ascend-asr doctor`: what this host offers the NPU path, and why inference would fall back to the CPU.

One report, on any host (exit 0 whenever it could be made, CANN or not): where CANN was looked for and
found (the layouts env.sh knows, its variables, ascend_cann_install.info), which CANN Python modules
import and their API generation (by feature: every wheel says 0.0.2), the devices and their SoC, `atc`
and its version, onnxruntime and its providers, and with --model, whether the bundle's OM is the one its
manifest describes and was built for this SoC. The last line is the verdict. Imports neither torch nor onnx.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from .bundle import Bundle, open_bundle, sha256
from .runner import run

# -- where CANN is looked for: the same places, in the same order, as env.sh -------------------------
LAYOUTS = ("ascend-toolkit/set_env.sh", "ascend-toolkit/latest/set_env.sh",  # toolkit, CANN <= 8.3
           "cann/set_env.sh",                                                 # CANN 8.5+
           "nnrt/set_env.sh", "nnrt/latest/set_env.sh",                       # runtime only (no atc)
           "nnae/set_env.sh", "nnae/latest/set_env.sh")
HOME_VARS = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")
ROOTS_VAR, INFO_VAR = "ASCEND_ASR_CANN_ROOTS", "ASCEND_ASR_CANN_INSTALL_INFO"
SEARCHED_VAR, SET_ENV_VAR = "ASCEND_ASR_CANN_SEARCHED", "ASCEND_ASR_CANN_SET_ENV"
_INFO_KEY = re.compile(r"^(?:[Ii]nstall_[Pp]ath|[Pp]ath)=(.*)$")


def _home(env) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def _items(value: str) -> list[str]:
    """A ':'-separated list as env.sh walks it: one trailing '/' dropped, empty items skipped."""
    items = [p[:-1] if p.endswith("/") else p for p in value.split(":")]
    return [p for p in items if p]


def cann_roots(env=None) -> list[str]:
    env = os.environ if env is None else env
    return _items(env.get(ROOTS_VAR, f"/usr/local/Ascend:{_home(env)}/Ascend"))


def install_info_files(env=None) -> list[str]:
    env = os.environ if env is None else env
    return _items(env.get(INFO_VAR, f"/etc/Ascend/ascend_cann_install.info:{_home(env)}/Ascend/ascend_cann_install.info"))


def read_install_info(path: str) -> list[str]:
    """The install paths an ascend_cann_install.info records (`Install_Path=` or `path=` lines)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    values = []
    for line in lines:
        match = _INFO_KEY.match(line)
        if match:
            value = re.sub(r"[\r\"' ]", "", match.group(1))
            value = value[:-1] if value.endswith("/") else value
            if value:
                values.append(value)
    return values


def cann_candidates(env=None) -> list[str]:
    """Every set_env.sh env.sh would look for, in its order (it stops at the first that exists)."""
    env = os.environ if env is None else env
    out: list[str] = []
    for var in HOME_VARS:
        home = env.get(var, "")
        home = home[:-1] if home.endswith("/") else home
        if home:
            out += [(home.rsplit("/", 1)[0] if "/" in home else home) + "/set_env.sh", home + "/set_env.sh"]
    for info in install_info_files(env):
        if os.path.isfile(info) and os.access(info, os.R_OK):
            for value in read_install_info(info):
                out += [value + "/set_env.sh"] + [f"{value}/{layout}" for layout in LAYOUTS]
    for root in cann_roots(env):
        out += [f"{root}/{layout}" for layout in LAYOUTS]
    return list(dict.fromkeys(out))


def summarize(paths: list[str]) -> str:
    """'ROOT/{ascend-toolkit,cann,...}/set_env.sh, OTHER/set_env.sh' for a list of set_env.sh paths."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        layout = next((lay for lay in LAYOUTS if path.endswith("/" + lay)), None)
        root, part = (path[:-len(layout) - 1], layout[:-len("/set_env.sh")]) if layout else (path, None)
        groups.setdefault(root, [])
        if part:
            groups[root].append(part)
    shown = []
    for root, parts in groups.items():
        if not parts:
            shown.append(root)
        else:
            shown.append(f"{root}/{parts[0]}/set_env.sh" if len(parts) == 1
                         else f"{root}/{{{','.join(parts)}}}/set_env.sh")
    return ", ".join(shown)


@dataclass
class CannSearch:
    sourced: str | None          # the set_env.sh env.sh sourced in this shell
    env_sh_ran: bool             # env.sh was sourced (it exports ASCEND_ASR_CANN_SEARCHED)
    searched: list[str]          # what env.sh looked for, else what it would look for
    existing: list[str]          # those of `candidates` that exist now
    info: list[tuple[str, list[str] | None]] = field(default_factory=list)  # (file, recorded paths or None)


def search_cann(env=None) -> CannSearch:
    env = os.environ if env is None else env
    env_sh_ran = SEARCHED_VAR in env
    candidates = cann_candidates(env)
    searched = _items(env[SEARCHED_VAR]) if env_sh_ran and env[SEARCHED_VAR] else candidates
    info = [(path, read_install_info(path) if os.path.isfile(path) else None) for path in install_info_files(env)]
    return CannSearch(env.get(SET_ENV_VAR) or None, env_sh_ran, searched,
                      [c for c in candidates if os.path.isfile(c)], info)


def cann_hint(env=None, places: bool = True) -> str:
    """Why the CANN Python modules are missing and what to do: one clause for the FALLBACK line (with
    `places`, the set_env.sh files looked for and a pointer to the doctor)."""
    found = search_cann(env)
    if found.sourced:
        hint = (f"env.sh sourced {found.sourced}, yet they do not import in this Python (is it a Python "
                "that CANN supports, and is CANN's python/site-packages on its PYTHONPATH?)")
    elif found.existing:
        hint = f"CANN is installed ({found.existing[0]}) but not set up in this shell: `source env.sh` first"
    else:
        where = f" in {summarize(found.searched)}" if places else ""
        hint = (f"no CANN {'env.sh found' if found.env_sh_ran else 'found'}{where}: install it (or point "
                f"{ROOTS_VAR} at it), then `source env.sh`")
    return hint + ("; `ascend-asr doctor` tells more" if places else "")


# -- the report -------------------------------------------------------------------------------------
@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the NPU path is not ready, first one first

    def section(self, title: str) -> None:
        self.lines.append(title)

    def item(self, key: str, value: str) -> None:
        self.lines.append(f"  {key + ':':<20} {value}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(module) -> str:
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) if path else "(built in)"


def _import(name: str):
    """(module, None) or (None, why not); any failure of a broken install is a why-not, never a crash."""
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # noqa: BLE001 - ImportError, or whatever a half-installed CANN module raises
        return None, _one_line(exc)


def _toolkit_version(homes: list[str]) -> tuple[str, str] | None:
    """(version, file) from the first CANN install record found under `homes`."""
    arch = platform.machine()
    for home in dict.fromkeys(h for h in homes if h):
        for rel, key in ((f"{arch}-linux/ascend_toolkit_install.info", "version"),
                         (f"{arch}-linux/ascend_nnrt_install.info", "version"),
                         (f"{arch}-linux/ascend_nnae_install.info", "version"),
                         ("compiler/version.info", "version"), ("runtime/version.info", "version"),
                         ("version.info", "version")):
            path = os.path.join(home, rel)
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        name, sep, value = line.partition("=")
                        if sep and name.strip().lower() == key and value.strip():
                            return value.strip().strip("\"'"), path
            except OSError:
                continue
    return None


def _cann_homes(search: CannSearch, atc: str | None) -> list[str]:
    homes = [os.environ.get(var, "") for var in HOME_VARS]
    for set_env in ([search.sourced] if search.sourced else []) + search.existing[:1]:
        folder = os.path.dirname(set_env)
        homes += [os.path.join(folder, "latest"), folder]
    if atc:  # <home>/bin/atc, <home>/compiler/bin/atc, <home>/atc/bin/atc
        folder = os.path.dirname(os.path.realpath(atc))
        for _ in range(3):
            folder = os.path.dirname(folder)
            homes.append(folder)
    return homes


def check_cann(report: Report, search: CannSearch) -> None:
    report.section("CANN")
    if search.sourced:
        report.item("env.sh", f"sourced {search.sourced}")
    elif search.env_sh_ran:
        report.item("env.sh", "sourced, found no CANN")
    else:
        report.item("env.sh", "not sourced in this shell")
    for var in HOME_VARS:
        report.item(var, os.environ.get(var) or "unset")
    if search.existing:
        report.item("set_env.sh", ", ".join(search.existing))
    else:
        report.item("set_env.sh", f"none, looked for {len(search.searched)}: {summarize(search.searched)}")
    for path, recorded in search.info:
        report.item("install info", f"{path}: " + ("absent" if recorded is None else
                                                   ", ".join(recorded) or "no Install_Path= line"))


def _acl_generation(acl) -> str:
    util = getattr(acl, "util", None)
    new, old = hasattr(util, "bytes_to_ptr"), hasattr(util, "numpy_to_ptr")
    if new and old:
        return "current (util.bytes_to_ptr and util.numpy_to_ptr)"
    if new:
        return "new (util.bytes_to_ptr)"
    if old:
        return "old (util.numpy_to_ptr)"
    return "unknown (neither util.bytes_to_ptr nor util.numpy_to_ptr)"


@dataclass
class Host:
    acl_ok: bool = False
    ais_ok: bool = False
    acl_devices: int | None = None
    smi_devices: int | None = None
    soc: str | None = None
    why_no_runtime: str = ""


def check_modules(report: Report, host: Host) -> None:
    report.section("Python modules")
    acl, why = _import("acl")
    if acl is None:
        report.item("pyACL (acl)", f"not importable ({why})")
    else:
        host.acl_ok = True
        report.item("pyACL (acl)", f"{_where(acl)}; API {_acl_generation(acl)}")
    aclruntime, why_rt = _import("aclruntime")
    if aclruntime is None:
        report.item("aclruntime", f"not importable ({why_rt})")
    else:
        session = getattr(aclruntime, "InferenceSession", None)
        features = [name for name in ("free_resource", "finalize") if hasattr(session, name)]
        generation = (f"current (InferenceSession.{' and '.join(features)})" if features
                      else "old (no InferenceSession.free_resource or finalize)")
        report.item("aclruntime", f"{_where(aclruntime)}; API {generation}")
    interface, why_ais = _import("ais_bench.infer.interface")
    if interface is None:
        report.item("ais_bench", f"not importable ({why_ais})")
    else:
        host.ais_ok = True
        cls = getattr(interface, "InferSession", None)
        if hasattr(cls, "summary"):
            generation = "current (summary(), free_resource())" if hasattr(cls, "free_resource") else "current (summary())"
        elif hasattr(cls, "sumary"):
            generation = "old (sumary(), reset_sumaryinfo())"
        else:
            generation = "unknown (neither summary() nor sumary())"
        report.item("ais_bench", f"{_where(interface)}; API {generation}")
    ort, why_ort = _import("onnxruntime")
    if ort is None:
        report.item("onnxruntime", f"not importable ({why_ort}): the CPU fallback is missing too")
    else:
        providers = ", ".join(ort.get_available_providers())
        report.item("onnxruntime", f"{getattr(ort, '__version__', '?')}; providers: {providers}")
    if not (host.acl_ok or host.ais_ok):
        host.why_no_runtime = "neither pyACL ('acl') nor ais_bench imports: " + cann_hint(places=False)


_SMI_ROW = re.compile(r"^\|\s*(\d+)\s+(\S+)\s*\|")


def npu_smi_devices() -> tuple[str | None, int | None, str | None, str]:
    """(npu-smi path, device count, chip as 'Ascend<name>', note) from `npu-smi info`."""
    from .atc import _NPU_SMI_CHIP

    smi = shutil.which("npu-smi")
    if not smi:
        return None, None, None, "not on PATH"
    try:
        proc = subprocess.run([smi, "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return smi, None, None, f"did not answer ({_one_line(exc)})"
    if proc.returncode != 0:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        return smi, 0, None, f"failed (exit {proc.returncode}: {last[0].strip()})"
    chips = [m.group(2) for m in map(_SMI_ROW.match, proc.stdout.splitlines())
             if m and _NPU_SMI_CHIP.fullmatch(m.group(2))]
    chip = "Ascend" + chips[0] if chips else None
    return smi, len(chips), chip, f"{len(chips)} device(s)" + (f", chip {chips[0]}" if chips else "")


def check_devices(report: Report, host: Host, device: int) -> None:
    report.section("Devices")
    if host.acl_ok:
        from .backends.acl_backend import device_count, import_acl

        try:
            acl = import_acl()
            host.acl_devices = device_count(acl)
            report.item("pyACL", f"{host.acl_devices} device(s) (acl.rt.get_device_count)")
            if host.acl_devices:
                name = acl.get_soc_name()
                host.soc = str(name) if name else None
                report.item("SoC", f"{host.soc} (acl.get_soc_name())" if host.soc else
                            "acl.get_soc_name() returned nothing")
        except Exception as exc:  # noqa: BLE001 - a broken pyACL (BackendError or worse) is a finding, not a crash
            report.item("pyACL", f"not usable ({_one_line(exc)})")
    smi, count, chip, note = npu_smi_devices()
    host.smi_devices = count
    report.item("npu-smi", f"{smi}: {note}" if smi else note)
    if host.soc is None and chip:
        host.soc = chip
        report.item("SoC", f"{chip} (npu-smi info)")
    if host.soc is None:
        report.item("SoC", "unknown (no device answered)")
    count = host.acl_devices if host.acl_devices is not None else host.smi_devices
    if host.acl_ok and host.acl_devices is not None and device >= host.acl_devices:
        report.problems.append(f"pyACL sees {host.acl_devices} device(s), so device {device} does not answer")
    elif not host.acl_ok and host.ais_ok and not count:
        report.problems.append("ais_bench imports but no device answers `npu-smi info`")


def check_atc(report: Report, search: CannSearch) -> None:
    report.section("ATC")
    atc = shutil.which("atc")
    version = _toolkit_version(_cann_homes(search, atc))
    if version:
        report.item("CANN version", f"{version[0]} ({version[1]})")
    if not atc:
        report.item("atc", "not on PATH: convert writes ONNX + manifest only (they run on onnxruntime); "
                    "`source env.sh` on a host with the CANN toolkit to build OMs")
        return
    try:
        proc = subprocess.run([atc, "--version"], capture_output=True, text=True, timeout=60)
        out = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        answer = f"`atc --version`: {out[0]}" if proc.returncode == 0 and out else \
            f"`atc --version` exit {proc.returncode}" + (f": {out[-1]}" if out else "")
    except (OSError, subprocess.TimeoutExpired) as exc:
        answer = f"`atc --version` did not answer ({_one_line(exc)})"
    report.item("atc", f"{atc}; {answer}")


def check_bundle(report: Report, host: Host, bundle: Bundle) -> None:
    manifest = bundle.manifest
    report.section(f"Bundle {bundle.name}")
    report.item("manifest", os.path.join(bundle.directory, bundle.name + ".json"))
    report.item("ONNX", bundle.onnx_path + ("" if os.path.isfile(bundle.onnx_path) else
                                            " MISSING: the CPU fallback needs it"))
    om = manifest.get("om")
    if not os.path.isfile(bundle.om_path):
        report.item("OM", f"{bundle.om_path} missing")
        report.problems.append(f"{bundle.name}.om does not exist (convert where `atc` is: `source env.sh`, then "
                               "`ascend-asr convert`)")
    elif not om:
        report.item("OM", f"{bundle.om_path} present, but the manifest records none (converted without ATC)")
        report.problems.append(f"{bundle.name}.om is not described by {bundle.name}.json; convert again")
    else:
        size, digest = os.path.getsize(bundle.om_path), sha256(bundle.om_path)
        bad = []
        if size != om.get("size"):
            bad.append(f"size {size} bytes, manifest {om.get('size')}")
        if digest != om.get("sha256"):
            bad.append(f"SHA-256 {digest[:12]}..., manifest {str(om.get('sha256'))[:12]}...")
        if bad:
            report.item("OM", f"{bundle.om_path} DOES NOT MATCH the manifest: {'; '.join(bad)}")
            report.problems.append(f"{bundle.name}.om does not match its manifest ({'; '.join(bad)}); run "
                                   "`ascend-asr convert` again so that both come from one conversion")
        else:
            report.item("OM", f"{bundle.om_path}: size and SHA-256 match the manifest")
    built_for = manifest.get("soc_version")
    origin = manifest.get("soc_version_origin")
    text = f"built for {built_for}" + (f" ({origin})" if origin else "")
    if host.soc is None:
        report.item("SoC", f"{text}; this host's SoC is unknown")
    elif built_for == host.soc:
        report.item("SoC", f"{text}: matches this host")
    else:
        report.item("SoC", f"{text}, this host is {host.soc}: MISMATCH")
        report.problems.append(f"{bundle.name}.om was built for {built_for}, this host is {host.soc}; convert with "
                               f"--soc-version {host.soc}")


def verdict(host: Host, problems: list[str]) -> str:
    if not (host.acl_ok or host.ais_ok):
        reason = host.why_no_runtime
    elif problems:
        reason = problems[0]
    elif not (host.acl_devices or host.smi_devices):
        reason = "no device answers (pyACL and npu-smi see none): check the driver, `npu-smi info`"
    else:
        runtime = "pyACL" if host.acl_ok and host.acl_devices else "ais_bench"
        return f"NPU path: ready ({runtime}" + (f", {host.soc})" if host.soc else ")")
    return f"NPU path: unavailable ({reason}); inference will fall back to onnxruntime"


def doctor(model: str | None = None, device: int = 0, out=None) -> int:
    out = sys.stdout if out is None else out
    # first: a missing or foreign manifest is the runner's one-line error (exit 2), before any device work
    bundle = open_bundle(model, validate=False) if model else None  # it reports on the manifest's OM fields
    report, host, search = Report(), Host(), search_cann()
    report.lines.append("[ascend-asr] doctor: the NPU path on this host")
    check_cann(report, search)
    check_modules(report, host)
    check_devices(report, host, device)
    check_atc(report, search)
    if bundle is not None:
        check_bundle(report, host, bundle)
    report.lines.append(verdict(host, report.problems))
    print("\n".join(report.lines), file=out, flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ascend-asr doctor", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a bundle (NAME.om, NAME.onnx or NAME.json): check its OM against its manifest "
                                   "and this host's SoC")
    p.add_argument("--device", type=int, default=0, help="the device inference would use (default 0)")
    args = p.parse_args(argv)
    return doctor(args.model, args.device)


if __name__ == "__main__":
    sys.exit(run(main))
