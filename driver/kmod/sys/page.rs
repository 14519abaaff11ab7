// SPDX-License-Identifier: GPL-2.0

//! Pages that user space may map (on top of upstream `rust/kernel/page.rs`'s [`Page`]).
//!
//! C header: [`srctree/include/linux/gfp.h`](srctree/include/linux/gfp.h)

use core::{mem::size_of, ptr};
use kernel::{
    bindings,
    page::{Page, PAGE_SIZE},
    prelude::*,
};

/// A zeroed order-0 page, charged to the allocating task's memory cgroup, that can be mapped
/// into user space and read or written by the driver.
///
/// Dropping it drops the driver's reference (`__free_pages`); user mappings keep their own
/// (taken by `vm_insert_page`), so the memory lives until the last of them is unmapped.
///
/// User space may write the page at any time through a shared mapping, so the driver never
/// forms a Rust reference to its contents: it copies with `copy_{to,from}_user`
/// ([`uaccess`](super::uaccess)) or accesses single aligned words with volatile loads and
/// stores (the kernel's `READ_ONCE`/`WRITE_ONCE`).
///
/// # Invariants
///
/// `self.0` owns a reference to a valid order-0 page that is not a slab, anonymous or typed
/// page (so `vm_insert_page` accepts it).
pub struct SharedPage(Page);

impl SharedPage {
    /// Allocates a zeroed page charged to the current task's memory cgroup
    /// (`alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)`), so memcg limits and the OOM killer see
    /// pool memory as its creator's.
    ///
    /// # Errors
    /// `ENOMEM` (also when the memory cgroup is at its limit).
    pub fn new() -> Result<Self> {
        // INVARIANT: `alloc_page` returns a fresh order-0 page from the buddy allocator; memcg
        // charging (`__GFP_ACCOUNT`) marks it kmem but gives it no page type.
        Ok(Self(Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?))
    }

    /// The kernel's page.
    pub fn as_page(&self) -> &Page {
        &self.0
    }

    /// The page's physical address.
    pub fn phys(&self) -> u64 {
        super::chunk::page_phys(self.as_ptr())
    }

    pub(in crate::sys) fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// Runs `f` with the page's kernel address.
    pub(in crate::sys) fn with_mapped<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
        // SAFETY: By the type invariants the page is valid. `kmap_local_page` cannot fail.
        let addr = unsafe { bindings::kmap_local_page(self.as_ptr()) };
        let r = f(addr.cast());
        // SAFETY: `addr` came from the `kmap_local_page` just above, and any mapping made by `f`
        // was already undone when `f` returned (kmap_local mappings nest), so this is the
        // innermost one.
        unsafe { bindings::kunmap_local(addr) };
        r
    }

    /// Checks that an aligned `T` at `offset` lies inside the page.
    fn check_word<T>(offset: usize) -> Result {
        let end = offset.checked_add(size_of::<T>()).ok_or(EINVAL)?;
        if end > PAGE_SIZE || offset % core::mem::align_of::<T>() != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Stores `value` at byte `offset` with one volatile 64-bit write (`WRITE_ONCE`).
    ///
    /// # Errors
    /// `EINVAL` if `offset` is not 8-byte aligned or the word does not fit in the page.
    pub fn store_u64(&self, offset: usize, value: u64) -> Result {
        Self::check_word::<u64>(offset)?;
        self.with_mapped(|base| {
            // SAFETY: `base` maps the whole page; `offset + 8 <= PAGE_SIZE` and the address is
            // aligned (checked above). A volatile word store does not race in the Rust sense
            // with user-space accesses (it is the kernel's `WRITE_ONCE`).
            unsafe { ptr::write_volatile(base.add(offset).cast::<u64>(), value) }
        });
        Ok(())
    }

    /// Loads the 64-bit word at byte `offset` with one volatile read (`READ_ONCE`).
    ///
    /// # Errors
    /// `EINVAL` if `offset` is not 8-byte aligned or the word does not fit in the page.
    pub fn load_u64(&self, offset: usize) -> Result<u64> {
        Self::check_word::<u64>(offset)?;
        Ok(self.with_mapped(|base| {
            // SAFETY: As in `store_u64`; a volatile load is the kernel's `READ_ONCE`.
            unsafe { ptr::read_volatile(base.add(offset).cast::<u64>()) }
        }))
    }

    /// Adds `n` to the 64-bit word at byte `offset` atomically (`atomic64_add` on the page's
    /// memory), for counters that live in the page itself.
    ///
    /// # Errors
    /// `EINVAL` if `offset` is not 8-byte aligned or the word does not fit in the page.
    pub fn fetch_add_u64(&self, offset: usize, n: u64) -> Result {
        Self::check_word::<u64>(offset)?;
        self.with_mapped(|base| {
            // SAFETY: `base + offset` is an aligned word inside the mapped page (checked above),
            // valid for the call. Every other access to it is atomic or a volatile word load
            // (this driver's, and user space's through read-only mappings), none of them
            // through a Rust reference, so an atomic view of it is sound.
            let word = unsafe { core::sync::atomic::AtomicU64::from_ptr(base.add(offset).cast()) };
            word.fetch_add(n, core::sync::atomic::Ordering::Relaxed);
        });
        Ok(())
    }

    /// Stores `value` at byte `offset` with one volatile 32-bit write (`WRITE_ONCE`).
    ///
    /// # Errors
    /// `EINVAL` if `offset` is not 4-byte aligned or the word does not fit in the page.
    pub fn store_u32(&self, offset: usize, value: u32) -> Result {
        Self::check_word::<u32>(offset)?;
        self.with_mapped(|base| {
            // SAFETY: As in `store_u64`, for a 4-byte aligned word inside the page.
            unsafe { ptr::write_volatile(base.add(offset).cast::<u32>(), value) }
        });
        Ok(())
    }

    /// Loads the 32-bit word at byte `offset` with one volatile read (`READ_ONCE`).
    ///
    /// # Errors
    /// `EINVAL` if `offset` is not 4-byte aligned or the word does not fit in the page.
    pub fn load_u32(&self, offset: usize) -> Result<u32> {
        Self::check_word::<u32>(offset)?;
        Ok(self.with_mapped(|base| {
            // SAFETY: As in `store_u32`; a volatile load is the kernel's `READ_ONCE`.
            unsafe { ptr::read_volatile(base.add(offset).cast::<u32>()) }
        }))
    }
}

/// The number of pages of RAM the kernel manages (`totalram_pages()`).
pub fn total_ram_pages() -> u64 {
    // SAFETY: `_totalram_pages` is a kernel global that lives forever; `totalram_pages()` reads
    // it with `atomic_long_read`, a plain aligned word load, which a volatile load matches.
    let pages = unsafe { core::ptr::addr_of!(bindings::_totalram_pages.counter).read_volatile() };
    u64::try_from(pages).unwrap_or(0)
}
