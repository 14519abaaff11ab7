//! Map a resource: [`MapFlags`], [`MapOptions`] and the [`Mapping`] that unmaps on drop.
//!
//! This is pktmap's `oo_resource_mmap`, and the only module that calls `mmap`, `munmap`,
//! `madvise`, `msync` and `mlock`.
//!
//! - [`MapFlags::READONLY`] maps `PROT_READ` only, otherwise `PROT_READ | PROT_WRITE`.
//! - [`MapFlags::FIXED`] maps at the caller's address. The safe entry points use
//!   `MAP_FIXED_NOREPLACE`, so an occupied range is `EEXIST` and nothing is clobbered; only the
//!   `unsafe` [`MapOptions::map_replacing`] may replace existing memory.
//! - [`MapFlags::POPULATE`] is a promise: after `Ok`, reading or writing any page of the mapping
//!   takes no page fault. It is kept with `MADV_POPULATE_READ`/`MADV_POPULATE_WRITE`, which
//!   report the errno that stopped them where `MAP_POPULATE` fails silently; on failure the
//!   mapping is removed and the error returned, never a half-populated mapping.
//!
//! # How POPULATE populates
//! The kernel's cheapest prefault is a *read* populate (what `MAP_POPULATE` does on a shared
//! mapping), but a read fault maps a page writable only where the backing needs no write
//! notification: a shared mapping of shmem (memfd, tmpfs), hugetlbfs or device memory gets
//! writable page-table entries (`vma->vm_page_prot` keeps the write bit), while a regular file
//! whose filesystem tracks dirty pages (`page_mkwrite`), or any private mapping (copy on write,
//! the zero page), gets read-only ones, and the first write would fault. So, per mapping:
//!
//! | mapping | populate | why it keeps the promise |
//! |---|---|---|
//! | READONLY | `MADV_POPULATE_READ` | nothing can write it |
//! | private (anonymous memory, `MapOptions::private`) | `MADV_POPULATE_WRITE` | only a write fault breaks copy on write |
//! | one page | `MADV_POPULATE_WRITE` | always enough, and as cheap as a read populate and the probe below |
//! | shared, writable, first page not resident (`mincore`: fresh memory, an uncached file) | `MADV_POPULATE_WRITE` | always enough; and where pages do not exist yet a read fault allocates one page anyway, after a fault-around that finds nothing |
//! | shared, writable, first page resident | `MADV_POPULATE_READ` (fault-around maps up to 16 cached pages per fault), then a probe: one atomic no-op write (`fetch_or(0)`) to the first page, counting the thread's minor faults (`getrusage(RUSAGE_THREAD)`) around it. No fault: the read populate mapped writable entries, done. A fault: the backing wants write notification, so `MADV_POPULATE_WRITE` follows | the protection a read fault installs is the mapping's `vm_page_prot`, the same for every page of a fresh mapping, so one page answers for all; the probe is atomic and changes no byte, so a concurrent writer (the driver, another process) loses nothing |
//!
//! A `/dev/pktmap` pool is populated by its kind, which the map is told ([`MapOptions::pool`];
//! [`Device::map_pool`](crate::device::Device::map_pool), [`PoolFile::map`](crate::pool::PoolFile::map)
//! and the C API tell it what `POOL_INFO` says), not by probing:
//!
//! | pool kind ([`PoolKind`]) | populate | why it keeps the promise |
//! |---|---|---|
//! | eager, contiguous (shared) | none | the driver inserted every page (`vm_insert_pages`, `remap_pfn_range`) at `mmap`, with the mapping's protection |
//! | lazy | none: the offset carries the driver's populate bit (`MMAP_POPULATE`), so the driver inserts every page at `mmap`, as for an eager pool | the driver's `mmap` inserts the pages with the mapping's protection, and no fault is left to take |
//! | 2 MiB | one volatile read per 2 MiB (per 4 KiB where the address is off the 2 MiB grid) | a fault maps a whole 2 MiB chunk by one PMD entry; `MADV_POPULATE_*` refuses page-frame maps (`EINVAL`) |
//! | any kind, private | as any private mapping | only a write fault breaks copy on write |
//!
//! Measured with `pktmap bench` (the README's performance section), the shmem path costs what
//! the kernel's own `MAP_POPULATE` costs, and `tests/populate.rs` counts the faults of read and
//! write touches on every backing after POPULATE: none.
//!
//! Errors are [`Error`]s: `raw_os_error()` is the kernel's errno, or the errno pktmap refused
//! the request with before any call (`EINVAL` for a zero length, a misaligned offset or FIXED
//! without an address, a length past the end of a file), and the message names the step, the
//! offset and length, and the resource when the caller chose a layout
//! ([`MapOptions::layout`], [`map_resource`]). A failed POPULATE names its cause (a page past
//! the end of the file, a mapping the kernel cannot populate, no memory, ...).
//!
//! # Files that end: no SIGBUS from a safe call
//! Touching a page of a file mapping that lies wholly past the end of the file raises `SIGBUS`,
//! which kills the process. So pktmap refuses, with `EINVAL` before the `mmap`, to map a
//! regular file (a disk file, tmpfs, a memfd) past the page that holds its last byte; a
//! hugetlbfs file mapped writable is the exception, as the kernel grows it to the mapping.
//! memmap2 makes its `map` `unsafe` for this reason.
//!
//! What a check at `mmap` time cannot stop is another process (or thread) truncating the file
//! *afterwards*: the pages past the new end are gone, and touching them through
//! [`Mapping::read_at`], [`Mapping::write_at`] or the [`volatile`](crate::volatile) views raises
//! `SIGBUS`; [`Mapping::populate`] then fails with `EFAULT` instead, naming the cause. When
//! whoever holds the file is not to be trusted with that, share a memfd sealed against
//! shrinking ([`sealed_memfd`], `F_SEAL_SHRINK`): the kernel refuses every truncation of it with
//! `EPERM`, so a mapping of it can never lose a page.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::resource::{map, sealed_memfd, MapFlags};
//! let fd = sealed_memfd("frames", 1 << 20)?;
//! let m = map(&fd, 0, 1 << 20, MapFlags::POPULATE)?;
//! // Nobody holding the fd (or a dup of it in another process) can shrink it now.
//! assert_eq!(rustix::fs::ftruncate(&fd, 0), Err(rustix::io::Errno::PERM));
//! m.write_at((1 << 20) - 1, &[1])?;
//! // A length past the end is refused before the mmap, not a SIGBUS on the first touch.
//! let e = map(&fd, 0, 2 << 20, MapFlags::empty()).unwrap_err();
//! assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
//! # Ok(()) }
//! ```
//!
//! # Safety
//! A [`Mapping`] owns its address range: it came from a successful `mmap` and is unmapped
//! exactly once, in `Drop` or [`Mapping::unmap`]. Its memory may be shared with the kernel or
//! other processes, which may write it at any time, so the safe accessors copy
//! ([`Mapping::read_at`], [`Mapping::write_at`]) and slices are `unsafe`.
#![allow(unsafe_code)]

