//! `pktmap maps`.

use super::offset::type_label;
use clap::Args;
use pktmap::inspect::maps::{self, Name};
use pktmap_tools::bench::size_name;
use serde_json::json;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;

/// `pktmap maps`.
#[derive(Args)]
pub struct MapsArgs {
    /// The process (default: this one).
    pid: Option<u32>,
    /// Show every mapping, not only those a layout names.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The descriptors of process `pid` (this one for `None`) by the `(dev, inode)` of the file
/// each refers to, the device as `/proc/<pid>/maps` spells it (`00:10`). A mapping of an
/// anonymous inode or a socket is told apart from another of the same kind only so: every
/// io_uring instance's file is `anon_inode:[io_uring]`, but each has an inode of its own. A
/// descriptor that cannot be read (another user's process) is left out.
fn fds_by_file(pid: Option<u32>) -> HashMap<(String, u64), Vec<i32>> {
    let dir = format!("/proc/{}/fd", pid.map_or("self".into(), |p| p.to_string()));
    let mut files: HashMap<(String, u64), Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(md) = std::fs::metadata(entry.path()) {
            let dev = md.dev();
            let key = (
                format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev)),
                md.ino(),
            );
            files.entry(key).or_default().push(fd);
        }
    }
    for fds in files.values_mut() {
        fds.sort_unstable();
    }
    files
}

/// Prints the mappings of a process, named where a layout decodes them.
pub fn list(a: &MapsArgs) -> io::Result<()> {
    let (pid, all, json) = (a.pid, a.all, a.json);
    let entries = maps::read(pid).map_err(|e| {
        let file = format!(
            "/proc/{}/maps",
            pid.map_or("self".into(), |p| p.to_string())
        );
        let msg = match (pid, e.raw_os_error()) {
            (Some(p), Some(libc::ENOENT | libc::ESRCH)) => format!("no process {p} ({file}: {e})"),
            (Some(p), Some(libc::EACCES | libc::EPERM)) => format!(
                "{file}: {e} (reading process {p}'s mappings needs root or ptrace access to it)"
            ),
            _ => format!("{file}: {e}"),
        };
        io::Error::new(e.kind(), msg)
    })?;
    let shown: Vec<_> = entries
        .iter()
        .map(|e| (e, e.name()))
        .filter(|(_, n)| all || *n != Name::Unknown)
        .collect();
    // Files with no path of their own (anonymous inodes, sockets): their inode and the
    // descriptors that refer to them tell two instances apart.
    let by_file = fds_by_file(pid);
    let file_of = |e: &maps::Entry| -> Option<(u64, Vec<i32>)> {
        let path = e.path.as_deref()?;
        (path.starts_with("anon_inode:") || path.starts_with("socket:[")).then(|| {
            let fds = by_file
                .get(&(e.dev.clone(), e.inode))
                .cloned()
                .unwrap_or_default();
            (e.inode, fds)
        })
    };
    if json {
        let items: Vec<serde_json::Value> = shown
            .iter()
            .map(|(e, n)| {
                let (layout, ty, id) = match n {
                    Name::Resource {
                        layout,
                        map_type,
                        id,
                    } => (
                        json!(layout.name),
                        json!(type_label(layout, *map_type)),
                        json!(id),
                    ),
                    Name::Undecodable { layout, .. } => {
                        (json!(layout.name), json!(null), json!(null))
                    }
                    Name::PacketMmap => (json!("af_packet"), json!("PACKET_MMAP"), json!(null)),
                    Name::Unknown => (json!(null), json!(null), json!(null)),
                };
                json!({
                    "start": format!("{:#x}", e.start),
                    "end": format!("{:#x}", e.end),
                    "bytes": e.len(),
                    "perms": e.perms,
                    "offset": format!("{:#x}", e.offset),
                    "path": e.path,
                    "inode": e.inode,
                    "fds": file_of(e).map(|(_, fds)| fds),
                    "layout": layout,
                    "type": ty,
                    "id": id,
                    "name": n.to_string(),
                })
            })
            .collect();
        let lines: Vec<String> = items.iter().map(|v| v.to_string()).collect();
        println!("[{}]", lines.join(",\n "));
        return Ok(());
    }
    for (e, n) in &shown {
        let label = n.to_string();
        let file = file_of(e).map_or(String::new(), |(ino, fds)| {
            let fds: Vec<String> = fds.iter().map(i32::to_string).collect();
            match fds.len() {
                0 => format!(" (ino {ino}, no fd)"),
                1 => format!(" (ino {ino}, fd {})", fds[0]),
                _ => format!(" (ino {ino}, fds {})", fds.join(",")),
            }
        });
        println!(
            "{:x}-{:x} {} {:>9} {:08x}  {:<28} {}{file}",
            e.start,
            e.end,
            e.perms,
            size_name(e.len() as usize),
            e.offset,
            label,
            e.path.as_deref().unwrap_or("")
        );
    }
    if shown.is_empty() {
        eprintln!(
            "no pktmap, io_uring or AF_XDP mappings ({} mappings; --all lists them)",
            entries.len()
        );
    }
    Ok(())
}
