//! `pktmap`: encode and decode mmap offsets, name the mappings of a process, and measure
//! POPULATE against fault-in.
//!
//! ```text
//! pktmap encode [--layout L] TYPE [ID] [--json]
//! pktmap decode [--layout L] OFFSET [--pgoff] [--json]
//! pktmap maps [PID] [--all] [--json]
//! pktmap bench [--quick] [--only B,...] [--json|--markdown] [--plot PATH] [--device /dev/pktmap]
//!              [--check] [--json-out PATH] [--markdown-out PATH]
//! ```
//!
//! `scripts/guest-test` runs `bench --device /dev/pktmap --check` inside the QEMU guest, against
//! `pktmap.ko` (`--quick` by default, the full matrix with `--bench`).
//!
//! The logic lives in the library ([`pktmap::offset`], [`pktmap::maps`], [`pktmap::bench`]);
//! this file parses arguments and prints.

use clap::{Parser, Subcommand};
use pktmap::bench::{self, json_str, Backing, Plan};
use pktmap::maps::{self, Name};
use pktmap::offset::{Layout, LAYOUTS};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pktmap",
    version,
    about = "Encode what to map in the mmap offset, and measure it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encode (type, id) as an mmap offset.
    Encode {
        /// pktmap, onload, io_uring, af_xdp or vfio.
        #[arg(long, short, default_value = "pktmap")]
        layout: String,
        /// The map type: a name the layout lists (POOL, PBUF_RING, FILL) or a number.
        #[arg(value_name = "TYPE")]
        map_type: String,
        /// The map id (decimal or 0x hex; the byte offset in the region for vfio).
        #[arg(default_value = "0")]
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decode an mmap offset (with every layout unless --layout is given).
    Decode {
        /// Decode with this layout only.
        #[arg(long, short)]
        layout: Option<String>,
        /// The byte offset (decimal or 0x hex), or a page offset with --pgoff.
        offset: String,
        /// The number is vm_pgoff (the offset in pages), as the driver sees it.
        #[arg(long)]
        pgoff: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List /proc/PID/maps, naming pktmap, io_uring and AF_XDP mappings.
    Maps {
        /// The process (default: this one).
        pid: Option<u32>,
        /// Show every mapping, not only those a layout names.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure MAP_POPULATE, MADV_POPULATE_WRITE, write and read fault-in per 4 KiB page.
    Bench {
        /// A small, fast matrix (sizes up to 2 MiB).
        #[arg(long)]
        quick: bool,
        /// Only these backings (comma-separated): existing, fresh, hugetlb, io_uring-pbuf,
        /// pktmap-eager, pktmap-lazy (the last two need --device).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Seconds each (backing, size) group runs at least (default 1.5; 0.05 with --quick).
        #[arg(long)]
        budget: Option<f64>,
        /// Measured rounds per group at least (default 5; 3 with --quick).
        #[arg(long)]
        min_rounds: Option<usize>,
        /// Print the report as JSON on stdout (the table is not printed).
        #[arg(long)]
        json: bool,
        /// Print the tables as Markdown (for the README) instead of text.
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
        /// Where to write the SVG plot.
        #[arg(long, default_value = "target/pktmap-bench.svg")]
        plot: PathBuf,
        /// Do not write the plot.
        #[arg(long)]
        no_plot: bool,
        /// Also measure eager and lazy pools of this /dev/pktmap (needs the driver loaded).
        #[arg(long, value_name = "PATH")]
        device: Option<PathBuf>,
        /// Check the pools' fault accounting (what the driver served, the minor faults) and
        /// print `ok`/`FAIL` lines and `N passed, M failed`; exit 1 if a check failed.
        #[arg(long, requires = "device")]
        check: bool,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "PATH")]
        json_out: Option<PathBuf>,
        /// Also write the machine line and the Markdown tables to this file.
        #[arg(long, value_name = "PATH")]
        markdown_out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Encode {
            layout,
            map_type,
            id,
            json,
        } => encode(&layout, &map_type, &id, json),
        Command::Decode {
            layout,
            offset,
            pgoff,
            json,
        } => decode(layout.as_deref(), &offset, pgoff, json),
        Command::Maps { pid, all, json } => list_maps(pid, all, json),
        Command::Bench {
            quick,
            only,
            budget,
            min_rounds,
            json,
            markdown,
            plot,
            no_plot,
            device,
            check,
            json_out,
            markdown_out,
        } => run_bench(BenchArgs {
            quick,
            only,
            budget,
            min_rounds,
            json,
            markdown,
            plot: (!no_plot).then_some(plot),
            device,
            check,
            json_out,
            markdown_out,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            eprintln!("pktmap: interrupted (settings restored)");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("pktmap: {e}");
            ExitCode::FAILURE
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn number(s: &str) -> io::Result<u64> {
    let t = s.replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    r.map_err(|_| invalid(format!("not a number: {s}")))
}

fn layout(name: &str) -> io::Result<&'static Layout> {
    let want = name.to_ascii_lowercase().replace('-', "_");
    LAYOUTS.into_iter().find(|l| l.name == want).ok_or_else(|| {
        let names: Vec<_> = LAYOUTS.iter().map(|l| l.name).collect();
        invalid(format!(
            "unknown layout {name}; one of {}",
            names.join(", ")
        ))
    })
}

fn map_type(layout: &Layout, s: &str) -> io::Result<u32> {
    if let Some(types) = layout.types {
        if let Some(t) = types.iter().find(|t| t.name.eq_ignore_ascii_case(s)) {
            return Ok(t.value);
        }
    }
    let n = number(s).map_err(|_| {
        let names: Vec<_> = layout.types.unwrap_or(&[]).iter().map(|t| t.name).collect();
        invalid(format!(
            "{} has no type {s}; one of {} or a number",
            layout.name,
            names.join(", ")
        ))
    })?;
    u32::try_from(n).map_err(|_| invalid(format!("type {s} does not fit 32 bits")))
}

fn type_label(layout: &Layout, t: u32) -> String {
    layout
        .type_name(t)
        .map_or_else(|| t.to_string(), str::to_string)
}

fn encode(layout_name: &str, ty: &str, id: &str, json: bool) -> io::Result<()> {
    let l = layout(layout_name)?;
    let t = map_type(l, ty)?;
    let id = number(id)?;
    let off = l
        .encode(t, id)
        .map_err(|e| invalid(format!("{}: cannot encode {ty} id {id}: {e}", l.name)))?;
    if json {
        println!(
            "{{\"layout\":{},\"type\":{t},\"type_name\":{},\"id\":{id},\"offset\":{off},\"offset_hex\":\"{off:#x}\",\"pgoff\":{}}}",
            json_str(l.name),
            json_str(&type_label(l, t)),
            off >> pktmap::offset::PAGE_SHIFT
        );
    } else {
        println!("{off:#x}");
    }
    Ok(())
}

fn decode(layout_name: Option<&str>, offset: &str, pgoff: bool, json: bool) -> io::Result<()> {
    let n = number(offset)?;
    let layouts: Vec<&'static Layout> = match layout_name {
        Some(name) => vec![layout(name)?],
        None => LAYOUTS.to_vec(),
    };
    let mut rows = Vec::new();
    for l in &layouts {
        let r = if pgoff {
            l.decode_pgoff(n)
        } else {
            l.decode(n)
        };
        rows.push((*l, r));
    }
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|(l, r)| match r {
                Ok((t, id)) => format!(
                    "{{\"layout\":{},\"ok\":true,\"type\":{t},\"type_name\":{},\"id\":{id}}}",
                    json_str(l.name),
                    json_str(&type_label(l, *t))
                ),
                Err(e) => format!(
                    "{{\"layout\":{},\"ok\":false,\"error\":{}}}",
                    json_str(l.name),
                    json_str(&e.to_string())
                ),
            })
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for (l, r) in &rows {
            match r {
                Ok((t, id)) => println!("{:<9} {} id {id}", l.name, type_label(l, *t)),
                Err(e) => println!("{:<9} error: {e}", l.name),
            }
        }
    }
    if rows.iter().all(|(_, r)| r.is_err()) && layout_name.is_some() {
        return Err(invalid(format!("{offset} does not decode")));
    }
    Ok(())
}

