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

use crate::{Error, Result};
use std::fmt;

/// How `/proc/<pid>/maps` shows the file a region is mapped from: what the kernel says the
/// file is, which is what `pktmap::inspect::maps` checks before it decodes an offset with a layout.
///
/// # Examples
/// ```
/// use pktmap::offset::{maps_file, MapsFile, IO_URING, ONLOAD};
/// assert_eq!(maps_file(&IO_URING), Some(MapsFile::AnonInode("[io_uring]")));
/// assert_eq!(maps_file(&ONLOAD), None); // Onload's driver is not on this machine
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapsFile {
    /// A character device, told by its device number; `path` is where it usually lives.
    Device {
        /// The usual path (`/dev/pktmap`); the device number, not the path, decides.
        path: &'static str,
    },
    /// An anonymous inode, shown as `anon_inode:<name>` (`[io_uring]`, `[vfio-device]`).
    AnonInode(&'static str),
    /// A socket of this address family (`AF_XDP` = 44), shown as `socket:[<inode>]`; the
    /// family is the kernel's answer to `sock_diag`, not a guess from the offset.
    Socket {
        /// The address family.
        family: u16,
    },
}

/// The file every [`PKTMAP`] resource is mapped from: the `/dev/pktmap` device.
pub const PKTMAP_FILE: MapsFile = MapsFile::Device {
    path: "/dev/pktmap",
};
/// The file an exported pool is mapped from (`Device::export_pool`, `PoolFile`): the pool
/// file's anonymous inode, where [`PKTMAP`]'s `POOL` id 0 is the pool itself.
///
/// # Examples
/// ```
/// use pktmap::offset::{MapsFile, PKTMAP_POOL_FILE};
/// assert_eq!(PKTMAP_POOL_FILE, MapsFile::AnonInode("[pktmap-pool]"));
/// ```
pub const PKTMAP_POOL_FILE: MapsFile = MapsFile::AnonInode("[pktmap-pool]");
/// How `/proc/<pid>/maps` names the file of every io_uring mapping (also
/// `pktmap::uring::MAPS_PATH`): [`IO_URING_FILE`]'s anonymous inode; its offset column is the
/// `mmap` offset, which the [`IO_URING`] layout names (measured on 6.18).
///
/// # Examples
/// ```
/// use pktmap::offset::{MapsFile, IO_URING_FILE, IO_URING_MAPS_PATH};
/// let MapsFile::AnonInode(name) = IO_URING_FILE else { unreachable!() };
/// assert_eq!(IO_URING_MAPS_PATH, format!("anon_inode:{name}"));
/// ```
pub const IO_URING_MAPS_PATH: &str = "anon_inode:[io_uring]";
/// How `/proc/<pid>/maps` begins the name of a socket's file, `socket:[<inode>]`, such as an
/// AF_XDP ring's (also `pktmap::af_xdp::MAPS_PATH_PREFIX`); the offset column is the `mmap`
/// offset, which the [`AF_XDP`] layout names (measured on 6.18). Which kind of socket it is
/// only the kernel can say (`pktmap::inspect::maps::read` asks it). The UMEM is whatever
/// memory the caller registered.
///
/// # Examples
/// ```
/// use pktmap::offset::AF_XDP_MAPS_PATH_PREFIX;
/// let line = "7f475ea67000-7f475ea6c000 rw-s 100000000 00:09 134984   socket:[134984]";
/// assert!(line.split_whitespace().nth(5).unwrap().starts_with(AF_XDP_MAPS_PATH_PREFIX));
/// ```
pub const AF_XDP_MAPS_PATH_PREFIX: &str = "socket:[";
/// The file every [`IO_URING`] region is mapped from: the ring's anonymous inode.
pub const IO_URING_FILE: MapsFile = MapsFile::AnonInode("[io_uring]");
/// The file every [`AF_XDP`] ring is mapped from: an `AF_XDP` (44) socket.
pub const AF_XDP_FILE: MapsFile = MapsFile::Socket { family: 44 };
/// The file every [`VFIO`] region is mapped from: a VFIO device fd's anonymous inode.
pub const VFIO_FILE: MapsFile = MapsFile::AnonInode("[vfio-device]");

/// The file `layout`'s regions are mapped from, for the layouts with a [`Region`] type here.
///
/// # Examples
/// ```
/// use pktmap::offset::{maps_file, MapsFile, AF_XDP, PKTMAP};
/// assert_eq!(maps_file(&PKTMAP), Some(MapsFile::Device { path: "/dev/pktmap" }));
/// assert_eq!(maps_file(&AF_XDP), Some(MapsFile::Socket { family: 44 }));
/// ```
pub fn maps_file(layout: &Layout) -> Option<MapsFile> {
    MAPS_FILES
        .into_iter()
        .find(|(l, _)| *l == layout)
        .map(|(_, f)| f)
}

/// Every file a layout's regions are mapped from, the layout's usual file first (what
/// [`maps_file`] answers): an exported pool's own file speaks [`PKTMAP`] too, its pool being
/// `POOL` id 0.
pub(crate) const MAPS_FILES: [(&Layout, MapsFile); 5] = [
    (&PKTMAP, PKTMAP_FILE),
    (&PKTMAP, PKTMAP_POOL_FILE),
    (&IO_URING, IO_URING_FILE),
    (&AF_XDP, AF_XDP_FILE),
    (&VFIO, VFIO_FILE),
];

/// One region a file offers to `mmap`, named by `(type, id)` in a [`Layout`].
///
/// This is the one shape of every resource pktmap maps: pktmap's own ([`ResourceId`]),
/// io_uring's (`pktmap::uring::Region`), AF_XDP's (`pktmap::af_xdp::Ring`) and VFIO's
/// ([`VfioRegion`]). An implementation says only how it is spelt as `(type, id)`; the offset,
/// the strict decoding, the name and the `/proc/<pid>/maps` file follow from the layout, and
/// [`crate::resource::map_region`] maps it with the length check done once.
///
/// # Examples
/// ```
/// use pktmap::offset::{Region, ResourceId, ResourceType};
/// let pool = ResourceId { ty: ResourceType::Pool, id: 3 };
/// assert_eq!(pool.offset().unwrap(), 3 << 15 | 1 << 12);
/// assert_eq!(ResourceId::from_offset(pool.offset().unwrap()).unwrap(), pool);
/// assert_eq!(pool.name(), "POOL");
/// ```
pub trait Region: Copy + fmt::Debug + Sized {
    /// The layout of the file's offsets.
    const LAYOUT: &'static Layout;
    /// How `/proc/<pid>/maps` shows the file.
    const MAPS_FILE: MapsFile;

    /// The map type in [`LAYOUT`](Self::LAYOUT).
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{pktmap_types, Region, ResourceId, ResourceType};
    /// let ring = ResourceId { ty: ResourceType::Ring, id: 5 };
    /// assert_eq!(ring.map_type(), pktmap_types::RING);
    /// ```
    fn map_type(self) -> u32;

    /// The map id in [`LAYOUT`](Self::LAYOUT) (0 for types without one).
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{Region, VfioRegion};
    /// // VFIO's "id" is the byte offset inside the region.
    /// assert_eq!(VfioRegion { index: 0, offset: 0x2000 }.map_id(), 0x2000);
    /// ```
    fn map_id(self) -> u64;

    /// The region `(map_type, map_id)` names, if it is one of this kind.
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{pktmap_types, Region, ResourceId, ResourceType};
    /// let pool = ResourceId::from_type_id(pktmap_types::POOL, 4);
    /// assert_eq!(pool, Some(ResourceId { ty: ResourceType::Pool, id: 4 }));
    /// assert_eq!(ResourceId::from_type_id(pktmap_types::POOL, 1 << 32), None); // ids are u32
    /// ```
    fn from_type_id(map_type: u32, map_id: u64) -> Option<Self>;

    /// The upstream name of the region's type (`POOL`, `PBUF_RING`, `FILL`).
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{Region, VfioRegion};
    /// assert_eq!(VfioRegion { index: 2, offset: 0 }.name(), "?"); // VFIO names no region types
    /// ```
    fn name(self) -> &'static str {
        Self::LAYOUT.type_name(self.map_type()).unwrap_or("?")
    }

    /// The `mmap` offset.
    ///
    /// # Errors
    /// `EINVAL` if the layout cannot encode the pair (an id too large for its field).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::offset::{Region, VfioRegion};
    /// assert_eq!(VfioRegion { index: 1, offset: 0 }.offset()?, 1 << 40);
    /// // The offset inside a VFIO region has 40 bits.
    /// let err = VfioRegion { index: 1, offset: 1 << 40 }.offset().unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    fn offset(self) -> Result<u64> {
        Self::LAYOUT
            .encode(self.map_type(), self.map_id())
            .map_err(|e| {
                Error::invalid(format!("{} cannot encode {self:?}: {e}", Self::LAYOUT.name))
            })
    }

    /// The region an `mmap` offset names, decoded strictly.
    ///
    /// # Errors
    /// `EINVAL` if the offset is misaligned, sets bits outside the layout's fields, or names
    /// a type this kind does not have.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::offset::{Region, ResourceId, ResourceType};
    /// let state = ResourceId::from_offset(0)?;
    /// assert_eq!(state, ResourceId { ty: ResourceType::State, id: 0 });
    /// assert!(ResourceId::from_offset(3 << 12).is_err()); // type 3: no such pktmap type
    /// # Ok(()) }
    /// ```
    fn from_offset(offset: u64) -> Result<Self> {
        let bad = |why: &dyn fmt::Display| {
            Error::invalid(format!("{} offset {offset:#x}: {why}", Self::LAYOUT.name))
        };
        let (t, id) = Self::LAYOUT.decode(offset).map_err(|e| bad(&e))?;
        Self::from_type_id(t, id).ok_or_else(|| bad(&"not a region of this kind"))
    }
}

