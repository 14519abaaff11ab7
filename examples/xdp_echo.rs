//! `xdp_echo`: an AF_XDP socket whose RX, TX, FILL and COMPLETION rings pktmap mapped, echoing
//! real Ethernet frames across a veth pair between two network namespaces it makes and removes.
//!
//! ```sh
//! sudo cargo run --release --example xdp_echo -- [--count N] [--secs S] [--size BYTES] [--window W]
//! ```
//!
//! Namespace a holds `xsk0` with the XSKMAP redirect program and the AF_XDP socket (copy mode);
//! namespace b holds `peer0` and a raw packet socket that sends `N` frames of `BYTES` payload
//! bytes (default 100000 of 64) of EtherType 0x88b5, `W` at a time (default 64), and waits for
//! each window's echoes. The socket swaps the MAC addresses in place in the UMEM and sends the
//! same frame back from its TX ring. Everything stops after `S` seconds (default 10); the
//! namespaces (and with them the veth pair) are deleted on the way out, even on error. No
//! address other than the two made-up MACs is involved: nothing can leave the pair.
//!
//! Needs root and iproute2.

use pktmap::af_xdp::{Ring, RingSizes, Umem, Xsk, XskBuilder};
use pktmap::offset::Region as _;
use pktmap_testbed::{
    echo, frame, require_root, EchoStats, PacketSocket, Side, VethPair, XskRedirect,
};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Args {
    count: u64,
    secs: u64,
    size: usize,
    window: u64,
}

fn args() -> Args {
    let mut a = Args {
        count: 100_000,
        secs: 10,
        size: 64,
        window: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--count", Some(v)) => a.count = v,
            ("--secs", Some(v)) => a.secs = v,
            ("--size", Some(v)) => a.size = (v as usize).clamp(8, 1500),
            ("--window", Some(v)) => a.window = v.clamp(1, 512),
            _ => {
                eprintln!("usage: xdp_echo [--count N] [--secs S] [--size BYTES] [--window W]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// The peer's counts.
#[derive(Default)]
struct PeerStats {
    sent: u64,
    echoes: u64,
    wrong: u64,
    lost: u64,
}

/// Sends `count` frames `window` at a time and waits for each window's echoes.
fn peer(sock: &PacketSocket, a: &Args, deadline: Instant) -> io::Result<PeerStats> {
    let mut st = PeerStats::default();
    let mut payload = vec![0u8; a.size];
    let mut buf = vec![0u8; 2048];
    while st.sent < a.count && Instant::now() < deadline {
        let w = a.window.min(a.count - st.sent);
        for _ in 0..w {
            payload[..8].copy_from_slice(&st.sent.to_le_bytes());
            sock.send(&frame(Side::A.mac(), Side::B.mac(), &payload))?;
            st.sent += 1;
        }
        for _ in 0..w {
            match sock.recv(&mut buf, Duration::from_secs(1)) {
                Ok(n) => {
                    st.echoes += 1;
                    let ok = n == 14 + a.size
                        && buf[..6] == Side::B.mac()
                        && buf[6..12] == Side::A.mac()
                        && u64::from_le_bytes(buf[14..22].try_into().unwrap()) < st.sent;
                    st.wrong += u64::from(!ok);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => st.lost += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(st)
}

fn main() -> io::Result<()> {
    let a = args();
    if !require_root("xdp_echo") {
        std::process::exit(1);
    }
    let bed = VethPair::new()?;
    println!(
        "veth pair: {}/{} <-> {}/{}",
        bed.netns(Side::A),
        Side::A.ifname(),
        bed.netns(Side::B),
        Side::B.ifname()
    );
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut elapsed = Duration::ZERO;
    let (echo_stats, peer_stats) = std::thread::scope(|s| {
        let xsk_side = s.spawn(|| -> io::Result<(EchoStats, bool, u64)> {
            let setup = || -> io::Result<(XskRedirect, Xsk)> {
                bed.enter(Side::A)?;
                let ifindex = bed.ifindex(Side::A)?;
                let redirect = XskRedirect::attach(ifindex, 1)?;
                let sock = XskBuilder::new(Umem::new(2048, 2048)?, RingSizes::default())?;
                for r in Ring::ALL {
                    println!(
                        "mapped by pktmap: af_xdp {:<10} offset {:#011x}, {} bytes",
                        r.name(),
                        r.offset()?,
                        sock.ring_len(r)
                    );
                }
                let xsk = sock.bind(ifindex, 0)?;
                redirect.insert(0, &xsk)?;
                Ok((redirect, xsk))
            };
            match setup() {
                Ok((redirect, mut xsk)) => {
                    ready_tx.send(Ok(())).ok();
                    let st = echo(&mut xsk, &stop, deadline);
                    drop(redirect);
                    Ok((st?, xsk.uses_need_wakeup(), xsk.syscalls()))
                }
                Err(e) => {
                    ready_tx.send(Err(e.to_string())).ok();
                    Err(e)
                }
            }
        });
        let peer_stats = match ready_rx.recv() {
            Ok(Ok(())) => s
                .spawn(|| -> io::Result<PeerStats> {
                    bed.enter(Side::B)?;
                    let sock = PacketSocket::bind(bed.ifindex(Side::B)?)?;
                    let start = Instant::now();
                    let st = peer(&sock, &a, deadline);
                    elapsed = start.elapsed();
                    st
                })
                .join()
                .expect("peer panicked"),
            Ok(Err(e)) => Err(io::Error::other(format!("AF_XDP setup: {e}"))),
            Err(_) => Err(io::Error::other("AF_XDP side died")),
        };
        stop.store(true, Ordering::Relaxed);
        (xsk_side.join().expect("echo panicked"), peer_stats)
    });
    let ((e, need_wakeup, syscalls), p) = (echo_stats?, peer_stats?);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let frame_bytes = (14 + a.size) as f64;
    println!(
        "xdp_echo: {} frames sent, {} echoes back ({} wrong, {} lost) in {secs:.3} s: \
         {:.0} round trips/s, {:.1} Mbit/s each way; AF_XDP socket received {}, echoed {}, \
         {} of other EtherTypes; need_wakeup {}, {syscalls} wakeup syscalls",
        p.sent,
        p.echoes,
        p.wrong,
        p.lost,
        p.echoes as f64 / secs,
        p.echoes as f64 * frame_bytes * 8.0 / secs / 1e6,
        e.received,
        e.echoed,
        e.other,
        if need_wakeup { "on" } else { "off" },
    );
    drop(bed);
    if p.echoes < a.count || p.wrong > 0 {
        std::process::exit(1);
    }
    Ok(())
}
