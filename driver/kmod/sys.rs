// SPDX-License-Identifier: GPL-2.0

//! The only file of `pktmap.ko` with `unsafe`: thin safe wrappers over the C API of Linux 6.12.
//!
//! The kernel we build (Debian's 6.12) predates the upstream Rust abstractions for misc devices,
//! files and VMAs (`kernel::miscdevice`, `kernel::mm::virt`), so this file is our own small
//! version of them. Everything else in the module is safe code on top of these types:
//!
//! - [`Registration`]: a misc device (`/dev/NAME`) that is deregistered on drop;
//! - [`FileOps`]: what a driver implements for each open file — `open`/`release` with per-open
//!   private state, `ioctl`, `read`/`write` (so also `pread`/`pwrite`) and `mmap`;
//! - [`NewVma`]: the VMA being set up inside `mmap` — flags, page insertion, and [`VmOps`]
//!   (`.open`/`.close`/`.fault`) with per-mapping private state;
//! - [`Fault`]: one page fault, served by inserting a [`SharedPage`];
//! - [`SharedPage`]: a zeroed page that may be mapped into user space; it drops its reference
//!   on drop, and user mappings hold their own;
//! - [`UserIn`]/[`UserOut`]: the user buffer of a `write`/`read`, copied page by page.
//!
//! # Ownership and drop order
//!
//! - `file->private_data` owns one reference of the driver's per-open `Arc<T>`; `release` takes
//!   it back ([`FileOps::release`]).
//! - `vma->vm_private_data` owns one reference of the mapping's `Arc<M>` *per VMA*: `mmap`
//!   stores the first, each `.open` (fork, split, mremap) adds one for the new VMA, and each
//!   `.close` drops one. Every VMA also holds `vma->vm_file`, so `release` only runs after the
//!   last VMA is gone, and `fops->owner` holds the module while any file is open.
//! - A page inserted into a VMA gets its own page reference from `vm_insert_page`, so a
//!   [`SharedPage`] may be dropped while user space still maps it; the page is freed when the
//!   last mapping of it goes away.
//!
//! # References
//!
//! C headers: [`srctree/include/linux/miscdevice.h`], [`srctree/include/linux/fs.h`],
//! [`srctree/include/linux/mm.h`], [`srctree/include/linux/mm_types.h`].
//!
//! [`srctree/include/linux/miscdevice.h`]: srctree/include/linux/miscdevice.h
//! [`srctree/include/linux/fs.h`]: srctree/include/linux/fs.h
//! [`srctree/include/linux/mm.h`]: srctree/include/linux/mm.h
//! [`srctree/include/linux/mm_types.h`]: srctree/include/linux/mm_types.h

use core::{
    marker::{PhantomData, PhantomPinned},
    mem::{offset_of, size_of, MaybeUninit},
    pin::Pin,
    ptr::{self, NonNull},
};
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void},
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::{AsBytes, ForeignOwnable, FromBytes, Opaque},
    uaccess::{UserPtr, UserSlice},
};

use crate::abi::ioctl::{
    PoolChunk, PoolCreate, PoolExport, PoolInfo, ResourceId, RingCreate, RingInfo, State,
};

// ---------------------------------------------------------------------------------------------
// struct miscdevice: declared here because 6.12's rust/bindings/bindings_helper.h does not
// include <linux/miscdevice.h>.

/// `struct miscdevice` from `include/linux/miscdevice.h` (6.12), field for field.
///
/// Checked against the C header of the tree we build: see the offset asserts below and the
/// runtime check in [`Registration::register`] (the C side writes `minor` and `this_device`).
#[repr(C)]
struct MiscDevice {
    minor: c_int,
    name: *const c_char,
    fops: *const bindings::file_operations,
    list: bindings::list_head,
    parent: *mut bindings::device,
    this_device: *mut bindings::device,
    groups: *mut *const c_void,
    nodename: *const c_char,
    mode: bindings::umode_t,
}

// The x86_64 layout of `struct miscdevice` in 6.12, as `pahole`/`offsetof` report it.
const _: () = {
    assert!(offset_of!(MiscDevice, minor) == 0);
    assert!(offset_of!(MiscDevice, name) == 8);
    assert!(offset_of!(MiscDevice, fops) == 16);
    assert!(offset_of!(MiscDevice, list) == 24);
    assert!(offset_of!(MiscDevice, parent) == 40);
    assert!(offset_of!(MiscDevice, this_device) == 48);
    assert!(offset_of!(MiscDevice, groups) == 56);
    assert!(offset_of!(MiscDevice, nodename) == 64);
    assert!(offset_of!(MiscDevice, mode) == 72);
    assert!(size_of::<MiscDevice>() == 80);
};

/// `MISC_DYNAMIC_MINOR`: let the misc core pick a minor.
const MISC_DYNAMIC_MINOR: c_int = 255;

// Declared with an opaque pointer: rustc's `improper_ctypes` lint follows `*mut MiscDevice`
// down to bindgen's empty `struct mod_arch_specific` (through `fops->owner`) and rejects it.
extern "C" {
    fn misc_register(misc: *mut c_void) -> c_int;
    fn misc_deregister(misc: *mut c_void);
}

