// SPDX-License-Identifier: GPL-2.0

//! `mmap` of a resource, and the per-mapping hooks (`.open`, `.close`, `.fault`).
#![forbid(unsafe_code)]

use crate::abi::plan::{self, Fill, MmapRequest};
use crate::buffer::Target;
use crate::context::Context;
use crate::device::{self, Device};
use crate::plan_err;
use crate::sys::{
    mm::virt::{flags, Mapped, VmaNew},
    vm_ops::{self, VmFault, VmOps},
};
use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// Per-mapping state: what the mapping maps, and its `vm_pgoff` at `mmap` time.
pub struct Mapping {
    device: Arc<Device>,
    target: Target,
    /// The `vm_pgoff` user space passed; a split VMA's own `vm_pgoff` moves with its start.
    base_pgoff: usize,
}

/// Maps the resource `vma`'s offset names, after [`plan::plan_mmap`] admitted the request.
///
/// Everything that can fail is done before pages are inserted, and [`vm_ops::attach`] comes
/// last, so the VMA is never left with state that `.close` would not free.
pub fn mmap(this: ArcBorrow<'_, Context>, vma: &VmaNew) -> Result<Mapped> {
    let req = MmapRequest {
        pgoff: vma.pgoff() as u64,
        len: (vma.end() - vma.start()) as u64,
        write: vma.writable(),
        shared: vma.shared(),
        exec: vma.executable(),
    };
    let plan = plan::plan_mmap(&req, |t, id| this.lookup(t, id)).map_err(plan_err)?;
    let pages = usize::try_from(plan.pages).map_err(|_| EINVAL)?;
    let device = this.device();

    // Allocate before touching the VMA, so nothing fails after pages are inserted.
    let mapping = Arc::new(
        Mapping {
            device: device.clone(),
            target: plan.target,
            base_pgoff: vma.pgoff(),
        },
        GFP_KERNEL,
    )?;

    // VM_DONTEXPAND: `mremap` cannot grow the mapping past the resource. It also makes the VMA
    // `VM_SPECIAL`, which `.close` accounting depends on: when `->mmap` changed the flags,
    // 6.12's `__mmap_region` retries merging the new VMA into its neighbour and, if that
    // succeeds, frees it with `vm_area_free` *without* calling `.close` — `live_mappings`
    // and the `Arc<Mapping>` in `vm_private_data` would leak. `VM_SPECIAL` VMAs never merge.
    vma.set_dontexpand();
    debug_assert!(vma.flags() & flags::SPECIAL != 0);
    // Read-only everywhere: a shared mapping made without write (and any STATE mapping) can
    // never gain it, and no mapping can become executable. The plan already refused the
    // requests these would fail for, so an error here is a driver bug; answer EPERM.
    if plan.clear_maywrite {
        vma.try_clear_maywrite().map_err(|_| EPERM)?;
    }
    if plan.clear_mayexec {
        vma.try_clear_mayexec().map_err(|_| EPERM)?;
    }
    let mixed = vma.set_mixedmap();
    let inserted = match plan.fill {
        Fill::Eager => {
            let target = &mapping.target;
            let all = (0..pages).filter_map(|i| target.page(device, i));
            mixed.vm_insert_pages(vma.start(), all)?;
            plan.pages
        }
        Fill::Lazy => 0,
    };
    device.update(|c| {
        device::add(&c.pages_mapped, inserted);
        device::add(&c.live_mappings, 1);
    });
    Ok(vm_ops::attach(vma, mapping))
}

impl VmOps for Mapping {
    fn open(this: ArcBorrow<'_, Self>) {
        this.device.update(|c| device::add(&c.live_mappings, 1));
    }

    fn close(this: ArcBorrow<'_, Self>) {
        this.device
            .update(|c| device::sub(&c.live_mappings, 1, "live_mappings"));
    }

    fn fault(this: ArcBorrow<'_, Self>, fault: &VmFault<'_>) -> Result {
        let index = fault.pgoff().checked_sub(this.base_pgoff).ok_or(EFAULT)?;
        let page = this.target.page(&this.device, index).ok_or(EFAULT)?;
        match fault.vma().vm_insert_page(fault.address(), page.as_page()) {
            Ok(()) => {
                this.device.update(|c| {
                    device::add(&c.pages_mapped, 1);
                    device::add(&c.faults_served, 1);
                });
                Ok(())
            }
            // A concurrent fault of the same page mapped it first.
            Err(e) if e == EBUSY => Ok(()),
            Err(e) => Err(e),
        }
    }
}
