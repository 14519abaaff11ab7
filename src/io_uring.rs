//! io_uring mapped through pktmap: an instance's SQ ring, CQ ring, SQE array and
//! provided-buffer rings, at the offsets of the [`IO_URING`] layout.
//!
//! The kernel picks an io_uring region by the `mmap` offset (`IORING_OFF_SQ_RING`,
//! `IORING_OFF_CQ_RING`, `IORING_OFF_SQES`, `IORING_OFF_PBUF_RING | bgid << 16`), which is
//! exactly the shape of pktmap's codec. Every mapping here goes through [`crate::resource`], and
//! pktmap is stricter than the kernel, refusing with `EINVAL` before the syscall:
//!
//! - an offset that sets bits outside the layout's fields: the kernel masks them off and maps
//!   the region anyway (`IORING_OFF_PBUF_RING | 3 << 16 | 0x1000` maps buffer group 3);
//! - a length longer than the region (page-rounded): the kernel accepts it and leaves the tail
//!   of the mapping unbacked, so touching it raises `SIGBUS`;
//! - a buffer group id above 2047, which does not fit under `IORING_OFF_MMAP_MASK` and would
//!   alias another region.
//!
//! What the kernel itself refuses keeps the kernel's errno. One surprise is kept as is: a buffer
//! group that has no ring gives `ENOMEM`, not `EINVAL`, because `io_uring_get_unmapped_area`
//! turns every lookup failure into `ENOMEM`. And any address the caller chooses
//! ([`MapFlags::FIXED`], which pktmap maps with `MAP_FIXED_NOREPLACE`, or raw `MAP_FIXED`) is
//! `EINVAL`, ring or no ring: io_uring refuses to be mapped anywhere but where it picks.
//!
//! # Drop order
//! A [`BufRing`] borrows its [`IoUring`] and unregisters its buffer group on drop, before the
//! instance can close. The ring mappings hold their own reference on the io_uring file, so a
//! [`SubmissionQueue`] or [`CompletionQueue`] stays valid even after the [`IoUring`] is gone.
//!
//! # Safety
//! This module makes the io_uring syscalls and reads and writes the shared rings through raw
//! pointers into [`Mapping`]s it owns. Every pointer is checked to lie inside its mapping before
//! it is formed. The indices shared with the kernel are only touched atomically (acquire loads
//! of what the kernel produces, release stores of what we produce), as liburing does.
#![allow(unsafe_code)]

use crate::offset::{io_uring as types, Layout, IO_URING, PAGE_SIZE};
use crate::resource::{MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use linux_raw_sys::io_uring::io_uring_register_pbuf_ring_flags::IOU_PBUF_RING_MMAP;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io_uring::{
    io_uring_buf, io_uring_buf_reg, io_uring_cqe, io_uring_enter, io_uring_enter_arg,
    io_uring_getevents_arg, io_uring_ptr, io_uring_register, io_uring_setup, IoringEnterFlags,
    IoringFeatureFlags, IoringOp, IoringRegisterOp, IoringSetupFlags, IoringSqeFlags, Timespec,
};
use std::ffi::c_void;
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use rustix::io_uring::{io_uring_params, io_uring_sqe};

/// The layout io_uring's offsets follow: [`IO_URING`], for naming a mapping by (type, id).
///
/// # Examples
/// ```
/// use pktmap::io_uring::{Region, LAYOUT};
/// assert_eq!(LAYOUT.decode(0x8002_0000).unwrap(), (Region::PbufRing { bgid: 2 }.map_type(), 2));
/// ```
pub const LAYOUT: &Layout = &IO_URING;

/// How `/proc/<pid>/maps` names the file of every io_uring mapping; its offset column is the
/// `mmap` offset, which [`Region::from_offset`] names (measured on 6.18).
///
/// # Examples
/// ```
/// use pktmap::io_uring::{Region, MAPS_PATH};
/// let line = "7fd55947f000-7fd559483000 rw-s 80000000 00:10 134868   anon_inode:[io_uring]";
/// assert!(line.ends_with(MAPS_PATH));
/// let off = u64::from_str_radix(line.split_whitespace().nth(2).unwrap(), 16).unwrap();
/// assert_eq!(Region::from_offset(off).unwrap(), Region::PbufRing { bgid: 0 });
/// ```
pub const MAPS_PATH: &str = "anon_inode:[io_uring]";

/// `sizeof(struct io_uring_buf)`: one entry of a provided-buffer ring.
const BUF_ENTRY: usize = size_of::<io_uring_buf>();
/// `sizeof(struct io_uring_cqe)` without `IORING_SETUP_CQE32`.
const CQE_SIZE: usize = 16;
/// `sizeof(struct io_uring_sqe)` without `IORING_SETUP_SQE128`.
const SQE_SIZE: usize = 64;

/// `len` rounded up to whole pages, or `None` on overflow.
fn page_round(len: usize) -> Option<usize> {
    let page = PAGE_SIZE as usize;
    len.checked_add(page - 1).map(|l| l & !(page - 1))
}

/// One region of an io_uring instance that `mmap` can map.
///
/// # Examples
/// ```
/// use pktmap::io_uring::Region;
/// assert_eq!(Region::PbufRing { bgid: 3 }.offset().unwrap(), 0x8000_0000 | 3 << 16);
/// assert_eq!(Region::from_offset(0x1000_0000).unwrap(), Region::Sqes);
/// // The kernel would map buffer group 3 here; pktmap refuses the stray page bit.
/// assert!(Region::from_offset(0x8003_1000).is_err());
/// assert_eq!(Region::CqRing.name(), "CQ_RING");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// `IORING_OFF_SQ_RING`: the submission queue's indices and index array.
    SqRing,
    /// `IORING_OFF_CQ_RING`: the completion queue's indices and entries.
    CqRing,
    /// `IORING_OFF_SQES`: the submission queue entries.
    Sqes,
    /// `IORING_OFF_PBUF_RING | bgid << IORING_OFF_PBUF_SHIFT`: a provided-buffer ring registered
    /// with `IOU_PBUF_RING_MMAP`.
    PbufRing {
        /// The buffer group id (at most 2047 to be mappable).
        bgid: u16,
    },
}

