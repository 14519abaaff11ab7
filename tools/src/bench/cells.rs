//! What one repetition maps and touches: [`Backing`], [`Mode`], [`Subject`] and its [`Sample`].

use super::sys;
use pktmap::device::Device;
use pktmap::offset::{ResourceType, IO_URING, PKTMAP};
use pktmap::pool::PoolOptions;
use pktmap::resource::{MapFlags, MapOptions, Mapping};
use pktmap_abi::ioctl::MAX_POOL_BYTES;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Instant;

/// The page size the matrix reports costs per.
pub const PAGE: usize = 4096;
/// The hugetlb page size the matrix uses (the x86-64 default, `MFD_HUGE_2MB`).
pub const HUGE_PAGE: usize = 2 << 20;

/// What memory a cell maps.
///
/// # Examples
/// ```
/// use pktmap_tools::bench::Backing;
/// assert_eq!(Backing::Hugetlb.name(), "hugetlb");
/// assert!(!Backing::Hugetlb.supports(4096));
/// assert!(Backing::Hugetlb.supports(2 << 20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backing {
    /// A second mapping of a memfd filled once up front (pages exist in the page cache).
    Existing,
    /// A new memfd each repetition (every page allocated and zeroed on first fault).
    Fresh,
    /// A new hugetlb memfd (2 MiB pages) each repetition.
    Hugetlb,
    /// An io_uring provided-buffer ring allocated by the kernel, mapped again each repetition.
    UringPbuf,
    /// A `/dev/pktmap` pool whose pages the driver inserts at `mmap` time ([`PoolKind::Eager`](pktmap::pool::PoolKind::Eager)).
    EagerPool,
    /// A `/dev/pktmap` pool whose pages the driver's fault handler inserts ([`PoolKind::Lazy`](pktmap::pool::PoolKind::Lazy)),
    /// one page per fault.
    LazyPool,
    /// A lazy `/dev/pktmap` pool with fault-around: [`FAULT_AROUND`] pages per fault.
    AroundPool,
    /// A contiguous `/dev/pktmap` pool: physically contiguous chunks mapped whole at `mmap`
    /// (`remap_pfn_range`).
    ContigPool,
    /// A 2 MiB `/dev/pktmap` pool: one PMD entry per 2 MiB, on first touch.
    HugePool,
}

/// Pages per fault of [`Backing::AroundPool`] (the driver's default, like the kernel's own
/// `fault_around_bytes`).
pub const FAULT_AROUND: usize = 16;

impl Backing {
    /// Every backing, in report order.
    pub const ALL: [Backing; 9] = [
        Backing::Existing,
        Backing::Fresh,
        Backing::Hugetlb,
        Backing::UringPbuf,
        Backing::EagerPool,
        Backing::LazyPool,
        Backing::AroundPool,
        Backing::ContigPool,
        Backing::HugePool,
    ];

    /// The `/dev/pktmap` pool backings, in report order.
    pub const POOLS: [Backing; 5] = [
        Backing::EagerPool,
        Backing::LazyPool,
        Backing::AroundPool,
        Backing::ContigPool,
        Backing::HugePool,
    ];

    /// Whether the backing is a `/dev/pktmap` pool (needs [`Subject::with_device`]).
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Backing;
    /// assert!(Backing::LazyPool.needs_device() && !Backing::Fresh.needs_device());
    /// ```
    pub fn needs_device(self) -> bool {
        Backing::POOLS.contains(&self)
    }

