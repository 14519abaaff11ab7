//! What every check shares, written once: the pass/fail [`Report`], STATE reads and its
//! gauges and fault counters, reading a resource back through the driver, touching a
//! mapping's pages, the byte pattern, and the `/proc/self` views of a mapping.

use crate::sys::{self, minor_faults, poke};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::resource::Mapping;
use pktmap_abi::ioctl::{PoolInfo, State};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub const PAGE: usize = 4096;
pub const MIB: usize = 1 << 20;
/// One PMD entry: 2 MiB.
pub const PMD: usize = 2 * MIB;

/// Counts checks and prints each one.
#[derive(Default)]
pub struct Report {
    passed: u32,
    failed: u32,
    /// Checks this kernel cannot run (it lacks what they need, and its config says so):
    /// neither passed nor failed, and shown as such in the closing line.
    not_run: u32,
}

impl Report {
    /// Records one check.
    pub fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        if ok {
            self.passed += 1;
            println!("ok   {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {detail}");
        }
    }

    /// Records that `r` failed with exactly `want` (an errno).
    pub fn errno<T: std::fmt::Debug, E: Into<pktmap::Error>>(
        &mut self,
        name: &str,
        r: Result<T, E>,
        want: i32,
    ) {
        match r {
            Ok(v) => self.check(
                name,
                false,
                format!("succeeded ({v:?}), want {}", sys::errno_name(want)),
            ),
            Err(e) => {
                let e: pktmap::Error = e.into();
                let got = e.raw_os_error();
                self.check(
                    name,
                    got == Some(want),
                    format!("got {e}, want {}", sys::errno_name(want)),
                );
            }
        }
    }

    /// Records a check that cannot run on this kernel, and `why` (what the kernel lacks and
    /// how that is known): printed `NOT RUN`, counted apart from passes and failures. Only
    /// for a lack the kernel's own config states; anything else missing is a failure.
    pub fn not_run(&mut self, name: &str, why: impl std::fmt::Display) {
        self.not_run += 1;
        println!("NOT RUN {name}: {why}");
    }

    /// Prints the closing `N passed, M failed` line (`, K not run` after it when checks could
    /// not run); the exit code says whether none failed.
    pub fn finish(&self) -> ExitCode {
        if self.not_run > 0 {
            println!(
                "{} passed, {} failed, {} not run",
                self.passed, self.failed, self.not_run
            );
        } else {
            println!("{} passed, {} failed", self.passed, self.failed);
        }
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Opens `/dev/pktmap`, or records why not.
pub fn open(r: &mut Report) -> Option<Device> {
    match Device::open() {
        Ok(d) => Some(d),
        Err(e) => {
            r.check("open /dev/pktmap", false, e);
            None
        }
    }
}

/// A STATE snapshot (`pread`, checked consistent by the library).
pub fn state(dev: &Device) -> State {
    dev.state().expect("reading the STATE page")
}

/// The gauges that must return to their baseline when everything is freed: pools, rings,
/// pages allocated, live mappings, pool files.
pub fn gauges(s: &State) -> [u64; 5] {
    [
        s.pools,
        s.rings,
        s.pages_allocated,
        s.live_mappings,
        s.pool_files,
    ]
}

/// The check that ends a run: every gauge back at `base`.
pub fn back_to_baseline(r: &mut Report, what: &str, dev: &Device, base: &State) {
    let end = state(dev);
    r.check(
        &format!(
            "{what}: every gauge back to its baseline (pools, rings, pages allocated, live \
             mappings, pool files)"
        ),
        gauges(&end) == gauges(base),
        format!("{:?} -> {:?}", gauges(base), gauges(&end)),
    );
}

/// `(faults_served, pages_mapped)` since `before`.
pub fn served(dev: &Device, before: &State) -> (u64, u64) {
    let s = state(dev);
    (
        s.faults_served - before.faults_served,
        s.pages_mapped - before.pages_mapped,
    )
}

/// `(pages_mapped, faults_served, pmd_faults)` since `before`.
pub fn counted(dev: &Device, before: &State) -> (u64, u64, u64) {
    let s = state(dev);
    (
        s.pages_mapped - before.pages_mapped,
        s.faults_served - before.faults_served,
        s.pmd_faults - before.pmd_faults,
    )
}

/// Reads up to `len` bytes of a resource through the driver (`pread`).
pub fn read_resource(dev: &Device, ty: ResourceType, id: u32, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    let n = dev
        .read_resource(ty, id, &mut buf)
        .expect("pread of a resource");
    buf.truncate(n);
    buf
}

/// Reads up to `len` bytes of pool `id` through the driver (`pread`).
pub fn read_pool(dev: &Device, id: u32, len: usize) -> Vec<u8> {
    read_resource(dev, ResourceType::Pool, id, len)
}

/// `len` bytes of a mapping at `at`.
pub fn mapped_bytes(m: &Mapping, at: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    m.read_at(at, &mut buf).expect("read from a mapping");
    buf
}

/// Writes one byte into every page of `m[from..to]` (page indices) and returns the minor
/// faults that took.
pub fn touch(m: &Mapping, from: usize, to: usize, v: u8) -> i64 {
    let p = m.as_mut_ptr().expect("writable mapping");
    let before = minor_faults();
    for i in from..to {
        // SAFETY: Page `i` is inside the writable mapping.
        unsafe { poke(p.add(i * PAGE), v) };
    }
    minor_faults() - before
}

/// Byte `i` of pattern `tag`: its page index and offset mixed, so every page differs.
pub fn pattern(tag: u8, i: usize) -> u8 {
    tag ^ ((i / PAGE) ^ (i % 251)) as u8
}

/// Writes pattern `tag` over the first `len` bytes of pool `id` (`pwrite`).
pub fn fill(dev: &Device, id: u32, len: usize, tag: u8) {
    let data: Vec<u8> = (0..len).map(|i| pattern(tag, i)).collect();
    dev.write_resource(ResourceType::Pool, id, &data)
        .expect("pwrite");
}

/// Fills `m` with pattern 0 and checks the driver reads back the same (`pread`), so every
/// page of the VMA maps the pool's own memory.
pub fn pattern_round_trip(r: &mut Report, dev: &Device, info: &PoolInfo, m: &Mapping, what: &str) {
    let len = m.len();
    let pattern: Vec<u8> = (0..len).map(|i| pattern(0, i)).collect();
    m.write_at(0, &pattern).expect("write the pattern");
    let seen = read_pool(dev, info.id, len);
    r.check(
        &format!("{what}: every page of the mapping is the pool's memory (pread sees the pattern)"),
        seen == pattern,
        format!(
            "first difference at byte {:?}",
            seen.iter().zip(&pattern).position(|(a, b)| a != b)
        ),
    );
}

/// The `/proc/self/maps` line of the mapping that starts at `p`.
pub fn maps_line(p: *const u8) -> Option<String> {
    let start = format!("{:x}-", p as usize);
    std::fs::read_to_string("/proc/self/maps")
        .ok()?
        .lines()
        .find(|l| l.starts_with(&start))
        .map(str::to_string)
}

/// The `/proc/self/smaps` `VmFlags` of the mapping that starts at `p`.
pub fn vm_flags(p: *const u8) -> String {
    let start = format!("{:x}-", p as usize);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    lines
        .find_map(|l| l.strip_prefix("VmFlags:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits until `f` holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    f()
}

/// The kernel log so far (`/dev/kmsg`, read without blocking).
pub fn kernel_log() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return String::new();
    };
    let mut out = String::new();
    let mut buf = vec![0; 8192];
    // Each read is one record; EAGAIN ends the log.
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

/// Where `scripts/lib/initramfs.sh` puts the `.config` of the kernel the guest boots (Debian's
/// own for the stock track, ours for the debug track).
pub const KERNEL_CONFIG: &str = "/kernel.config";

/// What the booted kernel's config ([`KERNEL_CONFIG`]) says of `CONFIG_<name>`: `Some(true)`
/// for `=y`, `Some(false)` for `# ... is not set` (or absent from a config that exists),
/// `None` when there is no config to read.
pub fn kernel_config(name: &str) -> Option<bool> {
    let config = std::fs::read_to_string(KERNEL_CONFIG).ok()?;
    let set = format!("CONFIG_{name}=y");
    Some(config.lines().any(|l| l == set))
}
