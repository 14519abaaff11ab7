//! Packets (driver/kmod/README.md, "Packets"; driver/abi/src/packet.rs): `ATTACH` refusals,
//! frames byte-exact through RX (sent by an `AF_PACKET` socket on the peer veth) and TX, exact
//! loss accounting on a full ring, bad indices counted and never followed, steal and mirror
//! mode, a shared skb (an `ETH_P_ALL` tap) left unmodified, need-wakeup and `poll(2)`, the
//! device deleted while attached, a network namespace torn down while attached, `rmmod`
//! refused while attached, and detach racing traffic (the debug track runs this under KASAN
//! and lockdep).
//!
//! The veth pairs are made here over rtnetlink (the guest has busybox, not iproute2), in the
//! guest's own network namespace, with IPv6 off so the stack sends nothing of its own: every
//! frame a ring sees is one these checks sent. Every wait is bounded in time.
#![allow(unsafe_code)]

use crate::utils::{back_to_baseline, eventually, kernel_config, state, Report};
use pktmap::device::{Device, RingCreate};
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, Mapping};
use pktmap_abi::ioctl::ResourceId;
use pktmap_abi::packet::{
    self as pk, counter, desc_at, Attach, PacketDesc, PacketRingHeader, ATTACH, ATTACH_MIRROR,
    CONSUMER_OFFSET, COUNTERS_OFFSET, DETACH, KICK, PRODUCER_OFFSET, RING_PACKET, WAKEUP_OFFSET,
};
use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// The ethertype of the frames these checks send (IEEE local experimental 1).
const ETHERTYPE: u16 = 0x88b5;
/// How long a frame may take to arrive (TCG guests are slow; nothing waits this long when all
/// is well).
const WAIT: Duration = Duration::from_secs(10);

/// `pktmap-guest check`'s packet checks.
pub fn run(r: &mut Report) {
    let Ok(dev) = Device::open() else {
        return r.check("packets: open /dev/pktmap", false, "open failed");
    };
    let base = state(&dev);
    ipv6_off();
    refusals(r, &dev);
    let veth = match Veth::new("pkm0", "pkm1") {
        Ok(v) => v,
        Err(e) => return r.check("packets: a veth pair over rtnetlink", false, e),
    };
    rx_byte_exact(r, &dev, &veth);
    ring_full(r, &dev, &veth);
    bad_indices(r, &dev, &veth);
    mirror_and_tap(r, &dev, &veth);
    wakeup(r, &dev, &veth);
    tx_byte_exact(r, &dev, &veth);
    rmmod_refused(r, &dev, &veth);
    detach_races_traffic(r, &dev, &veth);
    drop(veth);
    device_deleted(r, &dev);
    netns_torn_down(r, &dev);
    back_to_baseline(r, "packets", &dev, &base);
}

// --- rtnetlink, packet sockets, the ioctls --------------------------------------------------

/// Turns IPv6 off for new devices (if the kernel has it), so no device sends router
/// solicitations or MLD reports of its own.
fn ipv6_off() {
    for f in [
        "/proc/sys/net/ipv6/conf/default/disable_ipv6",
        "/proc/sys/net/ipv6/conf/all/disable_ipv6",
    ] {
        let _ = std::fs::write(f, "1");
    }
}

fn nl_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// `struct ifinfomsg` with `index`, and IFF_UP set if `up`.
fn ifinfomsg(index: i32, up: bool) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    if up {
        m[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        m[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    }
    m
}

/// Sends one rtnetlink request and waits for its acknowledgement.
fn rtnetlink(ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
    // SAFETY: Plain socket call.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut msg = Vec::new();
    let len = 16 + body.len();
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(
        &(flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16).to_ne_bytes(),
    );
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(body);
    // SAFETY: All-zero is a valid `sockaddr_nl`: pid 0, the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: `msg` is valid for its length and `kernel` is a valid `sockaddr_nl`.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ack = [0u8; 4096];
    // SAFETY: `ack` is valid for writes of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0) };
    if n < 20 {
        return Err(io::Error::other("short rtnetlink reply"));
    }
    let kind = u16::from_ne_bytes([ack[4], ack[5]]);
    let err = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
    if kind != libc::NLMSG_ERROR as u16 {
        return Err(io::Error::other(format!("rtnetlink reply type {kind}")));
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(-err));
    }
    Ok(())
}

fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// Creates a veth pair `a`–`b`, both up, in the current network namespace.
fn veth_add(a: &str, b: &str) -> io::Result<(u32, u32)> {
    let name = |n: &str| [n.as_bytes(), b"\0"].concat();
    let mut peer = ifinfomsg(0, false);
    nl_attr(&mut peer, libc::IFLA_IFNAME, &name(b));
    let mut data = Vec::new();
    nl_attr(&mut data, 1, &peer); // VETH_INFO_PEER
    let mut info = Vec::new();
    nl_attr(&mut info, libc::IFLA_INFO_KIND, b"veth\0");
    nl_attr(&mut info, libc::IFLA_INFO_DATA, &data);
    let mut body = ifinfomsg(0, false);
    nl_attr(&mut body, libc::IFLA_IFNAME, &name(a));
    nl_attr(&mut body, libc::IFLA_LINKINFO, &info);
    let create = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    rtnetlink(libc::RTM_NEWLINK, create, &body)?;
    let (ia, ib) = (ifindex(a)?, ifindex(b)?);
    // Up afterwards: a veth cannot open before its peer is linked (`ENOTCONN`).
    for i in [ia, ib] {
        rtnetlink(libc::RTM_NEWLINK, 0, &ifinfomsg(i as i32, true))?;
    }
    Ok((ia, ib))
}

/// Deletes a link (a veth's peer goes with it).
fn link_del(index: u32) -> io::Result<()> {
    rtnetlink(libc::RTM_DELLINK, 0, &ifinfomsg(index as i32, false))
}

