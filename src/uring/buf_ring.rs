//! Provided-buffer rings: a kernel-allocated ring registered for a buffer group
//! ([`PbufRing`]), and that ring mapped with the buffers it hands out ([`BufRing`]).

use super::{lock, PbufTable, Region, BUF_ENTRY};
use crate::offset::Region as _;
use crate::resource::{map_region, MapFlags, Mapping};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io_uring::{io_uring_buf_reg, io_uring_register, IoringRegisterOp};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;

/// A provided-buffer ring the kernel allocated (`IOU_PBUF_RING_MMAP`) for one buffer group,
/// registered and nothing more: no buffers, no mapping
/// ([`Uring::register_pbuf_ring`](super::Uring::register_pbuf_ring)). For code that maps the
/// ring itself, such as `pktmap bench`; [`BufRing`] is the ring with buffers.
///
/// It holds its own duplicate of the io_uring fd ([`AsFd`]) and unregisters the group on drop.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap::resource::MapFlags;
/// let ring = pktmap::uring::Uring::new(4)?;
/// let pbuf = ring.register_pbuf_ring(0, 256)?;
/// assert_eq!((pbuf.len(), pbuf.offset()), (256 * 16, 0x8000_0000));
/// let m = pbuf.map(MapFlags::POPULATE)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PbufRing {
    fd: OwnedFd,
    table: PbufTable,
    bgid: u16,
    entries: u16,
}

impl AsFd for PbufRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl PbufRing {
    /// Registers the ring (`IORING_REGISTER_PBUF_RING` with `IOU_PBUF_RING_MMAP`) through
    /// `fd`, a duplicate of the instance's fd, and records its size in `table`.
    pub(super) fn register(fd: OwnedFd, table: PbufTable, bgid: u16, entries: u16) -> Result<Self> {
        Region::PbufRing { bgid }.offset()?;
        if !entries.is_power_of_two() {
            return Err(Error::invalid(format!(
                "provided-buffer ring of {entries} entries: must be a power of two up to 32768"
            )));
        }
        let mut reg = io_uring_buf_reg::default();
        reg.ring_entries = u32::from(entries);
        reg.bgid = bgid;
        reg.flags =
            linux_raw_sys::io_uring::io_uring_register_pbuf_ring_flags::IOU_PBUF_RING_MMAP as u16;
        // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call; with
        // IOU_PBUF_RING_MMAP the kernel allocates the ring and reads no user address.
        unsafe {
            io_uring_register(
                &fd,
                IoringRegisterOp::RegisterPbufRing,
                ptr::from_ref(&reg).cast::<c_void>(),
                1,
            )
        }
        .map_err(|e| Error::from(e).during("IORING_REGISTER_PBUF_RING"))?;
        lock(&table).push((bgid, entries as usize * BUF_ENTRY));
        Ok(Self {
            fd,
            table,
            bgid,
            entries,
        })
    }

    /// The buffer group id.
    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// The number of ring entries.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// The ring's size in bytes (16 per entry).
    pub fn len(&self) -> usize {
        self.entries as usize * BUF_ENTRY
    }

    /// Always `false`: a ring has at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `mmap` offset of the ring: `IORING_OFF_PBUF_RING | bgid << IORING_OFF_PBUF_SHIFT`.
    pub fn offset(&self) -> u64 {
        // The group id was checked against the layout at registration.
        Region::PbufRing { bgid: self.bgid }.offset().unwrap_or(0)
    }

    /// Maps the whole ring through pktmap.
    ///
    /// # Errors
    /// As [`crate::resource::map_region`].
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::resource::MapFlags;
    /// let ring = pktmap::uring::Uring::new(4)?;
    /// let pbuf = ring.register_pbuf_ring(1, 16)?;
    /// assert_eq!(pbuf.map(MapFlags::READONLY)?.len(), 256);
    /// # Ok(()) }
    /// ```
    pub fn map(&self, flags: MapFlags) -> Result<Mapping> {
        let region = Region::PbufRing { bgid: self.bgid };
        map_region(&self.fd, region, Some(self.len()), self.len(), flags)
    }
}

