//! The socket being set up: [`XskBuilder`] makes or adopts an AF_XDP socket, sizes its rings
//! and builds an [`Xsk`] by mapping them (and binding).

use super::xsk::Shared;
use super::{Bind, Ring, RingSizes, Umem, Xsk, LAYOUT};
use crate::offset::{Region, PAGE_SIZE};
use crate::resource::{map_region, MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::xdp::{SocketAddrXdp, SocketAddrXdpWithSharedUmem, XdpMmapOffsets};
use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
use std::cell::Cell;
use std::sync::Arc;

/// An AF_XDP socket being set up: its rings sized, not yet mapped; made here
/// ([`new`](Self::new), [`shared`](Self::shared)) or adopted ([`adopt`](Self::adopt)).
///
/// It builds an [`Xsk`], the socket with its rings mapped, as the `io-uring` crate's `Builder`
/// builds its `IoUring`: [`bind`](Self::bind) maps the rings and binds; [`rings`](Self::rings)
/// maps them on a socket that is bound already. Both consume the builder.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
/// use pktmap::resource::MapFlags;
/// let sock = XskBuilder::new(Umem::new(1024, 2048)?, RingSizes::default())?;
/// let fill = sock.map(Ring::Fill, sock.ring_len(Ring::Fill), MapFlags::POPULATE)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct XskBuilder {
    fd: OwnedFd,
    offsets: XdpMmapOffsets,
    sizes: RingSizes,
    umem: Arc<Umem>,
    /// The socket whose UMEM (and FILL and COMPLETION rings) this one shares, for `bind`.
    share: Option<OwnedFd>,
}

impl AsFd for XskBuilder {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

pub(super) fn xdp_socket() -> Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::XDP,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok(fd)
}

pub(super) fn check_sizes(sizes: &RingSizes, rings: &[Ring]) -> Result<()> {
    match rings.iter().find(|&&r| !sizes.get(r).is_power_of_two()) {
        Some(&r) => Err(Error::invalid(format!(
            "{} ring of {} entries: not a power of two",
            r.name(),
            sizes.get(r)
        ))),
        None => Ok(()),
    }
}

impl XskBuilder {
    /// `socket(AF_XDP, SOCK_RAW)`, `XDP_UMEM_REG`, the four ring sizes and
    /// `XDP_MMAP_OFFSETS`.
    ///
    /// The socket belongs to the calling thread's network namespace.
    ///
    /// # Errors
    /// `EINVAL` before any call if a ring size is not a power of two; else the kernel's errno
    /// (`EPERM` without `CAP_NET_RAW`, `EAFNOSUPPORT` without AF_XDP, `EINVAL` for a UMEM it
    /// refuses, such as frames larger than a page outside huge pages).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// assert_eq!(sock.sizes(), RingSizes::default());
    /// # Ok(()) }
    /// ```
    pub fn new(umem: Umem, sizes: RingSizes) -> Result<Self> {
        check_sizes(&sizes, &Ring::ALL)?;
        let fd = xdp_socket()?;
        sockopt::set_xdp_umem_reg(&fd, umem.reg())
            .map_err(|e| Error::from(e).during("XDP_UMEM_REG"))?;
        sockopt::set_xdp_umem_fill_ring_size(&fd, sizes.fill)?;
        sockopt::set_xdp_umem_completion_ring_size(&fd, sizes.completion)?;
        Self::with_rx_tx(fd, sizes, Arc::new(umem), None)
    }

    /// Sets the RX and TX ring sizes of `fd`, whose UMEM side is set up (its own, or the one
    /// it shares through `share`), and reads the ring offsets the kernel chose.
    fn with_rx_tx(
        fd: OwnedFd,
        sizes: RingSizes,
        umem: Arc<Umem>,
        share: Option<OwnedFd>,
    ) -> Result<Self> {
        sockopt::set_xdp_rx_ring_size(&fd, sizes.rx)?;
        sockopt::set_xdp_tx_ring_size(&fd, sizes.tx)?;
        let offsets = sockopt::xdp_mmap_offsets(&fd)?;
        Ok(Self {
            fd,
            offsets,
            sizes,
            umem,
            share,
        })
    }

