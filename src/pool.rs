//! Pools: every pool operation of `/dev/pktmap`. [`PoolOptions`] builds a pool of any kind
//! and creates it; [`Device::pool_info`], [`Device::map_pool`] and [`Device::destroy_pool`]
//! name it by id; [`Device::pool_chunk`] gives a chunk's physical address; and
//! [`Device::export_pool`] makes a pool file descriptor of its own ([`PoolFile`]) that another
//! process receives over a UNIX socket and maps.
//!
//! | kind ([`PoolKind`]) | memory | mapped by |
//! |---|---|---|
//! | eager ([`PoolOptions::new`]) | single pages | `vm_insert_pages` at `mmap` |
//! | lazy ([`PoolOptions::lazy`]) | single pages | the fault handler, `fault_around` pages per fault |
//! | contiguous ([`PoolOptions::contiguous`]) | physically contiguous chunks of up to 2 MiB | `remap_pfn_range` at `mmap` |
//! | 2 MiB ([`PoolOptions::huge`]) | 2 MiB chunks | one PMD entry per fault (`vmf_insert_pfn_pmd`); 4 KiB entries where the address is not 2 MiB-aligned |
//!
//! Contiguous and 2 MiB pools are page-frame mappings: `MAP_PRIVATE` is refused with `EINVAL`
//! (copy-on-write of a PFN map is meaningless), and so is every `MapOptions::private` request.
//! [`MapFlags::POPULATE`] works for every kind, read-write and read-only: the maps here tell
//! [`MapOptions::pool`] the kind [`PoolInfo`] reports, and `resource/` populates the way that
//! kind needs (the kernel's `MADV_POPULATE_*` refuses page-frame maps).
//!
//! # Safety
//! The pool file descriptor `POOL_EXPORT` installs is adopted once, as the driver made it ours.
#![allow(unsafe_code)]

use crate::device::{ioctl, Device};
use crate::error::{Error, Result};
use crate::offset::{ResourceType, PKTMAP};
use crate::resource::{MapFlags, MapOptions, Mapping};
use pktmap_abi::ioctl::{self as abi, PoolExport, ResourceId};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// The ioctl arguments and results of pools, as the driver defines them (`pktmap-abi`,
/// `#[repr(C)]`, mirrored by `include/pktmap.h`), and the contract's names for the pool kinds.
pub use pktmap_abi::ioctl::{PoolChunk, PoolCreate, PoolInfo};
/// How a pool's memory is allocated and mapped: the driver's own enum, which
/// [`PoolOptions::kind`] takes and [`PoolInfo`] reports ([`kind_of`]).
pub use pktmap_abi::plan::PoolKind;

/// The kind of the pool `info` describes, as the driver's contract reads its flags.
///
/// # Errors
/// `EINVAL` for flags no kind has (a `PoolInfo` the driver did not fill).
///
/// # Examples
/// ```
/// use pktmap::pool::{kind_of, PoolInfo, PoolKind};
/// let info = PoolInfo { flags: pktmap_abi::ioctl::POOL_HUGE, ..PoolInfo::default() };
/// assert_eq!(kind_of(&info)?, PoolKind::Huge);
/// assert_eq!(kind_of(&PoolInfo::default())?, PoolKind::Eager);
/// # Ok::<(), pktmap::Error>(())
/// ```
pub fn kind_of(info: &PoolInfo) -> Result<PoolKind> {
    PoolKind::from_flags(info.flags).ok_or_else(|| {
        Error::refused(
            libc::EINVAL,
            format!("pool flags {:#x} name no pool kind", info.flags),
        )
    })
}

/// `POOL_INFO` of pool `id` through `fd` (the device, or a pool file with id 0).
pub(crate) fn info_at(fd: BorrowedFd<'_>, id: u32) -> Result<PoolInfo> {
    let mut info = PoolInfo {
        id,
        ..PoolInfo::default()
    };
    ioctl(fd, "ioctl(PKTMAP_IOC_POOL_INFO)", abi::POOL_INFO, &mut info)?;
    Ok(info)
}

