// SPDX-License-Identifier: GPL-2.0

//! Per-mapping `vm_operations_struct` (pktmap only: upstream has no Rust abstraction for
//! `vm_ops` yet): `.open`, `.close` and `.fault` over per-mapping state `Arc<M>`.
//!
//! `vma->vm_private_data` owns one `Arc<M>` reference per VMA: [`attach`] stores the first,
//! `.open` (fork, a split, `mremap`) adds one for the new VMA, `.close` drops one.
//!
//! C header: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h)

use super::mm::virt::{Mapped, VmaMixedMap, VmaNew, VmaRef};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    bindings,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

/// Per-mapping hooks; `Self` is the per-mapping state, one `Arc` reference per VMA.
pub trait VmOps: Sized + Send + Sync + 'static {
    /// A new VMA now shares the mapping (`fork`, a split by `munmap`/`mprotect`, `mremap`).
    fn open(_this: ArcBorrow<'_, Self>) {}

    /// A VMA of the mapping goes away; its reference is dropped right after.
    fn close(_this: ArcBorrow<'_, Self>) {}

    /// A page fault: insert a page with [`VmFault::vma`]`().vm_insert_page(..)`, or return an
    /// error (`ENOMEM` becomes `VM_FAULT_OOM`, anything else `SIGBUS`).
    fn fault(_this: ArcBorrow<'_, Self>, _fault: &VmFault<'_>) -> Result {
        Err(EFAULT)
    }
}

/// Attaches `M`'s `.open`/`.close`/`.fault` and the per-mapping state `data` to the new VMA,
/// sets `VM_MIXEDMAP` (so `.fault` may insert pages under the read lock), and ends the setup:
/// `mmap` succeeds with the returned [`Mapped`]. Call it once per `mmap`, last.
pub fn attach<M: VmOps>(vma: &VmaNew, data: Arc<M>) -> Mapped {
    let vma = vma.set_mixedmap();
    let raw = vma.as_ptr();
    // SAFETY: The VMA is the new one of this `mmap` call, not yet visible to other threads
    // (`VmaNew`'s invariants). `vm_private_data` takes ownership of one reference, released by
    // `.close` of this VMA; `vm_ops` points to a `'static` table.
    unsafe {
        debug_assert!((*raw).vm_ops.is_null() || (*raw).vm_private_data.is_null());
        (*raw).vm_private_data = data.into_foreign().cast_mut();
        (*raw).vm_ops = VmVtable::<M>::TABLE;
    }
    Mapped(())
}

/// One page fault in a mapping that has [`VmOps`].
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a `.fault` call in progress, with the mmap lock (or the
/// VMA lock) held for read, and `vmf->vma` is a VMA that [`attach`] set up (so `VM_MIXEDMAP`).
pub struct VmFault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _p: PhantomData<&'a bindings::vm_fault>,
}

impl VmFault<'_> {
    fn vmf(&self) -> &bindings::vm_fault {
        // SAFETY: By the type invariants `vmf` is valid for the call, and the fault core does
        // not modify it while the handler runs.
        unsafe { self.vmf.as_ref() }
    }

    /// The faulting VMA (locked for read; `VM_MIXEDMAP` is set).
    pub fn vma(&self) -> &VmaMixedMap {
        // SAFETY: By the type invariants the VMA is valid and locked for the fault, and
        // `attach` set `VM_MIXEDMAP` on it (never cleared), which is `VmaMixedMap`'s invariant;
        // `VmaMixedMap` is a transparent wrapper of `VmaRef`, itself one of the C VMA.
        unsafe { &*VmaRef::from_raw(self.vmf().__bindgen_anon_1.vma).cast_mixedmap() }
    }

    /// `vmf->pgoff`: the file offset, in pages, of the faulting page (`vm_pgoff` of the VMA
    /// plus the page's index in it). Subtract the `pgoff` saved at `mmap` to get the page's
    /// index in the resource.
    pub fn pgoff(&self) -> usize {
        self.vmf().__bindgen_anon_1.pgoff
    }

    /// The page-aligned user address that faulted.
    pub fn address(&self) -> usize {
        self.vmf().__bindgen_anon_1.address
    }

    /// Whether the access was a write.
    pub fn is_write(&self) -> bool {
        self.vmf().flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }
}

/// The `vm_operations_struct` trampolines for `M`.
pub(in crate::sys) struct VmVtable<M: VmOps>(PhantomData<M>);

impl<M: VmOps> VmVtable<M> {
    /// The `.open` trampoline, shared with [`pfn_ops`](super::pfn_ops).
    pub(in crate::sys) const OPEN: unsafe extern "C" fn(*mut bindings::vm_area_struct) = Self::open;
    /// The `.close` trampoline, shared with [`pfn_ops`](super::pfn_ops).
    pub(in crate::sys) const CLOSE: unsafe extern "C" fn(*mut bindings::vm_area_struct) =
        Self::close;

    const TABLE_VALUE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(Self::open),
        close: Some(Self::close),
        fault: Some(Self::fault),
        // SAFETY: All other fields are nullable function pointers; zero means "not provided".
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };
    /// Promoted to a `'static` because `TABLE_VALUE` is a constant.
    const TABLE: &'static bindings::vm_operations_struct = &Self::TABLE_VALUE;

    /// # Safety
    ///
    /// `vma->vm_private_data` holds a live reference from `Arc::<M>::into_foreign`, made by
    /// `attach` or a previous `open`, and owned by the VMA `vma` was copied from.
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid for the call; the VMA it was copied from still owns its
        // reference, so the borrow is valid while we take another one for the new VMA.
        let this = unsafe { <Arc<M> as ForeignOwnable>::borrow((*vma).vm_private_data) };
        let extra: Arc<M> = this.into();
        M::open(this);
        // The new VMA owns this reference; `into_foreign` returns the same pointer it shares.
        let _ = extra.into_foreign();
    }

    /// # Safety
    ///
    /// `vma->vm_private_data` holds the reference this VMA owns; no hook of this VMA runs after.
    unsafe extern "C" fn close(vma: *mut bindings::vm_area_struct) {
        // SAFETY: The VMA owns this reference (function requirement) and gives it up here.
        let this = unsafe { <Arc<M> as ForeignOwnable>::from_foreign((*vma).vm_private_data) };
        M::close(this.as_arc_borrow());
        drop(this);
    }

    /// # Safety
    ///
    /// Called by the fault core for a VMA with these ops, with the mmap or VMA lock held.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: `vmf` and `vmf->vma` are valid for the call; the VMA owns a reference to
        // the state, which cannot be dropped while the VMA is locked for the fault.
        let this = unsafe {
            <Arc<M> as ForeignOwnable>::borrow((*(*vmf).__bindgen_anon_1.vma).vm_private_data)
        };
        let fault = VmFault {
            // SAFETY: The fault core never passes a null `vmf`.
            vmf: unsafe { NonNull::new_unchecked(vmf) },
            _p: PhantomData,
        };
        // INVARIANT: `fault` wraps the `vm_fault` of this call, whose VMA `attach` set up.
        match M::fault(this, &fault) {
            Ok(()) => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }
}
