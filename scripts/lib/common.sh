# shellcheck shell=bash
# Shared helpers for scripts/guest-test and scripts/build-stock-module: paths, progress lines,
# phase timing, errors.
# Sourced, not executed.

# The checkout (scripts/..), the cache outside it, and this run's output directory.
PKTMAP_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKTMAP_CACHE="${PKTMAP_CACHE:-${HOME:-/root}/.cache/pktmap}"
PKTMAP_OUT="${PKTMAP_OUT:-$PKTMAP_REPO/target/guest-test}"
PKTMAP_JOBS="${PKTMAP_JOBS:-$(nproc)}"
export PKTMAP_REPO PKTMAP_CACHE PKTMAP_OUT PKTMAP_JOBS

# `==> message`: one progress line.
say() {
    printf '==> %s\n' "$*"
}

# Prints an error and exits non-zero.
die() {
    printf 'guest-test: error: %s\n' "$*" >&2
    exit 1
}

# Phase timing: `phase_begin NAME "message"` ... `phase_end NAME`; `phase_report` at the end.
declare -a PKTMAP_PHASES=()
declare -A PKTMAP_PHASE_START=() PKTMAP_PHASE_SECS=()

now() {
    date +%s.%N
}

phase_begin() {
    local name="$1"
    shift
    PKTMAP_PHASES+=("$name")
    PKTMAP_PHASE_START[$name]="$(now)"
    say "$*"
}

phase_end() {
    local name="$1" secs
    secs="$(awk -v a="${PKTMAP_PHASE_START[$name]}" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
    PKTMAP_PHASE_SECS[$name]="$secs"
    say "$name: ${secs}s"
}

phase_report() {
    local name total=0
    say "timings:"
    for name in "${PKTMAP_PHASES[@]}"; do
        [ -n "${PKTMAP_PHASE_SECS[$name]:-}" ] || continue
        printf '    %-10s %7ss\n' "$name" "${PKTMAP_PHASE_SECS[$name]}"
        total="$(awk -v a="$total" -v b="${PKTMAP_PHASE_SECS[$name]}" 'BEGIN { printf "%.1f", a + b }')"
    done
    printf '    %-10s %7ss\n' total "$total"
}

# Runs a command with its output in LOG, printing the log's tail if it fails.
run_logged() {
    local log="$1"
    shift
    if ! "$@" >"$log" 2>&1; then
        printf 'guest-test: command failed: %s\n--- last 40 lines of %s ---\n' "$*" "$log" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}
