//! AF_XDP in copy mode, the other peer: an `XDP_COPY` socket with need_wakeup, its rings and
//! UMEM mapped by [`pktmap::af_xdp`], fed by the test bed's XSKMAP redirect program attached
//! in generic (SKB) mode, so it sees every frame of the core receive path (pktgen's
//! `netif_receive` included): a BPF run, a redirect and a copy per frame.

use super::{Receiver, Transmitter, TxAccount, Wait};
use pktmap::af_xdp::{RingSizes, Umem, XdpDesc, XdpDescOptions, Xsk, XskBuilder};
use pktmap_testbed::XskRedirect;
use rustix::event::{poll, PollFd, PollFlags};
use std::io;
use std::time::Duration;

const FRAME: u32 = 2048;

/// Binds, retrying for a second while the queue is busy: the kernel releases the previous
/// repetition's socket from the queue in a work item, after `close` returns.
fn bind(ifindex: u32, frames: u32, sizes: RingSizes) -> io::Result<Xsk> {
    let start = std::time::Instant::now();
    loop {
        match XskBuilder::new(Umem::new(frames, FRAME)?, sizes)?.bind(ifindex, 0) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed().as_secs() < 1 => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return Ok(r?),
        }
    }
}

fn wait_fd(xsk: &Xsk, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(xsk, flags)];
    let ts = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    Ok(poll(&mut fds, Some(&ts))? > 0)
}

/// An AF_XDP copy-mode socket receiving queue 0 of a device.
#[derive(Debug)]
pub struct XdpRx {
    xsk: Xsk,
    _redirect: XskRedirect,
    rx: Vec<XdpDesc>,
    refill: Vec<u64>,
    polls: u64,
}

impl XdpRx {
    /// A UMEM of `frames` 2 KiB frames, an RX ring of `rx` entries (FILL as large as the
    /// UMEM), every frame on FILL, bound to queue 0 of `ifindex`.
    ///
    /// # Errors
    /// The errno of the socket, the bind or the `bpf()` calls.
    pub fn new(ifindex: u32, frames: u32, rx: u32) -> io::Result<Self> {
        let sizes = RingSizes {
            rx,
            tx: 64,
            fill: frames,
            completion: 64,
        };
        let mut xsk = bind(ifindex, frames, sizes)?;
        let redirect = XskRedirect::attach_with(ifindex, 1, true)?;
        redirect.insert(0, &xsk)?;
        let addrs: Vec<u64> = xsk.umem().frame_addrs().collect();
        let filled = xsk.fill(&addrs);
        Ok(Self {
            xsk,
            _redirect: redirect,
            rx: Vec::with_capacity(256),
            refill: addrs[filled..].to_vec(),
            polls: 0,
        })
    }
}

impl Receiver for XdpRx {
    fn take(&mut self, sum: &mut u64) -> io::Result<usize> {
        self.rx.clear();
        let n = self.xsk.recv(&mut self.rx, 256);
        let mut hdr = [0u8; 14];
        for d in &self.rx {
            let len = hdr.len().min(d.len as usize);
            self.xsk.umem().read(d.addr, &mut hdr[..len])?;
            *sum = sum.wrapping_add(u64::from(hdr[12]) << 8 | u64::from(hdr[13]));
            self.refill.push(d.addr);
        }
        if !self.refill.is_empty() {
            let k = self.xsk.fill(&self.refill);
            self.refill.drain(..k);
        }
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        self.polls += 1;
        wait_fd(&self.xsk, PollFlags::IN, timeout)
    }

    fn syscalls(&self) -> u64 {
        self.polls + self.xsk.syscalls()
    }

    fn drops(&mut self) -> io::Result<Vec<(&'static str, u64)>> {
        let st = rustix::net::sockopt::xdp_statistics(&self.xsk)?;
        Ok(vec![
            ("rx_dropped", st.rx_dropped),
            ("rx_ring_full", st.rx_ring_full.unwrap_or(0)),
            (
                "rx_fill_ring_empty",
                st.rx_fill_ring_empty_descs.unwrap_or(0),
            ),
            ("rx_invalid_descs", st.rx_invalid_descs),
        ])
    }

    fn seen(&mut self) -> io::Result<Option<u64>> {
        Ok(None)
    }
}

/// An AF_XDP copy-mode socket sending on queue 0 of a device (no XDP program needed).
#[derive(Debug)]
pub struct XdpTx {
    xsk: Xsk,
    free: Vec<u64>,
    done: Vec<u64>,
    descs: Vec<XdpDesc>,
    in_flight: usize,
    polls: u64,
}

impl XdpTx {
    /// A UMEM of `frames` 2 KiB frames and TX and COMPLETION rings as large, on `ifindex`.
    ///
    /// # Errors
    /// The errno of the socket or the bind.
    pub fn new(ifindex: u32, frames: u32) -> io::Result<Self> {
        let sizes = RingSizes {
            rx: 64,
            tx: frames,
            fill: 64,
            completion: frames,
        };
        let xsk = bind(ifindex, frames, sizes)?;
        let free = xsk.umem().frame_addrs().collect();
        Ok(Self {
            xsk,
            free,
            done: Vec::with_capacity(frames as usize),
            descs: Vec::with_capacity(256),
            in_flight: 0,
            polls: 0,
        })
    }
}

impl Transmitter for XdpTx {
    fn send(&mut self, frame: &[u8], n: usize, _wait: Wait) -> io::Result<usize> {
        self.descs.clear();
        for _ in 0..n {
            let Some(addr) = self.free.pop() else { break };
            self.xsk.umem().write(addr, frame)?;
            self.descs.push(XdpDesc {
                addr,
                len: frame.len() as u32,
                options: XdpDescOptions::empty(),
            });
        }
        let queued = self.xsk.send(&self.descs);
        self.free.extend(self.descs.drain(queued..).map(|d| d.addr));
        self.in_flight += queued;
        // Copy mode sends at most 32 frames per sendto: kick while any is waiting.
        if self.in_flight > 0 {
            self.xsk.kick()?;
        }
        Ok(queued)
    }

    fn reap(&mut self) -> io::Result<usize> {
        self.done.clear();
        let n = self.xsk.completed(&mut self.done, usize::MAX);
        self.free.extend_from_slice(&self.done);
        self.in_flight -= n;
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.polls += 1;
        wait_fd(&self.xsk, PollFlags::OUT, timeout).map(|_| ())
    }

    fn syscalls(&self) -> u64 {
        self.polls + self.xsk.syscalls()
    }

    fn account(&mut self) -> io::Result<TxAccount> {
        let st = rustix::net::sockopt::xdp_statistics(&self.xsk)?;
        Ok(TxAccount {
            drops: vec![("tx_invalid_descs", st.tx_invalid_descs)],
            resent: 0,
        })
    }
}
