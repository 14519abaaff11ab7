//! Accounted, bounded memory (driver/kmod/README.md, "Accounted, bounded memory"): the
//! device-wide page budget (STATE, the sysfs parameter, `ENOSPC`, destroyed-but-mapped pools
//! still counted), `MAX_RESOURCES` per open file, pages charged to the creator's memory
//! cgroup, and a creator killed during a huge create stopping and freeing everything.

use crate::sys;
use crate::utils::{gauges, state, Report};
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap::resource::MapFlags;
use pktmap_abi::ioctl::{self, State};
use std::time::{Duration, Instant};

const BUDGET_PARAM: &str = "/sys/module/pktmap/parameters/page_budget";

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
pub fn budget(r: &mut Report, dev: &Device) {
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

pub fn memcg(r: &mut Report) {
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
pub fn killed_creator(r: &mut Report, dev: &Device) {
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

pub fn resource_limit(r: &mut Report, dev: &Device) {
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
