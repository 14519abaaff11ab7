// SPDX-License-Identifier: GPL-2.0

//! Page-frame maps, which upstream's `kernel::mm::virt` has no type for (pktmap only):
//!
//! - [`VmaNewPfnExt::set_pfnmap`] makes a new VMA a `VM_PFNMAP | VM_IO | VM_DONTEXPAND |
//!   VM_DONTDUMP` map with the pool's cache attribute and returns a [`VmaPfnMap`], the only
//!   type that can `remap_pfn_range` ([`VmaPfnMap::remap_chunk`]) or have PFN-map hooks
//!   attached ([`vm_ops::attach_pfnmap`](crate::sys::vm_ops::attach_pfnmap)), as upstream's
//!   `VmaNew::set_mixedmap` returns the only type that can `vm_insert_page`;
//! - [`PfnFault`]: a fault in such a VMA, with `vmf_insert_pfn` and `vmf_insert_pfn_pmd`;
//! - [`AreaAlign`] and [`get_unmapped_area`]: where a map is placed (2 MiB-aligned for 2 MiB
//!   pools, via `thp_get_unmapped_area`).
//!
//! # `VM_PFNMAP` and `VM_MIXEDMAP` exclude each other
//!
//! A VMA with both would have its PFN-mapped frames taken for normal pages on unmap (their
//! `struct page` refcounts dropped). [`VmaNewPfnExt::set_pfnmap`] refuses a VMA that has
//! `VM_MIXEDMAP`, and upstream's `VmaNew::set_mixedmap` ("we don't yet provide a way to set
//! VM_PFNMAP") must not follow it: the driver never calls it directly, only through
//! [`vm_ops::attach_mixedmap`](crate::sys::vm_ops::attach_mixedmap), which refuses a
//! `VM_PFNMAP` VMA (driver/kmod/.clippy.toml disallows the direct call).
//!
//! # Lifetime
//!
//! A PFN map holds no page references: the frames must outlive every entry that maps them.
//! They do when, as in pktmap, the per-mapping state owns (through its resource) the
//! [`Chunk`]s: every VMA holds an `Arc` of it, and the kernel zaps a VMA's page tables before
//! its `.close` drops that `Arc`.
//!
//! # Racing faults
//!
//! `vmf_insert_pfn` and `vmf_insert_pfn_pmd` answer `VM_FAULT_NOPAGE` both when they map the
//! entry and when they find one already there: two threads faulting the same page both see
//! success, and only one of them mapped it. So [`PfnFault::insert_pfn`] and
//! [`PfnFault::insert_pfn_pmd`] look at the page tables before and after inserting
//! (`follow_pfnmap_start`, [`PfnFault::is_mapped`]) and say whether *this* call mapped the
//! entry. That answer is exact when the caller serialises every insert of the same entry
//! with a lock of its own held across the call (pktmap: one lock per 2 MiB block of
//! addresses, which holds every entry that can map the faulting address, 4 KiB or 2 MiB, and
//! its page table): then nothing but this call changes the entry between the two looks.
//!
//! C headers: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`srctree/include/linux/huge_mm.h`](srctree/include/linux/huge_mm.h)

use crate::sys::{chunk::Chunk, vm_ops::VmFault};
use core::ops::Deref;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_ulong,
    mm::virt::{flags, vm_flags_t, VmaNew, VmaRef},
    page::PAGE_SIZE,
    prelude::*,
};

/// `PMD_ORDER` on x86-64: a PMD entry maps `1 << 9` pages.
pub const PMD_ORDER: u32 = 9;

/// Makes a new VMA a page-frame map.
pub trait VmaNewPfnExt {
    /// Sets `VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP` (what `remap_pfn_range` sets),
    /// write-combined if `wc`, and returns the VMA as a [`VmaPfnMap`].
    ///
    /// # Errors
    /// `EINVAL` if the VMA already has `VM_MIXEDMAP` (module docs).
    fn set_pfnmap(&self, wc: bool) -> Result<&VmaPfnMap>;
}