impl Region {
    /// The map type in [`LAYOUT`] (`io_uring::SQ_RING`, ..., `io_uring::PBUF_RING`).
    pub const fn map_type(self) -> u32 {
        match self {
            Self::SqRing => types::SQ_RING,
            Self::CqRing => types::CQ_RING,
            Self::Sqes => types::SQES,
            Self::PbufRing { .. } => types::PBUF_RING,
        }
    }

    /// The map id in [`LAYOUT`]: the buffer group id of a provided-buffer ring, else 0.
    pub const fn map_id(self) -> u64 {
        match self {
            Self::PbufRing { bgid } => bgid as u64,
            _ => 0,
        }
    }

    /// The upstream name of the region's type (`SQ_RING`, `CQ_RING`, `SQES`, `PBUF_RING`).
    pub const fn name(self) -> &'static str {
        match IO_URING.type_name(self.map_type()) {
            Some(name) => name,
            None => "?",
        }
    }

    /// The `mmap` offset of the region.
    ///
    /// # Errors
    /// `EINVAL` for a buffer group id above 2047: it does not fit under
    /// `IORING_OFF_MMAP_MASK`, so no offset maps it.
    pub fn offset(self) -> Result<u64> {
        IO_URING
            .encode(self.map_type(), self.map_id())
            .map_err(|e| Error::invalid(format!("io_uring cannot encode {self:?}: {e}")))
    }

    /// The region an `mmap` offset names, decoded strictly.
    ///
    /// # Errors
    /// `EINVAL` if the offset is misaligned, sets bits outside the layout's fields (which the
    /// kernel ignores), or names a region the layout does not list.
    pub fn from_offset(offset: u64) -> Result<Self> {
        let (t, id) = IO_URING
            .decode(offset)
            .map_err(|e| Error::invalid(format!("io_uring offset {offset:#x}: {e}")))?;
        Ok(match t {
            types::SQ_RING => Self::SqRing,
            types::CQ_RING => Self::CqRing,
            types::SQES => Self::Sqes,
            // The id field is 11 bits wide, so the id always fits a u16.
            _ => Self::PbufRing { bgid: id as u16 },
        })
    }
}

/// An io_uring instance: the fd from `io_uring_setup` and its parameters.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::io_uring::{IoUring, Region};
/// use pktmap::resource::MapFlags;
/// let ring = IoUring::new(64)?;
/// let sqes = ring.map(Region::Sqes, ring.region_len(Region::Sqes).unwrap(), MapFlags::POPULATE)?;
/// assert_eq!(sqes.len(), 64 * 64);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct IoUring {
    fd: OwnedFd,
    params: io_uring_params,
    /// `(bgid, ring_entries)` of the provided-buffer rings registered through this value.
    pbufs: Mutex<Vec<(u16, u32)>>,
}

