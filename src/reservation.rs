//! FIXED done safely: a [`Reservation`] owns a range of address space, and resources are
//! mapped into slots of it, in the application's own address plan.
//!
//! Onload and ef_vi reserve address space first (`PROT_NONE`) and then map resources into
//! slots of it with `MAP_FIXED`, so that a netif's pieces sit at known distances from each
//! other; memmap2 users have asked for the same (memmap2-rs #35). `MAP_FIXED` replaces
//! whatever is at the address, which is why [`MapOptions::map_replacing`] is `unsafe`. Here
//! the reservation proves the replaced pages are its own `PROT_NONE` pages, so mapping into a
//! slot is safe:
//!
//! - [`Reservation::map`] checks the slot: page aligned (`EINVAL`), inside the range
//!   (`EINVAL`), not overlapping a slot in use (`EEXIST`); only then does it map with
//!   `MAP_FIXED` over the reservation's own pages.
//! - A [`Slot`] borrows its reservation, so the reservation is unmapped last; when the slot
//!   drops, its pages go back to `PROT_NONE` in one `MAP_FIXED` call, so the range never has a
//!   hole another thread's `mmap` could land in. A mapping that fails is put back the same way.
//! - Dropping the reservation unmaps the range, minus any part that could not be put back.
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::reservation::Reservation;
//! use pktmap::resource::MapFlags;
//! use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
//! let (a, b) = (memfd_create("a", MemfdFlags::CLOEXEC)?, memfd_create("b", MemfdFlags::CLOEXEC)?);
//! ftruncate(&a, 8192)?;
//! ftruncate(&b, 4096)?;
//! let plan = Reservation::new(16384)?;
//! let first = plan.map(0, &a, 0, 8192, MapFlags::empty())?;
//! let second = plan.map(8192, &b, 0, 4096, MapFlags::READONLY)?;
//! assert_eq!(second.as_ptr() as usize, first.as_ptr() as usize + 8192); // contiguous
//! assert!(plan.map(4096, &b, 0, 4096, MapFlags::empty()).is_err()); // overlaps `first`
//! # Ok(()) }
//! ```
//!
//! # Safety
//! The module's unsafe code replaces pages of the reservation's own range, which it owns from
//! [`Reservation::new`] to its `Drop`, and which the slot table proves hold no live slot.
#![allow(unsafe_code)]

use crate::offset::PAGE_SIZE;
use crate::resource::{reserve_raw, unmap_raw, MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use rustix::fd::AsFd;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Mutex;

/// What a part of the range holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// A [`Slot`]'s mapping.
    Slot,
    /// Neither ours nor reserved any more: putting `PROT_NONE` back failed, so the range may
    /// hold someone else's mapping and is never touched again.
    Lost,
}

/// A range of address space reserved with `PROT_NONE`, for mappings at chosen slots.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::reservation::Reservation;
/// use pktmap::resource::MapFlags;
/// let fd = rustix::fs::memfd_create("ring", rustix::fs::MemfdFlags::CLOEXEC)?;
/// rustix::fs::ftruncate(&fd, 4096)?;
/// let plan = Reservation::new(4 * 4096)?;
/// // The same page twice, back to back: a ring whose wrap-around reads straight on.
/// let lo = plan.map(0, &fd, 0, 4096, MapFlags::empty())?;
/// let hi = plan.map(4096, &fd, 0, 4096, MapFlags::empty())?;
/// lo.write_at(0, b"wrap")?;
/// let mut b = [0; 4];
/// hi.read_at(0, &mut b)?;
/// assert_eq!(&b, b"wrap");
/// # Ok(()) }
/// ```
///
/// # Invariants
/// `[base, base + len)` came from a successful `mmap` and belongs to this value until `Drop`.
/// Every part of it is either reserved `PROT_NONE` pages, a live [`Slot`]'s mapping (listed
/// as `Use::Slot` in `parts`), or listed as `Use::Lost`.
#[derive(Debug)]
pub struct Reservation {
    base: usize,
    len: usize,
    /// `(offset, len, use)` of the parts that are not reserved pages, sorted by offset.
    parts: Mutex<Vec<(usize, usize, Use)>>,
}

fn page() -> usize {
    PAGE_SIZE as usize
}

impl Reservation {
    /// `mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`—Reserves
    /// `len` bytes (rounded up to pages) of address space.
    ///
    /// # Errors
    /// `EINVAL` for a zero length; the kernel's errno (`ENOMEM`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let plan = pktmap::reservation::Reservation::new(5000)?;
    /// assert_eq!(plan.len(), 8192);
    /// # Ok(()) }
    /// ```
    pub fn new(len: usize) -> Result<Self> {
        Self::aligned(len, page())
    }

