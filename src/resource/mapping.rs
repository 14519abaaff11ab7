//! [`Mapping`], the owner of a mapped range: its accessors (through the crate's one range
//! check, [`Mapping::checked`]), `msync`, `madvise`, `mlock`, and unmapping.

use super::{Advice, MapFlags};
use crate::error::{Error, Result};
use pktmap_abi::plan::PoolKind;
use rustix::mm::{self, MsyncFlags};
use std::ffi::c_void;
use std::ptr::{self, NonNull};

/// The one owner of a mapped range.
///
/// # Invariants
/// `ptr` came from a successful `mmap` of `len` bytes (`len > 0`) and is unmapped exactly once,
/// in `Drop` (or by [`Mapping::unmap`], which forgets the value afterwards).
#[derive(Debug)]
pub(super) struct RawMapping {
    pub(super) ptr: NonNull<c_void>,
    pub(super) len: usize,
}

impl Drop for RawMapping {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the range is ours and still mapped. munmap of a range
        // we mapped can only fail for bad arguments, which the invariants exclude; like memmap2,
        // ignore the result, as Drop cannot report it.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// A mapped resource, unmapped on drop.
///
/// The memory may be shared with a driver or another process that writes it at any time, so
/// the safe accessors copy and slices are `unsafe`.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::resource::{map, MapFlags};
/// let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// rustix::fs::ftruncate(&fd, 8192).unwrap();
/// let rw = map(&fd, 0, 8192, MapFlags::POPULATE)?;
/// rw.write_at(4096, b"frame")?;
/// let ro = map(&fd, 4096, 4096, MapFlags::READONLY)?; // a second view of the second page
/// let mut b = [0; 5];
/// ro.read_at(0, &mut b)?;
/// assert_eq!((&b, ro.len(), ro.is_readonly()), (b"frame", 4096, true));
/// assert!(ro.write_at(0, b"x").is_err()); // EACCES: read-only
/// # Ok(()) } // both are unmapped here
/// ```
#[derive(Debug)]
pub struct Mapping {
    pub(super) raw: RawMapping,
    pub(super) flags: MapFlags,
    /// `MAP_SHARED`: a read populate may suffice (see the
    /// [module docs](crate::resource#how-populate-populates)).
    pub(super) shared: bool,
    /// The `/dev/pktmap` pool kind it maps, if the map was told
    /// ([`MapOptions::pool`](super::MapOptions::pool)).
    pub(super) pool: Option<PoolKind>,
}

// SAFETY: A Mapping is an address range owned by the process, not by a thread; every access
// through it is a copy through raw pointers or an `unsafe` slice whose caller answers for races.
unsafe impl Send for Mapping {}
// SAFETY: As for Send: shared references only allow copies (`read_at`, `write_at`), which are
// plain loads and stores of bytes whose concurrent use the memory model of shared mappings
// already has to allow (the device writes them too).
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr.as_ptr().cast()
    }

    /// The first byte, for writing; `None` if mapped [`MapFlags::READONLY`].
    pub fn as_mut_ptr(&self) -> Option<*mut u8> {
        (!self.is_readonly()).then(|| self.raw.ptr.as_ptr().cast())
    }

    /// The mapped length in bytes (never 0).
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// Always `false`: a mapping is never empty (`mmap` refuses zero lengths).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The flags it was mapped with.
    pub fn flags(&self) -> MapFlags {
        self.flags
    }

    /// Whether it is mapped `PROT_READ` only.
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(MapFlags::READONLY)
    }

    /// The address of `len` bytes at `offset`, checked to lie inside the mapping and be aligned
    /// to `align`: the crate's one range check, behind every accessor here and in
    /// [`crate::volatile`].
    pub(crate) fn checked(&self, offset: usize, len: usize, align: usize) -> Result<*const u8> {
        let inside = offset.checked_add(len).is_some_and(|end| end <= self.len());
        if !inside {
            return Err(Error::invalid(format!(
                "{len} bytes at offset {offset} do not fit a mapping of {} bytes",
                self.len()
            )));
        }
        let addr = (self.as_ptr() as usize).wrapping_add(offset);
        if align == 0 || addr % align != 0 {
            return Err(Error::invalid(format!(
                "offset {offset} is not aligned to {align} bytes"
            )));
        }
        // SAFETY: `offset + len <= self.len()` (checked above), so the result stays inside the
        // mapping.
        Ok(unsafe { self.as_ptr().add(offset) })
    }

    /// As [`checked`](Self::checked), for a write: `EACCES` if the mapping is read-only.
    pub(crate) fn checked_mut(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8> {
        let p = self.checked(offset, len, align)?;
        if self.is_readonly() {
            return Err(Error::refused(libc::EACCES, "the mapping is read-only"));
        }
        Ok(p.cast_mut())
    }

    /// A writable pointer to `len` bytes at `offset`, checked to lie inside the mapping and be
    /// aligned to `align` bytes: where a kernel-described structure (a ring's producer index, a
    /// descriptor array) lives in the mapping.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping or misaligned, `EACCES` if the mapping is
    /// read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// let producer = m.ptr_at(64, 4, 4)?.cast::<u32>();
    /// assert!(m.ptr_at(4094, 4, 1).is_err());
    /// assert!(m.ptr_at(2, 4, 4).is_err());
    /// # let _ = producer;
    /// # Ok(()) }
    /// ```
    pub fn ptr_at(&self, offset: usize, len: usize, align: usize) -> Result<*mut u8> {
        self.checked_mut(offset, len, align)
    }

    /// Copies `buf.len()` bytes out of the mapping, starting `offset` bytes in.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let fd = memfd(4096)?;
    /// rustix::io::pwrite(&fd, b"from the file", 100)?;
    /// let m = map(&fd, 0, 4096, MapFlags::READONLY)?;
    /// let mut buf = [0; 13];
    /// m.read_at(100, &mut buf)?;
    /// assert_eq!(&buf, b"from the file");
    /// assert!(m.read_at(4090, &mut buf).is_err()); // past the end: EINVAL, nothing read
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let p = self.checked(offset, buf.len(), 1)?;
        // SAFETY: The range is inside the mapping (checked above), which is mapped and
        // readable by the type invariants; `buf` is a distinct Rust allocation.
        unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the mapping, starting `offset` bytes in.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let fd = memfd(4096)?;
    /// let m = map(&fd, 0, 4096, MapFlags::empty())?;
    /// m.write_at(8, b"seen by every mapping of the file")?;
    /// let mut buf = [0; 4];
    /// rustix::io::pread(&fd, &mut buf, 8)?;
    /// assert_eq!(&buf, b"seen");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the mapping; `EACCES` if it is read-only.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let p = self.checked_mut(offset, data.len(), 1)?;
        // SAFETY: The range is inside the mapping (checked above), which is mapped writable
        // (not READONLY); `data` is a distinct Rust allocation.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// The mapping as a byte slice.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let fd = memfd(4096)?;
    /// rustix::io::pwrite(&fd, b"abc", 0)?;
    /// let m = map(&fd, 0, 4096, MapFlags::READONLY)?;
    /// // SAFETY: nothing else has this memfd, so nothing writes while the slice lives.
    /// let bytes = unsafe { m.as_slice() };
    /// assert_eq!(&bytes[..3], b"abc");
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// Nothing may write the mapped memory while the slice lives: not this process, not the
    /// driver, not another process sharing it.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: Mapped and readable for `len` bytes by the type invariants; the caller
        // guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// The mapping as a mutable byte slice.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// // SAFETY: private anonymous memory, writable, and no other reference to it.
    /// let bytes = unsafe { m.as_mut_slice() };
    /// bytes.fill(0xff);
    /// let mut last = [0];
    /// m.read_at(4095, &mut last)?;
    /// assert_eq!(last, [0xff]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// The mapping must be writable (not READONLY, else the first write faults), and nothing
    /// else may read or write the mapped memory while the slice lives.
    #[allow(clippy::mut_from_ref)] // The memory is not owned by `self`'s borrow; see # Safety.
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: Mapped for `len` bytes by the type invariants; the caller guarantees
        // writability and exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.raw.ptr.as_ptr().cast(), self.len()) }
    }

    pub(super) fn call(&self, what: &'static str, r: rustix::io::Result<()>) -> Result<()> {
        r.map_err(|e| Error::from(e).during(what))
    }
    /// `msync(MS_SYNC)`—Writes changes back to the resource and waits.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let fd = memfd(4096)?;
    /// let m = map(&fd, 0, 4096, MapFlags::empty())?;
    /// m.write_at(0, b"durable")?;
    /// m.flush()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        // SAFETY: msync only writes back; the range is ours by the type invariants.
        let r = unsafe { mm::msync(self.raw.ptr.as_ptr(), self.len(), MsyncFlags::SYNC) };
        self.call("msync(MS_SYNC)", r)
    }

    /// `madvise(advice)`—Gives the kernel a hint about the whole mapping.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{Advice, MapOptions};
    /// let m = MapOptions::new(2 * 4096).map_anonymous()?;
    /// m.write_at(0, &[1])?;
    /// // SAFETY: this code expects the pages back as zeros, which is what DONTNEED gives.
    /// unsafe { m.advise(Advice::LinuxDontNeed)? };
    /// let mut b = [9];
    /// m.read_at(0, &mut b)?;
    /// assert_eq!(b, [0]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// Some advice changes contents: `MADV_DONTNEED` or `MADV_REMOVE` drop pages, after which
    /// private pages read back as zeros. The caller must hold no assumption that breaks.
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "madvise")]
    pub unsafe fn advise(&self, advice: Advice) -> Result<()> {
        // SAFETY: The range is ours by the type invariants; the caller answers for the advice.
        let r = unsafe { mm::madvise(self.raw.ptr.as_ptr(), self.len(), advice) };
        self.call("madvise", r)
    }

    /// `mlock`—Locks every page in memory (faulting them in).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.lock()?; // within RLIMIT_MEMLOCK (8 MiB by default)
    /// m.unlock()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno (`ENOMEM` or `EPERM` past `RLIMIT_MEMLOCK`).
    #[doc(alias = "mlock")]
    pub fn lock(&self) -> Result<()> {
        // SAFETY: mlock does not change contents; the range is ours by the type invariants.
        let r = unsafe { mm::mlock(self.raw.ptr.as_ptr(), self.len()) };
        self.call("mlock", r)
    }

    /// `munlock`—Undoes [`lock`](Self::lock).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.lock()?;
    /// m.unlock()?;
    /// m.unlock()?; // unlocking unlocked pages is no error
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "munlock")]
    pub fn unlock(&self) -> Result<()> {
        // SAFETY: munlock does not change contents; the range is ours by the type invariants.
        let r = unsafe { mm::munlock(self.raw.ptr.as_ptr(), self.len()) };
        self.call("munlock", r)
    }

    /// `munmap`—Unmaps now and reports the errno, which `Drop` cannot.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.unmap()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The kernel's errno; the range is given up either way.
    #[doc(alias = "munmap")]
    pub fn unmap(self) -> Result<()> {
        let (p, len) = (self.raw.ptr.as_ptr(), self.len());
        std::mem::forget(self);
        // SAFETY: By the type invariants the range is ours and mapped; `self` was forgotten, so
        // Drop will not unmap it a second time.
        let r = unsafe { mm::munmap(p, len) };
        r.map_err(|e| Error::from(e).during("munmap"))
    }

    /// Takes ownership of a mapped range, to unmap it on drop.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions, Mapping};
    /// let (ptr, len) = MapOptions::new(4096).map_anonymous()?.into_raw();
    /// // SAFETY: a live read-write mapping of `len` bytes that nothing else will unmap.
    /// let m = unsafe { Mapping::from_raw(ptr, len, MapFlags::empty()) };
    /// m.write_at(0, b"owned again")?;
    /// # drop(m); // unmapped here
    /// # Ok(()) }
    /// ```
    ///
    /// # Safety
    /// `[ptr, ptr + len)` must be a live mapping (from `mmap`, or [`Mapping::into_raw`]) that
    /// nothing else will unmap, with `len > 0`, and `flags` must not claim more access than
    /// it has (READONLY if it is mapped `PROT_READ`).
    pub unsafe fn from_raw(ptr: NonNull<c_void>, len: usize, flags: MapFlags) -> Self {
        // INVARIANT: The caller hands over a live mapping of `len` bytes that only we unmap.
        Mapping {
            raw: RawMapping { ptr, len },
            flags,
            // Unknown: populate() takes the write path, which is always enough.
            shared: false,
            pool: None,
        }
    }

    /// Gives up ownership: returns the address and length, which the caller must `munmap`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let (ptr, len) = MapOptions::new(4096).map_anonymous()?.into_raw();
    /// assert_eq!(len, 4096);
    /// // SAFETY: the range came from `into_raw`, and nothing uses it any more.
    /// unsafe { rustix::mm::munmap(ptr.as_ptr(), len)? };
    /// # Ok(()) }
    /// ```
    pub fn into_raw(self) -> (NonNull<c_void>, usize) {
        let raw = (self.raw.ptr, self.raw.len);
        std::mem::forget(self);
        raw
    }
}