/// A `POOL_CREATE` request: the pool's geometry, kind, fault-around and cache attribute.
///
/// # Examples
/// ```no_run
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::device::Device;
/// use pktmap::pool::PoolOptions;
/// use pktmap::resource::MapFlags;
/// let dev = Device::open()?;
/// // 4096 buffers of 2 KiB in 2 MiB pages, each mapped by one page-table entry.
/// let pool = PoolOptions::new(2048, 4096).huge().create(&dev)?;
/// let bufs = dev.map_pool(pool.id, MapFlags::empty())?;
/// assert_eq!(bufs.as_ptr() as usize % (2 << 20), 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    req: PoolCreate,
}

impl PoolOptions {
    /// An eager pool of `buf_count` buffers of `buf_size` bytes (a power of two, 256..=65536).
    ///
    /// # Examples
    /// ```
    /// use pktmap::pool::PoolOptions;
    /// let req = PoolOptions::new(2048, 512).request();
    /// assert_eq!((req.buf_size, req.buf_count, req.flags), (2048, 512, 0)); // eager
    /// ```
    pub fn new(buf_size: u32, buf_count: u32) -> Self {
        Self {
            req: PoolCreate {
                buf_size,
                buf_count,
                ..PoolCreate::default()
            },
        }
    }

    /// Pages are inserted by the fault handler, `fault_around` per fault (a power of two up
    /// to 512; 1 is one page per fault, 0 the driver's default of 16).
    ///
    /// # Examples
    /// ```
    /// use pktmap::pool::PoolOptions;
    /// // The driver's own check says what it will make of the request.
    /// let g = pktmap_abi::plan::check_pool(&PoolOptions::new(2048, 512).lazy(0).request()).unwrap();
    /// assert_eq!((g.pages, g.fault_around), (256, 16)); // 0 is the default, 16 pages per fault
    /// let g = pktmap_abi::plan::check_pool(&PoolOptions::new(2048, 512).lazy(1).request()).unwrap();
    /// assert_eq!(g.fault_around, 1); // one page per fault
    /// ```
    pub fn lazy(mut self, fault_around: u32) -> Self {
        self.req.flags = PoolKind::Lazy.flag();
        self.req.fault_around = fault_around;
        self
    }

    /// A pool of `kind` with that kind's defaults: [`lazy(0)`](Self::lazy) (16 pages per fault)
    /// for [`PoolKind::Lazy`], else as [`contiguous`](Self::contiguous) or
    /// [`huge`](Self::huge); [`PoolKind::Eager`] is what [`new`](Self::new) makes.
    ///
    /// # Examples
    /// ```
    /// use pktmap::pool::{PoolKind, PoolOptions};
    /// for kind in [PoolKind::Eager, PoolKind::Lazy, PoolKind::Contig, PoolKind::Huge] {
    ///     let g = pktmap_abi::plan::check_pool(&PoolOptions::new(4096, 512).kind(kind).request()).unwrap();
    ///     assert_eq!(g.kind, kind);
    /// }
    /// ```
    pub fn kind(mut self, kind: PoolKind) -> Self {
        self.req.flags = kind.flag();
        self.req.fault_around = 0;
        self
    }

    /// Physically contiguous chunks (the pool rounded up to a power of two, at most 2 MiB
    /// each), mapped whole at `mmap` with `remap_pfn_range`.
    ///
    /// # Examples
    /// ```
    /// use pktmap::pool::PoolOptions;
    /// // 96 KiB of buffers: one physically contiguous chunk of 128 KiB (order 5).
    /// let g = pktmap_abi::plan::check_pool(&PoolOptions::new(2048, 48).contiguous().request()).unwrap();
    /// assert_eq!((g.pages, g.chunk_pages, g.chunk_order()), (32, 32, 5));
    /// ```
    pub fn contiguous(mut self) -> Self {
        self.req.flags = PoolKind::Contig.flag();
        self
    }