fn list_maps(pid: Option<u32>, all: bool, json: bool) -> io::Result<()> {
    let entries = maps::read(pid).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "/proc/{}/maps: {e}",
                pid.map_or("self".into(), |p| p.to_string())
            ),
        )
    })?;
    let shown: Vec<_> = entries
        .iter()
        .map(|e| (e, e.name()))
        .filter(|(_, n)| all || *n != Name::Unknown)
        .collect();
    if json {
        let items: Vec<String> = shown
            .iter()
            .map(|(e, n)| {
                let (layout, ty, id) = match n {
                    Name::Resource {
                        layout,
                        map_type,
                        id,
                    } => (
                        json_str(layout.name),
                        json_str(&type_label(layout, *map_type)),
                        id.to_string(),
                    ),
                    Name::Undecodable { layout, .. } => {
                        (json_str(layout.name), "null".into(), "null".into())
                    }
                    Name::PacketMmap => (json_str("af_packet"), json_str("PACKET_MMAP"), "null".into()),
                    Name::Unknown => ("null".into(), "null".into(), "null".into()),
                };
                format!(
                    "{{\"start\":\"{:#x}\",\"end\":\"{:#x}\",\"bytes\":{},\"perms\":{},\"offset\":\"{:#x}\",\"path\":{},\"layout\":{layout},\"type\":{ty},\"id\":{id},\"name\":{}}}",
                    e.start,
                    e.end,
                    e.len(),
                    json_str(&e.perms),
                    e.offset,
                    e.path.as_deref().map_or("null".into(), json_str),
                    json_str(&n.to_string())
                )
            })
            .collect();
        println!("[{}]", items.join(",\n "));
        return Ok(());
    }
    for (e, n) in &shown {
        let label = n.to_string();
        println!(
            "{:x}-{:x} {} {:>9} {:08x}  {:<28} {}",
            e.start,
            e.end,
            e.perms,
            bench::size_name(e.len() as usize),
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

struct BenchArgs {
    quick: bool,
    only: Vec<String>,
    budget: Option<f64>,
    min_rounds: Option<usize>,
    json: bool,
    markdown: bool,
    plot: Option<PathBuf>,
    device: Option<PathBuf>,
    check: bool,
    json_out: Option<PathBuf>,
    markdown_out: Option<PathBuf>,
}

/// Writes `text` to `path`, creating its directory.
fn write_file(path: &std::path::Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn run_bench(a: BenchArgs) -> io::Result<()> {
    let mut plan = if a.quick {
        Plan::quick()
    } else {
        Plan::standard()
    };
    if let Some(dev) = &a.device {
        // Fail early and clearly rather than skipping every pool group.
        pktmap::device::Device::open_path(dev).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "--device {}: {e} (the pktmap driver runs in the QEMU guest the scripts/ boot)",
                    dev.display()
                ),
            )
        })?;
        plan = plan.with_device_pools(dev);
    }
    if !a.only.is_empty() {
        let mut keep = Vec::new();
        for name in &a.only {
            let b = Backing::ALL
                .into_iter()
                .find(|b| b.name() == name.as_str())
                .ok_or_else(|| invalid(format!("unknown backing {name}")))?;
            keep.push(b);
        }
        plan = plan.only(&keep);
    }
    if let Some(s) = a.budget {
        plan.budget = Duration::from_secs_f64(s.max(0.0));
    }
    if let Some(n) = a.min_rounds {
        plan.min_rounds = n.max(1);
    }
    eprintln!(
        "pktmap bench: {} groups × {} modes, estimated {:.0} s",
        plan.groups.len(),
        plan.modes.len(),
        plan.estimate().as_secs_f64().ceil()
    );
    let tty = io::stderr().is_terminal();
    let report = bench::run(&plan, &mut |p| {
        let line = p.line(30);
        if tty {
            eprint!("\r\x1b[2K{line}");
            if p.current.is_none() {
                eprintln!();
            }
        } else {
            eprintln!("{line}");
        }
        let _ = io::stderr().flush();
    })?;
    let markdown = || format!("{}\n\n{}", report.machine.summary(), report.markdown());
    if a.json {
        println!("{}", report.to_json());
    } else if a.markdown {
        print!("{}", markdown());
    } else {
        print!("{}", report.table());
    }
    if let Some(path) = &a.json_out {
        write_file(path, &format!("{}\n", report.to_json()))?;
    }
    if let Some(path) = &a.markdown_out {
        write_file(path, &markdown())?;
    }
    if let Some(path) = &a.plot {
        write_file(path, &bench::plot::svg(&report)?)?;
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        eprintln!("plot: {}", shown.display());
    }
    if a.check {
        // The guest's format: one `ok`/`FAIL` line per check, then `N passed, M failed`.
        let checks = report.fault_checks();
        let failed = checks.iter().filter(|c| !c.ok).count();
        for c in &checks {
            let tag = if c.ok { "ok  " } else { "FAIL" };
            println!("{tag} {} ({})", c.name, c.detail);
        }
        println!("{} passed, {failed} failed", checks.len() - failed);
        if failed > 0 {
            return Err(io::Error::other(format!(
                "{failed} of {} fault checks failed",
                checks.len()
            )));
        }
    }
    Ok(())
}
