// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `/dev/pktmap` ioctls, their `#[repr(C)]` arguments, and the shared-memory layouts.
//!
//! Numbers follow the kernel's `_IOC` encoding (`include/uapi/asm-generic/ioctl.h`): direction in
//! bits 30..32, argument size in bits 16..30, the magic in bits 8..16 and the number in bits 0..8.
//! `include/pktmap.h` repeats every number and struct for C users; a host test checks they agree.
//!
//! | ioctl | argument | errors |
//! |---|---|---|
//! | [`POOL_CREATE`] | [`PoolCreate`] in, `id` out | `EINVAL` bad geometry or flags, `ENOMEM`, `ENOSPC` too many pools or past the device's page budget, `EINTR` if the caller is killed meanwhile |
//! | [`POOL_INFO`] | [`PoolInfo`], `id` in, the rest out | `EINVAL` unknown id |
//! | [`POOL_DESTROY`] | [`ResourceId`] | `EINVAL` unknown id (also the second destroy), `EBUSY` while a ring of this open file names the pool |
//! | [`RING_CREATE`] | [`RingCreate`] in, `id` out | `EINVAL` bad entries, flags or pool, `ENOMEM`, `ENOSPC` |
//! | [`RING_INFO`] | [`RingInfo`], `id` in, the rest out | `EINVAL` unknown id |
//! | [`RING_DESTROY`] | [`ResourceId`] | `EINVAL` unknown id |
//! | [`POOL_CHUNK`] | [`PoolChunk`], `id` and `index` in, the rest out | `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` unknown id or index |
//! | [`POOL_EXPORT`] | [`PoolExport`] in, `fd` out | `EINVAL` unknown id or flags, `EBADF` on an open not both readable and writable, `EMFILE`, `ENOMEM` |
//! | [`ATTACH`](packet::ATTACH), [`DETACH`](packet::DETACH), [`KICK`](packet::KICK) | see [`packet`] | |
//!
//! A pool's file descriptor (from [`POOL_EXPORT`]) answers [`POOL_INFO`] for id 0 and maps the
//! pool at the offset `PKTMAP.encode(POOL, 0)`; every other ioctl on it is `ENOTTY`.
//!
//! Any other command is `ENOTTY`; an unreadable or unwritable argument is `EFAULT`. The create
//! and destroy ioctls need a file opened for writing (`O_WRONLY` or `O_RDWR`), else `EBADF`;
//! the info ioctls work on any open.
//!
//! Pool and ring memory is charged to the memory cgroup of the task that creates it, and all
//! pools and rings of the device together may hold at most `page_budget` pages (a module
//! parameter, default three quarters of RAM at load time, shown in [`State::pages_budget`]).
//!
//! # Growing an argument struct
//!
//! The `_IOC` size bits of a request number carry the size of the caller's struct, so a struct
//! that grows changes the number: a program built against an older header asks for the old
//! number. The rule, DRM's `drm_ioctl` and `copy_struct_from_user`'s (as `clone3`, `openat2`
//! and `perf_event_open` use it):
//!
//! 1. **A struct grows only at its end**, by whole fields, never reordering, resizing or
//!    reusing one. A new field's zero value means what the struct meant before the field
//!    existed (`fault_around` 0 is the default window, `cache` 0 is write-back), in and out: a
//!    field the driver does not fill reads 0. [`sizes`] lists every size each struct has had.
//! 2. **The driver dispatches on direction, type and number**, never on the size bits
//!    ([`arg_size`]), and serves each call at the caller's size: it copies in
//!    `min(caller's, its own)` bytes and zero-fills the rest of its struct, so an older
//!    program's missing fields are the defaults, and copies back only `min(caller's, its own)`
//!    bytes, so nothing past the caller's struct is written.
//! 3. **A longer struct, from a program built against a newer header, is served only if every
//!    byte past the driver's struct is zero** (the new fields at their defaults); a non-zero
//!    byte there is `E2BIG` ([`check_tail`]), never silently ignored. The caller zeroes its
//!    whole struct before it sets fields, as for `clone3`.
//! 4. **A size shorter than today's that the struct never had is `ENOTTY`**: it names no
//!    request of this contract (and would cut a field in half).
//!
//! A program built against `include/pktmap.h` of an earlier round (a 16-byte
//! `pktmap_pool_create`, a 32-byte `pktmap_pool_info`) therefore runs unchanged, and one built
//! against a newer header gets `E2BIG` when it uses a field this driver does not know, not a
//! misread. The STATE page follows rule 1 alone: words are only appended, a `pread` of STATE
//! copies the caller's length (a 56-byte read is the seven words of the first round), and a
//! word past [`STATE_WORDS`] reads 0. `guest/compat/` keeps the first round's header and runs
//! a program built against it in the guest.

