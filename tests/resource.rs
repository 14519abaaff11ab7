//! Flag semantics of `pktmap::resource` on memfd-backed resources (no driver needed).
//!
//! Each test makes its own memfd; fault counts are per thread (`RUSAGE_THREAD`), so tests can
//! run in parallel.

use pktmap::offset::{pktmap_types, PKTMAP};
use pktmap::resource::{map, map_resource, MapFlags, MapOptions, Mapping};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::ffi::c_void;
use std::io;
use std::ptr::NonNull;

const PAGE: usize = 4096;

fn memfd(name: &str, len: usize) -> OwnedFd {
    let fd = memfd_create(name, MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&fd, len as u64).unwrap();
    fd
}

/// Minor faults this thread has taken so far.
fn minor_faults() -> i64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable rusage; RUSAGE_THREAD reports the calling thread.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: getrusage succeeded and filled `ru`.
    unsafe { ru.assume_init() }.ru_minflt
}

/// Held for writing by [`in_child`] across its `fork`, for reading by whatever counts this
/// thread's faults. A `fork` write-protects every private page of the parent, the stacks of
/// all its threads too, so a counting thread's next stack write (zeroing the `rusage` of the
/// closing count) takes a copy-on-write fault that has nothing to do with the mapping it
/// touches: `populate_leaves_no_fault_to_take` saw 3 such faults once under load, while a
/// sibling test forked. (A fork that ended before the first count costs nothing: that count
/// zeroes its `rusage`, at the stack address the closing one uses, before it asks.)
static FORKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Writes one byte to every page through raw pointers and returns the faults it took.
fn touch_write(m: &Mapping) -> i64 {
    let _no_fork = FORKS.read().unwrap_or_else(|e| e.into_inner());
    let p = m.as_mut_ptr().unwrap();
    let before = minor_faults();
    for off in (0..m.len()).step_by(PAGE) {
        // SAFETY: `off` is inside the writable mapping.
        unsafe { p.add(off).write_volatile(0xa5) };
    }
    minor_faults() - before
}

/// Reads one byte of every page and returns the faults it took.
fn touch_read(m: &Mapping) -> i64 {
    let _no_fork = FORKS.read().unwrap_or_else(|e| e.into_inner());
    let p = m.as_ptr();
    let before = minor_faults();
    for off in (0..m.len()).step_by(PAGE) {
        // SAFETY: `off` is inside the readable mapping.
        std::hint::black_box(unsafe { p.add(off).read_volatile() });
    }
    minor_faults() - before
}

/// A memfd whose pages all exist already (the host stand-in for driver-owned buffers).
fn filled(name: &str, pages: usize) -> OwnedFd {
    let fd = memfd(name, pages * PAGE);
    let first = map(&fd, 0, pages * PAGE, MapFlags::empty()).unwrap();
    touch_write(&first);
    fd
}

fn is_mapped(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .contains(&format!("memfd:{name} "))
}

#[test]
fn populate_leaves_no_fault_to_take() {
    const PAGES: usize = 256;
    let fd = filled("populate-existing", PAGES);
    let m = map(&fd, 0, PAGES * PAGE, MapFlags::POPULATE).unwrap();
    assert_eq!(
        touch_write(&m),
        0,
        "POPULATE: write touches of existing pages"
    );
    let ro = map(
        &fd,
        0,
        PAGES * PAGE,
        MapFlags::POPULATE | MapFlags::READONLY,
    )
    .unwrap();
    assert_eq!(touch_read(&ro), 0, "POPULATE | READONLY: read touches");

    let fresh = memfd("populate-fresh", PAGES * PAGE);
    let m = map(&fresh, 0, PAGES * PAGE, MapFlags::POPULATE).unwrap();
    assert_eq!(touch_write(&m), 0, "POPULATE: write touches of fresh pages");
}

#[test]
fn without_populate_each_written_page_faults() {
    const PAGES: usize = 256;
    let fd = filled("fault-in", PAGES);
    let m = map(&fd, 0, PAGES * PAGE, MapFlags::empty()).unwrap();
    let faults = touch_write(&m);
    // Write faults on a shared mapping are taken one page at a time (no fault-around).
    assert!(
        faults >= PAGES as i64,
        "{faults} faults for {PAGES} written pages"
    );
    assert_eq!(touch_write(&m), 0, "a second pass finds every page mapped");
}

