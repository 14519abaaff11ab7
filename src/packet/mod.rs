//! Packets through pktmap.ko's own rings: a pool and an RX and/or TX packet ring attached to a
//! network device ([`PacketPort`]), frames received as batches of borrowed slots
//! ([`RxRing::recv`]) and sent as batches of filled slots ([`TxRing::reserve`]), with no system
//! call per frame.
//!
//! The ring layout is the contract's ([`pktmap_abi::packet`], version 1): a header page
//! (magic, version, entries, offsets), the producer, consumer and need-wakeup words on cache
//! lines of their own, 64-bit counters that only grow ([`Counters`]), and 16-byte descriptors
//! ([`PacketDesc`]) naming buffers of the pool ([`Buffers`]). A [`PacketRing`] checks the
//! header once when made and then borrows its words through [`crate::volatile`]'s checked
//! views; nothing here holds a raw pointer.
//!
//! - **RX**: every slot owns a buffer. [`RxRing::recv`] hands out the slots the driver filled
//!   as an [`RxBatch`]; dropping (or [`releasing`](RxBatch::release)) it gives the slots back.
//!   [`RxBatch::swap`] leaves another free buffer in a slot and keeps the frame's: an L2
//!   forwarder sends it without a copy.
//! - **TX**: [`TxRing::reserve`] hands out free slots as a [`TxBatch`]; [`TxBatch::push`]
//!   names a buffer and a length, [`TxBatch::send`] publishes them, and
//!   [`PacketPort::kick`] (`KICK`, one system call per batch) makes the driver copy and send
//!   them. [`TxRing::reclaim`] hands back the buffers of slots the driver released.
//! - **Waiting**: a busy-polling program makes no system call. One that wants to sleep calls
//!   [`RxRing::prepare_to_sleep`] and, if it says so, `poll(2)`s the device file
//!   ([`PacketPort::wait`]); the driver wakes it at most once per request.
//!
//! [`PacketRing::in_memory`] lays a ring out in anonymous memory exactly as the driver does,
//! and [`RingPeer`] plays the driver's side of it: code written against these types runs and
//! is tested without the driver (every example below does).
//!
//! # Examples
//! ```
//! # fn main() -> pktmap::Result<()> {
//! use pktmap::packet::{PacketRing, RxRing};
//! let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
//! // The driver's side delivers two frames into the slots' buffers 0 and 1.
//! let peer = rx.ring().peer();
//! assert!(peer.deliver(60, 0) && peer.deliver(1514, 0));
//! let batch = rx.recv(64);
//! let lens: Vec<u32> = batch.iter().map(|d| d.len).collect();
//! assert_eq!(lens, [60, 1514]);
//! drop(batch); // releases both slots
//! assert_eq!(rx.available(), 0);
//! # Ok(()) }
//! ```

mod port;
mod rx;
mod tx;

pub use port::{PacketPort, PortOptions};
pub use rx::{RxBatch, RxRing};
pub use tx::{TxBatch, TxRing};

use crate::resource::{MapOptions, Mapping};
use crate::volatile::SharedRing;
use crate::{Error, Result};
use pktmap_abi::packet as abi;
/// The contract's packet types, as the driver defines them: the descriptor, the ring header,
/// the `ATTACH` argument, the counter indices and the descriptor flags.
pub use pktmap_abi::packet::{
    counter, Attach, PacketDesc, PacketRingHeader, ATTACH_MIRROR, DESC_CSUM_PARTIAL,
    DESC_CSUM_VALID, DESC_GSO, DESC_TRUNCATED, DESC_VLAN, RING_PACKET,
};
use std::sync::atomic::{AtomicU32, Ordering};

/// `struct pktmap_packet_desc` as the ring holds it: four native-endian `u32`s (`buf`,
/// `len`, `wire_len`, then `flags` and `vlan_tci` as two `u16`s), which zerocopy copies
/// without derives (the contract's [`PacketDesc`] has none: `pktmap-abi` has no dependencies,
/// and this module needs no `derive` feature).
pub(crate) type RawDesc = [u32; 4];

