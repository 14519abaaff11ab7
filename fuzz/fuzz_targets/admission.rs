//! The admission rules outside `mmap` and `pread`/`pwrite`: `check_ioctl` (unknown commands
//! `ENOTTY`; create, destroy and export need a writable open, else `EBADF`) and `check_budget` (a
//! create past the device-wide page budget is `ENOSPC`), each against a model that shares no
//! code with `pktmap_abi::plan`. A reservation loop like the driver's (`fetch_update` over
//! `check_budget`) must never let the total pass the budget.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | bit 0 writable open; bits 1..5 pick one of the eight commands (8..15: use the raw value) |
//! | 4 | raw ioctl command (`u32`) |
//! | 8 | pages already held (`u64`) |
//! | 8 | budget (`u64`) |
//! | 1 | number of requests, modulo 17 |
//! | 8 each | a request's pages (`u64`; bit 63 clear keeps most small) |
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktmap_abi::ioctl::{ioc, IOC_READ, IOC_WRITE};
use pktmap_abi::plan::{check_budget, check_ioctl, errno, Command, PlanError};
use pktmap_fuzz::Reader;

/// The eight ioctls, restated from `_IOC` and the struct sizes of `include/pktmap.h`: (dir, nr,
/// size) and whether they change state.
const COMMANDS: [(u32, u32, usize, bool, Command); 8] = [
    (IOC_READ | IOC_WRITE, 1, 32, true, Command::PoolCreate),
    (IOC_READ | IOC_WRITE, 2, 48, false, Command::PoolInfo),
    (IOC_WRITE, 3, 4, true, Command::PoolDestroy),
    (IOC_READ | IOC_WRITE, 4, 16, true, Command::RingCreate),
    (IOC_READ | IOC_WRITE, 5, 32, false, Command::RingInfo),
    (IOC_WRITE, 6, 4, true, Command::RingDestroy),
    (IOC_READ | IOC_WRITE, 7, 24, false, Command::PoolChunk),
    (IOC_READ | IOC_WRITE, 8, 16, true, Command::PoolExport),
];

fn model_ioctl(cmd: u32, writable: bool) -> Result<Command, PlanError> {
    let (_, _, _, changes, command) = *COMMANDS
        .iter()
        .find(|(dir, nr, size, _, _)| ioc(*dir, *nr, *size) == cmd)
        .ok_or(PlanError::UnknownCommand)?;
    if changes && !writable {
        return Err(PlanError::NotWritable);
    }
    Ok(command)
}

fn model_budget(held: u64, pages: u64, budget: u64) -> Result<u64, PlanError> {
    let total = u128::from(held) + u128::from(pages);
    if total > u128::from(budget) {
        Err(PlanError::OverBudget)
    } else {
        Ok(total as u64)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.u8();
    let raw = r.u32();
    let writable = mode & 1 != 0;
    let cmd = match (mode >> 1) & 15 {
        k @ 0..=7 => {
            let (dir, nr, size, _, _) = COMMANDS[usize::from(k)];
            ioc(dir, nr, size)
        }
        _ => raw,
    };
    let got = check_ioctl(cmd, writable);
    assert_eq!(
        got,
        model_ioctl(cmd, writable),
        "check_ioctl({cmd:#x}, {writable})"
    );
    match got {
        Ok(c) => assert_eq!(
            c.changes_state(),
            !matches!(
                c,
                Command::PoolInfo | Command::RingInfo | Command::PoolChunk
            )
        ),
        Err(PlanError::NotWritable) => assert_eq!(PlanError::NotWritable.errno(), errno::EBADF),
        Err(e) => assert_eq!(e.errno(), errno::ENOTTY, "{e:?}"),
    }

    let mut held = r.u64();
    let budget = r.u64();
    let n = r.u8() % 17;
    for _ in 0..n {
        let raw = r.u64();
        let pages = if raw >> 63 == 0 { raw % 4096 } else { raw };
        let got = check_budget(held, pages, budget);
        assert_eq!(
            got,
            model_budget(held, pages, budget),
            "check_budget({held}, {pages}, {budget})"
        );
        match got {
            Ok(total) => {
                // What the driver's reservation does: take the pages only if admitted.
                assert!(total <= budget || held > budget);
                held = total;
            }
            Err(e) => assert_eq!(e.errno(), errno::ENOSPC),
        }
    }
});
