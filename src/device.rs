//! [`Device`]: an open `/dev/pktmap`, its rings, its STATE, and typed mapping of its resources;
//! its pools are [`crate::pool`]'s.
//!
//! Each open file is an independent context: pools and rings created through one [`Device`]
//! are invisible to another. Mappings hold a reference on their resource in the driver, so
//! destroying a pool or dropping the `Device` while mapped is safe; the pages go away with the
//! last mapping.
//!
//! # Safety
//! The ioctls pass pointers to `#[repr(C)]` structs of `pktmap-abi` whose sizes are encoded in
//! the ioctl numbers; each call site says why its pointer is valid.
#![allow(unsafe_code)]

use crate::error::Context;
use crate::offset::{ResourceType, PKTMAP};
use crate::resource::{MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use pktmap_abi::ioctl::{self, ResourceId};
use std::ffi::c_ulong;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The device node the driver registers.
pub const DEVICE_PATH: &str = "/dev/pktmap";

/// The ioctl arguments and results [`Device`] hands out and takes, as the driver defines them
/// (`pktmap-abi`, `#[repr(C)]`, mirrored by `include/pktmap.h`); the pools' own are in
/// [`crate::pool`].
pub use pktmap_abi::ioctl::{RingCreate, RingInfo, State, STATE_MAGIC};

/// Issues `cmd` (named `name` in errors) on `fd` with `arg` as its in/out argument: the
/// library's one ioctl call, for the device and for pool files.
pub(crate) fn ioctl<T>(
    fd: BorrowedFd<'_>,
    name: &'static str,
    cmd: u32,
    arg: &mut T,
) -> Result<()> {
    // SAFETY: `arg` is a valid, exclusive `T`, and every `cmd` passed here encodes
    // `size_of::<T>()` as its argument size, so the driver reads and writes within it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), c_ulong::from(cmd), arg as *mut T) };
    if rc < 0 {
        Err(Error::from(std::io::Error::last_os_error()).during(name))
    } else {
        Ok(())
    }
}

/// As [`ioctl`], for the requests whose result is the call's non-negative return value
/// (`KICK`: the slots it released).
pub(crate) fn ioctl_value<T>(
    fd: BorrowedFd<'_>,
    name: &'static str,
    cmd: u32,
    arg: &mut T,
) -> Result<u32> {
    // SAFETY: As in `ioctl`: `arg` is a valid, exclusive `T` whose size `cmd` encodes.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), c_ulong::from(cmd), arg as *mut T) };
    if rc < 0 {
        Err(Error::from(std::io::Error::last_os_error()).during(name))
    } else {
        Ok(u32::try_from(rc).unwrap_or(0))
    }
}

/// An open `/dev/pktmap`: one independent context of pools and rings.
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::device::Device;
/// use pktmap::pool::PoolOptions;
/// use pktmap::resource::MapFlags;
/// let dev = Device::open()?;
/// let pool = PoolOptions::new(2048, 512).lazy(1).create(&dev)?;
/// let bufs = dev.map_pool(pool.id, MapFlags::POPULATE)?;
/// bufs.write_at(0, b"packet")?;
/// let mut seen = [0; 6];
/// dev.read_resource(pktmap::offset::ResourceType::Pool, pool.id, &mut seen)?;
/// assert_eq!(&seen, b"packet");
/// println!("{:?}", dev.state()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Device {
    file: File,
}

