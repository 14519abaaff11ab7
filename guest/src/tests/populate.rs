//! POPULATE of every pool kind, read-write and read-only, through the device, a pool file and
//! the C ABI (issue 19, item 2): after the map returns, touching any page takes no fault.
//!
//! For each kind (eager, lazy one page per fault, lazy 16 per fault, contiguous, 2 MiB, and the
//! two write-combined kinds) and each way in (`Device::map_pool`, `PoolFile::map` of a
//! read-write and of a read-only export, and `pktmap_resource_map` of `include/pktmap.h` through
//! the device and through the read-only pool file), the map with `POPULATE` (and with
//! `READONLY | POPULATE`) must succeed, and reading (and, where writable, writing) one byte of
//! every page afterwards must take no minor fault and serve no driver fault. A 2 MiB pool mapped
//! on the 2 MiB grid must be brought in by exactly one PMD fault per chunk, not 512 reads.

use crate::sys::thread_minor_faults;
use crate::Report;
use pktmap::capi::pktmap_resource_map;
use pktmap::device::Device;
use pktmap::pool::{PoolFile, PoolInfo, PoolOptions};
use pktmap::resource::{MapFlags, Mapping};
use pktmap_abi::codec::pktmap_types;
use pktmap_abi::ioctl::State;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr::NonNull;

const PAGE: usize = 4096;

fn state(dev: &Device) -> State {
    dev.state().expect("reading the STATE page")
}

