//! Map a resource: [`MapFlags`], [`MapOptions`] and the [`Mapping`] that unmaps on drop.
//!
//! This is pktmap's `oo_resource_mmap`, and the only module that calls `mmap`, `munmap`,
//! `madvise`, `msync` and `mlock`.
//!
//! - [`MapFlags::READONLY`] maps `PROT_READ` only, otherwise `PROT_READ | PROT_WRITE`.
//! - [`MapFlags::FIXED`] maps at the caller's address. The safe entry points use
//!   `MAP_FIXED_NOREPLACE`, so an occupied range is `EEXIST` and nothing is clobbered; only the
//!   `unsafe` [`MapOptions::map_replacing`] may replace existing memory.
//! - [`MapFlags::POPULATE`] is a promise: after `Ok`, reading or writing any page of the mapping
//!   takes no page fault. It is kept with `MADV_POPULATE_READ`/`MADV_POPULATE_WRITE`, which
//!   report the errno that stopped them where `MAP_POPULATE` fails silently; on failure the
//!   mapping is removed and the error returned, never a half-populated mapping.
//!
//! # How POPULATE populates
//! The kernel's cheapest prefault is a *read* populate (what `MAP_POPULATE` does on a shared
//! mapping), but a read fault maps a page writable only where the backing needs no write
//! notification: a shared mapping of shmem (memfd, tmpfs), hugetlbfs or device memory gets
//! writable page-table entries (`vma->vm_page_prot` keeps the write bit), while a regular file
//! whose filesystem tracks dirty pages (`page_mkwrite`), or any private mapping (copy on write,
//! the zero page), gets read-only ones, and the first write would fault. So, per mapping:
//!
//! | mapping | populate | why it keeps the promise |
//! |---|---|---|
//! | READONLY | `MADV_POPULATE_READ` | nothing can write it |
//! | private (anonymous memory, `MapOptions::private`) | `MADV_POPULATE_WRITE` | only a write fault breaks copy on write |
//! | one page | `MADV_POPULATE_WRITE` | always enough, and as cheap as a read populate and the probe below |
//! | shared, writable, first page not resident (`mincore`: fresh memory, an uncached file) | `MADV_POPULATE_WRITE` | always enough; and where pages do not exist yet a read fault allocates one page anyway, after a fault-around that finds nothing |
//! | shared, writable, first page resident | `MADV_POPULATE_READ` (fault-around maps up to 16 cached pages per fault), then a probe: one atomic no-op write (`fetch_or(0)`) to the first page, counting the thread's minor faults (`getrusage(RUSAGE_THREAD)`) around it. No fault: the read populate mapped writable entries, done. A fault: the backing wants write notification, so `MADV_POPULATE_WRITE` follows | the protection a read fault installs is the mapping's `vm_page_prot`, the same for every page of a fresh mapping, so one page answers for all; the probe is atomic and changes no byte, so a concurrent writer (the driver, another process) loses nothing |
//!
//! A `/dev/pktmap` pool is populated by its kind, which the map is told ([`MapOptions::pool`];
//! [`Device::map_pool`](crate::device::Device::map_pool), [`PoolFile::map`](crate::pool::PoolFile::map)
//! and the C API tell it what `POOL_INFO` says), not by probing:
//!
//! | pool kind ([`PoolKind`](pktmap_abi::plan::PoolKind)) | populate | why it keeps the promise |
//! |---|---|---|
//! | eager, contiguous (shared) | none | the driver inserted every page (`vm_insert_pages`, `remap_pfn_range`) at `mmap`, with the mapping's protection |
//! | lazy | none: the offset carries the driver's populate bit (`MMAP_POPULATE`), so the driver inserts every page at `mmap`, as for an eager pool | the driver's `mmap` inserts the pages with the mapping's protection, and no fault is left to take |
//! | 2 MiB | one volatile read per 2 MiB (per 4 KiB where the address is off the 2 MiB grid) | a fault maps a whole 2 MiB chunk by one PMD entry; `MADV_POPULATE_*` refuses page-frame maps (`EINVAL`) |
//! | any kind, private | as any private mapping | only a write fault breaks copy on write |
//!
//! Measured with `pktmap bench` (the README's performance section), the shmem path costs what
//! the kernel's own `MAP_POPULATE` costs, and `tests/populate.rs` counts the faults of read and
//! write touches on every backing after POPULATE: none.
//!
//! Errors are [`Error`]s: `raw_os_error()` is the kernel's errno, or the errno pktmap refused
//! the request with before any call (`EINVAL` for a zero length, a misaligned offset or FIXED
//! without an address, a length past the end of a file), and the message names the step, the
//! offset and length, and the resource when the caller chose a layout
//! ([`MapOptions::layout`], [`map_resource`]). A failed POPULATE names its cause (a page past
//! the end of the file, a mapping the kernel cannot populate, no memory, ...).
//!
//! # Files that end: no SIGBUS from a safe call
//! Touching a page of a file mapping that lies wholly past the end of the file raises `SIGBUS`,
//! which kills the process. So pktmap refuses, with `EINVAL` before the `mmap`, to map a
//! regular file (a disk file, tmpfs, a memfd) past the page that holds its last byte; a
//! hugetlbfs file mapped writable is the exception, as the kernel grows it to the mapping.
//! memmap2 makes its `map` `unsafe` for this reason.
//!
//! What a check at `mmap` time cannot stop is another process (or thread) truncating the file
//! *afterwards*: the pages past the new end are gone, and touching them through
//! [`Mapping::read_at`], [`Mapping::write_at`] or the [`volatile`](crate::volatile) views raises
//! `SIGBUS`; [`Mapping::populate`] then fails with `EFAULT` instead, naming the cause. When
//! whoever holds the file is not to be trusted with that, share a memfd sealed against
//! shrinking ([`sealed_memfd`], `F_SEAL_SHRINK`): the kernel refuses every truncation of it with
//! `EPERM`, so a mapping of it can never lose a page.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::resource::{map, sealed_memfd, MapFlags};
//! let fd = sealed_memfd("frames", 1 << 20)?;
//! let m = map(&fd, 0, 1 << 20, MapFlags::POPULATE)?;
//! // Nobody holding the fd (or a dup of it in another process) can shrink it now.
//! assert_eq!(rustix::fs::ftruncate(&fd, 0), Err(rustix::io::Errno::PERM));
//! m.write_at((1 << 20) - 1, &[1])?;
//! // A length past the end is refused before the mmap, not a SIGBUS on the first touch.
//! let e = map(&fd, 0, 2 << 20, MapFlags::empty()).unwrap_err();
//! assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
//! # Ok(()) }
//! ```
//!
//! # Safety
//! A [`Mapping`] owns its address range: it came from a successful `mmap` and is unmapped
//! exactly once, in `Drop` or [`Mapping::unmap`]. Its memory may be shared with the kernel or
//! other processes, which may write it at any time, so the safe accessors copy
//! ([`Mapping::read_at`], [`Mapping::write_at`]) and slices are `unsafe`.
#![allow(unsafe_code)]