impl AsFd for IoUring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl IoUring {
    /// `io_uring_setup(entries, &params)`—Creates an instance with `entries` submission slots.
    ///
    /// # Errors
    /// The kernel's errno (`EINVAL` for a bad size, `EPERM` if io_uring is disabled by
    /// `kernel.io_uring_disabled`, `ENOSYS` without io_uring).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// assert_eq!(ring.params().sq_entries, 8);
    /// # Ok(()) }
    /// ```
    ///
    /// # References
    /// - [Linux `io_uring_setup(2)`](https://man7.org/linux/man-pages/man2/io_uring_setup.2.html)
    #[doc(alias = "io_uring_setup")]
    pub fn new(entries: u32) -> Result<Self> {
        let mut params = io_uring_params::default();
        params.flags = IoringSetupFlags::empty();
        // SAFETY: `params` is a valid, zeroed io_uring_params without ATTACH_WQ, so the kernel
        // reads no fd from it; it only writes the offsets back into it.
        let fd = unsafe { io_uring_setup(entries, &mut params) }.map_err(Error::from)?;
        Ok(Self {
            fd,
            params,
            pbufs: Mutex::new(Vec::new()),
        })
    }

    /// The parameters the kernel returned: ring sizes, features and ring offsets.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// assert_eq!(ring.params().cq_entries, 16); // the kernel doubles the CQ
    /// # Ok(()) }
    /// ```
    pub fn params(&self) -> &io_uring_params {
        &self.params
    }

