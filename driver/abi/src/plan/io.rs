// SPDX-License-Identifier: MIT OR Apache-2.0
//! `pread`/`pwrite` (and `read`/`write`) of a resource: [`plan_io`].

use super::super::codec::{DecodeError, PAGE_SHIFT, PAGE_SIZE};
#[cfg(doc)]
use super::plan_mmap;
use super::{find, PlanError, Resource};

/// A `pread`/`pwrite` (or `read`/`write` at the file position) as the driver sees it.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::plan::IoRequest;
/// // pread(fd, buf, 64, offset of ring 2)
/// let pos = PKTMAP.encode(pktmap_types::RING, 2).unwrap() as i64;
/// let req = IoRequest { pos, len: 64, write: false };
/// assert_eq!(PKTMAP.decode(req.pos as u64), Ok((pktmap_types::RING, 2)));
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
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::plan::{plan_io, IoRequest, PlanError, Resource};
/// let table = |t: u32, id: u32| match (t, id) {
///     (pktmap_types::STATE, 0) => Some((Resource::State, ())),
///     (pktmap_types::POOL, 1) => Some((Resource::Pool { pages: 2 }, ())),
///     _ => None,
/// };
/// let pos = PKTMAP.encode(pktmap_types::POOL, 1).unwrap() as i64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{pktmap_types, PKTMAP};
    use crate::plan::testing::table;

    #[test]
    fn io_addresses_exactly_one_resource() {
        let pool = PKTMAP.encode(pktmap_types::POOL, 1).unwrap() as i64;
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
                assert_ne!((p.map_type, p.id), (pktmap_types::POOL, 1));
            }
        }
    }
}
