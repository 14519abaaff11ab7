// SPDX-License-Identifier: MIT OR Apache-2.0
//! The driver's request validation: what an `mmap` or ioctl asks for, checked before anything
//! is allocated or mapped.
//!
//! The kernel module calls these with what it read from the VMA or the ioctl argument and acts
//! on the [`Plan`] or the errno; the host unit-tests and fuzzes the very same code.
//!
//! | request | rules | function |
//! |---|---|---|
//! | `mmap` | strict decode of `vm_pgoff` with [`PKTMAP`]; unknown type or id `EINVAL`; a length that, rounded up to pages, exceeds the resource `EINVAL`; writing the read-only STATE page `EPERM`; `PROT_EXEC` `EPERM`; every shared mapping without write (and every STATE mapping) loses `VM_MAYWRITE`, every mapping `VM_MAYEXEC` | [`plan_mmap`] |
//! | `pread`/`pwrite`, `read`/`write` | the position is a resource's `mmap` offset, decoded as strictly; the copy starts at the resource's byte 0 and is clamped to its size; writing STATE `EPERM` | [`plan_io`] |
//! | ioctl | unknown command `ENOTTY` (dispatched on direction, type and number, at every size its struct had: [`ioctl::arg_size`]); commands that change state need a writable open, else `EBADF` | [`check_ioctl`] |
//! | `POOL_CREATE`, `RING_CREATE` | geometry and flags `EINVAL`; past the device-wide page budget `ENOSPC` | [`check_pool`], [`check_ring`], [`check_budget`] |
//!
//! | `POOL_CREATE` fields of the pool kinds | kind, fault-around, cache attribute, `reserved` `EINVAL` | [`check_pool`] |
//! | pool `mmap` fill | `MAP_PRIVATE` of a contiguous or 2 MiB pool `EINVAL`; writable or private through a read-only pool file `EPERM` | [`plan_pool_map`] |
//! | one fault | the lazy window, a 2 MiB entry or the 4 KiB fallback | [`fault_window`], [`huge_fault_chunk`] |
//! | `POOL_CHUNK`, `POOL_EXPORT` | root only `EPERM`; unknown pool or chunk, flags, `reserved` `EINVAL` | [`check_chunk`], [`check_export`] |
//!
//! Lookups are generic over what the table hands back with a resource (`T`): the kernel gets its
//! own reference to the resource back in the [`Plan`], so nothing is smuggled out of a closure.

use super::codec::{resource_type, DecodeError, PAGE_SHIFT, PAGE_SIZE, PKTMAP};
use super::ioctl::{
    self, PoolChunk, PoolCreate, PoolExport, RingCreate, CACHE_WB, CACHE_WC, DEFAULT_FAULT_AROUND,
    EXPORT_FLAGS, EXPORT_READONLY, HUGE_CHUNK_PAGES, MAX_BUF_SIZE, MAX_CONTIG_CHUNK_PAGES,
    MAX_FAULT_AROUND, MAX_POOL_BYTES, MAX_RING_ENTRIES, MIN_BUF_SIZE, POOL_CONTIG, POOL_FLAGS,
    POOL_HUGE, POOL_LAZY, RING_DESC_OFFSET,
};
use core::fmt;
use core::ops::Range;

/// The errno values the contract uses (positive, as in `<errno.h>`; the kernel returns them
/// negated).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// Bad file descriptor (here: not open for writing).
    pub const EBADF: i32 = 9;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Inappropriate ioctl for device.
    pub const ENOTTY: i32 = 25;
    /// No space left (too many resources, or the device-wide page budget is spent).
    pub const ENOSPC: i32 = 28;
}

/// A resource as the driver's table describes it to [`plan_mmap`].
///
/// # Examples
/// ```
/// use pktmap_abi::plan::Resource;
/// assert_eq!(Resource::State.pages(), 1);
/// assert_eq!(Resource::Pool { pages: 64, lazy: true }.pages(), 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The one-page, read-only STATE page.
    State,
    /// A packet-buffer pool of `pages` pages.
    Pool {
        /// Its size in pages.
        pages: u64,
        /// Whether pages are served by the fault handler rather than at `mmap` time.
        lazy: bool,
    },
    /// A descriptor ring of `pages` pages.
    Ring {
        /// Its size in pages.
        pages: u64,
    },
}

impl Resource {
    /// Its size in pages.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::Resource;
    /// assert_eq!(Resource::Ring { pages: 3 }.pages(), 3);
    /// ```
    pub const fn pages(&self) -> u64 {
        match *self {
            Resource::State => 1,
            Resource::Pool { pages, .. } | Resource::Ring { pages } => pages,
        }
    }
}

/// An `mmap` request as the driver sees it in the new VMA.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP, PAGE_SHIFT};
/// use pktmap_abi::plan::MmapRequest;
/// // mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, offset of pool 1)
/// let pgoff = PKTMAP.encode(resource_type::POOL, 1).unwrap() >> PAGE_SHIFT;
/// let req = MmapRequest { pgoff, len: 8192, write: false, shared: true, exec: false };
/// assert_eq!(PKTMAP.decode_pgoff(req.pgoff), Ok((resource_type::POOL, 1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmapRequest {
    /// `vma->vm_pgoff`: the offset in pages.
    pub pgoff: u64,
    /// `vm_end - vm_start`, in bytes (the kernel has already rounded it to pages).
    pub len: u64,
    /// Whether `VM_WRITE` is set.
    pub write: bool,
    /// Whether `VM_SHARED` is set (`MAP_SHARED`).
    pub shared: bool,
    /// Whether `VM_EXEC` is set (`PROT_EXEC`).
    pub exec: bool,
}

/// How the driver fills a mapping.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP};
/// use pktmap_abi::plan::{plan_mmap, Fill, MmapRequest, Resource};
/// let pgoff = PKTMAP.encode(resource_type::RING, 1).unwrap() >> 12;
/// let req = MmapRequest { pgoff, len: 4096, write: true, shared: true, exec: false };
/// let plan = plan_mmap(&req, |_, _| Some((Resource::Ring { pages: 1 }, ()))).unwrap();
/// assert_eq!(plan.fill, Fill::Eager); // only lazy pools fill from the fault handler
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fill {
    /// Insert every page now, in the `mmap` handler.
    Eager,
    /// Insert pages from the `.fault` handler as they are touched.
    Lazy,
}

/// What the driver does for an accepted `mmap` request; `target` is what the lookup handed
/// back with the resource.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::{plan_mmap, MmapRequest, Resource};
/// // STATE: one page, read-only, never writable later.
/// let req = MmapRequest { pgoff: 0, len: 4096, write: false, shared: true, exec: false };
/// let plan = plan_mmap(&req, |_, _| Some((Resource::State, "the state page"))).unwrap();
/// assert!(plan.read_only && plan.clear_maywrite && plan.clear_mayexec);
/// assert_eq!((plan.pages, plan.target), (1, "the state page"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plan<T> {
    /// The map type ([`resource_type::STATE`], [`resource_type::POOL`] or [`resource_type::RING`]).
    pub map_type: u32,
    /// The resource id.
    pub id: u32,
    /// The resource as the table described it.
    pub resource: Resource,
    /// Pages to map, starting at the resource's first page.
    pub pages: u64,
    /// Eager or lazy.
    pub fill: Fill,
    /// The resource is read-only (the STATE page).
    pub read_only: bool,
    /// Clear `VM_MAYWRITE`, so `mprotect` can never add write: every STATE mapping, and every
    /// shared mapping made without write. (A private mapping may still copy on write.)
    pub clear_maywrite: bool,
    /// Clear `VM_MAYEXEC`, so `mprotect` can never add `PROT_EXEC` (every mapping).
    pub clear_mayexec: bool,
    /// What the lookup returned with the resource.
    pub target: T,
}

