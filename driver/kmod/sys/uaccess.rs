// SPDX-License-Identifier: GPL-2.0

//! User memory (on top of upstream `rust/kernel/uaccess.rs`): the buffers of `read`/`write`,
//! copied page by page with short counts, and ioctl argument structs.
//!
//! An ioctl's argument is an [`IoctlArg`]: copied at the caller's struct size by the contract's
//! growth rule (`abi::ioctl`, "Growing an argument struct"), so programs built against older
//! and newer headers are served or refused alike.
//!
//! A copy that faults part-way reports what it copied: [`UserOut::copy_from_page`] and
//! [`UserIn::copy_to_page`] return the bytes moved, and never change a byte they did not copy.
//! `copy_from_user` zero-fills the destination past a fault, so [`UserIn`] copies through a
//! bounce buffer of its own and only then into the (shared, live) page.
//!
//! C header: [`srctree/include/linux/uaccess.h`](srctree/include/linux/uaccess.h)

use super::{chunk::Chunk, page::SharedPage};
use core::mem::size_of;
use kernel::{
    bindings,
    ffi::{c_ulong, c_void},
    page::PAGE_SIZE,
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::abi::ioctl::{
    self, ArgSize, PoolChunk, PoolCreate, PoolExport, PoolInfo, ResourceId, RingCreate, RingInfo,
    State,
};
use crate::abi::packet::Attach;

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
    State => 11 * 8;
    Attach => 6 * 4 + 8;
}

/// The argument struct of one ioctl call at a user address, copied in and out at the caller's
/// size by the contract's growth rule ([`ioctl::arg_size`]): a shorter struct (from a program
/// built against an older header) fills the front of today's, the rest zero, and only its own
/// bytes are written back; a longer one (a newer header) is served only if its bytes past
/// today's struct are zero, else `E2BIG`.
#[derive(Clone, Copy)]
pub struct IoctlArg {
    ptr: UserPtr,
    size: ArgSize,
}

impl IoctlArg {
    /// The argument of request `cmd` at `ptr`.
    ///
    /// # Errors
    /// `ENOTTY` for a request number the contract does not serve.
    pub fn new(cmd: u32, ptr: usize) -> Result<Self> {
        let size = ioctl::arg_size(cmd).map_err(|_| ENOTTY)?;
        Ok(Self {
            ptr: UserPtr::from_addr(ptr),
            size,
        })
    }

    /// Today's request number of the call (its size bits those of today's struct).
    pub fn cmd(&self) -> u32 {
        self.size.cmd
    }

    /// Copies the caller's struct in as today's `T`.
    ///
    /// # Errors
    /// `EFAULT` if the memory is not readable, `E2BIG` if the caller's struct is longer and a
    /// byte past `T` is not zero, `EINVAL` if `T` is not the request's struct.
    pub fn read<T: FromBytes + AsBytes + Default>(&self) -> Result<T> {
        if size_of::<T>() != self.size.kernel {
            return Err(EINVAL);
        }
        let mut value = T::default();
        let head = self.size.copy_in.min(size_of::<T>());
        // SAFETY: `value` is a live, exclusively borrowed `T` of `size_of::<T>()` bytes, and
        // `T: FromBytes + AsBytes` has no padding and accepts every bit pattern, so its bytes
        // may be viewed and overwritten as `u8`s; the view ends before `value` is used again.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(
                core::ptr::from_mut(&mut value).cast::<u8>(),
                size_of::<T>(),
            )
        };
        let mut reader = UserSlice::new(self.ptr, self.size.user).reader();
        reader.read_slice(&mut bytes[..head])?;
        let tail = self.size.tail();
        if !tail.is_empty() {
            reader.skip(tail.start - head)?;
            let mut chunk = [0u8; 64];
            while !reader.is_empty() {
                let n = reader.len().min(chunk.len());
                reader.read_slice(&mut chunk[..n])?;
                ioctl::check_tail(&chunk[..n]).map_err(|_| E2BIG)?;
            }
        }
        Ok(value)
    }

    /// Copies `value` (today's struct) back to the caller, as far as the caller's struct goes.
    ///
    /// # Errors
    /// `EFAULT` if the memory is not writable.
    pub fn write<T: AsBytes>(&self, value: &T) -> Result {
        let n = self.size.copy_out.min(size_of::<T>());
        // SAFETY: `value` is a live `T` of `size_of::<T>()` bytes and `T: AsBytes` has no
        // padding or uninitialised bytes, so all of them may be read as `u8`s.
        let bytes = unsafe {
            core::slice::from_raw_parts(core::ptr::from_ref(value).cast::<u8>(), size_of::<T>())
        };
        UserSlice::new(self.ptr, n)
            .writer()
            .write_slice(&bytes[..n])
    }
}