    /// A short name for tables, JSON and the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backing::Existing => "existing",
            Backing::Fresh => "fresh",
            Backing::Hugetlb => "hugetlb",
            Backing::UringPbuf => "io_uring-pbuf",
            Backing::EagerPool => "pktmap-eager",
            Backing::LazyPool => "pktmap-lazy",
            Backing::AroundPool => "pktmap-lazy16",
            Backing::ContigPool => "pktmap-contig",
            Backing::HugePool => "pktmap-huge",
        }
    }

    /// One line saying what is mapped.
    pub fn describe(self) -> &'static str {
        match self {
            Backing::Existing => "second mapping of an already-filled memfd",
            Backing::Fresh => "new memfd each repetition (pages allocated and zeroed)",
            Backing::Hugetlb => "new MFD_HUGETLB memfd, 2 MiB pages, each repetition",
            Backing::UringPbuf => "io_uring provided-buffer ring (IOU_PBUF_RING_MMAP)",
            Backing::EagerPool => "/dev/pktmap pool, pages inserted at mmap",
            Backing::LazyPool => {
                "/dev/pktmap pool, pages inserted by the fault handler, 1 per fault"
            }
            Backing::AroundPool => {
                "/dev/pktmap pool, pages inserted by the fault handler, 16 per fault"
            }
            Backing::ContigPool => "/dev/pktmap contiguous pool, remap_pfn_range at mmap",
            Backing::HugePool => "/dev/pktmap 2 MiB pool, one PMD entry per 2 MiB fault",
        }
    }

    /// Whether a mapping of `len` bytes can be measured: a positive multiple of the page size
    /// (2 MiB for hugetlb); for io_uring a power of two up to the kernel's largest ring
    /// (32768 entries of 16 bytes, 512 KiB).
    pub fn supports(self, len: usize) -> bool {
        match self {
            Backing::Existing | Backing::Fresh => len > 0 && len % PAGE == 0,
            Backing::Hugetlb => len > 0 && len % HUGE_PAGE == 0,
            Backing::UringPbuf => len.is_power_of_two() && (PAGE..=PBUF_MAX_LEN).contains(&len),
            Backing::EagerPool | Backing::LazyPool | Backing::AroundPool | Backing::ContigPool => {
                len > 0 && len % PAGE == 0 && len as u64 <= MAX_POOL_BYTES
            }
            Backing::HugePool => len > 0 && len % HUGE_PAGE == 0 && len as u64 <= MAX_POOL_BYTES,
        }
    }

    /// The faults per 4 KiB page the driver's `.fault` handler serves for a pool backing in
    /// `mode`, (while mapping, while touching); `None` for backings that are not pools.
    ///
    /// An eager pool's pages are all inserted at `mmap`, and so are a contiguous pool's, so
    /// nothing faults. A lazy pool serves one fault per page (per 16 pages with fault-around,
    /// at least one per mapping): during `mmap` when the kernel populates (every populate
    /// faults through `get_user_pages`), else on the first touch; pktmap's POPULATE asks the
    /// driver to insert every page at `mmap` (the offset's populate bit), so none. A 2 MiB
    /// pool serves one per 2 MiB: on the first touch, except with pktmap's POPULATE, which
    /// brings the pages in itself (`MAP_POPULATE` skips page-frame maps).
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Mode};
    /// assert_eq!(Backing::EagerPool.served_faults(Mode::WriteFault, 4096), Some((0.0, 0.0)));
    /// assert_eq!(Backing::LazyPool.served_faults(Mode::WriteFault, 4096), Some((0.0, 1.0)));
    /// assert_eq!(Backing::LazyPool.served_faults(Mode::Pktmap, 4096), Some((0.0, 0.0)));
    /// assert_eq!(Backing::LazyPool.served_faults(Mode::MadvPopulateWrite, 4096), Some((1.0, 0.0)));
    /// assert_eq!(Backing::AroundPool.served_faults(Mode::WriteFault, 65536), Some((0.0, 1.0 / 16.0)));
    /// assert_eq!(Backing::HugePool.served_faults(Mode::MapPopulate, 2 << 20), Some((0.0, 1.0 / 512.0)));
    /// assert_eq!(Backing::Fresh.served_faults(Mode::WriteFault, 4096), None);
    /// ```
    pub fn served_faults(self, mode: Mode, len: usize) -> Option<(f64, f64)> {
        let pages = (len / PAGE).max(1);
        let per = |faults: usize| faults as f64 / pages as f64;
        let populate = !matches!(mode, Mode::WriteFault | Mode::ReadFault);
        let rate = match self {
            Backing::EagerPool | Backing::ContigPool => return Some((0.0, 0.0)),
            Backing::LazyPool => 1.0,
            Backing::AroundPool => per(pages.div_ceil(FAULT_AROUND)),
            Backing::HugePool => per(len.div_ceil(HUGE_PAGE)),
            _ => return None,
        };
        Some(match (self, mode) {
            (Backing::LazyPool | Backing::AroundPool, Mode::Pktmap) => (0.0, 0.0),
            (Backing::HugePool, Mode::Pktmap) => (rate, 0.0),
            (Backing::HugePool, _) => (0.0, rate),
            _ if populate => (rate, 0.0),
            _ => (0.0, rate),
        })
    }

    /// A rough cost per 4 KiB page and repetition, setup and teardown included, in ns; only
    /// for [`Schedule::estimate`](crate::bench::Schedule::estimate).
    pub(crate) fn rough_ns_per_page(self) -> f64 {
        match self {
            Backing::Existing => 1_000.0,
            Backing::Fresh => 4_000.0,
            Backing::Hugetlb => 800.0,
            Backing::UringPbuf => 300.0,
            Backing::EagerPool => 500.0,
            Backing::LazyPool => 1_500.0,
            Backing::AroundPool => 600.0,
            Backing::ContigPool => 300.0,
            Backing::HugePool => 300.0,
        }
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest io_uring provided-buffer ring: 32768 entries of 16 bytes.
pub const PBUF_MAX_LEN: usize = 32768 * 16;

/// How the pages of a cell's mapping are brought in: pktmap's POPULATE, its peers (the
/// kernel's `MAP_POPULATE`, memmap2, the raw `madvise` calls), and plain fault-in.
///
/// # Examples
/// ```
/// use pktmap_tools::bench::Mode;
/// assert_eq!(Mode::Pktmap.name(), "pktmap POPULATE");
/// assert_eq!(Mode::from_key("write_fault"), Some(Mode::WriteFault));
/// assert!(Mode::Memmap2Populate.is_peer() && !Mode::Pktmap.is_peer());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// pktmap's [`MapFlags::POPULATE`] as a user calls it ([`MapOptions::map`], or
    /// `Device::map_pool` for a pool): a read populate where it maps pages writable, a write
    /// populate where needed, none where the driver inserted every page; reports errors.
    Pktmap,
    /// `mmap(MAP_POPULATE)`: the kernel faults pages in (for reading, on a shared mapping)
    /// before `mmap` returns, and fails silently.
    MapPopulate,
    /// memmap2 `MmapOptions::new().populate().map_raw(fd)`: `MAP_POPULATE` through memmap2,
    /// what a Rust user would pick instead.
    Memmap2Populate,
    /// memmap2 `map_raw(fd)` then `advise(Advice::PopulateWrite)`.
    Memmap2PopulateWrite,
    /// Raw `mmap` then `madvise(MADV_POPULATE_READ)`.
    MadvPopulateRead,
    /// Raw `mmap` then `madvise(MADV_POPULATE_WRITE)`.
    MadvPopulateWrite,
    /// Plain `mmap`; the touch loop's writes fault each page in.
    WriteFault,
    /// Plain `mmap`; the touch loop reads instead, so read faults (with fault-around) map
    /// the pages.
    ReadFault,
}

