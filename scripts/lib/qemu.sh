# shellcheck shell=bash
# Boots the guest under QEMU (TCG; this machine's /dev/kvm cannot start a guest) with a hard
# timeout, keeps its serial console in $PKTMAP_OUT/console.log, and judges the run.
# Sourced by scripts/guest-test after lib/common.sh.

# KASAN, KFENCE, lockdep and DEBUG_VM make the guest several times slower than a plain one.
PKTMAP_QEMU_TIMEOUT="${PKTMAP_QEMU_TIMEOUT:-900}"
PKTMAP_QEMU_MEM="${PKTMAP_QEMU_MEM:-512M}"

# Lines that mean the kernel complained, whatever the tests said: WARN/BUG/Oops, any sanitizer
# report (KASAN and KFENCE reports start "BUG: KASAN:"/"BUG: KFENCE:", UBSAN's "UBSAN:"),
# lockdep, hung tasks and the OOM killer.
PKTMAP_KERNEL_TROUBLE='WARNING:|BUG:|Oops|Call Trace|Kernel panic|general protection fault|panicked at|UBSAN:|KASAN:|KFENCE:|INFO: task .* blocked|possible recursive locking|circular locking dependency|Out of memory|oom-kill'
# Lines the guest kernel must print, by track: on the debug track the sanitizers' banners, or
# they are not on and a clean log proves nothing (scripts/kernel.config enables them); on the
# stock track Debian's own banner, or it is not Debian's kernel that ran. 7.3's generic KASAN
# prints its banner without a "kasan: " prefix (mm/kasan/generic.c has no pr_fmt), so the line
# is matched as 7.3 prints it; lockdep's banner proves the lock validator is on.
PKTMAP_KERNEL_REQUIRED_DEBUG=('KernelAddressSanitizer initialized (generic)' 'kfence: initialized' 'Lock dependency validator:')
PKTMAP_KERNEL_REQUIRED_STOCK=('(debian-kernel@lists.debian.org)')
PKTMAP_KERNEL_REQUIRED=("${PKTMAP_KERNEL_REQUIRED_DEBUG[@]}")

# Prints the lines of the kernel log FILE that mean trouble (nothing if it is clean).
kernel_log_trouble() {
    grep -E "$PKTMAP_KERNEL_TROUBLE" "$1" | sort -u || true
}

# Prints each line the kernel log FILE must have but does not.
kernel_log_missing() {
    local want
    for want in "${PKTMAP_KERNEL_REQUIRED[@]}"; do
        grep -qF "$want" "$1" || printf '%s\n' "$want"
    done
}

# Checks the scanner itself, so a pattern typo cannot make every log look clean: each fake
# report must be caught, and a clean log with the sanitizers' banners must pass.
judge_self_test() {
    local dir line banner bad=0
    dir="$(mktemp -d)"
    # The banners exactly as the 7.3 debug kernel prints them (console.log of a debug run).
    printf '[    0.0] KernelAddressSanitizer initialized (generic)\n[    0.0] kfence: initialized - using 2097152 bytes for 255 objects at 0x(____ptrval____)-0x(____ptrval____)\n[    0.0] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar\n[    1.0] pktmap: /dev/pktmap registered\n' >"$dir/clean"
    if [ -n "$(kernel_log_trouble "$dir/clean")" ] || [ -n "$(kernel_log_missing "$dir/clean")" ]; then
        echo "guest-test: the log scanner rejects a clean log" >&2
        bad=1
    fi
    for line in \
        'BUG: KASAN: slab-use-after-free in pktmap_fault+0x42/0x100 [pktmap]' \
        'BUG: KFENCE: out-of-bounds read in pktmap_read+0x10/0x80 [pktmap]' \
        'UBSAN: shift-out-of-bounds in drivers/pktmap.rs:12:5' \
        'WARNING: CPU: 1 PID: 42 at mm/memory.c:1234 insert_page+0x1/0x2' \
        'general protection fault, probably for non-canonical address 0xdead' \
        'Out of memory: Killed process 42 (guest-test)'; do
        cp "$dir/clean" "$dir/fake"
        printf '[    2.0] %s\n' "$line" >>"$dir/fake"
        if [ -z "$(kernel_log_trouble "$dir/fake")" ]; then
            printf 'guest-test: the log scanner misses: %s\n' "$line" >&2
            bad=1
        fi
    done
    for banner in KernelAddressSanitizer kfence 'Lock dependency'; do
        grep -v "$banner" "$dir/clean" >"$dir/without"
        if [ -z "$(kernel_log_missing "$dir/without")" ]; then
            printf "guest-test: the log scanner accepts a log without the %s banner\n" "$banner" >&2
            bad=1
        fi
    done
    rm -rf "$dir"
    return "$bad"
}

