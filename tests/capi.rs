//! The C ABI (feature `capi`): compiles `tests/c/capi_test.c` against `include/pktmap.h` and links it to
//! `libpktmap.a` and `libpktmap.so`, runs it, and checks the header against `pktmap-abi`; then
//! (ignored in a plain `cargo test`, run by `scripts/test-all`'s `c-install` step) installs
//! pktmap with `scripts/install-c` and builds the same program with pkg-config only.

mod common;

use pktmap_abi::codec::{pktmap_types, PKTMAP};
use pktmap_abi::ioctl;
use pktmap_abi::packet::{self, counter};
use std::collections::HashMap;
use std::mem::offset_of;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `libpktmap.a` and `libpktmap.so`, built once per test run. The manifest declares only an
/// rlib (a Rust dependent builds no C library), so they are built as cargo-c builds them: the
/// `capi` feature on and the crate types given to `cargo rustc`.
fn c_libs() -> &'static (PathBuf, PathBuf) {
    static LIBS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    LIBS.get_or_init(|| {
        let args = [
            "-p",
            "pktmap",
            "--lib",
            "--features",
            "capi",
            "--crate-type",
            "staticlib,cdylib",
        ];
        let mut libs = common::cargo_artifacts("rustc", &args, &["libpktmap.a", "libpktmap.so"]);
        let shared = libs.pop().unwrap();
        (libs.pop().unwrap(), shared)
    })
}

/// Builds `capi_test.c` linked `linkage` (`static` or `shared`) as `capi_test_<name>`; each
/// test uses its own name, so no test runs a binary another is writing.
fn compile(linkage: &str, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (static_lib, shared_lib) = c_libs();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("capi_test_{name}"));
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/capi_test.c"))
        .arg("-o")
        .arg(&out);
    match linkage {
        "static" => {
            cc.arg(static_lib)
                .args(["-lpthread", "-ldl", "-lm", "-lgcc_s"]);
        }
        _ => {
            let dir = shared_lib.parent().unwrap();
            cc.arg("-L").arg(dir).arg("-lpktmap");
            cc.arg(format!("-Wl,-rpath,{}", dir.display()));
        }
    }
    let status = cc
        .status()
        .expect("a C compiler (cc) is needed for the C ABI test");
    assert!(status.success(), "compiling capi_test.c ({linkage}) failed");
    out
}

fn run_checks(linkage: &str) {
    let exe = compile(linkage, linkage);
    let out = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "C checks failed ({linkage}): {last}\n{stdout}"
    );
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let passed: u32 = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 20, "only {passed} C checks ran");
}

#[test]
fn c_contract_static() {
    run_checks("static");
}

#[test]
fn c_contract_shared() {
    run_checks("shared");
}

