//! io_uring mapped through pktmap: the SQ ring, CQ ring, SQE array, provided-buffer rings and
//! parameter region of an io_uring instance, whoever made it, at the offsets of the
//! [`IO_URING`] layout.
//!
//! An instance comes three ways: [`IoUring::new`] and [`IoUring::with_params`] make one (the
//! setup flags pass through: SQPOLL, COOP_TASKRUN, DEFER_TASKRUN, SINGLE_ISSUER, CQSIZE,
//! NO_SQARRAY, SQE128, CQE32, ...); [`IoUring::from_params`] takes an fd with the parameters
//! its `io_uring_setup` returned; [`IoUring::adopt`] takes any io_uring fd the application
//! owns, made by the `io-uring` crate, liburing or anything else, duplicates it, reads the ring
//! sizes the kernel reports for it (`/proc/self/fdinfo`) and checks them against the mapped
//! rings.
//!
//! The kernel picks a region by the `mmap` offset (`IORING_OFF_SQ_RING`, `IORING_OFF_CQ_RING`,
//! `IORING_OFF_SQES`, `IORING_OFF_PBUF_RING | bgid << 16`, `IORING_MAP_OFF_PARAM_REGION`,
//! `IORING_MAP_OFF_ZCRX_REGION | id << 16`), which is exactly the shape of pktmap's codec.
//! Every mapping goes through [`crate::resource::map_region`], and pktmap is stricter than the
//! kernel, refusing with `EINVAL` before the syscall:
//!
//! - an offset that sets bits outside the layout's fields: the kernel masks them off and maps
//!   the region anyway (`IORING_OFF_PBUF_RING | 3 << 16 | 0x1000` maps buffer group 3);
//! - a length longer than the region (page-rounded): the kernel accepts it and leaves the tail
//!   of the mapping unbacked, so touching it raises `SIGBUS`;
//! - a buffer group id above 2047. The group id has the 11 bits between
//!   `IORING_OFF_PBUF_SHIFT` (16) and `IORING_OFF_MMAP_MASK` (bit 27); group 2048 would set
//!   bit 27 and name region `0x88000000`, which does not exist. The kernel still lets such a
//!   group register a kernel-allocated ring, which then no offset can map (`ENOMEM`): pktmap
//!   refuses to register it.
//!
//! What the kernel itself refuses keeps the kernel's errno. One surprise is kept as is: a buffer
//! group that has no ring gives `ENOMEM`, not `EINVAL`, because `io_uring_get_unmapped_area`
//! turns every lookup failure into `ENOMEM`. And any address the caller chooses
//! ([`MapFlags::FIXED`], which pktmap maps with `MAP_FIXED_NOREPLACE`, or raw `MAP_FIXED`) is
//! `EINVAL`, ring or no ring: io_uring refuses to be mapped anywhere but where it picks.
//!
//! # Drop order
//! Nothing here borrows anything else. A [`BufRing`] holds its own duplicate of the io_uring fd
//! and unregisters its buffer group on drop, then unmaps its ring and its buffers; the queues'
//! mappings hold the kernel's reference on the instance, so a [`SubmissionQueue`] or
//! [`CompletionQueue`] stays valid after the [`IoUring`] is gone.
//!
//! # Safety
//! This module makes the io_uring syscalls. Shared memory is touched only through the checked
//! views of [`crate::volatile`]: the rings keep offsets into their [`Mapping`]s, never
//! pointers. The indices shared with the kernel are touched atomically (acquire loads of what
//! the kernel produces, release stores of what we produce), as liburing does.
#![allow(unsafe_code)]

use crate::offset::{io_uring as types, Layout, MapsFile, Region as _, IO_URING, IO_URING_FILE};
use crate::resource::{map_region, MapFlags, MapOptions, Mapping};
use crate::volatile::SharedRing;
use crate::{Error, Result};
use linux_raw_sys::io_uring::io_uring_register_pbuf_ring_flags::IOU_PBUF_RING_MMAP;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io_uring::{
    io_uring_buf, io_uring_buf_reg, io_uring_enter, io_uring_enter_arg, io_uring_getevents_arg,
    io_uring_ptr, io_uring_register, io_uring_setup, IoringEnterFlags, IoringFeatureFlags,
    IoringOp, IoringRecvFlags, IoringRegisterOp, IoringSqFlags, IoringSqeFlags, Timespec,
};
use std::ffi::c_void;
use std::io;
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use rustix::io_uring::{io_uring_params, io_uring_sqe, IoringCqeFlags, IoringSetupFlags};

/// The layout io_uring's offsets follow: [`IO_URING`], for naming a mapping by (type, id).
///
/// # Examples
/// ```
/// use pktmap::io_uring::{Region, LAYOUT};
/// use pktmap::offset::Region as _;
/// assert_eq!(LAYOUT.decode(0x8002_0000).unwrap(), (Region::PbufRing { bgid: 2 }.map_type(), 2));
/// ```
pub const LAYOUT: &Layout = &IO_URING;

/// How `/proc/<pid>/maps` names the file of every io_uring mapping (defined once, in
/// [`crate::maps`], which names mappings by it).
#[doc(inline)]
pub use crate::maps::IO_URING_MAPS_PATH as MAPS_PATH;

/// `IORING_CQE_F_BUF_MORE`: the kernel will put more data into the same buffer (incremental
/// provided-buffer rings); rustix's [`IoringCqeFlags`] lacks it.
pub const CQE_F_BUF_MORE: u32 = linux_raw_sys::io_uring::IORING_CQE_F_BUF_MORE;

/// `sizeof(struct io_uring_buf)`: one entry of a provided-buffer ring.
const BUF_ENTRY: usize = size_of::<io_uring_buf>();
/// `sizeof(struct io_uring_cqe)` without `IORING_SETUP_CQE32`.
const CQE_SIZE: usize = 16;
/// `sizeof(struct io_uring_sqe)` without `IORING_SETUP_SQE128`.
const SQE_SIZE: usize = 64;
/// `IORING_REGISTER_MEM_REGION`, which rustix's [`IoringRegisterOp`] lacks.
const REGISTER_MEM_REGION: libc::c_uint = 34;

