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
//! Page-frame entries cannot be dropped by `MADV_DONTNEED` (`EINVAL` for `VM_PFNMAP`), so
//! those kinds drop them by mapping the pool again `MAP_FIXED` at the same address; the rate
//! then includes that `mmap`. Threads on one mapping split its pages in halves and meet at a
//! barrier around each drop. The kinds and configurations are interleaved, each measured SECS
//! seconds per round, and the table prints each round and the mean ratios.

use crate::sys;
use crate::utils::Report;
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd};
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
            Kind::Lazy => (2 << 20, PAGE),
            Kind::Fallback => (4 << 20, PAGE),
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

// SAFETY: The raw pointers name memory this process owns; threads only touch disjoint pages
// and the drop happens between barriers.
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

    /// Drops every entry, so the next touches fault again.
    fn drop_entries(&self) {
        match self.kind {
            Kind::Lazy => sys::madvise_dontneed(self.at, self.len).expect("MADV_DONTNEED"),
            Kind::Fallback | Kind::Huge => self.map(),
        }
    }

    /// Touches part `part` of `parts` of the mapping (one byte per entry).
    fn touch(&self, part: usize, parts: usize) {
        let (_, stride) = self.kind.geometry();
        let entries = self.len / stride;
        let (from, to) = (entries * part / parts, entries * (part + 1) / parts);
        for i in from..to {
            // SAFETY: Inside the writable mapping.
            unsafe { sys::poke(self.at.add(i * stride), 1) };
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

/// `threads` threads fault one mapping of `kind` until `deadline`.
fn one_mapping(dev: &Device, kind: Kind, threads: usize, deadline: Instant) {
    let t = Target::new(dev, kind);
    let barrier = Barrier::new(threads);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for part in 0..threads {
            let (t, barrier, stop) = (&t, &barrier, &stop);
            s.spawn(move || loop {
                t.touch(part, threads);
                if barrier.wait().is_leader() {
                    t.drop_entries();
                    if Instant::now() >= deadline {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                barrier.wait();
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            });
        }
    });
}

/// Faults/s for `kind` with `n` threads on one mapping, or `n` processes.
fn measure(kind: Kind, n: usize, processes: bool, secs: f64) -> f64 {
    let dev = Device::open().expect("open /dev/pktmap");
    let before = dev.state().expect("STATE").faults_served;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    if processes {
        let children: Vec<_> = (0..n)
            .map(|_| {
                sys::spawn_child(|| {
                    let Ok(dev) = Device::open() else { return 1 };
                    one_mapping(&dev, kind, 1, deadline);
                    0
                })
            })
            .collect();
        for child in children {
            let _ = sys::wait_child(child);
        }
    } else {
        one_mapping(&dev, kind, n, deadline);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let faults = dev.state().expect("STATE").faults_served - before;
    faults as f64 / elapsed
}

/// `pktmap-guest fault-kinds SECS ROUNDS`.
pub fn run(r: &mut Report, secs: f64, rounds: u32) {
    let kinds = [Kind::Lazy, Kind::Fallback, Kind::Huge];
    let configs = [(1, false), (2, false), (2, true)];
    let mut sums = [[0.0f64; 3]; 3];
    for round in 1..=rounds {
        for (k, &kind) in kinds.iter().enumerate() {
            let mut rates = [0.0; 3];
            for (c, &(n, processes)) in configs.iter().enumerate() {
                rates[c] = measure(kind, n, processes, secs);
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
