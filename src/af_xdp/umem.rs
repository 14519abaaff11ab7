//! The UMEM: frames in memory the kernel pins, pktmap's or the caller's.

use crate::offset::PAGE_SIZE;
use crate::resource::{MapFlags, MapOptions, Mapping};
use crate::{Error, Result};
use rustix::net::xdp::{XdpUmemReg, XdpUmemRegFlags};

/// The UMEM: `frames` frames of `frame_size` bytes in memory mapped through pktmap.
///
/// Frame `i` starts at UMEM address `i * frame_size`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let umem = pktmap::af_xdp::Umem::new(64, 2048)?;
/// umem.write(2048, b"frame 1")?;
/// let mut b = [0; 7];
/// umem.read(2048, &mut b)?;
/// assert_eq!(&b, b"frame 1");
/// assert_eq!(umem.frame_addrs().nth(1), Some(2048));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Umem {
    mem: Mapping,
    frame_size: u32,
    frames: u32,
}

impl Umem {
    /// Maps `frames * frame_size` bytes of anonymous memory, populated.
    ///
    /// # Errors
    /// `EINVAL` before any call if `frame_size` is not a power of two in `2048..=PAGE_SIZE`
    /// (the kernel's rule for aligned chunks in page-sized memory) or `frames` is 0; else the
    /// `mmap` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// assert!(pktmap::af_xdp::Umem::new(8, 1000).is_err());
    /// # Ok(()) }
    /// ```
    pub fn new(frames: u32, frame_size: u32) -> Result<Self> {
        if !frame_size.is_power_of_two()
            || !(2048..=PAGE_SIZE as u32).contains(&frame_size)
            || frames == 0
        {
            return Err(Error::invalid(format!(
                "UMEM of {frames} frames of {frame_size} bytes: frames must be a power of two \
                 in 2048..=4096, and at least one"
            )));
        }
        let len = (frames as usize)
            .checked_mul(frame_size as usize)
            .ok_or_else(|| Error::invalid("UMEM size overflows usize"))?;
        let mem = MapOptions::new(len)
            .flags(MapFlags::POPULATE)
            .map_anonymous()?;
        Self::from_mapping(mem, frame_size)
    }

    /// A UMEM over memory the caller mapped: any writable [`Mapping`] (a hugetlb memfd, a
    /// shared memfd another process also maps, a pktmap driver pool), cut into as many frames
    /// of `frame_size` bytes as fit.
    ///
    /// In hugetlb memory the mapping starts on a 2 MiB boundary, so with a power-of-two frame
    /// size no frame straddles a huge page. The kernel takes frames larger than a page only in
    /// huge-page memory (`XDP_UMEM_REG` says `EINVAL` otherwise).
    ///
    /// # Errors
    /// `EINVAL` if `frame_size` is not a power of two of at least 2048, or no frame fits, or
    /// the mapping is read-only.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::Umem;
    /// use pktmap::resource::{MapFlags, MapOptions};
    /// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
    /// // A shared memfd another process can map too (with `MemfdFlags::HUGETLB`, and 2 MiB
    /// // pages reserved in vm.nr_hugepages, frames up to 2 MiB).
    /// let fd = memfd_create("umem", MemfdFlags::CLOEXEC)?;
    /// ftruncate(&fd, 2 << 20)?;
    /// let umem = Umem::from_mapping(MapOptions::new(2 << 20).flags(MapFlags::POPULATE).map(&fd, 0)?, 2048)?;
    /// assert_eq!(umem.frames(), 1024);
    /// # Ok(()) }
    /// ```
    pub fn from_mapping(mem: Mapping, frame_size: u32) -> Result<Self> {
        let frames = u32::try_from(mem.len() / frame_size.max(1) as usize).unwrap_or(u32::MAX);
        if !frame_size.is_power_of_two() || frame_size < 2048 || frames == 0 || mem.is_readonly() {
            return Err(Error::invalid(format!(
                "UMEM of {} {} bytes in frames of {frame_size}: frames must be a power of two \
                 of at least 2048, at least one must fit, and the memory must be writable",
                mem.len(),
                if mem.is_readonly() {
                    "read-only"
                } else {
                    "writable"
                }
            )));
        }
        Ok(Self {
            mem,
            frame_size,
            frames,
        })
    }

    /// The frame size.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The UMEM address of every frame, in order.
    pub fn frame_addrs(&self) -> impl Iterator<Item = u64> + use<> {
        let size = u64::from(self.frame_size);
        (0..u64::from(self.frames)).map(move |i| i * size)
    }

    /// The memory, as mapped.
    pub fn mapping(&self) -> &Mapping {
        &self.mem
    }

    /// Copies `out.len()` bytes out, starting at UMEM address `addr`.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the UMEM.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// let mut b = [1; 4];
    /// umem.read(4096, &mut b)?;
    /// assert_eq!(b, [0; 4]);
    /// # Ok(()) }
    /// ```
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.mem.read_at(self.index(addr)?, out)
    }

    /// Copies `data` in, starting at UMEM address `addr`.
    ///
    /// # Errors
    /// `EINVAL` if the range is outside the UMEM.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let umem = pktmap::af_xdp::Umem::new(8, 4096)?;
    /// umem.write(4096, b"eth")?;
    /// assert!(umem.write(8 * 4096, b"x").is_err());
    /// # Ok(()) }
    /// ```
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.mem.write_at(self.index(addr)?, data)
    }

    fn index(&self, addr: u64) -> Result<usize> {
        usize::try_from(addr).map_err(|_| Error::invalid(format!("UMEM address {addr:#x}")))
    }

    pub(super) fn reg(&self) -> XdpUmemReg {
        XdpUmemReg {
            addr: self.mem.as_ptr() as u64,
            len: (self.frames as usize * self.frame_size as usize) as u64,
            chunk_size: self.frame_size,
            headroom: 0,
            flags: XdpUmemRegFlags::empty(),
            tx_metadata_len: 0,
        }
    }
}
