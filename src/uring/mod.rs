//! io_uring mapped through pktmap: the SQ ring, CQ ring, SQE array, provided-buffer rings and
//! parameter region of an io_uring instance, whoever made it, at the offsets of the
//! [`IO_URING`] layout.
//!
//! The module is `uring` and the instance [`Uring`], so that `use pktmap::uring;` next to the
//! `io-uring` crate (whose crate is `io_uring` and whose instance is `io_uring::IoUring`)
//! shadows nothing.
//!
//! An instance comes three ways: [`Uring::new`] and [`Uring::with_params`] make one (the
//! setup flags pass through: SQPOLL, COOP_TASKRUN, DEFER_TASKRUN, SINGLE_ISSUER, CQSIZE,
//! NO_SQARRAY, SQE128, CQE32, ...); [`Uring::from_params`] takes an fd with the parameters
//! its `io_uring_setup` returned; [`Uring::adopt`] takes any io_uring fd the application
//! owns, made by the `io-uring` crate, liburing or anything else, duplicates it, reads the ring
//! sizes the kernel reports for it (`/proc/self/fdinfo`) and checks them against the mapped
//! rings.
//!
//! The files follow the roles of tokio-rs/io-uring's: this one holds the regions and the
//! instance; `squeue` the submission queue, its [`Submitter`] and the SQE builders;
//! `cqueue` the completion queue; `buf_ring` the provided-buffer rings; `register` the
//! registrations ([`Uring::register_pbuf_ring`], [`Uring::register_buf_ring`],
//! [`Uring::register_mem_region`]).
//!
//! # One producer, one consumer
//! The queues are mapped once, when the [`Uring`] is made, and it owns them: one
//! [`SubmissionQueue`] and one [`CompletionQueue`] at a time, borrowed through `&mut self`
//! ([`Uring::submission`], [`Uring::completion`], [`Uring::split`]), as the `io-uring` crate
//! does. Two producers would each keep their own tail and write the same SQE slot, so the
//! second would overwrite the first's submission; the borrow checker refuses that program:
//!
//! ```compile_fail,E0499
//! # fn main() -> std::io::Result<()> {
//! let mut ring = pktmap::uring::Uring::new(8)?;
//! let mut first = ring.submission();
//! let mut second = ring.submission(); // a second producer while the first lives
//! // SAFETY: NOPs name no fd or buffer.
//! unsafe { first.push(&pktmap::uring::nop(1)) };
//! # Ok(()) }
//! ```
//!
//! A [`Uring`] is `Send` and `Sync`: through `&self` it maps regions, enters and registers,
//! which any number of threads may do at once; only `&mut self` reaches the queues.
//!
//! # Offsets
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
//! The queues borrow their [`Uring`]. A [`BufRing`] or [`PbufRing`] holds its own duplicate of
//! the io_uring fd and unregisters its buffer group on drop (a [`BufRing`] then unmaps its
//! ring and its buffers), so it can live next to the [`Uring`] in one struct, or outlive it.
//!
//! # Safety
//! This module makes the io_uring syscalls. Shared memory is touched only through the checked
//! views of [`crate::volatile`]: the rings keep offsets into their [`Mapping`]s, never
//! pointers. The indices shared with the kernel are touched atomically (acquire loads of what
//! the kernel produces, release stores of what we produce), as liburing does.
#![allow(unsafe_code)]

pub mod buf_ring;
pub mod cqueue;
mod register;
pub mod squeue;

pub use buf_ring::{BufRing, PbufRing};
pub use cqueue::{CompletionQueue, Cqe};
pub use squeue::{cancel, nop, recv_multishot, recv_with_buffer_select};
pub use squeue::{SubmissionQueue, Submitter};