fn to_raw(d: PacketDesc) -> RawDesc {
    let [f0, f1] = d.flags.to_ne_bytes();
    let [v0, v1] = d.vlan_tci.to_ne_bytes();
    [
        d.buf,
        d.len,
        d.wire_len,
        u32::from_ne_bytes([f0, f1, v0, v1]),
    ]
}

fn from_raw(w: RawDesc) -> PacketDesc {
    let [f0, f1, v0, v1] = w[3].to_ne_bytes();
    PacketDesc {
        buf: w[0],
        len: w[1],
        wire_len: w[2],
        flags: u16::from_ne_bytes([f0, f1]),
        vlan_tci: u16::from_ne_bytes([v0, v1]),
    }
}

/// The index words of a [`PacketRing`].
const PRODUCER: usize = 0;
const CONSUMER: usize = 1;
const WAKEUP: usize = 2;

/// The header as the ring's first 48 bytes hold it (twelve `u32`s).
fn read_header(map: &Mapping) -> Result<PacketRingHeader> {
    let w: [u32; 12] = map.load(0)?;
    Ok(PacketRingHeader {
        magic: w[0],
        version: w[1],
        entries: w[2],
        pool_id: w[3],
        producer_offset: w[4],
        consumer_offset: w[5],
        wakeup_offset: w[6],
        counters_offset: w[7],
        counter_words: w[8],
        desc_offset: w[9],
        desc_size: w[10],
        reserved: w[11],
    })
}

/// A mapped packet ring, its header checked: the producer, consumer and need-wakeup words,
/// the counters and the descriptors, borrowed through checked views.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::PacketRing;
/// let ring = PacketRing::in_memory(256, 1)?;
/// assert_eq!(ring.entries(), 256);
/// assert_eq!(ring.counters().rx_packets, 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PacketRing {
    ring: SharedRing<RawDesc, 3>,
    header: PacketRingHeader,
}

impl PacketRing {
    /// Checks a mapping of a packet ring (from [`Device::map_ring`](crate::device::Device::map_ring)):
    /// its header must be version 1 of the layout, and the mapping must hold every descriptor.
    ///
    /// # Errors
    /// `EINVAL` for a mapping that is not a packet ring (a counter-pair ring, another magic or
    /// version, offsets that differ) or too short for its descriptors; `EACCES` for a
    /// read-only mapping (the program writes its indices).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::PacketRing;
    /// use pktmap::resource::MapOptions;
    /// let not_a_ring = MapOptions::new(8192).map_anonymous()?;
    /// let e = PacketRing::new(not_a_ring).unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    /// # Ok(()) }
    /// ```
    pub fn new(map: Mapping) -> Result<Self> {
        let header = read_header(&map)?;
        if !header.is_valid() {
            return Err(Error::invalid(format!(
                "not a version-{} packet ring (magic {:#x}, version {}, entries {})",
                abi::PACKET_RING_VERSION,
                header.magic,
                header.version,
                header.entries
            )));
        }
        let need = abi::packet_ring_bytes(header.entries);
        if (map.len() as u64) < need {
            return Err(Error::invalid(format!(
                "a packet ring of {} entries needs {need} bytes; the mapping has {}",
                header.entries,
                map.len()
            )));
        }
        let at = |o: u32| o as usize;
        let words = [
            at(header.producer_offset),
            at(header.consumer_offset),
            at(header.wakeup_offset),
        ];
        // The counters must be readable too: checked once here.
        map.atomic_u64(header.counters_offset as usize + 8 * (abi::COUNTER_WORDS as usize - 1))?;
        let ring = SharedRing::new(
            map,
            words,
            header.desc_offset as usize,
            header.entries as usize,
        )?;
        Ok(Self { ring, header })
    }

