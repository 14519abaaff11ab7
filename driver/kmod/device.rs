// SPDX-License-Identifier: GPL-2.0

//! The device-wide state: the STATE page, the counters it shows, and the page budget.
//!
//! Counters are atomics, so no fault, `mmap` or `.close` of any process serialises on a lock of
//! this module's (a page-frame fault waits only on its own mapping's, `mapping.rs`). The event counters a fault changes (`pages_mapped`, `faults_served`) live in the STATE
//! page itself and are incremented there atomically, so a fault publishes nothing else. The
//! gauges are republished after every change under a seqcount (the `sequence` word: odd while
//! the page is being written), written under a spinlock as the kernel's `write_seqlock` does:
//! writers take turns for the ten stores of one publication, and the writer cannot be
//! preempted meanwhile (a spinlock disables preemption), so a reader — `pread` of STATE spins
//! in the kernel while `sequence` is odd — never waits on a writer that is not running.
#![forbid(unsafe_code)]

use crate::abi::ioctl::{State, STATE_MAGIC};
use crate::abi::plan;
use crate::packet::Attachments;
use crate::sys::{
    module_param::{OnSet, ParamUlong},
    netdev::{DevId, NetdevEvents, Rtnl},
    page::SharedPage,
};
use core::mem::offset_of;
use core::sync::atomic::{fence, AtomicU64, Ordering};
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// The gauges of [`State`], one atomic each (the event counters live in the page:
/// [`DeviceState::count_event`]).
#[derive(Default)]
pub struct Counters {
    /// Live pools.
    pub pools: AtomicU64,
    /// Live rings.
    pub rings: AtomicU64,
    /// Pages held by live pools and rings.
    pub pages_allocated: AtomicU64,
    /// Live VMAs.
    pub live_mappings: AtomicU64,
    /// Faults served by one 2 MiB entry.
    pub pmd_faults: AtomicU64,
    /// Live pool files.
    pub pool_files: AtomicU64,
}

/// An event counter of [`State`], kept in the STATE page itself.
#[derive(Clone, Copy)]
pub enum Event {
    /// `pages_mapped`: pages inserted into user mappings.
    PagesMapped,
    /// `faults_served`: faults the `.fault` handler served.
    FaultsServed,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts `n` from a gauge; an underflow is a driver bug, reported instead of panicking.
pub fn sub(counter: &AtomicU64, n: u64, what: &str) {
    if counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(n))
        .is_err()
    {
        pr_err!("gauge {} underflow (- {})\n", what, n);
    }
}

/// A `page_budget` written through sysfs is enforced at once (every reservation reads the
/// parameter), so it is published at once too.
impl NetdevEvents for DeviceState {
    /// A device is going away: end every attachment to it (the files keep their ids until
    /// `DETACH` or close).
    fn unregister(&self, rtnl: &Rtnl, dev: DevId) {
        self.attachments.lock().end_device(rtnl, dev);
    }
}

impl OnSet for DeviceState {
    fn on_set(&self) {
        self.publish();
    }
}

/// Device-wide state, shared by every open file and mapping (not the library's
/// `pktmap::device::Device`, which is user space's open `/dev/pktmap`).
#[pin_data]
pub struct DeviceState {
    state_page: SharedPage,
    counters: Counters,
    /// The `page_budget` module parameter (which tells this state of each run-time write,
    /// [`OnSet`], so STATE shows a new budget at once).
    budget: &'static ParamUlong<DeviceState>,
    /// Held by the thread writing the STATE page (preemption off meanwhile).
    #[pin]
    publishing: SpinLock<()>,
    /// The STATE page's `sequence` word; written only by the thread holding `publishing`.
    sequence: AtomicU64,
    /// Every live packet attachment of every open file, for the `NETDEV_UNREGISTER`
    /// notifier (taken under RTNL).
    #[pin]
    attachments: Mutex<Attachments>,
}

/// The offset of each word the publisher writes (all but `sequence` and the fault path's two
/// event counters, which live in the page).
const WORDS: [usize; 8] = [
    offset_of!(State, magic),
    offset_of!(State, pools),
    offset_of!(State, rings),
    offset_of!(State, pages_allocated),
    offset_of!(State, live_mappings),
    offset_of!(State, pages_budget),
    offset_of!(State, pmd_faults),
    offset_of!(State, pool_files),
];
const PAGES_MAPPED: usize = offset_of!(State, pages_mapped);
const FAULTS_SERVED: usize = offset_of!(State, faults_served);
const SEQUENCE: usize = offset_of!(State, sequence);

