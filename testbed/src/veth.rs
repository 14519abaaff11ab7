//! A veth pair between two network namespaces made for the purpose and removed on drop, and a
//! raw `AF_PACKET` peer: the place AF_XDP examples and tests move real frames.
//!
//! Nothing here has an IP address: frames are plain Ethernet with the IEEE local experimental
//! EtherType [`ETHERTYPE`], between two locally administered MAC addresses, so no traffic can
//! leave the pair. Namespaces are named `pktmap-<pid>-<n>-a` and `-b`, so parallel tests do not
//! collide; the veth ends are made directly inside them (`xsk0` in a, `peer0` in b).
//!
//! Needs root (`ip netns add`) and iproute2's `ip`. [`require_root`](crate::require_root) says so
//! loudly, and fails under `CI=true`, where a skipped network test would hide a broken machine.
//!
//! # Safety
//! The one `unsafe` call is `bind(2)` of the packet socket to a `sockaddr_ll`, which rustix has
//! no type for.
#![allow(unsafe_code)]

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::net::{sockopt, AddressFamily, Protocol, RecvFlags, SendFlags, SocketType};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `0x88b5`: IEEE 802 "Local Experimental EtherType 1", which no real protocol uses.
///
/// # Examples
/// ```
/// assert_eq!(pktmap_testbed::ETHERTYPE.to_be_bytes(), [0x88, 0xb5]);
/// ```
pub const ETHERTYPE: u16 = 0x88b5;

/// One end of the pair.
///
/// # Examples
/// ```
/// use pktmap_testbed::Side;
/// assert_eq!(Side::B.ifname(), "peer0");
/// assert_eq!(Side::A.mac()[0] & 0x02, 0x02); // locally administered
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Namespace `…-a`, interface `xsk0`, MAC `02:70:6b:00:00:0a`: where the AF_XDP socket goes.
    A,
    /// Namespace `…-b`, interface `peer0`, MAC `02:70:6b:00:00:0b`: the traffic peer.
    B,
}

impl Side {
    /// The interface name on this side.
    pub const fn ifname(self) -> &'static str {
        match self {
            Side::A => "xsk0",
            Side::B => "peer0",
        }
    }

    /// The interface's MAC address (locally administered).
    pub const fn mac(self) -> [u8; 6] {
        match self {
            Side::A => [0x02, 0x70, 0x6b, 0, 0, 0x0a],
            Side::B => [0x02, 0x70, 0x6b, 0, 0, 0x0b],
        }
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Two fresh network namespaces joined by a veth pair; both are deleted on drop.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap_testbed::{Side, VethPair};
/// let bed = VethPair::new()?;
/// std::thread::scope(|s| {
///     s.spawn(|| -> std::io::Result<()> {
///         bed.enter(Side::A)?; // this thread now lives in namespace a
///         println!("xsk0 is ifindex {}", bed.ifindex(Side::A)?);
///         Ok(())
///     });
/// });
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VethPair {
    ns: [String; 2],
}

impl VethPair {
    /// Makes the namespaces and the pair and sets both ends up.
    ///
    /// # Errors
    /// The failing `ip` command and its message; whatever was made is removed.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{Side, VethPair};
    /// let bed = VethPair::new()?;
    /// drop(bed); // both namespaces are deleted
    /// # Ok(()) }
    /// ```
    pub fn new() -> io::Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let base = format!("pktmap-{}-{n}", std::process::id());
        let mut bed = Self {
            ns: [String::new(), String::new()],
        };
        for (i, suffix) in ["a", "b"].into_iter().enumerate() {
            let name = format!("{base}-{suffix}");
            ip(&["netns", "add", &name])?;
            // Recorded only once made, so Drop deletes exactly what exists.
            bed.ns[i] = name;
        }
        let (a, b) = (bed.ns[0].clone(), bed.ns[1].clone());
        let (mac_a, mac_b) = (mac_str(Side::A.mac()), mac_str(Side::B.mac()));
        #[rustfmt::skip]
        ip(&["-n", &a, "link", "add", Side::A.ifname(), "address", &mac_a, "type", "veth",
             "peer", "name", Side::B.ifname(), "netns", &b, "address", &mac_b])?;
        for (ns, side) in [(&a, Side::A), (&b, Side::B)] {
            // No IPv6 link-local address: keeps router solicitations and the like off the wire.
            ip(&[
                "-n",
                ns,
                "link",
                "set",
                side.ifname(),
                "addrgenmode",
                "none",
            ])?;
            ip(&["-n", ns, "link", "set", side.ifname(), "up"])?;
        }
        Ok(bed)
    }

    /// The name of a side's namespace.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{Side, VethPair};
    /// let bed = VethPair::new()?;
    /// assert!(bed.netns(Side::A).ends_with("-a"));
    /// # Ok(()) }
    /// ```
    pub fn netns(&self, side: Side) -> &str {
        match side {
            Side::A => &self.ns[0],
            Side::B => &self.ns[1],
        }
    }

    /// `setns(CLONE_NEWNET)`—Moves the calling thread into a side's namespace, for good.
    ///
    /// Call it on a thread of your own (sockets made there belong to the namespace, and stay
    /// in it wherever they are used later).
    ///
    /// # Errors
    /// `open` or `setns` errno.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{Side, VethPair};
    /// let bed = VethPair::new()?;
    /// std::thread::scope(|s| s.spawn(|| bed.enter(Side::B)).join().unwrap())?;
    /// # Ok(()) }
    /// ```
    pub fn enter(&self, side: Side) -> io::Result<()> {
        let f = std::fs::File::open(format!("/run/netns/{}", self.netns(side)))?;
        move_into_link_name_space(f.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))
    }

    /// The interface index of a side's veth end, in its own namespace.
    ///
    /// # Errors
    /// If `ip` fails or prints something unexpected.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{Side, VethPair};
    /// let bed = VethPair::new()?;
    /// println!("peer0 is {}", bed.ifindex(Side::B)?);
    /// # Ok(()) }
    /// ```
    pub fn ifindex(&self, side: Side) -> io::Result<u32> {
        let out = Command::new("ip")
            .args(["-n", self.netns(side), "-o", "link", "show", "dev"])
            .arg(side.ifname())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no ifindex in `ip link` output {text:?}")))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in self.ns.iter().filter(|n| !n.is_empty()) {
            // Deleting a namespace destroys the veth end inside it (and so the pair).
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("pktmap testbed: could not delete netns {ns}: {e}");
            }
        }
    }
}

