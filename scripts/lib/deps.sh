# shellcheck shell=bash
# The host's Debian packages (installed only if missing). Everything kernel-side is built in
# the trixie build root (lib/trixie.sh), so the host only needs to make that root, boot QEMU,
# and pack the initramfs.
# Sourced by scripts/guest-test after lib/common.sh.

# debootstrap makes the trixie root (bookworm's knows trixie); qemu-system-x86 and
# busybox-static run the guests; build-essential compiles the kernel's usr/gen_init_cpio for
# the host; xz-utils unpacks Debian's modules (.ko.xz) for the initramfs; kmod reads their
# vermagic; gcc-multilib builds the static i386 program of the 32-bit checks
# (scripts/guest/compat32.c).
PKTMAP_APT_PACKAGES=(
    debootstrap qemu-system-x86 busybox-static build-essential cpio xz-utils kmod gcc-multilib
)

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
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
    say "apt: installing ${missing[*]} (~1 min)"
    mkdir -p "$PKTMAP_OUT"
    run_logged "$PKTMAP_OUT/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get update || die "apt-get update failed"
    run_logged "$PKTMAP_OUT/apt.log" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y "${missing[@]}" || die "apt-get install failed"
}
