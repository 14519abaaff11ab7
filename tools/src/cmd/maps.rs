//! `pktmap maps`.

use super::offset::type_label;
use clap::Args;
use pktmap::inspect::maps::{self, Name};
use pktmap_tools::bench::size_name;
use serde_json::json;
use std::io;

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
        println!(
            "{:x}-{:x} {} {:>9} {:08x}  {:<28} {}",
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
