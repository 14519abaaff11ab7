// SPDX-License-Identifier: GPL-2.0

//! Pools and rings: their memory, allocated at `POOL_CREATE`/`RING_CREATE` against the device's
//! page budget and charged to the creator's memory cgroup, and freed with the last reference
//! (the open file's table, each mapping, and for a pool each ring that names it).
#![forbid(unsafe_code)]

use crate::abi::plan::{PoolGeometry, Resource};
use crate::device::{self, Device};
use crate::sys::{page::SharedPage, task};
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

/// How often (in pages) a long allocation checks whether its caller is being killed.
const KILL_CHECK_PAGES: usize = 64;

/// What a [`Buffer`] is.
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
        /// The pool.
        pool: Arc<Buffer>,
    },
}

/// Where a buffer's bytes live.
///
/// Pool kinds with other memory (physically contiguous, 2 MiB pages, ...) add a variant here
/// and answer [`page`](Self::page) and [`pages`](Self::pages) for it; `mmap` and the fault
/// handler (`mapping.rs`) decide how each variant is mapped.
pub enum Backing {
    /// Order-0 pages, each allocated on its own.
    Pages(KVVec<SharedPage>),
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

    /// Page `index`, if the buffer has one there.
    pub fn page(&self, index: usize) -> Option<&SharedPage> {
        match self {
            Backing::Pages(v) => v.get(index),
        }
    }

    /// The size in pages.
    pub fn pages_len(&self) -> usize {
        match self {
            Backing::Pages(v) => v.len(),
        }
    }
}

/// A pool or a ring.
pub struct Buffer {
    device: Arc<Device>,
    /// What it is.
    pub kind: Kind,
    /// Its memory.
    pub backing: Backing,
}

impl Buffer {
    /// Allocates a buffer of `pages` pages against the device's page budget.
    ///
    /// # Errors
    /// `ENOSPC` past the budget, `ENOMEM`, `EINTR` if the caller is killed meanwhile.
    pub fn new(device: &Arc<Device>, kind: Kind, pages: u64) -> Result<Arc<Self>> {
        let n = usize::try_from(pages).map_err(|_| ENOMEM)?;
        device.reserve(pages)?;
        let backing = match Backing::pages(n) {
            Ok(b) => b,
            Err(e) => {
                device.unreserve(pages);
                return Err(e);
            }
        };
        // Counted before the `Buffer` exists, so its `Drop` (even when `Arc::new` fails and
        // drops it) undoes exactly this and the reservation.
        device.update(|c| match &kind {
            Kind::Pool(_) => device::add(&c.pools, 1),
            Kind::Ring { .. } => device::add(&c.rings, 1),
        });
        let buffer = Buffer {
            device: device.clone(),
            kind,
            backing,
        };
        Ok(Arc::new(buffer, GFP_KERNEL)?)
    }

    /// Its size in pages.
    pub fn pages(&self) -> u64 {
        self.backing.pages_len() as u64
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages() * PAGE_SIZE as u64
    }

    /// What `plan_mmap`/`plan_io` need to know about it.
    pub fn resource(&self) -> Resource {
        match self.kind {
            Kind::Pool(g) => Resource::Pool {
                pages: self.pages(),
                lazy: g.lazy,
            },
            Kind::Ring { .. } => Resource::Ring {
                pages: self.pages(),
            },
        }
    }
}

impl Drop for Buffer {
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
    Buffer(Arc<Buffer>),
}

impl Target {
    /// Page `index` of the target.
    pub fn page<'a>(&'a self, device: &'a Device, index: usize) -> Option<&'a SharedPage> {
        match self {
            Target::State if index == 0 => Some(device.state_page()),
            Target::State => None,
            Target::Buffer(b) => b.backing.page(index),
        }
    }
}