/// A veth pair: `a` is where rings attach, `b` the peer that sends and receives.
struct Veth {
    a: u32,
    b: u32,
}

impl Veth {
    fn new(a: &str, b: &str) -> io::Result<Self> {
        let (a, b) = veth_add(a, b)?;
        Ok(Self { a, b })
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = link_del(self.a);
    }
}

/// An `AF_PACKET` raw socket bound to `ifindex` for `proto` (`ETH_P_ALL` is a tap that sees
/// every frame before any RX handler; any other protocol sees only what the stack is given).
struct PacketSocket(OwnedFd);

impl PacketSocket {
    fn bind(ifindex: u32, proto: u16) -> io::Result<Self> {
        let proto_be = proto.to_be();
        // SAFETY: Plain socket call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto_be)) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new socket we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: All-zero is a valid `sockaddr_ll`.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto_be;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid `sockaddr_ll` of the given size.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: `tv` is a valid `timeval` for `SO_RCVTIMEO`.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            )
        };
        Ok(Self(sock))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for its length.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n == frame.len() as isize {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The next frame, or `None` after the receive timeout (200 ms).
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        (n >= 0).then(|| {
            buf.truncate(n as usize);
            buf
        })
    }
}

/// Frame `seq` of `len` bytes: broadcast, a fixed source, [`ETHERTYPE`], then a pattern that
/// depends on `seq`, so every frame is told apart by its bytes.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0x70, 0x6b, 0, 0, 0x0b]);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    let mut i = 0u32;
    while f.len() < len {
        f.push((seq.wrapping_mul(31).wrapping_add(i) % 251) as u8);
        i += 1;
    }
    f.truncate(len);
    f
}

fn ioctl<T>(dev: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `arg` is a valid, writable argument struct of the request's size.
    let rc = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            cmd as _,
            (arg as *mut T).cast::<libc::c_void>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn attach(dev: &Device, mut req: Attach) -> io::Result<u32> {
    ioctl(dev.as_fd(), ATTACH, &mut req)?;
    Ok(req.id)
}

fn detach(dev: &Device, id: u32) -> io::Result<()> {
    ioctl(dev.as_fd(), DETACH, &mut ResourceId { id }).map(|_| ())
}

fn kick(dev: &Device, id: u32) -> io::Result<i32> {
    ioctl(dev.as_fd(), KICK, &mut ResourceId { id })
}

fn errno_of<T>(r: io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// A pool and a packet ring (or two) on it, mapped.
struct Rig {
    pool: u32,
    pool_map: Mapping,
    buf_size: usize,
    rings: Vec<(u32, Mapping, u32)>,
}

impl Rig {
    fn new(dev: &Device, buf_size: u32, bufs: u32, ring_entries: &[u32]) -> io::Result<Self> {
        let pool = PoolOptions::new(buf_size, bufs)
            .create(dev)
            .map_err(io::Error::other)?;
        let pool_map = dev
            .map(
                ResourceType::Pool,
                pool.id,
                pool.bytes as usize,
                MapFlags::empty(),
            )
            .map_err(io::Error::other)?;
        let mut rings = Vec::new();
        for &entries in ring_entries {
            let info = dev
                .create_ring_raw(RingCreate {
                    entries,
                    pool_id: pool.id,
                    flags: RING_PACKET,
                    id: 0,
                })
                .map_err(io::Error::other)?;
            let m = dev
                .map_ring(info.id, MapFlags::empty())
                .map_err(io::Error::other)?;
            rings.push((info.id, m, entries));
        }
        Ok(Self {
            pool: pool.id,
            pool_map,
            buf_size: buf_size as usize,
            rings,
        })
    }

    fn ring(&self, i: usize) -> Ring<'_> {
        let (id, m, entries) = &self.rings[i];
        Ring {
            id: *id,
            m,
            entries: *entries,
        }
    }

    /// The first `len` bytes of buffer `buf`.
    fn buffer(&self, buf: u32, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.pool_map
            .read_at(buf as usize * self.buf_size, &mut out)
            .expect("a buffer inside the pool");
        out
    }

    fn write_buffer(&self, buf: u32, bytes: &[u8]) {
        self.pool_map
            .write_at(buf as usize * self.buf_size, bytes)
            .expect("a buffer inside the pool");
    }

    fn destroy(self, dev: &Device) -> bool {
        let ids: Vec<u32> = self.rings.iter().map(|(id, _, _)| *id).collect();
        drop(self.rings);
        drop(self.pool_map);
        ids.iter().all(|id| dev.destroy_ring(*id).is_ok()) && dev.destroy_pool(self.pool).is_ok()
    }
}

/// A mapped packet ring's words, read and written as the program's side of the protocol.
struct Ring<'a> {
    id: u32,
    m: &'a Mapping,
    entries: u32,
}

