# shellcheck shell=bash
# Debian's own kernel image and modules for the stock guest: `linux-binary-RELEASE` (vmlinuz)
# and `linux-modules-RELEASE` (the modules tree) from trixie-backports, fetched by the trixie
# build root's apt (its own apt state: the host's apt sources are never touched), unpacked
# into $PKTMAP_CACHE/stock-image-RELEASE-<key>, where the key is the two packages' versions.
# Sourced by scripts/guest-test after lib/common.sh and lib/trixie.sh.

# Bump when the recipe below changes in a way the key's other inputs do not show.
PKTMAP_STOCK_IMAGE_RECIPE=1

# The candidate version of PACKAGE in the build root's apt.
stock_image_version() {
    trixie_run "$PKTMAP_TRIXIE_ROOT" apt-cache show --no-all-versions "$1" |
        sed -n 's/^Version: //p'
}

# Downloads and unpacks the packages of RELEASE into DIR.tmp.PID, renamed to DIR when done.
stock_image_fetch() {
    local release="$1" final="$2" tmp="$2.tmp.$$" in log pkg
    in="/cache/${tmp#"$PKTMAP_CACHE"/}"
    log="$PKTMAP_OUT/stock-image.log"
    rm -rf "$tmp"
    mkdir -p "$tmp/debs" "$tmp/root"
    say "stock image: apt-get download linux-binary-$release linux-modules-$release (log: $log)"
    : >"$log"
    for pkg in "linux-binary-$release" "linux-modules-$release"; do
        trixie_run "$PKTMAP_TRIXIE_ROOT" sh -c "cd $in/debs && apt-get -o APT::Sandbox::User=root download $pkg && dpkg-deb -x $pkg*.deb $in/root" \
            >>"$log" 2>&1 || {
            tail -n 20 "$log" >&2
            die "fetching $pkg failed (log: $log)"
        }
    done
    rm -rf "$tmp/debs"
    [ -f "$tmp/root/usr/lib/modules/$release/vmlinuz" ] ||
        die "linux-binary-$release has no /usr/lib/modules/$release/vmlinuz"
    # modules.dep is made by the packages' postinst (depmod), which unpacking does not run.
    ln -s usr/lib "$tmp/root/lib"
    trixie_run "$PKTMAP_TRIXIE_ROOT" depmod -b "$in/root" "$release" >>"$log" 2>&1 ||
        die "depmod of the stock modules failed (log: $log)"
    date -u +%FT%TZ >"$tmp/done"
    if ! mv -T "$tmp" "$final" 2>/dev/null; then
        rm -rf "$tmp" # another run fetched the same versions first; use theirs
    fi
}

# Sets PKTMAP_STOCK_VMLINUZ and PKTMAP_STOCK_MODDIR (the unpacked modules tree of RELEASE,
# with its modules.dep),
# fetching them if needed.
ensure_stock_image() {
    local release="$1" key dir moddir
    key="$({
        printf 'recipe=%s\n' "$PKTMAP_STOCK_IMAGE_RECIPE"
        stock_image_version "linux-binary-$release"
        stock_image_version "linux-modules-$release"
    } | sha256sum | cut -c1-16)"
    dir="$PKTMAP_CACHE/stock-image-$release-$key"
    if [ -f "$dir/done" ]; then
        say "stock image: cached ($dir)"
    else
        stock_image_fetch "$release" "$dir"
    fi
    moddir="$dir/root/usr/lib/modules/$release"
    [ -f "$moddir/modules.dep" ] || die "no modules tree for $release in $dir"
    PKTMAP_STOCK_VMLINUZ="$moddir/vmlinuz"
    PKTMAP_STOCK_MODDIR="$moddir"
    export PKTMAP_STOCK_VMLINUZ PKTMAP_STOCK_MODDIR
}
