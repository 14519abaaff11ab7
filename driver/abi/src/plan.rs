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
//! | ioctl | unknown command `ENOTTY`; commands that change state need a writable open, else `EBADF` | [`check_ioctl`] |
//! | `POOL_CREATE`, `RING_CREATE` | geometry and flags `EINVAL`; past the device-wide page budget `ENOSPC` | [`check_pool`], [`check_ring`], [`check_budget`] |
//!
//! Lookups are generic over what the table hands back with a resource (`T`): the kernel gets its
//! own reference to the resource back in the [`Plan`], so nothing is smuggled out of a closure.

use super::codec::{resource_type, DecodeError, PAGE_SHIFT, PAGE_SIZE, PKTMAP};
use super::ioctl::{
    self, PoolCreate, RingCreate, MAX_BUF_SIZE, MAX_POOL_BYTES, MAX_RING_ENTRIES, MIN_BUF_SIZE,
    POOL_FLAGS, POOL_LAZY, RING_DESC_OFFSET,
};
use core::fmt;

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
    pub const fn pages(&self) -> u64 {
        match *self {
            Resource::State => 1,
            Resource::Pool { pages, .. } | Resource::Ring { pages } => pages,
        }
    }
}

/// An `mmap` request as the driver sees it in the new VMA.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fill {
    /// Insert every page now, in the `mmap` handler.
    Eager,
    /// Insert pages from the `.fault` handler as they are touched.
    Lazy,
}

/// What the driver does for an accepted `mmap` request; `target` is what the lookup handed
/// back with the resource.
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
    /// An ioctl command the driver does not know.
    UnknownCommand,
    /// The device-wide page budget would be exceeded.
    OverBudget,
    /// The resource is in use (a pool that a ring names).
    Busy,
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
            PlanError::ReadOnly | PlanError::Exec => errno::EPERM,
            PlanError::TooLarge => errno::ENOMEM,
            PlanError::NotWritable => errno::EBADF,
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
            PlanError::UnknownCommand => f.write_str("unknown ioctl command"),
            PlanError::OverBudget => f.write_str("the device-wide page budget is spent"),
            PlanError::Busy => f.write_str("the resource is in use"),
        }
    }
}

impl core::error::Error for PlanError {}

/// Pages needed for `bytes` bytes, rounded up; `None` on overflow.
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
}

impl Command {
    /// Whether the command changes the open file's resources (and so needs a writable open).
    pub const fn changes_state(self) -> bool {
        !matches!(self, Command::PoolInfo | Command::RingInfo)
    }
}

/// Admits an ioctl: `writable` is whether the file was opened for writing.
///
/// # Errors
/// `ENOTTY` for an unknown command; `EBADF` for a create or destroy on a read-only open (the
/// errno `write(2)` gives on one).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{POOL_CREATE, POOL_INFO};
/// use pktmap_abi::plan::{check_ioctl, Command, PlanError};
/// assert_eq!(check_ioctl(POOL_INFO, false), Ok(Command::PoolInfo));
/// assert_eq!(check_ioctl(POOL_CREATE, false), Err(PlanError::NotWritable));
/// assert_eq!(check_ioctl(0, true), Err(PlanError::UnknownCommand));
/// ```
pub const fn check_ioctl(cmd: u32, writable: bool) -> Result<Command, PlanError> {
    let command = match cmd {
        ioctl::POOL_CREATE => Command::PoolCreate,
        ioctl::POOL_INFO => Command::PoolInfo,
        ioctl::POOL_DESTROY => Command::PoolDestroy,
        ioctl::RING_CREATE => Command::RingCreate,
        ioctl::RING_INFO => Command::RingInfo,
        ioctl::RING_DESTROY => Command::RingDestroy,
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

/// A validated pool: what [`check_pool`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// Bytes per buffer.
    pub buf_size: u32,
    /// Number of buffers.
    pub buf_count: u32,
    /// Size in pages.
    pub pages: u64,
    /// Whether the pool is lazy.
    pub lazy: bool,
}

/// Checks a [`PoolCreate`] before anything is allocated.
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for a buffer size that is not a power of two in
/// `256..=65536`, a zero count, unknown flags, or a pool over [`MAX_POOL_BYTES`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_LAZY};
/// use pktmap_abi::plan::{check_pool, PlanError};
/// let g = check_pool(&PoolCreate { buf_size: 2048, buf_count: 3, flags: POOL_LAZY, id: 0 }).unwrap();
/// assert_eq!((g.pages, g.lazy), (2, true));
/// let bad = PoolCreate { buf_size: 1000, buf_count: 3, flags: 0, id: 0 };
/// assert_eq!(check_pool(&bad), Err(PlanError::BadArgument));
/// ```
pub fn check_pool(req: &PoolCreate) -> Result<PoolGeometry, PlanError> {
    let size_ok =
        req.buf_size.is_power_of_two() && (MIN_BUF_SIZE..=MAX_BUF_SIZE).contains(&req.buf_size);
    if !size_ok || req.buf_count == 0 || req.flags & !POOL_FLAGS != 0 {
        return Err(PlanError::BadArgument);
    }
    let bytes = u64::from(req.buf_size)
        .checked_mul(u64::from(req.buf_count))
        .ok_or(PlanError::BadArgument)?;
    if bytes > MAX_POOL_BYTES {
        return Err(PlanError::BadArgument);
    }
    let pages = pages_for(bytes).ok_or(PlanError::BadArgument)?;
    Ok(PoolGeometry {
        buf_size: req.buf_size,
        buf_count: req.buf_count,
        pages,
        lazy: req.flags & POOL_LAZY != 0,
    })
}

/// Bytes a ring of `entries` descriptors occupies before page rounding.
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
                id: 0,
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
            (2048, 1, 2),
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
}