#[test]
fn populate_failure_reports_errno_and_leaves_nothing_mapped() {
    let name = "populate-past-eof";
    let fd = memfd(name, 4 * PAGE);
    let m = MapOptions::new(4 * PAGE).map(&fd, 0).unwrap();
    // Another holder of the file truncates it under the mapping: pages 2 and 3 are gone.
    ftruncate(&fd, 2 * PAGE as u64).unwrap();
    let e = m.populate().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
    assert!(e.to_string().contains("MADV_POPULATE"), "{e}");
    assert!(e.to_string().contains("past the end of the file"), "{e}");
    drop(m);
    assert!(!is_mapped(name), "drop unmaps");
    // A POPULATE that fails inside `map` (which a regular file no longer can: its length is
    // checked first) is tests/io_uring.rs's `a_failed_populate_inside_map_...`.
}

/// A regular file too short for the length is refused before the `mmap` (which would succeed,
/// and the first touch of the pages past the end would kill the process with SIGBUS).
#[test]
fn a_map_past_the_end_of_a_file_is_refused_before_the_syscall() {
    let name = "map-past-eof";
    let fd = memfd(name, 4 * PAGE);
    for (offset, len) in [(2 * PAGE, 4 * PAGE), (0, 5 * PAGE), (4 * PAGE, PAGE)] {
        for flags in [MapFlags::empty(), MapFlags::READONLY, MapFlags::POPULATE] {
            let e = MapOptions::new(len)
                .flags(flags)
                .map(&fd, offset as u64)
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("SIGBUS") && msg.contains("16384 bytes"),
                "{msg}"
            );
            assert!(!is_mapped(name), "refused, yet mapped: {msg}");
        }
        let e = MapOptions::new(len)
            .private()
            .map(&fd, offset as u64)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "private: {e}");
    }
    // A file on disk as well as shmem.
    let dir = std::env::temp_dir().join(format!("pktmap-eof-{}", std::process::id()));
    std::fs::write(&dir, [7u8; 100]).unwrap();
    let file = std::fs::File::open(&dir).unwrap();
    let e = map(&file, 0, 2 * PAGE, MapFlags::READONLY).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    // The last, partial page is backed (its tail reads as zeros).
    let m = map(&file, 0, PAGE, MapFlags::READONLY).unwrap();
    let mut b = [0; 2];
    m.read_at(99, &mut b).unwrap();
    assert_eq!(b, [7, 0]);
    std::fs::remove_file(&dir).unwrap();
    // Exactly to the end maps.
    map(&fd, 2 * PAGE as u64, 2 * PAGE, MapFlags::POPULATE).unwrap();
}

/// The refused case really is a SIGBUS without the check: the raw `mmap` accepts it.
#[test]
fn past_the_end_the_kernel_maps_and_a_touch_raises_sigbus() {
    let fd = memfd("raw-past-eof", PAGE);
    // SAFETY: a fresh shared mapping at a kernel-chosen address; unmapped below.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .expect("the kernel maps past the end");
    let addr = p as usize;
    let sig = in_child(move || {
        // SAFETY: inside the mapping; the second page is past the end of the file.
        unsafe { std::ptr::read_volatile((addr + PAGE) as *const u8) };
    });
    assert_eq!(sig, Some(libc::SIGBUS));
    // SAFETY: the mapping made above, unused since.
    unsafe { rustix::mm::munmap(p, 2 * PAGE) }.unwrap();
}

/// The safe path for memory shared with processes that could truncate it: a memfd sealed
/// against shrinking keeps every mapped page.
#[test]
fn a_sealed_memfd_cannot_shrink_under_a_mapping() {
    let fd = pktmap::resource::sealed_memfd("sealed", 4 * PAGE as u64).unwrap();
    let m = map(&fd, 0, 4 * PAGE, MapFlags::POPULATE).unwrap();
    let e = ftruncate(&fd, PAGE as u64).unwrap_err();
    assert_eq!(e, rustix::io::Errno::PERM);
    // Another process, with its own file description of the same memfd, cannot either.
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let again = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    assert_eq!(
        again.set_len(0).unwrap_err().raw_os_error(),
        Some(libc::EPERM)
    );
    m.write_at(4 * PAGE - 1, &[9]).unwrap();
    m.populate().unwrap();
    // Growing is allowed, and then a longer map is too.
    ftruncate(&fd, 8 * PAGE as u64).unwrap();
    map(&fd, 0, 8 * PAGE, MapFlags::POPULATE).unwrap();
}

/// Runs `f` in a forked child; returns the signal that killed it, or `None` if it exited 0.
fn in_child(f: impl FnOnce()) -> Option<i32> {
    let _forking = FORKS.write().unwrap_or_else(|e| e.into_inner());
    // SAFETY: The child only runs `f` (plain memory accesses) and `_exit`, both fine after
    // fork in a multi-threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        f();
        // SAFETY: Leaves the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFSIGNALED(status) {
        Some(libc::WTERMSIG(status))
    } else {
        assert_eq!(libc::WEXITSTATUS(status), 0);
        None
    }
}

