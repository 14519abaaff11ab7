//! The packet bench: frames through a mapped ring, per mechanism, on the same traffic in the
//! same run.
//!
//! A *cell* is a [`Kind`] (mechanism and path), a [`FrameSize`] and a [`Wait`]: its
//! repetitions send a fixed count of frames and count, exactly, where each went. Paths:
//!
//! | path | traffic | counted where |
//! |---|---|---|
//! | [`Path::Rx`] | pktgen `netif_receive` on `pkta`: the receive path alone | the consumer's frames + the mechanism's drop counters == pktgen's `pkts-sofar` |
//! | [`Path::RxVeth`] | pktgen `start_xmit` on `pktb` → veth → `pkta` (or, without pktgen, a packet socket sending on `pktb`) | as above, + the veth's drops (`pktb` `tx_dropped`) == frames handed to `pktb` |
//! | [`Path::Tx`] | the mechanism's TX ring on `pkta` → veth → `pktb` | `pkta`'s `tx_packets` + `tx_dropped` + the mechanism's refusals == frames queued + frames the mechanism re-sent |
//!
//! Mechanisms: [`Mechanism::Pktmap`] (pktmap.ko's packet rings, through
//! [`pktmap::packet`](::pktmap::packet)), and its peers [`Mechanism::Tpacket`] (AF_PACKET
//! `TPACKET_V3`) and [`Mechanism::Xdp`] (AF_XDP copy mode on generic XDP). Every cell of a
//! run runs round-robin, one repetition per round, in an order shuffled per round
//! ([`round_order`](super::round_order)), as the POPULATE bench does.
//!
//! Per repetition: delivered frames per second (delivered ÷ the time from the first frame
//! sent to the last one delivered, sampled every millisecond), drops by reason (the
//! mechanism's own counters, the devices', softnet's), system calls the consumer (or
//! producer) made — every one it makes goes through a counter —, its wakeups (`poll` returns
//! with frames ready) and batches, its CPU time and voluntary context switches
//! (`getrusage(RUSAGE_THREAD)`), and the machine's CPU ticks (`/proc/stat`). The run happens
//! in a network namespace of its own (`unshare(CLONE_NEWNET)` on a thread of its own), which
//! takes the veth pair with it when the run ends.

pub mod link;
pub mod pktgen;
pub mod pktmap;
pub mod report;
pub mod tpacket;
pub mod xdp;

use super::sys;
use link::{DevCounters, Ticks, Veth};
use pktgen::{Job, Pktgen, XmitMode};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use report::{LoneLatency, PacketCell, PacketCheck, PacketReport};

/// A packet mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// AF_PACKET with `TPACKET_V3` rings.
    Tpacket,
    /// AF_XDP in copy mode (generic XDP, need_wakeup).
    Xdp,
    /// pktmap.ko's packet rings ([`pktmap::packet`](::pktmap::packet)): the subject.
    Pktmap,
}

impl Mechanism {
    /// Every mechanism, in table order.
    pub const ALL: [Mechanism; 3] = [Mechanism::Tpacket, Mechanism::Xdp, Mechanism::Pktmap];

    /// The peers pktmap is measured against.
    pub const PEERS: [Mechanism; 2] = [Mechanism::Tpacket, Mechanism::Xdp];

    /// Its name in cell names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Tpacket => "tpacket",
            Mechanism::Xdp => "xdp",
            Mechanism::Pktmap => "pktmap",
        }
    }
}

/// Which way frames go, and where they come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    /// Received, from pktgen's `netif_receive` (the receive path alone).
    Rx,
    /// Received over the veth pair, from pktgen's `start_xmit` on the peer.
    RxVeth,
    /// Sent from the mechanism's TX ring over the veth pair.
    Tx,
}

impl Path {
    /// Every path, in table order.
    pub const ALL: [Path; 3] = [Path::Rx, Path::RxVeth, Path::Tx];

    /// Its suffix in cell names.
    pub fn name(self) -> &'static str {
        match self {
            Path::Rx => "rx",
            Path::RxVeth => "rx-veth",
            Path::Tx => "tx",
        }
    }
}

