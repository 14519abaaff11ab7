//! AF_XDP through pktmap, for real: Ethernet frames sent from a raw packet socket in one fresh
//! network namespace cross a veth pair, are redirected into an AF_XDP socket in the other
//! whose four rings pktmap mapped, are echoed back through its TX ring, and arrive byte for
//! byte; and each bad input's errno next to what the raw `mmap` syscall does with it.
//!
//! Needs root (namespaces, AF_XDP, BPF) and iproute2: without them the tests say so loudly and
//! skip, except under `CI=true`, where they fail. Traffic never leaves the pair; it is bounded
//! in count, and every wait in time. Namespace names carry the pid, so parallel runs are safe.

mod common;

use pktmap::af_xdp::{Ring, RingSizes, Umem, Xsk, XskSocket};
use pktmap::resource::MapFlags;
use pktmap_testbed::{
    echo, frame, require_root, PacketSocket, Side, VethPair, XskRedirect, ETHERTYPE,
};
use rustix::mm::{self, MapFlags as SysMapFlags, ProtFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// Frame payload `seq`: a header naming it and a body every byte of which depends on it.
fn payload(seq: u32) -> Vec<u8> {
    let len = 16 + (seq as usize * 37) % 1400;
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(b"PKTM");
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((8..len).map(|i| (seq as u8).wrapping_mul(29).wrapping_add(i as u8)));
    p
}

#[test]
fn frames_echo_end_to_end_through_rings_pktmap_mapped() {
    if !require_root("af_xdp echo test") {
        return;
    }
    const TOTAL: u32 = 2048;
    const WINDOW: u32 = 32;
    let bed = VethPair::new().unwrap();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (rx_count, echoed, checked) = std::thread::scope(|s| {
        let xsk_side = s.spawn(|| {
            let setup = || -> std::io::Result<(XskRedirect, Xsk)> {
                bed.enter(Side::A)?;
                let ifindex = bed.ifindex(Side::A)?;
                let redirect = XskRedirect::attach(ifindex, 1)?;
                let xsk = XskSocket::new(Umem::new(1024, 2048)?, RingSizes::default())?
                    .bind(ifindex, 0)?;
                redirect.insert(0, &xsk)?;
                Ok((redirect, xsk))
            };
            let (redirect, mut xsk) = match setup() {
                Ok(v) => v,
                Err(e) => {
                    ready_tx.send(Err(e.to_string())).unwrap();
                    return (0, 0);
                }
            };
            ready_tx.send(Ok(())).unwrap();
            let st = echo(&mut xsk, &stop, deadline).unwrap();
            drop(redirect);
            assert_eq!(st.tx_full, 0, "TX ring full: {st:?}");
            (st.received, st.echoed)
        });
        let ready = ready_rx.recv().unwrap();
        let peer = s.spawn(|| -> std::io::Result<u32> {
            bed.enter(Side::B)?;
            let sock = PacketSocket::bind(bed.ifindex(Side::B)?)?;
            let mut buf = vec![0u8; 2048];
            let mut seen = vec![false; TOTAL as usize];
            for w in 0..TOTAL / WINDOW {
                for i in 0..WINDOW {
                    sock.send(&frame(
                        Side::A.mac(),
                        Side::B.mac(),
                        &payload(w * WINDOW + i),
                    ))?;
                }
                for _ in 0..WINDOW {
                    assert!(Instant::now() < deadline, "timed out in window {w}");
                    let n = sock.recv(&mut buf, Duration::from_secs(5))?;
                    let f = &buf[..n];
                    assert_eq!(f[..6], Side::B.mac(), "echo goes back to the sender");
                    assert_eq!(f[6..12], Side::A.mac(), "echo comes from xsk0");
                    assert_eq!(f[12..14], ETHERTYPE.to_be_bytes());
                    let seq = u32::from_le_bytes(f[18..22].try_into().unwrap());
                    assert_eq!(f[14..], payload(seq)[..], "frame {seq} differs");
                    assert!(
                        !std::mem::replace(&mut seen[seq as usize], true),
                        "{seq} twice"
                    );
                }
            }
            Ok(seen.iter().filter(|&&s| s).count() as u32)
        });
        let checked = match ready {
            Ok(()) => peer.join().unwrap(),
            Err(e) => Err(std::io::Error::other(format!("AF_XDP setup: {e}"))),
        };
        stop.store(true, Ordering::Relaxed);
        let (r, e) = xsk_side.join().unwrap();
        (r, e, checked)
    });
    let checked = checked.unwrap();
    eprintln!("{TOTAL} frames sent, {rx_count} received by the AF_XDP socket, {echoed} echoed, {checked} checked byte for byte");
    assert_eq!(checked, TOTAL);
    assert!(rx_count >= u64::from(TOTAL) && echoed >= u64::from(TOTAL));
}

/// `mmap(NULL, len, RW, MAP_SHARED, fd, offset)` without pktmap: the errno, or `Ok` (and unmap).
fn raw_mmap(fd: &XskSocket, offset: u64, len: usize) -> Result<(), i32> {
    // SAFETY: A null hint without MAP_FIXED takes fresh address space only.
    let r = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            SysMapFlags::SHARED | SysMapFlags::POPULATE,
            fd,
            offset,
        )
    };
    match r {
        Ok(p) => {
            // SAFETY: `p` is the `len`-byte mapping just made, used by nothing else.
            unsafe { mm::munmap(p, len) }.unwrap();
            Ok(())
        }
        Err(e) => Err(e.raw_os_error()),
    }
}

