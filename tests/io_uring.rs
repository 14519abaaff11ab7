//! io_uring through pktmap, for real: UDP datagrams on 127.0.0.1 received into buffers of a
//! provided-buffer ring that pktmap mapped, checked byte for byte; and each bad input's errno
//! next to what the raw `mmap` syscall does with it.
//!
//! Traffic stays on 127.0.0.1, in bounded batches, each wait bounded by a timeout. io_uring
//! needs no root; if the kernel refuses it (`kernel.io_uring_disabled`, seccomp), the tests say
//! so loudly and skip, except under `CI=true`, where they fail.

mod common;

use pktmap::offset::Region as _;
use pktmap::resource::{MapFlags, MapOptions};
use pktmap::uring::{recv_with_buffer_select, BufRing, Region, Uring};
use rustix::mm::{self, MapFlags as SysMapFlags, ProtFlags};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::ptr;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// The instance, or `None` (after a loud message) where io_uring is unavailable outside CI.
fn uring(entries: u32) -> Option<Uring> {
    match Uring::new(entries) {
        Ok(r) => Some(r),
        Err(e) => {
            pktmap_testbed::skip(format_args!(
                "io_uring_setup failed ({e}); this kernel or sandbox has no io_uring"
            ));
            None
        }
    }
}

/// `mmap(NULL, len, RW, MAP_SHARED, fd, offset)` without pktmap: the errno, or the first 8
/// bytes of the mapping, which is unmapped again.
fn raw_mmap(fd: &Uring, offset: u64, len: usize) -> Result<u64, i32> {
    // SAFETY: A null hint without MAP_FIXED takes fresh address space only.
    let r = unsafe {
        mm::mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            SysMapFlags::SHARED,
            fd,
            offset,
        )
    };
    match r {
        Ok(p) => {
            // SAFETY: `p` is a fresh readable mapping of `len >= 8` bytes (page aligned).
            let head = unsafe { p.cast::<u64>().read_volatile() };
            // SAFETY: `p` is the `len`-byte mapping just made, used by nothing else.
            unsafe { mm::munmap(p, len) }.unwrap();
            Ok(head)
        }
        Err(e) => Err(e.raw_os_error()),
    }
}

#[test]
fn udp_datagrams_land_in_kernel_mapped_buffers() {
    let Some(mut ring) = uring(64) else { return };
    const BGID: u16 = 1;
    const BATCH: u32 = 32;
    const TOTAL: u32 = 1024;
    let mut bufs = ring.register_buf_ring(BGID, 64, 2048).unwrap();
    // The ring pktmap mapped is the one the kernel reads: its entries name our buffers.
    assert_eq!(bufs.mapping().len(), 64 * 16);
    let bytes = exchange(&mut ring, &mut bufs, TOTAL, BATCH);
    eprintln!("{TOTAL} datagrams, {bytes} bytes, all byte-identical");
}