boot_guest() {
    local log="$PKTMAP_OUT/console.log" rc=0
    PKTMAP_CONSOLE="$log"
    export PKTMAP_CONSOLE
    if [ "${PKTMAP_TRACK:-debug}" = stock ]; then
        PKTMAP_KERNEL_REQUIRED=("${PKTMAP_KERNEL_REQUIRED_STOCK[@]}" "Linux version $PKTMAP_STOCK_RELEASE ")
    else
        PKTMAP_KERNEL_REQUIRED=("${PKTMAP_KERNEL_REQUIRED_DEBUG[@]}")
    fi
    # oops=panic + panic=-1: an oops ends the run at once instead of hanging a test.
    # no5lvl: 4-level paging, as on the servers pktmap targets. With `-cpu max` (LA57) this
    # 6.12 KASAN kernel sometimes reported a wild-memory-access from the first timer interrupt
    # while identify_boot_cpu() re-read the CPU features, long before pktmap loads (2 of 5
    # boots under load, 2026-12-02); none in the boots since with 4-level paging.
    # page_poison=1: freed pages are filled with a pattern that is checked when they are next
    # allocated, so a store through an entry left to freed memory is reported (`pktmap-guest
    # trust`, the failing contiguous mmap).
    timeout --kill-after=10 "$PKTMAP_QEMU_TIMEOUT" qemu-system-x86_64 \
        -accel tcg -cpu max -smp 2 -m "$PKTMAP_QEMU_MEM" \
        -nographic -no-reboot \
        -kernel "$PKTMAP_BZIMAGE" -initrd "$PKTMAP_INITRAMFS" \
        -append "console=ttyS0 panic=-1 oops=panic no5lvl page_poison=1" \
        </dev/null 2>&1 | stdbuf -oL tr -d '\r' >"$log" || rc=$? # pipefail: QEMU's status; line-buffered, so a long soak shows progress
    PKTMAP_QEMU_RC="$rc"
    export PKTMAP_QEMU_RC
}

# Copies each file the guest sent (`pktmap-guest: file NAME begin` ... `end` on the console)
# to $PKTMAP_OUT/NAME, after removing what an earlier run left there; fails unless every name
# in PKTMAP_GUEST_FILES arrived.
collect_guest_files() {
    local name ok=0
    for name in ${PKTMAP_GUEST_FILES:-}; do
        rm -f "${PKTMAP_OUT:?}/$name"
    done
    awk -v dir="$PKTMAP_OUT" '
        /^pktmap-guest: file [A-Za-z0-9._-]+ begin$/ { out = dir "/" $3; printf "" >out; next }
        /^pktmap-guest: file [A-Za-z0-9._-]+ end$/ { if (out != "") close(out); out = ""; next }
        out != "" { print >out }
    ' "$PKTMAP_CONSOLE" || return 1
    for name in ${PKTMAP_GUEST_FILES:-}; do
        if [ -s "$PKTMAP_OUT/$name" ]; then
            say "guest file: $PKTMAP_OUT/$name"
        else
            printf 'guest-test: the guest sent no %s\n' "$name" >&2
            ok=1
        fi
    done
    return "$ok"
}

