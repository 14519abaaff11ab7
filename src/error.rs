//! The library's one error type: [`Error`], an errno with the context it arose in.
//!
//! Every fallible call of the library returns [`Error`]: for a kernel refusal it carries the
//! kernel's errno, and for a request pktmap refuses before any system call (a zero length, a
//! misaligned offset, FIXED without an address, a length over the region) it carries the errno
//! the kernel would have given, so [`Error::raw_os_error`] always answers for both, as on an
//! [`io::Error`] from the OS. The context (the step, the layout the caller chose, type, id,
//! offset and length) is in the message and in [`Error::offset`].
//!
//! The message ends with the OS error (`mmap of 4096 bytes at offset 0x0: No such device (os
//! error 19)`), so [`source`](std::error::Error::source) is `None`: the Rust API guidelines'
//! rule for error chains is to show a cause in `Display` or return it from `source`, never
//! both, or a report that walks the chain (anyhow's `{:#}`, `eyre`, a `while let
//! Some(e) = e.source()` loop) prints it twice.
//!
//! `From<Error> for io::Error` keeps the message and the kind, so `?` works in functions that
//! return [`io::Result`]; the errno is then one downcast away
//! (`e.get_ref().and_then(|e| e.downcast_ref::<pktmap::Error>())`), because the standard
//! library gives only context-free OS errors a `raw_os_error`.

use crate::offset::Layout;
use std::fmt;
use std::io;

/// `Result` with pktmap's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed pktmap call: the errno and what was being done.
///
/// # Examples
/// ```
/// use pktmap::resource::{MapFlags, MapOptions};
/// let e = MapOptions::new(0).map_anonymous().unwrap_err();
/// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
/// let io: std::io::Error = e.into(); // for `?` in an io::Result function
/// assert!(io.to_string().contains("zero length"), "{io}");
/// ```
#[derive(Debug)]
pub struct Error {
    source: io::Error,
    kind: io::ErrorKind,
    context: Context,
}

/// What a failed call was doing.
#[derive(Debug, Clone)]
pub(crate) enum Context {
    /// Nothing to add to the OS error.
    None,
    /// The call that failed, such as `msync(MS_SYNC)` or `ioctl(POOL_CREATE)`.
    Call(&'static str),
    /// In words: a refusal before any call, or a call and what it was made on
    /// (`open /dev/pktmap`).
    Message(String),
    /// A mapping request: `step` (`mmap`, `madvise(MADV_POPULATE_READ)`, ...) of `len` bytes at
    /// `offset`, named with `layout` if the caller chose one.
    Map {
        step: &'static str,
        layout: Option<&'static Layout>,
        offset: u64,
        len: usize,
        why: Option<std::borrow::Cow<'static, str>>,
    },
}

impl Error {
    /// The error `errno` with no context.
    pub(crate) fn from_errno(errno: i32) -> Self {
        io::Error::from_raw_os_error(errno).into()
    }

    /// `errno` refused before any call, with the reason in words.
    pub(crate) fn refused(errno: i32, msg: impl Into<String>) -> Self {
        Self::from_errno(errno).with(Context::Message(msg.into()))
    }

    /// `EINVAL` refused before any call, with the reason in words.
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::refused(libc::EINVAL, msg)
    }

