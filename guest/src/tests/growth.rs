//! The ioctl ABI grows without breaking programs (driver/abi/src/ioctl.rs, "Growing an
//! argument struct"): a request is served at every size its struct had, the missing fields of
//! a shorter struct are the defaults and nothing past it is written, a longer struct from a
//! newer header is served when its tail is zero and `E2BIG` when not, and a size the struct
//! never had is `ENOTTY`. `guest/compat/round1.c` runs the first round's header itself.

use crate::sys;
use crate::utils::{gauges, state, Report};
use pktmap::device::Device;
use pktmap::pool::PoolOptions;
use pktmap_abi::ioctl::{self, ioc, PoolCreate, IOC_READ, IOC_WRITE, POOL_LAZY};
use std::os::fd::AsFd;

const RW: u32 = IOC_READ | IOC_WRITE;

/// `ioctl(cmd)` on `buf` (the caller's struct, any size).
fn raw(dev: &Device, cmd: u32, buf: &mut [u8]) -> std::io::Result<()> {
    sys::ioctl_raw(dev.as_fd(), cmd, buf.as_mut_ptr().cast())
}

/// The words of a `POOL_CREATE` struct.
fn create_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

pub fn run(r: &mut Report, dev: &Device) {
    let base = state(dev);
    // The first round's 16-byte POOL_CREATE of a lazy pool, with guard bytes after it.
    let mut old = create_bytes(&[4096, 4, POOL_LAZY, 0]);
    old.extend_from_slice(&[0xaa; 32]);
    let served = raw(dev, ioc(RW, 1, 16), &mut old);
    let id = u32::from_ne_bytes([old[12], old[13], old[14], old[15]]);
    r.check(
        "growth: a 16-byte POOL_CREATE (the first round's) is served",
        served.is_ok() && id != 0,
        format!("{served:?}, id {id}"),
    );
    r.check(
        "growth: nothing is written past the caller's 16 bytes",
        old[16..].iter().all(|&b| b == 0xaa),
        "guard bytes changed",
    );
    let info = dev.pool_info(id);
    r.check(
        "growth: the fields it lacks are the defaults (fault_around 16, write-back)",
        info.as_ref().is_ok_and(|i| {
            i.fault_around == ioctl::DEFAULT_FAULT_AROUND && i.cache == ioctl::CACHE_WB
        }),
        format!("{info:?}"),
    );
    // The first round's 32-byte POOL_INFO.
    let mut old_info = [0u8; 32 + 16];
    old_info[..4].copy_from_slice(&id.to_ne_bytes());
    old_info[32..].fill(0xaa);
    let got = raw(dev, ioc(RW, 2, 32), &mut old_info);
    let bytes = u64::from_ne_bytes(old_info[16..24].try_into().unwrap_or_default());
    r.check(
        "growth: a 32-byte POOL_INFO is served, and nothing past it is written",
        got.is_ok() && bytes == 4 * 4096 && old_info[32..].iter().all(|&b| b == 0xaa),
        format!("{got:?}, bytes {bytes}"),
    );
    let _ = dev.destroy_pool(id);

    // A newer header's 40-byte POOL_CREATE: zeros past today's 32 bytes are served.
    let today = std::mem::size_of::<PoolCreate>();
    let mut newer = create_bytes(&[4096, 1, 0, 0, 0, 0, 0, 0]);
    newer.resize(today + 8, 0);
    let got = raw(dev, ioc(RW, 1, today + 8), &mut newer);
    let id = u32::from_ne_bytes([newer[12], newer[13], newer[14], newer[15]]);
    r.check(
        "growth: a longer POOL_CREATE with zeros past today's struct is served",
        got.is_ok() && id != 0,
        format!("{got:?}"),
    );
    if got.is_ok() {
        let _ = dev.destroy_pool(id);
    }
    let before = state(dev);
    let mut set = create_bytes(&[4096, 1, 0, 0, 0, 0, 0, 0]);
    set.resize(today + 8, 0);
    set[today + 5] = 1;
    r.errno(
        "growth: a longer POOL_CREATE with a field set past today's struct: E2BIG",
        raw(dev, ioc(RW, 1, today + 8), &mut set),
        libc::E2BIG,
    );
    r.check(
        "growth: the E2BIG create allocated nothing",
        gauges(&state(dev)) == gauges(&before),
        format!("{:?} -> {:?}", gauges(&before), gauges(&state(dev))),
    );
    let mut odd = create_bytes(&[4096, 1, 0, 0, 0]);
    r.errno(
        "growth: a 20-byte POOL_CREATE (a size it never had): ENOTTY",
        raw(dev, ioc(RW, 1, 20), &mut odd),
        libc::ENOTTY,
    );
    let mut wrong_way = create_bytes(&[4096, 1, 0, 0, 0, 0, 0, 0]);
    r.errno(
        "growth: POOL_CREATE as _IOW instead of _IOWR: ENOTTY (dispatch is by direction too)",
        raw(dev, ioc(IOC_WRITE, 1, today), &mut wrong_way),
        libc::ENOTTY,
    );

    // A pool file answers POOL_INFO at the first round's size too.
    if let Ok(pool) = PoolOptions::new(4096, 2).create(dev) {
        if let Ok(file) = dev.export_pool(pool.id, true) {
            let mut info = [0u8; 32];
            let got = sys::ioctl_raw(file.as_fd(), ioc(RW, 2, 32), info.as_mut_ptr().cast());
            let bytes = u64::from_ne_bytes(info[16..24].try_into().unwrap_or_default());
            r.check(
                "growth: a pool file serves a 32-byte POOL_INFO",
                got.is_ok() && bytes == 2 * 4096,
                format!("{got:?}, bytes {bytes}"),
            );
        }
        let _ = dev.destroy_pool(pool.id);
    }
    r.check(
        "growth: every gauge back to its baseline",
        gauges(&state(dev)) == gauges(&base),
        format!("{:?} -> {:?}", gauges(&base), gauges(&state(dev))),
    );
}
