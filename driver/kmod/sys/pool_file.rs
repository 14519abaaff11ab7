// SPDX-License-Identifier: GPL-2.0

//! Pool file descriptors: one anonymous-inode file (`[pktmap-pool]`) per export, as dma-buf
//! and memfd are, whose `mmap`, `ioctl` (also from 32-bit callers, `compat_ptr_ioctl`) and
//! `get_unmapped_area` reach [`PoolFileOps`]; `fsync` succeeds with nothing to do (upstream
//! has no anonymous-inode files yet).
//!
//! - [`PoolFops`]: the `file_operations` of pool files of `T`, generic over their operations;
//!   the one table is a `static` in the module root (`pktmap.rs`), as binder's
//!   `rust_binder_fops` is: the VFS reads it after `release` (`fops_put`), so it must outlive
//!   every file, and its `owner` pins the module while any pool file exists.
//! - [`PendingFile`]: a reserved descriptor (upstream's [`FileDescriptorReservation`]) with its
//!   new file; [`PendingFile::install`] makes it visible to user space, dropping it instead
//!   undoes both. The ioctl reports the number first and installs last, so a failed copy to
//!   user space leaves no descriptor behind.
//! - A read-only export is opened `O_RDONLY`: the VFS then refuses `PROT_WRITE` shared maps
//!   (`EACCES`) and clears `VM_MAYWRITE` of every map, so `mprotect` cannot add write.
//!
//! # Ownership
//!
//! `file->private_data` owns one reference of the export's `Arc<T>` until `release` (the last
//! `fput`, after the last mapping made through the file is gone: every VMA holds
//! `vma->vm_file`).
//!
//! C header: [`srctree/include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h)

use super::{
    mm::pfnmap::{self, AreaAlign},
    vm_ops::Mapped,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, from_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void},
    fs::{file::FileDescriptorReservation, File},
    mm::virt::VmaNew,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::ForeignOwnable,
    ThisModule,
};

// Not in 7.3's Rust bindings (<linux/anon_inodes.h> is not in bindings_helper.h); exported
// `EXPORT_SYMBOL_GPL` by fs/anon_inodes.c. `fops` and the result are declared as opaque
// pointers: rustc's `improper_ctypes` lint follows `struct file_operations` and `struct file`
// down to bindgen's empty structs (`mod_arch_specific`, `lock_class_key`) and rejects them.
extern "C" {
    fn anon_inode_getfile(
        name: *const c_char,
        fops: *const c_void,
        priv_: *mut c_void,
        flags: c_int,
    ) -> *mut c_void;
}

/// What a pool file does.
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

/// The `file_operations` of pool files of `T`. Make one, as a `static`, with
/// [`PoolFops::new`].
#[repr(transparent)]
pub struct PoolFops<T: PoolFileOps>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is never written after its constant initialization; the C side only reads
// it.
unsafe impl<T: PoolFileOps> Sync for PoolFops<T> {}

impl<T: PoolFileOps> PoolFops<T> {
    /// The table; `module` (the module's `THIS_MODULE`) is pinned while a pool file exists.
    pub const fn new(module: &'static ThisModule) -> Self {
        Self(
            bindings::file_operations {
                owner: module.as_ptr(),
                mmap: Some(Self::mmap),
                unlocked_ioctl: Some(Self::ioctl),
                // As the device: the ioctl arguments are layout-stable structs, the same for
                // 32-bit callers, so they only need their pointer converted.
                #[cfg(CONFIG_COMPAT)]
                compat_ioctl: bindings::compat_ptr_ioctl,
                get_unmapped_area: Some(Self::get_unmapped_area),
                release: Some(Self::release),
                fsync: Some(Self::fsync),
                // All other fields are nullable pointers or integer flags: zero is "not
                // provided".
                ..pin_init::zeroed()
            },
            PhantomData,
        )
    }

