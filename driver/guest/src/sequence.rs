//! The model-checked sequence test: seeded random sequences of open/close, pool and ring
//! create/destroy, `mmap` with every flag (shared and private, read-only, `POPULATE`,
//! `PROT_EXEC`, good and bad offsets and lengths), whole and partial `munmap`, `mremap`,
//! `mprotect`, `madvise` (`DONTNEED`, `DONTFORK`, `DOFORK`, `WIPEONFORK`), `fork`, threads,
//! `pread`/`pwrite` and `read`/`write`/`lseek` — each step checked against a reference model:
//! the errno or signal, the bytes seen through mappings and through `pread`, and the STATE
//! gauges (pools, rings, pages allocated, live VMAs).
//!
//! Built on proptest-state-machine: [`Model`] is the `ReferenceStateMachine` (it generates the
//! steps and predicts every outcome), [`Driver`] the `StateMachineTest` that performs each step
//! on `/dev/pktmap` and compares. Each case runs from its own seed (printed), so a failure is
//! reproduced with `pktmap-guest sequence 1 STEPS SEED`; proptest shrinks it first and the
//! minimal sequence is printed.
//!
//! The model needs the device to itself: the STATE gauges are device-wide, so nothing else may
//! run in the guest meanwhile (the guest runs one program at a time).

use crate::sys::{self, in_child};
use crate::Report;
use pktmap::device::Device;
use pktmap::offset::ResourceType;
use pktmap_abi::ioctl::{self, State, STATE_MAGIC};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
/// Open-file slots.
const SLOTS: usize = 3;
/// Live mappings at most (more `Mmap` steps fail nothing but are skipped).
const MAX_MAPS: usize = 6;

/// Which resource a step names.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// The STATE page.
    State,
    /// One of the slot's pools (a bogus id if it has none).
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
    /// `MADV_DONTNEED`: drops private copies; shared pages fault back.
    DontNeed,
    /// `MADV_DONTFORK`.
    DontFork,
    /// `MADV_DOFORK`.
    DoFork,
    /// `MADV_WIPEONFORK`: `EINVAL` on a file mapping.
    WipeOnFork,
}