impl VmaNewPfnExt for VmaNew {
    fn set_pfnmap(&self, wc: bool) -> Result<&VmaPfnMap> {
        if self.flags() & flags::MIXEDMAP != 0 {
            return Err(EINVAL);
        }
        let raw = self.as_ptr();
        let set: vm_flags_t = flags::PFNMAP | flags::IO | flags::DONTEXPAND | flags::DONTDUMP;
        // SAFETY: By `VmaNew`'s invariants the VMA is being set up by this `mmap` and not yet
        // visible to other threads (`VmaNew` is `!Sync`), so the plain writes cannot race.
        // `VM_PFNMAP` is valid here: `VM_MIXEDMAP` is not set (checked above), and the only
        // other way to set it is `attach_mixedmap`, which refuses a `VM_PFNMAP` VMA (module
        // docs). `pgprot_writecombine` only changes the cache bits of the protection.
        unsafe {
            (*raw).__bindgen_anon_2.vm_flags |= set;
            if wc {
                (*raw).vm_page_prot = bindings::pgprot_writecombine((*raw).vm_page_prot);
            }
        }
        // SAFETY: `VmaPfnMap` is a transparent wrapper of `VmaNew`, whose extra invariant
        // (`VM_PFNMAP` is set, `VM_MIXEDMAP` is not) was just established; nothing clears it.
        Ok(unsafe { &*core::ptr::from_ref(self).cast::<VmaPfnMap>() })
    }
}

/// A new VMA (inside `f_op->mmap`) with `VM_PFNMAP` set: page frames may be mapped into it.
///
/// Derefs to [`VmaRef`] only, not to [`VmaNew`], so its flags cannot be changed any more.
///
/// # Invariants
///
/// As [`VmaNew`], and `VM_PFNMAP` is set and `VM_MIXEDMAP` is not.
#[repr(transparent)]
pub struct VmaPfnMap {
    vma: VmaNew,
}

impl Deref for VmaPfnMap {
    type Target = VmaRef;

    fn deref(&self) -> &VmaRef {
        &self.vma
    }
}

impl VmaPfnMap {
    /// The new VMA, for sys code that attaches hooks to it.
    pub(in crate::sys) fn as_new(&self) -> &VmaNew {
        &self.vma
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
            || addr.checked_add(size).is_none_or(|e| e > self.end())
        {
            return Err(EINVAL);
        }
        let raw = self.as_ptr();
        // SAFETY: We hold the mmap lock for write on the new `VM_PFNMAP` VMA (type
        // invariants); `addr .. addr + size` is inside it and the pfns are the chunk's own
        // pages, which outlive the mapping (module docs). The VMA is shared (the caller's
        // plan), so `remap_pfn_range` does not touch `vm_pgoff`.
        to_result(unsafe {
            bindings::remap_pfn_range(raw, addr, chunk.pfn(), size, (*raw).vm_page_prot)
        })
    }

    /// Removes the entries of the first `pages` pages of the VMA (`zap_special_vma_range`,
    /// 6.12's `zap_vma_ptes`): what earlier [`remap_chunk`](Self::remap_chunk) calls mapped,
    /// when a later one failed.
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
        // SAFETY: We hold the mmap lock for write on the new `VM_PFNMAP` VMA (type
        // invariants); the range starts at `vm_start` and lies inside the VMA
        // (`zap_special_vma_range` checks both, and the `VM_PFNMAP` flag, and does nothing
        // otherwise).
        unsafe { bindings::zap_special_vma_range(self.as_ptr(), self.start(), size as c_ulong) };
    }
}

/// A fault in a VMA with `VM_PFNMAP` ([`VmFault::pfnmap`]).
///
/// # Invariants
///
/// The fault's VMA has `VM_PFNMAP` set and a file (pktmap's device or a pool file).
pub struct PfnFault<'a> {
    fault: &'a VmFault<'a>,
}

impl<'a> PfnFault<'a> {
    /// # Safety
    ///
    /// The fault's VMA has `VM_PFNMAP` set and a file.
    pub(in crate::sys) unsafe fn new(fault: &'a VmFault<'a>) -> Self {
        Self { fault }
    }