use super::packet;
use core::mem::size_of;
use core::ops::Range;

/// The ioctl magic of `/dev/pktmap` (`'P'`).
pub const MAGIC: u32 = b'P' as u32;

/// `_IOC_WRITE`: userspace writes the argument.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: userspace reads the argument back.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, MAGIC, nr, size)`: builds an ioctl number.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{ioc, IOC_READ, IOC_WRITE};
/// // _IOWR('P', 1, 16)
/// assert_eq!(ioc(IOC_READ | IOC_WRITE, 1, 16), 0xc010_5001);
/// ```
pub const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | (((size as u32) & 0x3fff) << 16) | (MAGIC << 8) | (nr & 0xff)
}

/// The direction bits (`_IOC_DIR`) of a request number.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{ioc_dir, IOC_READ, IOC_WRITE, POOL_CREATE};
/// assert_eq!(ioc_dir(POOL_CREATE), IOC_READ | IOC_WRITE);
/// ```
pub const fn ioc_dir(cmd: u32) -> u32 {
    cmd >> 30
}

/// The number (`_IOC_NR`) of a request number, with its type (`_IOC_TYPE`) in bits 8..16.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{ioc, ioc_type_nr, IOC_READ, IOC_WRITE, POOL_CREATE};
/// // The first round's 16-byte POOL_CREATE is the same request as today's.
/// assert_eq!(ioc_type_nr(ioc(IOC_READ | IOC_WRITE, 1, 16)), ioc_type_nr(POOL_CREATE));
/// assert_eq!(ioc_type_nr(POOL_CREATE), 0x5001); // type 'P', number 1
/// ```
pub const fn ioc_type_nr(cmd: u32) -> u32 {
    cmd & 0xffff
}

/// The size bits (`_IOC_SIZE`) of a request number: the caller's struct, in bytes.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{ioc, ioc_size, IOC_READ, IOC_WRITE};
/// assert_eq!(ioc_size(ioc(IOC_READ | IOC_WRITE, 1, 16)), 16);
/// ```
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// Every size the argument of each request has had, oldest first, by request (today's number,
/// whose size is the last): the growth rule's record (see "Growing an argument struct" above).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{sizes, POOL_CREATE, POOL_INFO};
/// assert_eq!(sizes(POOL_CREATE), &[16, 32]); // the first round's struct, then fault_around, cache, reserved
/// assert_eq!(sizes(POOL_INFO), &[32, 48]);
/// assert!(sizes(0).is_empty()); // not a request
/// ```
pub const fn sizes(cmd: u32) -> &'static [usize] {
    match cmd {
        POOL_CREATE => &[16, size_of::<PoolCreate>()],
        POOL_INFO => &[32, size_of::<PoolInfo>()],
        POOL_DESTROY | RING_DESTROY => &[size_of::<ResourceId>()],
        RING_CREATE => &[size_of::<RingCreate>()],
        RING_INFO => &[size_of::<RingInfo>()],
        POOL_CHUNK => &[size_of::<PoolChunk>()],
        POOL_EXPORT => &[size_of::<PoolExport>()],
        packet::ATTACH => &[size_of::<packet::Attach>()],
        packet::DETACH | packet::KICK => &[size_of::<ResourceId>()],
        _ => &[],
    }
}

/// Today's request numbers, in the order of their numbers.
pub const REQUESTS: [u32; 11] = [
    POOL_CREATE,
    POOL_INFO,
    POOL_DESTROY,
    RING_CREATE,
    RING_INFO,
    RING_DESTROY,
    POOL_CHUNK,
    POOL_EXPORT,
    packet::ATTACH,
    packet::DETACH,
    packet::KICK,
];

/// The largest argument struct: what a driver's buffer for any request must hold.
pub const MAX_ARG_SIZE: usize = size_of::<PoolInfo>();

/// How one call's argument crosses between the caller's struct and the driver's, by the
/// growth rule: what [`arg_size`] says of a request number.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{arg_size, ioc, IOC_READ, IOC_WRITE, POOL_CREATE};
/// // The first round's 16-byte POOL_CREATE: 16 bytes in, the rest of today's struct zero.
/// let a = arg_size(ioc(IOC_READ | IOC_WRITE, 1, 16))?;
/// assert_eq!((a.cmd, a.user, a.copy_in, a.copy_out), (POOL_CREATE, 16, 16, 16));
/// # Ok::<(), pktmap_abi::ioctl::SizeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSize {
    /// Today's number of the request (what the driver dispatches on).
    pub cmd: u32,
    /// Bytes of the caller's struct (the number's size bits).
    pub user: usize,
    /// Bytes of the driver's struct (today's).
    pub kernel: usize,
    /// Bytes copied in from the caller, `min(user, kernel)`; the rest of the driver's struct
    /// is zero.
    pub copy_in: usize,
    /// Bytes copied back to the caller, `min(user, kernel)` (0 for a request that writes
    /// nothing back).
    pub copy_out: usize,
}

