//! Read-only everywhere, and writable opens for state changes (driver/kmod/README.md,
//! "Read-only everywhere", "Writable opens change state", and the read-only pool files of
//! "Pool files"), in one place: STATE never writable, every shared mapping made without
//! `PROT_WRITE` unable to become writable (`EACCES`) or to be written (`SIGSEGV`), no
//! `PROT_EXEC` anywhere, `O_RDONLY` opens refused every state change, and a read-only pool
//! file refused every way of writing (checked in the unrelated process it was sent to).

use crate::sys::{self, in_child, poke};
use crate::utils::{read_pool, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolFile;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions};
use pktmap_abi::ioctl::{self, PoolCreate, ResourceId, RingCreate};
use std::os::fd::{AsFd, BorrowedFd};

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

/// STATE is never writable: a read-only mapping cannot become writable, and neither a
/// writable mapping nor `pwrite` is allowed.
pub fn state(r: &mut Report, dev: &Device) {
    match dev.map_state() {
        Ok(m) => r.errno(
            "mprotect STATE to PROT_WRITE: EACCES (VM_MAYWRITE cleared)",
            sys::mprotect_rw(m.as_ptr(), PAGE),
            libc::EACCES,
        ),
        Err(e) => r.check("STATE mmap READONLY", false, e),
    }
    r.errno(
        "mmap STATE writable MAP_SHARED: EPERM",
        dev.map(ResourceType::State, 0, PAGE, MapFlags::empty()),
        libc::EPERM,
    );
    r.errno(
        "mmap STATE writable MAP_PRIVATE: EPERM",
        sys::mmap_probe(dev.as_fd(), PAGE, RW, libc::MAP_PRIVATE, 0),
        libc::EPERM,
    );
    r.errno(
        "pwrite STATE: EPERM",
        dev.write_resource(ResourceType::State, 0, b"x"),
        libc::EPERM,
    );
}

/// Writing a `READONLY` mapping of `pool` made through the library faults.
pub fn pool(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(m) = dev.map_pool(pool, MapFlags::READONLY) else {
        return r.check("mmap pool READONLY", false, "failed");
    };
    let p = m.as_ptr() as *mut u8;
    let sig = in_child(|| {
        // SAFETY: The page is PROT_READ: the fault is the point.
        unsafe { poke(p, 1) }
    });
    r.check(
        "writing a READONLY pool mapping: SIGSEGV",
        sig == Some(libc::SIGSEGV),
        format!("{sig:?}"),
    );
}

/// Read-only and no-exec hold for every resource.
pub fn mappings(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 2).create(dev).expect("pool");
    let ring = dev.create_ring(8, pool.id).expect("ring");
    let pool_off = ResourceType::Pool.offset(pool.id);
    let ring_off = ResourceType::Ring.offset(ring.id);
    for (what, off, len) in [("pool", pool_off, 2 * PAGE), ("ring", ring_off, PAGE)] {
        let p = sys::mmap_raw(Some(fd), len, libc::PROT_READ, libc::MAP_SHARED, off).expect("map");
        r.errno(
            &format!("mprotect a read-only shared {what} mapping to PROT_WRITE: EACCES"),
            sys::mprotect(p, len, RW),
            libc::EACCES,
        );
        let sig = in_child(|| {
            // SAFETY: The page is PROT_READ: the fault is the point.
            unsafe { poke(p, 1) }
        });
        r.check(
            &format!("writing a read-only shared {what} mapping: SIGSEGV"),
            sig == Some(libc::SIGSEGV),
            format!("{sig:?}"),
        );
        r.errno(
            &format!("mprotect a {what} mapping to PROT_EXEC: EACCES"),
            sys::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC),
            libc::EACCES,
        );
        // SAFETY: The mapping made above, used by nothing else.
        let _ = unsafe { sys::munmap(p, len) };
        for (kind, flags) in [("shared", libc::MAP_SHARED), ("private", libc::MAP_PRIVATE)] {
            r.errno(
                &format!("mmap a {what} PROT_EXEC {kind}: EPERM"),
                sys::mmap_probe(fd, len, libc::PROT_READ | libc::PROT_EXEC, flags, off),
                libc::EPERM,
            );
        }
    }
    // A private read-only mapping may still become writable: its writes are copies.
    let p =
        sys::mmap_raw(Some(fd), PAGE, libc::PROT_READ, libc::MAP_PRIVATE, pool_off).expect("map");
    let up = sys::mprotect(p, PAGE, RW);
    if up.is_ok() {
        // SAFETY: Now writable (private: copy on write).
        unsafe { poke(p, 0x77) };
    }
    r.check(
        "a private read-only pool mapping may become writable; its writes are copies",
        up.is_ok() && read_pool(dev, pool.id, 1)[0] != 0x77,
        format!("{up:?}"),
    );
    // SAFETY: The mapping made above.
    let _ = unsafe { sys::munmap(p, PAGE) };
    r.errno(
        "mmap STATE PROT_EXEC: EPERM",
        sys::mmap_probe(
            fd,
            PAGE,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED,
            0,
        ),
        libc::EPERM,
    );
    dev.destroy_ring(ring.id).expect("destroy ring");
    dev.destroy_pool(pool.id).expect("destroy pool");
}

