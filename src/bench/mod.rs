//! The POPULATE-vs-fault-in matrix behind `pktmap bench` and `cargo bench`.
//!
//! Each *cell* maps `len` bytes of a [`Backing`] in one [`Mode`], then touches every 4 KiB
//! page once (a one-byte write, or a read for [`Mode::ReadFault`]), and reports the cost per
//! 4 KiB page of both phases together, the minor faults each phase took (from
//! `getrusage(RUSAGE_THREAD)`, so they prove whether POPULATE really pre-faulted), and the
//! spread over repetitions. Unmapping and freeing are not timed.
//!
//! The modes of one (backing, size) *group* run round-robin, one repetition of each per round,
//! starting from a different mode every round, so drift on a noisy machine (a VM, other jobs)
//! hits them alike instead of biasing whichever ran last. The eager and the lazy pool of one
//! size run as one group the same way ([`run_interleaved`]), so their ratio is fair too.
//!
//! | backing | what is mapped each repetition |
//! |---|---|
//! | [`Backing::Existing`] | a second mapping of a memfd whose pages were filled once, up front: the host stand-in for driver-owned buffers |
//! | [`Backing::Fresh`] | a new memfd: every page is allocated and zeroed by the fault |
//! | [`Backing::Hugetlb`] | a new `MFD_HUGETLB` memfd of 2 MiB pages, reserved for the run through `/proc/sys/vm/nr_hugepages` ([`HugePages`]) and given back after |
//! | [`Backing::UringPbuf`] | an io_uring provided-buffer ring the kernel allocated (`IOU_PBUF_RING_MMAP`), at `IORING_OFF_PBUF_RING`, encoded with the [`IO_URING` layout](crate::offset::IO_URING) |
//! | [`Backing::EagerPool`], [`Backing::LazyPool`] | a `/dev/pktmap` pool ([`Device`]) created once; eager pools insert every page at `mmap`, lazy ones from the fault handler ([`Target::with_device`], `pktmap bench --device`) |
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::bench::{Backing, Mode, Target};
//! let mut t = Target::new(Backing::Existing, 64 * 4096)?;
//! let s = t.run(Mode::WriteFault)?;
//! assert_eq!(s.pages, 64);
//! // A write to a page of a fresh mapping takes one fault, even if the page exists.
//! assert!(s.touch_faults >= 60);
//! let s = t.run(Mode::MadvPopulate)?;
//! assert!(s.touch_faults <= 4, "POPULATE pre-faulted every page");
//! # Ok(()) }
//! ```

mod sys;

#[cfg(feature = "cli")]
pub mod plot;

use crate::device::{Device, Fill};
#[cfg(feature = "io-uring")]
use crate::offset::{io_uring, IO_URING};
use crate::offset::{ResourceType, PKTMAP};
use crate::resource::{MapFlags, MapOptions, Mapping};
use pktmap_abi::ioctl::MAX_POOL_BYTES;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The page size the matrix reports costs per.
pub const PAGE: usize = 4096;
/// The hugetlb page size the matrix uses (the x86-64 default, `MFD_HUGE_2MB`).
pub const HUGE_PAGE: usize = 2 << 20;

/// What memory a cell maps.
///
/// # Examples
/// ```
/// use pktmap::bench::Backing;
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
    /// A `/dev/pktmap` pool whose pages the driver inserts at `mmap` time ([`Fill::Eager`]).
    EagerPool,
    /// A `/dev/pktmap` pool whose pages the driver's fault handler inserts ([`Fill::Lazy`]).
    LazyPool,
}

impl Backing {
    /// Every backing, in report order.
    pub const ALL: [Backing; 6] = [
        Backing::Existing,
        Backing::Fresh,
        Backing::Hugetlb,
        Backing::UringPbuf,
        Backing::EagerPool,
        Backing::LazyPool,
    ];

    /// Whether the backing is a `/dev/pktmap` pool (needs [`Target::with_device`]).
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::Backing;
    /// assert!(Backing::LazyPool.needs_device() && !Backing::Fresh.needs_device());
    /// ```
    pub fn needs_device(self) -> bool {
        matches!(self, Backing::EagerPool | Backing::LazyPool)
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
            Backing::LazyPool => "/dev/pktmap pool, pages inserted by the fault handler",
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
            Backing::EagerPool | Backing::LazyPool => {
                len > 0 && len % PAGE == 0 && len as u64 <= MAX_POOL_BYTES
            }
        }
    }

    /// The faults per 4 KiB page the driver's `.fault` handler serves for a pool backing in
    /// `mode`, (while mapping, while touching); `None` for backings that are not pools.
    ///
    /// An eager pool's pages are all inserted at `mmap`, so nothing faults. A lazy pool
    /// serves one fault per page: during `mmap` when populating (`MAP_POPULATE` and
    /// `MADV_POPULATE_WRITE` fault through `get_user_pages`), else on the first touch.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Mode};
    /// assert_eq!(Backing::EagerPool.served_faults(Mode::WriteFault), Some((0.0, 0.0)));
    /// assert_eq!(Backing::LazyPool.served_faults(Mode::WriteFault), Some((0.0, 1.0)));
    /// assert_eq!(Backing::LazyPool.served_faults(Mode::MadvPopulate), Some((1.0, 0.0)));
    /// assert_eq!(Backing::Fresh.served_faults(Mode::WriteFault), None);
    /// ```
    pub fn served_faults(self, mode: Mode) -> Option<(f64, f64)> {
        match (self, mode) {
            (Backing::EagerPool, _) => Some((0.0, 0.0)),
            (Backing::LazyPool, Mode::MapPopulate | Mode::MadvPopulate) => Some((1.0, 0.0)),
            (Backing::LazyPool, Mode::WriteFault | Mode::ReadFault) => Some((0.0, 1.0)),
            _ => None,
        }
    }

    /// A rough cost per 4 KiB page and repetition, setup and teardown included, in ns; only
    /// for [`Plan::estimate`].
    fn rough_ns_per_page(self) -> f64 {
        match self {
            Backing::Existing => 1_000.0,
            Backing::Fresh => 4_000.0,
            Backing::Hugetlb => 800.0,
            Backing::UringPbuf => 300.0,
            Backing::EagerPool => 500.0,
            Backing::LazyPool => 1_500.0,
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

/// How the pages of a cell's mapping are brought in.
///
/// # Examples
/// ```
/// use pktmap::bench::Mode;
/// assert_eq!(Mode::MadvPopulate.name(), "MADV_POPULATE_WRITE");
/// assert_eq!(Mode::from_key("write_fault"), Some(Mode::WriteFault));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `mmap(MAP_POPULATE)`: the kernel faults pages in (for reading, on a shared mapping)
    /// before `mmap` returns, and fails silently.
    MapPopulate,
    /// pktmap's [`MapFlags::POPULATE`]: `mmap` then `MADV_POPULATE_WRITE`, which reports errors.
    MadvPopulate,
    /// Plain `mmap`; the touch loop's writes fault each page in.
    WriteFault,
    /// Plain `mmap`; the touch loop reads instead, so read faults (with fault-around) map
    /// the pages.
    ReadFault,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 4] = [
        Mode::MapPopulate,
        Mode::MadvPopulate,
        Mode::WriteFault,
        Mode::ReadFault,
    ];

    /// The name tables and plots use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::MapPopulate => "MAP_POPULATE",
            Mode::MadvPopulate => "MADV_POPULATE_WRITE",
            Mode::WriteFault => "write fault-in",
            Mode::ReadFault => "read fault-in",
        }
    }

    /// The key JSON and the command line use.
    pub fn key(self) -> &'static str {
        match self {
            Mode::MapPopulate => "map_populate",
            Mode::MadvPopulate => "madv_populate_write",
            Mode::WriteFault => "write_fault",
            Mode::ReadFault => "read_fault",
        }
    }

    /// The mode whose [`key`](Self::key) is `key`.
    pub fn from_key(key: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Whether the touch loop writes (all modes but [`Mode::ReadFault`]).
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::Mode;
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
    /// use pktmap::bench::Sample;
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
/// use pktmap::bench::{Backing, Mode, Target};
/// let mut t = Target::new(Backing::Fresh, 16 * 4096)?;
/// let s = t.run(Mode::ReadFault)?;
/// assert_eq!(s.pages, 16);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Target {
    backing: Backing,
    len: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    Existing(OwnedFd),
    Fresh,
    Hugetlb,
    #[cfg(feature = "io-uring")]
    Uring(sys::PbufRing),
    /// The device, the pool id, and the device's STATE page mapped read-only, whose
    /// `faults_served` counter is read between the phases (a load, not a syscall).
    Pool(Device, u32, Mapping),
}

