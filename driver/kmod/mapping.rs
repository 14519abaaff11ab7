// SPDX-License-Identifier: GPL-2.0

//! `mmap` of a resource, and the per-mapping hooks: `.open`, `.close`, `.fault` (lazy pools,
//! with fault-around), and for page-frame-mapped pools (contiguous, 2 MiB) `.fault` and
//! `.huge_fault`.
#![forbid(unsafe_code)]

use crate::abi::plan::{self, Cache, MmapRequest, Plan, PoolFill, PoolKind, PoolMapRequest};
use crate::device::{self, DeviceState, Event};
use crate::plan_err;
use crate::resource::{Resource, Target};
use crate::sys::{
    mm::{
        pfnmap::{AreaAlign, PfnFault, VmaNewPfnExt},
        virt::{VmaMixedMapExt, VmaNewExt, VmaRefExt},
    },
    vm_ops::{self, Mapped, VmFault, VmOps},
};
use kernel::{
    mm::virt::{flags, VmaNew},
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
};

/// The state behind the VMAs of one `mmap` (each VMA a split or fork makes of it shares it):
/// what they map, the `vm_pgoff` at `mmap` time, for lazy pools the pages each fault maps,
/// and for page-frame maps the lock their faults insert under. Not the library's
/// `pktmap::resource::Mapping`, which is user space's handle of a mapping.
#[pin_data]
pub struct VmaState {
    device: Arc<DeviceState>,
    target: Target,
    /// The `vm_pgoff` user space passed, without the populate bit; a split VMA's own
    /// `vm_pgoff` moves with its start.
    base_pgoff: usize,
    /// Pages per lazy fault (for lazy pools; 1 otherwise, and unused).
    around: u32,
    /// One of these is held by a page-frame fault from its look at the page tables to its
    /// count, so two faults of one entry cannot both count it ([`VmaState::pfn_fault`],
    /// [`VmOps::huge_fault`]): the one of the entry's 2 MiB block of addresses
    /// ([`pfn_fault_lock`]), whether the entry maps 4 KiB or the whole block, so faults of
    /// different blocks (but for one block in [`PFN_FAULT_LOCKS`]) do not wait for each other.
    /// Shared by every VMA of the mapping (splits, forks); only faults of one `mm` can race
    /// for an entry.
    #[pin]
    pfn_faults: [Mutex<()>; PFN_FAULT_LOCKS],
}

/// Locks per mapping for page-frame faults (a power of two).
const PFN_FAULT_LOCKS: usize = 8;

/// The index of the `pfn_faults` lock of a fault at `address`: its 2 MiB block, striped.
fn pfn_fault_lock(address: usize) -> usize {
    (address >> 21) % PFN_FAULT_LOCKS
}

/// The `mmap` request `vma` makes.
pub fn request(vma: &VmaNew) -> MmapRequest {
    MmapRequest {
        pgoff: vma.pgoff() as u64,
        len: (vma.end() - vma.start()) as u64,
        write: vma.writable(),
        shared: vma.shared(),
        exec: vma.executable(),
    }
}

/// Where `get_unmapped_area` places a map of `pool`: 2 MiB-aligned for 2 MiB pools.
pub fn area_align(pool: Option<&Resource>) -> AreaAlign {
    match pool.and_then(Resource::geometry) {
        Some(g) if g.kind == PoolKind::Huge => AreaAlign::Pmd,
        _ => AreaAlign::Page,
    }
}

