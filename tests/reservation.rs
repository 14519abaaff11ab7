//! `pktmap::reservation` on real mappings: several resources mapped contiguously into one
//! reserved range, slots given back as `PROT_NONE` (checked in `/proc/self/maps`), a file that
//! refuses a chosen address (io_uring) leaving the reservation whole, and a huge-page slot in
//! a 2 MiB-aligned reservation.

use pktmap::reservation::Reservation;
use pktmap::resource::{MapFlags, MapOptions};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

const PAGE: usize = 4096;

/// The permissions `/proc/self/maps` shows for the mapping that contains `addr`.
fn perms_at(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let (start, end) = (
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            );
            (start <= addr && addr < end).then(|| f.next().unwrap_or_default().to_string())
        })
        .unwrap_or_else(|| "unmapped".into())
}

#[test]
fn resources_mapped_contiguously_and_slots_given_back() {
    let pool = memfd_create("pool", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&pool, 4 * PAGE as u64).unwrap();
    let state = memfd_create("state", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&state, PAGE as u64).unwrap();
    let plan = Reservation::new(8 * PAGE).unwrap();
    let base = plan.as_ptr() as usize;
    assert_eq!(perms_at(base), "---p", "reserved, PROT_NONE");

    // STATE (read-only) | POOL (4 pages) | a second view of POOL page 2 | reserved pages.
    let s = plan.map(0, &state, 0, PAGE, MapFlags::READONLY).unwrap();
    let p = plan
        .map(PAGE, &pool, 0, 4 * PAGE, MapFlags::POPULATE)
        .unwrap();
    let v = plan
        .map(5 * PAGE, &pool, 2 * PAGE as u64, PAGE, MapFlags::empty())
        .unwrap();
    assert_eq!(
        [
            s.as_ptr() as usize,
            p.as_ptr() as usize,
            v.as_ptr() as usize
        ],
        [base, base + PAGE, base + 5 * PAGE],
        "each slot at its place in the plan"
    );
    assert_eq!(perms_at(base), "r--s");
    assert_eq!(perms_at(base + PAGE), "rw-s");
    assert_eq!(perms_at(base + 6 * PAGE), "---p");
    p.write_at(2 * PAGE + 8, b"slot").unwrap();
    let mut b = [0; 4];
    v.read_at(8, &mut b).unwrap();
    assert_eq!(&b, b"slot", "the view sees the pool's page 2");

    // Misuse is an error, not undefined behaviour; the existing slots are untouched.
    for (slot, len, errno) in [
        (2 * PAGE, PAGE, libc::EEXIST),
        (7 * PAGE, 2 * PAGE, libc::EINVAL),
        (PAGE + 1, PAGE, libc::EINVAL),
    ] {
        let e = plan
            .map(slot, &pool, 0, len, MapFlags::empty())
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(errno), "{slot:#x}: {e}");
    }
    v.read_at(8, &mut b).unwrap();
    assert_eq!(&b, b"slot");

    // A dropped slot is PROT_NONE again and can be mapped anew.
    drop(p);
    assert_eq!(perms_at(base + 2 * PAGE), "---p", "given back, no hole");
    let p2 = plan
        .map(PAGE, &pool, 0, 2 * PAGE, MapFlags::empty())
        .unwrap();
    let mut c = [0; 4];
    p2.read_at(0, &mut c).unwrap();
    drop((s, v, p2));
    assert_eq!(perms_at(base), "---p");
    drop(plan);
    assert_eq!(perms_at(base), "unmapped", "the reservation unmaps last");
}

#[cfg(feature = "io-uring")]
#[test]
fn a_refused_slot_leaves_the_reservation_whole() {
    let ring = match pktmap::uring::Uring::new(8) {
        Ok(r) => r,
        Err(e) => {
            pktmap_testbed::skip(format_args!("io_uring unavailable ({e})"));
            return;
        }
    };
    let plan = Reservation::new(4 * PAGE).unwrap();
    let base = plan.as_ptr() as usize;
    // io_uring maps only where it picks: MAP_FIXED is EINVAL.
    let e = plan
        .map(PAGE, &ring, 0x1000_0000, PAGE, MapFlags::empty())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    assert_eq!(perms_at(base + PAGE), "---p", "the slot is reserved again");
    let fd = memfd_create("after", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&fd, PAGE as u64).unwrap();
    let s = plan.map(PAGE, &fd, 0, PAGE, MapFlags::empty()).unwrap();
    assert_eq!(s.as_ptr() as usize, base + PAGE);
}

#[test]
fn huge_page_slot_in_an_aligned_reservation() {
    const HUGE: usize = 2 << 20;
    let _pages = pktmap_testbed::HugePages::require(1);
    let fd = memfd_create("huge", MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB).unwrap();
    ftruncate(&fd, HUGE as u64).unwrap();
    let plan = Reservation::aligned(3 * HUGE, HUGE).unwrap();
    let base = plan.as_ptr() as usize;
    assert_eq!(base % HUGE, 0);
    let e = plan.map(PAGE, &fd, 0, HUGE, MapFlags::empty()).unwrap_err();
    assert_eq!(
        e.raw_os_error(),
        Some(libc::EINVAL),
        "hugetlb needs a 2 MiB slot: {e}"
    );
    assert_eq!(perms_at(base + PAGE), "---p");
    let s = plan.map(HUGE, &fd, 0, HUGE, MapFlags::POPULATE).unwrap();
    assert_eq!(s.as_ptr() as usize, base + HUGE);
    s.write_at(HUGE - 4, b"huge").unwrap();
    let view = MapOptions::new(HUGE).map(&fd, 0).unwrap();
    let mut b = [0; 4];
    view.read_at(HUGE - 4, &mut b).unwrap();
    assert_eq!(&b, b"huge");
}