    /// A ring laid out exactly as pktmap.ko lays one out at `RING_CREATE` (header written,
    /// slot `i` naming buffer `i`), in anonymous memory: for tests, examples and running packet
    /// code without the driver; [`peer`](Self::peer) plays the driver's side.
    ///
    /// # Errors
    /// `EINVAL` for `entries` not a power of two up to 32768; the `mmap` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::PacketRing;
    /// let ring = PacketRing::in_memory(4, 7)?;
    /// assert_eq!(ring.header().pool_id, 7);
    /// assert_eq!(ring.desc(2)?.buf, 2);
    /// assert!(PacketRing::in_memory(3, 1).is_err());
    /// # Ok(()) }
    /// ```
    pub fn in_memory(entries: u32, pool_id: u32) -> Result<Self> {
        let header = PacketRingHeader::new(entries, pool_id);
        if !header.is_valid() {
            return Err(Error::invalid(format!(
                "{entries} entries: not a power of two up to {}",
                pktmap_abi::ioctl::MAX_RING_ENTRIES
            )));
        }
        let len = usize::try_from(abi::packet_ring_bytes(entries))
            .map_err(|_| Error::invalid("ring too large"))?;
        let map = MapOptions::new(len).map_anonymous()?;
        let h = header;
        let words: [u32; 12] = [
            h.magic,
            h.version,
            h.entries,
            h.pool_id,
            h.producer_offset,
            h.consumer_offset,
            h.wakeup_offset,
            h.counters_offset,
            h.counter_words,
            h.desc_offset,
            h.desc_size,
            h.reserved,
        ];
        map.store(0, words)?;
        let descs = map.array::<RawDesc>(h.desc_offset as usize, entries as usize)?;
        for i in 0..entries {
            descs.set(i as usize, [i, 0, 0, 0])?;
        }
        Self::new(map)
    }

    /// The header, as checked when the ring was made.
    pub fn header(&self) -> PacketRingHeader {
        self.header
    }

    /// Number of descriptors.
    pub fn entries(&self) -> u32 {
        self.header.entries
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        self.ring.index(i)
    }

    fn slot(&self, index: u32) -> usize {
        (index & (self.header.entries - 1)) as usize
    }

    /// The descriptor of slot `index` (a free-running index; wrapped).
    ///
    /// # Errors
    /// None in practice: the array was checked when the ring was made (`EINVAL` otherwise).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let ring = pktmap::packet::PacketRing::in_memory(8, 1)?;
    /// assert_eq!(ring.desc(9)?.buf, 1); // slot 9 is descriptor 1
    /// # Ok(()) }
    /// ```
    pub fn desc(&self, index: u32) -> Result<PacketDesc> {
        self.ring.entries().get(self.slot(index)).map(from_raw)
    }

    fn set_desc(&self, index: u32, d: PacketDesc) -> Result<()> {
        self.ring.entries().set(self.slot(index), to_raw(d))
    }

    /// One counter word ([`counter`]'s indices; a word past [`counter::COUNT`] reads 0).
    ///
    /// # Errors
    /// `EINVAL` for an index past the ring's counter words.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{counter, PacketRing};
    /// let ring = PacketRing::in_memory(8, 1)?;
    /// assert_eq!(ring.counter(counter::RX_RING_FULL)?, 0);
    /// assert!(ring.counter(32).is_err());
    /// # Ok(()) }
    /// ```
    pub fn counter(&self, index: u32) -> Result<u64> {
        if index >= self.header.counter_words {
            return Err(Error::invalid(format!(
                "counter {index}: the ring has {}",
                self.header.counter_words
            )));
        }
        let at = self.header.counters_offset as usize + 8 * index as usize;
        Ok(self.ring.mapping().atomic_u64(at)?.load(Ordering::Relaxed))
    }

