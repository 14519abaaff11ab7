//! The reference model (proptest-state-machine's `ReferenceStateMachine`): the open files,
//! pools, rings and mappings the device must have, and for each generated step the outcome it
//! must produce. One method per family of steps, by file: files and the dispatch here, the
//! ioctls in `ioctls.rs`, mappings and the loads and stores through them in `mappings.rs`,
//! `pread`/`pwrite`/`read`/`write` in `io.rs`.

mod io;
mod ioctls;
mod mappings;

use super::generator::{self, Access, Pick, PoolSpec, Transition};
use super::step::{Expect, Step, Tag};
use super::{PMD_PAGES, SLOTS};
use pktmap::offset::ResourceType;
use pktmap_abi::ioctl;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest_state_machine::ReferenceStateMachine;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};

/// Live mappings at most (more `Mmap` steps fail nothing but are skipped).
const MAX_MAPS: usize = 6;

/// How a resource's pages reach a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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
    /// Opened for reading (`O_RDONLY` or `O_RDWR`; every pool file).
    readable: bool,
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
    /// `MADV_NOHUGEPAGE` (a THP opt-out of its VMAs).
    nohuge: bool,
    /// Its VMAs lost `VM_SOFTDIRTY` to a `clear_refs` (so they want write notification: a
    /// store through an entry made or kept read-only takes a write fault).
    soft_clean: bool,
    /// The resource page of the mapping's first page.
    first: usize,
    /// Where the first page lies in its 2 MiB block of address space, in pages, when the
    /// model knows (2 MiB pools mapped 2 MiB or more).
    grid: Option<usize>,
    pages: Vec<MapPage>,
}

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
    /// `PR_SET_THP_DISABLE` is set: no fault maps a 2 MiB entry.
    thp_off: bool,
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

pub fn mutation() -> Mutation {
    match MUTATE.load(Ordering::Relaxed) {
        1 => Mutation::Ebadf,
        2 => Mutation::PfnPrivate,
        _ => Mutation::None,
    }
}

/// Makes the model wrong on purpose (or right again) for the whole run.
pub fn set_mutation(m: Mutation) {
    let v = match m {
        Mutation::None => 0,
        Mutation::Ebadf => 1,
        Mutation::PfnPrivate => 2,
    };
    MUTATE.store(v, Ordering::Relaxed);
}

impl Model {
    /// Whether `slot` holds an open file.
    pub fn is_open(&self, slot: usize) -> bool {
        self.fds[slot].is_some()
    }

    /// Whether any mapping is live.
    pub fn has_maps(&self) -> bool {
        !self.maps.is_empty()
    }

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

    /// Whether `slot` holds a pool file (whose ioctls but `POOL_INFO` are `ENOTTY`).
    fn is_pool_file(&self, slot: usize) -> bool {
        self.fds[slot]
            .as_ref()
            .is_some_and(|f| f.pool_file.is_some())
    }

    fn resolve_map(&self, idx: Index) -> Option<usize> {
        (!self.maps.is_empty()).then(|| idx.index(self.maps.len()))
    }

    /// Resolves transition `t` against the model, updating it: the step to perform and what
    /// it must produce.
    fn step(&mut self, t: &Transition) -> Step {
        self.delta = None;
        self.tags.clear();
        // Every transition but `Open` and `Close` names a slot that must be open.
        if generator::transition_slot(t).is_some_and(|slot| !self.is_open(slot)) {
            return Step::Skip;
        }
        match *t {
            Transition::Open { slot, access } => self.open(slot, access),
            Transition::Close { slot } => self.close(slot),
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
            Transition::Munmap { map, part } => self.munmap(map, part),
            Transition::Mprotect {
                map,
                vma,
                first_page_only,
                prot,
            } => self.mprotect(map, vma, first_page_only, prot),
            Transition::Madvise { map, advice } => self.madvise(map, advice),
            Transition::Mremap { map, grow } => self.mremap(map, grow),
            Transition::Poke { map, at, value } => self.poke(map, at, value),
            Transition::Peek { map, at } => self.peek(map, at),
            Transition::Pwrite {
                slot,
                pick,
                len,
                value,
            } => self.pwrite(slot, pick, len, value),
            Transition::Pread { slot, pick } => self.pread(slot, pick),
            Transition::SeekIo {
                slot,
                pick,
                write,
                value,
            } => self.seek_io(slot, pick, write, value),
            Transition::Fork { value } => self.fork(value),
            Transition::Threads { slot, a, b, value } => self.threads(slot, a, b, value),
            Transition::Fsync { slot, data } => self.fsync(slot, data),
            Transition::Msync { map } => self.msync(map),
            Transition::ThpDisable { on } => self.thp_disable(on),
            Transition::ClearRefs => self.clear_refs(),
        }
    }

    /// `open` of the device into an empty slot.
    fn open(&mut self, slot: usize, access: Access) -> Step {
        if self.fds[slot].is_some() {
            return Step::Skip;
        }
        if access == Access::WriteOnly {
            self.tags.push(Tag::WriteOnlyOpen);
        }
        self.files += 1;
        self.fds[slot] = Some(Fd {
            file: self.files,
            writable: access.writable(),
            readable: access.readable(),
            pool_file: None,
            pools: BTreeMap::new(),
            rings: BTreeMap::new(),
            next_pool: 1,
            next_ring: 1,
        });
        Step::Open { slot, access }
    }

    /// `close`: the file's table lives on while mappings made through it exist; a pool
    /// file's pool too.
    fn close(&mut self, slot: usize) -> Step {
        let Some(fd) = self.fds[slot].take() else {
            return Step::Skip;
        };
        if fd.pool_file.is_some() && self.maps.iter().any(|m| m.file == fd.file) {
            self.tags.push(Tag::PoolFileClosedMapped);
        }
        Step::Close { slot }
    }
}

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        generator::transitions(state)
    }

    fn apply(mut state: Model, t: &Transition) -> Model {
        let step = state.step(t);
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
        if ends_table && state.pool_outlives_creator() {
            state.tags.push(Tag::PoolOutlivesCreator);
        }
        state.step = Some(step);
        state
    }
}