/// One region of an io_uring instance that `mmap` can map.
///
/// Its offsets, names and strict decoding come from [`crate::offset::Region`].
///
/// # Examples
/// ```
/// use pktmap::io_uring::Region;
/// use pktmap::offset::Region as _;
/// assert_eq!(Region::PbufRing { bgid: 3 }.offset().unwrap(), 0x8000_0000 | 3 << 16);
/// assert_eq!(Region::from_offset(0x1000_0000).unwrap(), Region::Sqes);
/// assert_eq!(Region::from_offset(0x2000_0000).unwrap(), Region::Param);
/// assert_eq!(Region::Zcrx { id: 1 }.offset().unwrap(), 0x3001_0000);
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
    /// `IORING_MAP_OFF_PARAM_REGION`: the region `IORING_REGISTER_MEM_REGION` allocated; the
    /// kernel returns this offset in `io_uring_region_desc.mmap_offset`.
    Param,
    /// `IORING_MAP_OFF_ZCRX_REGION | id << IORING_OFF_ZCRX_SHIFT`: a zero-copy receive
    /// instance's refill ring.
    Zcrx {
        /// The zcrx instance id (at most 2047).
        id: u16,
    },
}

impl crate::offset::Region for Region {
    const LAYOUT: &'static Layout = &IO_URING;
    const MAPS_FILE: MapsFile = IO_URING_FILE;

    fn map_type(self) -> u32 {
        match self {
            Self::SqRing => types::SQ_RING,
            Self::CqRing => types::CQ_RING,
            Self::Sqes => types::SQES,
            Self::PbufRing { .. } => types::PBUF_RING,
            Self::Param => types::PARAM_REGION,
            Self::Zcrx { .. } => types::ZCRX_REGION,
        }
    }

    fn map_id(self) -> u64 {
        match self {
            Self::PbufRing { bgid } => bgid.into(),
            Self::Zcrx { id } => id.into(),
            _ => 0,
        }
    }

    fn from_type_id(map_type: u32, map_id: u64) -> Option<Self> {
        let id = u16::try_from(map_id).ok()?;
        Some(match map_type {
            types::SQ_RING => Self::SqRing,
            types::CQ_RING => Self::CqRing,
            types::SQES => Self::Sqes,
            types::PBUF_RING => Self::PbufRing { bgid: id },
            types::PARAM_REGION => Self::Param,
            types::ZCRX_REGION => Self::Zcrx { id },
            _ => return None,
        })
    }
}

/// The setup flags that change where things are in the rings, which an adopted ring's owner
/// must tell [`IoUring::adopt`] (fdinfo does not show them).
const SHAPE_FLAGS: IoringSetupFlags = IoringSetupFlags::NO_SQARRAY
    .union(IoringSetupFlags::SQE128)
    .union(IoringSetupFlags::CQE32);

/// An io_uring instance: an fd of its own and the parameters that describe its rings.
///
/// # Examples
/// ```
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
    /// The size of the parameter region, once registered through this value.
    param_region: OnceLock<usize>,
    /// `(bgid, ring bytes)` of the provided-buffer rings registered through this value, shared
    /// with each [`BufRing`], which takes itself out when it drops.
    pbufs: PbufTable,
}

type PbufTable = Arc<Mutex<Vec<(u16, usize)>>>;

