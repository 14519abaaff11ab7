# shellcheck shell=bash
# The trixie build root: a Debian 13 (trixie) system made with debootstrap from Debian's
# archive, with trixie-backports enabled, cached in $PKTMAP_CACHE/trixie-root-<key> and reused
# while the key matches. Debian's Rust-enabled kernels come from trixie-backports, and a module
# for them must be built with trixie's own rustc (the Rust symbol hashes cover rustc's full
# version string), which needs trixie's glibc: this is the machine a user on trixie has.
# Sourced by scripts/guest-test (and scripts/build-stock-module's callers) after lib/common.sh.

PKTMAP_TRIXIE_MIRROR="${PKTMAP_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
# Bump when the recipe below changes in a way the key's other inputs do not show.
PKTMAP_TRIXIE_RECIPE=1
# What a user installs to build pktmap.ko for the backports kernel (driver/kmod/README.md
# lists the same; scripts/build-stock-module checks for them): trixie's rustc, its rust-src
# and clippy, bindgen, the compiler Debian's kernel was built with (gcc-14), the kernel build's
# tools, dwarves (pahole; without it olddefconfig drops BTF) and openssl (without the command,
# olddefconfig drops OPENSSL_SUPPORTS_ML_DSA): the config must come out as Debian's; python3
# (resolve_btfids generates a header with it in modules_prepare).
# clang-19, lld-19 and llvm-19 build the debug kernel (lib/kernel.sh says why not gcc).
PKTMAP_TRIXIE_PACKAGES=(
    rustc rust-src rust-clippy bindgen gcc-14 make flex bison bc libelf-dev libssl-dev dwarves
    xz-utils kmod cpio openssl python3 clang-19 lld-19 llvm-19
)

# The key: everything that changes the root we would make (the archive moves on too: each
# root records the versions it got in versions.txt, and the kernel caches key on those).
trixie_key() {
    {
        printf 'recipe=%s\nmirror=%s\n' "$PKTMAP_TRIXIE_RECIPE" "$PKTMAP_TRIXIE_MIRROR"
        printf 'package=%s\n' "${PKTMAP_TRIXIE_PACKAGES[@]}" "$@"
    } | sha256sum | cut -c1-16
}

# Runs a command inside ROOT as root: a private mount namespace with /proc (objtool reads
# /proc/self), /dev and /sys, $PKTMAP_CACHE at /cache, $PKTMAP_OUT at /out and the checkout
# at /pktmap; all the mounts vanish with the namespace, so nothing is left mounted when a run
# is killed.
trixie_run() {
    local root="$1"
    shift
    mkdir -p "$root/cache" "$root/out" "$root/pktmap" "$PKTMAP_CACHE" "$PKTMAP_OUT"
    unshare --mount --mount-proc="$root/proc" -- sh -c '
        root="$1" cache="$2" out="$3" repo="$4"
        shift 4
        mount --make-rprivate / &&
            mount --rbind /dev "$root/dev" &&
            mount --rbind /sys "$root/sys" &&
            mount --bind "$cache" "$root/cache" &&
            mount --bind "$out" "$root/out" &&
            mount --bind "$repo" "$root/pktmap" &&
            exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' trixie-run "$root" "$PKTMAP_CACHE" "$PKTMAP_OUT" "$PKTMAP_REPO" "$@"
}

# Makes the root in DIR.tmp.PID and renames it to DIR. Extra arguments are packages to
# install from trixie-backports (the kernel's linux-source and headers).
trixie_build() {
    local final="$1" tmp="$1.tmp.$$" log
    shift
    log="$PKTMAP_OUT/trixie-root.log"
    rm -rf "$tmp"
    mkdir -p "$tmp" "$PKTMAP_OUT"
    say "trixie root: debootstrap from $PKTMAP_TRIXIE_MIRROR (cold cache, ~4-6 min; log: $log)"
    run_logged "$log" debootstrap --variant=minbase trixie "$tmp" "$PKTMAP_TRIXIE_MIRROR" ||
        die "debootstrap trixie failed"
    # dpkg syncs every file it unpacks; rust-src alone is tens of thousands. A half-made root
    # is never used (tmp + rename), so skip the syncs.
    echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/pktmap-unsafe-io"
    cat >"$tmp/etc/apt/sources.list" <<SOURCES
deb $PKTMAP_TRIXIE_MIRROR trixie main
deb $PKTMAP_TRIXIE_MIRROR trixie-backports main
SOURCES
    # The build root's apt never asks, never recommends, and keeps no downloaded .debs.
    printf 'APT::Install-Recommends "false";\nAPT::Get::Assume-Yes "true";\n' \
        >"$tmp/etc/apt/apt.conf.d/90pktmap"
    {
        trixie_run "$tmp" apt-get update &&
            trixie_run "$tmp" env DEBIAN_FRONTEND=noninteractive \
                apt-get install "${PKTMAP_TRIXIE_PACKAGES[@]}" &&
            { [ "$#" -eq 0 ] || trixie_run "$tmp" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -t trixie-backports "$@"; } &&
            trixie_run "$tmp" apt-get clean
    } >>"$log" 2>&1 || {
        tail -n 30 "$log" >&2
        die "installing the build root's packages failed (log: $log)"
    }
    trixie_run "$tmp" dpkg-query -W -f '${Package}=${Version}\n' >"$tmp/versions.txt"
    date -u +%FT%TZ >"$tmp/done"
    if ! mv -T "$tmp" "$final" 2>/dev/null; then
        rm -rf "$tmp" # another run made the same root first; use it
    fi
}

# Sets PKTMAP_TRIXIE_ROOT to a finished root with the build packages and PACKAGES from
# trixie-backports, making it if needed.
ensure_trixie_root() {
    local dir
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
    dir="$PKTMAP_CACHE/trixie-root-$(trixie_key "$@")"
    mkdir -p "$PKTMAP_CACHE"
    if [ -f "$dir/done" ]; then
        say "trixie root: cached ($dir)"
    else
        trixie_build "$dir" "$@"
    fi
    PKTMAP_TRIXIE_ROOT="$dir"
    export PKTMAP_TRIXIE_ROOT
}

# The version of PACKAGE in the build root.
trixie_version() {
    sed -n "s/^$1=//p" "$PKTMAP_TRIXIE_ROOT/versions.txt"
}
