// SPDX-License-Identifier: GPL-2.0

//! Pool file descriptors: one anonymous-inode file (`[pktmap-pool]`) per export, as dma-buf
//! and memfd are, whose `mmap`, `ioctl` (also from 32-bit callers, `compat_ptr_ioctl`) and
//! `get_unmapped_area` reach [`PoolFileOps`]; `fsync` succeeds with nothing to do.
//!
//! - [`PendingFile`]: a reserved descriptor with its new file; [`PendingFile::install`] makes
//!   it visible to user space (`fd_install`), dropping it instead undoes both (`fput`,
//!   `put_unused_fd`). The ioctl reports the number first and installs last, so a failed copy
//!   to user space leaves no descriptor behind.
//! - A read-only export is opened `O_RDONLY`: the VFS then refuses `PROT_WRITE` shared maps
//!   (`EACCES`) and clears `VM_MAYWRITE` of every map, so `mprotect` cannot add write.
//!
//! # Ownership
//!
//! `file->private_data` owns one reference of the export's `Arc<T>` until `release` (the last
//! `fput`, after the last mapping made through the file is gone: every VMA holds
//! `vma->vm_file`). `fops.owner` pins the module while any pool file exists, and the VFS drops
//! that reference only after `release` returned.
//!
//! C header: [`srctree/include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h)

use super::mm::{
    pfnmap::{self, AreaAlign},
    virt::{Mapped, VmaNew},
};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    bindings, c_str,
    error::{from_err_ptr, from_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void},
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

// Not in 6.12's Rust bindings (<linux/anon_inodes.h> is not in bindings_helper.h); exported
// `EXPORT_SYMBOL_GPL` by fs/anon_inodes.c. Declared with opaque pointers: rustc's
// `improper_ctypes` lint follows `struct file_operations` down to bindgen's empty
// `struct mod_arch_specific` (through `owner`) and rejects it, as for `misc_register`.
extern "C" {
    fn anon_inode_getfile(
        name: *const c_char,
        fops: *const c_void,
        priv_: *mut c_void,
        flags: c_int,
    ) -> *mut c_void;
}

// The module's own `struct module` (what `module!` takes `THIS_MODULE` from), declared as
// bytes for the same reason.
#[allow(clashing_extern_declarations)] // `module!` declares it as `Opaque<bindings::module>`.
extern "C" {
    static __this_module: Opaque<u8>;
}