    /// The size in bytes of a region, as the kernel allocated it; `None` for a provided-buffer
    /// ring not registered through this value (its size is unknown here).
    ///
    /// The SQ and CQ rings share one allocation when the kernel has `IORING_FEAT_SINGLE_MMAP`
    /// (every kernel since 5.4), so both report its size.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{IoUring, Region};
    /// let ring = IoUring::new(8)?;
    /// assert_eq!(ring.region_len(Region::Sqes), Some(8 * 64));
    /// assert_eq!(ring.region_len(Region::PbufRing { bgid: 1 }), None);
    /// # Ok(()) }
    /// ```
    pub fn region_len(&self, region: Region) -> Option<usize> {
        let p = &self.params;
        // liburing's sizes: the SQ ring ends with the index array, the CQ ring with the CQEs.
        let sq = p.sq_off.array as usize + p.sq_entries as usize * size_of::<u32>();
        let cq = p.cq_off.cqes as usize + p.cq_entries as usize * CQE_SIZE;
        let single = p.features.contains(IoringFeatureFlags::SINGLE_MMAP);
        match region {
            Region::SqRing if single => Some(sq.max(cq)),
            Region::CqRing if single => Some(sq.max(cq)),
            Region::SqRing => Some(sq),
            Region::CqRing => Some(cq),
            Region::Sqes => Some(p.sq_entries as usize * SQE_SIZE),
            Region::PbufRing { bgid } => self
                .pbufs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(g, _)| *g == bgid)
                .map(|&(_, n)| n as usize * BUF_ENTRY),
        }
    }

    /// `mmap` of `region`: `len` bytes at the region's offset, checked first.
    ///
    /// # Errors
    /// `EINVAL` before the syscall if `len` is 0 or longer than the region rounded up to pages
    /// (when the size is known, see [`region_len`](Self::region_len)), or the buffer group id
    /// does not fit the layout; otherwise the kernel's errno (`ENOMEM` for a buffer group
    /// without a ring).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{IoUring, Region};
    /// use pktmap::resource::MapFlags;
    /// let ring = IoUring::new(8)?;
    /// let e = ring.map(Region::Sqes, 1 << 20, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL)); // the kernel would have accepted it
    /// # Ok(()) }
    /// ```
    #[doc(alias = "mmap")]
    pub fn map(&self, region: Region, len: usize, flags: MapFlags) -> Result<Mapping> {
        let offset = region.offset()?;
        if let Some(size) = self.region_len(region) {
            let limit = page_round(size).unwrap_or(usize::MAX);
            if len > limit {
                return Err(Error::invalid(format!(
                    "io_uring {} is {size} bytes ({limit} page-rounded); refusing to map {len}",
                    region.name()
                )));
            }
        }
        MapOptions::new(len)
            .flags(flags)
            .layout(LAYOUT)
            .map(&self.fd, offset)
    }

    /// `mmap` at a raw offset, decoded strictly with [`LAYOUT`] and then mapped as
    /// [`map`](Self::map) does.
    ///
    /// # Errors
    /// `EINVAL` before the syscall for an offset [`Region::from_offset`] refuses; otherwise as
    /// [`map`](Self::map).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::IoUring;
    /// use pktmap::resource::MapFlags;
    /// let ring = IoUring::new(8)?;
    /// let e = ring.map_offset(0x1000, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn map_offset(&self, offset: u64, len: usize, flags: MapFlags) -> Result<Mapping> {
        self.map(Region::from_offset(offset)?, len, flags)
    }

    /// Maps the SQ ring, the SQEs and the CQ ring (populated) and returns the two queues.
    ///
    /// # Errors
    /// As [`map`](Self::map); `EINVAL` if the kernel's ring offsets do not fit the mappings.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let (sq, mut cq) = ring.queues()?;
    /// assert_eq!(sq.capacity(), 8);
    /// assert!(cq.pop().is_none());
    /// # Ok(()) }
    /// ```
    pub fn queues(&self) -> Result<(SubmissionQueue, CompletionQueue)> {
        let full = |r: Region| -> Result<Mapping> {
            let len = self.region_len(r).unwrap_or(0);
            self.map(r, len, MapFlags::POPULATE)
        };
        let (sq_ring, sqes, cq_ring) = (
            full(Region::SqRing)?,
            full(Region::Sqes)?,
            full(Region::CqRing)?,
        );
        let p = &self.params;
        let o = &p.sq_off;
        let sq_entries = p.sq_entries as usize;
        let sq = SubmissionQueue {
            head: atomic_u32(&sq_ring, o.head)?,
            ktail: atomic_u32(&sq_ring, o.tail)?,
            mask: read_u32(&sq_ring, o.ring_mask)?,
            entries: p.sq_entries,
            sqes: sqes.ptr_at(0, sq_entries * SQE_SIZE, 64)?.cast(),
            tail: 0,
            _sqes: sqes,
            _ring: sq_ring,
        };
        let array: *mut u32 = sq
            .ring()
            .ptr_at(o.array as usize, sq_entries * 4, 4)?
            .cast();
        for i in 0..p.sq_entries {
            // SAFETY: `array` has `sq_entries` u32 slots inside the mapping (checked by `at`);
            // nothing is submitted yet, so the kernel does not read them concurrently.
            unsafe { array.add(i as usize).write(i) };
        }
        // SAFETY: `tail` points into the live SQ ring mapping (checked by `atomic_u32`).
        let tail = unsafe { &*sq.ktail }.load(Ordering::Acquire);
        let sq = SubmissionQueue { tail, ..sq };
        let o = &p.cq_off;
        let cq = CompletionQueue {
            khead: atomic_u32(&cq_ring, o.head)?,
            ktail: atomic_u32(&cq_ring, o.tail)?,
            mask: read_u32(&cq_ring, o.ring_mask)?,
            cqes: cq_ring.ptr_at(o.cqes as usize, p.cq_entries as usize * CQE_SIZE, 8)?,
            _ring: cq_ring,
        };
        Ok((sq, cq))
    }

    /// `io_uring_enter(fd, to_submit, min_complete, GETEVENTS | EXT_ARG, {ts})`—Submits, then
    /// waits for `min_complete` completions or until `timeout` passes.
    ///
    /// Pass `sq.pending()` as `to_submit` after [`SubmissionQueue::sync`]. With
    /// `min_complete == 0` it only submits and never blocks; `timeout: None` waits without limit.
    ///
    /// # Errors
    /// The kernel's errno: `ETIME` (kind [`TimedOut`](std::io::ErrorKind::TimedOut)) when the
    /// timeout passed first (completions that did arrive are in the CQ ring all the same),
    /// `EINTR`, `EBUSY` when the CQ ring is full, ...
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let e = ring.enter(0, 1, Some(Duration::from_millis(10))).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::ETIME));
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// # Ok(()) }
    /// ```
    ///
    /// # References
    /// - [Linux `io_uring_enter(2)`](https://man7.org/linux/man-pages/man2/io_uring_enter.2.html)
    #[doc(alias = "io_uring_enter")]
    pub fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let wait = if min_complete > 0 {
            IoringEnterFlags::GETEVENTS
        } else {
            IoringEnterFlags::empty()
        };
        let r = match timeout {
            Some(t) if min_complete > 0 => {
                let ts = Timespec {
                    tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: t.subsec_nanos().into(),
                };
                let arg = io_uring_getevents_arg {
                    ts: io_uring_ptr::new(ptr::from_ref(&ts).cast_mut().cast()),
                    ..Default::default()
                };
                // SAFETY: Every SQE made visible to the kernel was pushed through the `unsafe`
                // `SubmissionQueue::push`, whose caller vouched for what it names. EXT_ARG is
                // set and `arg` names a live timespec and no signal mask.
                unsafe {
                    io_uring_enter_arg(
                        &self.fd,
                        to_submit,
                        min_complete,
                        wait | IoringEnterFlags::EXT_ARG,
                        Some(&arg),
                    )
                }
            }
            // SAFETY: As above; the flags carry no extended argument.
            _ => unsafe { io_uring_enter(&self.fd, to_submit, min_complete, wait) },
        };
        r.map_err(|e| match Error::from(e).during("io_uring_enter") {
            e if e.raw_os_error() == Some(libc::ETIME) => {
                e.reported_as(std::io::ErrorKind::TimedOut)
            }
            e => e,
        })
    }

    /// Registers a provided-buffer ring for buffer group `bgid` with `IOU_PBUF_RING_MMAP`, maps
    /// it through pktmap and fills it with `entries` buffers of `buf_size` bytes each.
    ///
    /// The kernel allocates the ring; the buffers are anonymous memory owned by the
    /// [`BufRing`]. Buffer `i` has buffer id `i`.
    ///
    /// # Errors
    /// `EINVAL` before any call if `entries` is not a power of two in `1..=32768`, `buf_size`
    /// is 0, or `bgid` does not fit the layout (above 2047); `EEXIST` if this value already
    /// registered `bgid`; otherwise the kernel's errno (`EEXIST` if another caller registered
    /// it).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(7, 16, 2048)?;
    /// assert_eq!(bufs.mapping().len(), 16 * 16);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_PBUF_RING")]
    pub fn register_buf_ring(&self, bgid: u16, entries: u16, buf_size: u32) -> Result<BufRing<'_>> {
        let region = Region::PbufRing { bgid };
        region.offset()?;
        if !entries.is_power_of_two() || buf_size == 0 {
            return Err(Error::invalid(format!(
                "provided-buffer ring of {entries} entries of {buf_size} bytes: entries must be \
                 a power of two up to 32768 and buffers non-empty"
            )));
        }
        let bufs_len = (entries as usize)
            .checked_mul(buf_size as usize)
            .ok_or_else(|| Error::invalid("buffer area overflows usize"))?;
        let bufs = MapOptions::new(bufs_len)
            .flags(MapFlags::POPULATE)
            .map_anonymous()?;
        {
            let mut table = self.pbufs.lock().unwrap_or_else(|e| e.into_inner());
            if table.iter().any(|(g, _)| *g == bgid) {
                return Err(Error::from_errno(libc::EEXIST));
            }
            let mut reg = io_uring_buf_reg::default();
            reg.ring_entries = u32::from(entries);
            reg.bgid = bgid;
            reg.flags = IOU_PBUF_RING_MMAP as u16;
            // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call; with
            // IOU_PBUF_RING_MMAP the kernel allocates the ring and reads no user address.
            unsafe {
                io_uring_register(
                    &self.fd,
                    IoringRegisterOp::RegisterPbufRing,
                    ptr::from_ref(&reg).cast::<c_void>(),
                    1,
                )
            }
            .map_err(Error::from)?;
            table.push((bgid, u32::from(entries)));
        }
        // Until the BufRing exists, a failure must unregister the group by hand.
        let mapped = self
            .map(region, entries as usize * BUF_ENTRY, MapFlags::POPULATE)
            .and_then(|m| {
                // The tail is the `resv` u16 of entry 0 (offset 14 of `struct io_uring_buf_ring`).
                let ktail = m.ptr_at(14, 2, 2)?.cast::<AtomicU16>().cast_const();
                Ok((m, ktail))
            });
        let (mapping, ktail) = match mapped {
            Ok(v) => v,
            Err(e) => {
                let _ = self.unregister_buf_ring(bgid);
                return Err(e);
            }
        };
        // INVARIANT: `ktail` points to the tail field inside `mapping`.
        let mut ring = BufRing {
            uring: self,
            bgid,
            mask: entries - 1,
            entries,
            buf_size,
            tail: 0,
            ktail,
            ring: mapping,
            bufs,
        };
        for bid in 0..entries {
            ring.recycle(bid)?;
        }
        Ok(ring)
    }

    fn unregister_buf_ring(&self, bgid: u16) -> Result<()> {
        let mut reg = io_uring_buf_reg::default();
        reg.bgid = bgid;
        // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call.
        let r = unsafe {
            io_uring_register(
                &self.fd,
                IoringRegisterOp::UnregisterPbufRing,
                ptr::from_ref(&reg).cast::<c_void>(),
                1,
            )
        };
        self.pbufs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(g, _)| *g != bgid);
        r.map(|_| ()).map_err(Error::from)
    }
}