#[test]
fn stray_bits_are_refused_though_the_kernel_ignores_them() {
    let Some(ring) = uring(8) else { return };
    let bufs = ring.register_buf_ring(3, 16, 256).unwrap();
    let good = Region::PbufRing { bgid: 3 }.offset().unwrap();
    // Entry 0 of group 3's ring holds the address of its buffer 0.
    let mut entry0 = [0; 8];
    bufs.mapping().read_at(0, &mut entry0).unwrap();
    let entry0 = u64::from_ne_bytes(entry0);
    assert_eq!(entry0, bufs.buffers().as_ptr() as u64);
    for stray in [0x1000u64, 0x8000, 0x4000] {
        let off = good | stray;
        let e = ring.map_offset(off, PAGE, MapFlags::empty()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "pktmap {off:#x}: {e}");
        assert_eq!(raw_mmap(&ring, off, PAGE), Ok(entry0), "raw {off:#x}");
        eprintln!("offset {off:#x}: pktmap EINVAL, raw mmap maps buffer group 3");
    }
    // Bits above the region bits: the kernel masks to 32 bits of region and group.
    let high = good | 1 << 40;
    let e = ring.map_offset(high, PAGE, MapFlags::empty()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    eprintln!(
        "offset {high:#x}: pktmap EINVAL, raw mmap {:?}",
        raw_mmap(&ring, high, PAGE)
    );
}

#[test]
fn oversize_lengths_are_refused_though_the_kernel_accepts_them() {
    let Some(ring) = uring(8) else { return };
    let _bufs = ring.register_buf_ring(4, 16, 256).unwrap();
    for region in [Region::PbufRing { bgid: 4 }, Region::Sqes, Region::SqRing] {
        let size = ring.region_len(region).unwrap();
        let fits = size.div_ceil(PAGE) * PAGE;
        ring.map(region, fits, MapFlags::empty()).unwrap();
        let over = fits + PAGE;
        let e = ring.map(region, over, MapFlags::empty()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{region:?}: {e}");
        let raw = raw_mmap(&ring, region.offset().unwrap(), over);
        assert!(raw.is_ok(), "{region:?}: the kernel accepts {over} bytes");
        eprintln!("{region:?} of {size} bytes, {over} asked: pktmap EINVAL, raw mmap accepts");
    }
}

/// A POPULATE that fails inside `map` names its cause and leaves nothing mapped: the SQE
/// array mapped 1 MiB long by the raw `map` (which, unlike `Uring::map`, does not know the
/// region's size), whose tail the kernel does not back.
#[test]
fn a_failed_populate_inside_map_names_its_cause_and_leaves_nothing_mapped() {
    let Some(ring) = uring(8) else { return };
    let len = 1 << 20;
    let sqes = Region::Sqes.offset().unwrap();
    let e = pktmap::resource::map(&ring, sqes, len, MapFlags::POPULATE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("MADV_POPULATE") && msg.contains("SIGBUS"),
        "{msg}"
    );
    // No 1 MiB mapping of the SQE offset is left (no other test maps one).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let left = maps.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (start, end) = f[0].split_once('-').unwrap();
        let size = u64::from_str_radix(end, 16).unwrap() - u64::from_str_radix(start, 16).unwrap();
        f[2] == format!("{sqes:08x}") && size == len as u64 && l.ends_with("[io_uring]")
    });
    assert!(!left, "a failed POPULATE left the mapping behind");
}

#[test]
fn unregistered_bgid_gives_the_kernels_errno() {
    let Some(ring) = uring(8) else { return };
    let region = Region::PbufRing { bgid: 9 };
    let e = ring.map(region, PAGE, MapFlags::empty()).unwrap_err();
    let raw = raw_mmap(&ring, region.offset().unwrap(), PAGE);
    assert_eq!(e.raw_os_error(), Some(libc::ENOMEM), "pktmap: {e}");
    assert_eq!(raw, Err(libc::ENOMEM));
    assert!(
        e.to_string().contains("PBUF_RING") && e.to_string().contains("id 9"),
        "{e}"
    );

    // With an address (pktmap's FIXED is MAP_FIXED_NOREPLACE; raw MAP_FIXED) it is EINVAL:
    // io_uring_get_unmapped_area refuses any address the caller chooses.
    let hole = MapOptions::new(PAGE).map_anonymous().unwrap();
    let (addr, len) = hole.into_raw();
    // SAFETY: `addr` is the page `hole` owned; nothing refers to it any more.
    unsafe { mm::munmap(addr.as_ptr(), len) }.unwrap();
    let e = MapOptions::new(PAGE)
        .flags(MapFlags::FIXED)
        .at(addr)
        .layout(pktmap::uring::LAYOUT)
        .map(&ring, region.offset().unwrap())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "pktmap FIXED: {e}");
    // SAFETY: MAP_FIXED over `addr`, a page this test owned and unmapped above, which nothing
    // refers to; a mapping made by mistake is unmapped at once.
    let raw = unsafe {
        mm::mmap(
            addr.as_ptr(),
            PAGE,
            ProtFlags::READ,
            SysMapFlags::SHARED | SysMapFlags::FIXED,
            &ring,
            region.offset().unwrap(),
        )
    };
    if let Ok(p) = raw {
        // SAFETY: `p` is the page just mapped, used by nothing.
        unsafe { mm::munmap(p, PAGE) }.unwrap();
    }
    assert_eq!(
        raw.map(|_| ()).map_err(|e| e.raw_os_error()),
        Err(libc::EINVAL)
    );
    // The same for a group that has a ring: io_uring refuses the address itself.
    let _bufs = ring.register_buf_ring(10, 16, 256).unwrap();
    let e = MapOptions::new(PAGE)
        .flags(MapFlags::FIXED)
        .at(addr)
        .layout(pktmap::uring::LAYOUT)
        .map(&ring, Region::PbufRing { bgid: 10 }.offset().unwrap())
        .unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EINVAL),
        "pktmap FIXED, registered group: {e}"
    );
    eprintln!("unregistered bgid 9: pktmap ENOMEM / EINVAL (FIXED), raw mmap the same");

    // A group id that does not fit under IORING_OFF_MMAP_MASK would alias region 0x88000000.
    let e = ring
        .map(Region::PbufRing { bgid: 2048 }, PAGE, MapFlags::empty())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let aliased = 0x8000_0000u64 | 2048 << 16;
    eprintln!(
        "bgid 2048: pktmap EINVAL, raw mmap at {aliased:#x} {:?}",
        raw_mmap(&ring, aliased, PAGE)
    );
}

