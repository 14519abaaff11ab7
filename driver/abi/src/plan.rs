//! The driver's request validation: what an `mmap` or ioctl asks for, checked before anything
//! is allocated or mapped.
//!
//! The kernel module calls these with what it read from the VMA or the ioctl argument and acts
//! on the [`Plan`] or the errno; the host unit-tests and fuzzes the very same code.
//!
//! `mmap` rules (DESIGN.md): strict decode of `vm_pgoff` with [`PKTMAP`]; an unknown type or id
//! is `EINVAL`; a length that, rounded up to pages, exceeds the resource is `EINVAL`; asking to
//! write the read-only STATE page is `EPERM`.

use super::codec::{resource_type, DecodeError, PAGE_SHIFT, PAGE_SIZE, PKTMAP};
use super::ioctl::{
    PoolCreate, RingCreate, MAX_BUF_SIZE, MAX_POOL_BYTES, MAX_RING_ENTRIES, MIN_BUF_SIZE,
    POOL_FLAGS, POOL_LAZY, RING_DESC_OFFSET,
};
use core::fmt;

/// The errno values the contract uses (positive, as in `<errno.h>`; the kernel returns them
/// negated).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Inappropriate ioctl for device.
    pub const ENOTTY: i32 = 25;
    /// No space left (too many resources).
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
}

/// How the driver fills a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fill {
    /// Insert every page now, in the `mmap` handler.
    Eager,
    /// Insert pages from the `.fault` handler as they are touched.
    Lazy,
}

/// What the driver does for an accepted `mmap` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
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
    /// Clear `VM_MAYWRITE` so `mprotect` can never add write (the STATE page).
    pub read_only: bool,
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
}

impl PlanError {
    /// The errno the caller receives (positive).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::{errno, PlanError};
    /// assert_eq!(PlanError::ReadOnly.errno(), errno::EPERM);
    /// assert_eq!(PlanError::TooLong.errno(), errno::EINVAL);
    /// ```
    pub const fn errno(self) -> i32 {
        match self {
            PlanError::ReadOnly => errno::EPERM,
            PlanError::TooLarge => errno::ENOMEM,
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

/// Checks an `mmap` request against the open file's resources.
///
/// `lookup(map_type, id)` describes the resource, or `None` if there is none; it is called at
/// most once, after the offset decoded.
///
/// # Errors
/// [`PlanError`], whose [`errno`](PlanError::errno) the `mmap` handler returns.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{resource_type, PKTMAP};
/// use pktmap_abi::plan::{plan_mmap, Fill, MmapRequest, PlanError, Resource};
/// let table = |t: u32, id: u32| match (t, id) {
///     (resource_type::STATE, 0) => Some(Resource::State),
///     (resource_type::POOL, 1) => Some(Resource::Pool { pages: 4, lazy: true }),
///     _ => None,
/// };
/// let pgoff = PKTMAP.encode(resource_type::POOL, 1).unwrap() >> 12;
/// let plan = plan_mmap(&MmapRequest { pgoff, len: 2 * 4096, write: true }, table).unwrap();
/// assert_eq!((plan.pages, plan.fill), (2, Fill::Lazy));
/// let too_long = MmapRequest { pgoff, len: 5 * 4096, write: true };
/// assert_eq!(plan_mmap(&too_long, table), Err(PlanError::TooLong));
/// let state = MmapRequest { pgoff: 0, len: 4096, write: true };
/// assert_eq!(plan_mmap(&state, table), Err(PlanError::ReadOnly));
/// ```
pub fn plan_mmap(
    req: &MmapRequest,
    lookup: impl FnOnce(u32, u32) -> Option<Resource>,
) -> Result<Plan, PlanError> {
    let (map_type, id) = PKTMAP.decode_pgoff(req.pgoff)?;
    // The PKTMAP id field is 32 bits wide, so every decoded id fits.
    let id = u32::try_from(id).map_err(|_| PlanError::Decode(DecodeError::StrayBits))?;
    let resource = lookup(map_type, id).ok_or(PlanError::UnknownResource)?;
    let kind_matches = matches!(
        (map_type, resource),
        (resource_type::STATE, Resource::State)
            | (resource_type::POOL, Resource::Pool { .. })
            | (resource_type::RING, Resource::Ring { .. })
    );
    if !kind_matches {
        return Err(PlanError::UnknownResource);
    }
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
    })
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

    fn table(t: u32, id: u32) -> Option<Resource> {
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
                    len: 4096,
                    write: false,
                },
                PlanError::Decode(DecodeError::UnknownType),
                errno::EINVAL,
            ),
            (
                MmapRequest {
                    pgoff: 1 << 40,
                    len: 4096,
                    write: false,
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
            len: 4096,
            write: false,
        };
        let res = plan_mmap(&r, |_, _| panic!("looked up a bad offset"));
        assert_eq!(res, Err(PlanError::Decode(DecodeError::StrayBits)));
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
