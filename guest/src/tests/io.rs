//! `pread`/`pwrite` and `fsync` (driver/kmod/README.md, "Positions name resources", "Short
//! counts, never lost bytes", "`fsync`/`fdatasync` succeed"): what a shared mapping writes the
//! driver reads and the reverse, copies clamped to the resource, and `fsync`, `fdatasync` and
//! `msync` of a device mapping succeeding.

use crate::sys;
use crate::utils::{mapped_bytes, read_pool, Report};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use std::os::fd::AsFd;

/// A `MAP_SHARED` mapping of `pool` (the eager 128 KiB pool) and the driver see each other's
/// writes; copies are clamped to the pool. Leaves the pool zeroed.
pub fn shared(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(m) = dev.map_pool(pool, MapFlags::empty()) else {
        return r.check("mmap pool MAP_SHARED", false, "failed");
    };
    m.write_at(0, b"head").unwrap();
    m.write_at(65536 + 5, b"middle").unwrap();
    m.write_at(131072 - 4, b"tail").unwrap();
    let seen = read_pool(dev, pool, 131072);
    r.check(
        "MAP_SHARED writes are seen by the driver (pread)",
        &seen[..4] == b"head" && &seen[65541..65547] == b"middle" && &seen[131068..] == b"tail",
        "pread shows other bytes",
    );
    let n = dev
        .write_resource(ResourceType::Pool, pool, b"driver says hi")
        .unwrap_or(0);
    r.check(
        "driver writes (pwrite) are seen in the mapping",
        n == 14 && mapped_bytes(&m, 0, 14) == b"driver says hi",
        format!("wrote {n}"),
    );
    let long = vec![7u8; 131072 + 100];
    let n = dev.write_resource(ResourceType::Pool, pool, &long);
    r.check(
        "pwrite past the end is short",
        matches!(n, Ok(131072)),
        format!("{n:?}"),
    );
    let n = dev.read_resource(ResourceType::Pool, pool, &mut vec![0; 200_000]);
    r.check(
        "pread past the end is short",
        matches!(n, Ok(131072)),
        format!("{n:?}"),
    );
    dev.write_resource(ResourceType::Pool, pool, &[0; 131072])
        .unwrap();
}

/// `fsync`, `fdatasync` and `msync(MS_SYNC)` of a device mapping succeed.
pub fn sync(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    r.check(
        "fsync(2) of the device: ok",
        sys::fsync(fd, false).is_ok(),
        "failed",
    );
    r.check(
        "fdatasync(2) of the device: ok",
        sys::fsync(fd, true).is_ok(),
        "failed",
    );
    let pool = PoolOptions::new(4096, 2).lazy(1).create(dev).expect("pool");
    let m = dev.map_pool(pool.id, MapFlags::empty()).expect("map");
    m.write_at(10, b"synced").unwrap();
    let rs = sys::msync(m.as_ptr(), m.len(), libc::MS_SYNC);
    r.check(
        "msync(MS_SYNC) of a shared pool mapping: ok",
        rs.is_ok(),
        format!("{rs:?}"),
    );
    let ra = sys::msync(m.as_ptr(), m.len(), libc::MS_ASYNC | libc::MS_INVALIDATE);
    r.check(
        "msync(MS_ASYNC | MS_INVALIDATE): ok, and the data stays",
        ra.is_ok() && read_pool(dev, pool.id, 16)[10..16] == *b"synced",
        format!("{ra:?}"),
    );
    r.check(
        "Mapping::flush (msync MS_SYNC through the library): ok",
        m.flush().is_ok(),
        "failed",
    );
    drop(m);
    dev.destroy_pool(pool.id).expect("destroy");
}
