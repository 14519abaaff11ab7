//! The admission rules outside `mmap` and `pread`/`pwrite`: `check_ioctl` (unknown commands
//! `ENOTTY`, by direction, type and number at every size the struct had or longer; create and
//! destroy need a writable open, else `EBADF`) and `check_budget` (a create past the
//! device-wide page budget is `ENOSPC`), each against a model that shares no
//! code with `pktmap_abi::plan`. A reservation loop like the driver's (`fetch_update` over
//! `check_budget`) must never let the total pass the budget.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | bit 0 writable open; bits 1..4 pick one of the commands, plus 8 if bit 5 is set (modulo their number); bit 4: use the raw value instead |
//! | 4 | raw ioctl command (`u32`) |
//! | 8 | pages already held (`u64`) |
//! | 8 | budget (`u64`) |
//! | 1 | number of requests, modulo 17 |
//! | 8 each | a request's pages (`u64`; bit 63 clear keeps most small) |
#![no_main]

use core::mem::size_of;
use libfuzzer_sys::fuzz_target;
use pktmap_abi::ioctl::{
    ioc, PoolChunk, PoolCreate, PoolExport, PoolInfo, ResourceId, RingCreate, RingInfo, IOC_READ,
    IOC_WRITE,
};
use pktmap_abi::packet::Attach;
use pktmap_abi::plan::{check_budget, check_ioctl, errno, Command, PlanError};
use pktmap_fuzz::Reader;

/// The ioctls, restated from `_IOC` (direction, number, the argument struct's size) with
/// whether they change state (the info and chunk queries do not).
const COMMANDS: [(u32, u32, usize, bool, Command); 11] = [
    (
        IOC_READ | IOC_WRITE,
        1,
        size_of::<PoolCreate>(),
        true,
        Command::PoolCreate,
    ),
    (
        IOC_READ | IOC_WRITE,
        2,
        size_of::<PoolInfo>(),
        false,
        Command::PoolInfo,
    ),
    (
        IOC_WRITE,
        3,
        size_of::<ResourceId>(),
        true,
        Command::PoolDestroy,
    ),
    (
        IOC_READ | IOC_WRITE,
        4,
        size_of::<RingCreate>(),
        true,
        Command::RingCreate,
    ),
    (
        IOC_READ | IOC_WRITE,
        5,
        size_of::<RingInfo>(),
        false,
        Command::RingInfo,
    ),
    (
        IOC_WRITE,
        6,
        size_of::<ResourceId>(),
        true,
        Command::RingDestroy,
    ),
    (
        IOC_READ | IOC_WRITE,
        7,
        size_of::<PoolChunk>(),
        false,
        Command::PoolChunk,
    ),
    (
        IOC_READ | IOC_WRITE,
        8,
        size_of::<PoolExport>(),
        true,
        Command::PoolExport,
    ),
    (
        IOC_READ | IOC_WRITE,
        9,
        size_of::<Attach>(),
        true,
        Command::Attach,
    ),
    (
        IOC_WRITE,
        10,
        size_of::<ResourceId>(),
        true,
        Command::Detach,
    ),
    (IOC_WRITE, 11, size_of::<ResourceId>(), true, Command::Kick),
];

/// The first round's sizes of the two structs that grew since (`include/pktmap.h` then:
/// a 16-byte `pktmap_pool_create`, a 32-byte `pktmap_pool_info`).
const OLD_SIZES: [(u32, usize); 2] = [(1, 16), (2, 32)];

/// Admitted by direction and number at today's size, a size the struct had, or any longer one
/// (ioctl.rs's growth rule; how the argument is then copied is the `ioctl_size` target's).
fn model_ioctl(cmd: u32, writable: bool) -> Result<Command, PlanError> {
    let size = (cmd >> 16 & 0x3fff) as usize;
    let (_, _, _, changes, command) = *COMMANDS
        .iter()
        .find(|(dir, nr, today, _, _)| {
            let same = ioc(*dir, *nr, 0) == cmd & !(0x3fff << 16);
            let had = OLD_SIZES.contains(&(*nr, size));
            same && (size >= *today || had)
        })
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
    let cmd = if mode & 0x10 != 0 {
        raw
    } else {
        let pick = usize::from((mode >> 1) & 7) + 8 * usize::from((mode >> 5) & 1);
        let (dir, nr, size, _, _) = COMMANDS[pick % COMMANDS.len()];
        ioc(dir, nr, size)
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
