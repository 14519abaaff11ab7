// SPDX-License-Identifier: GPL-2.0

//! Page-frame mappings of physically contiguous memory: the `unsafe` wrappers behind
//! contiguous (`remap_pfn_range`) and 2 MiB (`huge_fault`, `vmf_insert_pfn_pmd`) pools.
//!
//! - [`Chunk`]: `1 << order` physically contiguous, zeroed pages from the buddy allocator,
//!   charged to the caller's memory cgroup, optionally write-combined (the kernel's own
//!   direct mapping of them too, so no cached alias exists);
//! - [`NewVma::set_pfnmap`], [`NewVma::remap_chunk`]: a `VM_PFNMAP | VM_IO | VM_DONTEXPAND |
//!   VM_DONTDUMP` VMA with the pool's cache attribute, mapped whole at `mmap`;
//! - [`PfnOps`] and [`set_pfn_ops`]: `.open`/`.close` (shared with [`crate::sys::VmOps`]),
//!   `.fault` (one 4 KiB entry, `vmf_insert_pfn`) and `.huge_fault` (one 2 MiB entry,
//!   `vmf_insert_pfn_pmd`, the 6.12 API VFIO's `vfio_pci_mmap_huge_fault` uses).
//!
//! # Lifetime
//!
//! A PFN map holds no page references: the pages must outlive every PTE that maps them. They
//! do: a [`Chunk`] belongs to its pool's buffer, every VMA holds an `Arc` of its mapping state
//! (which holds the buffer), and the kernel zaps a VMA's page tables before its `.close`
//! drops that `Arc` (`unmap_region` then `remove_vma`).
//!
//! # References
//!
//! C headers: [`srctree/include/linux/mm.h`], [`srctree/include/linux/huge_mm.h`],
//! [`srctree/arch/x86/include/asm/set_memory.h`].
//!
//! [`srctree/include/linux/mm.h`]: srctree/include/linux/mm.h
//! [`srctree/include/linux/huge_mm.h`]: srctree/include/linux/huge_mm.h
//! [`srctree/arch/x86/include/asm/set_memory.h`]: srctree/arch/x86/include/asm/set_memory.h

use crate::sys::{Mapped, NewVma, VmOps, VmVtable};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_uint, c_ulong},
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

// Not in 6.12's Rust bindings (<asm/set_memory.h> is not in bindings_helper.h); both are
// exported (`EXPORT_SYMBOL`) by arch/x86/mm/pat/set_memory.c.
extern "C" {
    fn set_memory_wc(addr: c_ulong, numpages: c_int) -> c_int;
    fn set_memory_wb(addr: c_ulong, numpages: c_int) -> c_int;
}

/// The physical address of `page` (`page_to_phys` with `SPARSEMEM_VMEMMAP`: the index of the
/// `struct page` in the `vmemmap` array, in pages).
pub(crate) fn page_phys(page: *mut bindings::page) -> u64 {
    // SAFETY: `vmemmap_base` is set at boot and never changes afterwards.
    let vmemmap = unsafe { bindings::vmemmap_base };
    let pfn = (page as usize - vmemmap) / core::mem::size_of::<bindings::page>();
    (pfn as u64) << bindings::PAGE_SHIFT
}

/// `PMD_ORDER` on x86-64: a PMD entry maps `1 << 9` pages.
pub const PMD_ORDER: u32 = 9;

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
    /// the kernel log; what `set_memory_wc` returns (then nothing stays allocated).
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
            // SAFETY: The direct mapping of our own block; `set_memory_wc` records the WC
            // memory type for these RAM pages (x86 PAT) and changes the kernel's mapping.
            to_result(unsafe { set_memory_wc(chunk.kernel_addr() as c_ulong, chunk.pages() as c_int) })?;
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
            Some(end) if end <= self.pages() * PAGE_SIZE => Ok((self.kernel_addr() + offset) as *mut u8),
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
                pr_err!("set_memory_wb failed ({}); leaking {} pages\n", rc, self.pages());
                return;
            }
        }
        // SAFETY: By the type invariants we own the block of this order; no user mapping
        // outlives the chunk (module docs), so nothing maps it any more.
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order as c_uint) };
    }
}