impl Ring<'_> {
    fn word(&self, offset: u64) -> &AtomicU32 {
        let p = self
            .m
            .ptr_at(offset as usize, 4, 4)
            .expect("a word of the ring");
        // SAFETY: `ptr_at` checked the 4 aligned bytes lie inside the mapping, which outlives
        // `self`; the driver writes them only with single aligned stores.
        unsafe { &*p.cast::<AtomicU32>() }
    }

    fn producer(&self) -> u32 {
        self.word(PRODUCER_OFFSET).load(Ordering::Acquire)
    }

    fn consumer(&self) -> u32 {
        self.word(CONSUMER_OFFSET).load(Ordering::Acquire)
    }

    fn set_consumer(&self, v: u32) {
        self.word(CONSUMER_OFFSET).store(v, Ordering::Release);
    }

    fn set_producer(&self, v: u32) {
        self.word(PRODUCER_OFFSET).store(v, Ordering::Release);
    }

    fn counter(&self, which: u32) -> u64 {
        let mut b = [0u8; 8];
        self.m
            .read_at(COUNTERS_OFFSET as usize + 8 * which as usize, &mut b)
            .expect("a counter");
        u64::from_ne_bytes(b)
    }

    fn desc(&self, index: u32) -> PacketDesc {
        let at = desc_at(self.entries, index) as usize;
        let w = |i: usize| self.word((at + 4 * i) as u64).load(Ordering::Acquire);
        let (buf, len, wire_len, fv) = (w(0), w(1), w(2), w(3));
        PacketDesc {
            buf,
            len,
            wire_len,
            flags: fv as u16,
            vlan_tci: (fv >> 16) as u16,
        }
    }

    fn set_desc(&self, index: u32, d: PacketDesc) {
        let at = desc_at(self.entries, index) as usize;
        let w = |i: usize, v: u32| self.word((at + 4 * i) as u64).store(v, Ordering::Relaxed);
        w(0, d.buf);
        w(1, d.len);
        w(2, d.wire_len);
        w(3, u32::from(d.flags) | u32::from(d.vlan_tci) << 16);
    }

    /// RX counters that account for every frame the handler saw.
    fn rx_seen(&self) -> u64 {
        [
            counter::RX_PACKETS,
            counter::RX_RING_FULL,
            counter::RX_INVALID_DESC,
            counter::RX_COPY_ERRORS,
        ]
        .iter()
        .map(|&c| self.counter(c))
        .sum()
    }
}

fn rx_attach(veth: &Veth, rig: &Rig, ring: u32, flags: u32) -> Attach {
    Attach {
        ifindex: veth.a,
        pool_id: rig.pool,
        rx_ring: ring,
        flags,
        ..Default::default()
    }
}

// --- the checks -----------------------------------------------------------------------------

/// `ATTACH` refusals (abi::packet::check_attach, and the device lookup), each with its errno.
fn refusals(r: &mut Report, dev: &Device) {
    let rig = match Rig::new(dev, 2048, 48, &[32, 32]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets: a pool and two packet rings", false, e),
    };
    let (r1, r2) = (rig.ring(0), rig.ring(1));
    let h = {
        let mut b = [0u8; size_of::<PacketRingHeader>()];
        r1.m.read_at(0, &mut b).expect("the header");
        let w = |i: usize| u32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        PacketRingHeader {
            magic: w(0),
            version: w(1),
            entries: w(2),
            pool_id: w(3),
            producer_offset: w(4),
            consumer_offset: w(5),
            wakeup_offset: w(6),
            counters_offset: w(7),
            counter_words: w(8),
            desc_offset: w(9),
            desc_size: w(10),
            reserved: w(11),
        }
    };
    r.check(
        "packets: RING_CREATE RING_PACKET writes the version-1 header, slot i names buffer i",
        h == PacketRingHeader::new(32, rig.pool)
            && (0..32).all(|i| r1.desc(i).buf == i)
            && r1.producer() == 0
            && r1.consumer() == 0,
        format!("{h:?}"),
    );
    let info = dev.ring_info(r1.id).expect("RING_INFO");
    r.check(
        "packets: RING_INFO of a packet ring: flags RING_PACKET, a header page and 16-byte slots",
        info.flags == RING_PACKET && info.bytes == 4096 + 4096,
        format!("{info:?}"),
    );
    let lo = ifindex("lo").unwrap_or(1);
    let base = Attach {
        ifindex: lo,
        pool_id: rig.pool,
        rx_ring: r1.id,
        ..Default::default()
    };
    let old_ring = dev.create_ring(32, rig.pool).expect("a flags-0 ring");
    let small = PoolOptions::new(2048, 16)
        .create(dev)
        .expect("a small pool");
    let small_ring = dev
        .create_ring_raw(RingCreate {
            entries: 32,
            pool_id: small.id,
            flags: RING_PACKET,
            id: 0,
        })
        .expect("a ring on the small pool");
    let other = Device::open().expect("a second open");
    let cases: [(&str, Attach, i32); 11] = [
        ("an unknown flag", Attach { flags: 2, ..base }, libc::EINVAL),
        (
            "reserved set",
            Attach {
                reserved: 1,
                ..base
            },
            libc::EINVAL,
        ),
        ("no ring", Attach { rx_ring: 0, ..base }, libc::EINVAL),
        (
            "one ring as RX and TX",
            Attach {
                tx_ring: r1.id,
                ..base
            },
            libc::EINVAL,
        ),
        (
            "an unknown ring",
            Attach {
                rx_ring: 999,
                ..base
            },
            libc::EINVAL,
        ),
        (
            "a flags-0 ring",
            Attach {
                rx_ring: old_ring.id,
                ..base
            },
            libc::EINVAL,
        ),
        (
            "a ring of another pool",
            Attach {
                pool_id: small.id,
                ..base
            },
            libc::EINVAL,
        ),
        (
            "a pool too small (16 buffers, 32 slots)",
            Attach {
                pool_id: small.id,
                rx_ring: small_ring.id,
                ..base
            },
            libc::EINVAL,
        ),
        ("ifindex 0", Attach { ifindex: 0, ..base }, libc::ENODEV),
        (
            "an ifindex no device has",
            Attach {
                ifindex: 99_999,
                ..base
            },
            libc::ENODEV,
        ),
        (
            "32 RX + 32 TX slots on 48 buffers",
            Attach {
                tx_ring: r2.id,
                ..base
            },
            libc::EINVAL,
        ),
    ];
    for (what, req, want) in cases {
        r.check(
            &format!("packets: ATTACH {what}: {}", crate::sys::errno_name(want)),
            errno_of(attach(dev, req)) == Some(want),
            format!("{:?}", attach(dev, req)),
        );
    }
    r.check(
        "packets: ATTACH of a ring of another open file: EINVAL (ids are per file)",
        errno_of(attach(&other, base)) == Some(libc::EINVAL),
        "",
    );
    let ro = crate::sys::open_device(libc::O_RDONLY).expect("a read-only open");
    let mut req = base;
    r.check(
        "packets: ATTACH on a read-only open: EBADF",
        errno_of(ioctl(ro.as_fd(), ATTACH, &mut req)) == Some(libc::EBADF),
        "",
    );
    r.check(
        "packets: DETACH and KICK of an unknown id: EINVAL",
        errno_of(detach(dev, 77)) == Some(libc::EINVAL)
            && errno_of(kick(dev, 77)) == Some(libc::EINVAL),
        "",
    );
    // Attach twice: the ring, then the device (loopback has no RX handler but ours).
    match attach(dev, base) {
        Ok(id) => {
            r.check("packets: ATTACH an RX ring to lo", true, "");
            r.check(
                "packets: ATTACH the same ring twice: EBUSY",
                errno_of(attach(dev, base)) == Some(libc::EBUSY),
                "",
            );
            let other_ring = dev
                .create_ring_raw(RingCreate {
                    entries: 8,
                    pool_id: rig.pool,
                    flags: RING_PACKET,
                    id: 0,
                })
                .expect("a third ring");
            r.check(
                "packets: ATTACH a second RX ring to the same device: EBUSY",
                errno_of(attach(
                    dev,
                    Attach {
                        rx_ring: other_ring.id,
                        ..base
                    },
                )) == Some(libc::EBUSY),
                "",
            );
            r.check(
                "packets: RING_DESTROY of an attached ring: EBUSY",
                dev.destroy_ring(r1.id).err().and_then(|e| e.raw_os_error()) == Some(libc::EBUSY),
                "",
            );
            r.check(
                "packets: KICK of an RX-only attachment: EINVAL",
                errno_of(kick(dev, id)) == Some(libc::EINVAL),
                "",
            );
            r.check("packets: DETACH", detach(dev, id).is_ok(), "");
            r.check(
                "packets: the second DETACH: EINVAL",
                errno_of(detach(dev, id)) == Some(libc::EINVAL),
                "",
            );
            let _ = dev.destroy_ring(other_ring.id);
        }
        Err(e) => r.check("packets: ATTACH an RX ring to lo", false, e),
    }
    drop(other);
    let _ = dev.destroy_ring(old_ring.id);
    let _ = dev.destroy_ring(small_ring.id);
    let _ = dev.destroy_pool(small.id);
    r.check(
        "packets: rings and pool destroyed after DETACH",
        rig.destroy(dev),
        "",
    );
}

