// SPDX-License-Identifier: GPL-2.0

//! Per-mapping `vm_operations_struct` (upstream has no Rust abstraction for `vm_ops` yet):
//! one [`VmOps`] trait over per-mapping state `Arc<M>`, with `.open`/`.close` and the optional
//! `.fault` and `.huge_fault` ([`VmOps::HAS_FAULT`], [`VmOps::HAS_HUGE_FAULT`], as upstream's
//! `#[vtable]` traits say which hooks a type has).
//!
//! The hooks are attached last in `mmap`, to a VMA of one of the two kinds that can take
//! faults: [`attach_mixedmap`] (sets `VM_MIXEDMAP`; pages are inserted) or [`attach_pfnmap`]
//! (a [`VmaPfnMap`]; page frames are inserted, and `.huge_fault` is offered). A fault gets a
//! [`VmFault`], which hands out the capability of its VMA's kind ([`VmFault::mixedmap`],
//! [`VmFault::pfnmap`]).
//!
//! `vma->vm_private_data` owns one `Arc<M>` reference per VMA: the attach stores the first,
//! `.open` (fork, a split, `mremap`) adds one for the new VMA, `.close` drops one.
//!
//! C header: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h)

use super::mm::pfnmap::{PfnFault, VmaPfnMap, PMD_ORDER};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    ffi::c_uint,
    mm::virt::{flags, VmaMixedMap, VmaNew, VmaRef},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

/// Proof that an `mmap` handler finished its VMA ([`attach_mixedmap`], [`attach_pfnmap`] or
/// [`finish`]); the `mmap` hooks of [`MiscDevice`](super::miscdevice::MiscDevice) and of pool
/// files can only succeed by returning one, so they cannot fail after per-mapping state was
/// attached (the kernel would drop the VMA without `.close` and leak the state).
pub struct Mapped(());

/// Ends a setup that needs no per-mapping hooks: `mmap` succeeds.
pub fn finish(_vma: &VmaNew) -> Mapped {
    Mapped(())
}

