// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mmap` of a resource: [`plan_mmap`].

use super::super::codec::PAGE_SHIFT;
#[cfg(doc)]
use super::super::codec::{pktmap_types, PKTMAP};
use super::{find, pages_for, PlanError, Resource};

/// An `mmap` request as the driver sees it in the new VMA.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP, PAGE_SHIFT};
/// use pktmap_abi::plan::MmapRequest;
/// // mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, offset of pool 1)
/// let pgoff = PKTMAP.encode(pktmap_types::POOL, 1).unwrap() >> PAGE_SHIFT;
/// let req = MmapRequest { pgoff, len: 8192, write: false, shared: true, exec: false };
/// assert_eq!(PKTMAP.decode_pgoff(req.pgoff), Ok((pktmap_types::POOL, 1)));
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

/// The bit of an `mmap` offset that asks the driver to serve POPULATE itself: to insert every
/// page of the mapping at `mmap`, as for an eager pool, rather than fault after fault (byte
/// offset bit 62, the highest a character device's offset may set: the kernel caps offsets at
/// `MAX_LFS_FILESIZE`).
///
/// It is part of the request, not of the resource's name: [`plan_mmap`] decodes the offset
/// without it and reports it in [`Plan::populate`], and the driver clears it from `vm_pgoff`,
/// so the mapping's offset (in `/proc/PID/maps`, after a split) names the resource as always.
/// Only a lazy pool fills differently for it ([`plan_pool_map`](super::plan_pool_map)): every
/// other resource is whole after `mmap` already, and a 2 MiB pool's entries can only be made by
/// faults. `pread`/`pwrite` positions never carry it.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::plan::{plan_mmap, MmapRequest, Resource, MMAP_POPULATE};
/// let offset = PKTMAP.encode(pktmap_types::POOL, 1).unwrap() | MMAP_POPULATE;
/// let req = MmapRequest { pgoff: offset >> 12, len: 4096, write: true, shared: true, exec: false };
/// let plan = plan_mmap(&req, |_, _| Some((Resource::Pool { pages: 1 }, ()))).unwrap();
/// assert!(plan.populate);
/// assert_eq!(plan.pgoff << 12, PKTMAP.encode(pktmap_types::POOL, 1).unwrap());
/// ```
pub const MMAP_POPULATE: u64 = 1 << 62;

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
    /// The map type ([`pktmap_types::STATE`], [`pktmap_types::POOL`] or [`pktmap_types::RING`]).
    pub map_type: u32,
    /// The resource id.
    pub id: u32,
    /// The resource as the table described it.
    pub resource: Resource,
    /// Pages to map, starting at the resource's first page.
    pub pages: u64,
    /// The request's offset in pages without [`MMAP_POPULATE`]: the `vm_pgoff` the VMA keeps.
    pub pgoff: u64,
    /// The offset carried [`MMAP_POPULATE`]: insert every page now.
    pub populate: bool,
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

