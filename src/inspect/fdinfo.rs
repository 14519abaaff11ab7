//! What `/proc/self/fdinfo/<fd>` says about an fd: for an io_uring, its ring sizes.

use crate::{Error, Result};
use rustix::fd::{AsRawFd, BorrowedFd};

/// The SQ and CQ entries of the io_uring `fd`, from the `SqMask` and `CqMask` lines of
/// `/proc/self/fdinfo/<fd>` (what `pktmap::uring::Uring::adopt` learns a ring's sizes from).
///
/// # Errors
/// `EINVAL` for an fd that is not an io_uring (no such lines); the errno of reading the file.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::inspect::fdinfo::io_uring_entries;
/// use std::os::fd::AsFd;
/// let ring = io_uring::IoUring::new(64)?;
/// assert_eq!(io_uring_entries(ring.as_fd())?, (64, 128));
/// let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// assert_eq!(io_uring_entries(udp.as_fd()).unwrap_err().raw_os_error(), Some(libc::EINVAL));
/// # Ok(()) }
/// ```
pub fn io_uring_entries(fd: BorrowedFd<'_>) -> Result<(u32, u32)> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::from(e).with(crate::error::Context::Message(format!("read {path}"))))?;
    let mask = |key: &str| -> Option<u32> {
        let line = text.lines().find_map(|l| l.strip_prefix(key))?;
        let hex = line.trim().strip_prefix("0x")?;
        u32::from_str_radix(hex, 16).ok()?.checked_add(1)
    };
    match (mask("SqMask:"), mask("CqMask:")) {
        (Some(sq), Some(cq)) => Ok((sq, cq)),
        _ => Err(Error::invalid(format!(
            "{path}: not an io_uring (no SqMask/CqMask)"
        ))),
    }
}
