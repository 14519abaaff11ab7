// SPDX-License-Identifier: MIT OR Apache-2.0
//! The mmap-offset codec: which resource an `mmap` offset names.
//!
//! A [`Layout`] names two bit fields of the byte offset passed to `mmap`: the map *type* and the
//! map *id*. Every other bit must be zero, and the offset must be page aligned. Encoding checks
//! ranges; decoding is strict: an offset that is misaligned, sets bits outside the fields, or
//! names a type the layout does not list is an error, never a wrong answer.
//!
//! Every layout is a `const` and every function a `const fn`, so encoding costs what the shifts
//! cost. The kernel decodes `vma->vm_pgoff`, which is the offset in pages: use
//! [`Layout::decode_pgoff`] there.
//!
//! | layout | type field | id field | types |
//! |---|---|---|---|
//! | [`PKTMAP`] | bits 12..15 | bits 15..47 | [`pktmap_types`] |
//! | [`ONLOAD`] | bits 12..15 | bits 15..64 | [`onload_types`] |
//! | [`IO_URING`] | bits 27..32 | bits 16..27, [`io_uring_types::PBUF_RING`] and [`io_uring_types::ZCRX_REGION`] only | [`io_uring_types`] |
//! | [`AF_XDP`] | bits 31..33 | none | [`af_xdp_types`] |
//! | [`VFIO`] | bits 40..64 (region index) | bits 0..40 (byte offset in the region) | any |

use core::fmt;

/// log2 of the page size every layout aligns offsets to (4 KiB).
pub const PAGE_SHIFT: u32 = 12;
/// The page size every layout aligns offsets to, in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// A bit field of a 64-bit offset: `width` bits starting at bit `shift`.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::Field;
/// let f = Field { shift: 12, width: 3 };
/// assert_eq!(f.mask(), 0x7000);
/// assert_eq!(f.max(), 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The lowest bit of the field.
    pub shift: u32,
    /// The number of bits; 0 means the layout has no such field.
    pub width: u32,
}

impl Field {
    /// The field that does not exist (width 0).
    pub const NONE: Field = Field { shift: 0, width: 0 };

    /// The largest value the field can hold (0 for [`Field::NONE`]).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{Field, PKTMAP};
    /// assert_eq!(PKTMAP.id_field.max(), u32::MAX as u64);
    /// assert_eq!(Field::NONE.max(), 0);
    /// ```
    #[inline]
    pub const fn max(self) -> u64 {
        match u64::MAX.checked_shr(64u32.saturating_sub(self.width)) {
            Some(m) if self.width > 0 => m,
            _ => 0,
        }
    }

    /// The bits of an offset the field occupies.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::AF_XDP;
    /// // XDP_PGOFF_RX_RING .. XDP_UMEM_PGOFF_COMPLETION_RING: bits 31 and 32.
    /// assert_eq!(AF_XDP.type_field.mask(), 0x1_8000_0000);
    /// ```
    #[inline]
    pub const fn mask(self) -> u64 {
        match self.max().checked_shl(self.shift) {
            Some(m) => m,
            None => 0,
        }
    }

    /// Reads the field out of `offset`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::PKTMAP;
    /// let off = 42 << 15 | 2 << 12;
    /// assert_eq!(PKTMAP.type_field.get(off), 2);
    /// assert_eq!(PKTMAP.id_field.get(off), 42);
    /// ```
    #[inline]
    pub const fn get(self, offset: u64) -> u64 {
        match (offset & self.mask()).checked_shr(self.shift) {
            Some(v) => v,
            None => 0,
        }
    }

    /// Places `value` into the field, or `None` if it does not fit.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::Field;
    /// let ty = Field { shift: 12, width: 3 };
    /// assert_eq!(ty.put(5), Some(5 << 12));
    /// assert_eq!(ty.put(8), None);
    /// ```
    #[inline]
    pub const fn put(self, value: u64) -> Option<u64> {
        if value > self.max() {
            return None;
        }
        if value == 0 {
            return Some(0);
        }
        value.checked_shl(self.shift)
    }
}