use crate::error::{Context, Error, Result};
use crate::offset::{Layout, Region, PAGE_SIZE};
use pktmap_abi::plan::{PoolKind, MMAP_POPULATE, PMD_SIZE};
use rustix::fd::AsFd;
use rustix::mm::{self, MapFlags as SysMapFlags, MsyncFlags, ProtFlags};

/// The advice [`Mapping::advise`] takes (`MADV_*`), re-exported from rustix.
pub use rustix::mm::Advice;
use std::borrow::Cow;
use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};

/// The `bitflags!` invocation of [`MapFlags`], in a module of its own only so that the set
/// operations the macro writes (`empty`, `contains`, `insert`, `iter`, ...) are left out of
/// rustdoc's example count: their docs are bitflags' own, with examples at
/// <https://docs.rs/bitflags>. The `unknown_lints` allow is for stable rustdoc, which does not
/// know the (unstable) lint.
#[allow(unknown_lints, rustdoc::missing_doc_code_examples)]
mod flags {
    use bitflags::bitflags;

    bitflags! {
        /// How to map a resource: Onload's `OO_MMAP_FLAG_*` bits.
        ///
        /// Parse raw bits with [`MapFlags::from_raw`], which rejects unknown bits.
        ///
        /// # Examples
        /// ```
        /// use pktmap::resource::MapFlags;
        /// let f = MapFlags::from_raw(5).unwrap();
        /// assert_eq!(f, MapFlags::READONLY | MapFlags::POPULATE);
        /// assert!(MapFlags::from_raw(8).is_err());
        /// ```
        #[repr(transparent)]
        #[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
        pub struct MapFlags: u32 {
            /// `OO_MMAP_FLAG_READONLY`: `PROT_READ` only (otherwise `PROT_READ | PROT_WRITE`).
            const READONLY = 1;
            /// `OO_MMAP_FLAG_FIXED`: map at the caller's address (`MAP_FIXED_NOREPLACE`, or
            /// `MAP_FIXED` through the `unsafe`
            /// [`MapOptions::map_replacing`](crate::resource::MapOptions::map_replacing)).
            const FIXED = 2;
            /// `OO_MMAP_FLAG_POPULATE`: prefault every page (`MADV_POPULATE_READ`/`_WRITE`),
            /// failing with the errno that stopped it.
            const POPULATE = 4;
        }
    }
}
pub use flags::MapFlags;

impl MapFlags {
    /// Parses raw flag bits strictly.
    ///
    /// # Errors
    /// `EINVAL` if any bit other than `READONLY`, `FIXED` and `POPULATE` is set.
    pub fn from_raw(bits: u32) -> Result<Self> {
        Self::from_bits(bits).ok_or_else(|| {
            Error::invalid(format!(
                "unknown map flag bits {:#x}",
                bits & !Self::all().bits()
            ))
        })
    }

    fn prot(self) -> ProtFlags {
        if self.contains(Self::READONLY) {
            ProtFlags::READ
        } else {
            ProtFlags::READ | ProtFlags::WRITE
        }
    }
}

/// How to map: length, flags, sharing and (with FIXED) the address.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::{MapFlags, MapOptions};
/// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
/// let fd = memfd_create("pool", MemfdFlags::CLOEXEC)?;
/// ftruncate(&fd, 8192)?;
/// let m = MapOptions::new(8192).flags(MapFlags::POPULATE).map(&fd, 0)?;
/// m.write_at(4096, b"hello")?;
/// let mut buf = [0; 5];
/// m.read_at(4096, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MapOptions {
    len: usize,
    flags: MapFlags,
    private: bool,
    /// The FIXED address, kept as a number (never dereferenced), so that the options are
    /// `Send` and `Sync` as plain data.
    addr: Option<std::num::NonZeroUsize>,
    layout: Option<&'static Layout>,
    pool: Option<PoolKind>,
}

impl MapOptions {
    /// Options to map `len` bytes, shared, read-write, anywhere.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let m = MapOptions::new(4096).map(&fd, 0)?;
    /// assert_eq!((m.len(), m.is_readonly()), (4096, false));
    /// # Ok(()) }
    /// ```
    pub fn new(len: usize) -> Self {
        Self {
            len,
            flags: MapFlags::empty(),
            private: false,
            addr: None,
            layout: None,
            pool: None,
        }
    }

