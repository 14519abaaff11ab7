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
//! Built on proptest-state-machine: [`Model`] is the `ReferenceStateMachine` (it generates the
//! steps and predicts every outcome), [`Driver`] the `StateMachineTest` that performs each step
//! on `/dev/pktmap` and compares. Each case runs from its own seed (printed), so a failure is
//! reproduced with `pktmap-guest sequence 1 STEPS SEED`; proptest shrinks it first and the
//! minimal sequence is printed. The closing lines count what the cases exercised, per kind.
//!
//! The model needs the device to itself: the STATE gauges are device-wide, so nothing else may
//! run in the guest meanwhile (the guest runs one program at a time).

use crate::sys::{self, in_child};
use crate::Report;
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap_abi::ioctl::{self, PoolInfo, State, STATE_MAGIC};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
/// Pages one PMD entry maps (2 MiB), and pages of a 2 MiB pool's chunk.
const PMD_PAGES: usize = 512;
/// File slots: opens of the device and pool files.
const SLOTS: usize = 4;
/// Live mappings at most (more `Mmap` steps fail nothing but are skipped).
const MAX_MAPS: usize = 6;

/// Which resource a step names.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// The STATE page.
    State,
    /// One of the slot's pools (a bogus id if it has none; a pool file's own pool).
    Pool(Index),
    /// One of the slot's rings (a bogus id if it has none).
    Ring(Index),
    /// A pool id the slot never had.
    Bogus,
    /// A pool's offset plus 8 bytes (misaligned).
    Misaligned(Index),
}

/// Which part of a mapping `munmap` removes.
#[derive(Clone, Copy, Debug)]
pub enum Part {
    /// All of it.
    Whole,
    /// Its first page.
    Head,
    /// Its last page.
    Tail,
    /// One page in the middle (splits it in two).
    Middle,
}

/// `madvise` advice.
#[derive(Clone, Copy, Debug)]
pub enum Advice {
    /// `MADV_DONTNEED`: drops private copies; shared pages fault back (`EINVAL` on PFN maps).
    DontNeed,
    /// `MADV_DONTFORK`.
    DontFork,
    /// `MADV_DOFORK` (`EINVAL` on `VM_IO` maps: contiguous and 2 MiB pools).
    DoFork,
    /// `MADV_WIPEONFORK`: `EINVAL` on a file mapping.
    WipeOnFork,
}

/// A generated `POOL_CREATE` request, good or bad.
#[derive(Clone, Copy, Debug)]
pub struct PoolSpec {
    /// `buf_size`.
    pub buf_size: u32,
    /// `buf_count`.
    pub buf_count: u32,
    /// `flags`: 0 (eager), `POOL_LAZY`, `POOL_CONTIG`, `POOL_HUGE`, or bad bits.
    pub flags: u32,
    /// `fault_around`.
    pub fault_around: u32,
    /// `cache`.
    pub cache: u32,
    /// `reserved` (must be 0).
    pub reserved: u64,
}

impl PoolSpec {
    /// The request's words as `struct pktmap_pool_create` lays them out (`id` is word 3).
    fn words(&self) -> [u32; 8] {
        [
            self.buf_size,
            self.buf_count,
            self.flags,
            0,
            self.fault_around,
            self.cache,
            self.reserved as u32,
            (self.reserved >> 32) as u32,
        ]
    }
}

/// How a resource's pages reach a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Inserted at `mmap`; after `MADV_DONTNEED`, one page per fault (eager pools, rings,
    /// STATE).
    Eager,
    /// Faulted in this many pages at a time (the aligned window around the fault, cut to the
    /// VMA).
    Lazy(u32),
    /// Mapped whole at `mmap` by page frame number; never faults.
    Contig,
    /// A PMD entry per fault where the 2 MiB block is one chunk inside the VMA, else a 4 KiB
    /// entry, by page frame number.
    Huge,
}

impl Kind {
    /// Mapped by page frame number (`VM_PFNMAP | VM_IO`).
    fn pfn(self) -> bool {
        matches!(self, Kind::Contig | Kind::Huge)
    }
}

/// What the model says `POOL_CREATE` makes of a [`PoolSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    kind: Kind,
    /// Pages, rounded up to whole chunks.
    pages: usize,
    chunk_pages: usize,
    wc: bool,
}

/// The contract's `POOL_CREATE` rules (`pktmap_abi::ioctl`'s field docs), restated on their
/// own so the test does not trust the code it checks: a buffer size that is a power of two
/// from 256 to 65536 bytes, at least one buffer, at most one kind, `fault_around` 0 or a power
/// of two up to 512 on a lazy pool (0 is 16) and 0 on every other, write-combining only on
/// contiguous and 2 MiB pools, `reserved` 0, at most 256 MiB; contiguous chunks are the pool
/// rounded up to a power of two, at most 2 MiB; 2 MiB pools are whole 2 MiB chunks.
fn geometry(s: &PoolSpec) -> Result<Geometry, i32> {
    let bad = Err(libc::EINVAL);
    let size_ok = s.buf_size.is_power_of_two() && (256..=65536).contains(&s.buf_size);
    if !size_ok || s.buf_count == 0 || s.reserved != 0 {
        return bad;
    }
    let kind = match (s.flags, s.fault_around) {
        (0, 0) => Kind::Eager,
        (ioctl::POOL_LAZY, 0) => Kind::Lazy(16),
        (ioctl::POOL_LAZY, n) if n.is_power_of_two() && n <= 512 => Kind::Lazy(n),
        (ioctl::POOL_CONTIG, 0) => Kind::Contig,
        (ioctl::POOL_HUGE, 0) => Kind::Huge,
        _ => return bad,
    };
    let wc = match s.cache {
        0 => false,
        1 if kind.pfn() => true,
        _ => return bad,
    };
    let bytes = u64::from(s.buf_size) * u64::from(s.buf_count);
    if bytes > 256 << 20 {
        return bad;
    }
    let pages = bytes.div_ceil(PAGE as u64) as usize;
    let chunk_pages = match kind {
        Kind::Huge => PMD_PAGES,
        Kind::Contig => pages.next_power_of_two().min(PMD_PAGES),
        _ => 1,
    };
    Ok(Geometry {
        kind,
        pages: pages.next_multiple_of(chunk_pages),
        chunk_pages,
        wc,
    })
}

/// How many pages a `Mmap` step maps.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// This many from the resource's first page.
    Pages(usize),
    /// All of the resource.
    Whole,
}

/// One generated step, with selectors resolved against the model when applied.
#[derive(Clone, Debug)]
pub enum Transition {
    /// `open` of the device, read-write or read-only, into an empty slot.
    Open { slot: usize, writable: bool },
    /// `close` a slot (its mappings stay).
    Close { slot: usize },
    /// `POOL_CREATE`.
    PoolCreate { slot: usize, spec: PoolSpec },
    /// `POOL_INFO`: every field must match what the pool was made with.
    PoolInfo { slot: usize, pick: Pick },
    /// `POOL_CHUNK`: chunk `index` of a pool (the guest runs as root).
    PoolChunk { slot: usize, pick: Pick, index: u32 },
    /// `POOL_EXPORT` with `flags` (and a non-zero `reserved` if `bad_reserved`) into an empty
    /// slot.
    PoolExport {
        slot: usize,
        pick: Pick,
        flags: u32,
        bad_reserved: bool,
        into: Index,
    },
    /// `POOL_DESTROY`.
    PoolDestroy { slot: usize, pick: Pick },
    /// `RING_CREATE` of 8 entries on a pool.
    RingCreate { slot: usize, pick: Pick },
    /// `RING_DESTROY`.
    RingDestroy { slot: usize, pick: Pick },
    /// `mmap`; `off_grid`: `MAP_FIXED` 4 KiB past a 2 MiB boundary (for 2 MiB pools).
    Mmap {
        slot: usize,
        pick: Pick,
        size: Size,
        shared: bool,
        write: bool,
        exec: bool,
        populate: bool,
        off_grid: bool,
    },
    /// `munmap` of part of a mapping.
    Munmap { map: Index, part: Part },
    /// `mprotect` of a VMA (whole, or only its first page) to R, RW or RX.
    Mprotect {
        map: Index,
        vma: Index,
        first_page_only: bool,
        prot: u8,
    },
    /// `madvise` of a whole mapping.
    Madvise { map: Index, advice: Advice },
    /// `mremap` of a mapping's last VMA, one page bigger or smaller.
    Mremap { map: Index, grow: bool },
    /// A store through a mapping (in a child if the page is not writable: `SIGSEGV`).
    Poke { map: Index, at: Index, value: u8 },
    /// A load through a mapping.
    Peek { map: Index, at: Index },
    /// `pwrite` of `len` bytes of `value`.
    Pwrite {
        slot: usize,
        pick: Pick,
        len: usize,
        value: u8,
    },
    /// `pread` of a whole resource.
    Pread { slot: usize, pick: Pick },
    /// `fsync` (or `fdatasync`) of a slot: the device or a pool file, nothing to write back.
    Fsync { slot: usize, data_only: bool },
    /// `lseek` to a resource, then `read(2)` or `write(2)` there; the position must not move.
    SeekIo {
        slot: usize,
        pick: Pick,
        write: bool,
        value: u8,
    },
    /// `fork`: the child checks every inherited mapping, stores `value` through the first
    /// writable shared one, and touches a `DONTFORK` one last (`SIGSEGV`).
    Fork { value: u8 },
    /// Two threads `pwrite` two pools of a slot at once.
    Threads {
        slot: usize,
        a: Index,
        b: Index,
        value: u8,
    },
}

/// A pool or ring as the model knows it.
#[derive(Clone, Debug)]
struct Obj {
    ring_of: Option<usize>,
    kind: Kind,
    /// The request that made a pool (`None` for rings).
    spec: Option<PoolSpec>,
    wc: bool,
    chunk_pages: usize,
    pages: usize,
    data: Vec<u8>,
    /// `(file, id)` while in an open file's table (the file lives while a slot holds it or a
    /// mapping made through it exists: `release` runs after the last of them).
    table: Option<(usize, u32)>,
}

/// An open file: of the device, or a pool file.
#[derive(Clone, Debug)]
struct Fd {
    /// Which file (each `open` and each export makes a new one).
    file: usize,
    writable: bool,
    /// The pool a pool file (from `POOL_EXPORT`) maps; `None` for an open of the device.
    pool_file: Option<usize>,
    pools: BTreeMap<u32, usize>,
    rings: BTreeMap<u32, usize>,
    next_pool: u32,
    next_ring: u32,
}

/// Whether, and how, a page of a mapping is in the page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Not mapped: the next access faults.
    Absent,
    /// A 4 KiB entry.
    Pte,
    /// Part of a 2 MiB entry.
    Pmd,
}

/// One page of a mapping.
#[derive(Clone, Debug)]
struct MapPage {
    /// This page starts a VMA.
    vma_start: bool,
    write: bool,
    /// A private copy (copy on write), if the mapping wrote it.
    copy: Option<Vec<u8>>,
    entry: Entry,
}