// ---------------------------------------------------------------------------------------------
// Plain-old-data: the ioctl argument structs of the shared ABI may be copied to and from user
// space byte for byte.

macro_rules! pod {
    ($($t:ty => $fields:expr;)*) => {$(
        // No padding: the size is the sum of the field sizes (checked at compile time).
        const _: () = assert!(size_of::<$t>() == $fields);
        // SAFETY: `$t` is `#[repr(C)]`, made only of `u32`/`u64` fields, and has no padding
        // (asserted above), so every bit pattern is a valid value.
        unsafe impl FromBytes for $t {}
        // SAFETY: Same as above: no padding and no uninitialized bytes, so every byte may be
        // read and copied to user space.
        unsafe impl AsBytes for $t {}
    )*};
}

pod! {
    PoolCreate => 6 * 4 + 8;
    PoolInfo => 4 * 4 + 2 * 8 + 2 * 4 + 8;
    PoolChunk => 2 * 4 + 2 * 8;
    PoolExport => 4 * 4;
    RingCreate => 4 * 4;
    RingInfo => 4 * 4 + 2 * 8;
    ResourceId => 4;
    State => 9 * 8;
}

/// Whether the calling task has `CAP_SYS_ADMIN` (`capable`, which also records the use for
/// auditing).
pub fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

/// Copies a `T` in from user memory at `arg` (an ioctl argument).
///
/// # Errors
/// `EFAULT` if the memory is not readable.
pub fn read_user<T: FromBytes>(arg: UserPtr) -> Result<T> {
    UserSlice::new(arg, size_of::<T>()).reader().read::<T>()
}

/// Copies `value` out to user memory at `arg` (an ioctl argument).
///
/// # Errors
/// `EFAULT` if the memory is not writable.
pub fn write_user<T: AsBytes>(arg: UserPtr, value: &T) -> Result {
    UserSlice::new(arg, size_of::<T>()).writer().write(value)
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// A zeroed order-0 page that can be mapped into user space and read or written by the driver.
///
/// Dropping it drops the driver's reference (`__free_pages`); user mappings keep their own
/// (taken by `vm_insert_page`), so the memory lives until the last of them is unmapped.
///
/// User space may write the page at any time through a shared mapping, so the driver never
/// forms a Rust reference to its contents: it copies with `copy_{to,from}_user` or accesses
/// single aligned words with volatile loads and stores (the kernel's `READ_ONCE`/`WRITE_ONCE`).
///
/// # Invariants
///
/// `self.0` owns a reference to a valid order-0 page that is not a slab, anonymous or typed
/// page (so `vm_insert_page` accepts it).
pub struct SharedPage(Page);

impl SharedPage {
    /// Allocates a zeroed page (`alloc_page(GFP_KERNEL | __GFP_ZERO)`).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        // INVARIANT: `alloc_page` returns a fresh order-0 page from the buddy allocator.
        Ok(Self(Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?))
    }

    fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// The page's physical address.
    pub fn phys(&self) -> u64 {
        crate::pfn::page_phys(self.as_ptr())
    }

    /// Runs `f` with the page's kernel address.
    fn with_mapped<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
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

/// Checks `offset..offset + len` against one page.
fn check_span(offset: usize, len: usize) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_SIZE => Ok(()),
        _ => Err(EINVAL),
    }
}

/// The user buffer of a `read`/`pread`: the driver copies page contents out to it.
pub struct UserOut {
    addr: UserPtr,
    len: usize,
    done: usize,
}

impl UserOut {
    /// Bytes still to fill.
    pub fn remaining(&self) -> usize {
        self.len - self.done
    }

    /// Bytes copied so far (what `read` returns).
    pub fn copied(&self) -> usize {
        self.done
    }

    /// Copies `len` bytes at `offset` in `page` to the next `len` bytes of the user buffer.
    ///
    /// # Errors
    /// `EINVAL` if the span leaves the page or the buffer; `EFAULT` if user memory is not
    /// writable (then nothing of this call counts as copied).
    pub fn copy_from_page(&mut self, page: &SharedPage, offset: usize, len: usize) -> Result {
        check_span(offset, len)?;
        if len > self.remaining() {
            return Err(EINVAL);
        }
        let dst = self.addr.checked_add(self.done).ok_or(EFAULT)?;
        let left = page.with_mapped(|base| {
            // SAFETY: `base + offset .. + len` lies inside the mapped page (checked above).
            // `copy_to_user` checks the user range itself and tolerates concurrent writes to
            // the source, which user space may be making through a shared mapping.
            unsafe {
                bindings::copy_to_user(
                    dst as *mut c_void,
                    base.add(offset).cast::<c_void>(),
                    len as c_ulong,
                )
            }
        });
        if left != 0 {
            return Err(EFAULT);
        }
        self.done += len;
        Ok(())
    }
}

