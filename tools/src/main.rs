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
//! Exit status: 0 on success, 1 when the command ran and failed (nothing decodes, no such
//! process or no access to its maps, a `--device` that cannot be opened or is not pktmap's, a
//! run that measured nothing, a failed `--check`), 2 for bad arguments, 130 when interrupted
//! (`SIGINT` or `SIGTERM`; the bench puts `nr_hugepages` back first).
//!
//! The logic lives in the libraries ([`pktmap::offset`], [`pktmap::inspect::maps`],
//! [`pktmap_tools::bench`]); this crate parses arguments and prints.
#![deny(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};
use std::io;
use std::process::ExitCode;

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
    Encode(cmd::offset::EncodeArgs),
    /// Decode an mmap offset (with every layout unless --layout is given); exit 1 if none
    /// decodes it.
    Decode(cmd::offset::DecodeArgs),
    /// List /proc/PID/maps, naming pktmap, io_uring and AF_XDP mappings.
    Maps(cmd::maps::MapsArgs),
    /// Measure pktmap's POPULATE against MAP_POPULATE, memmap2, the raw madvise calls and
    /// fault-in, per 4 KiB page.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Encode(a) => cmd::offset::encode(&a),
        Command::Decode(a) => cmd::offset::decode(&a),
        Command::Maps(a) => cmd::maps::list(&a),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            eprintln!("pktmap: interrupted (settings restored)");
            ExitCode::from(130)
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("pktmap: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("pktmap: {e}");
            ExitCode::FAILURE
        }
    }
}