/// Sends `n` frames of `len` bytes (sequence numbers from `first`) on `sock`.
fn send_frames(sock: &PacketSocket, first: u32, n: u32, len: usize) -> io::Result<()> {
    for seq in first..first + n {
        sock.send(&frame(seq, len))?;
    }
    Ok(())
}

/// Frames through RX byte-exact: lengths from the shortest to a full buffer, and one past it
/// (delivered cut, `DESC_TRUNCATED`, `RX_OVERSIZE`); steal mode: the stack sees none.
fn rx_byte_exact(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 1024, 64, &[64]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets rx: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let (peer, stack) = match (
        PacketSocket::bind(veth.b, ETHERTYPE),
        PacketSocket::bind(veth.a, ETHERTYPE),
    ) {
        (Ok(p), Ok(s)) => (p, s),
        (p, s) => {
            return r.check(
                "packets rx: packet sockets",
                false,
                format!("{:?} {:?}", p.err(), s.err()),
            )
        }
    };
    let id = match attach(dev, rx_attach(veth, &rig, ring.id, 0)) {
        Ok(id) => id,
        Err(e) => return r.check("packets rx: ATTACH an RX ring to the veth", false, e),
    };
    // Up to the veth's MTU (1500 + 14); 1025 and 1514 are longer than a 1024-byte buffer.
    let lens = [14usize, 60, 61, 64, 100, 1000, 1024, 1025, 1514];
    let sent = send_frames_lens(&peer, &lens);
    let n = lens.len() as u32;
    let arrived = eventually(WAIT, || ring.producer() == n);
    r.check(
        "packets rx: every frame sent on the peer lands in the ring",
        sent.is_ok() && arrived,
        format!("{sent:?}, producer {}", ring.producer()),
    );
    let mut exact = true;
    let mut detail = String::new();
    for (i, &len) in lens.iter().enumerate() {
        let d = ring.desc(i as u32);
        let want = frame(i as u32, len);
        let kept = len.min(1024);
        let truncated = len > 1024;
        let ok = d.buf == i as u32
            && d.len as usize == kept
            && d.wire_len as usize == len
            && (d.flags & pk::DESC_TRUNCATED != 0) == truncated
            && rig.buffer(d.buf, kept) == want[..kept];
        if !ok {
            exact = false;
            detail = format!("frame {i} ({len} B): {d:?}");
        }
    }
    r.check(
        "packets rx: frames byte-exact, lengths and the truncated flag right",
        exact,
        detail,
    );
    r.check(
        "packets rx: counters: RX_PACKETS, RX_BYTES, RX_OVERSIZE (one frame past the buffer)",
        ring.counter(counter::RX_PACKETS) == u64::from(n)
            && ring.counter(counter::RX_BYTES)
                == lens.iter().map(|&l| l.min(1024) as u64).sum::<u64>()
            && ring.counter(counter::RX_OVERSIZE) == 2
            && ring.counter(counter::RX_RING_FULL) == 0,
        format!(
            "{:?}",
            (0..counter::COUNT)
                .map(|c| ring.counter(c))
                .collect::<Vec<_>>()
        ),
    );
    r.check(
        "packets rx: steal mode: the stack (an ETHERTYPE socket on the attached device) sees none",
        stack.recv().is_none(),
        "",
    );
    ring.set_consumer(n);
    r.check("packets rx: DETACH", detach(dev, id).is_ok(), "");
    r.check(
        "packets rx: after DETACH the stack sees frames again and the ring none",
        send_frames(&peer, 100, 1, 60).is_ok()
            && stack.recv().is_some_and(|f| f == frame(100, 60))
            && ring.producer() == n,
        format!("producer {}", ring.producer()),
    );
    r.check("packets rx: ring and pool destroyed", rig.destroy(dev), "");
}