impl UserOut {
    /// Copies `len` bytes at byte `offset` of `chunk` to the next `len` bytes of the user
    /// buffer.
    ///
    /// # Errors
    /// `EINVAL` if the span leaves the chunk or the buffer; `EFAULT` as in
    /// [`copy_from_page`](Self::copy_from_page).
    pub fn copy_from_chunk(&mut self, chunk: &crate::pfn::Chunk, offset: usize, len: usize) -> Result {
        let src = chunk.span(offset, len)?;
        if len > self.remaining() {
            return Err(EINVAL);
        }
        let dst = self.addr.checked_add(self.done).ok_or(EFAULT)?;
        // SAFETY: `src .. src + len` lies inside the chunk's kernel mapping (`Chunk::span`),
        // which lives while `chunk` is borrowed. `copy_to_user` checks the user range itself.
        let left = unsafe { bindings::copy_to_user(dst as *mut c_void, src.cast(), len as c_ulong) };
        if left != 0 {
            return Err(EFAULT);
        }
        self.done += len;
        Ok(())
    }
}

impl UserIn {
    /// Copies the next `len` bytes of the user buffer into `chunk` at byte `offset`.
    ///
    /// # Errors
    /// `EINVAL` if the span leaves the chunk or the buffer; `EFAULT` if user memory is not
    /// readable.
    pub fn copy_to_chunk(&mut self, chunk: &crate::pfn::Chunk, offset: usize, len: usize) -> Result {
        let dst = chunk.span(offset, len)?;
        if len > self.remaining() {
            return Err(EINVAL);
        }
        let src = self.addr.checked_add(self.done).ok_or(EFAULT)?;
        // SAFETY: `dst .. dst + len` lies inside the chunk's kernel mapping (`Chunk::span`);
        // concurrent user-space accesses through a mapping are byte races of C code, as for
        // pages.
        let left = unsafe { bindings::copy_from_user(dst.cast(), src as *const c_void, len as c_ulong) };
        if left != 0 {
            return Err(EFAULT);
        }
        self.done += len;
        Ok(())
    }
}

/// The user buffer of a `write`/`pwrite`: the driver copies it into pages.
pub struct UserIn {
    addr: UserPtr,
    len: usize,
    done: usize,
}

impl UserIn {
    /// Bytes still to consume.
    pub fn remaining(&self) -> usize {
        self.len - self.done
    }

    /// Bytes consumed so far (what `write` returns).
    pub fn copied(&self) -> usize {
        self.done
    }