/// Why a request was refused; [`PlanError::errno`] is what the caller gets.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::DecodeError;
/// use pktmap_abi::plan::{errno, plan_mmap, MmapRequest, PlanError, Resource};
/// // Page offset 7 is byte offset 7 << 12: type 7, which PKTMAP does not list.
/// let req = MmapRequest { pgoff: 7, len: 4096, write: false, shared: true, exec: false };
/// let err = plan_mmap(&req, |_, _| None::<(Resource, ())>).unwrap_err();
/// assert_eq!(err, PlanError::Decode(DecodeError::UnknownType));
/// assert_eq!(err.errno(), errno::EINVAL);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlanError {
    /// The offset does not decode with [`PKTMAP`].
    Decode(DecodeError),
    /// No resource of that type and id in this open file.
    UnknownResource,
    /// A zero length.
    ZeroLength,
    /// The length, in pages, exceeds the resource.
    TooLong,
    /// Write access to a read-only resource.
    ReadOnly,
    /// A size, count or flag outside what the contract allows.
    BadArgument,
    /// A request too large to allocate at all.
    TooLarge,
    /// `PROT_EXEC`: pktmap resources hold data, never code.
    Exec,
    /// A command that changes state on a file not open for writing.
    NotWritable,
    /// `POOL_EXPORT` on a file not open for reading: the pool file would read and map what
    /// the open cannot.
    NotReadable,
    /// An ioctl command the driver does not know.
    UnknownCommand,
    /// The device-wide page budget would be exceeded.
    OverBudget,
    /// The resource is in use (a pool that a ring names).
    Busy,
    /// A `MAP_PRIVATE` mapping of a pool mapped by page frame number (contiguous and 2 MiB
    /// pools): copy-on-write of a PFN map is meaningless.
    PrivateMapping,
    /// An operation only `CAP_SYS_ADMIN` may do (reading physical addresses).
    NotPrivileged,
}

impl PlanError {
    /// The errno the caller receives (positive).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::{errno, PlanError};
    /// assert_eq!(PlanError::ReadOnly.errno(), errno::EPERM);
    /// assert_eq!(PlanError::TooLong.errno(), errno::EINVAL);
    /// assert_eq!(PlanError::NotWritable.errno(), errno::EBADF);
    /// ```
    pub const fn errno(self) -> i32 {
        match self {
            PlanError::ReadOnly | PlanError::Exec | PlanError::NotPrivileged => errno::EPERM,
            PlanError::PrivateMapping => errno::EINVAL,
            PlanError::TooLarge => errno::ENOMEM,
            PlanError::NotWritable | PlanError::NotReadable => errno::EBADF,
            PlanError::UnknownCommand => errno::ENOTTY,
            PlanError::OverBudget => errno::ENOSPC,
            PlanError::Busy => errno::EBUSY,
            PlanError::Decode(_)
            | PlanError::UnknownResource
            | PlanError::ZeroLength
            | PlanError::TooLong
            | PlanError::BadArgument => errno::EINVAL,
        }
    }
}

impl From<DecodeError> for PlanError {
    fn from(e: DecodeError) -> Self {
        PlanError::Decode(e)
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Decode(e) => write!(f, "bad offset: {e}"),
            PlanError::UnknownResource => f.write_str("no resource of that type and id"),
            PlanError::ZeroLength => f.write_str("zero length"),
            PlanError::TooLong => f.write_str("length exceeds the resource"),
            PlanError::ReadOnly => f.write_str("write access to a read-only resource"),
            PlanError::BadArgument => f.write_str("argument outside the contract"),
            PlanError::TooLarge => f.write_str("request too large to allocate"),
            PlanError::Exec => f.write_str("resources cannot be mapped executable"),
            PlanError::NotWritable => f.write_str("the file is not open for writing"),
            PlanError::NotReadable => f.write_str("the file is not open for reading"),
            PlanError::UnknownCommand => f.write_str("unknown ioctl command"),
            PlanError::OverBudget => f.write_str("the device-wide page budget is spent"),
            PlanError::Busy => f.write_str("the resource is in use"),
            PlanError::PrivateMapping => f.write_str("MAP_PRIVATE of a PFN-mapped pool"),
            PlanError::NotPrivileged => f.write_str("needs CAP_SYS_ADMIN"),
        }
    }
}

impl core::error::Error for PlanError {}

/// Pages needed for `bytes` bytes, rounded up; `None` on overflow.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::pages_for;
/// assert_eq!(pages_for(4097), Some(2));
/// assert_eq!(pages_for(0), Some(0));
/// assert_eq!(pages_for(u64::MAX), None);
/// ```
pub const fn pages_for(bytes: u64) -> Option<u64> {
    match bytes.checked_add(PAGE_SIZE - 1) {
        Some(b) => Some(b >> PAGE_SHIFT),
        None => None,
    }
}

/// Decodes a PKTMAP offset (in pages) and looks the resource up, refusing a table that
/// answers with another kind of resource.
fn find<T>(
    pgoff: u64,
    lookup: impl FnOnce(u32, u32) -> Option<(Resource, T)>,
) -> Result<(u32, u32, Resource, T), PlanError> {
    let (map_type, id) = PKTMAP.decode_pgoff(pgoff)?;
    // The PKTMAP id field is 32 bits wide, so every decoded id fits.
    let id = u32::try_from(id).map_err(|_| PlanError::Decode(DecodeError::StrayBits))?;
    let (resource, target) = lookup(map_type, id).ok_or(PlanError::UnknownResource)?;
    let kind_matches = matches!(
        (map_type, resource),
        (resource_type::STATE, Resource::State)
            | (resource_type::POOL, Resource::Pool { .. })
            | (resource_type::RING, Resource::Ring { .. })
    );
    if !kind_matches {
        return Err(PlanError::UnknownResource);
    }
    Ok((map_type, id, resource, target))
}

/// Checks an `mmap` request against the open file's resources.
///
/// `lookup(map_type, id)` describes the resource and hands back `T` (the kernel: its own
/// reference to the resource), or `None` if there is none; it is called at most once, after
/// the offset decoded.
///
/// # Errors
/// [`PlanError`], whose [`errno`](PlanError::errno) the `mmap` handler returns.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP};
/// use pktmap_abi::plan::{plan_mmap, Fill, MmapRequest, PlanError, Resource};
/// let table = |t: u32, id: u32| match (t, id) {
///     (resource_type::STATE, 0) => Some((Resource::State, "state")),
///     (resource_type::POOL, 1) => Some((Resource::Pool { pages: 4, lazy: true }, "pool 1")),
///     _ => None,
/// };
/// let pgoff = PKTMAP.encode(resource_type::POOL, 1).unwrap() >> 12;
/// let rw = MmapRequest { pgoff, len: 2 * 4096, write: true, shared: true, exec: false };
/// let plan = plan_mmap(&rw, table).unwrap();
/// assert_eq!((plan.pages, plan.fill, plan.target), (2, Fill::Lazy, "pool 1"));
/// assert!(!plan.clear_maywrite && plan.clear_mayexec);
/// let ro = MmapRequest { write: false, ..rw };
/// assert!(plan_mmap(&ro, table).unwrap().clear_maywrite);
/// let too_long = MmapRequest { len: 5 * 4096, ..rw };
/// assert_eq!(plan_mmap(&too_long, table), Err(PlanError::TooLong));
/// let exec = MmapRequest { exec: true, ..ro };
/// assert_eq!(plan_mmap(&exec, table), Err(PlanError::Exec));
/// let state = MmapRequest { pgoff: 0, len: 4096, ..rw };
/// assert_eq!(plan_mmap(&state, table), Err(PlanError::ReadOnly));
/// ```
pub fn plan_mmap<T>(
    req: &MmapRequest,
    lookup: impl FnOnce(u32, u32) -> Option<(Resource, T)>,
) -> Result<Plan<T>, PlanError> {
    let (map_type, id, resource, target) = find(req.pgoff, lookup)?;
    if req.len == 0 {
        return Err(PlanError::ZeroLength);
    }
    let pages = pages_for(req.len).ok_or(PlanError::TooLong)?;
    if pages > resource.pages() {
        return Err(PlanError::TooLong);
    }
    let read_only = matches!(resource, Resource::State);
    if read_only && req.write {
        return Err(PlanError::ReadOnly);
    }
    if req.exec {
        return Err(PlanError::Exec);
    }
    let fill = match resource {
        Resource::Pool { lazy: true, .. } => Fill::Lazy,
        _ => Fill::Eager,
    };
    Ok(Plan {
        map_type,
        id,
        resource,
        pages,
        fill,
        read_only,
        clear_maywrite: read_only || (req.shared && !req.write),
        clear_mayexec: true,
        target,
    })
}