fn atomic_u32(m: &Mapping, off: u32) -> Result<*const AtomicU32> {
    Ok(m.ptr_at(off as usize, 4, 4)?
        .cast::<AtomicU32>()
        .cast_const())
}

fn read_u32(m: &Mapping, off: u32) -> Result<u32> {
    let p = atomic_u32(m, off)?;
    // SAFETY: `p` is an aligned u32 inside the live mapping `m` (checked by `atomic_u32`).
    Ok(unsafe { &*p }.load(Ordering::Acquire))
}

/// The submission queue: the SQ ring and the SQE array, both mapped through pktmap.
///
/// # Invariants
/// `head` and `ktail` point into `_ring`, `sqes` to `entries` SQEs in `_sqes`; both mappings
/// live as long as the queue. `tail` is our producer index, published by [`sync`](Self::sync).
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let (mut sq, _cq) = ring.queues()?;
/// assert_eq!((sq.capacity(), sq.pending()), (8, 0));
/// sq.sync(); // publishes nothing new
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SubmissionQueue {
    head: *const AtomicU32,
    ktail: *const AtomicU32,
    mask: u32,
    entries: u32,
    sqes: *mut io_uring_sqe,
    tail: u32,
    _sqes: Mapping,
    _ring: Mapping,
}

impl SubmissionQueue {
    fn ring(&self) -> &Mapping {
        &self._ring
    }