impl Mode {
    /// Every mode, in report order: pktmap first, then its peers, then fault-in.
    pub const ALL: [Mode; 8] = [
        Mode::Pktmap,
        Mode::MapPopulate,
        Mode::Memmap2Populate,
        Mode::Memmap2PopulateWrite,
        Mode::MadvPopulateRead,
        Mode::MadvPopulateWrite,
        Mode::WriteFault,
        Mode::ReadFault,
    ];

    /// The name tables and plots use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pktmap => "pktmap POPULATE",
            Mode::MapPopulate => "MAP_POPULATE",
            Mode::Memmap2Populate => "memmap2 populate()",
            Mode::Memmap2PopulateWrite => "memmap2 PopulateWrite",
            Mode::MadvPopulateRead => "MADV_POPULATE_READ",
            Mode::MadvPopulateWrite => "MADV_POPULATE_WRITE",
            Mode::WriteFault => "write fault-in",
            Mode::ReadFault => "read fault-in",
        }
    }

    /// The name in at most 8 columns, for the text table's headers (its legend spells each
    /// out).
    pub(crate) fn short(self) -> &'static str {
        match self {
            Mode::Pktmap => "★pktmap",
            Mode::MapPopulate => "MAP_POP",
            Mode::Memmap2Populate => "m2 pop",
            Mode::Memmap2PopulateWrite => "m2 popW",
            Mode::MadvPopulateRead => "MADV_R",
            Mode::MadvPopulateWrite => "MADV_W",
            Mode::WriteFault => "wr fault",
            Mode::ReadFault => "rd fault",
        }
    }

    /// The name as a table column or plot legend shows it: pktmap's POPULATE marked with a
    /// star and `gap`, the others plain.
    pub(crate) fn label(self, gap: &str) -> String {
        if self == Mode::Pktmap {
            format!("★{gap}{}", self.name())
        } else {
            self.name().to_string()
        }
    }

    /// The key JSON and the command line use.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Pktmap => "pktmap_populate",
            Mode::MapPopulate => "map_populate",
            Mode::Memmap2Populate => "memmap2_populate",
            Mode::Memmap2PopulateWrite => "memmap2_populate_write",
            Mode::MadvPopulateRead => "madv_populate_read",
            Mode::MadvPopulateWrite => "madv_populate_write",
            Mode::WriteFault => "write_fault",
            Mode::ReadFault => "read_fault",
        }
    }

    /// The mode whose [`key`](Self::key) is `key`.
    pub fn from_key(key: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Whether the mode is one of pktmap POPULATE's peers: another way to prefault every page
    /// before the first touch (the kernel's, memmap2's, the raw `madvise` calls).
    pub fn is_peer(self) -> bool {
        matches!(
            self,
            Mode::MapPopulate
                | Mode::Memmap2Populate
                | Mode::Memmap2PopulateWrite
                | Mode::MadvPopulateRead
                | Mode::MadvPopulateWrite
        )
    }

    /// Whether the mode can map `backing` at all: `madvise(MADV_POPULATE_*)` refuses page-frame
    /// maps (`EINVAL`), so the raw populate calls and memmap2's `PopulateWrite` do not run on
    /// contiguous and 2 MiB pools; pktmap's POPULATE brings those in itself.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Mode};
    /// assert!(Mode::Pktmap.applies_to(Backing::HugePool));
    /// assert!(!Mode::MadvPopulateWrite.applies_to(Backing::ContigPool));
    /// assert!(Mode::MadvPopulateWrite.applies_to(Backing::LazyPool));
    /// ```
    pub fn applies_to(self, backing: Backing) -> bool {
        let pfn_map = matches!(backing, Backing::ContigPool | Backing::HugePool);
        !(pfn_map
            && matches!(
                self,
                Mode::MadvPopulateRead | Mode::MadvPopulateWrite | Mode::Memmap2PopulateWrite
            ))
    }

    /// Whether the touch loop writes (all modes but [`Mode::ReadFault`]).
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Mode;
    /// assert!(Mode::MapPopulate.writes() && !Mode::ReadFault.writes());
    /// assert_eq!(Mode::ReadFault.key(), "read_fault");
    /// ```
    pub fn writes(self) -> bool {
        self != Mode::ReadFault
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One repetition of one cell: what it cost and how many faults each phase took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// 4 KiB pages mapped and touched.
    pub pages: u64,
    /// Nanoseconds in `mmap` (and populating, for the POPULATE modes).
    pub map_ns: u64,
    /// Nanoseconds touching every page once.
    pub touch_ns: u64,
    /// Minor faults taken while mapping (`MAP_POPULATE`/`MADV_POPULATE` fault on the
    /// thread's behalf, so they count here).
    pub map_faults: u64,
    /// Minor faults taken while touching: about 0 when populating worked.
    pub touch_faults: u64,
    /// Faults the driver's `.fault` handler served while mapping (the STATE page's
    /// `faults_served`), for the `/dev/pktmap` pool backings; 0 for the others.
    pub map_served: u64,
    /// Faults the driver's `.fault` handler served while touching; 0 unless a pool backing.
    pub touch_served: u64,
}

impl Sample {
    /// Map and touch time per 4 KiB page, in ns.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Sample;
    /// let s = Sample { pages: 4, map_ns: 300, touch_ns: 100, ..Sample::default() };
    /// assert_eq!(s.ns_per_page(), 100.0);
    /// ```
    pub fn ns_per_page(&self) -> f64 {
        (self.map_ns + self.touch_ns) as f64 / self.pages.max(1) as f64
    }
}

/// A prepared (backing, size): the memfd or ring to map, set up once for all repetitions.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_tools::bench::{Backing, Mode, Subject};
/// let mut t = Subject::new(Backing::Fresh, 16 * 4096)?;
/// let s = t.run(Mode::ReadFault)?;
/// assert_eq!(s.pages, 16);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subject {
    backing: Backing,
    len: usize,
    state: Prepared,
}