fn lock(t: &PbufTable) -> std::sync::MutexGuard<'_, Vec<(u16, usize)>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
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
    /// ```
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
        Self::with_params(entries, io_uring_params::default())
    }

    /// `io_uring_setup(entries, &params)` with the caller's flags and fields passed through:
    /// `SQPOLL` (with `sq_thread_idle`), `COOP_TASKRUN`, `DEFER_TASKRUN`, `SINGLE_ISSUER`,
    /// `CQSIZE` (with `cq_entries`), `NO_SQARRAY`, `SQE128`, `CQE32`, `ATTACH_WQ` (with
    /// `wq_fd`), ...
    ///
    /// # Errors
    /// `EINVAL` before the call for `IORING_SETUP_NO_MMAP`, whose rings live in the caller's
    /// memory and cannot be mapped through any offset; otherwise the kernel's errno (`EINVAL`
    /// for a combination it refuses, such as `DEFER_TASKRUN` without `SINGLE_ISSUER`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::IoUring;
    /// use rustix::io_uring::{io_uring_params, IoringSetupFlags};
    /// let mut p = io_uring_params::default();
    /// p.flags = IoringSetupFlags::SINGLE_ISSUER | IoringSetupFlags::DEFER_TASKRUN
    ///     | IoringSetupFlags::CQSIZE | IoringSetupFlags::NO_SQARRAY;
    /// p.cq_entries = 1024;
    /// let ring = IoUring::with_params(64, p)?;
    /// assert_eq!(ring.params().cq_entries, 1024);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "io_uring_setup")]
    pub fn with_params(entries: u32, mut params: io_uring_params) -> Result<Self> {
        if params.flags.contains(IoringSetupFlags::NO_MMAP) {
            return Err(Error::invalid(
                "IORING_SETUP_NO_MMAP rings live in the caller's memory: nothing to map",
            ));
        }
        // SAFETY: `params` is a valid io_uring_params. Without NO_MMAP (refused above) the
        // kernel reads no user address from it; an ATTACH_WQ `wq_fd` is an fd number the
        // kernel looks up and refuses if it is not an io_uring. It writes the offsets back.
        let fd = unsafe { io_uring_setup(entries, &mut params) }.map_err(Error::from)?;
        Ok(Self::from_params(fd, params))
    }

    /// Takes an io_uring fd together with the parameters its `io_uring_setup` returned.
    ///
    /// The parameters must be the ones the kernel wrote back for this very fd: they locate
    /// every index in the rings. [`queues`](Self::queues) checks them against the mapped rings
    /// (sizes and masks) before it trusts them.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::IoUring;
    /// let made = IoUring::new(8)?;
    /// let (fd, params) = (made.try_clone_fd()?, *made.params());
    /// let again = IoUring::from_params(fd, params);
    /// assert_eq!(again.params().sq_entries, 8);
    /// # Ok(()) }
    /// ```
    pub fn from_params(fd: OwnedFd, params: io_uring_params) -> Self {
        Self {
            fd,
            params,
            param_region: OnceLock::new(),
            pbufs: PbufTable::default(),
        }
    }

    /// Adopts an io_uring the application made some other way (the `io-uring` crate,
    /// liburing, ...): duplicates `fd`, reads the ring sizes the kernel reports for it and
    /// learns the ring offsets for those sizes from the kernel.
    ///
    /// `flags` are the setup flags the ring was made with; only those that move things in the
    /// rings matter (`NO_SQARRAY`, `SQE128`, `CQE32`), as `/proc/self/fdinfo` does not show
    /// them. The offsets come from a throwaway `io_uring_setup` of the same sizes and layout
    /// flags (the kernel computes them from nothing else), and are checked against the
    /// adopted ring's own mapped sizes and masks.
    ///
    /// The original fd stays the caller's; the instance lives while either fd is open.
    ///
    /// The flags must be the ring's. A false `SQE128` or `CQE32` is caught: it makes the
    /// rings longer than the kernel's, and populating them then fails with `EFAULT` instead of
    /// a `SIGBUS` later. A false `NO_SQARRAY` is not: with it on a ring that has an index
    /// array the kernel reads slot 0 for every submission; without it on a ring that has none,
    /// the array is written into unused ring memory, which is harmless.
    ///
    /// # Errors
    /// `EINVAL` for an fd that is not an io_uring, for `NO_MMAP`, or if the adopted ring's
    /// mapped sizes disagree with the kernel's report; `EFAULT` if the flags make the rings
    /// longer than they are; otherwise the kernel's errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::IoUring;
    /// use rustix::io_uring::IoringSetupFlags;
    /// use std::os::fd::{AsRawFd, BorrowedFd};
    /// let theirs = io_uring::IoUring::new(64)?; // the `io-uring` crate's ring
    /// // SAFETY: `theirs` owns this fd and outlives the borrow.
    /// let fd = unsafe { BorrowedFd::borrow_raw(theirs.as_raw_fd()) };
    /// let ring = IoUring::adopt(fd, IoringSetupFlags::empty())?;
    /// assert_eq!(ring.params().sq_entries, 64);
    /// let (sq, cq) = ring.queues()?;
    /// # Ok(()) }
    /// ```
    pub fn adopt(fd: BorrowedFd<'_>, flags: IoringSetupFlags) -> Result<Self> {
        if flags.contains(IoringSetupFlags::NO_MMAP) {
            return Err(Error::invalid(
                "IORING_SETUP_NO_MMAP rings live in the caller's memory: nothing to map",
            ));
        }
        let fd = fd.try_clone_to_owned()?;
        let (sq_entries, cq_entries) = fdinfo_sizes(fd.as_fd())?;
        let mut probe = io_uring_params::default();
        probe.flags = (flags & SHAPE_FLAGS) | IoringSetupFlags::CQSIZE;
        probe.cq_entries = cq_entries;
        // SAFETY: A zeroed io_uring_params with layout flags and CQSIZE only: the kernel reads
        // no user address or fd from it.
        let probe_fd = unsafe { io_uring_setup(sq_entries, &mut probe) }.map_err(Error::from)?;
        drop(probe_fd);
        if (probe.sq_entries, probe.cq_entries) != (sq_entries, cq_entries) {
            return Err(Error::invalid(format!(
                "io_uring of {sq_entries}/{cq_entries} entries: the kernel sizes a new one \
                 {}/{}",
                probe.sq_entries, probe.cq_entries
            )));
        }
        probe.flags = flags;
        let ring = Self::from_params(fd, probe);
        // Check the learnt offsets against the adopted ring itself.
        ring.queues()?;
        Ok(ring)
    }

    /// A duplicate of the instance's fd (`F_DUPFD_CLOEXEC`).
    ///
    /// # Errors
    /// The kernel's errno (`EMFILE`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::IoUring;
    /// use rustix::io_uring::IoringSetupFlags;
    /// use std::os::fd::AsFd;
    /// let ring = IoUring::new(8)?;
    /// // A second owner of the same instance, e.g. for a component that maps its own buffer rings.
    /// let fd = ring.try_clone_fd()?;
    /// let same = IoUring::adopt(fd.as_fd(), IoringSetupFlags::empty())?;
    /// assert_eq!(same.params().sq_entries, 8);
    /// # Ok(()) }
    /// ```
    pub fn try_clone_fd(&self) -> Result<OwnedFd> {
        Ok(self.fd.try_clone()?)
    }

    /// The parameters: ring sizes, setup flags, features and ring offsets.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// assert_eq!(ring.params().cq_entries, 16); // the kernel doubles the CQ
    /// # Ok(()) }
    /// ```
    pub fn params(&self) -> &io_uring_params {
        &self.params
    }

    fn sqe_size(&self) -> usize {
        if self.params.flags.contains(IoringSetupFlags::SQE128) {
            2 * SQE_SIZE
        } else {
            SQE_SIZE
        }
    }

    fn cqe_size(&self) -> usize {
        if self.params.flags.contains(IoringSetupFlags::CQE32) {
            2 * CQE_SIZE
        } else {
            CQE_SIZE
        }
    }

    /// The size in bytes of a region, as the kernel allocated it; `None` for a region this
    /// value did not register (a provided-buffer ring or parameter region registered through
    /// another fd, a zcrx refill ring): only its registration knows its size.
    ///
    /// The SQ and CQ rings share one allocation when the kernel has `IORING_FEAT_SINGLE_MMAP`
    /// (every kernel since 5.4), so both report its size.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{IoUring, Region};
    /// let ring = IoUring::new(8)?;
    /// assert_eq!(ring.region_len(Region::Sqes), Some(8 * 64));
    /// assert_eq!(ring.region_len(Region::PbufRing { bgid: 1 }), None);
    /// # Ok(()) }
    /// ```
    pub fn region_len(&self, region: Region) -> Option<usize> {
        let p = &self.params;
        // liburing's sizes: the SQ ring ends with the index array (or its indices without
        // one), the CQ ring with the CQEs.
        let sq = if p.flags.contains(IoringSetupFlags::NO_SQARRAY) {
            p.sq_off.dropped as usize + size_of::<u32>()
        } else {
            p.sq_off.array as usize + p.sq_entries as usize * size_of::<u32>()
        };
        let cq = p.cq_off.cqes as usize + p.cq_entries as usize * self.cqe_size();
        let single = p.features.contains(IoringFeatureFlags::SINGLE_MMAP);
        match region {
            Region::SqRing | Region::CqRing if single => Some(sq.max(cq)),
            Region::SqRing => Some(sq),
            Region::CqRing => Some(cq),
            Region::Sqes => Some(p.sq_entries as usize * self.sqe_size()),
            Region::Param => self.param_region.get().copied(),
            Region::PbufRing { bgid } => lock(&self.pbufs)
                .iter()
                .find(|(g, _)| *g == bgid)
                .map(|&(_, n)| n),
            Region::Zcrx { .. } => None,
        }
    }

    /// `mmap` of `region`: `len` bytes at the region's offset, checked first.
    ///
    /// # Errors
    /// `EINVAL` before the syscall if `len` is 0 or longer than the region rounded up to pages
    /// (when the size is known, see [`region_len`](Self::region_len)), or the id does not fit
    /// the layout; otherwise the kernel's errno (`ENOMEM` for a buffer group without a ring).
    ///
    /// # Examples
    /// ```
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
        map_region(&self.fd, region, self.region_len(region), len, flags)
    }

    /// `mmap` at a raw offset, decoded strictly with [`LAYOUT`] and then mapped as
    /// [`map`](Self::map) does.
    ///
    /// # Errors
    /// `EINVAL` before the syscall for an offset
    /// [`Region::from_offset`](crate::offset::Region::from_offset) refuses; otherwise as
    /// [`map`](Self::map).
    ///
    /// # Examples
    /// ```
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
    /// The ring sizes and masks the kernel wrote into the mapped rings are checked against the
    /// parameters first; with an SQ index array, slot `i` is set to point to SQE `i`.
    ///
    /// # Errors
    /// As [`map`](Self::map); `EINVAL` if the kernel's ring offsets do not fit the mappings or
    /// the rings disagree with the parameters.
    ///
    /// # Examples
    /// ```
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
        let agree = |m: &Mapping, what: &str, off: u32, want: u32| -> Result<()> {
            let got = m.load::<u32>(off as usize)?;
            if got == want {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "io_uring {what} is {got} in the ring, {want} in the parameters"
                )))
            }
        };
        agree(&sq_ring, "SQ size", p.sq_off.ring_entries, p.sq_entries)?;
        agree(&sq_ring, "SQ mask", p.sq_off.ring_mask, p.sq_entries - 1)?;
        agree(&cq_ring, "CQ size", p.cq_off.ring_entries, p.cq_entries)?;
        agree(&cq_ring, "CQ mask", p.cq_off.ring_mask, p.cq_entries - 1)?;
        let o = &p.sq_off;
        if !p.flags.contains(IoringSetupFlags::NO_SQARRAY) {
            let array = sq_ring.array::<u32>(o.array as usize, p.sq_entries as usize)?;
            for i in 0..p.sq_entries {
                // Nothing is submitted yet, so the kernel reads no slot concurrently.
                array.set(i as usize, i)?;
            }
        }
        let sqe_size = self.sqe_size();
        sqes.array::<u8>(0, p.sq_entries as usize * sqe_size)?;
        // The SQ array is filled above and not touched again: the ring's array is empty.
        let sq_ring = SharedRing::new(
            sq_ring,
            [o.head as usize, o.tail as usize, o.flags as usize],
            0,
            0,
        )?;
        let tail = sq_ring.index(SQ_TAIL).load(Ordering::Acquire);
        let sq = SubmissionQueue {
            mask: p.sq_entries - 1,
            entries: p.sq_entries,
            sqe_size,
            tail,
            sqpoll: p.flags.contains(IoringSetupFlags::SQPOLL),
            sqes,
            ring: sq_ring,
        };
        let o = &p.cq_off;
        let cqe_size = self.cqe_size();
        let cq_ring = SharedRing::<u64, 2>::new(
            cq_ring,
            [o.head as usize, o.tail as usize],
            o.cqes as usize,
            p.cq_entries as usize * cqe_size / 8,
        )?;
        let cq = CompletionQueue {
            mask: p.cq_entries - 1,
            cqe_size,
            ring: cq_ring,
        };
        Ok((sq, cq))
    }

    /// `io_uring_enter(fd, to_submit, min_complete, GETEVENTS | EXT_ARG, {ts})`—Submits, then
    /// waits for `min_complete` completions or until `timeout` passes.
    ///
    /// Pass `sq.pending()` as `to_submit` after [`SubmissionQueue::sync`]. With
    /// `min_complete == 0` it only submits and never blocks; `timeout: None` waits without limit.
    /// With `SQPOLL` the kernel thread submits; use [`submit`](Self::submit), which wakes it
    /// when it sleeps.
    ///
    /// # Errors
    /// The kernel's errno: `ETIME` (kind [`TimedOut`](std::io::ErrorKind::TimedOut)) when the
    /// timeout passed first (completions that did arrive are in the CQ ring all the same),
    /// `EINTR`, `EBUSY` when the CQ ring is full, ...
    ///
    /// # Examples
    /// ```
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
        self.enter_flags(to_submit, min_complete, timeout, IoringEnterFlags::empty())
    }

    /// Publishes what was pushed and hands it to the kernel, waiting as
    /// [`enter`](Self::enter) does: with `SQPOLL` only a sleeping SQ thread is woken
    /// (`IORING_ENTER_SQ_WAKEUP`), and no syscall is made at all if it is awake and nothing is
    /// waited for.
    ///
    /// # Errors
    /// As [`enter`](Self::enter).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let (mut sq, _cq) = ring.queues()?;
    /// ring.submit(&mut sq, 0, None)?; // nothing pushed: nothing happens
    /// # Ok(()) }
    /// ```
    pub fn submit(
        &self,
        sq: &mut SubmissionQueue,
        min_complete: u32,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        sq.sync();
        if !sq.sqpoll {
            return self.enter(sq.pending(), min_complete, timeout);
        }
        let flags = if sq.needs_wakeup() {
            IoringEnterFlags::SQ_WAKEUP
        } else if min_complete == 0 {
            return Ok(0);
        } else {
            IoringEnterFlags::empty()
        };
        self.enter_flags(0, min_complete, timeout, flags)
    }

    fn enter_flags(
        &self,
        to_submit: u32,
        min_complete: u32,
        timeout: Option<Duration>,
        flags: IoringEnterFlags,
    ) -> Result<u32> {
        let wait = if min_complete > 0 {
            flags | IoringEnterFlags::GETEVENTS
        } else {
            flags
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

    /// Registers a provided-buffer ring for buffer group `bgid` with `IOU_PBUF_RING_MMAP`,
    /// maps it through pktmap and fills it with `entries` buffers of `buf_size` bytes each, in
    /// fresh anonymous memory.
    ///
    /// Buffer `i` has buffer id `i`. Use [`register_buf_ring_in`](Self::register_buf_ring_in)
    /// for buffers in memory of your own (huge pages, a shared memfd, a driver pool).
    ///
    /// # Errors
    /// `EINVAL` before any call if `entries` is not a power of two in `1..=32768`, `buf_size`
    /// is 0, or `bgid` does not fit the layout (above 2047); otherwise the kernel's errno
    /// (`EEXIST` if the group is registered already).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(7, 16, 2048)?;
    /// assert_eq!(bufs.mapping().len(), 16 * 16);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_PBUF_RING")]
    pub fn register_buf_ring(&self, bgid: u16, entries: u16, buf_size: u32) -> Result<BufRing> {
        let len = (entries as usize)
            .checked_mul(buf_size as usize)
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::invalid(format!("{entries} buffers of {buf_size} bytes")))?;
        let mem = MapOptions::new(len)
            .flags(MapFlags::POPULATE)
            .map_anonymous()?;
        self.register_buf_ring_in(bgid, entries, buf_size, mem)
    }

    /// Registers a provided-buffer ring for buffer group `bgid` whose `entries` buffers of
    /// `buf_size` bytes live in `mem`, memory the caller made: any writable [`Mapping`] (a
    /// hugetlb or shared memfd, a pktmap driver pool, anonymous memory). Buffer `i` starts `i
    /// * buf_size` bytes into `mem`.
    ///
    /// The [`BufRing`] owns `mem` and unregisters the group before unmapping it.
    ///
    /// # Errors
    /// As [`register_buf_ring`](Self::register_buf_ring); `EINVAL` before any call if the
    /// buffers do not fit `mem` or `mem` is read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// // Shared memory another process can map too; with `MemfdFlags::HUGETLB` (and 2 MiB
    /// // pages reserved in vm.nr_hugepages) the buffers sit in one huge page.
    /// let fd = memfd_create("rx-buffers", MemfdFlags::CLOEXEC)?;
    /// ftruncate(&fd, 2 << 20)?;
    /// let mem = MapOptions::new(2 << 20).map(&fd, 0)?;
    /// let bufs = ring.register_buf_ring_in(1, 1024, 2048, mem)?;
    /// assert_eq!(bufs.buffers().len(), 2 << 20);
    /// # Ok(()) }
    /// ```
    pub fn register_buf_ring_in(
        &self,
        bgid: u16,
        entries: u16,
        buf_size: u32,
        mem: Mapping,
    ) -> Result<BufRing> {
        let region = Region::PbufRing { bgid };
        region.offset()?;
        if !entries.is_power_of_two() || buf_size == 0 {
            return Err(Error::invalid(format!(
                "provided-buffer ring of {entries} entries of {buf_size} bytes: entries must be \
                 a power of two up to 32768 and buffers non-empty"
            )));
        }
        let need = entries as usize * buf_size as usize;
        if need > mem.len() || mem.is_readonly() {
            return Err(Error::invalid(format!(
                "{entries} buffers of {buf_size} bytes need {need} writable bytes; the memory \
                 has {} ({})",
                mem.len(),
                if mem.is_readonly() {
                    "read-only"
                } else {
                    "writable"
                }
            )));
        }
        let fd = self.fd.try_clone()?;
        let mut reg = io_uring_buf_reg::default();
        reg.ring_entries = u32::from(entries);
        reg.bgid = bgid;
        reg.flags = IOU_PBUF_RING_MMAP as u16;
        // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call; with
        // IOU_PBUF_RING_MMAP the kernel allocates the ring and reads no user address.
        unsafe {
            io_uring_register(
                &fd,
                IoringRegisterOp::RegisterPbufRing,
                ptr::from_ref(&reg).cast::<c_void>(),
                1,
            )
        }
        .map_err(Error::from)?;
        let size = entries as usize * BUF_ENTRY;
        lock(&self.pbufs).push((bgid, size));
        // Until the BufRing exists, a failure must unregister the group by hand.
        let ring = match map_region(&fd, region, Some(size), size, MapFlags::POPULATE) {
            // The tail is the `resv` u16 of entry 0 (offset 14 of `struct io_uring_buf_ring`).
            Ok(m) => match m.atomic_u16(14).and_then(|_| m.array::<u64>(0, size / 8)) {
                Ok(_) => m,
                Err(e) => {
                    forget_buf_ring(&fd, &self.pbufs, bgid);
                    return Err(e);
                }
            },
            Err(e) => {
                forget_buf_ring(&fd, &self.pbufs, bgid);
                return Err(e);
            }
        };
        let mut ring = BufRing {
            fd,
            table: Arc::clone(&self.pbufs),
            bgid,
            mask: entries - 1,
            entries,
            buf_size,
            tail: 0,
            ring,
            bufs: mem,
        };
        for bid in 0..entries {
            ring.recycle(bid)?;
        }
        Ok(ring)
    }

    /// `IORING_REGISTER_MEM_REGION`—Has the kernel allocate a parameter region of `size`
    /// bytes and returns the `mmap` offset it reports for it
    /// (`io_uring_region_desc.mmap_offset`), which [`Region::Param`] names.
    ///
    /// # Errors
    /// `EINVAL` before the call for a size that is 0 or not whole pages; `EINVAL` if the
    /// kernel's offset is not one the [`IO_URING`] layout decodes to [`Region::Param`];
    /// otherwise the kernel's errno (`EBUSY` if the ring has a region already).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{IoUring, Region};
    /// use pktmap::resource::MapFlags;
    /// let ring = IoUring::new(8)?;
    /// let off = ring.register_mem_region(4096)?;
    /// assert_eq!(off, 0x2000_0000);
    /// let param = ring.map_offset(off, 4096, MapFlags::empty())?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_MEM_REGION")]
    pub fn register_mem_region(&self, size: usize) -> Result<u64> {
        let page = crate::offset::PAGE_SIZE as usize;
        if size == 0 || size % page != 0 {
            return Err(Error::invalid(format!(
                "a memory region of {size} bytes: must be whole pages"
            )));
        }
        let mut desc: linux_raw_sys::io_uring::io_uring_region_desc =
            linux_raw_sys::io_uring::io_uring_region_desc {
                user_addr: 0,
                size: size as u64,
                flags: 0,
                id: 0,
                mmap_offset: 0,
                __resv: [0; 4],
            };
        let reg = linux_raw_sys::io_uring::io_uring_mem_region_reg {
            region_uptr: ptr::from_mut(&mut desc) as u64,
            flags: 0,
            __resv: [0; 2],
        };
        // SAFETY: `reg` and the descriptor it points to are valid and live across the call;
        // the kernel writes only `desc.mmap_offset` (and reads no user address: `user_addr`
        // is 0 without IORING_MEM_REGION_TYPE_USER, so the kernel allocates the pages).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.fd.as_raw_fd(),
                REGISTER_MEM_REGION,
                ptr::from_ref(&reg),
                1,
            )
        };
        if r < 0 {
            return Err(
                Error::from(io::Error::last_os_error()).during("IORING_REGISTER_MEM_REGION")
            );
        }
        let offset = desc.mmap_offset;
        match Region::from_offset(offset) {
            Ok(Region::Param) => {}
            _ => {
                return Err(Error::invalid(format!(
                    "the kernel put the memory region at {offset:#x}, not a PARAM_REGION offset"
                )))
            }
        }
        let _ = self.param_region.set(size);
        Ok(offset)
    }
}