/// Per-mapping hooks; `Self` is the per-mapping state, one `Arc` reference per VMA.
pub trait VmOps: Sized + Send + Sync + 'static {
    /// Whether [`fault`](Self::fault) is implemented (else a fault is `SIGBUS`).
    const HAS_FAULT: bool = false;
    /// Whether [`huge_fault`](Self::huge_fault) is implemented; offered for PFN maps only.
    const HAS_HUGE_FAULT: bool = false;

    /// A new VMA now shares the mapping (`fork`, a split by `munmap`/`mprotect`, `mremap`).
    fn open(_this: ArcBorrow<'_, Self>) {}

    /// A VMA of the mapping goes away; its reference is dropped right after.
    fn close(_this: ArcBorrow<'_, Self>) {}

    /// A 4 KiB fault: map the page (through [`VmFault::mixedmap`] or [`VmFault::pfnmap`]) or
    /// fail (`ENOMEM` becomes `VM_FAULT_OOM`, anything else `SIGBUS`).
    fn fault(_this: ArcBorrow<'_, Self>, _fault: &VmFault<'_>) -> Result {
        Err(EFAULT)
    }

    /// A 2 MiB fault: map it and return `true`, or return `false` to fall back to 4 KiB
    /// faults.
    fn huge_fault(_this: ArcBorrow<'_, Self>, _fault: &VmFault<'_>) -> Result<bool> {
        Ok(false)
    }
}

/// Attaches `M`'s hooks and the per-mapping state `data` to the new VMA, sets `VM_MIXEDMAP`
/// (so `.fault` may insert pages under the read lock), and ends the setup. Call it once per
/// `mmap`, last; `insert` inserts any pages up front, through the [`VmaMixedMap`], from the
/// state.
///
/// # Errors
/// `EINVAL` for a VMA that has `VM_PFNMAP` ([`pfnmap`](super::mm::pfnmap)'s docs); what
/// `insert` returns (then nothing is attached and `mmap` fails).
pub fn attach_mixedmap<M: VmOps>(
    vma: &VmaNew,
    data: Arc<M>,
    insert: impl FnOnce(&VmaMixedMap, &M) -> Result,
) -> Result<Mapped> {
    if vma.flags() & flags::PFNMAP != 0 {
        return Err(EINVAL);
    }
    // The one call of `set_mixedmap` in pktmap (driver/kmod/.clippy.toml disallows others).
    #[allow(clippy::disallowed_methods)]
    let mixed = vma.set_mixedmap();
    insert(mixed, &data)?;
    // SAFETY: The VMA is the new one of this `mmap` call, not yet visible to other threads
    // (`VmaNew`'s invariants). `vm_private_data` takes ownership of one reference, released by
    // `.close` of this VMA; `vm_ops` points to a `'static` table.
    unsafe { install::<M>(vma.as_ptr(), data, VmVtable::<M>::MIXEDMAP) };
    Ok(Mapped(()))
}

/// Attaches `M`'s hooks (with `.huge_fault` if [`VmOps::HAS_HUGE_FAULT`]) and the per-mapping
/// state `data` to a VMA made by [`set_pfnmap`](super::mm::pfnmap::VmaNewPfnExt::set_pfnmap),
/// and ends the setup. Call it once per `mmap`, last.
pub fn attach_pfnmap<M: VmOps>(vma: &VmaPfnMap, data: Arc<M>) -> Mapped {
    // SAFETY: As in `attach_mixedmap`: the VMA is the new one of this `mmap` (`VmaPfnMap`'s
    // invariants).
    unsafe { install::<M>(vma.as_new().as_ptr(), data, VmVtable::<M>::PFNMAP) };
    Mapped(())
}

/// # Safety
///
/// `vma` is the new VMA of an `mmap` in progress, not yet visible to other threads.
unsafe fn install<M: VmOps>(
    vma: *mut bindings::vm_area_struct,
    data: Arc<M>,
    table: &'static bindings::vm_operations_struct,
) {
    // SAFETY: The caller's contract; the pointer `into_foreign` returns is released by the
    // `.close` of this VMA (or the VMA it is copied to takes another in `.open`).
    unsafe {
        (*vma).vm_private_data = data.into_foreign();
        (*vma).vm_ops = table;
    }
}

/// One page fault in a mapping that has [`VmOps`].
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a `.fault` or `.huge_fault` call in progress, with the
/// mmap lock (or the VMA lock) held for read, and `vmf->vma` is a VMA that
/// [`attach_mixedmap`] or [`attach_pfnmap`] set up (so it has a file).
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

    pub(in crate::sys) fn as_raw(&self) -> *mut bindings::vm_fault {
        self.vmf.as_ptr()
    }

    /// The faulting VMA (locked for read).
    pub fn vma(&self) -> &VmaRef {
        // SAFETY: By the type invariants the VMA is valid and locked for the fault.
        unsafe { VmaRef::from_raw(self.vmf().__bindgen_anon_1.vma) }
    }

    /// The faulting VMA where pages may be inserted, if it has `VM_MIXEDMAP`.
    pub fn mixedmap(&self) -> Option<&VmaMixedMap> {
        self.vma().as_mixedmap_vma()
    }

    /// The fault as a page-frame fault, if its VMA has `VM_PFNMAP`.
    pub fn pfnmap(&self) -> Option<PfnFault<'_>> {
        // SAFETY: `VM_PFNMAP` is checked here, and the VMA has a file (type invariants).
        (self.vma().flags() & flags::PFNMAP != 0).then(|| unsafe { PfnFault::new(self) })
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

/// The `vm_operations_struct` tables for `M`.
struct VmVtable<M: VmOps>(PhantomData<M>);

impl<M: VmOps> VmVtable<M> {
    const MIXEDMAP_VALUE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        open: Some(Self::open),
        close: Some(Self::close),
        fault: if M::HAS_FAULT {
            Some(Self::fault)
        } else {
            None
        },
        ..pin_init::zeroed()
    };
    const PFNMAP_VALUE: bindings::vm_operations_struct = bindings::vm_operations_struct {
        huge_fault: if M::HAS_HUGE_FAULT {
            Some(Self::huge_fault)
        } else {
            None
        },
        ..Self::MIXEDMAP_VALUE
    };
    /// Promoted to `'static`s because the values are constants.
    const MIXEDMAP: &'static bindings::vm_operations_struct = &Self::MIXEDMAP_VALUE;
    const PFNMAP: &'static bindings::vm_operations_struct = &Self::PFNMAP_VALUE;

    /// # Safety
    ///
    /// `vma->vm_private_data` holds a live reference from `Arc::<M>::into_foreign`, made by
    /// an attach or a previous `open`, and owned by the VMA `vma` was copied from.
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
    unsafe fn run(
        vmf: *mut bindings::vm_fault,
        f: impl FnOnce(ArcBorrow<'_, M>, &VmFault<'_>) -> Result<bool>,
    ) -> bindings::vm_fault_t {
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
        // INVARIANT: `fault` wraps the `vm_fault` of this call, on a VMA an attach set up.
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
        unsafe { Self::run(vmf, |this, f| M::fault(this, f).map(|()| true)) }
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
        unsafe { Self::run(vmf, M::huge_fault) }
    }
}
