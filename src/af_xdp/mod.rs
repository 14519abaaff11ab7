//! AF_XDP mapped through pktmap: a socket's RX, TX, FILL and COMPLETION rings, at the offsets
//! of the [`AF_XDP`] layout, and the UMEM its frames live in.
//!
//! The steps are the kernel's (`Documentation/networking/af_xdp.rst`): [`Umem::new`] takes
//! page-aligned anonymous memory from [`crate::resource`]; [`XskSocket::new`] makes the socket,
//! registers the UMEM (`XDP_UMEM_REG`), sizes the four rings and reads their offsets
//! (`XDP_MMAP_OFFSETS`); [`XskSocket::bind`] maps the four rings and binds to a queue, in that
//! order, because the kernel refuses `mmap` once the socket is bound (`EBUSY`). Frames reach
//! the socket only through an XDP program that redirects into an XSKMAP (libxdp's, the
//! application's own, or the test bed's `XskRedirect`).
//!
//! pktmap checks before the syscall what the kernel also refuses, so the errno is the same
//! (`EINVAL`), but the message names the ring and its size: an offset that matches no ring
//! (the kernel's `xsk_mmap` only compares against the four `XDP_*PGOFF_*` values) and a length
//! longer than the page-rounded ring.
//!
//! # Drop order
//! [`Xsk`] drops its ring mappings, then the socket, then the UMEM. The kernel pins the UMEM's
//! pages at `XDP_UMEM_REG`, so no order can let it write into memory that is reused.
//!
//! # Safety
//! This module reads and writes the shared rings through raw pointers into [`Mapping`]s it
//! owns, each checked to lie inside its mapping before it is formed. Producer and consumer
//! indices are only touched atomically: acquire loads of the kernel's, release stores of ours,
//! as libxdp's `xsk.h` does.
#![allow(unsafe_code)]

pub use rustix::net::xdp::{XdpDesc, XdpDescOptions};

use crate::offset::{af_xdp as types, Layout, AF_XDP, PAGE_SIZE};
use crate::resource::{MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::xdp::{
    SocketAddrXdp, SocketAddrXdpFlags, XdpMmapOffsets, XdpRingOffset, XdpUmemReg, XdpUmemRegFlags,
};
use rustix::net::{sockopt, AddressFamily, SendFlags, SocketFlags, SocketType};
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};

/// The layout AF_XDP's offsets follow: [`AF_XDP`], for naming a mapping by (type, id).
///
/// # Examples
/// ```
/// use pktmap::af_xdp::{Ring, LAYOUT};
/// assert_eq!(LAYOUT.decode(0x1_8000_0000).unwrap(), (Ring::Completion.map_type(), 0));
/// ```
pub const LAYOUT: &Layout = &AF_XDP;

/// How `/proc/<pid>/maps` begins the name of an AF_XDP ring's file: `socket:[<inode>]`, as for
/// any socket; the offset column is the `mmap` offset, which [`Ring::from_offset`] names
/// (measured on 6.18). The UMEM is anonymous memory and has no name.
///
/// # Examples
/// ```
/// use pktmap::af_xdp::{Ring, MAPS_PATH_PREFIX};
/// let line = "7f475ea67000-7f475ea6c000 rw-s 100000000 00:09 134984   socket:[134984]";
/// let path = line.split_whitespace().last().unwrap();
/// assert!(path.starts_with(MAPS_PATH_PREFIX));
/// let off = u64::from_str_radix(line.split_whitespace().nth(2).unwrap(), 16).unwrap();
/// assert_eq!(Ring::from_offset(off).unwrap(), Ring::Fill);
/// ```
pub const MAPS_PATH_PREFIX: &str = "socket:[";

/// One of an AF_XDP socket's four rings.
///
/// # Examples
/// ```
/// use pktmap::af_xdp::Ring;
/// assert_eq!(Ring::Fill.offset(), 0x1_0000_0000);
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

impl Ring {
    /// All four, in offset order.
    pub const ALL: [Ring; 4] = [Ring::Rx, Ring::Tx, Ring::Fill, Ring::Completion];

