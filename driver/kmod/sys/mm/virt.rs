// SPDX-License-Identifier: GPL-2.0

//! Additions to upstream's VMA types (`kernel::mm::virt`: [`VmaRef`], [`VmaMixedMap`],
//! [`VmaNew`]), as extension traits, so that each one goes the day upstream has it:
//!
//! - [`VmaRefExt`]: `vm_pgoff`, and whether the mapping is shared (`VM_SHARED`,
//!   `VM_MAYSHARE`);
//! - [`VmaNewExt`]: setting `vm_pgoff` inside `mmap`;
//! - [`VmaMixedMapExt`]: `vm_insert_pages`, in batches, and skipping pages another fault
//!   mapped first (lazy fault-around).
//!
//! Page-frame maps, which upstream has no type for, are [`pfnmap`](super::pfnmap).
//!
//! C headers: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`srctree/include/linux/mm_types.h`](srctree/include/linux/mm_types.h)

use crate::sys::page::SharedPage;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_ulong,
    mm::virt::{flags, VmaMixedMap, VmaNew, VmaRef},
    page::PAGE_SIZE,
    prelude::*,
};

/// What pktmap reads of a VMA beyond upstream's [`VmaRef`].
pub trait VmaRefExt {
    /// `vma->vm_pgoff`: the file offset of the VMA's start, in pages.
    ///
    /// Inside `mmap` it is the offset exactly as user space passed it; after a split or
    /// `mremap` it moves with the VMA's start, so fault handlers must use the value saved at
    /// `mmap` time, never re-decode theirs.
    fn pgoff(&self) -> usize;

    /// Whether the mapping is `MAP_SHARED` and writes reach the file (`VM_SHARED`).
    fn shared(&self) -> bool;

    /// Whether the mapping is `MAP_SHARED` (`VM_MAYSHARE`: a shared mapping of a read-only
    /// file has it without `VM_SHARED`).
    fn may_share(&self) -> bool;
}

impl VmaRefExt for VmaRef {
    fn pgoff(&self) -> usize {
        // SAFETY: By `VmaRef`'s invariants the VMA is valid and its mmap or VMA lock is held,
        // and `vm_pgoff` only changes with the VMA write-locked.
        unsafe { (*self.as_ptr()).vm_pgoff }
    }

    fn shared(&self) -> bool {
        self.flags() & flags::SHARED != 0
    }

    fn may_share(&self) -> bool {
        self.flags() & flags::MAYSHARE != 0
    }
}

/// What pktmap changes of a new VMA beyond upstream's [`VmaNew`].
pub trait VmaNewExt {
    /// Sets `vma->vm_pgoff`: what the offset of the mapping's start is from now on (in
    /// `/proc/PID/maps`, for splits), e.g. without a bit that only asked something of `mmap`.
    /// Call it before inserting anything.
    fn set_pgoff(&self, pgoff: usize);
}

impl VmaNewExt for VmaNew {
    fn set_pgoff(&self, pgoff: usize) {
        // SAFETY: By `VmaNew`'s invariants the VMA is being set up by this `mmap` and not yet
        // visible to other threads (`VmaNew` is `!Sync`), so a plain write cannot race (as
        // upstream's `update_flags`); nothing has been mapped by offset yet.
        unsafe { (*self.as_ptr()).vm_pgoff = pgoff };
    }
}

/// `vm_insert_pages` for a [`VmaMixedMap`], which upstream only gives `vm_insert_page`.
pub trait VmaMixedMapExt {
    /// Maps `pages` at consecutive pages of the VMA from user address `address`, in batches.
    ///
    /// # Errors
    /// `EINVAL` if they do not fit in the VMA, else what `vm_insert_pages` returns. On an
    /// error some pages may already be mapped (`mmap` failing unmaps them).
    fn vm_insert_pages<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result;

    /// Maps `pages` at consecutive user pages from `address`, in batches, skipping the pages
    /// another fault already mapped (`EBUSY`); returns how many this call mapped.
    ///
    /// # Errors
    /// `EINVAL` if the range leaves the VMA, else what `vm_insert_pages` returns other than
    /// `EBUSY` (pages mapped before the error stay mapped and are not counted).
    fn vm_insert_pages_skipping<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result<usize>;
}

/// Pages per `vm_insert_pages` call (on the stack).
const BATCH: usize = 16;

impl VmaMixedMapExt for VmaMixedMap {
    fn vm_insert_pages<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result {
        let mut batch = [core::ptr::null_mut::<bindings::page>(); BATCH];
        let (mut n, mut at) = (0, address);
        for page in pages {
            batch[n] = page.as_ptr();
            n += 1;
            if n == BATCH {
                at = insert_batch(self, at, &mut batch[..n])?;
                n = 0;
            }
        }
        if n > 0 {
            insert_batch(self, at, &mut batch[..n])?;
        }
        Ok(())
    }

    fn vm_insert_pages_skipping<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result<usize> {
        let mut batch = [core::ptr::null_mut::<bindings::page>(); BATCH];
        let (mut at, mut inserted) = (address, 0);
        let mut pages = pages.into_iter().peekable();
        while pages.peek().is_some() {
            let mut n = 0;
            for page in pages.by_ref().take(BATCH) {
                batch[n] = page.as_ptr();
                n += 1;
            }
            let end = check_range(self, at, n)?;
            let mut done = 0;
            while done < n {
                let mut left: c_ulong = n - done;
                // SAFETY: By `VmaMixedMap`'s invariants the VMA is valid, locked and
                // `VM_MIXEDMAP`. `batch[done..n]` are pages of live `SharedPage`s borrowed for
                // this call, and `at .. end` is inside the VMA (checked above).
                let ret = unsafe {
                    bindings::vm_insert_pages(
                        self.as_ptr(),
                        at + done * PAGE_SIZE,
                        batch[done..n].as_mut_ptr(),
                        &mut left,
                    )
                };
                // `left` pages were not mapped; on an error the first of them failed.
                let mapped = (n - done) - left;
                inserted += mapped;
                done += mapped;
                match to_result(ret) {
                    Ok(()) if left == 0 => {}
                    Ok(()) => return Err(EFAULT),
                    Err(e) if e == EBUSY => done += 1,
                    Err(e) => return Err(e),
                }
            }
            at = end;
        }
        Ok(inserted)
    }
}

/// The end of `pages` pages from `address`, which must be page-aligned and inside the VMA.
fn check_range(vma: &VmaMixedMap, address: usize, pages: usize) -> Result<usize> {
    let end = pages
        .checked_mul(PAGE_SIZE)
        .and_then(|b| address.checked_add(b))
        .ok_or(EINVAL)?;
    if address < vma.start() || end > vma.end() || address % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    Ok(end)
}

/// Inserts one batch at `address`; returns the address after it.
fn insert_batch(
    vma: &VmaMixedMap,
    address: usize,
    pages: &mut [*mut bindings::page],
) -> Result<usize> {
    let end = check_range(vma, address, pages.len())?;
    let mut num: c_ulong = pages.len();
    // SAFETY: By `VmaMixedMap`'s invariants the VMA is valid, locked and `VM_MIXEDMAP`. `pages`
    // holds `num` pointers to pages owned by live `SharedPage`s (borrowed by the caller for
    // this call), and `address .. end` is inside the VMA (checked above).
    let ret =
        unsafe { bindings::vm_insert_pages(vma.as_ptr(), address, pages.as_mut_ptr(), &mut num) };
    to_result(ret)?;
    if num != 0 {
        return Err(EFAULT);
    }
    Ok(end)
}