impl NewVma<'_> {
    /// Makes the VMA a page-frame mapping (`VM_PFNMAP | VM_IO | VM_DONTEXPAND |
    /// VM_DONTDUMP`, what `remap_pfn_range` sets), write-combined if `wc`.
    pub fn set_pfnmap(&mut self, wc: bool) {
        self.update_flags(
            bindings::VM_PFNMAP | bindings::VM_IO | bindings::VM_DONTEXPAND | bindings::VM_DONTDUMP,
            bindings::VM_MIXEDMAP,
        );
        if wc {
            let raw = self.raw();
            // SAFETY: The VMA is the new one of this `mmap`, not yet visible to other threads
            // (`NewVma`'s invariants), so the plain write cannot race; `pgprot_writecombine`
            // only changes the cache bits of the protection.
            unsafe { (*raw).vm_page_prot = bindings::pgprot_writecombine((*raw).vm_page_prot) };
        }
    }

    /// Maps `pages` pages of `chunk` at page `index` of the VMA (`remap_pfn_range`).
    ///
    /// # Errors
    /// `EINVAL` if they leave the VMA or the chunk, else what `remap_pfn_range` returns (it
    /// unmaps its own partial work; `mmap` failing unmaps the rest).
    pub fn remap_chunk(&mut self, index: usize, chunk: &Chunk, pages: usize) -> Result {
        let addr = index
            .checked_mul(PAGE_SIZE)
            .and_then(|off| self.start().checked_add(off))
            .ok_or(EINVAL)?;
        let size = pages.checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        if pages == 0 || pages > chunk.pages() || !addr.checked_add(size).is_some_and(|e| e <= self.end()) {
            return Err(EINVAL);
        }
        let raw = self.raw();
        // SAFETY: We hold the mmap lock for write on the new VMA (`NewVma`'s invariants);
        // `addr .. addr + size` is inside it and the pfns are the chunk's own pages, which
        // outlive the mapping (module docs). The VMA is shared (checked by the caller's
        // plan), so `remap_pfn_range` does not touch `vm_pgoff`.
        to_result(unsafe { bindings::remap_pfn_range(raw, addr, chunk.pfn(), size, (*raw).vm_page_prot) })
    }
}

/// One fault in a PFN-mapped VMA set up by [`set_pfn_ops`].
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a `.fault` or `.huge_fault` call in progress, with the
/// mmap lock (or the VMA lock) held for read, and `vmf->vma` is a `VM_PFNMAP` VMA with these
/// ops.
pub struct PfnFault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _p: PhantomData<&'a bindings::vm_fault>,
}

impl PfnFault<'_> {
    fn vmf(&self) -> &bindings::vm_fault {
        // SAFETY: By the type invariants `vmf` is valid for the call and not modified by the
        // fault core while the handler runs.
        unsafe { self.vmf.as_ref() }
    }

    /// `vmf->pgoff`: the file offset, in pages, of the faulting page.
    pub fn pgoff(&self) -> usize {
        self.vmf().__bindgen_anon_1.pgoff
    }

    /// The page-aligned user address that faulted.
    pub fn address(&self) -> usize {
        self.vmf().__bindgen_anon_1.address
    }

    /// The faulting VMA's `vm_start` and `vm_end`.
    pub fn vma_range(&self) -> (usize, usize) {
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants the VMA is valid and locked for read.
        unsafe {
            (
                (*vma).__bindgen_anon_1.__bindgen_anon_1.vm_start,
                (*vma).__bindgen_anon_1.__bindgen_anon_1.vm_end,
            )
        }
    }

    /// Whether the access was a write.
    pub fn is_write(&self) -> bool {
        self.vmf().flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// Maps page frame `pfn` at the faulting address (`vmf_insert_pfn`, with the VMA's cache
    /// attribute).
    ///
    /// # Errors
    /// `ENOMEM` or `EFAULT` (becoming `VM_FAULT_OOM`/`SIGBUS`).
    pub fn insert_pfn(&self, pfn: usize) -> Result {
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants the VMA is a locked `VM_PFNMAP` VMA containing the
        // address; `pfn` is a page of a live chunk of the mapping's pool (caller), which
        // outlives the mapping (module docs).
        let ret = unsafe { bindings::vmf_insert_pfn(vma, self.address(), pfn) };
        fault_result(ret)
    }

    /// Maps the 2 MiB block of frames from `pfn` (2 MiB-aligned) at the 2 MiB-aligned block
    /// around the faulting address, with one PMD entry (`vmf_insert_pfn_pmd`).
    ///
    /// # Errors
    /// `EINVAL` for a misaligned `pfn`; `ENOMEM` or `EFAULT` from the kernel.
    pub fn insert_pfn_pmd(&self, pfn: usize) -> Result {
        if pfn % (1 << PMD_ORDER) != 0 {
            return Err(EINVAL);
        }
        let pfn_t = bindings::pfn_t { val: pfn as u64 };
        // SAFETY: By the type invariants `vmf` is the fault in progress on a `VM_PFNMAP`,
        // shared (so not copy-on-write) VMA; the caller checked that the whole 2 MiB block
        // lies in the VMA (`plan::huge_fault_chunk`), and the frames are one live 2 MiB chunk
        // of the mapping's pool. A `pfn_t` without flags is a plain special mapping.
        let ret = unsafe { bindings::vmf_insert_pfn_pmd(self.vmf.as_ptr(), pfn_t, self.is_write()) };
        fault_result(ret)
    }
}

