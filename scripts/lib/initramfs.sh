# shellcheck shell=bash
# The initramfs: busybox, scripts/guest/init as /init, pktmap.ko, the guest program, the
# first round's C program (/compat-round1) and the static i386 caller /compat32, the
# static `pktmap` (/pktmap, for the bench run) and /guest-runs (one command line per run),
# packed by the kernel tree's own usr/gen_init_cpio (device nodes without root, and the same
# bytes every time). Sourced by scripts/guest-test after lib/common.sh and lib/kernel.sh.

build_initramfs() {
    local spec="$PKTMAP_OUT/initramfs.list" busybox
    busybox="$(command -v busybox || true)"
    [ -n "$busybox" ] || busybox=/bin/busybox
    # busybox-static's binary must not need a loader in the guest.
    check_static "$busybox"
    printf '%s\n' "$PKTMAP_GUEST_RUNS" >"$PKTMAP_OUT/guest-runs"
    cat >"$spec" <<SPEC
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /bin 0755 0 0
dir /sbin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
file /bin/busybox $busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $PKTMAP_REPO/scripts/guest/init 0755 0 0
file /pktmap.ko $PKTMAP_KO 0644 0 0
file /guest-test $PKTMAP_GUEST_BIN 0755 0 0
file /compat-round1 $PKTMAP_COMPAT_BIN 0755 0 0
file /compat32 $PKTMAP_COMPAT32_BIN 0755 0 0
file /guest-runs $PKTMAP_OUT/guest-runs 0644 0 0
SPEC
    [ -z "${PKTMAP_BENCH_BIN:-}" ] || printf 'file /pktmap %s 0755 0 0\n' "$PKTMAP_BENCH_BIN" >>"$spec"
    PKTMAP_INITRAMFS="$PKTMAP_OUT/initramfs.cpio.gz"
    "$PKTMAP_KDIR/usr/gen_init_cpio" "$spec" | gzip -1 >"$PKTMAP_INITRAMFS" ||
        die "packing the initramfs failed"
    export PKTMAP_INITRAMFS
}
