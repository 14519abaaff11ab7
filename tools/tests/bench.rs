//! The benchmark harness's logic and fault accounting, on memfds (no driver needed).
//!
//! No timing is asserted: only fault counts (deterministic enough) and bookkeeping.

use pktmap_testbed::skip;
use pktmap_tools::bench::{
    self, run_group, Backing, Cell, HugePages, Mode, Rounds, Sample, Schedule, Subject,
};
use std::time::Duration;

/// Shared-memory THP would fault 2 MiB at a time and change the counts; this checks the
/// machine maps memfds with 4 KiB pages.
fn shmem_uses_small_pages() -> bool {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();
    let small = !(s.contains("[always]") || s.contains("[within_size]") || s.contains("[force]"));
    if !small {
        skip(format!("shmem THP is on ({})", s.trim()));
    }
    small
}

fn faults(backing: Backing, len: usize, mode: Mode) -> Cell {
    let mut t = Subject::new(backing, len).unwrap();
    let samples: Vec<Sample> = (0..3).map(|_| t.run(mode).unwrap()).collect();
    Cell::from_samples(backing, len, mode, &samples).unwrap()
}

#[test]
fn populate_prefaults_existing_pages() {
    if !shmem_uses_small_pages() {
        return;
    }
    let len = 2 << 20;
    for mode in Mode::ALL
        .into_iter()
        .filter(|m| *m == Mode::Pktmap || m.is_peer())
    {
        let c = faults(Backing::Existing, len, mode);
        assert!(c.touch_faults_per_page < 0.01, "{mode}: {c:?}");
        assert!(
            c.map_faults_per_page > 0.0,
            "{mode} faults on the thread's behalf: {c:?}"
        );
    }
    // MADV_POPULATE_WRITE write-faults every page; MAP_POPULATE on a shared mapping read-faults,
    // and fault-around maps the neighbours of each page that is already in the page cache.
    // pktmap's POPULATE read-populates shmem (pages come writable), so it faults no more than
    // MAP_POPULATE, plus at most its one probe.
    let madv = faults(Backing::Existing, len, Mode::MadvPopulateWrite);
    assert!(
        (0.99..=1.01).contains(&madv.map_faults_per_page),
        "{madv:?}"
    );
    let map = faults(Backing::Existing, len, Mode::MapPopulate);
    assert!(
        map.map_faults_per_page <= madv.map_faults_per_page,
        "{map:?}"
    );
    let pktmap = faults(Backing::Existing, len, Mode::Pktmap);
    assert!(
        pktmap.map_faults_per_page <= map.map_faults_per_page + 2.0 / 512.0,
        "{pktmap:?} vs {map:?}"
    );
}

#[test]
fn write_fault_in_takes_one_fault_per_page() {
    if !shmem_uses_small_pages() {
        return;
    }
    for backing in [Backing::Existing, Backing::Fresh] {
        let c = faults(backing, 1 << 20, Mode::WriteFault);
        assert!(c.map_faults_per_page < 0.01, "{backing}: {c:?}");
        assert!(
            (0.99..=1.01).contains(&c.touch_faults_per_page),
            "{backing}: {c:?}"
        );
    }
}

#[test]
fn read_fault_in_maps_neighbours_of_existing_pages_only() {
    if !shmem_uses_small_pages() {
        return;
    }
    let existing = faults(Backing::Existing, 1 << 20, Mode::ReadFault);
    let fresh = faults(Backing::Fresh, 1 << 20, Mode::ReadFault);
    // Fault-around only maps pages already in the page cache: a fresh memfd has none.
    assert!(
        (0.99..=1.01).contains(&fresh.touch_faults_per_page),
        "{fresh:?}"
    );
    assert!(existing.touch_faults_per_page > 0.0, "{existing:?}");
    assert!(
        existing.touch_faults_per_page <= fresh.touch_faults_per_page,
        "{existing:?}"
    );
}

#[test]
fn fresh_populate_allocates_while_mapping() {
    if !shmem_uses_small_pages() {
        return;
    }
    for mode in [Mode::MapPopulate, Mode::Pktmap, Mode::MadvPopulateWrite] {
        let c = faults(Backing::Fresh, 1 << 20, mode);
        assert!(
            (0.99..=1.01).contains(&c.map_faults_per_page),
            "{mode}: {c:?}"
        );
        assert!(c.touch_faults_per_page < 0.01, "{mode}: {c:?}");
    }
}

#[test]
fn io_uring_rings_are_inserted_at_mmap() {
    let mut t = match Subject::new(Backing::UringPbuf, 64 << 10) {
        Ok(t) => t,
        Err(e) => {
            skip(format!("no io_uring provided-buffer ring here: {e}"));
            return;
        }
    };
    for mode in Mode::ALL {
        let s = t.run(mode).unwrap();
        assert_eq!(s.pages, 16);
        assert_eq!(s.touch_faults, 0, "{mode}: {s:?}");
    }
}