fn send_frames_lens(sock: &PacketSocket, lens: &[usize]) -> io::Result<()> {
    for (i, &len) in lens.iter().enumerate() {
        sock.send(&frame(i as u32, len))?;
    }
    Ok(())
}

/// A full ring: delivered + dropped == sent, exactly, and the ring resumes where it stopped.
fn ring_full(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets full: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(peer) = PacketSocket::bind(veth.b, ETHERTYPE) else {
        return r.check("packets full: packet socket", false, "");
    };
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, 0)) else {
        return r.check("packets full: ATTACH", false, "");
    };
    let sent = 50u32;
    let ok = send_frames(&peer, 0, sent, 60).is_ok();
    let settled = eventually(WAIT, || ring.rx_seen() == u64::from(sent));
    r.check(
        "packets full: 50 frames into 8 slots: 8 delivered, 42 counted RX_RING_FULL, none lost",
        ok && settled
            && ring.counter(counter::RX_PACKETS) == 8
            && ring.counter(counter::RX_RING_FULL) == 42
            && ring.producer() == 8,
        format!(
            "delivered {}, full {}, producer {}",
            ring.counter(counter::RX_PACKETS),
            ring.counter(counter::RX_RING_FULL),
            ring.producer()
        ),
    );
    let first8 = (0..8).all(|i| rig.buffer(ring.desc(i).buf, 60) == frame(i, 60));
    r.check(
        "packets full: the 8 delivered are the first 8 sent",
        first8,
        "",
    );
    // Release 3 slots: the next 3 frames land in them, the 4th is dropped.
    ring.set_consumer(3);
    let ok = send_frames(&peer, 1000, 4, 60).is_ok();
    let settled = eventually(WAIT, || ring.rx_seen() == u64::from(sent) + 4);
    r.check(
        "packets full: 3 slots released: 3 more delivered, 1 more dropped, counters only grow",
        ok && settled
            && ring.counter(counter::RX_PACKETS) == 11
            && ring.counter(counter::RX_RING_FULL) == 43
            && (8..11).all(|i| rig.buffer(ring.desc(i).buf, 60) == frame(1000 + i - 8, 60)),
        format!(
            "delivered {}, full {}",
            ring.counter(counter::RX_PACKETS),
            ring.counter(counter::RX_RING_FULL)
        ),
    );
    let _ = detach(dev, id);
    // A new attachment of the same ring keeps its counters and indices.
    let again = attach(dev, rx_attach(veth, &rig, ring.id, 0));
    r.check(
        "packets full: re-attached, the ring's counters are never cleared",
        again.is_ok() && ring.counter(counter::RX_PACKETS) == 11 && ring.producer() == 11,
        format!("{again:?}"),
    );
    if let Ok(id) = again {
        let _ = detach(dev, id);
    }
    r.check(
        "packets full: ring and pool destroyed",
        rig.destroy(dev),
        "",
    );
}

/// Indices the program writes are checked: a slot naming no buffer of the pool, a consumer
/// ahead of the producer; each counted, the frame dropped, nothing written out of bounds.
fn bad_indices(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets bad: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(peer) = PacketSocket::bind(veth.b, ETHERTYPE) else {
        return r.check("packets bad: packet socket", false, "");
    };
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, 0)) else {
        return r.check("packets bad: ATTACH", false, "");
    };
    ring.set_desc(
        0,
        PacketDesc {
            buf: 16,
            ..Default::default()
        },
    );
    let ok = send_frames(&peer, 0, 1, 60).is_ok();
    let seen = eventually(WAIT, || ring.rx_seen() == 1);
    r.check(
        "packets bad: a slot naming buffer 16 of 16: counted RX_INVALID_DESC, not delivered",
        ok && seen && ring.counter(counter::RX_INVALID_DESC) == 1 && ring.producer() == 0,
        format!(
            "invalid {}, producer {}",
            ring.counter(counter::RX_INVALID_DESC),
            ring.producer()
        ),
    );
    ring.set_desc(
        0,
        PacketDesc {
            buf: u32::MAX,
            ..Default::default()
        },
    );
    let ok = send_frames(&peer, 1, 1, 60).is_ok();
    let seen = eventually(WAIT, || ring.rx_seen() == 2);
    r.check(
        "packets bad: a slot naming buffer 2^32-1: counted, not delivered",
        ok && seen && ring.counter(counter::RX_INVALID_DESC) == 2 && ring.producer() == 0,
        "",
    );
    // A swapped buffer: slot 0 names buffer 12 (the program's to give).
    ring.set_desc(
        0,
        PacketDesc {
            buf: 12,
            ..Default::default()
        },
    );
    let ok = send_frames(&peer, 2, 1, 60).is_ok();
    let seen = eventually(WAIT, || ring.producer() == 1);
    r.check(
        "packets bad: a slot naming another free buffer (a swap) is filled there",
        ok && seen && ring.desc(0).buf == 12 && rig.buffer(12, 60) == frame(2, 60),
        format!("{:?}", ring.desc(0)),
    );
    ring.set_consumer(5); // ahead of the producer (1)
    let ok = send_frames(&peer, 3, 1, 60).is_ok();
    let seen = eventually(WAIT, || ring.rx_seen() == 4);
    r.check(
        "packets bad: a consumer past the producer: counted RX_INVALID_DESC, nothing delivered",
        ok && seen && ring.counter(counter::RX_INVALID_DESC) == 3 && ring.producer() == 1,
        format!(
            "invalid {}, producer {}",
            ring.counter(counter::RX_INVALID_DESC),
            ring.producer()
        ),
    );
    ring.set_consumer(1);
    let ok = send_frames(&peer, 4, 1, 60).is_ok();
    let seen = eventually(WAIT, || ring.producer() == 2);
    r.check(
        "packets bad: a consumer put right: delivery resumes",
        ok && seen && rig.buffer(ring.desc(1).buf, 60) == frame(4, 60),
        "",
    );
    let _ = detach(dev, id);
    r.check("packets bad: ring and pool destroyed", rig.destroy(dev), "");
}

