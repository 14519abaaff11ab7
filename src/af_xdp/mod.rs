//! AF_XDP mapped through pktmap: a socket's RX, TX, FILL and COMPLETION rings, at the offsets
//! of the [`AF_XDP`] layout, and the UMEM its frames live in, whoever made the socket and the
//! memory.
//!
//! The steps are the kernel's (`Documentation/networking/af_xdp.rst`): a [`Umem`] is frames in
//! memory ([`Umem::new`] maps anonymous memory, [`Umem::from_mapping`] takes the caller's:
//! a hugetlb memfd, a shared memfd, a driver pool); [`XskSocket::new`] makes the socket,
//! registers the UMEM (`XDP_UMEM_REG`), sizes the four rings and reads their offsets
//! (`XDP_MMAP_OFFSETS`); [`XskSocket::bind`] maps the rings and binds to a queue. The kernel
//! maps a ring whenever it exists, before or after `bind` (6.18 checks only that); pktmap maps
//! them first so that a mapping that fails leaves nothing bound. [`XskSocket::adopt`] takes a
//! socket the application made (with libxdp, xsk-rs or by hand), bound or not, and maps its
//! rings. [`XskSocket::shared`] makes a second socket on the same UMEM (`XDP_SHARED_UMEM`).
//! Frames reach a socket only through an XDP program that redirects into an XSKMAP (libxdp's,
//! the application's own, or the test bed's `XskRedirect`).
//!
//! [`Bind`] picks the mode: `XDP_COPY` (every driver), `XDP_ZEROCOPY` (refused with the
//! kernel's errno, `EOPNOTSUPP`, by a driver without it, such as veth) and
//! `XDP_USE_NEED_WAKEUP`, which the default has: the kernel then says in each ring's flags
//! when it needs a syscall, and [`Xsk`] makes one only then ([`Xsk::kick`] after sending,
//! a `recvfrom` when the FILL ring asks for one).
//!
//! pktmap checks before the syscall what the kernel also refuses, so the errno is the same
//! (`EINVAL`), but the message names the ring and its size: an offset that matches no ring
//! (the kernel's `xsk_mmap` only compares against the four `XDP_*PGOFF_*` values) and a length
//! longer than the page-rounded ring.
//!
//! # Drop order
//! [`Xsk`] drops its ring mappings, then the socket, then its share of the UMEM (which sockets
//! sharing it keep alive). The kernel pins the UMEM's pages at `XDP_UMEM_REG`, so no order can
//! let it write into memory that is reused.
//!
//! The rings keep offsets into their [`Mapping`]s and reach the shared indices and descriptors
//! through the checked views of [`crate::volatile`]; this module has no `unsafe` code.
//! Producer and consumer indices are only touched atomically: acquire loads of the kernel's,
//! release stores of ours, as libxdp's `xsk.h` does.

pub use rustix::net::xdp::{SocketAddrXdpFlags as Bind, XdpDesc, XdpDescOptions};

