//! The pool kinds beyond eager and lazy single pages, checked against the loaded driver:
//! lazy fault-around (1, 4, 16 and 512 pages per fault, split VMAs, re-faults after
//! `MADV_DONTNEED`), contiguous pools (`remap_pfn_range`, `POOL_CHUNK`, `MAP_PRIVATE`
//! refused), 2 MiB pools (PMD faults, the aligned address, the `FIXED`-unaligned fallback,
//! splits), write-combined pools (x86 PAT's own record of the pages' memory type), pool
//! file descriptors handed to an unrelated process over a UNIX socket, and threads racing
//! faults of the same page-frame entries (STATE must count each entry once).
//!
//! `pktmap-guest pools` runs them all; `pktmap-guest pool-races ROUNDS` runs only the races,
//! for looping; `pktmap-guest pool-peer MODE SOCKET` is the other process of the export
//! checks (started with nothing inherited but its arguments).

use crate::sys::{self, in_child, minor_faults, peek, poke};
use crate::Report;
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::{PoolFile, PoolOptions};
use pktmap::resource::{MapFlags, MapOptions, Mapping};
use pktmap_abi::ioctl::{self, PoolInfo, State};
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
const PMD: usize = 2 * MIB;

fn state(dev: &Device) -> State {
    dev.state().expect("reading the STATE page")
}

/// The gauges that must return to their baseline when everything is freed.
fn gauges(s: &State) -> [u64; 4] {
    [s.pools, s.rings, s.pages_allocated, s.live_mappings]
}

/// `(faults_served, pages_mapped)` since `before`.
fn served(dev: &Device, before: &State) -> (u64, u64) {
    let s = state(dev);
    (
        s.faults_served - before.faults_served,
        s.pages_mapped - before.pages_mapped,
    )
}

/// Writes one byte into every page of `m[from..to]` (page indices) and returns the minor
/// faults that took.
fn touch(m: &Mapping, from: usize, to: usize, v: u8) -> i64 {
    let p = m.as_mut_ptr().expect("writable mapping");
    let before = minor_faults();
    for i in from..to {
        // SAFETY: Page `i` is inside the writable mapping.
        unsafe { poke(p.add(i * PAGE), v) };
    }
    minor_faults() - before
}

/// The `/proc/self/smaps` `VmFlags` of the mapping that starts at `p`.
fn vm_flags(p: *const u8) -> String {
    let start = format!("{:x}-", p as usize);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    lines
        .find_map(|l| l.strip_prefix("VmFlags:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub fn run(r: &mut Report) {
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => return r.check("open /dev/pktmap", false, e),
    };
    let base = state(&dev);
    fault_around(r, &dev);
    contiguous(r, &dev);
    huge(r, &dev);
    write_combined(r, &dev);
    exported(r, &dev);
    races(r, &dev, RACE_ROUNDS);
    let end = state(&dev);
    r.check(
        "pools: every gauge back to its baseline (pools, rings, pages allocated, live mappings)",
        gauges(&end) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&end)),
    );
}

