# shellcheck shell=bash
# `pktmap bench --device /dev/pktmap` inside the guest, against pktmap.ko: the static `pktmap`
# binary (/pktmap in the initramfs) and the one guest run that measures the driver's eager and
# lazy pools. Its `--check` prints one `ok`/`FAIL` line per pool cell (the faults the driver
# served and the minor faults, per phase: counts, never times) and `N passed, M failed`, which
# lib/qemu.sh sums with the other runs. The report files it writes under /out in the guest come
# back through the console into $PKTMAP_OUT (see collect_guest_files in lib/qemu.sh).
#
#   default              --quick, pools only, up to 2 MiB, and the packet cells (5000 frames a
#                        cell, their delivered + dropped == sent checks): seconds;
#                        bench-quick.{md,json}
#   PKTMAP_BENCH=1       the full matrix (scripts/guest-test --bench [ARGS...]; ARGS go into
#                        PKTMAP_BENCH_ARGS); bench.{md,json,svg}
#
# Sourced by scripts/guest-test after lib/common.sh and lib/guest-prog.sh.

PKTMAP_BENCH="${PKTMAP_BENCH:-}"
# Extra `pktmap bench` arguments for the full run (scripts/guest-test --bench ARGS...).
PKTMAP_BENCH_ARGS=()

# Builds the `pktmap` binary of the tools crate (tools/, package pktmap-tools) statically into
# target/x86_64-unknown-linux-gnu/release/pktmap and sets PKTMAP_BENCH_BIN.
build_bench_program() {
    local log="$PKTMAP_OUT/bench-program-build.log" bin
    mkdir -p "$PKTMAP_OUT"
    say "bench program: cargo build -p pktmap-tools --bin pktmap (static)"
    (
        cd "$PKTMAP_REPO"
        RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p pktmap-tools \
            --bin pktmap --target "$PKTMAP_GUEST_TARGET"
    ) >"$log" 2>&1 || {
        cat "$log" >&2
        die "building pktmap failed (log: $log)"
    }
    bin="${CARGO_TARGET_DIR:-$PKTMAP_REPO/target}/$PKTMAP_GUEST_TARGET/release/pktmap"
    [ -x "$bin" ] || die "no pktmap binary at $bin"
    check_static "$bin"
    PKTMAP_BENCH_BIN="$bin"
    export PKTMAP_BENCH_BIN
}

# Appends the bench run to PKTMAP_GUEST_RUNS and names the files it must send back in
# PKTMAP_GUEST_FILES. /init splits each run line on whitespace (no quoting), so an argument
# with a space in it is refused here.
add_bench_run() {
    local run=(/pktmap bench --device /dev/pktmap --check) arg name
    if [ -n "$PKTMAP_BENCH" ]; then
        name=bench
        run+=(--plot "/out/$name.svg")
        PKTMAP_GUEST_FILES="$name.md $name.json $name.svg"
        run+=("${PKTMAP_BENCH_ARGS[@]}")
    else
        name=bench-quick
        # The packet cells too, pktmap's rings and the peers (a few thousand frames a cell):
        # their accounting checks.
        run+=(--quick --only "pktmap-eager,pktmap-lazy,pktmap-lazy16,pktmap-contig,pktmap-huge,packets"
            --frames 5000 --no-plot)
        PKTMAP_GUEST_FILES="$name.md $name.json"
    fi
    run+=(--markdown-out "/out/$name.md" --json-out "/out/$name.json")
    for arg in "${run[@]}"; do
        case "$arg" in
            *[[:space:]]*) die "bench argument with whitespace: '$arg' (/init splits on it)" ;;
        esac
    done
    PKTMAP_GUEST_RUNS="${PKTMAP_GUEST_RUNS:+$PKTMAP_GUEST_RUNS$'\n'}${run[*]}"
    export PKTMAP_GUEST_RUNS PKTMAP_GUEST_FILES
}
