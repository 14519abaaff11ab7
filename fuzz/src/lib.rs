//! Shared pieces of the pktmap-abi fuzz targets: a byte reader for the targets' input formats,
//! and an independent model of the offset codec written from the upstream constants.
//!
//! The model deliberately does not reuse [`pktmap_abi::codec::Field`] or anything else from the
//! crate under test: each layout is restated as the masks and offsets its upstream header uses
//! (the table in driver/abi/src/codec.rs's docs), so a fuzz target that compares the two catches a wrong shift, width or
//! type list, not only a panic.

use pktmap_abi::codec::{DecodeError, EncodeError, Layout, LAYOUTS};

/// Reads fixed-size little-endian integers from fuzz input, yielding zeros once it runs out,
/// so every input, even an empty one, is a valid (if short) test case.
///
/// # Examples
/// ```
/// let mut r = pktmap_fuzz::Reader::new(&[1, 2, 0, 0, 9]);
/// assert_eq!(r.u32(), 0x201);
/// assert_eq!(r.u64(), 9);
/// assert_eq!(r.u8(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `N` bytes, zero-filled past the end of the input.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        out[..n].copy_from_slice(head);
        self.data = tail;
        out
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    /// The next `u32`, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    /// The next `u64`, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }

    /// The bytes not read yet (and no more after them).
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// `ceil(bytes / 4096)`, computed in `u128` so it cannot overflow.
pub fn pages_ceil(bytes: u64) -> u128 {
    u128::from(bytes).div_ceil(4096)
}

/// One layout restated from its upstream header: the in-place masks of its fields and the
/// in-place values of its known types.
#[derive(Clone, Copy, Debug)]
pub struct ModelLayout {
    /// Must equal the [`Layout::name`] at the same index of [`LAYOUTS`].
    pub name: &'static str,
    /// The bits that hold the map type (never 0).
    pub type_mask: u64,
    /// The bits that hold the map id (0: the layout has no id).
    pub id_mask: u64,
    /// Each known type as the offset bits it sets (the upstream `*_OFF_*` constant) and whether
    /// it carries an id; `None`: every value of the type field is valid and carries an id.
    pub types: Option<&'static [(u64, bool)]>,
}

/// The five layouts of driver/abi/src/codec.rs's table, in the order of [`LAYOUTS`].
pub const MODELS: [ModelLayout; 5] = [
    // pktmap: type bits 12..15, id bits 15..47; STATE 0, POOL 1, RING 2.
    ModelLayout {
        name: "pktmap",
        type_mask: 0x7000,
        id_mask: 0x7fff_ffff_8000,
        types: Some(&[(0 << 12, true), (1 << 12, true), (2 << 12, true)]),
    },
    // onload mmap_base.h: OO_MMAP_TYPE_SHIFT = 12, OO_MMAP_TYPE_MASK = 0x7, id from bit 15 up.
    ModelLayout {
        name: "onload",
        type_mask: 0x7000,
        id_mask: 0xffff_ffff_ffff_8000,
        types: Some(&[
            (0 << 12, true),
            (1 << 12, true),
            (2 << 12, true),
            (3 << 12, true),
        ]),
    },
    // io_uring.h: IORING_OFF_MMAP_MASK = 0xf8000000, IORING_OFF_PBUF_SHIFT = 16; SQ_RING 0,
    // CQ_RING 0x8000000, SQES 0x10000000 (no id), PBUF_RING 0x80000000 (id = bgid);
    // io_uring/memmap.h: PARAM_REGION 0x20000000 (no id), ZCRX_REGION 0x30000000 (id = zcrx id).
    ModelLayout {
        name: "io_uring",
        type_mask: 0xf800_0000,
        id_mask: 0x07ff_0000,
        types: Some(&[
            (0x0, false),
            (0x0800_0000, false),
            (0x1000_0000, false),
            (0x2000_0000, false),
            (0x3000_0000, true),
            (0x8000_0000, true),
        ]),
    },
    // if_xdp.h: XDP_PGOFF_RX_RING 0, XDP_PGOFF_TX_RING 0x80000000,
    // XDP_UMEM_PGOFF_FILL_RING 0x100000000, XDP_UMEM_PGOFF_COMPLETION_RING 0x180000000.
    ModelLayout {
        name: "af_xdp",
        type_mask: 0x1_8000_0000,
        id_mask: 0,
        types: Some(&[
            (0x0, false),
            (0x8000_0000, false),
            (0x1_0000_0000, false),
            (0x1_8000_0000, false),
        ]),
    },
    // vfio_pci_core.h: VFIO_PCI_OFFSET_SHIFT = 40; index above, byte offset in the region below.
    ModelLayout {
        name: "vfio",
        type_mask: 0xffff_ff00_0000_0000,
        id_mask: 0x0000_00ff_ffff_ffff,
        types: None,
    },
];

impl ModelLayout {
    fn type_shift(&self) -> u32 {
        self.type_mask.trailing_zeros()
    }

    /// `Some(has_id)` if the type whose offset bits are `bits` is known.
    fn known(&self, bits: u64) -> Option<bool> {
        match self.types {
            None => Some(true),
            Some(list) => list.iter().find(|&&(b, _)| b == bits).map(|&(_, id)| id),
        }
    }

    /// What a strict decode of `offset` must answer.
    pub fn decode(&self, offset: u64) -> Result<(u32, u64), DecodeError> {
        if !offset.is_multiple_of(4096) {
            return Err(DecodeError::Misaligned);
        }
        if offset & !(self.type_mask | self.id_mask) != 0 {
            return Err(DecodeError::StrayBits);
        }
        let type_bits = offset & self.type_mask;
        let id_bits = offset & self.id_mask;
        let map_type = u32::try_from(type_bits >> self.type_shift()).expect("type fits u32");
        let map_id = match self.id_mask {
            0 => 0,
            m => id_bits >> m.trailing_zeros(),
        };
        match self.known(type_bits) {
            None => Err(DecodeError::UnknownType),
            Some(false) if map_id != 0 => Err(DecodeError::StrayBits),
            Some(_) => Ok((map_type, map_id)),
        }
    }

