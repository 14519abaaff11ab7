// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pools: `POOL_CREATE` ([`check_pool`]), how a pool's VMA is filled ([`plan_pool_map`]), its
//! faults ([`fault_window`], [`huge_fault_chunk`]), `POOL_CHUNK` ([`check_chunk`]) and
//! `POOL_EXPORT` ([`check_export`]).

use super::super::codec::{PAGE_SHIFT, PAGE_SIZE};
use super::super::ioctl::{
    PoolChunk, PoolCreate, PoolExport, CACHE_WB, CACHE_WC, DEFAULT_FAULT_AROUND, EXPORT_FLAGS,
    EXPORT_READONLY, HUGE_CHUNK_PAGES, MAX_BUF_SIZE, MAX_CONTIG_CHUNK_PAGES, MAX_FAULT_AROUND,
    MAX_POOL_BYTES, MIN_BUF_SIZE, POOL_CONTIG, POOL_HUGE, POOL_LAZY,
};
#[cfg(doc)]
use super::plan_mmap;
use super::{pages_for, PlanError};
use core::ops::Range;

/// How a pool's memory is allocated and mapped ([`PoolCreate::flags`]).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_pool, PoolKind};
/// let req = PoolCreate { buf_size: 2048, buf_count: 32, flags: POOL_CONTIG, ..Default::default() };
/// assert_eq!(check_pool(&req).unwrap().kind, PoolKind::Contig);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Single pages, all inserted at `mmap` (`vm_insert_pages`).
    Eager,
    /// Single pages, inserted by the `.fault` handler, up to `fault_around` per fault.
    Lazy,
    /// Physically contiguous chunks, mapped whole at `mmap` (`remap_pfn_range`).
    Contig,
    /// 2 MiB chunks, one PMD entry per fault (`huge_fault`, `vmf_insert_pfn_pmd`).
    Huge,
}

impl PoolKind {
    /// Whether the pool is mapped by page frame number (`VM_PFNMAP`), not by `struct page`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::PoolKind;
    /// assert!(PoolKind::Huge.is_pfn_map());
    /// assert!(!PoolKind::Lazy.is_pfn_map());
    /// ```
    pub const fn is_pfn_map(self) -> bool {
        matches!(self, PoolKind::Contig | PoolKind::Huge)
    }

    /// The kind a `PoolCreate::flags` (or `PoolInfo::flags`) value names: no bit for eager,
    /// one kind bit for the others; `None` for unknown bits or more than one kind.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{POOL_CONTIG, POOL_HUGE, POOL_LAZY};
    /// use pktmap_abi::plan::PoolKind;
    /// assert_eq!(PoolKind::from_flags(0), Some(PoolKind::Eager));
    /// assert_eq!(PoolKind::from_flags(POOL_LAZY), Some(PoolKind::Lazy));
    /// assert_eq!(PoolKind::from_flags(POOL_CONTIG | POOL_HUGE), None);
    /// assert_eq!(PoolKind::from_flags(8), None);
    /// ```
    pub const fn from_flags(flags: u32) -> Option<PoolKind> {
        match flags {
            0 => Some(PoolKind::Eager),
            POOL_LAZY => Some(PoolKind::Lazy),
            POOL_CONTIG => Some(PoolKind::Contig),
            POOL_HUGE => Some(PoolKind::Huge),
            _ => None,
        }
    }

    /// The `PoolCreate::flags` bit of this kind (0 for eager).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::PoolKind;
    /// assert_eq!(PoolKind::Huge.flag(), POOL_HUGE);
    /// let req = PoolCreate { flags: PoolKind::Eager.flag(), ..Default::default() };
    /// assert_eq!(req.flags, 0);
    /// ```
    pub const fn flag(self) -> u32 {
        match self {
            PoolKind::Eager => 0,
            PoolKind::Lazy => POOL_LAZY,
            PoolKind::Contig => POOL_CONTIG,
            PoolKind::Huge => POOL_HUGE,
        }
    }
}