mod flags;
mod mapping;
mod options;
mod populate;

use crate::error::{Error, Result};
use crate::offset::{Layout, Region, PAGE_SIZE};
use rustix::fd::AsFd;
use rustix::mm::{self, MapFlags as SysMapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::{self, NonNull};

pub use flags::MapFlags;
pub use mapping::Mapping;
pub use options::MapOptions;
/// The advice [`Mapping::advise`] takes (`MADV_*`), re-exported from rustix.
pub use rustix::mm::Advice;

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, `ftruncate(len)`,
/// `fcntl(F_ADD_SEALS, F_SEAL_SHRINK)`—Shared memory that can never shrink, so no mapping of
/// it can lose a page to a truncation (see the [module](self) docs).
///
/// The file may still grow (seal `F_SEAL_GROW` too with [`rustix::fs::fcntl_add_seals`] if it
/// should not). Pass the fd to another process (`SCM_RIGHTS`, or by inheritance) to share the
/// memory: whatever that process does, the pages every mapping covers stay.
///
/// # Errors
/// The kernel's errno (`EINVAL` for a name over 249 bytes, `EMFILE`, `ENOMEM`, `EFBIG`).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::{map, sealed_memfd, MapFlags};
/// use rustix::fs::{fcntl_get_seals, SealFlags};
/// let fd = sealed_memfd("ring", 8192)?;
/// assert!(fcntl_get_seals(&fd)?.contains(SealFlags::SHRINK));
/// let m = map(&fd, 0, 8192, MapFlags::empty())?;
/// # Ok(()) }
/// ```
pub fn sealed_memfd(name: &str, len: u64) -> Result<rustix::fd::OwnedFd> {
    use rustix::fs::{fcntl_add_seals, ftruncate, memfd_create, MemfdFlags, SealFlags};
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::from(e).during("memfd_create"))?;
    ftruncate(&fd, len).map_err(|e| Error::from(e).during("ftruncate"))?;
    fcntl_add_seals(&fd, SealFlags::SHRINK)
        .map_err(|e| Error::from(e).during("fcntl(F_ADD_SEALS, F_SEAL_SHRINK)"))?;
    Ok(fd)
}

