//! The completion side: the CQ ring ([`CompletionQueue`]) and what it yields ([`Cqe`]).

use crate::volatile::SharedRing;
use crate::{Error, Result};
use rustix::io_uring::IoringCqeFlags;
use std::sync::atomic::Ordering;

/// The CQ ring's index words, in [`Cq::ring`].
const CQ_HEAD: usize = 0;
const CQ_TAIL: usize = 1;

/// The mapped CQ ring of a [`Uring`](super::Uring), which owns it.
#[derive(Debug)]
pub(super) struct Cq {
    pub(super) mask: u32,
    pub(super) cqe_size: usize,
    /// The CQ ring with its head and tail words ([`CQ_HEAD`], [`CQ_TAIL`]) and its CQE array
    /// (as `u64`s), checked by the [`Uring`](super::Uring)'s constructor.
    pub(super) ring: SharedRing<u64, 2>,
}

/// The completion queue of a [`Uring`](super::Uring), borrowed from it
/// ([`Uring::completion`](super::Uring::completion), [`Uring::split`](super::Uring::split)):
/// the one consumer while it lives. An iterator of the completions there are now.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let mut ring = pktmap::uring::Uring::new(8)?;
/// for c in ring.completion() {
///     println!("{c:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CompletionQueue<'a> {
    cq: &'a Cq,
}

impl<'a> CompletionQueue<'a> {
    pub(super) fn new(cq: &'a Cq) -> Self {
        Self { cq }
    }

    /// Takes the oldest completion, if any.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let mut ring = pktmap::uring::Uring::new(8)?;
    /// assert!(ring.completion().pop().is_none());
    /// # Ok(()) }
    /// ```
    pub fn pop(&mut self) -> Option<Cqe> {
        let ring = &self.cq.ring;
        let (khead, ktail) = (ring.index(CQ_HEAD), ring.index(CQ_TAIL));
        let head = khead.load(Ordering::Relaxed);
        if head == ktail.load(Ordering::Acquire) {
            return None;
        }
        // The acquire load of the tail made the kernel's write of the entry visible; it is not
        // reused until we advance the head below. The entry lies inside the CQE array, which
        // was checked when the queue was made.
        // `struct io_uring_cqe { __u64 user_data; __s32 res; __u32 flags; }`, as two words.
        let at = (head & self.cq.mask) as usize * self.cq.cqe_size / 8;
        let cqes = ring.entries();
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

impl Iterator for CompletionQueue<'_> {
    type Item = Cqe;

    fn next(&mut self) -> Option<Cqe> {
        self.pop()
    }
}

/// One completion, copied out of the CQ ring.
///
/// # Examples
/// ```
/// use pktmap::uring::{Cqe, IoringCqeFlags};
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
    pub fn buffer_id(&self) -> Option<u16> {
        let has = self.cqe_flags().contains(IoringCqeFlags::BUFFER);
        has.then_some((self.flags >> linux_raw_sys::io_uring::IORING_CQE_BUFFER_SHIFT) as u16)
    }

    /// The flag bits (`BUFFER`, `MORE`, `SOCK_NONEMPTY`, `NOTIF`; see also
    /// [`CQE_F_BUF_MORE`](super::CQE_F_BUF_MORE)), without the buffer id.
    pub fn cqe_flags(&self) -> IoringCqeFlags {
        IoringCqeFlags::from_bits_retain(self.flags & 0xffff)
    }

    /// Whether a multishot request stays armed after this completion (`IORING_CQE_F_MORE`).
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
    /// use pktmap::uring::{nop, Uring};
    /// let mut ring = Uring::new(8)?;
    /// // SAFETY: a NOP names no fd or buffer.
    /// assert!(unsafe { ring.submission().push(&nop(5)) });
    /// ring.submit(1, None)?;
    /// assert_eq!(ring.completion().pop().unwrap().result()?, 0); // a NOP completes with 0
    /// # Ok(()) }
    /// ```
    pub fn result(&self) -> Result<u32> {
        u32::try_from(self.res).map_err(|_| Error::from_errno(-self.res))
    }
}