/// The byte offset of `faults_served` in the STATE page.
const FAULTS_SERVED: usize = std::mem::offset_of!(pktmap_abi::ioctl::State, faults_served);

fn os(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn memfd(len: usize, huge: bool) -> io::Result<OwnedFd> {
    let flags = if huge {
        MemfdFlags::CLOEXEC | MemfdFlags::HUGETLB | MemfdFlags::HUGE_2MB
    } else {
        MemfdFlags::CLOEXEC
    };
    let fd = memfd_create("pktmap-bench", flags).map_err(os)?;
    ftruncate(&fd, len as u64).map_err(os)?;
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

impl Target {
    /// Prepares `len` bytes of `backing`: fills the memfd of [`Backing::Existing`], registers
    /// the ring of [`Backing::UringPbuf`].
    ///
    /// # Errors
    /// `EINVAL` if the backing does not support `len` ([`Backing::supports`]); `ENOSYS` for
    /// io_uring when built without the `io-uring` feature; otherwise the errno of the setup.
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
                State::Existing(fd)
            }
            Backing::Fresh => State::Fresh,
            Backing::Hugetlb => State::Hugetlb,
            #[cfg(feature = "io-uring")]
            Backing::UringPbuf => State::Uring(sys::PbufRing::new(len)?),
            #[cfg(not(feature = "io-uring"))]
            Backing::UringPbuf => return Err(io::Error::from_raw_os_error(libc::ENOSYS)),
            Backing::EagerPool | Backing::LazyPool => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{backing} needs a device: use Target::with_device"),
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
    /// use pktmap::bench::{Backing, Mode, Target};
    /// let mut t = Target::with_device(Backing::LazyPool, 1 << 20, "/dev/pktmap".as_ref())?;
    /// assert!(t.run(Mode::MadvPopulate)?.touch_faults == 0);
    /// # Ok(()) }
    /// ```
    pub fn with_device(backing: Backing, len: usize, device: &Path) -> io::Result<Self> {
        let fill = match backing {
            Backing::EagerPool => Fill::Eager,
            Backing::LazyPool => Fill::Lazy,
            _ => return Self::new(backing, len),
        };
        if !backing.supports(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{backing} cannot map {len} bytes"),
            ));
        }
        let dev = Device::open_path(device)?;
        let count = u32::try_from(len / PAGE).map_err(io::Error::other)?;
        let pool = dev.create_pool(PAGE as u32, count, fill)?;
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
            state: State::Pool(dev, pool.id, state),
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
    /// use pktmap::bench::{Backing, Target};
    /// let t = Target::new(Backing::Fresh, 1 << 20)?;
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
            State::Existing(fd) => (fd.as_fd(), 0, &PKTMAP),
            State::Fresh | State::Hugetlb => {
                owned = memfd(self.len, matches!(self.state, State::Hugetlb))?;
                (owned.as_fd(), 0, &PKTMAP)
            }
            #[cfg(feature = "io-uring")]
            State::Uring(ring) => {
                let off = IO_URING
                    .encode(io_uring::PBUF_RING, u64::from(ring.bgid))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                (ring.fd.as_fd(), off, &IO_URING)
            }
            State::Pool(dev, id, _) => (dev.as_fd(), ResourceType::Pool.offset(*id), &PKTMAP),
        };
        let s0 = self.faults_served()?;
        let f0 = sys::minor_faults()?;
        let t0 = Instant::now();
        let m = match mode {
            Mode::MapPopulate => sys::map_populate(fd, offset, self.len)?,
            Mode::MadvPopulate => MapOptions::new(self.len)
                .flags(MapFlags::POPULATE)
                .layout(layout)
                .map(fd, offset)?,
            Mode::WriteFault | Mode::ReadFault => {
                MapOptions::new(self.len).layout(layout).map(fd, offset)?
            }
        };
        let map_ns = t0.elapsed().as_nanos() as u64;
        let f1 = sys::minor_faults()?;
        let s1 = self.faults_served()?;
        let t1 = Instant::now();
        std::hint::black_box(touch(&m, mode.writes())?);
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
            State::Pool(_, _, state) => {
                let mut word = [0u8; 8];
                state.read_at(FAULTS_SERVED, &mut word)?;
                Ok(u64::from_ne_bytes(word))
            }
            _ => Ok(0),
        }
    }
}

/// Median, extremes and count of a set of values.
///
/// # Examples
/// ```
/// use pktmap::bench::Stats;
/// let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
/// assert_eq!((s.n, s.median, s.min, s.max), (4, 2.5, 1.0, 10.0));
/// assert!(Stats::of(&[]).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// How many values.
    pub n: usize,
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Stats {
    /// The statistics of `values`, or `None` if there are none (NaNs sort last).
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            n,
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// The result of one cell: the samples' statistics per 4 KiB page.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// What was mapped.
    pub backing: Backing,
    /// The mapping length in bytes.
    pub len: usize,
    /// How pages were brought in.
    pub mode: Mode,
    /// Map + touch ns per page over the repetitions.
    pub ns_per_page: Stats,
    /// The median of the map phase alone, ns per page.
    pub map_ns_per_page: f64,
    /// The median of the touch phase alone, ns per page.
    pub touch_ns_per_page: f64,
    /// Minor faults per page in the map phase, over all repetitions.
    pub map_faults_per_page: f64,
    /// Minor faults per page in the touch phase, over all repetitions.
    pub touch_faults_per_page: f64,
    /// Faults the driver served per page while mapping and while touching, over all
    /// repetitions; `None` unless the backing is a `/dev/pktmap` pool.
    pub served_per_page: Option<(f64, f64)>,
}