impl Device {
    /// Opens [`DEVICE_PATH`] read-write.
    ///
    /// # Errors
    /// `ENOENT` if the driver is not loaded, or the `open` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::device::Device;
    /// match Device::open() {
    ///     Ok(dev) => println!("{:?}", dev.state()?),
    ///     // No /dev/pktmap: the module is not loaded (as on a machine without it).
    ///     Err(e) if e.raw_os_error() == Some(libc::ENOENT) => eprintln!("load pktmap.ko first: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn open() -> Result<Self> {
        Self::open_path(DEVICE_PATH)
    }

    /// Opens the device at `path` read-write.
    ///
    /// # Errors
    /// The `open` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::device::Device;
    /// // Any file opens; only the driver answers with a STATE page.
    /// let not_pktmap = Device::open_path("/dev/null")?;
    /// assert_eq!(not_pktmap.state().unwrap_err().raw_os_error(), Some(libc::EIO));
    /// let err = Device::open_path("/nonexistent/pktmap").unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    /// # Ok(()) }
    /// ```
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path.as_ref())
            .map_err(|e| {
                Error::from(e).with(Context::Message(format!(
                    "open {}",
                    path.as_ref().display()
                )))
            })?;
        Ok(Self { file })
    }

    /// Another handle on the same open file: the same context, the same pools and rings.
    ///
    /// # Errors
    /// The `dup` errno.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 64).create(&dev)?;
    /// let worker = dev.try_clone()?; // e.g. for another thread
    /// assert_eq!(worker.pool_info(pool.id)?, pool); // the same context sees the same pool
    /// # Ok(()) }
    /// ```
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
        })
    }

    /// `RING_CREATE`—Creates a ring of `entries` descriptors naming buffers of `pool_id`.
    ///
    /// # Errors
    /// `EINVAL` for entries that are not a power of two up to 32768 or an unknown pool;
    /// `ENOSPC`; `ENOMEM`.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 256).create(&dev)?;
    /// let ring = dev.create_ring(256, pool.id)?;
    /// assert_eq!((ring.entries, ring.pool_id), (256, pool.id));
    /// # Ok(()) }
    /// ```
    pub fn create_ring(&self, entries: u32, pool_id: u32) -> Result<RingInfo> {
        self.create_ring_raw(RingCreate {
            entries,
            pool_id,
            flags: 0,
            id: 0,
        })
    }

    /// `RING_CREATE` with a raw argument, for callers that test the driver's checks.
    ///
    /// # Errors
    /// As [`create_ring`](Self::create_ring).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::device::RingCreate;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 8).create(&dev)?;
    /// // Flags are 0 or RING_PACKET (1).
    /// let req = RingCreate { entries: 8, pool_id: pool.id, flags: 2, id: 0 };
    /// assert_eq!(dev.create_ring_raw(req).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn create_ring_raw(&self, mut req: RingCreate) -> Result<RingInfo> {
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_RING_CREATE)",
            ioctl::RING_CREATE,
            &mut req,
        )?;
        self.ring_info(req.id)
    }

    /// `RING_INFO`—Describes ring `id`.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 8).create(&dev)?;
    /// let ring = dev.create_ring(1024, pool.id)?;
    /// assert_eq!(dev.ring_info(ring.id)?.bytes, 3 * 4096); // 64 + 1024 * 8 bytes, in pages
    /// # Ok(()) }
    /// ```
    pub fn ring_info(&self, id: u32) -> Result<RingInfo> {
        let mut info = RingInfo {
            id,
            ..RingInfo::default()
        };
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_RING_INFO)",
            ioctl::RING_INFO,
            &mut info,
        )?;
        Ok(info)
    }

    /// `RING_DESTROY`—Destroys ring `id`; its mappings stay valid until unmapped.
    ///
    /// # Errors
    /// `EINVAL` for an unknown (or already destroyed) id.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// let pool = PoolOptions::new(2048, 8).create(&dev)?;
    /// let ring = dev.create_ring(8, pool.id)?;
    /// // A ring holds its pool: destroy the ring first.
    /// assert_eq!(dev.destroy_pool(pool.id).unwrap_err().raw_os_error(), Some(libc::EBUSY));
    /// dev.destroy_ring(ring.id)?;
    /// dev.destroy_pool(pool.id)?;
    /// # Ok(()) }
    /// ```
    pub fn destroy_ring(&self, id: u32) -> Result<()> {
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_RING_DESTROY)",
            ioctl::RING_DESTROY,
            &mut ResourceId { id },
        )
    }

    /// Maps `len` bytes of resource `(ty, id)`.
    ///
    /// # Errors
    /// As [`MapOptions::map`]: `EINVAL` for an unknown resource or a length beyond it, `EPERM`
    /// for writable STATE.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::offset::ResourceType;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 64).create(&dev)?;
    /// // The first page of the pool only.
    /// let head = dev.map(ResourceType::Pool, pool.id, 4096, MapFlags::empty())?;
    /// assert_eq!(head.len(), 4096);
    /// let err = dev.map(ResourceType::State, 0, 4096, MapFlags::empty()).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EPERM)); // STATE is read-only
    /// # Ok(()) }
    /// ```
    pub fn map(&self, ty: ResourceType, id: u32, len: usize, flags: MapFlags) -> Result<Mapping> {
        MapOptions::new(len)
            .flags(flags)
            .layout(&PKTMAP)
            .map(&self.file, ty.offset(id))
    }

    /// Maps the read-only STATE page.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::device::{State, STATE_MAGIC};
    /// use std::sync::atomic::Ordering;
    /// let page = dev.map_state()?;
    /// assert_eq!(page.load::<u64>(0)?, STATE_MAGIC);
    /// // The fault path bumps `faults_served` in place: read it atomically.
    /// let faults = page.atomic_u64(std::mem::offset_of!(State, faults_served))?;
    /// println!("{} faults served", faults.load(Ordering::Relaxed));
    /// # Ok(()) }
    /// ```
    pub fn map_state(&self) -> Result<Mapping> {
        self.map(ResourceType::State, 0, 4096, MapFlags::READONLY)
    }

    /// Maps all of ring `id`.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id, else as [`map`](Self::map).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let pool = PoolOptions::new(2048, 64).create(&dev)?;
    /// let ring = dev.create_ring(64, pool.id)?;
    /// let m = dev.map_ring(ring.id, MapFlags::empty())?;
    /// // The driver wrote the header: producer, consumer, entries, pool_id (`RingHeader`).
    /// assert_eq!(m.load::<u32>(8)?, 64);
    /// assert_eq!(m.load::<u32>(12)?, pool.id);
    /// # Ok(()) }
    /// ```
    pub fn map_ring(&self, id: u32, flags: MapFlags) -> Result<Mapping> {
        let len = usize::try_from(self.ring_info(id)?.bytes)
            .map_err(|_| Error::refused(libc::ENOMEM, "ring larger than the address space"))?;
        self.map(ResourceType::Ring, id, len, flags)
    }

    /// `pread(fd, buf, len, offset)`—Reads a resource from its first byte through the driver's
    /// own view.
    ///
    /// The file position is the resource's `mmap` offset, decoded as strictly as for `mmap`;
    /// the data always starts at the resource's byte 0. Returns the bytes read: `buf.len()`, or
    /// fewer at the end of the resource.
    ///
    /// # Errors
    /// `EINVAL` for an unknown resource.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::offset::ResourceType;
    /// let pool = PoolOptions::new(256, 1).create(&dev)?;
    /// dev.write_resource(ResourceType::Pool, pool.id, b"hello")?;
    /// let mut buf = [0; 8192];
    /// // A pool of 256 bytes is one page: the read stops there.
    /// assert_eq!(dev.read_resource(ResourceType::Pool, pool.id, &mut buf)?, 4096);
    /// assert_eq!(&buf[..5], b"hello");
    /// # Ok(()) }
    /// ```
    #[doc(alias = "pread")]
    pub fn read_resource(&self, ty: ResourceType, id: u32, buf: &mut [u8]) -> Result<usize> {
        let r = self.file.read_at(buf, ty.offset(id));
        r.map_err(|e| Error::from(e).during("pread"))
    }

    /// `pwrite(fd, data, len, offset)`—Writes a resource from its first byte through the
    /// driver's own view.
    ///
    /// Returns the bytes written: `data.len()`, or fewer at the end of the resource.
    ///
    /// # Errors
    /// `EINVAL` for an unknown resource, `EPERM` for STATE.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::offset::ResourceType;
    /// let pool = PoolOptions::new(2048, 2).create(&dev)?;
    /// assert_eq!(dev.write_resource(ResourceType::Pool, pool.id, &[7; 4096])?, 4096);
    /// let err = dev.write_resource(ResourceType::State, 0, b"x").unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    /// # Ok(()) }
    /// ```
    #[doc(alias = "pwrite")]
    pub fn write_resource(&self, ty: ResourceType, id: u32, data: &[u8]) -> Result<usize> {
        let r = self.file.write_at(data, ty.offset(id));
        r.map_err(|e| Error::from(e).during("pwrite"))
    }

    /// Reads the STATE counters (device-wide) through `pread`: one consistent snapshot (the
    /// driver reads the page under its `sequence` seqcount).
    ///
    /// # Errors
    /// The `pread` errno; `EIO` if the page does not start with the STATE magic or the
    /// snapshot is not consistent (an odd `sequence`, which the driver never returns).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::pool::PoolOptions;
    /// // On a device nothing else is using meanwhile (the counters are device-wide):
    /// let before = dev.state()?;
    /// let pool = PoolOptions::new(2048, 64).create(&dev)?;
    /// let after = dev.state()?;
    /// assert_eq!(after.pools, before.pools + 1);
    /// assert_eq!(after.pages_allocated, before.pages_allocated + pool.bytes / 4096);
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> Result<State> {
        let mut raw = [0u8; std::mem::size_of::<State>()];
        let n = self.read_resource(ResourceType::State, 0, &mut raw)?;
        let state = state_from_bytes(&raw[..n])?;
        if !state.is_consistent() {
            return Err(Error::refused(
                libc::EIO,
                format!(
                    "STATE snapshot taken mid-update (sequence {})",
                    state.sequence
                ),
            ));
        }
        Ok(state)
    }
}

