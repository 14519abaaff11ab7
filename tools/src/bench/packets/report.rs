//! The packet bench's report: one row per cell (medians over the repetitions), the ratios
//! between mechanisms on the same path, size and wait, the accounting checks, JSON and
//! Markdown.

use super::{FrameSize, Kind, Mechanism, PacketSample, Wait};
use crate::bench::{Machine, Stats};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

/// One measured cell and its repetitions.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketCell {
    /// Mechanism and path.
    pub kind: Kind,
    /// Frame size.
    pub size: FrameSize,
    /// How the consumer waited.
    pub wait: Wait,
    /// The measured repetitions.
    pub samples: Vec<PacketSample>,
}

fn per(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

impl PacketCell {
    /// Delivered frames per second over the repetitions.
    pub fn pps(&self) -> Option<Stats> {
        let v: Vec<f64> = self
            .samples
            .iter()
            .map(|s| s.delivered as f64 / s.elapsed.as_secs_f64().max(1e-9))
            .collect();
        Stats::of(&v)
    }

    fn total(&self, f: impl Fn(&PacketSample) -> u64) -> u64 {
        self.samples.iter().map(f).sum()
    }

    /// Frames sent, delivered and dropped over every repetition.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.total(|s| s.sent),
            self.total(|s| s.delivered),
            self.total(PacketSample::dropped),
        )
    }

    /// Drops by reason over every repetition, reasons in first-seen order.
    pub fn drops_by_reason(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for s in &self.samples {
            for (k, v) in &s.drops {
                match out.iter_mut().find(|(n, _)| n == k) {
                    Some(e) => e.1 += v,
                    None => out.push((k.clone(), *v)),
                }
            }
        }
        out
    }

    /// System calls per delivered frame.
    pub fn syscalls_per_frame(&self) -> f64 {
        per(self.total(|s| s.syscalls), self.total(|s| s.delivered))
    }

    /// Frames per wakeup (sleeping) or per batch (busy, or a sender that never slept).
    pub fn frames_per_wakeup(&self) -> f64 {
        let d = self.total(|s| s.delivered);
        let wakeups = self.total(|s| s.wakeups);
        match self.wait {
            Wait::Sleep if wakeups > 0 => per(d, wakeups),
            // A sender that never had to sleep (its kick waited instead): per batch.
            _ => per(d, self.total(|s| s.batches)),
        }
    }

    /// Consumer CPU nanoseconds per frame and machine busy ticks per million frames.
    pub fn cpu(&self) -> (f64, f64) {
        let d = self.total(|s| s.delivered).max(1) as f64;
        let ns: f64 = self
            .samples
            .iter()
            .map(|s| s.thread_cpu.as_nanos() as f64)
            .sum();
        (ns / d, self.total(|s| s.ticks.busy) as f64 * 1e6 / d)
    }

    /// `kind size wait`, the cell's name in checks.
    pub fn name(&self) -> String {
        format!(
            "{} {} {}",
            self.kind.name(),
            self.size.label(),
            self.wait.name()
        )
    }
}

/// One accounting check: `delivered + dropped == sent` in every repetition of a cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketCheck {
    /// The cell.
    pub name: String,
    /// Whether it held in every repetition.
    pub ok: bool,
    /// The totals, and the first repetition where it did not hold.
    pub detail: String,
}

/// What a packet run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketReport {
    /// The machine.
    pub machine: Machine,
    /// The receive paths' traffic source.
    pub source: String,
    /// Frames per repetition.
    pub frames: u64,
    /// The measured cells.
    pub cells: Vec<PacketCell>,
    /// Kinds or cells not measured, and why.
    pub skipped: Vec<(String, String)>,
    /// How long the run took.
    pub elapsed: Duration,
    /// The latency a lone frame sees, per receiving mechanism and wait.
    pub lone: Vec<LoneLatency>,
}

/// The latency of frames sent one at a time (2 ms apart) through the veth pair, from just
/// before `send` to the consumer taking the frame off its ring.
#[derive(Clone, Debug, PartialEq)]
pub struct LoneLatency {
    /// The receiving mechanism.
    pub mechanism: Mechanism,
    /// How its consumer waited.
    pub wait: Wait,
    /// Every frame's latency in microseconds, sorted (infinite: never taken).
    pub micros: Vec<f64>,
}

impl LoneLatency {
    /// Frames taken off the ring (a finite latency), of those sent.
    pub fn arrived(&self) -> (usize, usize) {
        (
            self.micros.iter().filter(|m| m.is_finite()).count(),
            self.micros.len(),
        )
    }

    /// The `q` quantile (0..=1) of the latencies, nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.micros.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        self.micros[i]
    }
}

impl PacketReport {
    fn peer(&self, c: &PacketCell, m: Mechanism) -> Option<&PacketCell> {
        self.cells.iter().find(|o| {
            o.kind.mechanism == m
                && o.kind.path == c.kind.path
                && o.size == c.size
                && o.wait == c.wait
        })
    }