/// A mapping: consecutive pages of one resource (`obj` `None` is STATE).
#[derive(Clone, Debug)]
struct Map {
    /// The file it was mapped through (its `vm_file` keeps the file, and so its table, alive).
    file: usize,
    obj: Option<usize>,
    kind: Kind,
    shared: bool,
    maywrite: bool,
    dontfork: bool,
    /// The resource page of the mapping's first page.
    first: usize,
    /// Where the first page lies in its 2 MiB block of address space, in pages, when the
    /// model knows (2 MiB pools mapped 2 MiB or more).
    grid: Option<usize>,
    pages: Vec<MapPage>,
}

/// What a step must produce.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Success.
    Ok,
    /// Success with this id (creates).
    Id(u32),
    /// Failure with this errno.
    Errno(i32),
    /// A byte count.
    Count(usize),
    /// These bytes.
    Bytes(Vec<u8>),
    /// Death by this signal (a child's).
    Signal(i32),
    /// `POOL_INFO`'s answer.
    Info(PoolInfo),
    /// `POOL_CHUNK`'s chunk size (its physical address must be non-zero and aligned to it).
    Chunk(u64),
}

/// What an ioctl's argument carries back on success, besides its result.
#[derive(Clone, Copy, Debug)]
pub enum Out {
    /// Nothing the step keeps.
    Nothing,
    /// A new pool file's descriptor (word 2), kept in this slot.
    Fd(usize),
}

/// A step resolved against the model: what to do, concretely, and what must come of it.
#[derive(Clone, Debug)]
pub enum Step {
    /// Nothing to do (the selector named nothing).
    Skip,
    Open {
        slot: usize,
        writable: bool,
    },
    Close {
        slot: usize,
    },
    Ioctl {
        slot: usize,
        cmd: u32,
        arg: [u32; 8],
        expect: Expect,
        out: Out,
    },
    Mmap {
        slot: usize,
        offset: u64,
        len: usize,
        prot: i32,
        flags: i32,
        /// `MAP_FIXED` 4 KiB past a 2 MiB boundary.
        off_grid: bool,
        /// The address must be 2 MiB-aligned (a 2 MiB pool's `get_unmapped_area`).
        aligned: bool,
        expect: Expect,
    },
    Munmap {
        map: usize,
        page: usize,
        pages: usize,
        split: bool,
    },
    Mprotect {
        map: usize,
        page: usize,
        pages: usize,
        prot: i32,
        expect: Expect,
    },
    Madvise {
        map: usize,
        advice: i32,
        expect: Expect,
    },
    Mremap {
        map: usize,
        page: usize,
        old: usize,
        new: usize,
        expect: Expect,
    },
    Poke {
        map: usize,
        offset: usize,
        value: u8,
        expect: Expect,
    },
    Peek {
        map: usize,
        offset: usize,
        expect: Expect,
    },
    Pwrite {
        slot: usize,
        pos: u64,
        len: usize,
        value: u8,
        expect: Expect,
    },
    Pread {
        slot: usize,
        pos: u64,
        len: usize,
        expect: Expect,
    },
    Fsync {
        slot: usize,
        data_only: bool,
        expect: Expect,
    },
    SeekIo {
        slot: usize,
        /// `lseek` first (and check the position stays); pool files cannot seek.
        seek: bool,
        pos: u64,
        write: bool,
        value: u8,
        len: usize,
        expect: Expect,
    },
    Fork {
        checks: Vec<(usize, usize, u8)>,
        store: Option<(usize, usize, u8)>,
        dontfork: Option<usize>,
        expect: Expect,
    },
    Threads {
        slot: usize,
        pos_a: u64,
        pos_b: u64,
        len: usize,
        value: u8,
    },
}

impl Step {
    /// The outcome the step must have, if it has one.
    fn expect(&self) -> Option<&Expect> {
        match self {
            Step::Ioctl { expect, .. }
            | Step::Mmap { expect, .. }
            | Step::Mprotect { expect, .. }
            | Step::Madvise { expect, .. }
            | Step::Mremap { expect, .. }
            | Step::Poke { expect, .. }
            | Step::Peek { expect, .. }
            | Step::Pwrite { expect, .. }
            | Step::Pread { expect, .. }
            | Step::Fsync { expect, .. }
            | Step::SeekIo { expect, .. }
            | Step::Fork { expect, .. } => Some(expect),
            _ => None,
        }
    }
}

/// What the steps exercised, counted for the closing report (see [`TAG_NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    CreateEager,
    CreateLazy,
    CreateContig,
    CreateHuge,
    CreateWc,
    CreateRefused,
    Info,
    Chunk,
    MapEager,
    MapLazy,
    MapContig,
    MapHuge,
    MapHugeAligned,
    MapHugeOffGrid,
    MapPoolFile,
    PrivatePfnRefused,
    PfnAdviceRefused,
    LazyFault,
    PmdFault,
    PfnPteFault,
    ExportRw,
    ExportRo,
    ExportRefused,
    ReadOnlyFileRefused,
    PoolFileIo,
    PoolFileIoctl,
    PoolFileClosedMapped,
    PoolOutlivesCreator,
    PoolFileFsync,
}

/// The report's name of each [`Tag`], in order.
const TAG_NAMES: [&str; 29] = [
    "eager pools",
    "lazy pools",
    "contiguous pools",
    "2 MiB pools",
    "write-combined pools",
    "refused POOL_CREATEs",
    "POOL_INFO round trips",
    "POOL_CHUNK queries",
    "eager maps",
    "lazy maps",
    "contiguous maps",
    "2 MiB maps",
    "2 MiB-aligned maps",
    "FIXED off-grid 2 MiB maps",
    "maps through pool files",
    "MAP_PRIVATE of PFN pools refused",
    "DONTNEED/DOFORK of PFN maps refused",
    "lazy faults",
    "PMD faults",
    "4 KiB PFN faults",
    "read-write exports",
    "read-only exports",
    "refused exports",
    "read-only pool file writes refused",
    "pool file read/write refused",
    "pool file ioctls",
    "pool files closed while mapped",
    "pools outliving their creator's table",
    "pool file fsyncs",
];
const TAGS: usize = TAG_NAMES.len();
static TALLY: [AtomicUsize; TAGS] = [const { AtomicUsize::new(0) }; TAGS];
/// Lazy pools created per fault-around `1 << k`.
static AROUND: [AtomicUsize; 10] = [const { AtomicUsize::new(0) }; 10];

/// What a selector names in a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    /// The STATE page (of a device open).
    State,
    /// A pool or ring.
    Obj(usize),
    /// Nothing there.
    Nothing,
}

/// The reference model.
#[derive(Clone, Debug, Default)]
pub struct Model {
    fds: [Option<Fd>; SLOTS],
    objs: Vec<Obj>,
    maps: Vec<Map>,
    /// Every pool file made: `(file, pool)`.
    pool_files: Vec<(usize, usize)>,
    /// Files opened so far.
    files: usize,
    /// The step the last transition resolved to.
    pub step: Option<Step>,
    /// The fault counters the step must move, if predictable: faults served, pages mapped,
    /// PMD faults.
    pub delta: Option<[u64; 3]>,
    /// What the step exercised.
    pub tags: Vec<Tag>,
}

/// The ids a slot's pools or rings are looked up by, when a pick names nothing.
const BOGUS_ID: u32 = 4000;

impl Model {
    /// Whether file `f` is still alive: open in a slot, or mapped.
    fn file_alive(&self, f: usize) -> bool {
        self.fds.iter().flatten().any(|fd| fd.file == f) || self.maps.iter().any(|m| m.file == f)
    }

    /// Whether object `i` is alive: in a live file's table, mapped, held by a live pool file,
    /// or the pool of a live ring.
    fn alive(&self, i: usize) -> bool {
        let o = &self.objs[i];
        o.table.is_some_and(|(f, _)| self.file_alive(f))
            || self.maps.iter().any(|m| m.obj == Some(i))
            || self
                .pool_files
                .iter()
                .any(|&(f, p)| p == i && self.file_alive(f))
            || self
                .objs
                .iter()
                .enumerate()
                .any(|(j, r)| r.ring_of == Some(i) && j != i && self.alive(j))
    }

    /// Whether some pool is alive though no live table holds it, because a live pool file
    /// (or a mapping made through one) does.
    fn pool_outlives_creator(&self) -> bool {
        self.pool_files.iter().any(|&(f, o)| {
            self.file_alive(f) && !self.objs[o].table.is_some_and(|(t, _)| self.file_alive(t))
        })
    }

    /// The gauges STATE must show, above the baseline: pools, rings, pages, VMAs, pool files.
    pub fn gauges(&self) -> [u64; 5] {
        let mut g = [0u64; 5];
        for i in 0..self.objs.len() {
            if self.alive(i) {
                let o = &self.objs[i];
                g[if o.ring_of.is_some() { 1 } else { 0 }] += 1;
                g[2] += o.pages as u64;
            }
        }
        g[3] = self
            .maps
            .iter()
            .map(|m| m.pages.iter().filter(|p| p.vma_start).count() as u64)
            .sum();
        g[4] = self
            .pool_files
            .iter()
            .filter(|&&(f, _)| self.file_alive(f))
            .count() as u64;
        g
    }

    /// Resolves `pick` in `slot` to `(offset, what it names)`. A pool file names its pool at
    /// `POOL 0`, and nothing else.
    fn resolve(&self, slot: usize, pick: Pick) -> (u64, Named) {
        let fd = self.fds[slot].as_ref();
        let choose = |m: Option<&BTreeMap<u32, usize>>, idx: Index| {
            let m = m.filter(|m| !m.is_empty())?;
            let (id, obj) = m.iter().nth(idx.index(m.len()))?;
            Some((*id, *obj))
        };
        let pool = ResourceType::Pool.offset(0);
        if let Some(o) = fd.and_then(|f| f.pool_file) {
            return match pick {
                Pick::Pool(_) => (pool, Named::Obj(o)),
                Pick::State => (0, Named::Nothing),
                Pick::Ring(_) => (ResourceType::Ring.offset(BOGUS_ID), Named::Nothing),
                Pick::Bogus => (ResourceType::Pool.offset(BOGUS_ID + 1), Named::Nothing),
                Pick::Misaligned(_) => (pool + 8, Named::Nothing),
            };
        }
        match pick {
            Pick::State => (0, Named::State),
            Pick::Pool(i) => match choose(fd.map(|f| &f.pools), i) {
                Some((id, o)) => (ResourceType::Pool.offset(id), Named::Obj(o)),
                None => (ResourceType::Pool.offset(BOGUS_ID), Named::Nothing),
            },
            Pick::Ring(i) => match choose(fd.map(|f| &f.rings), i) {
                Some((id, o)) => (ResourceType::Ring.offset(id), Named::Obj(o)),
                None => (ResourceType::Ring.offset(BOGUS_ID), Named::Nothing),
            },
            Pick::Bogus => (ResourceType::Pool.offset(BOGUS_ID + 1), Named::Nothing),
            Pick::Misaligned(i) => match choose(fd.map(|f| &f.pools), i) {
                Some((id, _)) => (ResourceType::Pool.offset(id) + 8, Named::Nothing),
                None => (ResourceType::Pool.offset(1) + 8, Named::Nothing),
            },
        }
    }

