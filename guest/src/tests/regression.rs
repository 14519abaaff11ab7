//! Regression cases: each reproduces a failure the module once had, named after it, and
//! checks the promise that fixed it (driver/kmod/README.md).
//!
//! - `read(2)`/`write(2)` moved the file position, into the next resource's offset ("Positions
//!   name resources"; issue 9).
//! - A `pwrite` whose source faulted part-way zero-filled the resource past the fault and
//!   answered `EFAULT` ("Short counts, never lost bytes"; issue 9).
//! - Threads racing page-frame faults of one entry each counted it ("Exact fault counts";
//!   fixed in fb64224). `pktmap-guest pool-races ROUNDS` runs only this one, for looping.

use crate::sys::{self, peek, poke};
use crate::utils::{counted, fill, pattern, read_pool, read_resource, state, Report, PAGE, PMD};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions};
use std::ffi::c_void;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

/// `read(2)`/`write(2)` at the file position act on the resource it names and never move it.
pub fn read_write_moved_the_position(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 2).create(dev).expect("pool");
    let ring = dev.create_ring(8, pool.id).expect("ring");
    // Pool ids and ring ids both start at 1 in a fresh open; whatever they are, the offset one
    // page past the pool's is where the old driver's position drifted to.
    let off = ResourceType::Pool.offset(pool.id);
    let ring_before = read_resource(dev, ResourceType::Ring, ring.id, PAGE);
    let set = sys::lseek(fd, off as i64, libc::SEEK_SET);
    r.check(
        "lseek to a pool's offset",
        set.as_ref().ok() == Some(&off),
        format!("{set:?}"),
    );
    let page = vec![0xa5u8; PAGE];
    let w1 = sys::write_fd(fd, &page);
    let w2 = sys::write_fd(fd, &[0x5a; PAGE]);
    let pos = sys::lseek(fd, 0, libc::SEEK_CUR);
    r.check(
        "write(2) twice: both write the pool from byte 0, the position stays",
        matches!((&w1, &w2), (Ok(PAGE), Ok(PAGE))) && pos.as_ref().ok() == Some(&off),
        format!("{w1:?} {w2:?} position {pos:?}"),
    );
    let seen = read_pool(dev, pool.id, 2 * PAGE);
    r.check(
        "write(2) twice: the second write overwrote the first, the next page is untouched",
        seen[..PAGE].iter().all(|&b| b == 0x5a) && seen[PAGE..].iter().all(|&b| b == 0),
        "other bytes",
    );
    r.check(
        "write(2) twice: the ring one page past the pool's offset is untouched",
        read_resource(dev, ResourceType::Ring, ring.id, PAGE) == ring_before,
        "ring changed",
    );
    let (mut a, mut b) = (vec![0u8; PAGE], vec![1u8; PAGE]);
    let r1 = sys::read_fd(fd, &mut a);
    let r2 = sys::read_fd(fd, &mut b);
    r.check(
        "read(2) twice: both read the pool from byte 0, never the ring",
        matches!((&r1, &r2), (Ok(PAGE), Ok(PAGE))) && a == b && a.iter().all(|&x| x == 0x5a),
        format!("{r1:?} {r2:?}"),
    );
    // Position one page past the pool: that is the ring's offset only if the ids line up; in
    // any case read(2) there reads exactly what pread there reads.
    let next = off + PAGE as u64;
    let _ = sys::lseek(fd, next as i64, libc::SEEK_SET);
    let mut c = vec![0u8; 64];
    let via_read = sys::read_fd(fd, &mut c).map(|n| c[..n].to_vec());
    let mut d = vec![0u8; 64];
    let via_pread = sys::pread_raw(fd, d.as_mut_ptr(), 64, next).map(|n| d[..n].to_vec());
    r.check(
        "read(2) at a position reads what pread(2) there reads",
        format!("{via_read:?}") == format!("{via_pread:?}"),
        format!("{via_read:?} vs {via_pread:?}"),
    );
    let _ = sys::lseek(fd, 0, libc::SEEK_SET);
    dev.destroy_ring(ring.id).expect("destroy ring");
    dev.destroy_pool(pool.id).expect("destroy pool");
}

