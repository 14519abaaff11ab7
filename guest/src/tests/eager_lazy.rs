//! Pools of single pages (driver/kmod/README.md, "Pool kinds map as they say": *eager* and
//! *lazy*): `POOL_CREATE`/`POOL_INFO`, eager pools inserted whole at `mmap`, lazy pools one
//! fault-around window per fault (1, 4, 16 and 512 pages, split VMAs, re-faults after
//! `MADV_DONTNEED`), and `POPULATE` of both.

use crate::sys::{self, minor_faults, peek, poke};
use crate::utils::{read_pool, served, state, touch, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use pktmap_abi::ioctl::{self, State};
use std::ffi::c_void;

/// Creates the eager 2048 x 64 pool most checks use and returns its id.
pub fn eager(r: &mut Report, dev: &Device, base: &State) -> u32 {
    let info = PoolOptions::new(2048, 64)
        .create(dev)
        .expect("POOL_CREATE 2048 x 64");
    r.check(
        "POOL_CREATE/POOL_INFO describe the pool",
        info.id != 0
            && info.buf_size == 2048
            && info.buf_count == 64
            && info.flags == 0
            && info.bytes == 131072
            && info.mmap_offset == ResourceType::Pool.offset(info.id),
        format!("{info:?}"),
    );
    let s = state(dev);
    r.check(
        "STATE counts the pool and its 32 pages",
        s.pools == base.pools + 1 && s.pages_allocated == base.pages_allocated + 32,
        format!("{s:?}"),
    );
    let zero = read_pool(dev, info.id, 131072);
    r.check(
        "a new pool reads as zeros",
        zero.len() == 131072 && zero.iter().all(|&b| b == 0),
        "non-zero bytes",
    );
    let before = state(dev);
    if let Ok(m) = dev.map_pool(info.id, MapFlags::empty()) {
        let s = state(dev);
        r.check(
            "eager mmap inserts all 32 pages at mmap time",
            s.pages_mapped == before.pages_mapped + 32,
            format!("pages_mapped {} -> {}", before.pages_mapped, s.pages_mapped),
        );
        let p = m.as_mut_ptr().unwrap();
        let faults = minor_faults();
        for off in (0..m.len()).step_by(PAGE) {
            // SAFETY: Inside the writable mapping.
            unsafe { poke(p.add(off), 0) };
        }
        let taken = minor_faults() - faults;
        let after = state(dev);
        r.check(
            "eager pool: touching every page serves no fault",
            after.faults_served == before.faults_served && taken == 0,
            format!(
                "faults served {} -> {}, minor faults {taken}",
                before.faults_served, after.faults_served
            ),
        );
    } else {
        r.check("mmap the eager pool", false, "failed");
    }
    match dev.map_pool(info.id, MapFlags::POPULATE) {
        Ok(m) => {
            let p = m.as_ptr();
            let faults = minor_faults();
            for off in (0..m.len()).step_by(PAGE) {
                // SAFETY: Inside the mapping.
                std::hint::black_box(unsafe { peek(p.add(off)) });
            }
            r.check(
                "eager pool + POPULATE: no minor fault on touch",
                minor_faults() == faults,
                "faulted",
            );
        }
        Err(e) => r.check("eager pool + POPULATE maps", false, e),
    }
    info.id
}

pub fn lazy(r: &mut Report, dev: &Device) {
    let Ok(info) = PoolOptions::new(4096, 16).lazy(1).create(dev) else {
        return r.check("POOL_CREATE lazy 4096 x 16", false, "failed");
    };
    r.check(
        "a lazy pool reports POOL_LAZY",
        info.flags == ioctl::POOL_LAZY,
        format!("{info:?}"),
    );
    let before = state(dev);
    match dev.map_pool(info.id, MapFlags::empty()) {
        Ok(m) => {
            let mid = state(dev);
            let p = m.as_mut_ptr().unwrap();
            for off in (0..m.len()).step_by(PAGE) {
                // SAFETY: Inside the writable mapping.
                unsafe { poke(p.add(off), 1) };
            }
            let after = state(dev);
            r.check(
                "lazy pool: mmap inserts nothing, each touched page is one fault served",
                mid.pages_mapped == before.pages_mapped
                    && after.faults_served == before.faults_served + 16,
                format!(
                    "pages_mapped {} -> {}, faults {} -> {}",
                    before.pages_mapped,
                    mid.pages_mapped,
                    before.faults_served,
                    after.faults_served
                ),
            );
            let seen = read_pool(dev, info.id, 65536);
            r.check(
                "writes to faulted-in pages reach the driver",
                seen.iter().step_by(PAGE).all(|&b| b == 1),
                "not seen",
            );
        }
        Err(e) => r.check("mmap lazy pool", false, e),
    }
    let before = state(dev);
    match dev.map_pool(info.id, MapFlags::POPULATE) {
        Ok(m) => {
            let mid = state(dev);
            let p = m.as_ptr();
            let faults = minor_faults();
            for off in (0..m.len()).step_by(PAGE) {
                // SAFETY: Inside the mapping.
                std::hint::black_box(unsafe { peek(p.add(off)) });
            }
            let taken = minor_faults() - faults;
            // The library asks the driver (the offset's populate bit, `plan::MMAP_POPULATE`) to
            // insert every page at `mmap`, as for an eager pool: no fault at all.
            r.check(
                "lazy pool + POPULATE: the driver inserts every page at mmap, no fault then or on touch",
                mid.faults_served == before.faults_served
                    && mid.pages_mapped == before.pages_mapped + 16
                    && taken == 0,
                format!(
                    "faults served during mmap {}, pages mapped {}, minor faults on touch {taken}",
                    mid.faults_served - before.faults_served,
                    mid.pages_mapped - before.pages_mapped
                ),
            );
        }
        Err(e) => r.check("lazy pool + POPULATE maps", false, e),
    }
    super::private::lazy(r, dev, info.id);
    r.check(
        "POOL_DESTROY lazy pool",
        dev.destroy_pool(info.id).is_ok(),
        "failed",
    );
}

pub fn fault_around(r: &mut Report, dev: &Device) {
    // 64 pages at 1, 4, 16 (the default, asked for as 0) and 512 (clipped to the pool) pages
    // per fault, side by side.
    for (asked, around) in [(1, 1), (4, 4), (0, 16), (512, 512)] {
        let info = match PoolOptions::new(4096, 64).lazy(asked).create(dev) {
            Ok(i) => i,
            Err(e) => return r.check(&format!("POOL_CREATE lazy, fault_around {asked}"), false, e),
        };
        r.check(
            &format!("fault_around {asked}: POOL_INFO says {around} pages per fault"),
            info.fault_around == around && info.flags == ioctl::POOL_LAZY,
            format!("{info:?}"),
        );
        let m = dev
            .map_pool(info.id, MapFlags::empty())
            .expect("map lazy pool");
        let before = state(dev);
        let taken = touch(&m, 0, 64, 7);
        let want = 64u64.div_ceil(u64::from(around).min(64));
        r.check(
            &format!("fault_around {around}: 64 pages take {want} faults, map 64 pages"),
            served(dev, &before) == (want, 64) && taken == want as i64,
            format!(
                "(faults, pages) {:?}, minor faults {taken}",
                served(dev, &before)
            ),
        );
        let seen = read_pool(dev, info.id, 64 * PAGE);
        r.check(
            &format!("fault_around {around}: every write reached the driver"),
            seen.iter().step_by(PAGE).all(|&b| b == 7),
            "lost writes",
        );
        drop(m);
        let _ = dev.destroy_pool(info.id);
    }

    // A VMA that lost its first 3 pages: the window of page 5 is 0..16, cut to 3..16.
    let info = PoolOptions::new(4096, 64)
        .lazy(16)
        .create(dev)
        .expect("lazy pool");
    let m = dev.map_pool(info.id, MapFlags::empty()).expect("map");
    // SAFETY: The first three pages of our own mapping; nothing uses them afterwards.
    unsafe { sys::munmap(m.as_ptr(), 3 * PAGE) }.expect("munmap the head");
    let before = state(dev);
    touch(&m, 5, 6, 1);
    r.check(
        "fault-around stays inside a split VMA (page 5 of 3..64 maps 3..16)",
        served(dev, &before) == (1, 13),
        format!("{:?}", served(dev, &before)),
    );
    touch(&m, 3, 64, 2);
    r.check(
        "the rest of the split VMA: 3 more faults, 48 more pages",
        served(dev, &before) == (4, 61),
        format!("{:?}", served(dev, &before)),
    );
    // Zap four pages in the middle of a window; one fault maps exactly those four again.
    // SAFETY: MADV_DONTNEED on our own shared mapping drops PTEs, never data.
    let rc = unsafe {
        libc::madvise(
            m.as_ptr().add(20 * PAGE) as *mut c_void,
            4 * PAGE,
            libc::MADV_DONTNEED,
        )
    };
    let before = state(dev);
    touch(&m, 21, 22, 3);
    r.check(
        "after MADV_DONTNEED of 4 pages one fault re-maps exactly those 4 (present ones skipped)",
        rc == 0 && served(dev, &before) == (1, 4),
        format!("madvise {rc}, {:?}", served(dev, &before)),
    );
    let seen = read_pool(dev, info.id, 64 * PAGE);
    r.check(
        "pages kept their data across the zap",
        seen[20 * PAGE] == 2 && seen[21 * PAGE] == 3 && seen[23 * PAGE] == 2,
        format!(
            "{} {} {}",
            seen[20 * PAGE],
            seen[21 * PAGE],
            seen[23 * PAGE]
        ),
    );
    drop(m);
    let _ = dev.destroy_pool(info.id);

    for (name, around) in [("3 (not a power of two)", 3), ("1024 (over 512)", 1024)] {
        r.errno(
            &format!("lazy pool with fault_around {name}: EINVAL"),
            PoolOptions::new(4096, 4).lazy(around).create(dev),
            libc::EINVAL,
        );
    }
    let mut eager_around = PoolOptions::new(4096, 4).request();
    eager_around.fault_around = 16;
    r.errno(
        "an eager pool with fault_around: EINVAL",
        PoolOptions::from_request(eager_around).create(dev),
        libc::EINVAL,
    );
}