/// Checks an `mmap` request against the open file's resources.
///
/// How the pages get in is the resource's business: every pool kind has its own fill, which
/// the driver asks [`plan_pool_map`](super::plan_pool_map) for; STATE and rings are inserted
/// whole at `mmap`.
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
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::plan::{plan_mmap, MmapRequest, PlanError, Resource};
/// let table = |t: u32, id: u32| match (t, id) {
///     (pktmap_types::STATE, 0) => Some((Resource::State, "state")),
///     (pktmap_types::POOL, 1) => Some((Resource::Pool { pages: 4 }, "pool 1")),
///     _ => None,
/// };
/// let pgoff = PKTMAP.encode(pktmap_types::POOL, 1).unwrap() >> 12;
/// let rw = MmapRequest { pgoff, len: 2 * 4096, write: true, shared: true, exec: false };
/// let plan = plan_mmap(&rw, table).unwrap();
/// assert_eq!((plan.pages, plan.target), (2, "pool 1"));
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
    let bit = MMAP_POPULATE >> PAGE_SHIFT;
    let (populate, pgoff) = (req.pgoff & bit != 0, req.pgoff & !bit);
    let (map_type, id, resource, target) = find(pgoff, lookup)?;
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
    Ok(Plan {
        map_type,
        id,
        resource,
        pages,
        pgoff,
        populate,
        read_only,
        clear_maywrite: read_only || (req.shared && !req.write),
        clear_mayexec: true,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{pktmap_types, DecodeError};
    use crate::plan::errno;
    use crate::plan::testing::{req, table};

    #[test]
    fn accepts_each_kind() {
        let p = plan_mmap(&req(pktmap_types::STATE, 0, 4096, false), table).unwrap();
        assert!(p.read_only);
        let p = plan_mmap(&req(pktmap_types::POOL, 1, 16 * 4096, true), table).unwrap();
        assert_eq!((p.pages, p.read_only), (16, false));
        let p = plan_mmap(&req(pktmap_types::POOL, 2, 4096, true), table).unwrap();
        assert_eq!(p.pages, 1);
        let p = plan_mmap(&req(pktmap_types::RING, 1, 100, true), table).unwrap();
        assert_eq!(p.pages, 1);
        assert!(!p.populate);
    }

    #[test]
    fn the_populate_bit_is_a_request_not_a_name() {
        for (t, id) in [(pktmap_types::STATE, 0), (pktmap_types::POOL, 2)] {
            let plain = req(t, id, 4096, false);
            let asked = MmapRequest {
                pgoff: plain.pgoff | MMAP_POPULATE >> PAGE_SHIFT,
                ..plain
            };
            let (p, q) = (
                plan_mmap(&plain, table).unwrap(),
                plan_mmap(&asked, table).unwrap(),
            );
            assert_eq!((p.populate, q.populate), (false, true));
            assert_eq!((p.pgoff, q.pgoff), (plain.pgoff, plain.pgoff));
            assert_eq!((p.map_type, p.id, p.pages), (q.map_type, q.id, q.pages));
        }
        // Any other bit above the id field is still a stray one.
        let stray = MmapRequest {
            pgoff: req(pktmap_types::POOL, 2, 4096, false).pgoff | 1 << 49,
            ..req(pktmap_types::POOL, 2, 4096, false)
        };
        assert_eq!(
            plan_mmap(&stray, table),
            Err(PlanError::Decode(DecodeError::StrayBits))
        );
    }

    #[test]
    fn refuses_with_the_right_errno() {
        let cases = [
            (
                req(pktmap_types::STATE, 0, 4096, true),
                PlanError::ReadOnly,
                errno::EPERM,
            ),
            (
                req(pktmap_types::STATE, 0, 8192, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::STATE, 1, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::POOL, 3, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::POOL, 1, 17 * 4096, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::POOL, 1, 0, false),
                PlanError::ZeroLength,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::RING, 9, 4096, false),
                PlanError::UnknownResource,
                errno::EINVAL,
            ),
            (
                req(pktmap_types::RING, 1, u64::MAX, false),
                PlanError::TooLong,
                errno::EINVAL,
            ),
            (
                MmapRequest {
                    pgoff: 3,
                    ..req(pktmap_types::STATE, 0, 4096, false)
                },
                PlanError::Decode(DecodeError::UnknownType),
                errno::EINVAL,
            ),
            (
                MmapRequest {
                    pgoff: 1 << 40,
                    ..req(pktmap_types::STATE, 0, 4096, false)
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
            ..req(pktmap_types::STATE, 0, 4096, false)
        };
        let res = plan_mmap(&r, |_, _| -> Option<(Resource, ())> {
            panic!("looked up a bad offset")
        });
        assert_eq!(res, Err(PlanError::Decode(DecodeError::StrayBits)));
    }

    #[test]
    fn maywrite_and_mayexec() {
        let shared_ro = req(pktmap_types::POOL, 1, 4096, false);
        let p = plan_mmap(&shared_ro, table).unwrap();
        assert!(p.clear_maywrite && p.clear_mayexec);
        let private_ro = MmapRequest {
            shared: false,
            ..shared_ro
        };
        assert!(!plan_mmap(&private_ro, table).unwrap().clear_maywrite);
        let state_private = MmapRequest {
            shared: false,
            ..req(pktmap_types::STATE, 0, 4096, false)
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
}