/// A `pread`/`pwrite` (or `read`/`write` at the file position) as the driver sees it.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP};
/// use pktmap_abi::plan::IoRequest;
/// // pread(fd, buf, 64, offset of ring 2)
/// let pos = PKTMAP.encode(resource_type::RING, 2).unwrap() as i64;
/// let req = IoRequest { pos, len: 64, write: false };
/// assert_eq!(PKTMAP.decode(req.pos as u64), Ok((resource_type::RING, 2)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoRequest {
    /// The file position: a resource's `mmap` offset in bytes.
    pub pos: i64,
    /// The user buffer's length.
    pub len: u64,
    /// A write (`pwrite`) rather than a read.
    pub write: bool,
}

/// What the driver copies for an accepted [`IoRequest`]: `len` bytes from the resource's byte
/// 0; `target` is what the lookup handed back.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::{plan_io, IoRequest, Resource};
/// // pread of STATE with a 1 MiB buffer copies one page.
/// let req = IoRequest { pos: 0, len: 1 << 20, write: false };
/// let plan = plan_io(&req, |_, _| Some((Resource::State, ()))).unwrap();
/// assert_eq!((plan.map_type, plan.id, plan.len), (0, 0, 4096));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoPlan<T> {
    /// The map type.
    pub map_type: u32,
    /// The resource id.
    pub id: u32,
    /// The resource as the table described it.
    pub resource: Resource,
    /// Bytes to copy: the request's length clamped to the resource.
    pub len: u64,
    /// What the lookup returned with the resource.
    pub target: T,
}

/// Checks a `pread`/`pwrite` against the open file's resources.
///
/// The position must be exactly a resource's `mmap` offset (no in-resource offset: the codec
/// is strict), and the copy always starts at the resource's first byte. `lookup` is as for
/// [`plan_mmap`].
///
/// # Errors
/// `EINVAL` for a negative position or one that does not name a resource of this file;
/// `EPERM` for a write to STATE.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP};
/// use pktmap_abi::plan::{plan_io, IoRequest, PlanError, Resource};
/// let table = |t: u32, id: u32| match (t, id) {
///     (resource_type::STATE, 0) => Some((Resource::State, ())),
///     (resource_type::POOL, 1) => Some((Resource::Pool { pages: 2, lazy: false }, ())),
///     _ => None,
/// };
/// let pos = PKTMAP.encode(resource_type::POOL, 1).unwrap() as i64;
/// let long = IoRequest { pos, len: 1 << 20, write: true };
/// assert_eq!(plan_io(&long, table).unwrap().len, 8192);
/// // One page past POOL 1 is RING 1's offset, not "byte 4096 of pool 1".
/// let next = IoRequest { pos: pos + 4096, len: 8, write: false };
/// assert_eq!(plan_io(&next, table), Err(PlanError::UnknownResource));
/// let state = IoRequest { pos: 0, len: 8, write: true };
/// assert_eq!(plan_io(&state, table), Err(PlanError::ReadOnly));
/// ```
pub fn plan_io<T>(
    req: &IoRequest,
    lookup: impl FnOnce(u32, u32) -> Option<(Resource, T)>,
) -> Result<IoPlan<T>, PlanError> {
    let pos = u64::try_from(req.pos).map_err(|_| PlanError::BadArgument)?;
    if pos & (PAGE_SIZE - 1) != 0 {
        return Err(PlanError::Decode(DecodeError::Misaligned));
    }
    let (map_type, id, resource, target) = find(pos >> PAGE_SHIFT, lookup)?;
    if req.write && matches!(resource, Resource::State) {
        return Err(PlanError::ReadOnly);
    }
    let bytes = resource.pages().saturating_mul(PAGE_SIZE);
    Ok(IoPlan {
        map_type,
        id,
        resource,
        len: req.len.min(bytes),
        target,
    })
}

/// An ioctl the driver knows, as [`check_ioctl`] admitted it.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RING_DESTROY;
/// use pktmap_abi::plan::{check_ioctl, Command};
/// assert_eq!(check_ioctl(RING_DESTROY, true), Ok(Command::RingDestroy));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// [`POOL_CREATE`](super::ioctl::POOL_CREATE).
    PoolCreate,
    /// [`POOL_INFO`](super::ioctl::POOL_INFO).
    PoolInfo,
    /// [`POOL_DESTROY`](super::ioctl::POOL_DESTROY).
    PoolDestroy,
    /// [`RING_CREATE`](super::ioctl::RING_CREATE).
    RingCreate,
    /// [`RING_INFO`](super::ioctl::RING_INFO).
    RingInfo,
    /// [`RING_DESTROY`](super::ioctl::RING_DESTROY).
    RingDestroy,
    /// [`POOL_CHUNK`](super::ioctl::POOL_CHUNK).
    PoolChunk,
    /// [`POOL_EXPORT`](super::ioctl::POOL_EXPORT).
    PoolExport,
}

impl Command {
    /// Whether the command changes the open file's resources (and so needs a writable open).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::Command;
    /// assert!(Command::PoolExport.changes_state());
    /// assert!(!Command::PoolChunk.changes_state()); // a query, allowed on a read-only open
    /// ```
    pub const fn changes_state(self) -> bool {
        !matches!(
            self,
            Command::PoolInfo | Command::RingInfo | Command::PoolChunk
        )
    }
}

/// Admits an ioctl: `writable` is whether the file was opened for writing.
///
/// # Errors
/// `ENOTTY` for an unknown command; `EBADF` for a create, destroy or export on a read-only
/// open (the errno `write(2)` gives on one).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{POOL_CREATE, POOL_INFO};
/// use pktmap_abi::plan::{check_ioctl, Command, PlanError};
/// assert_eq!(check_ioctl(POOL_INFO, false), Ok(Command::PoolInfo));
/// assert_eq!(check_ioctl(POOL_CREATE, false), Err(PlanError::NotWritable));
/// assert_eq!(check_ioctl(0, true), Err(PlanError::UnknownCommand));
/// // The first round's 16-byte POOL_CREATE is still POOL_CREATE.
/// assert_eq!(check_ioctl(0xc010_5001, true), Ok(Command::PoolCreate));
/// ```
pub const fn check_ioctl(cmd: u32, writable: bool) -> Result<Command, PlanError> {
    // By direction, type and number, at any size the struct had (ioctl.rs, "Growing an
    // argument struct"); how the argument is copied is `ioctl::arg_size`'s.
    let today = match ioctl::arg_size(cmd) {
        Ok(size) => size.cmd,
        Err(_) => return Err(PlanError::UnknownCommand),
    };
    let command = match today {
        ioctl::POOL_CREATE => Command::PoolCreate,
        ioctl::POOL_INFO => Command::PoolInfo,
        ioctl::POOL_DESTROY => Command::PoolDestroy,
        ioctl::RING_CREATE => Command::RingCreate,
        ioctl::RING_INFO => Command::RingInfo,
        ioctl::RING_DESTROY => Command::RingDestroy,
        ioctl::POOL_CHUNK => Command::PoolChunk,
        ioctl::POOL_EXPORT => Command::PoolExport,
        _ => return Err(PlanError::UnknownCommand),
    };
    if command.changes_state() && !writable {
        return Err(PlanError::NotWritable);
    }
    Ok(command)
}

