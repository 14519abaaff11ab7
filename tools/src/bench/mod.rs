//! The POPULATE-vs-fault-in matrix behind `pktmap bench` and `cargo bench`.
//!
//! Each *cell* maps `len` bytes of a [`Backing`] in one [`Mode`], then touches every 4 KiB
//! page once (a one-byte write, or a read for [`Mode::ReadFault`]), and reports the cost per
//! 4 KiB page of both phases together, the minor faults each phase took (from
//! `getrusage(RUSAGE_THREAD)`, so they prove whether POPULATE really pre-faulted), and the
//! spread over repetitions. Unmapping and freeing are not timed.
//!
//! The modes of one (backing, size) *group* run round-robin, one repetition of each per round,
//! in an order shuffled afresh every round ([`round_order`]), so drift on a noisy machine (a
//! VM, other jobs) hits them alike instead of biasing whichever ran last, and no mode always
//! follows the same one. The pools of one size run as one group the same way
//! ([`run_interleaved`]), so their ratios are fair too.
//!
//! | backing | what is mapped each repetition |
//! |---|---|
//! | [`Backing::Existing`] | a second mapping of a memfd whose pages were filled once, up front: the host stand-in for driver-owned buffers |
//! | [`Backing::Fresh`] | a new memfd: every page is allocated and zeroed by the fault |
//! | [`Backing::Hugetlb`] | a new `MFD_HUGETLB` memfd of 2 MiB pages, reserved for the run through `/proc/sys/vm/nr_hugepages` ([`HugePages`]) and given back after |
//! | [`Backing::UringPbuf`] | an io_uring provided-buffer ring the kernel allocated (`IOU_PBUF_RING_MMAP`), at `IORING_OFF_PBUF_RING`, encoded with the [`IO_URING` layout](pktmap::offset::IO_URING) |
//! | [`Backing::EagerPool`], [`Backing::LazyPool`] | a `/dev/pktmap` pool ([`Device`](pktmap::device::Device)) created once; eager pools insert every page at `mmap`, lazy ones from the fault handler ([`Subject::with_device`], `pktmap bench --device`) |
//!
//! The harness is split by concern: [`cells`] (what one repetition maps and touches),
//! [`stats`] (medians and cells), [`schedule`] (plans, round-robin groups, the run),
//! [`machine`] (the machine line and hugetlb reservations), [`report`] (tables, JSON,
//! conclusions) and [`plot`] (the SVG); `sys` holds the few raw calls.
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap_tools::bench::{Backing, Mode, Subject};
//! let mut t = Subject::new(Backing::Existing, 64 * 4096)?;
//! let s = t.run(Mode::WriteFault)?;
//! assert_eq!(s.pages, 64);
//! // A write to a page of a fresh mapping takes one fault, even if the page exists.
//! assert!(s.touch_faults >= 60);
//! let s = t.run(Mode::Pktmap)?;
//! assert!(s.touch_faults <= 4, "POPULATE pre-faulted every page");
//! # Ok(()) }
//! ```

pub mod cells;
pub mod machine;
pub mod packets;
pub mod plot;
pub mod report;
pub mod schedule;
pub mod stats;
mod sys;

pub use cells::{Backing, Mode, Sample, Subject, HUGE_PAGE, PAGE, PBUF_MAX_LEN};
pub use machine::{free_huge_pages, load_average, utc_date, ExitOnSignal, HugePages, Machine};
pub use report::{size_name, FaultCheck, Report};
pub use schedule::{round_order, run, run_group, run_interleaved, Progress, Rounds, Schedule};
pub use stats::{Cell, Stats};