impl Drop for PbufRing {
    fn drop(&mut self) {
        // Unregistering can only fail if the group is gone already; Drop cannot report it.
        let mut reg = io_uring_buf_reg::default();
        reg.bgid = self.bgid;
        // SAFETY: `reg` is a valid io_uring_buf_reg that lives across the call.
        let _ = unsafe {
            io_uring_register(
                &self.fd,
                IoringRegisterOp::UnregisterPbufRing,
                ptr::from_ref(&reg).cast::<c_void>(),
                1,
            )
        };
        lock(&self.table).retain(|(g, _)| *g != self.bgid);
    }
}

/// A provided-buffer ring: the kernel-allocated ring mapped through pktmap at
/// `IORING_OFF_PBUF_RING | bgid << 16`, and the buffers it hands out
/// ([`Uring::register_buf_ring`](super::Uring::register_buf_ring)).
///
/// It holds its own duplicate of the io_uring fd, so it can live next to the
/// [`Uring`](super::Uring) in one struct, or outlive it. Dropping it unregisters the buffer
/// group, then unmaps the ring and the buffer memory.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let ring = pktmap::uring::Uring::new(8)?;
/// let mut bufs = ring.register_buf_ring(1, 32, 4096)?;
/// assert_eq!((bufs.bgid(), bufs.entries(), bufs.buf_size()), (1, 32, 4096));
/// assert_eq!(bufs.buffers().len(), 32 * 4096);
/// bufs.recycle(0)?; // after a completion handed buffer 0 out
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BufRing {
    // Fields drop in order: the group is unregistered before its ring and buffers unmap.
    pbuf: PbufRing,
    mask: u16,
    buf_size: u32,
    tail: u16,
    ring: Mapping,
    bufs: Mapping,
}

impl BufRing {
    /// Maps `pbuf`'s ring and gives the kernel every buffer of `bufs`.
    pub(super) fn new(pbuf: PbufRing, buf_size: u32, bufs: Mapping) -> Result<Self> {
        let ring = pbuf.map(MapFlags::POPULATE)?;
        // The tail is the `resv` u16 of entry 0 (offset 14 of `struct io_uring_buf_ring`).
        ring.atomic_u16(14)?;
        ring.array::<u64>(0, pbuf.len() / 8)?;
        let mut ring = Self {
            mask: pbuf.entries - 1,
            pbuf,
            buf_size,
            tail: 0,
            ring,
            bufs,
        };
        for bid in 0..ring.entries() {
            ring.recycle(bid)?;
        }
        Ok(ring)
    }

    /// The buffer group id (what an SQE's `buf_group` names).
    pub fn bgid(&self) -> u16 {
        self.pbuf.bgid
    }

    /// The number of ring entries (and buffers).
    pub fn entries(&self) -> u16 {
        self.pbuf.entries
    }

    /// The size of each buffer.
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// The ring as mapped through pktmap.
    pub fn mapping(&self) -> &Mapping {
        &self.ring
    }

    /// The memory the buffers live in (buffer `bid` at `bid * buf_size`).
    pub fn buffers(&self) -> &Mapping {
        &self.bufs
    }

    /// Copies the first `out.len()` bytes of buffer `bid` out.
    ///
    /// # Errors
    /// `EINVAL` if `bid` or the length is out of range.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let ring = pktmap::uring::Uring::new(8)?;
    /// let bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// let mut head = [0; 4];
    /// bufs.read(3, &mut head)?;
    /// # Ok(()) }
    /// ```
    pub fn read(&self, bid: u16, out: &mut [u8]) -> Result<()> {
        if bid >= self.entries() || out.len() > self.buf_size as usize {
            return Err(Error::invalid(format!("buffer {bid} [..{}]", out.len())));
        }
        self.bufs
            .read_at(bid as usize * self.buf_size as usize, out)
    }