/// The SQ and CQ sizes `/proc/self/fdinfo/<fd>` shows for an io_uring fd (`SqMask`, `CqMask`).
fn fdinfo_sizes(fd: BorrowedFd<'_>) -> Result<(u32, u32)> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(&path)?;
    let mask = |key: &str| -> Option<u32> {
        let line = text.lines().find_map(|l| l.strip_prefix(key))?;
        let hex = line.trim().strip_prefix("0x")?;
        u32::from_str_radix(hex, 16).ok()?.checked_add(1)
    };
    match (mask("SqMask:"), mask("CqMask:")) {
        (Some(sq), Some(cq)) => Ok((sq, cq)),
        _ => Err(Error::invalid(format!(
            "{path}: not an io_uring (no SqMask/CqMask)"
        ))),
    }
}

/// Unregisters buffer group `bgid` and takes it out of `table`; errors are ignored, as the
/// group is gone either way (or was never there).
fn forget_buf_ring(fd: &OwnedFd, table: &PbufTable, bgid: u16) {
    let _ = unregister_buf_ring(fd, bgid);
    lock(table).retain(|(g, _)| *g != bgid);
}

fn unregister_buf_ring(fd: &OwnedFd, bgid: u16) -> Result<()> {
    let mut reg = io_uring_buf_reg::default();
    reg.bgid = bgid;
    // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call.
    let r = unsafe {
        io_uring_register(
            fd,
            IoringRegisterOp::UnregisterPbufRing,
            ptr::from_ref(&reg).cast::<c_void>(),
            1,
        )
    };
    r.map(|_| ()).map_err(Error::from)
}

