//! Rings (driver/kmod/README.md, "Rings keep their pool"): `RING_CREATE`/`RING_INFO`, the
//! initialised header, descriptors written in the mapping seen by the driver, and a ring
//! holding its pool (`EBUSY`, and a mapped destroyed ring keeping the pool's pages).

use crate::utils::{gauges, mapped_bytes, read_resource, state, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use pktmap_abi::ioctl::{self, RingHeader};

pub fn lifecycle(r: &mut Report, dev: &Device, pool: u32) {
    let info = match dev.create_ring(256, pool) {
        Ok(i) => i,
        Err(e) => return r.check("RING_CREATE 256 on the pool", false, e),
    };
    r.check(
        "RING_INFO describes the ring",
        info.id != 0
            && info.entries == 256
            && info.pool_id == pool
            && info.bytes == 4096
            && info.mmap_offset == ResourceType::Ring.offset(info.id),
        format!("{info:?}"),
    );
    match dev.map_ring(info.id, MapFlags::POPULATE) {
        Ok(m) => {
            let h = mapped_bytes(&m, 0, std::mem::size_of::<RingHeader>());
            let word = |i: usize| u32::from_ne_bytes(h[i * 4..i * 4 + 4].try_into().unwrap());
            r.check(
                "the ring header is initialised (producer 0, consumer 0, entries, pool)",
                word(0) == 0 && word(1) == 0 && word(2) == 256 && word(3) == pool,
                format!("{:?}", [word(0), word(1), word(2), word(3)]),
            );
            let desc_at = ioctl::RING_DESC_OFFSET as usize + 8 * 5;
            m.write_at(desc_at, &[3, 0, 0, 0, 0xdc, 5, 0, 0]).unwrap();
            m.write_at(0, &1u32.to_ne_bytes()).unwrap();
            let seen = read_resource(dev, ResourceType::Ring, info.id, 4096);
            r.check(
                "ring descriptors written in the mapping are seen by the driver",
                seen[desc_at..desc_at + 8] == [3, 0, 0, 0, 0xdc, 5, 0, 0]
                    && seen[..4] == 1u32.to_ne_bytes(),
                "not seen",
            );
        }
        Err(e) => r.check("mmap the ring", false, e),
    }
    r.errno(
        "mmap ring oversize: EINVAL",
        dev.map(ResourceType::Ring, info.id, 2 * PAGE, MapFlags::empty()),
        libc::EINVAL,
    );
    r.check("RING_DESTROY", dev.destroy_ring(info.id).is_ok(), "failed");
    r.errno(
        "RING_DESTROY twice: EINVAL",
        dev.destroy_ring(info.id),
        libc::EINVAL,
    );
    r.errno(
        "RING_INFO after destroy: EINVAL",
        dev.ring_info(info.id),
        libc::EINVAL,
    );
}

/// A ring keeps its pool: the pool cannot be destroyed while a ring names it.
pub fn holds_pool(r: &mut Report, dev: &Device) {
    let base = state(dev);
    let pool = PoolOptions::new(4096, 4).create(dev).expect("pool");
    let ring = dev.create_ring(16, pool.id).expect("ring");
    r.errno(
        "POOL_DESTROY of a pool a ring names: EBUSY",
        dev.destroy_pool(pool.id),
        libc::EBUSY,
    );
    let info = dev.ring_info(ring.id);
    r.check(
        "RING_INFO still names a live pool",
        info.as_ref()
            .is_ok_and(|i| dev.pool_info(i.pool_id).is_ok()),
        format!("{info:?}"),
    );
    let m = dev.map_ring(ring.id, MapFlags::empty()).expect("map ring");
    dev.destroy_ring(ring.id).expect("destroy ring");
    r.check(
        "after RING_DESTROY the pool can be destroyed",
        dev.destroy_pool(pool.id).is_ok(),
        "failed",
    );
    r.check(
        "a mapped ring keeps its destroyed pool's pages",
        state(dev).pools == base.pools + 1 && state(dev).rings == base.rings + 1,
        format!("{:?}", state(dev)),
    );
    drop(m);
    r.check(
        "the ring's last unmap frees ring and pool",
        gauges(&state(dev)) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&state(dev))),
    );
}
