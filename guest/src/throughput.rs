//! Fault throughput of every pool kind that faults (`pktmap-guest fault-kinds SECS ROUNDS`):
//! faults/s served from 1 thread, 2 threads sharing one mapping, and 2 processes with a
//! mapping each, on
//!
//! - *lazy* pools (`fault_around` 1: one fault per page, dropped again by `MADV_DONTNEED`),
//! - *4 KiB fallback*: a 2 MiB pool mapped `FIXED` 4 KiB off the 2 MiB grid, so every page is
//!   one `vmf_insert_pfn` fault (the path a contiguous pool's page would take, too: contiguous
//!   pools are mapped whole at `mmap` and take no faults to measure),
//! - *2 MiB*: one `vmf_insert_pfn_pmd` fault per 2 MiB block.
//!
//! What is timed is faulting, and nothing else: every pool is made (and mapped) before the
//! clock starts and destroyed after it stops, and each thread or process adds up only the time
//! it spends touching entries that were dropped, each touch one fault. The rate of a
//! configuration is all its faults ÷ the longest of those times: the times are wall clock
//! (a thread whose vCPU waits for the host is still timed), so with no parallelism at all two
//! threads' times each cover both and the rate is one thread's, and only faulting truly at
//! once makes it 2×. (Summing each thread's own faults ÷ time would credit two threads that
//! took turns on one CPU.) The STATE page's `faults_served` must move by exactly the faults
//! counted (a check).
//!
//! Dropping the entries again happens between the timed touches, never during them: a
//! thread (or process) touches its share, the threads of one mapping meet at a barrier, one of
//! them drops every entry (`MADV_DONTNEED` for a lazy pool; page-frame entries cannot be
//! dropped that way, `EINVAL` for `VM_PFNMAP`, so the pool is mapped again `MAP_FIXED` over
//! the whole mapping), and they start the next pass together. A drop while another thread of
//! the process touches interrupts that thread's timed faults with a TLB shootdown (an IPI the
//! dropping CPU waits for, slow under QEMU's TCG): measured that way (each thread dropping its
//! own half), 2 threads on one lazy mapping made 0.31× the faults/s of one thread, while 2
//! processes, which share no TLB, made 1.69× (6.12 guest, host load ~5).
//!
//! The kinds and configurations are interleaved, each measured SECS seconds per round, and
//! the table prints each round and the mean ratios.

use crate::sys;
use crate::utils::Report;
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use std::ffi::c_void;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const PMD: usize = 2 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lazy,
    Fallback,
    Huge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lazy => "lazy (fault_around 1)",
            Kind::Fallback => "4 KiB fallback (2 MiB pool off-grid)",
            Kind::Huge => "2 MiB (one PMD per fault)",
        }
    }

    /// Pool bytes, and the stride at which a toucher must touch to fault every entry.
    fn geometry(self) -> (usize, usize) {
        match self {
            Kind::Lazy => (4 << 20, PAGE),
            Kind::Fallback => (8 << 20, PAGE),
            Kind::Huge => (32 << 20, PMD),
        }
    }

    fn options(self) -> PoolOptions {
        let (bytes, _) = self.geometry();
        let opts = PoolOptions::new(4096, (bytes / 4096) as u32);
        match self {
            Kind::Lazy => opts.lazy(1),
            Kind::Fallback | Kind::Huge => opts.huge(),
        }
    }
}

/// One mapping of a fresh pool of `kind` and the way to drop its entries.
struct Target<'d> {
    dev: &'d Device,
    kind: Kind,
    id: u32,
    /// The reservation (`raw`, `raw_len`) and the mapping's address and length.
    raw: *mut u8,
    raw_len: usize,
    at: *mut u8,
    len: usize,
}

// SAFETY: The raw pointers name memory this process owns; threads only touch disjoint pages,
// and a remap of the whole mapping happens between barriers.
unsafe impl Sync for Target<'_> {}