    /// 2 MiB chunks, each mapped by one PMD entry on first touch.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 4096).huge().create(&dev)?;
    /// assert_eq!(pool.chunk_bytes, 2 << 20);
    /// // POPULATE faults each 2 MiB chunk in once, here rather than on the first packet.
    /// let bufs = dev.map_pool(pool.id, MapFlags::POPULATE)?;
    /// assert_eq!(bufs.len(), 8 << 20);
    /// # Ok(()) }
    /// ```
    pub fn huge(mut self) -> Self {
        self.req.flags = PoolKind::Huge.flag();
        self
    }

    /// Write-combined memory (contiguous and 2 MiB pools only; the driver refuses the others
    /// with `EINVAL`).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// // Descriptors the CPU only writes and a device only reads: write-combined, contiguous.
    /// let pool = PoolOptions::new(4096, 16).contiguous().write_combined().create(&dev)?;
    /// assert_eq!(pool.cache, pktmap_abi::ioctl::CACHE_WC);
    /// // A pool of single pages cannot be write-combined.
    /// let err = PoolOptions::new(4096, 16).write_combined().create(&dev).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn write_combined(mut self) -> Self {
        self.req.cache = abi::CACHE_WC;
        self
    }

    /// Options that send `req` exactly as given, for callers that test the driver's checks.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::{PoolCreate, PoolOptions};
    /// // A reserved field that is not zero: the driver must refuse it.
    /// let req = PoolCreate { buf_size: 2048, buf_count: 8, reserved: 1, ..PoolCreate::default() };
    /// let err = PoolOptions::from_request(req).create(&dev).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn from_request(req: PoolCreate) -> Self {
        Self { req }
    }

    /// The raw `struct pktmap_pool_create` this sends.
    pub fn request(&self) -> PoolCreate {
        self.req
    }

    /// `POOL_CREATE`—Creates the pool in `dev`'s context and describes it: the one way a
    /// pool is made.
    ///
    /// # Errors
    /// `EINVAL` for a geometry, kind, fault-around or cache attribute the driver refuses
    /// (see `pktmap_abi::plan::check_pool`); `ENOMEM` when the memory (for contiguous and
    /// 2 MiB pools: physically contiguous chunks) cannot be had, in which case nothing is
    /// allocated; `ENOSPC` past the resource limit.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 1024).lazy(4).create(&dev)?;
    /// assert_eq!((pool.fault_around, pool.bytes), (4, 2 << 20));
    /// # Ok(()) }
    /// ```
    pub fn create(&self, dev: &Device) -> Result<PoolInfo> {
        let mut req = self.req;
        ioctl(
            dev.as_fd(),
            "ioctl(PKTMAP_IOC_POOL_CREATE)",
            abi::POOL_CREATE,
            &mut req,
        )?;
        dev.pool_info(req.id)
    }
}

/// Maps all of the pool `info` describes, at `offset` of `fd` (the device, or a pool file),
/// populating it as its kind needs when asked ([`MapOptions::pool`]).
fn map_pool_at(
    fd: BorrowedFd<'_>,
    offset: u64,
    info: &PoolInfo,
    flags: MapFlags,
) -> Result<Mapping> {
    let len = usize::try_from(info.bytes)
        .map_err(|_| Error::refused(libc::ENOMEM, "pool larger than the address space"))?;
    MapOptions::new(len)
        .flags(flags)
        .layout(&PKTMAP)
        .pool(kind_of(info)?)
        .map(fd, offset)
}