/// A resource of the `/dev/pktmap` driver: a [`ResourceType`] and its id.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::offset::{Region, ResourceId, ResourceType};
/// let pool = ResourceId { ty: ResourceType::Pool, id: 1 };
/// assert_eq!(pool.offset()?, ResourceType::Pool.offset(1));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceId {
    /// The type.
    pub ty: ResourceType,
    /// The id (0 for the STATE page).
    pub id: u32,
}

impl Region for ResourceId {
    const LAYOUT: &'static Layout = &PKTMAP;
    const MAPS_FILE: MapsFile = PKTMAP_FILE;

    fn map_type(self) -> u32 {
        self.ty.into()
    }

    fn map_id(self) -> u64 {
        self.id.into()
    }

    fn from_type_id(map_type: u32, map_id: u64) -> Option<Self> {
        Some(Self {
            ty: ResourceType::from_raw(map_type)?,
            id: u32::try_from(map_id).ok()?,
        })
    }
}

/// A VFIO PCI region: region `index` (a BAR, the config space, ...), `offset` bytes in.
///
/// VFIO fits the one region shape with no mechanism of its own: the [`VFIO`] layout spells
/// it, and [`crate::resource::map_region`] maps it from a VFIO device fd, whose region sizes
/// come from `VFIO_DEVICE_GET_REGION_INFO`.
///
/// # Examples
/// ```
/// use pktmap::offset::{Region, VfioRegion};
/// let bar2 = VfioRegion { index: 2, offset: 0x10_0000 };
/// assert_eq!(bar2.offset().unwrap(), 2 << 40 | 0x10_0000);
/// assert_eq!(VfioRegion::from_offset(2 << 40 | 0x10_0000).unwrap(), bar2);
/// assert!(VfioRegion::from_offset(0x10).is_err()); // not page aligned
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VfioRegion {
    /// `VFIO_PCI_*_REGION_INDEX`.
    pub index: u32,
    /// The byte offset inside the region (page aligned).
    pub offset: u64,
}