impl Cell {
    /// Summarizes the samples of one cell; `None` without samples.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Cell, Mode, Sample};
    /// let s = |ns, f| Sample { pages: 10, touch_ns: ns, touch_faults: f, ..Sample::default() };
    /// let c = Cell::from_samples(Backing::Fresh, 40960, Mode::WriteFault,
    ///                            &[s(1000, 10), s(3000, 10), s(2000, 9)]).unwrap();
    /// assert_eq!(c.ns_per_page.median, 200.0);
    /// assert!((c.touch_faults_per_page - 29.0 / 30.0).abs() < 1e-9);
    /// assert_eq!(c.served_per_page, None); // only pool backings count the driver's faults
    /// ```
    pub fn from_samples(
        backing: Backing,
        len: usize,
        mode: Mode,
        samples: &[Sample],
    ) -> Option<Cell> {
        let per_page = |f: fn(&Sample) -> f64| -> Vec<f64> { samples.iter().map(f).collect() };
        let ns_per_page = Stats::of(&per_page(Sample::ns_per_page))?;
        let map = Stats::of(&per_page(|s| s.map_ns as f64 / s.pages.max(1) as f64))?;
        let touch = Stats::of(&per_page(|s| s.touch_ns as f64 / s.pages.max(1) as f64))?;
        let pages: u64 = samples.iter().map(|s| s.pages).sum::<u64>().max(1);
        let sum = |f: fn(&Sample) -> u64| samples.iter().map(f).sum::<u64>() as f64;
        Some(Cell {
            backing,
            len,
            mode,
            ns_per_page,
            map_ns_per_page: map.median,
            touch_ns_per_page: touch.median,
            map_faults_per_page: sum(|s| s.map_faults) / pages as f64,
            touch_faults_per_page: sum(|s| s.touch_faults) / pages as f64,
            served_per_page: backing.needs_device().then(|| {
                (
                    sum(|s| s.map_served) / pages as f64,
                    sum(|s| s.touch_served) / pages as f64,
                )
            }),
        })
    }

    /// 4 KiB pages per mapping.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Cell, Mode, Sample};
    /// let s = Sample { pages: 2, ..Sample::default() };
    /// let c = Cell::from_samples(Backing::Existing, 8192, Mode::ReadFault, &[s]).unwrap();
    /// assert_eq!(c.pages(), 2);
    /// ```
    pub fn pages(&self) -> u64 {
        (self.len / PAGE) as u64
    }
}

/// How long and how often each group runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The (backing, size) groups, in order.
    pub groups: Vec<(Backing, usize)>,
    /// The modes each group measures.
    pub modes: Vec<Mode>,
    /// Rounds (one repetition of every mode) run and thrown away first, per group.
    pub warmup: usize,
    /// At least this many measured rounds per group.
    pub min_rounds: usize,
    /// At most this many measured rounds per group.
    pub max_rounds: usize,
    /// Keep adding rounds (up to `max_rounds`) until a group has run this long.
    pub budget: Duration,
    /// The `/dev/pktmap` the pool backings map, if any.
    pub device: Option<PathBuf>,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

impl Plan {
    /// The default matrix: 4 KiB to 256 MiB for memfds (64 MiB is the probe's size), 2 MiB
    /// to 256 MiB for hugetlb,
    /// 4 KiB to 512 KiB (the largest ring) for io_uring, all four modes, at least 5 measured
    /// rounds and about 1.5 s per group.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::Plan;
    /// let p = Plan::standard();
    /// assert!(p.groups.iter().any(|&(_, len)| len == 256 << 20));
    /// assert!(p.estimate() < std::time::Duration::from_secs(120));
    /// ```
    pub fn standard() -> Plan {
        let memfd = [4 * KIB, 64 * KIB, 2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB];
        let mut groups = Vec::new();
        for backing in [Backing::Existing, Backing::Fresh] {
            groups.extend(memfd.iter().map(|&len| (backing, len)));
        }
        groups.extend([2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB].map(|len| (Backing::Hugetlb, len)));
        groups.extend([4 * KIB, 64 * KIB, PBUF_MAX_LEN].map(|len| (Backing::UringPbuf, len)));
        Plan {
            groups,
            modes: Mode::ALL.to_vec(),
            warmup: 1,
            min_rounds: 5,
            max_rounds: 1000,
            budget: Duration::from_millis(1500),
            device: None,
        }
    }

    /// A small, fast plan (for tests and `--quick`): up to 2 MiB, 3 rounds, 50 ms per group.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Plan};
    /// let p = Plan::quick().only(&[Backing::Fresh]);
    /// assert!(p.groups.iter().all(|&(b, _)| b == Backing::Fresh));
    /// assert_eq!(p.huge_pages_needed(), 0);
    /// assert_eq!(Plan::quick().huge_pages_needed(), 1);
    /// ```
    pub fn quick() -> Plan {
        let mut groups = Vec::new();
        for backing in [Backing::Existing, Backing::Fresh] {
            groups.extend([4 * KIB, 256 * KIB, 2 * MIB].map(|len| (backing, len)));
        }
        groups.push((Backing::Hugetlb, 2 * MIB));
        groups.extend([4 * KIB, 64 * KIB].map(|len| (Backing::UringPbuf, len)));
        Plan {
            groups,
            modes: Mode::ALL.to_vec(),
            warmup: 1,
            min_rounds: 3,
            max_rounds: 100,
            budget: Duration::from_millis(50),
            device: None,
        }
    }

    /// Adds eager and lazy pool groups of the `/dev/pktmap` at `device`, at the sizes the plan
    /// maps memfds at ([`Plan::standard`]: 4 KiB to 256 MiB; [`Plan::quick`]: up to 2 MiB),
    /// or at the standard sizes if it has no memfd group.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Plan};
    /// let p = Plan::quick().with_device_pools("/dev/pktmap".as_ref());
    /// assert!(p.groups.contains(&(Backing::EagerPool, 4096)));
    /// assert!(p.groups.iter().all(|&(_, len)| len <= 2 << 20));
    /// let p = Plan::standard().with_device_pools("/dev/pktmap".as_ref());
    /// assert!(p.groups.contains(&(Backing::LazyPool, 256 << 20)));
    /// ```
    pub fn with_device_pools(mut self, device: &Path) -> Plan {
        self.device = Some(device.to_path_buf());
        let mut sizes: Vec<usize> = Vec::new();
        for &(b, len) in &self.groups {
            if matches!(b, Backing::Existing | Backing::Fresh)
                && Backing::EagerPool.supports(len)
                && !sizes.contains(&len)
            {
                sizes.push(len);
            }
        }
        if sizes.is_empty() {
            sizes = vec![4 * KIB, 64 * KIB, 2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB];
        }
        for backing in [Backing::EagerPool, Backing::LazyPool] {
            self.groups.extend(sizes.iter().map(|&len| (backing, len)));
        }
        self
    }

    /// Keeps only the groups whose backing is in `backings`.
    pub fn only(mut self, backings: &[Backing]) -> Plan {
        self.groups.retain(|(b, _)| backings.contains(b));
        self
    }

    /// A rough wall-clock estimate of [`run`]: each group's budget, or its minimum rounds if
    /// they take longer, with a rough cost per page for each backing.
    pub fn estimate(&self) -> Duration {
        let secs: f64 = self
            .groups
            .iter()
            .map(|&(backing, len)| {
                let round = (len / PAGE) as f64
                    * backing.rough_ns_per_page()
                    * 1e-9
                    * self.modes.len() as f64
                    + 50e-6;
                let min = round * (self.warmup + self.min_rounds) as f64;
                let max = round * (self.warmup + self.max_rounds) as f64;
                self.budget.as_secs_f64().max(min).min(max)
            })
            .sum();
        Duration::from_secs_f64(secs)
    }

    /// The 2 MiB pages the largest hugetlb group needs at once.
    pub fn huge_pages_needed(&self) -> u64 {
        self.groups
            .iter()
            .filter(|(b, _)| *b == Backing::Hugetlb)
            .map(|&(_, len)| len.div_ceil(HUGE_PAGE) as u64)
            .max()
            .unwrap_or(0)
    }
}

