//! The AF_XDP echo loop the `xdp_echo` example and `tests/af_xdp.rs` share.

use crate::ETHERTYPE;
use pktmap::af_xdp::{XdpDesc, XdpDescOptions, Xsk};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What [`echo`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Frames taken off the RX ring.
    pub received: u64,
    /// Frames put on the TX ring (sent back).
    pub echoed: u64,
    /// Frames of another EtherType (IPv6 neighbour discovery and the like), recycled unsent.
    pub other: u64,
    /// Echoes that did not fit the TX ring and were dropped: 0 while the TX ring has as many
    /// slots as the UMEM has frames.
    pub tx_full: u64,
}

/// Echoes every [`ETHERTYPE`] frame back with its MAC addresses swapped, in place in the
/// UMEM, until `stop` is set or `deadline` passes.
///
/// Every UMEM frame starts on the FILL ring (as many as fit); a frame comes back to FILL when
/// it was not ours, did not fit TX, or completed.
///
/// # Errors
/// The errno of a UMEM access or of the TX kick (`sendto`).
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
/// use std::sync::atomic::AtomicBool;
/// use std::time::{Duration, Instant};
/// let mut xsk = XskBuilder::new(Umem::new(1024, 2048)?, RingSizes::default())?.bind(2, 0)?;
/// let stop = AtomicBool::new(false);
/// let st = pktmap_testbed::echo(&mut xsk, &stop, Instant::now() + Duration::from_secs(1))?;
/// assert_eq!(st.tx_full, 0);
/// # Ok(()) }
/// ```
pub fn echo(xsk: &mut Xsk, stop: &AtomicBool, deadline: Instant) -> io::Result<EchoStats> {
    let addrs: Vec<u64> = xsk.umem().frame_addrs().collect();
    let filled = xsk.fill(&addrs);
    let mut refill: Vec<u64> = addrs[filled..].to_vec();
    let (mut rx, mut tx, mut done) = (Vec::new(), Vec::new(), Vec::new());
    let mut st = EchoStats::default();
    let mut in_flight = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        rx.clear();
        xsk.recv(&mut rx, 64);
        for d in &rx {
            st.received += 1;
            let mut hdr = [0u8; 14];
            xsk.umem().read(d.addr, &mut hdr)?;
            if hdr[12..14] != ETHERTYPE.to_be_bytes() {
                st.other += 1;
                refill.push(d.addr);
                continue;
            }
            // Swap destination and source in place: the reply is the same UMEM frame.
            xsk.umem().write(d.addr, &hdr[6..12])?;
            xsk.umem().write(d.addr + 6, &hdr[..6])?;
            tx.push(XdpDesc {
                addr: d.addr,
                len: d.len,
                options: XdpDescOptions::empty(),
            });
        }
        let n = xsk.send(&tx);
        st.tx_full += (tx.len() - n) as u64;
        refill.extend(tx.drain(..).skip(n).map(|d| d.addr));
        in_flight += n;
        st.echoed += n as u64;
        if in_flight > 0 {
            xsk.kick()?;
        }
        done.clear();
        in_flight -= xsk.completed(&mut done, 256);
        refill.extend_from_slice(&done);
        let n = xsk.fill(&refill);
        refill.drain(..n);
        if rx.is_empty() && done.is_empty() {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    Ok(st)
}