#[test]
fn header_matches_abi() {
    let out = Command::new(compile("static", "abi"))
        .arg("--abi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let got: HashMap<&str, u64> = text
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    let size = |n: usize| n as u64;
    let version = |v: &str| v.parse::<u64>().unwrap();
    let want: &[(&str, u64)] = &[
        (
            "PKTMAP_VERSION_MAJOR",
            version(env!("CARGO_PKG_VERSION_MAJOR")),
        ),
        (
            "PKTMAP_VERSION_MINOR",
            version(env!("CARGO_PKG_VERSION_MINOR")),
        ),
        (
            "PKTMAP_VERSION_PATCH",
            version(env!("CARGO_PKG_VERSION_PATCH")),
        ),
        ("PKTMAP_TYPE_SHIFT", PKTMAP.type_field.shift.into()),
        ("PKTMAP_ID_SHIFT", PKTMAP.id_field.shift.into()),
        ("PKTMAP_ID_WIDTH", PKTMAP.id_field.width.into()),
        ("PKTMAP_TYPE_STATE", pktmap_types::STATE.into()),
        ("PKTMAP_TYPE_POOL", pktmap_types::POOL.into()),
        ("PKTMAP_TYPE_RING", pktmap_types::RING.into()),
        (
            "PKTMAP_MMAP_OFFSET(PKTMAP_TYPE_POOL, 7)",
            PKTMAP.encode(pktmap_types::POOL, 7).unwrap(),
        ),
        (
            "PKTMAP_MMAP_OFFSET_POPULATE",
            pktmap_abi::plan::MMAP_POPULATE,
        ),
        (
            "PKTMAP_MMAP_FLAG_READONLY",
            pktmap::resource::MapFlags::READONLY.bits().into(),
        ),
        (
            "PKTMAP_MMAP_FLAG_FIXED",
            pktmap::resource::MapFlags::FIXED.bits().into(),
        ),
        (
            "PKTMAP_MMAP_FLAG_POPULATE",
            pktmap::resource::MapFlags::POPULATE.bits().into(),
        ),
        ("PKTMAP_POOL_LAZY", ioctl::POOL_LAZY.into()),
        ("PKTMAP_POOL_CONTIG", ioctl::POOL_CONTIG.into()),
        ("PKTMAP_POOL_HUGE", ioctl::POOL_HUGE.into()),
        ("PKTMAP_CACHE_WB", ioctl::CACHE_WB.into()),
        ("PKTMAP_CACHE_WC", ioctl::CACHE_WC.into()),
        (
            "PKTMAP_DEFAULT_FAULT_AROUND",
            ioctl::DEFAULT_FAULT_AROUND.into(),
        ),
        ("PKTMAP_MAX_FAULT_AROUND", ioctl::MAX_FAULT_AROUND.into()),
        ("PKTMAP_HUGE_CHUNK_PAGES", ioctl::HUGE_CHUNK_PAGES.into()),
        (
            "PKTMAP_MAX_CONTIG_CHUNK_PAGES",
            ioctl::MAX_CONTIG_CHUNK_PAGES.into(),
        ),
        ("PKTMAP_EXPORT_READONLY", ioctl::EXPORT_READONLY.into()),
        ("PKTMAP_MIN_BUF_SIZE", ioctl::MIN_BUF_SIZE.into()),
        ("PKTMAP_MAX_BUF_SIZE", ioctl::MAX_BUF_SIZE.into()),
        ("PKTMAP_MAX_POOL_BYTES", ioctl::MAX_POOL_BYTES),
        ("PKTMAP_MAX_RING_ENTRIES", ioctl::MAX_RING_ENTRIES.into()),
        ("PKTMAP_MAX_RESOURCES", ioctl::MAX_RESOURCES.into()),
        ("PKTMAP_IOC_POOL_CREATE", ioctl::POOL_CREATE.into()),
        ("PKTMAP_IOC_POOL_INFO", ioctl::POOL_INFO.into()),
        ("PKTMAP_IOC_POOL_DESTROY", ioctl::POOL_DESTROY.into()),
        ("PKTMAP_IOC_RING_CREATE", ioctl::RING_CREATE.into()),
        ("PKTMAP_IOC_RING_INFO", ioctl::RING_INFO.into()),
        ("PKTMAP_IOC_RING_DESTROY", ioctl::RING_DESTROY.into()),
        ("PKTMAP_IOC_POOL_CHUNK", ioctl::POOL_CHUNK.into()),
        ("PKTMAP_IOC_POOL_EXPORT", ioctl::POOL_EXPORT.into()),
        ("PKTMAP_STATE_MAGIC", ioctl::STATE_MAGIC),
        ("PKTMAP_RING_DESC_OFFSET", ioctl::RING_DESC_OFFSET),
        (
            "sizeof(struct pktmap_pool_create)",
            size(size_of::<ioctl::PoolCreate>()),
        ),
        (
            "sizeof(struct pktmap_pool_info)",
            size(size_of::<ioctl::PoolInfo>()),
        ),
        (
            "sizeof(struct pktmap_ring_create)",
            size(size_of::<ioctl::RingCreate>()),
        ),
        (
            "sizeof(struct pktmap_ring_info)",
            size(size_of::<ioctl::RingInfo>()),
        ),
        (
            "sizeof(struct pktmap_id)",
            size(size_of::<ioctl::ResourceId>()),
        ),
        (
            "sizeof(struct pktmap_state)",
            size(size_of::<ioctl::State>()),
        ),
        (
            "sizeof(struct pktmap_ring_header)",
            size(size_of::<ioctl::RingHeader>()),
        ),
        (
            "sizeof(struct pktmap_desc)",
            size(size_of::<ioctl::RingDesc>()),
        ),
        (
            "sizeof(struct pktmap_pool_chunk)",
            size(size_of::<ioctl::PoolChunk>()),
        ),
        (
            "sizeof(struct pktmap_pool_export)",
            size(size_of::<ioctl::PoolExport>()),
        ),
        (
            "offsetof(struct pktmap_pool_create, fault_around)",
            size(offset_of!(ioctl::PoolCreate, fault_around)),
        ),
        (
            "offsetof(struct pktmap_pool_create, reserved)",
            size(offset_of!(ioctl::PoolCreate, reserved)),
        ),
        (
            "offsetof(struct pktmap_pool_info, fault_around)",
            size(offset_of!(ioctl::PoolInfo, fault_around)),
        ),
        (
            "offsetof(struct pktmap_pool_info, chunk_bytes)",
            size(offset_of!(ioctl::PoolInfo, chunk_bytes)),
        ),
        (
            "offsetof(struct pktmap_pool_chunk, phys)",
            size(offset_of!(ioctl::PoolChunk, phys)),
        ),
        (
            "offsetof(struct pktmap_pool_export, fd)",
            size(offset_of!(ioctl::PoolExport, fd)),
        ),
        ("PKTMAP_RING_PACKET", packet::RING_PACKET.into()),
        ("PKTMAP_ATTACH_MIRROR", packet::ATTACH_MIRROR.into()),
        ("PKTMAP_MAX_ATTACHMENTS", packet::MAX_ATTACHMENTS.into()),
        ("PKTMAP_IOC_ATTACH", packet::ATTACH.into()),
        ("PKTMAP_IOC_DETACH", packet::DETACH.into()),
        ("PKTMAP_IOC_KICK", packet::KICK.into()),
        ("PKTMAP_PACKET_RING_MAGIC", packet::PACKET_RING_MAGIC.into()),
        (
            "PKTMAP_PACKET_RING_VERSION",
            packet::PACKET_RING_VERSION.into(),
        ),
        ("PKTMAP_PACKET_PRODUCER_OFFSET", packet::PRODUCER_OFFSET),
        ("PKTMAP_PACKET_CONSUMER_OFFSET", packet::CONSUMER_OFFSET),
        ("PKTMAP_PACKET_WAKEUP_OFFSET", packet::WAKEUP_OFFSET),
        ("PKTMAP_PACKET_COUNTERS_OFFSET", packet::COUNTERS_OFFSET),
        ("PKTMAP_PACKET_COUNTER_WORDS", packet::COUNTER_WORDS.into()),
        ("PKTMAP_PACKET_DESC_OFFSET", packet::DESC_OFFSET),
        ("PKTMAP_DESC_TRUNCATED", packet::DESC_TRUNCATED.into()),
        ("PKTMAP_DESC_VLAN", packet::DESC_VLAN.into()),
        ("PKTMAP_DESC_CSUM_PARTIAL", packet::DESC_CSUM_PARTIAL.into()),
        ("PKTMAP_DESC_CSUM_VALID", packet::DESC_CSUM_VALID.into()),
        ("PKTMAP_DESC_GSO", packet::DESC_GSO.into()),
        ("PKTMAP_PKT_RX_PACKETS", counter::RX_PACKETS.into()),
        ("PKTMAP_PKT_RX_BYTES", counter::RX_BYTES.into()),
        ("PKTMAP_PKT_RX_RING_FULL", counter::RX_RING_FULL.into()),
        ("PKTMAP_PKT_RX_OVERSIZE", counter::RX_OVERSIZE.into()),
        (
            "PKTMAP_PKT_RX_INVALID_DESC",
            counter::RX_INVALID_DESC.into(),
        ),
        ("PKTMAP_PKT_RX_GSO", counter::RX_GSO.into()),
        ("PKTMAP_PKT_RX_COPY_ERRORS", counter::RX_COPY_ERRORS.into()),
        ("PKTMAP_PKT_WAKEUPS", counter::WAKEUPS.into()),
        ("PKTMAP_PKT_TX_PACKETS", counter::TX_PACKETS.into()),
        ("PKTMAP_PKT_TX_BYTES", counter::TX_BYTES.into()),
        (
            "PKTMAP_PKT_TX_INVALID_DESC",
            counter::TX_INVALID_DESC.into(),
        ),
        ("PKTMAP_PKT_TX_ERRORS", counter::TX_ERRORS.into()),
        ("PKTMAP_PKT_KICKS", counter::KICKS.into()),
        ("PKTMAP_PKT_COUNTERS", counter::COUNT.into()),
        (
            "sizeof(struct pktmap_attach)",
            size(size_of::<packet::Attach>()),
        ),
        (
            "sizeof(struct pktmap_packet_ring)",
            size(size_of::<packet::PacketRingHeader>()),
        ),
        (
            "sizeof(struct pktmap_packet_desc)",
            size(size_of::<packet::PacketDesc>()),
        ),
        (
            "offsetof(struct pktmap_attach, id)",
            size(offset_of!(packet::Attach, id)),
        ),
        (
            "offsetof(struct pktmap_attach, reserved)",
            size(offset_of!(packet::Attach, reserved)),
        ),
        (
            "offsetof(struct pktmap_packet_ring, desc_size)",
            size(offset_of!(packet::PacketRingHeader, desc_size)),
        ),
        (
            "offsetof(struct pktmap_packet_desc, flags)",
            size(offset_of!(packet::PacketDesc, flags)),
        ),
        (
            "offsetof(struct pktmap_packet_desc, vlan_tci)",
            size(offset_of!(packet::PacketDesc, vlan_tci)),
        ),
    ];
    for (name, value) in want {
        assert_eq!(
            got.get(name),
            Some(value),
            "{name} differs between pktmap.h and pktmap-abi"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "pktmap.h prints values this test does not check"
    );
}

/// The functions `include/pktmap.h` declares: every `pktmap_NAME(` that starts a declaration
/// line (`int pktmap_resource_map(...`).
fn header_functions() -> Vec<String> {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pktmap.h"))
            .unwrap();
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t') && !l.starts_with('#'))
        .filter_map(|l| {
            let at = l.find("pktmap_")?;
            let rest = &l[at..];
            let end = rest.find('(')?;
            let name = &rest[..end];
            (l[..at]
                .trim_end()
                .ends_with(|c: char| c.is_alphanumeric() || c == '*')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Each function `include/pktmap.map` lists, with the version node (`PKTMAP_0.1`, ...) that
/// lists it: what `libpktmap.so` must export it as.
fn symbol_versions() -> Vec<(String, String)> {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pktmap.map"))
            .unwrap();
    let mut node = String::new();
    let mut versions = Vec::new();
    for line in map.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix('{').map(str::trim) {
            node = name.to_string();
        } else if line.starts_with("pktmap_") && line.ends_with(';') {
            versions.push((line.trim_end_matches(';').to_string(), node.clone()));
        }
    }
    versions
}

/// The version script gives every function of the header a version, and names no other
/// (a function added to the header but not to include/pktmap.map would be local in
/// libpktmap.so).
#[test]
fn version_script_lists_every_header_function() {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pktmap.map"))
            .unwrap();
    let versions = symbol_versions();
    assert!(
        versions
            .iter()
            .all(|(_, node)| node.starts_with("PKTMAP_0.")),
        "every function sits in a PKTMAP_ node: {versions:?}"
    );
    assert!(map.contains("PKTMAP_0.2 {"), "the 0.2 node: {map}");
    let mut listed: Vec<String> = versions.into_iter().map(|(name, _)| name).collect();
    listed.sort();
    let declared = header_functions();
    assert_eq!(declared.len(), 10, "{declared:?}");
    assert_eq!(listed, declared, "include/pktmap.map against pktmap.h");
}

/// `scripts/install-c` into a temporary prefix, then the contract program built with nothing
/// but `pkg-config --cflags --libs pktmap` (shared) and, from a `--static-only` prefix,
/// `pkg-config --static --cflags --libs pktmap` (static), run, and checked: the C user's whole
/// path (it fails if cargo-c cannot be installed). It builds cargo-c once (about 10 minutes
/// cold) and may `apt-get` its build dependencies, which a plain `cargo test` must not do, so it
/// is ignored there and run by `scripts/test-all`'s `c-install` step, which fails unless it ran.
#[test]
#[ignore = "builds cargo-c and installs: run by scripts/test-all's c-install step"]
fn installs_with_pkg_config_static_and_shared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let install = |name: &str, args: &[&str]| {
        let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&prefix);
        let status = Command::new(root.join("scripts/install-c"))
            .args(args)
            .arg(&prefix)
            .status()
            .expect("running scripts/install-c");
        assert!(
            status.success(),
            "scripts/install-c {args:?} {} failed",
            prefix.display()
        );
        prefix
    };
    let prefix = install("c-prefix", &[]);
    let static_prefix = install("c-prefix-static", &["--static-only"]);
    assert!(static_prefix.join("lib/libpktmap.a").exists());
    assert!(!static_prefix.join("lib/libpktmap.so").exists());
    let lib = prefix.join("lib");
    for f in ["libpktmap.a", "libpktmap.so", "pkgconfig/pktmap.pc"] {
        assert!(lib.join(f).exists(), "{f} not installed");
    }
    assert!(prefix.join("include/pktmap.h").exists());
    let pc = std::fs::read_to_string(lib.join("pkgconfig/pktmap.pc")).unwrap();
    assert!(pc.contains("Libs.private:"), "{pc}");
    // The SONAME is versioned, and the versioned names are symlinks to one file.
    let soname = Command::new("readelf")
        .args(["-d"])
        .arg(lib.join("libpktmap.so"))
        .output()
        .expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&soname.stdout);
    let soname = dynamic
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .map(|s| s.trim_end_matches(']').to_string())
        .unwrap_or_else(|| panic!("no SONAME in\n{dynamic}"));
    assert!(
        soname.starts_with("libpktmap.so.") && lib.join(&soname).exists(),
        "{soname}"
    );
    assert!(std::fs::symlink_metadata(lib.join("libpktmap.so"))
        .unwrap()
        .is_symlink());
    // Every function of the header is exported with its symbol version (include/pktmap.map),
    // and nothing else is.
    let syms = Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(lib.join("libpktmap.so"))
        .output()
        .expect("readelf --dyn-syms");
    let syms = String::from_utf8_lossy(&syms.stdout);
    let exported: Vec<&str> = syms
        .lines()
        .filter(|l| l.contains(" GLOBAL ") && !l.contains(" UND ") && !l.contains(" ABS "))
        .filter_map(|l| l.split_whitespace().nth(7))
        .collect();
    let versions = symbol_versions();
    let mut want: Vec<String> = header_functions()
        .iter()
        .map(|f| {
            let node = versions
                .iter()
                .find(|(name, _)| name == f)
                .map_or("(none)", |(_, node)| node.as_str());
            format!("{f}@@{node}")
        })
        .collect();
    want.sort();
    let mut got: Vec<String> = exported.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, want, "libpktmap.so's exported symbols");

    let pkg_config = |lib: &Path, args: &[&str]| -> Vec<String> {
        let out = Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
            .args(args)
            .arg("pktmap")
            .output()
            .expect("pkg-config");
        assert!(out.status.success(), "pkg-config {args:?} failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    for linkage in ["shared", "static"] {
        let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("capi_pc_{linkage}"));
        let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
        cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
            .arg(root.join("tests/c/capi_test.c"))
            .arg("-o")
            .arg(&exe);
        if linkage == "static" {
            let lib = static_prefix.join("lib");
            cc.args(pkg_config(&lib, &["--static", "--cflags", "--libs"]));
        } else {
            cc.args(pkg_config(&lib, &["--cflags", "--libs"]));
        }
        let status = cc.status().expect("a C compiler (cc)");
        assert!(
            status.success(),
            "building against the installed pktmap ({linkage}) failed"
        );
        let mut run = Command::new(&exe);
        if linkage == "shared" {
            run.env("LD_LIBRARY_PATH", &lib);
        }
        let out = run.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        assert!(out.status.success(), "{linkage}: {last}\n{stdout}");
        assert!(last.ends_with("passed, 0 failed"), "{linkage}: {last}");
        let ldd = Command::new("readelf")
            .arg("-d")
            .arg(&exe)
            .output()
            .unwrap();
        let dynamic = String::from_utf8_lossy(&ldd.stdout);
        if linkage == "shared" {
            assert!(
                dynamic.contains(&format!("[{soname}]")),
                "NEEDED {soname}:\n{dynamic}"
            );
            let syms = Command::new("readelf")
                .args(["--dyn-syms", "-W"])
                .arg(&exe)
                .output()
                .unwrap();
            let syms = String::from_utf8_lossy(&syms.stdout);
            assert!(
                syms.contains("pktmap_resource_mmap@PKTMAP_0.1"),
                "the program binds the versioned symbol:\n{syms}"
            );
        } else {
            assert!(
                !dynamic.contains("libpktmap"),
                "static program needs libpktmap:\n{dynamic}"
            );
        }
    }
}
