//! pktmap.ko's own packet path, the subject the peers are measured against: a
//! [`PacketPort`] (a pool and a packet ring attached to the device in steal mode) through
//! [`pktmap::packet`], so the bench drives exactly the API a program uses.

use super::{Receiver, Transmitter, TxAccount, Wait};
use pktmap::device::Device;
use pktmap::packet::{PacketPort, PortOptions};
use rustix::event::{poll, PollFd, PollFlags};
use std::io;
use std::time::Duration;

fn sleep_on(port: &PacketPort, timeout: Duration) -> io::Result<()> {
    let mut fds = [PollFd::new(port.device(), PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    poll(&mut fds, Some(&ts))?;
    Ok(())
}

/// An RX ring of 2048 slots (2 KiB buffers) attached to a device.
#[derive(Debug)]
pub struct PktmapRx {
    port: PacketPort,
    polls: u64,
}

impl PktmapRx {
    /// Opens `/dev/pktmap` and attaches an RX ring of `entries` slots to `ifindex`.
    ///
    /// # Errors
    /// The errno of the open, the pool and ring creation or `ATTACH`.
    pub fn new(ifindex: u32, entries: u32) -> io::Result<Self> {
        let opts = PortOptions::new()
            .rx(entries)
            .tx(0)
            .buffer_size(2048, entries);
        let port = PacketPort::open(Device::open()?, ifindex, &opts)?;
        Ok(Self { port, polls: 0 })
    }
}

impl Receiver for PktmapRx {
    fn take(&mut self, sum: &mut u64) -> io::Result<usize> {
        let (rx, _, bufs) = self.port.split();
        let Some(rx) = rx else { return Ok(0) };
        let batch = rx.recv(256);
        let mut hdr = [0u8; 14];
        for d in batch.iter() {
            let len = hdr.len().min(d.len as usize);
            bufs.read(d.buf, 0, &mut hdr[..len])?;
            *sum = sum.wrapping_add(u64::from(hdr[12]) << 8 | u64::from(hdr[13]));
        }
        Ok(batch.len())
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        let (rx, _, _) = self.port.split();
        if !rx.is_some_and(|rx| rx.prepare_to_sleep()) {
            return Ok(true);
        }
        self.polls += 1;
        sleep_on(&self.port, timeout)?;
        Ok(self.port.split().0.is_some_and(|rx| rx.available() > 0))
    }

    fn syscalls(&self) -> u64 {
        self.polls
    }

    fn drops(&mut self) -> io::Result<Vec<(&'static str, u64)>> {
        let c = self.counters();
        Ok(vec![
            ("rx_ring_full", c.rx_ring_full),
            ("rx_invalid_desc", c.rx_invalid_desc),
            ("rx_copy_errors", c.rx_copy_errors),
        ])
    }

    fn seen(&mut self) -> io::Result<Option<u64>> {
        Ok(Some(self.counters().rx_seen()))
    }
}

impl PktmapRx {
    fn counters(&mut self) -> pktmap::packet::Counters {
        self.port
            .split()
            .0
            .map(|rx| rx.ring().counters())
            .unwrap_or_default()
    }
}

/// A TX ring of `entries` slots attached to a device; the buffers past the ring's are sent
/// from.
#[derive(Debug)]
pub struct PktmapTx {
    port: PacketPort,
    free: Vec<u32>,
    done: Vec<u32>,
    syscalls: u64,
}

impl PktmapTx {
    /// Opens `/dev/pktmap` and attaches a TX ring of `entries` slots to `ifindex`.
    ///
    /// # Errors
    /// The errno of the open, the pool and ring creation or `ATTACH`.
    pub fn new(ifindex: u32, entries: u32) -> io::Result<Self> {
        let opts = PortOptions::new()
            .rx(0)
            .tx(entries)
            .buffer_size(2048, entries);
        let port = PacketPort::open(Device::open()?, ifindex, &opts)?;
        let free = port.free_buffers().collect();
        Ok(Self {
            port,
            free,
            done: Vec::with_capacity(entries as usize),
            syscalls: 0,
        })
    }
}

impl Transmitter for PktmapTx {
    fn send(&mut self, frame: &[u8], n: usize, _wait: Wait) -> io::Result<usize> {
        let (_, tx, bufs) = self.port.split();
        let Some(tx) = tx else { return Ok(0) };
        let mut batch = tx.reserve(n as u32);
        while batch.len() < batch.capacity() {
            let Some(buf) = self.free.pop() else { break };
            bufs.write(buf, 0, frame)?;
            batch.push(buf, frame.len() as u32)?;
        }
        let queued = batch.send() as usize;
        if queued > 0 {
            // One KICK per batch: the driver copies and sends, releasing each slot.
            self.syscalls += 1;
            self.port.kick()?;
        }
        Ok(queued)
    }

    fn reap(&mut self) -> io::Result<usize> {
        self.done.clear();
        let n = match self.port.split().1 {
            Some(tx) => tx.reclaim(&mut self.done),
            None => 0,
        };
        self.free.extend_from_slice(&self.done);
        Ok(n as usize)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        // KICK copies synchronously: a slot not yet back is one the driver is copying now.
        self.syscalls += 1;
        std::thread::sleep(timeout.min(Duration::from_micros(50)));
        Ok(())
    }

    fn syscalls(&self) -> u64 {
        self.syscalls
    }

    fn account(&mut self) -> io::Result<TxAccount> {
        let c = self
            .port
            .split()
            .1
            .map(|tx| tx.ring().counters())
            .unwrap_or_default();
        Ok(TxAccount {
            drops: vec![
                ("tx_invalid_desc", c.tx_invalid_desc),
                ("tx_errors", c.tx_errors),
            ],
            resent: 0,
        })
    }
}
