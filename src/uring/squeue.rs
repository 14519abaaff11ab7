//! The submission side: the SQ ring and SQE array ([`SubmissionQueue`]), entering the kernel
//! ([`Submitter`]), and builders of the SQEs pktmap's examples use.

use crate::resource::Mapping;
use crate::volatile::SharedRing;
use crate::{Error, Result};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::io_uring::{
    io_uring_enter, io_uring_enter_arg, io_uring_getevents_arg, io_uring_ptr, io_uring_sqe,
    IoringEnterFlags, IoringOp, IoringRecvFlags, IoringSqFlags, IoringSqeFlags, Timespec,
};
use std::ptr;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

/// The SQ ring's index words, in [`Sq::ring`].
pub(super) const SQ_HEAD: usize = 0;
pub(super) const SQ_TAIL: usize = 1;
const SQ_FLAGS: usize = 2;

/// The mapped SQ ring and SQE array of a [`Uring`](super::Uring), which owns them.
#[derive(Debug)]
pub(super) struct Sq {
    pub(super) mask: u32,
    pub(super) entries: u32,
    pub(super) sqe_size: usize,
    pub(super) sqpoll: bool,
    pub(super) sqes: Mapping,
    /// The SQ ring with its head, tail and flags words ([`SQ_HEAD`], [`SQ_TAIL`],
    /// [`SQ_FLAGS`]), checked by [`Uring`](super::Uring)'s constructor.
    pub(super) ring: SharedRing<u32, 3>,
}

impl Sq {
    /// Entries published and not yet consumed by the kernel.
    fn published(&self) -> u32 {
        let head = self.ring.index(SQ_HEAD).load(Ordering::Acquire);
        self.ring
            .index(SQ_TAIL)
            .load(Ordering::Relaxed)
            .wrapping_sub(head)
    }

    fn needs_wakeup(&self) -> bool {
        // liburing: a full barrier between publishing the tail and reading the flags, so the
        // thread cannot both miss the new tail and have its wakeup flag missed by us.
        fence(Ordering::SeqCst);
        let flags = self.ring.index(SQ_FLAGS).load(Ordering::Relaxed);
        self.sqpoll && flags & IoringSqFlags::NEED_WAKEUP.bits() != 0
    }
}

/// The submission queue of a [`Uring`](super::Uring), borrowed from it ([`Uring::submission`](super::Uring::submission),
/// [`Uring::split`](super::Uring::split)): the one producer while it lives. Dropping it publishes what was pushed.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let mut ring = pktmap::uring::Uring::new(8)?;
/// let mut sq = ring.submission();
/// assert_eq!((sq.capacity(), sq.pending()), (8, 0));
/// sq.sync(); // publishes nothing new
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SubmissionQueue<'a> {
    sq: &'a Sq,
    /// The [`Uring`](super::Uring)'s own tail, so that the next borrow continues where this one stopped.
    tail: &'a mut u32,
}

impl<'a> SubmissionQueue<'a> {
    pub(super) fn new(sq: &'a Sq, tail: &'a mut u32) -> Self {
        Self { sq, tail }
    }

    /// The number of SQE slots.
    pub fn capacity(&self) -> u32 {
        self.sq.entries
    }

    /// Entries pushed and not yet consumed by the kernel.
    pub fn pending(&self) -> u32 {
        let head = self.sq.ring.index(SQ_HEAD).load(Ordering::Acquire);
        self.tail.wrapping_sub(head)
    }

    /// Whether the queue has no free slot.
    pub fn is_full(&self) -> bool {
        self.pending() >= self.sq.entries
    }

    /// Whether an `SQPOLL` thread has gone to sleep and must be woken
    /// (`IORING_SQ_NEED_WAKEUP`); always `false` without SQPOLL. [`Submitter::submit`]
    /// checks it for you.
    pub fn needs_wakeup(&self) -> bool {
        self.sq.needs_wakeup()
    }