#[test]
fn readonly_write_faults_with_sigsegv() {
    let fd = filled("readonly", 1);
    let ro = map(&fd, 0, PAGE, MapFlags::READONLY).unwrap();
    assert!(ro.as_mut_ptr().is_none());
    let p = ro.as_ptr() as *mut u8;
    let sig = in_child(|| {
        // SAFETY: The pointer is valid; the page is PROT_READ and the fault is the point.
        unsafe { p.write_volatile(1) }
    });
    assert_eq!(sig, Some(libc::SIGSEGV));
    let mut b = [0];
    ro.read_at(0, &mut b).unwrap();
    assert_eq!(b, [0xa5], "the child's write did not land");
}

#[test]
fn fixed_refuses_an_occupied_range_and_never_clobbers() {
    let fd = filled("fixed", 4);
    let other = memfd("fixed-other", 4 * PAGE);
    let victim = map(&other, 0, 4 * PAGE, MapFlags::empty()).unwrap();
    victim.write_at(PAGE, b"keep").unwrap();
    let at = NonNull::new(victim.as_ptr() as *mut c_void).unwrap();
    for addr in [
        at,
        NonNull::new(victim.as_ptr().wrapping_add(PAGE) as *mut c_void).unwrap(),
    ] {
        let e = MapOptions::new(2 * PAGE)
            .flags(MapFlags::FIXED)
            .at(addr)
            .map(&fd, 0)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    }
    let mut b = [0; 4];
    victim.read_at(PAGE, &mut b).unwrap();
    assert_eq!(&b, b"keep");

    // FIXED without an address is refused before any call.
    let e = MapOptions::new(PAGE)
        .flags(MapFlags::FIXED)
        .map(&fd, 0)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn fixed_maps_exactly_at_a_free_address() {
    let fd = filled("fixed-free", 4);
    // Find free space by mapping and unmapping. The other tests of this binary map from their
    // own threads meanwhile and may take the address first: MAP_FIXED_NOREPLACE makes that
    // an EEXIST, never a clobber, and then the test looks for free space again (a lost race
    // each time 20 times over would be the kernel ignoring NOREPLACE's contract, not luck).
    let mut lost = 0;
    let (m, addr) = loop {
        let probe = map(&fd, 0, 4 * PAGE, MapFlags::READONLY).unwrap();
        let (addr, len) = probe.into_raw();
        // SAFETY: `addr` is the mapping `into_raw` gave us; nothing else uses it.
        unsafe { Mapping::from_raw(addr, len, MapFlags::READONLY) }
            .unmap()
            .unwrap();
        match MapOptions::new(4 * PAGE)
            .flags(MapFlags::FIXED | MapFlags::POPULATE)
            .at(addr)
            .map(&fd, 0)
        {
            Ok(m) => break (m, addr),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && lost < 20 => lost += 1,
            Err(e) => panic!("FIXED at a free address, after {lost} lost races: {e}"),
        }
    };
    assert_eq!(m.as_ptr() as *mut c_void, addr.as_ptr());
    assert_eq!(touch_write(&m), 0);
}

#[test]
fn map_replacing_replaces_a_reservation() {
    let fd = filled("replace", 2);
    let reserve = MapOptions::new(8 * PAGE).map_anonymous().unwrap();
    let (base, len) = reserve.into_raw();
    let addr = NonNull::new(base.as_ptr().wrapping_byte_add(2 * PAGE)).unwrap();
    // SAFETY: [addr, addr + 2 pages) lies inside our own reservation, which nothing references.
    let m = unsafe {
        MapOptions::new(2 * PAGE)
            .flags(MapFlags::FIXED)
            .at(addr)
            .map_replacing(&fd, 0)
    }
    .unwrap();
    assert_eq!(m.as_ptr() as *mut c_void, addr.as_ptr());
    let mut b = [0];
    m.read_at(PAGE, &mut b).unwrap();
    assert_eq!(b, [0xa5], "the file's page replaced the reservation");
    let (p, n) = m.into_raw();
    assert_eq!((p, n), (addr, 2 * PAGE));
    // SAFETY: The whole reservation (now partly the file mapping) is ours; one munmap ends both.
    unsafe { Mapping::from_raw(base, len, MapFlags::empty()) }
        .unmap()
        .unwrap();
}

#[test]
fn shared_writes_are_seen_across_mappings_and_fork() {
    let fd = memfd("shared", 2 * PAGE);
    let off = PAGE as u64;
    let a = map(&fd, off, PAGE, MapFlags::empty()).unwrap();
    let b = map(&fd, off, PAGE, MapFlags::POPULATE).unwrap();
    a.write_at(100, b"from a").unwrap();
    let mut buf = [0; 6];
    b.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from a");

    let p = b.as_mut_ptr().unwrap();
    let sig = in_child(|| {
        let msg = b"from child";
        // SAFETY: `p` is the child's inherited copy of the shared, writable mapping `b`.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), p.add(200), msg.len()) };
    });
    assert_eq!(sig, None);
    let mut buf = [0; 10];
    a.read_at(200, &mut buf).unwrap();
    assert_eq!(
        &buf, b"from child",
        "a child's MAP_SHARED write is seen by the parent"
    );
}

#[test]
fn private_writes_stay_private() {
    let fd = memfd("private", PAGE);
    let shared = map(&fd, 0, PAGE, MapFlags::empty()).unwrap();
    shared.write_at(0, b"original").unwrap();
    let private = MapOptions::new(PAGE)
        .private()
        .flags(MapFlags::POPULATE)
        .map(&fd, 0)
        .unwrap();
    private.write_at(0, b"changed!").unwrap();
    let mut buf = [0; 8];
    shared.read_at(0, &mut buf).unwrap();
    assert_eq!(
        &buf, b"original",
        "MAP_PRIVATE writes must not reach the resource"
    );
    let mut file = [0; 8];
    rustix::io::pread(&fd, &mut file, 0).unwrap();
    assert_eq!(&file, b"original");
    private.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"changed!");
}

