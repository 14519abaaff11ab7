//! 2 MiB pools (driver/kmod/README.md, "Pool kinds map as they say": *2 MiB*): the aligned
//! address, one PMD entry per 2 MiB block, the 4 KiB fallback at a `FIXED` address off the
//! 2 MiB grid, PMDs split by a partial `munmap`, `POPULATE`, `MAP_PRIVATE` refused.

use crate::sys::{self, in_child, peek};
use crate::utils::{
    pattern, pattern_round_trip, read_pool, served, state, touch, Report, MIB, PAGE, PMD,
};
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions};
use pktmap_abi::ioctl;
use std::ffi::c_void;
use std::ptr::NonNull;

pub fn run(r: &mut Report, dev: &Device) {
    // 8 MiB: four 2 MiB chunks.
    let info = match PoolOptions::new(4096, 2048).huge().create(dev) {
        Ok(i) => i,
        Err(e) => return r.check("POOL_CREATE 2 MiB pool 4096 x 2048", false, e),
    };
    r.check(
        "2 MiB pool: POOL_INFO says 8 MiB in 2 MiB chunks",
        info.flags == ioctl::POOL_HUGE
            && info.bytes == 8 * MIB as u64
            && info.chunk_bytes == PMD as u64,
        format!("{info:?}"),
    );
    let before = state(dev);
    match dev.map_pool(info.id, MapFlags::empty()) {
        Ok(m) => {
            r.check(
                "2 MiB pool: mmap places it 2 MiB-aligned (get_unmapped_area)",
                m.as_ptr() as usize % PMD == 0,
                format!("{:p}", m.as_ptr()),
            );
            let mapped = served(dev, &before);
            let taken = touch(&m, 0, m.len() / PAGE, 9);
            let pmd = state(dev).pmd_faults - before.pmd_faults;
            r.check(
                "2 MiB pool: touching 2048 pages takes 4 faults, each one PMD of 512 pages",
                mapped == (0, 0) && served(dev, &before) == (4, 2048) && pmd == 4 && taken == 4,
                format!(
                    "at mmap {mapped:?}, after {:?}, pmd faults {pmd}, minor faults {taken}",
                    served(dev, &before)
                ),
            );
            pattern_round_trip(r, dev, &info, &m, "2 MiB pool");
            // Unmapping one page splits its PMD; the rest of that 2 MiB refaults by 4 KiB
            // and keeps its data.
            // SAFETY: One page of our own mapping; nothing uses it afterwards.
            unsafe { sys::munmap(m.as_ptr().add(PMD + 7 * PAGE), PAGE) }.expect("munmap a page");
            let before = state(dev);
            let b = (0..512)
                .filter(|&i| i != 7)
                // SAFETY: Page `i` of the second 2 MiB, still mapped (all but page 7).
                .map(|i| unsafe { peek(m.as_ptr().add(PMD + i * PAGE)) })
                .collect::<Vec<u8>>();
            let want: Vec<u8> = (0..512)
                .filter(|&i| i != 7)
                .map(|i| pattern(0, PMD + i * PAGE))
                .collect();
            let pmd = state(dev).pmd_faults - before.pmd_faults;
            r.check(
                "a split 2 MiB entry refaults as 4 KiB entries and keeps the data",
                b == want && served(dev, &before) == (511, 511) && pmd == 0,
                format!("{:?}, pmd faults {pmd}", served(dev, &before)),
            );
            let child = in_child(|| {
                // SAFETY: The inherited mapping's first page is readable in the child.
                let b = unsafe { peek(m.as_ptr().add(3 * PMD + 5)) };
                std::process::exit(i32::from(b != pattern(0, 3 * PMD + 5)));
            });
            r.check(
                "a fork child reads the 2 MiB pool through the inherited mapping",
                child.is_none(),
                format!("child: {child:?}"),
            );
        }
        Err(e) => r.check("mmap 2 MiB pool", false, e),
    }

    // FIXED at an address 4 KiB off the 2 MiB grid: every page by a 4 KiB entry.
    let hole = MapOptions::new(8 * MIB + 2 * PMD)
        .map_anonymous()
        .expect("reserve address space");
    let aligned = (hole.as_ptr() as usize).next_multiple_of(PMD);
    drop(hole);
    let addr = NonNull::new((aligned + PAGE) as *mut c_void).expect("non-null");
    let before = state(dev);
    match MapOptions::new(8 * MIB)
        .flags(MapFlags::FIXED)
        .at(addr)
        .map(dev, info.mmap_offset)
    {
        Ok(m) => {
            let taken = touch(&m, 0, 2048, 4);
            let pmd = state(dev).pmd_faults - before.pmd_faults;
            r.check(
                "2 MiB pool mapped FIXED 4 KiB off the grid: 4 KiB entries, one fault per page",
                m.as_ptr() as usize == aligned + PAGE
                    && served(dev, &before) == (2048, 2048)
                    && pmd == 0
                    && taken == 2048,
                format!(
                    "{:?}, pmd faults {pmd}, minor faults {taken}",
                    served(dev, &before)
                ),
            );
            let seen = read_pool(dev, info.id, 8 * MIB);
            r.check(
                "the unaligned mapping is the same memory",
                seen.iter().step_by(PAGE).all(|&b| b == 4),
                "pread disagrees",
            );
        }
        Err(e) => r.check("mmap 2 MiB pool FIXED unaligned", false, e),
    }
    // POPULATE through the library: the kernel's MADV_POPULATE refuses PFN maps, so map_pool
    // brings the pages in itself; touching afterwards takes no fault.
    let before = state(dev);
    match dev.map_pool(info.id, MapFlags::POPULATE) {
        Ok(m) => {
            let mid = state(dev);
            let taken = touch(&m, 0, m.len() / PAGE, 6);
            r.check(
                "2 MiB pool + POPULATE (map_pool): 4 PMD faults while mapping, none on touch",
                mid.faults_served - before.faults_served == 4
                    && mid.pmd_faults - before.pmd_faults == 4
                    && served(dev, &before) == (4, 2048)
                    && taken == 0,
                format!("{:?}, minor faults on touch {taken}", served(dev, &before)),
            );
        }
        Err(e) => r.check("2 MiB pool + POPULATE (map_pool)", false, e),
    }
    r.errno(
        "2 MiB pool, raw MapOptions + POPULATE: EINVAL (MADV_POPULATE refuses PFN maps)",
        MapOptions::new(PMD)
            .flags(MapFlags::POPULATE)
            .map(dev, info.mmap_offset),
        libc::EINVAL,
    );
    r.errno(
        "mmap a 2 MiB pool MAP_PRIVATE: EINVAL",
        MapOptions::new(PMD).private().map(dev, info.mmap_offset),
        libc::EINVAL,
    );
    let _ = dev.destroy_pool(info.id);
}
