# Source me: puts the NPU doubles (import acl / aclruntime / ais_bench; atc, npu-smi) first.
#   source tests/npu_doubles/activate.sh
_npu_doubles_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export PYTHONPATH="${_npu_doubles_dir}${PYTHONPATH:+:${PYTHONPATH}}"
export PATH="${_npu_doubles_dir}/bin:${PATH}"
export FAKE_NPU_SOC="${FAKE_NPU_SOC:-Ascend310P3}"
# bin/atc runs with this interpreter (the python3 of this shell now, e.g. the active virtualenv's)
if [ -z "${NPU_DOUBLES_PYTHON:-}" ]; then
    NPU_DOUBLES_PYTHON="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)"
    export NPU_DOUBLES_PYTHON
fi
unset _npu_doubles_dir