#[derive(Debug)]
enum Prepared {
    Existing(OwnedFd),
    Fresh,
    Hugetlb,
    /// A kernel-allocated provided-buffer ring of a throwaway instance
    /// ([`pktmap::uring::Uring::register_pbuf_ring`]: registered, no buffers).
    Uring(pktmap::uring::PbufRing),
    /// The device, the pool id, and the device's STATE page mapped read-only, whose
    /// `faults_served` counter is read between the phases (a load, not a syscall).
    Pool(Device, u32, Mapping),
}

/// The byte offset of `faults_served` in the STATE page.
const FAULTS_SERVED: usize = std::mem::offset_of!(pktmap::device::State, faults_served);

fn memfd(len: usize, huge: bool) -> io::Result<OwnedFd> {
    let flags = if huge {
        MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB
    } else {
        MemfdFlags::CLOEXEC
    };
    let fd = memfd_create("pktmap-bench", flags)?;
    ftruncate(&fd, len as u64)?;
    Ok(fd)
}

fn touch(m: &Mapping, write: bool) -> io::Result<u8> {
    let mut acc = 0u8;
    let mut byte = [0u8; 1];
    for off in (0..m.len()).step_by(PAGE) {
        if write {
            m.write_at(off, &[off as u8 | 1])?;
        } else {
            m.read_at(off, &mut byte)?;
            acc ^= byte[0];
        }
    }
    Ok(acc)
}