fn fault_around(r: &mut Report, dev: &Device) {
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

/// Reads `len` bytes of pool `id` through the driver (`pread`).
fn read_pool(dev: &Device, id: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    let n = dev
        .read_resource(ResourceType::Pool, id, &mut buf)
        .expect("pread of a pool");
    buf.truncate(n);
    buf
}

/// Byte `i` of the pattern [`pattern_round_trip`] writes: its page index and offset mixed.
fn pattern(i: usize) -> u8 {
    ((i / PAGE) ^ (i % 251)) as u8
}

/// Fills `m` with [`pattern`], and checks the driver reads back the same (`pread`), so every
/// page of the VMA maps the pool's own memory.
fn pattern_round_trip(r: &mut Report, dev: &Device, info: &PoolInfo, m: &Mapping, what: &str) {
    let len = m.len();
    let pattern: Vec<u8> = (0..len).map(pattern).collect();
    m.write_at(0, &pattern).expect("write the pattern");
    let seen = read_pool(dev, info.id, len);
    r.check(
        &format!("{what}: every page of the mapping is the pool's memory (pread sees the pattern)"),
        seen == pattern,
        format!(
            "first difference at byte {:?}",
            seen.iter().zip(&pattern).position(|(a, b)| a != b)
        ),
    );
}

fn contiguous(r: &mut Report, dev: &Device) {
    // 4 MiB: two physically contiguous 2 MiB chunks.
    let info = match PoolOptions::new(2048, 2048).contiguous().create(dev) {
        Ok(i) => i,
        Err(e) => return r.check("POOL_CREATE contiguous 2048 x 2048", false, e),
    };
    r.check(
        "contiguous pool: POOL_INFO says 4 MiB in 2 MiB chunks, cached",
        info.flags == ioctl::POOL_CONTIG
            && info.bytes == 4 * MIB as u64
            && info.chunk_bytes == PMD as u64
            && info.cache == ioctl::CACHE_WB
            && info.fault_around == 0,
        format!("{info:?}"),
    );
    let chunks: Vec<_> = (0..2).map(|i| dev.pool_chunk(info.id, i)).collect();
    r.check(
        "POOL_CHUNK as root: each chunk's physical address, 2 MiB-aligned and distinct",
        chunks.iter().all(|c| {
            c.as_ref()
                .is_ok_and(|c| c.phys != 0 && c.phys % PMD as u64 == 0 && c.bytes == PMD as u64)
        }) && chunks[0].as_ref().ok().map(|c| c.phys) != chunks[1].as_ref().ok().map(|c| c.phys),
        format!("{chunks:?}"),
    );
    r.errno(
        "POOL_CHUNK past the last chunk: EINVAL",
        dev.pool_chunk(info.id, 2),
        libc::EINVAL,
    );
    r.errno(
        "POOL_CHUNK of an unknown pool: EINVAL",
        dev.pool_chunk(info.id + 1000, 0),
        libc::EINVAL,
    );
    let unprivileged = in_child(|| {
        // SAFETY: Dropping to an unprivileged user in a child that only issues one ioctl.
        let rc = unsafe { libc::setuid(65534) };
        let e = dev
            .pool_chunk(info.id, 0)
            .err()
            .and_then(|e| e.raw_os_error());
        std::process::exit(if rc == 0 && e == Some(libc::EPERM) {
            0
        } else {
            1
        });
    });
    r.check(
        "POOL_CHUNK without CAP_SYS_ADMIN: EPERM",
        unprivileged.is_none(),
        format!("child: {unprivileged:?}"),
    );

    let before = state(dev);
    match dev.map_pool(info.id, MapFlags::empty()) {
        Ok(m) => {
            let mapped = served(dev, &before);
            let taken = touch(&m, 0, m.len() / PAGE, 1);
            r.check(
                "contiguous mmap maps all 1024 pages at once (remap_pfn_range); touching takes no fault",
                mapped == (0, 1024) && served(dev, &before) == (0, 1024) && taken == 0,
                format!("at mmap {mapped:?}, minor faults on touch {taken}"),
            );
            let flags = vm_flags(m.as_ptr());
            r.check(
                "contiguous mapping is VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP (smaps: io pf de dd)",
                ["io", "pf", "de", "dd"]
                    .iter()
                    .all(|f| flags.split(' ').any(|g| g == *f)),
                &flags,
            );
            pattern_round_trip(r, dev, &info, &m, "contiguous pool");
            r.errno(
                "mremap a contiguous mapping larger: EFAULT (VM_DONTEXPAND)",
                sys::mremap_grow(m.as_ptr(), m.len(), m.len() + PAGE),
                libc::EFAULT,
            );
            let child = in_child(|| {
                // SAFETY: The inherited mapping is readable in the child.
                let b = unsafe { peek(m.as_ptr().add(PAGE + 5)) };
                std::process::exit(i32::from(b != pattern(PAGE + 5)));
            });
            r.check(
                "a fork child reads the contiguous pool through the inherited mapping",
                child.is_none(),
                format!("child: {child:?}"),
            );
        }
        Err(e) => r.check("mmap contiguous pool", false, e),
    }
    match dev.map_pool(info.id, MapFlags::POPULATE) {
        Ok(m) => {
            let taken = touch(&m, 0, m.len() / PAGE, 2);
            r.check(
                "contiguous pool + POPULATE (map_pool): no fault on touch",
                taken == 0,
                format!("minor faults on touch {taken}"),
            );
        }
        Err(e) => r.check("contiguous pool + POPULATE (map_pool)", false, e),
    }
    r.errno(
        "mmap a contiguous pool MAP_PRIVATE: EINVAL",
        MapOptions::new(PAGE).private().map(dev, info.mmap_offset),
        libc::EINVAL,
    );
    r.errno(
        "mmap a contiguous pool MAP_PRIVATE read-only: EINVAL",
        MapOptions::new(PAGE)
            .private()
            .flags(MapFlags::READONLY)
            .map(dev, info.mmap_offset),
        libc::EINVAL,
    );
    let _ = dev.destroy_pool(info.id);

    // A pool of 3 pages: one chunk of 4 (the next power of two), all of it mappable.
    match PoolOptions::new(4096, 3).contiguous().create(dev) {
        Ok(small) => {
            r.check(
                "contiguous 3-page pool is one 4-page chunk",
                small.bytes == 4 * PAGE as u64 && small.chunk_bytes == 4 * PAGE as u64,
                format!("{small:?}"),
            );
            let _ = dev.destroy_pool(small.id);
        }
        Err(e) => r.check("POOL_CREATE contiguous 4096 x 3", false, e),
    }
}

fn huge(r: &mut Report, dev: &Device) {
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
                .map(|i| pattern(PMD + i * PAGE))
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
                std::process::exit(i32::from(b != pattern(3 * PMD + 5)));
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

/// x86 PAT's record of a RAM page's memory type: `/proc/kpageflags` bits `KPF_ARCH` (38,
/// `PG_arch_1`) and `KPF_ARCH_2` (41, `PG_arch_2`) are `_PGMT_WC` when 1 and 0, and
/// `_PGMT_WB` when both 0 (`arch/x86/mm/pat/memtype.c`).
fn memtype(pfn: u64) -> std::io::Result<&'static str> {
    let mut f = std::fs::File::open("/proc/kpageflags")?;
    f.seek(SeekFrom::Start(pfn * 8))?;
    let mut word = [0; 8];
    f.read_exact(&mut word)?;
    let flags = u64::from_ne_bytes(word);
    Ok(match (flags >> 38 & 1, flags >> 41 & 1) {
        (0, 0) => "WB",
        (1, 0) => "WC",
        (0, 1) => "UC-",
        _ => "WT",
    })
}

/// The memory type of the first and last page of every chunk of pool `id`.
fn chunk_memtypes(dev: &Device, info: &PoolInfo) -> Vec<String> {
    let chunks = (info.bytes / info.chunk_bytes) as u32;
    (0..chunks)
        .flat_map(|i| {
            let c = dev.pool_chunk(info.id, i).expect("POOL_CHUNK");
            let first = c.phys / PAGE as u64;
            [first, first + c.bytes / PAGE as u64 - 1]
        })
        .map(|pfn| memtype(pfn).map_or_else(|e| e.to_string(), str::to_string))
        .collect()
}

fn write_combined(r: &mut Report, dev: &Device) {
    r.errno(
        "write-combined eager pool: EINVAL",
        PoolOptions::new(4096, 4).write_combined().create(dev),
        libc::EINVAL,
    );
    r.errno(
        "write-combined lazy pool: EINVAL",
        PoolOptions::new(4096, 4)
            .lazy(0)
            .write_combined()
            .create(dev),
        libc::EINVAL,
    );
    for (what, opts) in [
        ("contiguous", PoolOptions::new(4096, 1024).contiguous()),
        ("2 MiB", PoolOptions::new(4096, 1024).huge()),
    ] {
        let (wb, wc) = match (opts.create(dev), opts.write_combined().create(dev)) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                return r.check(
                    &format!("POOL_CREATE {what} WB and WC"),
                    false,
                    format!("{a:?} {b:?}"),
                )
            }
        };
        let (t_wb, t_wc) = (chunk_memtypes(dev, &wb), chunk_memtypes(dev, &wc));
        r.check(
            &format!(
                "{what} pools: x86 PAT records WC for every page of the WC pool, WB for the other"
            ),
            wc.cache == ioctl::CACHE_WC
                && t_wc.iter().all(|t| t == "WC")
                && t_wb.iter().all(|t| t == "WB"),
            format!("WC pool {t_wc:?}, WB pool {t_wb:?}"),
        );
        match dev.map_pool(wc.id, MapFlags::empty()) {
            Ok(m) => {
                touch(&m, 0, m.len() / PAGE, 5);
                pattern_round_trip(r, dev, &wc, &m, &format!("write-combined {what} pool"));
            }
            Err(e) => r.check(&format!("mmap write-combined {what} pool"), false, e),
        }
        // The memory goes back to the allocator as WB: PAT's record is reset on free.
        let pfn = dev.pool_chunk(wc.id, 0).expect("POOL_CHUNK").phys / PAGE as u64;
        let _ = dev.destroy_pool(wc.id);
        let _ = dev.destroy_pool(wb.id);
        let after = memtype(pfn);
        r.check(
            &format!("{what} WC pool freed: its pages are WB again"),
            after.as_ref().is_ok_and(|t| *t == "WB"),
            format!("{after:?}"),
        );
    }
    let log = kernel_log();
    r.check(
        "x86 PAT is enabled in the guest (its boot line lists WC)",
        log.lines()
            .any(|l| l.contains("x86/PAT: Configuration") && l.contains("WC")),
        "no PAT configuration line",
    );
    // What x86 PAT prints when a mapping's memory type disagrees with its record
    // (`reserve_pfn_range`, `memtype_check_conflict`, `free_ram_pages_type`, ...).
    let conflicts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("x86/PAT") && !l.contains("x86/PAT: Configuration"))
        .collect();
    r.check(
        "no other x86/PAT line (no memory-type conflict) in the kernel log",
        conflicts.is_empty(),
        conflicts.join(" | "),
    );
}