    /// The map type in [`LAYOUT`].
    pub const fn map_type(self) -> u32 {
        match self {
            Self::Rx => types::RX,
            Self::Tx => types::TX,
            Self::Fill => types::FILL,
            Self::Completion => types::COMPLETION,
        }
    }

    /// The upstream name (`RX`, `TX`, `FILL`, `COMPLETION`).
    pub const fn name(self) -> &'static str {
        match AF_XDP.type_name(self.map_type()) {
            Some(name) => name,
            None => "?",
        }
    }

    /// The `mmap` offset.
    pub const fn offset(self) -> u64 {
        match AF_XDP.encode(self.map_type(), 0) {
            Ok(off) => off,
            // Unreachable: every ring is a type the layout lists, without an id.
            Err(_) => u64::MAX,
        }
    }

    /// The ring an `mmap` offset names, decoded strictly.
    ///
    /// # Errors
    /// `EINVAL` if the offset is none of the four.
    pub fn from_offset(offset: u64) -> Result<Self> {
        let (t, _) = AF_XDP
            .decode(offset)
            .map_err(|e| Error::invalid(format!("af_xdp offset {offset:#x}: {e}")))?;
        Ok(match t {
            types::RX => Self::Rx,
            types::TX => Self::Tx,
            types::FILL => Self::Fill,
            _ => Self::Completion,
        })
    }

    /// The size of one entry: a `struct xdp_desc` (16) for RX and TX, a `u64` address for
    /// FILL and COMPLETION.
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

/// The UMEM: `frames` frames of `frame_size` bytes in anonymous memory mapped by pktmap.
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
    /// Maps `frames * frame_size` bytes, populated.
    ///
    /// # Errors
    /// `EINVAL` before any call if `frame_size` is not a power of two in `2048..=PAGE_SIZE`
    /// (the kernel's rule for aligned chunks) or `frames` is 0; else the `mmap` errno.
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
        Ok(Self {
            mem,
            frame_size,
            frames,
        })
    }

    /// The frame size.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert_eq!(umem.frame_size(), 4096);
    /// # Ok(()) }
    /// ```
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The number of frames.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert_eq!(umem.frames(), 8);
    /// # Ok(()) }
    /// ```
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The UMEM address of every frame, in order.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert_eq!(umem.frame_addrs().last(), Some(7 * 4096));
    /// # Ok(()) }
    /// ```
    pub fn frame_addrs(&self) -> impl Iterator<Item = u64> {
        let size = u64::from(self.frame_size);
        (0..u64::from(self.frames)).map(move |i| i * size)
    }

    /// The memory, as mapped.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert_eq!(umem.mapping().len(), 8 * 4096);
    /// # Ok(()) }
    /// ```
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
            len: self.mem.len() as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: XdpUmemRegFlags::empty(),
            tx_metadata_len: 0,
        }
    }
}

