# shellcheck shell=bash
# The program the guest runs against /dev/pktmap: the workspace crate guest/
# (package pktmap-guest), a static binary that prints one line per check and closes each run with
# `N passed, M failed`. PKTMAP_GUEST_RUNS gets one command line per run (the program is
# /guest-test in the guest). Beside it, guest/compat/round1.c: a C program built against the
# first round's header (guest/compat/pktmap-round1.h), static, run as /compat-round1 (its own
# `N passed, M failed` line counts like the others).
# Sourced by scripts/guest-test after lib/common.sh.

PKTMAP_GUEST_TARGET=x86_64-unknown-linux-gnu
# pktmap-guest's bounded stress run: seconds and processes.
PKTMAP_STRESS_SECS="${PKTMAP_STRESS_SECS:-10}"
PKTMAP_STRESS_PROCS="${PKTMAP_STRESS_PROCS:-4}"
# The model-checked sequence test: cases (one check each) of up to STEPS steps; SEED fixes the
# first case's seed (default: from the clock, printed).
PKTMAP_SEQUENCE_CASES="${PKTMAP_SEQUENCE_CASES:-24}"
PKTMAP_SEQUENCE_STEPS="${PKTMAP_SEQUENCE_STEPS:-40}"
PKTMAP_SEQUENCE_SEED="${PKTMAP_SEQUENCE_SEED:-}"
# --soak SECONDS (scripts/guest-test): the sequence test for that long, then the stress test as
# 8 processes x 10,000 cycles (no time limit).
PKTMAP_SOAK_SECS="${PKTMAP_SOAK_SECS:-}"
PKTMAP_SOAK_PROCS="${PKTMAP_SOAK_PROCS:-8}"
PKTMAP_SOAK_CYCLES="${PKTMAP_SOAK_CYCLES:-10000}"

# Fails unless $1 is a statically linked ELF (the initramfs has no libc).
check_static() {
    if readelf -l "$1" | grep -q 'Requesting program interpreter'; then
        die "$1 is dynamically linked; the guest has no libc"
    fi
}

build_guest_program() {
    local log="$PKTMAP_OUT/guest-program-build.log" bin
    mkdir -p "$PKTMAP_OUT"
    say "guest program: cargo build -p pktmap-guest (static)"
    (
        cd "$PKTMAP_REPO"
        RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
            -p pktmap-guest --target "$PKTMAP_GUEST_TARGET"
    ) >"$log" 2>&1 || {
        cat "$log" >&2
        die "building pktmap-guest failed (log: $log)"
    }
    bin="${CARGO_TARGET_DIR:-$PKTMAP_REPO/target}/$PKTMAP_GUEST_TARGET/release/pktmap-guest"
    say "guest program: guest/compat/round1.c against the first round's header (gcc -static)"
    PKTMAP_COMPAT_BIN="$PKTMAP_OUT/compat-round1"
    run_logged "$PKTMAP_OUT/compat-build.log" gcc -static -O2 -Wall -Wextra -Werror -std=gnu11 \
        -I "$PKTMAP_REPO/guest/compat" -o "$PKTMAP_COMPAT_BIN" "$PKTMAP_REPO/guest/compat/round1.c" ||
        die "building guest/compat/round1.c failed"
    check_static "$PKTMAP_COMPAT_BIN"
    if [ -n "$PKTMAP_SOAK_SECS" ]; then
        PKTMAP_GUEST_RUNS="/guest-test check"$'\n'"/compat-round1"$'\n'"/guest-test sequence --secs $PKTMAP_SOAK_SECS $PKTMAP_SEQUENCE_STEPS $PKTMAP_SEQUENCE_SEED"$'\n'"/guest-test stress 0 $PKTMAP_SOAK_PROCS $PKTMAP_SOAK_CYCLES"
    else
        PKTMAP_GUEST_RUNS="/guest-test check"$'\n'"/compat-round1"$'\n'"/guest-test pools"$'\n'"/guest-test trust"$'\n'"/guest-test sequence $PKTMAP_SEQUENCE_CASES $PKTMAP_SEQUENCE_STEPS $PKTMAP_SEQUENCE_SEED"$'\n'"/guest-test stress $PKTMAP_STRESS_SECS $PKTMAP_STRESS_PROCS"
    fi
    # Extra runs, one command line each (e.g. "/guest-test faults 5 1,2"); PKTMAP_GUEST_ONLY
    # replaces the runs (for measuring one thing; CI never sets it).
    [ -z "${PKTMAP_GUEST_EXTRA:-}" ] || PKTMAP_GUEST_RUNS+=$'\n'"$PKTMAP_GUEST_EXTRA"
    [ -z "${PKTMAP_GUEST_ONLY:-}" ] || PKTMAP_GUEST_RUNS="$PKTMAP_GUEST_ONLY"
    [ -x "$bin" ] || die "no guest program at $bin"
    check_static "$bin"
    PKTMAP_GUEST_BIN="$bin"
    # The 32-bit caller of `pktmap-guest trust` (compat_ioctl of the device and pool files).
    PKTMAP_COMPAT32_BIN="$PKTMAP_OUT/compat32"
    gcc -m32 -static -O2 -Wall -Wextra -Werror -I"$PKTMAP_REPO/include" \
        -o "$PKTMAP_COMPAT32_BIN" "$PKTMAP_REPO/scripts/guest/compat32.c" >"$log" 2>&1 || {
        cat "$log" >&2
        die "building scripts/guest/compat32.c (gcc -m32 -static) failed (log: $log)"
    }
    check_static "$PKTMAP_COMPAT32_BIN"
    export PKTMAP_GUEST_BIN PKTMAP_GUEST_RUNS PKTMAP_COMPAT_BIN PKTMAP_COMPAT32_BIN
}