    /// A second socket on `first`'s UMEM (`XDP_SHARED_UMEM`), to bind to the same interface
    /// and queue: it has its own RX and TX rings (`sizes.rx`, `sizes.tx`) and uses `first`'s
    /// FILL and COMPLETION rings, so frames it sends complete on `first`.
    ///
    /// # Errors
    /// `EINVAL` before any call for an RX or TX size that is not a power of two; else the
    /// kernel's errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let first = XskBuilder::new(Umem::new(1024, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// let second = XskBuilder::shared(&first, RingSizes::default())?.bind(1, 0)?;
    /// # Ok(()) }
    /// ```
    pub fn shared(first: &Xsk, sizes: RingSizes) -> Result<Self> {
        check_sizes(&sizes, &[Ring::Rx, Ring::Tx])?;
        let fd = xdp_socket()?;
        let share = Some(first.fd.try_clone()?);
        let sizes = RingSizes {
            fill: 0,
            completion: 0,
            ..sizes
        };
        Self::with_rx_tx(fd, sizes, Arc::clone(&first.umem), share)
    }

    /// Adopts an AF_XDP socket the application made (with libxdp, xsk-rs or by hand), bound
    /// or not: duplicates `fd` and reads the ring offsets from the kernel.
    ///
    /// `umem` is the memory the socket registered with `XDP_UMEM_REG` (use
    /// [`Umem::from_mapping`], with [`Mapping::from_raw`] for memory another library
    /// mapped), and `sizes` the ring sizes it set (0 for a ring it has not); the kernel checks
    /// them: `XDP_DIAG` where the kernel has `xsk_diag`, and always its `mmap` length limit
    /// (each ring must map at `sizes`, and not one page more).
    ///
    /// # Errors
    /// `EINVAL` before any call for a size that is neither 0 nor a power of two; the kernel's
    /// errno for a socket that is not AF_XDP (`ENOPROTOOPT` for `XDP_MMAP_OFFSETS`); `EINVAL`
    /// if a ring's size disagrees with the kernel's.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{Bind, RingSizes, Umem, XskBuilder};
    /// use pktmap::resource::MapOptions;
    /// use std::os::fd::AsFd;
    /// # use rustix::net::{sockopt, xdp::{SocketAddrXdp, XdpUmemReg, XdpUmemRegFlags}};
    /// # let memfd = rustix::fs::memfd_create("umem", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// # rustix::fs::ftruncate(&memfd, 1 << 20)?;
    /// # let their_mem = MapOptions::new(1 << 20).map(&memfd, 0)?;
    /// # let theirs = rustix::net::socket(rustix::net::AddressFamily::XDP, rustix::net::SocketType::RAW, None)?;
    /// # let reg = XdpUmemReg { addr: their_mem.as_ptr() as u64, len: 1 << 20, chunk_size: 2048, headroom: 0, flags: XdpUmemRegFlags::empty(), tx_metadata_len: 0 };
    /// # sockopt::set_xdp_umem_reg(&theirs, reg)?;
    /// # for set in [sockopt::set_xdp_umem_fill_ring_size, sockopt::set_xdp_umem_completion_ring_size, sockopt::set_xdp_rx_ring_size, sockopt::set_xdp_tx_ring_size] { set(&theirs, 2048)?; }
    /// # rustix::net::bind(&theirs, &SocketAddrXdp::new(Bind::XDP_COPY | Bind::XDP_USE_NEED_WAKEUP, 1, 0))?;
    /// // `theirs`: a socket another library registered on a memfd UMEM, sized (2048 per ring)
    /// // and bound with XDP_USE_NEED_WAKEUP. pktmap maps the same frames through its own
    /// // mapping of the memfd, and the rings through the socket.
    /// let umem = Umem::from_mapping(MapOptions::new(1 << 20).map(&memfd, 0)?, 2048)?;
    /// let sock = XskBuilder::adopt(theirs.as_fd(), umem, RingSizes::default())?;
    /// let xsk = sock.rings(Bind::XDP_USE_NEED_WAKEUP)?;
    /// assert!(xsk.uses_need_wakeup());
    /// # Ok(()) }
    /// ```
    pub fn adopt(fd: BorrowedFd<'_>, umem: Umem, sizes: RingSizes) -> Result<Self> {
        if let Some(r) = Ring::ALL
            .into_iter()
            .find(|&r| sizes.get(r) != 0 && !sizes.get(r).is_power_of_two())
        {
            check_sizes(&sizes, &[r])?;
        }
        let fd = fd.try_clone_to_owned()?;
        let offsets = sockopt::xdp_mmap_offsets(&fd)
            .map_err(|e| Error::from(e).during("getsockopt(XDP_MMAP_OFFSETS)"))?;
        // Where the kernel has xsk_diag, it says the sizes outright (and `inspect` asks it).
        #[cfg(feature = "inspect")]
        if let Ok(all) = crate::inspect::sock_diag::xdp_sockets() {
            let inode = rustix::fs::fstat(&fd)?.st_ino;
            if let Some(k) = all.iter().find(|k| u64::from(k.inode) == inode) {
                let said = RingSizes {
                    rx: k.rx.unwrap_or(0),
                    tx: k.tx.unwrap_or(0),
                    fill: k.fill.unwrap_or(0),
                    completion: k.completion.unwrap_or(0),
                };
                if said != sizes {
                    return Err(Error::invalid(format!(
                        "adopted socket's rings are {said:?} (XDP_DIAG), not {sizes:?}"
                    )));
                }
            }
        }
        let sock = Self {
            fd,
            offsets,
            sizes,
            umem: Arc::new(umem),
            share: None,
        };
        let page = PAGE_SIZE as usize;
        for r in Ring::ALL.into_iter().filter(|&r| sizes.get(r) != 0) {
            let len = sock.ring_len(r).next_multiple_of(page);
            let offset = r.offset()?;
            // The kernel refuses a length past its page-rounded ring (EINVAL), so `len` must
            // map and one page more must not.
            if let Err(e) = MapOptions::new(len).layout(LAYOUT).map(&sock.fd, offset) {
                return Err(Error::invalid(format!(
                    "adopted socket's {} ring is smaller than {} entries: {e}",
                    r.name(),
                    sizes.get(r)
                )));
            }
            if MapOptions::new(len + page).map(&sock.fd, offset).is_ok() {
                return Err(Error::invalid(format!(
                    "adopted socket's {} ring is larger than {} entries",
                    r.name(),
                    sizes.get(r)
                )));
            }
        }
        Ok(sock)
    }

