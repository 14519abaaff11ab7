//! The veth pair the packet cells run on, made with rtnetlink in the calling thread's network
//! namespace (no `ip` binary: the guest has only busybox), and the counters a cell reads
//! around a repetition: a device's `/proc/net/dev` line, softnet's drops and the CPU ticks of
//! `/proc/stat`.
//!
//! Everything is read through `/proc/thread-self/net`, the namespace of the calling thread,
//! which is the one [`super::run`] made for the run.

use rustix::fd::OwnedFd;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFF_UP: u32 = 1;
/// `NLA_F_NESTED`: set on nested attributes, as iproute2 does.
const NLA_F_NESTED: u16 = 0x8000;

/// One rtnetlink request being built: `nlmsghdr`, `ifinfomsg`, attributes.
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(ty: u16, flags: u16, ifindex: i32, ifi_flags: u32, change: u32) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched in `finish`
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel's
        let mut r = Self { buf };
        r.ifinfo(ifindex, ifi_flags, change);
        r
    }

    /// `struct ifinfomsg` (16 bytes).
    fn ifinfo(&mut self, ifindex: i32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[0, 0, 0, 0]); // family, pad, type
        self.buf.extend_from_slice(&ifindex.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn name(&mut self, name: &str) {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        self.attr(IFLA_IFNAME, &z);
    }

    /// Opens a nested attribute; [`close`](Self::close) writes its length.
    fn open(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn close(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Sends one request and waits for its acknowledgement; the kernel's errno on refusal.
fn talk(req: Request) -> io::Result<()> {
    let fd: OwnedFd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE is protocol 0
    )?;
    let kernel = SocketAddrNetlink::new(0, 0);
    rustix::net::sendto(&fd, &req.finish(), SendFlags::empty(), &kernel)?;
    let mut buf = [0u8; 4096];
    let (n, _) = rustix::net::recv(&fd, &mut buf, RecvFlags::empty())?;
    parse_ack(&buf[..n])
}

/// The errno of an `NLMSG_ERROR` acknowledgement (0: success).
fn parse_ack(msg: &[u8]) -> io::Result<()> {
    let word = |at: usize| -> Option<[u8; 4]> { msg.get(at..at + 4)?.try_into().ok() };
    let ty = msg
        .get(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes);
    match (ty, word(16).map(i32::from_ne_bytes)) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(e)) => Err(io::Error::from_raw_os_error(-e)),
        _ => Err(io::Error::other(format!(
            "rtnetlink: unexpected reply of {} bytes",
            msg.len()
        ))),
    }
}

/// A veth pair `a`—`b` in the calling thread's network namespace, both ends up, IPv6 off
/// (so nothing but the bench's frames crosses it); deleted on drop (and with the namespace).
#[derive(Debug)]
pub struct Veth {
    /// The end the mechanisms attach to: where RX frames arrive and TX frames leave.
    pub a: Link,
    /// The peer: where pktgen's `start_xmit` sends from, and TX frames arrive.
    pub b: Link,
}

/// One end of a [`Veth`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The interface name.
    pub name: String,
    /// Its index in the namespace.
    pub ifindex: u32,
    /// Its MAC address (locally administered).
    pub mac: [u8; 6],
}

impl Link {
    /// The MAC address as `02:70:6b:…`.
    pub fn mac_str(&self) -> String {
        self.mac.map(|b| format!("{b:02x}")).join(":")
    }
}

fn ifindex(name: &str) -> io::Result<u32> {
    let sock = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE is protocol 0
    )?;
    Ok(rustix::net::netdevice::name_to_index(&sock, name)?)
}

impl Veth {
    /// Makes the pair `a`—`b` (names of at most 15 bytes) and sets both ends up.
    ///
    /// # Errors
    /// The rtnetlink errno (`EEXIST` if a name is taken, `EOPNOTSUPP` without veth, `EPERM`
    /// without `CAP_NET_ADMIN`).
    pub fn new(a: &str, b: &str) -> io::Result<Self> {
        let (mac_a, mac_b) = (
            [0x02, 0x70, 0x6b, 0, 0, 0x0a],
            [0x02, 0x70, 0x6b, 0, 0, 0x0b],
        );
        let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0, 0);
        r.name(a);
        r.attr(IFLA_ADDRESS, &mac_a);
        let info = r.open(IFLA_LINKINFO);
        r.attr(IFLA_INFO_KIND, b"veth");
        let data = r.open(IFLA_INFO_DATA);
        let peer = r.open(VETH_INFO_PEER);
        r.ifinfo(0, 0, 0);
        r.name(b);
        r.attr(IFLA_ADDRESS, &mac_b);
        r.close(peer);
        r.close(data);
        r.close(info);
        talk(r)?;
        let mut veth = Veth {
            a: Link {
                name: a.into(),
                ifindex: ifindex(a)?,
                mac: mac_a,
            },
            b: Link {
                name: b.into(),
                ifindex: ifindex(b)?,
                mac: mac_b,
            },
        };
        for link in [&veth.a, &veth.b] {
            // No IPv6 on either end: no router solicitation or DAD frame in any count. A
            // kernel without IPv6 has no such file, and sends none.
            let knob = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", link.name);
            if std::path::Path::new(&knob).exists() {
                std::fs::write(&knob, "1")?;
            }
        }
        for link in [&mut veth.a, &mut veth.b] {
            talk(Request::new(
                RTM_NEWLINK,
                0,
                i32::try_from(link.ifindex).unwrap_or(0),
                IFF_UP,
                IFF_UP,
            ))?;
        }
        Ok(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let index = i32::try_from(self.a.ifindex).unwrap_or(0);
        // Deleting one end deletes the pair.
        if let Err(e) = talk(Request::new(RTM_DELLINK, 0, index, 0, 0)) {
            eprintln!("pktmap bench: could not delete {}: {e}", self.a.name);
        }
    }
}

