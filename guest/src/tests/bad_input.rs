//! Bad requests, each with its errno (driver/abi/src/plan.rs's table of rules, and
//! driver/kmod/README.md): `mmap` of unknown types and ids, lengths, unaligned or stray
//! offset bits; `pread` at bad positions; `POOL_CREATE`/`RING_CREATE` with bad fields,
//! unknown ioctls and bad argument pointers; none of them leaving anything allocated.

use crate::sys;
use crate::utils::{gauges, state, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions};
use pktmap_abi::ioctl::{self, PoolCreate, RingCreate};
use std::ffi::c_void;
use std::os::fd::AsFd;
use std::ptr::NonNull;

pub fn mmaps(r: &mut Report, dev: &Device, pool: u32) {
    let fd = dev.as_fd();
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let probe = |off: u64, len: usize| sys::mmap_probe(fd, len, rw, libc::MAP_SHARED, off);
    r.errno(
        "mmap unknown type 3: EINVAL",
        probe(3 << 12, PAGE),
        libc::EINVAL,
    );
    r.errno("mmap type 7: EINVAL", probe(7 << 12, PAGE), libc::EINVAL);
    r.errno(
        "mmap unknown pool id: EINVAL",
        probe(ResourceType::Pool.offset(999_999), PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap pool id 0: EINVAL",
        probe(ResourceType::Pool.offset(0), PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap unknown ring id: EINVAL",
        probe(ResourceType::Ring.offset(999_999), PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap pool one page too long: EINVAL",
        probe(ResourceType::Pool.offset(pool), 131072 + PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap unaligned offset: EINVAL",
        probe(ResourceType::Pool.offset(pool) + 8, PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap stray bit 47: EINVAL",
        probe(ResourceType::Pool.offset(pool) | 1 << 47, PAGE),
        libc::EINVAL,
    );
    // Bit 62 is the populate request (`plan::MMAP_POPULATE`, populate.rs); the bit below it
    // is as stray as bit 47.
    r.errno(
        "mmap stray bit 61: EINVAL",
        probe(ResourceType::Pool.offset(pool) | 1 << 61, PAGE),
        libc::EINVAL,
    );
    r.errno(
        "mmap zero length: EINVAL",
        probe(ResourceType::Pool.offset(pool), 0),
        libc::EINVAL,
    );
    r.errno(
        "pread unknown pool: EINVAL",
        dev.read_resource(ResourceType::Pool, 999_999, &mut [0; 8]),
        libc::EINVAL,
    );
    let mut b = [0u8; 8];
    r.errno(
        "pread at a misaligned position: EINVAL",
        std::os::unix::fs::FileExt::read_at(
            &dev_file(dev),
            &mut b,
            ResourceType::Pool.offset(pool) + 1,
        ),
        libc::EINVAL,
    );

    if let Ok(m) = dev.map_pool(pool, MapFlags::empty()) {
        r.errno(
            "mremap grow a pool mapping: EFAULT (VM_DONTEXPAND)",
            sys::mremap_grow(m.as_ptr(), m.len(), m.len() + PAGE),
            libc::EFAULT,
        );
        let at = NonNull::new(m.as_ptr() as *mut c_void).unwrap();
        r.errno(
            "FIXED over a live pool mapping: EEXIST, nothing clobbered",
            MapOptions::new(PAGE)
                .flags(MapFlags::FIXED)
                .at(at)
                .map(dev, ResourceType::State.offset(0)),
            libc::EEXIST,
        );
    }
}

/// A `File` view of the device's fd for raw `pread` at arbitrary positions.
fn dev_file(dev: &Device) -> std::fs::File {
    std::fs::File::from(dev.as_fd().try_clone_to_owned().expect("dup"))
}

pub fn ioctls(r: &mut Report, dev: &Device, pool: u32) {
    let before = state(dev);
    let create = |buf_size, buf_count, flags| {
        PoolOptions::from_request(PoolCreate {
            buf_size,
            buf_count,
            flags,
            ..PoolCreate::default()
        })
        .create(dev)
    };
    let bad_pools = [
        ("buf_size 0", 0, 1, 0),
        ("buf_size 1000 (not a power of two)", 1000, 1, 0),
        ("buf_size 128", 128, 1, 0),
        ("buf_size 131072", 131072, 1, 0),
        ("buf_count 0", 2048, 0, 0),
        ("65536 x 65536 (4 GiB)", 65536, 65536, 0),
        ("65536 x u32::MAX", 65536, u32::MAX, 0),
        ("unknown flag 8", 2048, 1, 8),
        ("two kinds: LAZY | CONTIG", 2048, 1, 3),
    ];
    for (what, buf_size, buf_count, flags) in bad_pools {
        let name = format!("POOL_CREATE {what}: EINVAL");
        r.errno(&name, create(buf_size, buf_count, flags), libc::EINVAL);
    }
    r.check(
        "refused POOL_CREATEs allocate nothing",
        state(dev).pages_allocated == before.pages_allocated && state(dev).pools == before.pools,
        "pages or pools grew",
    );
    r.errno(
        "POOL_INFO unknown id: EINVAL",
        dev.pool_info(999_999),
        libc::EINVAL,
    );
    r.errno(
        "POOL_DESTROY id 0: EINVAL",
        dev.destroy_pool(0),
        libc::EINVAL,
    );
    let ring = |entries, pool_id, flags| {
        dev.create_ring_raw(RingCreate {
            entries,
            pool_id,
            flags,
            id: 0,
        })
    };
    let bad_rings = [
        ("0 entries", 0, pool, 0),
        ("100 entries", 100, pool, 0),
        ("65536 entries", 65536, pool, 0),
        ("flags 2", 8, pool, 2),
        ("on an unknown pool", 8, 999_999, 0),
    ];
    for (what, entries, pool_id, flags) in bad_rings {
        let name = format!("RING_CREATE {what}: EINVAL");
        r.errno(&name, ring(entries, pool_id, flags), libc::EINVAL);
    }
    let fd = dev.as_fd();
    r.errno(
        "unknown ioctl: ENOTTY",
        sys::ioctl_raw(fd, ioctl::ioc(ioctl::IOC_READ, 99, 8), std::ptr::null_mut()),
        libc::ENOTTY,
    );
    r.errno(
        "POOL_CREATE with a null argument: EFAULT",
        sys::ioctl_raw(fd, ioctl::POOL_CREATE, std::ptr::null_mut()),
        libc::EFAULT,
    );
    r.errno(
        "POOL_INFO with a bad pointer: EFAULT",
        sys::ioctl_raw(fd, ioctl::POOL_INFO, 8 as *mut c_void),
        libc::EFAULT,
    );
    r.check(
        "refused ioctls leave every gauge as it was",
        gauges(&state(dev)) == gauges(&before),
        format!("{:?} -> {:?}", gauges(&before), gauges(&state(dev))),
    );
}
