//! What the kernel says a socket is: `sock_diag` over netlink (`XDP_DIAG`, `PACKET_DIAG`) and
//! the socket file system's `system.sockprotoname` attribute.
//!
//! [`maps`](super::maps) uses these to name a `socket:[inode]` mapping by what the socket is, never
//! by its offset. [`xdp_sockets`] also reports an AF_XDP socket's ring sizes and UMEM, where
//! the kernel has `xsk_diag`.
//!
//! - `sock_diag` (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY` dumps) is the kernel's own
//!   interface. It reports the sockets of the caller's network namespace, and each family
//!   needs its diag module: `xsk_diag` (`CONFIG_XDP_SOCKETS_DIAG`) and `af_packet_diag`
//!   (`CONFIG_PACKET_DIAG`). Without it the dump fails with `ENOENT`, which the 6.18 host
//!   these were written on gives for `XDP_DIAG`.
//! - `/proc/<pid>/fdinfo/<fd>` does not serve: for a socket it shows `pos`, `flags`, `mnt_id`
//!   and `ino`, not the family.
//! - `getxattr(path, "system.sockprotoname")` on any path to the socket (`/proc/<pid>/fd/<n>`
//!   or `/proc/<pid>/map_files/<range>`) returns the protocol's name, `XDP` or `PACKET`,
//!   whatever namespace the socket is in: [`protocol_name`].
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! use std::os::fd::AsRawFd;
//! let path = format!("/proc/self/fd/{}", udp.as_raw_fd());
//! assert_eq!(pktmap::inspect::sock_diag::protocol_name(&path)?, "UDP");
//! # Ok(()) }
//! ```

use crate::{Error, Result};
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// `AF_XDP`.
pub const AF_XDP: u8 = 44;
/// `AF_PACKET`.
pub const AF_PACKET: u8 = 17;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;

// include/uapi/linux/xdp_diag.h
const XDP_SHOW_INFO: u32 = 1;
const XDP_SHOW_RING_CFG: u32 = 2;
const XDP_SHOW_UMEM: u32 = 4;
const XDP_DIAG_INFO: u16 = 1;
const XDP_DIAG_RX_RING: u16 = 3;
const XDP_DIAG_TX_RING: u16 = 4;
const XDP_DIAG_UMEM: u16 = 5;
const XDP_DIAG_UMEM_FILL_RING: u16 = 6;
const XDP_DIAG_UMEM_COMPLETION_RING: u16 = 7;

// include/uapi/linux/packet_diag.h
const PACKET_SHOW_RING_CFG: u32 = 4;
const PACKET_DIAG_RX_RING: u16 = 2;
const PACKET_DIAG_TX_RING: u16 = 3;

/// An AF_XDP socket as `XDP_DIAG` reports it.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::inspect::sock_diag::{xdp_sockets, XdpSocket};
/// fn describe(s: &XdpSocket) -> String {
///     let rings = [("rx", s.rx), ("tx", s.tx), ("fill", s.fill), ("comp", s.completion)];
///     let rings: Vec<_> = rings.iter().filter_map(|(n, e)| Some(format!("{n} {}", (*e)?))).collect();
///     format!("socket:[{}] ifindex {} queue {}: {}", s.inode, s.ifindex, s.queue_id, rings.join(", "))
/// }
/// let s = XdpSocket { inode: 7, ifindex: 2, fill: Some(2048), ..Default::default() };
/// assert_eq!(describe(&s), "socket:[7] ifindex 2 queue 0: fill 2048");
/// # if let Ok(all) = xdp_sockets() { all.iter().for_each(|s| println!("{}", describe(s))) }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpSocket {
    /// The socket's inode (`socket:[inode]`).
    pub inode: u32,
    /// The interface and queue it is bound to (`XDP_DIAG_INFO`; 0 before bind).
    pub ifindex: u32,
    /// The queue id.
    pub queue_id: u32,
    /// The RX ring's entries, if it has one.
    pub rx: Option<u32>,
    /// The TX ring's entries, if it has one.
    pub tx: Option<u32>,
    /// The FILL ring's entries, if it has one.
    pub fill: Option<u32>,
    /// The COMPLETION ring's entries, if it has one.
    pub completion: Option<u32>,
    /// The registered UMEM's size in bytes and chunk size, if any.
    pub umem: Option<(u64, u32)>,
}

