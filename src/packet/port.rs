//! Attaching: the device's `ATTACH`, `DETACH` and `KICK` and packet rings
//! ([`Device::create_packet_ring`], ...), and [`PacketPort`], a pool and rings attached to one
//! interface.

use super::{Attach, Buffers, PacketRing, RxRing, TxRing, ATTACH_MIRROR, RING_PACKET};
use crate::device::{ioctl, Device, RingCreate, RingInfo};
use crate::pool::PoolOptions;
use crate::resource::MapFlags;
use crate::{Error, Result};
use pktmap_abi::ioctl::ResourceId;
use pktmap_abi::packet as abi;
use rustix::event::{poll, PollFd, PollFlags};
use std::os::fd::AsFd;
use std::time::Duration;

impl Device {
    /// `RING_CREATE` with [`RING_PACKET`]—A packet ring of `entries` descriptors over pool
    /// `pool_id`, laid out as [`PacketRing`] reads it, slot `i` naming buffer `i`.
    ///
    /// # Errors
    /// As [`create_ring`](Self::create_ring).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::device::Device;
    /// use pktmap::packet::PacketRing;
    /// use pktmap::pool::PoolOptions;
    /// use pktmap::resource::MapFlags;
    /// let dev = Device::open()?;
    /// let pool = PoolOptions::new(2048, 256).create(&dev)?;
    /// let info = dev.create_packet_ring(256, pool.id)?;
    /// let ring = PacketRing::new(dev.map_ring(info.id, MapFlags::POPULATE)?)?;
    /// assert_eq!(ring.entries(), 256);
    /// # Ok(()) }
    /// ```
    pub fn create_packet_ring(&self, entries: u32, pool_id: u32) -> Result<RingInfo> {
        self.create_ring_raw(RingCreate {
            entries,
            pool_id,
            flags: RING_PACKET,
            id: 0,
        })
    }

    /// `ATTACH`—Binds the packet rings `req` names (and their pool) to interface
    /// `req.ifindex` of the opener's network namespace; returns the attachment's id.
    ///
    /// # Errors
    /// The driver's errno: `EINVAL` for a request its checks refuse (flags, a ring that is not
    /// a packet ring of this file, a pool too small, ...), `EBUSY` for a ring already attached
    /// or a device with another receive handler, `ENODEV` for no such interface, `ENOSPC` for
    /// too many attachments, `EBADF` for a read-only open.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::packet::Attach;
    /// let unknown = Attach { ifindex: 999_999, pool_id: 1, rx_ring: 1, ..Default::default() };
    /// assert!(dev.attach(unknown).is_err());
    /// # Ok(()) }
    /// ```
    pub fn attach(&self, mut req: Attach) -> Result<u32> {
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_ATTACH)",
            abi::ATTACH,
            &mut req,
        )?;
        Ok(req.id)
    }

    /// `DETACH`—Undoes attachment `id`: the driver writes its rings no more.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id (also a second detach; an attachment the interface's removal
    /// ended is detached normally).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// assert_eq!(dev.detach(12345).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn detach(&self, id: u32) -> Result<()> {
        ioctl(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_DETACH)",
            abi::DETACH,
            &mut ResourceId { id },
        )
    }

    /// `KICK`—Makes the driver send what attachment `id`'s TX ring holds; returns the number
    /// of slots it released.
    ///
    /// # Errors
    /// `EINVAL` for an unknown id or an attachment without a TX ring; `ENODEV` once the
    /// interface is gone.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// assert_eq!(dev.kick(12345).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn kick(&self, id: u32) -> Result<u32> {
        let rc = crate::device::ioctl_value(
            self.as_fd(),
            "ioctl(PKTMAP_IOC_KICK)",
            abi::KICK,
            &mut ResourceId { id },
        )?;
        Ok(rc)
    }
}

/// How [`PacketPort::open`] sizes the pool and the rings.
///
/// # Examples
/// ```
/// use pktmap::packet::PortOptions;
/// let o = PortOptions::new().rx(512).tx(0).mirror(true);
/// assert_eq!(o.buffers(), (2048, 512 + 1024));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortOptions {
    rx: u32,
    tx: u32,
    buf_size: u32,
    buf_count: Option<u32>,
    mirror: bool,
}