    /// Every counter this version defines, read once each.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let ring = pktmap::packet::PacketRing::in_memory(8, 1)?;
    /// let c = ring.counters();
    /// assert_eq!(c.rx_packets + c.rx_ring_full + c.rx_invalid_desc + c.rx_copy_errors, 0);
    /// # Ok(()) }
    /// ```
    pub fn counters(&self) -> Counters {
        let c = |i| self.counter(i).unwrap_or(0);
        Counters {
            rx_packets: c(counter::RX_PACKETS),
            rx_bytes: c(counter::RX_BYTES),
            rx_ring_full: c(counter::RX_RING_FULL),
            rx_oversize: c(counter::RX_OVERSIZE),
            rx_invalid_desc: c(counter::RX_INVALID_DESC),
            rx_gso: c(counter::RX_GSO),
            rx_copy_errors: c(counter::RX_COPY_ERRORS),
            wakeups: c(counter::WAKEUPS),
            tx_packets: c(counter::TX_PACKETS),
            tx_bytes: c(counter::TX_BYTES),
            tx_invalid_desc: c(counter::TX_INVALID_DESC),
            tx_errors: c(counter::TX_ERRORS),
            kicks: c(counter::KICKS),
        }
    }

    /// The driver's side of the ring, for an [`in_memory`](Self::in_memory) ring (on a ring
    /// the driver owns, writing its words breaks the ring).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let ring = pktmap::packet::PacketRing::in_memory(2, 1)?;
    /// let peer = ring.peer();
    /// assert!(peer.deliver(60, 0) && peer.deliver(60, 0));
    /// assert!(!peer.deliver(60, 0)); // full: counted as rx_ring_full
    /// assert_eq!(ring.counters().rx_ring_full, 1);
    /// # Ok(()) }
    /// ```
    pub fn peer(&self) -> RingPeer<'_> {
        RingPeer { ring: self }
    }
}

/// A packet ring's counters ([`counter`]): 64-bit, only growing, never cleared.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::PacketRing;
/// let ring = PacketRing::in_memory(1, 1)?;
/// ring.peer().deliver(60, 0);
/// ring.peer().deliver(60, 0); // no room: dropped
/// let c = ring.counters();
/// assert_eq!((c.rx_packets, c.rx_ring_full, c.rx_bytes), (1, 1, 60));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// RX: frames delivered into the ring.
    pub rx_packets: u64,
    /// RX: bytes delivered.
    pub rx_bytes: u64,
    /// RX: frames dropped because the ring was full.
    pub rx_ring_full: u64,
    /// RX: frames cut to the buffer size ([`DESC_TRUNCATED`]).
    pub rx_oversize: u64,
    /// RX: frames dropped because the program wrote a bad index.
    pub rx_invalid_desc: u64,
    /// RX: GRO/GSO super-frames delivered.
    pub rx_gso: u64,
    /// RX: frames dropped because the socket buffer could not be copied.
    pub rx_copy_errors: u64,
    /// Wakeups the driver made for this ring.
    pub wakeups: u64,
    /// TX: frames handed to the device.
    pub tx_packets: u64,
    /// TX: bytes handed to the device.
    pub tx_bytes: u64,
    /// TX: descriptors released unsent because they were invalid.
    pub tx_invalid_desc: u64,
    /// TX: frames the device (or an allocation) refused.
    pub tx_errors: u64,
    /// TX: kicks served.
    pub kicks: u64,
}

impl Counters {
    /// RX frames the ring saw, each in exactly one counter: delivered, ring full, invalid
    /// descriptor, copy error.
    ///
    /// # Examples
    /// ```
    /// let c = pktmap::packet::Counters { rx_packets: 7, rx_ring_full: 3, ..Default::default() };
    /// assert_eq!(c.rx_seen(), 10);
    /// ```
    pub fn rx_seen(&self) -> u64 {
        self.rx_packets + self.rx_ring_full + self.rx_invalid_desc + self.rx_copy_errors
    }

