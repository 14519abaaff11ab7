//! What `/proc/self/maps` and `pktmap maps` say of real `/dev/pktmap` mappings (README.md,
//! "The offset is the contract"): the kernel's own line names `/dev/pktmap` at the encoded
//! offset, which decodes back to the resource; and the static `pktmap` command (`/pktmap`
//! in the initramfs, the same binary the guest's bench run uses) lists this process's STATE,
//! pool (eager, lazy, contiguous, private) and ring mappings by what the kernel says their file
//! is (the device number in `/sys/class/misc/pktmap/dev`) and by their offset, in text and in
//! JSON, and an exported pool's own file (`anon_inode:[pktmap-pool]`) as `POOL id 0`; a
//! `/dev/zero` mapping is not named, only listed with `--all`; a missing process exits 1; and once everything is
//! unmapped it names nothing (exit 0, said on stderr), as the README promises.

use crate::sys;
use crate::utils::{maps_line, Report, PAGE};
use pktmap::device::Device;
use pktmap::offset::{ResourceType, PKTMAP as LAYOUT};
use pktmap::pool::PoolOptions;
use pktmap::resource::{map, MapFlags};
use std::os::fd::AsFd;
use std::process::{Command, Output};

/// Where `scripts/lib/initramfs.sh` puts the static `pktmap` command.
const PKTMAP: &str = "/pktmap";

/// One mapping the listing must name: its address range, `perms` and expected label.
struct Want {
    what: &'static str,
    start: usize,
    len: usize,
    perms: &'static str,
    label: String,
    /// The file the listing shows.
    path: &'static str,
}

