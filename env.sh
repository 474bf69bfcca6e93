# Source me: `source env.sh`. Finds CANN's set_env.sh in every install layout and sources it; without
# CANN it prints one line and leaves your shell as it was (no `set -e`, no exit, nothing left behind but
# the two variables below). Works in bash and zsh, also under `set -eu`.
#
# Looked for, in order; the first set_env.sh that exists wins:
#   1. the CANN this shell already has: $ASCEND_TOOLKIT_HOME, $ASCEND_HOME_PATH (their folder and its parent)
#   2. the install path the CANN installer records (`Install_Path=` or `path=` lines) in
#      /etc/Ascend/ascend_cann_install.info (root install) and $HOME/Ascend/ascend_cann_install.info (user
#      install): that folder, then the layouts below under it
#   3. /usr/local/Ascend, then $HOME/Ascend, each with these layouts:
#        ascend-toolkit/set_env.sh, ascend-toolkit/latest/set_env.sh   (toolkit, CANN <= 8.3)
#        cann/set_env.sh                                                (CANN 8.5+)
#        nnrt/set_env.sh, nnrt/latest/set_env.sh,
#        nnae/set_env.sh, nnae/latest/set_env.sh                        (runtime only: no atc)
# ASCEND_ASR_CANN_ROOTS=dir:dir replaces the folders of 3, ASCEND_ASR_CANN_INSTALL_INFO=file:file the files
# of 2 (a CANN installed elsewhere; the tests point both at fake trees).
# Exports ASCEND_ASR_CANN_SET_ENV (the file sourced, empty when none) and ASCEND_ASR_CANN_SEARCHED (every
# set_env.sh looked for, ':'-separated), which the FALLBACK line and `ascend-asr doctor` report.

_ascend_asr_try() {  # $1: a set_env.sh; recorded as searched; 0 (and remembered) when it exists
    [ -n "$1" ] || return 1
    case ":$ASCEND_ASR_CANN_SEARCHED:" in *":$1:"*) return 1 ;; esac
    ASCEND_ASR_CANN_SEARCHED="${ASCEND_ASR_CANN_SEARCHED:+$ASCEND_ASR_CANN_SEARCHED:}$1"
    if [ -f "$1" ]; then
        ASCEND_ASR_CANN_SET_ENV=$1
        return 0
    fi
    return 1
}

_ascend_asr_try_layouts() {  # $1: an install root such as /usr/local/Ascend
    [ -n "$1" ] || return 1
    _ascend_asr_try "$1/ascend-toolkit/set_env.sh" || _ascend_asr_try "$1/ascend-toolkit/latest/set_env.sh" ||
        _ascend_asr_try "$1/cann/set_env.sh" ||
        _ascend_asr_try "$1/nnrt/set_env.sh" || _ascend_asr_try "$1/nnrt/latest/set_env.sh" ||
        _ascend_asr_try "$1/nnae/set_env.sh" || _ascend_asr_try "$1/nnae/latest/set_env.sh"
}

_ascend_asr_try_home_var() {  # $1: the value of ASCEND_TOOLKIT_HOME or ASCEND_HOME_PATH
    local home="${1%/}"
    [ -n "$home" ] || return 1
    _ascend_asr_try "${home%/*}/set_env.sh" || _ascend_asr_try "$home/set_env.sh"
}

_ascend_asr_try_info() {  # $1: an ascend_cann_install.info
    local line value
    [ -f "$1" ] && [ -r "$1" ] || return 1
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            [Ii]nstall_[Pp]ath=* | [Pp]ath=*) value=$(printf '%s' "${line#*=}" | tr -d "\r\"' ") ;;
            *) continue ;;
        esac
        value="${value%/}"
        [ -n "$value" ] || continue
        if _ascend_asr_try "$value/set_env.sh" || _ascend_asr_try_layouts "$value"; then
            return 0
        fi
    done < "$1"
    return 1
}

_ascend_asr_each() {  # $1: a function, $2: a ':'-separated list; 0 when the function finds CANN for an item
    local rest="$2" item
    while [ -n "$rest" ]; do
        item="${rest%%:*}"
        case "$rest" in *:*) rest="${rest#*:}" ;; *) rest= ;; esac
        if "$1" "${item%/}"; then
            return 0
        fi
    done
    return 1
}

_ascend_asr_find_cann() {
    ASCEND_ASR_CANN_SEARCHED=
    ASCEND_ASR_CANN_SET_ENV=
    _ascend_asr_try_home_var "${ASCEND_TOOLKIT_HOME:-}" || _ascend_asr_try_home_var "${ASCEND_HOME_PATH:-}" ||
        _ascend_asr_each _ascend_asr_try_info \
            "${ASCEND_ASR_CANN_INSTALL_INFO-/etc/Ascend/ascend_cann_install.info:${HOME:-~}/Ascend/ascend_cann_install.info}" ||
        _ascend_asr_each _ascend_asr_try_layouts "${ASCEND_ASR_CANN_ROOTS-/usr/local/Ascend:${HOME:-~}/Ascend}"
}

_ascend_asr_find_cann || :
export ASCEND_ASR_CANN_SEARCHED ASCEND_ASR_CANN_SET_ENV
if [ -n "$ASCEND_ASR_CANN_SET_ENV" ]; then
    # shellcheck disable=SC1090
    . "$ASCEND_ASR_CANN_SET_ENV"
    echo "[ascend-asr] CANN environment: sourced $ASCEND_ASR_CANN_SET_ENV" \
         "(ASCEND_HOME_PATH=${ASCEND_HOME_PATH:-unset}, ASCEND_TOOLKIT_HOME=${ASCEND_TOOLKIT_HOME:-unset})"
else
    echo "[ascend-asr] no CANN found (no set_env.sh via \$ASCEND_TOOLKIT_HOME, \$ASCEND_HOME_PATH," \
         "ascend_cann_install.info, or under ${ASCEND_ASR_CANN_ROOTS-/usr/local/Ascend:${HOME:-~}/Ascend}):" \
         "NPU backends unavailable, onnxruntime fallback only; \`ascend-asr doctor\` lists every place looked"
fi
unset -f _ascend_asr_try _ascend_asr_try_layouts _ascend_asr_try_home_var _ascend_asr_try_info _ascend_asr_each \
    _ascend_asr_find_cann