impl Device {
    /// `POOL_INFO`—Describes pool `id`.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::{kind_of, PoolKind, PoolOptions};
    /// let pool = PoolOptions::new(4096, 16).create(&dev)?;
    /// let info = dev.pool_info(pool.id)?;
    /// assert_eq!((info.buf_size, info.buf_count, info.bytes), (4096, 16, 65536));
    /// assert_eq!(kind_of(&info)?, PoolKind::Eager);
    /// assert_eq!(dev.pool_info(u32::MAX).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn pool_info(&self, id: u32) -> Result<PoolInfo> {
        info_at(self.as_fd(), id)
    }

    /// `POOL_DESTROY`—Destroys pool `id`; its mappings stay valid until unmapped.
    ///
    /// # Errors
    /// `EINVAL` for an unknown (or already destroyed) id; `EBUSY` while a ring names it.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 2).create(&dev)?;
    /// let bufs = dev.map_pool(pool.id, MapFlags::empty())?;
    /// dev.destroy_pool(pool.id)?;
    /// bufs.write_at(0, b"still mapped")?; // the pages live until the mapping goes
    /// assert_eq!(dev.destroy_pool(pool.id).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn destroy_pool(&self, id: u32) -> Result<()> {
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_POOL_DESTROY)",
            abi::POOL_DESTROY,
            &mut ResourceId { id },
        )
    }

    /// Maps all of pool `id`; [`MapFlags::POPULATE`] keeps its promise for every pool kind,
    /// read-write and read-only (see [`MapOptions::pool`]).
    ///
    /// # Errors
    /// `EINVAL` for an unknown id, else as [`Device::map`].
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 512).lazy(0).create(&dev)?;
    /// // POPULATE: every page is in after this, so the first packet takes no fault.
    /// let bufs = dev.map_pool(pool.id, MapFlags::POPULATE)?;
    /// assert_eq!(bufs.len() as u64, pool.bytes);
    /// // And for a reader that must never write, read-only.
    /// let view = dev.map_pool(pool.id, MapFlags::READONLY | MapFlags::POPULATE)?;
    /// # Ok(()) }
    /// ```
    pub fn map_pool(&self, id: u32, flags: MapFlags) -> Result<Mapping> {
        let info = self.pool_info(id)?;
        map_pool_at(self.as_fd(), ResourceType::Pool.offset(id), &info, flags)
    }

    /// `POOL_CHUNK`—The physical address and size of chunk `index` of pool `id` (what a NIC
    /// driver would program). Root only.
    ///
    /// # Errors
    /// `EPERM` without `CAP_SYS_ADMIN`; `EINVAL` for an unknown pool or an index past the last
    /// chunk (`bytes / chunk_bytes` of [`PoolInfo`]).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// // What a NIC driver would program: the bus address of each 2 MiB chunk (root only).
    /// let pool = PoolOptions::new(2048, 2048).huge().create(&dev)?;
    /// for index in 0..(pool.bytes / pool.chunk_bytes) as u32 {
    ///     let chunk = dev.pool_chunk(pool.id, index)?;
    ///     assert_eq!(chunk.phys % (2 << 20), 0);
    ///     println!("chunk {index}: {:#x}, {} bytes", chunk.phys, chunk.bytes);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pool_chunk(&self, id: u32, index: u32) -> Result<PoolChunk> {
        let mut q = PoolChunk {
            id,
            index,
            ..PoolChunk::default()
        };
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_POOL_CHUNK)",
            abi::POOL_CHUNK,
            &mut q,
        )?;
        Ok(q)
    }

    /// `POOL_EXPORT`—A file descriptor of pool `id`'s own, read-write or read-only, that
    /// another process may receive ([`PoolFile::send`]) and map. The pool lives until its last
    /// file descriptor and mapping are gone, whoever created it.
    ///
    /// # Errors
    /// `EINVAL` for an unknown pool; `EBADF` unless the device was opened read-write (an
    /// export never grants more than the open it comes from); `EMFILE`, `ENOMEM`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 64).create(&dev)?;
    /// let file = dev.export_pool(pool.id, true)?;
    /// assert!(file.is_read_only());
    /// // The pool file maps the same pages, read-only only.
    /// let view = file.map(MapFlags::READONLY)?;
    /// assert_eq!(view.len() as u64, pool.bytes);
    /// assert_eq!(file.map(MapFlags::empty()).unwrap_err().raw_os_error(), Some(libc::EACCES));
    /// # Ok(()) }
    /// ```
    pub fn export_pool(&self, id: u32, read_only: bool) -> Result<PoolFile> {
        let mut req = PoolExport {
            id,
            flags: if read_only { abi::EXPORT_READONLY } else { 0 },
            ..PoolExport::default()
        };
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_POOL_EXPORT)",
            abi::POOL_EXPORT,
            &mut req,
        )?;
        // SAFETY: On success the driver installed `req.fd` in our table for us alone.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(req.fd) };
        Ok(PoolFile { fd, read_only })
    }
}