/// An AF_PACKET socket as `PACKET_DIAG` reports it.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::inspect::sock_diag::packet_sockets;
/// match packet_sockets() {
///     // One line per PACKET_MMAP ring set up in this network namespace.
///     Ok(all) => {
///         for s in all.iter().filter(|s| s.rx_ring.is_some() || s.tx_ring.is_some()) {
///             println!("socket:[{}] rx {:?} tx {:?}", s.inode, s.rx_ring, s.tx_ring);
///         }
///     }
///     // A kernel without af_packet_diag.
///     Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketSocket {
    /// The socket's inode.
    pub inode: u32,
    /// `PACKET_RX_RING`'s block size and block count, if set up.
    pub rx_ring: Option<(u32, u32)>,
    /// `PACKET_TX_RING`'s block size and block count, if set up.
    pub tx_ring: Option<(u32, u32)>,
}

/// Every AF_XDP socket of this thread's network namespace, with its rings and UMEM.
///
/// # Errors
/// The kernel's errno: `ENOENT` when `xsk_diag` is not in the kernel.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// // Without xsk_diag (the dump is ENOENT), `protocol_name` still tells an AF_XDP socket.
/// let xdp = match pktmap::inspect::sock_diag::xdp_sockets() {
///     Ok(all) => all,
///     Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Vec::new(),
///     Err(e) => return Err(e.into()),
/// };
/// for s in &xdp {
///     println!("socket:[{}] on ifindex {} queue {}, umem {:?}", s.inode, s.ifindex, s.queue_id, s.umem);
/// }
/// # Ok(()) }
/// ```
pub fn xdp_sockets() -> Result<Vec<XdpSocket>> {
    let show = XDP_SHOW_INFO | XDP_SHOW_RING_CFG | XDP_SHOW_UMEM;
    let mut out = Vec::new();
    dump(AF_XDP, show, |inode, attrs| {
        let mut s = XdpSocket {
            inode,
            ..Default::default()
        };
        for (kind, v) in attrs {
            match kind {
                XDP_DIAG_INFO => {
                    s.ifindex = u32_at(v, 0).unwrap_or(0);
                    s.queue_id = u32_at(v, 4).unwrap_or(0);
                }
                XDP_DIAG_RX_RING => s.rx = u32_at(v, 0),
                XDP_DIAG_TX_RING => s.tx = u32_at(v, 0),
                XDP_DIAG_UMEM_FILL_RING => s.fill = u32_at(v, 0),
                XDP_DIAG_UMEM_COMPLETION_RING => s.completion = u32_at(v, 0),
                // struct xdp_diag_umem { __u64 size; __u32 id, num_pages, chunk_size, ... }
                XDP_DIAG_UMEM => s.umem = u64_at(v, 0).zip(u32_at(v, 16)),
                _ => {}
            }
        }
        out.push(s);
    })?;
    Ok(out)
}

/// Every AF_PACKET socket of this thread's network namespace, with its `PACKET_MMAP` rings.
///
/// # Errors
/// The kernel's errno: `ENOENT` when `af_packet_diag` is not in the kernel.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// // Needs CAP_NET_RAW for the packet socket; the dump itself needs nothing.
/// if let Ok(s) = rustix::net::socket(rustix::net::AddressFamily::PACKET, rustix::net::SocketType::RAW, None) {
///     use std::os::fd::AsFd;
///     let inode = rustix::fs::fstat(s.as_fd())?.st_ino;
///     let all = pktmap::inspect::sock_diag::packet_sockets()?;
///     assert!(all.iter().any(|p| u64::from(p.inode) == inode && p.rx_ring.is_none()));
/// }
/// # Ok(()) }
/// ```
pub fn packet_sockets() -> Result<Vec<PacketSocket>> {
    let mut out = Vec::new();
    dump(AF_PACKET, PACKET_SHOW_RING_CFG, |inode, attrs| {
        let mut s = PacketSocket {
            inode,
            ..Default::default()
        };
        for (kind, v) in attrs {
            // struct packet_diag_ring { __u32 pdr_block_size, pdr_block_nr, ... }
            let ring = u32_at(v, 0).zip(u32_at(v, 4));
            match kind {
                PACKET_DIAG_RX_RING => s.rx_ring = ring,
                PACKET_DIAG_TX_RING => s.tx_ring = ring,
                _ => {}
            }
        }
        out.push(s);
    })?;
    Ok(out)
}

