//! The few raw calls the benchmark needs that [`pktmap::resource`] does not make.
//!
//! - [`map_populate`]: `mmap` with `MAP_POPULATE`, the kernel's own prefault, which the library
//!   deliberately does not offer (it fails silently); the matrix measures it as the baseline the
//!   library's POPULATE is compared with. The tools crate makes the raw call itself (the
//!   library's `resource/` is the only place *in the library* that maps) and hands the range
//!   to a [`Mapping`] to own.
//! - [`minor_faults`]: `getrusage(RUSAGE_THREAD)`, the thread's minor fault count.
//! - [`Interrupt`]: a `SIGINT`/`SIGTERM` handler that writes a hugetlb reservation back
//!   (async-signal-safe `open`/`write`/`close`) and sets a flag, so a run stops between
//!   repetitions.
//!
//! # Safety
//! Each `unsafe` block below is one syscall whose pointer arguments are either null (a fresh
//! `mmap` hint), a local of the right type, or a `static`; the signal handler makes only
//! async-signal-safe calls.
#![allow(unsafe_code)]

use pktmap::resource::{MapFlags, Mapping};
use rustix::fd::AsFd;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset)`.
///
/// # Errors
/// The errno from `mmap`. `MAP_POPULATE` itself never fails: pages it could not fault in are
/// left unmapped, which is why the library uses `MADV_POPULATE_WRITE` instead.
pub(crate) fn map_populate<Fd: AsFd>(fd: Fd, offset: u64, len: usize) -> io::Result<Mapping> {
    use rustix::mm::{mmap, MapFlags as SysMapFlags, ProtFlags};
    // SAFETY: A null hint without MAP_FIXED only ever takes fresh address space.
    let p = unsafe {
        mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            SysMapFlags::SHARED | SysMapFlags::POPULATE,
            fd,
            offset,
        )
    }?;
    let p = ptr::NonNull::new(p).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `p` is the live `len`-byte read-write mapping just made, owned by nothing else.
    Ok(unsafe { Mapping::from_raw(p, len, MapFlags::empty()) })
}

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)` then `madvise(advice)`:
/// the raw populate calls, without pktmap's choice between them.
///
/// # Errors
/// The errno from `mmap` or `madvise` (the mapping is removed on a `madvise` error).
pub(crate) fn map_madvise<Fd: AsFd>(
    fd: Fd,
    offset: u64,
    len: usize,
    advice: rustix::mm::Advice,
) -> io::Result<Mapping> {
    use rustix::mm::{madvise, mmap, MapFlags as SysMapFlags, ProtFlags};
    // SAFETY: A null hint without MAP_FIXED only ever takes fresh address space.
    let p = unsafe {
        mmap(
            ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            SysMapFlags::SHARED,
            fd,
            offset,
        )
    }?;
    let p = ptr::NonNull::new(p).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `p` is the live `len`-byte read-write mapping just made, owned by nothing else.
    let m = unsafe { Mapping::from_raw(p, len, MapFlags::empty()) };
    // SAFETY: Populating only faults pages of our own mapping in; contents do not change.
    unsafe { madvise(p.as_ptr(), len, advice) }?;
    Ok(m)
}

/// A mapping a mode made, pktmap's own or memmap2's, touched the same way whichever it is.
pub(crate) enum Mapped {
    Pktmap(Mapping),
    Memmap2(memmap2::MmapRaw),
}

impl Mapped {
    /// Reads (or writes) one byte of every 4 KiB page with volatile accesses; returns the XOR
    /// of the bytes read, for `black_box`.
    pub(crate) fn touch(&self, write: bool) -> u8 {
        let (ptr, len) = match self {
            Mapped::Pktmap(m) => match m.as_mut_ptr() {
                Some(p) => (p, m.len()),
                None => return 0, // No mode maps READONLY; nothing to write through.
            },
            Mapped::Memmap2(m) => (m.as_mut_ptr(), m.len()),
        };
        let mut acc = 0u8;
        for off in (0..len).step_by(4096) {
            // SAFETY: `off < len`, so `ptr + off` is inside the mapping, which is mapped read-
            // write for `len` bytes while `self` lives; the memory is ours (a bench mapping
            // nothing else writes), and volatile accesses keep every page touched.
            unsafe {
                let p = ptr.add(off);
                if write {
                    p.write_volatile(off as u8 | 1);
                } else {
                    acc ^= p.read_volatile();
                }
            }
        }
        acc
    }
}

