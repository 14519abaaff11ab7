# shellcheck shell=bash
# pktmap.ko: built from a copy of driver/kmod and driver/abi/src (so the checkout stays clean
# and the module's `#[path = "../abi/src"]` resolves the same way), with the kernel's clippy
# lints on and warnings as errors, against the kernel tree PKTMAP_KDIR with the make variables
# kernel_make_vars prints. Sourced by scripts/build-stock-module (in the trixie root for the
# pipeline) after lib/common.sh.

# Checks that the kernel's bindgen bindings put every struct field driver/kmod/sys/ uses
# (scripts/layout/bindgen.list) where the C compiler does: the C offsets come from an
# asm-offsets style probe (`DEFINE`, <linux/kbuild.h>) compiled to assembly, and a Rust module
# of `const` assertions must then compile. Prints how many fields it checked.
check_bindgen_layouts() {
    local build="$PKTMAP_OUT/bindgen-layout" vars log struct member path n=0
    local list="$PKTMAP_REPO/scripts/layout/bindgen.list"
    mapfile -t vars < <(kernel_make_vars)
    log="$build/build.log"
    rm -rf "$build"
    mkdir -p "$build"
    {
        printf '#include <linux/kbuild.h>\n#include <linux/fs.h>\n#include <linux/mm.h>\n'
        printf '#include <linux/miscdevice.h>\n#include <linux/moduleparam.h>\n'
        printf '#include <linux/sched.h>\n#include <linux/netdevice.h>\n#include <linux/skbuff.h>\n'
        printf 'void pktmap_offsets(void);\nvoid pktmap_offsets(void)\n{\n'
        local j=0
        while read -r struct member path; do
            case "$struct" in '' | '#'*) continue ;; esac
            if [ "$struct" = = ]; then
                # "= VALUE C-EXPRESSION": a value the driver restates because no binding has it
                # (a constant of a header bindgen does not read, an offset in an opaque struct).
                printf '\tDEFINE(pktmap_const__%s, %s);\n' "$j" "$path"
                j=$((j + 1))
                continue
            fi
            printf '\tDEFINE(%s__%s, offsetof(struct %s, %s));\n' "$struct" "${member//./__}" "$struct" "$member"
        done <"$list"
        printf '}\n'
    } >"$build/offsets.c"
    echo 'obj-m := offsets.o' >"$build/Kbuild"
    make -C "$PKTMAP_KDIR" M="$build" "${vars[@]}" offsets.s >"$log" 2>&1 || {
        cat "$log" >&2
        die "scripts/layout/bindgen.list names a member the C headers do not have (log: $log)"
    }
    {
        printf '// SPDX-License-Identifier: GPL-2.0\n\n//! Compiles only if the bindings match the C layout.\n\n'
        printf 'use kernel::{bindings, prelude::*};\n\n'
        printf 'module! { type: Check, name: "pktmap_bindgen_layout", license: "GPL", }\n\n'
        printf 'struct Check;\n\nimpl kernel::Module for Check {\n'
        printf '    fn init(_module: &'"'"'static ThisModule) -> Result<Self> {\n        Ok(Check)\n    }\n}\n\n'
        local k=0
        while read -r struct member path; do
            case "$struct" in '' | '#'*) continue ;; esac
            local c
            if [ "$struct" = = ]; then
                c=$(sed -n "s/.*\"->pktmap_const__${k} \\\$\{0,1\}\(-\{0,1\}[0-9]*\) .*/\1/p" "$build/offsets.s")
                k=$((k + 1))
                [ "$c" = "$member" ] || die "scripts/layout/bindgen.list: C says $path is '$c', the driver assumes $member"
                n=$((n + 1))
                continue
            fi
            c=$(sed -n "s/.*\"->${struct}__${member//./__} \\\$\{0,1\}\([0-9]*\) .*/\1/p" "$build/offsets.s")
            [ -n "$c" ] || die "no C offset for $struct.$member in $build/offsets.s"
            printf 'const _: () = assert!(\n    core::mem::offset_of!(bindings::%s, %s) == %s,\n    "bindings put %s.%s elsewhere than C (offset %s)"\n);\n' \
                "$struct" "$path" "$c" "$struct" "$member" "$c"
            n=$((n + 1))
        done <"$list"
    } >"$build/pktmap_bindgen_layout.rs"
    echo 'obj-m := pktmap_bindgen_layout.o' >"$build/Kbuild"
    make -C "$PKTMAP_KDIR" M="$build" "${vars[@]}" modules >"$log" 2>&1 || {
        grep -E 'bindings put|^error' "$log" >&2
        die "the kernel's Rust bindings disagree with C on a struct layout driver/kmod uses (log: $log)"
    }
    say "bindgen layouts: $n fields of scripts/layout/bindgen.list at the C offsets"
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
    # CLIPPY_CONF_DIR: driver/kmod/.clippy.toml (the kernel's, plus pktmap's own rules).
    CLIPPY_CONF_DIR="$build/driver/kmod" make -C "$build/driver/kmod" KDIR="$PKTMAP_KDIR" "${vars[@]}" KRUSTFLAGS=-Dwarnings \
        CLIPPY=1 CLIPPY_DRIVER="${PKTMAP_CLIPPY_DRIVER:-/usr/bin/clippy-driver}" >"$log" 2>&1 || {
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
