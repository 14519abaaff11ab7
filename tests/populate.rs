//! POPULATE's promise, counted: after `Ok`, reading and then writing every 4 KiB page of the
//! mapping takes no page fault, on every backing the library maps — shared memfds (existing and
//! fresh pages), hugetlb, a regular file on disk (shared and private), anonymous memory, a
//! read-only mapping, and an io_uring instance's rings. `resource/`'s module docs say which
//! populate each takes (a read populate where it maps pages writable, a write populate where it
//! does not); these tests check the outcome, with the thread's minor fault counter
//! (`getrusage(RUSAGE_THREAD)`). Writes store the byte they read, so no content changes.
//!
//! Counts, never times. The hugetlb test reserves a 2 MiB page through
//! `/proc/sys/vm/nr_hugepages` (`pktmap_testbed::HugePages`) and puts the old value back; it fails,
//! saying why, where it cannot.

use pktmap::resource::{map, MapFlags, MapOptions, Mapping};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::os::fd::OwnedFd;

const PAGE: usize = 4096;

fn minor_faults() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes only into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: getrusage succeeded, so the (zeroed, all-integer) struct is initialized.
    unsafe { usage.assume_init() }.ru_minflt as u64
}

/// Minor faults while reading every page, then while writing every page (if writable).
fn touch_faults(m: &Mapping) -> (u64, u64) {
    let mut byte = [0u8];
    let f0 = minor_faults();
    for off in (0..m.len()).step_by(PAGE) {
        m.read_at(off, &mut byte).unwrap();
    }
    let f1 = minor_faults();
    if m.is_readonly() {
        return (f1 - f0, 0);
    }
    for off in (0..m.len()).step_by(PAGE) {
        m.read_at(off, &mut byte).unwrap();
        m.write_at(off, &byte).unwrap();
    }
    (f1 - f0, minor_faults() - f1)
}

/// Asserts that POPULATE left nothing to fault, and that without it the touches do fault (so
/// the counter sees this kind of memory at all).
fn assert_no_faults(what: &str, populated: &Mapping, plain: Option<&Mapping>) {
    let (read, write) = touch_faults(populated);
    eprintln!(
        "{what}: {} pages, faults after POPULATE: read {read}, write {write}",
        populated.len().div_ceil(PAGE)
    );
    assert_eq!((read, write), (0, 0), "{what}: POPULATE left faults");
    if let Some(plain) = plain {
        let (read, write) = touch_faults(plain);
        eprintln!("{what}: without POPULATE: read {read}, write {write}");
        assert!(
            read + write > 0,
            "{what}: a plain mapping took no fault at all"
        );
    }
}

fn memfd(len: usize, flags: MemfdFlags) -> OwnedFd {
    let fd = memfd_create("pktmap-populate", MemfdFlags::CLOEXEC | flags).unwrap();
    ftruncate(&fd, len as u64).unwrap();
    fd
}

const LEN: usize = 64 * PAGE;

#[test]
fn shared_memfd_with_existing_pages() {
    let fd = memfd(LEN, MemfdFlags::empty());
    let fill = map(&fd, 0, LEN, MapFlags::empty()).unwrap();
    for off in (0..LEN).step_by(PAGE) {
        fill.write_at(off, &[1]).unwrap();
    }
    drop(fill);
    let m = map(&fd, 0, LEN, MapFlags::POPULATE).unwrap();
    let plain = map(&fd, 0, LEN, MapFlags::empty()).unwrap();
    assert_no_faults("memfd, existing pages", &m, Some(&plain));
}

#[test]
fn shared_memfd_with_fresh_pages() {
    let fd = memfd(LEN, MemfdFlags::empty());
    let m = map(&fd, 0, LEN, MapFlags::POPULATE).unwrap();
    assert_no_faults("memfd, fresh pages", &m, None);
    let fd = memfd(LEN, MemfdFlags::empty());
    let plain = map(&fd, 0, LEN, MapFlags::empty()).unwrap();
    assert!(touch_faults(&plain).0 > 0);
}

#[test]
fn read_only_memfd() {
    let fd = memfd(LEN, MemfdFlags::empty());
    let m = map(&fd, 0, LEN, MapFlags::READONLY | MapFlags::POPULATE).unwrap();
    assert_no_faults("memfd, READONLY", &m, None);
}

/// A file on a disk filesystem (the temporary directory; ext4 here): its shared mappings want
/// write notification, so a read populate alone would leave write faults.
fn disk_file(name: &str) -> (std::fs::File, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("pktmap-populate-{}-{name}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.set_len(LEN as u64).unwrap();
    (f, path)
}

#[test]
fn regular_file_shared() {
    let (f, path) = disk_file("shared");
    let fs = rustix::fs::fstatfs(&f).unwrap().f_type;
    let m = map(&f, 0, LEN, MapFlags::POPULATE).unwrap();
    let plain = map(&f, 0, LEN, MapFlags::empty()).unwrap();
    assert_no_faults(
        &format!("regular file (fs {fs:#x}), shared"),
        &m,
        Some(&plain),
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn regular_file_private() {
    let (f, path) = disk_file("private");
    let m = MapOptions::new(LEN)
        .flags(MapFlags::POPULATE)
        .private()
        .map(&f, 0)
        .unwrap();
    let plain = MapOptions::new(LEN).private().map(&f, 0).unwrap();
    assert_no_faults("regular file, private", &m, Some(&plain));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn anonymous_memory() {
    let m = MapOptions::new(LEN)
        .flags(MapFlags::POPULATE)
        .map_anonymous()
        .unwrap();
    let plain = MapOptions::new(LEN).map_anonymous().unwrap();
    assert_no_faults("anonymous", &m, Some(&plain));
}

#[test]
fn hugetlb_memfd() {
    const HUGE: usize = 2 << 20;
    let _pages = pktmap_testbed::HugePages::require(1);
    let fd = memfd(HUGE, MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB);
    let m = map(&fd, 0, HUGE, MapFlags::POPULATE).unwrap();
    assert_no_faults("hugetlb memfd, 2 MiB", &m, None);
    drop(m);
    // The one page is in the memfd now; a plain second mapping faults once on first touch.
    let plain = map(&fd, 0, HUGE, MapFlags::empty()).unwrap();
    assert!(touch_faults(&plain).0 >= 1);
}

#[cfg(feature = "io-uring")]
#[test]
fn io_uring_rings() {
    use pktmap::uring::{Region, Uring};
    // 4096 entries: rings of several pages (the SQ ring's index array is 16 KiB, the CQ ring
    // 128 KiB, the SQEs 256 KiB).
    let ring = Uring::new(4096).expect("io_uring (the host kernel has it)");
    for region in [Region::SqRing, Region::CqRing, Region::Sqes] {
        let len = ring.region_len(region).unwrap();
        let m = ring.map(region, len, MapFlags::POPULATE).unwrap();
        assert_no_faults(&format!("io_uring {region:?}"), &m, None);
    }
}