impl DeviceState {
    /// Makes the device state; `budget` is the `page_budget` parameter (already defaulted).
    pub fn new(budget: &'static ParamUlong<DeviceState>) -> Result<Arc<Self>> {
        let state_page = SharedPage::new()?;
        let dev = Arc::pin_init(
            pin_init!(DeviceState {
                state_page,
                counters: Counters::default(),
                budget,
                publishing <- new_spinlock!((), "pktmap::device::publishing"),
                sequence: AtomicU64::new(0),
                attachments <- new_mutex!(Attachments::new(), "pktmap::device::attachments"),
            }),
            GFP_KERNEL,
        )?;
        dev.publish();
        Ok(dev)
    }

    /// Every live packet attachment (lock under RTNL).
    pub fn attachments(&self) -> &Mutex<Attachments> {
        &self.attachments
    }

    /// The STATE page (mapped read-only by user space).
    pub fn state_page(&self) -> &SharedPage {
        &self.state_page
    }

    /// Changes counters with `f`, then republishes the STATE page.
    pub fn update(&self, f: impl FnOnce(&Counters)) {
        f(&self.counters);
        self.publish();
    }

    /// Adds `n` to an event counter, in the STATE page (no publication needed).
    pub fn count_event(&self, event: Event, n: u64) {
        let offset = match event {
            Event::PagesMapped => PAGES_MAPPED,
            Event::FaultsServed => FAULTS_SERVED,
        };
        // A `#[repr(C)]` offset of a `u64`: aligned and inside the page, so it cannot fail.
        let _ = self.state_page.fetch_add_u64(offset, n);
    }

    /// Reserves `pages` of the device-wide budget for a new pool or ring.
    ///
    /// # Errors
    /// `ENOSPC` if the pages held by all pools and rings would exceed the budget.
    pub fn reserve(&self, pages: u64) -> Result {
        let budget = self.budget.get();
        self.counters
            .pages_allocated
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                plan::check_budget(held, pages, budget).ok()
            })
            .map_err(|_| crate::plan_err(plan::PlanError::OverBudget))?;
        self.publish();
        Ok(())
    }

    /// Gives back `pages` that [`reserve`](Self::reserve) took.
    pub fn unreserve(&self, pages: u64) {
        self.update(|c| sub(&c.pages_allocated, pages, "pages_allocated"));
    }

    /// The words the publisher writes, as the counters are now (in [`WORDS`] order).
    fn words(&self) -> [u64; 8] {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            STATE_MAGIC,
            load(&c.pools),
            load(&c.rings),
            load(&c.pages_allocated),
            load(&c.live_mappings),
            self.budget.get(),
            load(&c.pmd_faults),
            load(&c.pool_files),
        ]
    }

    /// Writes the counters to the STATE page under the seqcount. The counters are read
    /// inside the lock, so the last writer of a series of racing changes publishes them all.
    fn publish(&self) {
        let _writing = self.publishing.lock();
        let seq = self.sequence.load(Ordering::Relaxed);
        let page = &self.state_page;
        // The offsets are those of a `#[repr(C)]` struct of `u64`s: aligned and inside the
        // page, so the stores cannot fail.
        let _ = page.store_u64(SEQUENCE, seq.wrapping_add(1));
        fence(Ordering::Release);
        for (offset, value) in WORDS.iter().zip(self.words()) {
            let _ = page.store_u64(*offset, value);
        }
        fence(Ordering::Release);
        let _ = page.store_u64(SEQUENCE, seq.wrapping_add(2));
        self.sequence.store(seq.wrapping_add(2), Ordering::Relaxed);
    }

    /// One consistent snapshot of the STATE page (the seqcount reader: retry while an update
    /// is in progress or happened meanwhile).
    pub fn snapshot(&self) -> State {
        let page = &self.state_page;
        let load = |offset| page.load_u64(offset).unwrap_or(0);
        loop {
            let before = load(SEQUENCE);
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            fence(Ordering::Acquire);
            let w = WORDS.map(load);
            let (pages_mapped, faults_served) = (load(PAGES_MAPPED), load(FAULTS_SERVED));
            fence(Ordering::Acquire);
            if load(SEQUENCE) == before {
                return State {
                    magic: w[0],
                    pools: w[1],
                    rings: w[2],
                    pages_allocated: w[3],
                    pages_mapped,
                    faults_served,
                    live_mappings: w[4],
                    pages_budget: w[5],
                    sequence: before,
                    pmd_faults: w[6],
                    pool_files: w[7],
                };
            }
        }
    }
}
