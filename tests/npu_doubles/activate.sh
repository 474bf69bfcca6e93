# Source me: puts the NPU doubles (import acl / aclruntime / ais_bench; atc, npu-smi) first.
#   source tests/npu_doubles/activate.sh
_npu_doubles_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export PYTHONPATH="${_npu_doubles_dir}${PYTHONPATH:+:${PYTHONPATH}}"
export PATH="${_npu_doubles_dir}/bin:${PATH}"
export FAKE_NPU_SOC="${FAKE_NPU_SOC:-Ascend310P3}"
unset _npu_doubles_dir