#[test]
fn the_rings_map_once_each_and_queues_work_empty() {
    let Some(mut ring) = uring(16) else { return };
    assert_eq!(ring.submission().capacity(), 16);
    assert_eq!(ring.submission().pending(), 0);
    assert!(ring.completion().pop().is_none());
    let e = ring
        .submitter()
        .enter(0, 1, Some(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ETIME));
}

/// Two NOPs queued through two borrows of the submission queue both complete: the queue is
/// the ring's, so a second borrow continues the first's tail instead of overwriting its slot
/// (a second borrow while the first lives does not compile: `pktmap::uring`'s docs).
#[test]
fn two_submissions_in_turn_both_complete() {
    let Some(mut ring) = uring(8) else { return };
    // SAFETY: NOPs name no fd or buffer.
    assert!(unsafe { ring.submission().push(&pktmap::uring::nop(1)) });
    // SAFETY: as above.
    assert!(unsafe { ring.submission().push(&pktmap::uring::nop(2)) });
    assert_eq!(ring.submit(2, Some(Duration::from_secs(5))).unwrap(), 2);
    let mut done: Vec<u64> = ring.completion().map(|c| c.user_data).collect();
    done.sort_unstable();
    assert_eq!(done, [1, 2]);
}

/// The module and type names shadow nothing of the `io-uring` crate: with everything of
/// pktmap's in scope (glob imports of the crate and of `offset`, the module itself),
/// `io_uring::IoUring` is still the
/// crate's (an ambiguity would not compile), and the instance crosses threads.
#[test]
fn names_shadow_nothing_and_the_instance_crosses_threads() {
    #[allow(unused_imports)]
    use pktmap::offset::*; // the codec's type modules: io_uring_types, not io_uring
    #[allow(unused_imports)]
    use pktmap::uring;
    #[allow(unused_imports)]
    use pktmap::*;
    if uring(8).is_none() {
        return;
    }
    let theirs: io_uring::IoUring = io_uring::IoUring::new(8).unwrap();
    assert_eq!(theirs.params().sq_entries(), 8);
    let mut ours = uring::Uring::new(8).unwrap();
    // SAFETY: a NOP names no fd or buffer.
    assert!(unsafe { ours.submission().push(&uring::nop(5)) });
    let mut ours = std::thread::spawn(move || {
        ours.submit(1, Some(Duration::from_secs(5))).unwrap();
        ours
    })
    .join()
    .unwrap();
    assert_eq!(ours.completion().pop().map(|c| c.user_data), Some(5));
    let shared = std::sync::Arc::new(ours);
    let peer = std::sync::Arc::clone(&shared);
    std::thread::spawn(move || peer.region_len(uring::Region::Sqes))
        .join()
        .unwrap();
}