    /// Copies the next `len` bytes of the user buffer into `page` at `offset`.
    ///
    /// # Errors
    /// `EINVAL` if the span leaves the page or the buffer; `EFAULT` if user memory is not
    /// readable.
    pub fn copy_to_page(&mut self, page: &SharedPage, offset: usize, len: usize) -> Result {
        check_span(offset, len)?;
        if len > self.remaining() {
            return Err(EINVAL);
        }
        let src = self.addr.checked_add(self.done).ok_or(EFAULT)?;
        let left = page.with_mapped(|base| {
            // SAFETY: `base + offset .. + len` lies inside the mapped page (checked above).
            // `copy_from_user` checks the user range itself; concurrent user-space accesses to
            // the page through a mapping are byte races of C code, as in any C driver.
            unsafe {
                bindings::copy_from_user(
                    base.add(offset).cast::<c_void>(),
                    src as *const c_void,
                    len as c_ulong,
                )
            }
        });
        if left != 0 {
            return Err(EFAULT);
        }
        self.done += len;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Files.

/// The file operations of a misc device; `Self` is the per-open private state.
///
/// Each `open` creates one `Arc<Self>`; `file->private_data` owns a reference until `release`.
/// Every other hook borrows it.
pub trait FileOps: Sized + Send + Sync + 'static {
    /// Device-wide data, owned by the [`Registration`] and handed to every `open`.
    type Device: Send + Sync + 'static;

    /// `open(2)`: creates the per-open state.
    fn open(device: &Arc<Self::Device>) -> Result<Arc<Self>>;

    /// The last `close(2)` of the file (after its last mapping is gone).
    fn release(this: Arc<Self>) {
        drop(this);
    }

    /// `ioctl(2)`; the returned value is what user space sees.
    fn ioctl(_this: ArcBorrow<'_, Self>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        Err(ENOTTY)
    }

    /// `read(2)`/`pread(2)` at byte position `pos`; returns nothing, the byte count is
    /// [`UserOut::copied`] (and the file position advances by it).
    fn read(_this: ArcBorrow<'_, Self>, _out: &mut UserOut, _pos: i64) -> Result {
        Err(EINVAL)
    }

    /// `write(2)`/`pwrite(2)` at byte position `pos`; the byte count is [`UserIn::copied`].
    fn write(_this: ArcBorrow<'_, Self>, _input: &mut UserIn, _pos: i64) -> Result {
        Err(EINVAL)
    }

    /// `mmap(2)`: set up the new VMA and end with [`NewVma::set_ops`] or [`NewVma::finish`]
    /// (whose [`Mapped`] is the only way to succeed), or refuse with an errno.
    fn mmap(_this: ArcBorrow<'_, Self>, _vma: NewVma<'_>) -> Result<Mapped> {
        Err(ENODEV)
    }

    /// Where `mmap` at page offset `pgoff` should be placed: [`AreaAlign::Pmd`] asks
    /// `get_unmapped_area` for a 2 MiB-aligned address (a hint or `MAP_FIXED` address is
    /// still honoured as given).
    fn area_align(_this: ArcBorrow<'_, Self>, _pgoff: usize) -> AreaAlign {
        AreaAlign::Page
    }
}

/// The alignment [`FileOps::area_align`] asks of `get_unmapped_area`.
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
pub(crate) unsafe fn get_unmapped_area(
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

/// The `file_operations` trampolines for `T`.
struct FileVtable<T: FileOps>(PhantomData<T>);

impl<T: FileOps> FileVtable<T> {
    /// # Safety
    ///
    /// Called by the VFS through `misc_open`: `file->private_data` points to the `misc` field
    /// of a live, registered `RegInner<T>` (misc_open stores the `struct miscdevice` there and
    /// holds `misc_mtx`, so the registration cannot go away during the call).
    unsafe extern "C" fn open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `file` is valid for the duration of the call (VFS contract).
        let misc = unsafe { (*file).private_data }.cast::<RegInner<T>>();
        // SAFETY: `misc` points to the first field of a `#[repr(C)]` `RegInner<T>` that is
        // alive (function safety requirement), so the cast pointer is valid for reads.
        let device = unsafe { &(*misc).device };
        match T::open(device) {
            Ok(state) => {
                // SAFETY: `file` is valid; no other hook of this file runs before `open`
                // returns, so nothing else reads `private_data` now.
                unsafe { (*file).private_data = state.into_foreign().cast_mut() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file->private_data` came from `into_foreign` in `open`, and this is the last hook the
    /// VFS calls for `file`.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `file` is valid; `private_data` holds the reference `open` stored, and no
        // borrow of it outlives the other hooks, which have all returned.
        let state = unsafe { Arc::<T>::from_foreign((*file).private_data) };
        T::release(state);
        0
    }

    /// Borrows the per-open state of `file`.
    ///
    /// # Safety
    ///
    /// `file` is an open file of this device whose `open` succeeded and whose `release` has not
    /// run, and the returned borrow does not outlive the current file operation.
    unsafe fn state<'a>(file: *mut bindings::file) -> ArcBorrow<'a, T> {
        // SAFETY: By the function's requirements `private_data` holds a live reference created
        // by `into_foreign`, which `release` will only take back after this call returns.
        unsafe { Arc::<T>::borrow((*file).private_data) }
    }

    /// # Safety
    ///
    /// VFS contract for `unlocked_ioctl` on a file opened through [`Self::open`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let state = unsafe { Self::state(file) };
        from_result(|| T::ioctl(state, cmd, arg))
    }

    /// # Safety
    ///
    /// VFS contract for `read`: `buf` is a user pointer of `len` bytes and `ppos` is valid.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut c_char,
        len: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let state = unsafe { Self::state(file) };
        // SAFETY: `ppos` is valid for reads and writes for the call (VFS contract).
        let pos = unsafe { *ppos };
        let mut out = UserOut {
            addr: buf as UserPtr,
            len,
            done: 0,
        };
        match T::read(state, &mut out, pos) {
            Ok(()) => {
                // SAFETY: As above. `copied() <= len <= isize::MAX` (the VFS caps `len`).
                unsafe { *ppos = pos.saturating_add(out.copied() as i64) };
                out.copied() as isize
            }
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// VFS contract for `write`: `buf` is a user pointer of `len` bytes and `ppos` is valid.
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const c_char,
        len: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let state = unsafe { Self::state(file) };
        // SAFETY: `ppos` is valid for reads and writes for the call (VFS contract).
        let pos = unsafe { *ppos };
        let mut input = UserIn {
            addr: buf as UserPtr,
            len,
            done: 0,
        };
        match T::write(state, &mut input, pos) {
            Ok(()) => {
                // SAFETY: As above.
                unsafe { *ppos = pos.saturating_add(input.copied() as i64) };
                input.copied() as isize
            }
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// VFS contract for `mmap`: called from `mmap_region` with the mmap lock held for write and
    /// a new VMA that is not yet visible to any other thread.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let state = unsafe { Self::state(file) };
        // SAFETY: `vma` is the new, not yet inserted VMA of this `mmap` call, exclusively ours
        // until we return (function safety requirement).
        let vma = unsafe { NewVma::from_raw(vma) };
        match T::mmap(state, vma) {
            Ok(Mapped(())) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// VFS contract for `get_unmapped_area` on a file opened through [`Self::open`].
    unsafe extern "C" fn get_unmapped_area(
        file: *mut bindings::file,
        addr: c_ulong,
        len: c_ulong,
        pgoff: c_ulong,
        flags: c_ulong,
    ) -> c_ulong {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let state = unsafe { Self::state(file) };
        let align = T::area_align(state, pgoff);
        // SAFETY: Called from this file's `get_unmapped_area` hook.
        unsafe { get_unmapped_area(file, addr, len, pgoff, flags, align) }
    }

    /// Builds the table; `owner` pins the module while a file is open.
    fn build(owner: *mut bindings::module) -> bindings::file_operations {
        bindings::file_operations {
            owner,
            // A NULL `llseek` would be called by `lseek(2)`: `FMODE_LSEEK` is decided before
            // `misc_open` swaps in these fops.
            llseek: Some(bindings::default_llseek),
            read: Some(Self::read),
            write: Some(Self::write),
            unlocked_ioctl: Some(Self::ioctl),
            mmap: Some(Self::mmap),
            get_unmapped_area: Some(Self::get_unmapped_area),
            open: Some(Self::open),
            release: Some(Self::release),
            // SAFETY: All other fields of `file_operations` are nullable pointers or integer
            // flags, for which all-zeroes means "not provided".
            ..unsafe { MaybeUninit::zeroed().assume_init() }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Misc device registration.

/// The pinned heap part of a [`Registration`]; `misc` must stay the first field.
#[repr(C)]
struct RegInner<T: FileOps> {
    misc: Opaque<MiscDevice>,
    fops: Opaque<bindings::file_operations>,
    device: Arc<T::Device>,
    _pin: PhantomPinned,
}

/// A registered misc device, `/dev/NAME`; dropping it deregisters the device.
///
/// # Invariants
///
/// `inner.misc` was registered with `misc_register` and is deregistered exactly once, in
/// `Drop`; `inner` never moves while registered.
pub struct Registration<T: FileOps> {
    inner: Pin<KBox<RegInner<T>>>,
}

// SAFETY: After registration Rust code only reads `device` (which is `Send + Sync`) and reads
// `minor`, which the misc core wrote before `misc_register` returned; the C side serializes
// its own accesses with `misc_mtx`. Dropping on another thread just calls `misc_deregister`.
unsafe impl<T: FileOps> Send for Registration<T> {}
// SAFETY: See `Send`: shared access only reads immutable data.
unsafe impl<T: FileOps> Sync for Registration<T> {}

impl<T: FileOps> Registration<T> {
    /// Registers `/dev/<name>` with a dynamic minor and file mode `mode` (e.g. `0o600`).
    ///
    /// # Errors
    /// What `misc_register` returns (`EBUSY` if the name is taken), `ENOMEM`, or `EIO` if the
    /// misc core did not fill in the fields our declaration of `struct miscdevice` expects.
    pub fn register(
        name: &'static CStr,
        mode: u16,
        module: &'static ThisModule,
        device: Arc<T::Device>,
    ) -> Result<Self> {
        let inner = KBox::pin(
            RegInner::<T> {
                misc: Opaque::new(MiscDevice {
                    minor: MISC_DYNAMIC_MINOR,
                    name: name.as_char_ptr(),
                    fops: ptr::null(),
                    // SAFETY: `list_head` is two pointers; zero is a valid bit pattern and the
                    // misc core initializes the node when it links it.
                    list: unsafe { MaybeUninit::zeroed().assume_init() },
                    parent: ptr::null_mut(),
                    this_device: ptr::null_mut(),
                    groups: ptr::null_mut(),
                    nodename: ptr::null(),
                    mode,
                }),
                fops: Opaque::new(FileVtable::<T>::build(module.as_ptr())),
                device,
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        let misc = inner.misc.get();
        // SAFETY: `misc` points into the pinned allocation; nothing else accesses it yet.
        unsafe { (*misc).fops = inner.fops.get() };
        // SAFETY: `misc` is a fully initialized `struct miscdevice` whose `name` and `fops`
        // outlive the registration (`'static` name; `fops` in the same pinned allocation,
        // which `Drop` deregisters before freeing).
        to_result(unsafe { misc_register(misc.cast()) })?;
        // INVARIANT: registered above; `inner` is pinned and owned by the returned value.
        let reg = Self { inner };
        // SAFETY: `misc_register` returned; the misc core wrote these fields before that.
        let (minor, this_device) = unsafe { ((*misc).minor, (*misc).this_device) };
        if minor == MISC_DYNAMIC_MINOR || this_device.is_null() {
            // Our `struct miscdevice` does not match the C one; `reg` deregisters on drop.
            pr_err!("struct miscdevice layout mismatch (minor {})\n", minor);
            return Err(EIO);
        }
        Ok(reg)
    }

    /// The minor number the misc core assigned.
    pub fn minor(&self) -> i32 {
        // SAFETY: Written by `misc_register` before it returned and never changed afterwards.
        unsafe { (*self.inner.misc.get()).minor }
    }

    /// The device-wide data handed to every `open`.
    pub fn device(&self) -> &Arc<T::Device> {
        &self.inner.device
    }
}

impl<T: FileOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the device is registered and this is the only
        // deregistration. Files still open keep the module (and so this memory) alive through
        // `fops->owner`, so no open file can outlive `fops`.
        unsafe { misc_deregister(self.inner.misc.get().cast()) };
    }
}

// ---------------------------------------------------------------------------------------------
// VMAs.

/// The VMA being set up inside `mmap`: read its geometry, set flags, insert pages, and attach
/// per-mapping [`VmOps`].
///
/// # Invariants
///
/// `vma` is the new VMA of the `mmap` call in progress: valid, not yet visible to other threads
/// (so plain flag writes cannot race, as upstream `VmaNew` relies on), and the mmap lock is
/// held for write.
pub struct NewVma<'a> {
    vma: NonNull<bindings::vm_area_struct>,
    _p: PhantomData<&'a mut bindings::vm_area_struct>,
}

impl NewVma<'_> {
    /// # Safety
    ///
    /// `vma` must be the new VMA of an `f_op->mmap` call in progress, used only during it.
    pub(crate) unsafe fn from_raw(vma: *mut bindings::vm_area_struct) -> Self {
        // INVARIANT: The caller's guarantee.
        Self {
            // SAFETY: The VFS never passes a null VMA.
            vma: unsafe { NonNull::new_unchecked(vma) },
            _p: PhantomData,
        }
    }

