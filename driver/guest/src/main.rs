//! The tests that run inside the QEMU guest against `pktmap.ko`.
//!
//! ```text
//! pktmap-guest check                 every rule of DESIGN.md and every bad input
//! pktmap-guest stress SECS PROCS     concurrent create/map/touch/unmap/destroy, bounded in time
//! pktmap-guest pools                 fault-around, contiguous, 2 MiB, write-combined, exported pools
//! pktmap-guest pool-peer MODE SOCK   the unrelated process of the export checks (run by `pools`)
//! pktmap-guest faults SECS 1,2       faults per second the driver serves from 1, then 2 threads
//! ```
//!
//! Each check prints `ok   name` or `FAIL name: detail`; the run ends with `N passed, M failed`
//! and exits non-zero if anything failed. The program is statically linked and runs as `/init`'s
//! child in a busybox initramfs (see `scripts/guest-test`).

mod checks;
mod faults;
mod pools;
mod stress;
mod sys;

use std::process::ExitCode;

/// Counts checks and prints each one.
#[derive(Default)]
pub struct Report {
    passed: u32,
    failed: u32,
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
    pub fn errno<T: std::fmt::Debug>(&mut self, name: &str, r: std::io::Result<T>, want: i32) {
        match r {
            Ok(v) => self.check(
                name,
                false,
                format!("succeeded ({v:?}), want {}", sys::errno_name(want)),
            ),
            Err(e) => {
                let got = pktmap::resource::errno(&e);
                self.check(
                    name,
                    got == Some(want),
                    format!("got {e}, want {}", sys::errno_name(want)),
                );
            }
        }
    }

    fn finish(&self) -> ExitCode {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut report = Report::default();
    match args.get(1).map(String::as_str) {
        Some("check") => checks::run(&mut report),
        Some("pools") => pools::run(&mut report),
        Some("pool-peer") => match (args.get(2), args.get(3)) {
            (Some(mode), Some(sock)) => pools::peer(&mut report, mode, sock),
            _ => report.check("pool-peer MODE SOCKET", false, "missing arguments"),
        },
        Some("stress") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
            let procs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
            stress::run(&mut report, secs, procs);
        }
        Some("faults") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
            for threads in args.get(3).map_or("1,2", String::as_str).split(',') {
                let threads = threads.parse().unwrap_or(1);
                let rate = faults::run(secs, threads);
                report.check(&format!("faults from {threads} threads"), rate > 0.0, rate);
            }
        }
        _ => {
            eprintln!(
                "usage: pktmap-guest check | stress SECS PROCS | pools | pool-peer MODE SOCKET | faults SECS THREADS,..."
            );
            return ExitCode::from(2);
        }
    }
    report.finish()
}