/// Admits `pages` more pages when `allocated` are held device-wide against a budget of
/// `budget`; returns the new total.
///
/// # Errors
/// `ENOSPC` past the budget (or on overflow).
///
/// # Examples
/// ```
/// use pktmap_abi::plan::{check_budget, PlanError};
/// assert_eq!(check_budget(10, 6, 16), Ok(16));
/// assert_eq!(check_budget(10, 7, 16), Err(PlanError::OverBudget));
/// ```
pub const fn check_budget(allocated: u64, pages: u64, budget: u64) -> Result<u64, PlanError> {
    match allocated.checked_add(pages) {
        Some(total) if total <= budget => Ok(total),
        _ => Err(PlanError::OverBudget),
    }
}

/// How a pool's memory is allocated and mapped ([`PoolCreate::flags`]).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_pool, PoolKind};
/// let req = PoolCreate { buf_size: 2048, buf_count: 32, flags: POOL_CONTIG, ..Default::default() };
/// assert_eq!(check_pool(&req).unwrap().kind, PoolKind::Contig);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Single pages, all inserted at `mmap` (`vm_insert_pages`).
    Eager,
    /// Single pages, inserted by the `.fault` handler, up to `fault_around` per fault.
    Lazy,
    /// Physically contiguous chunks, mapped whole at `mmap` (`remap_pfn_range`).
    Contig,
    /// 2 MiB chunks, one PMD entry per fault (`huge_fault`, `vmf_insert_pfn_pmd`).
    Huge,
}

impl PoolKind {
    /// Whether the pool is mapped by page frame number (`VM_PFNMAP`), not by `struct page`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::PoolKind;
    /// assert!(PoolKind::Huge.is_pfn_map());
    /// assert!(!PoolKind::Lazy.is_pfn_map());
    /// ```
    pub const fn is_pfn_map(self) -> bool {
        matches!(self, PoolKind::Contig | PoolKind::Huge)
    }

    /// The `PoolCreate::flags` bit of this kind (0 for eager).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::PoolKind;
    /// assert_eq!(PoolKind::Huge.flag(), POOL_HUGE);
    /// let req = PoolCreate { flags: PoolKind::Eager.flag(), ..Default::default() };
    /// assert_eq!(req.flags, 0);
    /// ```
    pub const fn flag(self) -> u32 {
        match self {
            PoolKind::Eager => 0,
            PoolKind::Lazy => POOL_LAZY,
            PoolKind::Contig => POOL_CONTIG,
            PoolKind::Huge => POOL_HUGE,
        }
    }
}

/// A pool's cache attribute ([`PoolCreate::cache`]).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, CACHE_WC, POOL_HUGE};
/// use pktmap_abi::plan::{check_pool, Cache};
/// let req = PoolCreate { buf_size: 4096, buf_count: 512, flags: POOL_HUGE, cache: CACHE_WC, ..Default::default() };
/// assert_eq!(check_pool(&req).unwrap().cache, Cache::WriteCombine);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cache {
    /// Ordinary cached memory ([`CACHE_WB`]).
    WriteBack,
    /// Write-combined memory ([`CACHE_WC`]).
    WriteCombine,
}

impl Cache {
    /// The `PoolCreate::cache` value.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::CACHE_WC;
    /// use pktmap_abi::plan::Cache;
    /// assert_eq!(Cache::WriteCombine.value(), CACHE_WC);
    /// ```
    pub const fn value(self) -> u32 {
        match self {
            Cache::WriteBack => CACHE_WB,
            Cache::WriteCombine => CACHE_WC,
        }
    }
}

/// A validated pool: what [`check_pool`] accepted.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::check_pool;
/// // 48 KiB of buffers, contiguous: one chunk of the next power of two, 16 pages.
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 12, flags: POOL_CONTIG, ..Default::default() })?;
/// assert_eq!((g.pages, g.chunk_pages, g.buf_count), (16, 16, 12));
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// Bytes per buffer.
    pub buf_size: u32,
    /// Number of buffers.
    pub buf_count: u32,
    /// Size in pages: the buffers' bytes rounded up to whole chunks.
    pub pages: u64,
    /// Whether the pool is lazy (`kind == PoolKind::Lazy`).
    pub lazy: bool,
    /// How it is allocated and mapped.
    pub kind: PoolKind,
    /// Pages per fault for a lazy pool (1..=[`MAX_FAULT_AROUND`], a power of two); 0 for the
    /// other kinds.
    pub fault_around: u32,
    /// Its cache attribute.
    pub cache: Cache,
    /// Pages per physically contiguous chunk, a power of two (1 for eager and lazy pools);
    /// `pages` is a multiple of it.
    pub chunk_pages: u64,
}

impl PoolGeometry {
    /// The buddy-allocator order of one chunk (`chunk_pages == 1 << order`).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::check_pool;
    /// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 512, flags: POOL_HUGE, ..Default::default() })?;
    /// assert_eq!(g.chunk_order(), 9); // 2 MiB
    /// # Ok::<(), pktmap_abi::plan::PlanError>(())
    /// ```
    pub const fn chunk_order(&self) -> u32 {
        self.chunk_pages.trailing_zeros()
    }

    /// The number of chunks.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::check_pool;
    /// // 5 MiB of buffers round up to three 2 MiB chunks.
    /// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 1280, flags: POOL_HUGE, ..Default::default() })?;
    /// assert_eq!((g.chunks(), g.pages), (3, 1536));
    /// # Ok::<(), pktmap_abi::plan::PlanError>(())
    /// ```
    pub const fn chunks(&self) -> u64 {
        // `chunk_pages` is never 0 (a power of two by construction).
        match self.pages.checked_div(self.chunk_pages) {
            Some(n) => n,
            None => 0,
        }
    }
}

/// Checks a [`PoolCreate`] before anything is allocated.
///
/// Contiguous chunks are as large as the pool rounded up to a power of two, at most
/// [`MAX_CONTIG_CHUNK_PAGES`]; 2 MiB pools round up to whole 2 MiB chunks.
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for a buffer size that is not a power of two in
/// `256..=65536`, a zero count, unknown flags or more than one kind, a `fault_around` that is
/// not 0 or a power of two up to 512 on a lazy pool (or not 0 on another), an unknown cache
/// attribute or write-combining on a pool of single pages, a non-zero `reserved`, or a pool
/// over [`MAX_POOL_BYTES`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, CACHE_WC, POOL_HUGE, POOL_LAZY};
/// use pktmap_abi::plan::{check_pool, PlanError, PoolKind};
/// let req = PoolCreate { buf_size: 2048, buf_count: 3, flags: POOL_LAZY, ..Default::default() };
/// let g = check_pool(&req).unwrap();
/// assert_eq!((g.pages, g.kind, g.fault_around), (2, PoolKind::Lazy, 16));
/// let huge = PoolCreate { buf_size: 2048, buf_count: 1024, flags: POOL_HUGE, cache: CACHE_WC, ..req };
/// assert_eq!((check_pool(&huge).unwrap().pages, check_pool(&huge).unwrap().chunk_pages), (512, 512));
/// let bad = PoolCreate { buf_size: 1000, ..req };
/// assert_eq!(check_pool(&bad), Err(PlanError::BadArgument));
/// ```
pub fn check_pool(req: &PoolCreate) -> Result<PoolGeometry, PlanError> {
    let size_ok =
        req.buf_size.is_power_of_two() && (MIN_BUF_SIZE..=MAX_BUF_SIZE).contains(&req.buf_size);
    if !size_ok
        || req.buf_count == 0
        || req.flags & !POOL_FLAGS != 0
        || req.flags.count_ones() > 1
        || req.reserved != 0
    {
        return Err(PlanError::BadArgument);
    }
    let kind = match req.flags {
        POOL_LAZY => PoolKind::Lazy,
        POOL_CONTIG => PoolKind::Contig,
        POOL_HUGE => PoolKind::Huge,
        _ => PoolKind::Eager,
    };
    let fault_around = match (kind, req.fault_around) {
        (PoolKind::Lazy, 0) => DEFAULT_FAULT_AROUND,
        (PoolKind::Lazy, n) if n.is_power_of_two() && n <= MAX_FAULT_AROUND => n,
        (_, 0) => 0,
        _ => return Err(PlanError::BadArgument),
    };
    let cache = match (req.cache, kind.is_pfn_map()) {
        (CACHE_WB, _) => Cache::WriteBack,
        (CACHE_WC, true) => Cache::WriteCombine,
        _ => return Err(PlanError::BadArgument),
    };
    let bytes = u64::from(req.buf_size)
        .checked_mul(u64::from(req.buf_count))
        .ok_or(PlanError::BadArgument)?;
    if bytes > MAX_POOL_BYTES {
        return Err(PlanError::BadArgument);
    }
    let pages = pages_for(bytes).ok_or(PlanError::BadArgument)?;
    let chunk_pages = match kind {
        PoolKind::Eager | PoolKind::Lazy => 1,
        PoolKind::Huge => u64::from(HUGE_CHUNK_PAGES),
        PoolKind::Contig => pages
            .checked_next_power_of_two()
            .ok_or(PlanError::BadArgument)?
            .min(u64::from(MAX_CONTIG_CHUNK_PAGES)),
    };
    // Whole chunks; MAX_POOL_BYTES is a multiple of every chunk size, so this stays in bounds,
    // and the check keeps it so if either constant changes.
    let pages = pages
        .checked_next_multiple_of(chunk_pages)
        .ok_or(PlanError::BadArgument)?;
    if pages > MAX_POOL_BYTES >> PAGE_SHIFT {
        return Err(PlanError::BadArgument);
    }
    Ok(PoolGeometry {
        buf_size: req.buf_size,
        buf_count: req.buf_count,
        pages,
        lazy: kind == PoolKind::Lazy,
        kind,
        fault_around,
        cache,
        chunk_pages,
    })
}

