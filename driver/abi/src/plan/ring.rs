// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rings: `RING_CREATE` ([`check_ring`]).

use super::super::ioctl::{RingCreate, MAX_RING_ENTRIES, RING_DESC_OFFSET};
use super::super::packet::{packet_ring_bytes, RING_PACKET};
use super::{pages_for, PlanError};

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
/// A ring with [`RING_PACKET`] has the packet layout ([`packet_ring_bytes`]: a header page,
/// then 16-byte descriptors); one with flags 0 the counter-pair layout ([`ring_bytes`]).
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for entries that are not a power of two in
/// `1..=MAX_RING_ENTRIES`, flags other than 0 or [`RING_PACKET`], or an unknown pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RingCreate;
/// use pktmap_abi::packet::RING_PACKET;
/// use pktmap_abi::plan::check_ring;
/// let req = RingCreate { entries: 1024, pool_id: 1, flags: 0, id: 0 };
/// assert_eq!(check_ring(&req, |id| id == 1), Ok(3));
/// assert!(check_ring(&req, |_| false).is_err());
/// // A packet ring: one header page and 1024 * 16 bytes of descriptors.
/// assert_eq!(check_ring(&RingCreate { flags: RING_PACKET, ..req }, |_| true), Ok(5));
/// ```
pub fn check_ring(
    req: &RingCreate,
    pool_exists: impl FnOnce(u32) -> bool,
) -> Result<u64, PlanError> {
    if !req.entries.is_power_of_two() || req.entries > MAX_RING_ENTRIES {
        return Err(PlanError::BadArgument);
    }
    let bytes = match req.flags {
        0 => ring_bytes(req.entries),
        RING_PACKET => packet_ring_bytes(req.entries),
        _ => return Err(PlanError::BadArgument),
    };
    if !pool_exists(req.pool_id) {
        return Err(PlanError::BadArgument);
    }
    pages_for(bytes).ok_or(PlanError::BadArgument)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(check_ring(&mk(8, 2), |_| true), Err(PlanError::BadArgument));
        assert_eq!(check_ring(&mk(8, 3), |_| true), Err(PlanError::BadArgument));
        assert_eq!(check_ring(&mk(1, RING_PACKET), |_| true), Ok(2));
        assert_eq!(check_ring(&mk(256, RING_PACKET), |_| true), Ok(2));
        assert_eq!(check_ring(&mk(512, RING_PACKET), |_| true), Ok(3));
        assert_eq!(
            check_ring(&mk(MAX_RING_ENTRIES, RING_PACKET), |_| true),
            Ok(129)
        );
        assert_eq!(
            check_ring(&mk(0, RING_PACKET), |_| true),
            Err(PlanError::BadArgument)
        );
        assert_eq!(
            check_ring(&mk(8, 0), |_| false),
            Err(PlanError::BadArgument)
        );
    }
}