    pub(crate) fn raw(&self) -> *mut bindings::vm_area_struct {
        self.vma.as_ptr()
    }

    /// Whether the mapping is `MAP_SHARED` (`VM_MAYSHARE`: a shared mapping of a read-only
    /// file has it without `VM_SHARED`).
    pub fn may_share(&self) -> bool {
        self.flags() & bindings::VM_MAYSHARE as usize != 0
    }

    /// The first user address of the mapping.
    pub fn start(&self) -> usize {
        // SAFETY: By the type invariants the VMA is valid and not concurrently modified.
        unsafe { (*self.raw()).__bindgen_anon_1.__bindgen_anon_1.vm_start }
    }

    /// One past the last user address of the mapping.
    pub fn end(&self) -> usize {
        // SAFETY: As in `start`.
        unsafe { (*self.raw()).__bindgen_anon_1.__bindgen_anon_1.vm_end }
    }

    /// The length in bytes (a whole number of pages).
    #[allow(clippy::len_without_is_empty, reason = "a VMA is never empty")]
    pub fn len(&self) -> usize {
        self.end() - self.start()
    }

    /// `vma->vm_pgoff`: the `mmap` offset in pages, exactly as user space passed it.
    ///
    /// Read it here, once: after a split or `mremap` a VMA's `vm_pgoff` moves with its start,
    /// so fault handlers must use the value saved at `mmap` time, not re-decode theirs.
    pub fn pgoff(&self) -> usize {
        // SAFETY: As in `start`; inside `mmap` nothing else writes `vm_pgoff`.
        unsafe { (*self.raw()).vm_pgoff }
    }

