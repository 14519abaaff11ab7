//! The tests that run inside the QEMU guest against `pktmap.ko`.
//!
//! ```text
//! pktmap-guest check                 driver/kmod/README.md's promises and plan.rs's request
//!                                    rules, by subject (`tests/`), every bad input, `/pktmap
//!                                    maps` on real mappings, the README's driver examples, the
//!                                    errors a user hits
//! pktmap-guest stress SECS PROCS [CYCLES]  concurrent create/map/touch/unmap/destroy, racing
//!                                    destroy, close and fork; bounded in time or cycles
//! pktmap-guest faults SECS 1,2,1p,2p faults/s the driver serves from 1 and 2 threads, processes
//! pktmap-guest sequence CASES STEPS [SEED]      model-checked random sequences (one check a case)
//! pktmap-guest sequence --secs N STEPS [SEED]   the same for N seconds (the soak)
//! pktmap-guest sequence ... --mutate[=pools]    with a wrong model (EBADF, or MAP_PRIVATE of
//!                                    PFN pools), which must fail
//! pktmap-guest pools                 fault-around, contiguous, 2 MiB, write-combined, exported pools,
//!                                    and POPULATE of every kind, read-write and read-only, Rust and C
//! pktmap-guest trust                 the regressions of issue 20: a failing contiguous mmap
//!                                    racing destroy, write-protected 2 MiB entries, exports
//!                                    from write-only opens, ring/destroy races, pool-file
//!                                    fsync and 32-bit callers, the THP rules, the budget
//! pktmap-guest fault-kinds SECS ROUNDS  faults/s of lazy, 4 KiB-fallback and 2 MiB pools from
//!                                    1 thread, 2 threads on one mapping, 2 processes
//! pktmap-guest pool-races ROUNDS     only the pools' racing-fault checks, ROUNDS mappings each
//! pktmap-guest pool-peer MODE SOCK   the unrelated process of the export checks (run by `pools`)
//! pktmap-guest packets               only the packet checks (run by `check`): ATTACH, RX and TX
//!                                    through veth pairs, need-wakeup, devices going away
//! ```
//!
//! `tests/` holds the checks, one file per subject; `sequence/` the model-checked sequence test
//! (generator, reference model, system under test, runner); `utils.rs` what they share (the
//! report, STATE reads, patterns); `sys.rs` the raw calls.
//!
//! Each check prints `ok   name` or `FAIL name: detail`; the run ends with `N passed, M failed`
//! and exits non-zero if anything failed. The program is statically linked and runs as `/init`'s
//! child in a busybox initramfs (see `scripts/guest-test`).

mod faults;
mod sequence;
mod stress;
mod sys;
mod tests;
mod throughput;
mod trust;
mod utils;

use std::process::ExitCode;
use utils::Report;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut report = Report::default();
    match args.get(1).map(String::as_str) {
        Some("check") => {
            tests::check(&mut report);
        }
        Some("pools") => tests::pools(&mut report),
        Some("packets") => tests::packets::run(&mut report),
        Some("trust") => trust::run(&mut report),
        Some("fault-kinds") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
            let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
            throughput::run(&mut report, secs, rounds);
        }
        Some("pool-races") => {
            let rounds = args.get(2).and_then(|s| s.parse().ok());
            tests::pool_races(
                &mut report,
                rounds.unwrap_or(tests::regression::RACE_ROUNDS),
            );
        }
        Some("pool-peer") => match (args.get(2), args.get(3)) {
            (Some(mode), Some(sock)) => tests::export::peer(&mut report, mode, sock),
            _ => report.check("pool-peer MODE SOCKET", false, "missing arguments"),
        },
        Some("stress") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
            let procs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
            let cycles = args.get(4).and_then(|s| s.parse().ok());
            stress::run(&mut report, secs, procs, cycles);
        }
        Some("sequence") => {
            // sequence CASES STEPS [SEED] | sequence --secs N STEPS [SEED]
            let (cases, secs) = match args.get(2).map(String::as_str) {
                Some("--secs") => (0, args.get(3).and_then(|s| s.parse().ok())),
                other => (other.and_then(|s| s.parse().ok()).unwrap_or(16), None),
            };
            let rest = if secs.is_some() { 4 } else { 3 };
            let steps = args.get(rest).and_then(|s| s.parse().ok()).unwrap_or(40);
            let seed = args.get(rest + 1).and_then(|s| s.parse().ok());
            let mutate = if args.iter().any(|a| a == "--mutate=pools") {
                sequence::Mutation::PfnPrivate
            } else if args.iter().any(|a| a == "--mutate") {
                sequence::Mutation::Ebadf
            } else {
                sequence::Mutation::None
            };
            sequence::run(&mut report, cases, steps, seed, secs, mutate);
        }
        Some("faults") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
            for spec in args.get(3).map_or("1,2,1p,2p", String::as_str).split(',') {
                let processes = spec.ends_with('p');
                let n = spec.trim_end_matches('p').parse().unwrap_or(1);
                let rate = faults::run(secs, n, processes);
                report.check(&format!("faults served from {spec}"), rate > 0.0, rate);
            }
        }
        _ => {
            eprintln!(
                "usage: pktmap-guest check | pools | trust | fault-kinds SECS ROUNDS | pool-races ROUNDS | pool-peer MODE SOCKET | stress SECS PROCS | faults SECS 1,2,1p,2p | sequence CASES|--secs N STEPS [SEED] [--mutate[=pools]]"
            );
            return ExitCode::from(2);
        }
    }
    report.finish()
}