impl ArgSize {
    /// The bytes of the caller's struct past the driver's, which must all be zero
    /// ([`check_tail`]); empty unless the caller's struct is longer.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{arg_size, ioc, IOC_READ, IOC_WRITE};
    /// // POOL_INFO from a newer header whose struct is 64 bytes: bytes 48..64 must be zero.
    /// let a = arg_size(ioc(IOC_READ | IOC_WRITE, 2, 64))?;
    /// assert_eq!(a.tail(), 48..64);
    /// # Ok::<(), pktmap_abi::ioctl::SizeError>(())
    /// ```
    pub const fn tail(&self) -> Range<usize> {
        if self.user > self.kernel {
            self.kernel..self.user
        } else {
            self.kernel..self.kernel
        }
    }
}

/// Why a request number or argument is refused by the growth rule.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{arg_size, ioc, SizeError, IOC_READ, IOC_WRITE};
/// // A 20-byte POOL_CREATE: a size the struct never had, shorter than today's.
/// assert_eq!(arg_size(ioc(IOC_READ | IOC_WRITE, 1, 20)), Err(SizeError::Unknown));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// No request of the contract has this direction, type and number, or its size is one
    /// the struct never had and shorter than today's: `ENOTTY`.
    Unknown,
    /// The caller's struct is longer than the driver's and a byte past it is not zero (a field
    /// this driver does not know was set): `E2BIG`.
    TooBig,
}

impl SizeError {
    /// The errno (positive): `ENOTTY` (25) or `E2BIG` (7).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::SizeError;
    /// assert_eq!((SizeError::Unknown.errno(), SizeError::TooBig.errno()), (25, 7));
    /// ```
    pub const fn errno(self) -> i32 {
        match self {
            SizeError::Unknown => 25,
            SizeError::TooBig => 7,
        }
    }
}

/// Applies the growth rule to a request number: which request it is (by direction, type and
/// number, whatever its size bits) and how its argument is copied.
///
/// # Errors
/// [`SizeError::Unknown`] for a number no request has, or a size shorter than today's that is
/// not one of the struct's [`sizes`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{arg_size, ioc, ArgSize, SizeError, IOC_READ, IOC_WRITE, POOL_CREATE};
/// // The first round's POOL_CREATE, _IOWR('P', 1, 16 bytes): served at 16 bytes.
/// let old = arg_size(ioc(IOC_READ | IOC_WRITE, 1, 16))?;
/// assert_eq!(old, ArgSize { cmd: POOL_CREATE, user: 16, kernel: 32, copy_in: 16, copy_out: 16 });
/// // 20 bytes was never a size of the struct; _IOW instead of _IOWR is another request.
/// assert_eq!(arg_size(ioc(IOC_READ | IOC_WRITE, 1, 20)), Err(SizeError::Unknown));
/// assert_eq!(arg_size(ioc(IOC_WRITE, 1, 32)), Err(SizeError::Unknown));
/// # Ok::<(), SizeError>(())
/// ```
pub const fn arg_size(cmd: u32) -> Result<ArgSize, SizeError> {
    let Some(today) = request_of(cmd, &REQUESTS) else {
        return Err(SizeError::Unknown);
    };
    let (user, kernel) = (ioc_size(cmd), ioc_size(today));
    if user < kernel && !has_size(sizes(today), user) {
        return Err(SizeError::Unknown);
    }
    let copy = if user < kernel { user } else { kernel };
    Ok(ArgSize {
        cmd: today,
        user,
        kernel,
        copy_in: if ioc_dir(today) & IOC_WRITE != 0 {
            copy
        } else {
            0
        },
        copy_out: if ioc_dir(today) & IOC_READ != 0 {
            copy
        } else {
            0
        },
    })
}

/// The request of `requests` with `cmd`'s direction, type and number.
const fn request_of(cmd: u32, requests: &[u32]) -> Option<u32> {
    match requests {
        [today, rest @ ..] => {
            if ioc_dir(*today) == ioc_dir(cmd) && ioc_type_nr(*today) == ioc_type_nr(cmd) {
                Some(*today)
            } else {
                request_of(cmd, rest)
            }
        }
        [] => None,
    }
}

/// Whether `size` is one of `sizes`.
const fn has_size(sizes: &[usize], size: usize) -> bool {
    match sizes {
        [first, rest @ ..] => *first == size || has_size(rest, size),
        [] => false,
    }
}

