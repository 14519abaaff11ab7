//! The promises of issue #9, each checked against the loaded driver (every one of these failed
//! on the module before it): `read`/`write` never leave the resource the position names,
//! short counts on faulting user buffers, `fsync`/`msync`, read-only and no-exec everywhere,
//! writable opens for state changes, accounted and budgeted memory, `SIGKILL` during a huge
//! create, rings holding their pool, and consistent STATE snapshots.

use crate::sys::{self, in_child, peek, poke};
use crate::Report;
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use pktmap_abi::ioctl::{self, PoolCreate, ResourceId, RingCreate, State};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
const BUDGET_PARAM: &str = "/sys/module/pktmap/parameters/page_budget";

fn state(dev: &Device) -> State {
    dev.state().expect("reading the STATE page")
}

fn gauges(s: &State) -> [u64; 4] {
    [s.pools, s.rings, s.pages_allocated, s.live_mappings]
}

fn pool_bytes(dev: &Device, id: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    let n = dev
        .read_resource(ResourceType::Pool, id, &mut buf)
        .expect("pread");
    buf.truncate(n);
    buf
}

/// A pattern byte for offset `i` of fill `tag`.
fn pattern(tag: u8, i: usize) -> u8 {
    tag ^ (i as u8).wrapping_mul(31) ^ (i >> 8) as u8
}

fn fill(dev: &Device, id: u32, len: usize, tag: u8) {
    let data: Vec<u8> = (0..len).map(|i| pattern(tag, i)).collect();
    dev.write_resource(ResourceType::Pool, id, &data)
        .expect("pwrite");
}

pub fn run(r: &mut Report) {
    let dev = Device::open().expect("open /dev/pktmap");
    let base = state(&dev);
    positions(r, &dev);
    short_counts(r, &dev);
    sync(r, &dev);
    read_only(r, &dev);
    read_only_open(r);
    budget(r, &dev);
    memcg(r);
    killed_creator(r, &dev);
    ring_holds_pool(r, &dev);
    snapshots(r, &dev);
    let end = state(&dev);
    r.check(
        "promises: every gauge back to its baseline",
        gauges(&end) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&end)),
    );
}

/// `read(2)`/`write(2)` at the file position act on the resource it names and never move it.
fn positions(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 2).create(dev).expect("pool");
    let ring = dev.create_ring(8, pool.id).expect("ring");
    // Pool ids and ring ids both start at 1 in a fresh open; whatever they are, the offset one
    // page past the pool's is where the old driver's position drifted to.
    let off = ResourceType::Pool.offset(pool.id);
    let ring_before = read_ring(dev, ring.id);
    let set = sys::lseek(fd, off as i64, libc::SEEK_SET);
    r.check(
        "lseek to a pool's offset",
        set.as_ref().ok() == Some(&off),
        format!("{set:?}"),
    );
    let page = vec![0xa5u8; PAGE];
    let w1 = sys::write_fd(fd, &page);
    let w2 = sys::write_fd(fd, &[0x5a; PAGE]);
    let pos = sys::lseek(fd, 0, libc::SEEK_CUR);
    r.check(
        "write(2) twice: both write the pool from byte 0, the position stays",
        matches!((&w1, &w2), (Ok(PAGE), Ok(PAGE))) && pos.as_ref().ok() == Some(&off),
        format!("{w1:?} {w2:?} position {pos:?}"),
    );
    let seen = pool_bytes(dev, pool.id, 2 * PAGE);
    r.check(
        "write(2) twice: the second write overwrote the first, the next page is untouched",
        seen[..PAGE].iter().all(|&b| b == 0x5a) && seen[PAGE..].iter().all(|&b| b == 0),
        "other bytes",
    );
    r.check(
        "write(2) twice: the ring one page past the pool's offset is untouched",
        read_ring(dev, ring.id) == ring_before,
        "ring changed",
    );
    let (mut a, mut b) = (vec![0u8; PAGE], vec![1u8; PAGE]);
    let r1 = sys::read_fd(fd, &mut a);
    let r2 = sys::read_fd(fd, &mut b);
    r.check(
        "read(2) twice: both read the pool from byte 0, never the ring",
        matches!((&r1, &r2), (Ok(PAGE), Ok(PAGE))) && a == b && a.iter().all(|&x| x == 0x5a),
        format!("{r1:?} {r2:?}"),
    );
    // Position one page past the pool: that is the ring's offset only if the ids line up; in
    // any case read(2) there reads exactly what pread there reads.
    let next = off + PAGE as u64;
    let _ = sys::lseek(fd, next as i64, libc::SEEK_SET);
    let mut c = vec![0u8; 64];
    let via_read = sys::read_fd(fd, &mut c).map(|n| c[..n].to_vec());
    let mut d = vec![0u8; 64];
    let via_pread = sys::pread_raw(fd, d.as_mut_ptr(), 64, next).map(|n| d[..n].to_vec());
    r.check(
        "read(2) at a position reads what pread(2) there reads",
        format!("{via_read:?}") == format!("{via_pread:?}"),
        format!("{via_read:?} vs {via_pread:?}"),
    );
    let _ = sys::lseek(fd, 0, libc::SEEK_SET);
    dev.destroy_ring(ring.id).expect("destroy ring");
    dev.destroy_pool(pool.id).expect("destroy pool");
}