/// One map type a layout knows, with its name and whether it carries an id.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{io_uring_types, IO_URING};
/// let names: Vec<_> = IO_URING.types.unwrap().iter().map(|t| t.name).collect();
/// assert_eq!(names[..3], ["SQ_RING", "CQ_RING", "SQES"]);
/// assert!(!IO_URING.type_info(io_uring_types::SQES).unwrap().has_id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypeInfo {
    /// The value in the type field.
    pub value: u32,
    /// The upstream name, for messages and `/proc/<pid>/maps` listings.
    pub name: &'static str,
    /// Whether the id field may be non-zero for this type.
    pub has_id: bool,
}

/// The shape of an mmap offset: where the type and the id live, and which types exist.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// let off = PKTMAP.encode(pktmap_types::POOL, 7).unwrap();
/// assert_eq!(off, 7 << 15 | 1 << 12);
/// assert_eq!(PKTMAP.decode(off), Ok((pktmap_types::POOL, 7)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// A short name: `pktmap`, `onload`, `io_uring`, `af_xdp`, `vfio`.
    pub name: &'static str,
    /// Where the map type lives.
    pub type_field: Field,
    /// Where the map id lives ([`Field::NONE`] if the layout has none).
    pub id_field: Field,
    /// The types the layout knows; `None` accepts every value of the type field, each with an id.
    pub types: Option<&'static [TypeInfo]>,
}

/// Why an offset could not be encoded.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, EncodeError, PKTMAP};
/// assert_eq!(PKTMAP.encode(7, 0), Err(EncodeError::UnknownType));
/// assert_eq!(PKTMAP.encode(8, 0), Err(EncodeError::TypeOutOfRange));
/// let err = PKTMAP.encode(pktmap_types::POOL, 1 << 32).unwrap_err();
/// assert_eq!(err, EncodeError::IdOutOfRange);
/// assert_eq!(err.to_string(), "map id does not fit the layout's id field");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The type does not fit the layout's type field.
    TypeOutOfRange,
    /// The type fits the field but the layout does not list it.
    UnknownType,
    /// The id does not fit the layout's id field.
    IdOutOfRange,
    /// The type carries no id, but a non-zero id was given.
    IdNotAllowed,
    /// The encoded offset would not be page aligned (only layouts whose id reaches below
    /// [`PAGE_SHIFT`], such as [`VFIO`]).
    Misaligned,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TypeOutOfRange => "map type does not fit the layout's type field",
            Self::UnknownType => "map type is not one the layout knows",
            Self::IdOutOfRange => "map id does not fit the layout's id field",
            Self::IdNotAllowed => "map type takes no id, but a non-zero id was given",
            Self::Misaligned => "encoded offset would not be page aligned",
        })
    }
}

impl core::error::Error for EncodeError {}

/// Why an offset does not name a resource.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{DecodeError, PKTMAP};
/// assert_eq!(PKTMAP.decode(0x1001), Err(DecodeError::Misaligned));
/// assert_eq!(PKTMAP.decode(1 << 47), Err(DecodeError::StrayBits));
/// assert_eq!(PKTMAP.decode(5 << 12), Err(DecodeError::UnknownType));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The offset is not a multiple of [`PAGE_SIZE`].
    Misaligned,
    /// Bits outside the type and id fields are set, or id bits are set for a type without an
    /// id, or a page offset is too large to be a byte offset.
    StrayBits,
    /// The type field holds a value the layout does not list.
    UnknownType,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Misaligned => "offset is not page aligned",
            Self::StrayBits => "offset sets bits outside the layout's fields",
            Self::UnknownType => "offset names a map type the layout does not know",
        })
    }
}

impl core::error::Error for DecodeError {}