impl<'d> Target<'d> {
    fn new(dev: &'d Device, kind: Kind) -> Self {
        let info = kind.options().create(dev).expect("pool");
        let len = info.bytes as usize;
        let raw_len = len + 2 * PMD;
        let raw =
            sys::mmap_raw(None, raw_len, libc::PROT_NONE, libc::MAP_PRIVATE, 0).expect("reserve");
        let aligned = (raw as usize).next_multiple_of(PMD);
        let at = match kind {
            Kind::Fallback => aligned + PAGE,
            _ => aligned,
        } as *mut u8;
        let t = Target {
            dev,
            kind,
            id: info.id,
            raw,
            raw_len,
            at,
            len,
        };
        t.map();
        t
    }

    /// Maps the pool `FIXED` at `at` (replacing the mapping there, and with it its entries).
    fn map(&self) {
        let offset = pktmap::offset::ResourceType::Pool.offset(self.id);
        // SAFETY: `MAP_FIXED` inside our own reservation.
        let p = unsafe {
            libc::mmap(
                self.at.cast::<c_void>(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.dev.as_fd().as_raw_fd(),
                offset as libc::off_t,
            )
        };
        assert_eq!(p.cast::<u8>(), self.at, "mmap FIXED");
    }

    /// The entries (first, end) of part `part` of `parts`.
    fn part(&self, part: usize, parts: usize) -> (usize, usize) {
        let (_, stride) = self.kind.geometry();
        let entries = self.len / stride;
        (entries * part / parts, entries * (part + 1) / parts)
    }

    /// Touches part `part` of `parts` of the mapping (one byte per entry, each entry dropped
    /// before, so each touch is one fault); returns the faults.
    fn touch(&self, part: usize, parts: usize) -> u64 {
        let (_, stride) = self.kind.geometry();
        let (from, to) = self.part(part, parts);
        for i in from..to {
            // SAFETY: Inside the writable mapping.
            unsafe { sys::poke(self.at.add(i * stride), 1) };
        }
        (to - from) as u64
    }

    /// Drops every entry, so that the next touches fault again.
    fn drop_entries(&self) {
        match self.kind {
            Kind::Lazy => sys::madvise_dontneed(self.at, self.len).expect("MADV_DONTNEED"),
            Kind::Fallback | Kind::Huge => self.map(),
        }
    }
}

impl Drop for Target<'_> {
    fn drop(&mut self) {
        // SAFETY: Our reservation, with the mapping inside it; nothing uses it any more.
        unsafe { libc::munmap(self.raw.cast(), self.raw_len) };
        let _ = self.dev.destroy_pool(self.id);
    }
}

/// What one thread or process measured: the faults it took, and the time it spent taking them.
#[derive(Clone, Copy, Default)]
struct Tally {
    faults: u64,
    busy: Duration,
}

impl Tally {
    /// Times one `touch`.
    fn touch(&mut self, t: &Target, part: usize, parts: usize) {
        let start = Instant::now();
        self.faults += t.touch(part, parts);
        self.busy += start.elapsed();
    }