    /// The id an ioctl names for `pick` in `slot`: the id its offset decodes to.
    fn pick_id(&self, slot: usize, pick: Pick) -> u32 {
        let (offset, _) = self.resolve(slot, pick);
        pktmap::offset::PKTMAP
            .decode(offset & !0xfff)
            .map(|(_, id)| id as u32)
            .unwrap_or(BOGUS_ID)
    }

    /// The bytes mapping `m` shows at its page `p`.
    fn page_view(&self, m: &Map, p: usize) -> Vec<u8> {
        if let Some(copy) = &m.pages[p].copy {
            return copy.clone();
        }
        match m.obj {
            Some(o) => {
                let at = (m.first + p) * PAGE;
                self.objs[o].data[at..at + PAGE].to_vec()
            }
            None => {
                let mut v = vec![0u8; PAGE];
                v[..8].copy_from_slice(&STATE_MAGIC.to_ne_bytes());
                v
            }
        }
    }

    /// A byte of mapping `m` at byte `offset`; STATE's bytes past the magic change, so only
    /// its magic is predicted (`None` elsewhere).
    fn byte(&self, m: &Map, offset: usize) -> Option<u8> {
        if m.obj.is_none() && offset >= 8 {
            return None;
        }
        let p = offset / PAGE;
        match (&m.pages[p].copy, m.obj) {
            (Some(copy), _) => Some(copy[offset % PAGE]),
            (None, Some(o)) => Some(self.objs[o].data[m.first * PAGE + offset]),
            (None, None) => Some(STATE_MAGIC.to_ne_bytes()[offset]),
        }
    }

    /// Applies a pwrite/write of `len` bytes of `value` to object `o`; returns the count.
    fn write_obj(&mut self, o: usize, len: usize, value: u8) -> usize {
        let obj = &mut self.objs[o];
        let n = len.min(obj.data.len());
        obj.data[..n].fill(value);
        n
    }

    /// What a pread/read at `(offset, named)` returns for a `len`-byte buffer.
    fn read_expect(&self, offset: u64, named: Named, len: usize) -> Expect {
        match named {
            Named::Obj(o) => {
                let d = &self.objs[o].data;
                Expect::Bytes(d[..len.min(d.len())].to_vec())
            }
            Named::State if offset == 0 => Expect::Count(len.min(PAGE)),
            _ => Expect::Errno(libc::EINVAL),
        }
    }

    /// What a pwrite/write at `(offset, named)` does; updates the model.
    fn write_expect(
        &mut self,
        slot: usize,
        offset: u64,
        named: Named,
        len: usize,
        value: u8,
    ) -> Expect {
        let Some(fd) = &self.fds[slot] else {
            return Expect::Errno(libc::EBADF);
        };
        if !fd.writable {
            return Expect::Errno(libc::EBADF);
        }
        match named {
            Named::Obj(o) => Expect::Count(self.write_obj(o, len, value)),
            Named::State if offset == 0 => Expect::Errno(libc::EPERM),
            _ => Expect::Errno(libc::EINVAL),
        }
    }

    /// An ioctl step on `slot`; a pool file answers only `POOL_INFO` (`ENOTTY` otherwise).
    fn ioctl_step(&mut self, slot: usize, cmd: u32, arg: [u32; 8], expect: Expect) -> Step {
        let expect = match expect {
            Expect::Errno(libc::EBADF) if mutation() == Mutation::Ebadf => {
                Expect::Errno(libc::EINVAL)
            }
            e => e,
        };
        if self.is_pool_file(slot) {
            self.tags.push(Tag::PoolFileIoctl);
        }
        Step::Ioctl {
            slot,
            cmd,
            arg,
            expect,
            out: Out::Nothing,
        }
    }

    /// Whether `slot` holds a pool file (whose ioctls but `POOL_INFO` are `ENOTTY`).
    fn is_pool_file(&self, slot: usize) -> bool {
        self.fds[slot]
            .as_ref()
            .is_some_and(|f| f.pool_file.is_some())
    }

    fn resolve_map(&self, idx: Index) -> Option<usize> {
        (!self.maps.is_empty()).then(|| idx.index(self.maps.len()))
    }

