//! [`MapOptions`], the one builder of a map, and the checks made before the `mmap`: flags,
//! length, alignment, FIXED, and a file too short for the mapping (no SIGBUS from a safe call).

use super::mapping::RawMapping;
use super::populate::populate_cause;
use super::{MapFlags, Mapping};
use crate::error::{Context, Error, Result};
use crate::offset::{Layout, PAGE_SIZE};
use pktmap_abi::plan::{PoolKind, MMAP_POPULATE};
use rustix::fd::AsFd;
use rustix::mm::{self, MapFlags as SysMapFlags};
use std::borrow::Cow;
use std::ffi::c_void;
use std::ptr::{self, NonNull};

/// How to map: length, flags, sharing and (with FIXED) the address.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::{MapFlags, MapOptions};
/// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
/// let fd = memfd_create("pool", MemfdFlags::CLOEXEC)?;
/// ftruncate(&fd, 8192)?;
/// let m = MapOptions::new(8192).flags(MapFlags::POPULATE).map(&fd, 0)?;
/// m.write_at(4096, b"hello")?;
/// let mut buf = [0; 5];
/// m.read_at(4096, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MapOptions {
    len: usize,
    pub(super) flags: MapFlags,
    pub(super) private: bool,
    /// The FIXED address, kept as a number (never dereferenced), so that the options are
    /// `Send` and `Sync` as plain data.
    addr: Option<std::num::NonZeroUsize>,
    layout: Option<&'static Layout>,
    pub(super) pool: Option<PoolKind>,
}

impl MapOptions {
    /// Options to map `len` bytes, shared, read-write, anywhere.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let m = MapOptions::new(4096).map(&fd, 0)?;
    /// assert_eq!((m.len(), m.is_readonly()), (4096, false));
    /// # Ok(()) }
    /// ```
    pub fn new(len: usize) -> Self {
        Self {
            len,
            flags: MapFlags::empty(),
            private: false,
            addr: None,
            layout: None,
            pool: None,
        }
    }