    /// Replaces the context.
    pub(crate) fn with(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Names the call that failed, keeping the errno.
    pub(crate) fn during(self, call: &'static str) -> Self {
        self.with(Context::Call(call))
    }

    /// Reports the error as `kind`, keeping the errno (`ETIME` from a timed wait is
    /// [`io::ErrorKind::TimedOut`], which the standard library does not map).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))] // Only io_uring waits.
    pub(crate) fn reported_as(mut self, kind: io::ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The errno: the kernel's, or the one pktmap refused the request with before any call.
    /// `None` only for an error that did not come from the OS (wrapped from an [`io::Error`]
    /// without an errno).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The kind, which follows the errno (as [`io::Error::kind`] does), except that a timeout
    /// is always [`io::ErrorKind::TimedOut`].
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// The `mmap` offset of the request, if the failure concerned one.
    pub fn offset(&self) -> Option<u64> {
        match self.context {
            Context::Map { offset, .. } => Some(offset),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Context::None => {}
            Context::Call(call) => write!(f, "{call}: ")?,
            Context::Message(msg) => write!(f, "{msg}: ")?,
            Context::Map {
                step,
                layout,
                offset,
                len,
                why,
            } => {
                write!(f, "{step} of {len} bytes at offset {offset:#x}")?;
                if let Some(layout) = layout {
                    match layout.decode(*offset) {
                        Ok((t, id)) => match layout.type_name(t) {
                            Some(name) => write!(f, " ({} {name} id {id})", layout.name)?,
                            None => write!(f, " ({} type {t} id {id})", layout.name)?,
                        },
                        Err(e) => write!(f, " (not a {} offset: {e})", layout.name)?,
                    }
                }
                if let Some(why) = why {
                    write!(f, ", {why}")?;
                }
                f.write_str(": ")?;
            }
        }
        write!(f, "{}", self.source)
    }
}

/// No [`source`](std::error::Error::source): the OS error is the end of the message already
/// (the rule for error chains: show a cause or return it, not both).
impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Self {
            kind: source.kind(),
            source,
            context: Context::None,
        }
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Self::from_errno(e.raw_os_error())
    }
}

impl From<Error> for io::Error {
    /// Keeps the message and the kind (the errno stays reachable by downcasting to
    /// [`Error`]).
    fn from(e: Error) -> Self {
        match e.context {
            // Nothing to add: the OS error itself, `raw_os_error` and all.
            Context::None if e.kind == e.source.kind() => e.source,
            _ => io::Error::new(e.kind, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::PKTMAP;

    #[test]
    fn errno_kind_and_context_survive() {
        let e = Error::invalid("zero length");
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("zero length: "), "{e}");
        let io: io::Error = e.into();
        let inner = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(inner.raw_os_error(), Some(libc::EINVAL));
        // Without context the conversion is the OS error itself.
        let io: io::Error = Error::from_errno(libc::ENOMEM).into();
        assert_eq!(io.raw_os_error(), Some(libc::ENOMEM));
        let t = Error::from_errno(libc::ETIME).reported_as(io::ErrorKind::TimedOut);
        assert_eq!(
            (t.raw_os_error(), t.kind()),
            (Some(libc::ETIME), io::ErrorKind::TimedOut)
        );
        assert_eq!(io::Error::from(t).kind(), io::ErrorKind::TimedOut);
    }

    /// What anyhow's `{:#}` prints: each error of the `source()` chain, joined with ": ".
    fn report(e: &(dyn std::error::Error + 'static)) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(cause) = next {
            out = format!("{out}: {cause}");
            next = cause.source();
        }
        out
    }

    #[test]
    fn a_chained_report_names_the_os_error_once() {
        let os = io::Error::from_raw_os_error(libc::ENODEV).to_string();
        let map = Error::from_errno(libc::ENODEV).with(Context::Map {
            step: "mmap",
            layout: Some(&PKTMAP),
            offset: 0,
            len: 4096,
            why: None,
        });
        for e in [
            map,
            Error::from_errno(libc::ENODEV).during("ioctl(STATE)"),
            Error::refused(libc::ENODEV, "open /dev/pktmap"),
            Error::from_errno(libc::ENODEV),
        ] {
            let direct = report(&e);
            assert_eq!(direct.matches(&os).count(), 1, "{direct}");
            // Through `?` into an io::Error, as a caller returning io::Result sees it.
            let io: io::Error = e.into();
            let wrapped = report(&io);
            assert_eq!(wrapped.matches(&os).count(), 1, "{wrapped}");
        }
    }

    #[test]
    fn offsets_are_named_only_with_a_chosen_layout() {
        let map = |layout| {
            Error::from_errno(libc::EINVAL).with(Context::Map {
                step: "mmap",
                layout,
                offset: 3 << 15 | 1 << 12,
                len: 4096,
                why: None,
            })
        };
        let raw = map(None).to_string();
        assert!(
            raw.starts_with("mmap of 4096 bytes at offset 0x19000: "),
            "{raw}"
        );
        let named = map(Some(&PKTMAP)).to_string();
        assert!(named.contains("(pktmap POOL id 3)"), "{named}");
    }
}
