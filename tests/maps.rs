//! `pktmap::maps` on this process's real mappings, and the `pktmap` command line's `encode`,
//! `decode` and `maps` (the `pktmap-tools` binary, built here). Needs `io-uring` (a real ring
//! to name).
#![cfg(feature = "io-uring")]

mod common;

use pktmap::maps::{self, Name};
use pktmap::offset::{io_uring, IO_URING};
use std::process::Command;

fn pktmap(args: &[&str]) -> (bool, String, String) {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        common::cargo_artifact(&["-p", "pktmap-tools", "--bin", "pktmap"], "pktmap")
    });
    let out = Command::new(bin).args(args).output().expect("run pktmap");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn names_this_process_io_uring_rings() {
    let ring = match pktmap::io_uring::IoUring::new(8) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipping: io_uring unavailable: {e}");
            return;
        }
    };
    let bufs = match ring.register_buf_ring(7, 256, 64) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipping: provided-buffer rings unavailable: {e}");
            return;
        }
    };
    let (sq, _cq) = ring.queues().unwrap();
    let addr = bufs.mapping().as_ptr() as u64;
    let entries = maps::read(None).unwrap();
    let e = entries
        .iter()
        .find(|e| e.start == addr)
        .expect("the ring's mapping is listed");
    assert_eq!(e.path.as_deref(), Some("anon_inode:[io_uring]"));
    assert_eq!(e.offset, IO_URING.encode(io_uring::PBUF_RING, 7).unwrap());
    assert_eq!(e.name().to_string(), "io_uring PBUF_RING id 7");
    assert!(entries.iter().any(|e| e.name().type_name() == Some("SQES")));

    // The command line names the same mapping when given our pid.
    let pid = std::process::id().to_string();
    let (ok, out, err) = pktmap(&["maps", &pid]);
    assert!(ok, "{err}");
    assert!(out.contains("io_uring PBUF_RING id 7"), "{out}");
    assert!(out.contains("io_uring SQES"), "{out}");
    assert!(
        !out.contains("[stack]"),
        "without --all only named mappings: {out}"
    );
    let (ok, out, _) = pktmap(&["maps", &pid, "--json"]);
    assert!(ok);
    assert!(out.contains("\"type\":\"PBUF_RING\",\"id\":7"), "{out}");
    drop(sq);
}

#[test]
fn lists_everything_with_all() {
    let (ok, out, err) = pktmap(&["maps", "--all"]);
    assert!(ok, "{err}");
    assert!(out.contains("[stack]"), "{out}");
    let (ok, _, err) = pktmap(&["maps", "4294967295"]);
    assert!(!ok);
    assert!(err.contains("/proc/4294967295/maps"), "{err}");
}

#[test]
fn split_mappings_are_named_by_their_first_page_only() {
    // The second page of a POOL 1 mapping: offset 0x9000 + 0x1000 is type 2 (RING) id 1 in
    // the PKTMAP layout: the naming is only as good as the first page's offset (module docs).
    let e: maps::Entry = "1000-2000 rw-s 0000a000 00:05 7 /dev/pktmap"
        .parse()
        .unwrap();
    assert_eq!(e.name().to_string(), "pktmap RING id 1");
    let e: maps::Entry = "1000-2000 rw-s 0000b000 00:05 7 /dev/pktmap"
        .parse()
        .unwrap();
    assert!(matches!(e.name(), Name::Undecodable { .. }));
}

#[test]
fn encode_and_decode_every_layout() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("pktmap", "POOL", "3", "0x19000"),
        ("onload", "DSHM", "5", "0x2a000"),
        ("io_uring", "PBUF_RING", "5", "0x80050000"),
        ("af_xdp", "COMPLETION", "0", "0x180000000"),
        ("vfio", "2", "0x100000", "0x20000100000"),
    ];
    for &(layout, ty, id, offset) in cases {
        let (ok, out, err) = pktmap(&["encode", "--layout", layout, ty, id]);
        assert!(ok, "{layout}: {err}");
        assert_eq!(out.trim(), offset, "{layout}");
        let (ok, out, err) = pktmap(&["decode", "--layout", layout, offset]);
        assert!(ok, "{layout}: {err}");
        let want_id = match id.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap().to_string(),
            None => id.to_string(),
        };
        assert_eq!(
            out.trim(),
            format!("{layout:<9} {ty} id {want_id}"),
            "{layout}"
        );
        let (ok, out, _) = pktmap(&["encode", "-l", layout, ty, id, "--json"]);
        assert!(ok);
        assert!(
            out.contains(&format!("\"offset_hex\":\"{offset}\"")),
            "{out}"
        );
    }
    // Without --layout, every layout's reading; with --pgoff, the driver's view.
    let (ok, out, _) = pktmap(&["decode", "0x80050000", "--json"]);
    assert!(ok);
    assert_eq!(out.matches("\"layout\":").count(), 5, "{out}");
    assert!(
        out.contains("\"type_name\":\"PBUF_RING\",\"id\":5"),
        "{out}"
    );
    let (ok, out, _) = pktmap(&["decode", "-l", "pktmap", "--pgoff", "0x19"]);
    assert!(ok);
    assert_eq!(out.trim(), "pktmap    POOL id 3");
    // Errors: strict decoding, range checks, unknown names.
    let (ok, out, err) = pktmap(&["decode", "-l", "pktmap", "0x1001"]);
    assert!(!ok && out.contains("not page aligned"), "{out}{err}");
    let (ok, _, err) = pktmap(&["encode", "-l", "io_uring", "SQ_RING", "1"]);
    assert!(!ok && err.contains("takes no id"), "{err}");
    let (ok, _, err) = pktmap(&["encode", "-l", "pktmap", "NOPE"]);
    assert!(!ok && err.contains("STATE, POOL, RING"), "{err}");
    let (ok, _, err) = pktmap(&["encode", "-l", "nope", "POOL"]);
    assert!(!ok && err.contains("unknown layout"), "{err}");
}

#[test]
fn bench_device_flag_fails_clearly_without_the_driver() {
    if std::path::Path::new("/dev/pktmap").exists() {
        eprintln!("skipping: /dev/pktmap exists here");
        return;
    }
    let (ok, _, err) = pktmap(&["bench", "--quick", "--no-plot", "--device", "/dev/pktmap"]);
    assert!(!ok);
    assert!(
        err.contains("--device /dev/pktmap") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn path_names_match_the_modules_that_map_them() {
    assert_eq!(maps::IO_URING_MAPS_PATH, pktmap::io_uring::MAPS_PATH);
    #[cfg(feature = "af-xdp")]
    assert_eq!(
        maps::AF_XDP_MAPS_PATH_PREFIX,
        pktmap::af_xdp::MAPS_PATH_PREFIX
    );
}