    /// The VMAs of mapping `m` as (first page, pages).
    fn vmas(m: &Map) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = Vec::new();
        for (i, p) in m.pages.iter().enumerate() {
            if p.vma_start || v.is_empty() {
                v.push((i, 1));
            } else if let Some(last) = v.last_mut() {
                last.1 += 1;
            }
        }
        v
    }

    /// The VMA of mapping `m` that holds page `p`, as a range of its pages.
    fn vma_of(m: &Map, p: usize) -> std::ops::Range<usize> {
        let start = (0..=p).rev().find(|&q| m.pages[q].vma_start).unwrap_or(0);
        let end = (p + 1..m.pages.len())
            .find(|&q| m.pages[q].vma_start)
            .unwrap_or(m.pages.len());
        start..end
    }

    /// A VMA boundary is made at page `b` of mapping `i` (a split, or the edge of an unmapped
    /// range): the kernel splits the 2 MiB entry across it, which for a PFN map drops the
    /// whole entry; its pages fault back one by one.
    fn cut(&mut self, i: usize, b: usize) {
        let m = &mut self.maps[i];
        let Some(grid) = m.grid else { return };
        let within = (grid + b) % PMD_PAGES;
        // A block that starts before the mapping never had a 2 MiB entry.
        let Some(start) = b.checked_sub(within) else {
            return;
        };
        if within == 0 || b == 0 || b >= m.pages.len() {
            return;
        }
        let end = (start + PMD_PAGES).min(m.pages.len());
        for p in &mut m.pages[start..end] {
            if p.entry == Entry::Pmd {
                p.entry = Entry::Absent;
            }
        }
    }

    /// An access to page `p` of mapping `i`: what the fault (if any) maps, as the counters
    /// it moves (faults served, pages mapped, PMD faults).
    fn touch(&mut self, i: usize, p: usize) -> [u64; 3] {
        if self.maps[i].pages[p].entry != Entry::Absent {
            return [0; 3];
        }
        let vma = Self::vma_of(&self.maps[i], p);
        let resource_pages = self.maps[i].obj.map_or(1, |o| self.objs[o].pages);
        let m = &mut self.maps[i];
        match m.kind {
            Kind::Lazy(around) => {
                // The `around`-aligned window of resource pages around the fault, cut to the
                // VMA and the resource; pages already mapped are skipped and not counted.
                let mask = around as usize - 1;
                let index = m.first + p;
                let start = (index & !mask).max(m.first + vma.start);
                let end = ((index | mask) + 1)
                    .min(m.first + vma.end)
                    .min(resource_pages);
                let mut n = 0;
                for q in &mut m.pages[start - m.first..end - m.first] {
                    if q.entry == Entry::Absent {
                        q.entry = Entry::Pte;
                        n += 1;
                    }
                }
                self.tags.push(Tag::LazyFault);
                [1, n, 0]
            }
            Kind::Huge => {
                // One PMD entry if the 2 MiB block of address space around the page lies in
                // the VMA, starts a chunk, and has nothing mapped yet.
                let block = m.grid.and_then(|grid| {
                    let start = p.checked_sub((grid + p) % PMD_PAGES)?;
                    let fits = start >= vma.start
                        && start + PMD_PAGES <= vma.end
                        && (m.first + start) % PMD_PAGES == 0
                        && m.pages[start..start + PMD_PAGES]
                            .iter()
                            .all(|q| q.entry == Entry::Absent);
                    fits.then_some(start)
                });
                match block {
                    Some(start) => {
                        for q in &mut m.pages[start..start + PMD_PAGES] {
                            q.entry = Entry::Pmd;
                        }
                        self.tags.push(Tag::PmdFault);
                        [1, PMD_PAGES as u64, 1]
                    }
                    None => {
                        m.pages[p].entry = Entry::Pte;
                        self.tags.push(Tag::PfnPteFault);
                        [1, 1, 0]
                    }
                }
            }
            // Eager mappings (and a contiguous page, which never loses its entry) refault one
            // page at a time.
            Kind::Eager | Kind::Contig => {
                m.pages[p].entry = Entry::Pte;
                [1, 1, 0]
            }
        }
    }

    /// A new object in `slot`'s table (pools and rings share the id counters' scheme).
    fn insert_obj(&mut self, slot: usize, ring: bool, obj: Obj) -> u32 {
        let n = self.objs.len();
        let fd = self.fds[slot].as_mut().expect("open");
        let (ids, next) = if ring {
            (&mut fd.rings, &mut fd.next_ring)
        } else {
            (&mut fd.pools, &mut fd.next_pool)
        };
        let id = *next;
        *next += 1;
        ids.insert(id, n);
        let file = fd.file;
        self.objs.push(Obj {
            table: Some((file, id)),
            ..obj
        });
        id
    }

    fn pool_create(&mut self, slot: usize, spec: PoolSpec) -> Step {
        let arg = spec.words();
        let fd = self.fds[slot].as_ref().expect("open");
        if fd.pool_file.is_some() {
            return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(libc::ENOTTY));
        }
        if !fd.writable {
            return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(libc::EBADF));
        }
        let g = match geometry(&spec) {
            Ok(g) => g,
            Err(e) => {
                self.tags.push(Tag::CreateRefused);
                return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(e));
            }
        };
        self.tags.push(match g.kind {
            Kind::Eager => Tag::CreateEager,
            Kind::Lazy(_) => Tag::CreateLazy,
            Kind::Contig => Tag::CreateContig,
            Kind::Huge => Tag::CreateHuge,
        });
        if g.wc {
            self.tags.push(Tag::CreateWc);
        }
        let obj = Obj {
            ring_of: None,
            kind: g.kind,
            spec: Some(spec),
            wc: g.wc,
            chunk_pages: g.chunk_pages,
            pages: g.pages,
            data: vec![0; g.pages * PAGE],
            table: None,
        };
        let id = self.insert_obj(slot, false, obj);
        self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Id(id))
    }

    /// `POOL_INFO` of `pick`: through a pool file only for id 0.
    fn pool_info(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let fd = self.fds[slot].as_ref().expect("open");
        let (pool, offset) = match fd.pool_file {
            Some(o) => ((id == 0).then_some(o), ResourceType::Pool.offset(0)),
            None => (fd.pools.get(&id).copied(), ResourceType::Pool.offset(id)),
        };
        let expect = match pool {
            None => Expect::Errno(libc::EINVAL),
            Some(o) => {
                let obj = &self.objs[o];
                let spec = obj.spec.expect("a pool");
                self.tags.push(Tag::Info);
                Expect::Info(PoolInfo {
                    id,
                    buf_size: spec.buf_size,
                    buf_count: spec.buf_count,
                    flags: spec.flags,
                    bytes: (obj.pages * PAGE) as u64,
                    mmap_offset: offset,
                    fault_around: match obj.kind {
                        Kind::Lazy(n) => n,
                        _ => 0,
                    },
                    cache: u32::from(obj.wc),
                    chunk_bytes: (obj.chunk_pages * PAGE) as u64,
                })
            }
        };
        self.ioctl_step(slot, ioctl::POOL_INFO, [id, 0, 0, 0, 0, 0, 0, 0], expect)
    }

    fn pool_chunk(&mut self, slot: usize, pick: Pick, index: u32) -> Step {
        let id = self.pick_id(slot, pick);
        let arg = [id, index, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        if fd.pool_file.is_some() {
            return self.ioctl_step(slot, ioctl::POOL_CHUNK, arg, Expect::Errno(libc::ENOTTY));
        }
        let expect = match fd.pools.get(&id) {
            Some(&o) if (index as usize) < self.objs[o].pages / self.objs[o].chunk_pages => {
                self.tags.push(Tag::Chunk);
                Expect::Chunk((self.objs[o].chunk_pages * PAGE) as u64)
            }
            _ => Expect::Errno(libc::EINVAL),
        };
        self.ioctl_step(slot, ioctl::POOL_CHUNK, arg, expect)
    }

    fn pool_export(
        &mut self,
        slot: usize,
        pick: Pick,
        flags: u32,
        bad_reserved: bool,
        into: Index,
    ) -> Step {
        let empty: Vec<usize> = (0..SLOTS).filter(|&s| self.fds[s].is_none()).collect();
        if empty.is_empty() {
            return Step::Skip;
        }
        let into = empty[into.index(empty.len())];
        let id = self.pick_id(slot, pick);
        let arg = [id, flags, 0, u32::from(bad_reserved), 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else {
            match fd.pools.get(&id).copied() {
                Some(o) if flags & !ioctl::EXPORT_READONLY == 0 && !bad_reserved => {
                    let read_only = flags & ioctl::EXPORT_READONLY != 0;
                    self.files += 1;
                    self.fds[into] = Some(Fd {
                        file: self.files,
                        writable: !read_only,
                        pool_file: Some(o),
                        pools: BTreeMap::new(),
                        rings: BTreeMap::new(),
                        next_pool: 1,
                        next_ring: 1,
                    });
                    self.pool_files.push((self.files, o));
                    self.tags.push(if read_only {
                        Tag::ExportRo
                    } else {
                        Tag::ExportRw
                    });
                    let mut step = self.ioctl_step(slot, ioctl::POOL_EXPORT, arg, Expect::Ok);
                    if let Step::Ioctl { out, .. } = &mut step {
                        *out = Out::Fd(into);
                    }
                    return step;
                }
                _ => {
                    self.tags.push(Tag::ExportRefused);
                    Expect::Errno(libc::EINVAL)
                }
            }
        };
        self.ioctl_step(slot, ioctl::POOL_EXPORT, arg, expect)
    }

    fn pool_destroy(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let arg = [id, 0, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else {
            match fd.pools.get(&id).copied() {
                None => Expect::Errno(libc::EINVAL),
                Some(o) if fd.rings.values().any(|r| self.objs[*r].ring_of == Some(o)) => {
                    Expect::Errno(libc::EBUSY)
                }
                Some(o) => {
                    self.fds[slot].as_mut().expect("open").pools.remove(&id);
                    self.objs[o].table = None;
                    Expect::Ok
                }
            }
        };
        self.ioctl_step(slot, ioctl::POOL_DESTROY, arg, expect)
    }

    fn ring_create(&mut self, slot: usize, pick: Pick) -> Step {
        let pool_id = self.pick_id(slot, pick);
        let arg = [8, pool_id, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else if let Some(p) = fd.pools.get(&pool_id).copied() {
            let mut data = vec![0u8; PAGE];
            data[8..12].copy_from_slice(&8u32.to_ne_bytes());
            data[12..16].copy_from_slice(&pool_id.to_ne_bytes());
            let ring = Obj {
                ring_of: Some(p),
                kind: Kind::Eager,
                spec: None,
                wc: false,
                chunk_pages: 1,
                pages: 1,
                data,
                table: None,
            };
            Expect::Id(self.insert_obj(slot, true, ring))
        } else {
            Expect::Errno(libc::EINVAL)
        };
        self.ioctl_step(slot, ioctl::RING_CREATE, arg, expect)
    }

    fn ring_destroy(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else {
            match fd.rings.get(&id).copied() {
                None => Expect::Errno(libc::EINVAL),
                Some(o) => {
                    self.fds[slot].as_mut().expect("open").rings.remove(&id);
                    self.objs[o].table = None;
                    Expect::Ok
                }
            }
        };
        self.ioctl_step(slot, ioctl::RING_DESTROY, [id, 0, 0, 0, 0, 0, 0, 0], expect)
    }

    #[allow(clippy::too_many_arguments)]
    fn mmap(
        &mut self,
        slot: usize,
        pick: Pick,
        size: Size,
        (shared, write, exec): (bool, bool, bool),
        populate: bool,
        off_grid: bool,
    ) -> Step {
        if self.maps.len() >= MAX_MAPS {
            return Step::Skip;
        }
        let fd = self.fds[slot].as_ref().expect("open");
        let (offset, named) = self.resolve(slot, pick);
        let (kind, resource_pages, is_pool) = match named {
            Named::Obj(o) => (
                self.objs[o].kind,
                Some(self.objs[o].pages),
                self.objs[o].spec.is_some(),
            ),
            Named::State => (Kind::Eager, Some(1), false),
            Named::Nothing => (Kind::Eager, None, false),
        };
        let pages = match size {
            Size::Pages(n) => n,
            Size::Whole => resource_pages.unwrap_or(1),
        };
        let off_grid = off_grid && kind == Kind::Huge;
        let prot = libc::PROT_READ
            | if write { libc::PROT_WRITE } else { 0 }
            | if exec { libc::PROT_EXEC } else { 0 };
        let flags = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        } | if populate { libc::MAP_POPULATE } else { 0 };
        let is_state = named == Named::State;
        let pool_file = fd.pool_file.is_some();
        let aligned = kind == Kind::Huge && !off_grid && pages >= PMD_PAGES;
        let step = |expect| Step::Mmap {
            slot,
            offset,
            len: pages * PAGE,
            prot,
            flags,
            off_grid,
            aligned,
            expect,
        };
        // In the order the kernel and then the driver check.
        let refusal = if matches!(pick, Pick::Misaligned(_)) {
            Some(libc::EINVAL)
        } else if shared && write && !fd.writable {
            Some(libc::EACCES)
        } else if resource_pages.is_none_or(|s| pages > s) {
            Some(libc::EINVAL)
        } else if (is_state && write) || exec {
            Some(libc::EPERM)
        } else if pool_file && !fd.writable && (write || !shared) {
            // A read-only pool file never maps writable, nor privately (a copy is writable).
            Some(libc::EPERM)
        } else if kind.pfn() && !shared && mutation() != Mutation::PfnPrivate {
            self.tags.push(Tag::PrivatePfnRefused);
            Some(libc::EINVAL)
        } else {
            None
        };
        if let Some(e) = refusal {
            if pool_file && !fd.writable && matches!(e, libc::EACCES | libc::EPERM) {
                self.tags.push(Tag::ReadOnlyFileRefused);
            }
            return step(Expect::Errno(e));
        }
        let maywrite = !is_state && (!shared || write) && (fd.writable || !shared);
        let entry = match kind {
            Kind::Eager | Kind::Contig => Entry::Pte,
            Kind::Lazy(_) | Kind::Huge => Entry::Absent,
        };
        let grid = match kind {
            Kind::Huge if off_grid => Some(1),
            Kind::Huge if aligned => Some(0),
            _ => None,
        };
        let mut map = Map {
            file: fd.file,
            obj: match named {
                Named::Obj(o) => Some(o),
                _ => None,
            },
            kind,
            shared,
            maywrite,
            dontfork: false,
            first: 0,
            grid,
            pages: (0..pages)
                .map(|i| MapPage {
                    vma_start: i == 0,
                    write,
                    copy: None,
                    entry,
                })
                .collect(),
        };
        // MAP_POPULATE of a private writable mapping faults every page for write, which
        // breaks copy-on-write up front: each page is a private copy of the resource as it is
        // now, and later changes to the resource stay unseen.
        if populate && write && !shared {
            for p in 0..pages {
                map.pages[p].copy = Some(self.page_view(&map, p));
            }
        }
        if is_pool {
            self.tags.push(match kind {
                Kind::Eager => Tag::MapEager,
                Kind::Lazy(_) => Tag::MapLazy,
                Kind::Contig => Tag::MapContig,
                Kind::Huge => Tag::MapHuge,
            });
        }
        if aligned {
            self.tags.push(Tag::MapHugeAligned);
        }
        if off_grid {
            self.tags.push(Tag::MapHugeOffGrid);
        }
        if pool_file {
            self.tags.push(Tag::MapPoolFile);
        }
        self.maps.push(map);
        // Eager and contiguous maps insert every page at `mmap`. MAP_POPULATE then faults
        // the rest in order (the kernel's populate skips PFN maps).
        let mut delta = [0, if entry == Entry::Pte { pages as u64 } else { 0 }, 0];
        if populate && !kind.pfn() {
            let i = self.maps.len() - 1;
            for p in 0..pages {
                let d = self.touch(i, p);
                for (a, b) in delta.iter_mut().zip(d) {
                    *a += b;
                }
            }
        }
        self.delta = Some(delta);
        step(Expect::Ok)
    }

    fn step(mut self, t: &Transition) -> (Self, Step) {
        self.delta = None;
        self.tags.clear();
        // Every transition but `Open` names an open slot (or resolves to nothing).
        let open = |slot: usize| self.fds[slot].is_some();
        let step = match *t {
            Transition::Open { slot, writable } => {
                if self.fds[slot].is_some() {
                    Step::Skip
                } else {
                    self.files += 1;
                    self.fds[slot] = Some(Fd {
                        file: self.files,
                        writable,
                        pool_file: None,
                        pools: BTreeMap::new(),
                        rings: BTreeMap::new(),
                        next_pool: 1,
                        next_ring: 1,
                    });
                    Step::Open { slot, writable }
                }
            }
            // The file's table lives on while mappings made through it exist; a pool file's
            // pool too.
            Transition::Close { slot } => match self.fds[slot].take() {
                None => Step::Skip,
                Some(fd) => {
                    if fd.pool_file.is_some() && self.maps.iter().any(|m| m.file == fd.file) {
                        self.tags.push(Tag::PoolFileClosedMapped);
                    }
                    Step::Close { slot }
                }
            },
            _ if !transition_slot(t).is_none_or(open) => Step::Skip,
            Transition::PoolCreate { slot, spec } => self.pool_create(slot, spec),
            Transition::PoolInfo { slot, pick } => self.pool_info(slot, pick),
            Transition::PoolChunk { slot, pick, index } => self.pool_chunk(slot, pick, index),
            Transition::PoolExport {
                slot,
                pick,
                flags,
                bad_reserved,
                into,
            } => self.pool_export(slot, pick, flags, bad_reserved, into),
            Transition::PoolDestroy { slot, pick } => self.pool_destroy(slot, pick),
            Transition::RingCreate { slot, pick } => self.ring_create(slot, pick),
            Transition::RingDestroy { slot, pick } => self.ring_destroy(slot, pick),
            Transition::Mmap {
                slot,
                pick,
                size,
                shared,
                write,
                exec,
                populate,
                off_grid,
            } => self.mmap(slot, pick, size, (shared, write, exec), populate, off_grid),
            Transition::Munmap { map, part } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let len = self.maps[i].pages.len();
                let (page, pages, split) = match part {
                    Part::Whole => (0, len, false),
                    Part::Head => (0, 1, false),
                    Part::Tail => (len - 1, 1, false),
                    Part::Middle if len >= 3 => (len / 2, 1, true),
                    Part::Middle => (0, len, false),
                };
                self.cut(i, page);
                self.cut(i, page + pages);
                if pages == len {
                    self.maps.remove(i);
                } else if split {
                    let m = &mut self.maps[i];
                    let mut tail: Vec<MapPage> = m.pages.split_off(page);
                    tail.remove(0);
                    tail[0].vma_start = true;
                    let second = Map {
                        first: m.first + page + 1,
                        grid: m.grid.map(|g| (g + page + 1) % PMD_PAGES),
                        pages: tail,
                        ..m.clone()
                    };
                    self.maps.insert(i + 1, second);
                } else if page == 0 {
                    let m = &mut self.maps[i];
                    m.pages.remove(0);
                    m.pages[0].vma_start = true;
                    m.first += 1;
                    m.grid = m.grid.map(|g| (g + 1) % PMD_PAGES);
                } else {
                    self.maps[i].pages.pop();
                }
                Step::Munmap {
                    map: i,
                    page,
                    pages,
                    split,
                }
            }
            Transition::Mprotect {
                map,
                vma,
                first_page_only,
                prot,
            } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let vmas = Self::vmas(&self.maps[i]);
                let (start, n) = vmas[vma.index(vmas.len())];
                let n = if first_page_only { 1 } else { n };
                let (prot, want_write, exec) = match prot % 3 {
                    0 => (libc::PROT_READ, false, false),
                    1 => (libc::PROT_READ | libc::PROT_WRITE, true, false),
                    _ => (libc::PROT_READ | libc::PROT_EXEC, false, true),
                };
                let m = &self.maps[i];
                let expect = if exec || (want_write && !m.maywrite) {
                    if want_write
                        && self
                            .fds
                            .iter()
                            .flatten()
                            .any(|f| f.file == m.file && f.pool_file.is_some() && !f.writable)
                    {
                        self.tags.push(Tag::ReadOnlyFileRefused);
                    }
                    Expect::Errno(libc::EACCES)
                } else {
                    if m.pages[start].write != want_write {
                        self.cut(i, start);
                        self.cut(i, start + n);
                        let m = &mut self.maps[i];
                        for p in &mut m.pages[start..start + n] {
                            p.write = want_write;
                        }
                        if let Some(after) = m.pages.get_mut(start + n) {
                            after.vma_start = true;
                        }
                    }
                    Expect::Ok
                };
                Step::Mprotect {
                    map: i,
                    page: start,
                    pages: n,
                    prot,
                    expect,
                }
            }
            Transition::Madvise { map, advice } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let m = &mut self.maps[i];
                let pfn = m.kind.pfn();
                let (advice, expect) = match advice {
                    Advice::DontNeed if pfn => (libc::MADV_DONTNEED, Expect::Errno(libc::EINVAL)),
                    Advice::DontNeed => {
                        for p in &mut m.pages {
                            p.copy = None;
                            p.entry = Entry::Absent;
                        }
                        (libc::MADV_DONTNEED, Expect::Ok)
                    }
                    Advice::DontFork => {
                        m.dontfork = true;
                        (libc::MADV_DONTFORK, Expect::Ok)
                    }
                    Advice::DoFork if pfn => (libc::MADV_DOFORK, Expect::Errno(libc::EINVAL)),
                    Advice::DoFork => {
                        m.dontfork = false;
                        (libc::MADV_DOFORK, Expect::Ok)
                    }
                    Advice::WipeOnFork => (libc::MADV_WIPEONFORK, Expect::Errno(libc::EINVAL)),
                };
                if pfn && matches!(advice, libc::MADV_DONTNEED | libc::MADV_DOFORK) {
                    self.tags.push(Tag::PfnAdviceRefused);
                }
                Step::Madvise {
                    map: i,
                    advice,
                    expect,
                }
            }
            Transition::Mremap { map, grow } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let vmas = Self::vmas(&self.maps[i]);
                let (start, n) = *vmas.last().expect("a mapping has a VMA");
                if grow {
                    Step::Mremap {
                        map: i,
                        page: start,
                        old: n,
                        new: n + 1,
                        expect: Expect::Errno(libc::EFAULT),
                    }
                } else if n >= 2 {
                    let last = self.maps[i].pages.len() - 1;
                    self.cut(i, last);
                    self.maps[i].pages.pop();
                    Step::Mremap {
                        map: i,
                        page: start,
                        old: n,
                        new: n - 1,
                        expect: Expect::Ok,
                    }
                } else {
                    Step::Skip
                }
            }
            Transition::Poke { map, at, value } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let offset = at.index(self.maps[i].pages.len() * PAGE);
                let p = offset / PAGE;
                let expect = if !self.maps[i].pages[p].write {
                    // Refused before any fault handler runs (in a child).
                    self.delta = Some([0; 3]);
                    Expect::Signal(libc::SIGSEGV)
                } else {
                    self.delta = Some(self.touch(i, p));
                    let m = &self.maps[i];
                    if m.shared {
                        let o = m.obj.expect("a writable mapping is not STATE");
                        let at = (m.first + p) * PAGE + offset % PAGE;
                        self.objs[o].data[at] = value;
                    } else {
                        let mut view = self.page_view(m, p);
                        view[offset % PAGE] = value;
                        self.maps[i].pages[p].copy = Some(view);
                    }
                    Expect::Ok
                };
                Step::Poke {
                    map: i,
                    offset,
                    value,
                    expect,
                }
            }
            Transition::Peek { map, at } => {
                let Some(i) = self.resolve_map(map) else {
                    return (self, Step::Skip);
                };
                let m = &self.maps[i];
                let offset = at.index(m.pages.len() * PAGE);
                match self.byte(m, offset) {
                    Some(b) => {
                        self.delta = Some(self.touch(i, offset / PAGE));
                        Step::Peek {
                            map: i,
                            offset,
                            expect: Expect::Bytes(vec![b]),
                        }
                    }
                    None => Step::Skip,
                }
            }
            Transition::Pwrite {
                slot,
                pick,
                len,
                value,
            } => {
                let (pos, named) = self.resolve(slot, pick);
                let expect = if self.is_pool_file(slot) {
                    // A pool file has no position to read or write at.
                    self.tags.push(Tag::PoolFileIo);
                    Expect::Errno(libc::ESPIPE)
                } else {
                    self.write_expect(slot, pos, named, len, value)
                };
                Step::Pwrite {
                    slot,
                    pos,
                    len,
                    value,
                    expect,
                }
            }
            Transition::Pread { slot, pick } => {
                let (pos, named) = self.resolve(slot, pick);
                let len = 4 * PAGE;
                let expect = if self.is_pool_file(slot) {
                    self.tags.push(Tag::PoolFileIo);
                    Expect::Errno(libc::ESPIPE)
                } else {
                    self.read_expect(pos, named, len)
                };
                Step::Pread {
                    slot,
                    pos,
                    len,
                    expect,
                }
            }
            Transition::Fsync { slot, data_only } => {
                // Both kinds of file have nothing to write back (issue 20: pool files once
                // answered EINVAL).
                if self.is_pool_file(slot) {
                    self.tags.push(Tag::PoolFileFsync);
                }
                Step::Fsync {
                    slot,
                    data_only,
                    expect: Expect::Ok,
                }
            }
            Transition::SeekIo {
                slot,
                pick,
                write,
                value,
            } => {
                let (pos, named) = self.resolve(slot, pick);
                let len = 2 * PAGE;
                let pool_file = self.is_pool_file(slot);
                let expect = if pool_file {
                    // No `read`/`write` file operations: EINVAL, or EBADF writing a read-only
                    // file.
                    self.tags.push(Tag::PoolFileIo);
                    let writable = self.fds[slot].as_ref().is_some_and(|f| f.writable);
                    Expect::Errno(if write && !writable {
                        libc::EBADF
                    } else {
                        libc::EINVAL
                    })
                } else if write {
                    self.write_expect(slot, pos, named, len, value)
                } else {
                    self.read_expect(pos, named, len)
                };
                Step::SeekIo {
                    slot,
                    seek: !pool_file,
                    pos,
                    write,
                    value,
                    len,
                    expect,
                }
            }
            Transition::Fork { value } => {
                let mut checks = Vec::new();
                for (i, m) in self.maps.iter().enumerate() {
                    if m.dontfork {
                        continue;
                    }
                    for p in 0..m.pages.len() {
                        if let Some(b) = self.byte(m, p * PAGE) {
                            checks.push((i, p * PAGE, b));
                        }
                    }
                }
                let store = self
                    .maps
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.shared && !m.dontfork && m.pages[0].write)
                    .map(|(i, _)| (i, 1, value));
                if let Some((i, offset, v)) = store {
                    let m = &self.maps[i];
                    let o = m.obj.expect("writable");
                    self.objs[o].data[m.first * PAGE + offset] = v;
                }
                let dontfork = self.maps.iter().position(|m| m.dontfork);
                let expect = if dontfork.is_some() {
                    Expect::Signal(libc::SIGSEGV)
                } else {
                    Expect::Ok
                };
                Step::Fork {
                    checks,
                    store,
                    dontfork,
                    expect,
                }
            }
            Transition::Threads { slot, a, b, value } => {
                let fd = self.fds[slot].as_ref().expect("open");
                if !fd.writable || fd.pool_file.is_some() || fd.pools.len() < 2 {
                    return (self, Step::Skip);
                }
                let (pa, oa) = self.resolve(slot, Pick::Pool(a));
                let (pb, ob) = self.resolve(slot, Pick::Pool(b));
                let (Named::Obj(oa), Named::Obj(ob)) = (oa, ob) else {
                    return (self, Step::Skip);
                };
                if oa == ob {
                    return (self, Step::Skip);
                }
                let len = 2 * PAGE;
                self.write_obj(oa, len, value);
                self.write_obj(ob, len, value.wrapping_add(1));
                Step::Threads {
                    slot,
                    pos_a: pa,
                    pos_b: pb,
                    len,
                    value,
                }
            }
        };
        (self, step)
    }
}