use crate::offset::{
    io_uring_types as types, Layout, MapsFile, Region as _, IO_URING, IO_URING_FILE,
};
use crate::resource::{map_region, MapFlags, Mapping};
use crate::volatile::SharedRing;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io_uring::{io_uring_buf, io_uring_setup, IoringFeatureFlags};
use std::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use rustix::io_uring::{io_uring_params, io_uring_sqe, IoringCqeFlags, IoringSetupFlags};

/// The layout io_uring's offsets follow: [`IO_URING`], for naming a mapping by (type, id).
///
/// # Examples
/// ```
/// use pktmap::uring::{Region, LAYOUT};
/// use pktmap::offset::Region as _;
/// assert_eq!(LAYOUT.decode(0x8002_0000).unwrap(), (Region::PbufRing { bgid: 2 }.map_type(), 2));
/// ```
pub const LAYOUT: &Layout = &IO_URING;

/// How `/proc/<pid>/maps` names the file of every io_uring mapping (defined once, in
/// [`crate::offset`]).
#[doc(inline)]
pub use crate::offset::IO_URING_MAPS_PATH as MAPS_PATH;

/// `IORING_CQE_F_BUF_MORE`: the kernel will put more data into the same buffer (incremental
/// provided-buffer rings); rustix's [`IoringCqeFlags`] lacks it.
pub const CQE_F_BUF_MORE: u32 = linux_raw_sys::io_uring::IORING_CQE_F_BUF_MORE;

/// `sizeof(struct io_uring_buf)`: one entry of a provided-buffer ring.
const BUF_ENTRY: usize = size_of::<io_uring_buf>();
/// `sizeof(struct io_uring_cqe)` without `IORING_SETUP_CQE32`.
const CQE_SIZE: usize = 16;
/// `sizeof(struct io_uring_sqe)` without `IORING_SETUP_SQE128`.
const SQE_SIZE: usize = 64;

/// One region of an io_uring instance that `mmap` can map.
///
/// Its offsets, names and strict decoding come from [`crate::offset::Region`].
///
/// # Examples
/// ```
/// use pktmap::uring::Region;
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
/// must tell `Uring::adopt` (fdinfo does not show them).
#[cfg(feature = "inspect")]
const SHAPE_FLAGS: IoringSetupFlags = IoringSetupFlags::NO_SQARRAY
    .union(IoringSetupFlags::SQE128)
    .union(IoringSetupFlags::CQE32);

/// What `io_uring_setup` reported for an instance: its sizes, setup flags and features.
///
/// pktmap's own copy of the fields it uses from rustix's [`io_uring_params`] (whose ring
/// offsets carry a raw user pointer, which would make [`Uring`] neither `Send` nor `Sync`).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::uring::Uring::new(8)?;
/// let p = ring.params();
/// assert_eq!((p.sq_entries, p.cq_entries), (8, 16)); // the kernel doubles the CQ
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Submission queue entries.
    pub sq_entries: u32,
    /// Completion queue entries.
    pub cq_entries: u32,
    /// The setup flags.
    pub flags: IoringSetupFlags,
    /// The features the kernel reported.
    pub features: IoringFeatureFlags,
    sq_off: SqOffsets,
    cq_off: CqOffsets,
}

/// The SQ ring offsets the kernel reported (`struct io_sqring_offsets`, without `user_addr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
}

/// The CQ ring offsets the kernel reported (`struct io_cqring_offsets`, without `user_addr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    cqes: u32,
}

impl From<&io_uring_params> for Params {
    fn from(p: &io_uring_params) -> Self {
        let (s, c) = (&p.sq_off, &p.cq_off);
        Self {
            sq_entries: p.sq_entries,
            cq_entries: p.cq_entries,
            flags: p.flags,
            features: p.features,
            sq_off: SqOffsets {
                head: s.head,
                tail: s.tail,
                ring_mask: s.ring_mask,
                ring_entries: s.ring_entries,
                flags: s.flags,
                dropped: s.dropped,
                array: s.array,
            },
            cq_off: CqOffsets {
                head: c.head,
                tail: c.tail,
                ring_mask: c.ring_mask,
                ring_entries: c.ring_entries,
                cqes: c.cqes,
            },
        }
    }
}