    /// `vma->vm_flags`.
    pub fn flags(&self) -> usize {
        // SAFETY: As in `start`. Both union members are the same `vm_flags_t`.
        unsafe { (*self.raw()).__bindgen_anon_2.vm_flags }
    }

    /// Whether the mapping is `MAP_SHARED` (`VM_SHARED`).
    pub fn is_shared(&self) -> bool {
        self.flags() & bindings::VM_SHARED as usize != 0
    }

    /// Whether the mapping asked for `PROT_WRITE` (`VM_WRITE`).
    pub fn is_writable(&self) -> bool {
        self.flags() & bindings::VM_WRITE as usize != 0
    }

    pub(crate) fn update_flags(&mut self, set: u32, clear: u32) {
        let flags = (self.flags() | set as usize) & !(clear as usize);
        // SAFETY: By the type invariants the VMA is not yet visible to other threads, so a
        // plain write cannot race (this is what upstream `VmaNew::update_flags` does). The
        // flags we set or clear are valid for a driver mapping.
        unsafe { (*self.raw()).__bindgen_anon_2.__vm_flags = flags };
    }

    /// Sets `VM_DONTEXPAND`: `mremap` cannot grow the mapping.
    pub fn set_dontexpand(&mut self) {
        self.update_flags(bindings::VM_DONTEXPAND, 0);
    }

    /// Sets `VM_DONTCOPY`: a child of `fork` does not inherit the mapping.
    pub fn set_dontcopy(&mut self) {
        self.update_flags(bindings::VM_DONTCOPY, 0);
    }

    /// Clears `VM_MAYWRITE`, so `mprotect(PROT_WRITE)` fails with `EACCES` later.
    ///
    /// # Errors
    /// `EPERM` if the mapping is already writable (`VM_WRITE`).
    pub fn try_clear_maywrite(&mut self) -> Result {
        if self.is_writable() {
            return Err(EPERM);
        }
        self.update_flags(0, bindings::VM_MAYWRITE);
        Ok(())
    }

    /// User address of page `index` of the mapping.
    fn page_addr(&self, index: usize) -> Result<usize> {
        let off = index.checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let addr = self.start().checked_add(off).ok_or(EINVAL)?;
        if addr >= self.end() {
            return Err(EINVAL);
        }
        Ok(addr)
    }

    /// Maps `page` at page `index` of the mapping now (`vm_insert_page`).
    ///
    /// # Errors
    /// `EINVAL` if `index` is outside the mapping, else what `vm_insert_page` returns
    /// (`ENOMEM`, `EBUSY` if a page is already there).
    pub fn insert_page(&mut self, index: usize, page: &SharedPage) -> Result {
        let addr = self.page_addr(index)?;
        // SAFETY: The VMA is valid and we hold the mmap lock for write (type invariants), as
        // `vm_insert_page` requires when `VM_MIXEDMAP` is not yet set. `addr` is inside it.
        // By `SharedPage`'s invariants the page is a valid, refcounted, non-slab page;
        // `vm_insert_page` takes its own reference for the mapping.
        to_result(unsafe { bindings::vm_insert_page(self.raw(), addr, page.as_ptr()) })
    }