    /// What encoding `(map_type, map_id)` must answer. When several rules are broken the type
    /// is blamed first, then the id, then the alignment.
    pub fn encode(&self, map_type: u32, map_id: u64) -> Result<u64, EncodeError> {
        let shift = self.type_shift();
        let type_max = self.type_mask >> shift;
        if u64::from(map_type) > type_max {
            return Err(EncodeError::TypeOutOfRange);
        }
        let type_bits = u64::from(map_type) << shift;
        let has_id = self.known(type_bits).ok_or(EncodeError::UnknownType)?;
        if map_id != 0 && !has_id {
            return Err(EncodeError::IdNotAllowed);
        }
        let id_bits = match self.id_mask {
            0 if map_id == 0 => 0,
            0 => return Err(EncodeError::IdOutOfRange),
            m => {
                let s = m.trailing_zeros();
                if map_id > m >> s {
                    return Err(EncodeError::IdOutOfRange);
                }
                map_id << s
            }
        };
        if !id_bits.is_multiple_of(4096) {
            return Err(EncodeError::Misaligned);
        }
        Ok(type_bits | id_bits)
    }
}

/// Each layout of the crate under test with its model; panics if the two tables disagree on
/// names or field masks (cheap enough to check on every run).
pub fn layouts() -> impl Iterator<Item = (&'static Layout, &'static ModelLayout)> {
    LAYOUTS.iter().zip(MODELS.iter()).map(|(&layout, model)| {
        assert_eq!(layout.name, model.name, "LAYOUTS order changed");
        assert_eq!(layout.type_field.mask(), model.type_mask, "{}", model.name);
        assert_eq!(layout.id_field.mask(), model.id_mask, "{}", model.name);
        (layout, model)
    })
}

/// `POOL_CREATE`'s rules, restated from the ABI docs without `pktmap_abi::plan`: a buffer size
/// that is a power of two in 256..=65536, at least one buffer, at most one kind flag (LAZY 1,
/// CONTIG 2, HUGE 4), `reserved` 0, `fault_around` 0 (16) or a power of two up to 512 on a
/// lazy pool and 0 otherwise, cache WB (0) or WC (1, contiguous and 2 MiB pools only), at most
/// 256 MiB; pages are rounded up to whole chunks (1 page; 2 MiB; contiguous: the pool's pages
/// rounded up to a power of two, at most 512).
pub fn model_pool(
    req: &pktmap_abi::ioctl::PoolCreate,
) -> Result<pktmap_abi::plan::PoolGeometry, pktmap_abi::plan::PlanError> {
    use pktmap_abi::plan::{Cache, PlanError, PoolGeometry, PoolKind};
    const SIZES: [u32; 9] = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
    let bad = Err(PlanError::BadArgument);
    let bytes = u128::from(req.buf_size) * u128::from(req.buf_count);
    if !SIZES.contains(&req.buf_size) || req.buf_count == 0 || req.reserved != 0 {
        return bad;
    }
    let kind = match req.flags {
        0 => PoolKind::Eager,
        1 => PoolKind::Lazy,
        2 => PoolKind::Contig,
        4 => PoolKind::Huge,
        _ => return bad,
    };
    let fault_around = match (kind, req.fault_around) {
        (PoolKind::Lazy, 0) => 16,
        (PoolKind::Lazy, n) if (0..=9).any(|k| n == 1 << k) => n,
        (PoolKind::Lazy, _) => return bad,
        (_, 0) => 0,
        _ => return bad,
    };
    let cache = match (req.cache, kind) {
        (0, _) => Cache::WriteBack,
        (1, PoolKind::Contig | PoolKind::Huge) => Cache::WriteCombine,
        _ => return bad,
    };
    if bytes > 256 << 20 {
        return bad;
    }
    let pages = pages_ceil(bytes as u64) as u64;
    let chunk_pages = match kind {
        PoolKind::Eager | PoolKind::Lazy => 1,
        PoolKind::Huge => 512,
        PoolKind::Contig => {
            let mut c = 1;
            while c < pages && c < 512 {
                c *= 2;
            }
            c
        }
    };
    Ok(PoolGeometry {
        buf_size: req.buf_size,
        buf_count: req.buf_count,
        pages: pages.div_ceil(chunk_pages) * chunk_pages,
        kind,
        fault_around,
        cache,
        chunk_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktmap_abi::codec::{io_uring_types, AF_XDP, IO_URING, PKTMAP, VFIO};

    #[test]
    fn models_match_layouts() {
        assert_eq!(layouts().count(), LAYOUTS.len());
    }

    #[test]
    fn model_spot_checks() {
        let [pkt, _, uring, xdp, vfio] = MODELS;
        assert_eq!(pkt.encode(1, 7), PKTMAP.encode(1, 7));
        assert_eq!(uring.encode(io_uring_types::PBUF_RING, 3), Ok(0x8003_0000));
        assert_eq!(uring.decode(0x8003_0000), IO_URING.decode(0x8003_0000));
        assert_eq!(xdp.decode(0x1_8000_0000), AF_XDP.decode(0x1_8000_0000));
        assert_eq!(xdp.encode(0, 1), Err(EncodeError::IdNotAllowed));
        assert_eq!(vfio.encode(2, 0x800), VFIO.encode(2, 0x800));
        assert_eq!(vfio.decode(u64::MAX - 4095), VFIO.decode(u64::MAX - 4095));
    }
}