/// `mmap(NULL, len, prot, MAP_SHARED | flags, fd, offset)`—Map `len` bytes of a resource.
///
/// Shorthand for [`MapOptions::new(len).flags(flags).map(fd, offset)`](MapOptions::map);
/// [`MapFlags::FIXED`] needs an address, so it is `EINVAL` here: use [`MapOptions::at`].
///
/// # Errors
/// As [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{pktmap_types, PKTMAP};
/// use pktmap::resource::{map, MapFlags};
/// let dev = std::fs::File::open("/dev/pktmap")?;
/// let state = map(&dev, PKTMAP.encode(pktmap_types::STATE, 0).unwrap(), 4096, MapFlags::READONLY)?;
/// # Ok(()) }
/// ```
#[doc(alias = "mmap")]
pub fn map<Fd: AsFd>(fd: Fd, offset: u64, len: usize, flags: MapFlags) -> Result<Mapping> {
    MapOptions::new(len).flags(flags).map(fd, offset)
}

/// `mmap` of `(map_type, map_id)` encoded with `layout`—Map a resource by name.
///
/// # Errors
/// `EINVAL` (before any call) if the layout cannot encode the pair; otherwise as
/// [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{pktmap_types, PKTMAP};
/// use pktmap::resource::{map_resource, MapFlags};
/// let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/pktmap")?;
/// let pool = map_resource(&dev, &PKTMAP, pktmap_types::POOL, 1, 1 << 20, MapFlags::POPULATE)?;
/// # Ok(()) }
/// ```
pub fn map_resource<Fd: AsFd>(
    fd: Fd,
    layout: &'static Layout,
    map_type: u32,
    map_id: u64,
    len: usize,
    flags: MapFlags,
) -> Result<Mapping> {
    let offset = layout.encode(map_type, map_id).map_err(|e| {
        Error::invalid(format!(
            "{} cannot encode type {map_type} id {map_id}: {e}",
            layout.name
        ))
    })?;
    MapOptions::new(len)
        .flags(flags)
        .layout(layout)
        .map(fd, offset)
}

/// `mmap` of a [`Region`] of `fd`—Map a region by what it is, with its length checked once.
///
/// `size` is the region's size in bytes as the kernel allocated it, when the caller knows it.
/// A `len` longer than `size` rounded up to whole pages is refused with `EINVAL` before the
/// syscall, naming the region: some kernels accept such a length and leave the tail of the
/// mapping unbacked, so touching it raises `SIGBUS`.
///
/// # Errors
/// `EINVAL` (before any call) if the region does not encode or `len` is too long; otherwise as
/// [`MapOptions::map`].
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::offset::{ResourceId, ResourceType};
/// use pktmap::resource::{map_region, MapFlags};
/// let dev = std::fs::File::open("/dev/pktmap")?;
/// let state = ResourceId { ty: ResourceType::State, id: 0 };
/// let m = map_region(&dev, state, Some(4096), 4096, MapFlags::READONLY)?;
/// assert!(map_region(&dev, state, Some(4096), 8192, MapFlags::READONLY).is_err());
/// # Ok(()) }
/// ```
pub fn map_region<R: Region, Fd: AsFd>(
    fd: Fd,
    region: R,
    size: Option<usize>,
    len: usize,
    flags: MapFlags,
) -> Result<Mapping> {
    let offset = region.offset()?;
    if let Some(size) = size {
        let page = PAGE_SIZE as usize;
        let limit = size.checked_next_multiple_of(page).unwrap_or(usize::MAX);
        if len > limit {
            return Err(Error::invalid(format!(
                "{} {} is {size} bytes ({limit} page-rounded); refusing to map {len}",
                R::LAYOUT.name,
                region.name()
            )));
        }
    }
    MapOptions::new(len)
        .flags(flags)
        .layout(R::LAYOUT)
        .map(fd, offset)
}

/// `mmap(at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE [| MAP_FIXED])`—
/// Address space that holds nothing, for [`crate::reservation`]: fresh (`at` is `None`), or
/// laid back over a range the caller owns.
///
/// # Safety
/// With `at`, `[at, at + len)` must belong to the caller (a reservation's own range) and
/// nothing may refer to memory in it: whatever is mapped there is replaced.
pub(crate) unsafe fn reserve_raw(
    at: Option<NonNull<c_void>>,
    len: usize,
) -> Result<NonNull<c_void>> {
    let (hint, fixed) = match at {
        Some(a) => (a.as_ptr(), SysMapFlags::FIXED),
        None => (ptr::null_mut(), SysMapFlags::empty()),
    };
    let sys = SysMapFlags::PRIVATE | SysMapFlags::NORESERVE | fixed;
    // SAFETY: Without `at`, a null hint takes fresh address space; with it, the caller
    // guarantees the range is theirs to replace.
    let p = unsafe { mm::mmap_anonymous(hint, len, ProtFlags::empty(), sys) }
        .map_err(|e| Error::from(e).during("mmap(PROT_NONE)"))?;
    NonNull::new(p).ok_or_else(|| Error::from_errno(libc::ENOMEM))
}