/// A pool's own file descriptor (from [`Device::export_pool`] or [`PoolFile::recv`]): it maps
/// the pool at `PKTMAP.encode(POOL, 0)` and answers `POOL_INFO` for id 0.
///
/// # Examples
/// ```no_run
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::device::Device;
/// use pktmap::pool::PoolOptions;
/// use pktmap::pool::PoolFile;
/// use pktmap::resource::MapFlags;
/// use std::os::unix::net::UnixStream;
/// let dev = Device::open()?;
/// let pool = PoolOptions::new(2048, 64).create(&dev)?;
/// let (ours, theirs) = UnixStream::pair()?;
/// dev.export_pool(pool.id, true)?.send(&ours)?;
/// // In the other process: a read-only view of the same buffers.
/// let file = PoolFile::recv(&theirs)?;
/// let view = file.map(MapFlags::READONLY)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PoolFile {
    fd: OwnedFd,
    read_only: bool,
}

impl PoolFile {
    /// Adopts a pool file descriptor received some other way; `read_only` says how it was
    /// exported (a read-only one refuses writable maps with `EACCES` either way).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::pool::PoolFile;
    /// use std::os::fd::OwnedFd;
    /// // A pool fd inherited from a parent process as fd 3 (e.g. by a supervisor).
    /// let fd: OwnedFd = std::fs::File::open("/proc/self/fd/3")?.into();
    /// let file = PoolFile::from_fd(fd, true);
    /// let info = file.info()?;
    /// println!("pool of {} buffers of {} bytes", info.buf_count, info.buf_size);
    /// # Ok(()) }
    /// ```
    pub fn from_fd(fd: OwnedFd, read_only: bool) -> Self {
        Self { fd, read_only }
    }

    /// Whether the file is a read-only export, as far as this handle knows.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// `POOL_INFO` for id 0—Describes the pool.
    ///
    /// # Errors
    /// The ioctl's errno (`ENOTTY` if the fd is not a pool file).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 64).lazy(1).create(&dev)?;
    /// let file = dev.export_pool(pool.id, false)?;
    /// let info = file.info()?; // POOL_INFO for id 0: the pool file's own pool
    /// assert_eq!((info.buf_size, info.buf_count, info.bytes), (pool.buf_size, pool.buf_count, pool.bytes));
    /// # Ok(()) }
    /// ```
    pub fn info(&self) -> Result<PoolInfo> {
        info_at(self.fd.as_fd(), 0)
    }