    /// Maps `pages` at consecutive pages of the mapping starting at page `first`, in batches
    /// (`vm_insert_pages`).
    ///
    /// # Errors
    /// `EINVAL` if they do not fit in the mapping, else what `vm_insert_pages` returns. On an
    /// error some pages may already be mapped; `mmap` failing unmaps them.
    pub fn insert_pages<'p>(
        &mut self,
        first: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result {
        const BATCH: usize = 16;
        let mut batch = [ptr::null_mut::<bindings::page>(); BATCH];
        let mut n = 0;
        let mut at = first;
        for page in pages {
            batch[n] = page.as_ptr();
            n += 1;
            if n == BATCH {
                self.insert_batch(at, &mut batch[..n])?;
                at += n;
                n = 0;
            }
        }
        if n > 0 {
            self.insert_batch(at, &mut batch[..n])?;
        }
        Ok(())
    }

    fn insert_batch(&mut self, first: usize, pages: &mut [*mut bindings::page]) -> Result {
        let addr = self.page_addr(first)?;
        // The last page must be inside the mapping too.
        self.page_addr(first + pages.len() - 1)?;
        let mut num: c_ulong = pages.len();
        // SAFETY: As in `insert_page`; `pages` holds `num` pointers to pages owned by live
        // `SharedPage`s (borrowed by the caller for this call), and the whole range
        // `addr .. addr + num * PAGE_SIZE` is inside the VMA (checked above).
        let ret =
            unsafe { bindings::vm_insert_pages(self.raw(), addr, pages.as_mut_ptr(), &mut num) };
        to_result(ret)?;
        if num != 0 {
            return Err(EFAULT);
        }
        Ok(())
    }

    /// Ends a setup that needs no per-mapping hooks: `mmap` succeeds.
    pub fn finish(self) -> Mapped {
        Mapped(())
    }

    /// Attaches `M`'s `.open`/`.close`/`.fault` and the per-mapping state `data`, and ends the
    /// setup: `mmap` succeeds with the returned [`Mapped`]. (If `mmap` failed after this, the
    /// kernel would drop the VMA without `.close` and leak `data`; [`Mapped`] rules that out.)
    ///
    /// Also sets `VM_MIXEDMAP` now (what `vm_insert_page` does on first use): the fault handler
    /// then inserts pages under the mmap *read* lock, where `vm_insert_page` would otherwise
    /// trip its `BUG_ON(mmap_read_trylock())` check.
    pub fn set_ops<M: VmOps>(mut self, data: Arc<M>) -> Mapped {
        self.update_flags(bindings::VM_MIXEDMAP, 0);
        let raw = self.raw();
        // SAFETY: The VMA is ours (type invariants). `vm_private_data` takes ownership of one
        // reference, released by `.close` of this VMA; `vm_ops` points to a `'static` table.
        unsafe {
            (*raw).vm_private_data = data.into_foreign().cast_mut();
            (*raw).vm_ops = VmVtable::<M>::TABLE;
        }
        Mapped(())
    }
}

/// Proof that an `mmap` handler finished its VMA ([`NewVma::set_ops`] or [`NewVma::finish`]);
/// [`FileOps::mmap`] can only succeed by returning one.
pub struct Mapped(pub(crate) ());

/// One page fault in a mapping that has [`VmOps`].
///
/// # Invariants
///
/// `vmf` is the `struct vm_fault` of a `.fault` call in progress, with the mmap lock (or the
/// VMA lock) held for read, and `vmf->vma` is a VMA whose `vm_ops` is `VmVtable`'s.
pub struct Fault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _p: PhantomData<&'a bindings::vm_fault>,
}

