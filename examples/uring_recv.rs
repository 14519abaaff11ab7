//! `uring_recv`: UDP datagrams on 127.0.0.1 received by io_uring into a provided-buffer ring
//! that the kernel allocated and pktmap mapped, with counts and rates.
//!
//! ```sh
//! cargo run --release --example uring_recv -- [--count N] [--secs S] [--size BYTES] [--window W]
//! ```
//!
//! A sender thread sends `N` datagrams of `BYTES` bytes (default 100000 of 64) to a socket on
//! 127.0.0.1, never more than `W` ahead of the receiver, so the socket buffer never overflows:
//! the program asks for an 8 MiB receive buffer (`SO_RCVBUFFORCE` as root, else `SO_RCVBUF`,
//! capped by `net.core.rmem_max`) and by default sets `W` to what the buffer it got holds, at
//! most 256. The receiver keeps RECV requests with `IOSQE_BUFFER_SELECT` in flight; the kernel
//! picks a buffer from the ring for each datagram, the completion names it, the program reads
//! the datagram in place and hands the buffer back. Everything stops after `S` seconds
//! (default 10) even if datagrams are missing. Nothing leaves the loopback interface.

use pktmap::offset::Region as _;
use pktmap::uring::{recv_with_buffer_select, Region, Uring};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BGID: u16 = 0;
const BUFFERS: u16 = 1024;
const BUF_SIZE: u32 = 2048;
const IN_FLIGHT: u32 = 128;

struct Args {
    count: u64,
    secs: u64,
    size: usize,
    window: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        count: 100_000,
        secs: 10,
        size: 64,
        window: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--count", Some(v)) => a.count = v,
            ("--secs", Some(v)) => a.secs = v,
            ("--size", Some(v)) => a.size = (v as usize).clamp(8, BUF_SIZE as usize),
            ("--window", Some(v)) => a.window = Some(v.max(1)),
            _ => {
                eprintln!("usage: uring_recv [--count N] [--secs S] [--size BYTES] [--window W]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() -> std::io::Result<()> {
    let a = args();
    let mut ring = Uring::new(256)?;
    let mut bufs = ring.register_buf_ring(BGID, BUFFERS, BUF_SIZE)?;
    for r in [
        Region::SqRing,
        Region::CqRing,
        Region::Sqes,
        Region::PbufRing { bgid: BGID },
    ] {
        println!(
            "mapped by pktmap: io_uring {:<9} offset {:#010x}, {} bytes",
            r.name(),
            r.offset()?,
            ring.region_len(r).unwrap_or(0)
        );
    }
    // The submitter, the one producer and the one consumer, for the receive loop below.
    let (submitter, mut sq, mut cq) = ring.split();

    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    tx.connect(rx.local_addr()?)?;
    let want = 8 << 20;
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&rx, want)
        .or_else(|_| rustix::net::sockopt::set_socket_recv_buffer_size(&rx, want));
    let rcvbuf = rustix::net::sockopt::socket_recv_buffer_size(&rx)?;
    // A datagram costs its payload rounded up to a power of two, twice, plus the skb: a
    // generous bound on its `truesize` against the buffer.
    let cost = (a.size.next_power_of_two() * 2 + 1024) as u64;
    let window = a.window.unwrap_or((rcvbuf as u64 / cost).clamp(1, 256));
    println!("receive buffer {rcvbuf} bytes; at most {window} datagrams in flight");
    let received = AtomicU64::new(0);
    let sent_total = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let start = Instant::now();

    let (sent, got, bytes, bad) = std::thread::scope(|s| -> std::io::Result<_> {
        let sender = s.spawn(|| -> std::io::Result<u64> {
            let mut d = vec![0u8; a.size];
            let mut sent = 0;
            while sent < a.count && !stop.load(Ordering::Relaxed) {
                if sent - received.load(Ordering::Acquire) >= window {
                    std::hint::spin_loop();
                    continue;
                }
                d[..8].copy_from_slice(&sent.to_le_bytes());
                tx.send(&d)?;
                sent += 1;
                sent_total.store(sent, Ordering::Release);
            }
            Ok(sent)
        });

        let mut armed = 0;
        let (mut got, mut bytes, mut bad) = (0u64, 0u64, 0u64);
        let result = (|| -> std::io::Result<()> {
            let mut progress = Instant::now();
            while got < a.count && Instant::now() < deadline {
                // Everything sent and nothing new for a while: the rest was lost.
                let all_sent = sent_total.load(Ordering::Acquire) == a.count;
                if all_sent && progress.elapsed() > Duration::from_millis(500) {
                    break;
                }
                while armed < IN_FLIGHT {
                    // SAFETY: `rx` and `bufs` live until after the last completion is reaped:
                    // the loop ends before either is dropped, and the ring is torn down first.
                    let pushed = unsafe { sq.push(&recv_with_buffer_select(rx.as_fd(), BGID, 0)) };
                    if !pushed {
                        break;
                    }
                    armed += 1;
                }
                sq.sync();
                match submitter.submit(1, Some(Duration::from_millis(100))) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                while let Some(c) = cq.pop() {
                    armed -= 1;
                    let Some(bid) = c.buffer_id() else {
                        continue; // ENOBUFS and the like: just re-arm
                    };
                    let len = c.result()? as usize;
                    // SAFETY: The completion handed buffer `bid` to us; the kernel does not
                    // touch it until `recycle` below.
                    let data = unsafe { bufs.buffer(bid, len) };
                    if len != a.size || u64::from_le_bytes(data[..8].try_into().unwrap()) >= a.count
                    {
                        bad += 1;
                    }
                    bytes += len as u64;
                    bufs.recycle(bid)?;
                    got += 1;
                    progress = Instant::now();
                    received.store(got, Ordering::Release);
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        let sent = sender.join().expect("sender panicked")?;
        result?;
        // Keep the promise made to `push`: reap every RECV still in flight before `rx` and
        // `bufs` go. Shutting the socket's read side completes them (with 0 bytes).
        let _ = rustix::net::shutdown(&rx, rustix::net::Shutdown::Read);
        let end = Instant::now() + Duration::from_secs(2);
        while armed > 0 && Instant::now() < end {
            let _ = submitter.enter(0, 1, Some(Duration::from_millis(20)));
            while let Some(c) = cq.pop() {
                armed -= 1;
                if let Some(bid) = c.buffer_id() {
                    bufs.recycle(bid)?;
                }
            }
        }
        if armed > 0 {
            eprintln!("uring_recv: {armed} RECVs still in flight at exit");
        }
        Ok((sent, got, bytes, bad))
    })?;

    let secs = start.elapsed().as_secs_f64();
    println!(
        "uring_recv: received {got}/{} datagrams ({sent} sent, {bad} malformed), {bytes} bytes \
         in {secs:.3} s: {:.0} datagrams/s, {:.1} MB/s",
        a.count,
        got as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    if got < a.count || bad > 0 {
        std::process::exit(1);
    }
    Ok(())
}