/// A pool's cache attribute ([`PoolCreate::cache`]).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, CACHE_WC, POOL_HUGE};
/// use pktmap_abi::plan::{check_pool, Cache};
/// let req = PoolCreate { buf_size: 4096, buf_count: 512, flags: POOL_HUGE, cache: CACHE_WC, ..Default::default() };
/// assert_eq!(check_pool(&req).unwrap().cache, Cache::WriteCombine);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cache {
    /// Ordinary cached memory ([`CACHE_WB`]).
    WriteBack,
    /// Write-combined memory ([`CACHE_WC`]).
    WriteCombine,
}

impl Cache {
    /// The `PoolCreate::cache` value.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::CACHE_WC;
    /// use pktmap_abi::plan::Cache;
    /// assert_eq!(Cache::WriteCombine.value(), CACHE_WC);
    /// ```
    pub const fn value(self) -> u32 {
        match self {
            Cache::WriteBack => CACHE_WB,
            Cache::WriteCombine => CACHE_WC,
        }
    }
}

/// A validated pool: what [`check_pool`] accepted.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::check_pool;
/// // 48 KiB of buffers, contiguous: one chunk of the next power of two, 16 pages.
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 12, flags: POOL_CONTIG, ..Default::default() })?;
/// assert_eq!((g.pages, g.chunk_pages, g.buf_count), (16, 16, 12));
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeometry {
    /// Bytes per buffer.
    pub buf_size: u32,
    /// Number of buffers.
    pub buf_count: u32,
    /// Size in pages: the buffers' bytes rounded up to whole chunks.
    pub pages: u64,
    /// How it is allocated and mapped.
    pub kind: PoolKind,
    /// Pages per fault for a lazy pool (1..=[`MAX_FAULT_AROUND`], a power of two); 0 for the
    /// other kinds.
    pub fault_around: u32,
    /// Its cache attribute.
    pub cache: Cache,
    /// Pages per physically contiguous chunk, a power of two (1 for eager and lazy pools);
    /// `pages` is a multiple of it.
    pub chunk_pages: u64,
}

impl PoolGeometry {
    /// The buddy-allocator order of one chunk (`chunk_pages == 1 << order`).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::check_pool;
    /// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 512, flags: POOL_HUGE, ..Default::default() })?;
    /// assert_eq!(g.chunk_order(), 9); // 2 MiB
    /// # Ok::<(), pktmap_abi::plan::PlanError>(())
    /// ```
    pub const fn chunk_order(&self) -> u32 {
        self.chunk_pages.trailing_zeros()
    }

    /// The number of chunks.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{PoolCreate, POOL_HUGE};
    /// use pktmap_abi::plan::check_pool;
    /// // 5 MiB of buffers round up to three 2 MiB chunks.
    /// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 1280, flags: POOL_HUGE, ..Default::default() })?;
    /// assert_eq!((g.chunks(), g.pages), (3, 1536));
    /// # Ok::<(), pktmap_abi::plan::PlanError>(())
    /// ```
    pub const fn chunks(&self) -> u64 {
        // `chunk_pages` is never 0 (a power of two by construction).
        match self.pages.checked_div(self.chunk_pages) {
            Some(n) => n,
            None => 0,
        }
    }
}