/// Checks the bytes of a longer caller struct past the driver's ([`ArgSize::tail`]): all zero,
/// or `E2BIG`. The driver reads them in pieces and checks each.
///
/// # Errors
/// [`SizeError::TooBig`] if any byte is not zero.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{check_tail, SizeError};
/// assert_eq!(check_tail(&[0; 16]), Ok(()));
/// assert_eq!(check_tail(&[0, 0, 1, 0]), Err(SizeError::TooBig));
/// ```
pub fn check_tail(tail: &[u8]) -> Result<(), SizeError> {
    if tail.iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err(SizeError::TooBig)
    }
}

/// The driver's struct from the caller's bytes, by the growth rule: `user` is the caller's
/// struct as the call copied it in (`ArgSize::user` bytes, or fewer: only `copy_in` are used),
/// and the result is the driver's `kernel` bytes (its first `copy_in` from the caller, the
/// rest zero), in `out`. A tail past the driver's struct must be checked with [`check_tail`].
/// The host-side model of what the driver's copy-in does, for tests and fuzzing.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{arg_size, ioc, widen, IOC_READ, IOC_WRITE, MAX_ARG_SIZE};
/// let a = arg_size(ioc(IOC_READ | IOC_WRITE, 1, 16))?;
/// let mut out = [0xff; MAX_ARG_SIZE];
/// widen(&a, &[7; 16], &mut out);
/// assert_eq!((&out[..16], &out[16..32]), (&[7; 16][..], &[0; 16][..]));
/// # Ok::<(), pktmap_abi::ioctl::SizeError>(())
/// ```
pub fn widen(size: &ArgSize, user: &[u8], out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate().take(size.kernel) {
        *b = if i < size.copy_in {
            user.get(i).copied().unwrap_or(0)
        } else {
            0
        };
    }
}

/// `POOL_CREATE`, `_IOWR('P', 1, struct pktmap_pool_create)`: create a packet-buffer pool.
pub const POOL_CREATE: u32 = ioc(IOC_READ | IOC_WRITE, 1, size_of::<PoolCreate>());
/// `POOL_INFO`, `_IOWR('P', 2, struct pktmap_pool_info)`: describe a pool.
pub const POOL_INFO: u32 = ioc(IOC_READ | IOC_WRITE, 2, size_of::<PoolInfo>());
/// `POOL_DESTROY`, `_IOW('P', 3, struct pktmap_id)`: destroy a pool (mappings keep its pages).
pub const POOL_DESTROY: u32 = ioc(IOC_WRITE, 3, size_of::<ResourceId>());
/// `RING_CREATE`, `_IOWR('P', 4, struct pktmap_ring_create)`: create a descriptor ring.
pub const RING_CREATE: u32 = ioc(IOC_READ | IOC_WRITE, 4, size_of::<RingCreate>());
/// `RING_INFO`, `_IOWR('P', 5, struct pktmap_ring_info)`: describe a ring.
pub const RING_INFO: u32 = ioc(IOC_READ | IOC_WRITE, 5, size_of::<RingInfo>());
/// `RING_DESTROY`, `_IOW('P', 6, struct pktmap_id)`: destroy a ring (mappings keep its pages).
pub const RING_DESTROY: u32 = ioc(IOC_WRITE, 6, size_of::<ResourceId>());
/// `POOL_CHUNK`, `_IOWR('P', 7, struct pktmap_pool_chunk)`: the physical address of one of a
/// pool's physically contiguous chunks (what a NIC driver would program). Root only
/// (`CAP_SYS_ADMIN`): a physical address is a kernel secret to anyone else.
pub const POOL_CHUNK: u32 = ioc(IOC_READ | IOC_WRITE, 7, size_of::<PoolChunk>());
/// `POOL_EXPORT`, `_IOWR('P', 8, struct pktmap_pool_export)`: a new file descriptor of its own
/// for a pool, read-write or read-only, that another process may receive (`SCM_RIGHTS`) and map.
pub const POOL_EXPORT: u32 = ioc(IOC_READ | IOC_WRITE, 8, size_of::<PoolExport>());

/// [`PoolCreate::flags`]: serve pages from the fault handler instead of at `mmap` time, up to
/// [`PoolCreate::fault_around`] neighbouring pages per fault.
pub const POOL_LAZY: u32 = 1;
/// [`PoolCreate::flags`]: physically contiguous chunks of up to [`MAX_CONTIG_CHUNK_PAGES`]
/// pages (`alloc_pages` of one order), mapped whole at `mmap` by `remap_pfn_range`
/// (`VM_PFNMAP`); `MAP_PRIVATE` is refused.
pub const POOL_CONTIG: u32 = 2;
/// [`PoolCreate::flags`]: 2 MiB chunks ([`HUGE_CHUNK_PAGES`] pages) mapped by one PMD entry
/// each from the fault handler (`huge_fault`, `vmf_insert_pfn_pmd`); `mmap` places the mapping
/// 2 MiB-aligned, and a `FIXED` address that is not gets 4 KiB entries. `MAP_PRIVATE` is
/// refused.
pub const POOL_HUGE: u32 = 4;
/// Every [`PoolCreate::flags`] bit the driver knows; at most one of them may be set (none is
/// an eager pool of single pages).
pub const POOL_FLAGS: u32 = POOL_LAZY | POOL_CONTIG | POOL_HUGE;