/// A device's counters as `/proc/net/dev` has them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevCounters {
    /// `rx_packets`.
    pub rx_packets: u64,
    /// `rx_dropped`.
    pub rx_dropped: u64,
    /// `tx_packets`.
    pub tx_packets: u64,
    /// `tx_dropped` (veth: frames its peer's backlog refused).
    pub tx_dropped: u64,
}

impl DevCounters {
    /// The counters of `name` in the calling thread's namespace.
    ///
    /// # Errors
    /// `ENODEV` if the file has no such device; the read's errno.
    pub fn read(name: &str) -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev")?;
        Self::parse(&text, name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Parses `name`'s line of a `/proc/net/dev` text.
    pub fn parse(text: &str, name: &str) -> Option<Self> {
        let line = text.lines().find_map(|l| {
            let (dev, rest) = l.split_once(':')?;
            (dev.trim() == name).then_some(rest)
        })?;
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets
        // errs drop ...
        Some(Self {
            rx_packets: *v.get(1)?,
            rx_dropped: *v.get(3)?,
            tx_packets: *v.get(9)?,
            tx_dropped: *v.get(11)?,
        })
    }

    /// The counts since `before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            rx_packets: self.rx_packets.wrapping_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.wrapping_sub(before.rx_dropped),
            tx_packets: self.tx_packets.wrapping_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.wrapping_sub(before.tx_dropped),
        }
    }
}

/// Frames softnet dropped (backlog full), summed over CPUs: `/proc/net/softnet_stat`'s
/// second column. Machine-wide: a cross-check of a veth's `tx_dropped`, never added to it.
///
/// # Errors
/// The read's errno, or `EINVAL` for a file it cannot parse.
pub fn softnet_dropped() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/softnet_stat")?;
    parse_softnet(&text).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

fn parse_softnet(text: &str) -> Option<u64> {
    text.lines()
        .map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

/// The machine's CPU ticks (`USER_HZ`) from `/proc/stat`'s `cpu` line: busy (user, nice,
/// system, irq, softirq, steal), of which softirq, and idle (idle, iowait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    /// Every tick not idle.
    pub busy: u64,
    /// Ticks in softirq (where veth's backlog and the copies into rings run).
    pub softirq: u64,
    /// Idle and iowait ticks.
    pub idle: u64,
}

impl Ticks {
    /// Reads `/proc/stat`.
    ///
    /// # Errors
    /// The read's errno, or `EINVAL` for a file it cannot parse.
    pub fn read() -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/stat")?;
        Self::parse(&text).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn parse(text: &str) -> Option<Self> {
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        Some(Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
            softirq: at(6),
            idle: at(3) + at(4),
        })
    }

    /// The ticks since `before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            softirq: self.softirq.saturating_sub(before.softirq),
            idle: self.idle.saturating_sub(before.idle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev_line() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n \
            pkta: 6000 100 0 3 0 0 0 0 9000 150 0 7 0 0 0 0\n";
        let c = DevCounters::parse(text, "pkta").unwrap();
        assert_eq!(
            (c.rx_packets, c.rx_dropped, c.tx_packets, c.tx_dropped),
            (100, 3, 150, 7)
        );
        assert!(DevCounters::parse(text, "pktb").is_none());
        let d = c.since(&DevCounters {
            rx_packets: 40,
            ..DevCounters::default()
        });
        assert_eq!(d.rx_packets, 60);
    }

    #[test]
    fn softnet_and_stat() {
        let softnet = "0000a000 0000000f 00000000\n00000001 00000010 00000000\n";
        assert_eq!(parse_softnet(softnet), Some(0x1f));
        let stat = "cpu  10 1 20 300 4 5 6 7 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        let t = Ticks::parse(stat).unwrap();
        assert_eq!(
            (t.busy, t.softirq, t.idle),
            (10 + 1 + 20 + 5 + 6 + 7, 6, 304)
        );
    }

    #[test]
    fn rtnetlink_messages() {
        let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE, 0, 0, 0);
        let at = r.open(IFLA_LINKINFO);
        r.attr(IFLA_INFO_KIND, b"veth");
        r.close(at);
        let m = r.finish();
        // 16 (nlmsghdr) + 16 (ifinfomsg) + 4 (nest) + 8 ("veth", padded)
        assert_eq!(m.len(), 44);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()), 44);
        assert_eq!(u16::from_ne_bytes(m[32..34].try_into().unwrap()), 12);
        let mut ack = vec![0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(parse_ack(&ack).is_ok());
        ack[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(
            parse_ack(&ack).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        assert!(parse_ack(&ack[..8]).is_err());
    }
}