    /// TX slots the driver released, each in exactly one counter: sent, invalid, error.
    ///
    /// # Examples
    /// ```
    /// let c = pktmap::packet::Counters { tx_packets: 5, tx_errors: 1, ..Default::default() };
    /// assert_eq!(c.tx_released(), 6);
    /// ```
    pub fn tx_released(&self) -> u64 {
        self.tx_packets + self.tx_invalid_desc + self.tx_errors
    }
}

/// The driver's side of an in-memory [`PacketRing`]: what pktmap.ko does to the ring, in user
/// space, for tests and examples ([`PacketRing::peer`]).
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::{PacketRing, TxRing};
/// let mut tx = TxRing::new(PacketRing::in_memory(8, 1)?);
/// let mut batch = tx.reserve(2);
/// batch.push(5, 60)?;
/// batch.send();
/// let sent = tx.ring().peer().consume_tx(64)?;
/// assert_eq!(sent.iter().map(|d| d.buf).collect::<Vec<_>>(), [5]);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RingPeer<'a> {
    ring: &'a PacketRing,
}

impl RingPeer<'_> {
    fn bump(&self, index: u32, by: u64) {
        let at = self.ring.header.counters_offset as usize + 8 * index as usize;
        if let Ok(w) = self.ring.ring.mapping().atomic_u64(at) {
            w.fetch_add(by, Ordering::Relaxed);
        }
    }

    /// RX: delivers a frame of `len` bytes (its bytes are the caller's to write into the
    /// slot's buffer first) with `flags`, as the driver does: reads `consumer` once, and if
    /// there is room writes the descriptor, keeping the slot's `buf`, and publishes
    /// `producer + 1`; otherwise counts `rx_ring_full`. Returns whether it was delivered.
    /// Clears need-wakeup, as the driver's wakeup does.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, DESC_GSO};
    /// let ring = PacketRing::in_memory(4, 1)?;
    /// assert!(ring.peer().deliver(9000, DESC_GSO));
    /// assert_eq!(ring.desc(0)?.flags, DESC_GSO);
    /// # Ok(()) }
    /// ```
    pub fn deliver(&self, len: u32, flags: u16) -> bool {
        let r = self.ring;
        let prod = r.word(PRODUCER).load(Ordering::Relaxed);
        let cons = r.word(CONSUMER).load(Ordering::Acquire);
        match abi::rx_space(prod, cons, r.entries()) {
            Ok(0) => {
                self.bump(counter::RX_RING_FULL, 1);
                false
            }
            Ok(_) => {
                let buf = r.desc(prod).map_or(u32::MAX, |d| d.buf);
                let d = PacketDesc {
                    buf,
                    len,
                    wire_len: len,
                    flags,
                    vlan_tci: 0,
                };
                if r.set_desc(prod, d).is_err() {
                    return false;
                }
                r.word(PRODUCER)
                    .store(prod.wrapping_add(1), Ordering::Release);
                self.bump(counter::RX_PACKETS, 1);
                self.bump(counter::RX_BYTES, u64::from(len));
                if r.word(WAKEUP).swap(0, Ordering::AcqRel) != 0 {
                    self.bump(counter::WAKEUPS, 1);
                }
                true
            }
            Err(_) => {
                self.bump(counter::RX_INVALID_DESC, 1);
                false
            }
        }
    }

    /// TX: takes up to `max` descriptors the program published, as a `KICK` does (reads
    /// `producer` once, releases each slot), and returns them; counts them as sent.
    ///
    /// # Errors
    /// `EINVAL` if the program's `producer` is more than `entries` ahead (counted in
    /// `tx_invalid_desc`, as the driver counts it).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(4, 1)?);
    /// assert!(tx.ring().peer().consume_tx(64)?.is_empty()); // nothing published
    /// let mut b = tx.reserve(4);
    /// b.push(2, 100)?;
    /// b.send();
    /// assert_eq!(tx.ring().peer().consume_tx(64)?[0].len, 100);
    /// assert_eq!(tx.ring().counters().kicks, 2);
    /// # Ok(()) }
    /// ```
    pub fn consume_tx(&self, max: u32) -> Result<Vec<PacketDesc>> {
        let r = self.ring;
        let cons = r.word(CONSUMER).load(Ordering::Relaxed);
        let prod = r.word(PRODUCER).load(Ordering::Acquire);
        let pending = abi::tx_pending(prod, cons, r.entries()).map_err(|e| {
            self.bump(counter::TX_INVALID_DESC, 1);
            Error::invalid(format!("producer {prod}, consumer {cons}: {e}"))
        })?;
        let n = pending.min(max);
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let d = r.desc(cons.wrapping_add(i))?;
            self.bump(counter::TX_PACKETS, 1);
            self.bump(counter::TX_BYTES, u64::from(d.len));
            out.push(d);
        }
        r.word(CONSUMER)
            .store(cons.wrapping_add(n), Ordering::Release);
        self.bump(counter::KICKS, 1);
        Ok(out)
    }
}