fn read_ring(dev: &Device, id: u32) -> Vec<u8> {
    let mut buf = vec![0; PAGE];
    let n = dev
        .read_resource(ResourceType::Ring, id, &mut buf)
        .expect("pread ring");
    buf.truncate(n);
    buf
}

/// `pread`/`pwrite` with a user buffer that faults part-way: the short count, and nothing else
/// of the resource changed.
fn short_counts(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 4).create(dev).expect("pool");
    let off = ResourceType::Pool.offset(pool.id);
    // Two pages of user memory, the second PROT_NONE.
    let buf = sys::mmap_raw(None, 2 * PAGE, RW, libc::MAP_PRIVATE, 0).expect("anon");
    sys::mprotect(buf.wrapping_add(PAGE), PAGE, libc::PROT_NONE).expect("mprotect");
    for i in 0..PAGE {
        // SAFETY: Inside the first, writable page.
        unsafe { poke(buf.add(i), 0xee) };
    }

    fill(dev, pool.id, 4 * PAGE, 1);
    let n = sys::pwrite_raw(fd, buf, 2 * PAGE, off);
    let seen = pool_bytes(dev, pool.id, 4 * PAGE);
    r.check(
        "pwrite faulting at a page boundary returns the bytes before it",
        matches!(n, Ok(PAGE)),
        format!("{n:?}"),
    );
    r.check(
        "pwrite faulting at a page boundary leaves the next pool page as it was",
        seen[..PAGE].iter().all(|&b| b == 0xee)
            && (PAGE..4 * PAGE).all(|i| seen[i] == pattern(1, i)),
        "pool bytes past the fault changed",
    );

    fill(dev, pool.id, 4 * PAGE, 2);
    let mid = buf.wrapping_add(PAGE / 2);
    let n = sys::pwrite_raw(fd, mid, PAGE, off);
    let seen = pool_bytes(dev, pool.id, 4 * PAGE);
    let got = *n.as_ref().unwrap_or(&0);
    r.check(
        "pwrite faulting mid-page returns a short count (at most the readable half)",
        n.is_ok() && got > 0 && got <= PAGE / 2,
        format!("{n:?}"),
    );
    r.check(
        "pwrite faulting mid-page: copied bytes landed, every other pool byte as it was",
        seen[..got].iter().all(|&b| b == 0xee) && (got..4 * PAGE).all(|i| seen[i] == pattern(2, i)),
        "pool bytes past the fault changed",
    );

    fill(dev, pool.id, 4 * PAGE, 3);
    let bad = buf.wrapping_add(PAGE);
    r.errno(
        "pwrite from an unreadable buffer: EFAULT",
        sys::pwrite_raw(fd, bad, PAGE, off),
        libc::EFAULT,
    );
    let seen = pool_bytes(dev, pool.id, 4 * PAGE);
    r.check(
        "pwrite from an unreadable buffer changes nothing",
        (0..4 * PAGE).all(|i| seen[i] == pattern(3, i)),
        "pool changed",
    );

    let n = sys::pread_raw(fd, buf, 2 * PAGE, off);
    // SAFETY: Inside the first, readable page.
    let first = unsafe { peek(buf) };
    r.check(
        "pread into a buffer faulting at a page boundary returns the bytes before it",
        matches!(n, Ok(PAGE)) && first == pattern(3, 0),
        format!("{n:?}"),
    );
    r.errno(
        "pread into an unwritable buffer: EFAULT",
        sys::pread_raw(fd, bad, PAGE, off),
        libc::EFAULT,
    );
    // SAFETY: The mapping made above, used by nothing else.
    let _ = unsafe { sys::munmap(buf, 2 * PAGE) };
    dev.destroy_pool(pool.id).expect("destroy");
}

