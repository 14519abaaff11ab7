//! `pktmap::inspect::maps` on this process's real mappings, and the `pktmap` command line's `encode`,
//! `decode` and `maps` (the `pktmap-tools` binary, built here). Needs `io-uring` (a real ring
//! to name).
#![cfg(feature = "io-uring")]

mod common;

use pktmap::inspect::maps::{self, Name};
use pktmap::offset::{io_uring_types, IO_URING};
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
    // io_uring and provided-buffer rings (5.19+) are part of every machine this project runs
    // on; their absence is a failure, never a skip.
    let ring = pktmap::uring::Uring::new(8).expect("io_uring_setup");
    let bufs = ring
        .register_buf_ring(7, 256, 64)
        .expect("IORING_REGISTER_PBUF_RING");
    let addr = bufs.mapping().as_ptr() as u64;
    let entries = maps::read(None).unwrap();
    let e = entries
        .iter()
        .find(|e| e.start == addr)
        .expect("the ring's mapping is listed");
    assert_eq!(e.path.as_deref(), Some("anon_inode:[io_uring]"));
    assert_eq!(
        e.offset,
        IO_URING.encode(io_uring_types::PBUF_RING, 7).unwrap()
    );
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
    drop(ring); // the SQES listed above were the ring's own mapping until here
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
    let device = pktmap::inspect::maps::FileKind::PktmapDevice;
    let e: maps::Entry = "1000-2000 rw-s 0000a000 00:05 7 /dev/pktmap"
        .parse::<maps::Entry>()
        .unwrap()
        .with_file(device.clone());
    assert_eq!(e.name().to_string(), "pktmap RING id 1");
    let e: maps::Entry = "1000-2000 rw-s 0000b000 00:05 7 /dev/pktmap"
        .parse::<maps::Entry>()
        .unwrap()
        .with_file(device);
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
        // A type the layout has no name for is spelt `type N`, as `maps` spells it.
        let want_ty = match ty.parse::<u32>() {
            Ok(n) => format!("type {n}"),
            Err(_) => ty.to_string(),
        };
        assert_eq!(
            out.trim(),
            format!("{layout:<9} {want_ty} id {want_id}"),
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
        pktmap_testbed::skip(
            "/dev/pktmap exists on this host, so the no-driver case cannot be shown",
        );
        return;
    }
    let (ok, _, err) = pktmap(&["bench", "--quick", "--no-plot", "--device", "/dev/pktmap"]);
    assert!(!ok);
    assert!(
        err.contains("--device /dev/pktmap") && err.contains("No such file"),
        "{err}"
    );
}

/// The entry of this process's maps that starts at `addr`, as [`maps::read`] names it.
fn entry_at(addr: *const u8) -> maps::Entry {
    maps::read(None)
        .unwrap()
        .into_iter()
        .find(|e| e.start == addr as u64)
        .expect("the mapping is listed")
}

