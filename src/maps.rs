//! Read `/proc/<pid>/maps` and name each mapping whose offset a layout can decode.
//!
//! A line of `/proc/<pid>/maps` is `start-end perms offset dev inode [path]`; the offset is the
//! mapping's `vm_pgoff` in bytes, which is exactly what a program passed to `mmap`, so the
//! layouts of [`crate::offset`] decode it back into what was mapped:
//!
//! | path | layout | shown as |
//! |---|---|---|
//! | `/dev/pktmap` | [`PKTMAP`] | `pktmap POOL id 3` |
//! | `anon_inode:[io_uring]` | [`IO_URING`] | `io_uring PBUF_RING id 1` (the id is the buffer group) |
//! | `socket:[…]`, or a path naming XDP | [`AF_XDP`] | `af_xdp FILL` |
//!
//! Only the first page of a mapping carries the offset `mmap` was given: if a mapping was
//! later split (a partial `munmap` or `mprotect`), its later parts show shifted offsets, which
//! decode to something else or not at all ([`Name::Undecodable`]). A `socket:[…]` mapping is
//! named AF_XDP if its offset is one of AF_XDP's four ring offsets; other socket kinds that
//! mmap (`PACKET_MMAP`) at those offsets would be named the same.

use crate::device::DEVICE_PATH;
use crate::offset::{DecodeError, Layout, AF_XDP, IO_URING, PKTMAP};
use std::fmt;
use std::io;
use std::str::FromStr;

/// How `/proc/<pid>/maps` names every io_uring mapping (as `pktmap::io_uring::MAPS_PATH`).
pub const IO_URING_MAPS_PATH: &str = "anon_inode:[io_uring]";
/// How `/proc/<pid>/maps` begins the name of a socket mapping such as an AF_XDP ring (as
/// `pktmap::af_xdp::MAPS_PATH_PREFIX`).
pub const AF_XDP_MAPS_PATH_PREFIX: &str = "socket:[";

/// One line of `/proc/<pid>/maps`.
///
/// # Examples
/// ```
/// use pktmap::maps::Entry;
/// let e: Entry = "7f00a000-7f00c000 rw-s 00009000 00:05 123 /dev/pktmap".parse().unwrap();
/// assert_eq!((e.start, e.end, e.offset, e.inode), (0x7f00a000, 0x7f00c000, 0x9000, 123));
/// assert_eq!(e.perms, "rw-s");
/// assert_eq!(e.path.as_deref(), Some("/dev/pktmap"));
/// assert_eq!(e.len(), 8192);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The first address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `r`/`w`/`x` or `-`, then `s` (shared) or `p` (private).
    pub perms: String,
    /// The offset given to `mmap`, in bytes (for the first page of the mapping).
    pub offset: u64,
    /// The device, `major:minor` in hex.
    pub dev: String,
    /// The inode, 0 for anonymous memory.
    pub inode: u64,
    /// The path or pseudo-path (`[heap]`, `anon_inode:[io_uring]`), if any; a trailing
    /// ` (deleted)` is kept.
    pub path: Option<String>,
}

/// Why a line of `/proc/<pid>/maps` did not parse.
///
/// # Examples
/// ```
/// let e = "1000-2000 rw-s".parse::<pktmap::maps::Entry>().unwrap_err();
/// assert_eq!(e.field, "offset");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Which field was missing or malformed.
    pub field: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed /proc/PID/maps line: bad {}", self.field)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Entry {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Self, ParseError> {
        let err = |field| ParseError { field };
        let mut rest = line.trim_end_matches('\n');
        let mut next = |field| -> Result<&str, ParseError> {
            let s = rest.trim_start_matches(' ');
            let end = s.find(' ').unwrap_or(s.len());
            let (tok, tail) = s.split_at(end);
            rest = tail;
            if tok.is_empty() {
                Err(err(field))
            } else {
                Ok(tok)
            }
        };
        let range = next("address range")?;
        let perms = next("perms")?;
        let offset = next("offset")?;
        let dev = next("device")?;
        let inode = next("inode")?;
        let (start, end) = range.split_once('-').ok_or(err("address range"))?;
        let hex = |s: &str, field| u64::from_str_radix(s, 16).map_err(|_| err(field));
        let start = hex(start, "address range")?;
        let end = hex(end, "address range")?;
        if end < start {
            return Err(err("address range"));
        }
        if perms.len() != 4 {
            return Err(err("perms"));
        }
        let path = rest.trim_start_matches(' ');
        Ok(Entry {
            start,
            end,
            perms: perms.to_string(),
            offset: hex(offset, "offset")?,
            dev: dev.to_string(),
            inode: inode.parse().map_err(|_| err("inode"))?,
            path: (!path.is_empty()).then(|| path.to_string()),
        })
    }
}