    /// The ring sizes (0 for a ring the socket does not have).
    pub fn sizes(&self) -> RingSizes {
        self.sizes
    }

    /// The bytes the kernel allocated for `ring`: its descriptors' offset plus the entries
    /// (libxdp's `off.desc + size * entry`).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// assert!(sock.ring_len(Ring::Rx) >= 2048 * 16);
    /// # Ok(()) }
    /// ```
    pub fn ring_len(&self, ring: Ring) -> usize {
        ring.offsets(&self.offsets).desc as usize
            + self.sizes.get(ring) as usize * ring.entry_size()
    }

    /// `mmap` of `ring`: `len` bytes at the ring's offset, checked first.
    ///
    /// # Errors
    /// `EINVAL` before the syscall if `len` is 0 or longer than [`ring_len`](Self::ring_len)
    /// rounded up to pages (the kernel's `xsk_mmap` refuses it with `EINVAL` as well); else the
    /// kernel's errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let rx = sock.map(Ring::Rx, sock.ring_len(Ring::Rx), MapFlags::POPULATE)?;
    /// assert!(sock.map(Ring::Rx, 1 << 30, MapFlags::empty()).is_err()); // EINVAL, no syscall
    /// # Ok(()) }
    /// ```
    #[doc(alias = "mmap")]
    pub fn map(&self, ring: Ring, len: usize, flags: MapFlags) -> Result<Mapping> {
        map_region(&self.fd, ring, Some(self.ring_len(ring)), len, flags)
    }