/// What a pool file does; implemented by the driver's export type, which [`PendingFile::new`]
/// takes.
pub trait PoolFileOps: Sized + Send + Sync + 'static {
    /// `mmap(2)` through the pool file; `read_only` is whether it is a read-only export.
    fn mmap(this: ArcBorrow<'_, Self>, vma: &VmaNew, read_only: bool) -> Result<Mapped>;

    /// `ioctl(2)` on the pool file.
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;

    /// The alignment `get_unmapped_area` should give a map at `pgoff`.
    fn area_align(this: ArcBorrow<'_, Self>, pgoff: usize) -> AreaAlign;

    /// Whether the export is read-only.
    fn read_only(this: ArcBorrow<'_, Self>) -> bool;
}

/// The `file_operations` of pool files of `T`: a constant, promoted to a `'static` (the table
/// must outlive every file, and `fops_put` reads it after `release`), one per export type, so
/// this file names no driver type.
struct PoolFops<T: PoolFileOps>(PhantomData<T>);

impl<T: PoolFileOps> PoolFops<T> {
    const TABLE_VALUE: bindings::file_operations = bindings::file_operations {
        // SAFETY: `__this_module` is this module's `struct module`, valid while it is loaded,
        // exactly as `module!`'s `THIS_MODULE` takes it.
        owner: unsafe { __this_module.get() }.cast(),
        mmap: Some(mmap::<T>),
        unlocked_ioctl: Some(ioctl::<T>),
        // As the device: the ioctl arguments are layout-stable structs, the same for 32-bit
        // callers, so they only need their pointer converted.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(super::miscdevice::compat_ptr_ioctl),
        get_unmapped_area: Some(get_unmapped_area::<T>),
        release: Some(release::<T>),
        fsync: Some(fsync),
        // SAFETY: All other fields are nullable pointers or integer flags, for which all-zeroes
        // means "not provided".
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };
    /// Promoted to a `'static` because `TABLE_VALUE` is a constant.
    const TABLE: &'static bindings::file_operations = &Self::TABLE_VALUE;
}

/// Borrows the export of a pool file.
///
/// # Safety
///
/// `file` is a pool file (made by [`PendingFile::new`]) whose `release` has not run, and the
/// borrow does not outlive the current file operation.
unsafe fn export<'a, T: PoolFileOps>(file: *mut bindings::file) -> ArcBorrow<'a, T> {
    // SAFETY: The caller's contract: `private_data` holds the reference `PendingFile::new`
    // stored, which only `release` takes back.
    unsafe { <Arc<T> as ForeignOwnable>::borrow((*file).private_data) }
}

/// # Safety
///
/// VFS contract for `mmap` on a pool file: the mmap lock is held for write and `vma` is new.
unsafe extern "C" fn mmap<T: PoolFileOps>(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The VFS only calls this between the file's creation and its `release`.
    let this = unsafe { export::<T>(file) };
    // SAFETY: `vma` is the new VMA of this `mmap` call, exclusively ours until we return.
    let vma = unsafe { VmaNew::from_raw(vma) };
    let read_only = T::read_only(this);
    match T::mmap(this, vma, read_only) {
        Ok(_) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// VFS contract for `unlocked_ioctl` on a pool file.
unsafe extern "C" fn ioctl<T: PoolFileOps>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: The VFS only calls this between the file's creation and its `release`.
    let this = unsafe { export::<T>(file) };
    from_result(|| T::ioctl(this, cmd, arg))
}

/// `fsync(2)`, `fdatasync(2)` and `msync(MS_SYNC)` of a shared mapping of the file: nothing
/// to write back (the pool is memory every mapping already sees), so they succeed, as on the
/// device. Without the hook the VFS answers `EINVAL`.
///
/// # Safety
///
/// VFS contract for `fsync` on a pool file (nothing is dereferenced).
unsafe extern "C" fn fsync(
    _file: *mut bindings::file,
    _start: bindings::loff_t,
    _end: bindings::loff_t,
    _datasync: c_int,
) -> c_int {
    0
}

/// # Safety
///
/// VFS contract for `get_unmapped_area` on a pool file.
unsafe extern "C" fn get_unmapped_area<T: PoolFileOps>(
    file: *mut bindings::file,
    addr: c_ulong,
    len: c_ulong,
    pgoff: c_ulong,
    flags: c_ulong,
) -> c_ulong {
    // SAFETY: The VFS only calls this between the file's creation and its `release`.
    let this = unsafe { export::<T>(file) };
    let align = T::area_align(this, pgoff);
    // SAFETY: Called from this file's `get_unmapped_area` hook.
    unsafe { pfnmap::get_unmapped_area(file, addr, len, pgoff, flags, align) }
}

/// # Safety
///
/// VFS contract for `release`: the last hook of the file.
unsafe extern "C" fn release<T: PoolFileOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` holds the reference `PendingFile::new` stored; no other hook of
    // this file runs any more.
    drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*file).private_data) });
    0
}

/// A reserved file descriptor and its new pool file, not yet visible to user space.
///
/// # Invariants
///
/// `fd` was reserved by `get_unused_fd_flags` and `file` holds one reference of a pool file;
/// both are given up exactly once, by [`install`](Self::install) or by `Drop`.
pub struct PendingFile {
    fd: c_uint,
    file: NonNull<bindings::file>,
}

impl PendingFile {
    /// Reserves a descriptor (`O_CLOEXEC`) and makes a pool file owning `data`, opened
    /// `O_RDONLY` for a read-only export, else `O_RDWR`.
    ///
    /// # Errors
    /// `EMFILE` with no descriptor free, `ENOMEM`.
    pub fn new<T: PoolFileOps>(data: Arc<T>, read_only: bool) -> Result<Self> {
        // SAFETY: Reserves a slot in the current task's descriptor table.
        let fd = unsafe { bindings::get_unused_fd_flags(bindings::O_CLOEXEC) };
        let fd = c_uint::try_from(fd).map_err(|_| Error::from_errno(fd))?;
        let flags = if read_only {
            bindings::O_RDONLY
        } else {
            bindings::O_RDWR
        } as c_int;
        let data = data.into_foreign();
        // SAFETY: The name is a NUL-terminated `'static` string; the table is `'static`;
        // the file takes `data` (one reference) as its `private_data`, released by `release`.
        let file = unsafe {
            anon_inode_getfile(
                c_str!("[pktmap-pool]").as_char_ptr(),
                (PoolFops::<T>::TABLE as *const bindings::file_operations).cast(),
                data.cast_mut(),
                flags,
            )
        };
        match from_err_ptr(file.cast::<bindings::file>()) {
            // INVARIANT: a reserved fd and a new file holding `data`.
            Ok(file) => Ok(Self {
                fd,
                // SAFETY: `anon_inode_getfile` returns a valid file or an error pointer.
                file: unsafe { NonNull::new_unchecked(file) },
            }),
            Err(e) => {
                // SAFETY: The file was not made, so the reference is still ours to drop, and
                // the descriptor was reserved above and never installed.
                unsafe {
                    drop(<Arc<T> as ForeignOwnable>::from_foreign(data));
                    bindings::put_unused_fd(fd);
                }
                Err(e)
            }
        }
    }

    /// The descriptor number user space will see.
    pub fn fd(&self) -> i32 {
        self.fd as i32
    }

    /// `fd_install`: the descriptor now refers to the file, and the caller's process owns it.
    pub fn install(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: By the type invariants the descriptor is reserved and the reference ours;
        // `fd_install` consumes both, and `ManuallyDrop` keeps `Drop` from giving them up again.
        unsafe { bindings::fd_install(this.fd, this.file.as_ptr()) };
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        // SAFETY: By the type invariants both are still ours: the last `fput` releases the
        // file (and its reference of the export), and the descriptor was never installed.
        unsafe {
            bindings::fput(self.file.as_ptr());
            bindings::put_unused_fd(self.fd);
        }
    }
}