impl Layout {
    /// The entry for `map_type`, if the layout lists its types and `map_type` is one of them.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{io_uring_types, IO_URING};
    /// assert_eq!(IO_URING.type_info(io_uring_types::PBUF_RING).unwrap().name, "PBUF_RING");
    /// assert!(IO_URING.type_info(3).is_none());
    /// ```
    #[inline]
    pub const fn type_info(&self, map_type: u32) -> Option<&'static TypeInfo> {
        let Some(types) = self.types else {
            return None;
        };
        let mut rest: &'static [TypeInfo] = types;
        while let [first, tail @ ..] = rest {
            if first.value == map_type {
                return Some(first);
            }
            rest = tail;
        }
        None
    }

    /// Whether `map_type` is valid here, and if so whether it may carry an id.
    #[inline]
    const fn check_type(&self, map_type: u32) -> Result<bool, ()> {
        if map_type as u64 > self.type_field.max() {
            return Err(());
        }
        if self.types.is_none() {
            return Ok(true);
        }
        match self.type_info(map_type) {
            Some(info) => Ok(info.has_id),
            None => Err(()),
        }
    }

    /// Encodes `(map_type, map_id)` as a byte offset for `mmap`.
    ///
    /// # Errors
    /// [`EncodeError`] when the type or id does not fit, the type is unknown, an id is given for
    /// a type without one, or the result would not be page aligned.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{io_uring_types, EncodeError, IO_URING};
    /// // IORING_OFF_PBUF_RING | bgid << IORING_OFF_PBUF_SHIFT
    /// assert_eq!(IO_URING.encode(io_uring_types::PBUF_RING, 3), Ok(0x8000_0000 | 3 << 16));
    /// assert_eq!(IO_URING.decode(0x8003_0000), Ok((io_uring_types::PBUF_RING, 3)));
    /// assert_eq!(IO_URING.encode(io_uring_types::SQ_RING, 3), Err(EncodeError::IdNotAllowed));
    /// ```
    #[inline]
    pub const fn encode(&self, map_type: u32, map_id: u64) -> Result<u64, EncodeError> {
        let has_id = match self.check_type(map_type) {
            Ok(has_id) => has_id,
            Err(()) if map_type as u64 > self.type_field.max() => {
                return Err(EncodeError::TypeOutOfRange)
            }
            Err(()) => return Err(EncodeError::UnknownType),
        };
        if map_id != 0 && !has_id {
            return Err(EncodeError::IdNotAllowed);
        }
        let Some(ty) = self.type_field.put(map_type as u64) else {
            return Err(EncodeError::TypeOutOfRange);
        };
        let Some(id) = self.id_field.put(map_id) else {
            return Err(EncodeError::IdOutOfRange);
        };
        let offset = ty | id;
        if offset & (PAGE_SIZE - 1) != 0 {
            return Err(EncodeError::Misaligned);
        }
        Ok(offset)
    }

    /// Decodes a byte offset into `(map_type, map_id)`.
    ///
    /// # Errors
    /// [`DecodeError`] when the offset is misaligned, sets bits outside the fields (or id bits
    /// for a type without an id), or names a type the layout does not list.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{af_xdp_types, DecodeError, AF_XDP};
    /// assert_eq!(AF_XDP.decode(0x1_0000_0000), Ok((af_xdp_types::FILL, 0)));
    /// assert_eq!(AF_XDP.encode(af_xdp_types::FILL, 0), Ok(0x1_0000_0000));
    /// assert_eq!(AF_XDP.decode(0x1000), Err(DecodeError::StrayBits));
    /// assert_eq!(AF_XDP.decode(0x10), Err(DecodeError::Misaligned));
    /// ```
    #[inline]
    pub const fn decode(&self, offset: u64) -> Result<(u32, u64), DecodeError> {
        if offset & (PAGE_SIZE - 1) != 0 {
            return Err(DecodeError::Misaligned);
        }
        if offset & !(self.type_field.mask() | self.id_field.mask()) != 0 {
            return Err(DecodeError::StrayBits);
        }
        // The type field is at most 32 bits wide (checked by `is_valid`), so this cast is exact.
        let map_type = self.type_field.get(offset) as u32;
        let map_id = self.id_field.get(offset);
        match self.check_type(map_type) {
            Ok(false) if map_id != 0 => Err(DecodeError::StrayBits),
            Ok(_) => Ok((map_type, map_id)),
            Err(()) => Err(DecodeError::UnknownType),
        }
    }

    /// Decodes a page offset (`vma->vm_pgoff`, the byte offset shifted right by
    /// [`PAGE_SHIFT`]) into `(map_type, map_id)`.
    ///
    /// # Errors
    /// As [`Layout::decode`]; a page offset too large to be a byte offset is
    /// [`DecodeError::StrayBits`].
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{pktmap_types, PKTMAP, PAGE_SHIFT};
    /// let off = PKTMAP.encode(pktmap_types::RING, 9).unwrap();
    /// assert_eq!(PKTMAP.decode_pgoff(off >> PAGE_SHIFT), Ok((pktmap_types::RING, 9)));
    /// ```
    #[inline]
    pub const fn decode_pgoff(&self, pgoff: u64) -> Result<(u32, u64), DecodeError> {
        if pgoff > u64::MAX >> PAGE_SHIFT {
            return Err(DecodeError::StrayBits);
        }
        self.decode(pgoff << PAGE_SHIFT)
    }

    /// The name of `map_type` in this layout, if the layout lists it.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{onload_types, ONLOAD, VFIO};
    /// assert_eq!(ONLOAD.type_name(onload_types::CPLANE), Some("CPLANE"));
    /// assert_eq!(VFIO.type_name(0), None); // VFIO lists no types: any region index goes
    /// ```
    #[inline]
    pub const fn type_name(&self, map_type: u32) -> Option<&'static str> {
        match self.type_info(map_type) {
            Some(info) => Some(info.name),
            None => None,
        }
    }

    /// Whether the layout is well formed: fields inside 64 bits, not overlapping, a type field
    /// of at most 32 bits, and listed types that fit it. Every layout here is checked by a test.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::codec::{Field, Layout, PKTMAP};
    /// assert!(PKTMAP.is_valid());
    /// // An id field that overlaps the type field is not a layout.
    /// let id_field = Field { shift: 13, width: 8 };
    /// assert!(!Layout { id_field, ..PKTMAP }.is_valid());
    /// ```
    #[inline]
    pub const fn is_valid(&self) -> bool {
        let t = self.type_field;
        let i = self.id_field;
        if t.width == 0 || t.width > 32 || t.shift.saturating_add(t.width) > 64 {
            return false;
        }
        if i.shift.saturating_add(i.width) > 64 || t.mask() & i.mask() != 0 {
            return false;
        }
        if let Some(types) = self.types {
            let mut rest: &'static [TypeInfo] = types;
            while let [first, tail @ ..] = rest {
                if first.value as u64 > t.max() {
                    return false;
                }
                rest = tail;
            }
        }
        true
    }
}

