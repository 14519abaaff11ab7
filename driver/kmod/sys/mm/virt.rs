// SPDX-License-Identifier: GPL-2.0

//! Virtual memory areas, with upstream `rust/kernel/mm/virt.rs`'s names and semantics:
//!
//! - [`VmaRef`]: a VMA whose lock the caller holds (read or write); geometry and flags;
//! - [`VmaMixedMap`]: a VMA with `VM_MIXEDMAP` set, where pages may be inserted;
//! - [`VmaNew`]: the VMA being set up inside `f_op->mmap`, not yet visible to other threads, so
//!   its flags may be changed.
//!
//! Additions upstream lacks (marked so): [`VmaRef::pgoff`] and [`VmaMixedMap::vm_insert_pages`].
//!
//! C headers: [`srctree/include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`srctree/include/linux/mm_types.h`](srctree/include/linux/mm_types.h)

use crate::sys::page::SharedPage;
use core::ops::Deref;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_ulong,
    page::{Page, PAGE_SIZE},
    prelude::*,
    types::Opaque,
};

/// VMA flags (`vm_flags_t`), as upstream's `mm::virt::flags`.
pub mod flags {
    use kernel::bindings;

    /// The type of VMA flags.
    #[allow(non_camel_case_types, reason = "the C type's name")]
    pub type vm_flags_t = usize;

    /// Mapped readable (`VM_READ`).
    pub const READ: vm_flags_t = bindings::VM_READ as vm_flags_t;
    /// Mapped writable (`VM_WRITE`).
    pub const WRITE: vm_flags_t = bindings::VM_WRITE as vm_flags_t;
    /// Mapped executable (`VM_EXEC`).
    pub const EXEC: vm_flags_t = bindings::VM_EXEC as vm_flags_t;
    /// `MAP_SHARED` (`VM_SHARED`).
    pub const SHARED: vm_flags_t = bindings::VM_SHARED as vm_flags_t;
    /// `mprotect` may add `PROT_WRITE` (`VM_MAYWRITE`).
    pub const MAYWRITE: vm_flags_t = bindings::VM_MAYWRITE as vm_flags_t;
    /// `mprotect` may add `PROT_EXEC` (`VM_MAYEXEC`).
    pub const MAYEXEC: vm_flags_t = bindings::VM_MAYEXEC as vm_flags_t;
    /// `mremap` cannot grow it (`VM_DONTEXPAND`).
    pub const DONTEXPAND: vm_flags_t = bindings::VM_DONTEXPAND as vm_flags_t;
    /// Not inherited by `fork` (`VM_DONTCOPY`).
    pub const DONTCOPY: vm_flags_t = bindings::VM_DONTCOPY as vm_flags_t;
    /// Pages may be inserted with `vm_insert_page` (`VM_MIXEDMAP`).
    pub const MIXEDMAP: vm_flags_t = bindings::VM_MIXEDMAP as vm_flags_t;
    /// Never merged with a neighbour (`VM_SPECIAL`: `VM_IO | VM_DONTEXPAND | VM_PFNMAP |
    /// VM_MIXEDMAP`).
    pub const SPECIAL: vm_flags_t = bindings::VM_SPECIAL as vm_flags_t;
}

use flags::vm_flags_t;

/// A VMA whose lock (the mmap lock or the VMA's own lock) the caller holds.
///
/// # Invariants
///
/// The wrapped VMA is valid, and its lock is held for at least as long as the borrow.
#[repr(transparent)]
pub struct VmaRef {
    vma: Opaque<bindings::vm_area_struct>,
}