/// [`PoolCreate::cache`]: ordinary cached memory (write-back), the default.
pub const CACHE_WB: u32 = 0;
/// [`PoolCreate::cache`]: write-combined memory (x86 PAT `WC`), for [`POOL_CONTIG`] and
/// [`POOL_HUGE`] pools; the driver changes the pages' kernel mapping too, so no alias is cached.
pub const CACHE_WC: u32 = 1;

/// [`PoolCreate::fault_around`] 0 means this many pages per fault (the kernel's own
/// `fault_around_bytes` is 64 KiB, 16 pages).
pub const DEFAULT_FAULT_AROUND: u32 = 16;
/// The largest [`PoolCreate::fault_around`]: one page table (2 MiB).
pub const MAX_FAULT_AROUND: u32 = 512;
/// Pages in a [`POOL_HUGE`] chunk: 2 MiB.
pub const HUGE_CHUNK_PAGES: u32 = 512;
/// The largest [`POOL_CONTIG`] chunk, in pages (2 MiB, order 9): larger orders fail far more
/// often on a fragmented machine, and 2 MiB is what one PMD maps.
pub const MAX_CONTIG_CHUNK_PAGES: u32 = 512;

/// [`PoolExport::flags`]: the exported file is read-only (`O_RDONLY`): it never maps writable,
/// and `mprotect` cannot add write later.
pub const EXPORT_READONLY: u32 = 1;
/// Every [`PoolExport::flags`] bit the driver knows.
pub const EXPORT_FLAGS: u32 = EXPORT_READONLY;

/// The smallest packet buffer, in bytes.
pub const MIN_BUF_SIZE: u32 = 256;
/// The largest packet buffer, in bytes.
pub const MAX_BUF_SIZE: u32 = 65536;
/// The largest pool, in bytes; larger requests are `EINVAL` before anything is allocated.
pub const MAX_POOL_BYTES: u64 = 256 << 20;
/// The most ring entries.
pub const MAX_RING_ENTRIES: u32 = 32768;
/// The most live pools, and separately rings, in one open file.
pub const MAX_RESOURCES: u32 = 1024;

/// `struct pktmap_pool_create`: the argument of [`POOL_CREATE`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolCreate, POOL_CREATE, POOL_LAZY};
/// use pktmap_abi::plan::check_pool;
/// // 512 buffers of 2 KiB, served by the fault handler 16 pages at a time (fault_around 0).
/// let req = PoolCreate { buf_size: 2048, buf_count: 512, flags: POOL_LAZY, ..Default::default() };
/// assert_eq!(check_pool(&req).unwrap().pages, 256); // what the driver will allocate
/// // The ioctl number carries the struct's size (bits 16..30).
/// assert_eq!((POOL_CREATE >> 16) & 0x3fff, size_of::<PoolCreate>() as u32);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCreate {
    /// Bytes per buffer: a power of two from [`MIN_BUF_SIZE`] to [`MAX_BUF_SIZE`].
    pub buf_size: u32,
    /// Number of buffers, at least 1; the pool is at most [`MAX_POOL_BYTES`].
    pub buf_count: u32,
    /// 0 (eager), or one of [`POOL_LAZY`], [`POOL_CONTIG`], [`POOL_HUGE`].
    pub flags: u32,
    /// Out: the new pool's id (never 0).
    pub id: u32,
    /// Lazy pools: pages the fault handler maps per fault, a power of two up to
    /// [`MAX_FAULT_AROUND`]; 1 is one page per fault, 0 is [`DEFAULT_FAULT_AROUND`]. Other
    /// pools: 0.
    pub fault_around: u32,
    /// [`CACHE_WB`] (0) or [`CACHE_WC`].
    pub cache: u32,
    /// Must be 0.
    pub reserved: u64,
}

/// `struct pktmap_pool_info`: the argument of [`POOL_INFO`].
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::ioctl::PoolInfo;
/// // The driver fills all but `id`; `mmap_offset` is the pool's offset in the codec.
/// let info = PoolInfo { id: 3, bytes: 1 << 20, mmap_offset: 3 << 15 | 1 << 12, ..Default::default() };
/// assert_eq!(PKTMAP.decode(info.mmap_offset), Ok((pktmap_types::POOL, 3)));
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolInfo {
    /// In: the pool's id.
    pub id: u32,
    /// Out: bytes per buffer.
    pub buf_size: u32,
    /// Out: number of buffers.
    pub buf_count: u32,
    /// Out: the flags it was created with.
    pub flags: u32,
    /// Out: its size in bytes, a whole number of pages.
    pub bytes: u64,
    /// Out: the `mmap` offset that maps it.
    pub mmap_offset: u64,
    /// Out: pages mapped per fault (lazy pools; 0 for the others).
    pub fault_around: u32,
    /// Out: [`CACHE_WB`] or [`CACHE_WC`].
    pub cache: u32,
    /// Out: bytes per physically contiguous chunk (4096 for pools of single pages).
    pub chunk_bytes: u64,
}