/// Map types of the [`PKTMAP`] layout, the `/dev/pktmap` driver's resources.
pub mod pktmap_types {
    use super::TypeInfo;

    /// The read-only state page (id 0): the driver's counters.
    pub const STATE: u32 = 0;
    /// A packet-buffer pool (id from `POOL_CREATE`).
    pub const POOL: u32 = 1;
    /// A descriptor ring (id from `RING_CREATE`).
    pub const RING: u32 = 2;

    /// The types, in order.
    pub const TYPES: &[TypeInfo] = &[
        TypeInfo {
            value: STATE,
            name: "STATE",
            has_id: true,
        },
        TypeInfo {
            value: POOL,
            name: "POOL",
            has_id: true,
        },
        TypeInfo {
            value: RING,
            name: "RING",
            has_id: true,
        },
    ];
}

/// This project's layout: type in bits 12..15 (at `PAGE_SHIFT`, 3 bits, as Onload), id in bits
/// 15..47 (32 bits). Bits 47..64 must be zero.
pub const PKTMAP: Layout = Layout {
    name: "pktmap",
    type_field: Field {
        shift: PAGE_SHIFT,
        width: 3,
    },
    id_field: Field {
        shift: PAGE_SHIFT + 3,
        width: 32,
    },
    types: Some(pktmap_types::TYPES),
};

/// Map types of the [`ONLOAD`] layout (`OO_MMAP_TYPE_*` in onload's `mmap_base.h`).
pub mod onload_types {
    use super::TypeInfo;

