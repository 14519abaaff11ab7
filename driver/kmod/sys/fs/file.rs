// SPDX-License-Identifier: GPL-2.0

//! An open file, as the file operations see it (upstream `rust/kernel/fs/file.rs`).
//!
//! C header: [`srctree/include/linux/fs.h`](srctree/include/linux/fs.h)

use kernel::{bindings, types::Opaque};

/// Flags of an open file (`f_flags`), as passed to `open(2)`.
pub mod flags {
    use kernel::bindings;

    /// The access mode bits: one of [`O_RDONLY`], [`O_WRONLY`], [`O_RDWR`].
    pub const O_ACCMODE: u32 = bindings::O_ACCMODE;
    /// Open for reading only.
    pub const O_RDONLY: u32 = bindings::O_RDONLY;
    /// Open for writing only.
    pub const O_WRONLY: u32 = bindings::O_WRONLY;
    /// Open for reading and writing.
    pub const O_RDWR: u32 = bindings::O_RDWR;
}

/// An open file (`struct file`), borrowed for one file operation.
///
/// # Invariants
///
/// The wrapped `struct file` is valid for as long as the borrow: the VFS holds a reference to it
/// for the duration of every file operation.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

impl File {
    /// Borrows the file a file operation was called with.
    ///
    /// # Safety
    ///
    /// `ptr` is the `struct file` of a file operation in progress, and the returned borrow does
    /// not outlive that operation.
    pub(in crate::sys) unsafe fn from_raw_file<'a>(ptr: *const bindings::file) -> &'a File {
        // SAFETY: `File` is a transparent wrapper of `struct file`, which is valid for `'a` (the
        // caller's guarantee). INVARIANT: so is the borrow.
        unsafe { &*ptr.cast::<File>() }
    }

    /// The raw `struct file`.
    pub(in crate::sys) fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// The file's flags (`f_flags`): the access mode ([`flags::O_ACCMODE`]) and `O_*` flags.
    pub fn flags(&self) -> u32 {
        // SAFETY: By the type invariants the file is valid. `f_flags` may be changed by
        // `fcntl(F_SETFL)` concurrently (only the status flags, never the access mode), so read
        // it once, as upstream `File::flags` does (`READ_ONCE`).
        unsafe { core::ptr::addr_of!((*self.as_ptr()).f_flags).read_volatile() }
    }

    /// Whether the file was opened for writing (`O_WRONLY` or `O_RDWR`).
    pub fn is_writable(&self) -> bool {
        self.flags() & flags::O_ACCMODE != flags::O_RDONLY
    }

    /// Whether the file was opened for reading (`O_RDONLY` or `O_RDWR`).
    pub fn is_readable(&self) -> bool {
        self.flags() & flags::O_ACCMODE != flags::O_WRONLY
    }
}