    /// `c`'s median pps ÷ mechanism `m`'s on the same path, size and wait.
    pub fn ratio(&self, c: &PacketCell, m: Mechanism) -> Option<f64> {
        let base = self.peer(c, m)?.pps()?.median;
        (base > 0.0).then(|| c.pps().map_or(0.0, |s| s.median) / base)
    }

    /// The accounting checks, one per cell and one per skipped kind or failed cell.
    pub fn checks(&self) -> Vec<PacketCheck> {
        let mut out: Vec<PacketCheck> = self
            .cells
            .iter()
            .map(|c| {
                let (sent, delivered, dropped) = c.totals();
                let bad = c.samples.iter().position(|s| !s.balanced());
                let mut detail =
                    format!("delivered {delivered} + dropped {dropped} == sent {sent}");
                if let Some(i) = bad {
                    let s = &c.samples[i];
                    let _ = write!(
                        detail,
                        "; repetition {i}: {} + {} != {}",
                        s.delivered,
                        s.dropped(),
                        s.sent
                    );
                }
                PacketCheck {
                    name: format!("packets {}: delivered + dropped == sent", c.name()),
                    ok: bad.is_none() && !c.samples.is_empty() && sent > 0,
                    detail,
                }
            })
            .collect();
        out.extend(self.skipped.iter().map(|(n, why)| PacketCheck {
            name: format!("packets {n}: measured"),
            ok: false,
            detail: why.clone(),
        }));
        out
    }