/// One generated step, with selectors resolved against the model when applied.
#[derive(Clone, Debug)]
pub enum Transition {
    /// `open`, read-write or read-only, into an empty slot.
    Open { slot: usize, writable: bool },
    /// `close` a slot (its mappings stay).
    Close { slot: usize },
    /// `POOL_CREATE` of `pages` 4 KiB buffers.
    PoolCreate { slot: usize, pages: u32, lazy: bool },
    /// `POOL_DESTROY`.
    PoolDestroy { slot: usize, pick: Pick },
    /// `RING_CREATE` of 8 entries on a pool.
    RingCreate { slot: usize, pick: Pick },
    /// `RING_DESTROY`.
    RingDestroy { slot: usize, pick: Pick },
    /// `mmap`.
    Mmap {
        slot: usize,
        pick: Pick,
        pages: usize,
        shared: bool,
        write: bool,
        exec: bool,
        populate: bool,
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
    pages: usize,
    data: Vec<u8>,
    /// `(file, id)` while in an open file's table (the file lives while a slot holds it or a
    /// mapping made through it exists: `release` runs after the last of them).
    table: Option<(usize, u32)>,
}

/// An open file.
#[derive(Clone, Debug)]
struct Fd {
    /// Which open (each `open` makes a new file).
    file: usize,
    writable: bool,
    pools: BTreeMap<u32, usize>,
    rings: BTreeMap<u32, usize>,
    next_pool: u32,
    next_ring: u32,
}

/// One page of a mapping.
#[derive(Clone, Debug)]
struct MapPage {
    /// This page starts a VMA.
    vma_start: bool,
    write: bool,
    /// A private copy (copy on write), if the mapping wrote it.
    copy: Option<Vec<u8>>,
}

/// A mapping: consecutive pages of one resource (`obj` `None` is STATE).
#[derive(Clone, Debug)]
struct Map {
    /// The file it was mapped through (its `vm_file` keeps the file, and so its table, alive).
    file: usize,
    obj: Option<usize>,
    shared: bool,
    maywrite: bool,
    dontfork: bool,
    /// The resource page of the mapping's first page.
    first: usize,
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
        arg: [u32; 4],
        expect: Expect,
    },
    Mmap {
        slot: usize,
        offset: u64,
        len: usize,
        prot: i32,
        flags: i32,
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
    SeekIo {
        slot: usize,
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

/// The reference model.
#[derive(Clone, Debug, Default)]
pub struct Model {
    fds: [Option<Fd>; SLOTS],
    objs: Vec<Obj>,
    maps: Vec<Map>,
    /// Files opened so far.
    files: usize,
    /// The step the last transition resolved to.
    pub step: Option<Step>,
}

impl Model {
    /// Whether file `f` is still alive: open in a slot, or mapped.
    fn file_alive(&self, f: usize) -> bool {
        self.fds.iter().flatten().any(|fd| fd.file == f) || self.maps.iter().any(|m| m.file == f)
    }

    /// Whether object `i` is alive: in a live file's table, mapped, or the pool of a live ring.
    fn alive(&self, i: usize) -> bool {
        let o = &self.objs[i];
        o.table.is_some_and(|(f, _)| self.file_alive(f))
            || self.maps.iter().any(|m| m.obj == Some(i))
            || self
                .objs
                .iter()
                .enumerate()
                .any(|(j, r)| r.ring_of == Some(i) && j != i && self.alive(j))
    }

    /// The gauges STATE must show, above the baseline: pools, rings, pages, VMAs.
    pub fn gauges(&self) -> [u64; 4] {
        let mut g = [0u64; 4];
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
        g
    }

    fn offset_of(map_type: ResourceType, id: u32) -> u64 {
        map_type.offset(id)
    }

    /// Resolves `pick` in `slot` to `(offset, object)`; object `None` is STATE or nothing.
    fn resolve(&self, slot: usize, pick: Pick) -> (u64, Option<usize>) {
        let fd = self.fds[slot].as_ref();
        let choose = |m: Option<&BTreeMap<u32, usize>>, idx: Index| {
            let m = m.filter(|m| !m.is_empty())?;
            let (id, obj) = m.iter().nth(idx.index(m.len()))?;
            Some((*id, *obj))
        };
        match pick {
            Pick::State => (0, None),
            Pick::Pool(i) => match choose(fd.map(|f| &f.pools), i) {
                Some((id, o)) => (Self::offset_of(ResourceType::Pool, id), Some(o)),
                None => (Self::offset_of(ResourceType::Pool, 4000), None),
            },
            Pick::Ring(i) => match choose(fd.map(|f| &f.rings), i) {
                Some((id, o)) => (Self::offset_of(ResourceType::Ring, id), Some(o)),
                None => (Self::offset_of(ResourceType::Ring, 4000), None),
            },
            Pick::Bogus => (Self::offset_of(ResourceType::Pool, 4001), None),
            Pick::Misaligned(i) => match choose(fd.map(|f| &f.pools), i) {
                Some((id, _)) => (Self::offset_of(ResourceType::Pool, id) + 8, None),
                None => (Self::offset_of(ResourceType::Pool, 1) + 8, None),
            },
        }
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
        Some(self.page_view(m, offset / PAGE)[offset % PAGE])
    }

    /// Applies a pwrite/write of `len` bytes of `value` to object `o`; returns the count.
    fn write_obj(&mut self, o: usize, len: usize, value: u8) -> usize {
        let obj = &mut self.objs[o];
        let n = len.min(obj.data.len());
        obj.data[..n].fill(value);
        n
    }

    /// What a pread/read at `(offset, obj)` returns for a `len`-byte buffer.
    fn read_expect(&self, slot: usize, offset: u64, obj: Option<usize>, len: usize) -> Expect {
        if self.fds[slot].is_none() {
            return Expect::Errno(libc::EBADF);
        }
        match obj {
            Some(o) => {
                let d = &self.objs[o].data;
                Expect::Bytes(d[..len.min(d.len())].to_vec())
            }
            None if offset == 0 => Expect::Count(len.min(PAGE)),
            None => Expect::Errno(libc::EINVAL),
        }
    }

    /// What a pwrite/write at `(offset, obj)` does; updates the model.
    fn write_expect(
        &mut self,
        slot: usize,
        offset: u64,
        obj: Option<usize>,
        len: usize,
        value: u8,
    ) -> Expect {
        let Some(fd) = &self.fds[slot] else {
            return Expect::Errno(libc::EBADF);
        };
        if !fd.writable {
            return Expect::Errno(libc::EBADF);
        }
        match obj {
            Some(o) => Expect::Count(self.write_obj(o, len, value)),
            None if offset == 0 => Expect::Errno(libc::EPERM),
            None => Expect::Errno(libc::EINVAL),
        }
    }

    fn ioctl_step(slot: usize, cmd: u32, arg: [u32; 4], expect: Expect) -> Step {
        let expect = match expect {
            Expect::Errno(libc::EBADF) if MUTATE.load(Ordering::Relaxed) => {
                Expect::Errno(libc::EINVAL)
            }
            e => e,
        };
        Step::Ioctl {
            slot,
            cmd,
            arg,
            expect,
        }
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

    fn step(mut self, t: &Transition) -> (Self, Step) {
        let step = match *t {
            Transition::Open { slot, writable } => {
                if self.fds[slot].is_some() {
                    Step::Skip
                } else {
                    self.files += 1;
                    self.fds[slot] = Some(Fd {
                        file: self.files,
                        writable,
                        pools: BTreeMap::new(),
                        rings: BTreeMap::new(),
                        next_pool: 1,
                        next_ring: 1,
                    });
                    Step::Open { slot, writable }
                }
            }
            // The file's table lives on while mappings made through it exist.
            Transition::Close { slot } => match self.fds[slot].take() {
                None => Step::Skip,
                Some(_) => Step::Close { slot },
            },
            Transition::PoolCreate { slot, pages, lazy } => {
                let Some(fd) = &mut self.fds[slot] else {
                    return (self, Step::Skip);
                };
                let arg = [4096, pages, if lazy { ioctl::POOL_LAZY } else { 0 }, 0];
                if !fd.writable {
                    Self::ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(libc::EBADF))
                } else {
                    let id = fd.next_pool;
                    fd.next_pool += 1;
                    fd.pools.insert(id, self.objs.len());
                    let file = fd.file;
                    self.objs.push(Obj {
                        ring_of: None,
                        pages: pages as usize,
                        data: vec![0; pages as usize * PAGE],
                        table: Some((file, id)),
                    });
                    Self::ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Id(id))
                }
            }
            Transition::PoolDestroy { slot, pick } => {
                let Some(fd) = &self.fds[slot] else {
                    return (self, Step::Skip);
                };
                let (offset, obj) = self.resolve(slot, pick);
                let id = pktmap::offset::PKTMAP
                    .decode(offset & !0xfff)
                    .map(|(_, id)| id as u32)
                    .unwrap_or(4000);
                let _ = obj;
                let arg = [id, 0, 0, 0];
                let expect = if !fd.writable {
                    Expect::Errno(libc::EBADF)
                } else {
                    match fd.pools.get(&id).copied() {
                        None => Expect::Errno(libc::EINVAL),
                        Some(o) => {
                            let named = fd.rings.values().any(|r| self.objs[*r].ring_of == Some(o));
                            if named {
                                Expect::Errno(libc::EBUSY)
                            } else {
                                let fd = self.fds[slot].as_mut().expect("open");
                                fd.pools.remove(&id);
                                self.objs[o].table = None;
                                Expect::Ok
                            }
                        }
                    }
                };
                Self::ioctl_step(slot, ioctl::POOL_DESTROY, arg, expect)
            }
            Transition::RingCreate { slot, pick } => {
                let Some(fd) = &self.fds[slot] else {
                    return (self, Step::Skip);
                };
                let (offset, obj) = self.resolve(slot, pick);
                let pool_id = pktmap::offset::PKTMAP
                    .decode(offset & !0xfff)
                    .map(|(_, id)| id as u32)
                    .unwrap_or(4000);
                let _ = obj;
                let arg = [8, pool_id, 0, 0];
                let pool = fd.pools.get(&pool_id).copied();
                let expect = if !fd.writable {
                    Expect::Errno(libc::EBADF)
                } else if let Some(p) = pool {
                    let fd = self.fds[slot].as_mut().expect("open");
                    let id = fd.next_ring;
                    fd.next_ring += 1;
                    fd.rings.insert(id, self.objs.len());
                    let file = fd.file;
                    let mut data = vec![0u8; PAGE];
                    data[8..12].copy_from_slice(&8u32.to_ne_bytes());
                    data[12..16].copy_from_slice(&pool_id.to_ne_bytes());
                    self.objs.push(Obj {
                        ring_of: Some(p),
                        pages: 1,
                        data,
                        table: Some((file, id)),
                    });
                    Expect::Id(id)
                } else {
                    Expect::Errno(libc::EINVAL)
                };
                Self::ioctl_step(slot, ioctl::RING_CREATE, arg, expect)
            }
            Transition::RingDestroy { slot, pick } => {
                let Some(fd) = &self.fds[slot] else {
                    return (self, Step::Skip);
                };
                let (offset, obj) = self.resolve(slot, pick);
                let id = pktmap::offset::PKTMAP
                    .decode(offset & !0xfff)
                    .map(|(_, id)| id as u32)
                    .unwrap_or(4000);
                let _ = obj;
                let expect = if !fd.writable {
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
                Self::ioctl_step(slot, ioctl::RING_DESTROY, [id, 0, 0, 0], expect)
            }
            Transition::Mmap {
                slot,
                pick,
                pages,
                shared,
                write,
                exec,
                populate,
            } => {
                let Some(fd) = &self.fds[slot] else {
                    return (self, Step::Skip);
                };
                if self.maps.len() >= MAX_MAPS {
                    return (self, Step::Skip);
                }
                let (offset, obj) = self.resolve(slot, pick);
                let prot = libc::PROT_READ
                    | if write { libc::PROT_WRITE } else { 0 }
                    | if exec { libc::PROT_EXEC } else { 0 };
                let flags = if shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                } | if populate { libc::MAP_POPULATE } else { 0 };
                let is_state = matches!(pick, Pick::State);
                let size = match obj {
                    Some(o) => Some(self.objs[o].pages),
                    None if is_state => Some(1),
                    None => None,
                };
                let expect = if matches!(pick, Pick::Misaligned(_)) {
                    Expect::Errno(libc::EINVAL)
                } else if shared && write && !fd.writable {
                    Expect::Errno(libc::EACCES)
                } else if size.is_none_or(|s| pages > s) {
                    Expect::Errno(libc::EINVAL)
                } else if (is_state && write) || exec {
                    Expect::Errno(libc::EPERM)
                } else {
                    let maywrite = !is_state && (!shared || write) && (fd.writable || !shared);
                    let file = fd.file;
                    let mut map = Map {
                        file,
                        obj,
                        shared,
                        maywrite,
                        dontfork: false,
                        first: 0,
                        pages: (0..pages)
                            .map(|i| MapPage {
                                vma_start: i == 0,
                                write,
                                copy: None,
                            })
                            .collect(),
                    };
                    // MAP_POPULATE of a private writable mapping faults every page for write,
                    // which breaks copy-on-write up front: each page is a private copy of the
                    // resource as it is now, and later changes to the resource stay unseen.
                    if populate && write && !shared {
                        for p in 0..pages {
                            map.pages[p].copy = Some(self.page_view(&map, p));
                        }
                    }
                    self.maps.push(map);
                    Expect::Ok
                };
                Step::Mmap {
                    slot,
                    offset,
                    len: pages * PAGE,
                    prot,
                    flags,
                    expect,
                }
            }
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
                if pages == len {
                    self.maps.remove(i);
                } else if split {
                    let m = &mut self.maps[i];
                    let mut tail: Vec<MapPage> = m.pages.split_off(page);
                    tail.remove(0);
                    tail[0].vma_start = true;
                    let second = Map {
                        first: m.first + page + 1,
                        pages: tail,
                        ..m.clone()
                    };
                    self.maps.insert(i + 1, second);
                } else if page == 0 {
                    let m = &mut self.maps[i];
                    m.pages.remove(0);
                    m.pages[0].vma_start = true;
                    m.first += 1;
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
                let m = &mut self.maps[i];
                let expect = if exec || (want_write && !m.maywrite) {
                    Expect::Errno(libc::EACCES)
                } else {
                    if m.pages[start].write != want_write {
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
                let (advice, expect) = match advice {
                    Advice::DontNeed => {
                        for p in &mut m.pages {
                            p.copy = None;
                        }
                        (libc::MADV_DONTNEED, Expect::Ok)
                    }
                    Advice::DontFork => {
                        m.dontfork = true;
                        (libc::MADV_DONTFORK, Expect::Ok)
                    }
                    Advice::DoFork => {
                        m.dontfork = false;
                        (libc::MADV_DOFORK, Expect::Ok)
                    }
                    Advice::WipeOnFork => (libc::MADV_WIPEONFORK, Expect::Errno(libc::EINVAL)),
                };
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
                let len = self.maps[i].pages.len() * PAGE;
                let offset = at.index(len);
                let m = &self.maps[i];
                let p = offset / PAGE;
                let expect = if !m.pages[p].write {
                    Expect::Signal(libc::SIGSEGV)
                } else if m.shared {
                    let o = m.obj.expect("a writable mapping is not STATE");
                    let at = (m.first + p) * PAGE + offset % PAGE;
                    self.objs[o].data[at] = value;
                    Expect::Ok
                } else {
                    let mut view = self.page_view(m, p);
                    view[offset % PAGE] = value;
                    self.maps[i].pages[p].copy = Some(view);
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
                    Some(b) => Step::Peek {
                        map: i,
                        offset,
                        expect: Expect::Bytes(vec![b]),
                    },
                    None => Step::Skip,
                }
            }
            Transition::Pwrite {
                slot,
                pick,
                len,
                value,
            } => {
                if self.fds[slot].is_none() {
                    return (self, Step::Skip);
                }
                let (pos, obj) = self.resolve(slot, pick);
                let expect = self.write_expect(slot, pos, obj, len, value);
                Step::Pwrite {
                    slot,
                    pos,
                    len,
                    value,
                    expect,
                }
            }
            Transition::Pread { slot, pick } => {
                if self.fds[slot].is_none() {
                    return (self, Step::Skip);
                }
                let (pos, obj) = self.resolve(slot, pick);
                let len = 4 * PAGE;
                let expect = self.read_expect(slot, pos, obj, len);
                Step::Pread {
                    slot,
                    pos,
                    len,
                    expect,
                }
            }
            Transition::SeekIo {
                slot,
                pick,
                write,
                value,
            } => {
                if self.fds[slot].is_none() {
                    return (self, Step::Skip);
                }
                let (pos, obj) = self.resolve(slot, pick);
                let len = 2 * PAGE;
                let expect = if write {
                    self.write_expect(slot, pos, obj, len, value)
                } else {
                    self.read_expect(slot, pos, obj, len)
                };
                Step::SeekIo {
                    slot,
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
                let Some(fd) = &self.fds[slot] else {
                    return (self, Step::Skip);
                };
                if !fd.writable || fd.pools.len() < 2 {
                    return (self, Step::Skip);
                }
                let (pa, oa) = self.resolve(slot, Pick::Pool(a));
                let (pb, ob) = self.resolve(slot, Pick::Pool(b));
                if oa == ob {
                    return (self, Step::Skip);
                }
                let len = 2 * PAGE;
                self.write_obj(oa.expect("pool"), len, value);
                self.write_obj(ob.expect("pool"), len, value.wrapping_add(1));
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

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::State),
        6 => any::<Index>().prop_map(Pick::Pool),
        3 => any::<Index>().prop_map(Pick::Ring),
        1 => Just(Pick::Bogus),
        1 => any::<Index>().prop_map(Pick::Misaligned),
    ]
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
        let files = prop_oneof![
            1 => slot().prop_map(|slot| Transition::Close { slot }),
            6 => (slot(), 1..=3u32, any::<bool>())
                .prop_map(|(slot, pages, lazy)| Transition::PoolCreate { slot, pages, lazy }),
            2 => (slot(), pick()).prop_map(|(slot, pick)| Transition::PoolDestroy { slot, pick }),
            2 => (slot(), pick()).prop_map(|(slot, pick)| Transition::RingCreate { slot, pick }),
            1 => (slot(), pick()).prop_map(|(slot, pick)| Transition::RingDestroy { slot, pick }),
            10 => (
                slot(),
                pick(),
                1..=4usize,
                any::<bool>(),
                prop::bool::weighted(0.6),
                prop::bool::weighted(0.1),
                any::<bool>()
            )
                .prop_map(|(slot, pick, pages, shared, write, exec, populate)| {
                    Transition::Mmap { slot, pick, pages, shared, write, exec, populate }
                }),
            4 => (slot(), pick(), 1..=(3 * PAGE + 100), any::<u8>()).prop_map(
                |(slot, pick, len, value)| Transition::Pwrite { slot, pick, len, value }
            ),
            4 => (slot(), pick()).prop_map(|(slot, pick)| Transition::Pread { slot, pick }),
            3 => (slot(), pick(), any::<bool>(), any::<u8>()).prop_map(
                |(slot, pick, write, value)| Transition::SeekIo { slot, pick, write, value }
            ),
            1 => (slot(), any::<Index>(), any::<Index>(), any::<u8>())
                .prop_map(|(slot, a, b, value)| Transition::Threads { slot, a, b, value }),
        ];
        let mut all = vec![(22, files.boxed())];
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
    base: [u64; 4],
    probe: Device,
}

fn gauges(s: &State) -> [u64; 4] {
    [s.pools, s.rings, s.pages_allocated, s.live_mappings]
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
            } => {
                // The argument's first words, then zeros up to the largest argument struct
                // (`PoolCreate`, 32 bytes: its fields past `id` must be 0).
                let mut a = [0u32; 8];
                a[..arg.len()].copy_from_slice(arg);
                let r = sys::ioctl_raw(self.fd(*slot), *cmd, a.as_mut_ptr().cast());
                let got = outcome(r, |()| match expect {
                    Expect::Id(_) => Expect::Id(a[3]),
                    _ => Expect::Ok,
                });
                expect_eq("ioctl", step, got, expect);
            }
            Step::Mmap {
                slot,
                offset,
                len,
                prot,
                flags,
                expect,
            } => {
                let r = sys::mmap_raw(Some(self.fd(*slot)), *len, *prot, *flags, *offset);
                let got = outcome(r, |addr| {
                    self.maps.push(Region { addr, len: *len });
                    Expect::Ok
                });
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
            Step::SeekIo {
                slot,
                pos,
                write,
                value,
                len,
                expect,
            } => {
                let fd = self.fd(*slot);
                let at = sys::lseek(fd, *pos as i64, libc::SEEK_SET).expect("lseek");
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
                let now = sys::lseek(fd, 0, libc::SEEK_CUR).expect("lseek");
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

    fn check_gauges(&self, model: &Model, when: &str) {
        let s = self.probe.state().expect("STATE");
        let want = model.gauges();
        let got = gauges(&s);
        let expected: Vec<u64> = self.base.iter().zip(want).map(|(b, w)| b + w).collect();
        if got[..] != expected[..] {
            panic!(
                "STATE gauges {when}: got {got:?}, model says {expected:?} (baseline {:?}; pools, rings, pages, VMAs; last step {})",
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
            fds: [None, None, None],
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
                if format!("{step:?}").contains("Errno(") || format!("{step:?}").contains("Signal(")
                {
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                }
            }
            sut.run(step);
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
        sut.fds = [None, None, None];
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
/// Set by `--mutate`: the model predicts every new pool or ring id one too high, to show that a
/// wrong prediction fails the test (and how a failure is reported).
static MUTATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
    mutate: bool,
) {
    MUTATE.store(mutate, Ordering::Relaxed);
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
}