/// A mechanism on a path: what `pktmap bench --only` names (`tpacket-rx`, `xdp-tx`, ...).
///
/// # Examples
/// ```
/// use pktmap_tools::bench::packets::{Kind, Mechanism, Path};
/// let k = Kind::parse("xdp-rx-veth").unwrap();
/// assert_eq!((k.mechanism, k.path), (Mechanism::Xdp, Path::RxVeth));
/// assert_eq!(k.name(), "xdp-rx-veth");
/// assert!(Kind::parse("xdp-sideways").is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The path.
    pub path: Path,
}

impl Kind {
    /// Every kind: each mechanism on each path (`--only packets`).
    pub fn all() -> Vec<Kind> {
        Self::of(&Mechanism::ALL)
    }

    /// The peers' kinds (`--only peers`): what runs without pktmap's packet path.
    pub fn peers() -> Vec<Kind> {
        Self::of(&Mechanism::PEERS)
    }

    fn of(mechanisms: &[Mechanism]) -> Vec<Kind> {
        let mut v = Vec::new();
        for path in Path::ALL {
            for &mechanism in mechanisms {
                v.push(Kind { mechanism, path });
            }
        }
        v
    }

    /// `mechanism-path`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.mechanism.name(), self.path.name())
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::all().into_iter().find(|k| k.name() == s)
    }
}

/// The frame sizes of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameSize {
    /// 64 B on the wire: 60 bytes without the FCS, the smallest Ethernet frame.
    Min,
    /// 1500 B of IP payload: 1514 bytes without the FCS, a full frame of a 1500 MTU.
    Mtu,
}

impl FrameSize {
    /// Both sizes.
    pub const ALL: [FrameSize; 2] = [FrameSize::Min, FrameSize::Mtu];

    /// The frame's length as the mechanisms see it (no FCS).
    pub fn frame_len(self) -> usize {
        match self {
            FrameSize::Min => 60,
            FrameSize::Mtu => 1514,
        }
    }

    /// Its label in tables: `64 B`, `1500 B`.
    pub fn label(self) -> &'static str {
        match self {
            FrameSize::Min => "64 B",
            FrameSize::Mtu => "1500 B",
        }
    }
}

/// How the consumer (or producer) waits when its ring has nothing for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wait {
    /// Spins on the ring: no system call while frames flow.
    Busy,
    /// Sleeps in `poll(2)` on the socket (10 ms at most per call).
    Sleep,
}

impl Wait {
    /// Both.
    pub const ALL: [Wait; 2] = [Wait::Busy, Wait::Sleep];

    /// `busy` or `sleep`.
    pub fn name(self) -> &'static str {
        match self {
            Wait::Busy => "busy",
            Wait::Sleep => "sleep",
        }
    }
}