/// Sets up the new VMA for an admitted `plan`, through the device or a pool file
/// (`read_only_file`: a read-only export).
///
/// Everything that can fail is done before pages are inserted, and the `attach` comes last,
/// so the VMA is never left with state that `.close` would not free; if inserting fails,
/// `mmap` fails and the kernel unmaps what was inserted. Page-frame entries hold no page
/// reference, so a contiguous pool's entries are removed here, before the pool's reference is
/// dropped ([`VmaPfnMap::zap_pages`](crate::sys::mm::pfnmap::VmaPfnMap::zap_pages)); `struct page` entries (eager pools) hold their own.
pub fn map(
    device: &Arc<DeviceState>,
    plan: Plan<Target>,
    vma: &VmaNew,
    read_only_file: bool,
) -> Result<Mapped> {
    let pages = usize::try_from(plan.pages).map_err(|_| EINVAL)?;
    let pgoff = usize::try_from(plan.pgoff).map_err(|_| EINVAL)?;
    let pool = match &plan.target {
        Target::Resource(b) => b.geometry(),
        Target::State => None,
    };
    let fill = match pool {
        Some(g) => {
            let req = PoolMapRequest {
                may_share: vma.may_share(),
                write: vma.writable(),
                read_only: read_only_file,
                populate: plan.populate,
            };
            plan::plan_pool_map(&g, &req).map_err(plan_err)?
        }
        // STATE and rings: every page at `mmap`.
        None => PoolFill::Pages,
    };
    // Pages per fault: a lazy pool's own, also when its pages were all inserted now (a
    // populate the request asked for) and a `madvise` zaps them later.
    let around = match (fill, pool) {
        (PoolFill::Fault { around }, _) => around,
        (_, Some(g)) if g.kind == PoolKind::Lazy => g.fault_around,
        _ => 1,
    };
    let wc = pool.is_some_and(|g| g.cache == Cache::WriteCombine);

    // The offset without the populate bit, which asked something of this `mmap` only.
    vma.set_pgoff(pgoff);
    // Allocate before touching the VMA, so nothing fails after pages are inserted.
    let mapping = Arc::pin_init(
        pin_init!(VmaState {
            device: device.clone(),
            target: plan.target,
            base_pgoff: pgoff,
            around,
            pfn_faults <- pin_init::pin_init_array_from_fn(|_| {
                new_mutex!((), "pktmap::mapping::pfn_faults")
            }),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;

    // VM_DONTEXPAND: `mremap` cannot grow the mapping past the resource. It also makes the VMA
    // `VM_SPECIAL`, which `.close` accounting depends on: when `->mmap` changed the flags,
    // `__mmap_new_file_vma` retries merging the new VMA into its neighbour and, if that
    // succeeds, frees it with `vm_area_free` *without* calling `.close` — `live_mappings`
    // and the `Arc<VmaState>` in `vm_private_data` would leak. `VM_SPECIAL` VMAs never merge.
    vma.set_dontexpand();
    // (upstream's `flags` has no `SPECIAL`; `VM_DONTEXPAND` is part of it)
    debug_assert!(vma.flags() & flags::DONTEXPAND != 0);
    // Read-only everywhere: a shared mapping made without write (and any STATE mapping, and
    // any mapping of a read-only pool file) can never gain it, and no mapping can become
    // executable. The plans already refused the requests these would fail for, so an error
    // here is a driver bug; answer EPERM.
    if plan.clear_maywrite || read_only_file {
        vma.try_clear_maywrite().map_err(|_| EPERM)?;
    }
    if plan.clear_mayexec {
        vma.try_clear_mayexec().map_err(|_| EPERM)?;
    }
    let count = |inserted: u64| {
        device.count_event(Event::PagesMapped, inserted);
        device.update(|c| device::add(&c.live_mappings, 1))
    };
    match fill {
        PoolFill::Pages => vm_ops::attach_mixedmap(vma, mapping, |mixed, m| {
            let all = (0..pages).filter_map(|i| m.target.page(device, i));
            mixed.vm_insert_pages(vma.start(), all)?;
            count(plan.pages);
            Ok(())
        }),
        PoolFill::Fault { .. } => vm_ops::attach_mixedmap(vma, mapping, |_, _| {
            count(0);
            Ok(())
        }),
        PoolFill::Remap => {
            let Target::Resource(b) = &mapping.target else {
                return Err(EINVAL);
            };
            let pfnmap = vma.set_pfnmap(wc)?;
            let mut index = 0;
            while index < pages {
                let remapped = b.backing.chunk_of(index).ok_or(EINVAL).and_then(|(c, _)| {
                    let n = c.pages().min(pages - index);
                    pfnmap.remap_chunk(index, c, n).map(|()| n)
                });
                match remapped {
                    Ok(n) => index += n,
                    Err(e) => {
                        // The chunks mapped so far lose their entries before `mapping` (and
                        // with it perhaps the pool's last reference: a concurrent
                        // POOL_DESTROY) is dropped; the kernel's own unmap of a failed
                        // `mmap` comes only after we return.
                        pfnmap.zap_pages(index);
                        return Err(e);
                    }
                }
            }
            count(plan.pages);
            Ok(vm_ops::attach_pfnmap(pfnmap, mapping))
        }
        PoolFill::HugeFault => {
            let pfnmap = vma.set_pfnmap(wc)?;
            count(0);
            Ok(vm_ops::attach_pfnmap(pfnmap, mapping))
        }
    }
}

impl VmaState {
    /// The pool or ring this maps.
    fn resource(&self) -> Result<&Arc<Resource>> {
        match &self.target {
            Target::Resource(b) => Ok(b),
            Target::State => Err(EFAULT),
        }
    }

    /// The index in the resource of the page a fault at `pgoff` wants.
    fn index(&self, pgoff: usize) -> Result<usize> {
        pgoff.checked_sub(self.base_pgoff).ok_or(EFAULT)
    }
}

/// Lazy pools (and lazy rings) fault pages into a mixed map; contiguous and 2 MiB pools fault
/// page frames into a PFN map, 2 MiB pools whole 2 MiB blocks where they can.
impl VmOps for VmaState {
    const HAS_FAULT: bool = true;
    const HAS_HUGE_FAULT: bool = true;

    fn open(this: ArcBorrow<'_, Self>) {
        this.device.update(|c| device::add(&c.live_mappings, 1));
    }

    fn close(this: ArcBorrow<'_, Self>) {
        this.device
            .update(|c| device::sub(&c.live_mappings, 1, "live_mappings"));
    }

    fn fault(this: ArcBorrow<'_, Self>, fault: &VmFault<'_>) -> Result {
        match fault.pfnmap() {
            Some(pfn) => Self::pfn_fault(this, fault, &pfn),
            None => Self::lazy_fault(this, fault),
        }
    }

    /// One 2 MiB entry where the whole 2 MiB block lies in the VMA and is one chunk
    /// ([`plan::huge_fault_chunk`]); else the fault falls back to 4 KiB entries. Also the
    /// write fault on a present, write-protected 2 MiB entry (`wp_huge_pmd`), which
    /// [`PfnFault::insert_pfn_pmd`] makes writable.
    fn huge_fault(this: ArcBorrow<'_, Self>, fault: &VmFault<'_>) -> Result<bool> {
        let Some(pfnmap) = fault.pfnmap() else {
            return Ok(false);
        };
        let pool = this.resource()?;
        let Some(g) = pool.geometry() else {
            return Ok(false);
        };
        let index = this.index(fault.pgoff())?;
        let (start, end) = pfnmap.vma_range();
        let chunk = plan::huge_fault_chunk(
            fault.address() as u64,
            index as u64,
            start as u64..end as u64,
            g.chunk_pages,
        );
        let Some(chunk) = chunk else {
            return Ok(false);
        };
        let first = usize::try_from(chunk * g.chunk_pages).map_err(|_| EFAULT)?;
        let pfn = pool.backing.pfn(first).ok_or(EFAULT)?;
        let _serialised = this.pfn_faults[pfn_fault_lock(fault.address())].lock();
        match pfnmap.insert_pfn_pmd(pfn)? {
            None => return Ok(false),
            Some(true) => {
                this.device.count_event(Event::PagesMapped, g.chunk_pages);
                this.device.count_event(Event::FaultsServed, 1);
                // A gauge-style word under the seqcount: 2 MiB faults are rare enough to
                // publish.
                this.device.update(|c| device::add(&c.pmd_faults, 1));
            }
            // Mapped already: by a racing fault, or this write fault made it writable.
            Some(false) => {}
        }
        Ok(true)
    }
}

impl VmaState {
    /// Maps the `around`-aligned window of resource pages that holds the faulting page, cut
    /// to the VMA and the resource ([`plan::fault_window`]), skipping pages already mapped;
    /// counts one fault served and exactly the pages it mapped.
    fn lazy_fault(this: ArcBorrow<'_, Self>, fault: &VmFault<'_>) -> Result {
        let index = this.index(fault.pgoff())?;
        let vma = fault.mixedmap().ok_or(EFAULT)?;
        let first = this.index(vma.pgoff())? as u64;
        let window_vma = first..first + ((vma.end() - vma.start()) / PAGE_SIZE) as u64;
        let resource_pages = match &this.target {
            Target::Resource(b) => b.pages(),
            Target::State => 1,
        };
        let window = plan::fault_window(index as u64, this.around, window_vma, resource_pages)
            .ok_or(EFAULT)?;
        let addr = vma.start() + (window.start - first) as usize * PAGE_SIZE;
        // Every page of the window exists (it is inside the resource), so this maps them all
        // or fails the fault.
        let mut pages = KVec::with_capacity((window.end - window.start) as usize, GFP_KERNEL)?;
        for i in window.start as usize..window.end as usize {
            pages.push(this.target.page(&this.device, i).ok_or(EFAULT)?, GFP_KERNEL)?;
        }
        let inserted = vma.vm_insert_pages_skipping(addr, pages.iter().copied())?;
        // Zero when a concurrent fault of the same window mapped it all first.
        if inserted > 0 {
            // The fault path's only bookkeeping: two atomic adds in the STATE page.
            this.device.count_event(Event::PagesMapped, inserted as u64);
            this.device.count_event(Event::FaultsServed, 1);
        }
        Ok(())
    }

    /// One 4 KiB entry of a PFN map: 2 MiB pools where a PMD cannot map, or a contiguous
    /// pool's page that lost its entry.
    ///
    /// Page-frame faults count exactly what they map. Two threads of one process can fault
    /// the same entry at once (under the mmap lock, or a `.huge_fault` under the VMA lock,
    /// both held for read), and the kernel's insert answers success to both; so each fault
    /// looks at the page tables, inserts and counts under the `pfn_faults` lock of the
    /// entry's 2 MiB block, and counts only if it mapped the entry ([`PfnFault::insert_pfn`]).
    /// The loser of a race finds the entry and returns: user space retries the access and it
    /// succeeds. Every entry lies in one 2 MiB block of addresses (a 4 KiB entry in its block,
    /// a 2 MiB entry is the block), so racing faults of one entry always take the same lock,
    /// and faults of other blocks take another (but for one block in eight).
    fn pfn_fault(this: ArcBorrow<'_, Self>, fault: &VmFault<'_>, pfnmap: &PfnFault<'_>) -> Result {
        let index = this.index(fault.pgoff())?;
        let pfn = this.resource()?.backing.pfn(index).ok_or(EFAULT)?;
        let _serialised = this.pfn_faults[pfn_fault_lock(fault.address())].lock();
        if pfnmap.insert_pfn(pfn)? {
            this.device.count_event(Event::PagesMapped, 1);
            this.device.count_event(Event::FaultsServed, 1);
        }
        Ok(())
    }
}
