//! Several processes creating, mapping, touching, unmapping and destroying pools at once, for a
//! bounded time or a given number of cycles each; racing them, a second thread destroys pools
//! while they are mapped, another closes a duplicate of the open file while it maps, and forked
//! children touch the mappings while the parent unmaps and destroys. Afterwards every gauge
//! must be back at its baseline; the harness checks the kernel log for WARN, BUG and Oops.

use crate::sys::{spawn_child, wait_child};
use crate::utils::Report;
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, Mapping};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Iterations per process at most, whatever the time budget.
const MAX_ITERATIONS: u32 = 200_000;

/// `stress SECS PROCS [CYCLES]`: with `CYCLES`, every process runs exactly that many cycles
/// (and `SECS` 0 means no time limit).
pub struct Budget {
    /// Stop at this time (if any).
    pub deadline: Option<Instant>,
    /// Cycles per process.
    pub cycles: u32,
}

/// xorshift64: reproducible pseudo-random choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One process's loop; returns the iterations done, or the first unexpected error.
fn worker(seed: u64, budget: &Budget) -> Result<u32, String> {
    let mut rng = Rng(seed | 1);
    let mut dev = Device::open().map_err(|e| format!("open: {e}"))?;
    let doomed = Arc::new(AtomicU32::new(0));
    let mut iterations = 0;
    while budget.deadline.is_none_or(|d| Instant::now() < d) && iterations < budget.cycles {
        iterations += 1;
        // Pools up to 4 MiB; with a cycle count (the soak's 10,000 per process) up to 256 KiB,
        // so the cycles are many short ones.
        let (sizes, counts) = if budget.cycles < MAX_ITERATIONS {
            (7, 16)
        } else {
            (9, 64)
        };
        let buf_size = 256 << rng.below(sizes); // 256 .. 16384 or 65536
        let buf_count = 1 + rng.below(counts) as u32;
        let options = PoolOptions::new(buf_size, buf_count);
        let options = if rng.below(2) == 0 {
            options
        } else {
            options.lazy(1)
        };
        let info = options.create(&dev).map_err(|e| format!("create: {e}"))?;
        let flags = if rng.below(2) == 0 {
            MapFlags::POPULATE
        } else {
            MapFlags::empty()
        };
        let mut maps: Vec<Mapping> = (0..1 + rng.below(3))
            .map(|_| dev.map_pool(info.id, flags))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("map: {e}"))?;
        // A racing fork: the child touches every mapping while the parent goes on to unmap and
        // destroy; the child must see its inherited mappings whole.
        let child = (rng.below(16) == 0).then(|| {
            let addrs: Vec<(usize, usize)> = maps
                .iter()
                .filter_map(|m| Some((m.as_mut_ptr()? as usize, m.len())))
                .collect();
            crate::sys::spawn_child(move || {
                for (p, len) in addrs {
                    for off in (0..len).step_by(4096) {
                        // SAFETY: Inherited shared writable mappings of the parent's pool.
                        unsafe { crate::sys::poke((p + off) as *mut u8, 1) };
                    }
                }
                0
            })
        });
        // Race a destroy from another thread against the touching below, sometimes.
        let racer = (rng.below(4) == 0).then(|| {
            doomed.store(info.id, Ordering::Relaxed);
            let dev2 = dev.try_clone().expect("dup");
            let doomed = Arc::clone(&doomed);
            std::thread::spawn(move || {
                let id = doomed.load(Ordering::Relaxed);
                dev2.destroy_pool(id).is_ok()
            })
        });
        for m in &maps {
            let pages = m.len() / 4096;
            for _ in 0..4 {
                let at = rng.below(pages as u64) as usize * 4096;
                m.write_at(at, &iterations.to_ne_bytes())
                    .map_err(|e| format!("touch: {e}"))?;
            }
        }
        // A racing close: a duplicate of the open file maps the pool and is dropped from
        // another thread at once.
        if rng.below(8) == 0 {
            let dup = dev.try_clone().map_err(|e| format!("dup: {e}"))?;
            let id = info.id;
            std::thread::spawn(move || {
                let m = dup.map_pool(id, MapFlags::empty());
                drop(dup);
                drop(m);
            })
            .join()
            .map_err(|_| "racing close panicked".to_string())?;
        }
        let mut buf = [0u8; 16];
        let _ = dev.read_resource(ResourceType::Pool, info.id, &mut buf);
        let destroyed_by_racer = racer.map(|t| t.join().unwrap_or(false)).unwrap_or(false);
        if rng.below(2) == 0 {
            // Unmap first, then destroy.
            maps.clear();
        }
        if !destroyed_by_racer {
            dev.destroy_pool(info.id)
                .map_err(|e| format!("destroy: {e}"))?;
        }
        maps.clear();
        if let Some(pid) = child {
            if let Some(sig) = crate::sys::wait_child(pid) {
                return Err(format!("a forked child died: {sig}"));
            }
        }
        if rng.below(50) == 0 {
            // Close with everything freed, or with a pool still mapped.
            let keep = if rng.below(2) == 0 {
                dev.map_state().ok()
            } else {
                None
            };
            dev = Device::open().map_err(|e| format!("reopen: {e}"))?;
            drop(keep);
        }
    }
    Ok(iterations)
}

pub fn run(r: &mut Report, secs: u64, procs: u32, cycles: Option<u32>) {
    let dev = Device::open().expect("open /dev/pktmap");
    let base = dev.state().expect("STATE");
    let start = Instant::now();
    let budget = Budget {
        deadline: (secs > 0 || cycles.is_none()).then(|| start + Duration::from_secs(secs)),
        cycles: cycles.unwrap_or(MAX_ITERATIONS),
    };
    match cycles {
        Some(c) => {
            println!("stress: {procs} processes x {c} cycles (time limit {secs} s, 0 = none)")
        }
        None => println!("stress: {procs} processes for {secs} s"),
    }
    let children: Vec<_> = (0..procs)
        .map(|i| {
            spawn_child(
                || match worker(0x9e37_79b9_7f4a_7c15 ^ u64::from(i), &budget) {
                    Ok(n) => {
                        println!("stress: process {i}: {n} cycles");
                        // With a cycle count, finishing early (the time limit) is a failure.
                        if cycles.is_some_and(|c| n < c) {
                            2
                        } else {
                            0
                        }
                    }
                    Err(e) => {
                        println!("stress: process {i}: {e}");
                        1
                    }
                },
            )
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let sig = wait_child(child);
        r.check(
            &format!("stress process {i} finished cleanly (all its cycles)"),
            sig.is_none(),
            format!("{sig:?}"),
        );
    }
    let end = dev.state().expect("STATE");
    r.check(
        "after the stress every gauge is back to its baseline",
        [end.pools, end.rings, end.pages_allocated, end.live_mappings]
            == [
                base.pools,
                base.rings,
                base.pages_allocated,
                base.live_mappings,
            ],
        format!("{base:?} -> {end:?}"),
    );
    println!(
        "stress: {} pages mapped, {} faults served in {:.1} s",
        end.pages_mapped - base.pages_mapped,
        end.faults_served - base.faults_served,
        start.elapsed().as_secs_f64()
    );
}