impl Params {
    fn sqe_size(&self) -> usize {
        if self.flags.contains(IoringSetupFlags::SQE128) {
            2 * SQE_SIZE
        } else {
            SQE_SIZE
        }
    }

    fn cqe_size(&self) -> usize {
        if self.flags.contains(IoringSetupFlags::CQE32) {
            2 * CQE_SIZE
        } else {
            CQE_SIZE
        }
    }
}

/// An io_uring instance: an fd of its own, the parameters that describe its rings, and its
/// submission and completion queues, mapped through pktmap.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::uring::{nop, Uring};
/// let mut ring = Uring::new(8)?;
/// // SAFETY: a NOP names no fd or buffer.
/// assert!(unsafe { ring.submission().push(&nop(7)) });
/// ring.submit(1, None)?;
/// assert_eq!(ring.completion().pop().map(|c| c.user_data), Some(7));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Uring {
    fd: OwnedFd,
    params: Params,
    /// The size of the parameter region, once registered through this value.
    param_region: OnceLock<usize>,
    /// `(bgid, ring bytes)` of the provided-buffer rings registered through this value, shared
    /// with each [`PbufRing`], which takes itself out when it drops.
    pbufs: PbufTable,
    sq: squeue::Sq,
    /// The submission queue's own tail: what was pushed, published or not.
    sq_tail: u32,
    cq: cqueue::Cq,
}

type PbufTable = Arc<Mutex<Vec<(u16, usize)>>>;

fn lock(t: &PbufTable) -> std::sync::MutexGuard<'_, Vec<(u16, usize)>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

impl AsFd for Uring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Uring {
    /// `io_uring_setup(entries, &params)`—Creates an instance with `entries` submission slots
    /// and maps its queues.
    ///
    /// # Errors
    /// The kernel's errno (`EINVAL` for a bad size, `EPERM` if io_uring is disabled by
    /// `kernel.io_uring_disabled`, `ENOSYS` without io_uring).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::uring::Uring::new(8)?;
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
    /// use pktmap::uring::{io_uring_params, IoringSetupFlags, Uring};
    /// let mut p = io_uring_params::default();
    /// p.flags = IoringSetupFlags::SINGLE_ISSUER | IoringSetupFlags::DEFER_TASKRUN
    ///     | IoringSetupFlags::CQSIZE | IoringSetupFlags::NO_SQARRAY;
    /// p.cq_entries = 1024;
    /// let ring = Uring::with_params(64, p)?;
    /// assert_eq!(ring.params().cq_entries, 1024);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "io_uring_setup")]
    pub fn with_params(entries: u32, mut params: io_uring_params) -> Result<Self> {
        refuse_no_mmap(params.flags)?;
        // SAFETY: `params` is a valid io_uring_params. Without NO_MMAP (refused above) the
        // kernel reads no user address from it; an ATTACH_WQ `wq_fd` is an fd number the
        // kernel looks up and refuses if it is not an io_uring. It writes the offsets back.
        let fd = unsafe { io_uring_setup(entries, &mut params) }.map_err(Error::from)?;
        Self::open(fd, Params::from(&params))
    }

