//! Pool files (driver/kmod/README.md, "Pool files"): `POOL_EXPORT`, a pool file descriptor
//! handed over a UNIX socket to an unrelated process (`pktmap-guest pool-peer MODE SOCKET`,
//! started with nothing inherited but its arguments), which maps it and talks to us through
//! the pool; the pool outliving its creator. The read-only mode's refusals are
//! [`read_only::pool_file`](super::read_only::pool_file)'s.

use crate::sys;
use crate::utils::{eventually, state, Report, PAGE, PMD};
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap::pool::{PoolFile, PoolOptions};
use pktmap::resource::{MapFlags, MapOptions};
use pktmap_abi::ioctl;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `pktmap-guest pool-peer MODE SOCKET` (this program, nothing inherited but stdout),
/// sends it `file` over a fresh UNIX socket, and records its checks as ours.
fn with_peer(r: &mut Report, mode: &str, file: &PoolFile, during: impl FnOnce(&mut Report)) {
    let path = format!("/tmp/pktmap-peer-{mode}.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the peer socket");
    let mut child = match Command::new("/proc/self/exe")
        .args(["pool-peer", mode, &path])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return r.check(&format!("start the {mode} peer"), false, e),
    };
    let sent = listener
        .accept()
        .map_err(pktmap::Error::from)
        .and_then(|(s, _)| file.send(&s).map(|()| s));
    r.check(
        &format!("{mode}: SCM_RIGHTS send of the pool fd"),
        sent.is_ok(),
        format!("{sent:?}"),
    );
    during(r);
    let out = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(name) = line.strip_prefix("ok   ") {
            r.check(&format!("{mode} peer: {name}"), true, "");
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
            r.check(&format!("{mode} peer: {name}"), false, detail);
        }
    }
    let status = child.wait();
    r.check(
        &format!("{mode} peer exited cleanly"),
        status.as_ref().is_ok_and(|s| s.success()),
        format!("{status:?}"),
    );
    drop(sent);
    let _ = std::fs::remove_file(&path);
}

const COUNTER_END: u64 = 1000;