/// An AF_XDP socket with its UMEM registered and its rings sized, not yet bound.
///
/// This is the stage at which rings can be mapped; [`bind`](Self::bind) maps all four and
/// binds.
///
/// # Examples
/// ```no_run
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
    umem: Umem,
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
    /// (`EPERM` without `CAP_NET_RAW`, `EAFNOSUPPORT` without AF_XDP).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// assert_eq!(sock.sizes(), RingSizes::default());
    /// # Ok(()) }
    /// ```
    pub fn new(umem: Umem, sizes: RingSizes) -> Result<Self> {
        if let Some(r) = Ring::ALL
            .into_iter()
            .find(|&r| !sizes.get(r).is_power_of_two())
        {
            return Err(Error::invalid(format!(
                "{} ring of {} entries: not a power of two",
                r.name(),
                sizes.get(r)
            )));
        }
        let fd = rustix::net::socket_with(
            AddressFamily::XDP,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(Error::from)?;
        sockopt::set_xdp_umem_reg(&fd, umem.reg()).map_err(Error::from)?;
        sockopt::set_xdp_umem_fill_ring_size(&fd, sizes.fill).map_err(Error::from)?;
        sockopt::set_xdp_umem_completion_ring_size(&fd, sizes.completion).map_err(Error::from)?;
        sockopt::set_xdp_rx_ring_size(&fd, sizes.rx).map_err(Error::from)?;
        sockopt::set_xdp_tx_ring_size(&fd, sizes.tx).map_err(Error::from)?;
        let offsets = sockopt::xdp_mmap_offsets(&fd).map_err(Error::from)?;
        Ok(Self {
            fd,
            offsets,
            sizes,
            umem,
        })
    }

    /// The ring sizes.
    pub fn sizes(&self) -> RingSizes {
        self.sizes
    }

    /// The bytes the kernel allocated for `ring`: its descriptors' offset plus the entries
    /// (libxdp's `off.desc + size * entry`).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
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
    #[doc(alias = "mmap")]
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let rx = sock.map(Ring::Rx, sock.ring_len(Ring::Rx), MapFlags::POPULATE)?;
    /// assert!(sock.map(Ring::Rx, 1 << 30, MapFlags::empty()).is_err()); // EINVAL, no syscall
    /// # Ok(()) }
    /// ```
    pub fn map(&self, ring: Ring, len: usize, flags: MapFlags) -> Result<Mapping> {
        let size = self.ring_len(ring);
        let page = PAGE_SIZE as usize;
        let limit = size.div_ceil(page) * page;
        if len > limit {
            return Err(Error::invalid(format!(
                "af_xdp {} ring is {size} bytes ({limit} page-rounded); refusing to map {len}",
                ring.name()
            )));
        }
        MapOptions::new(len)
            .flags(flags)
            .layout(LAYOUT)
            .map(&self.fd, ring.offset())
    }

    /// `mmap` at a raw offset, decoded strictly with [`LAYOUT`], then as [`map`](Self::map).
    ///
    /// # Errors
    /// `EINVAL` before the syscall for an offset that names no ring; else as
    /// [`map`](Self::map).
    ///
    /// # Examples
    /// ```no_run
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

    /// Maps the four rings and binds to `queue` of interface `ifindex` in copy mode
    /// (`XDP_COPY`, which every driver has; veth has no zero-copy).
    ///
    /// # Errors
    /// As [`map`](Self::map), then the `bind` errno (`ENODEV` for an interface outside the
    /// socket's namespace, `EINVAL` for a queue it lacks, `EBUSY` if the queue has a socket).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{Ring, RingSizes, Umem, XskSocket};
    /// use pktmap::resource::MapFlags;
    /// let sock = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?;
    /// let xsk = sock.bind(2, 0)?; // ifindex 2, queue 0
    /// # Ok(()) }
    /// ```
    pub fn bind(self, ifindex: u32, queue: u32) -> Result<Xsk> {
        let m = |r: Ring| self.map(r, self.ring_len(r), MapFlags::POPULATE);
        let (rx, tx, fill, comp) = (
            m(Ring::Rx)?,
            m(Ring::Tx)?,
            m(Ring::Fill)?,
            m(Ring::Completion)?,
        );
        let o = &self.offsets;
        let s = &self.sizes;
        let xsk = Xsk {
            rx: Cons::new(rx, &o.rx, s.rx)?,
            tx: Prod::new(tx, &o.tx, s.tx)?,
            fill: Prod::new(fill, &o.fr, s.fill)?,
            comp: Cons::new(comp, &o.cr, s.completion)?,
            fd: self.fd,
            umem: self.umem,
        };
        let addr = SocketAddrXdp::new(SocketAddrXdpFlags::XDP_COPY, ifindex, queue);
        rustix::net::bind(&xsk.fd, &addr).map_err(Error::from)?;
        Ok(xsk)
    }
}

/// The part both ring directions share.
///
/// # Invariants
/// `producer` and `consumer` point to aligned u32s in `_map`, `desc` to `mask + 1` entries of
/// `T` in it; `_map` lives as long as the value.
#[derive(Debug)]
struct Shared<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    _map: Mapping,
    _t: PhantomData<T>,
}

