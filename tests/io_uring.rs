//! io_uring through pktmap, for real: UDP datagrams on 127.0.0.1 received into buffers of a
//! provided-buffer ring that pktmap mapped, checked byte for byte; and each bad input's errno
//! next to what the raw `mmap` syscall does with it.
//!
//! Traffic stays on 127.0.0.1, in bounded batches, each wait bounded by a timeout. io_uring
//! needs no root; if the kernel refuses it (`kernel.io_uring_disabled`, seccomp), the tests say
//! so loudly and skip, except under `CI=true`, where they fail.

mod common;

use pktmap::io_uring::{recv_with_buffer_select, IoUring, Region};
use pktmap::resource::{MapFlags, MapOptions};
use rustix::mm::{self, MapFlags as SysMapFlags, ProtFlags};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::ptr;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// The instance, or `None` (after a loud message) where io_uring is unavailable outside CI.
fn uring(entries: u32) -> Option<IoUring> {
    match IoUring::new(entries) {
        Ok(r) => Some(r),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("io_uring_setup failed under CI=true: {e}")
        }
        Err(e) => {
            eprintln!(
                "!!! SKIPPED: io_uring_setup failed ({e}); this kernel or sandbox has no io_uring"
            );
            None
        }
    }
}

/// Datagram `seq`: a header naming it and a body every byte of which depends on it.
fn payload(seq: u32) -> Vec<u8> {
    let len = 16 + (seq as usize * 37) % 1400;
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(b"PKTM");
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((8..len).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    p
}

/// `mmap(NULL, len, RW, MAP_SHARED, fd, offset)` without pktmap: the errno, or the first 8
/// bytes of the mapping, which is unmapped again.
fn raw_mmap(fd: &IoUring, offset: u64, len: usize) -> Result<u64, i32> {
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
    let Some(ring) = uring(64) else { return };
    const BGID: u16 = 1;
    const BATCH: u32 = 32;
    const TOTAL: u32 = 1024;
    let mut bufs = ring.register_buf_ring(BGID, 64, 2048).unwrap();
    // The ring pktmap mapped is the one the kernel reads: its entries name our buffers.
    assert_eq!(bufs.mapping().len(), 64 * 16);
    let (mut sq, mut cq) = ring.queues().unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![false; TOTAL as usize];
    let mut bytes = 0usize;
    for batch in 0..TOTAL / BATCH {
        for i in 0..BATCH {
            // SAFETY: `rx` and `bufs` outlive every completion: this test reaps them all below
            // before either is dropped.
            assert!(unsafe { sq.push(&recv_with_buffer_select(rx.as_fd(), BGID, u64::from(i))) });
        }
        sq.sync();
        ring.enter(sq.pending(), 0, None).unwrap();
        for i in 0..BATCH {
            tx.send(&payload(batch * BATCH + i)).unwrap();
        }
        let mut got = 0;
        while got < BATCH {
            assert!(
                Instant::now() < deadline,
                "timed out with {got}/{BATCH} in batch {batch}"
            );
            match ring.enter(0, BATCH - got, Some(Duration::from_millis(500))) {
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
                assert_eq!(data, payload(seq), "datagram {seq} differs in buffer {bid}");
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
    assert!(seen.iter().all(|&s| s));
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
        .layout(pktmap::io_uring::LAYOUT)
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
        .layout(pktmap::io_uring::LAYOUT)
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
    let Some(ring) = uring(16) else { return };
    let (sq, mut cq) = ring.queues().unwrap();
    assert_eq!(sq.capacity(), 16);
    assert_eq!(sq.pending(), 0);
    assert!(cq.pop().is_none());
    let e = ring
        .enter(0, 1, Some(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ETIME));
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
