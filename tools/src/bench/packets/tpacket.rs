//! AF_PACKET with `TPACKET_V3` rings, the peer every capture tool uses: a block-based RX ring
//! (the kernel fills a block, then hands the whole block over: one wakeup per block) and the
//! frame-based TX ring of `TPACKET_V3` (`PACKET_QDISC_BYPASS`, as a packet generator would
//! set). Both rings are mapped with [`pktmap::resource::map`] and read through its checked
//! volatile views; the layout is `<linux/if_packet.h>`'s.

use super::super::sys;
use super::{Receiver, Transmitter, TxAccount, Wait};
use pktmap::resource::{map, MapFlags, Mapping};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;
const ETH_P_ALL: u16 = 0x0003;
/// `struct tpacket_block_desc`: `hdr.bh1.block_status`, `num_pkts`, `offset_to_first_pkt`.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
/// `struct tpacket3_hdr`: `tp_next_offset`, `tp_snaplen`, `tp_len`, `tp_status`, `tp_mac`.
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
/// Where a TX frame's data starts: `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`.
const TX_DATA: usize = 48;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Req3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

fn packet_socket(version: libc::c_int) -> io::Result<OwnedFd> {
    // Protocol 0: the socket hooks nothing until `bind` names the device and protocol, so no
    // frame of another device lands in the ring in between.
    let fd = rustix::net::socket_with(
        AddressFamily::PACKET,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sys::setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
    Ok(fd)
}

fn wait_fd(fd: &OwnedFd, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, flags)];
    let ts = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    Ok(poll(&mut fds, Some(&ts))? > 0)
}

/// A `TPACKET_V3` RX ring bound to one device, every protocol.
#[derive(Debug)]
pub struct TpacketRx {
    fd: OwnedFd,
    ring: Mapping,
    block_size: usize,
    blocks: usize,
    next: usize,
    syscalls: u64,
    /// `tp_packets` and `tp_drops`, summed over reads (the kernel clears them on read).
    packets: u64,
    drops: u64,
    freezes: u64,
}

impl TpacketRx {
    /// A ring of `blocks` blocks of `block_size` bytes (a multiple of the page size), retired
    /// to the reader when full or after `retire_ms` milliseconds, on `ifindex`.
    ///
    /// # Errors
    /// The kernel's errno (`EPERM` without `CAP_NET_RAW`, `EINVAL` for a ring it refuses).
    pub fn new(ifindex: u32, block_size: usize, blocks: usize, retire_ms: u32) -> io::Result<Self> {
        let fd = packet_socket(TPACKET_V3)?;
        let frame = 2048;
        let req = Req3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size: frame,
            frame_nr: (block_size / frame as usize * blocks) as u32,
            retire_blk_tov: retire_ms,
            ..Req3::default()
        };
        sys::setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let ring = map(&fd, 0, block_size * blocks, MapFlags::empty())?;
        sys::bind_packet(&fd, ETH_P_ALL, ifindex)?;
        Ok(Self {
            fd,
            ring,
            block_size,
            blocks,
            next: 0,
            syscalls: 0,
            packets: 0,
            drops: 0,
            freezes: 0,
        })
    }

    fn read_stats(&mut self) -> io::Result<()> {
        let (p, d, f) = sys::packet_statistics(&self.fd)?;
        self.packets += u64::from(p);
        self.drops += u64::from(d);
        self.freezes += u64::from(f);
        Ok(())
    }
}

impl Receiver for TpacketRx {
    fn take(&mut self, sum: &mut u64) -> io::Result<usize> {
        let base = self.next * self.block_size;
        let status = self.ring.atomic_u32(base + BLOCK_STATUS)?;
        if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return Ok(0);
        }
        let n = self.ring.load::<u32>(base + BLOCK_NUM_PKTS)? as usize;
        let mut at = base + self.ring.load::<u32>(base + BLOCK_FIRST)? as usize;
        let mut hdr = [0u8; 14];
        for _ in 0..n {
            let mac = usize::from(self.ring.load::<u16>(at + H_MAC)?);
            let snap = self.ring.load::<u32>(at + H_SNAPLEN)? as usize;
            let len = hdr.len().min(snap);
            self.ring.read_at(at + mac, &mut hdr[..len])?;
            *sum = sum.wrapping_add(u64::from(hdr[12]) << 8 | u64::from(hdr[13]));
            at += self.ring.load::<u32>(at + H_NEXT)? as usize;
        }
        status.store(TP_STATUS_KERNEL, Ordering::Release);
        self.next = (self.next + 1) % self.blocks;
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        self.syscalls += 1;
        wait_fd(&self.fd, PollFlags::IN, timeout)
    }

    fn syscalls(&self) -> u64 {
        self.syscalls
    }

    fn drops(&mut self) -> io::Result<Vec<(&'static str, u64)>> {
        self.read_stats()?;
        Ok(vec![("tp_drops", self.drops)])
    }

    fn seen(&mut self) -> io::Result<Option<u64>> {
        self.read_stats()?;
        // tp_packets counts the dropped frames too.
        Ok(Some(self.packets))
    }
}

