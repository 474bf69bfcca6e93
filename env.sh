# Source me: `source env.sh`. Finds the CANN toolkit's set_env.sh and sources it; without CANN
# it prints one line and leaves your shell as it was (no `set -e`, no exit).
_ascend_asr_find_cann() {
    local candidate
    for candidate in "${ASCEND_TOOLKIT_HOME:+$ASCEND_TOOLKIT_HOME/../set_env.sh}" \
                     "${ASCEND_TOOLKIT_HOME:+$ASCEND_TOOLKIT_HOME/set_env.sh}" \
                     /usr/local/Ascend/ascend-toolkit/set_env.sh \
                     "$HOME/Ascend/ascend-toolkit/set_env.sh"; do
        if [ -n "$candidate" ] && [ -f "$candidate" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}
if _ascend_asr_cann_env=$(_ascend_asr_find_cann); then
    # shellcheck disable=SC1090
    . "$_ascend_asr_cann_env"
    echo "[ascend-asr] CANN environment: $_ascend_asr_cann_env (ASCEND_TOOLKIT_HOME=${ASCEND_TOOLKIT_HOME:-unset})"
else
    echo "[ascend-asr] no CANN toolkit found (checked \$ASCEND_TOOLKIT_HOME, /usr/local/Ascend, \$HOME/Ascend): NPU backends unavailable, onnxruntime fallback only"
fi
unset -f _ascend_asr_find_cann
unset _ascend_asr_cann_env
