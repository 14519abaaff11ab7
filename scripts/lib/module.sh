# shellcheck shell=bash
# pktmap.ko: built from a copy of driver/kmod and driver/abi/src (so the checkout stays clean
# and the module's `#[path = "../abi/src"]` resolves the same way), with the kernel's clippy
# lints on and warnings as errors.
# Sourced by scripts/guest-test after lib/common.sh, lib/deps.sh and lib/kernel.sh.

# Compiles scripts/layout: it only builds if the C layouts driver/kmod/sys/miscdevice.rs
# declares by hand match the headers.
check_layouts() {
    local build="$PKTMAP_OUT/layout-build" vars log="$PKTMAP_OUT/layout-build.log"
    mapfile -t vars < <(kernel_make_vars)
    rm -rf "$build"
    cp -a "$PKTMAP_REPO/scripts/layout" "$build"
    kmake -C "$PKTMAP_KDIR" M="$build" "${vars[@]}" modules >"$log" 2>&1 || {
        cat "$log" >&2
        die "struct layouts in driver/kmod/sys/miscdevice.rs no longer match the kernel headers"
    }
}

# PKTMAP_KMOD_SRC: build the module from this directory's driver/kmod and driver/abi instead of
# the checkout's (for A/B measurements of a variant; the guest program is still the checkout's).
build_module() {
    local build="$PKTMAP_OUT/kmod-build" vars log src="${PKTMAP_KMOD_SRC:-$PKTMAP_REPO}"
    mapfile -t vars < <(kernel_make_vars)
    log="$PKTMAP_OUT/module-build.log"
    rm -rf "$build"
    mkdir -p "$build/driver/kmod" "$build/driver/abi"
    [ "$src" = "$PKTMAP_REPO" ] || say "module: building from $src (PKTMAP_KMOD_SRC)"
    cp -a "$src/driver/kmod/." "$build/driver/kmod/"
    cp -a "$src/driver/abi/src" "$build/driver/abi/src"
    # CLIPPY=1: the kernel's clippy lints (undocumented_unsafe_blocks, …) on the module and
    # the shared codec; clippy-driver also compiles, so this is the one build.
    kmake -C "$build/driver/kmod" KDIR="$PKTMAP_KDIR" "${vars[@]}" KRUSTFLAGS=-Dwarnings \
        CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver >"$log" 2>&1 || {
        cat "$log" >&2
        die "module build failed (log: $log)"
    }
    # rustc warnings are already errors; modpost and C warnings are not, so look for them.
    if grep -E '(^|[^A-Za-z])(warning|WARNING):' "$log" >&2; then
        die "module build printed warnings (log: $log)"
    fi
    PKTMAP_KO="$build/driver/kmod/pktmap.ko"
    [ -f "$PKTMAP_KO" ] || die "no pktmap.ko after the module build"
    export PKTMAP_KO
}