/// `fsync`, `fdatasync` and `msync(MS_SYNC)` of a device mapping succeed.
fn sync(r: &mut Report, dev: &Device) {
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
        ra.is_ok() && pool_bytes(dev, pool.id, 16)[10..16] == *b"synced",
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

/// Read-only and no-exec hold for every resource.
fn read_only(r: &mut Report, dev: &Device) {
    let fd = dev.as_fd();
    let pool = PoolOptions::new(4096, 2).create(dev).expect("pool");
    let ring = dev.create_ring(8, pool.id).expect("ring");
    let pool_off = ResourceType::Pool.offset(pool.id);
    let ring_off = ResourceType::Ring.offset(ring.id);
    for (what, off, len) in [("pool", pool_off, 2 * PAGE), ("ring", ring_off, PAGE)] {
        let p = sys::mmap_raw(Some(fd), len, libc::PROT_READ, libc::MAP_SHARED, off).expect("map");
        r.errno(
            &format!("mprotect a read-only shared {what} mapping to PROT_WRITE: EACCES"),
            sys::mprotect(p, len, RW),
            libc::EACCES,
        );
        let sig = in_child(|| {
            // SAFETY: The page is PROT_READ: the fault is the point.
            unsafe { poke(p, 1) }
        });
        r.check(
            &format!("writing a read-only shared {what} mapping: SIGSEGV"),
            sig == Some(libc::SIGSEGV),
            format!("{sig:?}"),
        );
        r.errno(
            &format!("mprotect a {what} mapping to PROT_EXEC: EACCES"),
            sys::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC),
            libc::EACCES,
        );
        // SAFETY: The mapping made above, used by nothing else.
        let _ = unsafe { sys::munmap(p, len) };
        for (kind, flags) in [("shared", libc::MAP_SHARED), ("private", libc::MAP_PRIVATE)] {
            r.errno(
                &format!("mmap a {what} PROT_EXEC {kind}: EPERM"),
                sys::mmap_probe(fd, len, libc::PROT_READ | libc::PROT_EXEC, flags, off),
                libc::EPERM,
            );
        }
    }
    // A private read-only mapping may still become writable: its writes are copies.
    let p =
        sys::mmap_raw(Some(fd), PAGE, libc::PROT_READ, libc::MAP_PRIVATE, pool_off).expect("map");
    let up = sys::mprotect(p, PAGE, RW);
    if up.is_ok() {
        // SAFETY: Now writable (private: copy on write).
        unsafe { poke(p, 0x77) };
    }
    r.check(
        "a private read-only pool mapping may become writable; its writes are copies",
        up.is_ok() && pool_bytes(dev, pool.id, 1)[0] != 0x77,
        format!("{up:?}"),
    );
    // SAFETY: The mapping made above.
    let _ = unsafe { sys::munmap(p, PAGE) };
    r.errno(
        "mmap STATE PROT_EXEC: EPERM",
        sys::mmap_probe(
            fd,
            PAGE,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED,
            0,
        ),
        libc::EPERM,
    );
    dev.destroy_ring(ring.id).expect("destroy ring");
    dev.destroy_pool(pool.id).expect("destroy pool");
}