    /// `mmap` at a raw offset, decoded strictly with [`LAYOUT`], then as [`map`](Self::map).
    ///
    /// # Errors
    /// `EINVAL` before the syscall for an offset that names no ring; else as
    /// [`map`](Self::map).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskBuilder};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let e = sock.map_offset(0x4000_0000, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn map_offset(&self, offset: u64, len: usize, flags: MapFlags) -> Result<Mapping> {
        self.map(Ring::from_offset(offset)?, len, flags)
    }

    /// Maps the rings and binds to `queue` of interface `ifindex` in copy mode with
    /// need_wakeup (`XDP_COPY | XDP_USE_NEED_WAKEUP`, what every driver has; veth has no
    /// zero-copy).
    ///
    /// # Errors
    /// As [`bind_with`](Self::bind_with).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let xsk = sock.bind(1, 0)?; // loopback (ifindex 1), queue 0
    /// assert!(xsk.uses_need_wakeup());
    /// # Ok(()) }
    /// ```
    pub fn bind(self, ifindex: u32, queue: u32) -> Result<Xsk> {
        self.bind_with(ifindex, queue, Bind::XDP_COPY | Bind::XDP_USE_NEED_WAKEUP)
    }

    /// Maps the rings and binds to `queue` of interface `ifindex` with `flags`: any of
    /// `XDP_COPY`, `XDP_ZEROCOPY` and `XDP_USE_NEED_WAKEUP` (a socket from
    /// [`shared`](Self::shared) takes none: it binds with `XDP_SHARED_UMEM` and the first
    /// socket's mode).
    ///
    /// # Errors
    /// `EINVAL` before any call for `XDP_SHARED_UMEM` in `flags` (set by
    /// [`shared`](Self::shared) only); as [`map`](Self::map); then the `bind` errno
    /// (`EOPNOTSUPP` for `XDP_ZEROCOPY` on a driver without it, `ENODEV` for an interface
    /// outside the socket's namespace, `EINVAL` for a queue it lacks, `EBUSY` if the queue
    /// has a socket).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Bind, RingSizes, Umem, XskBuilder};
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let e = sock.bind_with(2, 0, Bind::XDP_ZEROCOPY).unwrap_err(); // veth: no zero-copy
    /// assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP));
    /// # Ok(()) }
    /// ```
    pub fn bind_with(self, ifindex: u32, queue: u32, flags: Bind) -> Result<Xsk> {
        if flags.contains(Bind::XDP_SHARED_UMEM) {
            return Err(Error::invalid(
                "XDP_SHARED_UMEM: make the socket with XskBuilder::shared",
            ));
        }
        let share = self.share.as_ref().map(|fd| fd.try_clone()).transpose()?;
        let need_wakeup = match &share {
            // A sharing socket has no flags of its own; need_wakeup is the first's. Without
            // it, a wakeup is always made, which is correct either way.
            Some(_) => true,
            None => flags.contains(Bind::XDP_USE_NEED_WAKEUP),
        };
        let xsk = self.rings(if need_wakeup {
            Bind::XDP_USE_NEED_WAKEUP
        } else {
            Bind::empty()
        })?;
        let r = match &share {
            Some(first) => rustix::net::bind(
                &xsk.fd,
                &SocketAddrXdpWithSharedUmem {
                    addr: SocketAddrXdp::new(Bind::XDP_SHARED_UMEM, ifindex, queue),
                    shared_umem_fd: first.as_fd(),
                },
            ),
            None => rustix::net::bind(&xsk.fd, &SocketAddrXdp::new(flags, ifindex, queue)),
        };
        r.map_err(|e| Error::from(e).during("bind(AF_XDP)"))?;
        Ok(xsk)
    }

    /// Maps the rings of a socket that is bound already (one [`adopt`](Self::adopt)ed from
    /// a library that bound it); `flags` are the flags it was bound with, of which only
    /// `XDP_USE_NEED_WAKEUP` matters here.
    ///
    /// # Errors
    /// As [`map`](Self::map), or `EINVAL` if the kernel's ring offsets do not fit the
    /// mappings.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
    /// # // to its loopback races no other test.
    /// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
    /// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
    /// use pktmap::af_xdp::{Bind, Ring, RingSizes, Umem, XskBuilder};
    /// let sock = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// // Bound by other code (here by hand, on loopback queue 0), then mapped.
    /// let addr = rustix::net::xdp::SocketAddrXdp::new(Bind::XDP_COPY, 1, 0);
    /// rustix::net::bind(&sock, &addr)?;
    /// let xsk = sock.rings(Bind::XDP_COPY)?;
    /// assert!(!xsk.uses_need_wakeup());
    /// # Ok(()) }
    /// ```
    pub fn rings(self, flags: Bind) -> Result<Xsk> {
        let o = &self.offsets;
        let s = &self.sizes;
        let m = |r: Ring| -> Result<Option<Mapping>> {
            if self.sizes.get(r) == 0 {
                return Ok(None);
            }
            self.map(r, self.ring_len(r), MapFlags::POPULATE).map(Some)
        };
        let (rx, tx, fill, comp) = (
            m(Ring::Rx)?,
            m(Ring::Tx)?,
            m(Ring::Fill)?,
            m(Ring::Completion)?,
        );
        Ok(Xsk {
            rx: rx.map(|m| Shared::new(m, &o.rx, s.rx)).transpose()?,
            tx: tx.map(|m| Shared::new(m, &o.tx, s.tx)).transpose()?,
            fill: fill.map(|m| Shared::new(m, &o.fr, s.fill)).transpose()?,
            comp: comp
                .map(|m| Shared::new(m, &o.cr, s.completion))
                .transpose()?,
            fd: self.fd,
            umem: self.umem,
            need_wakeup: flags.contains(Bind::XDP_USE_NEED_WAKEUP),
            syscalls: Cell::new(0),
        })
    }
}
