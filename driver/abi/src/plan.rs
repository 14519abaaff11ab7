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
//! | ioctl | unknown command `ENOTTY` (dispatched on direction, type and number, at every size its struct had: [`ioctl::arg_size`](super::ioctl::arg_size)); commands that change state need a writable open, else `EBADF` | [`check_ioctl`] |
//! | `POOL_CREATE`, `RING_CREATE` | geometry and flags `EINVAL`; past the device-wide page budget `ENOSPC` | [`check_pool`], [`check_ring`], [`check_budget`] |
//!
//! | `POOL_CREATE` fields of the pool kinds | kind, fault-around, cache attribute, `reserved` `EINVAL` | [`check_pool`] |
//! | pool `mmap` fill | `MAP_PRIVATE` of a contiguous or 2 MiB pool `EINVAL`; writable or private through a read-only pool file `EPERM` | [`plan_pool_map`] |
//! | one fault | the lazy window, a 2 MiB entry or the 4 KiB fallback | [`fault_window`], [`huge_fault_chunk`] |
//! | `ATTACH` | flags, rings, pool `EINVAL`, a ring already attached `EBUSY` | [`packet::check_attach`](super::packet::check_attach) |
//! | `POOL_CHUNK`, `POOL_EXPORT` | root only `EPERM`; unknown pool or chunk, flags, `reserved` `EINVAL` | [`check_chunk`], [`check_export`] |
//!
//! Lookups are generic over what the table hands back with a resource (`T`): the kernel gets its
//! own reference to the resource back in the [`Plan`], so nothing is smuggled out of a closure.
//!
//! One file per request: [`mmap`] (`plan_mmap`), [`io`] (`plan_io`), [`ioctl`] (`check_ioctl`),
//! [`budget`] (`check_budget`), [`pool`] (`POOL_CREATE`, how a pool's VMA is filled, its
//! faults, `POOL_CHUNK`, `POOL_EXPORT`) and [`ring`] (`RING_CREATE`); this file holds what they
//! share: the errno values, [`PlanError`], [`Resource`] and the strict lookup of an offset.
//! Everything is re-exported here, so callers name `plan::plan_mmap`, `plan::check_pool`, ...

use super::codec::{pktmap_types, DecodeError, PAGE_SHIFT, PAGE_SIZE, PKTMAP};
use core::fmt;

pub mod budget;
pub mod io;
pub mod ioctl;
pub mod mmap;
pub mod pool;
pub mod ring;

pub use budget::check_budget;
pub use io::{plan_io, IoPlan, IoRequest};
pub use ioctl::{check_ioctl, Command};
pub use mmap::{plan_mmap, MmapRequest, Plan, MMAP_POPULATE};
pub use pool::{
    check_chunk, check_export, check_pool, fault_window, huge_fault_chunk, plan_pool_map, Cache,
    ChunkPlan, PoolFill, PoolGeometry, PoolKind, PoolMapRequest, PMD_SIZE,
};
pub use ring::{check_ring, ring_bytes};

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
/// assert_eq!(Resource::Pool { pages: 64 }.pages(), 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The one-page, read-only STATE page.
    State,
    /// A packet-buffer pool of `pages` pages.
    Pool {
        /// Its size in pages.
        pages: u64,
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
            Resource::Pool { pages } | Resource::Ring { pages } => pages,
        }
    }
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
        (pktmap_types::STATE, Resource::State)
            | (pktmap_types::POOL, Resource::Pool { .. })
            | (pktmap_types::RING, Resource::Ring { .. })
    );
    if !kind_matches {
        return Err(PlanError::UnknownResource);
    }
    Ok((map_type, id, resource, target))
}

/// The table the request tests look resources up in.
#[cfg(test)]
mod testing {
    use super::super::codec::{pktmap_types, PAGE_SHIFT, PKTMAP};
    use super::{MmapRequest, Resource};

    pub(super) fn table(t: u32, id: u32) -> Option<(Resource, ())> {
        describe(t, id).map(|r| (r, ()))
    }

    pub(super) fn describe(t: u32, id: u32) -> Option<Resource> {
        match (t, id) {
            (pktmap_types::STATE, 0) => Some(Resource::State),
            (pktmap_types::POOL, 1) => Some(Resource::Pool { pages: 16 }),
            (pktmap_types::POOL, 2) => Some(Resource::Pool { pages: 16 }),
            (pktmap_types::RING, 1) => Some(Resource::Ring { pages: 2 }),
            // A table that lies about the kind is refused, not trusted.
            (pktmap_types::RING, 9) => Some(Resource::State),
            _ => None,
        }
    }

    pub(super) fn req(t: u32, id: u64, len: u64, write: bool) -> MmapRequest {
        MmapRequest {
            pgoff: PKTMAP.encode(t, id).unwrap() >> PAGE_SHIFT,
            len,
            write,
            shared: true,
            exec: false,
        }
    }
}