/// `pread`/`pwrite` with a user buffer that faults part-way: the short count, and nothing else
/// of the resource changed.
pub fn faulting_pwrite_zero_filled(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 4).create(dev).expect("pool");
    let off = ResourceType::Pool.offset(pool.id);
    // Two pages of user memory, the second PROT_NONE.
    let buf = sys::mmap_raw(None, 2 * PAGE, RW, libc::MAP_PRIVATE, 0).expect("anon");
    sys::mprotect(buf.wrapping_add(PAGE), PAGE, libc::PROT_NONE).expect("mprotect");
    for i in 0..PAGE {
        // SAFETY: Inside the first, writable page.
        unsafe { poke(buf.add(i), 0xee) };
    }

    fill(dev, pool.id, 4 * PAGE, 1);
    let n = sys::pwrite_raw(fd, buf, 2 * PAGE, off);
    let seen = read_pool(dev, pool.id, 4 * PAGE);
    r.check(
        "pwrite faulting at a page boundary returns the bytes before it",
        matches!(n, Ok(PAGE)),
        format!("{n:?}"),
    );
    r.check(
        "pwrite faulting at a page boundary leaves the next pool page as it was",
        seen[..PAGE].iter().all(|&b| b == 0xee)
            && (PAGE..4 * PAGE).all(|i| seen[i] == pattern(1, i)),
        "pool bytes past the fault changed",
    );

    fill(dev, pool.id, 4 * PAGE, 2);
    let mid = buf.wrapping_add(PAGE / 2);
    let n = sys::pwrite_raw(fd, mid, PAGE, off);
    let seen = read_pool(dev, pool.id, 4 * PAGE);
    let got = *n.as_ref().unwrap_or(&0);
    r.check(
        "pwrite faulting mid-page returns a short count (at most the readable half)",
        n.is_ok() && got > 0 && got <= PAGE / 2,
        format!("{n:?}"),
    );
    r.check(
        "pwrite faulting mid-page: copied bytes landed, every other pool byte as it was",
        seen[..got].iter().all(|&b| b == 0xee) && (got..4 * PAGE).all(|i| seen[i] == pattern(2, i)),
        "pool bytes past the fault changed",
    );

    fill(dev, pool.id, 4 * PAGE, 3);
    let bad = buf.wrapping_add(PAGE);
    r.errno(
        "pwrite from an unreadable buffer: EFAULT",
        sys::pwrite_raw(fd, bad, PAGE, off),
        libc::EFAULT,
    );
    let seen = read_pool(dev, pool.id, 4 * PAGE);
    r.check(
        "pwrite from an unreadable buffer changes nothing",
        (0..4 * PAGE).all(|i| seen[i] == pattern(3, i)),
        "pool changed",
    );

    let n = sys::pread_raw(fd, buf, 2 * PAGE, off);
    // SAFETY: Inside the first, readable page.
    let first = unsafe { peek(buf) };
    r.check(
        "pread into a buffer faulting at a page boundary returns the bytes before it",
        matches!(n, Ok(PAGE)) && first == pattern(3, 0),
        format!("{n:?}"),
    );
    r.errno(
        "pread into an unwritable buffer: EFAULT",
        sys::pread_raw(fd, bad, PAGE, off),
        libc::EFAULT,
    );
    // SAFETY: The mapping made above, used by nothing else.
    let _ = unsafe { sys::munmap(buf, 2 * PAGE) };
    dev.destroy_pool(pool.id).expect("destroy");
}

/// Rounds of [`racing_pfn_faults_counted_twice`] in a `pools` run (each maps the pool afresh).
pub const RACE_ROUNDS: u32 = 4;

/// A barrier for threads that run in lockstep: every thread calls [`wait`](Self::wait) with
/// the same step numbers in order, and no thread passes step `n` before all have reached it.
/// It spins (yielding now and then), so the threads leave it together and the faults that
/// follow overlap in the driver.
struct Lockstep {
    arrived: AtomicUsize,
    threads: usize,
}

