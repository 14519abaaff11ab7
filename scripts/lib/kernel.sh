# shellcheck shell=bash
# The debug guest kernel: Debian's linux-source-7.3 (the same source as the stock kernel),
# tinyconfig + scripts/kernel.config (KASAN, KFENCE, UBSAN, lockdep), built with Rust support
# in the trixie build root (lib/trixie.sh) by trixie's clang-19 (the LLVM of trixie's rustc):
# 7.3's `config RUST` has `depends on !KASAN || CC_IS_CLANG`, so a KASAN kernel with Rust
# cannot be built by gcc, as Debian's own (KASAN-less) kernels are. Built into
# $PKTMAP_CACHE/kernel-<key>, outside the checkout, and reused while the key matches.
# Sourced by scripts/guest-test after lib/common.sh and lib/trixie.sh.

PKTMAP_KERNEL_CONFIG="$PKTMAP_REPO/scripts/kernel.config"
PKTMAP_KERNEL_SERIES=7.3
# Bump when the build recipe below changes in a way the other key inputs do not show.
PKTMAP_KERNEL_RECIPE=3

# The make variables of the debug kernel and of modules built against it: clang-19, lld-19
# and llvm-19's tools (a module's C part must be compiled by the kernel's own compiler).
debug_make_vars() {
    printf '%s\n' LLVM=-19
}

# The key: everything that changes the kernel we would build.
kernel_key_inputs() {
    local pkg
    printf 'recipe=%s\n' "$PKTMAP_KERNEL_RECIPE"
    printf 'kernel.config=%s\n' "$(sha256sum <"$PKTMAP_KERNEL_CONFIG" | cut -d' ' -f1)"
    for pkg in "linux-source-$PKTMAP_KERNEL_SERIES" rustc rust-src bindgen clang-19 lld-19 llvm-19 dwarves; do
        printf '%s=%s\n' "$pkg" "$(trixie_version "$pkg")"
    done
}

kernel_key() {
    kernel_key_inputs | sha256sum | cut -c1-16
}

# Checks that every option the fragment sets (or unsets) is in the final .config: a line
# whose dependencies are not met is silently dropped by olddefconfig.
kernel_check_config() {
    local config="$1" line bad=0
    local name
    while IFS= read -r line; do
        case "$line" in
            CONFIG_*=*)
                grep -qxF "$line" "$config" && continue
                ;;
            "# CONFIG_"*" is not set")
                # Off, or not even visible any more: both fine.
                name="${line#\# }"
                name="${name%% *}"
                grep -qE "^$name=[ym]" "$config" || continue
                ;;
            *) continue ;;
        esac
        printf 'guest-test: kernel config: "%s" did not stick\n' "$line" >&2
        bad=1
    done <"$PKTMAP_KERNEL_CONFIG"
    return "$bad"
}

# Several runs may share one cache (other checkouts, other branches, at the same time). Each
# key has a lock file, $PKTMAP_CACHE/kernel-<key>.lock: a run holds it exclusively while it
# builds that key and shared while it uses the kernel (until the run exits), so a tree is
# never removed under a run that builds or boots it, and two runs of one key build it once.

# Whether nobody holds the lock of the kernel tree DIR (kernel-<key> or kernel-<key>.tmp.PID):
# takes it exclusively without waiting and lets go at once. A tree without a lock file was
# made before the locks; it counts as free.
kernel_tree_free() {
    local key="${1##*/kernel-}" lock
    key="${key%%.*}"
    lock="$PKTMAP_CACHE/kernel-$key.lock"
    [ -e "$lock" ] || return 0
    flock -n -x "$lock" true
}

# Removes half-built trees whose run is gone (its key's lock free and its PID dead), and
# finished kernels of other keys but the newest one, unless a run holds their lock. KEEP is
# this run's tree. The check and the removal are not one step: a run that takes a lock
# between them finds no `done` and builds again, it never boots a half-removed tree (it checks
# `done` only once it holds the lock, and `done` goes first).
kernel_prune() {
    local keep="$1" dir pid
    for dir in "$PKTMAP_CACHE"/kernel-*.tmp.*; do
        [ -d "$dir" ] || continue
        pid="${dir##*.}"
        kill -0 "$pid" 2>/dev/null && continue
        kernel_tree_free "$dir" && rm -rf "$dir"
    done
    local others=() kept=0
    # shellcheck disable=SC2012 # names are ours: kernel-<hex>, newest first
    mapfile -t others < <(ls -1dt "$PKTMAP_CACHE"/kernel-* 2>/dev/null || true)
    for dir in "${others[@]}"; do
        case "$dir" in *.tmp.* | *.lock | "$keep") continue ;; esac
        [ -d "$dir" ] || continue
        if [ "$kept" -lt 1 ]; then
            kept=1 # keep the newest other kernel, for switching branches back and forth
            continue
        fi
        if kernel_tree_free "$dir"; then
            rm -f "$dir/done"
            rm -rf "$dir"
        else
            say "kernel: keeping $dir (another run is using it)"
        fi
    done
}

