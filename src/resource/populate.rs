//! How POPULATE keeps its promise (the table in the [module docs](super)): by pool kind when
//! the map was told one, by a read populate and a one-byte probe where that maps pages
//! writable, by a write populate where it does not; and what each errno of a populate means.

use super::{Advice, MapFlags, MapOptions, Mapping};
use crate::error::{Context, Error, Result};
use crate::offset::PAGE_SIZE;
use pktmap_abi::plan::{PoolKind, PMD_SIZE};
use rustix::mm;
use std::sync::atomic::{AtomicU8, Ordering};

impl MapOptions {
    /// Whether the driver serves this map's POPULATE itself, at `mmap`: a shared map of a lazy
    /// pool (a private one is populated as any private map, for writing).
    pub(super) fn driver_populates(&self) -> bool {
        self.flags.contains(MapFlags::POPULATE)
            && self.pool == Some(PoolKind::Lazy)
            && !self.private
    }
}

impl Mapping {
    /// As [`call`](Self::call) for a populate step: the message names the cause.
    fn populate_call(&self, step: &'static str, r: rustix::io::Result<()>) -> Result<()> {
        r.map_err(|e| {
            let mut msg = format!("{step} of {} bytes", self.len());
            if let Some(why) = populate_cause(e) {
                msg = format!("{msg}, {why}");
            }
            Error::from(e).with(Context::Message(msg))
        })
    }

    /// Prefaults every page, so that reading or writing any of them takes no fault, as the
    /// [module docs](crate::resource#how-populate-populates) say: a read populate where it
    /// maps pages writable, a write populate where it does not.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let fd = memfd(1 << 20)?;
    /// let m = map(&fd, 0, 1 << 20, MapFlags::empty())?;
    /// m.populate()?; // now no touch of these 256 pages faults
    /// // A page the file no longer backs (another process truncated it) is the errno, with
    /// // its cause, not a SIGBUS later.
    /// rustix::fs::ftruncate(&fd, 4096)?;
    /// let e = m.populate().unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
    /// assert!(e.to_string().contains("past the end of the file"), "{e}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The errno that stopped it (`EFAULT` for a page the resource cannot back, `ENOMEM`, ...).
    pub fn populate(&self) -> Result<()> {
        let (step, r) = self.populate_raw(false);
        self.populate_call(step, r)
    }

    /// Populates and names the step that failed, or the last one taken; `fresh` is whether
    /// the mapping was just made (so a pool the driver fills at `mmap` is whole).
    pub(super) fn populate_raw(&self, fresh: bool) -> (&'static str, rustix::io::Result<()>) {
        const READ: &str = "madvise(MADV_POPULATE_READ)";
        const WRITE: &str = "madvise(MADV_POPULATE_WRITE)";
        const TOUCH: &str = "populate (a volatile read per entry)";
        let read_or_write = || {
            if self.is_readonly() {
                (READ, self.madvise_raw(Advice::LinuxPopulateRead))
            } else {
                (WRITE, self.madvise_raw(Advice::LinuxPopulateWrite))
            }
        };
        match self.pool {
            // A private mapping is populated as any other (below): a write would copy, and the
            // driver was not asked (`MapOptions::driver_populates`).
            Some(_) if !self.shared => {}
            // The driver inserted every page at `mmap` (a lazy pool's because the offset asked).
            Some(PoolKind::Eager | PoolKind::Contig | PoolKind::Lazy) if fresh => {
                return ("mmap", Ok(()))
            }
            Some(PoolKind::Eager | PoolKind::Lazy) => return read_or_write(),
            Some(kind @ (PoolKind::Contig | PoolKind::Huge)) => {
                // A page-frame map: `MADV_POPULATE_*` is `EINVAL`, a read faults it in. One
                // read per PMD entry where every 2 MiB block of the mapping is one (a 2 MiB
                // pool mapped on the grid), else one per page.
                let on_grid = (self.as_ptr() as usize | self.len()) % PMD_SIZE as usize == 0;
                let stride = if kind == PoolKind::Huge && on_grid {
                    PMD_SIZE
                } else {
                    PAGE_SIZE
                };
                return (TOUCH, self.read_every(stride as usize));
            }
            None => {}
        }
        if self.is_readonly() {
            return (READ, self.madvise_raw(Advice::LinuxPopulateRead));
        }
        // One page: a write populate costs one fault, as a read populate would before the
        // probe, so the probe could only add its cost.
        if !self.shared || self.len() <= PAGE_SIZE as usize {
            return (WRITE, self.madvise_raw(Advice::LinuxPopulateWrite));
        }
        // A read populate wins where pages already exist (the kernel's fault-around maps up
        // to 16 cached neighbours per fault); where they do not, each read fault still
        // allocates one page and pays for a fault-around that finds nothing, so a write
        // populate is cheaper. `mincore` of the first page tells which (the page cache, for a
        // file or shmem; the page table otherwise). Either way the promise holds: a write
        // populate always suffices, and a read populate is checked by the probe below.
        if !self.first_page_resident() {
            return (WRITE, self.madvise_raw(Advice::LinuxPopulateWrite));
        }
        if let Err(e) = self.madvise_raw(Advice::LinuxPopulateRead) {
            return (READ, Err(e));
        }
        match self.first_write_faults() {
            Ok(false) => (READ, Ok(())),
            // A fault (or no way to tell): write-populate, which is always enough.
            Ok(true) | Err(_) => (WRITE, self.madvise_raw(Advice::LinuxPopulateWrite)),
        }
    }