/// `munmap(addr, len)` of a range [`reserve_raw`] made.
///
/// # Safety
/// The range must belong to the caller, and nothing may refer to memory in it.
pub(crate) unsafe fn unmap_raw(addr: NonNull<c_void>, len: usize) -> Result<()> {
    // SAFETY: The caller owns the range and nothing refers to it.
    unsafe { mm::munmap(addr.as_ptr(), len) }.map_err(|e| Error::from(e).during("munmap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::PKTMAP;
    use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

    fn memfd(len: u64) -> rustix::fd::OwnedFd {
        let fd = memfd_create("pktmap-test", MemfdFlags::CLOEXEC).unwrap();
        ftruncate(&fd, len).unwrap();
        fd
    }

    #[test]
    fn flags_are_onloads_bits() {
        assert_eq!(MapFlags::READONLY.bits(), 1);
        assert_eq!(MapFlags::FIXED.bits(), 2);
        assert_eq!(MapFlags::POPULATE.bits(), 4);
        assert_eq!(MapFlags::from_raw(7).unwrap(), MapFlags::all());
        for bad in [8, 0x80, 0x8000_0000, u32::MAX] {
            let e = MapFlags::from_raw(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        }
    }

    /// Bits no flag names, smuggled in with `from_bits_retain`, are refused by every map
    /// before any call, as `from_raw` and the C ABI refuse them.
    #[test]
    fn unknown_flag_bits_are_refused_before_mmap() {
        let fd = memfd(4096);
        for bits in [8, 0x80 | 4, 0x8000_0000] {
            let flags = MapFlags::from_bits_retain(bits);
            let e = MapOptions::new(4096).flags(flags).map(&fd, 0).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            assert!(e.to_string().contains("unknown map flag bits"), "{e}");
            let e = map(&fd, 0, 4096, flags).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        }
        // The named bits alone still map.
        assert!(map(&fd, 0, 4096, MapFlags::READONLY).is_ok());
    }

    #[test]
    fn error_names_the_resource_and_keeps_errno() {
        let fd = memfd(4096);
        let off = PKTMAP.encode(crate::offset::pktmap_types::POOL, 3).unwrap();
        let e = map_resource(&fd, &PKTMAP, 1, 3, 4096, MapFlags::POPULATE).unwrap_err();
        // The memfd is one page; its page at `off` is beyond EOF, so the map is refused before
        // the call (touching it would raise SIGBUS).
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("(pktmap POOL id 3)"), "{msg}");
        assert!(msg.contains("SIGBUS"), "{msg}");
        assert_eq!(e.offset(), Some(off));
        // Without a layout the same request names no resource: a memfd offset is just bytes.
        let e = map(&fd, off, 4096, MapFlags::POPULATE).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        assert!(!e.to_string().contains("pktmap"), "{e}");
    }

    #[test]
    fn options_and_mappings_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MapOptions>();
        send_sync::<Mapping>();
        send_sync::<MapFlags>();
    }

    #[test]
    fn read_write_bounds() {
        let fd = memfd(4096);
        let m = map(&fd, 0, 4096, MapFlags::empty()).unwrap();
        assert!(m.write_at(4090, b"abcdef").is_ok());
        assert!(m.write_at(4091, b"abcdef").is_err());
        assert!(m.read_at(usize::MAX, &mut [0; 2]).is_err());
        let ro = map(&fd, 0, 4096, MapFlags::READONLY).unwrap();
        assert_eq!(
            ro.write_at(0, b"x").unwrap_err().raw_os_error(),
            Some(libc::EACCES)
        );
        let mut b = [0; 6];
        ro.read_at(4090, &mut b).unwrap();
        assert_eq!(&b, b"abcdef");
        assert!(ro.as_mut_ptr().is_none());
    }

    #[test]
    fn anonymous_is_zeroed_private_and_strict() {
        let m = MapOptions::new(8192)
            .flags(MapFlags::POPULATE)
            .map_anonymous()
            .unwrap();
        let mut b = [1; 16];
        m.read_at(8192 - 16, &mut b).unwrap();
        assert_eq!(b, [0; 16]);
        m.write_at(0, b"umem").unwrap();
        let ro = MapOptions::new(4096)
            .flags(MapFlags::READONLY)
            .map_anonymous()
            .unwrap();
        assert!(ro.as_mut_ptr().is_none());
        for bad in [
            MapOptions::new(0),
            MapOptions::new(4096).flags(MapFlags::FIXED),
        ] {
            let e = bad.map_anonymous().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        }
    }
}