/// The submission queue: the SQ ring and the SQE array, both mapped through pktmap.
///
/// It keeps offsets into its two mappings and borrows the shared indices on use.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let (mut sq, _cq) = ring.queues()?;
/// assert_eq!((sq.capacity(), sq.pending()), (8, 0));
/// sq.sync(); // publishes nothing new
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SubmissionQueue {
    mask: u32,
    entries: u32,
    sqe_size: usize,
    tail: u32,
    sqpoll: bool,
    sqes: Mapping,
    /// The SQ ring with its head, tail and flags words ([`SQ_HEAD`], [`SQ_TAIL`],
    /// [`SQ_FLAGS`]), checked by [`IoUring::queues`].
    ring: SharedRing<u32, 3>,
}

/// The SQ ring's index words, in [`SubmissionQueue`]'s [`SharedRing`].
const SQ_HEAD: usize = 0;
const SQ_TAIL: usize = 1;
const SQ_FLAGS: usize = 2;
/// The CQ ring's index words, in [`CompletionQueue`]'s [`SharedRing`].
const CQ_HEAD: usize = 0;
const CQ_TAIL: usize = 1;

impl SubmissionQueue {
    /// The number of SQE slots.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(16)?;
    /// let (sq, _cq) = ring.queues()?;
    /// assert_eq!(sq.capacity(), 16);
    /// # Ok(()) }
    /// ```
    pub fn capacity(&self) -> u32 {
        self.entries
    }

