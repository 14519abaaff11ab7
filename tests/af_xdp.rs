//! AF_XDP through pktmap, for real: Ethernet frames sent from a raw packet socket in one fresh
//! network namespace cross a veth pair, are redirected into an AF_XDP socket in the other
//! whose four rings pktmap mapped, are echoed back through its TX ring, and arrive byte for
//! byte; and each bad input's errno next to what the raw `mmap` syscall does with it.
//!
//! Needs root (namespaces, AF_XDP, BPF) and iproute2: without them the tests say so loudly and
//! skip, except under `CI=true`, where they fail. Traffic never leaves the pair; it is bounded
//! in count, and every wait in time. Namespace names carry the pid, so parallel runs are safe.

mod common;

use pktmap::af_xdp::{Ring, RingSizes, Umem, Xsk, XskBuilder};
use pktmap::offset::Region as _;
use pktmap::resource::MapFlags;
use pktmap_testbed::{
    echo, frame, require_root, PacketSocket, Side, VethPair, XskRedirect, ETHERTYPE,
};
use rustix::mm::{self, MapFlags as SysMapFlags, ProtFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// Sends `total` frames from namespace B, in windows, to an AF_XDP socket in namespace A that
/// `make(ifindex)` binds (and the test bed's redirect program feeds), which echoes them through
/// [`echo`]; checks every echo byte for byte. Returns (received, echoed, checked, wakeup
/// syscalls).
fn echo_through<F>(make: F, total: u32) -> (u64, u64, u32, u64)
where
    F: FnOnce(u32) -> std::io::Result<Xsk> + Send,
{
    const WINDOW: u32 = 32;
    let bed = VethPair::new().unwrap();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (rx_count, echoed, syscalls, checked) = std::thread::scope(|s| {
        let xsk_side = s.spawn(|| {
            let setup = || -> std::io::Result<(XskRedirect, Xsk)> {
                bed.enter(Side::A)?;
                let ifindex = bed.ifindex(Side::A)?;
                let redirect = XskRedirect::attach(ifindex, 1)?;
                let xsk = make(ifindex)?;
                redirect.insert(0, &xsk)?;
                Ok((redirect, xsk))
            };
            let (redirect, mut xsk) = match setup() {
                Ok(v) => v,
                Err(e) => {
                    ready_tx.send(Err(e.to_string())).unwrap();
                    return (0, 0, 0);
                }
            };
            ready_tx.send(Ok(())).unwrap();
            let st = echo(&mut xsk, &stop, deadline).unwrap();
            drop(redirect);
            assert_eq!(st.tx_full, 0, "TX ring full: {st:?}");
            (st.received, st.echoed, xsk.syscalls())
        });
        let ready = ready_rx.recv().unwrap();
        let peer = s.spawn(|| -> std::io::Result<u32> {
            bed.enter(Side::B)?;
            let sock = PacketSocket::bind(bed.ifindex(Side::B)?)?;
            let mut buf = vec![0u8; 2048];
            let mut seen = vec![false; total as usize];
            for w in 0..total / WINDOW {
                for i in 0..WINDOW {
                    sock.send(&frame(
                        Side::A.mac(),
                        Side::B.mac(),
                        &common::payload(w * WINDOW + i),
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
                    assert_eq!(f[14..], common::payload(seq)[..], "frame {seq} differs");
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
        let (r, e, n) = xsk_side.join().unwrap();
        (r, e, n, checked)
    });
    let checked = checked.unwrap();
    assert_eq!(checked, total);
    assert!(rx_count >= u64::from(total) && echoed >= u64::from(total));
    (rx_count, echoed, checked, syscalls)
}

#[test]
fn frames_echo_end_to_end_through_rings_pktmap_mapped() {
    if !require_root("af_xdp echo test") {
        return;
    }
    const TOTAL: u32 = 2048;
    let (rx, echoed, checked, syscalls) = echo_through(
        |ifindex| {
            let xsk =
                XskBuilder::new(Umem::new(1024, 2048)?, RingSizes::default())?.bind(ifindex, 0)?;
            assert!(xsk.uses_need_wakeup(), "bind() turns need_wakeup on");
            Ok(xsk)
        },
        TOTAL,
    );
    eprintln!(
        "{TOTAL} frames sent, {rx} received by the AF_XDP socket, {echoed} echoed, {checked} \
         checked byte for byte; need_wakeup on: {syscalls} wakeup syscalls"
    );
}

/// A UMEM in 2 MiB huge pages of a hugetlb memfd (pages this test reserves), frames 2 MiB
/// aligned at the start: the echo runs through it, and the frames are in the memfd.
#[test]
fn umem_in_hugetlb_memory() {
    if !require_root("af_xdp hugetlb UMEM test") {
        return;
    }
    use pktmap::resource::MapOptions;
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    const HUGE: usize = 2 << 20;
    let _pages = pktmap_testbed::HugePages::require(1);
    let fd = memfd_create("pktmap-umem", MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB).unwrap();
    ftruncate(&fd, HUGE as u64).unwrap();
    let (rx, echoed, checked, _) = echo_through(
        |ifindex| {
            let mem = MapOptions::new(HUGE)
                .flags(MapFlags::POPULATE)
                .map(&fd, 0)?;
            assert_eq!(mem.as_ptr() as usize % HUGE, 0, "2 MiB aligned");
            let umem = Umem::from_mapping(mem, 2048)?;
            assert_eq!(umem.frames(), 1024);
            Ok(XskBuilder::new(umem, RingSizes::default())?.bind(ifindex, 0)?)
        },
        1024,
    );
    // The echoed frames were in the memfd: some frame's payload header is there.
    let view = MapOptions::new(HUGE).map(&fd, 0).unwrap();
    let mut all = vec![0; HUGE];
    view.read_at(0, &mut all).unwrap();
    assert!(
        all.windows(4).any(|w| w == b"PKTM"),
        "frames in the hugetlb memfd"
    );
    eprintln!("hugetlb UMEM: {rx} received, {echoed} echoed, {checked} checked");
}

/// A socket the application made and bound itself (by hand, as libxdp would), before pktmap
/// mapped anything: pktmap adopts it, maps its rings after the bind, and echoes through them.
/// The application's UMEM is a memfd; pktmap reaches the frames through its own mapping of it.
#[test]
fn adopts_a_socket_bound_elsewhere() {
    if !require_root("af_xdp adopt test") {
        return;
    }
    use pktmap::af_xdp::Bind;
    use pktmap::resource::MapOptions;
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    use rustix::net::xdp::{SocketAddrXdp, XdpUmemReg, XdpUmemRegFlags};
    use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
    use std::os::fd::AsFd;
    const LEN: usize = 1024 * 2048;
    let sizes = RingSizes {
        rx: 1024,
        tx: 1024,
        fill: 1024,
        completion: 1024,
    };
    let memfd = memfd_create("app-umem", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&memfd, LEN as u64).unwrap();
    let (rx, echoed, checked, syscalls) = echo_through(
        |ifindex| {
            // "The application": its own UMEM mapping, socket, registration, sizes and bind.
            let app_mem = MapOptions::new(LEN)
                .flags(MapFlags::POPULATE)
                .map(&memfd, 0)?;
            let fd = rustix::net::socket_with(
                AddressFamily::XDP,
                SocketType::RAW,
                SocketFlags::CLOEXEC,
                None,
            )?;
            sockopt::set_xdp_umem_reg(
                &fd,
                XdpUmemReg {
                    addr: app_mem.as_ptr() as u64,
                    len: LEN as u64,
                    chunk_size: 2048,
                    headroom: 0,
                    flags: XdpUmemRegFlags::empty(),
                    tx_metadata_len: 0,
                },
            )?;
            sockopt::set_xdp_umem_fill_ring_size(&fd, sizes.fill)?;
            sockopt::set_xdp_umem_completion_ring_size(&fd, sizes.completion)?;
            sockopt::set_xdp_rx_ring_size(&fd, sizes.rx)?;
            sockopt::set_xdp_tx_ring_size(&fd, sizes.tx)?;
            let flags = Bind::XDP_COPY | Bind::XDP_USE_NEED_WAKEUP;
            rustix::net::bind(&fd, &SocketAddrXdp::new(flags, ifindex, 0))?;
            // pktmap's own view of the same frames.
            let view = || -> pktmap::Result<Umem> {
                Umem::from_mapping(MapOptions::new(LEN).map(&memfd, 0)?, 2048)
            };
            // Wrong ring sizes are caught by the kernel's own length check, both ways.
            for wrong in [
                RingSizes { rx: 4096, ..sizes },
                RingSizes { fill: 256, ..sizes },
            ] {
                let e = XskBuilder::adopt(fd.as_fd(), view()?, wrong).unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{wrong:?}: {e}");
            }
            let xsk = XskBuilder::adopt(fd.as_fd(), view()?, sizes)?.rings(flags)?;
            // The application may drop its socket fd and its mapping: pktmap holds a
            // duplicate of the fd, and the kernel pinned the UMEM's pages at XDP_UMEM_REG
            // and copies into them, which pktmap's own mapping of the memfd sees.
            drop(fd);
            drop(app_mem);
            Ok(xsk)
        },
        1024,
    );
    eprintln!(
        "adopted a bound socket: {rx} received, {echoed} echoed, {checked} checked, \
         {syscalls} wakeup syscalls"
    );
}

/// XDP_ZEROCOPY on veth, which has no zero-copy: the kernel's errno, and the same socket
/// kind binds in copy mode right after.
#[test]
fn zerocopy_is_refused_with_the_kernels_errno() {
    if !require_root("af_xdp zero-copy test") {
        return;
    }
    use pktmap::af_xdp::Bind;
    let bed = VethPair::new().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            bed.enter(Side::A).unwrap();
            let ifindex = bed.ifindex(Side::A).unwrap();
            let sock = XskBuilder::new(Umem::new(64, 2048).unwrap(), RingSizes::default()).unwrap();
            let e = sock
                .bind_with(ifindex, 0, Bind::XDP_ZEROCOPY | Bind::XDP_USE_NEED_WAKEUP)
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}");
            let sock = XskBuilder::new(Umem::new(64, 2048).unwrap(), RingSizes::default()).unwrap();
            let xsk = sock.bind_with(ifindex, 0, Bind::XDP_COPY).unwrap();
            assert!(!xsk.uses_need_wakeup());
            eprintln!("XDP_ZEROCOPY on veth: {e}; XDP_COPY binds");
        })
        .join()
        .unwrap();
    });
}

/// Two sockets on one UMEM (XDP_SHARED_UMEM, same queue): frames the second sends leave on
/// the wire and complete on the first's COMPLETION ring.
#[test]
fn shared_umem_sends_from_the_second_socket() {
    if !require_root("af_xdp shared UMEM test") {
        return;
    }
    use pktmap::af_xdp::{XdpDesc, XdpDescOptions};
    const N: u32 = 64;
    let bed = VethPair::new().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let peer = s.spawn(|| -> Vec<u32> {
            bed.enter(Side::B).unwrap();
            let sock = PacketSocket::bind(bed.ifindex(Side::B).unwrap()).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = vec![0u8; 2048];
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while got.len() < N as usize && Instant::now() < deadline {
                let Ok(n) = sock.recv(&mut buf, Duration::from_millis(500)) else {
                    continue;
                };
                let f = &buf[..n];
                if f[12..14] == ETHERTYPE.to_be_bytes() && f[6..12] == Side::A.mac() {
                    let seq = u32::from_le_bytes(f[18..22].try_into().unwrap());
                    assert_eq!(f[14..], common::payload(seq)[..], "frame {seq}");
                    got.push(seq);
                }
            }
            got
        });
        ready_rx.recv().unwrap();
        let sender = s.spawn(|| {
            bed.enter(Side::A).unwrap();
            let ifindex = bed.ifindex(Side::A).unwrap();
            let mut first = XskBuilder::new(Umem::new(256, 2048).unwrap(), RingSizes::default())
                .unwrap()
                .bind(ifindex, 0)
                .unwrap();
            let mut second = XskBuilder::shared(&first, RingSizes::default())
                .unwrap()
                .bind(ifindex, 0)
                .unwrap();
            assert_eq!(second.fill(&[0]), 0, "no FILL ring of its own");
            let descs: Vec<XdpDesc> = (0..N)
                .map(|i| {
                    let addr = 2048 * u64::from(128 + i);
                    let f = frame(Side::B.mac(), Side::A.mac(), &common::payload(i));
                    second.umem().write(addr, &f).unwrap();
                    XdpDesc {
                        addr,
                        len: f.len() as u32,
                        options: XdpDescOptions::empty(),
                    }
                })
                .collect();
            assert_eq!(second.send(&descs), N as usize);
            let mut done = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while done.len() < N as usize && Instant::now() < deadline {
                second.kick().unwrap();
                first.completed(&mut done, 64);
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut want: Vec<u64> = descs.iter().map(|d| d.addr).collect();
            done.sort_unstable();
            want.sort_unstable();
            assert_eq!(done, want, "the second's frames complete on the first");
        });
        sender.join().unwrap();
        let mut got = peer.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "every frame arrived");
    });
    eprintln!("XDP_SHARED_UMEM: {N} frames sent by the second socket, completed on the first");
}

/// `mmap(NULL, len, RW, MAP_SHARED, fd, offset)` without pktmap: the errno, or `Ok` (and unmap).
fn raw_mmap(fd: &XskBuilder, offset: u64, len: usize) -> Result<(), i32> {
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
    let sock = XskBuilder::new(Umem::new(64, 2048).unwrap(), sizes).unwrap();
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
        assert_eq!(raw_mmap(&sock, ring.offset().unwrap(), fits), Ok(()));
        let over = fits + PAGE;
        let e = sock.map(ring, over, MapFlags::empty()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "pktmap {ring:?}: {e}");
        assert!(e.to_string().contains(ring.name()), "{e}");
        assert_eq!(
            raw_mmap(&sock, ring.offset().unwrap(), over),
            Err(libc::EINVAL)
        );
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
