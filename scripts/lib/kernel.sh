# shellcheck shell=bash
# The guest kernel: Debian's linux-source-6.12, tinyconfig + scripts/kernel.config, built
# with Rust support into $PKTMAP_CACHE/kernel-<key>, outside the checkout, and reused while
# the key matches. Sourced by scripts/guest-test after lib/common.sh and lib/deps.sh.

PKTMAP_KERNEL_CONFIG="$PKTMAP_REPO/scripts/kernel.config"
PKTMAP_KERNEL_TARBALL="/usr/src/linux-source-6.12.tar.xz"
# Bump when the build recipe below changes in a way the other key inputs do not show.
PKTMAP_KERNEL_RECIPE=2

# The make variables every kernel and module build gets: Debian's rustc, our bindgen, and
# clang-19 (LLVM=-19) as the C compiler: 6.12's CONFIG_RUST allows KASAN only with a clang-built
# kernel (`depends on !KASAN || CC_IS_CLANG`), so the module must be built by the same clang.
kernel_make_vars() {
    printf '%s\n' RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc "BINDGEN=$PKTMAP_BINDGEN" LLVM=-19
}

# The key: everything that changes the kernel we would build.
kernel_key_inputs() {
    printf 'recipe=%s\n' "$PKTMAP_KERNEL_RECIPE"
    printf 'linux-source-6.12=%s\n' "$(pkg_version linux-source-6.12)"
    printf 'kernel.config=%s\n' "$(sha256sum <"$PKTMAP_KERNEL_CONFIG" | cut -d' ' -f1)"
    printf 'rustc-web=%s\n' "$(pkg_version rustc-web)"
    printf 'bindgen=%s\n' "$("$PKTMAP_BINDGEN" --version)"
    printf 'gcc=%s\n' "$(gcc -dumpfullversion)"
    printf 'clang-19=%s\n' "$(pkg_version clang-19)"
    printf 'lld-19=%s\n' "$(pkg_version lld-19)"
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

# Removes half-built trees of runs that are gone, and kernels of other keys but the newest.
kernel_prune() {
    local keep="$1" dir pid
    for dir in "$PKTMAP_CACHE"/kernel-*.tmp.*; do
        [ -d "$dir" ] || continue
        pid="${dir##*.}"
        kill -0 "$pid" 2>/dev/null || rm -rf "$dir"
    done
    local others=()
    # shellcheck disable=SC2012 # names are ours: kernel-<hex>, newest first
    mapfile -t others < <(ls -1dt "$PKTMAP_CACHE"/kernel-* 2>/dev/null || true)
    local kept=0
    for dir in "${others[@]}"; do
        case "$dir" in *.tmp.* | "$keep") continue ;; esac
        if [ "$kept" -lt 1 ]; then
            kept=1 # keep the newest other kernel, for switching branches back and forth
            continue
        fi
        rm -rf "$dir"
    done
}

# Builds the kernel into DIR.tmp.PID and renames it to DIR, so only a finished build is ever
# found at DIR.
kernel_build() {
    local final="$1" tmp="$1.tmp.$$" src log vars
    mapfile -t vars < <(kernel_make_vars)
    log="$tmp/build.log"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    kernel_key_inputs >"$tmp/key.txt"
    say "kernel: unpacking $PKTMAP_KERNEL_TARBALL"
    tar -xf "$PKTMAP_KERNEL_TARBALL" -C "$tmp"
    mv "$tmp/linux-source-6.12" "$tmp/linux"
    src="$tmp/linux"
    {
        kmake -C "$src" "${vars[@]}" rustavailable &&
            kmake -C "$src" "${vars[@]}" tinyconfig &&
            (cd "$src" && scripts/kconfig/merge_config.sh -m .config "$PKTMAP_KERNEL_CONFIG") &&
            kmake -C "$src" "${vars[@]}" olddefconfig
    } >"$tmp/config.log" 2>&1 || {
        tail -n 30 "$tmp/config.log" >&2
        die "kernel configuration failed (log: $tmp/config.log)"
    }
    kernel_check_config "$src/.config" || die "kernel config fragment did not apply"
    grep -qx 'CONFIG_RUST=y' "$src/.config" || die "CONFIG_RUST is not enabled"
    say "kernel: make -j$PKTMAP_JOBS (log: $log)"
    kmake -C "$src" "${vars[@]}" -j"$PKTMAP_JOBS" all >"$log" 2>&1 || {
        tail -n 40 "$log" >&2
        die "kernel build failed (log: $log)"
    }
    [ -f "$src/arch/x86/boot/bzImage" ] || die "no bzImage after the kernel build"
    [ -f "$src/Module.symvers" ] || die "no Module.symvers after the kernel build"
    [ -x "$src/usr/gen_init_cpio" ] || die "no usr/gen_init_cpio after the kernel build"
    date -u +%FT%TZ >"$tmp/done"
    if ! mv -T "$tmp" "$final" 2>/dev/null; then
        rm -rf "$tmp" # another run finished the same key first; use its tree
    fi
}

# Sets PKTMAP_KDIR to a built kernel tree for the current key, building it if needed.
ensure_kernel() {
    local key dir
    [ -f "$PKTMAP_KERNEL_TARBALL" ] || die "$PKTMAP_KERNEL_TARBALL missing (linux-source-6.12)"
    key="$(kernel_key)"
    dir="$PKTMAP_CACHE/kernel-$key"
    mkdir -p "$PKTMAP_CACHE"
    if [ -f "$dir/done" ]; then
        say "kernel: cached ($dir)"
    else
        say "building kernel (cold cache, ~8-13 min) into $dir"
        kernel_build "$dir"
    fi
    kernel_prune "$dir"
    PKTMAP_KDIR="$dir/linux"
    PKTMAP_BZIMAGE="$PKTMAP_KDIR/arch/x86/boot/bzImage"
    export PKTMAP_KDIR PKTMAP_BZIMAGE
}