impl VmaRef {
    /// # Safety
    ///
    /// `vma` is valid and locked (read or write) for `'a`.
    pub(in crate::sys) unsafe fn from_raw<'a>(vma: *const bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `VmaRef` is a transparent wrapper; the caller's guarantee is the invariant.
        unsafe { &*vma.cast::<Self>() }
    }

    /// The raw VMA.
    pub(in crate::sys) fn as_ptr(&self) -> *mut bindings::vm_area_struct {
        self.vma.get()
    }

    /// The VMA's flags.
    pub fn flags(&self) -> vm_flags_t {
        // SAFETY: By the type invariants the VMA is valid and locked, so its flags are stable
        // (writers of `vm_flags` hold the VMA write-locked). Both union members are the same
        // `vm_flags_t`.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.vm_flags }
    }

    /// The first user address of the VMA.
    pub fn start(&self) -> usize {
        // SAFETY: As in `flags`.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_start }
    }

    /// One past the last user address of the VMA.
    pub fn end(&self) -> usize {
        // SAFETY: As in `flags`.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_end }
    }

    /// `vma->vm_pgoff`: the file offset of [`start`](Self::start), in pages (pktmap addition).
    ///
    /// Inside `mmap` it is the offset exactly as user space passed it; after a split or
    /// `mremap` it moves with the VMA's start, so fault handlers must use the value saved at
    /// `mmap` time, never re-decode theirs.
    pub fn pgoff(&self) -> usize {
        // SAFETY: As in `flags`.
        unsafe { (*self.as_ptr()).vm_pgoff }
    }

    /// The VMA as a raw `VmaMixedMap` pointer, for callers that know `VM_MIXEDMAP` is set.
    pub(in crate::sys) fn cast_mixedmap(&self) -> *const VmaMixedMap {
        (self as *const Self).cast::<VmaMixedMap>()
    }

    /// The VMA as a [`VmaMixedMap`] if it has `VM_MIXEDMAP` set.
    pub fn as_mixedmap_vma(&self) -> Option<&VmaMixedMap> {
        if self.flags() & flags::MIXEDMAP != 0 {
            // SAFETY: `VmaMixedMap` is a transparent wrapper of `VmaRef` whose extra invariant
            // (`VM_MIXEDMAP` is set) was just checked; the flag is never cleared once set.
            Some(unsafe { &*(self as *const Self).cast::<VmaMixedMap>() })
        } else {
            None
        }
    }
}

/// A VMA with `VM_MIXEDMAP` set: [`vm_insert_page`](Self::vm_insert_page) may be called
/// with only the read lock held.
///
/// # Invariants
///
/// As [`VmaRef`], and `VM_MIXEDMAP` is set.
#[repr(transparent)]
pub struct VmaMixedMap {
    vma: VmaRef,
}

impl Deref for VmaMixedMap {
    type Target = VmaRef;

    fn deref(&self) -> &VmaRef {
        &self.vma
    }
}

impl VmaMixedMap {
    /// Maps `page` at user address `address` of the VMA (`vm_insert_page`); the mapping takes
    /// its own page reference.
    ///
    /// # Errors
    /// What `vm_insert_page` returns: `EFAULT` for an address outside the VMA, `EBUSY` if a
    /// page is already mapped there, `ENOMEM`.
    pub fn vm_insert_page(&self, address: usize, page: &Page) -> Result {
        // SAFETY: By the type invariants the VMA is valid, locked, and has `VM_MIXEDMAP`, so
        // `vm_insert_page` takes no write-lock-only path; it checks `address` itself. `page`
        // is a valid page; `vm_insert_page` refuses slab and typed pages with an error.
        to_result(unsafe { bindings::vm_insert_page(self.as_ptr(), address, page.as_ptr()) })
    }

    /// Maps `pages` at consecutive pages of the VMA from user address `address`, in batches
    /// (`vm_insert_pages`; pktmap addition).
    ///
    /// # Errors
    /// `EINVAL` if they do not fit in the VMA, else what `vm_insert_pages` returns. On an
    /// error some pages may already be mapped (`mmap` failing unmaps them).
    pub fn vm_insert_pages<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result {
        const BATCH: usize = 16;
        let mut batch = [core::ptr::null_mut::<bindings::page>(); BATCH];
        let mut n = 0;
        let mut at = address;
        for page in pages {
            batch[n] = page.as_ptr();
            n += 1;
            if n == BATCH {
                at = self.insert_batch(at, &mut batch[..n])?;
                n = 0;
            }
        }
        if n > 0 {
            self.insert_batch(at, &mut batch[..n])?;
        }
        Ok(())
    }