    /// The number of SQE slots.
    pub fn capacity(&self) -> u32 {
        self.entries
    }

    /// Entries pushed and not yet consumed by the kernel.
    pub fn pending(&self) -> u32 {
        // SAFETY: By the type invariants `head` points into the live SQ ring.
        let head = unsafe { &*self.head }.load(Ordering::Acquire);
        self.tail.wrapping_sub(head)
    }

    /// Copies `sqe` into the next free slot; `false` if the queue is full.
    ///
    /// Nothing is visible to the kernel until [`sync`](Self::sync).
    ///
    /// # Safety
    /// Everything the entry names must stay valid until its completion is reaped: the fd, any
    /// buffer address, and with `IOSQE_BUFFER_SELECT` the [`BufRing`] of its buffer group.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{recv_with_buffer_select, IoUring};
    /// use std::os::fd::AsFd;
    /// let ring = IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let (mut sq, _cq) = ring.queues()?;
    /// // SAFETY: `sock` and `bufs` outlive every completion (they drop after `ring` is done).
    /// assert!(unsafe { sq.push(&recv_with_buffer_select(sock.as_fd(), 0, 1)) });
    /// sq.sync();
    /// ring.enter(sq.pending(), 0, None)?;
    /// # Ok(()) }
    /// ```
    pub unsafe fn push(&mut self, sqe: &io_uring_sqe) -> bool {
        if self.pending() >= self.entries {
            return false;
        }
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: `idx <= mask < entries`, so the slot is inside the SQE array (type
        // invariants); the kernel does not read it until the tail is published.
        unsafe { self.sqes.add(idx).write(*sqe) };
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// Publishes the pushed entries to the kernel (a release store of the tail).
    pub fn sync(&mut self) {
        // SAFETY: By the type invariants `ktail` points into the live SQ ring.
        unsafe { &*self.ktail }.store(self.tail, Ordering::Release);
    }
}

/// One completion, copied out of the CQ ring.
///
/// # Examples
/// ```
/// use pktmap::io_uring::Cqe;
/// let c = Cqe { user_data: 1, res: 64, flags: 1 | 5 << 16 };
/// assert_eq!(c.buffer_id(), Some(5));
/// assert_eq!(c.result().unwrap(), 64);
/// let e = Cqe { user_data: 1, res: -libc::ENOBUFS, flags: 0 };
/// assert_eq!(e.result().unwrap_err().raw_os_error(), Some(libc::ENOBUFS));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    /// The `user_data` of the SQE.
    pub user_data: u64,
    /// The result: a byte count or `-errno`.
    pub res: i32,
    /// `IORING_CQE_F_*`, with the buffer id in the top 16 bits.
    pub flags: u32,
}

impl Cqe {
    /// The buffer id the kernel picked (`IORING_CQE_F_BUFFER`), if any.
    pub fn buffer_id(&self) -> Option<u16> {
        let has = self.flags & linux_raw_sys::io_uring::IORING_CQE_F_BUFFER != 0;
        has.then_some((self.flags >> linux_raw_sys::io_uring::IORING_CQE_BUFFER_SHIFT) as u16)
    }