fn pktmap(args: &[&str]) -> Result<Output, String> {
    Command::new(PKTMAP)
        .args(args)
        .output()
        .map_err(|e| format!("running {PKTMAP}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether listing line `l` ends with the file `path`: a path, or an anonymous inode followed
/// by its inode and the fds that hold it (`anon_inode:[pktmap-pool] (ino 12, fd 5)`).
fn shows_file(l: &str, path: &str) -> bool {
    l.ends_with(&format!(" {path}"))
        || (path.starts_with("anon_inode:")
            && l.contains(&format!(" {path} (ino "))
            && l.ends_with(')'))
}

/// The text line of `/pktmap maps` for the mapping at `start..start + len`, if listed.
fn line_of(listing: &str, start: usize, len: usize) -> Option<&str> {
    let range = format!("{:x}-{:x} ", start, start + len);
    listing.lines().find(|l| l.starts_with(&range))
}

/// The kernel's `/proc/self/maps` line of a read-only mapping of `pool`.
pub fn proc_self(r: &mut Report, dev: &Device, pool: u32) {
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
    let decoded = offset.map(|o| LAYOUT.decode(o));
    r.check(
        "the maps offset decodes back to (POOL, id)",
        decoded == Some(Ok((ResourceType::Pool.into(), u64::from(pool)))),
        format!("{decoded:?}"),
    );
}

/// `/pktmap maps` of this process's mappings.
pub fn run(r: &mut Report) {
    let exists = std::path::Path::new(PKTMAP).is_file();
    r.check(
        "maps: the static pktmap command is in the guest",
        exists,
        format!("no {PKTMAP} (scripts/lib/initramfs.sh puts it there)"),
    );
    if !exists {
        return;
    }
    let dev = match Device::open() {
        Ok(d) => d,
        Err(e) => return r.check("maps: open /dev/pktmap", false, e),
    };
    let eager = PoolOptions::new(4096, 4).create(&dev).expect("eager pool");
    let lazy = PoolOptions::new(4096, 8)
        .lazy(4)
        .create(&dev)
        .expect("lazy pool");
    let contig = PoolOptions::new(4096, 4)
        .contiguous()
        .create(&dev)
        .expect("contiguous pool");
    let ring = dev.create_ring(8, eager.id).expect("ring");

    let state = dev.map_state().expect("map STATE");
    let eager_map = dev
        .map_pool(eager.id, MapFlags::empty())
        .expect("map eager");
    let lazy_map = dev.map_pool(lazy.id, MapFlags::READONLY).expect("map lazy");
    let contig_map = dev
        .map_pool(contig.id, MapFlags::empty())
        .expect("map contig");
    let ring_map = dev.map_ring(ring.id, MapFlags::empty()).expect("map ring");
    // A private, read-only view of the eager pool: the same device file, so named too.
    let private_len = 4 * PAGE;
    let private = sys::mmap_raw(
        Some(dev.as_fd()),
        private_len,
        libc::PROT_READ,
        libc::MAP_PRIVATE,
        ResourceType::Pool.offset(eager.id),
    )
    .expect("map the eager pool MAP_PRIVATE");
    // An exported pool's own file: named by pktmap's codec, its pool being POOL id 0.
    let exported = PoolOptions::new(4096, 2)
        .create(&dev)
        .expect("pool to export");
    let pool_file = dev.export_pool(exported.id, false).expect("POOL_EXPORT");
    let file_map = pool_file.map(MapFlags::empty()).expect("map the pool file");
    // Another character device: never named, only listed with --all.
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let zero_map = map(&zero, 0, PAGE, MapFlags::READONLY).expect("map /dev/zero");

    let pool = |id| format!("pktmap POOL id {id}");
    let wants = [
        Want {
            what: "STATE",
            start: state.as_ptr() as usize,
            len: state.len(),
            perms: "r--s",
            label: "pktmap STATE id 0".into(),
            path: "/dev/pktmap",
        },
        Want {
            what: "an eager pool",
            start: eager_map.as_ptr() as usize,
            len: eager_map.len(),
            perms: "rw-s",
            label: pool(eager.id),
            path: "/dev/pktmap",
        },
        Want {
            what: "a lazy pool mapped read-only",
            start: lazy_map.as_ptr() as usize,
            len: lazy_map.len(),
            perms: "r--s",
            label: pool(lazy.id),
            path: "/dev/pktmap",
        },
        Want {
            what: "a contiguous pool",
            start: contig_map.as_ptr() as usize,
            len: contig_map.len(),
            perms: "rw-s",
            label: pool(contig.id),
            path: "/dev/pktmap",
        },
        Want {
            what: "a ring",
            start: ring_map.as_ptr() as usize,
            len: ring_map.len(),
            perms: "rw-s",
            label: format!("pktmap RING id {}", ring.id),
            path: "/dev/pktmap",
        },
        Want {
            what: "a private view of a pool",
            start: private as usize,
            len: private_len,
            perms: "r--p",
            label: pool(eager.id),
            path: "/dev/pktmap",
        },
        Want {
            what: "an exported pool through its own file",
            start: file_map.as_ptr() as usize,
            len: file_map.len(),
            perms: "rw-s",
            label: pool(0),
            path: "anon_inode:[pktmap-pool]",
        },
    ];

    let pid = std::process::id().to_string();
    match pktmap(&["maps", &pid]) {
        Err(e) => r.check("maps: pktmap maps PID runs", false, e),
        Ok(out) => {
            let listing = text(&out.stdout);
            r.check(
                "maps: pktmap maps PID exits 0 with nothing on stderr",
                out.status.success() && out.stderr.is_empty(),
                format!("{:?}, stderr {:?}", out.status, text(&out.stderr)),
            );
            for w in &wants {
                let line = line_of(&listing, w.start, w.len);
                let ok = line.is_some_and(|l| {
                    l.split_whitespace().nth(1) == Some(w.perms)
                        && l.contains(&format!(" {} ", w.label))
                        && shows_file(l, w.path)
                });
                r.check(
                    &format!("maps: {} is listed {} {}", w.what, w.perms, w.label),
                    ok,
                    format!("line {line:?} in:\n{listing}"),
                );
            }
            let zero_start = zero_map.as_ptr() as usize;
            r.check(
                "maps: a /dev/zero mapping is not named",
                line_of(&listing, zero_start, PAGE).is_none(),
                format!("listed:\n{listing}"),
            );
            r.check(
                &format!("maps: only the {} pktmap mappings are listed", wants.len()),
                listing.lines().count() == wants.len(),
                format!("{} lines:\n{listing}", listing.lines().count()),
            );
        }
    }

    match pktmap(&["maps", &pid, "--all"]) {
        Err(e) => r.check("maps --all runs", false, e),
        Ok(out) => {
            let listing = text(&out.stdout);
            let zero_line = line_of(&listing, zero_map.as_ptr() as usize, PAGE);
            let file_line = line_of(&listing, file_map.as_ptr() as usize, file_map.len());
            r.check(
                "maps --all: names a pool file's mapping at offset 0x1000 pktmap POOL id 0",
                file_line.is_some_and(|l| {
                    shows_file(l, "anon_inode:[pktmap-pool]")
                        && l.split_whitespace().nth(4) == Some("00001000")
                        && l.contains(" pktmap POOL id 0 ")
                }),
                format!("line {file_line:?}"),
            );
            r.check(
                "maps --all: lists the /dev/zero mapping unnamed",
                out.status.success()
                    && zero_line.is_some_and(|l| {
                        // Linux 7.3 names a shared /dev/zero mapping by its shmem file,
                        // "/dev/zero (deleted)"; 6.12 said "/dev/zero".
                        (l.ends_with(" /dev/zero") || l.ends_with(" /dev/zero (deleted)"))
                            && !l.contains("pktmap")
                            && !l.contains("?")
                    }),
                format!("{:?}, line {zero_line:?}", out.status),
            );
        }
    }

    match pktmap(&["maps", &pid, "--json"]) {
        Err(e) => r.check("maps --json runs", false, e),
        Ok(out) => {
            let json = text(&out.stdout);
            r.check(
                "maps --json: exits 0, an array",
                out.status.success()
                    && json.trim_start().starts_with('[')
                    && json.trim_end().ends_with(']'),
                format!("{:?}: {json}", out.status),
            );
            // One object per line: find each mapping's object by its start address.
            for w in &wants {
                let start = format!("\"start\":\"{:#x}\"", w.start);
                let object = json.lines().find(|l| l.contains(&start));
                let (ty, id) = w.label.rsplit_once(" id ").expect("label has an id");
                let ty = ty.trim_start_matches("pktmap ");
                let fields = [
                    format!("\"end\":\"{:#x}\"", w.start + w.len),
                    format!("\"perms\":\"{}\"", w.perms),
                    "\"layout\":\"pktmap\"".to_string(),
                    format!("\"type\":\"{ty}\""),
                    format!("\"id\":{id}"),
                    format!("\"name\":\"{}\"", w.label),
                    format!("\"path\":\"{}\"", w.path),
                ];
                r.check(
                    &format!("maps --json: {} is {}", w.what, w.label),
                    object.is_some_and(|o| fields.iter().all(|f| o.contains(f.as_str()))),
                    format!("object {object:?}, want {fields:?}"),
                );
            }
        }
    }

    match pktmap(&["maps", "999999999"]) {
        Err(e) => r.check("maps of no process runs", false, e),
        Ok(out) => {
            let err = text(&out.stderr);
            r.check(
                "maps of no such process: exit 1, names the process",
                out.status.code() == Some(1)
                    && err.contains("999999999")
                    && !err.contains("panicked"),
                format!("{:?}: {err}", out.status),
            );
        }
    }

    drop((state, eager_map, lazy_map, contig_map, ring_map, zero_map));
    drop((file_map, pool_file));
    // SAFETY: `private` is the mapping made above, of `private_len` bytes; nothing refers to
    // it any more.
    unsafe { sys::munmap(private, private_len) }.expect("munmap the private view");
    match pktmap(&["maps", &pid]) {
        Err(e) => r.check("maps after unmapping runs", false, e),
        Ok(out) => {
            let err = text(&out.stderr);
            r.check(
                "maps after unmapping: names nothing, exit 0, says so on stderr",
                out.status.success() && out.stdout.is_empty() && err.contains("no pktmap"),
                format!(
                    "{:?}: stdout {:?}, stderr {err:?}",
                    out.status,
                    text(&out.stdout)
                ),
            );
        }
    }
    dev.destroy_ring(ring.id).expect("destroy ring");
    for id in [eager.id, lazy.id, contig.id, exported.id] {
        dev.destroy_pool(id).expect("destroy pool");
    }
}
