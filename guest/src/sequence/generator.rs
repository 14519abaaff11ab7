//! The generator: what a step may be ([`Transition`], with selectors the model resolves when
//! it applies the step) and the strategies that draw them, weighted as a packet program uses
//! the device. [`transitions`] is `ReferenceStateMachine::transitions` for the model.

use super::model::Model;
use super::{PAGE, SLOTS};
use pktmap_abi::ioctl;
use proptest::prelude::*;
use proptest::sample::Index;

/// How an `open` of the device asks for access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `O_RDWR`.
    ReadWrite,
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`: no `mmap` (`EACCES`), no read (`EBADF`), and no export, which would read
    /// and map (`EBADF`).
    WriteOnly,
}

impl Access {
    /// Opened with `FMODE_READ`.
    pub fn readable(self) -> bool {
        self != Access::WriteOnly
    }

    /// Opened with `FMODE_WRITE`.
    pub fn writable(self) -> bool {
        self != Access::ReadOnly
    }
}

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
    /// `MADV_NOHUGEPAGE`: a THP opt-out; a 2 MiB pool's blocks then fault 4 KiB at a time.
    NoHugePage,
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
    pub fn words(&self) -> [u32; 8] {
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
    /// `open` of the device, read-write, read-only or write-only, into an empty slot.
    Open { slot: usize, access: Access },
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
    /// `fsync` (or `fdatasync`) of a device open or a pool file.
    Fsync { slot: usize, data: bool },
    /// `msync(MS_SYNC)` of a whole mapping.
    Msync { map: Index },
    /// `prctl(PR_SET_THP_DISABLE, on)`: the process-wide THP opt-out, for every later fault.
    ThpDisable { on: bool },
    /// `echo 4 > /proc/self/clear_refs`: soft-dirty tracking write-protects the process's
    /// entries (and VMAs), so the next store through any of them takes a write fault (CRIU's
    /// pre-dump).
    ClearRefs,
}

/// The slot a transition acts on, if it names one (and must find it open).
pub fn transition_slot(t: &Transition) -> Option<usize> {
    match *t {
        Transition::Open { .. }
        | Transition::Close { .. }
        | Transition::Munmap { .. }
        | Transition::Mprotect { .. }
        | Transition::Madvise { .. }
        | Transition::Mremap { .. }
        | Transition::Poke { .. }
        | Transition::Peek { .. }
        | Transition::Fork { .. }
        | Transition::Msync { .. }
        | Transition::ThpDisable { .. }
        | Transition::ClearRefs => None,
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
        | Transition::SeekIo { slot, .. }
        | Transition::Threads { slot, .. }
        | Transition::Fsync { slot, .. } => Some(slot),
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

/// The steps that make sense in `state`: nothing but `open` before a file is open, and
/// mapping steps only once there are mappings.
pub fn transitions(state: &Model) -> BoxedStrategy<Transition> {
    let open: Vec<usize> = (0..SLOTS).filter(|&s| state.is_open(s)).collect();
    let closed: Vec<usize> = (0..SLOTS).filter(|&s| !state.is_open(s)).collect();
    // Only called with a closed slot to open (`select` of nothing panics).
    let open_file = || {
        let access = prop_oneof![
            8 => Just(Access::ReadWrite),
            2 => Just(Access::ReadOnly),
            1 => Just(Access::WriteOnly),
        ];
        (prop::sample::select(closed.clone()), access)
            .prop_map(|(slot, access)| Transition::Open { slot, access })
    };
    // Nothing but `open` makes sense before a file is open.
    if open.is_empty() {
        return open_file().boxed();
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
        Just(Advice::WipeOnFork),
        Just(Advice::NoHugePage)
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
        3 => (slot(), pick(), any::<bool>(), any::<u8>()).prop_map(
            |(slot, pick, write, value)| Transition::SeekIo { slot, pick, write, value }
        ),
        1 => (slot(), any::<Index>(), any::<Index>(), any::<u8>())
            .prop_map(|(slot, a, b, value)| Transition::Threads { slot, a, b, value }),
        1 => (slot(), any::<bool>()).prop_map(|(slot, data)| Transition::Fsync { slot, data }),
        1 => prop::bool::weighted(0.3).prop_map(|on| Transition::ThpDisable { on }),
    ];
    let mut all = vec![(30, files.boxed())];
    if !closed.is_empty() {
        all.push((2, open_file().boxed()));
    }
    if state.has_maps() {
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
            1 => any::<Index>().prop_map(|map| Transition::Msync { map }),
            2 => Just(Transition::ClearRefs),
        ];
        all.push((22, maps.boxed()));
    }
    prop::strategy::Union::new_weighted(all).boxed()
}