/// `getrusage(RUSAGE_THREAD)`—The calling thread's minor fault count (`ru_minflt`).
///
/// Faults taken on behalf of `MAP_POPULATE` and `MADV_POPULATE_*` (through `get_user_pages`)
/// are counted here too, as the thread's own.
///
/// # Errors
/// The errno from `getrusage` (none expected for `RUSAGE_THREAD`).
pub(crate) fn minor_faults() -> io::Result<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes only into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded, so it filled the struct (it was zeroed before anyway, and
    // `rusage` is plain integers, for which all-zero is valid).
    let usage = unsafe { usage.assume_init() };
    Ok(u64::try_from(usage.ru_minflt).unwrap_or(0))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static EXIT_ON_SIGNAL: AtomicBool = AtomicBool::new(false);
/// `/proc/sys/vm/nr_hugepages`, NUL-terminated for `open(2)` in the signal handler.
const NR_HUGEPAGES: &[u8] = b"/proc/sys/vm/nr_hugepages\0";

/// Writes the baseline of a live hugetlb reservation back to `nr_hugepages` with
/// async-signal-safe calls only (`open`, `write`, `close`, no allocation).
fn restore_hugepages_from_handler() {
    let Some(value) = pktmap_testbed::HugePages::take_signal_restore() else {
        return;
    };
    let mut digits = [0u8; 20];
    let mut n = value;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // SAFETY: `NR_HUGEPAGES` is a NUL-terminated path; open, write and close are
    // async-signal-safe (signal-safety(7)) and `digits[i..]` is a live stack buffer.
    unsafe {
        let fd = libc::open(
            NR_HUGEPAGES.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            let _ = libc::write(fd, digits[i..].as_ptr().cast(), digits.len() - i);
            let _ = libc::close(fd);
        }
    }
}

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    if EXIT_ON_SIGNAL.load(Ordering::SeqCst) {
        restore_hugepages_from_handler();
        // SAFETY: _exit is async-signal-safe; 130 is the shell's code for death by SIGINT.
        unsafe { libc::_exit(130) };
    }
}

/// While alive, `SIGINT` and `SIGTERM` either set a flag the run polls (the run then ends and
/// its hugetlb reservation is given back as any reservation is, under the ledger's lock, once
/// its pages are unmapped) or, with `exit`, put back the reservation (if any) from the handler
/// and exit; dropping it restores the previous handlers.
///
/// Only an exiting handler writes `nr_hugepages` itself: written while the run still maps its
/// pages, the number it wrote at reservation time (the baseline and what others held then)
/// can shrink the pool under another process that reserved since, which then finds its pages
/// gone (a `SIGBUS` on touch, or `ENOMEM`).
#[derive(Debug)]
pub(crate) struct Interrupt {
    old: [(libc::c_int, libc::sigaction); 2],
}