    /// Entries pushed and not yet consumed by the kernel.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{nop, IoUring};
    /// let ring = IoUring::new(8)?;
    /// let (mut sq, _cq) = ring.queues()?;
    /// // SAFETY: a NOP names no fd or buffer.
    /// assert!(unsafe { sq.push(&nop(1)) });
    /// assert_eq!(sq.pending(), 1);
    /// ring.submit(&mut sq, 1, None)?;
    /// assert_eq!(sq.pending(), 0); // the kernel consumed it
    /// # Ok(()) }
    /// ```
    pub fn pending(&self) -> u32 {
        let head = self.ring.index(SQ_HEAD).load(Ordering::Acquire);
        self.tail.wrapping_sub(head)
    }

    /// Whether an `SQPOLL` thread has gone to sleep and must be woken
    /// (`IORING_SQ_NEED_WAKEUP`); always `false` without SQPOLL.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let (sq, _cq) = ring.queues()?;
    /// assert!(!sq.needs_wakeup()); // no SQPOLL thread: nothing to wake
    /// // With SQPOLL, `IoUring::submit` checks this for you and wakes the thread only if it sleeps.
    /// # Ok(()) }
    /// ```
    pub fn needs_wakeup(&self) -> bool {
        // liburing: a full barrier between publishing the tail and reading the flags, so the
        // thread cannot both miss the new tail and have its wakeup flag missed by us.
        fence(Ordering::SeqCst);
        let flags = self.ring.index(SQ_FLAGS).load(Ordering::Relaxed);
        self.sqpoll && flags & IoringSqFlags::NEED_WAKEUP.bits() != 0
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
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{recv_with_buffer_select, IoUring};
    /// use std::os::fd::AsFd;
    /// let ring = IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let (mut sq, _cq) = ring.queues()?;
    /// // SAFETY: `sock` and `bufs` outlive every completion (they drop after `ring` is done).
    /// assert!(unsafe { sq.push(&recv_with_buffer_select(sock.as_fd(), 0, 1)) });
    /// ring.submit(&mut sq, 0, None)?;
    /// # Ok(()) }
    /// ```
    pub unsafe fn push(&mut self, sqe: &io_uring_sqe) -> bool {
        if self.pending() >= self.entries {
            return false;
        }
        let slot = (self.tail & self.mask) as usize * self.sqe_size;
        // The slot is inside the SQE array (checked when the queue was made: `entries` slots
        // of `sqe_size`), and the kernel does not read it until the tail is published.
        if self.sqes.store(slot, *sqe).is_err() {
            return false;
        }
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// Publishes the pushed entries to the kernel (a release store of the tail).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{nop, IoUring};
    /// let ring = IoUring::new(8)?;
    /// let (mut sq, mut cq) = ring.queues()?;
    /// // SAFETY: NOPs name no fd or buffer.
    /// unsafe { assert!(sq.push(&nop(1)) && sq.push(&nop(2))) };
    /// sq.sync(); // both entries are visible to the kernel now
    /// assert_eq!(ring.enter(2, 2, None)?, 2);
    /// assert_eq!(cq.pop().map(|c| c.user_data), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn sync(&mut self) {
        self.ring.index(SQ_TAIL).store(self.tail, Ordering::Release);
    }
}

/// One completion, copied out of the CQ ring.
///
/// # Examples
/// ```
/// use pktmap::io_uring::{Cqe, IoringCqeFlags};
/// let c = Cqe { user_data: 1, res: 64, flags: 1 | 2 | 5 << 16 };
/// assert_eq!(c.buffer_id(), Some(5));
/// assert!(c.cqe_flags().contains(IoringCqeFlags::MORE));
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
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use pktmap::io_uring::{recv_with_buffer_select, IoUring};
    /// # use std::os::fd::AsFd;
    /// # use std::time::Duration;
    /// # let ring = IoUring::new(8)?;
    /// # let mut bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// # let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # sock.send_to(b"datagram", sock.local_addr()?)?;
    /// # let (mut sq, mut cq) = ring.queues()?;
    /// # // SAFETY: `sock` and `bufs` outlive the completion, which is reaped below.
    /// # assert!(unsafe { sq.push(&recv_with_buffer_select(sock.as_fd(), 0, 7)) });
    /// # ring.submit(&mut sq, 1, Some(Duration::from_secs(5)))?;
    /// let c = cq.pop().unwrap();
    /// let bid = c.buffer_id().expect("a buffer-select receive names its buffer");
    /// let mut data = [0; 8];
    /// bufs.read(bid, &mut data)?;
    /// assert_eq!((c.user_data, c.result()?, &data), (7, 8, b"datagram"));
    /// bufs.recycle(bid)?;
    /// # Ok(()) }
    /// ```
    pub fn buffer_id(&self) -> Option<u16> {
        let has = self.cqe_flags().contains(IoringCqeFlags::BUFFER);
        has.then_some((self.flags >> linux_raw_sys::io_uring::IORING_CQE_BUFFER_SHIFT) as u16)
    }