impl Fault<'_> {
    fn vmf(&self) -> &bindings::vm_fault {
        // SAFETY: By the type invariants `vmf` is valid for the call, and the fault core does
        // not modify it while the handler runs.
        unsafe { self.vmf.as_ref() }
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

    /// The faulting VMA's `vm_start`, `vm_end` and `vm_pgoff` (after splits and `mremap`,
    /// this VMA's own).
    pub fn vma_geometry(&self) -> (usize, usize, usize) {
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants the VMA is valid and locked for read, so its start,
        // end and offset do not change during the fault.
        unsafe {
            (
                (*vma).__bindgen_anon_1.__bindgen_anon_1.vm_start,
                (*vma).__bindgen_anon_1.__bindgen_anon_1.vm_end,
                (*vma).vm_pgoff,
            )
        }
    }

    /// Maps `pages` at consecutive user pages from `addr` (inside the faulting VMA) in batches
    /// (`vm_insert_pages`), skipping pages another fault already mapped; returns how many
    /// this call mapped.
    ///
    /// # Errors
    /// `EINVAL` if the range leaves the VMA, else what `vm_insert_pages` returns other than
    /// `EBUSY` (the pages mapped before the error stay mapped and are not counted).
    pub fn insert_pages<'p>(
        &self,
        addr: usize,
        pages: impl IntoIterator<Item = &'p SharedPage>,
    ) -> Result<usize> {
        const BATCH: usize = 16;
        let (start, end, _) = self.vma_geometry();
        let mut batch = [ptr::null_mut::<bindings::page>(); BATCH];
        let (mut n, mut at, mut inserted) = (0, addr, 0);
        let mut pages = pages.into_iter().peekable();
        while pages.peek().is_some() {
            for page in pages.by_ref().take(BATCH) {
                batch[n] = page.as_ptr();
                n += 1;
            }
            let last = at + (n - 1) * PAGE_SIZE;
            if at < start || at % PAGE_SIZE != 0 || last >= end {
                return Err(EINVAL);
            }
            let mut done = 0;
            while done < n {
                let mut left: c_ulong = n - done;
                // SAFETY: By the type invariants the VMA is valid and locked for read, and
                // `VM_MIXEDMAP` is set (`NewVma::set_ops`), so `vm_insert_pages` takes only
                // the page-table locks. `batch[done..n]` are pages of live `SharedPage`s
                // borrowed for this call, and `at .. at + left * PAGE_SIZE` is inside the VMA
                // (checked above).
                let ret = unsafe {
                    bindings::vm_insert_pages(
                        self.vmf().__bindgen_anon_1.vma,
                        at + done * PAGE_SIZE,
                        batch[done..n].as_mut_ptr(),
                        &mut left,
                    )
                };
                // `left` pages were not mapped; the first of them is the one that failed.
                let mapped = (n - done) - left;
                inserted += mapped;
                done += mapped;
                match to_result(ret) {
                    Ok(()) if left == 0 => {}
                    Ok(()) => return Err(EFAULT),
                    // Already mapped by another fault: skip it.
                    Err(e) if e == EBUSY => done += 1,
                    Err(e) => return Err(e),
                }
            }
            at += n * PAGE_SIZE;
            n = 0;
        }
        Ok(inserted)
    }

    /// Whether the access was a write.
    pub fn is_write(&self) -> bool {
        self.vmf().flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// Maps `page` at the faulting address (`vm_insert_page`); the fault then completes with
    /// `VM_FAULT_NOPAGE`. Returns `false` if another thread's fault mapped it first.
    ///
    /// # Errors
    /// What `vm_insert_page` returns, except `EBUSY` (the `false` case).
    pub fn insert_page(&self, page: &SharedPage) -> Result<bool> {
        let vma = self.vmf().__bindgen_anon_1.vma;
        // SAFETY: By the type invariants `vma` is valid and locked for read; `VM_MIXEDMAP` was
        // set by `NewVma::set_ops`, so `vm_insert_page` skips its write-lock-only path.
        // `address` lies inside the VMA (the fault core checked it). By `SharedPage`'s
        // invariants the page is valid; `vm_insert_page` takes its own reference.
        let ret = unsafe { bindings::vm_insert_page(vma, self.address(), page.as_ptr()) };
        match to_result(ret) {
            Ok(()) => Ok(true),
            Err(e) if e == EBUSY => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Per-mapping hooks; `Self` is the per-mapping state, one `Arc` reference per VMA.
pub trait VmOps: Sized + Send + Sync + 'static {
    /// A new VMA now shares the mapping (`fork`, a split by `munmap`/`mprotect`, `mremap`).
    fn open(_this: ArcBorrow<'_, Self>) {}

    /// A VMA of the mapping goes away; its reference is dropped right after.
    fn close(_this: ArcBorrow<'_, Self>) {}

    /// A page fault: insert a page with [`Fault::insert_page`], or return an error (`ENOMEM`
    /// becomes `VM_FAULT_OOM`, anything else `SIGBUS`).
    fn fault(_this: ArcBorrow<'_, Self>, _fault: &Fault<'_>) -> Result {
        Err(EFAULT)
    }
}

/// The `vm_operations_struct` trampolines for `M`.
pub(crate) struct VmVtable<M: VmOps>(PhantomData<M>);

impl<M: VmOps> VmVtable<M> {
    /// The `.open` trampoline, shared with the PFN-map table of [`crate::pfn`].
    pub(crate) const OPEN: unsafe extern "C" fn(*mut bindings::vm_area_struct) = Self::open;
    /// The `.close` trampoline, shared with the PFN-map table of [`crate::pfn`].
    pub(crate) const CLOSE: unsafe extern "C" fn(*mut bindings::vm_area_struct) = Self::close;

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
    /// `set_ops` or a previous `open`, and owned by the VMA `vma` was copied from.
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: `vma` is valid for the call; the VMA it was copied from still owns its
        // reference, so the borrow is valid while we take another one for the new VMA.
        let this = unsafe { Arc::<M>::borrow((*vma).vm_private_data) };
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
        let this = unsafe { Arc::<M>::from_foreign((*vma).vm_private_data) };
        M::close(this.as_arc_borrow());
        drop(this);
    }

    /// # Safety
    ///
    /// Called by the fault core for a VMA with these ops, with the mmap or VMA lock held.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: `vmf` and `vmf->vma` are valid for the call; the VMA owns a reference to
        // the state, which cannot be dropped while the VMA is locked for the fault.
        let this = unsafe { Arc::<M>::borrow((*(*vmf).__bindgen_anon_1.vma).vm_private_data) };
        let fault = Fault {
            // SAFETY: The fault core never passes a null `vmf`.
            vmf: unsafe { NonNull::new_unchecked(vmf) },
            _p: PhantomData,
        };
        // INVARIANT: `fault` wraps the `vm_fault` of this call, whose VMA has our `vm_ops`.
        match M::fault(this, &fault) {
            Ok(()) => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
            Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
            Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        }
    }
}