impl Interrupt {
    /// Installs the handler; with `exit`, a signal ends the process (status 130) after the
    /// reservation is put back, for callers that cannot poll [`raised`](Self::raised).
    pub(crate) fn install(exit: bool) -> io::Result<Self> {
        INTERRUPTED.store(false, Ordering::SeqCst);
        EXIT_ON_SIGNAL.store(exit, Ordering::SeqCst);
        let mut old = [libc::SIGINT, libc::SIGTERM].map(|sig| {
            // SAFETY: `sigaction` is plain data; all-zero is a valid (SIG_DFL) value.
            (sig, unsafe { std::mem::zeroed::<libc::sigaction>() })
        });
        for (sig, old) in old.iter_mut() {
            // SAFETY: As above, all-zero is valid; we fill in the handler next.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            new.sa_flags = libc::SA_RESTART;
            // SAFETY: `new` and `old` are valid sigaction structs; the handler only makes
            // async-signal-safe calls.
            if unsafe { libc::sigaction(*sig, &new, old) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Self { old })
    }

    /// Whether a signal arrived since [`install`](Self::install).
    pub(crate) fn raised(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for (sig, old) in &self.old {
            // SAFETY: `old` is the disposition sigaction returned for `sig`; reinstalling it
            // is always valid. Nothing to report from Drop on failure.
            let _ = unsafe { libc::sigaction(*sig, old, ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_faults_count_a_first_touch() {
        let before = minor_faults().unwrap();
        let v = vec![1u8; 1 << 20];
        std::hint::black_box(&v);
        assert!(minor_faults().unwrap() > before);
    }

    #[test]
    fn map_populate_maps_a_memfd() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 8192).unwrap();
        let m = map_populate(&fd, 0, 8192).unwrap();
        m.write_at(4096, b"x").unwrap();
        assert_eq!(m.len(), 8192);
    }
}

/// What `getrusage(RUSAGE_THREAD)` says the calling thread spent: user and system time in
/// microseconds, and its voluntary and involuntary context switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThreadUsage {
    pub user_us: u64,
    pub system_us: u64,
    pub voluntary: u64,
    pub involuntary: u64,
}

/// `getrusage(RUSAGE_THREAD)`—The calling thread's CPU time and context switches.
///
/// # Errors
/// The errno from `getrusage` (none expected for `RUSAGE_THREAD`).
pub(crate) fn thread_usage() -> io::Result<ThreadUsage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes only into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded and `rusage` is plain integers (all-zero is valid too).
    let u = unsafe { usage.assume_init() };
    let us = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    Ok(ThreadUsage {
        user_us: us(u.ru_utime),
        system_us: us(u.ru_stime),
        voluntary: u64::try_from(u.ru_nvcsw).unwrap_or(0),
        involuntary: u64::try_from(u.ru_nivcsw).unwrap_or(0),
    })
}

/// `unshare(CLONE_NEWNET)`—Moves the calling thread (only) into a new, empty network
/// namespace; threads it spawns afterwards start there too. The namespace, with every device
/// in it, goes away when the last thread and socket in it are gone.
///
/// # Errors
/// The errno from `unshare` (`EPERM` without `CAP_SYS_ADMIN`).
pub(crate) fn unshare_net() -> io::Result<()> {
    // SAFETY: CLONE_NEWNET changes only the calling thread's network namespace; it touches no
    // file descriptor table or memory another thread relies on (rustix's caveat is about
    // CLONE_FILES).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(io::Error::from)
}

/// `setsockopt(fd, level, name, &value, sizeof value)` for the plain-integer structs of
/// `<linux/if_packet.h>` that rustix has no call for (`PACKET_VERSION`, `PACKET_RX_RING`, ...).
///
/// # Errors
/// The kernel's errno.
pub(crate) fn setsockopt<T: Copy>(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    use rustix::fd::AsRawFd;
    // SAFETY: `value` points at a live `T` of `size_of::<T>()` bytes, which the kernel only
    // reads; `fd` is a live descriptor borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            ptr::from_ref(value).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(PACKET_STATISTICS)` of a `TPACKET_V3` socket: `(tp_packets, tp_drops,
/// tp_freeze_q_cnt)` since the last call (the kernel clears them on every read), where
/// `tp_packets` counts the dropped frames too.
///
/// # Errors
/// The kernel's errno.
pub(crate) fn packet_statistics(fd: impl AsFd) -> io::Result<(u32, u32, u32)> {
    use rustix::fd::AsRawFd;
    let mut st = [0u32; 3];
    let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
    // SAFETY: `st` is 12 writable bytes (struct tpacket_stats_v3) and `len` says so; the
    // kernel writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            st.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st[0], st[1], st[2]))
}

/// `bind(fd, sockaddr_ll { AF_PACKET, protocol, ifindex })`.
///
/// # Errors
/// The kernel's errno.
pub(crate) fn bind_packet(fd: impl AsFd, protocol: u16, ifindex: u32) -> io::Result<()> {
    use rustix::fd::AsRawFd;
    // SAFETY: sockaddr_ll is plain integers; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = i32::try_from(ifindex).unwrap_or(i32::MAX);
    // SAFETY: `sll` is a live, initialized sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_fd().as_raw_fd(),
            ptr::from_ref(&sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
