//! `pktmap bench`: the arguments, checked before anything is measured, and the output files.

use super::invalid;
use clap::Args;
use pktmap_tools::bench::packets::{self, Kind, PacketPlan, PacketReport};
use pktmap_tools::bench::{self, Backing, Schedule};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `pktmap bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// A small, fast matrix (sizes up to 2 MiB).
    #[arg(long)]
    quick: bool,
    /// Only these backings (comma-separated): existing, fresh, hugetlb, io_uring-pbuf, and
    /// the pools pktmap-eager, pktmap-lazy, pktmap-lazy16, pktmap-contig, pktmap-huge (which
    /// need --device); or packet cells (root; a network namespace of the run's own):
    /// MECHANISM-rx (pktgen netif_receive), MECHANISM-rx-veth (over a veth pair),
    /// MECHANISM-tx, for MECHANISM pktmap (needs pktmap.ko), tpacket or xdp; `peers` for
    /// the tpacket and xdp cells, `packets` for all. Packet cells run only when named.
    #[arg(long, value_delimiter = ',', value_parser = parse_only)]
    only: Vec<Only>,
    /// Frames per repetition of a packet cell (default 200000; 20000 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    frames: Option<u64>,
    /// Seconds each (backing, size) group runs at least: finite and positive (default 1.5;
    /// 0.05 with --quick).
    #[arg(long, value_parser = parse_budget)]
    budget: Option<f64>,
    /// Measured rounds per group at least, 1 or more (default 5; 3 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    min_rounds: Option<u32>,
    /// Print the report as JSON on stdout (the table is not printed).
    #[arg(long)]
    json: bool,
    /// Print the tables as Markdown (for the README) instead of text.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Where to write the SVG plot (default: pktmap-bench.svg in the current directory). Its
    /// directory must exist.
    #[arg(long, value_name = "PATH", conflicts_with = "no_plot")]
    plot: Option<PathBuf>,
    /// Do not write the plot.
    #[arg(long)]
    no_plot: bool,
    /// Also measure the pools of this /dev/pktmap (needs the driver loaded): eager and lazy,
    /// and up to 64 MiB lazy with fault-around 16, contiguous and 2 MiB pools.
    #[arg(long, value_name = "PATH")]
    device: Option<PathBuf>,
    /// Check the pools' fault accounting (what the driver served, the minor faults; needs
    /// --device) and every packet cell's `delivered + dropped == sent`, and print `ok`/`FAIL`
    /// lines and `N passed, M failed`; exit 1 if a check failed.
    #[arg(long)]
    check: bool,
    /// Also write the report as JSON to this file (its directory must exist).
    #[arg(long, value_name = "PATH")]
    json_out: Option<PathBuf>,
    /// Also write the machine line and the Markdown tables to this file (its directory must
    /// exist).
    #[arg(long, value_name = "PATH")]
    markdown_out: Option<PathBuf>,
}

/// What `--only` names: a backing of the POPULATE matrix, packet kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Only {
    Backing(Backing),
    Packets(Vec<Kind>),
}

fn parse_only(s: &str) -> Result<Only, String> {
    if s == "packets" {
        return Ok(Only::Packets(Kind::all()));
    }
    if s == "peers" {
        return Ok(Only::Packets(Kind::peers()));
    }
    if let Some(k) = Kind::parse(s) {
        return Ok(Only::Packets(vec![k]));
    }
    Backing::ALL
        .into_iter()
        .find(|b| b.name() == s)
        .map(Only::Backing)
        .ok_or_else(|| {
            let mut names: Vec<String> =
                Backing::ALL.iter().map(|b| b.name().to_string()).collect();
            names.extend(Kind::all().iter().map(Kind::name));
            names.extend(["packets".into(), "peers".into()]);
            format!(
                "unknown backing {s} (nor a packet cell); one of {}",
                names.join(", ")
            )
        })
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if secs.is_finite() && secs > 0.0 && Duration::try_from_secs_f64(secs).is_ok() {
        Ok(secs)
    } else {
        Err(format!(
            "the budget must be a finite, positive number of seconds, not {s}"
        ))
    }
}

/// The plot's default path: `pktmap-bench.svg` in the current directory, as any command
/// writes its output. Nothing of the build machine is compiled in (an installed binary once
/// wrote into, or failed on, the `target/` of the machine that built it).
const DEFAULT_PLOT: &str = "pktmap-bench.svg";

/// Refuses an output path whose directory does not exist or that is a directory, before
/// anything is measured: nothing is created but the file itself.
fn check_output(flag: &str, path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(invalid(format!(
            "{flag} {}: directory {} does not exist (create it first)",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(invalid(format!(
            "{flag} {}: is a directory",
            path.display()
        )));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Runs the bench as the arguments say.
pub fn run(a: BenchArgs) -> io::Result<()> {
    let plot = if a.no_plot {
        None
    } else {
        Some(
            a.plot
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PLOT)),
        )
    };
    for (flag, path) in [
        ("--plot", plot.as_ref()),
        ("--json-out", a.json_out.as_ref()),
        ("--markdown-out", a.markdown_out.as_ref()),
    ] {
        if let Some(p) = path {
            check_output(flag, p)?;
        }
    }
    let backings: Vec<Backing> = a
        .only
        .iter()
        .filter_map(|o| match o {
            Only::Backing(b) => Some(*b),
            Only::Packets(_) => None,
        })
        .collect();
    let mut kinds: Vec<Kind> = Vec::new();
    for o in &a.only {
        if let Only::Packets(ks) = o {
            kinds.extend(ks.iter().filter(|k| !kinds.contains(k)).collect::<Vec<_>>());
        }
    }
    // Packet cells alone: no POPULATE matrix.
    let memory = kinds.is_empty() || !backings.is_empty();
    let packet_plan = (!kinds.is_empty()).then(|| {
        let mut p = if a.quick {
            PacketPlan::quick()
        } else {
            PacketPlan::standard()
        };
        p.kinds = kinds;
        if let Some(n) = a.frames {
            p.frames = n;
        }
        if let Some(n) = a.min_rounds {
            p.rounds = n as usize;
        }
        p
    });
    if a.check && memory && a.device.is_none() {
        return Err(invalid(
            "--check of the POPULATE matrix needs --device /dev/pktmap (the driver's pools); \
             packet cells alone (--only tpacket-rx,...) need none"
                .into(),
        ));
    }
    let mut plan = if a.quick {
        Schedule::quick()
    } else {
        Schedule::standard()
    };
    if let Some(dev) = &a.device {
        // Fail early and clearly rather than skipping every pool group: open it and read its
        // STATE page, so a missing driver, a device the user may not open read-write, or a
        // file that is not /dev/pktmap (say /dev/null) fails here, not after a run that
        // measured no pool.
        let device = pktmap::device::Device::open_path(dev).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) => {
                    ": is pktmap.ko loaded? (the driver runs in the QEMU guest that \
                     scripts/guest-test boots)"
                }
                Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
                    ": the bench opens the device read-write (root, or write access to it)"
                }
                _ => "",
            };
            io::Error::new(
                e.kind(),
                format!("--device {}: cannot open it: {e}{hint}", dev.display()),
            )
        })?;
        device.state().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "--device {}: not a pktmap device: {e} (the pktmap driver runs in the \
                     QEMU guest that scripts/guest-test boots)",
                    dev.display()
                ),
            )
        })?;
        plan = plan.with_device_pools(dev);
    } else if let Some(b) = backings.iter().find(|b| b.needs_device()) {
        return Err(invalid(format!(
            "--only {b} needs --device /dev/pktmap (the driver's pools)"
        )));
    }
    if !backings.is_empty() {
        plan = plan.only(&backings);
    }
    if !memory {
        plan.groups.clear();
    } else if plan.groups.is_empty() {
        return Err(invalid("the plan has no group to measure".into()));
    }
    if let Some(s) = a.budget {
        plan.budget = Duration::from_secs_f64(s);
    }
    if let Some(n) = a.min_rounds {
        plan.min_rounds = n as usize;
    }
    let packet_report = match &packet_plan {
        Some(p) => Some(run_packets(p)?),
        None => None,
    };
    let memory_report = if memory {
        Some(run_memory(&plan)?)
    } else {
        None
    };
    let markdown = || {
        let mut md = String::new();
        if let Some(r) = &memory_report {
            md += &format!("{}\n\n{}", r.machine.summary(), r.markdown());
        }
        if let Some(p) = &packet_report {
            if !md.is_empty() {
                md += "\n\n";
            }
            md += &p.markdown();
        }
        md
    };
    let json = || match (&memory_report, &packet_report) {
        (Some(r), None) => r.to_json(),
        (None, Some(p)) => p.to_json().to_string(),
        (Some(r), Some(p)) => {
            let populate: serde_json::Value =
                serde_json::from_str(&r.to_json()).unwrap_or(serde_json::Value::Null);
            serde_json::json!({ "populate": populate, "packets": p.to_json() }).to_string()
        }
        (None, None) => "{}".into(),
    };
    if a.json {
        println!("{}", json());
    } else if a.markdown {
        print!("{}", markdown());
    } else {
        if let Some(r) = &memory_report {
            print!("{}", r.table());
        }
        if let Some(p) = &packet_report {
            print!("{}", p.table());
        }
    }
    if let Some(path) = &a.json_out {
        write_file(path, &format!("{}\n", json()))?;
    }
    if let Some(path) = &a.markdown_out {
        write_file(path, &markdown())?;
    }
    if let Some(path) = &plot {
        let svg = match (&memory_report, &packet_report) {
            (Some(r), _) => bench::plot::svg(r)?,
            (None, Some(p)) => bench::plot::packets_svg(p),
            (None, None) => String::new(),
        };
        write_file(path, &svg)?;
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        eprintln!("plot: {}", shown.display());
    }
    if a.check {
        // The guest's format: one `ok`/`FAIL` line per check, then `N passed, M failed`.
        let mut checks: Vec<(bool, String, String)> = Vec::new();
        if let Some(r) = &memory_report {
            checks.extend(
                r.fault_checks()
                    .into_iter()
                    .map(|c| (c.ok, c.name, c.detail)),
            );
        }
        if let Some(p) = &packet_report {
            checks.extend(p.checks().into_iter().map(|c| (c.ok, c.name, c.detail)));
        }
        let failed = checks.iter().filter(|c| !c.0).count();
        for (ok, name, detail) in &checks {
            let tag = if *ok { "ok  " } else { "FAIL" };
            println!("{tag} {name} ({detail})");
        }
        println!("{} passed, {failed} failed", checks.len() - failed);
        if failed > 0 {
            return Err(io::Error::other(format!(
                "{failed} of {} checks failed",
                checks.len()
            )));
        }
    }
    Ok(())
}

/// The packet cells: a network namespace of their own, progress on stderr.
fn run_packets(p: &PacketPlan) -> io::Result<PacketReport> {
    eprintln!(
        "pktmap bench: {} packet cells, {} + {} rounds of {} frames",
        p.cells().len(),
        p.warmup,
        p.rounds,
        p.frames
    );
    let tty = io::stderr().is_terminal();
    let report = packets::run(p, &mut |done, total| {
        if tty {
            eprint!("\r\x1b[2Kpackets: {done}/{total} repetitions");
            if done == total {
                eprintln!();
            }
        } else if done == total || done % 10 == 0 {
            eprintln!("packets: {done}/{total} repetitions");
        }
    })?;
    if report.cells.is_empty() {
        let why: Vec<String> = report
            .skipped
            .iter()
            .map(|(n, w)| format!("{n}: {w}"))
            .collect();
        return Err(io::Error::other(format!(
            "no packet cell was measured ({})",
            why.join("; ")
        )));
    }
    Ok(report)
}

/// The POPULATE matrix.
fn run_memory(plan: &Schedule) -> io::Result<bench::Report> {
    eprintln!(
        "pktmap bench: {} groups × {} modes, estimated {:.0} s",
        plan.groups.len(),
        plan.modes.len(),
        plan.estimate().as_secs_f64().ceil()
    );
    let tty = io::stderr().is_terminal();
    let report = bench::run(plan, &mut |p| {
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
    if report.cells.is_empty() {
        let why: Vec<String> = report
            .skipped
            .iter()
            .map(|(b, len, why)| format!("{b} {}: {why}", bench::size_name(*len)))
            .collect();
        return Err(io::Error::other(format!(
            "nothing was measured ({})",
            if why.is_empty() {
                "no group ran".into()
            } else {
                why.join("; ")
            }
        )));
    }
    Ok(report)
}