    /// `OO_MMAP_TYPE_NETIF`: a stack's shared state and buffers.
    pub const NETIF: u32 = 0;
    /// `OO_MMAP_TYPE_CPLANE`: the control plane's tables.
    pub const CPLANE: u32 = 1;
    /// `OO_MMAP_TYPE_DSHM`: a driver-shared memory segment.
    pub const DSHM: u32 = 2;
    /// `OO_MMAP_TYPE_UBUF_POST`: user-buffer posting area.
    pub const UBUF_POST: u32 = 3;

    /// The types, in order.
    pub const TYPES: &[TypeInfo] = &[
        TypeInfo {
            value: NETIF,
            name: "NETIF",
            has_id: true,
        },
        TypeInfo {
            value: CPLANE,
            name: "CPLANE",
            has_id: true,
        },
        TypeInfo {
            value: DSHM,
            name: "DSHM",
            has_id: true,
        },
        TypeInfo {
            value: UBUF_POST,
            name: "UBUF_POST",
            has_id: true,
        },
    ];
}

/// OpenOnload's layout, from `mmap_base.h`: `OO_MMAP_TYPE_SHIFT = CI_PAGE_SHIFT`, a 3-bit type
/// (`OO_MMAP_TYPE_MASK = 0x7`), and the id above it from `OO_MMAP_ID_SHIFT` to the top bit.
pub const ONLOAD: Layout = Layout {
    name: "onload",
    type_field: Field {
        shift: PAGE_SHIFT,
        width: 3,
    },
    id_field: Field {
        shift: PAGE_SHIFT + 3,
        width: 64 - PAGE_SHIFT - 3,
    },
    types: Some(onload_types::TYPES),
};

/// Map types of the [`IO_URING`] layout: the value of the type field, which is the
/// `IORING_OFF_*` constant shifted right by 27 (`IORING_OFF_MMAP_MASK = 0xf8000000`).
pub mod io_uring_types {
    use super::TypeInfo;

    /// `IORING_OFF_SQ_RING` (0x0): the submission queue ring.
    pub const SQ_RING: u32 = 0x0;
    /// `IORING_OFF_CQ_RING` (0x8000000): the completion queue ring.
    pub const CQ_RING: u32 = 0x1;
    /// `IORING_OFF_SQES` (0x10000000): the submission queue entries.
    pub const SQES: u32 = 0x2;
    /// `IORING_OFF_PBUF_RING` (0x80000000): a provided-buffer ring; the id is its buffer group.
    pub const PBUF_RING: u32 = 0x10;
    /// `IORING_MAP_OFF_PARAM_REGION` (0x20000000): the region registered with
    /// `IORING_REGISTER_MEM_REGION`, whose offset the kernel writes into
    /// `io_uring_region_desc.mmap_offset` (`io_uring/memmap.h`).
    pub const PARAM_REGION: u32 = 0x4;
    /// `IORING_MAP_OFF_ZCRX_REGION` (0x30000000): a zero-copy receive refill ring; the id is
    /// the zcrx instance id, from `IORING_OFF_ZCRX_SHIFT` (`io_uring/memmap.h`).
    pub const ZCRX_REGION: u32 = 0x6;
    /// `IORING_OFF_PBUF_SHIFT`: where the buffer group id starts.
    pub const PBUF_SHIFT: u32 = 16;
    /// `IORING_OFF_ZCRX_SHIFT`: where the zcrx id starts (the same bits as the buffer group).
    pub const ZCRX_SHIFT: u32 = 16;
    /// `IORING_OFF_MMAP_MASK`: the bits that select the region.
    pub const MMAP_MASK: u64 = 0xf800_0000;

    /// The types, in order.
    pub const TYPES: &[TypeInfo] = &[
        TypeInfo {
            value: SQ_RING,
            name: "SQ_RING",
            has_id: false,
        },
        TypeInfo {
            value: CQ_RING,
            name: "CQ_RING",
            has_id: false,
        },
        TypeInfo {
            value: SQES,
            name: "SQES",
            has_id: false,
        },
        TypeInfo {
            value: PARAM_REGION,
            name: "PARAM_REGION",
            has_id: false,
        },
        TypeInfo {
            value: ZCRX_REGION,
            name: "ZCRX_REGION",
            has_id: true,
        },
        TypeInfo {
            value: PBUF_RING,
            name: "PBUF_RING",
            has_id: true,
        },
    ];
}

