//! What holds a resource, and for how long (driver/kmod/README.md, "Accounted, bounded
//! memory" and "Rings keep their pool"): each open file's own table (a second open sees none
//! of the first's pools), a forked child sharing the open file, a pool destroyed or a file
//! closed while mapped living until the last unmap, half of a mapping unmapped.

use crate::sys::{self, in_child, peek, poke};
use crate::utils::{gauges, mapped_bytes, read_pool, state, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, Mapping};
use std::ptr::NonNull;

pub fn fork(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(m) = dev.map_pool(pool, MapFlags::POPULATE) else {
        return r.check("mmap pool for fork", false, "failed");
    };
    m.write_at(100, b"parent").unwrap();
    let p = m.as_mut_ptr().unwrap();
    let sig = in_child(|| {
        let mut b = [0u8; 6];
        for (i, c) in b.iter_mut().enumerate() {
            // SAFETY: The child inherits the shared, writable mapping.
            *c = unsafe { peek(p.add(100 + i)) };
        }
        if &b != b"parent" {
            // SAFETY: Ends the child with a status the parent reports.
            unsafe { libc::_exit(3) };
        }
        for (i, c) in b"child!".iter().enumerate() {
            // SAFETY: The child inherits the shared, writable mapping.
            unsafe { poke(p.add(200 + i), *c) };
        }
    });
    r.check(
        "a forked child reads the parent's MAP_SHARED writes",
        sig.is_none(),
        format!("{sig:?}"),
    );
    r.check(
        "a forked child's MAP_SHARED writes reach the parent and the driver",
        mapped_bytes(&m, 200, 6) == b"child!" && read_pool(dev, pool, 206)[200..] == *b"child!",
        "not seen",
    );
    // The child uses the inherited fd: same context, same pools.
    let sig = in_child(|| {
        if dev.pool_info(pool).is_err() || dev.map_pool(pool, MapFlags::POPULATE).is_err() {
            // SAFETY: Ends the child with a status the parent reports.
            unsafe { libc::_exit(4) };
        }
    });
    r.check(
        "a forked child shares the open file's pools",
        sig.is_none(),
        format!("{sig:?}"),
    );
}

pub fn second_open(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(other) = Device::open() else {
        return r.check("second open", false, "failed");
    };
    r.errno(
        "POOL_INFO of another open's pool id: EINVAL",
        other.pool_info(pool),
        libc::EINVAL,
    );
    r.errno(
        "mmap another open's pool id: EINVAL",
        other.map(ResourceType::Pool, pool, PAGE, MapFlags::empty()),
        libc::EINVAL,
    );
    r.errno(
        "pread another open's pool: EINVAL",
        other.read_resource(ResourceType::Pool, pool, &mut [0; 8]),
        libc::EINVAL,
    );
    r.errno(
        "POOL_DESTROY another open's pool id: EINVAL",
        other.destroy_pool(pool),
        libc::EINVAL,
    );
    r.check(
        "the pool survives the other open's destroy",
        dev.pool_info(pool).is_ok(),
        "gone",
    );
    let mine = PoolOptions::new(4096, 1).create(&other);
    r.check(
        "a second open creates its own pools",
        mine.is_ok(),
        format!("{mine:?}"),
    );
    if let Ok(info) = mine {
        other
            .write_resource(ResourceType::Pool, info.id, b"other")
            .unwrap();
        let theirs = read_pool(dev, info.id, 5);
        r.check(
            "a second open's pool is not the first's, even with the same id",
            theirs != b"other",
            "the first open read the second open's pool",
        );
    }
}