/// The pool kinds, by name, with their builders: 2 MiB of buffers, 4 MiB for 2 MiB pools (two
/// chunks, so the per-chunk count is not a per-pool one).
fn kinds() -> [(&'static str, PoolOptions); 7] {
    let two = PoolOptions::new(4096, 512);
    let four = PoolOptions::new(4096, 1024);
    [
        ("eager", two),
        ("lazy, 1 page per fault", two.lazy(1)),
        ("lazy, 16 pages per fault", two.lazy(16)),
        ("contiguous", two.contiguous()),
        ("2 MiB", four.huge()),
        (
            "contiguous write-combined",
            two.contiguous().write_combined(),
        ),
        ("2 MiB write-combined", four.huge().write_combined()),
    ]
}

/// Reads (and, unless read-only, writes back) one byte of every page of `m`; returns the
/// thread's minor faults and the driver's `faults_served` that took.
fn touch(dev: &Device, m: &Mapping) -> (i64, u64) {
    let before = state(dev).faults_served;
    let minor = thread_minor_faults();
    for off in (0..m.len()).step_by(PAGE) {
        let b = m.load::<u8>(off).expect("a byte inside the mapping");
        if !m.is_readonly() {
            m.store::<u8>(off, b)
                .expect("a byte inside a writable mapping");
        }
    }
    let taken = thread_minor_faults() - minor;
    (taken, state(dev).faults_served - before)
}

/// Maps `bytes` of `(POOL, id)` through `fd` with the C ABI's `pktmap_resource_map`.
fn map_c(fd: BorrowedFd<'_>, id: u64, bytes: usize, flags: MapFlags) -> Result<Mapping, i32> {
    let mut p = std::ptr::null_mut();
    // SAFETY: `fd` is open for the call and `p` is a valid out-pointer; no FIXED.
    let rc = unsafe {
        pktmap_resource_map(
            fd.as_raw_fd(),
            pktmap_types::POOL as u8,
            id,
            bytes,
            flags.bits() as i32,
            &mut p,
        )
    };
    if rc != 0 {
        return Err(-rc);
    }
    let p = NonNull::new(p).ok_or(libc::EFAULT)?;
    // SAFETY: `pktmap_resource_map` returned this live mapping of `bytes` bytes, now ours
    // alone, mapped with exactly `flags`' protection.
    Ok(unsafe { Mapping::from_raw(p, bytes, flags) })
}

/// One way in: checks the map succeeds and that touching it afterwards takes no fault.
fn check(
    r: &mut Report,
    dev: &Device,
    name: &str,
    mapped: Result<Mapping, String>,
) -> Option<Mapping> {
    let m = match mapped {
        Ok(m) => m,
        Err(e) => {
            r.check(name, false, format!("the map failed: {e}"));
            return None;
        }
    };
    let (minor, served) = touch(dev, &m);
    r.check(
        &format!("{name}: then no page faults"),
        minor == 0 && served == 0,
        format!("{minor} minor faults, {served} served by the driver"),
    );
    Some(m)
}

fn one_kind(r: &mut Report, dev: &Device, kind: &str, info: &PoolInfo) {
    let bytes = info.bytes as usize;
    let rw = MapFlags::POPULATE;
    let ro = MapFlags::READONLY | MapFlags::POPULATE;
    for (how, flags) in [("POPULATE", rw), ("READONLY | POPULATE", ro)] {
        let before = state(dev);
        let m = dev.map_pool(info.id, flags).map_err(|e| e.to_string());
        let after = state(dev);
        let Some(m) = check(r, dev, &format!("{kind} pool: map_pool({how})"), m) else {
            continue;
        };
        if info.chunk_bytes == 2 << 20 && info.flags == pktmap_abi::ioctl::POOL_HUGE {
            let chunks = info.bytes / info.chunk_bytes;
            let faults = after.faults_served - before.faults_served;
            let pmd = after.pmd_faults - before.pmd_faults;
            r.check(
                &format!("{kind} pool: map_pool({how}) takes one PMD fault per 2 MiB chunk"),
                m.as_ptr() as usize % (2 << 20) == 0 && faults == chunks && pmd == chunks,
                format!("{faults} faults, {pmd} PMD faults for {chunks} chunks"),
            );
        }
        let c = map_c(dev.as_fd(), u64::from(info.id), bytes, flags).map_err(errno);
        check(
            r,
            dev,
            &format!("{kind} pool: C pktmap_resource_map({how})"),
            c,
        );
    }
    for read_only in [false, true] {
        let file = match dev.export_pool(info.id, read_only) {
            Ok(f) => f,
            Err(e) => return r.check(&format!("{kind} pool: POOL_EXPORT"), false, e),
        };
        let export = if read_only { "read-only" } else { "read-write" };
        let flags = if read_only { ro } else { rw };
        let m = file.map(flags).map_err(|e| e.to_string());
        check(
            r,
            dev,
            &format!("{kind} pool: {export} PoolFile::map({flags:?})"),
            m,
        );
        if read_only {
            let c = map_c(file.as_fd(), 0, bytes, ro).map_err(errno);
            let name = format!(
                "{kind} pool: C pktmap_resource_map(READONLY | POPULATE) of a read-only pool file"
            );
            check(r, dev, &name, c);
            let c = map_c(file.as_fd(), 0, bytes, rw);
            r.check(
                &format!("{kind} pool: C POPULATE, writable, of a read-only pool file: EACCES"),
                matches!(c, Err(libc::EACCES)),
                format!("{:?}", c.map(|m| m.len())),
            );
        }
        drop::<PoolFile>(file);
    }
}

fn errno(e: i32) -> String {
    crate::sys::errno_name(e)
}

/// Runs every POPULATE check.
pub fn run(r: &mut Report) {
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => return r.check("populate: open /dev/pktmap", false, e),
    };
    let base = state(&dev);
    for (kind, options) in kinds() {
        let info = match options.create(&dev) {
            Ok(i) => i,
            Err(e) => {
                r.check(&format!("{kind} pool: POOL_CREATE"), false, e);
                continue;
            }
        };
        one_kind(r, &dev, kind, &info);
        let _ = dev.destroy_pool(info.id);
    }
    let end = state(&dev);
    let gauges = |s: &State| [s.pools, s.pages_allocated, s.live_mappings, s.pool_files];
    r.check(
        "populate: every gauge back to its baseline",
        gauges(&end) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&end)),
    );
}