/// Checks a [`PoolCreate`] before anything is allocated.
///
/// Contiguous chunks are as large as the pool rounded up to a power of two, at most
/// [`MAX_CONTIG_CHUNK_PAGES`]; 2 MiB pools round up to whole 2 MiB chunks.
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for a buffer size that is not a power of two in
/// `256..=65536`, a zero count, unknown flags or more than one kind, a `fault_around` that is
/// not 0 or a power of two up to 512 on a lazy pool (or not 0 on another), an unknown cache
/// attribute or write-combining on a pool of single pages, a non-zero `reserved`, or a pool
/// over [`MAX_POOL_BYTES`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, CACHE_WC, POOL_HUGE, POOL_LAZY};
/// use pktmap_abi::plan::{check_pool, PlanError, PoolKind};
/// let req = PoolCreate { buf_size: 2048, buf_count: 3, flags: POOL_LAZY, ..Default::default() };
/// let g = check_pool(&req).unwrap();
/// assert_eq!((g.pages, g.kind, g.fault_around), (2, PoolKind::Lazy, 16));
/// let huge = PoolCreate { buf_size: 2048, buf_count: 1024, flags: POOL_HUGE, cache: CACHE_WC, ..req };
/// assert_eq!((check_pool(&huge).unwrap().pages, check_pool(&huge).unwrap().chunk_pages), (512, 512));
/// let bad = PoolCreate { buf_size: 1000, ..req };
/// assert_eq!(check_pool(&bad), Err(PlanError::BadArgument));
/// ```
pub fn check_pool(req: &PoolCreate) -> Result<PoolGeometry, PlanError> {
    let size_ok =
        req.buf_size.is_power_of_two() && (MIN_BUF_SIZE..=MAX_BUF_SIZE).contains(&req.buf_size);
    if !size_ok || req.buf_count == 0 || req.reserved != 0 {
        return Err(PlanError::BadArgument);
    }
    let kind = PoolKind::from_flags(req.flags).ok_or(PlanError::BadArgument)?;
    let fault_around = match (kind, req.fault_around) {
        (PoolKind::Lazy, 0) => DEFAULT_FAULT_AROUND,
        (PoolKind::Lazy, n) if n.is_power_of_two() && n <= MAX_FAULT_AROUND => n,
        (_, 0) => 0,
        _ => return Err(PlanError::BadArgument),
    };
    let cache = match (req.cache, kind.is_pfn_map()) {
        (CACHE_WB, _) => Cache::WriteBack,
        (CACHE_WC, true) => Cache::WriteCombine,
        _ => return Err(PlanError::BadArgument),
    };
    let bytes = u64::from(req.buf_size)
        .checked_mul(u64::from(req.buf_count))
        .ok_or(PlanError::BadArgument)?;
    if bytes > MAX_POOL_BYTES {
        return Err(PlanError::BadArgument);
    }
    let pages = pages_for(bytes).ok_or(PlanError::BadArgument)?;
    let chunk_pages = match kind {
        PoolKind::Eager | PoolKind::Lazy => 1,
        PoolKind::Huge => u64::from(HUGE_CHUNK_PAGES),
        PoolKind::Contig => pages
            .checked_next_power_of_two()
            .ok_or(PlanError::BadArgument)?
            .min(u64::from(MAX_CONTIG_CHUNK_PAGES)),
    };
    // Whole chunks; MAX_POOL_BYTES is a multiple of every chunk size, so this stays in bounds,
    // and the check keeps it so if either constant changes.
    let pages = pages
        .checked_next_multiple_of(chunk_pages)
        .ok_or(PlanError::BadArgument)?;
    if pages > MAX_POOL_BYTES >> PAGE_SHIFT {
        return Err(PlanError::BadArgument);
    }
    Ok(PoolGeometry {
        buf_size: req.buf_size,
        buf_count: req.buf_count,
        pages,
        kind,
        fault_around,
        cache,
        chunk_pages,
    })
}

/// How the driver fills a pool's VMA, decided by [`plan_pool_map`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_LAZY};
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PoolFill, PoolMapRequest};
/// let req = PoolCreate { buf_size: 2048, buf_count: 64, flags: POOL_LAZY, fault_around: 4, ..Default::default() };
/// let map = PoolMapRequest { may_share: true, write: true, read_only: false, populate: false };
/// assert_eq!(plan_pool_map(&check_pool(&req)?, &map), Ok(PoolFill::Fault { around: 4 }));
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolFill {
    /// Insert every page at `mmap` (`vm_insert_pages`): an eager pool, and a lazy pool mapped
    /// with [`MMAP_POPULATE`](super::MMAP_POPULATE) (whose pages, if a later `madvise` zaps
    /// them, come back by faults of its `fault_around`).
    Pages,
    /// Insert `around` pages per `.fault` (`vm_insert_pages` of the [`fault_window`]).
    Fault {
        /// Pages per fault.
        around: u32,
    },
    /// Map every chunk at `mmap` (`remap_pfn_range`).
    Remap,
    /// Map 2 MiB per fault where [`huge_fault_chunk`] allows, else 4 KiB (`vmf_insert_pfn`).
    HugeFault,
}

