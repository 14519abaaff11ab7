//! Every rule of DESIGN.md's "/dev/pktmap device" section, and every bad input with its errno or
//! signal, checked against the loaded driver.

use crate::sys::{self, in_child, minor_faults, peek, poke};
use crate::Report;
use pktmap::device::Device;
use pktmap::offset::{ResourceType, PKTMAP};
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions, Mapping};
use pktmap_abi::ioctl::{self, PoolCreate, RingCreate, RingHeader, State, STATE_MAGIC};
use std::ffi::c_void;
use std::os::fd::AsFd;
use std::ptr::NonNull;

const PAGE: usize = 4096;

fn state(dev: &Device) -> State {
    dev.state().expect("reading the STATE page")
}

/// The gauges that must return to their baseline when everything is freed.
fn gauges(s: &State) -> [u64; 4] {
    [s.pools, s.rings, s.pages_allocated, s.live_mappings]
}

fn read_all(dev: &Device, ty: ResourceType, id: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    let n = dev
        .read_resource(ty, id, &mut buf)
        .expect("pread of a resource");
    buf.truncate(n);
    buf
}

fn mapped_bytes(m: &Mapping, at: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    m.read_at(at, &mut buf).expect("read from a mapping");
    buf
}

/// The `/proc/self/maps` line of the mapping that starts at `p`.
fn maps_line(p: *const u8) -> Option<String> {
    let start = format!("{:x}-", p as usize);
    std::fs::read_to_string("/proc/self/maps")
        .ok()?
        .lines()
        .find(|l| l.starts_with(&start))
        .map(str::to_string)
}

pub fn run(r: &mut Report) {
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => {
            r.check("open /dev/pktmap", false, e);
            return;
        }
    };
    let base = match dev.state() {
        Ok(s) => s,
        Err(e) => {
            r.check("STATE via pread", false, e);
            return;
        }
    };
    r.check(
        "STATE via pread has the magic",
        base.magic == STATE_MAGIC,
        format!("{:#x}", base.magic),
    );

    state_page(r, &dev, &base);
    let pool = eager_pool(r, &dev, &base);
    shared_and_private(r, &dev, pool);
    proc_maps(r, &dev, pool);
    fork_semantics(r, &dev, pool);
    second_open(r, &dev, pool);
    lazy_pool(r, &dev);
    rings(r, &dev, pool);
    bad_mmaps(r, &dev, pool);
    bad_ioctls(r, &dev, pool);
    lifetimes(r, &dev);
    partial_unmap(r, &dev);
    resource_limit(r, &dev);

    let _ = dev.destroy_pool(pool);
    let end = state(&dev);
    r.check(
        "every gauge back to its baseline (pools, rings, pages allocated, live mappings)",
        gauges(&end) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&end)),
    );
}

fn state_page(r: &mut Report, dev: &Device, base: &State) {
    match dev.map_state() {
        Ok(m) => {
            let magic = u64::from_ne_bytes(mapped_bytes(&m, 0, 8).try_into().unwrap());
            r.check(
                "STATE mmap READONLY shows the magic",
                magic == STATE_MAGIC,
                format!("{magic:#x}"),
            );
            let s = state(dev);
            r.check(
                "STATE live_mappings counts the STATE mapping",
                s.live_mappings == base.live_mappings + 1,
                format!("{} -> {}", base.live_mappings, s.live_mappings),
            );
            r.errno(
                "mprotect STATE to PROT_WRITE: EACCES (VM_MAYWRITE cleared)",
                sys::mprotect_rw(m.as_ptr(), PAGE),
                libc::EACCES,
            );
        }
        Err(e) => r.check("STATE mmap READONLY", false, e),
    }
    r.errno(
        "mmap STATE writable MAP_SHARED: EPERM",
        dev.map(ResourceType::State, 0, PAGE, MapFlags::empty()),
        libc::EPERM,
    );
    r.errno(
        "mmap STATE writable MAP_PRIVATE: EPERM",
        sys::mmap_probe(
            dev.as_fd(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            0,
        ),
        libc::EPERM,
    );
    r.errno(
        "mmap STATE two pages: EINVAL",
        dev.map(ResourceType::State, 0, 2 * PAGE, MapFlags::READONLY),
        libc::EINVAL,
    );
    r.errno(
        "mmap STATE id 1: EINVAL",
        dev.map(ResourceType::State, 1, PAGE, MapFlags::READONLY),
        libc::EINVAL,
    );
    r.errno(
        "pwrite STATE: EPERM",
        dev.write_resource(ResourceType::State, 0, b"x"),
        libc::EPERM,
    );
}

/// Creates the eager 2048 x 64 pool most checks use and returns its id.
fn eager_pool(r: &mut Report, dev: &Device, base: &State) -> u32 {
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
    let zero = read_all(dev, ResourceType::Pool, info.id, 131072);
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

fn shared_and_private(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(m) = dev.map_pool(pool, MapFlags::empty()) else {
        return r.check("mmap pool MAP_SHARED", false, "failed");
    };
    m.write_at(0, b"head").unwrap();
    m.write_at(65536 + 5, b"middle").unwrap();
    m.write_at(131072 - 4, b"tail").unwrap();
    let seen = read_all(dev, ResourceType::Pool, pool, 131072);
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
                read_all(dev, ResourceType::Pool, pool, 6) == b"before"
                    && mapped_bytes(&m, PAGE * 3, 6) == [0; 6]
                    && mapped_bytes(&private, 0, 6) == b"copied",
                "the driver or the shared mapping saw a private write",
            );
        }
        Err(e) => r.check("mmap pool MAP_PRIVATE", false, e),
    }
}

