# shellcheck shell=bash
# A stock Debian kernel's build tree for out-of-tree Rust modules, made the way a user on
# trixie makes it: Debian's `linux-source-X.Y` unpacked, the `.config` and `Module.symvers` of
# Debian's `linux-headers-RELEASE` copied in, and `make modules_prepare` run with the compiler
# Debian built the kernel with (the headers package has no `rust/` metadata, so the kernel
# crate must be compiled again, by the same rustc, to match the `Module.symvers` hashes).
# Cached in $PKTMAP_CACHE/stock-RELEASE-<key>. Sourced by scripts/build-stock-module (on trixie,
# or in the trixie build root) after lib/common.sh.

# Bump when the recipe below changes in a way the key's other inputs do not show.
PKTMAP_STOCK_RECIPE=1

# The make variables of every build against a stock tree: Debian builds its kernels with
# gcc-14 by the triplet name (CONFIG_CC_VERSION_TEXT; plain `gcc` would rewrite it).
stock_make_vars() {
    printf '%s\n' CROSS_COMPILE=x86_64-linux-gnu- CC=x86_64-linux-gnu-gcc-14
}

# The version of an installed Debian package, or "-".
stock_pkg_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || printf -- '-'
}

# Everything that changes the tree we would prepare for RELEASE.
stock_key_inputs() {
    local release="$1" headers="/usr/src/linux-headers-$1"
    printf 'recipe=%s\nrelease=%s\n' "$PKTMAP_STOCK_RECIPE" "$release"
    printf 'config=%s\n' "$(sha256sum <"$headers/.config" | cut -d' ' -f1)"
    printf 'symvers=%s\n' "$(sha256sum <"$headers/Module.symvers" | cut -d' ' -f1)"
    printf 'source=%s\n' "$(stock_pkg_version "$PKTMAP_STOCK_SOURCE_PKG")"
    printf 'rustc=%s\n' "$(rustc --version)"
    printf 'bindgen=%s\n' "$(bindgen --version)"
    printf 'gcc=%s\n' "$(x86_64-linux-gnu-gcc-14 --version | head -n1)"
    printf 'pahole=%s\n' "$(pahole --version)"
}

# `CONFIG_NAME` of a .config, without the quotes.
stock_config_value() {
    sed -n "s/^$1=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" "$2"
}

# Checks what a user on trixie must have before anything is built, and says what to install.
stock_check_tools() {
    local release="$1" headers="/usr/src/linux-headers-$1" want have tool missing=()
    for tool in rustc bindgen x86_64-linux-gnu-gcc-14 make flex bison bc pahole xz openssl python3 modinfo; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] ||
        die "missing ${missing[*]}: apt install rustc rust-src rust-clippy bindgen gcc-14 make flex bison bc libelf-dev libssl-dev dwarves xz-utils kmod openssl python3"
    [ -f "$headers/.config" ] && [ -f "$headers/Module.symvers" ] ||
        die "$headers missing: apt install -t trixie-backports linux-headers-$release"
    local series
    series="$(printf '%s' "$release" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')"
    [ -n "$series" ] || die "cannot read a kernel series (X.Y) from release $release"
    PKTMAP_STOCK_SOURCE_PKG="linux-source-$series"
    PKTMAP_STOCK_TARBALL="/usr/src/linux-source-$series.tar.xz"
    [ -f "$PKTMAP_STOCK_TARBALL" ] ||
        die "$PKTMAP_STOCK_TARBALL missing: apt install -t trixie-backports $PKTMAP_STOCK_SOURCE_PKG"
    grep -qx 'CONFIG_RUST=y' "$headers/.config" ||
        die "$release is built without CONFIG_RUST: it cannot load a Rust module"
    # The Rust symbols' hashes cover rustc's full version string: only the very rustc Debian
    # built the kernel with gives a module whose symbols resolve.
    want="$(stock_config_value CONFIG_RUSTC_VERSION_TEXT "$headers/.config")"
    have="$(rustc --version)"
    [ "$want" = "$have" ] ||
        die "$release was built with '$want' but rustc is '$have' (use trixie's own rustc, not rustup's or backports')"
    [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
        die "rustc has no library sources: apt install rust-src"
    want="$(stock_config_value CONFIG_CC_VERSION_TEXT "$headers/.config")"
    have="$(x86_64-linux-gnu-gcc-14 --version | head -n1)"
    [ "$want" = "$have" ] || die "$release was built with '$want' but gcc-14 is '$have'"
}