/// A raw `AF_PACKET` socket bound to one interface and [`ETHERTYPE`]: the peer that sends
/// frames to the AF_XDP socket and reads its replies, without pktmap in the way.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap_testbed::{frame, PacketSocket, Side};
/// let peer = PacketSocket::bind(4)?;
/// peer.send(&frame(Side::A.mac(), Side::B.mac(), b"hello"))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// `socket(AF_PACKET, SOCK_RAW, ETHERTYPE)` bound to `ifindex` (in the calling thread's
    /// namespace). Outgoing frames are not looped back to it.
    ///
    /// # Errors
    /// The kernel's errno (`EPERM` without `CAP_NET_RAW`).
    pub fn bind(ifindex: u32) -> io::Result<Self> {
        let proto = Protocol::from_raw(
            rustix::net::RawProtocol::new(u32::from(ETHERTYPE.to_be()))
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?,
        );
        let fd = rustix::net::socket(AddressFamily::PACKET, SocketType::RAW, Some(proto))
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETHERTYPE.to_be();
        sll.sll_ifindex = i32::try_from(ifindex).unwrap_or(i32::MAX);
        // SAFETY: `sll` is a live, initialized sockaddr_ll and the length passed is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Sends one whole Ethernet frame.
    ///
    /// # Errors
    /// The kernel's errno.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{frame, PacketSocket, Side};
    /// use std::time::Duration;
    /// let peer = PacketSocket::bind(4)?;
    /// peer.send(&frame(Side::A.mac(), Side::B.mac(), &[0; 46]))?;
    /// # Ok(()) }
    /// ```
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        rustix::net::send(&self.fd, frame, SendFlags::empty())
            .map(|_| ())
            .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))
    }

    /// Receives one frame into `buf`, waiting at most `timeout`; returns its length.
    ///
    /// # Errors
    /// `EAGAIN` (`WouldBlock`) when nothing came in time; else the kernel's errno.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{frame, PacketSocket, Side};
    /// use std::time::Duration;
    /// let peer = PacketSocket::bind(4)?;
    /// let mut buf = [0; 2048];
    /// let n = peer.recv(&mut buf, Duration::from_secs(1))?;
    /// # Ok(()) }
    /// ```
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let os = |e: rustix::io::Errno| io::Error::from_raw_os_error(e.raw_os_error());
        sockopt::set_socket_timeout(&self.fd, sockopt::Timeout::Recv, Some(timeout)).map_err(os)?;
        rustix::net::recv(&self.fd, buf, RecvFlags::empty())
            .map(|(n, _)| n)
            .map_err(os)
    }
}

/// An Ethernet frame `dst, src, ETHERTYPE, payload`.
///
/// # Examples
/// ```
/// use pktmap_testbed::{frame, Side, ETHERTYPE};
/// let f = frame(Side::A.mac(), Side::B.mac(), b"hi");
/// assert_eq!(&f[12..14], &ETHERTYPE.to_be_bytes());
/// assert_eq!(&f[14..], b"hi");
/// ```
pub fn frame(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(payload);
    f
}
