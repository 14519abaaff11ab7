// SPDX-License-Identifier: GPL-2.0

//! Page-frame mappings (pktmap additions to [`VmaNew`]): a `VM_PFNMAP | VM_IO |
//! VM_DONTEXPAND | VM_DONTDUMP` VMA with the pool's cache attribute, [`Chunk`]s mapped whole
//! at `mmap` (`remap_pfn_range`), and where `get_unmapped_area` places a mapping
//! ([`AreaAlign`]: 2 MiB-aligned for 2 MiB pools, via `thp_get_unmapped_area`).
//!
//! C header: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h)

use super::virt::{flags, flags::vm_flags_t, VmaNew};
use crate::sys::chunk::Chunk;
use kernel::{bindings, error::to_result, ffi::c_ulong, page::PAGE_SIZE, prelude::*};

impl VmaNew {
    /// Whether the mapping is `MAP_SHARED` (`VM_MAYSHARE`: a shared mapping of a read-only
    /// file has it without `VM_SHARED`).
    pub fn may_share(&self) -> bool {
        self.flags() & bindings::VM_MAYSHARE as vm_flags_t != 0
    }
}

impl VmaNew {
    /// Makes the VMA a page-frame mapping (`VM_PFNMAP | VM_IO | VM_DONTEXPAND |
    /// VM_DONTDUMP`, what `remap_pfn_range` sets), write-combined if `wc`.
    pub fn set_pfnmap(&self, wc: bool) {
        self.update_flags(
            (bindings::VM_PFNMAP
                | bindings::VM_IO
                | bindings::VM_DONTEXPAND
                | bindings::VM_DONTDUMP) as vm_flags_t,
            flags::MIXEDMAP,
        );
        if wc {
            let raw = self.as_ptr();
            // SAFETY: The VMA is the new one of this `mmap`, not yet visible to other threads
            // (`VmaNew`'s invariants), so the plain write cannot race; `pgprot_writecombine`
            // only changes the cache bits of the protection.
            unsafe { (*raw).vm_page_prot = bindings::pgprot_writecombine((*raw).vm_page_prot) };
        }
    }

    /// Maps `pages` pages of `chunk` at page `index` of the VMA (`remap_pfn_range`).
    ///
    /// # Errors
    /// `EINVAL` if they leave the VMA or the chunk, else what `remap_pfn_range` returns (it
    /// unmaps its own partial work; the caller unmaps earlier calls' with
    /// [`zap_pages`](Self::zap_pages) before it drops the chunks).
    pub fn remap_chunk(&self, index: usize, chunk: &Chunk, pages: usize) -> Result {
        let addr = index
            .checked_mul(PAGE_SIZE)
            .and_then(|off| self.start().checked_add(off))
            .ok_or(EINVAL)?;
        let size = pages.checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        if pages == 0
            || pages > chunk.pages()
            || !addr.checked_add(size).is_some_and(|e| e <= self.end())
        {
            return Err(EINVAL);
        }
        let raw = self.as_ptr();
        // SAFETY: We hold the mmap lock for write on the new VMA (`VmaNew`'s invariants);
        // `addr .. addr + size` is inside it and the pfns are the chunk's own pages, which
        // outlive the mapping (module docs). The VMA is shared (checked by the caller's
        // plan), so `remap_pfn_range` does not touch `vm_pgoff`.
        to_result(unsafe {
            bindings::remap_pfn_range(raw, addr, chunk.pfn(), size, (*raw).vm_page_prot)
        })
    }
}

impl VmaNew {
    /// Removes the entries of the first `pages` pages of the VMA (`zap_vma_ptes`): what
    /// earlier [`remap_chunk`](Self::remap_chunk) calls mapped, when a later one failed.
    ///
    /// A page-frame entry holds no page reference, and the kernel unmaps a failed `mmap` only
    /// after `->mmap` returned, when the caller may already have dropped the last reference to
    /// the chunks; so `->mmap` must leave no entry behind before it lets go of them (the
    /// warning in `remap_pfn_range_notrack`, which zaps its own partial work the same way).
    pub fn zap_pages(&self, pages: usize) {
        let size = pages
            .saturating_mul(PAGE_SIZE)
            .min(self.end() - self.start());
        if size == 0 {
            return;
        }
        // SAFETY: We hold the mmap lock for write on the new `VM_PFNMAP` VMA (`VmaNew`'s
        // invariants, and `set_pfnmap` ran before any `remap_chunk`); the range starts at
        // `vm_start` and lies inside the VMA (`zap_vma_ptes` checks both and does nothing
        // otherwise).
        unsafe { bindings::zap_vma_ptes(self.as_ptr(), self.start(), size) };
    }
}

/// The alignment `area_align` hooks asks of `get_unmapped_area`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaAlign {
    /// Any page-aligned address (`mm_get_unmapped_area`).
    Page,
    /// A 2 MiB-aligned address where the kernel can find one (`thp_get_unmapped_area` with
    /// offset 0, so the mapping's first byte is PMD-aligned whatever `pgoff` encodes).
    Pmd,
}

/// `get_unmapped_area` for `file` at `align`: the trampoline of both the device's and the pool
/// files' `file_operations`.
///
/// # Safety
///
/// Called from the VFS's `get_unmapped_area` hook of `file` (so `current->mm` is the `mm`
/// being mapped into, with its mmap lock held for write).
pub(in crate::sys) unsafe fn get_unmapped_area(
    file: *mut bindings::file,
    addr: c_ulong,
    len: c_ulong,
    pgoff: c_ulong,
    flags: c_ulong,
    align: AreaAlign,
) -> c_ulong {
    match align {
        // SAFETY: The caller's contract; offset 0 makes the first byte of the mapping the
        // PMD-aligned one. It falls back to `mm_get_unmapped_area` when it cannot align.
        AreaAlign::Pmd => unsafe { bindings::thp_get_unmapped_area(file, addr, len, 0, flags) },
        // SAFETY: The caller's contract: `current` is the task whose `mm` is being mapped
        // into. `get_task_mm` reads `current->mm` in C (Rust's bindgen view of `task_struct`
        // is not trusted for field offsets) and takes a reference that `mmput` drops; it is
        // never the last one (the task holds its own), so `mmput` does not sleep.
        AreaAlign::Page => unsafe {
            let mm = bindings::get_task_mm(bindings::get_current());
            if mm.is_null() {
                return ENOMEM.to_errno() as c_ulong;
            }
            let area = bindings::mm_get_unmapped_area(mm, file, addr, len, pgoff, flags);
            bindings::mmput(mm);
            area
        },
    }
}
