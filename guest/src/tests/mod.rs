//! The checks, one file per subject (as tokio-rs/io-uring's `io-uring-test/src/tests/`), each
//! citing the promise it checks: driver/kmod/README.md's "What the driver promises", and
//! driver/abi/src/plan.rs's table of request rules. Regression cases, named after the failure
//! they reproduce, are in [`regression`].
//!
//! | file | subject |
//! |---|---|
//! | [`state`](mod@state) | the STATE page: `pread`, mapping, consistent snapshots |
//! | [`read_only`] | read-only everywhere, writable opens, read-only pool files |
//! | [`eager_lazy`] | pools of single pages: eager, lazy with fault-around, `POPULATE` |
//! | [`contiguous`], [`huge`], [`write_combined`] | the page-frame pool kinds |
//! | [`export`] | pool files handed to an unrelated process |
//! | [`io`] | `pread`/`pwrite` against mappings, `fsync`/`msync` |
//! | [`private`] | `MAP_PRIVATE` copies on write |
//! | [`rings`] | rings, and rings holding their pool |
//! | [`lifetimes`] | open files' tables, fork, destroy and close while mapped |
//! | [`accounting`] | the page budget, memory cgroups, a killed creator, per-open limits |
//! | [`bad_input`] | bad `mmap`s and ioctls, each with its errno |
//! | [`growth`] | the ioctl ABI growing: every size a struct had served, a newer one refused clearly |
//! | [`maps`] | `/proc/self/maps` and `pktmap maps` |
//! | [`readme`] | the README's driver examples, as written |
//! | [`errors`] | what a user without access or with a wrong path sees |
//! | [`packets`] | packets: `ATTACH`, RX and TX through veth pairs, accounting, need-wakeup, devices and namespaces going away |
//! | [`regression`] | failures the module once had |

pub mod accounting;
pub mod bad_input;
pub mod contiguous;
pub mod eager_lazy;
pub mod errors;
pub mod export;
pub mod growth;
pub mod huge;
pub mod io;
pub mod lifetimes;
pub mod maps;
pub mod packets;
pub mod populate;
pub mod private;
pub mod read_only;
pub mod readme;
pub mod regression;
pub mod rings;
pub mod state;
pub mod write_combined;

use crate::utils::{back_to_baseline, open, state, Report};

/// `pktmap-guest check`: every subject but the pool kinds beyond eager and lazy. Most checks
/// share one eager 2048 x 64 pool, made by [`eager_lazy::eager`].
pub fn check(r: &mut Report) {
    let Some(dev) = open(r) else { return };
    let base = match dev.state() {
        Ok(s) => s,
        Err(e) => return r.check("STATE via pread", false, e),
    };
    state::page(r, &dev, &base);
    read_only::state(r, &dev);
    let pool = eager_lazy::eager(r, &dev, &base);
    io::shared(r, &dev, pool);
    private::eager(r, &dev, pool);
    maps::proc_self(r, &dev, pool);
    read_only::pool(r, &dev, pool);
    lifetimes::fork(r, &dev, pool);
    lifetimes::second_open(r, &dev, pool);
    eager_lazy::lazy(r, &dev);
    rings::lifecycle(r, &dev, pool);
    bad_input::mmaps(r, &dev, pool);
    bad_input::ioctls(r, &dev, pool);
    growth::run(r, &dev);
    let _ = dev.destroy_pool(pool);
    lifetimes::destroyed_or_closed_while_mapped(r, &dev);
    lifetimes::partial_unmap(r, &dev);
    rings::holds_pool(r, &dev);
    io::sync(r, &dev);
    read_only::mappings(r, &dev);
    read_only::rdonly_open(r);
    accounting::resource_limit(r, &dev);
    accounting::budget(r, &dev);
    accounting::memcg(r);
    accounting::killed_creator(r, &dev);
    state::snapshots(r, &dev);
    regression::read_write_moved_the_position(r, &dev);
    regression::faulting_pwrite_zero_filled(r, &dev);
    back_to_baseline(r, "check", &dev, &base);
    maps::run(r);
    readme::run(r);
    errors::run(r);
    packets::run(r);
}

/// `pktmap-guest pools`: the pool kinds beyond eager and lazy single pages, pool files, and
/// racing page-frame faults.
pub fn pools(r: &mut Report) {
    let Some(dev) = open(r) else { return };
    let base = state(&dev);
    eager_lazy::fault_around(r, &dev);
    contiguous::run(r, &dev);
    huge::run(r, &dev);
    write_combined::run(r, &dev);
    export::run(r, &dev);
    regression::racing_pfn_faults_counted_twice(r, &dev, regression::RACE_ROUNDS);
    back_to_baseline(r, "pools", &dev, &base);
    populate::run(r);
}

/// `pktmap-guest pool-races ROUNDS`: only the racing page-frame faults, `rounds` mappings each.
pub fn pool_races(r: &mut Report, rounds: u32) {
    let Some(dev) = open(r) else { return };
    let base = state(&dev);
    regression::racing_pfn_faults_counted_twice(r, &dev, rounds);
    back_to_baseline(r, "pool races", &dev, &base);
}