pub fn destroyed_or_closed_while_mapped(r: &mut Report, dev: &Device) {
    let base = state(dev);
    // Destroy while mapped.
    let Ok(info) = PoolOptions::new(4096, 8).lazy(1).create(dev) else {
        return r.check("POOL_CREATE for lifetimes", false, "failed");
    };
    let m = dev.map_pool(info.id, MapFlags::empty()).expect("map");
    m.write_at(PAGE, b"survives").unwrap();
    r.check(
        "POOL_DESTROY while mapped",
        dev.destroy_pool(info.id).is_ok(),
        "failed",
    );
    r.errno(
        "POOL_DESTROY twice: EINVAL",
        dev.destroy_pool(info.id),
        libc::EINVAL,
    );
    r.errno(
        "mmap a destroyed pool: EINVAL",
        dev.map(ResourceType::Pool, info.id, PAGE, MapFlags::empty()),
        libc::EINVAL,
    );
    r.errno(
        "pread a destroyed pool: EINVAL",
        dev.read_resource(ResourceType::Pool, info.id, &mut [0; 8]),
        libc::EINVAL,
    );
    m.write_at(3 * PAGE, b"still").unwrap();
    r.check(
        "touching after destroy still works (old and new pages)",
        mapped_bytes(&m, PAGE, 8) == b"survives" && mapped_bytes(&m, 3 * PAGE, 5) == b"still",
        "lost data",
    );
    r.check(
        "a destroyed but mapped pool still holds its pages",
        state(dev).pages_allocated == base.pages_allocated + 8,
        format!("{:?}", state(dev)),
    );
    drop(m);
    r.check(
        "the last unmap frees a destroyed pool",
        gauges(&state(dev)) == gauges(&base),
        format!("{:?}", state(dev)),
    );

    // Close while mapped.
    let other = Device::open().expect("open");
    let info = PoolOptions::new(2048, 4).create(&other).expect("create");
    let lazy = PoolOptions::new(4096, 4)
        .lazy(1)
        .create(&other)
        .expect("create");
    let m = other.map_pool(info.id, MapFlags::empty()).expect("map");
    let ml = other.map_pool(lazy.id, MapFlags::empty()).expect("map");
    m.write_at(0, b"open").unwrap();
    drop(other);
    m.write_at(PAGE, b"closed").unwrap();
    ml.write_at(2 * PAGE, b"lazy after close").unwrap();
    r.check(
        "touching after close still works (eager, and lazy faults)",
        mapped_bytes(&m, 0, 4) == b"open"
            && mapped_bytes(&m, PAGE, 6) == b"closed"
            && mapped_bytes(&ml, 2 * PAGE, 16) == b"lazy after close",
        "lost data",
    );
    drop((m, ml));
    r.check(
        "the last unmap after close frees everything",
        gauges(&state(dev)) == gauges(&base),
        format!("{:?}", state(dev)),
    );
}

pub fn partial_unmap(r: &mut Report, dev: &Device) {
    let base = state(dev);
    let Ok(info) = PoolOptions::new(4096, 8).lazy(1).create(dev) else {
        return r.check("POOL_CREATE for partial unmap", false, "failed");
    };
    let m = dev.map_pool(info.id, MapFlags::empty()).expect("map");
    m.write_at(6 * PAGE, b"upper").unwrap();
    let (p, len) = m.into_raw();
    let p = p.as_ptr() as *mut u8;
    // SAFETY: The lower half is ours (from `into_raw`) and nothing uses it afterwards.
    let r1 = unsafe { sys::munmap(p, len / 2) };
    r.check("munmap half of a mapping", r1.is_ok(), format!("{r1:?}"));
    // SAFETY: The upper half is still mapped and ours; `from_raw` unmaps it on drop.
    let upper = unsafe {
        Mapping::from_raw(
            NonNull::new(p.add(len / 2)).unwrap().cast(),
            len / 2,
            MapFlags::empty(),
        )
    };
    r.check(
        "the other half still works",
        mapped_bytes(&upper, 2 * PAGE, 5) == b"upper",
        "lost",
    );
    let sig = in_child(|| {
        // SAFETY: The page was unmapped: the fault is the point.
        std::hint::black_box(unsafe { peek(p) });
    });
    r.check(
        "touching the unmapped half: SIGSEGV",
        sig == Some(libc::SIGSEGV),
        format!("{sig:?}"),
    );
    dev.destroy_pool(info.id).unwrap();
    r.check(
        "the half mapping keeps the pool alive",
        state(dev).pools == base.pools + 1,
        format!("{:?}", state(dev)),
    );
    drop(upper);
    r.check(
        "unmapping the second half frees the pool",
        gauges(&state(dev)) == gauges(&base),
        format!("{:?}", state(dev)),
    );
}
