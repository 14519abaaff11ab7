# shellcheck shell=bash
# Build dependencies: Debian packages (installed only if missing) and bindgen-cli (cached).
# Sourced by scripts/guest-test after lib/common.sh.

# Debian 12 packages the pipeline needs. `rustc-web` (1.96) is the rustc the kernel build
# uses: `make rustavailable` accepts it and `rust-web-src` puts the `core` sources where its
# sysroot expects them (/usr/lib/rustlib/src/rust); `rust-web-clippy` is its clippy-driver,
# for the module's `CLIPPY=1` build. Installing qemu-system-x86 may remove qemu-utils (a
# backports version conflict); nothing here needs qemu-utils. `gcc-multilib` builds the static
# i386 program of the 32-bit checks (scripts/guest/compat32.c).
PKTMAP_APT_PACKAGES=(
    linux-source-6.12 rustc-web rust-web-src rust-web-clippy cargo-web libclang-dev clang libclang-19-dev
    clang-19 lld-19 llvm-19
    qemu-system-x86 busybox-static build-essential bc bison flex libelf-dev libssl-dev cpio
    gcc-multilib
)

# bindgen-cli: the kernel needs >= 0.65 and Debian 12 ships 0.60, so build it with cargo.
PKTMAP_BINDGEN_VERSION="${PKTMAP_BINDGEN_VERSION:-0.73.2}"
PKTMAP_BINDGEN="$PKTMAP_CACHE/bindgen-$PKTMAP_BINDGEN_VERSION/bin/bindgen"

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

pkg_version() {
    dpkg-query -W -f='${Version}' "$1"
}

ensure_apt_packages() {
    local missing=() pkg sudo=()
    for pkg in "${PKTMAP_APT_PACKAGES[@]}"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "apt: all ${#PKTMAP_APT_PACKAGES[@]} packages present"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing packages (${missing[*]}) and not root"
        sudo=(sudo)
    fi
    say "apt: installing ${missing[*]} (~1.5 min)"
    mkdir -p "$PKTMAP_OUT"
    run_logged "$PKTMAP_OUT/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get update || die "apt-get update failed"
    run_logged "$PKTMAP_OUT/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y "${missing[@]}" || die "apt-get install failed"
}

ensure_bindgen() {
    if [ -x "$PKTMAP_BINDGEN" ]; then
        say "bindgen: cached ($("$PKTMAP_BINDGEN" --version))"
        return
    fi
    local cargo root
    cargo="$(command -v cargo || true)"
    [ -n "$cargo" ] || cargo=/usr/bin/cargo
    [ -x "$cargo" ] || die "no cargo to build bindgen-cli with"
    say "bindgen: cargo install bindgen-cli $PKTMAP_BINDGEN_VERSION (cold cache, ~3-7 min)"
    mkdir -p "$PKTMAP_CACHE" "$PKTMAP_OUT"
    # Install into a private root and rename it, so an interrupted install is never used.
    root="$PKTMAP_CACHE/bindgen-$PKTMAP_BINDGEN_VERSION.tmp.$$"
    rm -rf "$root"
    run_logged "$PKTMAP_OUT/bindgen-install.log" "$cargo" install --locked \
        --version "$PKTMAP_BINDGEN_VERSION" --root "$root" bindgen-cli ||
        die "cargo install bindgen-cli failed"
    rm -f "$root/.crates.toml" "$root/.crates2.json"
    if ! mv -T "$root" "$PKTMAP_CACHE/bindgen-$PKTMAP_BINDGEN_VERSION" 2>/dev/null; then
        rm -rf "$root" # another run finished first; use its copy
    fi
    [ -x "$PKTMAP_BINDGEN" ] || die "bindgen missing after install"
}