impl<T> Shared<T> {
    fn new(map: Mapping, o: &XdpRingOffset, entries: u32) -> Result<Self> {
        let producer = map
            .ptr_at(usize::try_from(o.producer).unwrap_or(usize::MAX), 4, 4)?
            .cast::<AtomicU32>()
            .cast_const();
        let consumer = map
            .ptr_at(usize::try_from(o.consumer).unwrap_or(usize::MAX), 4, 4)?
            .cast::<AtomicU32>()
            .cast_const();
        let n = entries as usize * size_of::<T>();
        let desc = map
            .ptr_at(
                usize::try_from(o.desc).unwrap_or(usize::MAX),
                n,
                std::mem::align_of::<T>(),
            )?
            .cast::<T>();
        // INVARIANT: all three were checked to lie inside `map`.
        Ok(Self {
            producer,
            consumer,
            desc,
            mask: entries - 1,
            _map: map,
            _t: PhantomData,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: By the type invariants, an aligned u32 in the live mapping; the kernel
        // touches it only atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: As for `producer`.
        unsafe { &*self.consumer }
    }
}

/// A ring we produce into and the kernel consumes: FILL and TX.
#[derive(Debug)]
struct Prod<T>(Shared<T>);

impl<T: Copy> Prod<T> {
    fn new(map: Mapping, o: &XdpRingOffset, entries: u32) -> Result<Self> {
        Ok(Self(Shared::new(map, o, entries)?))
    }

    /// Writes as many of `items` as fit and publishes them; returns how many.
    fn push(&mut self, items: &[T]) -> usize {
        let r = &self.0;
        let prod = r.producer().load(Ordering::Relaxed);
        let cons = r.consumer().load(Ordering::Acquire);
        let free = (r.mask + 1).wrapping_sub(prod.wrapping_sub(cons)) as usize;
        let n = free.min(items.len());
        for (i, item) in items[..n].iter().enumerate() {
            let idx = prod.wrapping_add(i as u32) & r.mask;
            // SAFETY: `idx <= mask`, an entry inside the ring (type invariants); the slot is
            // free (the kernel consumed it, per the acquire load above) until we publish.
            unsafe { r.desc.add(idx as usize).write(*item) };
        }
        r.producer()
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        n
    }
}

/// A ring the kernel produces into and we consume: RX and COMPLETION.
#[derive(Debug)]
struct Cons<T>(Shared<T>);

impl<T: Copy> Cons<T> {
    fn new(map: Mapping, o: &XdpRingOffset, entries: u32) -> Result<Self> {
        Ok(Self(Shared::new(map, o, entries)?))
    }

    /// Copies up to `max` entries into `out` and releases their slots; returns how many.
    fn pop(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let r = &self.0;
        let cons = r.consumer().load(Ordering::Relaxed);
        let prod = r.producer().load(Ordering::Acquire);
        let n = (prod.wrapping_sub(cons) as usize).min(max);
        for i in 0..n {
            let idx = cons.wrapping_add(i as u32) & r.mask;
            // SAFETY: `idx <= mask`, an entry inside the ring; the acquire load of the
            // producer made the kernel's write visible, and the slot is ours until we
            // release it below.
            out.push(unsafe { r.desc.add(idx as usize).read() });
        }
        r.consumer()
            .store(cons.wrapping_add(n as u32), Ordering::Release);
        n
    }
}

/// A bound AF_XDP socket: its four rings mapped through pktmap and its UMEM.
///
/// Frames move: FILL → (kernel receives) → RX → you → TX → (kernel sends) → COMPLETION →
/// FILL. Copy mode sends only when kicked: call [`kick`](Self::kick) after [`send`](Self::send).
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::af_xdp::{RingSizes, Umem, XskSocket};
/// let umem = Umem::new(1024, 2048)?;
/// let addrs: Vec<u64> = umem.frame_addrs().collect();
/// let mut xsk = XskSocket::new(umem, RingSizes::default())?.bind(2, 0)?;
/// xsk.fill(&addrs);
/// let mut rx = Vec::new();
/// xsk.recv(&mut rx, 64);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Xsk {
    rx: Cons<XdpDesc>,
    tx: Prod<XdpDesc>,
    fill: Prod<u64>,
    comp: Cons<u64>,
    fd: OwnedFd,
    umem: Umem,
}

// SAFETY: An Xsk owns its mappings and socket outright; its raw pointers point into those
// mappings and carry no thread affinity. `&mut self` is needed to touch any ring, so moving it
// to another thread cannot race with the thread it came from.
unsafe impl Send for Xsk {}

impl AsFd for Xsk {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Xsk {
    /// The UMEM.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// assert_eq!(xsk.umem().frames(), 64);
    /// # Ok(()) }
    /// ```
    pub fn umem(&self) -> &Umem {
        &self.umem
    }