    /// Sets the [`MapFlags`].
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let fd = memfd(4096)?;
    /// let m = MapOptions::new(4096).flags(MapFlags::READONLY | MapFlags::POPULATE).map(&fd, 0)?;
    /// assert_eq!(m.flags(), MapFlags::READONLY | MapFlags::POPULATE);
    /// assert!(m.write_at(0, b"x").is_err());
    /// # Ok(()) }
    /// ```
    pub fn flags(mut self, flags: MapFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Maps `MAP_PRIVATE`: writes are copied on write and never reach the resource.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let shared = MapOptions::new(4096).map(&fd, 0)?;
    /// let private = MapOptions::new(4096).private().map(&fd, 0)?;
    /// private.write_at(0, b"mine")?;
    /// let mut b = [0; 4];
    /// shared.read_at(0, &mut b)?;
    /// assert_eq!(b, [0; 4]); // the file never saw the private write
    /// # Ok(()) }
    /// ```
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The address to map at; required with [`MapFlags::FIXED`], ignored without it.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use std::ptr::NonNull;
    /// let fd = memfd(4096)?;
    /// // Find a free page, give it back, and map there: FIXED never replaces what is mapped.
    /// let probe = MapOptions::new(4096).map_anonymous()?;
    /// let addr = NonNull::new(probe.as_ptr() as *mut _).unwrap();
    /// probe.unmap()?;
    /// let m = MapOptions::new(4096).flags(MapFlags::FIXED).at(addr).map(&fd, 0)?;
    /// assert_eq!(m.as_ptr(), addr.as_ptr() as *const u8);
    /// // The same address again is EEXIST, and `m` is untouched.
    /// let again = MapOptions::new(4096).flags(MapFlags::FIXED).at(addr).map(&fd, 0);
    /// assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EEXIST));
    /// # Ok(()) }
    /// ```
    pub fn at(mut self, addr: NonNull<c_void>) -> Self {
        self.addr = std::num::NonZeroUsize::new(addr.as_ptr() as usize);
        self
    }

    /// The layout that names the offset in error messages (`pktmap POOL id 3`). Without one,
    /// messages give the raw offset only: a plain file's offset means no resource.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::offset::{pktmap_types, PKTMAP};
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let offset = PKTMAP.encode(pktmap_types::POOL, 3).unwrap();
    /// let err = MapOptions::new(4096).layout(&PKTMAP).map(&fd, offset + 1).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL)); // misaligned, refused before mmap
    /// assert!(err.to_string().contains("pktmap"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn layout(mut self, layout: &'static Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// The resource is a `/dev/pktmap` pool of `kind`, so [`MapFlags::POPULATE`] populates it
    /// as that kind needs (the module docs' second table), which works for every kind,
    /// read-write and read-only; without it, a contiguous or 2 MiB pool's POPULATE is the
    /// kernel's `EINVAL` for page-frame maps. [`Device::map_pool`](crate::device::Device::map_pool)
    /// and [`PoolFile::map`](crate::pool::PoolFile::map) set it from `POOL_INFO`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::device::Device;
    /// use pktmap::offset::ResourceType;
    /// use pktmap::pool::{kind_of, PoolOptions};
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let dev = Device::open()?;
    /// let pool = PoolOptions::new(4096, 1024).huge().create(&dev)?;
    /// // A pool mapped by hand (here read-only), populated by its kind: one read per 2 MiB.
    /// let m = MapOptions::new(pool.bytes as usize)
    ///     .flags(MapFlags::READONLY | MapFlags::POPULATE)
    ///     .pool(kind_of(&pool)?)
    ///     .map(&dev, ResourceType::Pool.offset(pool.id))?;
    /// # Ok(()) }
    /// ```
    pub fn pool(mut self, kind: PoolKind) -> Self {
        self.pool = Some(kind);
        self
    }

    /// `mmap(addr, len, prot, MAP_SHARED | flags, fd, offset)`—Map a resource.
    ///
    /// With [`MapFlags::FIXED`] the mapping goes exactly at the [`at`](Self::at) address or
    /// fails with `EEXIST` if anything is mapped there; nothing existing is replaced.
    ///
    /// # Errors
    /// The kernel's errno (with context) from `mmap` or from populating (a failed populate
    /// names its cause). `EINVAL` before any call for a zero length, an offset that is not a
    /// multiple of the page size, FIXED without an [`at`](Self::at) address, or a regular file
    /// too short for the length (touching the pages past its end would raise `SIGBUS`; see
    /// [the module docs](self#files-that-end-no-sigbus-from-a-safe-call)).
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let fd = memfd(8192)?;
    /// // The second page of the file, prefaulted: touching it takes no fault.
    /// let m = MapOptions::new(4096).flags(MapFlags::POPULATE).map(&fd, 4096)?;
    /// m.write_at(0, b"frame")?;
    /// // A length of 0 and a misaligned offset are refused before any call.
    /// assert_eq!(MapOptions::new(0).map(&fd, 0).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// assert_eq!(MapOptions::new(4096).map(&fd, 100).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    ///
    /// # References
    /// - [Linux `mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
    /// - [Linux `madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html)
    #[doc(alias = "mmap")]
    pub fn map<Fd: AsFd>(&self, fd: Fd, offset: u64) -> Result<Mapping> {
        // SAFETY: without `replace`, the call either maps fresh address space (null hint) or
        // uses MAP_FIXED_NOREPLACE, which never replaces an existing mapping; neither can
        // invalidate memory the program already uses.
        unsafe { self.map_inner(fd.as_fd(), offset, false) }
    }

    /// `mmap(addr, len, prot, MAP_SHARED | MAP_FIXED | flags, fd, offset)`—Map a resource over
    /// whatever is at the [`at`](Self::at) address.
    ///
    /// # Safety
    /// With [`MapFlags::FIXED`], any existing mapping in `[addr, addr + len)` is replaced. The
    /// caller must own that range and have no live references into it (for example, a range it
    /// reserved with `PROT_NONE`), exactly as for `mmap` with `MAP_FIXED`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use std::ptr::NonNull;
    /// let fd = memfd(4096)?;
    /// // Anonymous memory this code owns and no reference points into: it may be replaced.
    /// let scratch = MapOptions::new(4096).map_anonymous()?;
    /// let (addr, len) = scratch.into_raw();
    /// let opts = MapOptions::new(len).flags(MapFlags::FIXED).at(addr);
    /// // SAFETY: the range is ours (from `into_raw`) and nothing borrows it.
    /// let m = unsafe { opts.map_replacing(&fd, 0)? };
    /// assert_eq!(m.as_ptr(), addr.as_ptr().cast::<u8>());
    /// # Ok(()) }
    /// ```
    pub unsafe fn map_replacing<Fd: AsFd>(&self, fd: Fd, offset: u64) -> Result<Mapping> {
        // SAFETY: The caller guarantees the range may be replaced.
        unsafe { self.map_inner(fd.as_fd(), offset, true) }
    }

    /// `mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)`—Map fresh zeroed memory that
    /// no file backs, such as an AF_XDP UMEM or the buffers of an io_uring provided-buffer ring.
    ///
    /// [`private`](Self::private) and the layout are ignored (anonymous memory is always private
    /// to the process and its children); [`MapFlags::POPULATE`] and [`MapFlags::READONLY`] apply.
    ///
    /// # Errors
    /// The kernel's errno (with context). `EINVAL` before any call for a zero length or
    /// [`MapFlags::FIXED`], which anonymous memory does not need.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let umem = MapOptions::new(1 << 20).flags(MapFlags::POPULATE).map_anonymous()?;
    /// umem.write_at(4096, b"frame")?;
    /// let mut b = [0; 5];
    /// umem.read_at(4096, &mut b)?;
    /// assert_eq!(&b, b"frame");
    /// # Ok(()) }
    /// ```
    #[doc(alias = "mmap")]
    pub fn map_anonymous(&self) -> Result<Mapping> {
        if self.len == 0 {
            return Err(Error::invalid("mmap(MAP_ANONYMOUS) of zero length"));
        }
        if self.flags.contains(MapFlags::FIXED) {
            return Err(Error::invalid(
                "mmap(MAP_ANONYMOUS) with FIXED: anonymous memory needs no address",
            ));
        }
        // SAFETY: A null hint without MAP_FIXED only ever takes fresh address space, so no
        // existing memory can be replaced.
        let p = unsafe {
            mm::mmap_anonymous(
                ptr::null_mut(),
                self.len,
                self.flags.prot(),
                SysMapFlags::PRIVATE,
            )
        }
        .map_err(|e| Error::from(e).during("mmap(MAP_ANONYMOUS)"))?;
        // SAFETY: `p` is the result of the successful `mmap` of `self.len` bytes above.
        let mut mapping = unsafe { self.adopt(p) };
        mapping.shared = false;
        if self.flags.contains(MapFlags::POPULATE) {
            mapping.populate()?;
        }
        Ok(mapping)
    }

    /// Whether the driver serves this map's POPULATE itself, at `mmap`: a shared map of a lazy
    /// pool (a private one is populated as any private map, for writing).
    fn driver_populates(&self) -> bool {
        self.flags.contains(MapFlags::POPULATE)
            && self.pool == Some(PoolKind::Lazy)
            && !self.private
    }

    /// Takes ownership of what a successful `mmap` of `self.len` bytes returned.
    ///
    /// # Safety
    /// `p` must be the result of a successful `mmap` of `self.len` bytes with `self.flags`'
    /// protections, not owned by anything else.
    unsafe fn adopt(&self, p: *mut c_void) -> Mapping {
        // `mmap_min_addr` keeps page 0 unmappable, so success never returns null; a dangling
        // pointer stands in should it ever (it is only ever unmapped, never dereferenced
        // before the caller sees it).
        let ptr = NonNull::new(p).unwrap_or(NonNull::dangling());
        // INVARIANT: By the safety contract, `ptr` came from a successful `mmap` of `self.len`
        // bytes that nothing else owns.
        Mapping {
            raw: RawMapping { ptr, len: self.len },
            flags: self.flags,
            shared: !self.private,
            pool: self.pool,
        }
    }

    /// # Safety
    /// If `replace`, as [`map_replacing`](Self::map_replacing).
    unsafe fn map_inner(
        &self,
        fd: rustix::fd::BorrowedFd<'_>,
        offset: u64,
        replace: bool,
    ) -> Result<Mapping> {
        let fail = |errno: i32, step: &'static str, why: Option<Cow<'static, str>>| {
            Error::from_errno(errno).with(Context::Map {
                step,
                layout: self.layout,
                offset,
                len: self.len,
                why,
            })
        };
        if !MapFlags::all().contains(self.flags) {
            // A `MapFlags` built with `from_bits_retain` can carry bits no flag names; the C
            // ABI and `from_raw` refuse them, and so does every map.
            return Err(fail(
                libc::EINVAL,
                "mmap",
                Some("unknown map flag bits".into()),
            ));
        }
        if self.len == 0 {
            // POSIX: "If len is zero, mmap() shall fail and no mapping shall be established."
            return Err(fail(libc::EINVAL, "mmap", Some("zero length".into())));
        }
        if offset % PAGE_SIZE != 0 {
            // mmap(2): "EINVAL ... offset ... not aligned on a page boundary".
            return Err(fail(
                libc::EINVAL,
                "mmap",
                Some("the offset is not a multiple of the page size".into()),
            ));
        }
        if let Some(why) = past_file_end(fd, offset, self.len, self.flags) {
            return Err(fail(libc::EINVAL, "mmap", Some(why.into())));
        }
        let fixed = self.flags.contains(MapFlags::FIXED);
        let mut sys = if self.private {
            SysMapFlags::PRIVATE
        } else {
            SysMapFlags::SHARED
        };
        let want = self.addr.map(|a| a.get() as *mut c_void);
        let hint = match (fixed, want) {
            (false, _) => ptr::null_mut(),
            (true, Some(addr)) => {
                sys |= if replace {
                    SysMapFlags::FIXED
                } else {
                    SysMapFlags::FIXED_NOREPLACE
                };
                addr
            }
            (true, None) => {
                return Err(fail(
                    libc::EINVAL,
                    "mmap",
                    Some("FIXED needs the address from MapOptions::at".into()),
                ))
            }
        };
        // A lazy pool's POPULATE is the driver's: asked by a bit of the offset, which names the
        // same pool (see `populate_raw`).
        let sys_offset = if self.driver_populates() {
            offset | MMAP_POPULATE
        } else {
            offset
        };
        // SAFETY: A null hint or MAP_FIXED_NOREPLACE cannot clobber existing memory; with
        // MAP_FIXED (`replace`) the caller guarantees the range may be replaced.
        let p = unsafe { mm::mmap(hint, self.len, self.flags.prot(), sys, fd, sys_offset) }
            .map_err(|e| fail(e.raw_os_error(), "mmap", None))?;
        // SAFETY: `p` is the result of the successful `mmap` of `self.len` bytes above.
        let mapping = unsafe { self.adopt(p) };
        if fixed && Some(p) != want {
            // Kernels before 4.17 treat MAP_FIXED_NOREPLACE as a hint; dropping unmaps ours.
            return Err(fail(
                libc::EEXIST,
                "mmap",
                Some("the kernel placed it elsewhere".into()),
            ));
        }
        if self.flags.contains(MapFlags::POPULATE) {
            let (step, r) = mapping.populate_raw(true);
            // On failure `mapping` drops here: unmapped, never half-populated.
            r.map_err(|e| fail(e.raw_os_error(), step, populate_cause(e).map(Into::into)))?;
        }
        Ok(mapping)
    }
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, `ftruncate(len)`,
/// `fcntl(F_ADD_SEALS, F_SEAL_SHRINK)`—Shared memory that can never shrink, so no mapping of
/// it can lose a page to a truncation (see the [module](self) docs).
///
/// The file may still grow (seal `F_SEAL_GROW` too with [`rustix::fs::fcntl_add_seals`] if it
/// should not). Pass the fd to another process (`SCM_RIGHTS`, or by inheritance) to share the
/// memory: whatever that process does, the pages every mapping covers stay.
///
/// # Errors
/// The kernel's errno (`EINVAL` for a name over 249 bytes, `EMFILE`, `ENOMEM`, `EFBIG`).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::{map, sealed_memfd, MapFlags};
/// use rustix::fs::{fcntl_get_seals, SealFlags};
/// let fd = sealed_memfd("ring", 8192)?;
/// assert!(fcntl_get_seals(&fd)?.contains(SealFlags::SHRINK));
/// let m = map(&fd, 0, 8192, MapFlags::empty())?;
/// # Ok(()) }
/// ```
pub fn sealed_memfd(name: &str, len: u64) -> Result<rustix::fd::OwnedFd> {
    use rustix::fs::{fcntl_add_seals, ftruncate, memfd_create, MemfdFlags, SealFlags};
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::from(e).during("memfd_create"))?;
    ftruncate(&fd, len).map_err(|e| Error::from(e).during("ftruncate"))?;
    fcntl_add_seals(&fd, SealFlags::SHRINK)
        .map_err(|e| Error::from(e).during("fcntl(F_ADD_SEALS, F_SEAL_SHRINK)"))?;
    Ok(fd)
}

/// `HUGETLBFS_MAGIC` (`linux/magic.h`): a hugetlbfs file grows to the length of a writable
/// `mmap` of it.
const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;
/// `ANON_INODE_FS_MAGIC` (`linux/magic.h`).
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

/// Why mapping `len` bytes at `offset` of `fd` would raise `SIGBUS` on touch, if it would: for
/// a regular file (a disk file, tmpfs, a memfd), a length that runs past the page holding the
/// file's last byte. `None` for anything else (a device decides for itself; pktmap's driver
/// refuses a length over the resource), or when `fstat` cannot tell (the `mmap` then reports).
fn past_file_end(
    fd: rustix::fd::BorrowedFd<'_>,
    offset: u64,
    len: usize,
    flags: MapFlags,
) -> Option<String> {
    let st = rustix::fs::fstat(fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let fs = rustix::fs::fstatfs(fd)
        .map(|f| f.f_type as u64)
        .unwrap_or(0);
    // A writable map of a hugetlbfs file extends the file to cover it (hugetlbfs_file_mmap);
    // a read-only one does not. An anonymous inode (io_uring, a pktmap pool file) has no
    // length that bounds its mmap, should a kernel report it as a regular file.
    if (fs == HUGETLBFS_MAGIC && !flags.contains(MapFlags::READONLY)) || fs == ANON_INODE_FS_MAGIC {
        return None;
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    // Bytes past the end in the last page read as zeros; the next page is SIGBUS.
    let backed = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    // An overflowing length is the kernel's `ENOMEM`; let it say so.
    let end = offset
        .checked_add(u64::try_from(len).ok()?)?
        .checked_next_multiple_of(PAGE_SIZE)?;
    (end > backed).then(|| {
        format!(
            "the file is {size} bytes, so the mapping would end {} bytes past it and touching \
             those pages would raise SIGBUS (grow the file first, e.g. ftruncate)",
            end - backed
        )
    })
}

/// What an `MADV_POPULATE_READ`/`_WRITE` errno means (madvise(2)), for the error's message.
fn populate_cause(e: rustix::io::Errno) -> Option<&'static str> {
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

/// `mmap(NULL, len, prot, MAP_SHARED | flags, fd, offset)`—Map `len` bytes of a resource.
///
/// Shorthand for [`MapOptions::new(len).flags(flags).map(fd, offset)`](MapOptions::map);
/// [`MapFlags::FIXED`] needs an address, so it is `EINVAL` here: use [`MapOptions::at`].
///
/// # Errors
/// As [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{pktmap_types, PKTMAP};
/// use pktmap::resource::{map, MapFlags};
/// let dev = std::fs::File::open("/dev/pktmap")?;
/// let state = map(&dev, PKTMAP.encode(pktmap_types::STATE, 0).unwrap(), 4096, MapFlags::READONLY)?;
/// # Ok(()) }
/// ```
#[doc(alias = "mmap")]
pub fn map<Fd: AsFd>(fd: Fd, offset: u64, len: usize, flags: MapFlags) -> Result<Mapping> {
    MapOptions::new(len).flags(flags).map(fd, offset)
}

/// `mmap` of `(map_type, map_id)` encoded with `layout`—Map a resource by name.
///
/// # Errors
/// `EINVAL` (before any call) if the layout cannot encode the pair; otherwise as
/// [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{pktmap_types, PKTMAP};
/// use pktmap::resource::{map_resource, MapFlags};
/// let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/pktmap")?;
/// let pool = map_resource(&dev, &PKTMAP, pktmap_types::POOL, 1, 1 << 20, MapFlags::POPULATE)?;
/// # Ok(()) }
/// ```
pub fn map_resource<Fd: AsFd>(
    fd: Fd,
    layout: &'static Layout,
    map_type: u32,
    map_id: u64,
    len: usize,
    flags: MapFlags,
) -> Result<Mapping> {
    let offset = layout.encode(map_type, map_id).map_err(|e| {
        Error::invalid(format!(
            "{} cannot encode type {map_type} id {map_id}: {e}",
            layout.name
        ))
    })?;
    MapOptions::new(len)
        .flags(flags)
        .layout(layout)
        .map(fd, offset)
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

/// `mmap` of a [`Region`] of `fd`—Map a region by what it is, with its length checked once.
///
/// `size` is the region's size in bytes as the kernel allocated it, when the caller knows it.
/// A `len` longer than `size` rounded up to whole pages is refused with `EINVAL` before the
/// syscall, naming the region: some kernels accept such a length and leave the tail of the
/// mapping unbacked, so touching it raises `SIGBUS`.
///
/// # Errors
/// `EINVAL` (before any call) if the region does not encode or `len` is too long; otherwise as
/// [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{ResourceId, ResourceType};
/// use pktmap::resource::{map_region, MapFlags};
/// let dev = std::fs::File::open("/dev/pktmap")?;
/// let state = ResourceId { ty: ResourceType::State, id: 0 };
/// let m = map_region(&dev, state, Some(4096), 4096, MapFlags::READONLY)?;
/// assert!(map_region(&dev, state, Some(4096), 8192, MapFlags::READONLY).is_err());
/// # Ok(()) }
/// ```
pub fn map_region<R: Region, Fd: AsFd>(
    fd: Fd,
    region: R,
    size: Option<usize>,
    len: usize,
    flags: MapFlags,
) -> Result<Mapping> {
    let offset = region.offset()?;
    if let Some(size) = size {
        let page = PAGE_SIZE as usize;
        let limit = size.checked_next_multiple_of(page).unwrap_or(usize::MAX);
        if len > limit {
            return Err(Error::invalid(format!(
                "{} {} is {size} bytes ({limit} page-rounded); refusing to map {len}",
                R::LAYOUT.name,
                region.name()
            )));
        }
    }
    MapOptions::new(len)
        .flags(flags)
        .layout(R::LAYOUT)
        .map(fd, offset)
}

/// `mmap(at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE [| MAP_FIXED])`—
/// Address space that holds nothing, for [`crate::reservation`]: fresh (`at` is `None`), or
/// laid back over a range the caller owns.
///
/// # Safety
/// With `at`, `[at, at + len)` must belong to the caller (a reservation's own range) and
/// nothing may refer to memory in it: whatever is mapped there is replaced.
pub(crate) unsafe fn reserve_raw(
    at: Option<NonNull<c_void>>,
    len: usize,
) -> Result<NonNull<c_void>> {
    let (hint, fixed) = match at {
        Some(a) => (a.as_ptr(), SysMapFlags::FIXED),
        None => (ptr::null_mut(), SysMapFlags::empty()),
    };
    let sys = SysMapFlags::PRIVATE | SysMapFlags::NORESERVE | fixed;
    // SAFETY: Without `at`, a null hint takes fresh address space; with it, the caller
    // guarantees the range is theirs to replace.
    let p = unsafe { mm::mmap_anonymous(hint, len, ProtFlags::empty(), sys) }
        .map_err(|e| Error::from(e).during("mmap(PROT_NONE)"))?;
    NonNull::new(p).ok_or_else(|| Error::from_errno(libc::ENOMEM))
}

/// `munmap(addr, len)` of a range [`reserve_raw`] made.
///
/// # Safety
/// The range must belong to the caller, and nothing may refer to memory in it.
pub(crate) unsafe fn unmap_raw(addr: NonNull<c_void>, len: usize) -> Result<()> {
    // SAFETY: The caller owns the range and nothing refers to it.
    unsafe { mm::munmap(addr.as_ptr(), len) }.map_err(|e| Error::from(e).during("munmap"))
}

/// The one owner of a mapped range.
///
/// # Invariants
/// `ptr` came from a successful `mmap` of `len` bytes (`len > 0`) and is unmapped exactly once,
/// in `Drop` (or by [`Mapping::unmap`], which forgets the value afterwards).
#[derive(Debug)]
struct RawMapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Drop for RawMapping {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the range is ours and still mapped. munmap of a range
        // we mapped can only fail for bad arguments, which the invariants exclude; like memmap2,
        // ignore the result, as Drop cannot report it.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// A mapped resource, unmapped on drop.
///
/// The memory may be shared with a driver or another process that writes it at any time, so
/// the safe accessors copy and slices are `unsafe`.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::resource::{map, MapFlags};
/// let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// rustix::fs::ftruncate(&fd, 8192).unwrap();
/// let rw = map(&fd, 0, 8192, MapFlags::POPULATE)?;
/// rw.write_at(4096, b"frame")?;
/// let ro = map(&fd, 4096, 4096, MapFlags::READONLY)?; // a second view of the second page
/// let mut b = [0; 5];
/// ro.read_at(0, &mut b)?;
/// assert_eq!((&b, ro.len(), ro.is_readonly()), (b"frame", 4096, true));
/// assert!(ro.write_at(0, b"x").is_err()); // EACCES: read-only
/// # Ok(()) } // both are unmapped here
/// ```
#[derive(Debug)]
pub struct Mapping {
    raw: RawMapping,
    flags: MapFlags,
    /// `MAP_SHARED`: a read populate may suffice (see the module docs).
    shared: bool,
    /// The `/dev/pktmap` pool kind it maps, if the map was told ([`MapOptions::pool`]).
    pool: Option<PoolKind>,
}

// SAFETY: A Mapping is an address range owned by the process, not by a thread; every access
// through it is a copy through raw pointers or an `unsafe` slice whose caller answers for races.
unsafe impl Send for Mapping {}
// SAFETY: As for Send: shared references only allow copies (`read_at`, `write_at`), which are
// plain loads and stores of bytes whose concurrent use the memory model of shared mappings
// already has to allow (the device writes them too).
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The first byte.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// assert_eq!(m.as_ptr() as usize % 4096, 0); // mappings start on a page
    /// # Ok(()) }
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr.as_ptr().cast()
    }

    /// The first byte, for writing; `None` if mapped [`MapFlags::READONLY`].
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let fd = memfd(4096)?;
    /// assert!(MapOptions::new(4096).map(&fd, 0)?.as_mut_ptr().is_some());
    /// let ro = MapOptions::new(4096).flags(MapFlags::READONLY).map(&fd, 0)?;
    /// assert!(ro.as_mut_ptr().is_none());
    /// # Ok(()) }
    /// ```
    pub fn as_mut_ptr(&self) -> Option<*mut u8> {
        (!self.is_readonly()).then(|| self.raw.ptr.as_ptr().cast())
    }

    /// The mapped length in bytes (never 0).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(3 * 4096).map_anonymous()?;
    /// assert_eq!(m.len(), 3 * 4096);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// Always `false`: a mapping is never empty (`mmap` refuses zero lengths).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// assert!(!MapOptions::new(4096).map_anonymous()?.is_empty());
    /// assert!(MapOptions::new(0).map_anonymous().is_err());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The flags it was mapped with.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let m = MapOptions::new(4096).flags(MapFlags::POPULATE).map_anonymous()?;
    /// assert_eq!(m.flags(), MapFlags::POPULATE);
    /// # Ok(()) }
    /// ```
    pub fn flags(&self) -> MapFlags {
        self.flags
    }

    /// Whether it is mapped `PROT_READ` only.
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
    /// let fd = memfd(4096)?;
    /// assert!(map(&fd, 0, 4096, MapFlags::READONLY)?.is_readonly());
    /// assert!(!map(&fd, 0, 4096, MapFlags::empty())?.is_readonly());
    /// # Ok(()) }
    /// ```
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(MapFlags::READONLY)
    }

    /// The address of `len` bytes at `offset`, checked to lie inside the mapping and be aligned
    /// to `align`: the crate's one range check, behind every accessor here and in
    /// [`crate::volatile`].
    pub(crate) fn checked(&self, offset: usize, len: usize, align: usize) -> Result<*const u8> {
        let inside = offset.checked_add(len).is_some_and(|end| end <= self.len());
        if !inside {
            return Err(Error::invalid(format!(
                "{len} bytes at offset {offset} do not fit a mapping of {} bytes",
                self.len()
            )));
        }
        let addr = (self.as_ptr() as usize).wrapping_add(offset);
        if align == 0 || addr % align != 0 {
            return Err(Error::invalid(format!(
                "offset {offset} is not aligned to {align} bytes"
            )));
        }
        // SAFETY: `offset + len <= self.len()` (checked above), so the result stays inside the
        // mapping.
        Ok(unsafe { self.as_ptr().add(offset) })
    }

    /// As [`checked`](Self::checked), for a write: `EACCES` if the mapping is read-only.
    pub(crate) fn checked_mut(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8> {
        let p = self.checked(offset, len, align)?;
        if self.is_readonly() {
            return Err(Error::refused(libc::EACCES, "the mapping is read-only"));
        }
        Ok(p.cast_mut())
    }

    /// A writable pointer to `len` bytes at `offset`, checked to lie inside the mapping and be
    /// aligned to `align` bytes: where a kernel-described structure (a ring's producer index, a
    /// descriptor array) lives in the mapping.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping or misaligned, `EACCES` if the mapping is
    /// read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// let producer = m.ptr_at(64, 4, 4)?.cast::<u32>();
    /// assert!(m.ptr_at(4094, 4, 1).is_err());
    /// assert!(m.ptr_at(2, 4, 4).is_err());
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn ptr_at(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8> {
        self.checked_mut(offset, len, align)
    }

    /// Copies `buf.len()` bytes out of the mapping, starting `offset` bytes in.
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
    /// let fd = memfd(4096)?;
    /// rustix::io::pwrite(&fd, b"from the file", 100)?;
    /// let m = map(&fd, 0, 4096, MapFlags::READONLY)?;
    /// let mut buf = [0; 13];
    /// m.read_at(100, &mut buf)?;
    /// assert_eq!(&buf, b"from the file");
    /// assert!(m.read_at(4090, &mut buf).is_err()); // past the end: EINVAL, nothing read
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let p = self.checked(offset, buf.len(), 1)?;
        // SAFETY: The range is inside the mapping (checked above), which is mapped and
        // readable by the type invariants; `buf` is a distinct Rust allocation.
        unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the mapping, starting `offset` bytes in.
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
    /// let fd = memfd(4096)?;
    /// let m = map(&fd, 0, 4096, MapFlags::empty())?;
    /// m.write_at(8, b"seen by every mapping of the file")?;
    /// let mut buf = [0; 4];
    /// rustix::io::pread(&fd, &mut buf, 8)?;
    /// assert_eq!(&buf, b"seen");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping; `EACCES` if it is read-only.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let p = self.checked_mut(offset, data.len(), 1)?;
        // SAFETY: The range is inside the mapping (checked above), which is mapped writable
        // (not READONLY); `data` is a distinct Rust allocation.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// The mapping as a byte slice.
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
    /// let fd = memfd(4096)?;
    /// rustix::io::pwrite(&fd, b"abc", 0)?;
    /// let m = map(&fd, 0, 4096, MapFlags::READONLY)?;
    /// // SAFETY: nothing else has this memfd, so nothing writes while the slice lives.
    /// let bytes = unsafe { m.as_slice() };
    /// assert_eq!(&bytes[..3], b"abc");
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// Nothing may write the mapped memory while the slice lives: not this process, not the
    /// driver, not another process sharing it.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: Mapped and readable for `len` bytes by the type invariants; the caller
        // guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// The mapping as a mutable byte slice.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// // SAFETY: private anonymous memory, writable, and no other reference to it.
    /// let bytes = unsafe { m.as_mut_slice() };
    /// bytes.fill(0xff);
    /// let mut last = [0];
    /// m.read_at(4095, &mut last)?;
    /// assert_eq!(last, [0xff]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// The mapping must be writable (not READONLY, else the first write faults), and nothing
    /// else may read or write the mapped memory while the slice lives.
    #[allow(clippy::mut_from_ref)] // The memory is not owned by `self`'s borrow; see # Safety.
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: Mapped for `len` bytes by the type invariants; the caller guarantees
        // writability and exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.raw.ptr.as_ptr().cast(), self.len()) }
    }

    fn call(&self, what: &'static str, r: rustix::io::Result<()>) -> Result<()> {
        r.map_err(|e| Error::from(e).during(what))
    }

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
    /// module docs' table says: a read populate where it maps pages writable, a write populate
    /// where it does not.
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
    fn populate_raw(&self, fresh: bool) -> (&'static str, rustix::io::Result<()>) {
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

    /// `msync(MS_SYNC)`—Writes changes back to the resource and waits.
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
    /// let fd = memfd(4096)?;
    /// let m = map(&fd, 0, 4096, MapFlags::empty())?;
    /// m.write_at(0, b"durable")?;
    /// m.flush()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        // SAFETY: msync only writes back; the range is ours by the type invariants.
        let r = unsafe { mm::msync(self.raw.ptr.as_ptr(), self.len(), MsyncFlags::SYNC) };
        self.call("msync(MS_SYNC)", r)
    }

    /// `madvise(advice)`—Gives the kernel a hint about the whole mapping.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{Advice, MapOptions};
    /// let m = MapOptions::new(2 * 4096).map_anonymous()?;
    /// m.write_at(0, &[1])?;
    /// // SAFETY: this code expects the pages back as zeros, which is what DONTNEED gives.
    /// unsafe { m.advise(Advice::LinuxDontNeed)? };
    /// let mut b = [9];
    /// m.read_at(0, &mut b)?;
    /// assert_eq!(b, [0]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// Some advice changes contents: `MADV_DONTNEED` or `MADV_REMOVE` drop pages, after which
    /// private pages read back as zeros. The caller must hold no assumption that breaks.
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "madvise")]
    pub unsafe fn advise(&self, advice: Advice) -> Result<()> {
        // SAFETY: The range is ours by the type invariants; the caller answers for the advice.
        let r = unsafe { mm::madvise(self.raw.ptr.as_ptr(), self.len(), advice) };
        self.call("madvise", r)
    }

    /// `mlock`—Locks every page in memory (faulting them in).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.lock()?; // within RLIMIT_MEMLOCK (8 MiB by default)
    /// m.unlock()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno (`ENOMEM` or `EPERM` past `RLIMIT_MEMLOCK`).
    #[doc(alias = "mlock")]
    pub fn lock(&self) -> Result<()> {
        // SAFETY: mlock does not change contents; the range is ours by the type invariants.
        let r = unsafe { mm::mlock(self.raw.ptr.as_ptr(), self.len()) };
        self.call("mlock", r)
    }

    /// `munlock`—Undoes [`lock`](Self::lock).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.lock()?;
    /// m.unlock()?;
    /// m.unlock()?; // unlocking unlocked pages is no error
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "munlock")]
    pub fn unlock(&self) -> Result<()> {
        // SAFETY: munlock does not change contents; the range is ours by the type invariants.
        let r = unsafe { mm::munlock(self.raw.ptr.as_ptr(), self.len()) };
        self.call("munlock", r)
    }

    /// `munmap`—Unmaps now and reports the errno, which `Drop` cannot.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.unmap()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno; the range is given up either way.
    #[doc(alias = "munmap")]
    pub fn unmap(self) -> Result<()> {
        let (p, len) = (self.raw.ptr.as_ptr(), self.len());
        std::mem::forget(self);
        // SAFETY: By the type invariants the range is ours and mapped; `self` was forgotten, so
        // Drop will not unmap it a second time.
        let r = unsafe { mm::munmap(p, len) };
        r.map_err(|e| Error::from(e).during("munmap"))
    }

    /// Takes ownership of a mapped range, to unmap it on drop.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions, Mapping};
    /// let (ptr, len) = MapOptions::new(4096).map_anonymous()?.into_raw();
    /// // SAFETY: a live read-write mapping of `len` bytes that nothing else will unmap.
    /// let m = unsafe { Mapping::from_raw(ptr, len, MapFlags::empty()) };
    /// m.write_at(0, b"owned again")?;
    /// # drop(m); // unmapped here
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// `[ptr, ptr + len)` must be a live mapping (from `mmap`, or [`Mapping::into_raw`]) that
    /// nothing else will unmap, with `len > 0`, and `flags` must not claim more access than
    /// it has (READONLY if it is mapped `PROT_READ`).
    pub unsafe fn from_raw(ptr: NonNull<c_void>, len: usize, flags: MapFlags) -> Self {
        // INVARIANT: The caller hands over a live mapping of `len` bytes that only we unmap.
        Mapping {
            raw: RawMapping { ptr, len },
            flags,
            // Unknown: populate() takes the write path, which is always enough.
            shared: false,
            pool: None,
        }
    }

    /// Gives up ownership: returns the address and length, which the caller must `munmap`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let (ptr, len) = MapOptions::new(4096).map_anonymous()?.into_raw();
    /// assert_eq!(len, 4096);
    /// // SAFETY: the range came from `into_raw`, and nothing uses it any more.
    /// unsafe { rustix::mm::munmap(ptr.as_ptr(), len)? };
    /// # Ok(()) }
    /// ```
    pub fn into_raw(self) -> (NonNull<c_void>, usize) {
        let raw = (self.raw.ptr, self.raw.len);
        std::mem::forget(self);
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::PKTMAP;
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

    fn memfd(len: u64) -> rustix::fd::OwnedFd {
        let fd = memfd_create("pktmap-test", MemfdFlags::CLOEXEC).unwrap();
        ftruncate(&fd, len).unwrap();
        fd
    }

    #[test]
    fn flags_are_onloads_bits() {
        assert_eq!(MapFlags::READONLY.bits(), 1);
        assert_eq!(MapFlags::FIXED.bits(), 2);
        assert_eq!(MapFlags::POPULATE.bits(), 4);
        assert_eq!(MapFlags::from_raw(7).unwrap(), MapFlags::all());
        for bad in [8, 0x80, 0x8000_0000, u32::MAX] {
            let e = MapFlags::from_raw(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        }
    }

    /// Bits no flag names, smuggled in with `from_bits_retain`, are refused by every map
    /// before any call, as `from_raw` and the C ABI refuse them.
    #[test]
    fn unknown_flag_bits_are_refused_before_mmap() {
        let fd = memfd(4096);
        for bits in [8, 0x80 | 4, 0x8000_0000] {
            let flags = MapFlags::from_bits_retain(bits);
            let e = MapOptions::new(4096).flags(flags).map(&fd, 0).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            assert!(e.to_string().contains("unknown map flag bits"), "{e}");
            let e = map(&fd, 0, 4096, flags).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        }
        // The named bits alone still map.
        assert!(map(&fd, 0, 4096, MapFlags::READONLY).is_ok());
    }

    #[test]
    fn error_names_the_resource_and_keeps_errno() {
        let fd = memfd(4096);
        let off = PKTMAP.encode(crate::offset::pktmap_types::POOL, 3).unwrap();
        let e = map_resource(&fd, &PKTMAP, 1, 3, 4096, MapFlags::POPULATE).unwrap_err();
        // The memfd is one page; its page at `off` is beyond EOF, so the map is refused before
        // the call (touching it would raise SIGBUS).
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("(pktmap POOL id 3)"), "{msg}");
        assert!(msg.contains("SIGBUS"), "{msg}");
        assert_eq!(e.offset(), Some(off));
        // Without a layout the same request names no resource: a memfd offset is just bytes.
        let e = map(&fd, off, 4096, MapFlags::POPULATE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        assert!(!e.to_string().contains("pktmap"), "{e}");
    }

    #[test]
    fn options_and_mappings_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MapOptions>();
        send_sync::<Mapping>();
        send_sync::<MapFlags>();
    }

    #[test]
    fn read_write_bounds() {
        let fd = memfd(4096);
        let m = map(&fd, 0, 4096, MapFlags::empty()).unwrap();
        assert!(m.write_at(4090, b"abcdef").is_ok());
        assert!(m.write_at(4091, b"abcdef").is_err());
        assert!(m.read_at(usize::MAX, &mut [0; 2]).is_err());
        let ro = map(&fd, 0, 4096, MapFlags::READONLY).unwrap();
        assert_eq!(
            ro.write_at(0, b"x").unwrap_err().raw_os_error(),
            Some(libc::EACCES)
        );
        let mut b = [0; 6];
        ro.read_at(4090, &mut b).unwrap();
        assert_eq!(&b, b"abcdef");
        assert!(ro.as_mut_ptr().is_none());
    }

    #[test]
    fn anonymous_is_zeroed_private_and_strict() {
        let m = MapOptions::new(8192)
            .flags(MapFlags::POPULATE)
            .map_anonymous()
            .unwrap();
        let mut b = [1; 16];
        m.read_at(8192 - 16, &mut b).unwrap();
        assert_eq!(b, [0; 16]);
        m.write_at(0, b"umem").unwrap();
        let ro = MapOptions::new(4096)
            .flags(MapFlags::READONLY)
            .map_anonymous()
            .unwrap();
        assert!(ro.as_mut_ptr().is_none());
        for bad in [
            MapOptions::new(0),
            MapOptions::new(4096).flags(MapFlags::FIXED),
        ] {
            let e = bad.map_anonymous().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        }
    }
}