    /// Borrows the export of a pool file.
    ///
    /// # Safety
    ///
    /// `file` is a pool file of `T` (made by [`PendingFile::new`]) whose `release` has not
    /// run, and the borrow does not outlive the current file operation.
    unsafe fn export<'a>(file: *mut bindings::file) -> ArcBorrow<'a, T> {
        // SAFETY: The caller's contract: `private_data` holds the reference
        // `PendingFile::new` stored, which only `release` takes back.
        unsafe { <Arc<T> as ForeignOwnable>::borrow((*file).private_data) }
    }

    /// # Safety
    ///
    /// VFS contract for `mmap`: the mmap lock is held for write and `vma` is new.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The VFS only calls this between the file's creation and its `release`.
        let this = unsafe { Self::export(file) };
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
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The VFS only calls this between the file's creation and its `release`.
        let this = unsafe { Self::export(file) };
        from_result(|| T::ioctl(this, cmd, arg))
    }

    /// `fsync(2)`, `fdatasync(2)` and `msync(MS_SYNC)` of a shared mapping of the file:
    /// nothing to write back (the pool is memory every mapping already sees), so they succeed,
    /// as on the device. Without the hook the VFS answers `EINVAL`.
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
    unsafe extern "C" fn get_unmapped_area(
        file: *mut bindings::file,
        addr: c_ulong,
        len: c_ulong,
        pgoff: c_ulong,
        flags: c_ulong,
    ) -> c_ulong {
        // SAFETY: The VFS only calls this between the file's creation and its `release`.
        let this = unsafe { Self::export(file) };
        let align = T::area_align(this, pgoff);
        // SAFETY: Called from this file's `get_unmapped_area` hook.
        unsafe { pfnmap::get_unmapped_area(file, addr, len, pgoff, flags, align) }
    }

    /// # Safety
    ///
    /// VFS contract for `release`: the last hook of the file.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `private_data` holds the reference `PendingFile::new` stored; no other hook
        // of this file runs any more.
        drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign((*file).private_data) });
        0
    }
}

/// A reserved file descriptor and its new pool file, not yet visible to user space; dropping
/// it gives both back (`fput`, `put_unused_fd`).
pub struct PendingFile {
    fd: FileDescriptorReservation,
    file: ARef<File>,
}

impl PendingFile {
    /// Reserves a descriptor (`O_CLOEXEC`) and makes a pool file of `fops` owning `data`,
    /// opened `O_RDONLY` for a read-only export, else `O_RDWR`.
    ///
    /// # Errors
    /// `EMFILE` with no descriptor free, `ENOMEM`.
    pub fn new<T: PoolFileOps>(
        fops: &'static PoolFops<T>,
        data: Arc<T>,
        read_only: bool,
    ) -> Result<Self> {
        let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let flags = if read_only {
            bindings::O_RDONLY
        } else {
            bindings::O_RDWR
        } as c_int;
        let data = data.into_foreign();
        // SAFETY: The name is a NUL-terminated `'static` string; `fops` is `'static`; the file
        // takes `data` (one reference) as its `private_data`, released by `release`.
        let file = unsafe {
            anon_inode_getfile(
                c"[pktmap-pool]".as_char_ptr(),
                core::ptr::from_ref(&fops.0).cast(),
                data,
                flags,
            )
        };
        match from_err_ptr(file.cast::<bindings::file>()) {
            Ok(file) => Ok(Self {
                fd,
                // SAFETY: `anon_inode_getfile` returned a new file with one reference, which
                // the `ARef` now owns (`File` is a transparent wrapper of `struct file`).
                file: unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) },
            }),
            Err(e) => {
                // SAFETY: The file was not made, so the reference is still ours to drop.
                drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(data) });
                Err(e)
            }
        }
    }

    /// The descriptor number user space will see.
    pub fn fd(&self) -> i32 {
        self.fd.reserved_fd() as i32
    }

    /// `fd_install`: the descriptor now refers to the file, and the caller's process owns it.
    pub fn install(self) {
        self.fd.fd_install(self.file);
    }
}