    /// Maps `pages` at consecutive user pages from `address`, in batches (`vm_insert_pages`),
    /// skipping the pages another fault already mapped (`EBUSY`); returns how many this call
    /// mapped (pktmap addition: lazy fault-around).
    ///
    /// # Errors
    /// `EINVAL` if the range leaves the VMA, else what `vm_insert_pages` returns other than
    /// `EBUSY` (pages mapped before the error stay mapped and are not counted).
    pub fn vm_insert_pages_skipping<'p>(
        &self,
        address: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result<usize> {
        const BATCH: usize = 16;
        let mut batch = [core::ptr::null_mut::<bindings::page>(); BATCH];
        let (mut at, mut inserted) = (address, 0);
        let mut pages = pages.into_iter().peekable();
        while pages.peek().is_some() {
            let mut n = 0;
            for page in pages.by_ref().take(BATCH) {
                batch[n] = page.as_ptr();
                n += 1;
            }
            let end = n
                .checked_mul(PAGE_SIZE)
                .and_then(|b| at.checked_add(b))
                .ok_or(EINVAL)?;
            if at < self.start() || end > self.end() || at % PAGE_SIZE != 0 {
                return Err(EINVAL);
            }
            let mut done = 0;
            while done < n {
                let mut left: c_ulong = n - done;
                // SAFETY: By the type invariants the VMA is valid, locked and `VM_MIXEDMAP`.
                // `batch[done..n]` are pages of live `SharedPage`s borrowed for this call, and
                // `at + done * PAGE_SIZE .. end` is inside the VMA (checked above).
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

    /// Inserts one batch at `address`; returns the address after it.
    fn insert_batch(&self, address: usize, pages: &mut [*mut bindings::page]) -> Result<usize> {
        let bytes = pages.len().checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let end = address.checked_add(bytes).ok_or(EINVAL)?;
        if address < self.start() || end > self.end() {
            return Err(EINVAL);
        }
        let mut num: c_ulong = pages.len();
        // SAFETY: By the type invariants the VMA is valid, locked and `VM_MIXEDMAP`.
        // `pages` holds `num` pointers to pages owned by live `SharedPage`s (borrowed by the
        // caller for this call), and `address .. end` is inside the VMA (checked above).
        let ret = unsafe {
            bindings::vm_insert_pages(self.as_ptr(), address, pages.as_mut_ptr(), &mut num)
        };
        to_result(ret)?;
        if num != 0 {
            return Err(EFAULT);
        }
        Ok(end)
    }
}

/// The VMA being set up inside `f_op->mmap`.
///
/// # Invariants
///
/// As [`VmaRef`], with the mmap lock held for write, and the VMA is not yet visible to other
/// threads, so plain writes to its flags cannot race.
#[repr(transparent)]
pub struct VmaNew {
    vma: VmaRef,
}

impl Deref for VmaNew {
    type Target = VmaRef;

    fn deref(&self) -> &VmaRef {
        &self.vma
    }
}

impl VmaNew {
    /// # Safety
    ///
    /// `vma` is the new VMA of an `f_op->mmap` call in progress, used only during it.
    pub(in crate::sys) unsafe fn from_raw<'a>(vma: *mut bindings::vm_area_struct) -> &'a Self {
        // SAFETY: `VmaNew` is a transparent wrapper; the caller's guarantee is the invariant.
        unsafe { &*vma.cast::<Self>() }
    }

    pub(in crate::sys) fn update_flags(&self, set: vm_flags_t, unset: vm_flags_t) {
        let flags = (self.flags() | set) & !unset;
        // SAFETY: By the type invariants the VMA is not yet visible to other threads, so a
        // plain write cannot race (as upstream `VmaNew::update_flags`). The flags we set or
        // clear are valid for a driver mapping.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.__vm_flags = flags };
    }

    /// Whether the mapping may be read (`VM_READ`).
    pub fn readable(&self) -> bool {
        self.flags() & flags::READ != 0
    }

    /// Whether the mapping asked for `PROT_WRITE` (`VM_WRITE`).
    pub fn writable(&self) -> bool {
        self.flags() & flags::WRITE != 0
    }

    /// Whether the mapping asked for `PROT_EXEC` (`VM_EXEC`).
    pub fn executable(&self) -> bool {
        self.flags() & flags::EXEC != 0
    }

    /// Whether the mapping is `MAP_SHARED` (`VM_SHARED`).
    pub fn shared(&self) -> bool {
        self.flags() & flags::SHARED != 0
    }

    /// Sets `VM_MIXEDMAP`, so pages may be inserted (also by a fault handler, under the read
    /// lock, where `vm_insert_page` would otherwise trip its `BUG_ON(mmap_read_trylock())`).
    pub fn set_mixedmap(&self) -> &VmaMixedMap {
        self.update_flags(flags::MIXEDMAP, 0);
        // SAFETY: `VmaMixedMap` is a transparent wrapper of `VmaRef`; `VM_MIXEDMAP` was just
        // set and is never cleared.
        unsafe { &*(&self.vma as *const VmaRef).cast::<VmaMixedMap>() }
    }

    /// Sets `vma->vm_pgoff` (pktmap addition): what the offset of the mapping's start is from
    /// now on (in `/proc/PID/maps`, for splits), e.g. without a bit that only asked something
    /// of `mmap`. Call it before inserting anything.
    pub fn set_pgoff(&self, pgoff: usize) {
        // SAFETY: By the type invariants the VMA is not yet visible to other threads, so a
        // plain write cannot race (as in `update_flags`); nothing has been mapped by offset.
        unsafe { (*self.as_ptr()).vm_pgoff = pgoff };
    }

    /// Sets `VM_DONTEXPAND`: `mremap` cannot grow the mapping, and (with `VM_SPECIAL`) the VMA
    /// is never merged with a neighbour.
    pub fn set_dontexpand(&self) {
        self.update_flags(flags::DONTEXPAND, 0);
    }

    /// Sets `VM_DONTCOPY`: a child of `fork` does not inherit the mapping.
    pub fn set_dontcopy(&self) {
        self.update_flags(flags::DONTCOPY, 0);
    }

    /// Clears `VM_MAYWRITE`, so `mprotect(PROT_WRITE)` fails with `EACCES` later.
    ///
    /// # Errors
    /// `EINVAL` if the mapping is already writable (`VM_WRITE`), as upstream.
    pub fn try_clear_maywrite(&self) -> Result {
        if self.writable() {
            return Err(EINVAL);
        }
        self.update_flags(0, flags::MAYWRITE);
        Ok(())
    }

    /// Clears `VM_MAYEXEC`, so `mprotect(PROT_EXEC)` fails with `EACCES` later.
    ///
    /// # Errors
    /// `EINVAL` if the mapping is already executable (`VM_EXEC`), as upstream.
    pub fn try_clear_mayexec(&self) -> Result {
        if self.executable() {
            return Err(EINVAL);
        }
        self.update_flags(0, flags::MAYEXEC);
        Ok(())
    }

    /// Ends a setup that needs no per-mapping hooks: `mmap` succeeds.
    pub fn finish(&self) -> Mapped {
        Mapped(())
    }
}

/// Proof that an `mmap` handler finished its VMA ([`VmaNew::finish`] or
/// [`vm_ops::attach`](crate::sys::vm_ops::attach)); `MiscDevice::mmap` can only succeed by
/// returning one, so it cannot fail after per-mapping state was attached (the kernel would
/// drop the VMA without `.close` and leak the state).
pub struct Mapped(pub(in crate::sys) ());