/// A sparse file or memfd mapped at AF_XDP's FILL ring offset (0x100000000) is a file, not a
/// ring, whatever it is called.
#[test]
fn look_alike_files_are_never_rings() {
    use pktmap::inspect::maps::FileKind;
    use pktmap::resource::MapOptions;
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    const FILL: u64 = 0x1_0000_0000;
    let memfd = memfd_create("xsk-umem", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&memfd, FILL + 4096).unwrap();
    let m = MapOptions::new(4096).map(&memfd, FILL).unwrap();
    let e = entry_at(m.as_ptr());
    assert_eq!(e.offset, FILL);
    assert!(e.path.as_deref().unwrap().contains("xsk-umem"), "{e:?}");
    assert_eq!(e.file, FileKind::Memfd);
    assert_eq!(e.name(), Name::Unknown, "{e:?}");

    let dir = std::env::temp_dir().join(format!("pktmap-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lib = dir.join("libxdp.so.1.4");
    let f = std::fs::File::create_new(&lib).unwrap();
    f.set_len(FILL + 4096).unwrap();
    let m = MapOptions::new(4096)
        .flags(pktmap::resource::MapFlags::READONLY)
        .map(&f, FILL)
        .unwrap();
    let e = entry_at(m.as_ptr());
    assert_eq!(e.file, FileKind::File);
    assert_eq!(e.name(), Name::Unknown, "{e:?}");
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A character device node that is not the pktmap driver (here `/dev/zero`'s number, under
/// a name that says pktmap) is named by its device number: not pktmap.
#[test]
fn a_device_is_told_by_its_number_not_its_name() {
    use pktmap::inspect::maps::FileKind;
    use pktmap::resource::MapOptions;
    let dir = std::env::temp_dir().join(format!("pktmap-dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let node = dir.join("pktmap");
    let made = rustix::fs::mknodat(
        rustix::fs::CWD,
        &node,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(1, 5),
    );
    if let Err(e) = made {
        std::fs::remove_dir_all(&dir).unwrap();
        pktmap_testbed::skip(format_args!("mknod needs root ({e})"));
        return;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
        .unwrap();
    let m = MapOptions::new(8192).private().map(&f, 0x9000).unwrap();
    let e = entry_at(m.as_ptr());
    assert_eq!(e.file, FileKind::CharDevice(1, 5), "{e:?}");
    assert_eq!(e.name(), Name::Unknown);
    // The same line, had the kernel said it is the pktmap device, is POOL 1.
    assert_eq!(
        e.clone()
            .with_file(FileKind::PktmapDevice)
            .name()
            .to_string(),
        "pktmap POOL id 1"
    );
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An AF_PACKET `PACKET_RX_RING` is mapped at offset 0, which AF_XDP's layout reads as its
/// RX ring: the kernel says it is an AF_PACKET socket, and it is named so.
#[test]
fn packet_mmap_rings_are_named_af_packet() {
    use pktmap::inspect::maps::FileKind;
    use pktmap::resource::MapOptions;
    use rustix::net::{AddressFamily, SocketType};
    // Protocol 0: the socket receives nothing; the ring is only there to be mapped.
    let sock = match rustix::net::socket(AddressFamily::PACKET, SocketType::RAW, None) {
        Ok(s) => s,
        Err(e) => {
            pktmap_testbed::skip(format_args!("AF_PACKET needs CAP_NET_RAW ({e})"));
            return;
        }
    };
    // struct tpacket_req { block_size, block_nr, frame_size, frame_nr } (TPACKET_V1).
    let req: [libc::c_uint; 4] = [4096, 1, 2048, 2];
    use std::os::fd::AsRawFd;
    // SAFETY: `req` is a valid tpacket_req of the size passed, alive across the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            req.as_ptr().cast(),
            std::mem::size_of_val(&req) as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "PACKET_RX_RING: {}", std::io::Error::last_os_error());
    let m = MapOptions::new(4096).map(&sock, 0).unwrap();
    let e = entry_at(m.as_ptr());
    assert_eq!(e.file, FileKind::Socket(Some("PACKET".into())), "{e:?}");
    assert_eq!(e.name(), Name::PacketMmap);
    assert_eq!(e.name().to_string(), "af_packet PACKET_MMAP");
    let inode = rustix::fs::fstat(&sock).unwrap().st_ino;
    let diag = pktmap::inspect::sock_diag::packet_sockets().unwrap();
    let me = diag
        .iter()
        .find(|p| u64::from(p.inode) == inode)
        .expect("PACKET_DIAG lists it");
    assert_eq!(me.rx_ring, Some((4096, 1)), "PACKET_DIAG reports the ring");
}

/// A real AF_XDP socket's FILL ring is named af_xdp FILL: the kernel says the socket is XDP.
#[cfg(feature = "af-xdp")]
#[test]
fn af_xdp_rings_are_named_by_the_kernels_word() {
    use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
    use pktmap::inspect::maps::FileKind;
    let umem = Umem::new(64, 2048).unwrap();
    let sock = match XskBuilder::new(umem, RingSizes::default()) {
        Ok(s) => s,
        Err(e) => {
            pktmap_testbed::skip(format_args!("AF_XDP needs CAP_NET_RAW ({e})"));
            return;
        }
    };
    let fill = sock
        .map(
            Ring::Fill,
            sock.ring_len(Ring::Fill),
            pktmap::resource::MapFlags::empty(),
        )
        .unwrap();
    let e = entry_at(fill.as_ptr());
    assert_eq!(e.file, FileKind::Socket(Some("XDP".into())), "{e:?}");
    assert_eq!(e.name().to_string(), "af_xdp FILL");
}