/// How the driver fills a pool's VMA, decided by [`plan_pool_map`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_LAZY};
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PoolFill, PoolMapRequest};
/// let req = PoolCreate { buf_size: 2048, buf_count: 64, flags: POOL_LAZY, fault_around: 4, ..Default::default() };
/// let map = PoolMapRequest { may_share: true, write: true, read_only: false };
/// assert_eq!(plan_pool_map(&check_pool(&req)?, &map), Ok(PoolFill::Fault { around: 4 }));
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolFill {
    /// Insert every page at `mmap` (`vm_insert_pages`).
    Pages,
    /// Insert `around` pages per `.fault` (`vm_insert_pages` of the [`fault_window`]).
    Fault {
        /// Pages per fault.
        around: u32,
    },
    /// Map every chunk at `mmap` (`remap_pfn_range`).
    Remap,
    /// Map 2 MiB per fault where [`huge_fault_chunk`] allows, else 4 KiB (`vmf_insert_pfn`).
    HugeFault,
}

/// A pool `mmap` as the VMA describes it, beyond what [`plan_mmap`] checked.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::PoolCreate;
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PlanError, PoolMapRequest};
/// let g = check_pool(&PoolCreate { buf_size: 2048, buf_count: 4, ..Default::default() })?;
/// // Through a read-only pool file: shared read-only maps, writable does not.
/// let ro = PoolMapRequest { may_share: true, write: false, read_only: true };
/// assert!(plan_pool_map(&g, &ro).is_ok());
/// let rw = PoolMapRequest { write: true, ..ro };
/// assert_eq!(plan_pool_map(&g, &rw), Err(PlanError::ReadOnly));
/// # Ok::<(), PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolMapRequest {
    /// `VM_MAYSHARE`: the mapping is `MAP_SHARED` (a read-only file's shared mapping has
    /// `VM_MAYSHARE` without `VM_SHARED`).
    pub may_share: bool,
    /// `VM_WRITE`.
    pub write: bool,
    /// The file it is mapped through is a read-only pool file descriptor.
    pub read_only: bool,
}

/// Decides how a pool's VMA is filled.
///
/// # Errors
/// [`PlanError::ReadOnly`] (`EPERM`) for a writable or a private (copy-on-write, so writable)
/// mapping through a read-only pool file; [`PlanError::PrivateMapping`] (`EINVAL`) for a
/// `MAP_PRIVATE` mapping of a contiguous or 2 MiB pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PlanError, PoolFill, PoolMapRequest};
/// let g = check_pool(&PoolCreate { buf_size: 2048, buf_count: 64, flags: POOL_CONTIG, ..Default::default() }).unwrap();
/// let shared = PoolMapRequest { may_share: true, write: true, read_only: false };
/// assert_eq!(plan_pool_map(&g, &shared), Ok(PoolFill::Remap));
/// let private = PoolMapRequest { may_share: false, ..shared };
/// assert_eq!(plan_pool_map(&g, &private), Err(PlanError::PrivateMapping));
/// ```
pub fn plan_pool_map(g: &PoolGeometry, req: &PoolMapRequest) -> Result<PoolFill, PlanError> {
    if req.read_only && (req.write || !req.may_share) {
        return Err(PlanError::ReadOnly);
    }
    if g.kind.is_pfn_map() && !req.may_share {
        return Err(PlanError::PrivateMapping);
    }
    Ok(match g.kind {
        PoolKind::Eager => PoolFill::Pages,
        PoolKind::Lazy => PoolFill::Fault {
            around: g.fault_around,
        },
        PoolKind::Contig => PoolFill::Remap,
        PoolKind::Huge => PoolFill::HugeFault,
    })
}

/// The pool pages one lazy fault maps: the `around`-aligned window of pool pages that holds
/// `index`, clipped to the pages `vma` of the faulting VMA (pool page indices) and to the
/// pool's `pool_pages`.
///
/// `None` if `index` itself is outside either (the fault is `SIGBUS`) or `around` is not a
/// power of two.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::fault_window;
/// assert_eq!(fault_window(21, 16, 0..64, 64), Some(16..32));
/// assert_eq!(fault_window(21, 16, 18..64, 64), Some(18..32));
/// assert_eq!(fault_window(21, 1, 0..64, 64), Some(21..22));
/// assert_eq!(fault_window(70, 16, 0..80, 64), None);
/// ```
pub fn fault_window(
    index: u64,
    around: u32,
    vma: Range<u64>,
    pool_pages: u64,
) -> Option<Range<u64>> {
    if !around.is_power_of_two() || !vma.contains(&index) || index >= pool_pages {
        return None;
    }
    // A power of two, so `mask` is its low bits.
    let mask = u64::from(around).wrapping_sub(1);
    let start = (index & !mask).max(vma.start);
    let end = (index | mask)
        .saturating_add(1)
        .min(vma.end)
        .min(pool_pages);
    Some(start..end)
}

/// Bytes one PMD entry maps (x86-64): 2 MiB.
pub const PMD_SIZE: u64 = 2 << 20;