    /// The flag bits (`BUFFER`, `MORE`, `SOCK_NONEMPTY`, `NOTIF`; see also
    /// [`CQE_F_BUF_MORE`]), without the buffer id.
    ///
    /// # Examples
    /// ```
    /// use pktmap::io_uring::{Cqe, IoringCqeFlags};
    /// // A receive that left more data queued on the socket, into buffer 3.
    /// let c = Cqe { user_data: 0, res: 1500, flags: (3 << 16) | (IoringCqeFlags::BUFFER | IoringCqeFlags::SOCK_NONEMPTY).bits() };
    /// assert!(c.cqe_flags().contains(IoringCqeFlags::SOCK_NONEMPTY));
    /// assert!(!c.cqe_flags().contains(IoringCqeFlags::MORE)); // the buffer id is not in the flags
    /// ```
    pub fn cqe_flags(&self) -> IoringCqeFlags {
        IoringCqeFlags::from_bits_retain(self.flags & 0xffff)
    }

    /// Whether a multishot request stays armed after this completion (`IORING_CQE_F_MORE`).
    ///
    /// # Examples
    /// ```
    /// use pktmap::io_uring::{Cqe, IoringCqeFlags};
    /// let armed = Cqe { user_data: 9, res: 64, flags: IoringCqeFlags::MORE.bits() };
    /// let last = Cqe { flags: 0, ..armed };
    /// assert!(armed.more() && !last.more()); // re-arm a multishot receive after `last`
    /// ```
    pub fn more(&self) -> bool {
        self.cqe_flags().contains(IoringCqeFlags::MORE)
    }

    /// `res` as a result: the count, or the errno.
    ///
    /// # Errors
    /// The errno when `res` is negative.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::io_uring::{nop, IoUring};
    /// let ring = IoUring::new(8)?;
    /// let (mut sq, mut cq) = ring.queues()?;
    /// // SAFETY: a NOP names no fd or buffer.
    /// assert!(unsafe { sq.push(&nop(5)) });
    /// ring.submit(&mut sq, 1, None)?;
    /// assert_eq!(cq.pop().unwrap().result()?, 0); // a NOP completes with 0
    /// # Ok(()) }
    /// ```
    pub fn result(&self) -> Result<u32> {
        u32::try_from(self.res).map_err(|_| Error::from_errno(-self.res))
    }
}

/// The completion queue: the CQ ring, mapped through pktmap.
///
/// It keeps offsets into its mapping and borrows the shared indices on use.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let (_sq, mut cq) = ring.queues()?;
/// assert!(cq.pop().is_none());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CompletionQueue {
    mask: u32,
    cqe_size: usize,
    /// The CQ ring with its head and tail words ([`CQ_HEAD`], [`CQ_TAIL`]) and its CQE array
    /// (as `u64`s), checked by [`IoUring::queues`].
    ring: SharedRing<u64, 2>,
}