/// `struct pktmap_pool_chunk`: the argument of [`POOL_CHUNK`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolChunk, PoolCreate, POOL_CONTIG};
/// use pktmap_abi::plan::{check_chunk, check_pool};
/// // A 1 MiB contiguous pool is one chunk: index 0 is its only valid query.
/// let g = check_pool(&PoolCreate { buf_size: 4096, buf_count: 256, flags: POOL_CONTIG, ..Default::default() })?;
/// let q = PoolChunk { id: 1, index: 0, ..Default::default() };
/// let plan = check_chunk(&q, true, |_| Some((g, ())))?;
/// assert_eq!((plan.index, plan.bytes), (0, 1 << 20));
/// # Ok::<(), pktmap_abi::plan::PlanError>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolChunk {
    /// In: the pool's id.
    pub id: u32,
    /// In: the chunk's index, below `bytes / chunk_bytes` of [`PoolInfo`].
    pub index: u32,
    /// Out: the chunk's physical address.
    pub phys: u64,
    /// Out: its size in bytes ([`PoolInfo::chunk_bytes`]).
    pub bytes: u64,
}

/// `struct pktmap_pool_export`: the argument of [`POOL_EXPORT`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{PoolExport, EXPORT_READONLY};
/// use pktmap_abi::plan::check_export;
/// let req = PoolExport { id: 1, flags: EXPORT_READONLY, ..Default::default() };
/// assert_eq!(check_export(&req, true), Ok(true)); // the new fd is O_RDONLY
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolExport {
    /// In: the pool's id.
    pub id: u32,
    /// In: [`EXPORT_READONLY`] or 0.
    pub flags: u32,
    /// Out: the new file descriptor (`O_CLOEXEC`).
    pub fd: i32,
    /// Must be 0.
    pub reserved: u32,
}

/// `struct pktmap_ring_create`: the argument of [`RING_CREATE`].
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RingCreate;
/// use pktmap_abi::plan::{check_ring, PlanError};
/// let req = RingCreate { entries: 256, pool_id: 1, ..Default::default() };
/// assert_eq!(check_ring(&req, |pool| pool == 1), Ok(1)); // 64 + 256 * 8 bytes: one page
/// let odd = RingCreate { entries: 100, ..req };
/// assert_eq!(check_ring(&odd, |_| true), Err(PlanError::BadArgument));
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCreate {
    /// Number of descriptors: a power of two from 1 to [`MAX_RING_ENTRIES`].
    pub entries: u32,
    /// The pool whose buffers the descriptors name (must exist in this open file).
    pub pool_id: u32,
    /// 0 (the counter-pair layout of [`RingHeader`]) or
    /// [`RING_PACKET`](super::packet::RING_PACKET) (the packet layout, which can be attached
    /// to a network device: [`packet`]).
    pub flags: u32,
    /// Out: the new ring's id (never 0).
    pub id: u32,
}

/// `struct pktmap_ring_info`: the argument of [`RING_INFO`].
///
/// # Examples
/// ```
/// use pktmap_abi::codec::{pktmap_types, PKTMAP};
/// use pktmap_abi::ioctl::RingInfo;
/// let info = RingInfo { id: 2, entries: 1024, pool_id: 1, bytes: 12288, ..Default::default() };
/// let offset = PKTMAP.encode(pktmap_types::RING, info.id.into()).unwrap();
/// assert_eq!(offset, 2 << 15 | 2 << 12); // what the driver puts in `mmap_offset`
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingInfo {
    /// In: the ring's id.
    pub id: u32,
    /// Out: number of descriptors.
    pub entries: u32,
    /// Out: the pool it was created for.
    pub pool_id: u32,
    /// Out: the flags it was created with.
    pub flags: u32,
    /// Out: its size in bytes, a whole number of pages.
    pub bytes: u64,
    /// Out: the `mmap` offset that maps it.
    pub mmap_offset: u64,
}

/// `struct pktmap_id`: the argument of the destroy ioctls.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{ResourceId, POOL_DESTROY, RING_DESTROY};
/// // _IOW('P', 3 and 6, struct pktmap_id): the size field is 4.
/// assert_eq!((POOL_DESTROY >> 16) & 0x3fff, size_of::<ResourceId>() as u32);
/// assert_eq!(RING_DESTROY, 0x4004_5006);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceId {
    /// The pool or ring id.
    pub id: u32,
}