    /// Takes an io_uring fd together with the parameters its `io_uring_setup` returned, and
    /// maps its queues.
    ///
    /// The parameters must be the ones the kernel wrote back for this very fd: they locate
    /// every index in the rings. They are checked against the mapped rings (sizes and masks)
    /// before they are trusted.
    ///
    /// # Safety
    /// While the returned value lives, nothing else submits to or reaps from the instance's
    /// queues (another owner of the fd may still register, map regions or enter): the
    /// [`Uring`] is their one producer and one consumer, and a second one would write the SQE
    /// slots it writes, which the kernel may then read half from each.
    ///
    /// # Errors
    /// As [`with_params`](Self::with_params); `EINVAL` if the rings disagree with the
    /// parameters.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{io_uring_params, Uring};
    /// let mut params = io_uring_params::default();
    /// // SAFETY: a zeroed io_uring_params names no user address.
    /// let fd = unsafe { rustix::io_uring::io_uring_setup(8, &mut params) }?;
    /// // SAFETY: nothing else has the fd, so nothing else produces or consumes.
    /// let ring = unsafe { Uring::from_params(fd, params) }?;
    /// assert_eq!(ring.params().sq_entries, 8);
    /// # Ok(()) }
    /// ```
    pub unsafe fn from_params(fd: OwnedFd, params: io_uring_params) -> Result<Self> {
        refuse_no_mmap(params.flags)?;
        Self::open(fd, Params::from(&params))
    }

    /// Adopts an io_uring the application made some other way (the `io-uring` crate,
    /// liburing, ...) (feature `inspect`, default): duplicates `fd`, reads the ring sizes the
    /// kernel reports for it ([`crate::inspect::fdinfo`]), learns
    /// the ring offsets for those sizes from the kernel and maps the queues.
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
    /// # Safety
    /// As [`from_params`](Self::from_params): while the returned value lives, the ring's
    /// maker (the `io-uring` crate's `IoUring`, liburing) must not submit or reap through its
    /// own queues.
    ///
    /// # Errors
    /// `EINVAL` for an fd that is not an io_uring, for `NO_MMAP`, or if the adopted ring's
    /// mapped sizes disagree with the kernel's report; `EFAULT` if the flags make the rings
    /// longer than they are; otherwise the kernel's errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{IoringSetupFlags, Uring};
    /// use std::os::fd::AsFd;
    /// let theirs = io_uring::IoUring::new(64)?; // the `io-uring` crate's ring
    /// // SAFETY: `theirs` is not used to submit or reap while `ring` lives.
    /// let ring = unsafe { Uring::adopt(theirs.as_fd(), IoringSetupFlags::empty()) }?;
    /// assert_eq!(ring.params().sq_entries, 64);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "inspect")]
    pub unsafe fn adopt(fd: BorrowedFd<'_>, flags: IoringSetupFlags) -> Result<Self> {
        refuse_no_mmap(flags)?;
        let fd = fd.try_clone_to_owned()?;
        let (sq_entries, cq_entries) = crate::inspect::fdinfo::io_uring_entries(fd.as_fd())?;
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
        // `open` checks the learnt offsets against the adopted ring itself.
        Self::open(fd, Params::from(&probe))
    }

    /// A duplicate of the instance's fd (`F_DUPFD_CLOEXEC`), e.g. for a component that maps
    /// its own buffer rings.
    ///
    /// # Errors
    /// The kernel's errno (`EMFILE`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let fd = ring.try_clone_fd()?;
    /// # Ok(()) }
    /// ```
    pub fn try_clone_fd(&self) -> Result<OwnedFd> {
        Ok(self.fd.try_clone()?)
    }