/// Clamps a copy of `len` bytes at `offset` to one page; `None` if `offset` is outside it.
fn span(offset: usize, len: usize) -> Option<usize> {
    let room = PAGE_SIZE.checked_sub(offset)?;
    Some(len.min(room))
}

/// The user buffer of a `read`/`pread`: the driver copies page contents out to it.
///
/// # Invariants
///
/// `done <= len`; `addr .. addr + len` is the user range the VFS passed (checked by the copy
/// functions themselves, `access_ok` included).
pub struct UserOut {
    addr: usize,
    len: usize,
    done: usize,
}

impl UserOut {
    /// The user buffer `addr .. addr + len` of a `read` (a user address, never dereferenced
    /// directly).
    pub(in crate::sys) fn new(addr: usize, len: usize) -> Self {
        Self { addr, len, done: 0 }
    }

    /// Bytes still to fill.
    pub fn remaining(&self) -> usize {
        self.len - self.done
    }

    /// Bytes copied so far (what `read` returns).
    pub fn copied(&self) -> usize {
        self.done
    }

    /// Copies up to `len` bytes at `offset` in `page` (clamped to the page and to
    /// [`remaining`](Self::remaining)) to the next bytes of the user buffer, and returns how
    /// many it copied: fewer than asked if user memory faulted part-way (those bytes *are*
    /// written, and count as copied).
    pub fn copy_from_page(&mut self, page: &SharedPage, offset: usize, len: usize) -> usize {
        let Some(n) = span(offset, len.min(self.remaining())) else {
            return 0;
        };
        let Some(dst) = self.addr.checked_add(self.done) else {
            return 0;
        };
        let left = page.with_mapped(|base| {
            // SAFETY: `base + offset .. + n` lies inside the mapped page (`span`). `copy_to_user`
            // checks the user range itself and tolerates concurrent writes to the source, which
            // user space may be making through a shared mapping.
            unsafe {
                bindings::copy_to_user(
                    dst as *mut c_void,
                    base.add(offset).cast::<c_void>(),
                    n as c_ulong,
                )
            }
        });
        let copied = n.saturating_sub(left);
        // INVARIANT: `copied <= n <= remaining`.
        self.done += copied;
        copied
    }

    /// Copies up to `len` bytes at byte `offset` of `chunk` (clamped to one page from
    /// `offset`, the chunk and [`remaining`](Self::remaining)) to the next bytes of the user
    /// buffer; returns how many, as [`copy_from_page`](Self::copy_from_page).
    pub fn copy_from_chunk(&mut self, chunk: &Chunk, offset: usize, len: usize) -> usize {
        let Some(n) = span(offset % PAGE_SIZE, len.min(self.remaining())) else {
            return 0;
        };
        let (Ok(src), Some(dst)) = (chunk.span(offset, n), self.addr.checked_add(self.done)) else {
            return 0;
        };
        // SAFETY: `src .. src + n` lies inside the chunk's kernel mapping (`Chunk::span`), live
        // while `chunk` is borrowed; `copy_to_user` checks the user range and tolerates
        // concurrent writes to the source through a shared mapping.
        let left = unsafe { bindings::copy_to_user(dst as *mut c_void, src.cast(), n as c_ulong) };
        let copied = n.saturating_sub(left);
        // INVARIANT: `copied <= n <= remaining`.
        self.done += copied;
        copied
    }

    /// Copies up to `bytes.len()` bytes of `bytes` to the next bytes of the user buffer;
    /// returns how many (fewer if user memory faulted).
    pub fn copy_from_slice(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.remaining());
        let Some(dst) = self.addr.checked_add(self.done) else {
            return 0;
        };
        // SAFETY: `bytes[..n]` is readable kernel memory; `copy_to_user` checks the user range.
        let left = unsafe {
            bindings::copy_to_user(
                dst as *mut c_void,
                bytes.as_ptr().cast::<c_void>(),
                n as c_ulong,
            )
        };
        let copied = n.saturating_sub(left);
        // INVARIANT: `copied <= n <= remaining`.
        self.done += copied;
        copied
    }
}

/// The user buffer of a `write`/`pwrite`: the driver copies it into pages.
///
/// # Invariants
///
/// `done <= len`; `bounce`, once allocated, has room for one page.
pub struct UserIn {
    addr: usize,
    len: usize,
    done: usize,
    bounce: KVec<u8>,
}

impl UserIn {
    /// The user buffer `addr .. addr + len` of a `write`.
    pub(in crate::sys) fn new(addr: usize, len: usize) -> Self {
        Self {
            addr,
            len,
            done: 0,
            bounce: KVec::new(),
        }
    }