    /// Maps all of the pool with `flags` (with [`MapFlags::POPULATE`] kept for every pool kind,
    /// as [`Device::map_pool`] does).
    ///
    /// # Errors
    /// `EACCES` for a writable map of a read-only file (add [`MapFlags::READONLY`]); else as
    /// [`MapOptions::map`].
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 64).lazy(1).create(&dev)?;
    /// let file = dev.export_pool(pool.id, false)?;
    /// let a = dev.map_pool(pool.id, MapFlags::empty())?;
    /// let b = file.map(MapFlags::POPULATE)?;
    /// a.write_at(0, b"one pool")?;
    /// let mut seen = [0; 8];
    /// b.read_at(0, &mut seen)?;
    /// assert_eq!(&seen, b"one pool"); // two mappings, the same pages
    /// # Ok(()) }
    /// ```
    pub fn map(&self, flags: MapFlags) -> Result<Mapping> {
        map_pool_at(
            self.fd.as_fd(),
            ResourceType::Pool.offset(0),
            &self.info()?,
            flags,
        )
    }

    /// Sends the file descriptor over a connected UNIX socket (`SCM_RIGHTS`), with the one
    /// byte `1` (read-only) or `0` (read-write) as the message.
    ///
    /// # Errors
    /// The `sendmsg` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::pool::PoolFile;
    /// use std::os::unix::net::UnixStream;
    /// // Any file descriptor travels; a memfd stands in for a pool file here.
    /// let memfd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// let (ours, theirs) = UnixStream::pair()?;
    /// rustix::fs::ftruncate(&memfd, 4096)?;
    /// PoolFile::from_fd(memfd.into(), false).send(&ours)?;
    /// let got = PoolFile::recv(&theirs)?; // a new descriptor of the same file, O_CLOEXEC
    /// assert!(!got.is_read_only());
    /// // Only a pool file answers POOL_INFO: a memfd is ENOTTY.
    /// assert_eq!(got.info().unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    /// # Ok(()) }
    /// ```
    pub fn send(&self, sock: &UnixStream) -> Result<()> {
        send_fd(sock.as_fd(), self.fd.as_fd(), self.read_only)
    }

    /// Receives a pool file descriptor sent by [`send`](Self::send) (`O_CLOEXEC`).
    ///
    /// # Errors
    /// The `recvmsg` errno; `InvalidData` if the message carried no file descriptor.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::pool::PoolFile;
    /// use pktmap::resource::MapFlags;
    /// use std::os::unix::net::UnixStream;
    /// // The receiving side: connect to the pool's owner and map what it sends.
    /// let sock = UnixStream::connect("/run/pktmap-pools.sock")?;
    /// let file = PoolFile::recv(&sock)?;
    /// let flags = if file.is_read_only() { MapFlags::READONLY } else { MapFlags::empty() };
    /// let bufs = file.map(flags | MapFlags::POPULATE)?;
    /// println!("mapped {} bytes of the pool", bufs.len());
    /// # Ok(()) }
    /// ```
    pub fn recv(sock: &UnixStream) -> Result<Self> {
        let (fd, read_only) = recv_fd(sock.as_fd())?;
        Ok(Self { fd, read_only })
    }
}

/// `sendmsg` of `fd` (`SCM_RIGHTS`) with the byte `read_only` as the message.
pub(crate) fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, read_only: bool) -> Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("SCM_RIGHTS buffer too small").into());
    }
    let byte = [u8::from(read_only)];
    rustix::net::sendmsg(sock, &[IoSlice::new(&byte)], &mut cmsg, SendFlags::empty())
        .map_err(|e| Error::from(e).during("sendmsg"))?;
    Ok(())
}

/// `recvmsg` of one file descriptor (`SCM_RIGHTS`, `O_CLOEXEC`) and the read-only byte.
pub(crate) fn recv_fd(sock: BorrowedFd<'_>) -> Result<(OwnedFd, bool)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut byte)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| Error::from(e).during("recvmsg"))?;
    let mut fd = None;
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    let fd = fd.ok_or_else(|| Error::refused(libc::EINVAL, "no SCM_RIGHTS fd in the message"))?;
    Ok((fd, byte[0] != 0))
}

impl AsFd for PoolFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<PoolFile> for OwnedFd {
    fn from(f: PoolFile) -> OwnedFd {
        f.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_build_the_request() {
        let r = PoolOptions::new(2048, 64).lazy(1).request();
        assert_eq!((r.flags, r.fault_around, r.cache), (abi::POOL_LAZY, 1, 0));
        let r = PoolOptions::new(2048, 64).huge().write_combined().request();
        assert_eq!((r.flags, r.cache), (abi::POOL_HUGE, abi::CACHE_WC));
        let r = PoolOptions::new(2048, 64).contiguous().request();
        assert!(pktmap_abi::plan::check_pool(&r).is_ok());
    }

    #[test]
    fn a_pool_file_crosses_a_unix_socket() {
        // Any fd crosses the same way; a memfd stands in for the driver's pool file here.
        let memfd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 4096).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        PoolFile::from_fd(memfd, true).send(&a).unwrap();
        let got = PoolFile::recv(&b).unwrap();
        assert!(got.is_read_only());
        assert_eq!(rustix::fs::fstat(&got).unwrap().st_size, 4096);
        drop(a);
        assert!(PoolFile::recv(&b).is_err(), "no fd in an empty message");
    }
}
