//! Read `/proc/<pid>/maps` and name each mapping by what the kernel says its file is, then by
//! its offset.
//!
//! A line of `/proc/<pid>/maps` is `start-end perms offset dev inode [path]`; the offset is the
//! mapping's `vm_pgoff` in bytes, which is exactly what a program passed to `mmap`. A layout of
//! [`crate::offset`] decodes it only when the kernel says the mapping's file is the file that
//! layout belongs to ([`offset::maps_file`](crate::offset::maps_file), one table):
//!
//! | the kernel says the file is | asked how | layout | shown as |
//! |---|---|---|---|
//! | the pktmap device | its device number (`st_rdev`, against `/sys/class/misc/pktmap/dev`), not its path | [`PKTMAP`](crate::offset::PKTMAP) | `pktmap POOL id 3` |
//! | `anon_inode:[pktmap-pool]` (an exported pool's file) | the kernel's name | [`PKTMAP`](crate::offset::PKTMAP): its pool is `POOL` id 0 | `pktmap POOL id 0` |
//! | `anon_inode:[io_uring]` | the kernel's own name for the anonymous inode | [`IO_URING`](crate::offset::IO_URING) | `io_uring PBUF_RING id 1` |
//! | an `AF_XDP` socket | [`sock_diag`] (`XDP_DIAG`), else `system.sockprotoname` | [`AF_XDP`](crate::offset::AF_XDP) | `af_xdp FILL` |
//! | an `AF_PACKET` socket | the same (`PACKET_DIAG`) | none: the ring is at offset 0 | `af_packet PACKET_MMAP` |
//! | `anon_inode:[vfio-device]` | the kernel's name | [`VFIO`](crate::offset::VFIO) | `vfio type 2 id 1048576` |
//!
//! A memfd or a regular file is never named a ring, whatever it is called (`xsk-umem`,
//! `libxdp.so.1.4`) and wherever it is mapped; nor is a socket whose family the kernel did not
//! confirm. [`read`] asks the kernel ([`FileKind`]); a line that was only parsed knows what its
//! text proves (`anon_inode:` and `socket:[` names, which no file path can spell, since paths
//! are absolute) and nothing else, so a parsed `/dev/pktmap` line is [`FileKind::Unverified`]
//! until [`Entry::with_file`] says otherwise.
//!
//! Only the first page of a mapping carries the offset `mmap` was given: if a mapping was
//! later split (a partial `munmap` or `mprotect`), its later parts show shifted offsets, which
//! decode to something else or not at all ([`Name::Undecodable`]).

use super::sock_diag;
use crate::device::DEVICE_PATH;
use crate::offset::{DecodeError, Layout, MapsFile, AF_XDP_MAPS_PATH_PREFIX, MAPS_FILES};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::str::FromStr;

/// What the mapped file is, as far as the kernel has said.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::inspect::maps::{self, FileKind};
/// // A memfd this process maps: `read` asks the kernel, so it is a Memfd, not a guess.
/// let fd = rustix::fs::memfd_create("pkt", rustix::fs::MemfdFlags::CLOEXEC)?;
/// rustix::fs::ftruncate(&fd, 4096)?;
/// let m = pktmap::resource::map(&fd, 0, 4096, pktmap::resource::MapFlags::empty())?;
/// let entries = maps::read(None)?;
/// let e = entries.iter().find(|e| e.start == m.as_ptr() as u64).unwrap();
/// assert_eq!(e.file, FileKind::Memfd);
/// // Parsed text alone proves nothing about a path.
/// let line: maps::Entry = "1000-2000 rw-s 0 00:01 5 /memfd:pkt (deleted)".parse().unwrap();
/// assert_eq!(line.file, FileKind::Unverified);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// Nothing is known beyond the path text (a parsed line, or a file the kernel would not
    /// describe to us).
    Unverified,
    /// Anonymous memory, or a pseudo-path such as `[heap]` or `[stack]`.
    Anonymous,
    /// An anonymous inode, `anon_inode:<name>`: `[io_uring]`, `[vfio-device]`, ...
    AnonInode(String),
    /// A socket, with the protocol name the kernel gave (`XDP`, `PACKET`), if it gave one.
    Socket(Option<String>),
    /// The pktmap driver's device, told by its device number.
    PktmapDevice,
    /// Another character device, with its `major:minor`.
    CharDevice(u32, u32),
    /// A memfd (`/memfd:<name>`).
    Memfd,
    /// A regular file, or anything else with a path.
    File,
}