    /// Gives frames at these UMEM addresses to the kernel to receive into; returns how many
    /// fit in the FILL ring.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// assert_eq!(xsk.fill(&[0, 2048, 4096]), 3);
    /// # Ok(()) }
    /// ```
    pub fn fill(&mut self, addrs: &[u64]) -> usize {
        self.fill.push(addrs)
    }

    /// Moves up to `max` received descriptors from the RX ring into `out`; returns how many.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// let mut rx = Vec::new();
    /// let n = xsk.recv(&mut rx, 64);
    /// assert_eq!(n, rx.len());
    /// # Ok(()) }
    /// ```
    pub fn recv(&mut self, out: &mut Vec<XdpDesc>, max: usize) -> usize {
        self.rx.pop(out, max)
    }

    /// Queues frames to send on the TX ring; returns how many fit. Nothing leaves until
    /// [`kick`](Self::kick).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// xsk.umem().write(0, &[0xff; 60])?;
    /// let d = XdpDesc { addr: 0, len: 60, options: XdpDescOptions::empty() };
    /// assert_eq!(xsk.send(&[d]), 1);
    /// xsk.kick()?;
    /// # Ok(()) }
    /// ```
    pub fn send(&mut self, descs: &[XdpDesc]) -> usize {
        self.tx.push(descs)
    }

    /// `sendto(fd, NULL, 0, MSG_DONTWAIT)`—Tells the kernel to send what is on the TX ring.
    ///
    /// # Errors
    /// The kernel's errno, except the "try again" ones (`EAGAIN`, `EBUSY`, `ENOBUFS`), which
    /// mean it is busy and are not errors here.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// xsk.kick()?; // harmless with nothing queued
    /// # Ok(()) }
    /// ```
    pub fn kick(&self) -> Result<()> {
        match rustix::net::send(&self.fd, &[], SendFlags::DONTWAIT) {
            Ok(_) => Ok(()),
            Err(e)
                if [
                    rustix::io::Errno::AGAIN,
                    rustix::io::Errno::BUSY,
                    rustix::io::Errno::NOBUFS,
                ]
                .contains(&e) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    /// Moves up to `max` sent frames' addresses from the COMPLETION ring into `out`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, XskSocket};
    /// let mut xsk = XskSocket::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// let mut done = Vec::new();
    /// xsk.completed(&mut done, 64);
    /// xsk.fill(&done); // sent frames can receive again
    /// # Ok(()) }
    /// ```
    pub fn completed(&mut self, out: &mut Vec<u64>, max: usize) -> usize {
        self.comp.pop(out, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_match_if_xdp_h() {
        assert_eq!(Ring::Rx.offset(), libc::XDP_PGOFF_RX_RING as u64);
        assert_eq!(Ring::Tx.offset(), libc::XDP_PGOFF_TX_RING as u64);
        assert_eq!(Ring::Fill.offset(), libc::XDP_UMEM_PGOFF_FILL_RING);
        assert_eq!(
            Ring::Completion.offset(),
            libc::XDP_UMEM_PGOFF_COMPLETION_RING
        );
        for r in Ring::ALL {
            assert_eq!(Ring::from_offset(r.offset()).unwrap(), r);
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
    }
}