/// A `TPACKET_V3` TX ring (frames, not blocks) bound to one device, qdisc bypassed.
#[derive(Debug)]
pub struct TpacketTx {
    fd: OwnedFd,
    ring: Mapping,
    frame_size: usize,
    frames: usize,
    /// The next frame to fill, and the oldest one not yet seen back.
    head: usize,
    tail: usize,
    in_flight: usize,
    syscalls: u64,
    wrong_format: u64,
    resent: u64,
    retry: bool,
}

impl TpacketTx {
    /// A TX ring of `frames` frames of 2048 bytes on `ifindex`.
    ///
    /// # Errors
    /// The kernel's errno.
    pub fn new(ifindex: u32, frames: usize) -> io::Result<Self> {
        let fd = packet_socket(TPACKET_V3)?;
        sys::setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &1 as &libc::c_int,
        )?;
        let frame_size = 2048usize;
        let block_size = 1 << 16;
        let frames = frames.next_multiple_of(block_size / frame_size);
        let req = Req3 {
            block_size: block_size as u32,
            block_nr: (frames * frame_size / block_size) as u32,
            frame_size: frame_size as u32,
            frame_nr: frames as u32,
            ..Req3::default()
        };
        sys::setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)?;
        let ring = map(&fd, 0, frames * frame_size, MapFlags::empty())?;
        sys::bind_packet(&fd, 0, ifindex)?;
        Ok(Self {
            fd,
            ring,
            frame_size,
            frames,
            head: 0,
            tail: 0,
            in_flight: 0,
            syscalls: 0,
            wrong_format: 0,
            resent: 0,
            retry: false,
        })
    }

    fn kick(&mut self, wait: Wait) -> io::Result<()> {
        self.syscalls += 1;
        let flags = match wait {
            Wait::Busy => SendFlags::DONTWAIT,
            Wait::Sleep => SendFlags::empty(),
        };
        match rustix::net::send(&self.fd, &[], flags) {
            Ok(_) => Ok(()),
            // A frame the device dropped after its skb was freed: the kernel put it back to
            // SEND_REQUEST and will send it again on the next kick (net/packet/af_packet.c,
            // tpacket_snd): one more attempt, which the device's tx_dropped counted.
            Err(rustix::io::Errno::NOBUFS) => {
                self.resent += 1;
                self.retry = true;
                Ok(())
            }
            Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Transmitter for TpacketTx {
    fn send(&mut self, frame: &[u8], n: usize, wait: Wait) -> io::Result<usize> {
        let mut queued = 0;
        while queued < n && self.in_flight < self.frames {
            let at = self.head * self.frame_size;
            self.ring.write_at(at + TX_DATA, frame)?;
            self.ring.store::<u32>(at + H_LEN, frame.len() as u32)?;
            self.ring.store::<u32>(at + H_SNAPLEN, frame.len() as u32)?;
            self.ring.store::<u32>(at + H_NEXT, 0)?;
            self.ring
                .atomic_u32(at + H_STATUS)?
                .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.head = (self.head + 1) % self.frames;
            self.in_flight += 1;
            queued += 1;
        }
        // Kick for new frames, or again for a frame the kernel put back (see `kick`).
        if queued > 0 || self.retry {
            self.retry = false;
            self.kick(wait)?;
        }
        Ok(queued)
    }

    fn reap(&mut self) -> io::Result<usize> {
        let mut done = 0;
        while self.in_flight > 0 {
            let at = self.tail * self.frame_size;
            match self.ring.atomic_u32(at + H_STATUS)?.load(Ordering::Acquire) {
                TP_STATUS_AVAILABLE => {}
                TP_STATUS_WRONG_FORMAT => self.wrong_format += 1,
                _ => break,
            }
            self.tail = (self.tail + 1) % self.frames;
            self.in_flight -= 1;
            done += 1;
        }
        Ok(done)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.syscalls += 1;
        wait_fd(&self.fd, PollFlags::OUT, timeout).map(|_| ())
    }

    fn syscalls(&self) -> u64 {
        self.syscalls
    }

    fn account(&mut self) -> io::Result<TxAccount> {
        Ok(TxAccount {
            drops: vec![("wrong_format", self.wrong_format)],
            resent: self.resent,
        })
    }
}

impl AsFd for TpacketRx {
    fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