    /// All the faults of `tallies` ÷ the longest time one of them spent faulting.
    fn rate(tallies: &[Tally]) -> f64 {
        let faults: u64 = tallies.iter().map(|t| t.faults).sum();
        let busy = tallies.iter().map(|t| t.busy).max().unwrap_or_default();
        faults as f64 / busy.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `threads` threads fault the mapping `t` for `secs` seconds; one tally per thread.
fn one_mapping(t: &Target, threads: usize, secs: f64) -> Vec<Tally> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let barrier = Barrier::new(threads);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|part| {
                let (barrier, stop) = (&barrier, &stop);
                s.spawn(move || {
                    let mut tally = Tally::default();
                    loop {
                        tally.touch(t, part, threads);
                        if barrier.wait().is_leader() {
                            t.drop_entries();
                            if Instant::now() >= deadline {
                                stop.store(true, Ordering::SeqCst);
                            }
                        }
                        barrier.wait();
                        if stop.load(Ordering::SeqCst) {
                            break tally;
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("thread"))
            .collect()
    })
}

/// One process: makes its pool and mapping, says so, waits for the go, measures, and writes
/// its tally (faults, busy nanoseconds) back.
fn process(kind: Kind, secs: f64, mut line: UnixStream) -> i32 {
    let Ok(dev) = Device::open() else { return 1 };
    let t = Target::new(&dev, kind);
    let mut go = [0u8];
    if line.write_all(b"r").is_err() || line.read_exact(&mut go).is_err() {
        return 1;
    }
    let tally = one_mapping(&t, 1, secs)[0];
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&tally.faults.to_le_bytes());
    out[8..].copy_from_slice(&(tally.busy.as_nanos() as u64).to_le_bytes());
    drop(t);
    i32::from(line.write_all(&out).is_err())
}

/// Faults/s for `kind` with `n` threads on one mapping, or `n` processes; and whether STATE
/// counted exactly the faults the touches took.
fn measure(kind: Kind, n: usize, processes: bool, secs: f64) -> (f64, bool) {
    let dev = Device::open().expect("open /dev/pktmap");
    let (tallies, before) = if processes {
        let (children, mut lines): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (ours, theirs) = UnixStream::pair().expect("socketpair");
                let pid = sys::spawn_child(move || process(kind, secs, theirs));
                (pid, ours)
            })
            .unzip();
        // Every pool is made and mapped before anything is counted.
        for line in &mut lines {
            let mut ready = [0u8];
            line.read_exact(&mut ready).expect("a child's pool");
        }
        let before = dev.state().expect("STATE").faults_served;
        for line in &mut lines {
            line.write_all(b"g").expect("go");
        }
        let tallies = lines
            .iter_mut()
            .map(|line| {
                let mut b = [0u8; 16];
                line.read_exact(&mut b).expect("a child's tally");
                let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
                Tally {
                    faults: word(0),
                    busy: Duration::from_nanos(word(8)),
                }
            })
            .collect::<Vec<_>>();
        for child in children {
            assert_eq!(sys::wait_child(child), None, "fault-kinds child");
        }
        (tallies, before)
    } else {
        let t = Target::new(&dev, kind);
        let before = dev.state().expect("STATE").faults_served;
        (one_mapping(&t, n, secs), before)
    };
    let served = dev.state().expect("STATE").faults_served - before;
    let counted: u64 = tallies.iter().map(|t| t.faults).sum();
    let rate = Tally::rate(&tallies);
    (rate, served == counted)
}

/// `pktmap-guest fault-kinds SECS ROUNDS`.
pub fn run(r: &mut Report, secs: f64, rounds: u32) {
    let kinds = [Kind::Lazy, Kind::Fallback, Kind::Huge];
    let configs = [(1, false), (2, false), (2, true)];
    let mut sums = [[0.0f64; 3]; 3];
    for round in 1..=rounds {
        for (k, &kind) in kinds.iter().enumerate() {
            let mut rates = [0.0; 3];
            let mut exact = [false; 3];
            for (c, &(n, processes)) in configs.iter().enumerate() {
                (rates[c], exact[c]) = measure(kind, n, processes, secs);
                sums[k][c] += rates[c];
            }
            println!(
                "fault-kinds: round {round}: {}: 1 thread {:.0}/s, 2 threads one mapping {:.0}/s ({:.2}x), 2 processes {:.0}/s ({:.2}x)",
                kind.name(),
                rates[0],
                rates[1],
                rates[1] / rates[0],
                rates[2],
                rates[2] / rates[0]
            );
            r.check(
                &format!(
                    "fault-kinds: {} faults served in every configuration",
                    kind.name()
                ),
                rates.iter().all(|&x| x > 0.0),
                format!("{rates:?}"),
            );
            r.check(
                &format!(
                    "fault-kinds: {}: STATE counted exactly the faults the touches took",
                    kind.name()
                ),
                exact.iter().all(|&e| e),
                format!("1 thread, 2 threads, 2 processes: {exact:?}"),
            );
        }
    }
    println!("fault-kinds: | kind | 1 thread (faults/s) | 2 threads, one mapping | 2 processes |");
    println!("fault-kinds: |---|---|---|---|");
    for (k, &kind) in kinds.iter().enumerate() {
        let [one, two, procs] = sums[k].map(|x| x / f64::from(rounds));
        println!(
            "fault-kinds: | {} | {one:.0} | {two:.0} ({:.2}x) | {procs:.0} ({:.2}x) |",
            kind.name(),
            two / one,
            procs / one
        );
    }
}