/// Mirror mode: the ring and the stack both get every frame. A tap (`ETH_P_ALL`) makes the
/// socket buffer shared when the RX handler runs; the tap's copy is byte-exact, so the handler
/// left the shared skb as it was, in steal mode too.
fn mirror_and_tap(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets mirror: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let socks = (
        PacketSocket::bind(veth.b, ETHERTYPE),
        PacketSocket::bind(veth.a, ETHERTYPE),
        PacketSocket::bind(veth.a, libc::ETH_P_ALL as u16),
    );
    let (Ok(peer), Ok(stack), Ok(tap)) = socks else {
        return r.check("packets mirror: packet sockets", false, "");
    };
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, ATTACH_MIRROR)) else {
        return r.check("packets mirror: ATTACH mirror", false, "");
    };
    let ok = send_frames(&peer, 7, 1, 300).is_ok();
    let got = eventually(WAIT, || ring.producer() == 1);
    r.check(
        "packets mirror: the ring, the stack and the tap each get the frame byte-exact",
        ok && got
            && rig.buffer(ring.desc(0).buf, 300) == frame(7, 300)
            && stack.recv().is_some_and(|f| f == frame(7, 300))
            && tap.recv().is_some_and(|f| f == frame(7, 300)),
        "",
    );
    let _ = detach(dev, id);
    ring.set_consumer(1);
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, 0)) else {
        return r.check("packets mirror: ATTACH steal", false, "");
    };
    let ok = send_frames(&peer, 8, 1, 300).is_ok();
    let got = eventually(WAIT, || ring.producer() == 2);
    r.check(
        "packets tap: steal mode with a tap (a shared skb): the tap's copy is byte-exact, the stack sees none",
        ok && got
            && rig.buffer(ring.desc(1).buf, 300) == frame(8, 300)
            && tap.recv().is_some_and(|f| f == frame(8, 300))
            && stack.recv().is_none(),
        "",
    );
    let _ = detach(dev, id);
    r.check(
        "packets mirror: ring and pool destroyed",
        rig.destroy(dev),
        "",
    );
}

/// Need-wakeup: a sleeper that set the word is woken by the next frame, once, and the word is
/// cleared; without the word, frames wake nobody (the poll times out) yet `POLLIN` is
/// reported while frames wait.
fn wakeup(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets wakeup: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(peer) = PacketSocket::bind(veth.b, ETHERTYPE) else {
        return r.check("packets wakeup: packet socket", false, "");
    };
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, 0)) else {
        return r.check("packets wakeup: ATTACH", false, "");
    };
    let poll = |ms: i32| {
        let mut p = libc::pollfd {
            fd: dev.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: One valid `pollfd`.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        (n, p.revents)
    };
    r.check(
        "packets wakeup: an empty ring polls not readable",
        poll(0) == (0, 0),
        format!("{:?}", poll(0)),
    );
    ring.word(WAKEUP_OFFSET).store(1, Ordering::Release);
    let sender = std::thread::spawn({
        let fd = peer.0.try_clone().expect("dup");
        move || {
            std::thread::sleep(Duration::from_millis(200));
            let s = PacketSocket(fd);
            send_frames(&s, 0, 3, 60).is_ok()
        }
    });
    let (n, revents) = poll(WAIT.as_millis() as i32);
    let sent = sender.join().unwrap_or(false);
    let all = eventually(WAIT, || ring.producer() == 3);
    r.check(
        "packets wakeup: need-wakeup set: poll sleeps until a frame comes, then POLLIN",
        sent && n == 1 && revents & libc::POLLIN != 0,
        format!("poll {n}, revents {revents:#x}"),
    );
    r.check(
        "packets wakeup: woken once for 3 frames (WAKEUPS 1), the word cleared",
        all && ring.counter(counter::WAKEUPS) == 1
            && ring.word(WAKEUP_OFFSET).load(Ordering::Acquire) == 0,
        format!("wakeups {}", ring.counter(counter::WAKEUPS)),
    );
    ring.set_consumer(3);
    let quiet = poll(0);
    let sender = std::thread::spawn({
        let fd = peer.0.try_clone().expect("dup");
        move || {
            std::thread::sleep(Duration::from_millis(500));
            send_frames(&PacketSocket(fd), 3, 1, 60).is_ok()
        }
    });
    // Without need-wakeup the driver wakes nobody: the poll runs to its timeout, and only its
    // last look (which poll(2) always takes) finds the frame that came meanwhile.
    let (n, _) = poll(2500);
    let _ = sender.join();
    r.check(
        "packets wakeup: need-wakeup not set: the driver makes no wakeup (WAKEUPS stays 1)",
        quiet == (0, 0) && n == 1 && ring.counter(counter::WAKEUPS) == 1,
        format!(
            "{quiet:?}, poll {n}, wakeups {}",
            ring.counter(counter::WAKEUPS)
        ),
    );
    r.check(
        "packets wakeup: a waiting frame polls readable at once",
        eventually(WAIT, || ring.producer() == 4) && poll(0).0 == 1,
        "",
    );
    let _ = detach(dev, id);
    r.check(
        "packets wakeup: ring and pool destroyed",
        rig.destroy(dev),
        "",
    );
}