impl Entry {
    /// The mapping's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never, for lines the kernel writes).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Whether the mapping is shared (`s`) rather than private (`p`).
    ///
    /// # Examples
    /// ```
    /// use pktmap::maps::Entry;
    /// let e: Entry = "1000-3000 r--p 00000000 00:00 0".parse().unwrap();
    /// assert!(!e.is_shared() && !e.is_empty() && e.len() == 0x2000);
    /// ```
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// The layout this mapping's path says it speaks, if any.
    ///
    /// # Examples
    /// ```
    /// use pktmap::maps::Entry;
    /// let e: Entry = "1000-2000 rw-s 80000000 00:0f 9 anon_inode:[io_uring]".parse().unwrap();
    /// assert_eq!(e.layout().unwrap().name, "io_uring");
    /// ```
    pub fn layout(&self) -> Option<&'static Layout> {
        let path = self.path.as_deref()?;
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        // The same names as `device::DEVICE_PATH`, `io_uring::MAPS_PATH` and
        // `af_xdp::MAPS_PATH_PREFIX` (those two are behind features; tests/maps.rs checks).
        if path.starts_with(DEVICE_PATH) {
            Some(&PKTMAP)
        } else if path == IO_URING_MAPS_PATH {
            Some(&IO_URING)
        } else if path.starts_with(AF_XDP_MAPS_PATH_PREFIX)
            || path.contains("XDP")
            || path.contains("xdp")
            || path.contains("xsk")
        {
            Some(&AF_XDP)
        } else {
            None
        }
    }

    /// What the mapping is, decoded from its offset with [`layout`](Self::layout).
    ///
    /// # Examples
    /// ```
    /// use pktmap::maps::{Entry, Name};
    /// let e: Entry = "1000-3000 r--s 00008000 00:05 7 /dev/pktmap".parse().unwrap();
    /// assert_eq!(e.name().to_string(), "pktmap STATE id 1");
    /// let e: Entry = "1000-3000 rw-p 00000000 00:00 0 [heap]".parse().unwrap();
    /// assert_eq!(e.name(), Name::Unknown);
    /// ```
    pub fn name(&self) -> Name {
        let Some(layout) = self.layout() else {
            return Name::Unknown;
        };
        match layout.decode(self.offset) {
            Ok((map_type, id)) => Name::Resource {
                layout,
                map_type,
                id,
            },
            Err(error) => Name::Undecodable { layout, error },
        }
    }
}

/// What a mapping is, as far as the layouts can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// Not a mapping of a device or file that a layout describes.
    Unknown,
    /// A resource: `layout` decoded the offset to `(map_type, id)`.
    Resource {
        /// The layout that decoded it.
        layout: &'static Layout,
        /// The map type.
        map_type: u32,
        /// The map id (0 for types without one).
        id: u64,
    },
    /// The path names a layout, but the offset does not decode (a split mapping's later
    /// part, or a resource this build does not know).
    Undecodable {
        /// The layout the path names.
        layout: &'static Layout,
        /// Why the offset did not decode.
        error: DecodeError,
    },
}

