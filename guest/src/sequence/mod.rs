//! The model-checked sequence test: seeded random sequences of open/close, pool and ring
//! create/destroy, `mmap` with every flag (shared and private, read-only, `POPULATE`,
//! `PROT_EXEC`, good and bad offsets and lengths), whole and partial `munmap`, `mremap`,
//! `mprotect`, `madvise` (`DONTNEED`, `DONTFORK`, `DOFORK`, `WIPEONFORK`), `fork`, threads,
//! `pread`/`pwrite` and `read`/`write`/`lseek` — each step checked against a reference model:
//! the errno or signal, the bytes seen through mappings and through `pread`, and the STATE
//! gauges (pools, rings, pages allocated, live VMAs, pool files).
//!
//! Pools come in every kind the driver has, each created from a generated `POOL_CREATE`
//! request, good or bad (unknown flags, two kinds at once, bad buffer sizes, fault-around or
//! cache values that do not fit the kind, a non-zero `reserved`, too large): eager and lazy
//! pools of single pages (lazy ones at every fault-around from 1 to 512), contiguous pools
//! (`remap_pfn_range` at `mmap`: `MAP_PRIVATE`, `MADV_DONTNEED` and `MADV_DOFORK` refused),
//! 2 MiB pools (a PMD entry per 2 MiB-aligned chunk, 4 KiB entries where a VMA split or a
//! `FIXED` address off the 2 MiB grid leaves none), cached or write-combined. `POOL_INFO`
//! must round-trip every field, `POOL_CHUNK` give each chunk's size, and `POOL_EXPORT` makes
//! pool files that sit in the same slots as opens of the device: mapped at `POOL 0`,
//! read-only ones refused every way of writing, living until their last fd and mapping are
//! gone. For every `mmap` and every load or store through a mapping the model also predicts
//! the fault counters STATE shows (faults served, pages mapped, PMD faults): it knows which
//! pages each VMA has mapped, which fault-around window a fault fills, and where a 2 MiB
//! entry fits.
//!
//! Built on proptest-state-machine, one file per role: `generator.rs` draws the steps
//! ([`Transition`](generator::Transition)s); `model/` is the reference model, the
//! `ReferenceStateMachine`, which resolves each step ([`Step`](step::Step), `step.rs`) and
//! predicts every outcome, one method per family of steps; `driver.rs` is the system under
//! test, the `StateMachineTest` that performs each step on `/dev/pktmap` and compares;
//! `runner.rs` runs the cases and reports. Each case runs from its own seed (printed), so a failure is
//! reproduced with `pktmap-guest sequence 1 STEPS SEED`; proptest shrinks it first and the
//! minimal sequence is printed. The closing lines count what the cases exercised, per kind.
//!
//! The model needs the device to itself: the STATE gauges are device-wide, so nothing else may
//! run in the guest meanwhile (the guest runs one program at a time).

mod driver;
mod generator;
mod model;
mod runner;
mod step;

pub use model::Mutation;
pub use runner::run;

const PAGE: usize = 4096;
/// Pages one PMD entry maps (2 MiB), and pages of a 2 MiB pool's chunk.
const PMD_PAGES: usize = 512;
/// File slots: opens of the device and pool files.
const SLOTS: usize = 4;
