//! The socket with its rings mapped: [`Xsk`], and the producer/consumer protocol of its rings.

use super::{Umem, XdpDesc, XdpDescOptions};
use crate::resource::Mapping;
use crate::volatile::SharedRing;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::xdp::{XdpRingFlags, XdpRingOffset};
use rustix::net::{RecvFlags, SendFlags};
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct xdp_desc` as the ring holds it, for zerocopy's derives: rustix's [`XdpDesc`], which
/// the API speaks, is another crate's type and cannot derive them here.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub(super) struct RawDesc {
    addr: u64,
    len: u32,
    options: u32,
}

impl From<XdpDesc> for RawDesc {
    fn from(d: XdpDesc) -> Self {
        Self {
            addr: d.addr,
            len: d.len,
            options: d.options.bits(),
        }
    }
}

impl From<RawDesc> for XdpDesc {
    fn from(d: RawDesc) -> Self {
        Self {
            addr: d.addr,
            len: d.len,
            options: XdpDescOptions::from_bits_retain(d.options),
        }
    }
}

/// One ring shared with the kernel: its mapping with the producer, consumer and flags words
/// and the descriptor array, checked when made ([`SharedRing`]). The API's values are `T`;
/// the ring holds them as `R` (the same type, or [`RawDesc`] for an [`XdpDesc`]).
#[derive(Debug)]
pub(super) struct Shared<T, R = T> {
    /// The words [`PRODUCER`], [`CONSUMER`] and [`FLAGS`] (the producer's offset again when
    /// the ring has no flags word, which `has_flags` says), and the descriptors.
    ring: SharedRing<R, 3>,
    has_flags: bool,
    entries: u32,
    _t: std::marker::PhantomData<T>,
}

/// The index words of a [`Shared`] ring.
const PRODUCER: usize = 0;
const CONSUMER: usize = 1;
const FLAGS: usize = 2;

impl<T: Copy + From<R>, R: FromBytes + IntoBytes + From<T>> Shared<T, R> {
    pub(super) fn new(map: Mapping, o: &XdpRingOffset, entries: u32) -> Result<Self> {
        let at = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let flags = o.flags.map_or(at(o.producer), at);
        let words = [at(o.producer), at(o.consumer), flags];
        Ok(Self {
            ring: SharedRing::new(map, words, at(o.desc), entries as usize)?,
            has_flags: o.flags.is_some(),
            entries,
            _t: std::marker::PhantomData,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        self.ring.index(PRODUCER)
    }

    fn consumer(&self) -> &AtomicU32 {
        self.ring.index(CONSUMER)
    }

    /// Whether the kernel asked for a wakeup (`XDP_RING_NEED_WAKEUP` in the ring's flags).
    fn needs_wakeup(&self) -> bool {
        // libxdp reads the flags after a full barrier: our producer store must be visible
        // before we decide the kernel need not be told.
        fence(Ordering::SeqCst);
        let flags = self.ring.index(FLAGS).load(Ordering::Relaxed);
        self.has_flags && flags & XdpRingFlags::XDP_RING_NEED_WAKEUP.bits() != 0
    }

    /// Writes as many of `items` as fit and publishes them; returns how many. (FILL and TX:
    /// we produce, the kernel consumes.)
    fn push(&mut self, items: &[T]) -> usize {
        let mask = self.entries - 1;
        let prod = self.producer().load(Ordering::Relaxed);
        let cons = self.consumer().load(Ordering::Acquire);
        let free = self.entries.wrapping_sub(prod.wrapping_sub(cons)) as usize;
        let n = free.min(items.len());
        let descs = self.ring.entries();
        for (i, item) in items[..n].iter().enumerate() {
            // The slot is free (the kernel consumed it, per the acquire load above) until we
            // publish; `idx <= mask` is inside the array.
            let idx = prod.wrapping_add(i as u32) & mask;
            let _ = descs.set(idx as usize, R::from(*item));
        }
        self.producer()
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        n
    }

    /// Copies up to `max` entries into `out` and releases their slots; returns how many. (RX
    /// and COMPLETION: the kernel produces, we consume.)
    fn pop(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let mask = self.entries - 1;
        let cons = self.consumer().load(Ordering::Relaxed);
        let prod = self.producer().load(Ordering::Acquire);
        let n = (prod.wrapping_sub(cons) as usize).min(max);
        let descs = self.ring.entries();
        for i in 0..n {
            // The acquire load of the producer made the kernel's write visible, and the slot
            // is ours until we release it below.
            let idx = cons.wrapping_add(i as u32) & mask;
            if let Ok(v) = descs.get(idx as usize) {
                out.push(T::from(v));
            }
        }
        self.consumer()
            .store(cons.wrapping_add(n as u32), Ordering::Release);
        n
    }
}

/// An AF_XDP socket with its rings mapped through pktmap, and its UMEM.
///
/// Frames move: FILL → (kernel receives) → RX → you → TX → (kernel sends) → COMPLETION →
/// FILL. With need_wakeup ([`XskBuilder::bind`](super::XskBuilder::bind)'s default) the kernel says when it needs a
/// syscall and [`kick`](Self::kick), [`fill`](Self::fill) and [`recv`](Self::recv) make one
/// only then; without it, [`kick`](Self::kick) always sends. A socket from
/// [`XskBuilder::shared`](super::XskBuilder::shared) on the first socket's queue has no FILL or COMPLETION ring of its
/// own: its frames are filled and complete on the first.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
/// # // to its loopback races no other test.
/// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
/// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
/// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
/// let umem = Umem::new(1024, 2048)?;
/// let addrs: Vec<u64> = umem.frame_addrs().collect();
/// let mut xsk = XskBuilder::new(umem, RingSizes::default())?.bind(1, 0)?;
/// xsk.fill(&addrs);
/// let mut rx = Vec::new();
/// xsk.recv(&mut rx, 64);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Xsk {
    pub(super) rx: Option<Shared<XdpDesc, RawDesc>>,
    pub(super) tx: Option<Shared<XdpDesc, RawDesc>>,
    pub(super) fill: Option<Shared<u64>>,
    pub(super) comp: Option<Shared<u64>>,
    pub(super) fd: OwnedFd,
    pub(super) umem: Arc<Umem>,
    pub(super) need_wakeup: bool,
    pub(super) syscalls: Cell<u64>,
}

impl AsFd for Xsk {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The "try again" errnos of a wakeup syscall: the kernel is busy, which is not an error.
fn busy(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::AGAIN, Errno::BUSY, Errno::NOBUFS].contains(&e)
}

impl Xsk {
    /// The UMEM.
    pub fn umem(&self) -> &Umem {
        &self.umem
    }

    /// Whether the socket was bound with `XDP_USE_NEED_WAKEUP`.
    pub fn uses_need_wakeup(&self) -> bool {
        self.need_wakeup
    }

    /// The wakeup syscalls (`sendto`, `recvfrom`) made so far: with need_wakeup, only those
    /// the kernel asked for.
    pub fn syscalls(&self) -> u64 {
        self.syscalls.get()
    }

    /// `recvfrom(fd, NULL, 0, MSG_DONTWAIT)`, which lets the kernel refill from FILL, when the
    /// FILL ring asks for it.
    fn wake_fill(&self) {
        if self.need_wakeup && self.fill.as_ref().is_some_and(Shared::needs_wakeup) {
            self.syscalls.set(self.syscalls.get() + 1);
            let _ = rustix::net::recv(&self.fd, &mut [0u8; 0][..], RecvFlags::DONTWAIT);
        }
    }

    /// Gives frames at these UMEM addresses to the kernel to receive into; returns how many
    /// fit in the FILL ring (0 for a socket without one).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let mut xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// assert_eq!(xsk.fill(&[0, 2048, 4096]), 3);
    /// # Ok(()) }
    /// ```
    pub fn fill(&mut self, addrs: &[u64]) -> usize {
        let n = self.fill.as_mut().map_or(0, |f| f.push(addrs));
        if n > 0 {
            self.wake_fill();
        }
        n
    }

    /// Moves up to `max` received descriptors from the RX ring into `out`; returns how many.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let mut xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// let mut rx = Vec::new();
    /// let n = xsk.recv(&mut rx, 64);
    /// assert_eq!(n, rx.len());
    /// # Ok(()) }
    /// ```
    pub fn recv(&mut self, out: &mut Vec<XdpDesc>, max: usize) -> usize {
        let n = self.rx.as_mut().map_or(0, |r| r.pop(out, max));
        if n == 0 {
            self.wake_fill();
        }
        n
    }

    /// Queues frames to send on the TX ring; returns how many fit. Nothing leaves until
    /// [`kick`](Self::kick).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskBuilder};
    /// let mut xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// xsk.umem().write(0, &[0xff; 60])?;
    /// let d = XdpDesc { addr: 0, len: 60, options: XdpDescOptions::empty() };
    /// assert_eq!(xsk.send(&[d]), 1);
    /// xsk.kick()?;
    /// # Ok(()) }
    /// ```
    pub fn send(&mut self, descs: &[XdpDesc]) -> usize {
        self.tx.as_mut().map_or(0, |t| t.push(descs))
    }

    /// `sendto(fd, NULL, 0, MSG_DONTWAIT)`—Tells the kernel to send what is on the TX ring;
    /// with need_wakeup, only if the TX ring asks for it (copy mode always does).
    ///
    /// # Errors
    /// The kernel's errno, except the "try again" ones (`EAGAIN`, `EBUSY`, `ENOBUFS`), which
    /// mean it is busy and are not errors here.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let mut xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// xsk.kick()?; // harmless with nothing queued
    /// # Ok(()) }
    /// ```
    pub fn kick(&self) -> Result<()> {
        let Some(tx) = &self.tx else { return Ok(()) };
        if self.need_wakeup && !tx.needs_wakeup() {
            return Ok(());
        }
        self.syscalls.set(self.syscalls.get() + 1);
        match rustix::net::send(&self.fd, &[], SendFlags::DONTWAIT) {
            Ok(_) => Ok(()),
            Err(e) if busy(e) => Ok(()),
            Err(e) => Err(Error::from(e).during("sendto(AF_XDP)")),
        }
    }

    /// Moves up to `max` sent frames' addresses from the COMPLETION ring into `out` (0 for a
    /// socket without one).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let mut xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// let mut done = Vec::new();
    /// xsk.completed(&mut done, 64);
    /// xsk.fill(&done); // sent frames can receive again
    /// # Ok(()) }
    /// ```
    pub fn completed(&mut self, out: &mut Vec<u64>, max: usize) -> usize {
        self.comp.as_mut().map_or(0, |c| c.pop(out, max))
    }
}