/// `VM_FAULT_NOPAGE` is success; anything else is `ENOMEM` (`VM_FAULT_OOM`) or `EFAULT`.
fn fault_result(ret: bindings::vm_fault_t) -> Result {
    if ret == bindings::vm_fault_reason_VM_FAULT_NOPAGE {
        Ok(())
    } else if ret & bindings::vm_fault_reason_VM_FAULT_OOM != 0 {
        Err(ENOMEM)
    } else {
        Err(EFAULT)
    }
}

/// The faults of a PFN-mapped VMA; `.open`/`.close` are [`VmOps`]'s.
pub trait PfnOps: VmOps {
    /// A 4 KiB fault: map it with [`PfnFault::insert_pfn`], or fail (`SIGBUS`).
    fn pfn_fault(this: ArcBorrow<'_, Self>, fault: &PfnFault<'_>) -> Result;

    /// A 2 MiB fault: map it with [`PfnFault::insert_pfn_pmd`] and return `true`, or return
    /// `false` to fall back to 4 KiB faults.
    fn pmd_fault(_this: ArcBorrow<'_, Self>, _fault: &PfnFault<'_>) -> Result<bool> {
        Ok(false)
    }
}

/// Attaches `M`'s PFN-map hooks and the per-mapping state `data` to a VMA made by
/// [`NewVma::set_pfnmap`], and ends the setup: `mmap` succeeds with the returned [`Mapped`].
pub fn set_pfn_ops<M: PfnOps>(vma: NewVma<'_>, data: Arc<M>) -> Mapped {
    let raw = vma.raw();
    // SAFETY: The VMA is the new one of this `mmap` (`NewVma`'s invariants). `vm_private_data`
    // takes ownership of one reference, released by `.close` of this VMA (the shared
    // trampoline); `vm_ops` points to a `'static` table.
    unsafe {
        (*raw).vm_private_data = data.into_foreign().cast_mut();
        (*raw).vm_ops = PfnVtable::<M>::TABLE;
    }
    Mapped(())
}

/// The `vm_operations_struct` of PFN-mapped pools for `M`.
struct PfnVtable<M: PfnOps>(PhantomData<M>);

impl<M: PfnOps> PfnVtable<M> {
    const TABLE_VALUE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(VmVtable::<M>::OPEN),
        close: Some(VmVtable::<M>::CLOSE),
        fault: Some(Self::fault),
        huge_fault: Some(Self::huge_fault),
        // SAFETY: All other fields are nullable function pointers; zero means "not provided".
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };
    /// Promoted to a `'static` because `TABLE_VALUE` is a constant.
    const TABLE: &'static bindings::vm_operations_struct = &Self::TABLE_VALUE;

    /// # Safety
    ///
    /// Called by the fault core for a VMA with these ops, with the mmap or VMA lock held.
    unsafe fn run(
        vmf: *mut bindings::vm_fault,
        f: impl FnOnce(ArcBorrow<'_, M>, &PfnFault<'_>) -> Result<bool>,
    ) -> bindings::vm_fault_t {
        // SAFETY: `vmf` and `vmf->vma` are valid for the call; the VMA owns a reference to
        // the state, which cannot be dropped while the VMA is locked for the fault.
        let this = unsafe { Arc::<M>::borrow((*(*vmf).__bindgen_anon_1.vma).vm_private_data) };
        let fault = PfnFault {
            // SAFETY: The fault core never passes a null `vmf`.
            vmf: unsafe { NonNull::new_unchecked(vmf) },
            _p: PhantomData,
        };
        // INVARIANT: `fault` wraps the `vm_fault` of this call, on a VMA with these ops.
        match f(this, &fault) {
            Ok(true) => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            Ok(false) => bindings::vm_fault_reason_VM_FAULT_FALLBACK,
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }

    /// # Safety
    ///
    /// As [`Self::run`].
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: The caller's contract.
        unsafe { Self::run(vmf, |this, f| M::pfn_fault(this, f).map(|()| true)) }
    }

    /// # Safety
    ///
    /// As [`Self::run`]; `order` is the entry's order (`PMD_ORDER` or `PUD_ORDER`).
    unsafe extern "C" fn huge_fault(vmf: *mut bindings::vm_fault, order: c_uint) -> bindings::vm_fault_t {
        if order != PMD_ORDER {
            return bindings::vm_fault_reason_VM_FAULT_FALLBACK;
        }
        // SAFETY: The caller's contract.
        unsafe { Self::run(vmf, M::pmd_fault) }
    }
}