impl Default for PortOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PortOptions {
    /// An RX and a TX ring of 1024 slots each, 2 KiB buffers, as many as the RX slots own plus
    /// 1024 for the program (to send, or to swap), steal mode.
    ///
    /// # Examples
    /// ```
    /// let o = pktmap::packet::PortOptions::new();
    /// assert_eq!(o.buffers(), (2048, 2048));
    /// ```
    pub fn new() -> Self {
        Self {
            rx: 1024,
            tx: 1024,
            buf_size: 2048,
            buf_count: None,
            mirror: false,
        }
    }

    /// RX ring slots (a power of two), 0 for no RX ring.
    ///
    /// # Examples
    /// ```
    /// let send_only = pktmap::packet::PortOptions::new().rx(0);
    /// ```
    pub fn rx(mut self, entries: u32) -> Self {
        self.rx = entries;
        self
    }

    /// TX ring slots (a power of two), 0 for no TX ring.
    ///
    /// # Examples
    /// ```
    /// let receive_only = pktmap::packet::PortOptions::new().tx(0);
    /// ```
    pub fn tx(mut self, entries: u32) -> Self {
        self.tx = entries;
        self
    }

    /// Buffer size (a power of two up to the pool's chunk, 4096 for pools of pages) and count
    /// (at least the RX and TX slots together).
    ///
    /// # Examples
    /// ```
    /// let o = pktmap::packet::PortOptions::new().buffer_size(4096, 4096);
    /// assert_eq!(o.buffers(), (4096, 4096));
    /// ```
    pub fn buffer_size(mut self, size: u32, count: u32) -> Self {
        self.buf_size = size;
        self.buf_count = Some(count);
        self
    }

    /// Mirror mode: the stack still sees every frame (default: steal mode, it sees none).
    ///
    /// # Examples
    /// ```
    /// let tap = pktmap::packet::PortOptions::new().mirror(true);
    /// ```
    pub fn mirror(mut self, on: bool) -> Self {
        self.mirror = on;
        self
    }

    /// The pool's `(buffer size, buffer count)`.
    pub fn buffers(&self) -> (u32, u32) {
        (
            self.buf_size,
            self.buf_count.unwrap_or(self.rx + self.tx.max(1024)),
        )
    }
}

/// A pool and an RX and/or TX packet ring, made, mapped and attached to one interface: the
/// whole packet path of a program. Dropping it detaches (so does closing the device).
///
/// Buffers `0..rx_entries` start in the RX ring's slots; the rest
/// ([`free_buffers`](Self::free_buffers)) are the program's, to send from or to
/// [`swap`](super::RxBatch::swap) into RX slots.
///
/// # Examples
/// ```no_run
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::device::Device;
/// use pktmap::packet::{PacketPort, PortOptions};
/// let mut port = PacketPort::open(Device::open()?, 3, &PortOptions::new())?;
/// let mut received = 0;
/// while received < 1000 {
///     let (rx, _, _) = port.split();
///     let batch = rx.expect("an RX ring").recv(64);
///     received += batch.len();
///     if batch.is_empty() {
///         drop(batch);
///         port.wait(None)?; // sleeps only if still nothing
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PacketPort {
    device: Device,
    id: u32,
    rx: Option<RxRing>,
    tx: Option<TxRing>,
    buffers: Buffers,
    rx_entries: u32,
}