/// A pool's buffers: its mapping seen as `buf_count` buffers of `buf_size` bytes, which the
/// descriptors name by index.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::Buffers;
/// let bufs = Buffers::in_memory(2048, 16)?;
/// bufs.write(3, 0, b"frame")?;
/// let mut out = [0; 5];
/// bufs.read(3, 0, &mut out)?;
/// assert_eq!(&out, b"frame");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Buffers {
    map: Mapping,
    buf_size: u32,
    buf_count: u32,
}

impl Buffers {
    /// A pool mapping seen as `buf_count` buffers of `buf_size` bytes.
    ///
    /// # Errors
    /// `EINVAL` for a `buf_size` that is not a power of two or a mapping shorter than the
    /// buffers.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::Buffers;
    /// use pktmap::resource::MapOptions;
    /// let map = MapOptions::new(4096).map_anonymous()?;
    /// assert!(Buffers::new(map, 2048, 4).is_err()); // 8 KiB of buffers in 4 KiB
    /// # Ok(()) }
    /// ```
    pub fn new(map: Mapping, buf_size: u32, buf_count: u32) -> Result<Self> {
        let need = u64::from(buf_size) * u64::from(buf_count);
        if !buf_size.is_power_of_two() || (map.len() as u64) < need {
            return Err(Error::invalid(format!(
                "{buf_count} buffers of {buf_size} bytes in a mapping of {}",
                map.len()
            )));
        }
        Ok(Self {
            map,
            buf_size,
            buf_count,
        })
    }

    /// Buffers in anonymous memory (for tests and examples).
    ///
    /// # Errors
    /// As [`new`](Self::new); the `mmap` errno.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let bufs = pktmap::packet::Buffers::in_memory(256, 8)?;
    /// assert_eq!(bufs.count(), 8);
    /// # Ok(()) }
    /// ```
    pub fn in_memory(buf_size: u32, buf_count: u32) -> Result<Self> {
        let len = (u64::from(buf_size) * u64::from(buf_count)).max(1);
        let len = usize::try_from(len).map_err(|_| Error::invalid("pool too large"))?;
        Self::new(MapOptions::new(len).map_anonymous()?, buf_size, buf_count)
    }

    /// Bytes per buffer.
    pub fn size(&self) -> u32 {
        self.buf_size
    }

    /// Number of buffers.
    pub fn count(&self) -> u32 {
        self.buf_count
    }

    fn at(&self, buf: u32, offset: usize, len: usize) -> Result<usize> {
        if buf >= self.buf_count || offset.saturating_add(len) > self.buf_size as usize {
            return Err(Error::invalid(format!(
                "buffer {buf} bytes {offset}..{}: outside {} buffers of {}",
                offset.saturating_add(len),
                self.buf_count,
                self.buf_size
            )));
        }
        Ok(buf as usize * self.buf_size as usize + offset)
    }