/// A receiving mechanism, as the consumer loop drives it.
pub trait Receiver: Send {
    /// Takes what is ready, never blocking: reads every frame's 14-byte Ethernet header
    /// (adding its EtherType to `sum`, so the read cannot be optimised away) and gives the
    /// frames back. Returns how many.
    ///
    /// # Errors
    /// A ring access out of its mapping (a kernel or layout bug).
    fn take(&mut self, sum: &mut u64) -> io::Result<usize>;
    /// Sleeps in `poll(2)` until frames are ready or `timeout` passes; whether ready.
    ///
    /// # Errors
    /// The `poll` errno.
    fn wait(&mut self, timeout: Duration) -> io::Result<bool>;
    /// The system calls made so far (every `poll` and wakeup call).
    fn syscalls(&self) -> u64;
    /// The mechanism's drop counters by reason, since it was made (called once, after).
    ///
    /// # Errors
    /// The `getsockopt` errno.
    fn drops(&mut self) -> io::Result<Vec<(&'static str, u64)>>;
    /// Frames the mechanism says it saw (delivered and dropped), if it counts them.
    ///
    /// # Errors
    /// The `getsockopt` errno.
    fn seen(&mut self) -> io::Result<Option<u64>>;
}

/// What a transmitter says about its frames, after a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxAccount {
    /// Frames it refused or failed, by reason.
    pub drops: Vec<(&'static str, u64)>,
    /// Frames it sent more than once (a device drop it retried).
    pub resent: u64,
}

/// A sending mechanism, as the producer loop drives it.
pub trait Transmitter: Send {
    /// Copies `frame` into up to `n` free slots, queues them and tells the kernel; returns
    /// how many were queued.
    ///
    /// # Errors
    /// A ring access out of its mapping, or the kick's errno.
    fn send(&mut self, frame: &[u8], n: usize, wait: Wait) -> io::Result<usize>;
    /// Takes back the slots the kernel is done with; returns how many.
    ///
    /// # Errors
    /// A ring access out of its mapping.
    fn reap(&mut self) -> io::Result<usize>;
    /// Sleeps in `poll(2)` until a slot frees or `timeout` passes.
    ///
    /// # Errors
    /// The `poll` errno.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
    /// The system calls made so far.
    fn syscalls(&self) -> u64;
    /// The mechanism's own accounting, after the run.
    ///
    /// # Errors
    /// The `getsockopt` errno.
    fn account(&mut self) -> io::Result<TxAccount>;
}

/// What one repetition of a cell measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PacketSample {
    /// Frames handed to the path: pktgen's count (plus the ones the veth refused), or the
    /// frames queued on a TX ring plus the ones it re-sent.
    pub sent: u64,
    /// Frames that arrived: taken off the RX ring, or sent by the device (`tx_packets`).
    pub delivered: u64,
    /// Frames lost, by reason (the mechanism's counters, then the devices').
    pub drops: Vec<(String, u64)>,
    /// From the first frame sent to the last delivered.
    pub elapsed: Duration,
    /// The consumer's (producer's) system calls.
    pub syscalls: u64,
    /// `poll` calls that returned with frames ready.
    pub wakeups: u64,
    /// Non-empty batches taken (RX) or queued (TX).
    pub batches: u64,
    /// The consumer's (producer's) CPU time, user + system.
    pub thread_cpu: Duration,
    /// Its voluntary context switches (each sleep is one).
    pub voluntary_switches: u64,
    /// The machine's CPU ticks over the repetition.
    pub ticks: Ticks,
    /// Softnet's drops over the repetition, machine-wide (a cross-check; not added to
    /// `drops`).
    pub softnet_dropped: u64,
    /// Frames the mechanism says it saw, if it counts them (TPACKET's `tp_packets`).
    pub seen: Option<u64>,
}

impl PacketSample {
    /// Every drop, summed.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// Whether `delivered + dropped == sent`.
    pub fn balanced(&self) -> bool {
        self.delivered + self.dropped() == self.sent
    }
}

/// What a run measures.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketPlan {
    /// The kinds, sizes and waits; every combination is a cell.
    pub kinds: Vec<Kind>,
    /// The frame sizes.
    pub sizes: Vec<FrameSize>,
    /// The waits.
    pub waits: Vec<Wait>,
    /// Frames per repetition.
    pub frames: u64,
    /// Rounds run and thrown away first.
    pub warmup: usize,
    /// Measured rounds.
    pub rounds: usize,
}

impl PacketPlan {
    /// Every kind, both sizes and both waits, 200,000 frames a repetition, 1 + 5 rounds.
    ///
    /// # Examples
    /// ```
    /// let p = pktmap_tools::bench::packets::PacketPlan::standard();
    /// assert_eq!(p.cells().len(), 9 * 2 * 2);
    /// ```
    pub fn standard() -> Self {
        Self {
            kinds: Kind::all(),
            sizes: FrameSize::ALL.to_vec(),
            waits: Wait::ALL.to_vec(),
            frames: 200_000,
            warmup: 1,
            rounds: 5,
        }
    }

    /// A few seconds' worth: 20,000 frames, 64 B only, 1 + 2 rounds.
    ///
    /// # Examples
    /// ```
    /// let p = pktmap_tools::bench::packets::PacketPlan::quick();
    /// assert!(p.cells().iter().all(|c| c.1 == pktmap_tools::bench::packets::FrameSize::Min));
    /// ```
    pub fn quick() -> Self {
        Self {
            sizes: vec![FrameSize::Min],
            frames: 20_000,
            rounds: 2,
            ..Self::standard()
        }
    }