impl PacketPort {
    /// Makes the pool and rings `opts` asks for on `device`, maps them and attaches them to
    /// interface `ifindex` (of the calling thread's network namespace).
    ///
    /// # Errors
    /// `EINVAL` before any call for no ring at all or fewer buffers than RX and TX slots
    /// together; otherwise
    /// the errno of the failing step (`POOL_CREATE`, `RING_CREATE`, `mmap`, [`Device::attach`]),
    /// with what was made before destroyed by the device's close.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let dev = pktmap::device::Device::open()?;
    /// use pktmap::packet::{PacketPort, PortOptions};
    /// let none = PortOptions::new().rx(0).tx(0);
    /// let e = PacketPort::open(dev, 1, &none).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn open(device: Device, ifindex: u32, opts: &PortOptions) -> Result<Self> {
        let (buf_size, buf_count) = opts.buffers();
        if opts.rx == 0 && opts.tx == 0 {
            return Err(Error::invalid("a port needs an RX or a TX ring"));
        }
        // The driver's rule (check_attach): a buffer for every slot of both rings.
        if buf_count < opts.rx.saturating_add(opts.tx) {
            return Err(Error::invalid(format!(
                "{buf_count} buffers for {} RX and {} TX slots (one each at least)",
                opts.rx, opts.tx
            )));
        }
        let pool = PoolOptions::new(buf_size, buf_count).create(&device)?;
        let buffers = Buffers::new(
            device.map_pool(pool.id, MapFlags::POPULATE)?,
            buf_size,
            buf_count,
        )?;
        let ring = |entries: u32| -> Result<Option<(u32, PacketRing)>> {
            if entries == 0 {
                return Ok(None);
            }
            let info = device.create_packet_ring(entries, pool.id)?;
            let map = device.map_ring(info.id, MapFlags::POPULATE)?;
            Ok(Some((info.id, PacketRing::new(map)?)))
        };
        let rx = ring(opts.rx)?;
        let tx = ring(opts.tx)?;
        let id = device.attach(Attach {
            ifindex,
            pool_id: pool.id,
            rx_ring: rx.as_ref().map_or(0, |r| r.0),
            tx_ring: tx.as_ref().map_or(0, |r| r.0),
            flags: if opts.mirror { ATTACH_MIRROR } else { 0 },
            ..Attach::default()
        })?;
        Ok(Self {
            device,
            id,
            rx: rx.map(|(_, r)| RxRing::new(r)),
            tx: tx.map(|(_, r)| TxRing::new(r)),
            buffers,
            rx_entries: opts.rx,
        })
    }

    /// The attachment's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The device the port lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The RX ring, the TX ring and the buffers at once (a forwarder uses all three).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let mut port = pktmap::packet::PacketPort::open(pktmap::device::Device::open()?, 3, &Default::default())?;
    /// let (rx, tx, bufs) = port.split();
    /// let (rx, tx) = (rx.expect("RX"), tx.expect("TX"));
    /// let mut hdr = [0u8; 14];
    /// for d in rx.recv(64).iter() {
    ///     bufs.read(d.buf, 0, &mut hdr)?;
    /// }
    /// assert!(tx.free() > 0);
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (Option<&mut RxRing>, Option<&mut TxRing>, &Buffers) {
        (self.rx.as_mut(), self.tx.as_mut(), &self.buffers)
    }

    /// The buffers that start out the program's (not in an RX slot).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let port = pktmap::packet::PacketPort::open(pktmap::device::Device::open()?, 3, &Default::default())?;
    /// assert_eq!(port.free_buffers(), 1024..2048); // the default options
    /// # Ok(()) }
    /// ```
    pub fn free_buffers(&self) -> std::ops::Range<u32> {
        self.rx_entries..self.buffers.count()
    }

    /// `KICK`: the driver sends what the TX ring holds; the number of slots it released.
    ///
    /// # Errors
    /// As [`Device::kick`] (`EINVAL` without a TX ring).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let mut port = pktmap::packet::PacketPort::open(pktmap::device::Device::open()?, 3, &Default::default())?;
    /// let first = port.free_buffers().start;
    /// let (_, tx, bufs) = port.split();
    /// let tx = tx.expect("a TX ring");
    /// bufs.write(first, 0, &[0xff; 60])?;
    /// let mut batch = tx.reserve(1);
    /// batch.push(first, 60)?;
    /// batch.send();
    /// port.kick()?;
    /// # Ok(()) }
    /// ```
    pub fn kick(&self) -> Result<u32> {
        self.device.kick(self.id)
    }

    /// Sleeps until the RX ring has frames or `timeout` passes (`None`: no limit), having asked
    /// the driver for a wakeup ([`RxRing::prepare_to_sleep`]); returns at once, with no
    /// system call, if frames are already waiting. Whether frames are waiting.
    ///
    /// # Errors
    /// `EINVAL` without an RX ring; the `poll` errno.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> pktmap::Result<()> {
    /// # let port = pktmap::packet::PacketPort::open(pktmap::device::Device::open()?, 3, &Default::default())?;
    /// if !port.wait(Some(std::time::Duration::from_millis(10)))? {
    ///     println!("no frame in 10 ms");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let rx = self
            .rx
            .as_ref()
            .ok_or_else(|| Error::invalid("the port has no RX ring"))?;
        if !rx.prepare_to_sleep() {
            return Ok(true);
        }
        let mut fds = [PollFd::new(&self.device, PollFlags::IN)];
        let ts = timeout.map(|t| rustix::time::Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        poll(&mut fds, ts.as_ref()).map_err(|e| Error::from(e).during("poll(/dev/pktmap)"))?;
        Ok(rx.available() > 0)
    }
}

impl Drop for PacketPort {
    fn drop(&mut self) {
        // Closing the device would detach too; detach first so the rings' mappings, dropped
        // after, are never written again (an attachment the interface's removal ended
        // detaches normally).
        let _ = self.device.detach(self.id);
    }
}