# Prepares the tree for RELEASE into DIR.tmp.PID and renames it to DIR.
stock_prepare() {
    local release="$1" final="$2" tmp="$2.tmp.$$" src vars log kernelversion
    local headers="/usr/src/linux-headers-$1"
    mapfile -t vars < <(stock_make_vars)
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log="$tmp/prepare.log"
    stock_key_inputs "$release" >"$tmp/key.txt"
    say "stock tree: unpacking $PKTMAP_STOCK_TARBALL"
    tar -xf "$PKTMAP_STOCK_TARBALL" -C "$tmp"
    mv "$tmp/$PKTMAP_STOCK_SOURCE_PKG" "$tmp/linux"
    src="$tmp/linux"
    cp "$headers/.config" "$src/.config"
    cp "$headers/Module.symvers" "$src/Module.symvers"
    kernelversion="$(make -s -C "$src" kernelversion)"
    case "$release" in
        "$kernelversion"*) printf '%s\n' "${release#"$kernelversion"}" >"$src/localversion" ;;
        *) die "release $release is not of the source's version $kernelversion" ;;
    esac
    say "stock tree: olddefconfig, modules_prepare (~1-2 min; log: $log)"
    {
        make -C "$src" "${vars[@]}" olddefconfig &&
            make -C "$src" "${vars[@]}" rustavailable
    } >"$log" 2>&1 || {
        tail -n 30 "$log" >&2
        die "configuring the stock tree failed (log: $log)"
    }
    # Debian's .config must survive olddefconfig unchanged, or the tree is another kernel.
    if ! diff -u <(grep '^CONFIG_' "$headers/.config") <(grep '^CONFIG_' "$src/.config") >"$tmp/config.diff"; then
        cat "$tmp/config.diff" >&2
        die "olddefconfig changed Debian's .config (a different compiler or a missing tool?)"
    fi
    [ "$(make -s -C "$src" "${vars[@]}" kernelrelease)" = "$release" ] ||
        die "the tree's kernelrelease is not $release"
    make -C "$src" "${vars[@]}" -j"$PKTMAP_JOBS" modules_prepare >>"$log" 2>&1 || {
        tail -n 40 "$log" >&2
        die "make modules_prepare failed (log: $log)"
    }
    # modules_prepare regenerates Module.symvers only for in-tree builds; keep Debian's.
    cmp -s "$headers/Module.symvers" "$src/Module.symvers" || cp "$headers/Module.symvers" "$src/"
    date -u +%FT%TZ >"$tmp/done"
    if ! mv -T "$tmp" "$final" 2>/dev/null; then
        rm -rf "$tmp" # another run prepared the same key first; use its tree
    fi
}

# Sets PKTMAP_KDIR to a prepared tree for RELEASE, preparing it if needed.
ensure_stock_tree() {
    local release="$1" key dir
    stock_check_tools "$release"
    key="$(stock_key_inputs "$release" | sha256sum | cut -c1-16)"
    dir="$PKTMAP_CACHE/stock-$release-$key"
    mkdir -p "$PKTMAP_CACHE"
    if [ -f "$dir/done" ]; then
        say "stock tree: cached ($dir)"
    else
        stock_prepare "$release" "$dir"
    fi
    PKTMAP_KDIR="$dir/linux"
    export PKTMAP_KDIR
}
