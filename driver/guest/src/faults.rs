//! Faults per second the driver serves, from one or more threads of one process: each thread
//! maps a lazy pool of its own, touches every page (one fault each), drops the pages again with
//! `MADV_DONTNEED` and repeats until the time is up. Measures the fault path (`.fault`, page
//! insertion, the STATE counters), not the touching.

use crate::sys;
use pktmap::device::{Device, Fill};
use pktmap::resource::MapFlags;
use std::time::{Duration, Instant};

/// Pages per thread's pool.
const PAGES: u32 = 64;

/// Prints `faults: THREADS threads: N faults in S s = R faults/s` and returns the rate.
pub fn run(secs: u64, threads: u32) -> f64 {
    let dev = Device::open().expect("open /dev/pktmap");
    let before = dev.state().expect("STATE").faults_served;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let dev = &dev;
            s.spawn(move || {
                let pool = dev.create_pool(4096, PAGES, Fill::Lazy).expect("pool");
                let m = dev.map_pool(pool.id, MapFlags::empty()).expect("map");
                while Instant::now() < deadline {
                    for page in 0..PAGES as usize {
                        m.write_at(page * 4096, &[1]).expect("touch");
                    }
                    sys::madvise_dontneed(m.as_ptr(), m.len()).expect("MADV_DONTNEED");
                }
                drop(m);
                dev.destroy_pool(pool.id).expect("destroy");
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let faults = dev.state().expect("STATE").faults_served - before;
    let rate = faults as f64 / elapsed;
    println!("faults: {threads} threads: {faults} faults in {elapsed:.1} s = {rate:.0} faults/s");
    rate
}