pub fn run(r: &mut Report, dev: &Device) {
    let base = state(dev);
    // The classic two-process example: we write a counter, the peer reads it through its own
    // mapping and answers at byte 8 when it saw the last value.
    let info = PoolOptions::new(4096, 4).create(dev).expect("eager pool");
    let m = dev.map_pool(info.id, MapFlags::empty()).expect("map");
    let file = dev
        .export_pool(info.id, false)
        .expect("POOL_EXPORT read-write");
    r.check(
        "POOL_EXPORT: the pool file describes the pool (POOL_INFO id 0)",
        file.info()
            .is_ok_and(|i| i.bytes == info.bytes && i.buf_size == 4096),
        format!("{:?}", file.info()),
    );
    r.check(
        "STATE counts the live pool file",
        state(dev).pool_files == base.pool_files + 1,
        format!("{} -> {}", base.pool_files, state(dev).pool_files),
    );
    let counter = m.ptr_at(0, 8, 8).expect("counter") as *mut u64;
    let ack = m.ptr_at(8, 8, 8).expect("ack") as *const u64;
    with_peer(r, "counter", &file, |r| {
        let mut acked = false;
        for v in 1..=COUNTER_END {
            // SAFETY: An aligned word of our writable shared mapping; the peer reads it.
            unsafe { counter.write_volatile(v) };
            std::thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: An aligned word of our mapping that the peer writes.
        acked |= eventually(
            Duration::from_secs(20),
            || unsafe { ack.read_volatile() } == COUNTER_END,
        );
        r.check(
            "the peer's write through its own mapping reached ours (ack = last counter)",
            acked,
            // SAFETY: As above.
            format!("ack {}", unsafe { ack.read_volatile() }),
        );
    });
    drop(file);

    let ro = dev
        .export_pool(info.id, true)
        .expect("POOL_EXPORT read-only");
    with_peer(r, "readonly", &ro, |_| {});
    drop(ro);
    r.errno(
        "POOL_EXPORT unknown flags: EINVAL",
        raw_export(dev, info.id, 2),
        libc::EINVAL,
    );
    r.errno(
        "POOL_EXPORT unknown pool: EINVAL",
        raw_export(dev, info.id + 1000, 0),
        libc::EINVAL,
    );
    drop(m);
    let _ = dev.destroy_pool(info.id);

    // The creator goes first: a child creates a 2 MiB pool, writes it, exports it to us and
    // exits; the pool lives on in our file descriptor.
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let creator = sys::spawn_child(move || {
        let run = || -> pktmap::Result<()> {
            let dev = Device::open()?;
            let info = PoolOptions::new(4096, 512).huge().create(&dev)?;
            dev.write_resource(ResourceType::Pool, info.id, b"from the creator")?;
            dev.export_pool(info.id, false)?.send(&theirs)
        };
        i32::from(run().is_err())
    });
    let creator_exit = sys::wait_child(creator);
    let got = PoolFile::recv(&ours);
    r.check(
        "the creator exited after sending its pool",
        creator_exit.is_none() && got.is_ok(),
        format!("{creator_exit:?} {got:?}"),
    );
    if let Ok(file) = got {
        match file.map(MapFlags::empty()) {
            Ok(m) => {
                let mut head = [0; 16];
                m.read_at(0, &mut head).expect("read");
                r.check(
                    "the pool outlives its creator: mapped through the received fd, its data is there",
                    &head == b"from the creator" && m.as_ptr() as usize % PMD == 0,
                    format!("{:?} at {:p}", String::from_utf8_lossy(&head), m.as_ptr()),
                );
                drop(file);
                m.write_at(PMD - 8, b"lastword")
                    .expect("write after the fd is gone");
                r.check(
                    "the mapping keeps the pool after its last fd is closed",
                    state(dev).pools == base.pools + 1,
                    format!("{:?}", state(dev)),
                );
            }
            Err(e) => r.check("map the received 2 MiB pool", false, e),
        }
    }
    let end = state(dev);
    r.check(
        "export: pools, pages and pool files back to baseline once the last fd and mapping are gone",
        end.pools == base.pools
            && end.pages_allocated == base.pages_allocated
            && end.pool_files == base.pool_files
            && end.live_mappings == base.live_mappings,
        format!("{base:?} -> {end:?}"),
    );
}

/// `POOL_EXPORT` with raw flags; the fd is closed at once.
fn raw_export(dev: &Device, id: u32, flags: u32) -> std::io::Result<()> {
    let mut req = ioctl::PoolExport {
        id,
        flags,
        ..Default::default()
    };
    sys::ioctl_raw(
        dev.as_fd(),
        ioctl::POOL_EXPORT,
        (&mut req as *mut ioctl::PoolExport).cast(),
    )?;
    // SAFETY: The ioctl succeeded, so `fd` is a new descriptor of ours.
    unsafe { libc::close(req.fd) };
    Ok(())
}

/// `pktmap-guest pool-peer MODE SOCKET`: the unrelated process of the export checks. It
/// connects to SOCKET, receives a pool fd and checks what MODE says, printing `ok`/`FAIL`
/// lines for the parent to collect.
pub fn peer(r: &mut Report, mode: &str, socket: &str) {
    let file = match UnixStream::connect(socket)
        .map_err(pktmap::Error::from)
        .and_then(|s| PoolFile::recv(&s))
    {
        Ok(f) => f,
        Err(e) => return r.check("receive the pool fd", false, e),
    };
    let links: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    r.check(
        "unrelated: no /dev/pktmap fd inherited, only the received pool file",
        !links.iter().any(|l| l.contains("/dev/pktmap"))
            && links.iter().any(|l| l.contains("pktmap-pool")),
        format!("{links:?}"),
    );
    match mode {
        "counter" => {
            let m = match file.map(MapFlags::empty()) {
                Ok(m) => m,
                Err(e) => return r.check("map the pool read-write", false, e),
            };
            let counter = m.ptr_at(0, 8, 8).expect("counter") as *const u64;
            let mut last = 0;
            let seen = eventually(Duration::from_secs(20), || {
                // SAFETY: An aligned word of our shared mapping, written by the other process.
                last = unsafe { counter.read_volatile() };
                last == COUNTER_END
            });
            r.check(
                "read the other process's counter through our own mapping",
                seen,
                format!("last {last}"),
            );
            let ack = m.ptr_at(8, 8, 8).expect("ack") as *mut u64;
            // SAFETY: An aligned word of our writable shared mapping.
            unsafe { ack.write_volatile(last) };
        }
        "readonly" => super::read_only::pool_file(r, &file),
        _ => r.check(&format!("known peer mode {mode}"), false, "unknown"),
    }
    r.errno(
        "mmap a pool file at an offset other than POOL 0: EINVAL",
        MapOptions::new(PAGE)
            .flags(MapFlags::READONLY)
            .map(&file, ResourceType::Pool.offset(1)),
        libc::EINVAL,
    );
}