impl FileKind {
    /// What the text of a line proves: anonymous inodes and sockets name themselves in a way
    /// no file path can; everything else with a path is [`Unverified`](Self::Unverified).
    fn from_path(path: Option<&str>) -> Self {
        let Some(path) = path else {
            return Self::Anonymous;
        };
        if let Some(name) = path.strip_prefix("anon_inode:") {
            Self::AnonInode(name.to_string())
        } else if path.starts_with(AF_XDP_MAPS_PATH_PREFIX) {
            Self::Socket(None)
        } else if path.starts_with('[') {
            Self::Anonymous
        } else {
            Self::Unverified
        }
    }

    /// Whether this is the file `f` describes.
    fn is(&self, f: MapsFile) -> bool {
        match (self, f) {
            (Self::PktmapDevice, MapsFile::Device { .. }) => true,
            (Self::AnonInode(name), MapsFile::AnonInode(want)) => name == want,
            (Self::Socket(Some(proto)), MapsFile::Socket { family }) => {
                protocol_family(proto) == Some(family)
            }
            _ => false,
        }
    }
}

/// The address family of a protocol as `system.sockprotoname` names it, for the families
/// whose mappings this module names.
fn protocol_family(proto: &str) -> Option<u16> {
    match proto {
        "XDP" => Some(sock_diag::AF_XDP.into()),
        "PACKET" => Some(sock_diag::AF_PACKET.into()),
        _ => None,
    }
}

/// One line of `/proc/<pid>/maps`.
///
/// # Examples
/// ```
/// use pktmap::inspect::maps::{Entry, FileKind};
/// let e: Entry = "7f00a000-7f00c000 rw-s 00009000 00:05 123 /dev/pktmap".parse().unwrap();
/// assert_eq!((e.start, e.end, e.offset, e.inode), (0x7f00a000, 0x7f00c000, 0x9000, 123));
/// assert_eq!(e.perms, "rw-s");
/// assert_eq!(e.path.as_deref(), Some("/dev/pktmap"));
/// assert_eq!(e.len(), 8192);
/// assert_eq!(e.file, FileKind::Unverified); // only the kernel can say it is the device
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
    /// What the file is: what the line proves after parsing, what the kernel said after
    /// [`read`].
    pub file: FileKind,
}