/// Parses the STATE page's first bytes.
///
/// # Errors
/// `EIO` for a short buffer or a wrong magic.
///
/// # Examples
/// ```
/// use pktmap::device::state_from_bytes;
/// use pktmap::device::STATE_MAGIC;
/// let mut page = [0u8; 88];
/// page[..8].copy_from_slice(&STATE_MAGIC.to_ne_bytes());
/// page[8] = 2; // two pools
/// assert_eq!(state_from_bytes(&page).unwrap().pools, 2);
/// assert!(state_from_bytes(&[0; 88]).is_err());
/// ```
pub fn state_from_bytes(bytes: &[u8]) -> Result<State> {
    let mut words = bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()));
    let mut next = || {
        words
            .next()
            .ok_or_else(|| Error::refused(libc::EIO, "short STATE page"))
    };
    let mut w = [0u64; ioctl::STATE_WORDS];
    for word in &mut w {
        *word = next()?;
    }
    let state = State::from_words(w);
    if state.magic != STATE_MAGIC {
        return Err(Error::refused(
            libc::EIO,
            format!("STATE magic {:#x}, want {:#x}", state.magic, STATE_MAGIC),
        ));
    }
    Ok(state)
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed open names the path it tried and keeps the errno.
    #[test]
    fn open_errors_name_the_path() {
        let e = Device::open_path("/nonexistent/pktmap").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
        assert!(
            e.to_string().starts_with("open /nonexistent/pktmap: "),
            "{e}"
        );
    }
}
