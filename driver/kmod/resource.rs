// SPDX-License-Identifier: GPL-2.0

//! Pools and rings: their memory, allocated at `POOL_CREATE`/`RING_CREATE` against the device's
//! page budget and charged to the creator's memory cgroup, and freed with the last reference
//! (the open file's table, each mapping, and for a pool each ring that names it).
#![forbid(unsafe_code)]

use crate::abi::ioctl::PoolInfo;
use crate::abi::plan::{self, Cache, PoolGeometry};
use crate::device::{self, DeviceState};
use crate::sys::{chunk::Chunk, page::SharedPage, task};
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

/// How often (in pages) a long allocation checks whether its caller is being killed.
const KILL_CHECK_PAGES: usize = 64;

/// What a [`Resource`] is.
pub enum Kind {
    /// A packet-buffer pool.
    Pool(PoolGeometry),
    /// A descriptor ring of `entries` descriptors naming buffers of `pool` (id `pool_id` in
    /// the open file that made it); the ring keeps the pool alive.
    Ring {
        /// Number of descriptors.
        entries: u32,
        /// The pool's id.
        pool_id: u32,
        /// The flags it was made with: 0, or `RING_PACKET` (the packet layout).
        flags: u32,
        /// The pool.
        pool: Arc<Resource>,
    },
}

/// Where a resource's bytes live.
///
/// Pool kinds with other memory (physically contiguous, 2 MiB pages, ...) add a variant here
/// and answer [`page`](Self::page) and [`pages`](Self::pages) for it; `mmap` and the fault
/// handler (`mapping.rs`) decide how each variant is mapped.
pub enum Backing {
    /// Order-0 pages, each allocated on its own.
    Pages(KVVec<SharedPage>),
    /// Physically contiguous chunks of `chunk_pages` pages each (contiguous and 2 MiB pools),
    /// mapped by page frame number.
    Chunks {
        /// The chunks, in pool order.
        chunks: KVVec<Chunk>,
        /// Pages per chunk (a power of two).
        chunk_pages: usize,
    },
}