fn ioctl_id<T>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> std::io::Result<()> {
    sys::ioctl_raw(fd, cmd, (arg as *mut T).cast())
}

/// An `O_RDONLY` open may look but not change.
pub fn rdonly_open(r: &mut Report) {
    let ro = sys::open_device(libc::O_RDONLY).expect("open O_RDONLY");
    let fd = ro.as_fd();
    let mut create = PoolCreate {
        buf_size: 4096,
        buf_count: 1,
        ..PoolCreate::default()
    };
    r.errno(
        "POOL_CREATE on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::POOL_CREATE, &mut create),
        libc::EBADF,
    );
    let mut id = ResourceId { id: 1 };
    r.errno(
        "POOL_DESTROY on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::POOL_DESTROY, &mut id),
        libc::EBADF,
    );
    let mut ring = RingCreate {
        entries: 8,
        pool_id: 1,
        flags: 0,
        id: 0,
    };
    r.errno(
        "RING_CREATE on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::RING_CREATE, &mut ring),
        libc::EBADF,
    );
    r.errno(
        "RING_DESTROY on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::RING_DESTROY, &mut id),
        libc::EBADF,
    );
    let mut info = ioctl::PoolInfo {
        id: 1,
        ..Default::default()
    };
    r.errno(
        "POOL_INFO on an O_RDONLY open is allowed (unknown id: EINVAL, not EBADF)",
        ioctl_id(fd, ioctl::POOL_INFO, &mut info),
        libc::EINVAL,
    );
    let state = sys::mmap_raw(Some(fd), PAGE, libc::PROT_READ, libc::MAP_SHARED, 0);
    r.check(
        "an O_RDONLY open maps STATE read-only",
        state.is_ok(),
        format!("{state:?}"),
    );
    if let Ok(p) = state {
        // SAFETY: The mapping made above.
        let _ = unsafe { sys::munmap(p, PAGE) };
    }
    let mut b = [0u8; 8];
    r.check(
        "an O_RDONLY open reads STATE with pread",
        sys::pread_raw(fd, b.as_mut_ptr(), 8, 0).ok() == Some(8),
        "failed",
    );
    r.errno(
        "pwrite on an O_RDONLY open: EBADF",
        sys::pwrite_raw(fd, b.as_ptr(), 8, ResourceType::Pool.offset(1)),
        libc::EBADF,
    );
}

/// A read-only pool file, in the unrelated process it was sent to (`pool-peer readonly`):
/// refused every way of writing.
pub fn pool_file(r: &mut Report, file: &PoolFile) {
    r.errno(
        "map a read-only pool file writable: EACCES",
        file.map(MapFlags::empty()),
        libc::EACCES,
    );
    match file.map(MapFlags::READONLY) {
        Ok(m) => {
            r.errno(
                "mprotect the read-only view to PROT_WRITE: EACCES",
                sys::mprotect_rw(m.as_ptr(), PAGE),
                libc::EACCES,
            );
            let child = in_child(|| {
                // SAFETY: The write is expected to fault (SIGSEGV) in this child.
                unsafe { poke(m.as_ptr() as *mut u8, 1) };
            });
            r.check(
                "writing the read-only view: SIGSEGV",
                child == Some(libc::SIGSEGV),
                format!("{child:?}"),
            );
        }
        Err(e) => r.check("map a read-only pool file READONLY", false, e),
    }
    r.errno(
        "map a read-only pool file MAP_PRIVATE: EPERM (a private copy would be writable)",
        MapOptions::new(PAGE)
            .private()
            .flags(MapFlags::READONLY)
            .map(file, ResourceType::Pool.offset(0)),
        libc::EPERM,
    );
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file.as_fd());
    let reopened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"));
    r.check(
        "reopening the read-only pool file read-write through /proc fails",
        reopened.is_err(),
        format!("{reopened:?}"),
    );
}
