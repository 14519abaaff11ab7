//! AF_XDP mapped through pktmap: a socket's RX, TX, FILL and COMPLETION rings, at the offsets
//! of the [`AF_XDP`] layout, and the UMEM its frames live in, whoever made the socket and the
//! memory.
//!
//! The steps are the kernel's (`Documentation/networking/af_xdp.rst`): a [`Umem`] is frames in
//! memory ([`Umem::new`] maps anonymous memory, [`Umem::from_mapping`] takes the caller's:
//! a hugetlb memfd, a shared memfd, a driver pool); [`XskBuilder::new`] makes the socket,
//! registers the UMEM (`XDP_UMEM_REG`), sizes the four rings and reads their offsets
//! (`XDP_MMAP_OFFSETS`); [`XskBuilder::bind`] maps the rings and binds to a queue. The kernel
//! maps a ring whenever it exists, before or after `bind` (6.18 checks only that); pktmap maps
//! them first so that a mapping that fails leaves nothing bound. [`XskBuilder::adopt`] takes a
//! socket the application made (with libxdp, xsk-rs or by hand), bound or not, and maps its
//! rings. [`XskBuilder::shared`] makes a second socket on the same UMEM (`XDP_SHARED_UMEM`).
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
//! The rings keep offsets into their [`Mapping`](crate::resource::Mapping)s and reach the shared indices and descriptors
//! through the checked views of [`crate::volatile`]; this module has no `unsafe` code.
//! Producer and consumer indices are only touched atomically: acquire loads of the kernel's,
//! release stores of ours, as libxdp's `xsk.h` does.

pub use rustix::net::xdp::{SocketAddrXdpFlags as Bind, XdpDesc, XdpDescOptions};

pub mod builder;
pub mod umem;
pub mod xsk;

pub use builder::XskBuilder;
pub use umem::Umem;
pub use xsk::Xsk;

use crate::offset::{af_xdp_types as types, Layout, MapsFile, Region, AF_XDP, AF_XDP_FILE};
use rustix::net::xdp::{XdpMmapOffsets, XdpRingOffset};
use std::mem::size_of;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{MapFlags, MapOptions};

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