    /// `res` as a result: the count, or the errno.
    ///
    /// # Errors
    /// The errno when `res` is negative.
    pub fn result(&self) -> Result<u32> {
        u32::try_from(self.res).map_err(|_| Error::from_errno(-self.res))
    }
}

/// The completion queue: the CQ ring, mapped through pktmap.
///
/// # Invariants
/// `khead` and `ktail` point into `_ring`, `cqes` to `mask + 1` CQEs in it; the mapping lives
/// as long as the queue.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let (_sq, mut cq) = ring.queues()?;
/// assert!(cq.pop().is_none());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CompletionQueue {
    khead: *const AtomicU32,
    ktail: *const AtomicU32,
    mask: u32,
    cqes: *mut u8,
    _ring: Mapping,
}

impl CompletionQueue {
    /// Takes the oldest completion, if any.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let (_sq, mut cq) = ring.queues()?;
    /// while let Some(c) = cq.pop() {
    ///     println!("{c:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pop(&mut self) -> Option<Cqe> {
        // SAFETY: By the type invariants both indices point into the live CQ ring.
        let (khead, ktail) = unsafe { (&*self.khead, &*self.ktail) };
        let head = khead.load(Ordering::Relaxed);
        if head == ktail.load(Ordering::Acquire) {
            return None;
        }
        let off = (head & self.mask) as usize * CQE_SIZE;
        debug_assert_eq!(size_of::<io_uring_cqe>(), CQE_SIZE);
        // SAFETY: `off` is a CQE inside the array (type invariants); the acquire load of the
        // tail made the kernel's write of it visible, and it is not reused until we advance
        // the head below.
        let c = unsafe {
            let p = self.cqes.add(off);
            Cqe {
                user_data: p.cast::<u64>().read(),
                res: p.add(8).cast::<i32>().read(),
                flags: p.add(12).cast::<u32>().read(),
            }
        };
        khead.store(head.wrapping_add(1), Ordering::Release);
        Some(c)
    }
}

/// An SQE for `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT`: receive into a buffer the kernel
/// takes from buffer group `bgid`.
///
/// # Examples
/// ```
/// use pktmap::io_uring::recv_with_buffer_select;
/// use std::os::fd::AsFd;
/// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let sqe = recv_with_buffer_select(sock.as_fd(), 3, 42);
/// assert_eq!(sqe.user_data.u64_(), 42);
/// ```
pub fn recv_with_buffer_select(fd: BorrowedFd<'_>, bgid: u16, user_data: u64) -> io_uring_sqe {
    let mut sqe = io_uring_sqe {
        opcode: IoringOp::Recv,
        flags: IoringSqeFlags::BUFFER_SELECT,
        fd: fd.as_raw_fd(),
        user_data: user_data.into(),
        ..Default::default()
    };
    // A zero length takes the selected buffer's length.
    sqe.len.len = 0;
    sqe.buf.buf_group = bgid;
    sqe
}

/// A provided-buffer ring: the kernel-allocated ring mapped through pktmap at
/// `IORING_OFF_PBUF_RING | bgid << 16`, and the buffers it hands out.
///
/// Dropping it unregisters the buffer group.
///
/// # Invariants
/// `ktail` points to the tail field inside `ring`, which lives as long as the value.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let mut bufs = ring.register_buf_ring(1, 32, 4096)?;
/// assert_eq!((bufs.bgid(), bufs.entries(), bufs.buf_size()), (1, 32, 4096));
/// assert_eq!(bufs.buffers().len(), 32 * 4096);
/// bufs.recycle(0)?; // after a completion handed buffer 0 out
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BufRing<'a> {
    uring: &'a IoUring,
    bgid: u16,
    mask: u16,
    entries: u16,
    buf_size: u32,
    tail: u16,
    ktail: *const AtomicU16,
    ring: Mapping,
    bufs: Mapping,
}