fn ioctl_id<T>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> std::io::Result<()> {
    sys::ioctl_raw(fd, cmd, (arg as *mut T).cast())
}

/// An `O_RDONLY` open may look but not change.
fn read_only_open(r: &mut Report) {
    let ro = sys::open_device(libc::O_RDONLY).expect("open O_RDONLY");
    let fd = ro.as_fd();
    let mut create = PoolCreate {
        buf_size: 4096,
        buf_count: 1,
        ..PoolCreate::default()
    };
    r.errno(
        "POOL_CREATE on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::POOL_CREATE, &mut create),
        libc::EBADF,
    );
    let mut id = ResourceId { id: 1 };
    r.errno(
        "POOL_DESTROY on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::POOL_DESTROY, &mut id),
        libc::EBADF,
    );
    let mut ring = RingCreate {
        entries: 8,
        pool_id: 1,
        flags: 0,
        id: 0,
    };
    r.errno(
        "RING_CREATE on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::RING_CREATE, &mut ring),
        libc::EBADF,
    );
    r.errno(
        "RING_DESTROY on an O_RDONLY open: EBADF",
        ioctl_id(fd, ioctl::RING_DESTROY, &mut id),
        libc::EBADF,
    );
    let mut info = ioctl::PoolInfo {
        id: 1,
        ..Default::default()
    };
    r.errno(
        "POOL_INFO on an O_RDONLY open is allowed (unknown id: EINVAL, not EBADF)",
        ioctl_id(fd, ioctl::POOL_INFO, &mut info),
        libc::EINVAL,
    );
    let state = sys::mmap_raw(Some(fd), PAGE, libc::PROT_READ, libc::MAP_SHARED, 0);
    r.check(
        "an O_RDONLY open maps STATE read-only",
        state.is_ok(),
        format!("{state:?}"),
    );
    if let Ok(p) = state {
        // SAFETY: The mapping made above.
        let _ = unsafe { sys::munmap(p, PAGE) };
    }
    let mut b = [0u8; 8];
    r.check(
        "an O_RDONLY open reads STATE with pread",
        sys::pread_raw(fd, b.as_mut_ptr(), 8, 0).ok() == Some(8),
        "failed",
    );
    r.errno(
        "pwrite on an O_RDONLY open: EBADF",
        sys::pwrite_raw(fd, b.as_ptr(), 8, ResourceType::Pool.offset(1)),
        libc::EBADF,
    );
}