#[test]
fn bad_requests_return_the_kernels_errno() {
    let fd = memfd("errno", PAGE);
    // SAFETY: mmap only passes the number to the kernel; no fd this high is open.
    let closed = unsafe { BorrowedFd::borrow_raw(1_000_000) };
    let cases: Vec<(&str, pktmap::Result<Mapping>, i32)> = vec![
        (
            "bad fd",
            map(closed, 0, PAGE, MapFlags::empty()),
            libc::EBADF,
        ),
        (
            "zero length",
            map(&fd, 0, 0, MapFlags::empty()),
            libc::EINVAL,
        ),
        (
            "unaligned offset",
            map(&fd, 100, PAGE, MapFlags::empty()),
            libc::EINVAL,
        ),
        (
            "unknown type",
            map_resource(&fd, &PKTMAP, 3, 0, PAGE, MapFlags::empty()),
            libc::EINVAL,
        ),
        (
            "type outside the field",
            map_resource(&fd, &PKTMAP, 8, 0, PAGE, MapFlags::empty()),
            libc::EINVAL,
        ),
        (
            "id outside the field",
            map_resource(
                &fd,
                &PKTMAP,
                pktmap_types::POOL,
                1 << 32,
                PAGE,
                MapFlags::empty(),
            ),
            libc::EINVAL,
        ),
        (
            "write-only file",
            map(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .unwrap()
                    .as_fd(),
                0,
                PAGE,
                MapFlags::READONLY,
            ),
            libc::EACCES,
        ),
        (
            "length overflow",
            map(&fd, 0, usize::MAX, MapFlags::empty()),
            libc::ENOMEM,
        ),
    ];
    for (what, got, want) in cases {
        let e = got.err().unwrap_or_else(|| panic!("{what}: mapped"));
        assert_eq!(e.raw_os_error(), Some(want), "{what}: {e}");
        assert_eq!(
            e.kind(),
            io::Error::from_raw_os_error(want).kind(),
            "{what}"
        );
    }
    let e = MapFlags::from_raw(0x10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn errors_name_what_was_asked() {
    let fd = memfd("named", PAGE);
    // SAFETY: mmap only passes the number to the kernel; no fd this high is open.
    let closed = unsafe { BorrowedFd::borrow_raw(1_000_000) };
    let e = map_resource(
        closed,
        &PKTMAP,
        pktmap_types::RING,
        9,
        PAGE,
        MapFlags::empty(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("RING") && msg.contains("id 9") && msg.contains("0x"),
        "{msg}"
    );
    assert!(msg.contains("Bad file descriptor"), "{msg}");
    drop(fd);
}

#[test]
fn flush_lock_and_advise_work() {
    let fd = memfd("calls", 4 * PAGE);
    let m = map(&fd, 0, 4 * PAGE, MapFlags::POPULATE).unwrap();
    m.write_at(0, b"x").unwrap();
    m.flush().unwrap();
    m.lock().unwrap();
    m.unlock().unwrap();
    // SAFETY: MADV_WILLNEED only reads ahead; contents are unchanged.
    unsafe { m.advise(rustix::mm::Advice::WillNeed) }.unwrap();
    m.unmap().unwrap();
}