/// The kernel log so far (`/dev/kmsg`, read without blocking).
fn kernel_log() -> String {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return String::new();
    };
    let mut out = String::new();
    let mut buf = vec![0; 8192];
    // Each read is one record; EAGAIN ends the log.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

/// Starts `pktmap-guest pool-peer MODE SOCKET` (this program, nothing inherited but stdout),
/// sends it `file` over a fresh UNIX socket, and records its checks as ours.
fn with_peer(r: &mut Report, mode: &str, file: &PoolFile, during: impl FnOnce(&mut Report)) {
    let path = format!("/tmp/pktmap-peer-{mode}.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the peer socket");
    let mut child = match Command::new("/proc/self/exe")
        .args(["pool-peer", mode, &path])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return r.check(&format!("start the {mode} peer"), false, e),
    };
    let sent = listener
        .accept()
        .map_err(pktmap::Error::from)
        .and_then(|(s, _)| file.send(&s).map(|()| s));
    r.check(
        &format!("{mode}: SCM_RIGHTS send of the pool fd"),
        sent.is_ok(),
        format!("{sent:?}"),
    );
    during(r);
    let out = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(name) = line.strip_prefix("ok   ") {
            r.check(&format!("{mode} peer: {name}"), true, "");
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
            r.check(&format!("{mode} peer: {name}"), false, detail);
        }
    }
    let status = child.wait();
    r.check(
        &format!("{mode} peer exited cleanly"),
        status.as_ref().is_ok_and(|s| s.success()),
        format!("{status:?}"),
    );
    drop(sent);
    let _ = std::fs::remove_file(&path);
}