/// The path of an example binary `cargo test` built next to this test's binary, if any.
#[test]
fn the_uring_recv_example_moves_every_datagram() {
    if uring(8).is_none() {
        return;
    }
    let bin = common::cargo_artifact(&["--example", "uring_recv"], "uring_recv");
    let out = std::process::Command::new(bin)
        .args(["--count", "20000", "--secs", "20", "--size", "200"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "uring_recv failed");
    assert!(text.contains("received 20000/20000") && text.contains("0 malformed"));
    assert!(text.contains("PBUF_RING offset 0x80000000"));
}

/// Sends `total` datagrams to `rx` in batches of `batch`, each received by a RECV with buffer
/// selection from `bufs` through the queues pktmap mapped, and checks every byte of each in
/// the buffer the completion names. Returns the bytes received.
fn exchange(ring: &mut Uring, bufs: &mut BufRing, total: u32, batch: u32) -> usize {
    let (submitter, mut sq, mut cq) = ring.split();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![false; total as usize];
    let mut bytes = 0usize;
    for b in 0..total / batch {
        for i in 0..batch {
            let sqe = recv_with_buffer_select(rx.as_fd(), bufs.bgid(), u64::from(i));
            // SAFETY: `rx` and `bufs` outlive every completion: this function reaps them all
            // before it returns.
            assert!(unsafe { sq.push(&sqe) });
        }
        sq.sync();
        submitter.submit(0, None).unwrap();
        for i in 0..batch {
            tx.send(&common::payload(b * batch + i)).unwrap();
        }
        let mut got = 0;
        while got < batch {
            assert!(
                Instant::now() < deadline,
                "timed out: {got}/{batch} in batch {b}"
            );
            match submitter.enter(0, batch - got, Some(Duration::from_millis(500))) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) => panic!("io_uring_enter: {e}"),
            }
            while let Some(c) = cq.pop() {
                let len = c.result().unwrap() as usize;
                let bid = c.buffer_id().expect("IORING_CQE_F_BUFFER");
                let mut data = vec![0; len];
                bufs.read(bid, &mut data).unwrap();
                let seq = u32::from_le_bytes(data[4..8].try_into().unwrap());
                assert_eq!(
                    data,
                    common::payload(seq),
                    "datagram {seq} differs in buffer {bid}"
                );
                assert!(
                    !std::mem::replace(&mut seen[seq as usize], true),
                    "{seq} twice"
                );
                bytes += len;
                bufs.recycle(bid).unwrap();
                got += 1;
            }
        }
    }
    assert!(seen.iter().all(|&s| s), "every datagram arrived");
    bytes
}

