//! Faults per second the driver serves, from one or more threads of one process, or from one or
//! more processes: each maps a lazy pool of its own, touches every page (one fault each), drops
//! the pages again with `MADV_DONTNEED` and repeats until the time is up. Measures the fault
//! path (`.fault`, page insertion, the STATE counters), not the touching.
//!
//! Threads share one mm, so each `MADV_DONTNEED` also shoots down the other CPU's TLB (an IPI,
//! slow under TCG); processes do not, and show what the driver's own locking costs.

use crate::sys;
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use std::time::{Duration, Instant};

/// Pages per thread's pool.
const PAGES: u32 = 64;

/// One fault loop on `dev` until `deadline`.
fn fault_loop(dev: &Device, deadline: Instant) {
    let pool = PoolOptions::new(4096, PAGES)
        .lazy(1)
        .create(dev)
        .expect("pool");
    let m = dev.map_pool(pool.id, MapFlags::empty()).expect("map");
    while Instant::now() < deadline {
        for page in 0..PAGES as usize {
            m.write_at(page * 4096, &[1]).expect("touch");
        }
        sys::madvise_dontneed(m.as_ptr(), m.len()).expect("MADV_DONTNEED");
    }
    drop(m);
    dev.destroy_pool(pool.id).expect("destroy");
}

/// Prints `faults: N threads|processes: F faults in S s = R faults/s` and returns the rate.
pub fn run(secs: u64, n: u32, processes: bool) -> f64 {
    let dev = Device::open().expect("open /dev/pktmap");
    let before = dev.state().expect("STATE").faults_served;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    if processes {
        let children: Vec<_> = (0..n)
            .map(|_| {
                sys::spawn_child(|| {
                    let Ok(dev) = Device::open() else { return 1 };
                    fault_loop(&dev, deadline);
                    0
                })
            })
            .collect();
        for child in children {
            let _ = sys::wait_child(child);
        }
    } else {
        std::thread::scope(|s| {
            for _ in 0..n {
                let dev = &dev;
                s.spawn(move || fault_loop(dev, deadline));
            }
        });
    }
    let elapsed = start.elapsed().as_secs_f64();
    let faults = dev.state().expect("STATE").faults_served - before;
    let rate = faults as f64 / elapsed;
    let what = if processes { "processes" } else { "threads" };
    println!("faults: {n} {what}: {faults} faults in {elapsed:.1} s = {rate:.0} faults/s");
    rate
}