/// Runs every mode of one prepared target round-robin, as [`run`] does for each group.
///
/// `stop` is polled between repetitions; when it returns `true` the group ends with
/// `ErrorKind::Interrupted`.
///
/// # Errors
/// The first repetition's error, or `Interrupted`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::bench::{run_group, Backing, Mode, Target};
/// use std::time::Duration;
/// let mut t = Target::new(Backing::Existing, 8 * 4096)?;
/// let cells = run_group(&mut t, &[Mode::WriteFault, Mode::ReadFault], 0, 3, 3,
///                       Duration::ZERO, &mut || false)?;
/// assert_eq!(cells.len(), 2);
/// assert_eq!(cells[0].ns_per_page.n, 3);
/// # Ok(()) }
/// ```
pub fn run_group(
    target: &mut Target,
    modes: &[Mode],
    warmup: usize,
    min_rounds: usize,
    max_rounds: usize,
    budget: Duration,
    stop: &mut dyn FnMut() -> bool,
) -> io::Result<Vec<Cell>> {
    run_interleaved(
        std::slice::from_mut(target),
        modes,
        warmup,
        min_rounds,
        max_rounds,
        budget,
        stop,
    )
}

/// As [`run_group`], for several prepared targets at once: every round runs every (target,
/// mode) pair once, starting from a different pair each round, so drift hits the targets
/// alike and their ratio can be trusted. [`run`] measures an eager and a lazy pool of the same
/// size this way. The cells come target by target, mode by mode.
///
/// # Errors
/// The first repetition's error, or `Interrupted`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::bench::{run_interleaved, Backing, Mode, Target};
/// use std::time::Duration;
/// let mut ts = [Target::new(Backing::Existing, 4 * 4096)?, Target::new(Backing::Fresh, 4 * 4096)?];
/// let cells = run_interleaved(&mut ts, &[Mode::WriteFault], 0, 2, 2, Duration::ZERO,
///                             &mut || false)?;
/// assert_eq!(cells.iter().map(|c| c.backing).collect::<Vec<_>>(),
///            [Backing::Existing, Backing::Fresh]);
/// # Ok(()) }
/// ```
pub fn run_interleaved(
    targets: &mut [Target],
    modes: &[Mode],
    warmup: usize,
    min_rounds: usize,
    max_rounds: usize,
    budget: Duration,
    stop: &mut dyn FnMut() -> bool,
) -> io::Result<Vec<Cell>> {
    let pairs = targets.len() * modes.len();
    let mut samples: Vec<Vec<Sample>> = (0..pairs)
        .map(|_| Vec::with_capacity(max_rounds.min(4096)))
        .collect();
    let start = Instant::now();
    let mut round: usize = 0;
    loop {
        let measured = round.saturating_sub(warmup);
        if pairs == 0
            || measured >= max_rounds.max(1)
            || (measured >= min_rounds.max(1) && start.elapsed() >= budget)
        {
            break;
        }
        for k in 0..pairs {
            if stop() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let i = (round + k) % pairs;
            let s = targets[i / modes.len()].run(modes[i % modes.len()])?;
            if round >= warmup {
                samples[i].push(s);
            }
        }
        round += 1;
    }
    Ok(samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let t = &targets[i / modes.len()];
            Cell::from_samples(t.backing, t.len, modes[i % modes.len()], s)
        })
        .collect())
}

/// Where a run is, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Groups finished (or skipped).
    pub done: usize,
    /// Groups in the plan.
    pub total: usize,
    /// The group starting now, if any.
    pub current: Option<(Backing, usize)>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// The plan's estimate.
    pub estimate: Duration,
}

impl Progress {
    /// One line: a bar `width` characters wide, the count, the group, elapsed and estimate.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Progress};
    /// use std::time::Duration;
    /// let p = Progress { done: 1, total: 4, current: Some((Backing::Fresh, 2 << 20)),
    ///                    elapsed: Duration::from_secs(3), estimate: Duration::from_secs(12) };
    /// assert_eq!(p.line(8), "[##------] 1/4 fresh 2 MiB  3s / ~12s");
    /// ```
    pub fn line(&self, width: usize) -> String {
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        let mut s = String::from("[");
        s.extend(std::iter::repeat_n('#', filled));
        s.extend(std::iter::repeat_n('-', width - filled.min(width)));
        let _ = write!(s, "] {}/{}", self.done, self.total);
        if let Some((b, len)) = self.current {
            let _ = write!(s, " {b} {}", size_name(len));
        }
        let _ = write!(
            s,
            "  {}s / ~{}s",
            self.elapsed.as_secs(),
            self.estimate.as_secs()
        );
        s
    }
}

/// A size in the largest binary unit that divides it: `4 KiB`, `2 MiB`, `1536 B`.
///
/// # Examples
/// ```
/// assert_eq!(pktmap::bench::size_name(256 << 20), "256 MiB");
/// assert_eq!(pktmap::bench::size_name(512 << 10), "512 KiB");
/// ```
pub fn size_name(len: usize) -> String {
    for (unit, name) in [(1 << 30, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if len >= unit && len % unit == 0 {
            return format!("{} {name}", len / unit);
        }
    }
    format!("{len} B")
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// `/proc/cpuinfo`'s first `model name`.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// `MemTotal`, in bytes.
    pub memory: u64,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// Whether `/sys/class/dmi/id/sys_vendor` or cpuinfo's `hypervisor` flag says VM.
    pub virtualized: bool,
    /// The 1-minute load average when the run started, and when it ended.
    pub load: (f64, f64),
    /// The UTC date the run started, `YYYY-MM-DD`.
    pub date: String,
}

impl Machine {
    /// Reads what `/proc` says about this machine (fields it cannot read stay empty).
    ///
    /// # Examples
    /// ```
    /// let m = pktmap::bench::Machine::read();
    /// assert!(m.cores >= 1);
    /// assert_eq!(m.date.len(), 10);
    /// ```
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let virtualized = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| meminfo_field(&s, "MemTotal"))
            .map_or(0, |kib| kib * 1024);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            virtualized,
            load: (load_average(), 0.0),
            date: utc_date(std::time::SystemTime::now()),
        }
    }

    /// One line: `Intel Xeon, 2 cores, 24 GiB, Linux 6.18 (VM), load 0.5→0.7, 2026-11-22`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::Machine;
    /// let s = Machine::read().summary();
    /// assert!(s.contains(" cores, "));
    /// let guest = Machine { cores: 2, memory: 512 << 20, ..Machine::default() };
    /// assert!(guest.summary().contains("2 cores, 512 MiB,"));
    /// ```
    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {}, Linux {}{}, load {:.2}→{:.2}, {}",
            if self.cpu.is_empty() { "?" } else { &self.cpu },
            self.cores,
            // A small VM (the QEMU guest: 512 MiB) in MiB, not as "0 GiB".
            if self.memory >= 1 << 30 {
                format!("{} GiB", (self.memory + (1 << 29)) >> 30)
            } else {
                format!("{} MiB", (self.memory + (1 << 19)) >> 20)
            },
            self.kernel,
            if self.virtualized { " (VM)" } else { "" },
            self.load.0,
            self.load.1,
            self.date
        )
    }
}