impl Name {
    /// The type's name (`POOL`, `PBUF_RING`, `FILL`), if the mapping is a known resource.
    ///
    /// # Examples
    /// ```
    /// use pktmap::maps::Entry;
    /// let e: Entry = "1000-2000 rw-s 100000000 00:09 5 socket:[5]".parse().unwrap();
    /// assert_eq!(e.name().type_name(), Some("FILL"));
    /// ```
    pub fn type_name(&self) -> Option<&'static str> {
        match self {
            Name::Resource {
                layout, map_type, ..
            } => layout.type_name(*map_type),
            _ => None,
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Name::Unknown => Ok(()),
            Name::Resource {
                layout,
                map_type,
                id,
            } => {
                write!(f, "{} ", layout.name)?;
                match layout.type_name(map_type) {
                    Some(n) => f.write_str(n)?,
                    None => write!(f, "type {map_type}")?,
                }
                let has_id = layout
                    .type_info(map_type)
                    .map_or(layout.id_field.width > 0, |t| t.has_id);
                if has_id {
                    write!(f, " id {id}")?;
                }
                Ok(())
            }
            Name::Undecodable { layout, error } => write!(f, "{} ? ({error})", layout.name),
        }
    }
}

/// Parses the text of a maps file, line by line.
///
/// # Errors
/// The first line that does not parse.
///
/// # Examples
/// ```
/// let text = "1000-2000 rw-s 00000000 00:05 7 /dev/pktmap\n2000-3000 r-xp 00000000 08:01 9 /bin/x\n";
/// let entries = pktmap::maps::parse(text).unwrap();
/// assert_eq!(entries.len(), 2);
/// ```
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Reads and parses `/proc/<pid>/maps` (`/proc/self/maps` for `None`).
///
/// # Errors
/// The error opening the file (`ENOENT` for no such process, `EACCES` without permission),
/// or `InvalidData` for a line that does not parse.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let entries = pktmap::maps::read(None)?;
/// assert!(entries.iter().any(|e| e.path.as_deref() == Some("[stack]")));
/// # Ok(()) }
/// ```
pub fn read(pid: Option<u32>) -> io::Result<Vec<Entry>> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/maps"),
        None => "/proc/self/maps".to_string(),
    };
    let text = std::fs::read_to_string(&path)?;
    parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::{af_xdp, io_uring, resource_type};

    #[test]
    fn names_every_layout() {
        let line = |off: u64, path: &str| -> Entry {
            format!("1000-2000 rw-s {off:08x} 00:05 1 {path}")
                .parse()
                .unwrap()
        };
        let pool = PKTMAP.encode(resource_type::POOL, 3).unwrap();
        assert_eq!(
            line(pool, "/dev/pktmap").name().to_string(),
            "pktmap POOL id 3"
        );
        let pbuf = IO_URING.encode(io_uring::PBUF_RING, 5).unwrap();
        let e = line(pbuf, "anon_inode:[io_uring]");
        assert_eq!(e.name().to_string(), "io_uring PBUF_RING id 5");
        assert_eq!(e.name().type_name(), Some("PBUF_RING"));
        assert_eq!(
            line(0x800_0000, "anon_inode:[io_uring]").name().to_string(),
            "io_uring CQ_RING"
        );
        let fill = AF_XDP.encode(af_xdp::FILL, 0).unwrap();
        assert_eq!(
            line(fill, "socket:[4242]").name().to_string(),
            "af_xdp FILL"
        );
        assert_eq!(
            line(pool, "/dev/pktmap (deleted)").name().to_string(),
            "pktmap POOL id 3"
        );
        let bad = line(0x1000 | 5 << 12, "/dev/pktmap").name();
        assert!(matches!(bad, Name::Undecodable { .. }), "{bad:?}");
        assert_eq!(line(0, "/usr/lib/libc.so.6").name(), Name::Unknown);
    }

    #[test]
    fn parses_odd_lines() {
        let e: Entry =
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]"
                .parse()
                .unwrap();
        assert_eq!(e.path.as_deref(), Some("[vsyscall]"));
        let e: Entry = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0"
            .parse()
            .unwrap();
        assert_eq!(e.path, None);
        let e: Entry = "1000-2000 rw-s 00000000 00:01 5 /tmp/a file with spaces"
            .parse()
            .unwrap();
        assert_eq!(e.path.as_deref(), Some("/tmp/a file with spaces"));
        assert!("1000-2000 rw-s".parse::<Entry>().is_err());
        assert!("zz-2000 rw-s 0 00:00 0".parse::<Entry>().is_err());
        assert!("2000-1000 rw-s 0 00:00 0".parse::<Entry>().is_err());
    }
}
