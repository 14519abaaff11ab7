//! Typed mmap offsets over the shared codec.
//!
//! Everything of `pktmap_abi::codec` is re-exported here: [`Layout`] with `encode`/`decode`,
//! the layouts [`PKTMAP`], [`ONLOAD`], [`IO_URING`], [`AF_XDP`], [`VFIO`] and their type
//! constants. The driver compiles the very same source, so what this side encodes is what the
//! driver decodes.
//!
//! [`ResourceType`] is the typed face of the [`PKTMAP`] layout, whose `u32` ids always fit:
//! its offsets cannot fail to encode.
//!
//! # Examples
//! ```
//! use pktmap::offset::{ResourceType, PKTMAP};
//! let off = ResourceType::Pool.offset(3);
//! assert_eq!(off, 3 << 15 | 1 << 12);
//! assert_eq!(ResourceType::decode(off), Ok((ResourceType::Pool, 3)));
//! assert_eq!(PKTMAP.decode(off), Ok((1, 3)));
//! ```

pub use pktmap_abi::codec::*;

/// A resource type of the `/dev/pktmap` driver (the types of the [`PKTMAP`] layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ResourceType {
    /// The read-only STATE page; its only id is 0.
    State = resource_type::STATE,
    /// A packet-buffer pool.
    Pool = resource_type::POOL,
    /// A descriptor ring.
    Ring = resource_type::RING,
}

impl ResourceType {
    /// The `mmap` offset of resource `id` of this type: `id << 15 | type << 12`.
    ///
    /// Every `u32` id fits the 32-bit id field, so this cannot fail.
    pub const fn offset(self, id: u32) -> u64 {
        ((id as u64) << PKTMAP.id_field.shift) | ((self as u64) << PKTMAP.type_field.shift)
    }

    /// Decodes a [`PKTMAP`] offset into a typed `(type, id)`.
    ///
    /// # Errors
    /// As [`Layout::decode`].
    pub const fn decode(offset: u64) -> Result<(Self, u32), DecodeError> {
        match PKTMAP.decode(offset) {
            // The PKTMAP id field is 32 bits wide, so the cast is exact.
            Ok((t, id)) => match Self::from_raw(t) {
                Some(t) => Ok((t, id as u32)),
                None => Err(DecodeError::UnknownType),
            },
            Err(e) => Err(e),
        }
    }

    const fn from_raw(value: u32) -> Option<Self> {
        match value {
            resource_type::STATE => Some(Self::State),
            resource_type::POOL => Some(Self::Pool),
            resource_type::RING => Some(Self::Ring),
            _ => None,
        }
    }

    /// The upstream-style name: `STATE`, `POOL` or `RING`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::State => "STATE",
            Self::Pool => "POOL",
            Self::Ring => "RING",
        }
    }
}

impl TryFrom<u32> for ResourceType {
    type Error = DecodeError;

    /// # Errors
    /// [`DecodeError::UnknownType`] for a value that is not STATE, POOL or RING.
    fn try_from(value: u32) -> Result<Self, DecodeError> {
        Self::from_raw(value).ok_or(DecodeError::UnknownType)
    }
}

impl From<ResourceType> for u32 {
    fn from(t: ResourceType) -> u32 {
        t as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_offsets_match_the_codec() {
        for t in [ResourceType::State, ResourceType::Pool, ResourceType::Ring] {
            for id in [0, 1, 0x8000_0000, u32::MAX] {
                let off = t.offset(id);
                assert_eq!(Ok(off), PKTMAP.encode(t.into(), id.into()));
                assert_eq!(ResourceType::decode(off), Ok((t, id)));
                assert_eq!(PKTMAP.type_name(t.into()), Some(t.name()));
            }
        }
        assert_eq!(ResourceType::try_from(3), Err(DecodeError::UnknownType));
        assert_eq!(ResourceType::decode(3 << 12), Err(DecodeError::UnknownType));
        assert_eq!(ResourceType::decode(1 << 50), Err(DecodeError::StrayBits));
    }
}