use crate::offset::{af_xdp as types, Layout, MapsFile, Region, AF_XDP, AF_XDP_FILE, PAGE_SIZE};
use crate::resource::{map_region, MapFlags, MapOptions, Mapping};
use crate::volatile::SharedRing;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::xdp::{
    SocketAddrXdp, SocketAddrXdpWithSharedUmem, XdpMmapOffsets, XdpRingFlags, XdpRingOffset,
    XdpUmemReg, XdpUmemRegFlags,
};
use rustix::net::{sockopt, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::cell::Cell;
use std::mem::size_of;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The layout AF_XDP's offsets follow: [`AF_XDP`], for naming a mapping by (type, id).
///
/// # Examples
/// ```
/// use pktmap::af_xdp::{Ring, LAYOUT};
/// use pktmap::offset::Region as _;
/// assert_eq!(LAYOUT.decode(0x1_8000_0000).unwrap(), (Ring::Completion.map_type(), 0));
/// ```
pub const LAYOUT: &Layout = &AF_XDP;

/// How `/proc/<pid>/maps` begins the name of an AF_XDP ring's file, as of any socket
/// (defined once, in [`crate::offset`]).
#[doc(inline)]
pub use crate::offset::AF_XDP_MAPS_PATH_PREFIX as MAPS_PATH_PREFIX;

/// One of an AF_XDP socket's four rings.
///
/// Its offsets, names and strict decoding come from [`crate::offset::Region`].
///
/// # Examples
/// ```
/// use pktmap::af_xdp::Ring;
/// use pktmap::offset::Region as _;
/// assert_eq!(Ring::Fill.offset().unwrap(), 0x1_0000_0000);
/// assert_eq!(Ring::from_offset(0x8000_0000).unwrap(), Ring::Tx);
/// assert!(Ring::from_offset(0x4000_0000).is_err()); // matches no ring
/// assert_eq!(Ring::Completion.name(), "COMPLETION");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ring {
    /// `XDP_PGOFF_RX_RING`: descriptors of received frames.
    Rx,
    /// `XDP_PGOFF_TX_RING`: descriptors of frames to send.
    Tx,
    /// `XDP_UMEM_PGOFF_FILL_RING`: UMEM addresses the kernel may receive into.
    Fill,
    /// `XDP_UMEM_PGOFF_COMPLETION_RING`: UMEM addresses whose frames were sent.
    Completion,
}

impl Region for Ring {
    const LAYOUT: &'static Layout = &AF_XDP;
    const MAPS_FILE: MapsFile = AF_XDP_FILE;

    fn map_type(self) -> u32 {
        match self {
            Self::Rx => types::RX,
            Self::Tx => types::TX,
            Self::Fill => types::FILL,
            Self::Completion => types::COMPLETION,
        }
    }

    fn map_id(self) -> u64 {
        0
    }

    fn from_type_id(map_type: u32, map_id: u64) -> Option<Self> {
        if map_id != 0 {
            return None;
        }
        Some(match map_type {
            types::RX => Self::Rx,
            types::TX => Self::Tx,
            types::FILL => Self::Fill,
            types::COMPLETION => Self::Completion,
            _ => return None,
        })
    }
}

impl Ring {
    /// All four, in offset order.
    pub const ALL: [Ring; 4] = [Ring::Rx, Ring::Tx, Ring::Fill, Ring::Completion];

    /// The size of one entry: a `struct xdp_desc` (16) for RX and TX, a `u64` address for
    /// FILL and COMPLETION.
    ///
    /// # Examples
    /// ```
    /// use pktmap::af_xdp::Ring;
    /// assert_eq!(Ring::Rx.entry_size(), 16); // struct xdp_desc { addr, len, options }
    /// assert_eq!(Ring::Fill.entry_size(), 8); // a UMEM address
    /// ```
    pub const fn entry_size(self) -> usize {
        match self {
            Self::Rx | Self::Tx => size_of::<XdpDesc>(),
            Self::Fill | Self::Completion => size_of::<u64>(),
        }
    }

    fn offsets(self, o: &XdpMmapOffsets) -> &XdpRingOffset {
        match self {
            Self::Rx => &o.rx,
            Self::Tx => &o.tx,
            Self::Fill => &o.fr,
            Self::Completion => &o.cr,
        }
    }
}

/// The number of entries of each ring; each a power of two.
///
/// # Examples
/// ```
/// let s = pktmap::af_xdp::RingSizes::default();
/// assert_eq!(s.fill, 2048);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    /// RX ring entries.
    pub rx: u32,
    /// TX ring entries.
    pub tx: u32,
    /// FILL ring entries.
    pub fill: u32,
    /// COMPLETION ring entries.
    pub completion: u32,
}

impl Default for RingSizes {
    /// libxdp's defaults: 2048 each.
    fn default() -> Self {
        Self {
            rx: 2048,
            tx: 2048,
            fill: 2048,
            completion: 2048,
        }
    }
}