    /// The cells, in plan order.
    pub fn cells(&self) -> Vec<(Kind, FrameSize, Wait)> {
        let mut v = Vec::new();
        for &k in &self.kinds {
            for &s in &self.sizes {
                for &w in &self.waits {
                    v.push((k, s, w));
                }
            }
        }
        v
    }
}

/// The traffic source of the receive paths.
enum Source {
    Pktgen(Pktgen),
    /// A packet socket sending on the peer: the host's stand-in (no pktgen there); only
    /// [`Path::RxVeth`] can use it.
    Socket,
}

/// Pins the calling thread to `cpu` if the machine has it (not an error otherwise).
fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The consumer's CPU, where it can be apart from pktgen's thread (CPU 0).
fn consumer_cpu() -> usize {
    usize::from(cores() > 1)
}

/// The run's bench: the namespace's veth pair and the traffic source.
struct Bed {
    veth: Veth,
    source: Source,
}

impl Bed {
    fn new() -> io::Result<Self> {
        let veth = Veth::new("pkta", "pktb")?;
        let source = match Pktgen::open() {
            Ok(p) => Source::Pktgen(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Source::Socket,
            Err(e) => return Err(e),
        };
        Ok(Self { veth, source })
    }

    /// Why this bed cannot run `kind`, if it cannot.
    fn cannot(&self, kind: Kind) -> Option<String> {
        match (&self.source, kind.path) {
            (Source::Socket, Path::Rx) => {
                Some("needs pktgen's netif_receive (modprobe pktgen)".into())
            }
            _ => None,
        }
    }

    /// Sends `frames` frames of `size` into `pkta` along `path`; returns the frames handed
    /// over (pktgen's count plus what the veth refused, which `drops` gets).
    fn send(
        &self,
        path: Path,
        size: FrameSize,
        frames: u64,
        drops: &mut Vec<(String, u64)>,
    ) -> io::Result<u64> {
        match (&self.source, path) {
            (Source::Pktgen(pg), Path::Rx | Path::RxVeth) => {
                let (device, mode) = match path {
                    Path::Rx => (&self.veth.a, XmitMode::NetifReceive),
                    _ => (&self.veth.b, XmitMode::StartXmit),
                };
                let job = Job {
                    device: device.name.clone(),
                    cpu: 0,
                    mode,
                    count: frames,
                    frame_len: size.frame_len(),
                    dst_mac: self.veth.a.mac_str(),
                };
                pg.setup(&job)?;
                pg.run(&job)?;
                let s = pg.sent(&device.name)?;
                pg.clear()?;
                if path == Path::Rx {
                    // NET_RX_DROP from the stack after every tap saw the frame: not a loss.
                    Ok(s.sofar)
                } else {
                    drops.push(("veth (pktgen errors)".into(), s.errors));
                    Ok(s.sofar + s.errors)
                }
            }
            (Source::Socket, Path::RxVeth) => {
                pin(0);
                let sock = pktmap_testbed::PacketSocket::bind(self.veth.b.ifindex)?;
                let mut f = pktmap_testbed::frame(self.veth.a.mac, self.veth.b.mac, &[]);
                f.resize(size.frame_len(), 0);
                let (mut ok, mut refused) = (0u64, 0u64);
                for _ in 0..frames {
                    match sock.send(&f) {
                        Ok(()) => ok += 1,
                        // The veth dropped it (its peer's backlog was full): counted by
                        // pktb's tx_dropped, reported here as ENOBUFS.
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => refused += 1,
                        Err(e) => return Err(e),
                    }
                }
                drops.push(("veth (send ENOBUFS)".into(), refused));
                Ok(ok + refused)
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }
}

fn receiver(kind: Kind, size: FrameSize, ifindex: u32) -> io::Result<Box<dyn Receiver>> {
    Ok(match kind.mechanism {
        // 4 MiB each: 16 blocks of 256 KiB, or 2048 descriptors over 4096 2 KiB frames.
        Mechanism::Tpacket => Box::new(tpacket::TpacketRx::new(ifindex, 256 << 10, 16, 10)?),
        Mechanism::Xdp => {
            let _ = size;
            Box::new(xdp::XdpRx::new(ifindex, 4096, 2048)?)
        }
        Mechanism::Pktmap => Box::new(pktmap::PktmapRx::new(ifindex, 2048)?),
    })
}

fn transmitter(kind: Kind, ifindex: u32) -> io::Result<Box<dyn Transmitter>> {
    Ok(match kind.mechanism {
        Mechanism::Tpacket => Box::new(tpacket::TpacketTx::new(ifindex, 2048)?),
        Mechanism::Xdp => Box::new(xdp::XdpTx::new(ifindex, 2048)?),
        Mechanism::Pktmap => Box::new(pktmap::PktmapTx::new(ifindex, 2048)?),
    })
}

/// How long a repetition may take before it is abandoned as hung.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long the delivered count must stay still, once the source is done, to be final.
const SETTLE: Duration = Duration::from_millis(100);

/// What the consumer thread reports back.
#[derive(Default)]
struct Consumed {
    syscalls: u64,
    wakeups: u64,
    batches: u64,
    usage: (sys::ThreadUsage, sys::ThreadUsage),
    sum: u64,
}

fn consume(
    rx: &mut dyn Receiver,
    wait: Wait,
    stop: &AtomicBool,
    delivered: &AtomicU64,
) -> io::Result<Consumed> {
    pin(consumer_cpu());
    let mut c = Consumed::default();
    let before = sys::thread_usage()?;
    let calls = rx.syscalls();
    let mut n_total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = rx.take(&mut c.sum)?;
        if n > 0 {
            n_total += n as u64;
            c.batches += 1;
            delivered.store(n_total, Ordering::Relaxed);
            continue;
        }
        match wait {
            Wait::Busy => std::hint::spin_loop(),
            Wait::Sleep => {
                if rx.wait(Duration::from_millis(10))? {
                    c.wakeups += 1;
                }
            }
        }
    }
    c.usage = (before, sys::thread_usage()?);
    c.syscalls = rx.syscalls() - calls;
    Ok(c)
}

fn cpu_of(u: &(sys::ThreadUsage, sys::ThreadUsage)) -> (Duration, u64) {
    let us = (u.1.user_us + u.1.system_us).saturating_sub(u.0.user_us + u.0.system_us);
    (
        Duration::from_micros(us),
        u.1.voluntary.saturating_sub(u.0.voluntary),
    )
}

impl Bed {
    fn receive(
        &self,
        kind: Kind,
        size: FrameSize,
        wait: Wait,
        frames: u64,
    ) -> io::Result<PacketSample> {
        let mut rx = receiver(kind, size, self.veth.a.ifindex)?;
        let (a0, b0) = (
            DevCounters::read(&self.veth.a.name)?,
            DevCounters::read(&self.veth.b.name)?,
        );
        let (ticks0, softnet0) = (Ticks::read()?, link::softnet_dropped()?);
        let stop = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        let delivered = AtomicU64::new(0);
        let mut s = PacketSample::default();
        let (consumed, (sent, drops), start, end) = std::thread::scope(|sc| -> io::Result<_> {
            let consumer = sc.spawn(|| consume(rx.as_mut(), wait, &stop, &delivered));
            let start = Instant::now();
            let source = sc.spawn(|| {
                let mut drops = Vec::new();
                let sent = self.send(kind.path, size, frames, &mut drops);
                done.store(true, Ordering::Release);
                sent.map(|n| (n, drops))
            });
            // Sample the count every millisecond from the start, so the last frame's arrival
            // is timed to within one (pktgen's `start` returns 125 ms or more after its last
            // frame), and wait for it to settle once the source is done.
            let (mut last, mut at) = (0u64, start);
            loop {
                let now = delivered.load(Ordering::Relaxed);
                if now != last {
                    (last, at) = (now, Instant::now());
                }
                let settled = done.load(Ordering::Acquire) && at.elapsed() >= SETTLE;
                if settled || start.elapsed() > DEADLINE {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            stop.store(true, Ordering::Relaxed);
            let sent = source
                .join()
                .map_err(|_| io::Error::other("traffic source panicked"))?;
            let consumed = consumer
                .join()
                .map_err(|_| io::Error::other("consumer panicked"))??;
            Ok((consumed, sent?, start, at))
        })?;
        s.drops = drops;
        s.sent = sent;
        s.delivered = delivered.load(Ordering::Relaxed);
        s.elapsed = end.saturating_duration_since(start);
        let mech: Vec<(String, u64)> = rx
            .drops()?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        s.drops.splice(0..0, mech);
        s.seen = rx.seen()?;
        let (a1, b1) = (
            DevCounters::read(&self.veth.a.name)?,
            DevCounters::read(&self.veth.b.name)?,
        );
        let (a, b) = (a1.since(&a0), b1.since(&b0));
        if kind.path == Path::RxVeth {
            // Cross-check only (pktgen's errors or the sender's ENOBUFS counted them): the
            // veth's own view of the same drops.
            debug_assert!(b.tx_dropped >= a.rx_dropped);
        }
        s.ticks = Ticks::read()?.since(&ticks0);
        s.softnet_dropped = link::softnet_dropped()?.saturating_sub(softnet0);
        (s.thread_cpu, s.voluntary_switches) = cpu_of(&consumed.usage);
        s.syscalls = consumed.syscalls;
        s.wakeups = consumed.wakeups;
        s.batches = consumed.batches;
        std::hint::black_box(consumed.sum);
        Ok(s)
    }

    fn transmit(
        &self,
        kind: Kind,
        size: FrameSize,
        wait: Wait,
        frames: u64,
    ) -> io::Result<PacketSample> {
        let mut tx = transmitter(kind, self.veth.a.ifindex)?;
        let mut frame = pktmap_testbed::frame(self.veth.b.mac, self.veth.a.mac, &[]);
        frame.resize(size.frame_len(), 0);
        let a0 = DevCounters::read(&self.veth.a.name)?;
        let (ticks0, softnet0) = (Ticks::read()?, link::softnet_dropped()?);
        let mut s = PacketSample::default();
        pin(consumer_cpu());
        let before = sys::thread_usage()?;
        let calls = tx.syscalls();
        let start = Instant::now();
        let (mut queued, mut done, mut spins) = (0u64, 0u64, 0u64);
        while done < frames {
            spins += 1;
            // The clock only now and then: where it is no vDSO call (a guest's clock source
            // may not offer one), reading it is a system call.
            if spins % 4096 == 0 && start.elapsed() > DEADLINE {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: {done} of {frames} frames completed in {DEADLINE:?}",
                        kind.name()
                    ),
                ));
            }
            let reaped = tx.reap()? as u64;
            done += reaped;
            // Called with nothing new too: copy-mode AF_XDP sends only when kicked, so frames
            // left on its TX ring need another kick (the mechanism decides).
            let want = (frames - queued).min(64) as usize;
            let n = tx.send(&frame, want, wait)? as u64;
            if n > 0 {
                s.batches += 1;
                queued += n;
            } else if reaped == 0 {
                match wait {
                    Wait::Busy => std::hint::spin_loop(),
                    Wait::Sleep => {
                        tx.wait(Duration::from_millis(10))?;
                        s.wakeups += 1;
                    }
                }
            }
        }
        s.elapsed = start.elapsed();
        let after = sys::thread_usage()?;
        (s.thread_cpu, s.voluntary_switches) = cpu_of(&(before, after));
        s.syscalls = tx.syscalls() - calls;
        let acc = tx.account()?;
        let a = DevCounters::read(&self.veth.a.name)?.since(&a0);
        s.sent = queued + acc.resent;
        s.delivered = a.tx_packets;
        s.drops = acc
            .drops
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        s.drops.push(("pkta tx_dropped".into(), a.tx_dropped));
        s.ticks = Ticks::read()?.since(&ticks0);
        s.softnet_dropped = link::softnet_dropped()?.saturating_sub(softnet0);
        Ok(s)
    }

    fn repetition(
        &self,
        kind: Kind,
        size: FrameSize,
        wait: Wait,
        frames: u64,
    ) -> io::Result<PacketSample> {
        match kind.path {
            Path::Rx | Path::RxVeth => self.receive(kind, size, wait, frames),
            Path::Tx => self.transmit(kind, size, wait, frames),
        }
    }
}

/// Frames sent one at a time for the lone-frame latency, and the gap between them.
const LONE_FRAMES: usize = 50;
const LONE_GAP: Duration = Duration::from_millis(2);

/// The latency a lone frame sees: [`LONE_FRAMES`] 64 B frames sent one at a time, [`LONE_GAP`]
/// apart, from a packet socket on `pktb` through the veth, each timed from just before its
/// `send` to the moment the consumer takes it off the ring (the consumer reads the clock
/// after every batch here, so this pass is not one whose system calls are counted).
/// Returns the latencies in microseconds, sorted; a frame not taken within 200 ms of the last
/// send is infinitely late (a result, not an error).
fn lone_latencies(bed: &Bed, mechanism: Mechanism, wait: Wait) -> io::Result<Vec<f64>> {
    let kind = Kind {
        mechanism,
        path: Path::RxVeth,
    };
    let mut rx = receiver(kind, FrameSize::Min, bed.veth.a.ifindex)?;
    let stop = AtomicBool::new(false);
    let sock = pktmap_testbed::PacketSocket::bind(bed.veth.b.ifindex)?;
    let mut frame = pktmap_testbed::frame(bed.veth.a.mac, bed.veth.b.mac, &[]);
    frame.resize(FrameSize::Min.frame_len(), 0);
    let (sent, arrivals) = std::thread::scope(|sc| -> io::Result<_> {
        let consumer = sc.spawn(|| -> io::Result<Vec<(u64, Instant)>> {
            pin(consumer_cpu());
            let (mut seen, mut sum, mut out) = (0u64, 0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let n = rx.take(&mut sum)?;
                if n > 0 {
                    seen += n as u64;
                    out.push((seen, Instant::now()));
                    continue;
                }
                match wait {
                    Wait::Busy => std::hint::spin_loop(),
                    Wait::Sleep => {
                        rx.wait(Duration::from_millis(10))?;
                    }
                }
            }
            Ok(out)
        });
        // The sender on CPU 0, the consumer on CPU 1: a spinning consumer must not share a
        // CPU with the sender (it would hold it for a time slice).
        pin(0);
        let mut sent = Vec::with_capacity(LONE_FRAMES);
        for _ in 0..LONE_FRAMES {
            std::thread::sleep(LONE_GAP);
            sent.push(Instant::now());
            sock.send(&frame)?;
        }
        // TPACKET_V3 hands over a block only when it is full or its timer (10 ms) fires.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let arrivals = consumer
            .join()
            .map_err(|_| io::Error::other("consumer panicked"))??;
        Ok((sent, arrivals))
    })?;
    let mut lat = Vec::with_capacity(sent.len());
    for (i, t) in sent.iter().enumerate() {
        // Frame i arrived in the first batch that brought the count past i; one that never
        // arrived (within 200 ms of the last send) counts as never (infinite latency).
        let at = arrivals.iter().find(|(seen, _)| *seen > i as u64);
        lat.push(at.map_or(f64::INFINITY, |(_, at)| {
            at.saturating_duration_since(*t).as_secs_f64() * 1e6
        }));
    }
    lat.sort_by(f64::total_cmp);
    Ok(lat)
}

/// Runs `plan` in a network namespace of its own (on a thread of its own), reporting each
/// repetition to `progress` (`(done, total)`).
///
/// # Errors
/// `EPERM` without root; the veth pair's errno. A cell that fails is skipped with its
/// reason in the report, not an error.
pub fn run(
    plan: &PacketPlan,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> io::Result<PacketReport> {
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let own = match sys::unshare_net() {
                Ok(()) => true,
                // A kernel without network namespaces (the guest's debug kernel): the veth
                // pair goes into the caller's, under names that fail with EEXIST rather
                // than touch an existing device, and is deleted at the end.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
                Err(e) => return Err(e),
            };
            let bed = Bed::new()?;
            let mut report = run_on(&bed, plan, progress)?;
            if !own {
                report.source += " (no network namespaces: in the caller's)";
            }
            Ok(report)
        })
        .join()
        .map_err(|_| io::Error::other("the packet bench thread panicked"))?
    })
}