/// TX: frames from the pool leave byte-exact on the peer, one `KICK` per batch releases every
/// slot; bad descriptors are released unsent and counted.
fn tx_byte_exact(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets tx: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(peer) = PacketSocket::bind(veth.b, ETHERTYPE) else {
        return r.check("packets tx: packet socket", false, "");
    };
    let req = Attach {
        ifindex: veth.a,
        pool_id: rig.pool,
        tx_ring: ring.id,
        ..Default::default()
    };
    let id = match attach(dev, req) {
        Ok(id) => id,
        Err(e) => return r.check("packets tx: ATTACH a TX ring", false, e),
    };
    // Up to the veth's MTU (a longer frame is the device's to drop: driver README).
    let lens = [14usize, 60, 1514, 1000, 333];
    for (i, &len) in lens.iter().enumerate() {
        rig.write_buffer(i as u32 + 4, &frame(500 + i as u32, len));
        ring.set_desc(
            i as u32,
            PacketDesc {
                buf: i as u32 + 4,
                len: len as u32,
                ..Default::default()
            },
        );
    }
    ring.set_producer(lens.len() as u32);
    let kicked = kick(dev, id);
    let mut got = Vec::new();
    while let Some(f) = peer.recv() {
        got.push(f);
        if got.len() == lens.len() {
            break;
        }
    }
    let want: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| frame(500 + i as u32, l))
        .collect();
    r.check(
        "packets tx: one KICK sends the batch byte-exact and releases every slot",
        kicked.as_ref().is_ok_and(|&n| n == lens.len() as i32)
            && got == want
            && ring.consumer() == lens.len() as u32
            && ring.counter(counter::TX_PACKETS) == lens.len() as u64
            && ring.counter(counter::KICKS) == 1,
        format!(
            "kick {kicked:?}, {} frames back, consumer {}",
            got.len(),
            ring.consumer()
        ),
    );
    // Bad descriptors: a buffer past the pool, 13 bytes, past the buffer, flags set; then a good one.
    let bad = [
        PacketDesc {
            buf: 16,
            len: 60,
            ..Default::default()
        },
        PacketDesc {
            buf: 1,
            len: 13,
            ..Default::default()
        },
        PacketDesc {
            buf: 1,
            len: 2049,
            ..Default::default()
        },
        PacketDesc {
            buf: 1,
            len: 60,
            flags: 1,
            ..Default::default()
        },
        PacketDesc {
            buf: 4,
            len: 60,
            ..Default::default()
        },
    ];
    rig.write_buffer(4, &frame(600, 60));
    for (i, d) in bad.iter().enumerate() {
        ring.set_desc(5 + i as u32, *d);
    }
    ring.set_producer(10);
    let kicked = kick(dev, id);
    let one = peer.recv();
    let none = peer.recv();
    let (one_len, none_len) = (one.as_ref().map(Vec::len), none.as_ref().map(Vec::len));
    r.check(
        "packets tx: 4 bad descriptors released unsent (TX_INVALID_DESC 4), the good one sent",
        kicked.as_ref().is_ok_and(|&n| n == 5)
            && one.is_some_and(|f| f == frame(600, 60))
            && none.is_none()
            && ring.counter(counter::TX_INVALID_DESC) == 4
            && ring.counter(counter::TX_PACKETS) == 6
            && ring.consumer() == 10,
        format!(
            "kick {kicked:?}, invalid {}, sent {}, consumer {}, frames {one_len:?} then {none_len:?}",
            ring.counter(counter::TX_INVALID_DESC),
            ring.counter(counter::TX_PACKETS),
            ring.consumer(),
        ),
    );
    // A producer more than `entries` ahead: counted once, nothing sent or released.
    ring.set_producer(10 + 9);
    let kicked = kick(dev, id);
    r.check(
        "packets tx: a producer 9 ahead of an 8-slot ring: KICK releases nothing, counted once",
        kicked.as_ref().is_ok_and(|&n| n == 0)
            && ring.counter(counter::TX_INVALID_DESC) == 5
            && ring.consumer() == 10
            && peer.recv().is_none(),
        format!("kick {kicked:?}"),
    );
    ring.set_producer(10);
    let _ = detach(dev, id);
    r.check("packets tx: ring and pool destroyed", rig.destroy(dev), "");
}

/// `rmmod pktmap` while a file holds an attachment: refused (the open file pins the module),
/// nothing hangs, and the attachment still works after.
fn rmmod_refused(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets rmmod: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(id) = attach(dev, rx_attach(veth, &rig, ring.id, 0)) else {
        return r.check("packets rmmod: ATTACH", false, "");
    };
    let name = CString::new("pktmap").unwrap();
    // SAFETY: `delete_module` with a valid name; O_NONBLOCK: refuse rather than wait.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    let err = io::Error::last_os_error().raw_os_error();
    let peer = PacketSocket::bind(veth.b, ETHERTYPE);
    let works = peer.is_ok_and(|p| send_frames(&p, 0, 1, 60).is_ok())
        && eventually(WAIT, || ring.producer() == 1);
    r.check(
        "packets rmmod: rmmod while attached: EWOULDBLOCK (in use), and RX still works",
        rc == -1 && err == Some(libc::EWOULDBLOCK) && works,
        format!("rc {rc}, errno {err:?}"),
    );
    let _ = detach(dev, id);
    r.check(
        "packets rmmod: ring and pool destroyed",
        rig.destroy(dev),
        "",
    );
}