    /// The faulting VMA's `vm_start` and `vm_end`.
    pub fn vma_range(&self) -> (usize, usize) {
        (self.fault.vma().start(), self.fault.vma().end())
    }

    /// Whether an entry of the faulting `mm`'s page tables (a 4 KiB or a 2 MiB one) maps the
    /// faulting address now (`follow_pfnmap_start`, then `follow_pfnmap_end` at once).
    ///
    /// The walk needs the mmap lock or the VMA file's `i_mmap_rwsem`
    /// (`pfnmap_lockdep_assert`); a `.huge_fault` may hold only the VMA lock, so this takes
    /// `i_mmap_rwsem` for read around the walk whichever lock the fault holds.
    pub fn is_mapped(&self) -> bool {
        let vma = self.fault.vma().as_ptr();
        // SAFETY: The VMA is valid and locked for read (the fault's); `vm_file` is stable
        // while it is, and non-null by the type invariants.
        let file = unsafe { (*vma).vm_file };
        // SAFETY: `file` is the VMA's file, referenced by the VMA, so valid; a file's
        // `f_mapping` is set at open and then fixed.
        let mapping = unsafe { (*file).f_mapping };
        // SAFETY: All-zeroes is a valid `follow_pfnmap_args` (pointers and integers).
        let mut args: bindings::follow_pfnmap_args = unsafe { core::mem::zeroed() };
        args.vma = vma;
        args.address = self.fault.address() as c_ulong;
        // SAFETY: `mapping` is the live address space of the VMA's file (above). The lock
        // order is the kernel's: the fault's mmap or VMA lock, then `i_mmap_rwsem`, then the
        // page-table lock `follow_pfnmap_start` takes. `args.vma` is valid and locked for
        // read, which keeps its page tables from being freed during the walk, and the address
        // is inside it; the lock `follow_pfnmap_start` returns with on success is dropped by
        // `follow_pfnmap_end` before `i_mmap_rwsem` is, and nothing of `args` is used after.
        unsafe {
            let rwsem = core::ptr::addr_of_mut!((*mapping).i_mmap_rwsem);
            bindings::down_read(rwsem);
            let found = bindings::follow_pfnmap_start(&mut args) == 0;
            if found {
                bindings::follow_pfnmap_end(&mut args);
            }
            bindings::up_read(rwsem);
            found
        }
    }

    /// Maps page frame `pfn` at the faulting address (`vmf_insert_pfn`, with the VMA's cache
    /// attribute), unless an entry maps it already; returns whether this call mapped it.
    ///
    /// Exact only while the caller serialises every insert of this 2 MiB block (module docs).
    ///
    /// # Errors
    /// `ENOMEM` or `EFAULT` (becoming `VM_FAULT_OOM`/`SIGBUS`).
    pub fn insert_pfn(&self, pfn: usize) -> Result<bool> {
        if self.is_mapped() {
            return Ok(false);
        }
        // SAFETY: The VMA is a locked `VM_PFNMAP` VMA (type invariants) containing the
        // address; `pfn` is a page of a live chunk of the mapping's pool (caller), which
        // outlives the mapping (module docs).
        let ret = unsafe {
            bindings::vmf_insert_pfn(self.fault.vma().as_ptr(), self.fault.address(), pfn)
        };
        fault_result(ret)?;
        Ok(self.is_mapped())
    }

    /// What the faulting PMD holds now (one read, as `pmdp_get_lockless`).
    fn pmd_now(&self) -> Pmd {
        // x86-64 PMD bits: `_PAGE_PSE` marks a leaf (a 2 MiB entry, also while
        // `pmdp_invalidate` has it non-present); `pmd_none` ignores the accessed and dirty bits
        // (`_PAGE_KNL_ERRATUM_MASK`).
        const PSE: u64 = 1 << 7;
        const KNL_ERRATUM: u64 = (1 << 5) | (1 << 6);
        // SAFETY: By the type invariants the fault is in progress with the mmap or VMA lock
        // held, so `vmf->pmd` points to this address's PMD entry in a page table that cannot be
        // freed meanwhile (page tables of a `VM_PFNMAP` VMA go only with its unmap, under the
        // mmap lock held for write); the entry may change under us, so it is read once.
        let val = unsafe { core::ptr::read_volatile((*self.fault.as_raw()).pmd) }.pmd as u64;
        if val & !KNL_ERRATUM == 0 {
            Pmd::None
        } else if val & PSE != 0 {
            Pmd::Leaf
        } else {
            Pmd::Table
        }
    }