/// `getxattr(path, "system.sockprotoname")`—The name of the protocol of the socket at `path`
/// (`XDP`, `PACKET`, `UDP`, `UNIX-STREAM`, ...).
///
/// # Errors
/// The kernel's errno: `ENODATA` (or `EOPNOTSUPP`) if `path` is not a socket, `ENOENT`,
/// `EACCES`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::inspect::sock_diag::protocol_name;
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// assert_eq!(protocol_name(&format!("/proc/self/fd/{}", a.as_raw_fd()))?, "UNIX-STREAM");
/// let err = protocol_name("/proc/self/exe").unwrap_err(); // not a socket
/// assert!(matches!(err.raw_os_error(), Some(libc::ENODATA | libc::EOPNOTSUPP)), "{err}");
/// # Ok(()) }
/// ```
pub fn protocol_name(path: &str) -> Result<String> {
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(path, "system.sockprotoname", &mut buf)
        .map_err(|e| Error::from(e).during("getxattr(system.sockprotoname)"))?;
    let name = &buf[..n];
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn malformed() -> Error {
    Error::refused(libc::EBADMSG, "malformed sock_diag reply")
}

/// Dumps every socket of `family` with `show` and calls `each(inode, attributes)`.
///
/// The request (`xdp_diag_req` and `packet_diag_req` have the same shape): family, protocol,
/// pad, inode, show, cookie[2]. Each reply: family, type, u16, inode, cookie[2], then
/// netlink attributes.
fn dump(family: u8, show: u32, mut each: impl FnMut(u32, Vec<(u16, &[u8])>)) -> Result<()> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )
    .map_err(Error::from)?;
    let mut req = Vec::with_capacity(NLMSG_HDR + 20);
    req.extend_from_slice(&((NLMSG_HDR + 20) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    req.extend_from_slice(&[family, 0, 0, 0]);
    req.extend_from_slice(&0u32.to_ne_bytes()); // inode: all
    req.extend_from_slice(&show.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // cookie: INET_DIAG_NOCOOKIE
    rustix::net::send(&fd, &req, SendFlags::empty()).map_err(Error::from)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, _) =
            rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()).map_err(Error::from)?;
        let mut msgs = &buf[..n];
        if msgs.is_empty() {
            return Err(malformed());
        }
        while !msgs.is_empty() {
            let len = u32_at(msgs, 0).ok_or_else(malformed)? as usize;
            let kind = u16_at(msgs, 4).ok_or_else(malformed)?;
            let msg = msgs.get(NLMSG_HDR..len).ok_or_else(malformed)?;
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let err = u32_at(msg, 0).ok_or_else(malformed)? as i32;
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(Error::from_errno(-err).during("sock_diag"))
                    };
                }
                _ => {
                    let inode = u32_at(msg, 4).ok_or_else(malformed)?;
                    each(inode, attributes(msg.get(16..).unwrap_or(&[])));
                }
            }
            msgs = msgs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        }
    }
}

/// The netlink attributes (`struct nlattr { u16 len; u16 type; }`, 4-aligned) in `b`.
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u16_at(b, 0), u16_at(b, 2)) {
        let len = len as usize;
        let Some(value) = b.get(4..len) else { break };
        out.push((kind & 0x3fff, value));
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_and_stop_at_garbage() {
        let mut b = Vec::new();
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&3u16.to_ne_bytes());
        b.extend_from_slice(&2048u32.to_ne_bytes());
        b.extend_from_slice(&6u16.to_ne_bytes()); // 2 bytes of value, padded to 8
        b.extend_from_slice(&7u16.to_ne_bytes());
        b.extend_from_slice(&[1, 2, 0, 0]);
        b.extend_from_slice(&100u16.to_ne_bytes()); // claims more than there is
        b.extend_from_slice(&1u16.to_ne_bytes());
        let a = attributes(&b);
        assert_eq!(a, [(3, &2048u32.to_ne_bytes()[..]), (7, &[1, 2][..])]);
        assert_eq!(u32_at(a[0].1, 0), Some(2048));
        assert_eq!(u32_at(a[1].1, 0), None);
    }

    #[test]
    fn packet_dump_answers_or_says_why() {
        match packet_sockets() {
            Ok(_) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}"),
        }
        match xdp_sockets() {
            Ok(_) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}"),
        }
    }
}
