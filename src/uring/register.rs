//! Registrations with an instance: provided-buffer rings, with or without buffers, and the
//! parameter region.

use super::{BufRing, PbufRing, Region, Uring};
use crate::offset::Region as _;
use crate::resource::{MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use rustix::fd::AsRawFd;
use std::io;
use std::ptr;
use std::sync::Arc;

/// `IORING_REGISTER_MEM_REGION`, which rustix's `IoringRegisterOp` lacks.
const REGISTER_MEM_REGION: libc::c_uint = 34;

impl Uring {
    /// `IORING_REGISTER_PBUF_RING` with `IOU_PBUF_RING_MMAP`—Has the kernel allocate a
    /// provided-buffer ring of `entries` entries for buffer group `bgid`, and registers
    /// nothing else: no buffers, no mapping. [`register_buf_ring`](Self::register_buf_ring)
    /// is the ring with buffers.
    ///
    /// # Errors
    /// `EINVAL` before any call if `entries` is not a power of two in `1..=32768` or `bgid`
    /// does not fit the layout (above 2047); otherwise the kernel's errno (`EEXIST` if the
    /// group is registered already).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{map, MapFlags};
    /// let ring = pktmap::uring::Uring::new(4)?;
    /// let pbuf = ring.register_pbuf_ring(0, 32768)?; // the largest: 512 KiB
    /// // Map it as any peer would, by fd and offset.
    /// let m = map(&pbuf, pbuf.offset(), pbuf.len(), MapFlags::POPULATE)?;
    /// assert_eq!(m.len(), 512 << 10);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_PBUF_RING")]
    pub fn register_pbuf_ring(&self, bgid: u16, entries: u16) -> Result<PbufRing> {
        PbufRing::register(self.fd.try_clone()?, Arc::clone(&self.pbufs), bgid, entries)
    }

    /// Registers a provided-buffer ring for buffer group `bgid` with `IOU_PBUF_RING_MMAP`,
    /// maps it through pktmap and fills it with `entries` buffers of `buf_size` bytes each, in
    /// fresh anonymous memory.
    ///
    /// Buffer `i` has buffer id `i`. Use [`register_buf_ring_in`](Self::register_buf_ring_in)
    /// for buffers in memory of your own (huge pages, a shared memfd, a driver pool).
    ///
    /// # Errors
    /// `EINVAL` before any call if `entries` is not a power of two in `1..=32768`, `buf_size`
    /// is 0, or `bgid` does not fit the layout (above 2047); otherwise the kernel's errno
    /// (`EEXIST` if the group is registered already).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let bufs = ring.register_buf_ring(7, 16, 2048)?;
    /// assert_eq!(bufs.mapping().len(), 16 * 16);
    /// assert!(ring.register_buf_ring(1, 100, 2048).is_err()); // not a power of two
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_PBUF_RING")]
    pub fn register_buf_ring(&self, bgid: u16, entries: u16, buf_size: u32) -> Result<BufRing> {
        let len = (entries as usize)
            .checked_mul(buf_size as usize)
            .filter(|&l| l > 0)
            .ok_or_else(|| Error::invalid(format!("{entries} buffers of {buf_size} bytes")))?;
        let mem = MapOptions::new(len)
            .flags(MapFlags::POPULATE)
            .map_anonymous()?;
        self.register_buf_ring_in(bgid, entries, buf_size, mem)
    }

    /// Registers a provided-buffer ring for buffer group `bgid` whose `entries` buffers of
    /// `buf_size` bytes live in `mem`, memory the caller made: any writable [`Mapping`] (a
    /// hugetlb or shared memfd, a pktmap driver pool, anonymous memory). Buffer `i` starts `i
    /// * buf_size` bytes into `mem`.
    ///
    /// The [`BufRing`] owns `mem` and unregisters the group before unmapping it.
    ///
    /// # Errors
    /// As [`register_buf_ring`](Self::register_buf_ring); `EINVAL` before any call if the
    /// buffers do not fit `mem` or `mem` is read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::{sealed_memfd, MapOptions};
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// // Shared memory another process can map too (and never shrink); with a hugetlb memfd
    /// // (and 2 MiB pages reserved in vm.nr_hugepages) the buffers sit in one huge page.
    /// let fd = sealed_memfd("rx-buffers", 2 << 20)?;
    /// let mem = MapOptions::new(2 << 20).map(&fd, 0)?;
    /// let bufs = ring.register_buf_ring_in(1, 1024, 2048, mem)?;
    /// assert_eq!(bufs.buffers().len(), 2 << 20);
    /// # Ok(()) }
    /// ```
    pub fn register_buf_ring_in(
        &self,
        bgid: u16,
        entries: u16,
        buf_size: u32,
        mem: Mapping,
    ) -> Result<BufRing> {
        Region::PbufRing { bgid }.offset()?;
        if !entries.is_power_of_two() || buf_size == 0 {
            return Err(Error::invalid(format!(
                "provided-buffer ring of {entries} entries of {buf_size} bytes: entries must be \
                 a power of two up to 32768 and buffers non-empty"
            )));
        }
        let need = entries as usize * buf_size as usize;
        if need > mem.len() || mem.is_readonly() {
            return Err(Error::invalid(format!(
                "{entries} buffers of {buf_size} bytes need {need} writable bytes; the memory \
                 has {} ({})",
                mem.len(),
                if mem.is_readonly() {
                    "read-only"
                } else {
                    "writable"
                }
            )));
        }
        let pbuf = self.register_pbuf_ring(bgid, entries)?;
        BufRing::new(pbuf, buf_size, mem)
    }

    /// `IORING_REGISTER_MEM_REGION`—Has the kernel allocate a parameter region of `size`
    /// bytes and returns the `mmap` offset it reports for it
    /// (`io_uring_region_desc.mmap_offset`), which [`Region::Param`] names.
    ///
    /// # Errors
    /// `EINVAL` before the call for a size that is 0 or not whole pages; `EINVAL` if the
    /// kernel's offset is not one the [`IO_URING`](crate::offset::IO_URING) layout decodes to
    /// [`Region::Param`]; otherwise the kernel's errno (`EBUSY` if the ring has a region
    /// already).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapFlags;
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let off = ring.register_mem_region(4096)?;
    /// assert_eq!(off, 0x2000_0000);
    /// let param = ring.map_offset(off, 4096, MapFlags::empty())?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "IORING_REGISTER_MEM_REGION")]
    pub fn register_mem_region(&self, size: usize) -> Result<u64> {
        let page = crate::offset::PAGE_SIZE as usize;
        if size == 0 || size % page != 0 {
            return Err(Error::invalid(format!(
                "a memory region of {size} bytes: must be whole pages"
            )));
        }
        let mut desc = linux_raw_sys::io_uring::io_uring_region_desc {
            user_addr: 0,
            size: size as u64,
            flags: 0,
            id: 0,
            mmap_offset: 0,
            __resv: [0; 4],
        };
        let reg = linux_raw_sys::io_uring::io_uring_mem_region_reg {
            region_uptr: ptr::from_mut(&mut desc) as u64,
            flags: 0,
            __resv: [0; 2],
        };
        // SAFETY: `reg` and the descriptor it points to are valid and live across the call;
        // the kernel writes only `desc.mmap_offset` (and reads no user address: `user_addr`
        // is 0 without IORING_MEM_REGION_TYPE_USER, so the kernel allocates the pages).
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.fd.as_raw_fd(),
                REGISTER_MEM_REGION,
                ptr::from_ref(&reg),
                1,
            )
        };
        if r < 0 {
            return Err(
                Error::from(io::Error::last_os_error()).during("IORING_REGISTER_MEM_REGION")
            );
        }
        let offset = desc.mmap_offset;
        match Region::from_offset(offset) {
            Ok(Region::Param) => {}
            _ => {
                return Err(Error::invalid(format!(
                    "the kernel put the memory region at {offset:#x}, not a PARAM_REGION offset"
                )))
            }
        }
        let _ = self.param_region.set(size);
        Ok(offset)
    }
}
