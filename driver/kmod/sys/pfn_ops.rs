// SPDX-License-Identifier: GPL-2.0

//! Per-mapping `vm_operations_struct` of page-frame mappings (pktmap only): `.open`/`.close`
//! shared with [`vm_ops`](super::vm_ops), `.fault` (one 4 KiB entry, `vmf_insert_pfn`) and
//! `.huge_fault` (one 2 MiB entry, `vmf_insert_pfn_pmd`, the 6.12 API VFIO's
//! `vfio_pci_mmap_huge_fault` uses).
//!
//! # Lifetime
//!
//! A PFN map holds no page references: the frames must outlive every entry that maps them.
//! They do when, as in pktmap, the per-mapping state `M` owns (through its buffer) the
//! [`Chunk`](super::chunk::Chunk)s: every VMA holds an `Arc<M>`, and the kernel zaps a VMA's
//! page tables before its `.close` drops that `Arc` (`unmap_region`, then `remove_vma`).
//!
//! # Racing faults
//!
//! `vmf_insert_pfn` and `vmf_insert_pfn_pmd` answer `VM_FAULT_NOPAGE` both when they map the
//! entry and when they find one already there (`insert_pfn`/`insert_pfn_pmd` bail out on a
//! present entry under the page-table lock): two threads faulting the same page both see
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

use super::mm::virt::{Mapped, VmaNew};
use super::vm_ops::{VmOps, VmVtable};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    bindings,
    ffi::c_uint,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

/// `PMD_ORDER` on x86-64: a PMD entry maps `1 << 9` pages.
pub const PMD_ORDER: u32 = 9;

