//! Several processes creating, mapping, touching, unmapping and destroying pools at once, for a
//! bounded time; each also has a second thread that destroys pools while they are mapped. The
//! harness checks the kernel log for WARN, BUG and Oops afterwards.

use crate::sys::{spawn_child, wait_child};
use crate::Report;
use pktmap::device::{Device, Fill};
use pktmap::offset::ResourceType;
use pktmap::resource::{MapFlags, Mapping};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Iterations per process at most, whatever the time budget.
const MAX_ITERATIONS: u32 = 200_000;

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
fn worker(seed: u64, deadline: Instant) -> Result<u32, String> {
    let mut rng = Rng(seed | 1);
    let mut dev = Device::open().map_err(|e| format!("open: {e}"))?;
    let doomed = Arc::new(AtomicU32::new(0));
    let mut iterations = 0;
    while Instant::now() < deadline && iterations < MAX_ITERATIONS {
        iterations += 1;
        let buf_size = 256 << rng.below(9); // 256 .. 65536
        let buf_count = 1 + rng.below(64) as u32;
        let fill = if rng.below(2) == 0 {
            Fill::Eager
        } else {
            Fill::Lazy
        };
        let info = dev
            .create_pool(buf_size, buf_count, fill)
            .map_err(|e| format!("create: {e}"))?;
        let flags = if rng.below(2) == 0 {
            MapFlags::POPULATE
        } else {
            MapFlags::empty()
        };
        let maps: Vec<Mapping> = (0..1 + rng.below(3))
            .map(|_| dev.map_pool(info.id, flags))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("map: {e}"))?;
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
        let mut buf = [0u8; 16];
        let _ = dev.read_resource(ResourceType::Pool, info.id, &mut buf);
        let destroyed_by_racer = racer.map(|t| t.join().unwrap_or(false)).unwrap_or(false);
        if rng.below(2) == 0 {
            // Unmap first, then destroy.
            drop(maps);
        }
        if !destroyed_by_racer {
            dev.destroy_pool(info.id)
                .map_err(|e| format!("destroy: {e}"))?;
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

pub fn run(r: &mut Report, secs: u64, procs: u32) {
    let dev = Device::open().expect("open /dev/pktmap");
    let base = dev.state().expect("STATE");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    println!("stress: {procs} processes for {secs} s");
    let children: Vec<_> = (0..procs)
        .map(|i| {
            spawn_child(
                move || match worker(0x9e37_79b9_7f4a_7c15 ^ u64::from(i), deadline) {
                    Ok(n) => {
                        println!("stress: process {i}: {n} iterations");
                        0
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
            &format!("stress process {i} finished cleanly"),
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