#[test]
fn hugetlb_faults_once_per_2mib() {
    let len = 4 << 20;
    let _reservation = if bench::free_huge_pages() >= 2 {
        None
    } else {
        match HugePages::reserve_free(2) {
            Ok(r) if bench::free_huge_pages() >= 2 => Some(r),
            other => {
                skip(format!("cannot reserve 2 hugetlb pages: {other:?}"));
                return;
            }
        }
    };
    let mut t = Subject::new(Backing::Hugetlb, len).unwrap();
    let w = t.run(Mode::WriteFault).unwrap();
    assert_eq!(w.touch_faults, 2, "{w:?}");
    let p = t.run(Mode::Pktmap).unwrap();
    assert_eq!(p.touch_faults, 0, "{p:?}");
}

#[test]
fn groups_run_round_robin_with_warmup_and_limits() {
    let mut t = Subject::new(Backing::Existing, 4 << 12).unwrap();
    let modes = [Mode::WriteFault, Mode::ReadFault, Mode::Pktmap];
    let rounds = |warmup, min, max, budget| Rounds {
        warmup,
        min,
        max,
        budget,
    };
    let cells = run_group(
        &mut t,
        &modes,
        rounds(2, 4, 10, Duration::ZERO),
        &mut || false,
    )
    .unwrap();
    assert_eq!(cells.len(), 3);
    for (c, m) in cells.iter().zip(modes) {
        assert_eq!((c.mode, c.ns_per_page.n, c.len), (m, 4, 4 << 12));
        assert!(c.ns_per_page.min <= c.ns_per_page.median);
        assert!(c.ns_per_page.median <= c.ns_per_page.max);
    }
    // max_rounds caps min_rounds.
    let cells = run_group(&mut t, &modes, rounds(0, 4, 2, Duration::ZERO), &mut || {
        false
    })
    .unwrap();
    assert!(cells.iter().all(|c| c.ns_per_page.n == 2));
    // A budget keeps adding rounds past the minimum.
    let budget = rounds(0, 1, 1000, Duration::from_millis(20));
    let cells = run_group(&mut t, &modes[..1], budget, &mut || false).unwrap();
    assert!(cells[0].ns_per_page.n > 1);
    // A stop request ends the group with Interrupted.
    let mut calls = 0;
    let e = run_group(&mut t, &modes, rounds(0, 5, 5, Duration::ZERO), &mut || {
        calls += 1;
        calls > 4
    })
    .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
}

#[test]
fn report_tables_json_and_ratios() {
    let plan = Schedule {
        groups: vec![(Backing::Existing, 16 << 12), (Backing::Fresh, 16 << 12)],
        ..Schedule::quick()
    };
    let mut seen = Vec::new();
    let r = bench::run(&plan, &mut |p| seen.push(p.clone())).unwrap();
    assert_eq!(r.cells.len(), 16);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.last().unwrap().done, 2);
    for c in &r.cells {
        let ratio = r.ratio(c).unwrap();
        if c.mode == Mode::Pktmap {
            assert_eq!(ratio, 1.0);
        }
        assert!(ratio > 0.0);
    }
    let table = r.table();
    for needle in [
        "pktmap POPULATE",
        "MAP_POPULATE",
        "memmap2 populate()",
        "MADV_POPULATE_WRITE",
        "÷ best peer",
        "write fault-in",
        "read fault-in",
        "64 KiB",
        "minor faults per 4 KiB page",
        "ratio ÷ ★pktmap",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
    // The text report fits 100 columns (it was about 210 wide).
    for line in table.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let json = r.to_json();
    assert!(json.starts_with('{') && json.ends_with('}'));
    assert_eq!(json.matches("\"mode\":").count(), 16);
    assert!(json.contains("\"touch_faults_per_page\":"));
    assert!(json.contains("\"mode\":\"madv_populate_write\""));
    {
        let svg = bench::plot::svg(&r).unwrap();
        assert!(svg.contains("<svg") && svg.contains("read fault-in"));
    }
}

#[test]
fn plans_fit_their_stated_time() {
    let p = Schedule::standard();
    assert!(p.groups.contains(&(Backing::Existing, 256 << 20)));
    assert!(p.groups.contains(&(Backing::Fresh, 4096)));
    assert_eq!(p.huge_pages_needed(), 128);
    let e = p.estimate();
    assert!(
        e > Duration::from_secs(5) && e < Duration::from_secs(120),
        "{e:?}"
    );
    assert!(Schedule::quick().estimate() < Duration::from_secs(5));
    let only = Schedule::standard().only(&[Backing::Hugetlb]);
    assert!(only.groups.iter().all(|(b, _)| *b == Backing::Hugetlb));
    let dev = Schedule::standard().with_device_pools("/dev/pktmap".as_ref());
    assert!(dev.groups.contains(&(Backing::LazyPool, 256 << 20)));
}

#[test]
fn device_backings_need_the_driver() {
    let e = Subject::new(Backing::EagerPool, 4096).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e =
        Subject::with_device(Backing::LazyPool, 4096, "/nonexistent/pktmap".as_ref()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(!Backing::EagerPool.supports((256 << 20) + 4096));
}