#[test]
fn unmatched_offsets_and_oversize_lengths_match_the_kernels_einval() {
    if !require_root("af_xdp errno test") {
        return;
    }
    // No traffic and no bind: the socket can stay in this namespace.
    let sizes = RingSizes {
        rx: 64,
        tx: 64,
        fill: 64,
        completion: 64,
    };
    let sock = XskSocket::new(Umem::new(64, 2048).unwrap(), sizes).unwrap();
    for off in [0x4000_0000u64, 0x1000, 0x2_0000_0000, 0x8000_1000] {
        let e = sock.map_offset(off, PAGE, MapFlags::empty()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "pktmap {off:#x}: {e}");
        assert_eq!(
            raw_mmap(&sock, off, PAGE),
            Err(libc::EINVAL),
            "raw {off:#x}"
        );
        eprintln!("offset {off:#x}: pktmap EINVAL, raw mmap EINVAL");
    }
    for ring in Ring::ALL {
        let size = sock.ring_len(ring);
        let fits = size.div_ceil(PAGE) * PAGE;
        sock.map(ring, fits, MapFlags::POPULATE).unwrap();
        assert_eq!(raw_mmap(&sock, ring.offset(), fits), Ok(()));
        let over = fits + PAGE;
        let e = sock.map(ring, over, MapFlags::empty()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "pktmap {ring:?}: {e}");
        assert!(e.to_string().contains(ring.name()), "{e}");
        assert_eq!(raw_mmap(&sock, ring.offset(), over), Err(libc::EINVAL));
        eprintln!("{ring:?} ring of {size} bytes, {over} asked: pktmap EINVAL, raw mmap EINVAL");
    }
}

/// The path of an example binary `cargo test` built next to this test's binary, if any.
#[test]
fn the_xdp_echo_example_echoes_every_frame_and_cleans_up() {
    if !require_root("xdp_echo example test") {
        return;
    }
    let bin = common::cargo_artifact(&["--example", "xdp_echo"], "xdp_echo");
    let child = std::process::Command::new(bin)
        .args(["--count", "20000", "--secs", "20"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&child.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&child.stderr));
    assert!(child.status.success(), "xdp_echo failed");
    assert!(text.contains("20000 frames sent, 20000 echoes back (0 wrong, 0 lost)"));
    // Its namespaces are gone: none named after its pid is left.
    let pid = child_pid(&text).expect("namespace name in the output");
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.contains(&format!("pktmap-{pid}-")),
        "left behind: {list}"
    );
}

/// The pid in the example's "veth pair: pktmap-<pid>-<n>-a/..." line.
fn child_pid(text: &str) -> Option<u32> {
    let rest = &text[text.find("veth pair: pktmap-")? + "veth pair: pktmap-".len()..];
    rest.split('-').next()?.parse().ok()
}