/// Why a line of `/proc/<pid>/maps` did not parse.
///
/// # Examples
/// ```
/// let e = "1000-2000 rw-s".parse::<pktmap::inspect::maps::Entry>().unwrap_err();
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
        let path = (!path.is_empty()).then(|| path.to_string());
        Ok(Entry {
            start,
            end,
            perms: perms.to_string(),
            offset: hex(offset, "offset")?,
            dev: dev.to_string(),
            inode: inode.parse().map_err(|_| err("inode"))?,
            file: FileKind::from_path(path.as_deref()),
            path,
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
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// The same entry, with what the kernel said its file is (for tests, and for callers
    /// that asked the kernel themselves).
    ///
    /// # Examples
    /// ```
    /// use pktmap::inspect::maps::{Entry, FileKind};
    /// let e: Entry = "1000-3000 r--s 00008000 00:05 7 /dev/pktmap".parse().unwrap();
    /// assert_eq!(e.name().to_string(), ""); // unverified: not named
    /// let e = e.with_file(FileKind::PktmapDevice);
    /// assert_eq!(e.name().to_string(), "pktmap STATE id 1");
    /// ```
    pub fn with_file(mut self, file: FileKind) -> Self {
        self.file = file;
        self
    }

    /// The layout of the mapping's file, if the kernel said it is one a layout belongs to.
    pub fn layout(&self) -> Option<&'static Layout> {
        MAPS_FILES
            .into_iter()
            .find(|(_, f)| self.file.is(*f))
            .map(|(l, _)| l)
    }

    /// What the mapping is: decoded from its offset with [`layout`](Self::layout), or an
    /// AF_PACKET `PACKET_MMAP` ring, or [`Name::Unknown`].
    pub fn name(&self) -> Name {
        if self.file == FileKind::Socket(Some("PACKET".into())) {
            return Name::PacketMmap;
        }
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

/// What a mapping is, as far as the kernel and the layouts can tell.
///
/// # Examples
/// ```
/// use pktmap::inspect::maps::{Entry, FileKind, Name};
/// use pktmap::offset::{DecodeError, PKTMAP};
/// let e: Entry = "1000-4000 rw-s 00009000 00:05 7 /dev/pktmap".parse().unwrap();
/// let e = e.with_file(FileKind::PktmapDevice); // what `maps::read` learns from the kernel
/// assert_eq!(e.name(), Name::Resource { layout: &PKTMAP, map_type: 1, id: 1 });
/// assert_eq!(e.name().to_string(), "pktmap POOL id 1");
/// // The third page of the pool, after a split: offset 0xb000 names no resource type.
/// let tail: Entry = "3000-4000 rw-s 0000b000 00:05 7 /dev/pktmap".parse().unwrap();
/// let tail = tail.with_file(FileKind::PktmapDevice);
/// assert_eq!(tail.name(), Name::Undecodable { layout: &PKTMAP, error: DecodeError::UnknownType });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// Not a mapping of a file that a layout describes (or the kernel did not say it is).
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
    /// The file is one a layout describes, but the offset does not decode (a split
    /// mapping's later part, or a resource this build does not know).
    Undecodable {
        /// The layout of the file.
        layout: &'static Layout,
        /// Why the offset did not decode.
        error: DecodeError,
    },
    /// An AF_PACKET socket's `PACKET_MMAP` ring (`PACKET_RX_RING` and/or `PACKET_TX_RING`,
    /// mapped together at offset 0).
    PacketMmap,
}

impl Name {
    /// The type's name (`POOL`, `PBUF_RING`, `FILL`), if the mapping is a known resource.
    pub fn type_name(&self) -> Option<&'static str> {
        match self {
            Name::Resource {
                layout, map_type, ..
            } => layout.type_name(*map_type),
            Name::PacketMmap => Some("PACKET_MMAP"),
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
            Name::PacketMmap => f.write_str("af_packet PACKET_MMAP"),
        }
    }
}

/// Parses the text of a maps file, line by line; each entry knows only what its text proves
/// ([`FileKind`]).
///
/// # Errors
/// The first line that does not parse.
///
/// # Examples
/// ```
/// let text = "1000-2000 rw-s 00000000 00:05 7 /dev/pktmap\n2000-3000 r-xp 00000000 08:01 9 /bin/x\n";
/// let entries = pktmap::inspect::maps::parse(text).unwrap();
/// assert_eq!(entries.len(), 2);
/// ```
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Reads and parses `/proc/<pid>/maps` (`/proc/self/maps` for `None`) and asks the kernel what
/// each mapping's file is.
///
/// For each mapping with a path it `stat`s `/proc/<pid>/map_files/<start>-<end>`, which is the
/// mapped file itself (root, or the process's owner), else the path, accepted only if it has
/// the line's inode. Sockets are told by [`sock_diag`] dumps of this thread's network
/// namespace, else by their `system.sockprotoname`. The pktmap device is told by its device
/// number, from `/sys/class/misc/pktmap/dev`, else from `stat("/dev/pktmap")`. What the kernel
/// will not say stays [`FileKind::Unverified`] (or `Socket(None)`), and is not named.
///
/// # Errors
/// The error opening the file (`ENOENT` for no such process, `EACCES` without permission),
/// or `InvalidData` for a line that does not parse.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let entries = pktmap::inspect::maps::read(None)?;
/// assert!(entries.iter().any(|e| e.path.as_deref() == Some("[stack]")));
/// # Ok(()) }
/// ```
pub fn read(pid: Option<u32>) -> io::Result<Vec<Entry>> {
    let proc = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let path = format!("{proc}/maps");
    let text = std::fs::read_to_string(&path)?;
    let mut entries = parse(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))?;
    let kernel = Kernel::ask(&proc);
    for e in &mut entries {
        e.file = kernel.identify(e);
    }
    Ok(entries)
}