    /// Reserves `len` bytes whose first address is a multiple of `align` (a power of two, at
    /// least a page): for slots of huge-page memory, which `MAP_FIXED` needs 2 MiB aligned.
    ///
    /// # Errors
    /// `EINVAL` for a zero length or an `align` that is not a power of two of at least a
    /// page; the kernel's errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let plan = pktmap::reservation::Reservation::aligned(4 << 20, 2 << 20)?;
    /// assert_eq!(plan.as_ptr() as usize % (2 << 20), 0);
    /// # Ok(()) }
    /// ```
    pub fn aligned(len: usize, align: usize) -> Result<Self> {
        if len == 0 || !align.is_power_of_two() || align < page() {
            return Err(Error::invalid(format!(
                "reservation of {len} bytes aligned to {align}: needs a length and a \
                 power-of-two alignment of at least a page"
            )));
        }
        let too_big = || Error::invalid(format!("reservation of {len} bytes overflows"));
        let len = len.checked_next_multiple_of(page()).ok_or_else(too_big)?;
        let extra = align - page();
        let whole = len.checked_add(extra).ok_or_else(too_big)?;
        // SAFETY: No address: fresh address space only.
        let p = unsafe { reserve_raw(None, whole) }?;
        let start = p.as_ptr() as usize;
        let base = start.next_multiple_of(align);
        let (head, tail) = (base - start, start + whole - (base + len));
        // SAFETY: The head and tail are parts of the range just reserved that the
        // reservation will not own; nothing refers to them.
        unsafe {
            if let Some(h) = NonNull::new(start as *mut c_void).filter(|_| head > 0) {
                unmap_raw(h, head)?;
            }
            if let Some(t) = NonNull::new((base + len) as *mut c_void).filter(|_| tail > 0) {
                unmap_raw(t, tail)?;
            }
        }
        // INVARIANT: `[base, base + len)` is reserved PROT_NONE pages, ours.
        Ok(Self {
            base,
            len,
            parts: Mutex::new(Vec::new()),
        })
    }

    /// The first address of the range.
    pub fn as_ptr(&self) -> *const u8 {
        self.base as *const u8
    }

    /// The length of the range in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a reservation is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Vec<(usize, usize, Use)>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `mmap(base + slot, len, prot, MAP_SHARED | MAP_FIXED | flags, fd, offset)`—Maps `len`
    /// bytes of `fd` at `offset` into the slot `slot` bytes into the range, replacing only the
    /// reservation's own `PROT_NONE` pages.
    ///
    /// `flags` are as for [`MapOptions::flags`]; `FIXED` is implied (the slot is the
    /// address). The slot is given back when the [`Slot`] drops.
    ///
    /// # Errors
    /// `EINVAL` before any call for a zero length, a `slot` that is not page aligned, or a
    /// slot that does not fit the range; `EEXIST` if it overlaps a slot in use; then the
    /// kernel's errno (`EINVAL` from a file that refuses a chosen address, such as io_uring),
    /// after which the slot's pages are reserved again.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::reservation::Reservation;
    /// use pktmap::resource::MapFlags;
    /// let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// rustix::fs::ftruncate(&fd, 4096)?;
    /// let plan = Reservation::new(8192)?;
    /// let e = plan.map(100, &fd, 0, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL)); // misaligned slot
    /// let e = plan.map(8192, &fd, 0, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL)); // outside the range
    /// let s = plan.map(4096, &fd, 0, 4096, MapFlags::empty())?;
    /// s.write_at(0, b"slot")?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "mmap")]
    pub fn map<Fd: AsFd>(
        &self,
        slot: usize,
        fd: Fd,
        offset: u64,
        len: usize,
        flags: MapFlags,
    ) -> Result<Slot<'_>> {
        if len == 0 || slot % page() != 0 {
            return Err(Error::invalid(format!(
                "slot at {slot:#x} of {len} bytes: needs a length and a page-aligned slot"
            )));
        }
        let span = len.next_multiple_of(page());
        if slot.checked_add(span).is_none_or(|end| end > self.len) {
            return Err(Error::invalid(format!(
                "slot at {slot:#x} of {len} bytes does not fit a reservation of {} bytes",
                self.len
            )));
        }
        {
            let mut parts = self.parts();
            if let Some(&(o, l, u)) = parts
                .iter()
                .find(|&&(o, l, _)| slot < o + l && o < slot + span)
            {
                return Err(Error::refused(
                    libc::EEXIST,
                    format!("slot at {slot:#x} overlaps {u:?} at {o:#x} of {l} bytes"),
                ));
            }
            // Claimed before mapping, so no other thread maps over it meanwhile.
            let at = parts.partition_point(|&(o, _, _)| o < slot);
            parts.insert(at, (slot, span, Use::Slot));
        }
        let addr = self.addr(slot);
        let opts = MapOptions::new(len).flags(flags | MapFlags::FIXED).at(addr);
        // SAFETY: `[addr, addr + span)` is inside the range this value owns (checked) and
        // held only its PROT_NONE pages (no part overlapped, and the part is now claimed):
        // nothing refers to memory there.
        match unsafe { opts.map_replacing(fd, offset) } {
            Ok(mapping) => Ok(Slot {
                mapping: ManuallyDrop::new(mapping),
                reservation: self,
                slot,
                span,
            }),
            Err(e) => {
                // The kernel may have removed the old pages, and a failed POPULATE unmapped
                // the new ones: lay the reservation back over the slot either way.
                self.give_back(slot, span);
                Err(e)
            }
        }
    }

    fn addr(&self, slot: usize) -> NonNull<c_void> {
        // The base is a successful mmap's address, never 0.
        NonNull::new((self.base + slot) as *mut c_void).unwrap_or(NonNull::dangling())
    }

    /// Lays `PROT_NONE` back over the part at `slot` and frees it; marks it lost if that fails.
    fn give_back(&self, slot: usize, span: usize) {
        // SAFETY: The part at `slot` is this reservation's and claimed as a slot, whose
        // mapping (if any) has been given up by its owner: nothing refers to memory there.
        let restored = unsafe { reserve_raw(Some(self.addr(slot)), span) };
        let mut parts = self.parts();
        if let Some(i) = parts.iter().position(|&(o, _, _)| o == slot) {
            match restored {
                Ok(_) => {
                    parts.remove(i);
                }
                Err(_) => parts[i].2 = Use::Lost,
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // No slot is alive (each borrows `self`), so every part is reserved pages or lost.
        let lost: Vec<(usize, usize)> = self
            .parts()
            .iter()
            .filter(|p| p.2 == Use::Lost)
            .map(|&(o, l, _)| (o, l))
            .collect();
        let mut at = 0;
        for (o, l) in lost.into_iter().chain([(self.len, 0)]) {
            if o > at {
                // SAFETY: By the type invariants `[at, o)` is our reserved range and no slot
                // is alive; lost parts are skipped. munmap can only fail for bad arguments,
                // which the invariants exclude, and Drop cannot report it.
                let _ = unsafe { unmap_raw(self.addr(at), o - at) };
            }
            at = o + l;
        }
    }
}

/// A mapping in a slot of a [`Reservation`]; dereferences to the [`Mapping`].
///
/// Dropping it gives the slot back: its pages become the reservation's `PROT_NONE` pages
/// again.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::reservation::Reservation;
/// use pktmap::resource::MapFlags;
/// let fd = rustix::fs::memfd_create("buf", rustix::fs::MemfdFlags::CLOEXEC)?;
/// rustix::fs::ftruncate(&fd, 4096)?;
/// let plan = Reservation::new(8192)?;
/// let slot = plan.map(4096, &fd, 0, 4096, MapFlags::empty())?;
/// assert!(plan.map(4096, &fd, 0, 4096, MapFlags::empty()).is_err()); // EEXIST: in use
/// drop(slot);
/// let again = plan.map(4096, &fd, 0, 4096, MapFlags::empty())?; // given back, free again
/// assert_eq!(again.len(), 4096); // a Slot dereferences to its Mapping
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Slot<'r> {
    mapping: ManuallyDrop<Mapping>,
    reservation: &'r Reservation,
    slot: usize,
    span: usize,
}