pub(crate) const KIB: usize = 1024;
pub(crate) const MIB: usize = 1024 * KIB;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_per_backing() {
        assert!(Backing::UringPbuf.supports(PBUF_MAX_LEN));
        assert!(!Backing::UringPbuf.supports(2 * PBUF_MAX_LEN));
        assert!(!Backing::UringPbuf.supports(3 * PAGE));
        assert!(!Backing::Existing.supports(100));
        assert!(Subject::new(Backing::Hugetlb, PAGE).is_err());
    }

    fn report(cells: Vec<Cell>) -> Report {
        Report {
            machine: Machine::default(),
            cells,
            skipped: vec![],
            elapsed: Duration::ZERO,
            estimate: Duration::ZERO,
        }
    }

    /// A pool cell of 16 pages whose repetitions took these faults (minor = served).
    fn pool_cell(backing: Backing, mode: Mode, map: u64, touch: u64) -> Cell {
        let s = Sample {
            pages: 16,
            map_ns: 1600,
            touch_ns: 1600,
            map_faults: map,
            touch_faults: touch,
            map_served: map,
            touch_served: touch,
        };
        Cell::from_samples(backing, 16 * PAGE, mode, &[s, s]).unwrap()
    }

    #[test]
    fn conclusions_print_a_range_only_when_the_ends_differ() {
        let cell = |len, mode, ns| {
            let s = Sample {
                pages: 1,
                map_ns: ns,
                ..Sample::default()
            };
            Cell::from_samples(Backing::Existing, len, mode, &[s]).unwrap()
        };
        let one = report(vec![
            cell(2 * MIB, Mode::Pktmap, 102),
            cell(2 * MIB, Mode::MapPopulate, 100),
        ]);
        let line = &one.conclusions()[0];
        assert!(line.contains("2 MiB and up: 1.02× (geomean"), "{line}");
        let two = report(vec![
            cell(2 * MIB, Mode::Pktmap, 102),
            cell(2 * MIB, Mode::MapPopulate, 100),
            cell(16 * MIB, Mode::Pktmap, 110),
            cell(16 * MIB, Mode::MapPopulate, 100),
        ]);
        let line = &two.conclusions()[0];
        assert!(line.contains("2 MiB and up: 1.02–1.10× (geomean"), "{line}");
    }

    #[test]
    fn fault_checks_follow_the_driver_contract() {
        let good = vec![
            pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0),
            pool_cell(Backing::EagerPool, Mode::Pktmap, 0, 0),
            pool_cell(Backing::LazyPool, Mode::MapPopulate, 16, 0),
            pool_cell(Backing::LazyPool, Mode::ReadFault, 0, 16),
        ];
        let checks = report(good.clone()).fault_checks();
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks[3]
            .name
            .starts_with("pktmap-lazy 64 KiB read fault-in: "));

        // Each way the accounting can be wrong fails exactly its cell.
        let bad = [
            pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 16), // eager faulted
            pool_cell(Backing::LazyPool, Mode::Pktmap, 0, 16),      // populate did nothing
            pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 15),  // one page missed
        ];
        for cell in bad {
            let checks = report(vec![good[0].clone(), cell.clone()]).fault_checks();
            assert!(checks[0].ok && !checks[1].ok, "{cell:?}: {checks:?}");
        }
        // A stray minor fault is tolerated; a stray served fault is not.
        let mut stray = pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 16);
        stray.touch_faults_per_page += 0.05;
        assert!(report(vec![stray.clone()]).fault_checks()[0].ok);
        stray.served_per_page = Some((0.0, 1.05));
        assert!(!report(vec![stray.clone()]).fault_checks()[0].ok);
        stray.served_per_page = None;
        assert!(!report(vec![stray]).fault_checks()[0].ok);
    }

    #[test]
    fn fault_checks_fail_without_pool_cells() {
        let s = Sample {
            pages: 1,
            touch_faults: 1,
            ..Sample::default()
        };
        let memfd = Cell::from_samples(Backing::Fresh, PAGE, Mode::WriteFault, &[s]).unwrap();
        let checks = report(vec![memfd]).fault_checks();
        assert!(checks.len() == 1 && !checks[0].ok, "{checks:?}");
        let mut r = report(vec![pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0)]);
        r.skipped
            .push((Backing::LazyPool, 16 * PAGE, "setup failed: ENOMEM".into()));
        let checks = r.fault_checks();
        assert!(checks[0].ok && !checks[1].ok, "{checks:?}");
        assert_eq!(checks[1].detail, "setup failed: ENOMEM");
    }

    #[test]
    fn device_tables_show_served_faults_and_eager_over_lazy() {
        let mut eager = pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0);
        eager.ns_per_page.median = 25.0;
        let mut lazy = pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 16);
        lazy.ns_per_page.median = 100.0;
        let r = report(vec![eager, lazy]);
        let md = r.markdown();
        assert!(
            md.contains("| pktmap-lazy | 64 KiB | 0.000 / 1.000 |"),
            "{md}"
        );
        assert!(md.contains("| 64 KiB | 0.25× |"), "{md}");
        let text = r.table();
        assert!(text.contains("faults the driver served"), "{text}");
        assert!(text.contains("64 KiB  0.25×"), "{text}");
        // Without pools: neither table.
        let s = Sample {
            pages: 1,
            ..Sample::default()
        };
        let memfd = Cell::from_samples(Backing::Fresh, PAGE, Mode::WriteFault, &[s]).unwrap();
        assert!(!report(vec![memfd]).markdown().contains("driver served"));
    }

    #[test]
    fn goal_table_compares_map_phases_with_map_phases() {
        // Eager plain: 100 ns per page mapping, 50 touching; eager POPULATE: 105 mapping
        // (POOL_INFO more), 50 touching; contiguous: 110 mapping.
        let cell = |backing, mode, map_ns: u64| {
            let s = Sample {
                pages: 16,
                map_ns: map_ns * 16,
                touch_ns: 50 * 16,
                ..Sample::default()
            };
            Cell::from_samples(backing, 16 * PAGE, mode, &[s]).unwrap()
        };
        let r = report(vec![
            cell(Backing::EagerPool, Mode::WriteFault, 100),
            cell(Backing::EagerPool, Mode::Pktmap, 105),
            cell(Backing::ContigPool, Mode::WriteFault, 110),
        ]);
        // size, huge ÷ lazy, huge ÷ eager mmap, contig mmap ÷ eager mmap, eager POPULATE mmap
        // ÷ eager mmap, lazy16 ÷ lazy.
        let md = r.markdown();
        assert!(
            md.contains("| 64 KiB | – | – | 1.100× | 1.050× | – |"),
            "{md}"
        );
    }

    #[test]
    fn estimate_counts_min_rounds() {
        let p = Schedule {
            groups: vec![(Backing::Fresh, 256 * MIB)],
            budget: Duration::ZERO,
            ..Schedule::standard()
        };
        // 6 rounds × 8 modes × 65536 pages × 4 µs ≈ 12.6 s.
        let e = p.estimate().as_secs_f64();
        assert!((12.0..13.5).contains(&e), "{e}");
    }
}