    /// Copies bytes of buffer `buf` from `offset` into `out`.
    ///
    /// # Errors
    /// `EINVAL` for a buffer past the pool or bytes past the buffer.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let bufs = pktmap::packet::Buffers::in_memory(256, 2)?;
    /// let mut hdr = [0u8; 14];
    /// bufs.read(1, 0, &mut hdr)?;
    /// assert!(bufs.read(2, 0, &mut hdr).is_err());
    /// assert!(bufs.read(1, 250, &mut hdr).is_err());
    /// # Ok(()) }
    /// ```
    pub fn read(&self, buf: u32, offset: usize, out: &mut [u8]) -> Result<()> {
        let at = self.at(buf, offset, out.len())?;
        self.map.read_at(at, out)
    }

    /// Copies `data` into buffer `buf` at `offset`.
    ///
    /// # Errors
    /// `EINVAL` for a buffer past the pool or bytes past the buffer.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// let bufs = pktmap::packet::Buffers::in_memory(64, 2)?;
    /// bufs.write(0, 0, &[0xff; 64])?;
    /// assert!(bufs.write(0, 1, &[0xff; 64]).is_err());
    /// # Ok(()) }
    /// ```
    pub fn write(&self, buf: u32, offset: usize, data: &[u8]) -> Result<()> {
        let at = self.at(buf, offset, data.len())?;
        self.map.write_at(at, data)
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_mirror_matches_the_contract() {
        assert_eq!(size_of::<RawDesc>(), abi::DESC_SIZE as usize);
        let d = PacketDesc {
            buf: 1,
            len: 2,
            wire_len: 3,
            flags: 4,
            vlan_tci: 5,
        };
        assert_eq!(from_raw(to_raw(d)), d);
        // The bytes of the C struct: three u32s, then the two u16s.
        let mut bytes = Vec::new();
        for w in to_raw(d) {
            bytes.extend_from_slice(&w.to_ne_bytes());
        }
        let mut want = Vec::new();
        for w in [1u32, 2, 3] {
            want.extend_from_slice(&w.to_ne_bytes());
        }
        want.extend_from_slice(&4u16.to_ne_bytes());
        want.extend_from_slice(&5u16.to_ne_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_header_that_differs_anywhere_is_refused() {
        for (word, value) in [(0, 0), (1, 2), (2, 3), (4, 65), (9, 8192), (11, 1)] {
            let ring = PacketRing::in_memory(8, 1).unwrap();
            let map = MapOptions::new(ring.ring.mapping().len())
                .map_anonymous()
                .unwrap();
            let mut bytes = vec![0; map.len()];
            ring.ring.mapping().read_at(0, &mut bytes).unwrap();
            map.write_at(0, &bytes).unwrap();
            map.store::<u32>(word * 4, value).unwrap();
            let e = PacketRing::new(map).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "word {word}");
        }
        // A mapping one descriptor short.
        let ring = PacketRing::in_memory(512, 1).unwrap();
        let short = MapOptions::new(4096 + 511 * 16).map_anonymous().unwrap();
        let mut bytes = vec![0; 64];
        ring.ring.mapping().read_at(0, &mut bytes).unwrap();
        short.write_at(0, &bytes).unwrap();
        assert_eq!(
            PacketRing::new(short).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn peer_accounting_is_exact() {
        let ring = PacketRing::in_memory(4, 1).unwrap();
        let peer = ring.peer();
        let delivered = (0..10).filter(|_| peer.deliver(60, 0)).count();
        assert_eq!(delivered, 4);
        let c = ring.counters();
        assert_eq!((c.rx_packets, c.rx_ring_full, c.rx_bytes), (4, 6, 240));
        assert_eq!(c.rx_seen(), 10);
        // A consumer past the producer: an invalid index, counted, never followed.
        ring.word(CONSUMER).store(9, Ordering::Relaxed);
        assert!(!peer.deliver(60, 0));
        assert_eq!(ring.counters().rx_invalid_desc, 1);
    }
}