    /// Maps the 2 MiB block of frames from `pfn` (2 MiB-aligned) at the 2 MiB-aligned block
    /// around the faulting address with one PMD entry (`vmf_insert_pfn_pmd`), writable and
    /// dirty only for a write fault (a read fault maps it clean, with the VMA's protection,
    /// as VFIO does); returns whether this call mapped it, or `None` when the fault must fall
    /// back to 4 KiB entries.
    ///
    /// - No entry: inserts; `Some(true)`.
    /// - A 2 MiB entry already: a racing fault mapped it (`Some(false)`), or this is a write
    ///   fault on a write-protected entry (`wp_huge_pmd`: soft-dirty's `clear_refs`, write
    ///   notification), which `vmf_insert_pfn_pmd` then makes writable and dirty in place,
    ///   with the same frame (`Some(false)`: nothing new is mapped). Answering `NOPAGE`
    ///   without that upgrade would retry the store forever.
    /// - A table of 4 KiB entries (one appeared after the kernel saw the PMD empty, e.g. the
    ///   THP policy changed mid-fault): `None`, so the 4 KiB path serves the fault; inserting
    ///   a PMD there would be refused, with a `WARN` for a write (7.3's `insert_pmd`).
    ///
    /// Exact only while the caller serialises every insert of this 2 MiB block (module docs).
    ///
    /// # Errors
    /// `EINVAL` for a misaligned `pfn`; `ENOMEM` or `EFAULT` from the kernel.
    pub fn insert_pfn_pmd(&self, pfn: usize) -> Result<Option<bool>> {
        if pfn % (1 << PMD_ORDER) != 0 {
            return Err(EINVAL);
        }
        let write = self.fault.is_write();
        match self.pmd_now() {
            Pmd::Table => return Ok(None),
            Pmd::Leaf if !write => return Ok(Some(false)),
            Pmd::Leaf | Pmd::None => {}
        }
        let was_mapped = self.is_mapped();
        // SAFETY: The fault in progress is on a `VM_PFNMAP` VMA (type invariants), shared (so
        // not copy-on-write: the caller's plan); the caller checked that the whole 2 MiB block
        // lies in the VMA (`plan::huge_fault_chunk`), and the frames are one live 2 MiB chunk
        // of the mapping's pool. On a present 2 MiB entry (a write fault) the kernel only
        // upgrades it, and it maps this same block (entries of this VMA map its pool at fixed
        // offsets), so its check that the frame is unchanged holds.
        let ret =
            unsafe { bindings::vmf_insert_pfn_pmd(self.fault.as_raw(), pfn as c_ulong, write) };
        fault_result(ret)?;
        // Nothing else inserts meanwhile (the caller's lock), so an entry now that was not
        // there before is ours.
        Ok(Some(!was_mapped && self.is_mapped()))
    }
}

/// What a fault's PMD entry holds ([`PfnFault::pmd_now`]).
enum Pmd {
    /// Nothing (`pmd_none`).
    None,
    /// A 2 MiB entry.
    Leaf,
    /// A table of 4 KiB entries.
    Table,
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

/// The alignment an `area_align` hook asks of `get_unmapped_area`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaAlign {
    /// Any page-aligned address (`mm_get_unmapped_area`, the kernel's default).
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
        // SAFETY: The caller's contract: `current->mm` is the `mm` being mapped into, whose
        // mmap lock is held, which is what `mm_get_unmapped_area` (7.3: of `current->mm`) needs.
        AreaAlign::Page => unsafe { bindings::mm_get_unmapped_area(file, addr, len, pgoff, flags) },
    }
}