/// One fault in a PFN-mapped VMA set up by [`attach`].
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a `.fault` or `.huge_fault` call in progress, with the
/// mmap lock (or the VMA lock) held for read, and `vmf->vma` is a `VM_PFNMAP` VMA with these
/// ops, set up by [`attach`] in the `->mmap` of a file (so `vmf->vma->vm_file` is that file).
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

    /// Whether an entry of the faulting `mm`'s page tables (a 4 KiB or a 2 MiB one) maps the
    /// faulting address now (`follow_pfnmap_start`, then `follow_pfnmap_end` at once).
    ///
    /// The walk needs the mmap lock or the VMA file's `i_mmap_rwsem` (`pfnmap_lockdep_assert`
    /// in `mm/memory.c`). A `.fault` here always holds the mmap lock (6.12 retries a
    /// `.fault` without `.map_pages` under it), but a `.huge_fault` may hold only the VMA lock
    /// (`FAULT_FLAG_VMA_LOCK`), so this takes `i_mmap_rwsem` for read around the walk
    /// whichever lock the fault holds, as the rmap walkers do.
    ///
    /// # Errors
    /// `EFAULT` if the VMA maps no file (never, by the type invariants).
    pub fn is_mapped(&self) -> Result<bool> {
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants the VMA is valid and locked for read; `vm_file` is
        // stable while it is (it changes only under the mmap lock held for write).
        let file = unsafe { (*vma).vm_file };
        if file.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: `file` is the VMA's file, referenced by the VMA, so valid; a file's
        // `f_mapping` is set at open and then fixed.
        let mapping = unsafe { (*file).f_mapping };
        let mut args = bindings::follow_pfnmap_args {
            vma,
            address: self.address() as _,
            lock: core::ptr::null_mut(),
            ptep: core::ptr::null_mut(),
            pfn: 0,
            pgprot: bindings::pgprot_t { pgprot: 0 },
            writable: false,
            special: false,
        };
        // SAFETY: `mapping` is the live address space of the VMA's file (above). The lock
        // order is the kernel's: the fault's mmap or VMA lock, then `i_mmap_rwsem`, then the
        // page-table lock `follow_pfnmap_start` takes. `args.vma` is valid and locked for
        // read (type invariants), which keeps its page tables from being freed during the
        // walk, and the address is inside it; the lock `follow_pfnmap_start` returns with on
        // success is dropped by `follow_pfnmap_end` before `i_mmap_rwsem` is, and nothing of
        // `args` is used after it.
        let found = unsafe {
            let rwsem = core::ptr::addr_of_mut!((*mapping).i_mmap_rwsem);
            bindings::down_read(rwsem);
            let found = bindings::follow_pfnmap_start(&mut args) == 0;
            if found {
                bindings::follow_pfnmap_end(&mut args);
            }
            bindings::up_read(rwsem);
            found
        };
        Ok(found)
    }

    /// Maps page frame `pfn` at the faulting address (`vmf_insert_pfn`, with the VMA's cache
    /// attribute), unless an entry maps it already; returns whether this call mapped it.
    ///
    /// Exact only while the caller serialises every insert of this 2 MiB block (module docs).
    ///
    /// # Errors
    /// `ENOMEM` or `EFAULT` (becoming `VM_FAULT_OOM`/`SIGBUS`).
    pub fn insert_pfn(&self, pfn: usize) -> Result<bool> {
        if self.is_mapped()? {
            return Ok(false);
        }
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants the VMA is a locked `VM_PFNMAP` VMA containing the
        // address; `pfn` is a page of a live chunk of the mapping's pool (caller), which
        // outlives the mapping (module docs).
        let ret = unsafe { bindings::vmf_insert_pfn(vma, self.address(), pfn) };
        fault_result(ret)?;
        self.is_mapped()
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
        let val = unsafe { core::ptr::read_volatile(self.vmf().pmd) }.pmd as u64;
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
    ///   a PMD there would be refused, with a `WARN` for a write.
    ///
    /// Exact only while the caller serialises every insert of this 2 MiB block (module docs).
    ///
    /// # Errors
    /// `EINVAL` for a misaligned `pfn`; `ENOMEM` or `EFAULT` from the kernel.
    pub fn insert_pfn_pmd(&self, pfn: usize) -> Result<Option<bool>> {
        if pfn % (1 << PMD_ORDER) != 0 {
            return Err(EINVAL);
        }
        let write = self.is_write();
        match self.pmd_now() {
            Pmd::Table => return Ok(None),
            Pmd::Leaf if !write => return Ok(Some(false)),
            Pmd::Leaf | Pmd::None => {}
        }
        let was_mapped = self.is_mapped()?;
        let pfn_t = bindings::pfn_t { val: pfn as u64 };
        // SAFETY: By the type invariants `vmf` is the fault in progress on a `VM_PFNMAP`,
        // shared (so not copy-on-write) VMA; the caller checked that the whole 2 MiB block
        // lies in the VMA (`plan::huge_fault_chunk`), and the frames are one live 2 MiB chunk
        // of the mapping's pool. A `pfn_t` without flags is a plain special mapping. On a
        // present 2 MiB entry (a write fault) the kernel only upgrades it, and it maps this
        // same block (entries of this VMA map its pool at fixed offsets), so its check that
        // the frame is unchanged holds.
        let ret = unsafe { bindings::vmf_insert_pfn_pmd(self.vmf.as_ptr(), pfn_t, write) };
        fault_result(ret)?;
        // Nothing else inserts meanwhile (the caller's lock), so an entry now that was not
        // there before is ours.
        Ok(Some(!was_mapped && self.is_mapped()?))
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

/// The faults of a PFN-mapped VMA; `.open`/`.close` are [`VmOps`]'s.
pub trait PfnOps: VmOps {
    /// A 4 KiB fault: map it with [`PfnFault::insert_pfn`] (or find it mapped), or fail
    /// (`SIGBUS`).
    fn pfn_fault(this: ArcBorrow<'_, Self>, fault: &PfnFault<'_>) -> Result;

    /// A 2 MiB fault: map it with [`PfnFault::insert_pfn_pmd`] and return `true`, or return
    /// `false` to fall back to 4 KiB faults.
    fn pmd_fault(_this: ArcBorrow<'_, Self>, _fault: &PfnFault<'_>) -> Result<bool> {
        Ok(false)
    }
}

/// Attaches `M`'s PFN-map hooks and the per-mapping state `data` to a VMA made by
/// [`VmaNew::set_pfnmap`], and ends the setup: `mmap` succeeds with the returned [`Mapped`].
/// Call it once per `mmap`, last.
pub fn attach<M: PfnOps>(vma: &VmaNew, data: Arc<M>) -> Mapped {
    let raw = vma.as_ptr();
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
        let this = unsafe {
            <Arc<M> as ForeignOwnable>::borrow((*(*vmf).__bindgen_anon_1.vma).vm_private_data)
        };
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
    unsafe extern "C" fn huge_fault(
        vmf: *mut bindings::vm_fault,
        order: c_uint,
    ) -> bindings::vm_fault_t {
        if order != PMD_ORDER {
            return bindings::vm_fault_reason_VM_FAULT_FALLBACK;
        }
        // SAFETY: The caller's contract.
        unsafe { Self::run(vmf, M::pmd_fault) }
    }
}