/// Waits until `f` holds or `limit` passes; whether it held.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    f()
}

const COUNTER_END: u64 = 1000;

fn exported(r: &mut Report, dev: &Device) {
    let base = state(dev);
    // The classic two-process example: we write a counter, the peer reads it through its own
    // mapping and answers at byte 8 when it saw the last value.
    let info = PoolOptions::new(4096, 4).create(dev).expect("eager pool");
    let m = dev.map_pool(info.id, MapFlags::empty()).expect("map");
    let file = dev
        .export_pool(info.id, false)
        .expect("POOL_EXPORT read-write");
    r.check(
        "POOL_EXPORT: the pool file describes the pool (POOL_INFO id 0)",
        file.info()
            .is_ok_and(|i| i.bytes == info.bytes && i.buf_size == 4096),
        format!("{:?}", file.info()),
    );
    r.check(
        "STATE counts the live pool file",
        state(dev).pool_files == base.pool_files + 1,
        format!("{} -> {}", base.pool_files, state(dev).pool_files),
    );
    let counter = m.ptr_at(0, 8, 8).expect("counter") as *mut u64;
    let ack = m.ptr_at(8, 8, 8).expect("ack") as *const u64;
    with_peer(r, "counter", &file, |r| {
        let mut acked = false;
        for v in 1..=COUNTER_END {
            // SAFETY: An aligned word of our writable shared mapping; the peer reads it.
            unsafe { counter.write_volatile(v) };
            std::thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: An aligned word of our mapping that the peer writes.
        acked |= eventually(
            Duration::from_secs(20),
            || unsafe { ack.read_volatile() } == COUNTER_END,
        );
        r.check(
            "the peer's write through its own mapping reached ours (ack = last counter)",
            acked,
            // SAFETY: As above.
            format!("ack {}", unsafe { ack.read_volatile() }),
        );
    });
    drop(file);

    let ro = dev
        .export_pool(info.id, true)
        .expect("POOL_EXPORT read-only");
    with_peer(r, "readonly", &ro, |_| {});
    drop(ro);
    r.errno(
        "POOL_EXPORT unknown flags: EINVAL",
        raw_export(dev, info.id, 2),
        libc::EINVAL,
    );
    r.errno(
        "POOL_EXPORT unknown pool: EINVAL",
        raw_export(dev, info.id + 1000, 0),
        libc::EINVAL,
    );
    drop(m);
    let _ = dev.destroy_pool(info.id);

    // The creator goes first: a child creates a 2 MiB pool, writes it, exports it to us and
    // exits; the pool lives on in our file descriptor.
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let creator = sys::spawn_child(move || {
        let run = || -> pktmap::Result<()> {
            let dev = Device::open()?;
            let info = PoolOptions::new(4096, 512).huge().create(&dev)?;
            dev.write_resource(ResourceType::Pool, info.id, b"from the creator")?;
            dev.export_pool(info.id, false)?.send(&theirs)
        };
        i32::from(run().is_err())
    });
    let creator_exit = sys::wait_child(creator);
    let got = PoolFile::recv(&ours);
    r.check(
        "the creator exited after sending its pool",
        creator_exit.is_none() && got.is_ok(),
        format!("{creator_exit:?} {got:?}"),
    );
    if let Ok(file) = got {
        match file.map(MapFlags::empty()) {
            Ok(m) => {
                let mut head = [0; 16];
                m.read_at(0, &mut head).expect("read");
                r.check(
                    "the pool outlives its creator: mapped through the received fd, its data is there",
                    &head == b"from the creator" && m.as_ptr() as usize % PMD == 0,
                    format!("{:?} at {:p}", String::from_utf8_lossy(&head), m.as_ptr()),
                );
                drop(file);
                m.write_at(PMD - 8, b"lastword")
                    .expect("write after the fd is gone");
                r.check(
                    "the mapping keeps the pool after its last fd is closed",
                    state(dev).pools == base.pools + 1,
                    format!("{:?}", state(dev)),
                );
            }
            Err(e) => r.check("map the received 2 MiB pool", false, e),
        }
    }
    let end = state(dev);
    r.check(
        "export: pools, pages and pool files back to baseline once the last fd and mapping are gone",
        end.pools == base.pools
            && end.pages_allocated == base.pages_allocated
            && end.pool_files == base.pool_files
            && end.live_mappings == base.live_mappings,
        format!("{base:?} -> {end:?}"),
    );
}

/// `POOL_EXPORT` with raw flags; the fd is closed at once.
fn raw_export(dev: &Device, id: u32, flags: u32) -> std::io::Result<()> {
    let mut req = ioctl::PoolExport {
        id,
        flags,
        ..Default::default()
    };
    sys::ioctl_raw(
        dev.as_fd(),
        ioctl::POOL_EXPORT,
        (&mut req as *mut ioctl::PoolExport).cast(),
    )?;
    // SAFETY: The ioctl succeeded, so `fd` is a new descriptor of ours.
    unsafe { libc::close(req.fd) };
    Ok(())
}

/// `pktmap-guest pool-peer MODE SOCKET`: the unrelated process of the export checks. It
/// connects to SOCKET, receives a pool fd and checks what MODE says, printing `ok`/`FAIL`
/// lines for the parent to collect.
pub fn peer(r: &mut Report, mode: &str, socket: &str) {
    let file = match UnixStream::connect(socket)
        .map_err(pktmap::Error::from)
        .and_then(|s| PoolFile::recv(&s))
    {
        Ok(f) => f,
        Err(e) => return r.check("receive the pool fd", false, e),
    };
    let links: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    r.check(
        "unrelated: no /dev/pktmap fd inherited, only the received pool file",
        !links.iter().any(|l| l.contains("/dev/pktmap"))
            && links.iter().any(|l| l.contains("pktmap-pool")),
        format!("{links:?}"),
    );
    match mode {
        "counter" => {
            let m = match file.map(MapFlags::empty()) {
                Ok(m) => m,
                Err(e) => return r.check("map the pool read-write", false, e),
            };
            let counter = m.ptr_at(0, 8, 8).expect("counter") as *const u64;
            let mut last = 0;
            let seen = eventually(Duration::from_secs(20), || {
                // SAFETY: An aligned word of our shared mapping, written by the other process.
                last = unsafe { counter.read_volatile() };
                last == COUNTER_END
            });
            r.check(
                "read the other process's counter through our own mapping",
                seen,
                format!("last {last}"),
            );
            let ack = m.ptr_at(8, 8, 8).expect("ack") as *mut u64;
            // SAFETY: An aligned word of our writable shared mapping.
            unsafe { ack.write_volatile(last) };
        }
        "readonly" => {
            r.errno(
                "map a read-only pool file writable: EACCES",
                file.map(MapFlags::empty()),
                libc::EACCES,
            );
            match file.map(MapFlags::READONLY) {
                Ok(m) => {
                    r.errno(
                        "mprotect the read-only view to PROT_WRITE: EACCES",
                        sys::mprotect_rw(m.as_ptr(), PAGE),
                        libc::EACCES,
                    );
                    let child = in_child(|| {
                        // SAFETY: The write is expected to fault (SIGSEGV) in this child.
                        unsafe { poke(m.as_ptr() as *mut u8, 1) };
                    });
                    r.check(
                        "writing the read-only view: SIGSEGV",
                        child == Some(libc::SIGSEGV),
                        format!("{child:?}"),
                    );
                }
                Err(e) => r.check("map a read-only pool file READONLY", false, e),
            }
            r.errno(
                "map a read-only pool file MAP_PRIVATE: EPERM (a private copy would be writable)",
                MapOptions::new(PAGE)
                    .private()
                    .flags(MapFlags::READONLY)
                    .map(&file, ResourceType::Pool.offset(0)),
                libc::EPERM,
            );
            let fd = std::os::fd::AsRawFd::as_raw_fd(&file.as_fd());
            let reopened = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/self/fd/{fd}"));
            r.check(
                "reopening the read-only pool file read-write through /proc fails",
                reopened.is_err(),
                format!("{reopened:?}"),
            );
        }
        _ => r.check(&format!("known peer mode {mode}"), false, "unknown"),
    }
    r.errno(
        "mmap a pool file at an offset other than POOL 0: EINVAL",
        MapOptions::new(PAGE)
            .flags(MapFlags::READONLY)
            .map(&file, ResourceType::Pool.offset(1)),
        libc::EINVAL,
    );
}

/// Rounds of [`races`] in a `pools` run (each maps the pool afresh).
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

/// `(pages_mapped, faults_served, pmd_faults)` since `before`.
fn counted(dev: &Device, before: &State) -> (u64, u64, u64) {
    let s = state(dev);
    (
        s.pages_mapped - before.pages_mapped,
        s.faults_served - before.faults_served,
        s.pmd_faults - before.pmd_faults,
    )
}

/// Threads racing faults of the same entries of a 2 MiB pool: every page of a mapping at a
/// FIXED address 4 KiB off the 2 MiB grid (each a 4 KiB `.fault`), and every block of an
/// aligned mapping (each a `.huge_fault` of one PMD). Both faults of an entry succeed, but
/// only one of them maps it, so STATE must count each page and each block exactly once.
/// `rounds` maps the pool afresh that many times for each kind.
pub fn races(r: &mut Report, dev: &Device, rounds: u32) {
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

/// `pktmap-guest pool-races ROUNDS`: only [`races`], with every gauge checked afterwards.
pub fn run_races(r: &mut Report, rounds: u32) {
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => return r.check("open /dev/pktmap", false, e),
    };
    let base = state(&dev);
    races(r, &dev, rounds);
    let end = state(&dev);
    r.check(
        "pool races: every gauge back to its baseline",
        gauges(&end) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&end)),
    );
}
