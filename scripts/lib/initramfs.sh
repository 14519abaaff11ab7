# shellcheck shell=bash
# The initramfs of one track: busybox, scripts/guest/init as /init, pktmap.ko, the guest
# program, the first round's C program (/compat-round1) and the static i386 caller /compat32,
# the static `pktmap` (/pktmap, for the bench run), /guest-runs (one command line per run),
# the booted kernel's .config (/kernel.config: what `pktmap-guest trust` reads to tell a
# kernel built without fault injection from a broken one) and, on the stock track, Debian's
# own modules the guest loads first (/guest-modules, one path per line, dependencies first),
# packed by the kernel source's usr/gen_init_cpio (device nodes without root, and the same
# bytes every time). Sourced by scripts/guest-test after lib/common.sh and lib/trixie.sh.

# Modules of Debian's tree that the stock guest loads (=m in Debian's config): the packet
# work's veth pairs and pktgen.
PKTMAP_STOCK_MODULES=(veth pktgen)

# Compiles usr/gen_init_cpio.c of the build root's linux-source (a single C file) for the host.
ensure_gen_init_cpio() {
    local src="$PKTMAP_OUT/gen_init_cpio.c"
    PKTMAP_GEN_INIT_CPIO="$PKTMAP_OUT/gen_init_cpio"
    [ -x "$PKTMAP_GEN_INIT_CPIO" ] && return
    tar -xOf "$PKTMAP_TRIXIE_ROOT/usr/src/linux-source-$PKTMAP_KERNEL_SERIES.tar.xz" \
        "linux-source-$PKTMAP_KERNEL_SERIES/usr/gen_init_cpio.c" >"$src" ||
        die "no usr/gen_init_cpio.c in linux-source-$PKTMAP_KERNEL_SERIES"
    cc -O2 -o "$PKTMAP_GEN_INIT_CPIO" "$src" || die "compiling gen_init_cpio failed"
}

# Prints the initramfs spec lines for MODULE of the stock modules tree and its dependencies
# (modules.dep), each unpacked from .ko.xz into $PKTMAP_OUT/modules, and appends their guest
# paths, dependencies first, to $PKTMAP_OUT/guest-modules.
stock_module_spec() {
    local name="$1" line path deps dep i
    line="$(grep -E "(^|/)$name\\.ko(\\.xz)?:" "$PKTMAP_STOCK_MODDIR/modules.dep")" ||
        die "module $name is not in Debian's modules tree"
    path="${line%%:*}"
    read -r -a deps <<<"${line#*:}"
    # modules.dep lists what a module needs with the deepest dependency last.
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
        dep="${deps[$i]##*/}"
        stock_module_spec "${dep%%.ko*}"
    done
    grep -qxF "/modules/${path##*/}" "$PKTMAP_OUT/guest-modules" 2>/dev/null && return
    mkdir -p "$PKTMAP_OUT/modules"
    case "$path" in
        *.xz) xz -dc "$PKTMAP_STOCK_MODDIR/$path" >"$PKTMAP_OUT/modules/$name.ko" ;;
        *) cp "$PKTMAP_STOCK_MODDIR/$path" "$PKTMAP_OUT/modules/$name.ko" ;;
    esac
    printf 'file /modules/%s.ko %s 0644 0 0\n' "$name" "$PKTMAP_OUT/modules/$name.ko"
    printf '/modules/%s.ko\n' "$name" >>"$PKTMAP_OUT/guest-modules"
}

build_initramfs() {
    local spec="$PKTMAP_OUT/initramfs.list" busybox name
    busybox="$(command -v busybox || true)"
    [ -n "$busybox" ] || busybox=/bin/busybox
    # busybox-static's binary must not need a loader in the guest.
    check_static "$busybox"
    ensure_gen_init_cpio
    printf '%s\n' "$PKTMAP_GUEST_RUNS" >"$PKTMAP_OUT/guest-runs"
    : >"$PKTMAP_OUT/guest-modules"
    cat >"$spec" <<SPEC
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /bin 0755 0 0
dir /sbin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
dir /modules 0755 0 0
file /bin/busybox $busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $PKTMAP_REPO/scripts/guest/init 0755 0 0
file /pktmap.ko $PKTMAP_KO 0644 0 0
file /guest-test $PKTMAP_GUEST_BIN 0755 0 0
file /compat-round1 $PKTMAP_COMPAT_BIN 0755 0 0
file /compat32 $PKTMAP_COMPAT32_BIN 0755 0 0
file /guest-runs $PKTMAP_OUT/guest-runs 0644 0 0
file /kernel.config $PKTMAP_KCONFIG 0644 0 0
SPEC
    if [ "$PKTMAP_TRACK" = stock ]; then
        for name in "${PKTMAP_STOCK_MODULES[@]}"; do
            stock_module_spec "$name" >>"$spec"
        done
    fi
    printf 'file /guest-modules %s 0644 0 0\n' "$PKTMAP_OUT/guest-modules" >>"$spec"
    [ -z "${PKTMAP_BENCH_BIN:-}" ] || printf 'file /pktmap %s 0755 0 0\n' "$PKTMAP_BENCH_BIN" >>"$spec"
    PKTMAP_INITRAMFS="$PKTMAP_OUT/initramfs.cpio.gz"
    "$PKTMAP_GEN_INIT_CPIO" "$spec" | gzip -1 >"$PKTMAP_INITRAMFS" ||
        die "packing the initramfs failed"
    export PKTMAP_INITRAMFS
}