    fn rows(&self) -> Vec<[String; 11]> {
        let mut cells: Vec<&PacketCell> = self.cells.iter().collect();
        cells.sort_by_key(|c| (c.kind.path, c.size, c.wait, c.kind.mechanism));
        cells
            .into_iter()
            .map(|c| {
                let pps = c.pps().map_or(0.0, |s| s.median);
                let r = |m| {
                    if c.kind.mechanism == m {
                        "–".to_string()
                    } else {
                        self.ratio(c, m).map_or("–".into(), |r| format!("{r:.2}×"))
                    }
                };
                let (sent, delivered, dropped) = c.totals();
                let drops: Vec<String> = c
                    .drops_by_reason()
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let (ns, ticks) = c.cpu();
                [
                    c.kind.path.name().into(),
                    c.size.label().into(),
                    c.wait.name().into(),
                    c.kind.mechanism.name().into(),
                    format!("{:.0}", pps),
                    r(Mechanism::Tpacket),
                    r(Mechanism::Xdp),
                    format!("{:.4}", c.syscalls_per_frame()),
                    format!("{:.1}", c.frames_per_wakeup()),
                    format!("{ns:.0} / {ticks:.0}"),
                    format!(
                        "{delivered} + {dropped} = {sent}{}",
                        if drops.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", drops.join(", "))
                        }
                    ),
                ]
            })
            .collect()
    }

    const HEAD: [&'static str; 11] = [
        "path",
        "size",
        "wait",
        "mechanism",
        "pps (median)",
        "÷ tpacket",
        "÷ xdp",
        "syscalls/frame",
        "frames/wakeup (sleep) or /batch",
        "CPU ns/frame / ticks per Mframe",
        "delivered + dropped = sent (drops)",
    ];

    /// The table as Markdown, with the machine, the source and the check totals.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{}; traffic: {}; {} frames a repetition, {} s\n\n",
            self.machine.summary(),
            self.source,
            self.frames,
            self.elapsed.as_secs()
        );
        let _ = writeln!(out, "| {} |", Self::HEAD.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(Self::HEAD.len()));
        for row in self.rows() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        if !self.lone.is_empty() {
            let _ = writeln!(
                out,
                "\nA lone 64 B frame (50 sent 2 ms apart through the veth, timed from `send` to the \
                 consumer), µs (inf: not taken within 200 ms):\n\n| mechanism | wait | median | p90 | max | taken |\n|---|---|---|---|---|---|"
            );
            for l in &self.lone {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {} of {} |",
                    l.mechanism.name(),
                    l.wait.name(),
                    l.quantile(0.5),
                    l.quantile(0.9),
                    l.quantile(1.0),
                    l.arrived().0,
                    l.arrived().1
                );
            }
        }
        for (n, why) in &self.skipped {
            let _ = writeln!(out, "\nnot measured: {n}: {why}");
        }
        out
    }

    /// The table as aligned text.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let mut w: Vec<usize> = Self::HEAD.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cols: Vec<&str>| {
            let mut s = String::new();
            for (i, c) in cols.iter().enumerate() {
                let pad = w[i] - c.chars().count();
                let _ = write!(s, "{c}{}  ", " ".repeat(pad));
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = format!(
            "packets: {}; traffic: {}\n",
            self.machine.summary(),
            self.source
        );
        out += &line(Self::HEAD.to_vec());
        for r in &rows {
            out += &line(r.iter().map(String::as_str).collect());
        }
        for l in &self.lone {
            let _ = writeln!(
                out,
                "lone 64 B frame, {} {}: median {:.0} µs, p90 {:.0} µs, max {:.0} µs, {} of {} taken",
                l.mechanism.name(),
                l.wait.name(),
                l.quantile(0.5),
                l.quantile(0.9),
                l.quantile(1.0),
                l.arrived().0,
                l.arrived().1
            );
        }
        for (n, why) in &self.skipped {
            let _ = writeln!(out, "not measured: {n}: {why}");
        }
        out
    }

    /// The report as JSON: every repetition of every cell.
    pub fn to_json(&self) -> serde_json::Value {
        let cells: Vec<_> = self
            .cells
            .iter()
            .map(|c| {
                let reps: Vec<_> = c
                    .samples
                    .iter()
                    .map(|s| {
                        json!({
                            "sent": s.sent, "delivered": s.delivered,
                            "drops": s.drops.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                            "elapsed_ns": s.elapsed.as_nanos() as u64,
                            "syscalls": s.syscalls, "wakeups": s.wakeups, "batches": s.batches,
                            "thread_cpu_ns": s.thread_cpu.as_nanos() as u64,
                            "voluntary_switches": s.voluntary_switches,
                            "ticks_busy": s.ticks.busy, "ticks_softirq": s.ticks.softirq,
                            "ticks_idle": s.ticks.idle, "softnet_dropped": s.softnet_dropped,
                            "seen": s.seen,
                        })
                    })
                    .collect();
                json!({
                    "kind": c.kind.name(), "size": c.size.label(), "frame_len": c.size.frame_len(),
                    "wait": c.wait.name(),
                    "pps_median": c.pps().map(|s| s.median),
                    "ratio_tpacket": self.ratio(c, Mechanism::Tpacket),
                    "ratio_xdp": self.ratio(c, Mechanism::Xdp),
                    "syscalls_per_frame": c.syscalls_per_frame(),
                    "frames_per_wakeup": c.frames_per_wakeup(),
                    "repetitions": reps,
                })
            })
            .collect();
        json!({
            "machine": self.machine.summary(),
            "source": self.source,
            "frames": self.frames,
            "cells": cells,
            "skipped": self.skipped.iter().map(|(n, w)| json!([n, w])).collect::<Vec<_>>(),
            "lone_latency_us": self.lone.iter().map(|l| json!({
                "mechanism": l.mechanism.name(), "wait": l.wait.name(),
                "micros": l.micros.iter().map(|m| m.is_finite().then_some(*m)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Path;
    use super::*;

    fn cell(m: Mechanism, delivered: u64, ms: u64) -> PacketCell {
        let s = PacketSample {
            sent: delivered + 2,
            delivered,
            drops: vec![("tp_drops".into(), 2)],
            elapsed: Duration::from_millis(ms),
            syscalls: 0,
            batches: delivered / 10,
            ..PacketSample::default()
        };
        PacketCell {
            kind: Kind {
                mechanism: m,
                path: Path::Rx,
            },
            size: FrameSize::Min,
            wait: Wait::Busy,
            samples: vec![s.clone(), s],
        }
    }

    fn report(cells: Vec<PacketCell>) -> PacketReport {
        PacketReport {
            machine: Machine::default(),
            source: "pktgen".into(),
            frames: 1000,
            cells,
            skipped: vec![],
            elapsed: Duration::ZERO,
            lone: vec![LoneLatency {
                mechanism: Mechanism::Tpacket,
                wait: Wait::Sleep,
                micros: vec![10.0, 20.0, 30.0, 40.0, 10_000.0],
            }],
        }
    }

    #[test]
    fn ratios_checks_and_tables() {
        let r = report(vec![
            cell(Mechanism::Tpacket, 1000, 100),
            cell(Mechanism::Xdp, 1000, 50),
        ]);
        let xdp = &r.cells[1];
        assert_eq!(r.ratio(xdp, Mechanism::Tpacket), Some(2.0));
        assert_eq!(xdp.frames_per_wakeup(), 10.0);
        let checks = r.checks();
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks[0]
            .detail
            .contains("delivered 2000 + dropped 4 == sent 2004"));
        let md = r.markdown();
        assert!(
            md.contains("| rx | 64 B | busy | xdp | 20000 | 2.00× | – |"),
            "{md}"
        );
        assert!(r.table().contains("tp_drops 4"));
        assert!(
            md.contains("| tpacket | sleep | 30 | 10000 | 10000 | 5 of 5 |"),
            "{md}"
        );
        assert_eq!(r.lone[0].quantile(0.75), 40.0);
        assert_eq!(r.to_json()["cells"][1]["ratio_tpacket"], 2.0);
    }

    #[test]
    fn an_unbalanced_repetition_fails_its_cell() {
        let mut c = cell(Mechanism::Tpacket, 1000, 100);
        c.samples[1].sent += 1;
        let mut r = report(vec![c]);
        let checks = r.checks();
        assert!(!checks[0].ok);
        assert!(
            checks[0].detail.contains("repetition 1: 1000 + 2 != 1003"),
            "{checks:?}"
        );
        r.cells.clear();
        r.skipped.push(("tpacket-rx".into(), "needs pktgen".into()));
        assert!(!r.checks()[0].ok);
    }
}