/// The chunk of a 2 MiB pool one PMD entry can map for a fault at `addr`, or `None` when the
/// fault must fall back to a 4 KiB entry.
///
/// `index` is the pool page `addr` maps and `vma` the faulting VMA's address range. A PMD
/// entry maps the 2 MiB-aligned block around `addr`; it may only when the whole block lies in
/// the VMA and starts at a chunk's first page (so the 512 pages are one chunk, in order): a
/// `FIXED` address that is not 2 MiB-aligned, or a VMA split or trimmed off the 2 MiB grid,
/// falls back.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::huge_fault_chunk;
/// let mib = 1 << 20;
/// // An aligned VMA: the fault at +3 MiB (page 768) maps chunk 1 by one PMD.
/// assert_eq!(huge_fault_chunk(64 * mib + 3 * mib, 768, 64 * mib..72 * mib, 512), Some(1));
/// // The same pool at an address 4 KiB off the grid: never.
/// assert_eq!(huge_fault_chunk(64 * mib + 3 * mib, 767, 64 * mib - 4096..72 * mib, 512), None);
/// ```
pub fn huge_fault_chunk(addr: u64, index: u64, vma: Range<u64>, chunk_pages: u64) -> Option<u64> {
    let block = addr & !(PMD_SIZE - 1);
    let block_end = block.checked_add(PMD_SIZE)?;
    if block < vma.start || block_end > vma.end || chunk_pages != PMD_SIZE >> PAGE_SHIFT {
        return None;
    }
    // `block <= addr` (it is `addr` with low bits cleared).
    let first = index.checked_sub(addr.wrapping_sub(block) >> PAGE_SHIFT)?;
    // `chunk_pages` is 512 here (checked above), never 0.
    if first.checked_rem(chunk_pages)? != 0 {
        return None;
    }
    first.checked_div(chunk_pages)
}

/// Checks a [`PoolChunk`] query and returns the chunk index and its size in bytes.
///
/// `lookup(id)` describes the pool, or `None` if there is none; it is not called for an
/// unprivileged caller.
///
/// # Errors
/// [`PlanError::NotPrivileged`] (`EPERM`) without `CAP_SYS_ADMIN`;
/// [`PlanError::UnknownResource`] (`EINVAL`) for an unknown pool; [`PlanError::BadArgument`]
/// (`EINVAL`) for an index past the last chunk.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolChunk, PoolCreate, POOL_HUGE};
/// use pktmap_abi::plan::{check_chunk, check_pool, PlanError};
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 1024, flags: POOL_HUGE, ..Default::default() }).unwrap();
/// let q = PoolChunk { id: 1, index: 1, ..Default::default() };
/// assert_eq!(check_chunk(&q, true, |_| Some(g)), Ok((1, 2 << 20)));
/// assert_eq!(check_chunk(&q, false, |_| Some(g)), Err(PlanError::NotPrivileged));
/// let past = PoolChunk { index: 2, ..q };
/// assert_eq!(check_chunk(&past, true, |_| Some(g)), Err(PlanError::BadArgument));
/// ```
pub fn check_chunk(
    req: &PoolChunk,
    privileged: bool,
    lookup: impl FnOnce(u32) -> Option<PoolGeometry>,
) -> Result<(u64, u64), PlanError> {
    if !privileged {
        return Err(PlanError::NotPrivileged);
    }
    let g = lookup(req.id).ok_or(PlanError::UnknownResource)?;
    let index = u64::from(req.index);
    if index >= g.chunks() {
        return Err(PlanError::BadArgument);
    }
    let bytes = g
        .chunk_pages
        .checked_mul(PAGE_SIZE)
        .ok_or(PlanError::BadArgument)?;
    Ok((index, bytes))
}

/// Checks a [`PoolExport`] on an open file that is `readable` (opened `O_RDONLY` or `O_RDWR`)
/// and returns whether the exported file is read-only.
///
/// An export never grants more than the open it comes from: a pool file reads and maps the
/// pool, which a write-only open cannot, so a write-only open cannot export at all (the
/// writable open [`check_ioctl`] requires is a read-write one here).
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for unknown flags or a non-zero `reserved`;
/// [`PlanError::NotReadable`] (`EBADF`) on a write-only open.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolExport, EXPORT_READONLY};
/// use pktmap_abi::plan::{check_export, PlanError};
/// assert_eq!(check_export(&PoolExport { id: 1, flags: EXPORT_READONLY, ..Default::default() }, true), Ok(true));
/// assert!(check_export(&PoolExport { id: 1, flags: 2, ..Default::default() }, true).is_err());
/// assert_eq!(check_export(&PoolExport { id: 1, ..Default::default() }, false), Err(PlanError::NotReadable));
/// ```
pub fn check_export(req: &PoolExport, readable: bool) -> Result<bool, PlanError> {
    if req.flags & !EXPORT_FLAGS != 0 || req.reserved != 0 {
        return Err(PlanError::BadArgument);
    }
    if !readable {
        return Err(PlanError::NotReadable);
    }
    Ok(req.flags & EXPORT_READONLY != 0)
}

/// Bytes a ring of `entries` descriptors occupies before page rounding.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::{pages_for, ring_bytes};
/// assert_eq!(ring_bytes(1024), 64 + 1024 * 8);
/// assert_eq!(pages_for(ring_bytes(1024)), Some(3));
/// ```
pub const fn ring_bytes(entries: u32) -> u64 {
    // At most MAX_RING_ENTRIES * 8 + 64, far from overflow; saturate to stay panic-free anyway.
    (entries as u64)
        .saturating_mul(8)
        .saturating_add(RING_DESC_OFFSET)
}