/// `io-uring` crate rings, adopted: pktmap maps their SQ ring, CQ ring and SQEs, registers and
/// maps a provided-buffer ring on them, and receives real datagrams through them.
#[test]
fn adopts_rings_made_by_the_io_uring_crate() {
    if uring(8).is_none() {
        return;
    }
    use rustix::io_uring::IoringSetupFlags as F;
    let plain = io_uring::IoUring::new(64).unwrap();
    let mut b = io_uring::IoUring::builder();
    b.setup_cqsize(512)
        .setup_no_sqarray()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun();
    let shaped: io_uring::IoUring = b.build(32).unwrap();
    for (theirs, flags) in [(&plain, F::empty()), (&shaped, F::NO_SQARRAY)] {
        // SAFETY: `theirs` is not used to submit or reap while `ring` lives.
        let mut ring = unsafe { Uring::adopt(theirs.as_fd(), flags) }.unwrap();
        let p = theirs.params();
        assert_eq!(ring.params().sq_entries, p.sq_entries());
        assert_eq!(ring.params().cq_entries, p.cq_entries());
        let mut bufs = ring.register_buf_ring(5, 64, 2048).unwrap();
        let bytes = exchange(&mut ring, &mut bufs, 512, 16);
        eprintln!(
            "io-uring crate ring ({} SQ, {} CQ, {flags:?}) adopted: 512 datagrams, {bytes} bytes",
            p.sq_entries(),
            p.cq_entries()
        );
    }
    // A flag the ring does not have that makes its rings longer (CQE32 doubles the CQEs) is
    // caught: populating the pages past the kernel's region faults, EFAULT, no SIGBUS later.
    // SAFETY: as above.
    let e = unsafe { Uring::adopt(plain.as_fd(), F::CQE32) }.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
    // Not an io_uring at all.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // SAFETY: not an io_uring: nothing to produce into.
    let e = unsafe { Uring::adopt(sock.as_fd(), F::empty()) }.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
}