/// What the kernel told us once per [`read`]: the pktmap device number and the socket inodes
/// `sock_diag` reported.
struct Kernel<'a> {
    proc: &'a str,
    pktmap_rdev: Option<u64>,
    sockets: HashMap<u64, &'static str>,
}

impl<'a> Kernel<'a> {
    fn ask(proc: &'a str) -> Self {
        let mut sockets = HashMap::new();
        if let Ok(all) = sock_diag::xdp_sockets() {
            sockets.extend(all.iter().map(|s| (u64::from(s.inode), "XDP")));
        }
        if let Ok(all) = sock_diag::packet_sockets() {
            sockets.extend(all.iter().map(|s| (u64::from(s.inode), "PACKET")));
        }
        Self {
            proc,
            pktmap_rdev: pktmap_rdev(),
            sockets,
        }
    }

    fn identify(&self, e: &Entry) -> FileKind {
        match (&e.file, e.path.as_deref()) {
            (FileKind::Socket(None), _) => {
                if let Some(p) = self.sockets.get(&e.inode) {
                    return FileKind::Socket(Some((*p).to_string()));
                }
                let via = format!("{}/map_files/{:x}-{:x}", self.proc, e.start, e.end);
                FileKind::Socket(sock_diag::protocol_name(&via).ok())
            }
            (FileKind::Unverified, Some(path)) => {
                let via = format!("{}/map_files/{:x}-{:x}", self.proc, e.start, e.end);
                let st = match rustix::fs::stat(via.as_str()) {
                    Ok(st) => st,
                    // Not ours to look through: the path, if it is still the same file.
                    Err(_) => match rustix::fs::stat(path) {
                        Ok(st) if st.st_ino == e.inode => st,
                        _ => return FileKind::Unverified,
                    },
                };
                let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
                if kind == rustix::fs::FileType::CharacterDevice {
                    if Some(st.st_rdev) == self.pktmap_rdev {
                        FileKind::PktmapDevice
                    } else {
                        FileKind::CharDevice(
                            rustix::fs::major(st.st_rdev),
                            rustix::fs::minor(st.st_rdev),
                        )
                    }
                } else if path.starts_with("/memfd:") {
                    FileKind::Memfd
                } else {
                    FileKind::File
                }
            }
            (known, _) => known.clone(),
        }
    }
}