/// A pool `mmap` as the VMA describes it, beyond what [`plan_mmap`] checked.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::PoolCreate;
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PlanError, PoolMapRequest};
/// let g = check_pool(&PoolCreate { buf_size: 2048, buf_count: 4, ..Default::default() })?;
/// // Through a read-only pool file: shared read-only maps, writable does not.
/// let ro = PoolMapRequest { may_share: true, write: false, read_only: true, populate: false };
/// assert!(plan_pool_map(&g, &ro).is_ok());
/// let rw = PoolMapRequest { write: true, ..ro };
/// assert_eq!(plan_pool_map(&g, &rw), Err(PlanError::ReadOnly));
/// # Ok::<(), PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolMapRequest {
    /// `VM_MAYSHARE`: the mapping is `MAP_SHARED` (a read-only file's shared mapping has
    /// `VM_MAYSHARE` without `VM_SHARED`).
    pub may_share: bool,
    /// `VM_WRITE`.
    pub write: bool,
    /// The file it is mapped through is a read-only pool file descriptor.
    pub read_only: bool,
    /// The offset asked for every page now ([`MMAP_POPULATE`](super::MMAP_POPULATE),
    /// [`Plan::populate`](super::Plan::populate)).
    pub populate: bool,
}

/// Decides how a pool's VMA is filled.
///
/// # Errors
/// [`PlanError::ReadOnly`] (`EPERM`) for a writable or a private (copy-on-write, so writable)
/// mapping through a read-only pool file; [`PlanError::PrivateMapping`] (`EINVAL`) for a
/// `MAP_PRIVATE` mapping of a contiguous or 2 MiB pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_pool, plan_pool_map, PlanError, PoolFill, PoolMapRequest};
/// let g = check_pool(&PoolCreate { buf_size: 2048, buf_count: 64, flags: POOL_CONTIG, ..Default::default() }).unwrap();
/// let shared = PoolMapRequest { may_share: true, write: true, read_only: false, populate: false };
/// assert_eq!(plan_pool_map(&g, &shared), Ok(PoolFill::Remap));
/// let private = PoolMapRequest { may_share: false, ..shared };
/// assert_eq!(plan_pool_map(&g, &private), Err(PlanError::PrivateMapping));
/// ```
pub fn plan_pool_map(g: &PoolGeometry, req: &PoolMapRequest) -> Result<PoolFill, PlanError> {
    if req.read_only && (req.write || !req.may_share) {
        return Err(PlanError::ReadOnly);
    }
    if g.kind.is_pfn_map() && !req.may_share {
        return Err(PlanError::PrivateMapping);
    }
    Ok(match g.kind {
        PoolKind::Eager => PoolFill::Pages,
        PoolKind::Lazy if req.populate => PoolFill::Pages,
        PoolKind::Lazy => PoolFill::Fault {
            around: g.fault_around,
        },
        PoolKind::Contig => PoolFill::Remap,
        PoolKind::Huge => PoolFill::HugeFault,
    })
}

/// The pool pages one lazy fault maps: the `around`-aligned window of pool pages that holds
/// `index`, clipped to the pages `vma` of the faulting VMA (pool page indices) and to the
/// pool's `pool_pages`.
///
/// `None` if `index` itself is outside either (the fault is `SIGBUS`) or `around` is not a
/// power of two.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::fault_window;
/// assert_eq!(fault_window(21, 16, 0..64, 64), Some(16..32));
/// assert_eq!(fault_window(21, 16, 18..64, 64), Some(18..32));
/// assert_eq!(fault_window(21, 1, 0..64, 64), Some(21..22));
/// assert_eq!(fault_window(70, 16, 0..80, 64), None);
/// ```
pub fn fault_window(
    index: u64,
    around: u32,
    vma: Range<u64>,
    pool_pages: u64,
) -> Option<Range<u64>> {
    if !around.is_power_of_two() || !vma.contains(&index) || index >= pool_pages {
        return None;
    }
    // A power of two, so `mask` is its low bits.
    let mask = u64::from(around).wrapping_sub(1);
    let start = (index & !mask).max(vma.start);
    let end = (index | mask)
        .saturating_add(1)
        .min(vma.end)
        .min(pool_pages);
    Some(start..end)
}