impl Subject {
    /// Prepares `len` bytes of `backing`: fills the memfd of [`Backing::Existing`], registers
    /// the ring of [`Backing::UringPbuf`].
    ///
    /// # Errors
    /// `EINVAL` if the backing does not support `len` ([`Backing::supports`]); otherwise the
    /// errno of the setup.
    pub fn new(backing: Backing, len: usize) -> io::Result<Self> {
        if !backing.supports(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{backing} cannot map {len} bytes"),
            ));
        }
        let state = match backing {
            Backing::Existing => {
                let fd = memfd(len, false)?;
                // Fill every page through a first mapping, then unmap it: the pages stay in
                // the memfd's page cache.
                let m = MapOptions::new(len).map(&fd, 0)?;
                touch(&m, true)?;
                m.unmap()?;
                Prepared::Existing(fd)
            }
            Backing::Fresh => Prepared::Fresh,
            Backing::Hugetlb => Prepared::Hugetlb,
            Backing::UringPbuf => {
                let entries = u16::try_from(len / 16)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                // The ring outlives the instance: it holds its own duplicate of the fd.
                Prepared::Uring(pktmap::uring::Uring::new(4)?.register_pbuf_ring(0, entries)?)
            }
            Backing::EagerPool
            | Backing::LazyPool
            | Backing::AroundPool
            | Backing::ContigPool
            | Backing::HugePool => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{backing} needs a device: use Subject::with_device"),
                ))
            }
        };
        Ok(Self {
            backing,
            len,
            state,
        })
    }

    /// Prepares a pool of `len` bytes (4 KiB buffers) on the `/dev/pktmap` at `device`:
    /// [`Backing::EagerPool`] or [`Backing::LazyPool`]; other backings ignore `device`.
    ///
    /// # Errors
    /// `ENOENT` if the driver is not loaded; the errno of `POOL_CREATE`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_tools::bench::{Backing, Mode, Subject};
    /// let mut t = Subject::with_device(Backing::LazyPool, 1 << 20, "/dev/pktmap".as_ref())?;
    /// assert!(t.run(Mode::Pktmap)?.touch_faults == 0);
    /// # Ok(()) }
    /// ```
    pub fn with_device(backing: Backing, len: usize, device: &Path) -> io::Result<Self> {
        let count = u32::try_from(len / PAGE).map_err(io::Error::other)?;
        let options = PoolOptions::new(PAGE as u32, count);
        let options = match backing {
            Backing::EagerPool => options,
            Backing::LazyPool => options.lazy(1),
            Backing::AroundPool => options.lazy(FAULT_AROUND as u32),
            Backing::ContigPool => options.contiguous(),
            Backing::HugePool => options.huge(),
            _ => return Self::new(backing, len),
        };
        if !backing.supports(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{backing} cannot map {len} bytes"),
            ));
        }
        let dev = Device::open_path(device)?;
        let pool = options.create(&dev)?;
        // Prefaulted, so reading the counter never faults inside a measured phase.
        let state = dev.map(
            ResourceType::State,
            0,
            PAGE,
            MapFlags::READONLY | MapFlags::POPULATE,
        )?;
        Ok(Self {
            backing,
            len,
            state: Prepared::Pool(dev, pool.id, state),
        })
    }

    /// The backing.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// The mapping length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a target maps at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The number of 4 KiB pages.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_tools::bench::{Backing, Subject};
    /// let t = Subject::new(Backing::Fresh, 1 << 20)?;
    /// assert_eq!((t.pages(), t.len(), t.backing()), (256, 1 << 20, Backing::Fresh));
    /// # Ok(()) }
    /// ```
    pub fn pages(&self) -> u64 {
        (self.len / PAGE) as u64
    }

    /// One repetition: map in `mode`, touch every page, unmap; times and faults of both
    /// phases.
    ///
    /// # Errors
    /// The errno of `memfd_create`, `mmap` or populating (for hugetlb, `ENOMEM` when the
    /// reserved pages run out).
    pub fn run(&mut self, mode: Mode) -> io::Result<Sample> {
        let owned;
        let (fd, offset, layout) = match &self.state {
            Prepared::Existing(fd) => (fd.as_fd(), 0, &PKTMAP),
            Prepared::Fresh | Prepared::Hugetlb => {
                owned = memfd(self.len, matches!(self.state, Prepared::Hugetlb))?;
                (owned.as_fd(), 0, &PKTMAP)
            }
            Prepared::Uring(ring) => (ring.as_fd(), ring.offset(), &IO_URING),
            Prepared::Pool(dev, id, _) => (dev.as_fd(), ResourceType::Pool.offset(*id), &PKTMAP),
        };
        let s0 = self.faults_served()?;
        let f0 = sys::minor_faults()?;
        let t0 = Instant::now();
        let len = self.len;
        let memmap2 = || {
            let mut o = memmap2::MmapOptions::new();
            o.len(len).offset(offset);
            o
        };
        let m: sys::Mapped = match mode {
            Mode::Pktmap => match &self.state {
                // As a user maps a pool: POOL_INFO, then the map (no pass for an eager pool).
                Prepared::Pool(dev, id, _) => {
                    sys::Mapped::Pktmap(dev.map_pool(*id, MapFlags::POPULATE)?)
                }
                _ => sys::Mapped::Pktmap(
                    MapOptions::new(len)
                        .flags(MapFlags::POPULATE)
                        .layout(layout)
                        .map(fd, offset)?,
                ),
            },
            Mode::MapPopulate => sys::Mapped::Pktmap(sys::map_populate(fd, offset, len)?),
            Mode::Memmap2Populate => {
                sys::Mapped::Memmap2(memmap2().populate().map_raw(fd.as_raw_fd())?)
            }
            Mode::Memmap2PopulateWrite => {
                let m = memmap2().map_raw(fd.as_raw_fd())?;
                m.advise(memmap2::Advice::PopulateWrite)?;
                sys::Mapped::Memmap2(m)
            }
            Mode::MadvPopulateRead => sys::Mapped::Pktmap(sys::map_madvise(
                fd,
                offset,
                len,
                rustix::mm::Advice::LinuxPopulateRead,
            )?),
            Mode::MadvPopulateWrite => sys::Mapped::Pktmap(sys::map_madvise(
                fd,
                offset,
                len,
                rustix::mm::Advice::LinuxPopulateWrite,
            )?),
            Mode::WriteFault | Mode::ReadFault => {
                sys::Mapped::Pktmap(MapOptions::new(len).layout(layout).map(fd, offset)?)
            }
        };
        let map_ns = t0.elapsed().as_nanos() as u64;
        let f1 = sys::minor_faults()?;
        let s1 = self.faults_served()?;
        let t1 = Instant::now();
        std::hint::black_box(m.touch(mode.writes()));
        let touch_ns = t1.elapsed().as_nanos() as u64;
        let f2 = sys::minor_faults()?;
        let s2 = self.faults_served()?;
        drop(m);
        Ok(Sample {
            pages: self.pages(),
            map_ns,
            touch_ns,
            map_faults: f1.saturating_sub(f0),
            touch_faults: f2.saturating_sub(f1),
            map_served: s1.saturating_sub(s0),
            touch_served: s2.saturating_sub(s1),
        })
    }

    /// The driver's `faults_served` counter (device-wide), read from the mapped STATE page;
    /// 0 for backings that are not `/dev/pktmap` pools.
    fn faults_served(&self) -> io::Result<u64> {
        match &self.state {
            Prepared::Pool(_, _, state) => {
                let mut word = [0u8; 8];
                state.read_at(FAULTS_SERVED, &mut word)?;
                Ok(u64::from_ne_bytes(word))
            }
            _ => Ok(0),
        }
    }
}