    /// The parameters: ring sizes, setup flags and features.
    pub fn params(&self) -> &Params {
        &self.params
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
    /// use pktmap::uring::{Region, Uring};
    /// let ring = Uring::new(8)?;
    /// assert_eq!(ring.region_len(Region::Sqes), Some(8 * 64));
    /// assert_eq!(ring.region_len(Region::PbufRing { bgid: 1 }), None);
    /// # Ok(()) }
    /// ```
    pub fn region_len(&self, region: Region) -> Option<usize> {
        region_len(&self.params, region).or_else(|| match region {
            Region::Param => self.param_region.get().copied(),
            Region::PbufRing { bgid } => lock(&self.pbufs)
                .iter()
                .find(|(g, _)| *g == bgid)
                .map(|&(_, n)| n),
            _ => None,
        })
    }

    /// `mmap` of `region`: `len` bytes at the region's offset, checked first.
    ///
    /// The queues are mapped already ([`submission`](Self::submission)); a mapping of the SQ
    /// ring or SQEs made here is for looking (`/proc/self/maps`, a debugger), and writing SQEs
    /// through it would make a second producer.
    ///
    /// # Errors
    /// `EINVAL` before the syscall if `len` is 0 or longer than the region rounded up to pages
    /// (when the size is known, see [`region_len`](Self::region_len)), or the id does not fit
    /// the layout; otherwise the kernel's errno (`ENOMEM` for a buffer group without a ring).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{Region, Uring};
    /// use pktmap::resource::MapFlags;
    /// let ring = Uring::new(8)?;
    /// let sqes = ring.map(Region::Sqes, 8 * 64, MapFlags::READONLY)?;
    /// let e = ring.map(Region::Sqes, 1 << 20, MapFlags::READONLY).unwrap_err();
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
    /// use pktmap::resource::MapFlags;
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let e = ring.map_offset(0x1000, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn map_offset(&self, offset: u64, len: usize, flags: MapFlags) -> Result<Mapping> {
        self.map(Region::from_offset(offset)?, len, flags)
    }

    /// The submission queue: the one producer, while the borrow lasts. Dropping it publishes
    /// what was pushed.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{nop, Uring};
    /// let mut ring = Uring::new(8)?;
    /// let mut sq = ring.submission();
    /// // SAFETY: NOPs name no fd or buffer.
    /// unsafe { assert!(sq.push(&nop(1)) && sq.push(&nop(2))) };
    /// drop(sq); // published
    /// ring.submit(2, None)?;
    /// assert_eq!(ring.completion().count(), 2);
    /// # Ok(()) }
    /// ```
    pub fn submission(&mut self) -> SubmissionQueue<'_> {
        SubmissionQueue::new(&self.sq, &mut self.sq_tail)
    }

    /// The completion queue: the one consumer, while the borrow lasts.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let mut ring = pktmap::uring::Uring::new(8)?;
    /// assert!(ring.completion().pop().is_none());
    /// # Ok(()) }
    /// ```
    pub fn completion(&mut self) -> CompletionQueue<'_> {
        CompletionQueue::new(&self.cq)
    }