/// The pktmap device's number: `/sys/class/misc/pktmap/dev` (`major:minor`), else the
/// `st_rdev` of [`DEVICE_PATH`] if that is a character device.
fn pktmap_rdev() -> Option<u64> {
    if let Ok(text) = std::fs::read_to_string("/sys/class/misc/pktmap/dev") {
        let (major, minor) = text.trim().split_once(':')?;
        return Some(rustix::fs::makedev(
            major.parse().ok()?,
            minor.parse().ok()?,
        ));
    }
    let st = rustix::fs::stat(DEVICE_PATH).ok()?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    (kind == rustix::fs::FileType::CharacterDevice).then_some(st.st_rdev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::{af_xdp_types, io_uring_types, pktmap_types, AF_XDP, IO_URING, PKTMAP};

    /// An exported pool's file speaks pktmap's codec: its mapping at POOL 0 is named, a
    /// look-alike anonymous inode is not.
    #[test]
    fn pool_file_mappings_are_named_pool_0() {
        let line = |off: u64, path: &str| -> Entry {
            format!("1000-2000 rw-s {off:08x} 00:0f 7 {path}")
                .parse()
                .unwrap()
        };
        let e = line(0x1000, "anon_inode:[pktmap-pool]");
        assert_eq!(e.layout().map(|l| l.name), Some("pktmap"));
        assert_eq!(e.name().to_string(), "pktmap POOL id 0");
        assert_eq!(
            line(0x1000, "anon_inode:[pktmap-pool2]").name(),
            Name::Unknown
        );
        assert_eq!(
            line(0x1000, "/tmp/anon_inode:[pktmap-pool]").name(),
            Name::Unknown
        );
    }

    #[test]
    fn names_only_what_the_kernel_confirmed() {
        let line = |off: u64, path: &str| -> Entry {
            format!("1000-2000 rw-s {off:08x} 00:05 1 {path}")
                .parse()
                .unwrap()
        };
        let pool = PKTMAP.encode(pktmap_types::POOL, 3).unwrap();
        let dev = line(pool, "/dev/pktmap");
        assert_eq!(dev.name(), Name::Unknown, "a path is not a device number");
        let dev = dev.with_file(FileKind::PktmapDevice);
        assert_eq!(dev.name().to_string(), "pktmap POOL id 3");
        let pbuf = IO_URING.encode(io_uring_types::PBUF_RING, 5).unwrap();
        let e = line(pbuf, "anon_inode:[io_uring]");
        assert_eq!(e.name().to_string(), "io_uring PBUF_RING id 5");
        assert_eq!(e.name().type_name(), Some("PBUF_RING"));
        assert_eq!(
            line(0x800_0000, "anon_inode:[io_uring]").name().to_string(),
            "io_uring CQ_RING"
        );
        assert_eq!(
            line(0x2000_0000, "anon_inode:[io_uring]")
                .name()
                .to_string(),
            "io_uring PARAM_REGION"
        );
        let fill = AF_XDP.encode(af_xdp_types::FILL, 0).unwrap();
        let sock = line(fill, "socket:[4242]");
        assert_eq!(sock.file, FileKind::Socket(None));
        assert_eq!(sock.name(), Name::Unknown, "family not confirmed");
        let xsk = sock.clone().with_file(FileKind::Socket(Some("XDP".into())));
        assert_eq!(xsk.name().to_string(), "af_xdp FILL");
        let udp = sock.with_file(FileKind::Socket(Some("UDP".into())));
        assert_eq!(udp.name(), Name::Unknown);
        let packet = line(0, "socket:[7]").with_file(FileKind::Socket(Some("PACKET".into())));
        assert_eq!(packet.name().to_string(), "af_packet PACKET_MMAP");
        let bad = line(0x1000 | 5 << 12, "/dev/pktmap").with_file(FileKind::PktmapDevice);
        assert!(
            matches!(bad.name(), Name::Undecodable { .. }),
            "{:?}",
            bad.name()
        );
        for (path, file) in [
            ("/usr/lib/libxdp.so.1.4", FileKind::File),
            ("/memfd:xsk-umem (deleted)", FileKind::Memfd),
            ("/dev/zero", FileKind::CharDevice(1, 5)),
        ] {
            assert_eq!(
                line(fill, path).with_file(file).name(),
                Name::Unknown,
                "{path}"
            );
        }
        let vfio = line(2 << 40 | 0x1000, "anon_inode:[vfio-device]");
        assert_eq!(vfio.name().to_string(), "vfio type 2 id 4096");
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