/// One page of a resource, for `pread`/`pwrite`.
pub enum PageRef<'a> {
    /// A single page.
    Shared(&'a SharedPage),
    /// A chunk and the byte offset of the page in it.
    Chunk(&'a Chunk, usize),
}

impl Backing {
    /// Allocates `n` zeroed, accounted order-0 pages, giving up with `EINTR` if the caller is
    /// killed meanwhile (everything allocated so far is freed on return).
    fn pages(n: usize) -> Result<Self> {
        let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for i in 0..n {
            if i % KILL_CHECK_PAGES == KILL_CHECK_PAGES - 1 && task::fatal_signal_pending() {
                return Err(EINTR);
            }
            v.push(SharedPage::new()?, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Backing::Pages(v))
    }

    /// Allocates `n / chunk_pages` physically contiguous chunks (`alloc_pages` of one order),
    /// write-combined if `wc`. The allocator gives `ENOMEM` when no free block of the order is
    /// left (fragmentation); everything allocated so far is freed on return, so there is never
    /// a partial pool.
    fn chunks(n: usize, chunk_pages: usize, order: u32, wc: bool) -> Result<Self> {
        let count = n.checked_div(chunk_pages).ok_or(EINVAL)?;
        let mut v = KVVec::with_capacity(count, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..count {
            if task::fatal_signal_pending() {
                return Err(EINTR);
            }
            v.push(Chunk::new(order, wc)?, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(Backing::Chunks {
            chunks: v,
            chunk_pages,
        })
    }

    /// Page `index` as a single page, if the resource has one there (pools of single pages and
    /// rings).
    pub fn page(&self, index: usize) -> Option<&SharedPage> {
        match self {
            Backing::Pages(v) => v.get(index),
            Backing::Chunks { .. } => None,
        }
    }

    /// The chunk that holds page `index`, and the page's index in it.
    pub fn chunk_of(&self, index: usize) -> Option<(&Chunk, usize)> {
        match self {
            Backing::Chunks {
                chunks,
                chunk_pages,
            } => Some((
                chunks.get(index.checked_div(*chunk_pages)?)?,
                index.checked_rem(*chunk_pages)?,
            )),
            Backing::Pages(_) => None,
        }
    }

    /// Page `index`, for a copy.
    pub fn page_ref(&self, index: usize) -> Option<PageRef<'_>> {
        match self {
            Backing::Pages(v) => v.get(index).map(PageRef::Shared),
            Backing::Chunks { .. } => self
                .chunk_of(index)
                .map(|(c, i)| PageRef::Chunk(c, i * PAGE_SIZE)),
        }
    }

    /// The page frame number of page `index` (chunked resources).
    pub fn pfn(&self, index: usize) -> Option<usize> {
        self.chunk_of(index).map(|(c, i)| c.pfn() + i)
    }

    /// The physical address of chunk `index` (a page of a pool of single pages).
    pub fn chunk_phys(&self, index: usize) -> Option<u64> {
        match self {
            Backing::Pages(v) => v.get(index).map(SharedPage::phys),
            Backing::Chunks { chunks, .. } => chunks.get(index).map(Chunk::phys),
        }
    }

    /// The size in pages.
    pub fn pages_len(&self) -> usize {
        match self {
            Backing::Pages(v) => v.len(),
            Backing::Chunks {
                chunks,
                chunk_pages,
            } => chunks.len() * chunk_pages,
        }
    }
}

/// A pool or a ring: the kernel side of what user space names by an `mmap` offset (the STATE
/// page is the device's, [`Target::State`]).
pub struct Resource {
    device: Arc<DeviceState>,
    /// What it is.
    pub kind: Kind,
    /// Its memory.
    pub backing: Backing,
}

impl Resource {
    /// Allocates a resource of `pages` pages against the device's page budget.
    ///
    /// # Errors
    /// `ENOSPC` past the budget, `ENOMEM`, `EINTR` if the caller is killed meanwhile.
    pub fn new(device: &Arc<DeviceState>, kind: Kind, pages: u64) -> Result<Arc<Self>> {
        let n = usize::try_from(pages).map_err(|_| ENOMEM)?;
        device.reserve(pages)?;
        let allocated = match &kind {
            Kind::Pool(g) if g.kind.is_pfn_map() => {
                let chunk_pages = usize::try_from(g.chunk_pages).map_err(|_| EINVAL);
                chunk_pages.and_then(|cp| {
                    Backing::chunks(n, cp, g.chunk_order(), g.cache == Cache::WriteCombine)
                })
            }
            _ => Backing::pages(n),
        };
        let backing = match allocated {
            Ok(b) => b,
            Err(e) => {
                device.unreserve(pages);
                return Err(e);
            }
        };
        // Counted before the `Resource` exists, so its `Drop` (even when `Arc::new` fails and
        // drops it) undoes exactly this and the reservation.
        device.update(|c| match &kind {
            Kind::Pool(_) => device::add(&c.pools, 1),
            Kind::Ring { .. } => device::add(&c.rings, 1),
        });
        let resource = Resource {
            device: device.clone(),
            kind,
            backing,
        };
        Ok(Arc::new(resource, GFP_KERNEL_ACCOUNT)?)
    }

    /// Its size in pages.
    pub fn pages(&self) -> u64 {
        self.backing.pages_len() as u64
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages() * PAGE_SIZE as u64
    }

    /// The pool's geometry, if it is one.
    pub fn geometry(&self) -> Option<PoolGeometry> {
        match self.kind {
            Kind::Pool(g) => Some(g),
            Kind::Ring { .. } => None,
        }
    }

    /// `info` filled in for this pool, mapped at `offset` (`POOL_INFO` through the device and
    /// through a pool file); `EINVAL` for a ring.
    pub fn pool_info(&self, mut info: PoolInfo, offset: u64) -> Result<PoolInfo> {
        let Kind::Pool(g) = self.kind else {
            return Err(EINVAL);
        };
        info.buf_size = g.buf_size;
        info.buf_count = g.buf_count;
        info.flags = g.kind.flag();
        info.bytes = self.bytes();
        info.mmap_offset = offset;
        info.fault_around = g.fault_around;
        info.cache = g.cache.value();
        info.chunk_bytes = g.chunk_pages * PAGE_SIZE as u64;
        Ok(info)
    }

    /// What `plan_mmap`/`plan_io` need to know about it (the plan's [`plan::Resource`]).
    pub fn planned(&self) -> plan::Resource {
        match self.kind {
            Kind::Pool(_) => plan::Resource::Pool {
                pages: self.pages(),
            },
            Kind::Ring { .. } => plan::Resource::Ring {
                pages: self.pages(),
            },
        }
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        let pages = self.pages();
        let is_pool = matches!(self.kind, Kind::Pool(_));
        self.device.update(|c| {
            if is_pool {
                device::sub(&c.pools, 1, "pools");
            } else {
                device::sub(&c.rings, 1, "rings");
            }
            device::sub(&c.pages_allocated, pages, "pages_allocated");
        });
    }
}

/// What an offset names: the STATE page, a pool or a ring.
#[derive(Clone)]
pub enum Target {
    /// The device's STATE page.
    State,
    /// A pool or ring.
    Resource(Arc<Resource>),
}

impl Target {
    /// Page `index` of the target as a single page.
    pub fn page<'a>(&'a self, device: &'a DeviceState, index: usize) -> Option<&'a SharedPage> {
        match self {
            Target::State if index == 0 => Some(device.state_page()),
            Target::State => None,
            Target::Resource(b) => b.backing.page(index),
        }
    }

    /// Page `index` of the target, for a copy (single pages and chunks alike).
    pub fn page_ref<'a>(&'a self, device: &'a DeviceState, index: usize) -> Option<PageRef<'a>> {
        match self {
            Target::Resource(b) => b.backing.page_ref(index),
            Target::State => self.page(device, index).map(PageRef::Shared),
        }
    }
}