/// The slot a transition acts on, if it names one (and must find it open).
fn transition_slot(t: &Transition) -> Option<usize> {
    match *t {
        Transition::Open { .. }
        | Transition::Close { .. }
        | Transition::Munmap { .. }
        | Transition::Mprotect { .. }
        | Transition::Madvise { .. }
        | Transition::Mremap { .. }
        | Transition::Poke { .. }
        | Transition::Peek { .. }
        | Transition::Fork { .. } => None,
        Transition::PoolCreate { slot, .. }
        | Transition::PoolInfo { slot, .. }
        | Transition::PoolChunk { slot, .. }
        | Transition::PoolExport { slot, .. }
        | Transition::PoolDestroy { slot, .. }
        | Transition::RingCreate { slot, .. }
        | Transition::RingDestroy { slot, .. }
        | Transition::Mmap { slot, .. }
        | Transition::Pwrite { slot, .. }
        | Transition::Pread { slot, .. }
        | Transition::Fsync { slot, .. }
        | Transition::SeekIo { slot, .. }
        | Transition::Threads { slot, .. } => Some(slot),
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::State),
        8 => any::<Index>().prop_map(Pick::Pool),
        3 => any::<Index>().prop_map(Pick::Ring),
        1 => Just(Pick::Bogus),
        1 => any::<Index>().prop_map(Pick::Misaligned),
    ]
}