fn proc_maps(r: &mut Report, dev: &Device, pool: u32) {
    let Ok(m) = dev.map_pool(pool, MapFlags::READONLY) else {
        return r.check("mmap pool READONLY", false, "failed");
    };
    let line = maps_line(m.as_ptr()).unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let offset = fields.get(2).and_then(|o| u64::from_str_radix(o, 16).ok());
    r.check(
        "/proc/self/maps names /dev/pktmap at the encoded offset",
        fields.last() == Some(&"/dev/pktmap")
            && offset == Some(ResourceType::Pool.offset(pool))
            && fields.get(1).is_some_and(|p| p.starts_with("r--s")),
        &line,
    );
    let decoded = offset.map(|o| PKTMAP.decode(o));
    r.check(
        "the maps offset decodes back to (POOL, id)",
        decoded == Some(Ok((ResourceType::Pool.into(), u64::from(pool)))),
        format!("{decoded:?}"),
    );
    let p = m.as_ptr() as *mut u8;
    let sig = in_child(|| {
        // SAFETY: The page is PROT_READ: the fault is the point.
        unsafe { poke(p, 1) }
    });
    r.check(
        "writing a READONLY pool mapping: SIGSEGV",
        sig == Some(libc::SIGSEGV),
        format!("{sig:?}"),
    );
}

fn fork_semantics(r: &mut Report, dev: &Device, pool: u32) {
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
        mapped_bytes(&m, 200, 6) == b"child!"
            && read_all(dev, ResourceType::Pool, pool, 206)[200..] == *b"child!",
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

fn second_open(r: &mut Report, dev: &Device, pool: u32) {
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
        let theirs = read_all(dev, ResourceType::Pool, info.id, 5);
        r.check(
            "a second open's pool is not the first's, even with the same id",
            theirs != b"other",
            "the first open read the second open's pool",
        );
    }
}

fn lazy_pool(r: &mut Report, dev: &Device) {
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
            let seen = read_all(dev, ResourceType::Pool, info.id, 65536);
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
            // The library asks the driver (the offset's populate bit) to insert every page at
            // `mmap`, as for an eager pool: no fault at all.
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
    match MapOptions::new(16 * PAGE)
        .private()
        .flags(MapFlags::POPULATE)
        .map(dev, info.mmap_offset)
    {
        Ok(m) => {
            m.write_at(PAGE, b"mine").unwrap();
            let seen = read_all(dev, ResourceType::Pool, info.id, PAGE + 4);
            r.check(
                "lazy pool MAP_PRIVATE writes are copied",
                &seen[PAGE..] != b"mine",
                "the driver saw it",
            );
        }
        Err(e) => r.check("lazy pool MAP_PRIVATE maps", false, e),
    }
    r.check(
        "POOL_DESTROY lazy pool",
        dev.destroy_pool(info.id).is_ok(),
        "failed",
    );
}

fn rings(r: &mut Report, dev: &Device, pool: u32) {
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
            let seen = read_all(dev, ResourceType::Ring, info.id, 4096);
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

fn bad_mmaps(r: &mut Report, dev: &Device, pool: u32) {
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

fn bad_ioctls(r: &mut Report, dev: &Device, pool: u32) {
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
        ("flags 1", 8, pool, 1),
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

fn lifetimes(r: &mut Report, dev: &Device) {
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

fn partial_unmap(r: &mut Report, dev: &Device) {
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

fn resource_limit(r: &mut Report, dev: &Device) {
    let before = state(dev);
    let other = Device::open().expect("open");
    let mut made = 0;
    let mut last = Ok(());
    for _ in 0..=ioctl::MAX_RESOURCES {
        match PoolOptions::new(256, 1).lazy(1).create(&other) {
            Ok(_) => made += 1,
            Err(e) => {
                last = Err(e);
                break;
            }
        }
    }
    r.check(
        "an open file holds MAX_RESOURCES pools",
        made == ioctl::MAX_RESOURCES,
        format!("made {made}"),
    );
    r.errno("one pool more: ENOSPC", last, libc::ENOSPC);
    drop(other);
    r.check(
        "closing frees them all",
        gauges(&state(dev)) == gauges(&before),
        format!("{:?}", state(dev)),
    );
}