/// Bytes one PMD entry maps (x86-64): 2 MiB.
pub const PMD_SIZE: u64 = 2 << 20;

/// The chunk of a 2 MiB pool one PMD entry can map for a fault at `addr`, or `None` when the
/// fault must fall back to a 4 KiB entry.
///
/// `index` is the pool page `addr` maps and `vma` the faulting VMA's address range. A PMD
/// entry maps the 2 MiB-aligned block around `addr`; it may only when the whole block lies in
/// the VMA and starts at a chunk's first page (so the 512 pages are one chunk, in order): a
/// `FIXED` address that is not 2 MiB-aligned, or a VMA split or trimmed off the 2 MiB grid,
/// falls back.
///
/// # Examples
/// ```
/// use pktmap_abi::plan::huge_fault_chunk;
/// let mib = 1 << 20;
/// // An aligned VMA: the fault at +3 MiB (page 768) maps chunk 1 by one PMD.
/// assert_eq!(huge_fault_chunk(64 * mib + 3 * mib, 768, 64 * mib..72 * mib, 512), Some(1));
/// // The same pool at an address 4 KiB off the grid: never.
/// assert_eq!(huge_fault_chunk(64 * mib + 3 * mib, 767, 64 * mib - 4096..72 * mib, 512), None);
/// ```
pub fn huge_fault_chunk(addr: u64, index: u64, vma: Range<u64>, chunk_pages: u64) -> Option<u64> {
    let block = addr & !(PMD_SIZE - 1);
    let block_end = block.checked_add(PMD_SIZE)?;
    if block < vma.start || block_end > vma.end || chunk_pages != PMD_SIZE >> PAGE_SHIFT {
        return None;
    }
    // `block <= addr` (it is `addr` with low bits cleared).
    let first = index.checked_sub(addr.wrapping_sub(block) >> PAGE_SHIFT)?;
    // `chunk_pages` is 512 here (checked above), never 0.
    if first.checked_rem(chunk_pages)? != 0 {
        return None;
    }
    first.checked_div(chunk_pages)
}

/// What the driver reports for an accepted [`PoolChunk`] query: chunk `index` of `bytes`
/// bytes; `target` is what the lookup handed back with the pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolChunk, PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_chunk, check_pool, ChunkPlan};
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 16, flags: POOL_CONTIG, ..Default::default() })?;
/// let q = PoolChunk { id: 3, index: 0, ..Default::default() };
/// let plan = check_chunk(&q, true, |id| Some((g, id)))?;
/// assert_eq!(plan, ChunkPlan { index: 0, bytes: 64 << 10, target: 3 });
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkPlan<T> {
    /// The chunk index.
    pub index: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// What the lookup returned with the pool.
    pub target: T,
}

/// Checks a [`PoolChunk`] query.
///
/// `lookup(id)` describes the pool and hands back `T` (the kernel: its own reference to the
/// pool), or `None` if there is none, as for [`plan_mmap`]; it is not called for an
/// unprivileged caller.
///
/// # Errors
/// [`PlanError::NotPrivileged`] (`EPERM`) without `CAP_SYS_ADMIN`;
/// [`PlanError::UnknownResource`] (`EINVAL`) for an unknown pool; [`PlanError::BadArgument`]
/// (`EINVAL`) for an index past the last chunk.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolChunk, PoolCreate, POOL_HUGE};
/// use pktmap_abi::plan::{check_chunk, check_pool, PlanError};
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 1024, flags: POOL_HUGE, ..Default::default() }).unwrap();
/// let q = PoolChunk { id: 1, index: 1, ..Default::default() };
/// let plan = check_chunk(&q, true, |_| Some((g, ()))).unwrap();
/// assert_eq!((plan.index, plan.bytes), (1, 2 << 20));
/// assert_eq!(check_chunk(&q, false, |_| Some((g, ()))), Err(PlanError::NotPrivileged));
/// let past = PoolChunk { index: 2, ..q };
/// assert_eq!(check_chunk(&past, true, |_| Some((g, ()))), Err(PlanError::BadArgument));
/// ```
pub fn check_chunk<T>(
    req: &PoolChunk,
    privileged: bool,
    lookup: impl FnOnce(u32) -> Option<(PoolGeometry, T)>,
) -> Result<ChunkPlan<T>, PlanError> {
    if !privileged {
        return Err(PlanError::NotPrivileged);
    }
    let (g, target) = lookup(req.id).ok_or(PlanError::UnknownResource)?;
    let index = u64::from(req.index);
    if index >= g.chunks() {
        return Err(PlanError::BadArgument);
    }
    let bytes = g
        .chunk_pages
        .checked_mul(PAGE_SIZE)
        .ok_or(PlanError::BadArgument)?;
    Ok(ChunkPlan {
        index,
        bytes,
        target,
    })
}