/// `struct pktmap_state`: the STATE page (map type STATE, id 0), read-only, written by the
/// driver. Counters are device-wide. Gauges go back to their baseline when everything is freed;
/// event counters only grow.
///
/// # Consistent snapshots
///
/// The driver publishes the gauges (and `magic`, `pages_budget`) under
/// [`sequence`](Self::sequence), a seqcount: it makes the sequence odd, stores the words, then
/// makes it even again. A reader of a mapping takes a snapshot by reading `sequence` (retry
/// while odd), the words, then `sequence` again, and retries if it changed. `pread` of STATE
/// does exactly that in the driver and returns one consistent snapshot (with an even
/// `sequence`). The event counters [`pages_mapped`](Self::pages_mapped) and
/// [`faults_served`](Self::faults_served) are incremented in place, atomically, by the fault
/// path (which so takes no lock and publishes nothing else); each is exact when read, and may be
/// newer than the gauges of the same snapshot.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{State, STATE_MAGIC};
/// // What `pread` of the STATE offset returns: the words, little-endian, in page order.
/// let page: Vec<u8> = [STATE_MAGIC, 1, 0, 256].iter().chain(&[0; 7]).flat_map(|w| w.to_le_bytes()).collect();
/// let words = core::array::from_fn(|i| u64::from_le_bytes(page[8 * i..][..8].try_into().unwrap()));
/// let state = State::from_words(words);
/// assert_eq!((state.magic, state.pools, state.pages_allocated), (STATE_MAGIC, 1, 256));
/// assert!(state.is_consistent());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// [`STATE_MAGIC`], so a reader knows it mapped the right page.
    pub magic: u64,
    /// Gauge: live pools (including destroyed pools that are still mapped).
    pub pools: u64,
    /// Gauge: live rings (including destroyed rings that are still mapped).
    pub rings: u64,
    /// Gauge: pages allocated for pools and rings.
    pub pages_allocated: u64,
    /// Event counter: pages inserted into user mappings, at `mmap` time or by a fault.
    pub pages_mapped: u64,
    /// Event counter: page faults the `.fault` handler served.
    pub faults_served: u64,
    /// Gauge: live VMAs that map a pktmap resource (including STATE).
    pub live_mappings: u64,
    /// Setting: the most pages all pools and rings of the device may hold at once (the
    /// `page_budget` module parameter); a create past it is `ENOSPC`.
    pub pages_budget: u64,
    /// Seqcount: odd while the driver updates the page, incremented twice per update.
    pub sequence: u64,
    /// Event counter: faults served with one 2 MiB (PMD) entry; each also counts once in
    /// `faults_served` and 512 times in `pages_mapped`.
    pub pmd_faults: u64,
    /// Gauge: live pool file descriptors (files from [`POOL_EXPORT`]).
    pub pool_files: u64,
}

/// The number of `u64` words of [`State`].
pub const STATE_WORDS: usize = 11;

impl State {
    /// The words in page order.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::State;
    /// let s = State { pools: 2, sequence: 4, pool_files: 1, ..State::default() };
    /// assert_eq!(State::from_words(s.to_words()), s);
    /// ```
    pub const fn to_words(&self) -> [u64; STATE_WORDS] {
        [
            self.magic,
            self.pools,
            self.rings,
            self.pages_allocated,
            self.pages_mapped,
            self.faults_served,
            self.live_mappings,
            self.pages_budget,
            self.sequence,
            self.pmd_faults,
            self.pool_files,
        ]
    }

    /// The state from its words in page order.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::{State, STATE_MAGIC, STATE_WORDS};
    /// let mut words = [0; STATE_WORDS];
    /// words[0] = STATE_MAGIC;
    /// words[2] = 3; // rings
    /// assert_eq!(State::from_words(words).rings, 3);
    /// ```
    pub const fn from_words(w: [u64; STATE_WORDS]) -> Self {
        let [magic, pools, rings, pages_allocated, pages_mapped, faults_served, live_mappings, pages_budget, sequence, pmd_faults, pool_files] =
            w;
        Self {
            magic,
            pools,
            rings,
            pages_allocated,
            pages_mapped,
            faults_served,
            live_mappings,
            pages_budget,
            sequence,
            pmd_faults,
            pool_files,
        }
    }

    /// Whether the snapshot was taken while no update was in progress (an even
    /// [`sequence`](Self::sequence)).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::ioctl::State;
    /// assert!(State { sequence: 6, ..State::default() }.is_consistent());
    /// // Read mid-update: take the snapshot again.
    /// assert!(!State { sequence: 7, ..State::default() }.is_consistent());
    /// ```
    pub const fn is_consistent(&self) -> bool {
        self.sequence % 2 == 0
    }
}

