//! The raw calls the checks need beyond `pktmap`: fork, faults, mprotect, mremap, raw ioctl.
//!
//! Every unsafe block says why it is sound; the checks themselves stay safe.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Runs `f` in a forked child; returns the signal that killed it, or `None` if it exited 0.
/// A child that exits non-zero is reported as `Some(-status)`.
pub fn in_child(f: impl FnOnce()) -> Option<i32> {
    wait_child(spawn_child(|| {
        f();
        0
    }))
}

/// Forks a child that runs `f` and exits with its status. Call only from a single-threaded
/// process (the checks and the stress parent are).
pub fn spawn_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: The caller is single-threaded, so the child is a full copy; it runs `f` and
    // leaves with `_exit`, never returning into the parent's code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let status = f();
        // SAFETY: Ends the child without running the parent's destructors or atexit hooks;
        // flush what it printed first.
        unsafe {
            libc::fflush(std::ptr::null_mut());
            libc::_exit(status)
        };
    }
    pid
}

/// Waits for `pid`; returns the signal that killed it, `Some(-status)` for a non-zero exit,
/// or `None` for exit 0.
pub fn wait_child(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` is writable.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", io::Error::last_os_error());
    if libc::WIFSIGNALED(status) {
        Some(libc::WTERMSIG(status))
    } else if libc::WEXITSTATUS(status) == 0 {
        None
    } else {
        Some(-libc::WEXITSTATUS(status))
    }
}

/// Minor faults this process has taken.
pub fn minor_faults() -> i64 {
    rusage_minflt(libc::RUSAGE_SELF)
}

/// Minor faults the calling thread has taken.
pub fn thread_minor_faults() -> i64 {
    rusage_minflt(libc::RUSAGE_THREAD)
}

fn rusage_minflt(who: i32) -> i64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a writable rusage.
    let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: getrusage succeeded and filled `ru`.
    unsafe { ru.assume_init() }.ru_minflt
}

/// Writes one byte at `p` (volatile).
///
/// # Safety
/// `p` must be mapped writable, or the caller must expect the fault (in a child).
pub unsafe fn poke(p: *mut u8, v: u8) {
    // SAFETY: The caller's contract.
    unsafe { p.write_volatile(v) }
}

/// Reads one byte at `p` (volatile).
///
/// # Safety
/// `p` must be mapped readable, or the caller must expect the fault (in a child).
pub unsafe fn peek(p: *const u8) -> u8 {
    // SAFETY: The caller's contract.
    unsafe { p.read_volatile() }
}

fn result(rc: i64) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `mprotect(p, len, PROT_READ | PROT_WRITE)`.
pub fn mprotect_rw(p: *const u8, len: usize) -> io::Result<()> {
    // SAFETY: Adding write to a mapping we own changes no memory; the kernel refuses if the
    // mapping may not become writable.
    result(
        unsafe { libc::mprotect(p as *mut c_void, len, libc::PROT_READ | libc::PROT_WRITE) }.into(),
    )
}

/// `mremap(p, len, new_len, 0)` with `new_len > len`: grow in place only (never moves).
pub fn mremap_grow(p: *const u8, len: usize, new_len: usize) -> io::Result<()> {
    debug_assert!(new_len > len);
    mremap_resize(p, len, new_len)
}

/// `madvise(p, len, MADV_DONTNEED)`: drops the pages of a mapping the caller owns (a device
/// mapping faults them in again from the resource).
pub fn madvise_dontneed(p: *const u8, len: usize) -> io::Result<()> {
    // SAFETY: Dropping the page-table entries of our own shared device mapping changes no
    // memory: the next access faults the same resource pages back in.
    result(unsafe { libc::madvise(p as *mut c_void, len, libc::MADV_DONTNEED) }.into())
}

/// `munmap(p, len)` of part of a mapping the caller owns.
///
/// # Safety
/// Nothing may use `[p, p + len)` afterwards.
pub unsafe fn munmap(p: *const u8, len: usize) -> io::Result<()> {
    // SAFETY: The caller's contract.
    result(unsafe { libc::munmap(p as *mut c_void, len) }.into())
}

/// `mmap` with raw protections and flags, for requests `pktmap::resource` would refuse to
/// make (writable STATE under MAP_PRIVATE, odd offsets). Unmaps on success and returns `Ok`.
pub fn mmap_probe(
    fd: BorrowedFd<'_>,
    len: usize,
    prot: i32,
    flags: i32,
    offset: u64,
) -> io::Result<()> {
    // SAFETY: A null hint without MAP_FIXED only takes fresh address space.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            flags,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `p` is the mapping just made, used by nothing else.
    result(unsafe { libc::munmap(p, len) }.into())
}

/// `ioctl(fd, cmd, arg)` with an arbitrary pointer (possibly null), for bad-argument checks.
pub fn ioctl_raw(fd: BorrowedFd<'_>, cmd: u32, arg: *mut c_void) -> io::Result<()> {
    // SAFETY: The kernel validates `arg` with copy_from_user/copy_to_user; a bad pointer is
    // EFAULT, never a write into our memory outside what `cmd` describes (the callers pass null
    // or a struct of the encoded size).
    result(unsafe { libc::ioctl(fd.as_raw_fd(), std::ffi::c_ulong::from(cmd), arg) }.into())
}

/// The symbolic name of an errno, for messages.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::E2BIG => "E2BIG",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// `open("/dev/pktmap", flags | O_CLOEXEC)`, for opens `pktmap::device` does not make
/// (read-only, write-only).
pub fn open_device(flags: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: The path is a NUL-terminated literal; `open` returns a new fd or -1.
    let fd = unsafe { libc::open(c"/dev/pktmap".as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn count(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// `pread(fd, p, len, pos)` into raw memory that may be partly unmapped (the kernel copies and
/// reports a short count or `EFAULT`; it never writes outside `[p, p + len)`).
pub fn pread_raw(fd: BorrowedFd<'_>, p: *mut u8, len: usize, pos: u64) -> io::Result<usize> {
    // SAFETY: The kernel writes only inside `[p, p + len)`, which is ours (mapped or not).
    count(unsafe { libc::pread(fd.as_raw_fd(), p.cast(), len, pos as libc::off_t) })
}

/// `pwrite(fd, p, len, pos)` from raw memory that may be partly unmapped.
pub fn pwrite_raw(fd: BorrowedFd<'_>, p: *const u8, len: usize, pos: u64) -> io::Result<usize> {
    // SAFETY: The kernel only reads `[p, p + len)`.
    count(unsafe { libc::pwrite(fd.as_raw_fd(), p.cast(), len, pos as libc::off_t) })
}

/// `read(fd, buf)` at the file position.
pub fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    count(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(fd, buf)` at the file position.
pub fn write_fd(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length.
    count(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

/// `lseek(fd, off, whence)`.
pub fn lseek(fd: BorrowedFd<'_>, off: i64, whence: i32) -> io::Result<u64> {
    // SAFETY: No memory is involved.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}

/// `fsync(fd)`, or `fdatasync(fd)` when `data_only`.
pub fn fsync(fd: BorrowedFd<'_>, data_only: bool) -> io::Result<()> {
    // SAFETY: No memory is involved.
    let rc = unsafe {
        if data_only {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    };
    result(rc.into())
}

/// `prctl(PR_SET_THP_DISABLE, on)`: the process's THP opt-out (or its end).
pub fn thp_disable(on: bool) -> io::Result<()> {
    // SAFETY: A prctl with integer arguments; no memory is involved.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(on), 0, 0, 0) };
    result(rc.into())
}

/// A raw mapping (`mmap(NULL, len, prot, flags, fd, offset)`) that the caller unmaps with
/// [`munmap`]; `fd` `None` maps anonymous memory.
pub fn mmap_raw(
    fd: Option<BorrowedFd<'_>>,
    len: usize,
    prot: i32,
    flags: i32,
    offset: u64,
) -> io::Result<*mut u8> {
    let (fd, flags) = match fd {
        Some(fd) => (fd.as_raw_fd(), flags),
        None => (-1, flags | libc::MAP_ANONYMOUS),
    };
    // SAFETY: A null hint without MAP_FIXED only takes fresh address space.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            flags,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// A raw mapping like [`mmap_raw`], placed `MAP_FIXED` at an address `off` bytes past a
/// multiple of `align` (a power of two), inside an address-space reservation of our own whose
/// rest is unmapped again; the caller unmaps the mapping with [`munmap`].
pub fn mmap_raw_off_grid(
    fd: BorrowedFd<'_>,
    len: usize,
    prot: i32,
    flags: i32,
    offset: u64,
    (align, off): (usize, usize),
) -> io::Result<*mut u8> {
    let total = len + 2 * align;
    let hole = mmap_raw(
        None,
        total,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_NORESERVE,
        0,
    )?;
    let at = (hole as usize).next_multiple_of(align) + off;
    // SAFETY: `[at, at + len)` lies inside the reservation just made, which nothing else uses,
    // so MAP_FIXED replaces only our own PROT_NONE pages.
    let p = unsafe {
        libc::mmap(
            at as *mut c_void,
            len,
            prot,
            flags | libc::MAP_FIXED,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    let end = hole as usize + total;
    let unmap = |from: usize, to: usize| {
        if to > from {
            // SAFETY: Part of our own reservation outside the new mapping (or all of it, if
            // the mapping failed); nothing uses it.
            let _ = unsafe { libc::munmap(from as *mut c_void, to - from) };
        }
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        unmap(hole as usize, end);
        return Err(e);
    }
    unmap(hole as usize, at);
    unmap(at + len, end);
    Ok(p.cast())
}

/// `mprotect(p, len, prot)` of a mapping the caller owns.
pub fn mprotect(p: *const u8, len: usize, prot: i32) -> io::Result<()> {
    // SAFETY: Changing the protection of our own mapping changes no memory; later accesses
    // that the new protection forbids fault, which the callers expect (in a child) or avoid.
    result(unsafe { libc::mprotect(p as *mut c_void, len, prot) }.into())
}

/// `msync(p, len, flags)`.
pub fn msync(p: *const u8, len: usize, flags: i32) -> io::Result<()> {
    // SAFETY: Syncing a mapping we own changes no memory.
    result(unsafe { libc::msync(p as *mut c_void, len, flags) }.into())
}

/// `madvise(p, len, advice)` with an advice that changes no memory the caller still relies on
/// (DONTNEED on device mappings refaults the same pages; DONTFORK/WIPEONFORK only affect
/// children).
pub fn madvise(p: *const u8, len: usize, advice: i32) -> io::Result<()> {
    // SAFETY: See above; the callers only pass advice whose effect they model.
    result(unsafe { libc::madvise(p as *mut c_void, len, advice) }.into())
}

/// `kill(pid, sig)`.
pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: No memory is involved.
    result(unsafe { libc::kill(pid, sig) }.into())
}

/// `mremap(p, len, new_len, 0)`: resize in place (never moves); shrinking unmaps the tail.
pub fn mremap_resize(p: *const u8, len: usize, new_len: usize) -> io::Result<()> {
    // SAFETY: Without MREMAP_MAYMOVE the mapping grows in place into free space, shrinks
    // (unmapping a tail the caller no longer uses), or the call fails.
    let r = unsafe { libc::mremap(p as *mut c_void, len, new_len, 0) };
    if r == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