fn read_budget() -> Option<u64> {
    std::fs::read_to_string(BUDGET_PARAM)
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_budget(pages: u64) -> std::io::Result<()> {
    std::fs::write(BUDGET_PARAM, format!("{pages}\n"))
}

/// The device-wide page budget: shown in STATE, refused past with ENOSPC, and counting pools
/// destroyed but still mapped.
fn budget(r: &mut Report, dev: &Device) {
    let s = state(dev);
    let param = read_budget();
    r.check(
        "STATE pages_budget is the page_budget parameter and non-zero",
        s.pages_budget > 0 && param == Some(s.pages_budget),
        format!("STATE {} parameter {param:?}", s.pages_budget),
    );
    // insmod without page_budget (as /init loads it): three quarters of RAM, in pages.
    let ram_pages = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            kb.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb / 4);
    r.check(
        "the default page_budget is three quarters of RAM (MemTotal / 4 KiB * 3/4)",
        ram_pages.is_some_and(|p| param == Some(p / 4 * 3)),
        format!("parameter {param:?}, RAM pages {ram_pages:?}"),
    );
    let Some(old) = param else { return };
    let held = s.pages_allocated;
    if let Err(e) = write_budget(held + 8) {
        return r.check("write page_budget through sysfs", false, e);
    }
    let s2 = state(dev);
    r.check(
        "a budget written through sysfs shows in STATE at the next update",
        s2.pages_budget == held + 8 || state_after_update(dev).pages_budget == held + 8,
        format!("{}", s2.pages_budget),
    );
    r.errno(
        "POOL_CREATE past the page budget: ENOSPC",
        PoolOptions::new(4096, 9).lazy(1).create(dev),
        libc::ENOSPC,
    );
    r.check(
        "a refused POOL_CREATE holds no pages",
        state(dev).pages_allocated == held,
        format!("{}", state(dev).pages_allocated),
    );
    match PoolOptions::new(4096, 8).lazy(1).create(dev) {
        Ok(p) => {
            r.check("POOL_CREATE up to the budget: ok", true, "");
            let m = dev.map_pool(p.id, MapFlags::empty()).expect("map");
            dev.destroy_pool(p.id).expect("destroy");
            r.errno(
                "a destroyed pool still mapped keeps its pages in the budget: ENOSPC",
                PoolOptions::new(4096, 1).lazy(1).create(dev),
                libc::ENOSPC,
            );
            drop(m);
            let again = PoolOptions::new(4096, 1).lazy(1).create(dev);
            r.check(
                "its last unmap gives the pages back to the budget",
                again.is_ok(),
                format!("{again:?}"),
            );
            if let Ok(p) = again {
                let _ = dev.destroy_pool(p.id);
            }
        }
        Err(e) => r.check("POOL_CREATE up to the budget: ok", false, e),
    }
    let restored = write_budget(old);
    r.check(
        "page_budget restored",
        restored.is_ok() && read_budget() == Some(old),
        format!("{restored:?}"),
    );
}

/// A STATE snapshot after some update (so a changed parameter is republished).
fn state_after_update(dev: &Device) -> State {
    if let Ok(p) = PoolOptions::new(256, 1).lazy(1).create(dev) {
        let _ = dev.destroy_pool(p.id);
    }
    state(dev)
}

/// Pool memory is charged to its creator's memory cgroup (`GFP_KERNEL_ACCOUNT`), and given
/// back when the pool goes. (A limit is not tried: hitting it would run the memcg OOM killer,
/// whose report is a stack dump on the console.)
/// A fresh memory cgroup `name` (cgroup2 mounted and `+memory` enabled first if need be); its
/// path, or why it could not be made.
fn memory_cgroup(name: &str) -> Result<String, String> {
    let root = "/sys/fs/cgroup";
    let _ = std::fs::create_dir_all(root);
    if !std::path::Path::new(&format!("{root}/cgroup.controllers")).exists() {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "cgroup2", "none", root])
            .status();
        if !matches!(mounted, Ok(s) if s.success()) {
            return Err(format!("mount cgroup2: {mounted:?}"));
        }
    }
    let _ = std::fs::write(format!("{root}/cgroup.subtree_control"), "+memory");
    let cg = format!("{root}/{name}");
    let _ = std::fs::remove_dir(&cg);
    std::fs::create_dir(&cg).map_err(|e| format!("mkdir {cg}: {e}"))?;
    Ok(cg)
}

