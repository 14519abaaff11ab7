//! What passes from the reference model to the system under test: a [`Step`] resolved
//! against the model (what to do, concretely), the outcome it must have ([`Expect`]), and
//! what it exercised ([`Tag`], counted for the closing report).

use super::generator::Access;
use pktmap_abi::ioctl::PoolInfo;

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
        access: Access,
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
    Fsync {
        slot: usize,
        data: bool,
        expect: Expect,
    },
    Msync {
        map: usize,
        expect: Expect,
    },
    ThpDisable {
        on: bool,
    },
    ClearRefs,
}

impl Step {
    /// The outcome the step must have, if it has one.
    pub fn expect(&self) -> Option<&Expect> {
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
            | Step::SeekIo { expect, .. }
            | Step::Fork { expect, .. }
            | Step::Fsync { expect, .. }
            | Step::Msync { expect, .. } => Some(expect),
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
    WriteOnlyOpen,
    WriteOnlyRefused,
    Fsync,
    Msync,
    ThpOptOut,
    ThpOptOutFault,
    ClearRefs,
    SoftDirtyStore,
}

/// The report's name of each [`Tag`], in order.
pub const TAG_NAMES: [&str; 36] = [
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
    "write-only opens",
    "write-only mmaps, reads and exports refused",
    "fsyncs and fdatasyncs",
    "msyncs",
    "THP opt-outs (prctl, MADV_NOHUGEPAGE)",
    "2 MiB blocks faulted 4 KiB after a THP opt-out",
    "clear_refs (soft-dirty write-protect)",
    "stores into 2 MiB maps after clear_refs",
];
pub const TAGS: usize = TAG_NAMES.len();