/// The 1-minute load average from `/proc/loadavg` (0 if unreadable).
///
/// # Examples
/// ```
/// assert!(pktmap::bench::load_average() >= 0.0);
/// ```
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// `YYYY-MM-DD` (UTC) of a time, by the civil-from-days algorithm (no calendar crate).
///
/// # Examples
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(pktmap::bench::utc_date(t), "2023-11-14");
/// ```
pub fn utc_date(t: std::time::SystemTime) -> String {
    let days = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A temporary increase of `/proc/sys/vm/nr_hugepages`, put back on drop (and by the signal
/// handler [`run`] installs, if the run is interrupted).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::bench::HugePages;
/// let dir = std::env::temp_dir().join(format!("pktmap-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let sysctl = dir.join("nr_hugepages");
/// std::fs::write(&sysctl, "3\n")?;
/// let r = HugePages::reserve_at(&sysctl, 5)?;
/// assert_eq!(std::fs::read_to_string(&sysctl)?.trim(), "8");
/// drop(r);
/// assert_eq!(std::fs::read_to_string(&sysctl)?.trim(), "3");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HugePages {
    path: PathBuf,
    previous: u64,
    reserved: u64,
    signal_restores: bool,
}

impl HugePages {
    /// The sysctl that sets the hugetlb pool size.
    pub const SYSCTL: &'static str = "/proc/sys/vm/nr_hugepages";

    /// Makes at least `pages` 2 MiB pages free in the hugetlb pool, growing
    /// [`SYSCTL`](Self::SYSCTL) by what is missing; the old value comes back on drop or
    /// signal.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::bench::{free_huge_pages, HugePages};
    /// let r = HugePages::reserve(128)?; // needs root
    /// assert!(free_huge_pages() >= 128, "the kernel may find fewer contiguous pages");
    /// r.restore()?; // or drop it
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The error reading or writing the sysctl (`EACCES` without root).
    pub fn reserve(pages: u64) -> io::Result<HugePages> {
        let free = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| meminfo_field(&s, "HugePages_Free"))
            .unwrap_or(0);
        let mut r = Self::reserve_at(Path::new(Self::SYSCTL), pages.saturating_sub(free))?;
        if r.reserved > 0 {
            r.signal_restores = true;
            sys::set_hugepages_restore(Some(r.previous));
        }
        Ok(r)
    }

    /// As [`reserve`](Self::reserve), but adds exactly `extra` pages to the number in the file
    /// at `path` (no signal restore; for tests).
    ///
    /// # Errors
    /// The error reading or writing `path`, or `InvalidData` if it holds no number.
    pub fn reserve_at(path: &Path, extra: u64) -> io::Result<HugePages> {
        let previous = read_number(path)?;
        if extra > 0 {
            std::fs::write(path, format!("{}\n", previous + extra))?;
        }
        Ok(HugePages {
            path: path.to_path_buf(),
            previous,
            reserved: extra,
            signal_restores: false,
        })
    }

    /// The value before the reservation.
    pub fn previous(&self) -> u64 {
        self.previous
    }

    /// How many pages the pool grew by (the kernel may have found fewer: see
    /// [`free_huge_pages`]).
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Puts the previous value back now and reports the error `Drop` would ignore.
    ///
    /// # Errors
    /// The error writing the sysctl.
    pub fn restore(mut self) -> io::Result<()> {
        self.restore_inner()
    }

    fn restore_inner(&mut self) -> io::Result<()> {
        if self.signal_restores {
            sys::set_hugepages_restore(None);
            self.signal_restores = false;
        }
        if self.reserved == 0 {
            return Ok(());
        }
        self.reserved = 0;
        std::fs::write(&self.path, format!("{}\n", self.previous))
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        // Drop cannot report; `restore` does.
        let _ = self.restore_inner();
    }
}

fn read_number(path: &Path) -> io::Result<u64> {
    std::fs::read_to_string(path)?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// While alive, `SIGINT` and `SIGTERM` put back a [`HugePages`] reservation and end the
/// process (status 130); dropping it restores the previous handlers.
///
/// For harnesses that cannot stop between repetitions (criterion); [`run`] installs its own
/// handler that stops the run instead.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let _guard = pktmap::bench::ExitOnSignal::install()?;
/// // ... reserve hugetlb pages and measure ...
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExitOnSignal {
    _handler: sys::Interrupt,
}

impl ExitOnSignal {
    /// Installs the handler.
    ///
    /// # Errors
    /// The errno of `sigaction`.
    pub fn install() -> io::Result<ExitOnSignal> {
        sys::Interrupt::install(true).map(|h| ExitOnSignal { _handler: h })
    }
}

/// `HugePages_Free` from `/proc/meminfo`: 2 MiB pages free in the hugetlb pool.
///
/// # Examples
/// ```
/// let free = pktmap::bench::free_huge_pages(); // 0 unless the pool was grown
/// # let _ = free;
/// ```
pub fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_field(&s, "HugePages_Free"))
        .unwrap_or(0)
}

/// One check of [`Report::fault_checks`].
#[derive(Clone, Debug, PartialEq)]
pub struct FaultCheck {
    /// What was expected of which cell, e.g. `pktmap-lazy 64 KiB write fault-in: ...`.
    pub name: String,
    /// Whether the cell met it.
    pub ok: bool,
    /// What was measured.
    pub detail: String,
}

/// A whole run: the machine, every measured cell and every skipped group with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The measured cells, group by group, mode by mode.
    pub cells: Vec<Cell>,
    /// Groups that could not run: (backing, size, why).
    pub skipped: Vec<(Backing, usize, String)>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The plan's estimate.
    pub estimate: Duration,
}

/// Runs a plan: reserves hugetlb pages if it needs them (restoring the setting after, even on
/// error or `SIGINT`), prepares each group and measures it with [`run_group`], calling
/// `progress` before each group and once at the end. A group whose setup fails (no root for
/// hugetlb, io_uring disabled) is skipped with its reason. An eager pool group runs
/// interleaved with the lazy pool group of the same size ([`run_interleaved`]; both pools
/// exist at once); the cells still come in the plan's order.
///
/// # Errors
/// `Interrupted` on `SIGINT`/`SIGTERM`; otherwise the first error of a measured repetition.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::bench::{run, Backing, Plan};
/// let plan = Plan { groups: vec![(Backing::Existing, 4 * 4096)], ..Plan::quick() };
/// let report = run(&plan, &mut |_| {})?;
/// assert_eq!(report.cells.len(), 4);
/// # Ok(()) }
/// ```
pub fn run(plan: &Plan, progress: &mut dyn FnMut(&Progress)) -> io::Result<Report> {
    let mut machine = Machine::read();
    let start = Instant::now();
    let estimate = plan.estimate();
    let interrupt = sys::Interrupt::install(false)?;
    let mut skipped = Vec::new();
    let needed = plan.huge_pages_needed();
    let mut huge_err = None;
    let _reservation = if needed > 0 {
        match HugePages::reserve(needed) {
            Ok(r) => Some(r),
            Err(e) => {
                huge_err = Some(format!(
                    "cannot reserve hugetlb pages in {}: {e}",
                    HugePages::SYSCTL
                ));
                None
            }
        }
    } else {
        None
    };
    let mut cells = Vec::new();
    let total = plan.groups.len();
    // Groups measured together with an earlier one (the lazy half of an eager/lazy pair).
    let mut taken = vec![false; total];
    for (done, &(backing, len)) in plan.groups.iter().enumerate() {
        if taken[done] {
            continue;
        }
        progress(&Progress {
            done,
            total,
            current: Some((backing, len)),
            elapsed: start.elapsed(),
            estimate,
        });
        if interrupt.raised() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        if backing == Backing::Hugetlb {
            if let Some(e) = &huge_err {
                skipped.push((backing, len, e.clone()));
                continue;
            }
            let free = free_huge_pages();
            if (len / HUGE_PAGE) as u64 > free {
                skipped.push((
                    backing,
                    len,
                    format!("only {free} free 2 MiB hugetlb pages"),
                ));
                continue;
            }
        }
        let prepare = |backing: Backing| match (&plan.device, backing.needs_device()) {
            (Some(dev), true) => Target::with_device(backing, len, dev),
            _ => Target::new(backing, len),
        };
        // An eager pool runs interleaved with the lazy pool of the same size, if planned.
        let partner = plan
            .groups
            .iter()
            .position(|&g| g == (Backing::LazyPool, len))
            .filter(|&j| backing == Backing::EagerPool && j > done);
        let mut targets = Vec::new();
        for b in std::iter::once(backing).chain(partner.map(|_| Backing::LazyPool)) {
            match prepare(b) {
                Ok(t) => targets.push(t),
                Err(e) => skipped.push((b, len, format!("setup failed: {e}"))),
            }
        }
        if let Some(j) = partner {
            taken[j] = true;
        }
        let mut stop = || interrupt.raised();
        cells.extend(run_interleaved(
            &mut targets,
            &plan.modes,
            plan.warmup,
            plan.min_rounds,
            plan.max_rounds,
            plan.budget,
            &mut stop,
        )?);
    }
    progress(&Progress {
        done: total,
        total,
        current: None,
        elapsed: start.elapsed(),
        estimate,
    });
    // In the plan's order (a pair's lazy cells were measured with the eager ones).
    let order = |b: Backing, len: usize| plan.groups.iter().position(|&g| g == (b, len));
    cells.sort_by_key(|c| order(c.backing, c.len));
    skipped.sort_by_key(|(b, len, _)| order(*b, *len));
    machine.load.1 = load_average();
    Ok(Report {
        machine,
        cells,
        skipped,
        elapsed: start.elapsed(),
        estimate,
    })
}

