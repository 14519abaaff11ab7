//! Typed views of shared memory: checked atomics, volatile values and descriptor arrays at
//! offsets of a [`Mapping`].
//!
//! A ring shared with the kernel or another process is memory someone else writes at any
//! time. rust-vmm's vm-memory turns "a pointer into such memory" into a checked borrow, and so
//! does this module: [`Mapping::atomic_u32`] checks that four bytes at an offset lie inside the
//! mapping and are aligned, and hands back `&AtomicU32` borrowed from the mapping; ring code
//! keeps offsets, never raw pointers, and borrows its indices on use. Plain values are copied
//! in and out with volatile accesses ([`Mapping::load`], [`Mapping::store`]), so the compiler
//! neither caches nor elides them, and [`Mapping::array`] is a bounds-checked view of a
//! descriptor array.
//!
//! Which types may be copied is said by zerocopy's traits, derived rather than written by
//! hand: [`FromBytes`] (every bit pattern is a valid value, so reading what another party
//! wrote cannot make an invalid value) and [`IntoBytes`] (no padding, so writing one exposes
//! no uninitialised bytes). A type of another crate that does not derive them (rustix's
//! `XdpDesc`, `io_uring_sqe`) is copied through a mirror that does, or as bytes, in the module
//! that uses it.
//!
//! Every check costs a comparison or two and no allocation; failures are `EINVAL` (or
//! `EACCES` for writes through a [`MapFlags::READONLY`](crate::resource::MapFlags::READONLY)
//! mapping).
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::resource::MapOptions;
//! use std::sync::atomic::Ordering;
//! let ring = MapOptions::new(4096).map_anonymous()?;
//! // A producer index at offset 0, sixteen 8-byte descriptors at 64.
//! ring.atomic_u32(0)?.store(1, Ordering::Release);
//! let descs = ring.array::<u64>(64, 16)?;
//! descs.set(0, 0xabcd)?;
//! assert_eq!(descs.get(0)?, 0xabcd);
//! assert_eq!(ring.load::<u32>(0)?, 1);
//! assert!(ring.atomic_u32(2).is_err()); // misaligned
//! assert!(descs.get(16).is_err()); // out of bounds
//! # Ok(()) }
//! ```
//!
//! # Safety
//! The module's unsafe code forms references and volatile accesses to memory inside a live
//! [`Mapping`], after checking range and alignment against it. The atomics are sound to share
//! with the kernel, which touches these words only with its own atomic accesses
//! (`smp_load_acquire`, `smp_store_release`, `READ_ONCE`).
#![allow(unsafe_code)]

use crate::resource::Mapping;
use crate::{Error, Result};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64};

/// zerocopy, whose derives prove what [`Mapping::load`], [`Mapping::store`] and
/// [`VolatileArray`] need of a type (re-exported so that the version matches).
pub use zerocopy;
/// Every bit pattern of `size_of::<Self>()` bytes is a valid value, so reading what another
/// party wrote cannot make an invalid one: zerocopy's trait, derived, never `unsafe impl`ed.
///
/// The derives come with pktmap's `derive` feature (default), or with zerocopy's own `derive`
/// feature in your manifest.
///
/// # Examples
#[cfg_attr(feature = "derive", doc = "```")]
#[cfg_attr(not(feature = "derive"), doc = "```ignore")]
/// use pktmap::resource::MapOptions;
/// use pktmap::volatile::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// /// A ring descriptor as the driver lays it out (`struct pktmap_desc`).
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, PartialEq, FromBytes, IntoBytes, KnownLayout, Immutable)]
/// // With zerocopy as a dependency of your own, this line is not needed.
/// #[zerocopy(crate = "pktmap::volatile::zerocopy")]
/// struct Desc {
///     buf: u32,
///     len: u32,
/// }
/// # fn main() -> std::io::Result<()> {
/// let ring = MapOptions::new(4096).map_anonymous()?;
/// ring.store(64, Desc { buf: 3, len: 60 })?;
/// assert_eq!(ring.load::<Desc>(64)?, Desc { buf: 3, len: 60 });
/// let descs = ring.array::<Desc>(64, 16)?;
/// descs.set(15, Desc { buf: 7, len: 1500 })?;
/// assert_eq!(ring.load::<u32>(64 + 15 * 8 + 4)?, 1500); // `len` of the last entry
/// # Ok(()) }
/// ```
///
/// A struct with padding does not derive `IntoBytes` (writing it would expose uninitialised
/// bytes):
/// ```compile_fail
/// #[derive(pktmap::volatile::IntoBytes)]
/// #[zerocopy(crate = "pktmap::volatile::zerocopy")]
/// #[repr(C)]
/// struct Padded { a: u8, b: u32 }
/// ```
pub use zerocopy::FromBytes;
/// The values have no padding bytes, so writing one writes initialised bytes only:
/// zerocopy's trait, derived (see [`FromBytes`]).
pub use zerocopy::IntoBytes;