impl RingSizes {
    /// The size of `ring`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::af_xdp::{Ring, RingSizes};
    /// assert_eq!(RingSizes::default().get(Ring::Tx), 2048);
    /// ```
    pub fn get(&self, ring: Ring) -> u32 {
        match ring {
            Ring::Rx => self.rx,
            Ring::Tx => self.tx,
            Ring::Fill => self.fill,
            Ring::Completion => self.completion,
        }
    }
}

/// The UMEM: `frames` frames of `frame_size` bytes in memory mapped through pktmap.
///
/// Frame `i` starts at UMEM address `i * frame_size`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let umem = pktmap::af_xdp::Umem::new(64, 2048)?;
/// umem.write(2048, b"frame 1")?;
/// let mut b = [0; 7];
/// umem.read(2048, &mut b)?;
/// assert_eq!(&b, b"frame 1");
/// assert_eq!(umem.frame_addrs().nth(1), Some(2048));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Umem {
    mem: Mapping,
    frame_size: u32,
    frames: u32,
}

impl Umem {
    /// Maps `frames * frame_size` bytes of anonymous memory, populated.
    ///
    /// # Errors
    /// `EINVAL` before any call if `frame_size` is not a power of two in `2048..=PAGE_SIZE`
    /// (the kernel's rule for aligned chunks in page-sized memory) or `frames` is 0; else the
    /// `mmap` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert!(pktmap::af_xdp::Umem::new(8, 1000).is_err());
    /// # Ok(()) }
    /// ```
    pub fn new(frames: u32, frame_size: u32) -> Result<Self> {
        if !frame_size.is_power_of_two()
            || !(2048..=PAGE_SIZE as u32).contains(&frame_size)
            || frames == 0
        {
            return Err(Error::invalid(format!(
                "UMEM of {frames} frames of {frame_size} bytes: frames must be a power of two \
                 in 2048..=4096, and at least one"
            )));
        }
        let len = (frames as usize)
            .checked_mul(frame_size as usize)
            .ok_or_else(|| Error::invalid("UMEM size overflows usize"))?;
        let mem = MapOptions::new(len)
            .flags(MapFlags::POPULATE)
            .map_anonymous()?;
        Self::from_mapping(mem, frame_size)
    }

    /// A UMEM over memory the caller mapped: any writable [`Mapping`] (a hugetlb memfd, a
    /// shared memfd another process also maps, a pktmap driver pool), cut into as many frames
    /// of `frame_size` bytes as fit.
    ///
    /// In hugetlb memory the mapping starts on a 2 MiB boundary, so with a power-of-two frame
    /// size no frame straddles a huge page. The kernel takes frames larger than a page only in
    /// huge-page memory (`XDP_UMEM_REG` says `EINVAL` otherwise).
    ///
    /// # Errors
    /// `EINVAL` if `frame_size` is not a power of two of at least 2048, or no frame fits, or
    /// the mapping is read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::Umem;
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    /// // A shared memfd another process can map too (with `MemfdFlags::HUGETLB`, and 2 MiB
    /// // pages reserved in vm.nr_hugepages, frames up to 2 MiB).
    /// let fd = memfd_create("umem", MemfdFlags::CLOEXEC)?;
    /// ftruncate(&fd, 2 << 20)?;
    /// let umem = Umem::from_mapping(MapOptions::new(2 << 20).flags(MapFlags::POPULATE).map(&fd, 0)?, 2048)?;
    /// assert_eq!(umem.frames(), 1024);
    /// # Ok(()) }
    /// ```
    pub fn from_mapping(mem: Mapping, frame_size: u32) -> Result<Self> {
        let frames = u32::try_from(mem.len() / frame_size.max(1) as usize).unwrap_or(u32::MAX);
        if !frame_size.is_power_of_two() || frame_size < 2048 || frames == 0 || mem.is_readonly() {
            return Err(Error::invalid(format!(
                "UMEM of {} {} bytes in frames of {frame_size}: frames must be a power of two \
                 of at least 2048, at least one must fit, and the memory must be writable",
                mem.len(),
                if mem.is_readonly() {
                    "read-only"
                } else {
                    "writable"
                }
            )));
        }
        Ok(Self {
            mem,
            frame_size,
            frames,
        })
    }