# The letters of a /proc/sys/kernel/tainted value (O: out-of-tree module, E: unsigned module
# where signatures are checked; W: a warning, which the log scan fails anyway).
taint_flags() {
    local value="$1" letters="PFSRMBUDAWCIOELKXTN" out="" i
    for ((i = 0; i < ${#letters}; i++)); do
        ((value >> i & 1)) && out+="${letters:i:1}"
    done
    printf '%s' "${out:-none}"
}

# Prints the guest's results and sets PKTMAP_CLOSING to the runs' summed
# `N passed, M failed` (plus one failure if anything else went wrong); returns non-zero unless
# everything passed.
judge_guest() {
    local log="$PKTMAP_CONSOLE" ok=1 trouble missing section runs closings exits
    local passed=0 failed=0 not_run=0 line
    if [ "$PKTMAP_QEMU_RC" -eq 124 ] || [ "$PKTMAP_QEMU_RC" -eq 137 ]; then
        printf 'guest-test: QEMU timed out after %ss\n' "$PKTMAP_QEMU_TIMEOUT" >&2
        ok=0
    elif [ "$PKTMAP_QEMU_RC" -ne 0 ]; then
        printf 'guest-test: QEMU exited with %s\n' "$PKTMAP_QEMU_RC" >&2
        ok=0
    fi
    # The test program's own lines (kernel messages may interleave; they are kept).
    section="$(sed -n '/^pktmap-guest: tests begin$/,/^pktmap-guest: tests end$/p' "$log")"
    [ -z "$section" ] || printf '%s\n' "$section" | grep -v '^pktmap-guest: tests ' || true
    local mod taint
    while read -r mod; do
        [ -n "$mod" ] || continue
        grep -qxF "pktmap-guest: modprobe ok $mod" "$log" || {
            echo "guest-test: the kernel's own module $mod did not load" >&2
            ok=0
        }
    done <"$PKTMAP_OUT/guest-modules"
    grep -q '^pktmap-guest: insmod ok$' "$log" || {
        echo "guest-test: the module did not load" >&2
        ok=0
    }
    taint="$(sed -n 's/^pktmap-guest: tainted \([0-9]*\)$/\1/p' "$log" | head -n1)"
    [ -z "$taint" ] || say "taint after insmod: $taint ($(taint_flags "$taint"))"
    grep -q '^pktmap-guest: rmmod ok$' "$log" || {
        echo "guest-test: rmmod pktmap did not succeed" >&2
        ok=0
    }
    grep -q '^pktmap-guest: done$' "$log" || {
        echo "guest-test: the guest did not reach the end of /init" >&2
        ok=0
    }
    trouble="$(kernel_log_trouble "$log")"
    if [ -n "$trouble" ]; then
        printf 'guest-test: the guest kernel log has trouble:\n%s\n' "$trouble" >&2
        ok=0
    fi
    missing="$(kernel_log_missing "$log")"
    if [ -n "$missing" ]; then
        printf 'guest-test: the guest kernel never printed (sanitizer off?):\n%s\n' "$missing" >&2
        ok=0
    fi
    # Every run must print its closing line and exit 0; the closing lines are summed.
    runs="$(printf '%s\n' "$section" | grep -c '^pktmap-guest: run /' || true)"
    exits="$(printf '%s\n' "$section" | grep -c '^pktmap-guest: run exit 0$' || true)"
    closings="$(printf '%s\n' "$section" | grep -E '^[0-9]+ passed, [0-9]+ failed' || true)"
    while IFS= read -r line; do
        [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || continue
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        [[ "$line" =~ ,\ ([0-9]+)\ not\ run$ ]] && not_run=$((not_run + BASH_REMATCH[1]))
    done <<<"$closings"
    if [ "$runs" -eq 0 ]; then
        echo "guest-test: the guest program never ran" >&2
        ok=0
    elif [ "$(printf '%s\n' "$closings" | grep -c . || true)" -ne "$runs" ]; then
        echo "guest-test: a guest run printed no 'N passed, M failed' line" >&2
        ok=0
    fi
    if [ "$exits" -ne "$runs" ]; then
        echo "guest-test: a guest run exited non-zero" >&2
        ok=0
    fi
    collect_guest_files || ok=0
    if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
        ok=0
    fi
    if [ "$ok" -ne 1 ]; then
        printf -- '--- last 60 lines of %s ---\n' "$log" >&2
        tail -n 60 "$log" >&2
    fi
    # A run that failed for another reason (a kernel warning, rmmod, a crash) counts one more
    # failure, so the closing line never reads as a clean pass.
    if [ "$ok" -ne 1 ] && [ "$failed" -eq 0 ]; then
        echo "guest-test: counting the failure above as 1 failed" >&2
        failed=1
    fi
    PKTMAP_CLOSING="$passed passed, $failed failed"
    # Checks this kernel cannot run (the guest printed `NOT RUN` and why): counted apart.
    if [ "$not_run" -gt 0 ]; then
        PKTMAP_CLOSING+=", $not_run not run"
        printf '%s\n' "$section" | grep '^NOT RUN ' | sed 's/^/guest-test: /' >&2 || true
    fi
    export PKTMAP_CLOSING
    [ "$ok" -eq 1 ]
}