impl BufRing<'_> {
    /// The buffer group id.
    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// The number of ring entries (and buffers).
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// The size of each buffer.
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// The ring as mapped through pktmap.
    pub fn mapping(&self) -> &Mapping {
        &self.ring
    }

    /// The memory the buffers live in (buffer `bid` at `bid * buf_size`).
    pub fn buffers(&self) -> &Mapping {
        &self.bufs
    }

    /// Copies the first `out.len()` bytes of buffer `bid` out.
    ///
    /// # Errors
    /// `EINVAL` if `bid` or the length is out of range.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// let mut head = [0; 4];
    /// bufs.read(3, &mut head)?;
    /// # Ok(()) }
    /// ```
    pub fn read(&self, bid: u16, out: &mut [u8]) -> Result<()> {
        if bid >= self.entries || out.len() > self.buf_size as usize {
            return Err(Error::invalid(format!("buffer {bid} [..{}]", out.len())));
        }
        self.bufs
            .read_at(bid as usize * self.buf_size as usize, out)
    }

    /// Buffer `bid`'s first `len` bytes, borrowed in place.
    ///
    /// # Safety
    /// The kernel must not own the buffer while the slice lives: it was handed out by a
    /// completion and not yet given back with [`recycle`](Self::recycle).
    ///
    /// # Panics
    /// If `bid` or `len` is out of range.
    pub unsafe fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries && len <= self.buf_size as usize);
        let start = bid as usize * self.buf_size as usize;
        // SAFETY: The range is inside the buffer area (asserted); the caller guarantees that
        // nothing writes it while the slice lives.
        unsafe { &self.bufs.as_slice()[start..start + len] }
    }

    /// Gives buffer `bid` (back) to the kernel: writes its ring entry and publishes the tail.
    ///
    /// # Errors
    /// `EINVAL` if `bid` is out of range.
    pub fn recycle(&mut self, bid: u16) -> Result<()> {
        if bid >= self.entries {
            return Err(Error::invalid(format!(
                "buffer id {bid} >= {}",
                self.entries
            )));
        }
        let ring = self.mapping();
        let off = (self.tail & self.mask) as usize * BUF_ENTRY;
        let slot = ring.ptr_at(off, BUF_ENTRY, 8)?;
        // SAFETY: Inside the buffer area: `bid < entries` buffers of `buf_size` bytes.
        let addr = unsafe {
            self.bufs
                .as_ptr()
                .add(bid as usize * self.buf_size as usize)
        };
        // SAFETY: `slot` is one ring entry inside the ring mapping (checked by `at`). The kernel
        // does not read entries past the published tail, and the tail field (offset 14 of entry
        // 0) is not among the bytes written: `addr`, `len` and `bid` are bytes 0..14.
        unsafe {
            slot.cast::<u64>().write(addr as u64);
            slot.add(8).cast::<u32>().write(self.buf_size);
            slot.add(12).cast::<u16>().write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: By the type invariants `ktail` points into the live ring mapping.
        unsafe { &*self.ktail }.store(self.tail, Ordering::Release);
        Ok(())
    }
}

impl Drop for BufRing<'_> {
    fn drop(&mut self) {
        // Unregistering can only fail if the group is gone already; Drop cannot report it.
        let _ = self.uring.unregister_buf_ring(self.bgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_uapi() {
        assert_eq!(size_of::<io_uring_sqe>(), SQE_SIZE);
        assert_eq!(size_of::<io_uring_cqe>(), CQE_SIZE);
        assert_eq!(BUF_ENTRY, 16);
        let off = linux_raw_sys::io_uring::IORING_OFF_PBUF_RING as u64
            | 5 << linux_raw_sys::io_uring::IORING_OFF_PBUF_SHIFT;
        assert_eq!(Region::PbufRing { bgid: 5 }.offset().unwrap(), off);
        assert_eq!(
            Region::CqRing.offset().unwrap(),
            linux_raw_sys::io_uring::IORING_OFF_CQ_RING as u64
        );
        assert_eq!(
            Region::Sqes.offset().unwrap(),
            linux_raw_sys::io_uring::IORING_OFF_SQES as u64
        );
    }

    #[test]
    fn regions_round_trip_and_refuse_what_the_kernel_ignores() {
        for r in [
            Region::SqRing,
            Region::CqRing,
            Region::Sqes,
            Region::PbufRing { bgid: 0 },
            Region::PbufRing { bgid: 2047 },
        ] {
            assert_eq!(Region::from_offset(r.offset().unwrap()).unwrap(), r);
        }
        let e = Region::PbufRing { bgid: 2048 }.offset().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        for bad in [0x8003_1000, 0x10, 0x2000_0000, 0x1_8000_0000] {
            let e = Region::from_offset(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:#x}");
        }
    }
}