    /// The frame size.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The UMEM address of every frame, in order.
    pub fn frame_addrs(&self) -> impl Iterator<Item = u64> + use<> {
        let size = u64::from(self.frame_size);
        (0..u64::from(self.frames)).map(move |i| i * size)
    }

    /// The memory, as mapped.
    pub fn mapping(&self) -> &Mapping {
        &self.mem
    }

    /// Copies `out.len()` bytes out, starting at UMEM address `addr`.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the UMEM.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// let mut b = [1; 4];
    /// umem.read(4096, &mut b)?;
    /// assert_eq!(b, [0; 4]);
    /// # Ok(()) }
    /// ```
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.mem.read_at(self.index(addr)?, out)
    }

    /// Copies `data` in, starting at UMEM address `addr`.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the UMEM.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// umem.write(4096, b"eth")?;
    /// assert!(umem.write(8 * 4096, b"x").is_err());
    /// # Ok(()) }
    /// ```
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.mem.write_at(self.index(addr)?, data)
    }

    fn index(&self, addr: u64) -> Result<usize> {
        usize::try_from(addr).map_err(|_| Error::invalid(format!("UMEM address {addr:#x}")))
    }

    fn reg(&self) -> XdpUmemReg {
        XdpUmemReg {
            addr: self.mem.as_ptr() as u64,
            len: (self.frames as usize * self.frame_size as usize) as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: XdpUmemRegFlags::empty(),
            tx_metadata_len: 0,
        }
    }
}

/// An AF_XDP socket with its rings sized, not yet mapped: made here ([`new`](Self::new),
/// [`shared`](Self::shared)) or adopted ([`adopt`](Self::adopt)).
///
/// [`bind`](Self::bind) maps the rings and binds; [`rings`](Self::rings) maps them on a socket
/// that is bound already.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
/// use pktmap::resource::MapFlags;
/// let sock = XskSocket::new(Umem::new(1024, 2048)?, RingSizes::default())?;
/// let fill = sock.map(Ring::Fill, sock.ring_len(Ring::Fill), MapFlags::POPULATE)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct XskSocket {
    fd: OwnedFd,
    offsets: XdpMmapOffsets,
    sizes: RingSizes,
    umem: Arc<Umem>,
    /// The socket whose UMEM (and FILL and COMPLETION rings) this one shares, for `bind`.
    share: Option<OwnedFd>,
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn xdp_socket() -> Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::XDP,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok(fd)
}

fn check_sizes(sizes: &RingSizes, rings: &[Ring]) -> Result<()> {
    match rings.iter().find(|&&r| !sizes.get(r).is_power_of_two()) {
        Some(&r) => Err(Error::invalid(format!(
            "{} ring of {} entries: not a power of two",
            r.name(),
            sizes.get(r)
        ))),
        None => Ok(()),
    }
}