impl Lockstep {
    fn wait(&self, step: usize) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let target = self.threads * (step + 1);
        let mut spins = 0u32;
        while self.arrived.load(Ordering::Acquire) < target {
            spins += 1;
            if spins % 1024 == 0 {
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
    }
}

/// `threads` threads write into each of `pages` (addresses) at the same moment, page after
/// page; returns the minor faults they took in their loops.
fn race_touch(threads: usize, pages: &[usize]) -> u64 {
    let step = Lockstep {
        arrived: AtomicUsize::new(0),
        threads,
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let step = &step;
                s.spawn(move || {
                    let before = sys::thread_minor_faults();
                    for (i, &addr) in pages.iter().enumerate() {
                        step.wait(i);
                        // SAFETY: Every address is inside a writable shared mapping that
                        // outlives the scope; racing writes of one byte through volatile
                        // stores are what the check is about.
                        unsafe { poke((addr + t * 64) as *mut u8, t as u8) };
                    }
                    (sys::thread_minor_faults() - before).max(0) as u64
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    })
}

/// Threads racing faults of the same entries of a 2 MiB pool: every page of a mapping at a
/// FIXED address 4 KiB off the 2 MiB grid (each a 4 KiB `.fault`), and every block of an
/// aligned mapping (each a `.huge_fault` of one PMD). Both faults of an entry succeed, but
/// only one of them maps it, so STATE must count each page and each block exactly once.
/// `rounds` maps the pool afresh that many times for each kind.
pub fn racing_pfn_faults_counted_twice(r: &mut Report, dev: &Device, rounds: u32) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let info = match PoolOptions::new(4096, 1024).huge().create(dev) {
        Ok(i) => i,
        Err(e) => return r.check("POOL_CREATE 2 MiB pool 4096 x 1024 (races)", false, e),
    };
    let len = info.bytes as usize;
    let (mut small, mut small_rounds) = ((0, 0, 0), 0);
    let (mut huge, mut huge_rounds) = ((0, 0, 0), 0);
    // Minor faults the threads took: each fault that found its entry mapped by the other
    // thread is one more than the driver counts, so this shows the race really ran.
    let (mut small_minor, mut huge_minor) = (0, 0);
    for _ in 0..rounds {
        // 4 KiB entries: FIXED one page off the 2 MiB grid.
        let hole = MapOptions::new(len + 2 * PMD)
            .map_anonymous()
            .expect("reserve address space");
        let aligned = (hole.as_ptr() as usize).next_multiple_of(PMD);
        drop(hole);
        let addr = NonNull::new((aligned + PAGE) as *mut c_void).expect("non-null");
        let m = MapOptions::new(len)
            .flags(MapFlags::FIXED)
            .at(addr)
            .map(dev, info.mmap_offset)
            .expect("map the 2 MiB pool FIXED unaligned");
        let before = state(dev);
        let pages: Vec<usize> = (0..len / PAGE)
            .map(|i| m.as_ptr() as usize + i * PAGE)
            .collect();
        small_minor += race_touch(threads, &pages);
        let c = counted(dev, &before);
        small = (small.0 + c.0, small.1 + c.1, small.2 + c.2);
        small_rounds += u32::from(c != (pages.len() as u64, pages.len() as u64, 0));
        drop(m);

        // 2 MiB entries: the driver aligns the mapping; one write per block.
        let m = dev
            .map_pool(info.id, MapFlags::empty())
            .expect("map the 2 MiB pool");
        let before = state(dev);
        let blocks: Vec<usize> = (0..len / PMD)
            .map(|i| m.as_ptr() as usize + i * PMD + 3 * PAGE)
            .collect();
        huge_minor += race_touch(threads, &blocks);
        let c = counted(dev, &before);
        let n = blocks.len() as u64;
        huge = (huge.0 + c.0, huge.1 + c.1, huge.2 + c.2);
        huge_rounds += u32::from(c != (n * 512, n, n) || m.as_ptr() as usize % PMD != 0);
        drop(m);
    }
    let (pages, blocks) = ((len / PAGE) as u64, (len / PMD) as u64);
    let rounds64 = u64::from(rounds);
    println!(
        "note races: minor faults beyond those served (faults that lost a race): 4 KiB {} of \
         {}, 2 MiB {} of {}",
        small_minor.saturating_sub(small.1),
        small_minor,
        huge_minor.saturating_sub(huge.1),
        huge_minor
    );
    r.check(
        &format!(
            "{threads} threads racing 4 KiB faults of one 2 MiB pool (FIXED off the grid, \
             {rounds} x {pages} pages): each page counted once"
        ),
        small == (pages * rounds64, pages * rounds64, 0),
        format!(
            "(pages_mapped, faults_served, pmd_faults) {small:?}, want {:?}; {small_rounds} of \
             {rounds} rounds miscounted",
            (pages * rounds64, pages * rounds64, 0)
        ),
    );
    r.check(
        &format!(
            "{threads} threads racing 2 MiB faults ({rounds} x {blocks} blocks): each PMD \
             counted once"
        ),
        huge == (
            blocks * 512 * rounds64,
            blocks * rounds64,
            blocks * rounds64,
        ),
        format!(
            "(pages_mapped, faults_served, pmd_faults) {huge:?}, want {:?}; {huge_rounds} of \
             {rounds} rounds miscounted",
            (
                blocks * 512 * rounds64,
                blocks * rounds64,
                blocks * rounds64
            )
        ),
    );
    let _ = dev.destroy_pool(info.id);
}