impl CompletionQueue {
    /// Takes the oldest completion, if any.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let (_sq, mut cq) = ring.queues()?;
    /// while let Some(c) = cq.pop() {
    ///     println!("{c:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pop(&mut self) -> Option<Cqe> {
        let (khead, ktail) = (self.ring.index(CQ_HEAD), self.ring.index(CQ_TAIL));
        let head = khead.load(Ordering::Relaxed);
        if head == ktail.load(Ordering::Acquire) {
            return None;
        }
        // The acquire load of the tail made the kernel's write of the entry visible; it is not
        // reused until we advance the head below. The entry lies inside the CQE array, which
        // was checked when the queue was made.
        // `struct io_uring_cqe { __u64 user_data; __s32 res; __u32 flags; }`, as two words.
        let at = (head & self.mask) as usize * self.cqe_size / 8;
        let cqes = self.ring.entries();
        let (user_data, rest) = (cqes.get(at).ok()?, cqes.get(at + 1).ok()?.to_ne_bytes());
        let (res, flags) = rest.split_at(4);
        let c = Cqe {
            user_data,
            res: i32::from_ne_bytes(res.try_into().ok()?),
            flags: u32::from_ne_bytes(flags.try_into().ok()?),
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

/// An SQE for a multishot `IORING_OP_RECV` (`IORING_RECV_MULTISHOT`) with
/// `IOSQE_BUFFER_SELECT`: one request, one completion per datagram, each in a buffer of group
/// `bgid`, for as long as completions carry [`Cqe::more`].
///
/// # Examples
/// ```
/// use pktmap::io_uring::recv_multishot;
/// use std::os::fd::AsFd;
/// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let sqe = recv_multishot(sock.as_fd(), 3, 7);
/// assert_eq!(sqe.user_data.u64_(), 7);
/// ```
pub fn recv_multishot(fd: BorrowedFd<'_>, bgid: u16, user_data: u64) -> io_uring_sqe {
    let mut sqe = recv_with_buffer_select(fd, bgid, user_data);
    sqe.ioprio.recv_flags = IoringRecvFlags::MULTISHOT;
    sqe
}

/// An SQE for `IORING_OP_ASYNC_CANCEL`: cancels the request whose `user_data` is `target`
/// (its completion then carries `-ECANCELED`); this entry completes with 0, or `-ENOENT` if
/// nothing matched.
///
/// # Examples
/// ```
/// let sqe = pktmap::io_uring::cancel(99, 1);
/// assert_eq!(sqe.user_data.u64_(), 1);
/// ```
pub fn cancel(target: u64, user_data: u64) -> io_uring_sqe {
    let mut sqe = io_uring_sqe {
        opcode: IoringOp::AsyncCancel,
        user_data: user_data.into(),
        ..Default::default()
    };
    sqe.addr_or_splice_off_in.user_data = target.into();
    sqe
}

/// An SQE for `IORING_OP_NOP`: completes at once with `res` 0, for testing and wakeups.
///
/// # Examples
/// ```
/// let sqe = pktmap::io_uring::nop(9);
/// assert_eq!(sqe.user_data.u64_(), 9);
/// ```
pub fn nop(user_data: u64) -> io_uring_sqe {
    io_uring_sqe {
        opcode: IoringOp::Nop,
        user_data: user_data.into(),
        ..Default::default()
    }
}

/// A provided-buffer ring: the kernel-allocated ring mapped through pktmap at
/// `IORING_OFF_PBUF_RING | bgid << 16`, and the buffers it hands out.
///
/// It holds its own duplicate of the io_uring fd, so it can live next to the [`IoUring`] in
/// one struct, or outlive it. Dropping it unregisters the buffer group, then unmaps the ring
/// and the buffer memory.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::io_uring::IoUring::new(8)?;
/// let mut bufs = ring.register_buf_ring(1, 32, 4096)?;
/// assert_eq!((bufs.bgid(), bufs.entries(), bufs.buf_size()), (1, 32, 4096));
/// assert_eq!(bufs.buffers().len(), 32 * 4096);
/// bufs.recycle(0)?; // after a completion handed buffer 0 out
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BufRing {
    fd: OwnedFd,
    table: PbufTable,
    bgid: u16,
    mask: u16,
    entries: u16,
    buf_size: u32,
    tail: u16,
    ring: Mapping,
    bufs: Mapping,
}

impl BufRing {
    /// The buffer group id.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(3, 16, 2048)?;
    /// assert_eq!(bufs.bgid(), 3); // what an SQE's buf_group names
    /// # Ok(()) }
    /// ```
    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// The number of ring entries (and buffers).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// assert_eq!(ring.register_buf_ring(0, 64, 2048)?.entries(), 64);
    /// assert!(ring.register_buf_ring(1, 100, 2048).is_err()); // not a power of two
    /// # Ok(()) }
    /// ```
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// The size of each buffer.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 9000)?; // jumbo frames
    /// assert_eq!(bufs.buf_size(), 9000);
    /// # Ok(()) }
    /// ```
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// The ring as mapped through pktmap.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(1, 8, 2048)?;
    /// // The kernel's ring, mapped at IORING_OFF_PBUF_RING | 1 << 16: /proc/self/maps names it so.
    /// let maps = pktmap::maps::read(None)?;
    /// let e = maps.iter().find(|e| e.start == bufs.mapping().as_ptr() as u64).unwrap();
    /// assert_eq!(e.name().to_string(), "io_uring PBUF_RING id 1");
    /// # Ok(()) }
    /// ```
    pub fn mapping(&self) -> &Mapping {
        &self.ring
    }

    /// The memory the buffers live in (buffer `bid` at `bid * buf_size`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::io_uring::IoUring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// assert_eq!(bufs.buffers().len(), 8 * 2048); // buffer 5 starts at 5 * 2048
    /// # Ok(()) }
    /// ```
    pub fn buffers(&self) -> &Mapping {
        &self.bufs
    }

    /// Copies the first `out.len()` bytes of buffer `bid` out.
    ///
    /// # Errors
    /// `EINVAL` if `bid` or the length is out of range.
    ///
    /// # Examples
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use pktmap::io_uring::{recv_with_buffer_select, IoUring};
    /// # use std::os::fd::AsFd;
    /// # use std::time::Duration;
    /// # let ring = IoUring::new(8)?;
    /// # let mut bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// # let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # sock.send_to(b"datagram", sock.local_addr()?)?;
    /// # let (mut sq, mut cq) = ring.queues()?;
    /// # // SAFETY: `sock` and `bufs` outlive the completion, which is reaped below.
    /// # assert!(unsafe { sq.push(&recv_with_buffer_select(sock.as_fd(), 0, 7)) });
    /// # ring.submit(&mut sq, 1, Some(Duration::from_secs(5)))?;
    /// let c = cq.pop().unwrap();
    /// let bid = c.buffer_id().unwrap();
    /// // SAFETY: the completion handed `bid` to us; it goes back to the kernel only below.
    /// let data = unsafe { bufs.buffer(bid, c.result()? as usize) };
    /// assert_eq!(data, b"datagram");
    /// bufs.recycle(bid)?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use pktmap::io_uring::{recv_with_buffer_select, IoUring};
    /// # use std::os::fd::AsFd;
    /// # use std::time::Duration;
    /// # let ring = IoUring::new(8)?;
    /// # let mut bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// # let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # sock.send_to(b"datagram", sock.local_addr()?)?;
    /// # let (mut sq, mut cq) = ring.queues()?;
    /// # // SAFETY: `sock` and `bufs` outlive the completion, which is reaped below.
    /// # assert!(unsafe { sq.push(&recv_with_buffer_select(sock.as_fd(), 0, 7)) });
    /// # ring.submit(&mut sq, 1, Some(Duration::from_secs(5)))?;
    /// let c = cq.pop().unwrap();
    /// bufs.recycle(c.buffer_id().unwrap())?; // the kernel may fill it again
    /// assert_eq!(bufs.recycle(8).unwrap_err().raw_os_error(), Some(libc::EINVAL)); // no buffer 8
    /// # Ok(()) }
    /// ```
    pub fn recycle(&mut self, bid: u16) -> Result<()> {
        if bid >= self.entries {
            return Err(Error::invalid(format!(
                "buffer id {bid} >= {}",
                self.entries
            )));
        }
        let entry = (self.tail & self.mask) as usize * BUF_ENTRY;
        let addr = self.bufs.as_ptr() as u64 + u64::from(bid) * u64::from(self.buf_size);
        // The kernel does not read entries past the published tail. The tail field (offset 14
        // of entry 0) is not among the bytes written: `addr`, `len` and `bid` are bytes 0..14.
        self.ring.store(entry, addr)?;
        self.ring.store(entry + 8, self.buf_size)?;
        self.ring.store(entry + 12, bid)?;
        self.tail = self.tail.wrapping_add(1);
        self.ring
            .atomic_u16(14)?
            .store(self.tail, Ordering::Release);
        Ok(())
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // Unregistering can only fail if the group is gone already; Drop cannot report it.
        forget_buf_ring(&self.fd, &self.table, self.bgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io_uring::io_uring_cqe;

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
            Region::Param,
            Region::Zcrx { id: 0 },
            Region::Zcrx { id: 2047 },
        ] {
            assert_eq!(Region::from_offset(r.offset().unwrap()).unwrap(), r);
        }
        for r in [Region::PbufRing { bgid: 2048 }, Region::Zcrx { id: 2048 }] {
            let e = r.offset().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        }
        assert_eq!(
            MAPS_PATH,
            match IO_URING_FILE {
                MapsFile::AnonInode(name) => format!("anon_inode:{name}"),
                other => panic!("{other:?}"),
            }
        );
        for bad in [0x8003_1000, 0x10, 0x2001_0000, 0x2800_0000, 0x1_8000_0000] {
            let e = Region::from_offset(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:#x}");
        }
    }
}