/// How [`Report`] lays out a table: fixed-width text columns, or Markdown.
#[derive(Clone, Copy)]
enum Grid {
    Text(usize),
    Markdown,
}

/// `map / touch` minor faults per page of a cell.
fn faults_text(c: &Cell) -> String {
    format!(
        "{:.3} / {:.3}",
        c.map_faults_per_page, c.touch_faults_per_page
    )
}

impl Report {
    /// The cell of (backing, size, mode), if measured.
    pub fn cell(&self, backing: Backing, len: usize, mode: Mode) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.backing == backing && c.len == len && c.mode == mode)
    }

    /// The (backing, size) groups measured, in order.
    pub fn groups(&self) -> Vec<(Backing, usize)> {
        let mut g: Vec<(Backing, usize)> = Vec::new();
        for c in &self.cells {
            if !g.contains(&(c.backing, c.len)) {
                g.push((c.backing, c.len));
            }
        }
        g
    }

    /// The modes measured, in order.
    pub fn modes(&self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|&m| self.cells.iter().any(|c| c.mode == m))
            .collect()
    }

    /// Checks the fault accounting of every `/dev/pktmap` pool cell against
    /// [`Backing::served_faults`]: the faults the driver served per page in each phase must be
    /// exactly as expected, and the thread's minor faults per phase within 0.1 of them (each
    /// served fault is one minor fault; nothing else should fault). A skipped pool group is a
    /// failed check, and with no pool cell at all the result is one failed check, so a run
    /// that measured nothing cannot pass.
    ///
    /// No timing is checked: the numbers are counts.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Backing, Cell, Machine, Mode, Report, Sample};
    /// let s = Sample { pages: 16, touch_faults: 16, touch_served: 16, ..Sample::default() };
    /// let cell = Cell::from_samples(Backing::LazyPool, 65536, Mode::WriteFault, &[s]).unwrap();
    /// let mut r = Report { machine: Machine::default(), cells: vec![cell], skipped: vec![],
    ///                      elapsed: Default::default(), estimate: Default::default() };
    /// let checks = r.fault_checks();
    /// assert!(checks.len() == 1 && checks[0].ok, "{checks:?}");
    /// r.cells.clear();
    /// assert!(!r.fault_checks()[0].ok);
    /// ```
    pub fn fault_checks(&self) -> Vec<FaultCheck> {
        let mut out = Vec::new();
        for c in &self.cells {
            let Some((want_map, want_touch)) = c.backing.served_faults(c.mode) else {
                continue;
            };
            let (map, touch) = c.served_per_page.unwrap_or((f64::NAN, f64::NAN));
            let near = |x: f64, want: f64, tol: f64| (x - want).abs() <= tol;
            let ok = near(map, want_map, 1e-9)
                && near(touch, want_touch, 1e-9)
                && near(c.map_faults_per_page, want_map, 0.1)
                && near(c.touch_faults_per_page, want_touch, 0.1);
            let expect = match (want_map > 0.0, want_touch > 0.0) {
                (false, false) => "no fault while mapping or touching",
                (true, false) => "1 fault per page served while mapping, none on touch",
                (false, true) => "no fault while mapping, 1 per page served on touch",
                (true, true) => "faults while mapping and touching",
            };
            out.push(FaultCheck {
                name: format!("{} {} {}: {expect}", c.backing, size_name(c.len), c.mode),
                ok,
                detail: format!(
                    "per page, mapping / touching: served {map:.3} / {touch:.3}, \
                     minor {:.3} / {:.3}, {} reps",
                    c.map_faults_per_page, c.touch_faults_per_page, c.ns_per_page.n
                ),
            });
        }
        for (b, len, why) in self.skipped.iter().filter(|(b, _, _)| b.needs_device()) {
            out.push(FaultCheck {
                name: format!("{b} {} measured", size_name(*len)),
                ok: false,
                detail: why.clone(),
            });
        }
        if out.is_empty() {
            out.push(FaultCheck {
                name: "pool groups measured (pktmap-eager, pktmap-lazy)".into(),
                ok: false,
                detail: "no pool cell in the report".into(),
            });
        }
        out
    }

    /// The tables only a `--device` run has: the faults the driver served, and eager against
    /// lazy. Empty without pool cells.
    fn device_tables(&self) -> Vec<Table> {
        let modes = self.modes();
        let mut tables = Vec::new();
        let pools: Vec<(Backing, usize)> = self
            .groups()
            .into_iter()
            .filter(|(b, _)| b.needs_device())
            .collect();
        if pools.is_empty() {
            return tables;
        }
        let mut served = Table {
            caption: "faults the driver served per 4 KiB page (STATE faults_served): while mapping / while touching".into(),
            header: ["backing", "size"].map(String::from).to_vec(),
            rows: Vec::new(),
        };
        served
            .header
            .extend(modes.iter().map(|m| m.name().to_string()));
        for &(b, len) in &pools {
            let mut row = vec![b.name().to_string(), size_name(len)];
            row.extend(modes.iter().map(|&m| {
                match self.cell(b, len, m).and_then(|c| c.served_per_page) {
                    Some((map, touch)) => format!("{map:.3} / {touch:.3}"),
                    None => "-".into(),
                }
            }));
            served.rows.push(row);
        }
        tables.push(served);
        let mut vs = Table {
            caption:
                "pktmap-eager ÷ pktmap-lazy: median ns per page (map + touch), same size and mode"
                    .into(),
            header: vec!["size".into()],
            rows: Vec::new(),
        };
        vs.header.extend(modes.iter().map(|m| m.name().to_string()));
        for &(b, len) in &pools {
            if b != Backing::EagerPool || !pools.contains(&(Backing::LazyPool, len)) {
                continue;
            }
            let mut row = vec![size_name(len)];
            row.extend(modes.iter().map(|&m| {
                match (
                    self.cell(Backing::EagerPool, len, m),
                    self.cell(Backing::LazyPool, len, m),
                ) {
                    (Some(e), Some(l)) if l.ns_per_page.median > 0.0 => {
                        format!("{:.2}×", e.ns_per_page.median / l.ns_per_page.median)
                    }
                    _ => "-".into(),
                }
            }));
            vs.rows.push(row);
        }
        if !vs.rows.is_empty() {
            tables.push(vs);
        }
        tables
    }

    /// A cell's median divided by the write fault-in median of its group (the baseline).
    pub fn ratio(&self, cell: &Cell) -> Option<f64> {
        let base = self.cell(cell.backing, cell.len, Mode::WriteFault)?;
        (base.ns_per_page.median > 0.0).then(|| cell.ns_per_page.median / base.ns_per_page.median)
    }

    /// One table of the report: a caption, a row per (backing, size), a column per mode with
    /// `text(cell)` in it (a dash where the cell was not measured).
    fn grid(&self, style: Grid, caption: &str, text: impl Fn(&Cell) -> String) -> String {
        let modes = self.modes();
        let mut out = String::new();
        match style {
            Grid::Text(width) => {
                let _ = write!(out, "{caption}\n{:<14}{:>8}", "backing", "size");
                for m in &modes {
                    let _ = write!(out, "  {:<width$}", m.name());
                }
            }
            Grid::Markdown => {
                let _ = write!(out, "{caption}\n\n| backing | size |");
                for m in &modes {
                    let _ = write!(out, " {} |", m.name());
                }
                out.push_str("\n|---|---:|");
                for _ in &modes {
                    out.push_str("---:|");
                }
            }
        }
        out.push('\n');
        for (backing, len) in self.groups() {
            let (b, size) = (backing.name(), size_name(len));
            match style {
                Grid::Text(_) => _ = write!(out, "{b:<14}{size:>8}"),
                Grid::Markdown => _ = write!(out, "| {b} | {size} |"),
            }
            for &m in &modes {
                let t = self.cell(backing, len, m).map_or_else(|| "–".into(), &text);
                match style {
                    Grid::Text(width) => _ = write!(out, "  {t:<width$}"),
                    Grid::Markdown => _ = write!(out, " {t} |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// `median [min–max] ratio` of a cell, the median wrapped in `strong` and the range in
    /// `open`/`close`.
    fn ns_text(&self, c: &Cell, strong: &str, open: &str, close: &str) -> String {
        format!(
            "{strong}{}{strong} {open}{}–{}{close} {}",
            num(c.ns_per_page.median),
            num(c.ns_per_page.min),
            num(c.ns_per_page.max),
            self.ratio(c).map_or(String::new(), |r| format!("{r:.2}×"))
        )
    }

    /// The text report: machine, a table of medians per 4 KiB page with min–max and the ratio
    /// to write fault-in, a table of minor faults per page (map phase / touch phase), and the
    /// skipped groups.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::bench::{run, Backing, Mode, Plan};
    /// let plan = Plan { groups: vec![(Backing::Existing, 8 * 4096)], ..Plan::quick() };
    /// let r = run(&plan, &mut |_| {})?;
    /// assert_eq!(r.groups(), vec![(Backing::Existing, 8 * 4096)]);
    /// assert_eq!(r.modes().len(), 4);
    /// let write = r.cell(Backing::Existing, 8 * 4096, Mode::WriteFault).unwrap();
    /// assert_eq!(r.ratio(write), Some(1.0));
    /// assert!(r.table().contains("write fault-in"));
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "machine: {}", self.machine.summary());
        out.push_str(&self.grid(
            Grid::Text(28),
            "\nns per 4 KiB page (map + touch every page): median [min–max], ratio to write fault-in",
            |c| self.ns_text(c, "", "[", "]"),
        ));
        out.push_str(&self.grid(
            Grid::Text(20),
            "\nminor faults per 4 KiB page (getrusage), while mapping / while touching",
            faults_text,
        ));
        for t in self.device_tables() {
            out.push_str(&t.text());
        }
        for (b, len, why) in &self.skipped {
            let _ = writeln!(out, "skipped {b} {}: {why}", size_name(*len));
        }
        let _ = writeln!(
            out,
            "\n{} cells in {:.1} s (estimate {:.0} s)",
            self.cells.len(),
            self.elapsed.as_secs_f64(),
            self.estimate.as_secs_f64()
        );
        out
    }

    /// The tables as Markdown, for the README: ns per 4 KiB page (median, min–max, ratio to
    /// write fault-in) and minor faults per page (map / touch); with `/dev/pktmap` pools also
    /// the faults the driver served per page and the eager ÷ lazy ratios.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Machine, Report};
    /// let r = Report { machine: Machine::default(), cells: vec![], skipped: vec![],
    ///                  elapsed: Default::default(), estimate: Default::default() };
    /// assert!(r.markdown().contains("| backing | size |"));
    /// ```
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.grid(
            Grid::Markdown,
            "ns per 4 KiB page, map + touch every page: **median** (min–max), ratio to write fault-in",
            |c| self.ns_text(c, "**", "(", ")"),
        ));
        out.push('\n');
        out.push_str(&self.grid(
            Grid::Markdown,
            "minor faults per 4 KiB page (getrusage): while mapping / while touching",
            faults_text,
        ));
        for t in self.device_tables() {
            out.push_str(&t.markdown());
        }
        out
    }

    /// The report as JSON (an object with `machine`, `cells`, `skipped`, `elapsed_s`); pool cells
    /// also carry `map_served_per_page` and `touch_served_per_page`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::bench::{Machine, Report};
    /// let r = Report { machine: Machine::default(), cells: vec![], skipped: vec![],
    ///                  elapsed: Default::default(), estimate: Default::default() };
    /// assert!(r.to_json().starts_with("{\"machine\":{"));
    /// ```
    pub fn to_json(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"machine\":{{\"cpu\":{},\"cores\":{},\"memory\":{},\"kernel\":{},\"virtualized\":{},\"load_start\":{},\"load_end\":{},\"date\":{}}}",
            json_str(&m.cpu),
            m.cores,
            m.memory,
            json_str(&m.kernel),
            m.virtualized,
            json_num(m.load.0),
            json_num(m.load.1),
            json_str(&m.date)
        );
        s.push_str(",\"cells\":[");
        for (i, c) in self.cells.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"backing\":{},\"bytes\":{},\"pages\":{},\"mode\":{},\"reps\":{},\"ns_per_page\":{{\"median\":{},\"min\":{},\"max\":{}}},\"map_ns_per_page\":{},\"touch_ns_per_page\":{},\"map_faults_per_page\":{},\"touch_faults_per_page\":{},{}\"ratio_to_write_fault\":{}}}",
                json_str(c.backing.name()),
                c.len,
                c.pages(),
                json_str(c.mode.key()),
                c.ns_per_page.n,
                json_num(c.ns_per_page.median),
                json_num(c.ns_per_page.min),
                json_num(c.ns_per_page.max),
                json_num(c.map_ns_per_page),
                json_num(c.touch_ns_per_page),
                json_num(c.map_faults_per_page),
                json_num(c.touch_faults_per_page),
                c.served_per_page.map_or(String::new(), |(map, touch)| format!(
                    "\"map_served_per_page\":{},\"touch_served_per_page\":{},",
                    json_num(map),
                    json_num(touch)
                )),
                self.ratio(c).map_or("null".into(), json_num)
            );
        }
        s.push_str("],\"skipped\":[");
        for (i, (b, len, why)) in self.skipped.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"backing\":{},\"bytes\":{len},\"reason\":{}}}",
                json_str(b.name()),
                json_str(why)
            );
        }
        let _ = write!(
            s,
            "],\"elapsed_s\":{},\"estimate_s\":{}}}",
            json_num(self.elapsed.as_secs_f64()),
            json_num(self.estimate.as_secs_f64())
        );
        s
    }
}