/// io_uring's layout, from `include/uapi/linux/io_uring.h`: the region in bits 27..32
/// (`IORING_OFF_MMAP_MASK`), the buffer group id of a provided-buffer ring from
/// `IORING_OFF_PBUF_SHIFT` (16) up to the region bits. The kernel ignores stray bits; this
/// layout rejects them.
pub const IO_URING: Layout = Layout {
    name: "io_uring",
    type_field: Field {
        shift: 27,
        width: 5,
    },
    id_field: Field {
        shift: io_uring_types::PBUF_SHIFT,
        width: 27 - io_uring_types::PBUF_SHIFT,
    },
    types: Some(io_uring_types::TYPES),
};

/// Map types of the [`AF_XDP`] layout: `XDP_PGOFF_*` and `XDP_UMEM_PGOFF_*` shifted right by 31.
pub mod af_xdp_types {
    use super::TypeInfo;

    /// `XDP_PGOFF_RX_RING` (0).
    pub const RX: u32 = 0;
    /// `XDP_PGOFF_TX_RING` (0x80000000).
    pub const TX: u32 = 1;
    /// `XDP_UMEM_PGOFF_FILL_RING` (0x100000000).
    pub const FILL: u32 = 2;
    /// `XDP_UMEM_PGOFF_COMPLETION_RING` (0x180000000).
    pub const COMPLETION: u32 = 3;

    /// The types, in order.
    pub const TYPES: &[TypeInfo] = &[
        TypeInfo {
            value: RX,
            name: "RX",
            has_id: false,
        },
        TypeInfo {
            value: TX,
            name: "TX",
            has_id: false,
        },
        TypeInfo {
            value: FILL,
            name: "FILL",
            has_id: false,
        },
        TypeInfo {
            value: COMPLETION,
            name: "COMPLETION",
            has_id: false,
        },
    ];
}

/// AF_XDP's layout, from `include/uapi/linux/if_xdp.h`: four fixed offsets, 2 GiB apart.
pub const AF_XDP: Layout = Layout {
    name: "af_xdp",
    type_field: Field {
        shift: 31,
        width: 2,
    },
    id_field: Field::NONE,
    types: Some(af_xdp_types::TYPES),
};

/// `VFIO_PCI_OFFSET_SHIFT`: where a VFIO PCI region index starts.
pub const VFIO_OFFSET_SHIFT: u32 = 40;

/// VFIO PCI's layout (`vfio_pci_core.h`): the type is the region index
/// (`VFIO_PCI_INDEX_TO_OFFSET(index) = index << 40`) and the id is the byte offset inside the
/// region, bits 0..40, which must be page aligned like every offset.
///
/// # Examples
/// ```
/// use pktmap_abi::codec::VFIO;
/// // BAR 2, 1 MiB into the region.
/// let off = VFIO.encode(2, 0x10_0000).unwrap();
/// assert_eq!(off, 2 << 40 | 0x10_0000);
/// assert_eq!(VFIO.decode(off), Ok((2, 0x10_0000)));
/// ```
pub const VFIO: Layout = Layout {
    name: "vfio",
    type_field: Field {
        shift: VFIO_OFFSET_SHIFT,
        width: 64 - VFIO_OFFSET_SHIFT,
    },
    id_field: Field {
        shift: 0,
        width: VFIO_OFFSET_SHIFT,
    },
    types: None,
};