/// A cgroup's memory file (`memory.current`, `memory.peak`) in bytes, 0 if unreadable.
fn cgroup_bytes(cg: &str, file: &str) -> u64 {
    std::fs::read_to_string(format!("{cg}/{file}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn memcg(r: &mut Report) {
    let cg = match memory_cgroup("pktmap-test") {
        Ok(cg) => cg,
        Err(e) => return r.check("mount cgroup2 for the memcg checks", false, e),
    };
    let current = |cg: &str| cgroup_bytes(cg, "memory.current");
    // The child moves itself into the cgroup, creates a 16 MiB pool and destroys it; its exit
    // status is the MiB charged while the pool lived (bits 0..6) plus 64 if the charge went
    // back to within 1 MiB after the destroy; 120.. = a setup step failed.
    let cg2 = cg.clone();
    let status = sys::wait_child(sys::spawn_child(move || {
        if std::fs::write(
            format!("{cg2}/cgroup.procs"),
            std::process::id().to_string(),
        )
        .is_err()
        {
            return 120;
        }
        let Ok(dev) = Device::open() else { return 121 };
        let before = current(&cg2);
        let Ok(p) = PoolOptions::new(65536, 256).create(&dev) else {
            return 122;
        };
        let charged = (current(&cg2).saturating_sub(before) >> 20).min(63);
        let _ = dev.destroy_pool(p.id);
        let back = current(&cg2).saturating_sub(before) < 1 << 20;
        (charged + if back { 64 } else { 0 }) as i32
    }));
    let code = status.map(|s| -s).unwrap_or(0);
    let (mib, back) = (code & 63, code & 64 != 0 && code < 120);
    r.check(
        "a 16 MiB pool is charged to its creator's memory cgroup",
        code < 120 && (16..=40).contains(&mib),
        format!("{mib} MiB charged (child status {status:?}; 120.. = setup failed)"),
    );
    r.check(
        "destroying it gives the charge back",
        back,
        format!("child status {status:?}"),
    );
    let _ = std::fs::remove_dir(&cg);
}

/// A creator killed in the middle of a 128 MiB create stops allocating soon after the kill and
/// frees everything. Counted, not timed: the child creates in a memory cgroup of its own, is
/// killed once the cgroup holds 8 MiB, and the cgroup's `memory.peak` says how far it got.
fn killed_creator(r: &mut Report, dev: &Device) {
    const MIB: u64 = 1 << 20;
    let base = state(dev);
    let full = PoolOptions::new(65536, 2048).lazy(1).create(dev);
    if let Ok(p) = &full {
        let _ = dev.destroy_pool(p.id);
    }
    r.check(
        "a 128 MiB pool can be created and destroyed",
        full.is_ok(),
        format!("{full:?}"),
    );
    let cg = match memory_cgroup("pktmap-kill") {
        Ok(cg) => cg,
        Err(e) => return r.check("a memory cgroup for the killed creator", false, e),
    };
    let procs = format!("{cg}/cgroup.procs");
    let child = sys::spawn_child(move || {
        if std::fs::write(&procs, std::process::id().to_string()).is_err() {
            return 3;
        }
        let Ok(dev) = Device::open() else { return 1 };
        let _ = PoolOptions::new(65536, 2048).lazy(1).create(&dev);
        // Only reached if the kill came after the whole create.
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    // Kill it once the create is well under way (8 MiB charged), or after 60 s regardless.
    // `at_kill` is what the cgroup held just before the kill (read after it, it may already be
    // falling as the aborted create frees its pages).
    let start = Instant::now();
    let mut at_kill = cgroup_bytes(&cg, "memory.current");
    while at_kill < 8 * MIB && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_micros(200));
        at_kill = cgroup_bytes(&cg, "memory.current");
    }
    let killed_at = Instant::now();
    let _ = sys::kill(child, libc::SIGKILL);
    let sig = sys::wait_child(child);
    let gone = killed_at.elapsed();
    let peak = cgroup_bytes(&cg, "memory.peak");
    let after = cgroup_bytes(&cg, "memory.current");
    let _ = std::fs::remove_dir(&cg);
    println!(
        "promises: the creator was killed with {} KiB charged, peaked at {} KiB of a 128 MiB pool, \
         and was gone {:.0} ms later",
        at_kill >> 10,
        peak >> 10,
        gone.as_secs_f64() * 1e3
    );
    r.check(
        "a SIGKILLed creator of a 128 MiB pool dies of SIGKILL",
        sig == Some(libc::SIGKILL),
        format!("{sig:?}"),
    );
    r.check(
        "it stops allocating soon after the kill: its cgroup peaks under half the pool",
        at_kill >= 8 * MIB && peak < 64 * MIB,
        format!("{} KiB at the kill, peak {} KiB", at_kill >> 10, peak >> 10),
    );
    r.check(
        "and everything it allocated is freed",
        gauges(&state(dev)) == gauges(&base) && after < MIB,
        format!(
            "{:?} -> {:?}, cgroup {} KiB after",
            gauges(&base),
            gauges(&state(dev)),
            after >> 10
        ),
    );
}

/// A ring keeps its pool: the pool cannot be destroyed while a ring names it.
fn ring_holds_pool(r: &mut Report, dev: &Device) {
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

/// STATE snapshots are consistent: even sequence words that only grow, and a mapped reader
/// following the seqcount protocol agrees with pread while the device is quiet.
fn snapshots(r: &mut Report, dev: &Device) {
    let a = state(dev);
    if let Ok(p) = PoolOptions::new(256, 1).lazy(1).create(dev) {
        let _ = dev.destroy_pool(p.id);
    }
    let b = state(dev);
    r.check(
        "pread STATE snapshots have even, growing sequence words",
        a.is_consistent() && b.is_consistent() && b.sequence > a.sequence,
        format!("{} -> {}", a.sequence, b.sequence),
    );
    let Ok(m) = dev.map_state() else {
        return r.check("map STATE", false, "failed");
    };
    let mapped = seq_read(&m);
    let now = state(dev);
    r.check(
        "a seqcount read of the mapped STATE page equals pread's snapshot",
        mapped
            .as_ref()
            .is_some_and(|s| gauges(s) == gauges(&now) && s.is_consistent()),
        format!("{mapped:?} vs {now:?}"),
    );
    // Under load from another thread (create and destroy of a one-page pool: the reservation
    // publishes pages +1 first, then pools +1; the destroy takes both back in one update),
    // no whole snapshot may show the pool without its page.
    let base = state(dev);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (torn, reads, stalls) = std::thread::scope(|s| {
        s.spawn(|| {
            let d = dev.try_clone().expect("dup");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(p) = PoolOptions::new(4096, 1).create(&d) {
                    let _ = d.destroy_pool(p.id);
                }
            }
        });
        let (mut torn, mut reads, mut stalls) = (0, 0, 0);
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            match seq_read(&m) {
                Some(s) => {
                    reads += 1;
                    let pool_without_page =
                        s.pools > base.pools && s.pages_allocated == base.pages_allocated;
                    if s.magic != ioctl::STATE_MAGIC || !s.is_consistent() || pool_without_page {
                        torn += 1;
                    }
                }
                // The writer held the page odd for 100 ms (its vCPU descheduled by the host).
                None => stalls += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (torn, reads, stalls)
    });
    println!("promises: {reads} mapped STATE snapshots under load, {stalls} waits past 100 ms");
    r.check(
        "mapped STATE snapshots under concurrent updates are never torn",
        torn == 0 && reads > 0,
        format!("{torn} torn of {reads}"),
    );
}

/// The seqcount reader over a mapped STATE page; `None` if no stable snapshot in 100 ms.
fn seq_read(m: &pktmap::resource::Mapping) -> Option<State> {
    use std::sync::atomic::{fence, Ordering};
    let seq_at = std::mem::offset_of!(State, sequence);
    let word = |i: usize| {
        // SAFETY: Inside the one-page mapping, 8-byte aligned; a volatile load of a word the
        // driver stores with WRITE_ONCE.
        unsafe { (m.as_ptr().add(i) as *const u64).read_volatile() }
    };
    let until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < until {
        let before = word(seq_at);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        fence(Ordering::Acquire);
        let mut w = [0u64; pktmap_abi::ioctl::STATE_WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            *v = word(i * 8);
        }
        fence(Ordering::Acquire);
        if word(seq_at) == before {
            return Some(State::from_words(w));
        }
    }
    None
}