/// A table of [`Report::device_tables`]: its caption, column names and rows of text; the
/// first column is text, the others numbers.
struct Table {
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Fixed-width text, left-aligned, after a blank line and the caption.
    fn text(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w - cell.chars().count();
                if i > 0 {
                    l.push_str("  ");
                }
                l.push_str(cell);
                l.extend(std::iter::repeat_n(' ', pad));
            }
            l.truncate(l.trim_end().len());
            l.push('\n');
            l
        };
        let mut out = format!("\n{}\n", self.caption);
        out.push_str(&line(&self.header));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// Markdown, after a blank line and the caption.
    fn markdown(&self) -> String {
        let mut out = format!("\n{}\n\n|", self.caption);
        for h in &self.header {
            let _ = write!(out, " {h} |");
        }
        out.push_str("\n|---|");
        for _ in 1..self.header.len() {
            out.push_str("---:|");
        }
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for cell in row {
                let cell = if cell == "-" { "–" } else { cell };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out
    }
}

/// A number for the tables: no decimals from 100 up, one below.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A JSON number (`null` for NaN and infinities, which JSON lacks).
///
/// # Examples
/// ```
/// use pktmap::bench::json_num;
/// assert_eq!((json_num(0.5), json_num(3.0), json_num(f64::INFINITY)), ("0.5".into(), "3".into(), "null".into()));
/// ```
pub fn json_num(x: f64) -> String {
    if x.is_finite() {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.into()
        }
    } else {
        "null".into()
    }
}