/// Setup flags pass through: an SQPOLL ring submits with no `io_uring_enter` for the
/// submissions, waking the kernel thread only when it sleeps.
#[test]
fn setup_flags_pass_through_sqpoll() {
    if uring(8).is_none() {
        return;
    }
    use rustix::io_uring::{io_uring_params, IoringSetupFlags as F};
    let mut p = io_uring_params::default();
    p.flags = F::SQPOLL | F::CQSIZE;
    p.sq_thread_idle = 5; // ms, so the thread sleeps between batches
    p.cq_entries = 256;
    let mut ring = Uring::with_params(16, p).unwrap();
    assert!(ring.params().flags.contains(F::SQPOLL));
    assert_eq!(ring.params().cq_entries, 256);
    let mut bufs = ring.register_buf_ring(2, 32, 2048).unwrap();
    let bytes = exchange(&mut ring, &mut bufs, 256, 8);
    // The SQ thread sleeps once it has been idle for `sq_thread_idle` (5 ms) *and* has run to
    // notice: on a loaded machine it may wait for a CPU far longer than any fixed sleep. So
    // wait for the flag itself, with a deadline only a thread that never sleeps can miss.
    let idle = Instant::now();
    while !ring.submission().needs_wakeup() {
        assert!(
            idle.elapsed() < Duration::from_secs(30),
            "the idle SQ thread sleeps and says so: NEED_WAKEUP still clear after 30 s idle"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sq = ring.submission();
    assert!(sq.needs_wakeup(), "the idle SQ thread sleeps and says so");
    for i in 0..4 {
        // SAFETY: A NOP names nothing.
        assert!(unsafe { sq.push(&pktmap::uring::nop(100 + i)) });
    }
    drop(sq);
    ring.submit(4, Some(Duration::from_secs(5))).unwrap();
    let done: Vec<u64> = ring.completion().map(|c| c.user_data).collect();
    assert_eq!(done, [100, 101, 102, 103]);
    eprintln!("SQPOLL: 256 datagrams ({bytes} bytes), then 4 NOPs after a wakeup");
    let e = Uring::with_params(8, {
        let mut p = io_uring_params::default();
        p.flags = F::DEFER_TASKRUN; // without SINGLE_ISSUER: the kernel refuses
        p
    })
    .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

/// Buffer rings over memory the caller made: a hugetlb memfd (2 MiB pages this test reserves)
/// and a shared memfd. The datagrams land in the memfd itself, seen through a second mapping.
/// The buffer ring owns no borrow: it lives next to its ring in one struct, and outlives it.
#[test]
fn buffer_rings_in_the_callers_memory() {
    let Some(mut ring) = uring(64) else { return };
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    const HUGE: usize = 2 << 20;
    let _pages = pktmap_testbed::HugePages::require(2);
    for (name, flags) in [
        ("hugetlb", MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB),
        ("shared", MemfdFlags::CLOEXEC),
    ] {
        let fd = memfd_create("pktmap-bufs", flags).unwrap();
        ftruncate(&fd, HUGE as u64).unwrap();
        let mem = MapOptions::new(HUGE)
            .flags(MapFlags::POPULATE)
            .map(&fd, 0)
            .unwrap();
        let base = mem.as_ptr() as usize;
        if name == "hugetlb" {
            assert_eq!(base % HUGE, 0, "hugetlb memory is 2 MiB aligned");
        }
        let mut bufs = ring.register_buf_ring_in(6, 1024, 2048, mem).unwrap();
        assert_eq!(bufs.buffers().as_ptr() as usize, base);
        let bytes = exchange(&mut ring, &mut bufs, 256, 16);
        // The last datagram landed in the memfd: find its header through another mapping.
        let view = MapOptions::new(HUGE).map(&fd, 0).unwrap();
        let mut all = vec![0; HUGE];
        view.read_at(0, &mut all).unwrap();
        let last = common::payload(255);
        assert!(
            all.windows(last.len()).any(|w| w == last),
            "{name}: datagram 255 is in the memfd"
        );
        eprintln!("{name} memfd: 256 datagrams, {bytes} bytes, in the caller's memory");
    }
    // Too little memory, or read-only memory, is refused before any registration.
    let small = MapOptions::new(4096).map_anonymous().unwrap();
    let e = ring.register_buf_ring_in(7, 4, 2048, small).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let ro = MapOptions::new(8192)
        .flags(MapFlags::READONLY)
        .map_anonymous()
        .unwrap();
    assert_eq!(
        ring.register_buf_ring_in(7, 4, 2048, ro)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );

    // No borrow: the ring and its buffer ring in one struct, the buffer ring outliving it.
    struct EventLoop {
        bufs: pktmap::uring::BufRing,
        ring: Uring,
    }
    let ev = EventLoop {
        bufs: ring.register_buf_ring(8, 16, 256).unwrap(),
        ring,
    };
    let EventLoop { mut bufs, ring } = ev;
    drop(ring);
    bufs.recycle(3).unwrap();
    assert_eq!(
        bufs.mapping().load::<u16>(14).unwrap(),
        17,
        "tail after 16 + 1 entries"
    );
}

/// `IORING_REGISTER_MEM_REGION` returns the offset 0x20000000 (`IORING_MAP_OFF_PARAM_REGION`),
/// which the IO_URING layout names PARAM_REGION and pktmap maps; two mappings share it.
#[test]
fn mem_region_maps_at_the_offset_the_kernel_returned() {
    let Some(ring) = uring(8) else { return };
    let off = ring.register_mem_region(2 * PAGE).unwrap();
    assert_eq!(off, 0x2000_0000, "the kernel's mmap_offset");
    assert_eq!(Region::from_offset(off).unwrap(), Region::Param);
    assert_eq!(ring.region_len(Region::Param), Some(2 * PAGE));
    let a = ring.map_offset(off, 2 * PAGE, MapFlags::POPULATE).unwrap();
    let b = ring
        .map(Region::Param, 2 * PAGE, MapFlags::empty())
        .unwrap();
    a.store(PAGE + 8, 0x1234_5678_u64).unwrap();
    assert_eq!(
        b.load::<u64>(PAGE + 8).unwrap(),
        0x1234_5678,
        "one region, two mappings"
    );
    let e = ring
        .map(Region::Param, 3 * PAGE, MapFlags::empty())
        .unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EINVAL),
        "longer than the region"
    );
    let named = pktmap::inspect::maps::read(None)
        .unwrap()
        .into_iter()
        .find(|e| e.start == a.as_ptr() as u64)
        .expect("listed");
    assert_eq!(named.name().to_string(), "io_uring PARAM_REGION");
    // A second region: the kernel's own EBUSY.
    assert_eq!(
        ring.register_mem_region(PAGE).unwrap_err().raw_os_error(),
        Some(libc::EBUSY)
    );
    eprintln!("MEM_REGION at {off:#x}: mapped twice through pktmap, named PARAM_REGION");
}

/// A kernel-allocated buffer ring for group 2048 registers (through the `io-uring` crate) but
/// no offset maps it, because the group id has only the 11 bits below IORING_OFF_MMAP_MASK:
/// pktmap refuses to register or map it.
#[test]
fn bgid_2048_registers_but_never_maps() {
    if uring(8).is_none() {
        return;
    }
    let theirs = io_uring::IoUring::new(8).unwrap();
    // SAFETY: With IOU_PBUF_RING_MMAP (flag 1) the kernel allocates the ring; no address is
    // passed.
    unsafe {
        theirs
            .submitter()
            .register_buf_ring_with_flags(0, 16, 2048, 1)
    }
    .unwrap();
    // SAFETY: `theirs` submits and reaps nothing while `ring` lives.
    let ring = unsafe { Uring::adopt(theirs.as_fd(), rustix::io_uring::IoringSetupFlags::empty()) }
        .unwrap();
    for off in [0x8000_0000u64 | 2048 << 16, 0x8000_0000] {
        assert_eq!(
            raw_mmap(&ring, off, PAGE),
            Err(libc::ENOMEM),
            "raw mmap at {off:#x}"
        );
    }
    let e = ring.register_buf_ring(2048, 16, 256).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    let e = ring
        .map(Region::PbufRing { bgid: 2048 }, PAGE, MapFlags::empty())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    eprintln!("bgid 2048: registered by the kernel, ENOMEM at every offset; pktmap EINVAL");
}

/// One multishot RECV: a completion per datagram, each flagged MORE while the request stays
/// armed, each in its own buffer of the group.
#[test]
fn multishot_recv_completes_once_per_datagram() {
    let Some(mut ring) = uring(16) else { return };
    const N: u32 = 8;
    let mut bufs = ring.register_buf_ring(11, 16, 2048).unwrap();
    let (submitter, mut sq, mut cq) = ring.split();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sqe = pktmap::uring::recv_multishot(rx.as_fd(), 11, 99);
    // SAFETY: `rx` and `bufs` outlive every completion: the request is cancelled below, and
    // its last completion reaped, before either drops.
    assert!(unsafe { sq.push(&sqe) });
    sq.sync();
    submitter.submit(0, None).unwrap();
    for i in 0..N {
        tx.send_to(&common::payload(i), rx.local_addr().unwrap())
            .unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < N as usize && Instant::now() < deadline {
        let _ = submitter.enter(0, 1, Some(Duration::from_millis(200)));
        while let Some(c) = cq.pop() {
            assert_eq!(c.user_data, 99);
            assert!(c.more(), "multishot stays armed: {c:?}");
            let bid = c.buffer_id().expect("a buffer");
            let mut data = vec![0; c.result().unwrap() as usize];
            bufs.read(bid, &mut data).unwrap();
            got.push(u32::from_le_bytes(data[4..8].try_into().unwrap()));
            assert_eq!(data, common::payload(*got.last().unwrap()));
            bufs.recycle(bid).unwrap();
        }
    }
    assert_eq!(
        got,
        (0..N).collect::<Vec<_>>(),
        "one completion per datagram, in order"
    );
    // SAFETY: A cancel names only a user_data.
    assert!(unsafe { sq.push(&pktmap::uring::cancel(99, 100)) });
    sq.sync();
    submitter.submit(0, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut done = Vec::new();
    while done.len() < 2 && Instant::now() < deadline {
        let _ = submitter.enter(0, 1, Some(Duration::from_millis(200)));
        done.extend(&mut cq);
    }
    let ended = done
        .iter()
        .find(|c| c.user_data == 99)
        .expect("the RECV ends");
    assert!(!ended.more());
    assert_eq!(
        ended.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    let cancel = done
        .iter()
        .find(|c| c.user_data == 100)
        .expect("the cancel completes");
    assert_eq!(cancel.res, 0);
}