    fn madvise_raw(&self, advice: Advice) -> rustix::io::Result<()> {
        // SAFETY: Populating only faults pages in; it never changes their contents or the
        // mapping, and the range is ours by the type invariants.
        unsafe { mm::madvise(self.raw.ptr.as_ptr(), self.len(), advice) }
    }

    /// `mincore` of the first page: whether it is resident (in the page cache for a file or
    /// shmem, or mapped). `false` when the kernel cannot tell, which only costs speed.
    fn first_page_resident(&self) -> bool {
        let mut vec = [0u8; 1];
        // SAFETY: The first page is inside the mapping (never empty) by the type invariants,
        // and `vec` has room for the one page's status byte that mincore writes.
        let rc = unsafe { libc::mincore(self.raw.ptr.as_ptr(), 1, vec.as_mut_ptr()) };
        rc == 0 && vec[0] & 1 == 1
    }

    /// Whether writing the first page faults: one atomic no-op write (`fetch_or(0)`, which
    /// changes no byte, so a concurrent writer loses nothing) between two reads of the
    /// thread's minor fault count.
    fn first_write_faults(&self) -> rustix::io::Result<bool> {
        let before = thread_minor_faults()?;
        // SAFETY: The first byte is inside the mapping, which is mapped writable (not
        // READONLY) by the type invariants; a `u8` is always aligned, and shared memory is
        // accessed only atomically here.
        let byte = unsafe { AtomicU8::from_ptr(self.raw.ptr.as_ptr().cast()) };
        byte.fetch_or(0, Ordering::Relaxed);
        Ok(thread_minor_faults()? != before)
    }
}

/// `getrusage(RUSAGE_THREAD)`—The calling thread's minor fault count.
fn thread_minor_faults() -> rustix::io::Result<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; getrusage writes only into it.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } != 0 {
        return Err(
            rustix::io::Errno::from_io_error(&std::io::Error::last_os_error())
                .unwrap_or(rustix::io::Errno::INVAL),
        );
    }
    // SAFETY: getrusage succeeded and filled it (it was zeroed, valid for plain integers,
    // before).
    let usage = unsafe { usage.assume_init() };
    Ok(u64::try_from(usage.ru_minflt).unwrap_or(0))
}

/// What an `MADV_POPULATE_READ`/`_WRITE` errno means (madvise(2)), for the error's message.
pub(super) fn populate_cause(e: rustix::io::Errno) -> Option<&'static str> {
    use rustix::io::Errno;
    Some(match e {
        Errno::FAULT => {
            "a page has nothing behind it (past the end of the file, which may have been \
             truncated since the map, or a page the driver does not back): touching it would \
             raise SIGBUS"
        }
        Errno::INVAL => {
            "the kernel cannot populate this mapping (a VM_PFNMAP or VM_IO mapping, or a kernel \
             before 5.14 without MADV_POPULATE)"
        }
        Errno::NOMEM => "out of memory (or of reserved huge pages) while allocating a page",
        Errno::HWPOISON => "a page is hardware-poisoned",
        Errno::PERM => "the backing refused write access to a page",
        Errno::INTR => "interrupted by a signal before every page was populated",
        Errno::AGAIN => "a page was busy; retrying may succeed",
        _ => return None,
    })
}