/// A pick for the pool ioctls: mostly a pool, sometimes something that is not one.
fn pool_pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => any::<Index>().prop_map(Pick::Pool),
        1 => any::<Index>().prop_map(Pick::Ring),
        1 => Just(Pick::Bogus),
    ]
}

/// `POOL_CREATE` requests: mostly good ones of every kind, sized for the guest (at most two
/// 2 MiB chunks), and one in seven with one field made bad (or, for `flags`, `fault_around` and
/// `cache`, a random value the rules then judge).
pub fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    let size = prop_oneof![
        6 => (1..=3u32).prop_map(|n| (4096, n)),
        2 => (1..=9u32).prop_map(|n| (2048, n)),
        1 => (1..=20u32).prop_map(|n| (256, n)),
        1 => Just((65536, 1)),
        1 => prop_oneof![Just((4096, 512)), Just((4096, 600))],
    ];
    let kind = prop_oneof![
        3 => Just(0),
        3 => Just(ioctl::POOL_LAZY),
        2 => Just(ioctl::POOL_CONTIG),
        2 => Just(ioctl::POOL_HUGE),
    ];
    let around = prop_oneof![1 => Just(0), 3 => (0..=9u32).prop_map(|k| 1 << k)];
    let bad = prop::option::weighted(1.0 / 7.0, (0..7u8, any::<u32>()));
    (size, kind, around, prop::bool::weighted(0.3), bad).prop_map(
        |((buf_size, buf_count), flags, around, wc, bad)| {
            let pfn = flags == ioctl::POOL_CONTIG || flags == ioctl::POOL_HUGE;
            let mut s = PoolSpec {
                buf_size,
                buf_count,
                flags,
                fault_around: if flags == ioctl::POOL_LAZY { around } else { 0 },
                cache: u32::from(wc && pfn),
                reserved: 0,
            };
            let pick = |v: &[u32], x: u32| v[x as usize % v.len()];
            match bad {
                None => {}
                Some((0, x)) => s.buf_size = pick(&[1000, 128, 131072, 0, 4097], x),
                Some((1, _)) => s.buf_count = 0,
                Some((2, x)) => {
                    let both = [
                        ioctl::POOL_LAZY | ioctl::POOL_CONTIG,
                        ioctl::POOL_CONTIG | ioctl::POOL_HUGE,
                        ioctl::POOL_LAZY | ioctl::POOL_HUGE,
                    ];
                    s.flags = pick(&[8, 1 << 31, both[0], both[1], both[2], x], x)
                }
                // 16 is bad on every pool but a lazy one.
                Some((3, x)) => s.fault_around = pick(&[3, 1024, 1 << 31, 16, x], x),
                // Write-combining (1) is bad on pools of single pages.
                Some((4, x)) => s.cache = pick(&[2, u32::MAX, 1, x], x),
                Some((5, x)) => s.reserved = 1 << (x % 64),
                Some(_) => (s.buf_size, s.buf_count) = (65536, 4097),
            }
            s
        },
    )
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let open: Vec<usize> = (0..SLOTS).filter(|&s| state.fds[s].is_some()).collect();
        let closed: Vec<usize> = (0..SLOTS).filter(|&s| state.fds[s].is_none()).collect();
        let open_file = |writable| {
            prop::sample::select(closed.clone())
                .prop_map(move |slot| Transition::Open { slot, writable })
        };
        // Nothing but `open` makes sense before a file is open.
        if open.is_empty() {
            return prop_oneof![4 => open_file(true), 1 => open_file(false)].boxed();
        }
        // Steps pick among the open files, and mapping steps only run once there are mappings.
        let slot = || prop::sample::select(open.clone());
        let part = prop_oneof![
            Just(Part::Whole),
            Just(Part::Head),
            Just(Part::Tail),
            Just(Part::Middle)
        ];
        let advice = prop_oneof![
            Just(Advice::DontNeed),
            Just(Advice::DontFork),
            Just(Advice::DoFork),
            Just(Advice::WipeOnFork)
        ];
        let size = prop_oneof![
            1 => (1..=4usize).prop_map(Size::Pages),
            1 => Just(Size::Whole),
        ];
        let export_flags = prop_oneof![
            4 => Just(0),
            4 => Just(ioctl::EXPORT_READONLY),
            1 => Just(2),
            1 => Just(0x8000_0001),
        ];
        let files = prop_oneof![
            2 => slot().prop_map(|slot| Transition::Close { slot }),
            6 => (slot(), pool_spec())
                .prop_map(|(slot, spec)| Transition::PoolCreate { slot, spec }),
            2 => (slot(), pool_pick()).prop_map(|(slot, pick)| Transition::PoolInfo { slot, pick }),
            1 => (slot(), pool_pick(), 0..3u32)
                .prop_map(|(slot, pick, index)| Transition::PoolChunk { slot, pick, index }),
            3 => (slot(), pool_pick(), export_flags, prop::bool::weighted(0.1), any::<Index>())
                .prop_map(|(slot, pick, flags, bad_reserved, into)| Transition::PoolExport {
                    slot,
                    pick,
                    flags,
                    bad_reserved,
                    into,
                }),
            2 => (slot(), pick()).prop_map(|(slot, pick)| Transition::PoolDestroy { slot, pick }),
            2 => (slot(), pick()).prop_map(|(slot, pick)| Transition::RingCreate { slot, pick }),
            1 => (slot(), pick()).prop_map(|(slot, pick)| Transition::RingDestroy { slot, pick }),
            10 => (
                (slot(), pick(), size),
                (any::<bool>(), prop::bool::weighted(0.6), prop::bool::weighted(0.1)),
                any::<bool>(),
                prop::bool::weighted(0.2),
            )
                .prop_map(|((slot, pick, size), (shared, write, exec), populate, off_grid)| {
                    Transition::Mmap { slot, pick, size, shared, write, exec, populate, off_grid }
                }),
            // A whole pool, shared: what a packet program does most.
            4 => (slot(), any::<Index>(), prop::bool::weighted(0.7), prop::bool::weighted(0.2))
                .prop_map(|(slot, pool, write, off_grid)| Transition::Mmap {
                    slot,
                    pick: Pick::Pool(pool),
                    size: Size::Whole,
                    shared: true,
                    write,
                    exec: false,
                    populate: false,
                    off_grid,
                }),
            4 => (slot(), pick(), 1..=(3 * PAGE + 100), any::<u8>()).prop_map(
                |(slot, pick, len, value)| Transition::Pwrite { slot, pick, len, value }
            ),
            4 => (slot(), pick()).prop_map(|(slot, pick)| Transition::Pread { slot, pick }),
            1 => (slot(), any::<bool>())
                .prop_map(|(slot, data_only)| Transition::Fsync { slot, data_only }),
            3 => (slot(), pick(), any::<bool>(), any::<u8>()).prop_map(
                |(slot, pick, write, value)| Transition::SeekIo { slot, pick, write, value }
            ),
            1 => (slot(), any::<Index>(), any::<Index>(), any::<u8>())
                .prop_map(|(slot, a, b, value)| Transition::Threads { slot, a, b, value }),
        ];
        let mut all = vec![(30, files.boxed())];
        if !closed.is_empty() {
            all.push((
                2,
                prop_oneof![4 => open_file(true), 1 => open_file(false)].boxed(),
            ));
        }
        if !state.maps.is_empty() {
            let maps = prop_oneof![
                3 => (any::<Index>(), part).prop_map(|(map, part)| Transition::Munmap { map, part }),
                3 => (any::<Index>(), any::<Index>(), any::<bool>(), 0..3u8).prop_map(
                    |(map, vma, first_page_only, prot)| Transition::Mprotect {
                        map,
                        vma,
                        first_page_only,
                        prot
                    }
                ),
                2 => (any::<Index>(), advice)
                    .prop_map(|(map, advice)| Transition::Madvise { map, advice }),
                1 => (any::<Index>(), any::<bool>())
                    .prop_map(|(map, grow)| Transition::Mremap { map, grow }),
                6 => (any::<Index>(), any::<Index>(), any::<u8>())
                    .prop_map(|(map, at, value)| Transition::Poke { map, at, value }),
                6 => (any::<Index>(), any::<Index>())
                    .prop_map(|(map, at)| Transition::Peek { map, at }),
                1 => any::<u8>().prop_map(|value| Transition::Fork { value }),
            ];
            all.push((22, maps.boxed()));
        }
        prop::strategy::Union::new_weighted(all).boxed()
    }

    fn apply(state: Model, t: &Transition) -> Model {
        let (mut next, step) = state.step(t);
        // A close or destroy that leaves a pool alive only through pool files (or mappings
        // made through them): the pool outlives its creator's table.
        let ends_table = matches!(step, Step::Close { .. })
            || matches!(
                step,
                Step::Ioctl {
                    cmd: ioctl::POOL_DESTROY,
                    expect: Expect::Ok,
                    ..
                }
            );
        if ends_table && next.pool_outlives_creator() {
            next.tags.push(Tag::PoolOutlivesCreator);
        }
        next.step = Some(step);
        next
    }
}
/// A live mapping: its address and length (in the same order as the model's).
struct Region {
    addr: *mut u8,
    len: usize,
}

/// The system under test: open files and mappings, plus the STATE baseline.
pub struct Driver {
    fds: [Option<OwnedFd>; SLOTS],
    maps: Vec<Region>,
    base: [u64; 5],
    probe: Device,
}

/// A case that fails panics mid-sequence: its mappings go with it, so the replays proptest
/// shrinks with start from a clean device (an unmapped pool frees its pages and budget).
impl Drop for Driver {
    fn drop(&mut self) {
        for r in self.maps.drain(..) {
            // SAFETY: Mappings this test made, used by nothing else now.
            let _ = unsafe { sys::munmap(r.addr, r.len) };
        }
    }
}

fn gauges(s: &State) -> [u64; 5] {
    [
        s.pools,
        s.rings,
        s.pages_allocated,
        s.live_mappings,
        s.pool_files,
    ]
}

/// The fault counters a step may move: faults served, pages mapped, PMD faults.
fn counters(s: &State) -> [u64; 3] {
    [s.faults_served, s.pages_mapped, s.pmd_faults]
}

/// `POOL_INFO`'s answer from the argument words (`struct pktmap_pool_info`, native endian).
fn info_from(a: &[u32; 12]) -> PoolInfo {
    let wide = |i: usize| u64::from(a[i]) | (u64::from(a[i + 1]) << 32);
    PoolInfo {
        id: a[0],
        buf_size: a[1],
        buf_count: a[2],
        flags: a[3],
        bytes: wide(4),
        mmap_offset: wide(6),
        fault_around: a[8],
        cache: a[9],
        chunk_bytes: wide(10),
    }
}