impl Mapping {
    /// Reads one byte of every `stride` bytes, volatile (the compiler must perform each read),
    /// so each page-table entry they fall in is faulted in: how POPULATE brings in a pool the
    /// kernel's `MADV_POPULATE_*` refuses (a page-frame map). Reads only, so a read-only mapping
    /// populates too; the values are not looked at (the driver's pages may change under us).
    pub(crate) fn read_every(&self, stride: usize) -> rustix::io::Result<()> {
        for offset in (0..self.len()).step_by(stride.max(1)) {
            let p = self
                .checked(offset, 1, 1)
                .map_err(|_| rustix::io::Errno::INVAL)?;
            // SAFETY: `p` is a byte inside the mapping (checked), which is mapped and readable
            // by the type invariants.
            std::hint::black_box(unsafe { p.read_volatile() });
        }
        Ok(())
    }

    /// The `u32` at `offset` as an atomic, borrowed from the mapping: a ring's producer or
    /// consumer index.
    ///
    /// # Errors
    /// `EINVAL` if the four bytes are outside the mapping or not 4-aligned; `EACCES` if the
    /// mapping is read-only (a store through the atomic would fault).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::sync::atomic::Ordering;
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// let tail = m.atomic_u32(64)?;
    /// tail.fetch_add(3, Ordering::Release);
    /// assert_eq!(m.atomic_u32(64)?.load(Ordering::Acquire), 3);
    /// assert!(m.atomic_u32(4096).is_err());
    /// # Ok(()) }
    /// ```
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.checked_mut(offset, 4, align_of::<AtomicU32>())?;
        // SAFETY: `p` is 4 aligned bytes inside the mapping (checked), which lives as long as
        // the borrow of `self`; every party touches the word atomically (module docs).
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    /// The `u16` at `offset` as an atomic: the tail of a provided-buffer ring.
    ///
    /// # Errors
    /// As [`atomic_u32`](Self::atomic_u32), for two bytes aligned to 2.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// assert!(m.atomic_u16(14).is_ok());
    /// assert!(m.atomic_u16(15).is_err());
    /// # Ok(()) }
    /// ```
    pub fn atomic_u16(&self, offset: usize) -> Result<&AtomicU16> {
        let p = self.checked_mut(offset, 2, align_of::<AtomicU16>())?;
        // SAFETY: As for `atomic_u32`, for 2 aligned bytes.
        Ok(unsafe { AtomicU16::from_ptr(p.cast()) })
    }