    /// Buffer `bid`'s first `len` bytes, borrowed in place.
    ///
    /// # Safety
    /// The kernel must not own the buffer while the slice lives: it was handed out by a
    /// completion and not yet given back with [`recycle`](Self::recycle).
    ///
    /// # Panics
    /// If `bid` or `len` is out of range.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use pktmap::uring::{recv_with_buffer_select, Uring};
    /// # use std::os::fd::AsFd;
    /// # use std::time::Duration;
    /// # let mut ring = Uring::new(8)?;
    /// # let mut bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// # let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # sock.send_to(b"datagram", sock.local_addr()?)?;
    /// # // SAFETY: `sock` and `bufs` outlive the completion, which is reaped below.
    /// # assert!(unsafe { ring.submission().push(&recv_with_buffer_select(sock.as_fd(), 0, 7)) });
    /// # ring.submit(1, Some(Duration::from_secs(5)))?;
    /// let c = ring.completion().pop().unwrap();
    /// let bid = c.buffer_id().unwrap();
    /// // SAFETY: the completion handed `bid` to us; it goes back to the kernel only below.
    /// let data = unsafe { bufs.buffer(bid, c.result()? as usize) };
    /// assert_eq!(data, b"datagram");
    /// bufs.recycle(bid)?;
    /// # Ok(()) }
    /// ```
    pub unsafe fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries() && len <= self.buf_size as usize);
        let start = bid as usize * self.buf_size as usize;
        // SAFETY: The range is inside the buffer area (asserted); the caller guarantees that
        // nothing writes it while the slice lives.
        unsafe { &self.bufs.as_slice()[start..start + len] }
    }

    /// Gives buffer `bid` (back) to the kernel: writes its ring entry and publishes the tail.
    ///
    /// # Errors
    /// `EINVAL` if `bid` is out of range.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// # use pktmap::uring::{recv_with_buffer_select, Uring};
    /// # use std::os::fd::AsFd;
    /// # use std::time::Duration;
    /// # let mut ring = Uring::new(8)?;
    /// # let mut bufs = ring.register_buf_ring(0, 8, 2048)?;
    /// # let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// # sock.send_to(b"datagram", sock.local_addr()?)?;
    /// # // SAFETY: `sock` and `bufs` outlive the completion, which is reaped below.
    /// # assert!(unsafe { ring.submission().push(&recv_with_buffer_select(sock.as_fd(), 0, 7)) });
    /// # ring.submit(1, Some(Duration::from_secs(5)))?;
    /// let c = ring.completion().pop().unwrap();
    /// bufs.recycle(c.buffer_id().unwrap())?; // the kernel may fill it again
    /// assert_eq!(bufs.recycle(8).unwrap_err().raw_os_error(), Some(libc::EINVAL)); // no buffer 8
    /// # Ok(()) }
    /// ```
    pub fn recycle(&mut self, bid: u16) -> Result<()> {
        if bid >= self.entries() {
            return Err(Error::invalid(format!(
                "buffer id {bid} >= {}",
                self.entries()
            )));
        }
        let entry = (self.tail & self.mask) as usize * BUF_ENTRY;
        let addr = self.bufs.as_ptr() as u64 + u64::from(bid) * u64::from(self.buf_size);
        // The kernel does not read entries past the published tail. The tail field (offset 14
        // of entry 0) is not among the bytes written: `addr`, `len` and `bid` are bytes 0..14.
        self.ring.store(entry, addr)?;
        self.ring.store(entry + 8, self.buf_size)?;
        self.ring.store(entry + 12, bid)?;
        self.tail = self.tail.wrapping_add(1);
        self.ring
            .atomic_u16(14)?
            .store(self.tail, Ordering::Release);
        Ok(())
    }
}