impl XskSocket {
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
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let first = XskSocket::new(Umem::new(1024, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// let second = XskSocket::shared(&first, RingSizes::default())?.bind(1, 0)?;
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
    /// use pktmap::af_xdp::{Bind, RingSizes, Umem, XskSocket};
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
    /// let sock = XskSocket::adopt(theirs.as_fd(), umem, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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
    /// use pktmap::af_xdp::{Bind, RingSizes, Umem, XskSocket};
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let e = sock.bind_with(2, 0, Bind::XDP_ZEROCOPY).unwrap_err(); // veth: no zero-copy
    /// assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP));
    /// # Ok(()) }
    /// ```
    pub fn bind_with(self, ifindex: u32, queue: u32, flags: Bind) -> Result<Xsk> {
        if flags.contains(Bind::XDP_SHARED_UMEM) {
            return Err(Error::invalid(
                "XDP_SHARED_UMEM: make the socket with XskSocket::shared",
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
    /// use pktmap::af_xdp::{Bind, Ring, RingSizes, Umem, XskSocket};
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
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

/// `struct xdp_desc` as the ring holds it, for zerocopy's derives: rustix's [`XdpDesc`], which
/// the API speaks, is another crate's type and cannot derive them here.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
struct RawDesc {
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
struct Shared<T, R = T> {
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
    fn new(map: Mapping, o: &XdpRingOffset, entries: u32) -> Result<Self> {
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
/// FILL. With need_wakeup ([`XskSocket::bind`]'s default) the kernel says when it needs a
/// syscall and [`kick`](Self::kick), [`fill`](Self::fill) and [`recv`](Self::recv) make one
/// only then; without it, [`kick`](Self::kick) always sends. A socket from
/// [`XskSocket::shared`] on the first socket's queue has no FILL or COMPLETION ring of its
/// own: its frames are filled and complete on the first.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// # // SAFETY: a network namespace of its own for this one-thread doctest: binding
/// # // to its loopback races no other test.
/// # assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
/// # assert!(std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status()?.success());
/// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
/// let umem = Umem::new(1024, 2048)?;
/// let addrs: Vec<u64> = umem.frame_addrs().collect();
/// let mut xsk = XskSocket::new(umem, RingSizes::default())?.bind(1, 0)?;
/// xsk.fill(&addrs);
/// let mut rx = Vec::new();
/// xsk.recv(&mut rx, 64);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Xsk {
    rx: Option<Shared<XdpDesc, RawDesc>>,
    tx: Option<Shared<XdpDesc, RawDesc>>,
    fill: Option<Shared<u64>>,
    comp: Option<Shared<u64>>,
    fd: OwnedFd,
    umem: Arc<Umem>,
    need_wakeup: bool,
    syscalls: Cell<u64>,
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
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
    /// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(1, 0)?;
    /// let mut done = Vec::new();
    /// xsk.completed(&mut done, 64);
    /// xsk.fill(&done); // sent frames can receive again
    /// # Ok(()) }
    /// ```
    pub fn completed(&mut self, out: &mut Vec<u64>, max: usize) -> usize {
        self.comp.as_mut().map_or(0, |c| c.pop(out, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_match_if_xdp_h() {
        assert_eq!(Ring::Rx.offset().unwrap(), libc::XDP_PGOFF_RX_RING as u64);
        assert_eq!(Ring::Tx.offset().unwrap(), libc::XDP_PGOFF_TX_RING as u64);
        assert_eq!(Ring::Fill.offset().unwrap(), libc::XDP_UMEM_PGOFF_FILL_RING);
        assert_eq!(
            Ring::Completion.offset().unwrap(),
            libc::XDP_UMEM_PGOFF_COMPLETION_RING
        );
        for r in Ring::ALL {
            assert_eq!(Ring::from_offset(r.offset().unwrap()).unwrap(), r);
        }
        for bad in [0x1000, 0x4000_0000, 0x2_0000_0000, 0x8000_1000] {
            let e = Ring::from_offset(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:#x}");
        }
        assert_eq!(size_of::<XdpDesc>(), 16);
    }

    #[test]
    fn umem_checks_frames() {
        assert!(Umem::new(4, 1000).is_err());
        assert!(Umem::new(0, 2048).is_err());
        assert!(Umem::new(4, 8192).is_err());
        let u = Umem::new(4, 4096).unwrap();
        assert_eq!(u.mapping().len(), 4 * 4096);
        assert!(u.write(4 * 4096 - 2, b"abc").is_err());
        let ro = MapOptions::new(8192)
            .flags(MapFlags::READONLY)
            .map_anonymous()
            .unwrap();
        assert!(Umem::from_mapping(ro, 2048).is_err());
        let small = MapOptions::new(4096).map_anonymous().unwrap();
        assert!(Umem::from_mapping(small, 8192).is_err());
    }
}