/// Checks a [`PoolExport`] on an open file that is `readable` (opened `O_RDONLY` or `O_RDWR`)
/// and returns whether the exported file is read-only.
///
/// An export never grants more than the open it comes from: a pool file reads and maps the
/// pool, which a write-only open cannot, so a write-only open cannot export at all (the
/// writable open `check_ioctl` requires is a read-write one here).
///
/// # Errors
/// [`PlanError::BadArgument`] (`EINVAL`) for unknown flags or a non-zero `reserved`;
/// [`PlanError::NotReadable`] (`EBADF`) on a write-only open.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolExport, EXPORT_READONLY};
/// use pktmap_abi::plan::{check_export, PlanError};
/// assert_eq!(check_export(&PoolExport { id: 1, flags: EXPORT_READONLY, ..Default::default() }, true), Ok(true));
/// assert!(check_export(&PoolExport { id: 1, flags: 2, ..Default::default() }, true).is_err());
/// assert_eq!(check_export(&PoolExport { id: 1, ..Default::default() }, false), Err(PlanError::NotReadable));
/// ```
pub fn check_export(req: &PoolExport, readable: bool) -> Result<bool, PlanError> {
    if req.flags & !EXPORT_FLAGS != 0 || req.reserved != 0 {
        return Err(PlanError::BadArgument);
    }
    if !readable {
        return Err(PlanError::NotReadable);
    }
    Ok(req.flags & EXPORT_READONLY != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::errno;

    #[test]
    fn pool_geometry() {
        let ok = |size, count, flags| {
            check_pool(&PoolCreate {
                buf_size: size,
                buf_count: count,
                flags,
                ..PoolCreate::default()
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
            (2048, 1, 8),
            (2048, 1, POOL_LAZY | POOL_CONTIG),
            (2048, 1, POOL_CONTIG | POOL_HUGE),
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

    fn pool(
        flags: u32,
        fault_around: u32,
        cache: u32,
        bytes: u32,
    ) -> Result<PoolGeometry, PlanError> {
        check_pool(&PoolCreate {
            buf_size: 4096,
            buf_count: bytes / 4096,
            flags,
            fault_around,
            cache,
            ..PoolCreate::default()
        })
    }

    #[test]
    fn pool_kinds_and_chunks() {
        let g = pool(0, 0, CACHE_WB, 8192).unwrap();
        assert_eq!(
            (g.kind, g.chunk_pages, g.fault_around),
            (PoolKind::Eager, 1, 0)
        );
        let g = pool(POOL_LAZY, 0, CACHE_WB, 8192).unwrap();
        assert_eq!((g.kind, g.fault_around), (PoolKind::Lazy, 16));
        assert_eq!(pool(POOL_LAZY, 1, CACHE_WB, 8192).unwrap().fault_around, 1);
        assert_eq!(
            pool(POOL_LAZY, 512, CACHE_WB, 8192).unwrap().fault_around,
            512
        );
        // Contiguous: one chunk of the pool rounded up to a power of two, at most 2 MiB.
        let g = pool(POOL_CONTIG, 0, CACHE_WB, 3 * 4096).unwrap();
        assert_eq!(
            (g.pages, g.chunk_pages, g.chunks(), g.chunk_order()),
            (4, 4, 1, 2)
        );
        let g = pool(POOL_CONTIG, 0, CACHE_WC, 6 << 20).unwrap();
        assert_eq!((g.pages, g.chunk_pages, g.chunks()), (1536, 512, 3));
        assert_eq!(g.cache, Cache::WriteCombine);
        // 2 MiB pools round up to whole 2 MiB chunks.
        let g = pool(POOL_HUGE, 0, CACHE_WB, 4096).unwrap();
        assert_eq!((g.pages, g.chunk_pages, g.chunk_order()), (512, 512, 9));
        let g = pool(POOL_HUGE, 0, CACHE_WB, 256 << 20).unwrap();
        assert_eq!(g.chunks(), 128);
    }

    #[test]
    fn pool_fields_are_strict() {
        for (flags, around, cache) in [
            (POOL_LAZY, 3, CACHE_WB),
            (POOL_LAZY, 1024, CACHE_WB),
            (0, 16, CACHE_WB),
            (POOL_CONTIG, 1, CACHE_WB),
            (POOL_HUGE, 16, CACHE_WB),
            (0, 0, CACHE_WC),
            (POOL_LAZY, 0, CACHE_WC),
            (POOL_CONTIG, 0, 2),
        ] {
            assert_eq!(
                pool(flags, around, cache, 8192),
                Err(PlanError::BadArgument),
                "{flags} {around} {cache}"
            );
        }
        let reserved = PoolCreate {
            buf_size: 4096,
            buf_count: 1,
            reserved: 1,
            ..PoolCreate::default()
        };
        assert_eq!(check_pool(&reserved), Err(PlanError::BadArgument));
    }

    #[test]
    fn pool_map_fill_and_refusals() {
        let rw = PoolMapRequest {
            may_share: true,
            write: true,
            read_only: false,
            populate: false,
        };
        let private = PoolMapRequest {
            may_share: false,
            ..rw
        };
        let fill = |flags| plan_pool_map(&pool(flags, 0, CACHE_WB, 8192).unwrap(), &rw);
        assert_eq!(fill(0), Ok(PoolFill::Pages));
        assert_eq!(fill(POOL_LAZY), Ok(PoolFill::Fault { around: 16 }));
        assert_eq!(fill(POOL_CONTIG), Ok(PoolFill::Remap));
        assert_eq!(fill(POOL_HUGE), Ok(PoolFill::HugeFault));
        // Asked for every page now: a lazy pool is inserted whole; the others fill as ever.
        let now = PoolMapRequest {
            populate: true,
            ..rw
        };
        let fill_now = |flags| plan_pool_map(&pool(flags, 0, CACHE_WB, 8192).unwrap(), &now);
        assert_eq!(fill_now(POOL_LAZY), Ok(PoolFill::Pages));
        assert_eq!(fill_now(0), Ok(PoolFill::Pages));
        assert_eq!(fill_now(POOL_CONTIG), Ok(PoolFill::Remap));
        assert_eq!(fill_now(POOL_HUGE), Ok(PoolFill::HugeFault));
        for flags in [POOL_CONTIG, POOL_HUGE] {
            let g = pool(flags, 0, CACHE_WB, 8192).unwrap();
            assert_eq!(plan_pool_map(&g, &private), Err(PlanError::PrivateMapping));
        }
        let g = pool(0, 0, CACHE_WB, 8192).unwrap();
        assert_eq!(plan_pool_map(&g, &private), Ok(PoolFill::Pages));
        let ro = PoolMapRequest {
            may_share: true,
            write: false,
            read_only: true,
            populate: false,
        };
        assert_eq!(plan_pool_map(&g, &ro), Ok(PoolFill::Pages));
        assert_eq!(
            plan_pool_map(&g, &PoolMapRequest { write: true, ..ro }),
            Err(PlanError::ReadOnly)
        );
        assert_eq!(
            plan_pool_map(
                &g,
                &PoolMapRequest {
                    may_share: false,
                    ..ro
                }
            ),
            Err(PlanError::ReadOnly)
        );
        assert_eq!(PlanError::PrivateMapping.errno(), errno::EINVAL);
    }

    #[test]
    fn fault_windows() {
        assert_eq!(fault_window(0, 16, 0..4, 4), Some(0..4));
        assert_eq!(fault_window(15, 16, 0..64, 64), Some(0..16));
        assert_eq!(fault_window(16, 16, 0..64, 64), Some(16..32));
        assert_eq!(fault_window(30, 16, 0..20, 64), None);
        assert_eq!(fault_window(19, 16, 0..20, 64), Some(16..20));
        assert_eq!(fault_window(5, 3, 0..20, 64), None);
        assert_eq!(
            fault_window(u64::MAX - 1, 512, 0..u64::MAX, u64::MAX),
            Some(u64::MAX - 511..u64::MAX)
        );
    }

    #[test]
    fn huge_fault_blocks() {
        let mib: u64 = 1 << 20;
        let vma = 2 * PMD_SIZE..6 * PMD_SIZE;
        // Every page of an aligned VMA maps by its chunk.
        for (page, chunk) in [(0, 0), (511, 0), (512, 1), (2047, 3)] {
            let addr = vma.start + page * 4096;
            assert_eq!(huge_fault_chunk(addr, page, vma.clone(), 512), Some(chunk));
        }
        // A VMA that starts off the grid never does.
        assert_eq!(
            huge_fault_chunk(4 * mib + 4096, 0, 4 * mib + 4096..8 * mib, 512),
            None
        );
        // A VMA split off the pool's start: grid-aligned blocks of it still do, if the pool
        // page at the block start opens a chunk.
        assert_eq!(
            huge_fault_chunk(6 * mib, 512, 6 * mib..8 * mib, 512),
            Some(1)
        );
        assert_eq!(huge_fault_chunk(6 * mib, 256, 6 * mib..8 * mib, 512), None);
        // A block that would run past the VMA's end, or a chunk that is not 2 MiB.
        assert_eq!(huge_fault_chunk(6 * mib, 512, 6 * mib..7 * mib, 512), None);
        assert_eq!(huge_fault_chunk(6 * mib, 512, 6 * mib..8 * mib, 256), None);
        assert_eq!(huge_fault_chunk(!4095, 0, 0..u64::MAX, 512), None);
    }

    #[test]
    fn chunk_and_export_checks() {
        let g = pool(POOL_CONTIG, 0, CACHE_WB, 4 << 20).unwrap();
        let q = |index| PoolChunk {
            id: 7,
            index,
            ..PoolChunk::default()
        };
        assert_eq!(
            check_chunk(&q(1), true, |id| (id == 7).then_some((g, id))),
            Ok(ChunkPlan {
                index: 1,
                bytes: 2 << 20,
                target: 7
            })
        );
        assert_eq!(
            check_chunk(&q(2), true, |_| Some((g, ()))),
            Err(PlanError::BadArgument)
        );
        assert_eq!(
            check_chunk(&q(0), true, |_| None::<(PoolGeometry, ())>),
            Err(PlanError::UnknownResource)
        );
        assert_eq!(
            check_chunk(&q(0), false, |_| -> Option<(PoolGeometry, ())> {
                panic!("looked up for an unprivileged caller")
            }),
            Err(PlanError::NotPrivileged)
        );
        assert_eq!(PlanError::NotPrivileged.errno(), errno::EPERM);
        let e = |flags, reserved| {
            check_export(
                &PoolExport {
                    id: 1,
                    flags,
                    fd: 0,
                    reserved,
                },
                true,
            )
        };
        let write_only = |flags| {
            check_export(
                &PoolExport {
                    id: 1,
                    flags,
                    fd: 0,
                    reserved: 0,
                },
                false,
            )
        };
        assert_eq!(write_only(0), Err(PlanError::NotReadable));
        assert_eq!(write_only(1), Err(PlanError::NotReadable));
        assert_eq!(PlanError::NotReadable.errno(), errno::EBADF);
        assert_eq!(e(0, 0), Ok(false));
        assert_eq!(e(1, 0), Ok(true));
        assert_eq!(e(2, 0), Err(PlanError::BadArgument));
        assert_eq!(e(0, 1), Err(PlanError::BadArgument));
    }
}