/// Checks a [`RingCreate`] before anything is allocated, and returns its size in pages.
/// `pool_exists(id)` says whether the pool it names exists in this open file.
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for entries that are not a power of two in
/// `1..=MAX_RING_ENTRIES`, non-zero flags, or an unknown pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RingCreate;
/// use pktmap_abi::plan::check_ring;
/// let req = RingCreate { entries: 1024, pool_id: 1, flags: 0, id: 0 };
/// assert_eq!(check_ring(&req, |id| id == 1), Ok(3));
/// assert!(check_ring(&req, |_| false).is_err());
/// ```
pub fn check_ring(
    req: &RingCreate,
    pool_exists: impl FnOnce(u32) -> bool,
) -> Result<u64, PlanError> {
    if !req.entries.is_power_of_two() || req.entries > MAX_RING_ENTRIES || req.flags != 0 {
        return Err(PlanError::BadArgument);
    }
    if !pool_exists(req.pool_id) {
        return Err(PlanError::BadArgument);
    }
    pages_for(ring_bytes(req.entries)).ok_or(PlanError::BadArgument)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioctl::POOL_LAZY;
    use crate::ioctl::{PoolChunk, PoolExport};

    fn table(t: u32, id: u32) -> Option<(Resource, ())> {
        describe(t, id).map(|r| (r, ()))
    }

    fn describe(t: u32, id: u32) -> Option<Resource> {
        match (t, id) {
            (resource_type::STATE, 0) => Some(Resource::State),
            (resource_type::POOL, 1) => Some(Resource::Pool {
                pages: 16,
                lazy: false,
            }),
            (resource_type::POOL, 2) => Some(Resource::Pool {
                pages: 16,
                lazy: true,
            }),
            (resource_type::RING, 1) => Some(Resource::Ring { pages: 2 }),
            // A table that lies about the kind is refused, not trusted.
            (resource_type::RING, 9) => Some(Resource::State),
            _ => None,
        }
    }

    fn req(t: u32, id: u64, len: u64, write: bool) -> MmapRequest {
        MmapRequest {
            pgoff: PKTMAP.encode(t, id).unwrap() >> PAGE_SHIFT,
            len,
            write,
            shared: true,
            exec: false,
        }
    }

    #[test]
    fn accepts_each_kind() {
        let p = plan_mmap(&req(resource_type::STATE, 0, 4096, false), table).unwrap();
        assert!(p.read_only);
        assert_eq!(p.fill, Fill::Eager);
        let p = plan_mmap(&req(resource_type::POOL, 1, 16 * 4096, true), table).unwrap();
        assert_eq!((p.pages, p.fill, p.read_only), (16, Fill::Eager, false));
        let p = plan_mmap(&req(resource_type::POOL, 2, 4096, true), table).unwrap();
        assert_eq!((p.pages, p.fill), (1, Fill::Lazy));
        let p = plan_mmap(&req(resource_type::RING, 1, 100, true), table).unwrap();
        assert_eq!(p.pages, 1);
    }

    #[test]
    fn refuses_with_the_right_errno() {
        let cases = [
            (
                req(resource_type::STATE, 0, 4096, true),
                PlanError::ReadOnly,
                errno::EPERM,
            ),
            (
                req(resource_type::STATE, 0, 8192, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                req(resource_type::STATE, 1, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(resource_type::POOL, 3, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(resource_type::POOL, 1, 17 * 4096, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                req(resource_type::POOL, 1, 0, false),
                PlanError::ZeroLength,
                errno::EINVAL,
            ),
            (
                req(resource_type::RING, 9, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(resource_type::RING, 1, u64::MAX, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                MmapRequest {
                    pgoff: 3,
                    ..req(resource_type::STATE, 0, 4096, false)
                },
                PlanError::Decode(DecodeError::UnknownType),
                errno::EINVAL,
            ),
            (
                MmapRequest {
                    pgoff: 1 << 40,
                    ..req(resource_type::STATE, 0, 4096, false)
                },
                PlanError::Decode(DecodeError::StrayBits),
                errno::EINVAL,
            ),
        ];
        for (r, want, e) in cases {
            assert_eq!(plan_mmap(&r, table), Err(want), "{r:?}");
            assert_eq!(want.errno(), e);
        }
    }

    #[test]
    fn lookup_is_not_called_for_bad_offsets() {
        let r = MmapRequest {
            pgoff: u64::MAX,
            ..req(resource_type::STATE, 0, 4096, false)
        };
        let res = plan_mmap(&r, |_, _| -> Option<(Resource, ())> {
            panic!("looked up a bad offset")
        });
        assert_eq!(res, Err(PlanError::Decode(DecodeError::StrayBits)));
    }

    #[test]
    fn maywrite_and_mayexec() {
        let shared_ro = req(resource_type::POOL, 1, 4096, false);
        let p = plan_mmap(&shared_ro, table).unwrap();
        assert!(p.clear_maywrite && p.clear_mayexec);
        let private_ro = MmapRequest {
            shared: false,
            ..shared_ro
        };
        assert!(!plan_mmap(&private_ro, table).unwrap().clear_maywrite);
        let state_private = MmapRequest {
            shared: false,
            ..req(resource_type::STATE, 0, 4096, false)
        };
        assert!(plan_mmap(&state_private, table).unwrap().clear_maywrite);
        for (shared, write) in [(true, true), (true, false), (false, true), (false, false)] {
            let exec = MmapRequest {
                shared,
                write,
                exec: true,
                ..shared_ro
            };
            assert_eq!(plan_mmap(&exec, table), Err(PlanError::Exec));
        }
    }

    #[test]
    fn io_addresses_exactly_one_resource() {
        let pool = PKTMAP.encode(resource_type::POOL, 1).unwrap() as i64;
        let io = |pos, len, write| plan_io(&IoRequest { pos, len, write }, table);
        assert_eq!(io(pool, 100, true).unwrap().len, 100);
        assert_eq!(io(pool, 1 << 30, false).unwrap().len, 16 * 4096);
        assert_eq!(io(pool, 0, false).unwrap().len, 0);
        assert_eq!(io(0, 8, false).unwrap().len, 8);
        assert_eq!(io(0, 8, true), Err(PlanError::ReadOnly));
        assert_eq!(io(-4096, 8, false), Err(PlanError::BadArgument));
        assert_eq!(
            io(pool + 1, 8, false),
            Err(PlanError::Decode(DecodeError::Misaligned))
        );
        // Every page-aligned position past a pool names another resource or none, never the
        // pool again: the position advancing after a `read` could not stay inside it.
        for page in 1..64i64 {
            if let Ok(p) = io(pool + page * 4096, 8, false) {
                assert_ne!((p.map_type, p.id), (resource_type::POOL, 1));
            }
        }
    }

    #[test]
    fn ioctl_admission() {
        use crate::ioctl::*;
        for (cmd, changes) in [
            (POOL_CREATE, true),
            (POOL_INFO, false),
            (POOL_DESTROY, true),
            (RING_CREATE, true),
            (RING_INFO, false),
            (RING_DESTROY, true),
        ] {
            assert!(check_ioctl(cmd, true).is_ok());
            assert_eq!(check_ioctl(cmd, false).is_ok(), !changes, "{cmd:#x}");
            if changes {
                assert_eq!(check_ioctl(cmd, false).unwrap_err().errno(), errno::EBADF);
            }
        }
        assert_eq!(
            check_ioctl(ioc(IOC_READ, 99, 8), true),
            Err(PlanError::UnknownCommand)
        );
        assert_eq!(PlanError::UnknownCommand.errno(), errno::ENOTTY);
    }

    #[test]
    fn budget() {
        assert_eq!(check_budget(0, 0, 0), Ok(0));
        assert_eq!(check_budget(0, 1, 0), Err(PlanError::OverBudget));
        assert_eq!(
            check_budget(u64::MAX, 1, u64::MAX),
            Err(PlanError::OverBudget)
        );
        assert_eq!(check_budget(5, 5, 10), Ok(10));
        assert_eq!(PlanError::OverBudget.errno(), errno::ENOSPC);
    }

    #[test]
    fn pool_geometry() {
        let ok = |size, count, flags| {
            check_pool(&PoolCreate {
                buf_size: size,
                buf_count: count,
                flags,
                ..PoolCreate::default()
            })
        };
        assert_eq!(ok(256, 1, 0).unwrap().pages, 1);
        assert_eq!(ok(65536, 2, POOL_LAZY).unwrap().pages, 32);
        assert_eq!(ok(2048, 131072, 0).unwrap().pages, 65536);
        for (size, count, flags) in [
            (0, 1, 0),
            (128, 1, 0),
            (3000, 1, 0),
            (131072, 1, 0),
            (2048, 0, 0),
            (2048, 1, 8),
            (2048, 1, POOL_LAZY | POOL_CONTIG),
            (2048, 1, POOL_CONTIG | POOL_HUGE),
            (2048, 131073, 0),
            (65536, u32::MAX, 0),
        ] {
            assert_eq!(
                ok(size, count, flags),
                Err(PlanError::BadArgument),
                "{size} {count} {flags}"
            );
        }
    }

    #[test]
    fn ring_geometry() {
        let mk = |entries, flags| RingCreate {
            entries,
            pool_id: 1,
            flags,
            id: 0,
        };
        assert_eq!(check_ring(&mk(1, 0), |_| true), Ok(1));
        assert_eq!(
            check_ring(&mk(504, 0), |_| true),
            Err(PlanError::BadArgument)
        );
        assert_eq!(check_ring(&mk(512, 0), |_| true), Ok(2));
        assert_eq!(check_ring(&mk(MAX_RING_ENTRIES, 0), |_| true), Ok(65));
        assert_eq!(
            check_ring(&mk(MAX_RING_ENTRIES * 2, 0), |_| true),
            Err(PlanError::BadArgument)
        );
        assert_eq!(check_ring(&mk(0, 0), |_| true), Err(PlanError::BadArgument));
        assert_eq!(check_ring(&mk(8, 1), |_| true), Err(PlanError::BadArgument));
        assert_eq!(
            check_ring(&mk(8, 0), |_| false),
            Err(PlanError::BadArgument)
        );
    }
    fn pool(
        flags: u32,
        fault_around: u32,
        cache: u32,
        bytes: u32,
    ) -> Result<PoolGeometry, PlanError> {
        check_pool(&PoolCreate {
            buf_size: 4096,
            buf_count: bytes / 4096,
            flags,
            fault_around,
            cache,
            ..PoolCreate::default()
        })
    }

    #[test]
    fn pool_kinds_and_chunks() {
        let g = pool(0, 0, CACHE_WB, 8192).unwrap();
        assert_eq!(
            (g.kind, g.chunk_pages, g.fault_around, g.lazy),
            (PoolKind::Eager, 1, 0, false)
        );
        let g = pool(POOL_LAZY, 0, CACHE_WB, 8192).unwrap();
        assert_eq!((g.kind, g.fault_around, g.lazy), (PoolKind::Lazy, 16, true));
        assert_eq!(pool(POOL_LAZY, 1, CACHE_WB, 8192).unwrap().fault_around, 1);
        assert_eq!(
            pool(POOL_LAZY, 512, CACHE_WB, 8192).unwrap().fault_around,
            512
        );
        // Contiguous: one chunk of the pool rounded up to a power of two, at most 2 MiB.
        let g = pool(POOL_CONTIG, 0, CACHE_WB, 3 * 4096).unwrap();
        assert_eq!(
            (g.pages, g.chunk_pages, g.chunks(), g.chunk_order()),
            (4, 4, 1, 2)
        );
        let g = pool(POOL_CONTIG, 0, CACHE_WC, 6 << 20).unwrap();
        assert_eq!((g.pages, g.chunk_pages, g.chunks()), (1536, 512, 3));
        assert_eq!(g.cache, Cache::WriteCombine);
        // 2 MiB pools round up to whole 2 MiB chunks.
        let g = pool(POOL_HUGE, 0, CACHE_WB, 4096).unwrap();
        assert_eq!((g.pages, g.chunk_pages, g.chunk_order()), (512, 512, 9));
        let g = pool(POOL_HUGE, 0, CACHE_WB, 256 << 20).unwrap();
        assert_eq!(g.chunks(), 128);
    }

    #[test]
    fn pool_fields_are_strict() {
        for (flags, around, cache) in [
            (POOL_LAZY, 3, CACHE_WB),
            (POOL_LAZY, 1024, CACHE_WB),
            (0, 16, CACHE_WB),
            (POOL_CONTIG, 1, CACHE_WB),
            (POOL_HUGE, 16, CACHE_WB),
            (0, 0, CACHE_WC),
            (POOL_LAZY, 0, CACHE_WC),
            (POOL_CONTIG, 0, 2),
        ] {
            assert_eq!(
                pool(flags, around, cache, 8192),
                Err(PlanError::BadArgument),
                "{flags} {around} {cache}"
            );
        }
        let reserved = PoolCreate {
            buf_size: 4096,
            buf_count: 1,
            reserved: 1,
            ..PoolCreate::default()
        };
        assert_eq!(check_pool(&reserved), Err(PlanError::BadArgument));
    }

    #[test]
    fn pool_map_fill_and_refusals() {
        let rw = PoolMapRequest {
            may_share: true,
            write: true,
            read_only: false,
        };
        let private = PoolMapRequest {
            may_share: false,
            ..rw
        };
        let fill = |flags| plan_pool_map(&pool(flags, 0, CACHE_WB, 8192).unwrap(), &rw);
        assert_eq!(fill(0), Ok(PoolFill::Pages));
        assert_eq!(fill(POOL_LAZY), Ok(PoolFill::Fault { around: 16 }));
        assert_eq!(fill(POOL_CONTIG), Ok(PoolFill::Remap));
        assert_eq!(fill(POOL_HUGE), Ok(PoolFill::HugeFault));
        for flags in [POOL_CONTIG, POOL_HUGE] {
            let g = pool(flags, 0, CACHE_WB, 8192).unwrap();
            assert_eq!(plan_pool_map(&g, &private), Err(PlanError::PrivateMapping));
        }
        let g = pool(0, 0, CACHE_WB, 8192).unwrap();
        assert_eq!(plan_pool_map(&g, &private), Ok(PoolFill::Pages));
        let ro = PoolMapRequest {
            may_share: true,
            write: false,
            read_only: true,
        };
        assert_eq!(plan_pool_map(&g, &ro), Ok(PoolFill::Pages));
        assert_eq!(
            plan_pool_map(&g, &PoolMapRequest { write: true, ..ro }),
            Err(PlanError::ReadOnly)
        );
        assert_eq!(
            plan_pool_map(
                &g,
                &PoolMapRequest {
                    may_share: false,
                    ..ro
                }
            ),
            Err(PlanError::ReadOnly)
        );
        assert_eq!(PlanError::PrivateMapping.errno(), errno::EINVAL);
    }

    #[test]
    fn fault_windows() {
        assert_eq!(fault_window(0, 16, 0..4, 4), Some(0..4));
        assert_eq!(fault_window(15, 16, 0..64, 64), Some(0..16));
        assert_eq!(fault_window(16, 16, 0..64, 64), Some(16..32));
        assert_eq!(fault_window(30, 16, 0..20, 64), None);
        assert_eq!(fault_window(19, 16, 0..20, 64), Some(16..20));
        assert_eq!(fault_window(5, 3, 0..20, 64), None);
        assert_eq!(
            fault_window(u64::MAX - 1, 512, 0..u64::MAX, u64::MAX),
            Some(u64::MAX - 511..u64::MAX)
        );
    }

    #[test]
    fn huge_fault_blocks() {
        let mib: u64 = 1 << 20;
        let vma = 2 * PMD_SIZE..6 * PMD_SIZE;
        // Every page of an aligned VMA maps by its chunk.
        for (page, chunk) in [(0, 0), (511, 0), (512, 1), (2047, 3)] {
            let addr = vma.start + page * 4096;
            assert_eq!(huge_fault_chunk(addr, page, vma.clone(), 512), Some(chunk));
        }
        // A VMA that starts off the grid never does.
        assert_eq!(
            huge_fault_chunk(4 * mib + 4096, 0, 4 * mib + 4096..8 * mib, 512),
            None
        );
        // A VMA split off the pool's start: grid-aligned blocks of it still do, if the pool
        // page at the block start opens a chunk.
        assert_eq!(
            huge_fault_chunk(6 * mib, 512, 6 * mib..8 * mib, 512),
            Some(1)
        );
        assert_eq!(huge_fault_chunk(6 * mib, 256, 6 * mib..8 * mib, 512), None);
        // A block that would run past the VMA's end, or a chunk that is not 2 MiB.
        assert_eq!(huge_fault_chunk(6 * mib, 512, 6 * mib..7 * mib, 512), None);
        assert_eq!(huge_fault_chunk(6 * mib, 512, 6 * mib..8 * mib, 256), None);
        assert_eq!(huge_fault_chunk(!4095, 0, 0..u64::MAX, 512), None);
    }

    #[test]
    fn chunk_and_export_checks() {
        let g = pool(POOL_CONTIG, 0, CACHE_WB, 4 << 20).unwrap();
        let q = |index| PoolChunk {
            id: 7,
            index,
            ..PoolChunk::default()
        };
        assert_eq!(
            check_chunk(&q(1), true, |id| (id == 7).then_some(g)),
            Ok((1, 2 << 20))
        );
        assert_eq!(
            check_chunk(&q(2), true, |_| Some(g)),
            Err(PlanError::BadArgument)
        );
        assert_eq!(
            check_chunk(&q(0), true, |_| None),
            Err(PlanError::UnknownResource)
        );
        assert_eq!(
            check_chunk(&q(0), false, |_| panic!(
                "looked up for an unprivileged caller"
            )),
            Err(PlanError::NotPrivileged)
        );
        assert_eq!(PlanError::NotPrivileged.errno(), errno::EPERM);
        let e = |flags, reserved| {
            check_export(
                &PoolExport {
                    id: 1,
                    flags,
                    fd: 0,
                    reserved,
                },
                true,
            )
        };
        let write_only = |flags| {
            check_export(
                &PoolExport {
                    id: 1,
                    flags,
                    fd: 0,
                    reserved: 0,
                },
                false,
            )
        };
        assert_eq!(write_only(0), Err(PlanError::NotReadable));
        assert_eq!(write_only(1), Err(PlanError::NotReadable));
        assert_eq!(PlanError::NotReadable.errno(), errno::EBADF);
        assert_eq!(e(0, 0), Ok(false));
        assert_eq!(e(1, 0), Ok(true));
        assert_eq!(e(2, 0), Err(PlanError::BadArgument));
        assert_eq!(e(0, 1), Err(PlanError::BadArgument));
    }
}
