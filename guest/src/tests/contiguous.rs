//! Contiguous pools (driver/kmod/README.md, "Pool kinds map as they say": *contiguous*):
//! physically contiguous chunks mapped whole at `mmap` by `remap_pfn_range`, `POOL_CHUNK`
//! (root only), `MAP_PRIVATE` refused, a fork child reading through the inherited mapping.

use crate::sys::{self, in_child, peek};
use crate::utils::{
    pattern, pattern_round_trip, served, state, touch, vm_flags, Report, MIB, PAGE, PMD,
};
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions};
use pktmap_abi::ioctl;

pub fn run(r: &mut Report, dev: &Device) {
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
                std::process::exit(i32::from(b != pattern(0, PAGE + 5)));
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