    /// What enters the kernel: submits what was published and waits for completions.
    /// Through `&self`, as entering neither produces nor consumes.
    pub fn submitter(&self) -> Submitter<'_> {
        Submitter::new(&self.fd, &self.sq)
    }

    /// The submitter, the submission queue and the completion queue at once, for a loop
    /// that pushes, submits and reaps (the `io-uring` crate's `split`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{nop, Uring};
    /// let mut ring = Uring::new(8)?;
    /// let (submitter, mut sq, mut cq) = ring.split();
    /// for i in 0..3 {
    ///     // SAFETY: a NOP names no fd or buffer.
    ///     assert!(unsafe { sq.push(&nop(i)) });
    ///     sq.sync();
    ///     submitter.submit(1, None)?;
    ///     assert_eq!(cq.pop().map(|c| c.user_data), Some(i));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (Submitter<'_>, SubmissionQueue<'_>, CompletionQueue<'_>) {
        (
            Submitter::new(&self.fd, &self.sq),
            SubmissionQueue::new(&self.sq, &mut self.sq_tail),
            CompletionQueue::new(&self.cq),
        )
    }

    /// Publishes what was pushed and hands it to the kernel, then waits for `min_complete`
    /// completions or until `timeout` passes ([`Submitter::submit`]).
    ///
    /// # Errors
    /// As [`Submitter::enter`].
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let mut ring = pktmap::uring::Uring::new(8)?;
    /// assert_eq!(ring.submit(0, None)?, 0); // nothing pushed: nothing submitted
    /// # Ok(()) }
    /// ```
    pub fn submit(&mut self, min_complete: u32, timeout: Option<Duration>) -> Result<u32> {
        self.submission().sync();
        self.submitter().submit(min_complete, timeout)
    }

    /// Maps the SQ ring, the SQEs and the CQ ring (populated), checks the ring sizes and masks
    /// the kernel wrote into them against `params`, and, with an SQ index array, points slot
    /// `i` at SQE `i`.
    fn open(fd: OwnedFd, params: Params) -> Result<Self> {
        let p = &params;
        let full = |r: Region| -> Result<Mapping> {
            let len = region_len(p, r).unwrap_or(0);
            map_region(&fd, r, Some(len), len, MapFlags::POPULATE)
        };
        let (sq_ring, sqes, cq_ring) = (
            full(Region::SqRing)?,
            full(Region::Sqes)?,
            full(Region::CqRing)?,
        );
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
        let sqe_size = p.sqe_size();
        sqes.array::<u8>(0, p.sq_entries as usize * sqe_size)?;
        // The SQ array is filled above and not touched again: the ring's array is empty.
        let sq_ring = SharedRing::new(
            sq_ring,
            [o.head as usize, o.tail as usize, o.flags as usize],
            0,
            0,
        )?;
        let sq_tail = sq_ring.index(squeue::SQ_TAIL).load(Ordering::Acquire);
        let sq = squeue::Sq {
            mask: p.sq_entries - 1,
            entries: p.sq_entries,
            sqe_size,
            sqpoll: p.flags.contains(IoringSetupFlags::SQPOLL),
            sqes,
            ring: sq_ring,
        };
        let o = &p.cq_off;
        let cqe_size = p.cqe_size();
        let cq_ring = SharedRing::<u64, 2>::new(
            cq_ring,
            [o.head as usize, o.tail as usize],
            o.cqes as usize,
            p.cq_entries as usize * cqe_size / 8,
        )?;
        let cq = cqueue::Cq {
            mask: p.cq_entries - 1,
            cqe_size,
            ring: cq_ring,
        };
        Ok(Self {
            fd,
            params,
            param_region: OnceLock::new(),
            pbufs: PbufTable::default(),
            sq,
            sq_tail,
            cq,
        })
    }
}

fn refuse_no_mmap(flags: IoringSetupFlags) -> Result<()> {
    if flags.contains(IoringSetupFlags::NO_MMAP) {
        return Err(Error::invalid(
            "IORING_SETUP_NO_MMAP rings live in the caller's memory: nothing to map",
        ));
    }
    Ok(())
}

/// The size of the SQ ring, CQ ring or SQE array `params` describe (liburing's sizes: the SQ
/// ring ends with the index array, or its indices without one; the CQ ring with the CQEs);
/// `None` for a region only its registration knows.
fn region_len(p: &Params, region: Region) -> Option<usize> {
    let sq = if p.flags.contains(IoringSetupFlags::NO_SQARRAY) {
        p.sq_off.dropped as usize + size_of::<u32>()
    } else {
        p.sq_off.array as usize + p.sq_entries as usize * size_of::<u32>()
    };
    let cq = p.cq_off.cqes as usize + p.cq_entries as usize * p.cqe_size();
    let single = p.features.contains(IoringFeatureFlags::SINGLE_MMAP);
    match region {
        Region::SqRing | Region::CqRing if single => Some(sq.max(cq)),
        Region::SqRing => Some(sq),
        Region::CqRing => Some(cq),
        Region::Sqes => Some(p.sq_entries as usize * p.sqe_size()),
        _ => None,
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

    #[test]
    fn the_instance_and_its_options_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Uring>();
        send_sync::<Params>();
        send_sync::<BufRing>();
        send_sync::<PbufRing>();
        send_sync::<Submitter<'_>>();
        fn send<T: Send>() {}
        send::<SubmissionQueue<'_>>();
        send::<CompletionQueue<'_>>();
    }
}