/// The first word of the STATE page: `"pktmap\0\x01"` read as a little-endian `u64`.
pub const STATE_MAGIC: u64 = u64::from_le_bytes(*b"pktmap\0\x01");

/// `struct pktmap_ring_header`: the first bytes of a ring made with flags 0, followed at
/// [`RING_DESC_OFFSET`] by `entries` [`RingDesc`]s (a [`RING_PACKET`](super::packet::RING_PACKET)
/// ring has the layout of [`packet`] instead).
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::{RingHeader, RING_DESC_OFFSET};
/// // A consumer's view: descriptors `consumer..producer` are ready (free-running indices).
/// let h = RingHeader { producer: 5, consumer: u32::MAX - 1, entries: 8, pool_id: 1 };
/// assert_eq!(h.producer.wrapping_sub(h.consumer), 7);
/// let slot = h.consumer & (h.entries - 1);
/// assert_eq!(RING_DESC_OFFSET + 8 * slot as u64, 64 + 8 * 6);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingHeader {
    /// Free-running index of the next descriptor the producer fills.
    pub producer: u32,
    /// Free-running index of the next descriptor the consumer takes.
    pub consumer: u32,
    /// Number of descriptors (a power of two).
    pub entries: u32,
    /// The pool whose buffers the descriptors name.
    pub pool_id: u32,
}

/// Where the descriptors start in a ring mapping (one cache line after the header).
pub const RING_DESC_OFFSET: u64 = 64;

/// `struct pktmap_desc`: one ring descriptor, naming a buffer of the ring's pool.
///
/// # Examples
/// ```
/// use pktmap_abi::ioctl::RingDesc;
/// // Buffer 3 of a pool of 2 KiB buffers holds a 60-byte frame at byte 3 * 2048 of the pool.
/// let d = RingDesc { buf: 3, len: 60 };
/// assert_eq!(d.buf as usize * 2048, 6144);
/// assert_eq!(size_of::<RingDesc>(), 8);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingDesc {
    /// Index of the buffer in the pool.
    pub buf: u32,
    /// Bytes used in the buffer.
    pub len: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_are_the_abi() {
        assert_eq!(size_of::<PoolCreate>(), 32);
        assert_eq!(size_of::<PoolInfo>(), 48);
        assert_eq!(size_of::<PoolChunk>(), 24);
        assert_eq!(size_of::<PoolExport>(), 16);
        assert_eq!(size_of::<RingCreate>(), 16);
        assert_eq!(size_of::<RingInfo>(), 32);
        assert_eq!(size_of::<ResourceId>(), 4);
        assert_eq!(size_of::<State>(), 8 * STATE_WORDS);
        assert_eq!(STATE_WORDS, 11);
        assert_eq!(size_of::<RingHeader>(), 16);
        assert_eq!(size_of::<RingDesc>(), 8);
        assert!(size_of::<RingHeader>() as u64 <= RING_DESC_OFFSET);
    }

    #[test]
    fn ioctl_numbers() {
        assert_eq!(POOL_CREATE, 0xc020_5001);
        assert_eq!(POOL_INFO, 0xc030_5002);
        assert_eq!(POOL_CHUNK, 0xc018_5007);
        assert_eq!(POOL_EXPORT, 0xc010_5008);
        assert_eq!(POOL_DESTROY, 0x4004_5003);
        assert_eq!(RING_CREATE, 0xc010_5004);
        assert_eq!(RING_INFO, 0xc020_5005);
        assert_eq!(RING_DESTROY, 0x4004_5006);
    }

    #[test]
    fn every_request_is_served_at_every_size_it_had() {
        for cmd in REQUESTS {
            let s = sizes(cmd);
            assert_eq!(s.last(), Some(&ioc_size(cmd)), "{cmd:#x}");
            assert!(s.windows(2).all(|w| w[0] < w[1]), "{cmd:#x}");
            for &size in s {
                let old = ioc(ioc_dir(cmd), cmd & 0xff, size);
                let a = arg_size(old).unwrap();
                assert_eq!((a.cmd, a.user, a.copy_in), (cmd, size, size));
            }
            assert!(ioc_size(cmd) <= MAX_ARG_SIZE);
        }
        // The first round's numbers, as its include/pktmap.h spelled them.
        assert_eq!(arg_size(0xc010_5001).unwrap().cmd, POOL_CREATE);
        assert_eq!(arg_size(0xc020_5002).unwrap().cmd, POOL_INFO);
        assert_eq!(arg_size(0xc010_5004).unwrap().cmd, RING_CREATE);
        assert_eq!(arg_size(0xc020_5005).unwrap().cmd, RING_INFO);
    }

    #[test]
    fn state_magic_spells_pktmap() {
        assert_eq!(&STATE_MAGIC.to_le_bytes()[..6], b"pktmap");
    }
}
