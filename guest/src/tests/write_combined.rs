//! Write-combined pools (driver/kmod/README.md, "Pool kinds map as they say": write-combined
//! pools hold and show the same bytes as cached ones): x86 PAT's own record of every page's
//! memory type (`/proc/kpageflags`), reset to WB on free, and no memory-type conflict in the
//! kernel log.

use crate::utils::{kernel_log, pattern_round_trip, touch, Report, PAGE};
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use pktmap_abi::ioctl::{self, PoolInfo};
use std::io::{Read, Seek, SeekFrom};

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

pub fn run(r: &mut Report, dev: &Device) {
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
