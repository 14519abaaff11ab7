// SPDX-License-Identifier: GPL-2.0

//! The current task (upstream `rust/kernel/task.rs`): what 7.3's `kernel::task` lacks
//! (it has `Task::signal_pending`, not `fatal_signal_pending`, and no `capable`).
//!
//! C header: [`srctree/include/linux/sched/signal.h`](srctree/include/linux/sched/signal.h)

use kernel::bindings;

/// `fatal_signal_pending(current)`: whether the current task has been sent `SIGKILL` (it is
/// being killed, so a long loop on its behalf should stop and free what it made).
pub fn fatal_signal_pending() -> bool {
    // Cheap test first (the thread flag), as the C `fatal_signal_pending` does.
    if !kernel::current!().signal_pending() {
        return false;
    }
    // SAFETY: `get_current` returns the running task, valid while it runs this code.
    let task = unsafe { bindings::get_current() };
    // SAFETY: `task` is valid (above). The pending set is written by signal senders under the
    // task's siglock; the C `__fatal_signal_pending` reads this word without the lock too
    // (`sigismember`), and a stale answer only delays the abort to the next check. The field
    // is where C has it: scripts/layout/bindgen.list checks `task_struct.pending.signal`'s
    // binding offset against the C one before the module builds.
    let word = unsafe { core::ptr::addr_of!((*task).pending.signal.sig[0]).read_volatile() };
    word & (1 << (bindings::SIGKILL - 1)) != 0
}

/// Whether the current task has `CAP_SYS_ADMIN` (`capable`, which also records the use for
/// auditing).
pub fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as kernel::ffi::c_int) }
}