fn outcome<T>(r: std::io::Result<T>, f: impl FnOnce(T) -> Expect) -> Expect {
    match r {
        Ok(v) => f(v),
        Err(e) => Expect::Errno(e.raw_os_error().unwrap_or(-1)),
    }
}

/// Checks `got` against `want`; panics (proptest records the failure and shrinks).
fn expect_eq(what: &str, step: &Step, got: Expect, want: &Expect) {
    if &got != want {
        let short = |e: &Expect| match e {
            Expect::Bytes(b) if b.len() > 16 => format!("{} bytes {:?}..", b.len(), &b[..16]),
            e => format!("{e:?}"),
        };
        panic!(
            "{what}: got {}, model says {} (step {})",
            short(&got),
            short(want),
            step_summary(step)
        );
    }
}

fn step_summary(step: &Step) -> String {
    let s = format!("{step:?}");
    if s.len() > 300 {
        format!("{}..", &s[..300])
    } else {
        s
    }
}

impl Driver {
    fn fd(&self, slot: usize) -> std::os::fd::BorrowedFd<'_> {
        self.fds[slot]
            .as_ref()
            .expect("the model says the slot is open")
            .as_fd()
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Skip => {}
            Step::Open { slot, writable } => {
                let flags = if *writable {
                    libc::O_RDWR
                } else {
                    libc::O_RDONLY
                };
                self.fds[*slot] = Some(sys::open_device(flags).expect("open /dev/pktmap"));
            }
            Step::Close { slot } => self.fds[*slot] = None,
            Step::Ioctl {
                slot,
                cmd,
                arg,
                expect,
                out,
            } => {
                // The argument's words, then zeros up to the largest argument struct
                // (`PoolInfo`, 48 bytes).
                let mut a = [0u32; 12];
                a[..arg.len()].copy_from_slice(arg);
                let r = sys::ioctl_raw(self.fd(*slot), *cmd, a.as_mut_ptr().cast());
                // A new pool file is ours to close, whatever the model said.
                let file = (r.is_ok() && *cmd == ioctl::POOL_EXPORT).then(|| {
                    // SAFETY: POOL_EXPORT succeeded, so word 2 is a new descriptor that only
                    // this test holds.
                    unsafe { OwnedFd::from_raw_fd(a[2] as i32) }
                });
                let got = outcome(r, |()| match expect {
                    Expect::Id(_) => Expect::Id(a[3]),
                    Expect::Info(_) => Expect::Info(info_from(&a)),
                    Expect::Chunk(_) => {
                        let phys = u64::from(a[2]) | (u64::from(a[3]) << 32);
                        let bytes = u64::from(a[4]) | (u64::from(a[5]) << 32);
                        if phys == 0 || bytes == 0 || phys % bytes != 0 {
                            panic!(
                                "POOL_CHUNK: physical address {phys:#x} is not a chunk of {bytes:#x} bytes (step {})",
                                step_summary(step)
                            );
                        }
                        Expect::Chunk(bytes)
                    }
                    _ => Expect::Ok,
                });
                expect_eq("ioctl", step, got, expect);
                if let (Out::Fd(into), Some(file)) = (out, file) {
                    self.fds[*into] = Some(file);
                }
            }
            Step::Mmap {
                slot,
                offset,
                len,
                prot,
                flags,
                off_grid,
                aligned,
                expect,
            } => {
                let fd = self.fd(*slot);
                let r = if *off_grid {
                    let grid = (PMD_PAGES * PAGE, PAGE);
                    sys::mmap_raw_off_grid(fd, *len, *prot, *flags, *offset, grid)
                } else {
                    sys::mmap_raw(Some(fd), *len, *prot, *flags, *offset)
                };
                let misplaced = match &r {
                    Ok(addr) if *aligned && *addr as usize % (PMD_PAGES * PAGE) != 0 => Some(*addr),
                    _ => None,
                };
                let got = outcome(r, |addr| {
                    self.maps.push(Region { addr, len: *len });
                    Expect::Ok
                });
                if let Some(addr) = misplaced {
                    panic!(
                        "mmap of a 2 MiB pool at {addr:p}: not 2 MiB-aligned (step {})",
                        step_summary(step)
                    );
                }
                expect_eq("mmap", step, got, expect);
            }
            Step::Munmap {
                map,
                page,
                pages,
                split,
            } => {
                let region = &self.maps[*map];
                let at = region.addr.wrapping_add(page * PAGE);
                // SAFETY: Part of a mapping this test made; the model no longer uses it.
                let r = unsafe { sys::munmap(at, pages * PAGE) };
                expect_eq("munmap", step, outcome(r, |()| Expect::Ok), &Expect::Ok);
                let (addr, len) = (region.addr, region.len);
                if pages * PAGE == len {
                    self.maps.remove(*map);
                } else if *split {
                    self.maps[*map].len = page * PAGE;
                    let second = Region {
                        addr: addr.wrapping_add((page + pages) * PAGE),
                        len: len - (page + pages) * PAGE,
                    };
                    self.maps.insert(map + 1, second);
                } else if *page == 0 {
                    self.maps[*map] = Region {
                        addr: addr.wrapping_add(pages * PAGE),
                        len: len - pages * PAGE,
                    };
                } else {
                    self.maps[*map].len = len - pages * PAGE;
                }
            }
            Step::Mprotect {
                map,
                page,
                pages,
                prot,
                expect,
            } => {
                let at = self.maps[*map].addr.wrapping_add(page * PAGE);
                let r = sys::mprotect(at, pages * PAGE, *prot);
                expect_eq("mprotect", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::Madvise {
                map,
                advice,
                expect,
            } => {
                let region = &self.maps[*map];
                let r = sys::madvise(region.addr, region.len, *advice);
                expect_eq("madvise", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::Mremap {
                map,
                page,
                old,
                new,
                expect,
            } => {
                let at = self.maps[*map].addr.wrapping_add(page * PAGE);
                let r = sys::mremap_resize(at, old * PAGE, new * PAGE);
                if r.is_ok() {
                    self.maps[*map].len -= (old - new) * PAGE;
                }
                expect_eq("mremap", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::Poke {
                map,
                offset,
                value,
                expect,
            } => {
                let p = self.maps[*map].addr.wrapping_add(*offset);
                let got = if *expect == Expect::Ok {
                    // SAFETY: The model says the page is mapped writable.
                    unsafe { sys::poke(p, *value) };
                    Expect::Ok
                } else {
                    match in_child(|| {
                        // SAFETY: In a child: the fault is the point.
                        unsafe { sys::poke(p, *value) }
                    }) {
                        Some(sig) if sig > 0 => Expect::Signal(sig),
                        other => Expect::Errno(other.unwrap_or(0)),
                    }
                };
                expect_eq("store through a mapping", step, got, expect);
            }
            Step::Peek {
                map,
                offset,
                expect,
            } => {
                let p = self.maps[*map].addr.wrapping_add(*offset);
                // SAFETY: The model says the page is mapped (every mapping is readable).
                let b = unsafe { sys::peek(p) };
                expect_eq(
                    "load through a mapping",
                    step,
                    Expect::Bytes(vec![b]),
                    expect,
                );
            }
            Step::Pwrite {
                slot,
                pos,
                len,
                value,
                expect,
            } => {
                let data = vec![*value; *len];
                let r = sys::pwrite_raw(self.fd(*slot), data.as_ptr(), *len, *pos);
                expect_eq("pwrite", step, outcome(r, Expect::Count), expect);
            }
            Step::Pread {
                slot,
                pos,
                len,
                expect,
            } => {
                let mut buf = vec![0u8; *len];
                let r = sys::pread_raw(self.fd(*slot), buf.as_mut_ptr(), *len, *pos);
                let got = outcome(r, |n| match expect {
                    Expect::Count(_) => Expect::Count(n),
                    _ => Expect::Bytes(buf[..n].to_vec()),
                });
                expect_eq("pread", step, got, expect);
            }
            Step::Fsync {
                slot,
                data_only,
                expect,
            } => {
                let r = sys::fsync(self.fd(*slot), *data_only);
                expect_eq("fsync", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::SeekIo {
                slot,
                seek,
                pos,
                write,
                value,
                len,
                expect,
            } => {
                let fd = self.fd(*slot);
                let at = if *seek {
                    sys::lseek(fd, *pos as i64, libc::SEEK_SET).expect("lseek")
                } else {
                    // A pool file cannot seek (ESPIPE); read/write it where it is.
                    let r = sys::lseek(fd, *pos as i64, libc::SEEK_SET);
                    expect_eq(
                        "lseek of a pool file",
                        step,
                        outcome(r, |_| Expect::Ok),
                        &Expect::Errno(libc::ESPIPE),
                    );
                    0
                };
                let got = if *write {
                    outcome(sys::write_fd(fd, &vec![*value; *len]), Expect::Count)
                } else {
                    let mut buf = vec![0u8; *len];
                    let r = sys::read_fd(fd, &mut buf);
                    outcome(r, |n| match expect {
                        Expect::Count(_) => Expect::Count(n),
                        _ => Expect::Bytes(buf[..n].to_vec()),
                    })
                };
                expect_eq(
                    if *write { "write(2)" } else { "read(2)" },
                    step,
                    got,
                    expect,
                );
                let now = if *seek {
                    sys::lseek(fd, 0, libc::SEEK_CUR).expect("lseek")
                } else {
                    0
                };
                if now != at {
                    panic!(
                        "read/write moved the position {at:#x} -> {now:#x} (step {})",
                        step_summary(step)
                    );
                }
            }
            Step::Fork {
                checks,
                store,
                dontfork,
                expect,
            } => {
                let maps: Vec<(usize, usize)> =
                    self.maps.iter().map(|r| (r.addr as usize, r.len)).collect();
                let got = match sys::wait_child(sys::spawn_child(|| {
                    for &(i, offset, want) in checks {
                        // SAFETY: The model says the mapping is inherited and readable.
                        let b = unsafe { sys::peek((maps[i].0 + offset) as *const u8) };
                        if b != want {
                            return 3;
                        }
                    }
                    if let Some((i, offset, v)) = *store {
                        // SAFETY: The model says this shared mapping is writable.
                        unsafe { sys::poke((maps[i].0 + offset) as *mut u8, v) };
                    }
                    if let Some(i) = *dontfork {
                        // SAFETY: Not inherited: the fault is the point.
                        std::hint::black_box(unsafe { sys::peek(maps[i].0 as *const u8) });
                        return 4;
                    }
                    0
                })) {
                    None => Expect::Ok,
                    Some(sig) if sig > 0 => Expect::Signal(sig),
                    Some(status) => Expect::Errno(-status),
                };
                expect_eq(
                    "fork (child status: Errno(3) = a byte differed)",
                    step,
                    got,
                    expect,
                );
            }
            Step::Threads {
                slot,
                pos_a,
                pos_b,
                len,
                value,
            } => {
                let fd = self.fd(*slot);
                let (ra, rb) = std::thread::scope(|s| {
                    let a = s.spawn(|| {
                        let d = vec![*value; *len];
                        sys::pwrite_raw(fd, d.as_ptr(), *len, *pos_a).ok()
                    });
                    let b = s.spawn(|| {
                        let d = vec![value.wrapping_add(1); *len];
                        sys::pwrite_raw(fd, d.as_ptr(), *len, *pos_b).ok()
                    });
                    (a.join().ok().flatten(), b.join().ok().flatten())
                });
                if ra.is_none() || rb.is_none() {
                    panic!(
                        "concurrent pwrites failed: {ra:?} {rb:?} (step {})",
                        step_summary(step)
                    );
                }
            }
        }
    }

    fn state(&self) -> State {
        self.probe.state().expect("STATE")
    }

    fn check_gauges(&self, model: &Model, when: &str) {
        let s = self.state();
        let want = model.gauges();
        let got = gauges(&s);
        let expected: Vec<u64> = self.base.iter().zip(want).map(|(b, w)| b + w).collect();
        if got[..] != expected[..] {
            panic!(
                "STATE gauges {when}: got {got:?}, model says {expected:?} (baseline {:?}; pools, rings, pages, VMAs, pool files; last step {})",
                self.base,
                model.step.as_ref().map(step_summary).unwrap_or_default()
            );
        }
        if s.magic != STATE_MAGIC || !s.is_consistent() {
            panic!("STATE snapshot bad: {s:?}");
        }
    }
}

impl StateMachineTest for Driver {
    type SystemUnderTest = Driver;
    type Reference = Model;

    fn init_test(_model: &Model) -> Driver {
        let probe = Device::open().expect("open /dev/pktmap");
        let base = gauges(&probe.state().expect("STATE"));
        Driver {
            fds: std::array::from_fn(|_| None),
            maps: Vec::new(),
            base,
            probe,
        }
    }

    fn apply(mut sut: Driver, model: &Model, _t: Transition) -> Driver {
        STEPS.fetch_add(1, Ordering::Relaxed);
        if let Some(step) = &model.step {
            if !matches!(step, Step::Skip) {
                DONE.fetch_add(1, Ordering::Relaxed);
                if matches!(step.expect(), Some(Expect::Errno(_) | Expect::Signal(_))) {
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                }
            }
            for &tag in &model.tags {
                TALLY[tag as usize].fetch_add(1, Ordering::Relaxed);
            }
            if let Step::Ioctl {
                cmd: ioctl::POOL_CREATE,
                arg,
                expect: Expect::Id(_),
                ..
            } = step
            {
                if arg[2] == ioctl::POOL_LAZY {
                    let around = if arg[4] == 0 { 16 } else { arg[4] };
                    AROUND[around.trailing_zeros() as usize % 10].fetch_add(1, Ordering::Relaxed);
                }
            }
            let before = model.delta.map(|_| counters(&sut.state()));
            sut.run(step);
            if let (Some(want), Some(before)) = (model.delta, before) {
                let now = counters(&sut.state());
                let got = [now[0] - before[0], now[1] - before[1], now[2] - before[2]];
                if got != want {
                    panic!(
                        "fault counters moved {got:?}, model says {want:?} (faults served, pages mapped, PMD faults; step {})",
                        step_summary(step)
                    );
                }
                FAULTS_CHECKED.fetch_add(1, Ordering::Relaxed);
            }
        }
        sut
    }

    fn check_invariants(sut: &Driver, model: &Model) {
        sut.check_gauges(model, "after the step");
    }

    fn teardown(mut sut: Driver, _model: Model) {
        for r in sut.maps.drain(..) {
            // SAFETY: Mappings this test made, used by nothing else now.
            let _ = unsafe { sys::munmap(r.addr, r.len) };
        }
        sut.fds = std::array::from_fn(|_| None);
        let end = gauges(&sut.probe.state().expect("STATE"));
        if end != sut.base {
            panic!(
                "after closing everything the gauges are {end:?}, baseline {:?}",
                sut.base
            );
        }
    }
}

static STEPS: AtomicUsize = AtomicUsize::new(0);
/// Steps that did something (not `Skip`), and of those, how many the model said must fail.
static DONE: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
/// Steps whose fault counters (faults served, pages mapped, PMD faults) were predicted and
/// matched.
static FAULTS_CHECKED: AtomicUsize = AtomicUsize::new(0);

/// A deliberately wrong model, to show that a wrong prediction fails the test (and how a
/// failure is reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// The model is right.
    None,
    /// `--mutate`: a state-changing ioctl on a read-only open is predicted `EINVAL`, not
    /// `EBADF`.
    Ebadf,
    /// `--mutate=pools`: `MAP_PRIVATE` of a contiguous or 2 MiB pool is predicted to succeed
    /// (the driver refuses it: copy-on-write of a PFN map is meaningless).
    PfnPrivate,
}

static MUTATE: AtomicU8 = AtomicU8::new(0);

fn mutation() -> Mutation {
    match MUTATE.load(Ordering::Relaxed) {
        1 => Mutation::Ebadf,
        2 => Mutation::PfnPrivate,
        _ => Mutation::None,
    }
}

/// A 32-byte ChaCha seed from a `u64`.
fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in out.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Runs one case from `seed`: a sequence of up to `steps` steps, shrunk on failure.
fn run_case(seed: u64, steps: usize) -> Result<(), String> {
    let config = Config {
        cases: 1,
        failure_persistence: None,
        max_shrink_time: 60_000,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed));
    let mut runner = TestRunner::new_with_rng(config.clone(), rng);
    let strategy = Model::sequential_strategy(1..=steps);
    let result = runner.run(&strategy, |(initial, transitions, seen)| {
        Driver::test_sequential(config.clone(), initial, transitions, seen);
        Ok::<(), TestCaseError>(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, (_, transitions, _))) => {
            let mut s = format!("{why}\nminimal sequence ({} steps):", transitions.len());
            for t in transitions {
                s.push_str(&format!("\n    {t:?}"));
            }
            Err(s)
        }
        Err(e) => Err(format!("{e}")),
    }
}

/// `pktmap-guest sequence CASES STEPS [SEED] [--secs N]`: runs `CASES` cases (or as many as
/// fit in `N` seconds), each from seed `SEED + k` (random if not given), one check each.
pub fn run(
    r: &mut Report,
    cases: u32,
    steps: usize,
    seed: Option<u64>,
    secs: Option<u64>,
    mutate: Mutation,
) {
    MUTATE.store(
        match mutate {
            Mutation::None => 0,
            Mutation::Ebadf => 1,
            Mutation::PfnPrivate => 2,
        },
        Ordering::Relaxed,
    );
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!(
        "sequence: seed {seed}, {} of up to {steps} steps (reproduce one case: pktmap-guest sequence 1 {steps} SEED)",
        match secs {
            Some(s) => format!("cases for {s} s"),
            None => format!("{cases} cases"),
        }
    );
    // Failing steps panic; keep proptest's shrinking quiet and print the minimal case instead.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let deadline = secs.map(|s| start + Duration::from_secs(s));
    let mut k = 0u64;
    loop {
        let done = match deadline {
            Some(d) => Instant::now() >= d,
            None => k >= u64::from(cases),
        };
        if done {
            break;
        }
        let case_seed = seed.wrapping_add(k);
        let before = STEPS.load(Ordering::Relaxed);
        let result = run_case(case_seed, steps);
        let ran = STEPS.load(Ordering::Relaxed) - before;
        match &result {
            Ok(()) => r.check(
                &format!("sequence case {k} (seed {case_seed}, {ran} steps) matches the model"),
                true,
                "",
            ),
            Err(why) => {
                r.check(
                    &format!("sequence case {k} (seed {case_seed}) matches the model"),
                    false,
                    format!("reproduce: pktmap-guest sequence 1 {steps} {case_seed}\n{why}"),
                );
            }
        }
        k += 1;
    }
    std::panic::set_hook(hook);
    println!(
        "sequence: {k} cases, {} steps ({} acted, {} of them refused by design) in {:.1} s",
        STEPS.load(Ordering::Relaxed),
        DONE.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    println!(
        "sequence: {} steps had their fault counters predicted and matched",
        FAULTS_CHECKED.load(Ordering::Relaxed)
    );
    let tally: Vec<String> = TAG_NAMES
        .iter()
        .zip(&TALLY)
        .map(|(name, n)| format!("{name} {}", n.load(Ordering::Relaxed)))
        .collect();
    println!("sequence kinds: {}", tally.join(", "));
    let around: Vec<String> = AROUND
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{}: {}", 1 << k, n.load(Ordering::Relaxed)))
        .collect();
    println!(
        "sequence lazy pools per fault-around: {}",
        around.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktmap_abi::plan::{self, PoolKind};
    use proptest::strategy::ValueTree;

    /// The model's restated `POOL_CREATE` rules agree with `plan::check_pool`, which the driver
    /// runs: on generated requests and on raw field values.
    #[test]
    fn pool_rules_match_the_plan() {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(7)),
        );
        let raw = (
            any::<u32>(),
            any::<u32>(),
            0..16u32,
            prop_oneof![Just(0u32), 0..1100u32, any::<u32>()],
            0..4u32,
            prop_oneof![9 => Just(0u64), 1 => any::<u64>()],
        )
            .prop_map(
                |(buf_size, buf_count, flags, fault_around, cache, reserved)| PoolSpec {
                    buf_size: if buf_size % 2 == 0 {
                        1 << (buf_size % 20)
                    } else {
                        buf_size
                    },
                    buf_count: buf_count % 70_000,
                    flags,
                    fault_around,
                    cache,
                    reserved,
                },
            );
        let specs = prop_oneof![pool_spec(), raw];
        for _ in 0..20_000 {
            let s = specs.new_tree(&mut runner).expect("a spec").current();
            let req = ioctl::PoolCreate {
                buf_size: s.buf_size,
                buf_count: s.buf_count,
                flags: s.flags,
                id: 0,
                fault_around: s.fault_around,
                cache: s.cache,
                reserved: s.reserved,
            };
            let theirs = plan::check_pool(&req).map(|g| Geometry {
                kind: match g.kind {
                    PoolKind::Eager => Kind::Eager,
                    PoolKind::Lazy => Kind::Lazy(g.fault_around),
                    PoolKind::Contig => Kind::Contig,
                    PoolKind::Huge => Kind::Huge,
                },
                pages: g.pages as usize,
                chunk_pages: g.chunk_pages as usize,
                wc: g.cache == plan::Cache::WriteCombine,
            });
            assert_eq!(geometry(&s), theirs.map_err(|e| e.errno()), "{s:?}");
        }
    }

    /// The model alone (no driver) runs many generated sequences without tripping over
    /// itself, and they reach every kind the closing report counts.
    #[test]
    fn generated_sequences_reach_every_kind() {
        let mut seen = [0usize; TAGS];
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(11)),
        );
        let strategy = Model::sequential_strategy(1..=40);
        for _ in 0..600 {
            let (mut model, transitions, _) =
                strategy.new_tree(&mut runner).expect("a case").current();
            for t in &transitions {
                model = <Model as ReferenceStateMachine>::apply(model, t);
                for &tag in &model.tags {
                    seen[tag as usize] += 1;
                }
            }
        }
        let missing: Vec<&str> = TAG_NAMES
            .iter()
            .zip(seen)
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| *name)
            .collect();
        assert!(missing.is_empty(), "never exercised: {missing:?}");
    }
}