# Builds the kernel into DIR.tmp.PID and renames it to DIR, so only a finished build is ever
# found at DIR. Everything runs in the trixie root, where the cache is /cache.
kernel_build() {
    local final="$1" tmp="$1.tmp.$$" in log vars
    mapfile -t vars < <(debug_make_vars)
    in="/cache/${tmp#"$PKTMAP_CACHE"/}"
    log="$tmp/build.log"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    kernel_key_inputs >"$tmp/key.txt"
    say "kernel: unpacking linux-source-$PKTMAP_KERNEL_SERIES"
    tar -xf "$PKTMAP_TRIXIE_ROOT/usr/src/linux-source-$PKTMAP_KERNEL_SERIES.tar.xz" -C "$tmp"
    mv "$tmp/linux-source-$PKTMAP_KERNEL_SERIES" "$tmp/linux"
    cp "$PKTMAP_KERNEL_CONFIG" "$tmp/fragment.config"
    {
        trixie_run "$PKTMAP_TRIXIE_ROOT" make -C "$in/linux" "${vars[@]}" rustavailable tinyconfig &&
            trixie_run "$PKTMAP_TRIXIE_ROOT" sh -c "cd $in/linux && scripts/kconfig/merge_config.sh -m .config ../fragment.config" &&
            trixie_run "$PKTMAP_TRIXIE_ROOT" make -C "$in/linux" "${vars[@]}" olddefconfig
    } >"$tmp/config.log" 2>&1 || {
        tail -n 30 "$tmp/config.log" >&2
        die "kernel configuration failed (log: $tmp/config.log)"
    }
    kernel_check_config "$tmp/linux/.config" || die "kernel config fragment did not apply"
    grep -qx 'CONFIG_RUST=y' "$tmp/linux/.config" || die "CONFIG_RUST is not enabled"
    say "kernel: make -j$PKTMAP_JOBS in the trixie root (log: $log)"
    trixie_run "$PKTMAP_TRIXIE_ROOT" make -C "$in/linux" "${vars[@]}" -j"$PKTMAP_JOBS" all \
        >"$log" 2>&1 || {
        tail -n 40 "$log" >&2
        die "kernel build failed (log: $log)"
    }
    [ -f "$tmp/linux/arch/x86/boot/bzImage" ] || die "no bzImage after the kernel build"
    [ -f "$tmp/linux/Module.symvers" ] || die "no Module.symvers after the kernel build"
    date -u +%FT%TZ >"$tmp/done"
    if ! mv -T "$tmp" "$final" 2>/dev/null; then
        rm -rf "$tmp" # another run finished the same key first; use its tree
    fi
}

# Sets PKTMAP_DEBUG_KDIR (the tree, as the host sees it) and PKTMAP_DEBUG_BZIMAGE to a built
# debug kernel for the current key, building it if needed.
ensure_kernel() {
    local key dir
    key="$(kernel_key)"
    dir="$PKTMAP_CACHE/kernel-$key"
    mkdir -p "$PKTMAP_CACHE"
    # Held (by this shell, so until the run exits) on a descriptor of its own: shared while this
    # run uses the kernel, exclusive while it builds it (kernel_prune).
    exec {PKTMAP_KERNEL_LOCK_FD}>>"$dir.lock"
    flock -s "$PKTMAP_KERNEL_LOCK_FD"
    if [ -f "$dir/done" ]; then
        say "kernel: cached ($dir)"
    else
        # Exclusive only to build: a run that builds the same key makes this one wait, and
        # then it finds `done`.
        flock -u "$PKTMAP_KERNEL_LOCK_FD"
        if ! flock -n -x "$PKTMAP_KERNEL_LOCK_FD"; then
            say "kernel: waiting for another run that builds this key ($dir.lock)"
            flock -x "$PKTMAP_KERNEL_LOCK_FD"
        fi
        if [ -f "$dir/done" ]; then
            say "kernel: built by another run ($dir)"
        else
            say "building the debug kernel (cold cache, ~12-20 min on 2 cores) into $dir"
            kernel_build "$dir"
        fi
        flock -s "$PKTMAP_KERNEL_LOCK_FD"
    fi
    kernel_prune "$dir"
    PKTMAP_DEBUG_KDIR="$dir/linux"
    PKTMAP_DEBUG_BZIMAGE="$PKTMAP_DEBUG_KDIR/arch/x86/boot/bzImage"
    export PKTMAP_DEBUG_KDIR PKTMAP_DEBUG_BZIMAGE
}