/// Every layout, for tools and tests that try them all.
pub const LAYOUTS: [&Layout; 5] = [&PKTMAP, &ONLOAD, &IO_URING, &AF_XDP, &VFIO];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_is_valid() {
        for layout in LAYOUTS {
            assert!(layout.is_valid(), "{} is malformed", layout.name);
        }
    }

    #[test]
    fn pktmap_fields_match_design() {
        assert_eq!(PKTMAP.type_field.mask(), 0x7000);
        assert_eq!(PKTMAP.id_field.mask(), 0xffff_ffff << 15);
        for &t in &[pktmap_types::STATE, pktmap_types::POOL, pktmap_types::RING] {
            for &id in &[0u64, 1, 0x7fff_ffff, 0xffff_ffff] {
                let off = PKTMAP.encode(t, id).unwrap();
                assert_eq!(off, id << 15 | (t as u64) << 12);
                assert_eq!(PKTMAP.decode(off), Ok((t, id)));
                assert_eq!(PKTMAP.decode_pgoff(off >> 12), Ok((t, id)));
            }
        }
        assert_eq!(PKTMAP.encode(3, 0), Err(EncodeError::UnknownType));
        assert_eq!(PKTMAP.encode(8, 0), Err(EncodeError::TypeOutOfRange));
        assert_eq!(PKTMAP.encode(0, 1 << 32), Err(EncodeError::IdOutOfRange));
        assert_eq!(PKTMAP.decode(3 << 12), Err(DecodeError::UnknownType));
        assert_eq!(PKTMAP.decode(7 << 12), Err(DecodeError::UnknownType));
        assert_eq!(PKTMAP.decode(1 << 47), Err(DecodeError::StrayBits));
        assert_eq!(PKTMAP.decode(1 << 63), Err(DecodeError::StrayBits));
        assert_eq!(PKTMAP.decode(0x1001), Err(DecodeError::Misaligned));
        assert_eq!(PKTMAP.decode(0x800), Err(DecodeError::Misaligned));
        assert_eq!(PKTMAP.decode_pgoff(u64::MAX), Err(DecodeError::StrayBits));
        assert_eq!(PKTMAP.decode_pgoff(1 << 52), Err(DecodeError::StrayBits));
    }

    #[test]
    fn onload_matches_mmap_base_h() {
        // OO_MMAP_TYPE_SHIFT = CI_PAGE_SHIFT, OO_MMAP_ID_SHIFT = type shift + 3.
        let off = ONLOAD.encode(onload_types::DSHM, 5).unwrap();
        assert_eq!(off, 5 << 15 | 2 << 12);
        assert_eq!(ONLOAD.decode(off), Ok((onload_types::DSHM, 5)));
        let top = ONLOAD.id_field.max();
        assert_eq!(top, (1 << 49) - 1);
        assert_eq!(
            ONLOAD.decode(ONLOAD.encode(onload_types::UBUF_POST, top).unwrap()),
            Ok((3, top))
        );
        assert_eq!(ONLOAD.encode(4, 0), Err(EncodeError::UnknownType));
    }

    #[test]
    fn io_uring_matches_uapi() {
        assert_eq!(IO_URING.encode(io_uring_types::SQ_RING, 0), Ok(0));
        assert_eq!(IO_URING.encode(io_uring_types::CQ_RING, 0), Ok(0x800_0000));
        assert_eq!(IO_URING.encode(io_uring_types::SQES, 0), Ok(0x1000_0000));
        assert_eq!(
            IO_URING.encode(io_uring_types::PBUF_RING, 0),
            Ok(0x8000_0000)
        );
        assert_eq!(IO_URING.type_field.mask(), io_uring_types::MMAP_MASK);
        assert_eq!(IO_URING.id_field.max(), 2047);
        assert_eq!(
            IO_URING.encode(io_uring_types::PBUF_RING, 2047),
            Ok(0x8000_0000 | 2047 << 16)
        );
        assert_eq!(
            IO_URING.encode(io_uring_types::PBUF_RING, 2048),
            Err(EncodeError::IdOutOfRange)
        );
        // The kernel ignores bgid bits on the SQ ring and low page-aligned bits; we do not.
        assert_eq!(IO_URING.decode(0x1_0000), Err(DecodeError::StrayBits));
        assert_eq!(IO_URING.decode(0x8000_1000), Err(DecodeError::StrayBits));
        assert_eq!(IO_URING.decode(0x1_8000_0000), Err(DecodeError::StrayBits));
        assert_eq!(IO_URING.decode(0x1800_0000), Err(DecodeError::UnknownType));
        assert_eq!(
            IO_URING.encode(io_uring_types::PARAM_REGION, 0),
            Ok(0x2000_0000)
        );
        assert_eq!(
            IO_URING.encode(io_uring_types::PARAM_REGION, 1),
            Err(EncodeError::IdNotAllowed)
        );
        assert_eq!(
            IO_URING.encode(io_uring_types::ZCRX_REGION, 3),
            Ok(0x3000_0000 | 3 << io_uring_types::ZCRX_SHIFT)
        );
        assert_eq!(
            IO_URING.decode(0x3002_0000),
            Ok((io_uring_types::ZCRX_REGION, 2))
        );
    }

    #[test]
    fn af_xdp_matches_uapi() {
        let offsets = [0u64, 0x8000_0000, 0x1_0000_0000, 0x1_8000_0000];
        for (t, off) in offsets.iter().enumerate() {
            assert_eq!(AF_XDP.encode(t as u32, 0), Ok(*off));
            assert_eq!(AF_XDP.decode(*off), Ok((t as u32, 0)));
        }
        assert_eq!(
            AF_XDP.encode(af_xdp_types::RX, 1),
            Err(EncodeError::IdNotAllowed)
        );
        assert_eq!(AF_XDP.decode(0x2_0000_0000), Err(DecodeError::StrayBits));
        assert_eq!(AF_XDP.decode(0x4000_0000), Err(DecodeError::StrayBits));
    }

    #[test]
    fn vfio_region_offsets() {
        assert_eq!(VFIO.encode(0, 0), Ok(0));
        assert_eq!(VFIO.encode(5, 0x1000), Ok(5 << 40 | 0x1000));
        assert_eq!(VFIO.encode(5, 0x800), Err(EncodeError::Misaligned));
        assert_eq!(VFIO.encode(5, 1 << 40), Err(EncodeError::IdOutOfRange));
        assert_eq!(VFIO.encode(1 << 24, 0), Err(EncodeError::TypeOutOfRange));
        let last = VFIO.encode((1 << 24) - 1, (1 << 40) - 4096).unwrap();
        assert_eq!(last, u64::MAX - 4095);
        assert_eq!(VFIO.decode(last), Ok(((1 << 24) - 1, (1 << 40) - 4096)));
        assert_eq!(VFIO.decode(7 << 40 | 0x10), Err(DecodeError::Misaligned));
    }

    #[test]
    fn field_edges() {
        assert_eq!(Field::NONE.max(), 0);
        assert_eq!(Field::NONE.mask(), 0);
        assert_eq!(Field::NONE.put(0), Some(0));
        assert_eq!(Field::NONE.put(1), None);
        let full = Field {
            shift: 0,
            width: 64,
        };
        assert_eq!(full.max(), u64::MAX);
        assert_eq!(full.get(u64::MAX), u64::MAX);
        let top = Field {
            shift: 63,
            width: 1,
        };
        assert_eq!(top.mask(), 1 << 63);
        assert_eq!(top.put(1), Some(1 << 63));
        assert_eq!(top.put(2), None);
    }

    #[test]
    fn type_names() {
        assert_eq!(PKTMAP.type_name(pktmap_types::POOL), Some("POOL"));
        assert_eq!(
            AF_XDP.type_name(af_xdp_types::COMPLETION),
            Some("COMPLETION")
        );
        assert_eq!(VFIO.type_name(0), None);
    }

    #[test]
    fn malformed_layouts_are_caught() {
        let overlap = Layout {
            name: "overlap",
            type_field: Field {
                shift: 12,
                width: 4,
            },
            id_field: Field {
                shift: 15,
                width: 4,
            },
            types: None,
        };
        assert!(!overlap.is_valid());
        let wide = Layout {
            type_field: Field {
                shift: 12,
                width: 33,
            },
            ..overlap
        };
        assert!(!wide.is_valid());
        let outside = Layout {
            type_field: Field {
                shift: 62,
                width: 3,
            },
            id_field: Field::NONE,
            ..overlap
        };
        assert!(!outside.is_valid());
    }
}