    /// Copies `sqe` into the next free slot; `false` if the queue is full.
    ///
    /// Nothing is visible to the kernel until [`sync`](Self::sync) (or the drop of `self`).
    ///
    /// # Safety
    /// Everything the entry names must stay valid until its completion is reaped: the fd, any
    /// buffer address, and with `IOSQE_BUFFER_SELECT` the [`BufRing`](super::BufRing) of its
    /// buffer group.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{recv_with_buffer_select, Uring};
    /// use std::os::fd::AsFd;
    /// let mut ring = Uring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// // SAFETY: `sock` and `bufs` outlive every completion (they drop after `ring` is done).
    /// assert!(unsafe { ring.submission().push(&recv_with_buffer_select(sock.as_fd(), 0, 1)) });
    /// ring.submit(0, None)?;
    /// # Ok(()) }
    /// ```
    pub unsafe fn push(&mut self, sqe: &io_uring_sqe) -> bool {
        if self.is_full() {
            return false;
        }
        let slot = (*self.tail & self.sq.mask) as usize * self.sq.sqe_size;
        // rustix's `io_uring_sqe` does not derive zerocopy's `IntoBytes` (another crate's
        // type), so its bytes are taken here.
        // SAFETY: `struct io_uring_sqe` is 64 bytes of fields with no padding (checked by
        // `sqe_has_no_padding`), so every byte of the copy is initialised.
        let bytes = unsafe { std::mem::transmute::<io_uring_sqe, [u8; 64]>(*sqe) };
        // The slot is inside the SQE array (checked when the queue was made: `entries` slots
        // of `sqe_size`), and the kernel does not read it until the tail is published; no
        // other producer exists while `self` borrows the Uring mutably.
        if self.sq.sqes.store(slot, bytes).is_err() {
            return false;
        }
        *self.tail = self.tail.wrapping_add(1);
        true
    }

    /// Publishes the pushed entries to the kernel (a release store of the tail).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::uring::{nop, Uring};
    /// let mut ring = Uring::new(8)?;
    /// let (submitter, mut sq, mut cq) = ring.split();
    /// // SAFETY: NOPs name no fd or buffer.
    /// unsafe { assert!(sq.push(&nop(1)) && sq.push(&nop(2))) };
    /// sq.sync(); // both entries are visible to the kernel now
    /// assert_eq!(submitter.submit(2, None)?, 2);
    /// assert_eq!(cq.pop().map(|c| c.user_data), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn sync(&mut self) {
        self.sq
            .ring
            .index(SQ_TAIL)
            .store(*self.tail, Ordering::Release);
    }
}

impl Drop for SubmissionQueue<'_> {
    fn drop(&mut self) {
        self.sync();
    }
}

/// What enters the kernel for a [`Uring`](super::Uring) ([`Uring::submitter`](super::Uring::submitter), [`Uring::split`](super::Uring::split)):
/// `io_uring_enter`, which submits what the submission queue published and waits for
/// completions.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::uring::{nop, Uring};
/// let mut ring = Uring::new(8)?;
/// let (submitter, mut sq, mut cq) = ring.split();
/// // SAFETY: a NOP names no fd or buffer.
/// assert!(unsafe { sq.push(&nop(3)) });
/// sq.sync();
/// submitter.submit(1, None)?;
/// assert_eq!(cq.pop().unwrap().user_data, 3);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Submitter<'a> {
    fd: &'a OwnedFd,
    sq: &'a Sq,
}

impl<'a> Submitter<'a> {
    pub(super) fn new(fd: &'a OwnedFd, sq: &'a Sq) -> Self {
        Self { fd, sq }
    }