    /// The `u64` at `offset` as an atomic.
    ///
    /// # Errors
    /// As [`atomic_u32`](Self::atomic_u32), for eight bytes aligned to 8.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::sync::atomic::Ordering;
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// m.atomic_u64(8)?.store(u64::MAX, Ordering::Relaxed);
    /// assert_eq!(m.load::<u64>(8)?, u64::MAX);
    /// assert!(m.atomic_u64(4).is_err());
    /// # Ok(()) }
    /// ```
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.checked_mut(offset, 8, align_of::<AtomicU64>())?;
        // SAFETY: As for `atomic_u32`, for 8 aligned bytes.
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) })
    }

    /// Copies the `T` at `offset` out with one volatile read.
    ///
    /// # Errors
    /// `EINVAL` if it is outside the mapping or misaligned for `T`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// m.store(100, 7u16)?;
    /// assert_eq!(m.load::<u16>(100)?, 7);
    /// # Ok(()) }
    /// ```
    pub fn load<T: FromBytes>(&self, offset: usize) -> Result<T> {
        let p = self.checked(offset, size_of::<T>(), align_of::<T>())?;
        // SAFETY: `p` is an aligned `T` inside the readable mapping (checked); any bit pattern
        // is a valid `T` (`FromBytes`).
        Ok(unsafe { p.cast::<T>().read_volatile() })
    }

    /// Copies `value` in at `offset` with one volatile write.
    ///
    /// # Errors
    /// `EINVAL` if it is outside the mapping or misaligned for `T`; `EACCES` if read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// m.store(4088, 1u64)?;
    /// assert!(m.store(4090, 1u64).is_err());
    /// # Ok(()) }
    /// ```
    pub fn store<T: IntoBytes>(&self, offset: usize, value: T) -> Result<()> {
        let p = self.checked_mut(offset, size_of::<T>(), align_of::<T>())?;
        // SAFETY: `p` is an aligned `T` inside the writable mapping (checked).
        unsafe { p.cast::<T>().write_volatile(value) };
        Ok(())
    }

    /// A view of `len` values of `T` starting at `offset`: a ring's descriptor array.
    ///
    /// # Errors
    /// `EINVAL` if the array does not fit the mapping or is misaligned for `T`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let m = pktmap::resource::MapOptions::new(4096).map_anonymous()?;
    /// let a = m.array::<u32>(0, 1024)?;
    /// assert_eq!(a.len(), 1024);
    /// assert!(m.array::<u32>(4, 1024).is_err());
    /// # Ok(()) }
    /// ```
    pub fn array<T>(&self, offset: usize, len: usize) -> Result<VolatileArray<'_, T>> {
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| Error::invalid(format!("{len} entries overflow")))?;
        self.checked(offset, bytes, align_of::<T>())?;
        // INVARIANT: `len` values of `T` at `offset` fit the mapping, aligned (checked above).
        Ok(VolatileArray {
            map: self,
            offset,
            len,
            _t: PhantomData,
        })
    }
}

/// A ring shared with the kernel: a [`Mapping`], `N` offsets in it of its index words
/// (io_uring's SQ and CQ heads and tails, an AF_XDP ring's producer and consumer), and its
/// array of `entries` values of `T`, all checked once, when made.
///
/// Borrowing an index or the array then cannot fail, so ring accessors have no error path
/// for what was proven at construction, and no `expect`. Index `i` is a constant at every
/// call site, which the compiler checks against `N`.
///
/// # Invariants
/// Every `at[i]` is the offset of 4 bytes inside `map`, aligned to 4, in a writable mapping,
/// and `entries` values of `T` at `desc` lie inside `map`, aligned (checked by
/// [`Mapping::atomic_u32`] and [`Mapping::array`] in [`new`](Self::new)); nothing here changes
/// afterwards.
#[derive(Debug)]
pub(crate) struct SharedRing<T, const N: usize> {
    map: Mapping,
    at: [usize; N],
    desc: usize,
    entries: usize,
    _t: PhantomData<T>,
}

impl<T, const N: usize> SharedRing<T, N> {
    /// Checks the index words `at` and the array of `entries` values of `T` at `desc`
    /// against `map`.
    ///
    /// # Errors
    /// As [`Mapping::atomic_u32`] and [`Mapping::array`]: `EINVAL` for a part outside `map` or
    /// misaligned, `EACCES` for a read-only mapping.
    pub(crate) fn new(map: Mapping, at: [usize; N], desc: usize, entries: usize) -> Result<Self> {
        for &offset in &at {
            map.atomic_u32(offset)?;
        }
        map.array::<T>(desc, entries)?;
        // INVARIANT: every part was checked against `map` above.
        Ok(Self {
            map,
            at,
            desc,
            entries,
            _t: PhantomData,
        })
    }

    /// The index word at `at[i]`, borrowed from the mapping.
    pub(crate) fn index(&self, i: usize) -> &AtomicU32 {
        let p = self.map.as_ptr().cast_mut().wrapping_add(self.at[i]);
        // SAFETY: By the type invariants `p` is 4 aligned bytes inside the writable mapping,
        // which lives as long as the borrow of `self`; every party touches the word atomically
        // (module docs), as for `atomic_u32`.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }

    /// The mapping the ring lives in (for the words outside the index set and the array).
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The ring's array.
    pub(crate) fn entries(&self) -> VolatileArray<'_, T> {
        // INVARIANT: checked in `new` (type invariants).
        VolatileArray {
            map: &self.map,
            offset: self.desc,
            len: self.entries,
            _t: PhantomData,
        }
    }
}