/// Attach and detach in a loop while another thread floods the device (the debug track runs
/// this under KASAN and lockdep; its kernel log must stay clean).
fn detach_races_traffic(r: &mut Report, dev: &Device, veth: &Veth) {
    let rig = match Rig::new(dev, 2048, 64, &[32]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets race: pool and ring", false, e),
    };
    let ring = rig.ring(0);
    let Ok(peer) = PacketSocket::bind(veth.b, ETHERTYPE) else {
        return r.check("packets race: packet socket", false, "");
    };
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let sender = std::thread::spawn({
        let stop = stop.clone();
        let fd = peer.0.try_clone().expect("dup");
        move || {
            let s = PacketSocket(fd);
            let mut n = 0u64;
            let start = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(30) {
                if s.send(&frame(n as u32, 60)).is_ok() {
                    n += 1;
                }
            }
            n
        }
    });
    let mut rounds = 0;
    let mut failures = 0;
    let start = std::time::Instant::now();
    while rounds < 200 && start.elapsed() < Duration::from_secs(10) {
        // Keep releasing what arrived, so frames keep landing.
        ring.set_consumer(ring.producer());
        match attach(dev, rx_attach(veth, &rig, ring.id, 0)) {
            Ok(id) => {
                std::thread::sleep(Duration::from_millis(2));
                if detach(dev, id).is_err() {
                    failures += 1;
                }
            }
            Err(_) => failures += 1,
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap_or(0);
    r.check(
        "packets race: attach/detach rounds while a thread floods the device",
        failures == 0 && rounds > 10 && sent > 0 && ring.counter(counter::RX_PACKETS) > 0,
        format!(
            "{rounds} rounds, {failures} failed, {sent} frames sent, {} delivered",
            ring.counter(counter::RX_PACKETS)
        ),
    );
    r.check(
        "packets race: ring and pool destroyed",
        rig.destroy(dev),
        "",
    );
}

/// The device deleted while attached (RX and TX): the attachment ends (KICK `ENODEV`), the id
/// stays until `DETACH`, and the rings can then be destroyed.
fn device_deleted(r: &mut Report, dev: &Device) {
    let veth = match Veth::new("pkd0", "pkd1") {
        Ok(v) => v,
        Err(e) => return r.check("packets delete: a veth pair", false, e),
    };
    let rig = match Rig::new(dev, 2048, 32, &[8, 8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets delete: pool and rings", false, e),
    };
    let req = Attach {
        ifindex: veth.a,
        pool_id: rig.pool,
        rx_ring: rig.ring(0).id,
        tx_ring: rig.ring(1).id,
        ..Default::default()
    };
    let Ok(id) = attach(dev, req) else {
        return r.check("packets delete: ATTACH RX and TX", false, "");
    };
    let kicked = kick(dev, id);
    let deleted = link_del(veth.a);
    std::mem::forget(veth);
    r.check(
        "packets delete: the device deleted while attached: KICK then ENODEV",
        kicked.is_ok() && deleted.is_ok() && errno_of(kick(dev, id)) == Some(libc::ENODEV),
        format!("{kicked:?} {deleted:?}"),
    );
    r.check(
        "packets delete: DETACH of the ended attachment, then the rings and pool are destroyed",
        detach(dev, id).is_ok() && rig.destroy(dev),
        "",
    );
}

/// A network namespace torn down while one of its devices is attached (by a child that made
/// the namespace and exited; the parent's file keeps the attachment): it ends.
fn netns_torn_down(r: &mut Report, dev: &Device) {
    if kernel_config("NET_NS") == Some(false) {
        return r.not_run(
            "packets netns: a namespace torn down while attached",
            "this kernel is built without CONFIG_NET_NS (its config, /kernel.config): no namespace can be made",
        );
    }
    let rig = match Rig::new(dev, 2048, 16, &[8]) {
        Ok(rig) => rig,
        Err(e) => return r.check("packets netns: pool and ring", false, e),
    };
    let tx = rig.ring(0).id;
    let pool = rig.pool;
    let fd = dev.as_fd().as_raw_fd();
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` is valid for two fds.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return r.check("packets netns: a pipe", false, io::Error::last_os_error());
    }
    // SAFETY: Both ends are new fds we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    // The child shares the open file: its ATTACH lands in the parent's table; it writes the
    // id down the pipe and exits, the last task of its namespace.
    let status = crate::sys::wait_child(crate::sys::spawn_child(move || {
        // SAFETY: `unshare` in a single-threaded child.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return 2;
        }
        let Ok((a, _)) = veth_add("pkn0", "pkn1") else {
            return 3;
        };
        let mut req = Attach {
            ifindex: a,
            pool_id: pool,
            tx_ring: tx,
            ..Default::default()
        };
        // SAFETY: `fd` is the parent's open device, inherited and open for the child's life.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if ioctl(borrowed, ATTACH, &mut req).is_err() {
            return 4;
        }
        let id = req.id.to_ne_bytes();
        // SAFETY: `id` is valid for 4 bytes.
        if unsafe { libc::write(wr.as_raw_fd(), id.as_ptr().cast(), 4) } != 4 {
            return 5;
        }
        0
    }));
    let mut id = [0u8; 4];
    // SAFETY: `id` is valid for 4 bytes; the writer has exited, so the read does not block.
    let got = unsafe { libc::read(rd.as_raw_fd(), id.as_mut_ptr().cast(), 4) };
    let ids: Vec<u32> = if got == 4 {
        vec![u32::from_ne_bytes(id)]
    } else {
        Vec::new()
    };
    let ended = eventually(WAIT, || {
        ids.iter()
            .all(|&i| errno_of(kick(dev, i)) == Some(libc::ENODEV))
    });
    r.check(
        "packets netns: the namespace torn down with its veth attached: the attachment ends (KICK ENODEV)",
        status.is_none() && ids.len() == 1 && ended,
        format!("child {status:?}, ids {ids:?}"),
    );
    let detached = ids.iter().all(|&i| detach(dev, i).is_ok());
    r.check(
        "packets netns: DETACH, then the ring and pool are destroyed",
        detached && rig.destroy(dev),
        "",
    );
}