impl Slot<'_> {
    /// The slot's offset in the reservation.
    pub fn offset(&self) -> usize {
        self.slot
    }
}

impl Deref for Slot<'_> {
    type Target = Mapping;

    fn deref(&self) -> &Mapping {
        &self.mapping
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken once, here; the field is not used again.
        let mapping = unsafe { ManuallyDrop::take(&mut self.mapping) };
        // Not unmapped: replaced by PROT_NONE pages in one call, so the range has no hole.
        let _ = mapping.into_raw();
        self.reservation.give_back(self.slot, self.span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_before_any_call() {
        assert!(Reservation::new(0).is_err());
        assert!(Reservation::aligned(4096, 3000).is_err());
        let r = Reservation::new(3 * 4096).unwrap();
        assert_eq!(r.len(), 3 * 4096);
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 3 * 4096).unwrap();
        let a = r.map(4096, &fd, 0, 8192, MapFlags::empty()).unwrap();
        for (slot, len, errno) in [
            (0, 8192, libc::EEXIST),
            (8192, 4096, libc::EEXIST),
            (4096 * 3, 4096, libc::EINVAL),
            (usize::MAX - 4095, 4096, libc::EINVAL),
            (0, 0, libc::EINVAL),
            (1, 4096, libc::EINVAL),
        ] {
            let e = r.map(slot, &fd, 0, len, MapFlags::empty()).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{slot:#x}+{len}: {e}");
        }
        let b = r.map(0, &fd, 0, 4096, MapFlags::empty()).unwrap();
        a.write_at(0, b"A").unwrap();
        let mut x = [0];
        b.read_at(0, &mut x).unwrap();
        assert_eq!(&x, b"A", "two slots of one memfd");
        drop(a);
        assert!(r.parts().iter().all(|p| p.0 == 0), "a's part is given back");
        let again = r.map(4096, &fd, 4096, 8192, MapFlags::empty()).unwrap();
        assert_eq!(again.offset(), 4096);
    }
}