    /// Bytes still to consume.
    pub fn remaining(&self) -> usize {
        self.len - self.done
    }

    /// Bytes consumed so far (what `write` returns).
    pub fn copied(&self) -> usize {
        self.done
    }

    /// Copies up to `len` of the next bytes of the user buffer into `chunk` at byte `offset`
    /// (clamped to one page from `offset`, the chunk and [`remaining`](Self::remaining)),
    /// through the bounce buffer, as [`copy_to_page`](Self::copy_to_page).
    ///
    /// # Errors
    /// `ENOMEM` if the bounce buffer cannot be allocated (nothing is copied).
    pub fn copy_to_chunk(&mut self, chunk: &Chunk, offset: usize, len: usize) -> Result<usize> {
        let Some(n) = span(offset % PAGE_SIZE, len.min(self.remaining())) else {
            return Ok(0);
        };
        let Ok(dst) = chunk.span(offset, n) else {
            return Ok(0);
        };
        let Some((bounce, copied)) = self.fill_bounce(n)? else {
            return Ok(0);
        };
        // SAFETY: `dst .. dst + copied` lies inside the chunk's kernel mapping (`Chunk::span`,
        // `copied <= n`) and `bounce[..copied]` was written by `fill_bounce`; a kernel buffer
        // and a chunk never overlap. Concurrent user-space accesses through a mapping are byte
        // races of C code.
        unsafe { core::ptr::copy_nonoverlapping(bounce, dst, copied) };
        Ok(self.advance(copied))
    }

    /// Copies up to `len` of the next bytes of the user buffer (clamped to the page and to
    /// [`remaining`](Self::remaining)) into `page` at `offset`, and returns how many it
    /// copied. If user memory faults part-way, the bytes before the fault are stored and every
    /// other byte of the page is left exactly as it was.
    ///
    /// # Errors
    /// `ENOMEM` if the bounce buffer cannot be allocated (nothing is copied).
    pub fn copy_to_page(&mut self, page: &SharedPage, offset: usize, len: usize) -> Result<usize> {
        let Some(n) = span(offset, len.min(self.remaining())) else {
            return Ok(0);
        };
        let Some((bounce, copied)) = self.fill_bounce(n)? else {
            return Ok(0);
        };
        page.with_mapped(|base| {
            // SAFETY: `base + offset .. + copied` lies inside the mapped page (`span`,
            // `copied <= n`) and `bounce[..copied]` was written by `fill_bounce`; the ranges do
            // not overlap (a kernel buffer and a page). Concurrent user-space accesses to the
            // page through a mapping are byte races of C code, as in any C driver's `memcpy`.
            unsafe { core::ptr::copy_nonoverlapping(bounce, base.add(offset), copied) }
        });
        Ok(self.advance(copied))
    }

    /// Copies the next `n` bytes of the user buffer (at most a page: `span` clamps every
    /// caller's `n`) into the bounce buffer, allocating it on first use. Returns the bounce
    /// buffer and how many bytes `copy_from_user` copied before user memory faulted; `None` if
    /// the user address overflows. The caller stores those bytes, then [`advance`]s.
    ///
    /// The copy goes through the bounce buffer because `copy_from_user` zero-fills the rest of
    /// its destination on a fault: straight into a page or chunk it would zero live bytes.
    ///
    /// [`advance`]: Self::advance
    fn fill_bounce(&mut self, n: usize) -> Result<Option<(*const u8, usize)>> {
        let n = n.min(PAGE_SIZE);
        let Some(src) = self.addr.checked_add(self.done) else {
            return Ok(None);
        };
        if self.bounce.capacity() < PAGE_SIZE {
            self.bounce = KVec::with_capacity(PAGE_SIZE, GFP_KERNEL)?;
        }
        let bounce = self.bounce.as_mut_ptr();
        // SAFETY: `bounce` has room for `PAGE_SIZE >= n` bytes (type invariants, checked above)
        // and is ours alone; `copy_from_user` checks the user range.
        let left = unsafe {
            bindings::copy_from_user(bounce.cast::<c_void>(), src as *const c_void, n as c_ulong)
        };
        Ok(Some((bounce.cast_const(), n.saturating_sub(left))))
    }

    /// Counts `copied` bytes (at most what the last [`fill_bounce`](Self::fill_bounce)
    /// returned) as consumed; returns `copied`.
    fn advance(&mut self, copied: usize) -> usize {
        // INVARIANT: `copied <= n <= remaining` (`fill_bounce`'s `n` was clamped to it).
        self.done += copied;
        copied
    }
}
