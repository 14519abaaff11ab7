// SPDX-License-Identifier: MIT OR Apache-2.0
//! Admission of an ioctl: [`check_ioctl`].

use super::super::{ioctl, packet};
use super::PlanError;

/// An ioctl the driver knows, as [`check_ioctl`] admitted it.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RING_DESTROY;
/// use pktmap_abi::plan::{check_ioctl, Command};
/// assert_eq!(check_ioctl(RING_DESTROY, true), Ok(Command::RingDestroy));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// [`POOL_CREATE`](ioctl::POOL_CREATE).
    PoolCreate,
    /// [`POOL_INFO`](ioctl::POOL_INFO).
    PoolInfo,
    /// [`POOL_DESTROY`](ioctl::POOL_DESTROY).
    PoolDestroy,
    /// [`RING_CREATE`](ioctl::RING_CREATE).
    RingCreate,
    /// [`RING_INFO`](ioctl::RING_INFO).
    RingInfo,
    /// [`RING_DESTROY`](ioctl::RING_DESTROY).
    RingDestroy,
    /// [`POOL_CHUNK`](ioctl::POOL_CHUNK).
    PoolChunk,
    /// [`POOL_EXPORT`](ioctl::POOL_EXPORT).
    PoolExport,
    /// [`ATTACH`](packet::ATTACH).
    Attach,
    /// [`DETACH`](packet::DETACH).
    Detach,
    /// [`KICK`](packet::KICK).
    Kick,
}

impl Command {
    /// Whether the command changes the open file's resources (and so needs a writable open).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::plan::Command;
    /// assert!(Command::PoolExport.changes_state());
    /// assert!(!Command::PoolChunk.changes_state()); // a query, allowed on a read-only open
    /// ```
    pub const fn changes_state(self) -> bool {
        !matches!(
            self,
            Command::PoolInfo | Command::RingInfo | Command::PoolChunk
        )
    }
}

/// Admits an ioctl: `writable` is whether the file was opened for writing.
///
/// # Errors
/// `ENOTTY` for an unknown command; `EBADF` for a create, destroy or export on a read-only
/// open (the errno `write(2)` gives on one).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{POOL_CREATE, POOL_INFO};
/// use pktmap_abi::plan::{check_ioctl, Command, PlanError};
/// assert_eq!(check_ioctl(POOL_INFO, false), Ok(Command::PoolInfo));
/// assert_eq!(check_ioctl(POOL_CREATE, false), Err(PlanError::NotWritable));
/// assert_eq!(check_ioctl(0, true), Err(PlanError::UnknownCommand));
/// // The first round's 16-byte POOL_CREATE is still POOL_CREATE.
/// assert_eq!(check_ioctl(0xc010_5001, true), Ok(Command::PoolCreate));
/// ```
pub const fn check_ioctl(cmd: u32, writable: bool) -> Result<Command, PlanError> {
    // By direction, type and number, at any size the struct had (ioctl.rs, "Growing an
    // argument struct"); how the argument is copied is `ioctl::arg_size`'s.
    let today = match ioctl::arg_size(cmd) {
        Ok(size) => size.cmd,
        Err(_) => return Err(PlanError::UnknownCommand),
    };
    let command = match today {
        ioctl::POOL_CREATE => Command::PoolCreate,
        ioctl::POOL_INFO => Command::PoolInfo,
        ioctl::POOL_DESTROY => Command::PoolDestroy,
        ioctl::RING_CREATE => Command::RingCreate,
        ioctl::RING_INFO => Command::RingInfo,
        ioctl::RING_DESTROY => Command::RingDestroy,
        ioctl::POOL_CHUNK => Command::PoolChunk,
        ioctl::POOL_EXPORT => Command::PoolExport,
        packet::ATTACH => Command::Attach,
        packet::DETACH => Command::Detach,
        packet::KICK => Command::Kick,
        _ => return Err(PlanError::UnknownCommand),
    };
    if command.changes_state() && !writable {
        return Err(PlanError::NotWritable);
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::errno;

    #[test]
    fn ioctl_admission() {
        use crate::ioctl::*;
        for (cmd, changes) in [
            (POOL_CREATE, true),
            (POOL_INFO, false),
            (POOL_DESTROY, true),
            (RING_CREATE, true),
            (RING_INFO, false),
            (RING_DESTROY, true),
            (crate::packet::ATTACH, true),
            (crate::packet::DETACH, true),
            (crate::packet::KICK, true),
        ] {
            assert!(check_ioctl(cmd, true).is_ok());
            assert_eq!(check_ioctl(cmd, false).is_ok(), !changes, "{cmd:#x}");
            if changes {
                assert_eq!(check_ioctl(cmd, false).unwrap_err().errno(), errno::EBADF);
            }
        }
        assert_eq!(
            check_ioctl(ioc(IOC_READ, 99, 8), true),
            Err(PlanError::UnknownCommand)
        );
        assert_eq!(PlanError::UnknownCommand.errno(), errno::ENOTTY);
    }
}