impl Region for VfioRegion {
    const LAYOUT: &'static Layout = &VFIO;
    const MAPS_FILE: MapsFile = VFIO_FILE;

    fn map_type(self) -> u32 {
        self.index
    }

    fn map_id(self) -> u64 {
        self.offset
    }

    fn from_type_id(map_type: u32, map_id: u64) -> Option<Self> {
        Some(Self {
            index: map_type,
            offset: map_id,
        })
    }
}

/// A resource type of the `/dev/pktmap` driver (the types of the [`PKTMAP`] layout).
///
/// # Examples
/// ```
/// use pktmap::offset::{DecodeError, ResourceType};
/// let off = ResourceType::Ring.offset(9);
/// assert_eq!(off, 9 << 15 | 2 << 12);
/// assert_eq!(ResourceType::decode(off), Ok((ResourceType::Ring, 9)));
/// assert_eq!(ResourceType::decode(off | 1), Err(DecodeError::Misaligned));
/// assert_eq!(ResourceType::from_raw(3), None); // not a pktmap type
/// assert_eq!(ResourceType::Pool.name(), "POOL");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ResourceType {
    /// The read-only STATE page; its only id is 0.
    State = pktmap_types::STATE,
    /// A packet-buffer pool.
    Pool = pktmap_types::POOL,
    /// A descriptor ring.
    Ring = pktmap_types::RING,
}

impl ResourceType {
    /// The `mmap` offset of resource `id` of this type: `id << 15 | type << 12`.
    ///
    /// Every `u32` id fits the 32-bit id field, so this cannot fail.
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::ResourceType;
    /// assert_eq!(ResourceType::State.offset(0), 0);
    /// assert_eq!(ResourceType::Pool.offset(u32::MAX), (u32::MAX as u64) << 15 | 1 << 12);
    /// ```
    pub const fn offset(self, id: u32) -> u64 {
        ((id as u64) << PKTMAP.id_field.shift) | ((self as u64) << PKTMAP.type_field.shift)
    }

    /// Decodes a [`PKTMAP`] offset into a typed `(type, id)`.
    ///
    /// # Errors
    /// As [`Layout::decode`].
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{DecodeError, ResourceType};
    /// assert_eq!(ResourceType::decode(2 << 12), Ok((ResourceType::Ring, 0)));
    /// assert_eq!(ResourceType::decode(1 << 47), Err(DecodeError::StrayBits));
    /// ```
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

    /// The type whose value in the [`PKTMAP`] type field is `value`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::{pktmap_types, ResourceType};
    /// assert_eq!(ResourceType::from_raw(pktmap_types::POOL), Some(ResourceType::Pool));
    /// assert_eq!(ResourceType::from_raw(7), None);
    /// ```
    pub const fn from_raw(value: u32) -> Option<Self> {
        match value {
            pktmap_types::STATE => Some(Self::State),
            pktmap_types::POOL => Some(Self::Pool),
            pktmap_types::RING => Some(Self::Ring),
            _ => None,
        }
    }

    /// The upstream-style name: `STATE`, `POOL` or `RING`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::offset::ResourceType;
    /// assert_eq!(ResourceType::State.name(), "STATE");
    /// ```
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