    /// Sets the [`MapFlags`].
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let fd = memfd(4096)?;
    /// let m = MapOptions::new(4096).flags(MapFlags::READONLY | MapFlags::POPULATE).map(&fd, 0)?;
    /// assert_eq!(m.flags(), MapFlags::READONLY | MapFlags::POPULATE);
    /// assert!(m.write_at(0, b"x").is_err());
    /// # Ok(()) }
    /// ```
    pub fn flags(mut self, flags: MapFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Maps `MAP_PRIVATE`: writes are copied on write and never reach the resource.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let shared = MapOptions::new(4096).map(&fd, 0)?;
    /// let private = MapOptions::new(4096).private().map(&fd, 0)?;
    /// private.write_at(0, b"mine")?;
    /// let mut b = [0; 4];
    /// shared.read_at(0, &mut b)?;
    /// assert_eq!(b, [0; 4]); // the file never saw the private write
    /// # Ok(()) }
    /// ```
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The address to map at; required with [`MapFlags::FIXED`], ignored without it.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use std::ptr::NonNull;
    /// let fd = memfd(4096)?;
    /// // Find a free page, give it back, and map there: FIXED never replaces what is mapped.
    /// let probe = MapOptions::new(4096).map_anonymous()?;
    /// let addr = NonNull::new(probe.as_ptr() as *mut _).unwrap();
    /// probe.unmap()?;
    /// let m = MapOptions::new(4096).flags(MapFlags::FIXED).at(addr).map(&fd, 0)?;
    /// assert_eq!(m.as_ptr(), addr.as_ptr() as *const u8);
    /// // The same address again is EEXIST, and `m` is untouched.
    /// let again = MapOptions::new(4096).flags(MapFlags::FIXED).at(addr).map(&fd, 0);
    /// assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EEXIST));
    /// # Ok(()) }
    /// ```
    pub fn at(mut self, addr: NonNull<c_void>) -> Self {
        self.addr = std::num::NonZeroUsize::new(addr.as_ptr() as usize);
        self
    }

    /// The layout that names the offset in error messages (`pktmap POOL id 3`). Without one,
    /// messages give the raw offset only: a plain file's offset means no resource.
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::offset::{pktmap_types, PKTMAP};
    /// use pktmap::resource::MapOptions;
    /// let fd = memfd(4096)?;
    /// let offset = PKTMAP.encode(pktmap_types::POOL, 3).unwrap();
    /// let err = MapOptions::new(4096).layout(&PKTMAP).map(&fd, offset + 1).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL)); // misaligned, refused before mmap
    /// assert!(err.to_string().contains("pktmap"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn layout(mut self, layout: &'static Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// The resource is a `/dev/pktmap` pool of `kind`, so [`MapFlags::POPULATE`] populates it
    /// as that kind needs (the second table of the
    /// [module docs](crate::resource#how-populate-populates)), which works for every kind,
    /// read-write and read-only; without it, a contiguous or 2 MiB pool's POPULATE is the
    /// kernel's `EINVAL` for page-frame maps. [`Device::map_pool`](crate::device::Device::map_pool)
    /// and [`PoolFile::map`](crate::pool::PoolFile::map) set it from `POOL_INFO`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::device::Device;
    /// use pktmap::offset::ResourceType;
    /// use pktmap::pool::{kind_of, PoolOptions};
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let dev = Device::open()?;
    /// let pool = PoolOptions::new(4096, 1024).huge().create(&dev)?;
    /// // A pool mapped by hand (here read-only), populated by its kind: one read per 2 MiB.
    /// let m = MapOptions::new(pool.bytes as usize)
    ///     .flags(MapFlags::READONLY | MapFlags::POPULATE)
    ///     .pool(kind_of(&pool)?)
    ///     .map(&dev, ResourceType::Pool.offset(pool.id))?;
    /// # Ok(()) }
    /// ```
    pub fn pool(mut self, kind: PoolKind) -> Self {
        self.pool = Some(kind);
        self
    }

    /// `mmap(addr, len, prot, MAP_SHARED | flags, fd, offset)`—Map a resource.
    ///
    /// With [`MapFlags::FIXED`] the mapping goes exactly at the [`at`](Self::at) address or
    /// fails with `EEXIST` if anything is mapped there; nothing existing is replaced.
    ///
    /// # Errors
    /// The kernel's errno (with context) from `mmap` or from populating (a failed populate
    /// names its cause). `EINVAL` before any call for a zero length, an offset that is not a
    /// multiple of the page size, FIXED without an [`at`](Self::at) address, or a regular file
    /// too short for the length (touching the pages past its end would raise `SIGBUS`; see
    /// [the module docs](crate::resource#files-that-end-no-sigbus-from-a-safe-call)).
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let fd = memfd(8192)?;
    /// // The second page of the file, prefaulted: touching it takes no fault.
    /// let m = MapOptions::new(4096).flags(MapFlags::POPULATE).map(&fd, 4096)?;
    /// m.write_at(0, b"frame")?;
    /// // A length of 0 and a misaligned offset are refused before any call.
    /// assert_eq!(MapOptions::new(0).map(&fd, 0).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// assert_eq!(MapOptions::new(4096).map(&fd, 100).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    ///
    /// # References
    /// - [Linux `mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
    /// - [Linux `madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html)
    #[doc(alias = "mmap")]
    pub fn map<Fd: AsFd>(&self, fd: Fd, offset: u64) -> Result<Mapping> {
        // SAFETY: without `replace`, the call either maps fresh address space (null hint) or
        // uses MAP_FIXED_NOREPLACE, which never replaces an existing mapping; neither can
        // invalidate memory the program already uses.
        unsafe { self.map_inner(fd.as_fd(), offset, false) }
    }

    /// `mmap(addr, len, prot, MAP_SHARED | MAP_FIXED | flags, fd, offset)`—Map a resource over
    /// whatever is at the [`at`](Self::at) address.
    ///
    /// # Safety
    /// With [`MapFlags::FIXED`], any existing mapping in `[addr, addr + len)` is replaced. The
    /// caller must own that range and have no live references into it (for example, a range it
    /// reserved with `PROT_NONE`), exactly as for `mmap` with `MAP_FIXED`.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    /// ```
    /// # fn memfd(len: u64) -> std::io::Result<rustix::fd::OwnedFd> {
    /// #     let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC)?;
    /// #     rustix::fs::ftruncate(&fd, len)?;
    /// #     Ok(fd)
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use std::ptr::NonNull;
    /// let fd = memfd(4096)?;
    /// // Anonymous memory this code owns and no reference points into: it may be replaced.
    /// let scratch = MapOptions::new(4096).map_anonymous()?;
    /// let (addr, len) = scratch.into_raw();
    /// let opts = MapOptions::new(len).flags(MapFlags::FIXED).at(addr);
    /// // SAFETY: the range is ours (from `into_raw`) and nothing borrows it.
    /// let m = unsafe { opts.map_replacing(&fd, 0)? };
    /// assert_eq!(m.as_ptr(), addr.as_ptr().cast::<u8>());
    /// # Ok(()) }
    /// ```
    pub unsafe fn map_replacing<Fd: AsFd>(&self, fd: Fd, offset: u64) -> Result<Mapping> {
        // SAFETY: The caller guarantees the range may be replaced.
        unsafe { self.map_inner(fd.as_fd(), offset, true) }
    }

    /// `mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)`—Map fresh zeroed memory that
    /// no file backs, such as an AF_XDP UMEM or the buffers of an io_uring provided-buffer ring.
    ///
    /// [`private`](Self::private) and the layout are ignored (anonymous memory is always private
    /// to the process and its children); [`MapFlags::POPULATE`] and [`MapFlags::READONLY`] apply.
    ///
    /// # Errors
    /// The kernel's errno (with context). `EINVAL` before any call for a zero length or
    /// [`MapFlags::FIXED`], which anonymous memory does not need.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// let umem = MapOptions::new(1 << 20).flags(MapFlags::POPULATE).map_anonymous()?;
    /// umem.write_at(4096, b"frame")?;
    /// let mut b = [0; 5];
    /// umem.read_at(4096, &mut b)?;
    /// assert_eq!(&b, b"frame");
    /// # Ok(()) }
    /// ```
    #[doc(alias = "mmap")]
    pub fn map_anonymous(&self) -> Result<Mapping> {
        if self.len == 0 {
            return Err(Error::invalid("mmap(MAP_ANONYMOUS) of zero length"));
        }
        if self.flags.contains(MapFlags::FIXED) {
            return Err(Error::invalid(
                "mmap(MAP_ANONYMOUS) with FIXED: anonymous memory needs no address",
            ));
        }
        // SAFETY: A null hint without MAP_FIXED only ever takes fresh address space, so no
        // existing memory can be replaced.
        let p = unsafe {
            mm::mmap_anonymous(
                ptr::null_mut(),
                self.len,
                self.flags.prot(),
                SysMapFlags::PRIVATE,
            )
        }
        .map_err(|e| Error::from(e).during("mmap(MAP_ANONYMOUS)"))?;
        // SAFETY: `p` is the result of the successful `mmap` of `self.len` bytes above.
        let mut mapping = unsafe { self.adopt(p) };
        mapping.shared = false;
        if self.flags.contains(MapFlags::POPULATE) {
            mapping.populate()?;
        }
        Ok(mapping)
    }

    /// Takes ownership of what a successful `mmap` of `self.len` bytes returned.
    ///
    /// # Safety
    /// `p` must be the result of a successful `mmap` of `self.len` bytes with `self.flags`'
    /// protections, not owned by anything else.
    unsafe fn adopt(&self, p: *mut c_void) -> Mapping {
        // `mmap_min_addr` keeps page 0 unmappable, so success never returns null; a dangling
        // pointer stands in should it ever (it is only ever unmapped, never dereferenced
        // before the caller sees it).
        let ptr = NonNull::new(p).unwrap_or(NonNull::dangling());
        // INVARIANT: By the safety contract, `ptr` came from a successful `mmap` of `self.len`
        // bytes that nothing else owns.
        Mapping {
            raw: RawMapping { ptr, len: self.len },
            flags: self.flags,
            shared: !self.private,
            pool: self.pool,
        }
    }

    /// # Safety
    /// If `replace`, as [`map_replacing`](Self::map_replacing).
    unsafe fn map_inner(
        &self,
        fd: rustix::fd::BorrowedFd<'_>,
        offset: u64,
        replace: bool,
    ) -> Result<Mapping> {
        let fail = |errno: i32, step: &'static str, why: Option<Cow<'static, str>>| {
            Error::from_errno(errno).with(Context::Map {
                step,
                layout: self.layout,
                offset,
                len: self.len,
                why,
            })
        };
        if !MapFlags::all().contains(self.flags) {
            // A `MapFlags` built with `from_bits_retain` can carry bits no flag names; the C
            // ABI and `from_raw` refuse them, and so does every map.
            return Err(fail(
                libc::EINVAL,
                "mmap",
                Some("unknown map flag bits".into()),
            ));
        }
        if self.len == 0 {
            // POSIX: "If len is zero, mmap() shall fail and no mapping shall be established."
            return Err(fail(libc::EINVAL, "mmap", Some("zero length".into())));
        }
        if offset % PAGE_SIZE != 0 {
            // mmap(2): "EINVAL ... offset ... not aligned on a page boundary".
            return Err(fail(
                libc::EINVAL,
                "mmap",
                Some("the offset is not a multiple of the page size".into()),
            ));
        }
        if let Some(why) = past_file_end(fd, offset, self.len, self.flags) {
            return Err(fail(libc::EINVAL, "mmap", Some(why.into())));
        }
        let fixed = self.flags.contains(MapFlags::FIXED);
        let mut sys = if self.private {
            SysMapFlags::PRIVATE
        } else {
            SysMapFlags::SHARED
        };
        let want = self.addr.map(|a| a.get() as *mut c_void);
        let hint = match (fixed, want) {
            (false, _) => ptr::null_mut(),
            (true, Some(addr)) => {
                sys |= if replace {
                    SysMapFlags::FIXED
                } else {
                    SysMapFlags::FIXED_NOREPLACE
                };
                addr
            }
            (true, None) => {
                return Err(fail(
                    libc::EINVAL,
                    "mmap",
                    Some("FIXED needs the address from MapOptions::at".into()),
                ))
            }
        };
        // A lazy pool's POPULATE is the driver's: asked by a bit of the offset, which names the
        // same pool (see `populate_raw`).
        let sys_offset = if self.driver_populates() {
            offset | MMAP_POPULATE
        } else {
            offset
        };
        // SAFETY: A null hint or MAP_FIXED_NOREPLACE cannot clobber existing memory; with
        // MAP_FIXED (`replace`) the caller guarantees the range may be replaced.
        let p = unsafe { mm::mmap(hint, self.len, self.flags.prot(), sys, fd, sys_offset) }
            .map_err(|e| fail(e.raw_os_error(), "mmap", None))?;
        // SAFETY: `p` is the result of the successful `mmap` of `self.len` bytes above.
        let mapping = unsafe { self.adopt(p) };
        if fixed && Some(p) != want {
            // Kernels before 4.17 treat MAP_FIXED_NOREPLACE as a hint; dropping unmaps ours.
            return Err(fail(
                libc::EEXIST,
                "mmap",
                Some("the kernel placed it elsewhere".into()),
            ));
        }
        if self.flags.contains(MapFlags::POPULATE) {
            let (step, r) = mapping.populate_raw(true);
            // On failure `mapping` drops here: unmapped, never half-populated.
            r.map_err(|e| fail(e.raw_os_error(), step, populate_cause(e).map(Into::into)))?;
        }
        Ok(mapping)
    }
}

/// `HUGETLBFS_MAGIC` (`linux/magic.h`): a hugetlbfs file grows to the length of a writable
/// `mmap` of it.
const HUGETLBFS_MAGIC: u64 = 0x9584_58f6;
/// `ANON_INODE_FS_MAGIC` (`linux/magic.h`).
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

/// Why mapping `len` bytes at `offset` of `fd` would raise `SIGBUS` on touch, if it would: for
/// a regular file (a disk file, tmpfs, a memfd), a length that runs past the page holding the
/// file's last byte. `None` for anything else (a device decides for itself; pktmap's driver
/// refuses a length over the resource), or when `fstat` cannot tell (the `mmap` then reports).
fn past_file_end(
    fd: rustix::fd::BorrowedFd<'_>,
    offset: u64,
    len: usize,
    flags: MapFlags,
) -> Option<String> {
    let st = rustix::fs::fstat(fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let fs = rustix::fs::fstatfs(fd)
        .map(|f| f.f_type as u64)
        .unwrap_or(0);
    // A writable map of a hugetlbfs file extends the file to cover it (hugetlbfs_file_mmap);
    // a read-only one does not. An anonymous inode (io_uring, a pktmap pool file) has no
    // length that bounds its mmap, should a kernel report it as a regular file.
    if (fs == HUGETLBFS_MAGIC && !flags.contains(MapFlags::READONLY)) || fs == ANON_INODE_FS_MAGIC {
        return None;
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    // Bytes past the end in the last page read as zeros; the next page is SIGBUS.
    let backed = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    // An overflowing length is the kernel's `ENOMEM`; let it say so.
    let end = offset
        .checked_add(u64::try_from(len).ok()?)?
        .checked_next_multiple_of(PAGE_SIZE)?;
    (end > backed).then(|| {
        format!(
            "the file is {size} bytes, so the mapping would end {} bytes past it and touching \
             those pages would raise SIGBUS (grow the file first, e.g. ftruncate)",
            end - backed
        )
    })
}
