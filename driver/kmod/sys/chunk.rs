// SPDX-License-Identifier: GPL-2.0

//! [`Chunk`]: `1 << order` physically contiguous, zeroed pages from the buddy allocator
//! (`alloc_pages`), charged to the caller's memory cgroup and optionally write-combined — the
//! memory of contiguous and 2 MiB pools (pktmap only; upstream has `Page` for order 0 only).
//!
//! A write-combined chunk's kernel direct mapping is made WC too (`set_memory_wc`), which is
//! also how x86 PAT records the memory type of RAM pages (in their page flags, not in its
//! memtype tree), so `remap_pfn_range` and `vmf_insert_pfn*` map them WC without an alias
//! conflict; it is made WB again before the pages go back to the allocator.
//!
//! C headers: [`srctree/include/linux/gfp.h`](srctree/include/linux/gfp.h),
//! [`srctree/arch/x86/include/asm/set_memory.h`](srctree/arch/x86/include/asm/set_memory.h)

use core::ptr::NonNull;
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_ulong},
    page::PAGE_SIZE,
    prelude::*,
};

// Not in 7.3's Rust bindings (<asm/set_memory.h> is not in bindings_helper.h); both are
// exported (`EXPORT_SYMBOL`) by arch/x86/mm/pat/set_memory.c.
extern "C" {
    fn set_memory_wc(addr: c_ulong, numpages: c_int) -> c_int;
    fn set_memory_wb(addr: c_ulong, numpages: c_int) -> c_int;
}

/// The physical address of `page` (`page_to_phys` with `SPARSEMEM_VMEMMAP`: the index of the
/// `struct page` in the `vmemmap` array, in pages).
pub(in crate::sys) fn page_phys(page: *mut bindings::page) -> u64 {
    // SAFETY: `vmemmap_base` is set at boot and never changes afterwards.
    let vmemmap = unsafe { bindings::vmemmap_base };
    let pfn = (page as usize - vmemmap) / core::mem::size_of::<bindings::page>();
    (pfn as u64) << bindings::PAGE_SHIFT
}

/// `1 << order` physically contiguous, zeroed pages (`alloc_pages(GFP_KERNEL_ACCOUNT |
/// __GFP_ZERO | __GFP_NOWARN, order)`), freed on drop.
///
/// # Invariants
///
/// `page` is the first page of a block of `1 << order` pages allocated by `alloc_pages` and
/// owned by this value; if `wc`, its direct mapping was made write-combined by
/// `set_memory_wc` and is made write-back again before the block is freed.
pub struct Chunk {
    page: NonNull<bindings::page>,
    order: u32,
    wc: bool,
}

// SAFETY: The block is plain memory owned by this value; nothing in it is tied to a thread,
// and the kernel calls used on drop may run on any thread in process context.
unsafe impl Send for Chunk {}
// SAFETY: Shared references only read the block's address and copy its bytes with
// `copy_{to,from}_user`, which tolerate concurrent access (as for `SharedPage`).
unsafe impl Sync for Chunk {}

impl Chunk {
    /// Allocates `1 << order` physically contiguous zeroed pages, write-combined if `wc`.
    ///
    /// # Errors
    /// `ENOMEM` when no free block of that order exists (fragmentation), without a warning in
    /// the kernel log; what `set_memory_wc` returns (then the block is made write-back again
    /// and freed, or leaked if that fails too: WC pages never return to the allocator).
    pub fn new(order: u32, wc: bool) -> Result<Self> {
        if order > bindings::MAX_PAGE_ORDER {
            return Err(EINVAL);
        }
        let gfp = bindings::GFP_KERNEL_ACCOUNT | bindings::__GFP_ZERO | bindings::__GFP_NOWARN;
        // SAFETY: `alloc_pages` may be called from process context with any valid order.
        let page = NonNull::new(unsafe { bindings::alloc_pages(gfp, order) }).ok_or(ENOMEM)?;
        // INVARIANT: a fresh block of `1 << order` pages; `wc` is set only once the direct
        // mapping really is write-combined.
        let mut chunk = Self {
            page,
            order,
            wc: false,
        };
        if wc {
            let (addr, pages) = (chunk.kernel_addr() as c_ulong, chunk.pages() as c_int);
            // SAFETY: The direct mapping of our own block; `set_memory_wc` records the WC
            // memory type for these RAM pages (x86 PAT) and changes the kernel's mapping.
            let rc = unsafe { set_memory_wc(addr, pages) };
            if rc != 0 {
                // It may have made part of the range WC before it failed (a page-table
                // split that could not allocate): make all of it WB again before the pages go
                // back to the allocator, or leak them if even that fails.
                // SAFETY: As above; WB is the direct mapping's normal type.
                let back = unsafe { set_memory_wb(addr, pages) };
                if back != 0 {
                    pr_err!(
                        "set_memory_wc failed ({}) and set_memory_wb too ({}); leaking {} pages\n",
                        rc,
                        back,
                        pages
                    );
                    core::mem::forget(chunk);
                }
                return Err(Error::from_errno(rc));
            }
            chunk.wc = true;
        }
        Ok(chunk)
    }

    /// Its number of pages.
    pub fn pages(&self) -> usize {
        1 << self.order
    }

    /// Its first page frame number (`page_to_pfn` with `SPARSEMEM_VMEMMAP`: the index of the
    /// `struct page` in the `vmemmap` array).
    pub fn pfn(&self) -> usize {
        (page_phys(self.page.as_ptr()) >> bindings::PAGE_SHIFT) as usize
    }

    /// Its physical address.
    pub fn phys(&self) -> u64 {
        (self.pfn() as u64) << bindings::PAGE_SHIFT
    }

    /// Its address in the kernel's direct mapping (`__va(phys)`).
    fn kernel_addr(&self) -> usize {
        // SAFETY: `page_offset_base` is set at boot and never changes afterwards.
        let base = unsafe { bindings::page_offset_base };
        base + self.phys() as usize
    }

    /// The kernel address of `offset .. offset + len` of the chunk.
    ///
    /// # Errors
    /// `EINVAL` if the span leaves the chunk.
    pub(crate) fn span(&self, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.pages() * PAGE_SIZE => {
                Ok((self.kernel_addr() + offset) as *mut u8)
            }
            _ => Err(EINVAL),
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if self.wc {
            // SAFETY: By the type invariants the direct mapping is WC; back to WB before the
            // pages return to the allocator. It can only fail to allocate page tables for a
            // split that `set_memory_wc` already made.
            let rc = unsafe { set_memory_wb(self.kernel_addr() as c_ulong, self.pages() as c_int) };
            if rc != 0 {
                // Never hand WC pages back to the allocator: leak them instead.
                pr_err!(
                    "set_memory_wb failed ({}); leaking {} pages\n",
                    rc,
                    self.pages()
                );
                return;
            }
        }
        // SAFETY: By the type invariants we own the block of this order; no user mapping
        // outlives the chunk (module docs), so nothing maps it any more.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order as c_uint) };
    }
}