fn run_on(
    bed: &Bed,
    plan: &PacketPlan,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> io::Result<PacketReport> {
    let machine = super::Machine::read();
    let start = Instant::now();
    let mut cells: Vec<(Kind, FrameSize, Wait)> = Vec::new();
    let mut skipped = Vec::new();
    for (k, s, w) in plan.cells() {
        match bed.cannot(k) {
            Some(why) => {
                if !skipped
                    .iter()
                    .any(|(n, _): &(String, String)| *n == k.name())
                {
                    skipped.push((k.name(), why));
                }
            }
            None => cells.push((k, s, w)),
        }
    }
    let mut samples: Vec<Vec<PacketSample>> = vec![Vec::new(); cells.len()];
    let mut failed: Vec<Option<String>> = vec![None; cells.len()];
    let total = (plan.warmup + plan.rounds) * cells.len();
    let mut done = 0;
    for round in 0..plan.warmup + plan.rounds {
        for i in super::round_order(round, cells.len()) {
            done += 1;
            if failed[i].is_some() {
                continue;
            }
            let (k, s, w) = cells[i];
            match bed.repetition(k, s, w, plan.frames) {
                Ok(sample) if round >= plan.warmup => samples[i].push(sample),
                Ok(_) => {}
                Err(e) => failed[i] = Some(e.to_string()),
            }
            progress(done, total);
        }
    }
    // The lone-frame latency of every mechanism with an RX cell in the plan, both waits.
    let mut lone = Vec::new();
    let mut mechanisms: Vec<Mechanism> = cells
        .iter()
        .filter(|(k, _, _)| k.path != Path::Tx)
        .map(|(k, _, _)| k.mechanism)
        .collect();
    mechanisms.dedup();
    mechanisms.sort();
    mechanisms.dedup();
    for &m in &mechanisms {
        for &w in &plan.waits {
            let name = format!("{} lone frame {}", m.name(), w.name());
            match lone_latencies(bed, m, w) {
                Ok(l) => lone.push(report::LoneLatency {
                    mechanism: m,
                    wait: w,
                    micros: l,
                }),
                Err(e) => skipped.push((name, e.to_string())),
            }
        }
    }
    let mut report = PacketReport {
        machine,
        lone,
        source: match bed.source {
            Source::Pktgen(_) => "pktgen".into(),
            Source::Socket => "packet socket (no pktgen)".into(),
        },
        frames: plan.frames,
        cells: Vec::new(),
        skipped,
        elapsed: start.elapsed(),
    };
    for (i, (k, s, w)) in cells.into_iter().enumerate() {
        match failed[i].take() {
            Some(why) => report
                .skipped
                .push((format!("{} {} {}", k.name(), s.label(), w.name()), why)),
            None => report.cells.push(PacketCell {
                kind: k,
                size: s,
                wait: w,
                samples: std::mem::take(&mut samples[i]),
            }),
        }
    }
    report.machine.load.1 = super::load_average();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::all() {
            assert_eq!(Kind::parse(&k.name()), Some(k));
        }
        assert_eq!(Kind::all().len(), 9);
        assert_eq!(FrameSize::Mtu.frame_len(), 1514);
    }

    #[test]
    fn balance() {
        let s = PacketSample {
            sent: 10,
            delivered: 7,
            drops: vec![("a".into(), 2), ("b".into(), 1)],
            ..PacketSample::default()
        };
        assert!(s.balanced());
        assert!(!PacketSample { sent: 11, ..s }.balanced());
    }
}
