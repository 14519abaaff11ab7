//! The STATE page (driver/kmod/README.md, "Consistent STATE"): read by `pread` and by a
//! read-only mapping (the magic, the mapping counted), its one page and id, and its
//! snapshots: even, growing sequence words, a mapped seqcount reader agreeing with `pread`, and
//! never a torn snapshot under concurrent updates. That nothing can write it is
//! [`read_only`](super::read_only)'s.

use crate::utils::{gauges, mapped_bytes, state, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, Mapping};
use pktmap_abi::ioctl::{self, State, STATE_MAGIC};
use std::time::{Duration, Instant};

/// STATE through `pread` and through a read-only mapping.
pub fn page(r: &mut Report, dev: &Device, base: &State) {
    r.check(
        "STATE via pread has the magic",
        base.magic == STATE_MAGIC,
        format!("{:#x}", base.magic),
    );
    match dev.map_state() {
        Ok(m) => {
            let magic = u64::from_ne_bytes(mapped_bytes(&m, 0, 8).try_into().unwrap());
            r.check(
                "STATE mmap READONLY shows the magic",
                magic == STATE_MAGIC,
                format!("{magic:#x}"),
            );
            let s = state(dev);
            r.check(
                "STATE live_mappings counts the STATE mapping",
                s.live_mappings == base.live_mappings + 1,
                format!("{} -> {}", base.live_mappings, s.live_mappings),
            );
        }
        Err(e) => r.check("STATE mmap READONLY", false, e),
    }
    r.errno(
        "mmap STATE two pages: EINVAL",
        dev.map(ResourceType::State, 0, 2 * PAGE, MapFlags::READONLY),
        libc::EINVAL,
    );
    r.errno(
        "mmap STATE id 1: EINVAL",
        dev.map(ResourceType::State, 1, PAGE, MapFlags::READONLY),
        libc::EINVAL,
    );
}

/// STATE snapshots are consistent: even sequence words that only grow, and a mapped reader
/// following the seqcount protocol agrees with pread while the device is quiet.
pub fn snapshots(r: &mut Report, dev: &Device) {
    let a = state(dev);
    if let Ok(p) = PoolOptions::new(256, 1).lazy(1).create(dev) {
        let _ = dev.destroy_pool(p.id);
    }
    let b = state(dev);
    r.check(
        "pread STATE snapshots have even, growing sequence words",
        a.is_consistent() && b.is_consistent() && b.sequence > a.sequence,
        format!("{} -> {}", a.sequence, b.sequence),
    );
    let Ok(m) = dev.map_state() else {
        return r.check("map STATE", false, "failed");
    };
    let mapped = seq_read(&m);
    let now = state(dev);
    r.check(
        "a seqcount read of the mapped STATE page equals pread's snapshot",
        mapped
            .as_ref()
            .is_some_and(|s| gauges(s) == gauges(&now) && s.is_consistent()),
        format!("{mapped:?} vs {now:?}"),
    );
    // Under load from another thread (create and destroy of a one-page pool: the reservation
    // publishes pages +1 first, then pools +1; the destroy takes both back in one update),
    // no whole snapshot may show the pool without its page.
    let base = state(dev);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (torn, reads, stalls) = std::thread::scope(|s| {
        s.spawn(|| {
            let d = dev.try_clone().expect("dup");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(p) = PoolOptions::new(4096, 1).create(&d) {
                    let _ = d.destroy_pool(p.id);
                }
            }
        });
        let (mut torn, mut reads, mut stalls) = (0, 0, 0);
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            match seq_read(&m) {
                Some(s) => {
                    reads += 1;
                    let pool_without_page =
                        s.pools > base.pools && s.pages_allocated == base.pages_allocated;
                    if s.magic != ioctl::STATE_MAGIC || !s.is_consistent() || pool_without_page {
                        torn += 1;
                    }
                }
                // The writer held the page odd for 100 ms (its vCPU descheduled by the host).
                None => stalls += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (torn, reads, stalls)
    });
    println!("promises: {reads} mapped STATE snapshots under load, {stalls} waits past 100 ms");
    r.check(
        "mapped STATE snapshots under concurrent updates are never torn",
        torn == 0 && reads > 0,
        format!("{torn} torn of {reads}"),
    );
}

/// The seqcount reader over a mapped STATE page; `None` if no stable snapshot in 100 ms.
fn seq_read(m: &Mapping) -> Option<State> {
    use std::sync::atomic::{fence, Ordering};
    let seq_at = std::mem::offset_of!(State, sequence);
    let word = |i: usize| {
        // SAFETY: Inside the one-page mapping, 8-byte aligned; a volatile load of a word the
        // driver stores with WRITE_ONCE.
        unsafe { (m.as_ptr().add(i) as *const u64).read_volatile() }
    };
    let until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < until {
        let before = word(seq_at);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        fence(Ordering::Acquire);
        let mut w = [0u64; pktmap_abi::ioctl::STATE_WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            *v = word(i * 8);
        }
        fence(Ordering::Acquire);
        if word(seq_at) == before {
            return Some(State::from_words(w));
        }
    }
    None
}