/// A JSON string literal, escaped.
///
/// # Examples
/// ```
/// assert_eq!(pktmap::bench::json_str("a\"b\\\n"), r#""a\"b\\\n""#);
/// ```
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        assert_eq!(json_num(1.5), "1.5");
        assert_eq!(json_num(2.0), "2");
        assert_eq!(json_num(0.0), "0");
        assert_eq!(json_num(f64::NAN), "null");
        assert_eq!(json_num(0.06251), "0.0625");
    }

    #[test]
    fn sizes_per_backing() {
        assert!(Backing::UringPbuf.supports(PBUF_MAX_LEN));
        assert!(!Backing::UringPbuf.supports(2 * PBUF_MAX_LEN));
        assert!(!Backing::UringPbuf.supports(3 * PAGE));
        assert!(!Backing::Existing.supports(100));
        assert!(Target::new(Backing::Hugetlb, PAGE).is_err());
    }

    fn report(cells: Vec<Cell>) -> Report {
        Report {
            machine: Machine::default(),
            cells,
            skipped: vec![],
            elapsed: Duration::ZERO,
            estimate: Duration::ZERO,
        }
    }

    /// A pool cell of 16 pages whose repetitions took these faults (minor = served).
    fn pool_cell(backing: Backing, mode: Mode, map: u64, touch: u64) -> Cell {
        let s = Sample {
            pages: 16,
            map_ns: 1600,
            touch_ns: 1600,
            map_faults: map,
            touch_faults: touch,
            map_served: map,
            touch_served: touch,
        };
        Cell::from_samples(backing, 16 * PAGE, mode, &[s, s]).unwrap()
    }

    #[test]
    fn fault_checks_follow_the_driver_contract() {
        let good = vec![
            pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0),
            pool_cell(Backing::EagerPool, Mode::MadvPopulate, 0, 0),
            pool_cell(Backing::LazyPool, Mode::MapPopulate, 16, 0),
            pool_cell(Backing::LazyPool, Mode::ReadFault, 0, 16),
        ];
        let checks = report(good.clone()).fault_checks();
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks[3]
            .name
            .starts_with("pktmap-lazy 64 KiB read fault-in: "));

        // Each way the accounting can be wrong fails exactly its cell.
        let bad = [
            pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 16), // eager faulted
            pool_cell(Backing::LazyPool, Mode::MadvPopulate, 0, 16), // populate did nothing
            pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 15),  // one page missed
        ];
        for cell in bad {
            let checks = report(vec![good[0].clone(), cell.clone()]).fault_checks();
            assert!(checks[0].ok && !checks[1].ok, "{cell:?}: {checks:?}");
        }
        // A stray minor fault is tolerated; a stray served fault is not.
        let mut stray = pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 16);
        stray.touch_faults_per_page += 0.05;
        assert!(report(vec![stray.clone()]).fault_checks()[0].ok);
        stray.served_per_page = Some((0.0, 1.05));
        assert!(!report(vec![stray.clone()]).fault_checks()[0].ok);
        stray.served_per_page = None;
        assert!(!report(vec![stray]).fault_checks()[0].ok);
    }

    #[test]
    fn fault_checks_fail_without_pool_cells() {
        let s = Sample {
            pages: 1,
            touch_faults: 1,
            ..Sample::default()
        };
        let memfd = Cell::from_samples(Backing::Fresh, PAGE, Mode::WriteFault, &[s]).unwrap();
        let checks = report(vec![memfd]).fault_checks();
        assert!(checks.len() == 1 && !checks[0].ok, "{checks:?}");
        let mut r = report(vec![pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0)]);
        r.skipped
            .push((Backing::LazyPool, 16 * PAGE, "setup failed: ENOMEM".into()));
        let checks = r.fault_checks();
        assert!(checks[0].ok && !checks[1].ok, "{checks:?}");
        assert_eq!(checks[1].detail, "setup failed: ENOMEM");
    }

    #[test]
    fn device_tables_show_served_faults_and_eager_over_lazy() {
        let mut eager = pool_cell(Backing::EagerPool, Mode::WriteFault, 0, 0);
        eager.ns_per_page.median = 25.0;
        let mut lazy = pool_cell(Backing::LazyPool, Mode::WriteFault, 0, 16);
        lazy.ns_per_page.median = 100.0;
        let r = report(vec![eager, lazy]);
        let md = r.markdown();
        assert!(
            md.contains("| pktmap-lazy | 64 KiB | 0.000 / 1.000 |"),
            "{md}"
        );
        assert!(md.contains("| 64 KiB | 0.25× |"), "{md}");
        let text = r.table();
        assert!(text.contains("faults the driver served"), "{text}");
        assert!(text.contains("64 KiB  0.25×"), "{text}");
        // Without pools: neither table.
        let s = Sample {
            pages: 1,
            ..Sample::default()
        };
        let memfd = Cell::from_samples(Backing::Fresh, PAGE, Mode::WriteFault, &[s]).unwrap();
        assert!(!report(vec![memfd]).markdown().contains("driver served"));
    }

    #[test]
    fn estimate_counts_min_rounds() {
        let p = Plan {
            groups: vec![(Backing::Fresh, 256 * MIB)],
            budget: Duration::ZERO,
            ..Plan::standard()
        };
        // 6 rounds × 4 modes × 65536 pages × 4 µs ≈ 6.3 s.
        let e = p.estimate().as_secs_f64();
        assert!((6.0..7.0).contains(&e), "{e}");
    }
}
