//! Private mappings copy on write (driver/kmod/README.md, "Private mappings copy on write"):
//! a `MAP_PRIVATE` mapping shows the resource until it writes a page, whose copy the driver
//! never sees; eager and lazy pools alike.

use crate::utils::{mapped_bytes, read_pool, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::resource::{MapFlags, MapOptions};

/// `MAP_PRIVATE` of `pool` (the eager 128 KiB pool, zeroed) beside a shared mapping of it.
pub fn eager(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(shared) = dev.map_pool(pool, MapFlags::empty()) else {
        return r.check("mmap pool MAP_SHARED", false, "failed");
    };
    match MapOptions::new(131072)
        .private()
        .map(dev, ResourceType::Pool.offset(pool))
    {
        Ok(private) => {
            dev.write_resource(ResourceType::Pool, pool, b"before")
                .unwrap();
            let initial = mapped_bytes(&private, 0, 6);
            private.write_at(0, b"copied").unwrap();
            private.write_at(PAGE * 3, b"copied").unwrap();
            r.check(
                "MAP_PRIVATE sees the resource before writing",
                initial == b"before",
                format!("{initial:?}"),
            );
            r.check(
                "MAP_PRIVATE writes are copied, not seen by the driver",
                read_pool(dev, pool, 6) == b"before"
                    && mapped_bytes(&shared, PAGE * 3, 6) == [0; 6]
                    && mapped_bytes(&private, 0, 6) == b"copied",
                "the driver or the shared mapping saw a private write",
            );
        }
        Err(e) => r.check("mmap pool MAP_PRIVATE", false, e),
    }
}

/// `MAP_PRIVATE | POPULATE` of lazy pool `id` (16 pages).
pub fn lazy(r: &mut Report, dev: &Device, id: u32) {
    match MapOptions::new(16 * PAGE)
        .private()
        .flags(MapFlags::POPULATE)
        .map(dev, ResourceType::Pool.offset(id))
    {
        Ok(m) => {
            m.write_at(PAGE, b"mine").unwrap();
            let seen = read_pool(dev, id, PAGE + 4);
            r.check(
                "lazy pool MAP_PRIVATE writes are copied",
                &seen[PAGE..] != b"mine",
                "the driver saw it",
            );
        }
        Err(e) => r.check("lazy pool MAP_PRIVATE maps", false, e),
    }
}