/// A bounds-checked view of an array of `T` inside a [`Mapping`]; element accesses are
/// volatile copies.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::MapOptions;
/// let m = MapOptions::new(4096).map_anonymous()?;
/// let words = m.array::<u64>(0, 512)?; // the whole page
/// words.set(511, u64::MAX)?;
/// assert_eq!(words.get(511)?, u64::MAX);
/// assert!(m.array::<u64>(8, 512).is_err()); // one entry too many for the page
/// # Ok(()) }
/// ```
///
/// # Invariants
/// `len` values of `T`, starting `offset` bytes into `map`, lie inside `map` and are aligned.
#[derive(Debug, Clone, Copy)]
pub struct VolatileArray<'a, T> {
    map: &'a Mapping,
    offset: usize,
    len: usize,
    _t: PhantomData<T>,
}

impl<T> VolatileArray<'_, T> {
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte offset of entry `index` in the mapping.
    fn at(&self, index: usize) -> Result<usize> {
        if index >= self.len {
            return Err(Error::invalid(format!(
                "index {index} >= {} entries",
                self.len
            )));
        }
        // By the type invariants the whole array fits the mapping, so this cannot overflow.
        Ok(self.offset + index * size_of::<T>())
    }

    /// Copies entry `index` out.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.store::<u16>(6, 0xbeef)?;
    /// let halves = m.array::<u16>(0, 4)?;
    /// assert_eq!(halves.get(3)?, 0xbeef);
    /// assert_eq!(halves.get(4).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if `index >= len`.
    pub fn get(&self, index: usize) -> Result<T>
    where
        T: FromBytes,
    {
        self.map.load(self.at(index)?)
    }

    /// Copies `value` into entry `index`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let m = MapOptions::new(4096).map_anonymous()?;
    /// m.array::<u32>(0, 4)?.set(1, 42)?;
    /// assert_eq!(m.load::<u32>(4)?, 42);
    /// let ro = MapOptions::new(4096).flags(MapFlags::READONLY).map_anonymous()?;
    /// let err = ro.array::<u32>(0, 4)?.set(1, 42).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `EINVAL` if `index >= len`; `EACCES` if the mapping is read-only.
    pub fn set(&self, index: usize, value: T) -> Result<()>
    where
        T: IntoBytes,
    {
        self.map.store(self.at(index)?, value)
    }
}

#[cfg(test)]
mod tests {
    use crate::resource::{MapFlags, MapOptions};
    use std::sync::atomic::Ordering;

    #[test]
    fn checks_bounds_alignment_and_access() {
        let m = MapOptions::new(8192).map_anonymous().unwrap();
        for (off, ok) in [
            (0, true),
            (8188, true),
            (8189, false),
            (8192, false),
            (2, false),
        ] {
            assert_eq!(m.atomic_u32(off).is_ok(), ok, "{off}");
        }
        assert!(m.atomic_u32(usize::MAX - 1).is_err());
        assert!(m.array::<u64>(8, usize::MAX / 4).is_err());
        let a = m.array::<u64>(4096, 512).unwrap();
        a.set(511, 9).unwrap();
        assert_eq!(m.load::<u64>(8184).unwrap(), 9);
        assert_eq!(a.get(512).unwrap_err().raw_os_error(), Some(libc::EINVAL));
        let ro = MapOptions::new(4096)
            .flags(MapFlags::READONLY)
            .map_anonymous()
            .unwrap();
        assert_eq!(
            ro.atomic_u32(0).unwrap_err().raw_os_error(),
            Some(libc::EACCES)
        );
        assert_eq!(
            ro.store(0, 1u8).unwrap_err().raw_os_error(),
            Some(libc::EACCES)
        );
        assert_eq!(ro.load::<u32>(0).unwrap(), 0);
    }

    #[test]
    fn atomics_see_each_other() {
        let m = MapOptions::new(4096).map_anonymous().unwrap();
        m.atomic_u16(14).unwrap().store(0xbeef, Ordering::Release);
        assert_eq!(m.load::<u16>(14).unwrap(), 0xbeef);
        m.atomic_u64(64).unwrap().fetch_add(5, Ordering::AcqRel);
        assert_eq!(m.load::<u64>(64).unwrap(), 5);
    }
}