    /// Hands what the submission queue published to the kernel, waiting as
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
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// assert_eq!(ring.submitter().submit(0, None)?, 0); // nothing published: nothing happens
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, min_complete: u32, timeout: Option<Duration>) -> Result<u32> {
        if !self.sq.sqpoll {
            return self.enter(self.sq.published(), min_complete, timeout);
        }
        let flags = if self.sq.needs_wakeup() {
            IoringEnterFlags::SQ_WAKEUP
        } else if min_complete == 0 {
            return Ok(0);
        } else {
            IoringEnterFlags::empty()
        };
        self.enter_flags(0, min_complete, timeout, flags)
    }

    /// `io_uring_enter(fd, to_submit, min_complete, GETEVENTS | EXT_ARG, {ts})`—Submits, then
    /// waits for `min_complete` completions or until `timeout` passes.
    ///
    /// With `min_complete == 0` it only submits and never blocks; `timeout: None` waits
    /// without limit. With `SQPOLL` the kernel thread submits; use [`submit`](Self::submit),
    /// which wakes it when it sleeps.
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
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let e = ring.submitter().enter(0, 1, Some(Duration::from_millis(10))).unwrap_err();
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
                        self.fd,
                        to_submit,
                        min_complete,
                        wait | IoringEnterFlags::EXT_ARG,
                        Some(&arg),
                    )
                }
            }
            // SAFETY: As above; the flags carry no extended argument.
            _ => unsafe { io_uring_enter(self.fd, to_submit, min_complete, wait) },
        };
        r.map_err(|e| match Error::from(e).during("io_uring_enter") {
            e if e.raw_os_error() == Some(libc::ETIME) => {
                e.reported_as(std::io::ErrorKind::TimedOut)
            }
            e => e,
        })
    }
}

/// An SQE for `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT`: receive into a buffer the kernel
/// takes from buffer group `bgid`.
///
/// # Examples
/// ```
/// use pktmap::uring::recv_with_buffer_select;
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
/// `bgid`, for as long as completions carry [`Cqe::more`](super::Cqe::more).
///
/// # Examples
/// ```
/// use pktmap::uring::recv_multishot;
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
/// let sqe = pktmap::uring::cancel(99, 1);
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
/// let sqe = pktmap::uring::nop(9);
/// assert_eq!(sqe.user_data.u64_(), 9);
/// ```
pub fn nop(user_data: u64) -> io_uring_sqe {
    io_uring_sqe {
        opcode: IoringOp::Nop,
        user_data: user_data.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uring::Uring;

    /// The sum of the field sizes is the size: no padding (the transmute in `push`).
    #[test]
    fn sqe_has_no_padding() {
        use std::mem::size_of_val;
        let s = io_uring_sqe::default();
        let fields = size_of_val(&s.opcode)
            + size_of_val(&s.flags)
            + size_of_val(&s.ioprio)
            + size_of_val(&s.fd)
            + size_of_val(&s.off_or_addr2)
            + size_of_val(&s.addr_or_splice_off_in)
            + size_of_val(&s.len)
            + size_of_val(&s.op_flags)
            + size_of_val(&s.user_data)
            + size_of_val(&s.buf)
            + size_of_val(&s.personality)
            + size_of_val(&s.splice_fd_in_or_file_index_or_addr_len)
            + size_of_val(&s.addr3_or_cmd);
        assert_eq!((fields, std::mem::size_of::<io_uring_sqe>()), (64, 64));
    }

    /// The bug two producers had: each kept its own tail and wrote the same slot, so of two
    /// NOPs queued one completed. Now every borrow of the queue continues the one tail.
    #[test]
    fn consecutive_borrows_continue_one_tail() {
        let mut ring = Uring::new(8).unwrap();
        // SAFETY: NOPs name no fd or buffer.
        assert!(unsafe { ring.submission().push(&nop(1)) });
        // SAFETY: as above.
        assert!(unsafe { ring.submission().push(&nop(2)) });
        assert_eq!(ring.submission().pending(), 2);
        assert_eq!(ring.submit(2, Some(Duration::from_secs(5))).unwrap(), 2);
        let mut got: Vec<u64> = ring.completion().map(|c| c.user_data).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    }
}
