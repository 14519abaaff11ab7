// SPDX-License-Identifier: MIT OR Apache-2.0
//! Packets: attaching rings to a network device, the packet ring's shared layout, and the checks
//! the driver runs on everything the program writes into it.
//!
//! A program makes a pool ([`POOL_CREATE`](super::ioctl::POOL_CREATE)) and one or two rings with
//! [`RING_PACKET`] ([`RING_CREATE`](super::ioctl::RING_CREATE)), maps them, and binds them to a
//! network device with [`ATTACH`]. From then on frames the device receives land in the pool's
//! buffers behind the RX ring with no system call per frame, and the frames the program puts
//! behind the TX ring leave through the device when it calls [`KICK`].
//!
//! | ioctl | argument | errors |
//! |---|---|---|
//! | [`ATTACH`] | [`Attach`] in, `id` out | `EINVAL` ([`check_attach`]: flags, `reserved`, no ring, one ring twice, unknown ring — a ring of another open file is unknown here —, not a packet ring, a ring of another pool, unknown pool, pool too small, buffers that straddle pages, a write-combined pool), `EBUSY` a ring already attached or a device that has an RX handler (another pktmap attachment, a bridge, a bond), `ENODEV` no such ifindex in the opener's network namespace, `ENOSPC` too many attachments |
//! | [`DETACH`] | [`ResourceId`], the attachment's id | `EINVAL` unknown id (also the second detach) |
//! | [`KICK`] | [`ResourceId`], the attachment's id | `EINVAL` unknown id or an attachment without a TX ring, `ENODEV` once the device is gone; returns the number of TX slots released |
//!
//! All three need a file open for writing (`EBADF`). Closing the file detaches everything it
//! attached. The device's removal (`ip link del`, a move to another namespace, its namespace
//! going away) *ends* an attachment: the driver writes its rings no more and `KICK` is
//! `ENODEV`, while the id and the rings' attached state stay until `DETACH` (which then
//! succeeds) or close. A ring is attached to one attachment at a time (`RING_DESTROY` of it is
//! `EBUSY` until then); a ring attached again keeps its indices and counters.
//!
//! # The packet ring (layout version 1)
//!
//! ```text
//!  0    PacketRingHeader   written once at RING_CREATE: magic, version, entries, pool, offsets
//!  64   producer (u32)     RX: the driver's; TX: the program's
//!  128  consumer (u32)     RX: the program's; TX: the driver's
//!  192  need-wakeup (u32)  RX: set by the program before it sleeps, cleared by the driver when it wakes it
//!  256  counters [u64; 32] the driver's, 64-bit, monotonic, never cleared
//!  4096 entries × PacketDesc (16 bytes each)
//! ```
//!
//! Indices are free-running `u32`s; slot `i` is descriptor `i & (entries - 1)`. Each index has
//! one writer and its own cache line; the reader loads it with acquire ordering, the writer
//! stores it with release ordering after the descriptors it covers.
//!
//! **RX.** Every slot owns one buffer of the pool: the one its descriptor's `buf` names (at
//! `RING_CREATE` the driver writes `buf = i` into slot `i`). Slots `consumer..producer` hold
//! frames for the program; the others are the driver's. For each frame the driver reads the
//! program's `consumer` once ([`rx_space`]), reads the next slot's `buf` once and checks it
//! against the pool ([`PacketPool::buffer`]), copies the frame into that buffer (cut to the
//! buffer's size: [`rx_copy`]), writes the descriptor and publishes `producer + 1`. The program
//! reads its frames, may leave a *different* free buffer's index in a slot's `buf` (a buffer
//! swap, e.g. with a TX descriptor), and releases slots by storing `consumer`. A frame with no
//! free slot is counted in [`counter::RX_RING_FULL`]; one whose slot names no buffer of the
//! pool in [`counter::RX_INVALID_DESC`]; neither is ever delivered in part.
//!
//! **TX.** The program fills descriptors `producer..`, stores `producer`, and calls [`KICK`]
//! once per batch. The driver reads `producer` once ([`tx_pending`]), reads each descriptor
//! once ([`check_tx_desc`]), copies the frame into a new socket buffer, hands it to the device
//! and releases the slot (`consumer + 1`) as soon as the copy is made: the buffer is the
//! program's again when `consumer` passes it. A refused descriptor is counted in
//! [`counter::TX_INVALID_DESC`] and released unsent; a frame the device refuses in
//! [`counter::TX_ERRORS`].
//!
//! **Waiting.** A busy-polling program makes no system call at all. One that wants to sleep
//! stores 1 in the RX ring's need-wakeup word, checks `producer` once more, and `poll(2)`s the
//! device file for `POLLIN`; the driver wakes it after the next frame it delivers and clears the
//! word, so it wakes a sleeper at most once until the program sets the word again. `POLLIN` is
//! also reported while any attached RX ring of the file holds frames.
//!
//! **Accounting.** Every frame the RX handler sees ends in exactly one of
//! [`counter::RX_PACKETS`], [`counter::RX_RING_FULL`], [`counter::RX_INVALID_DESC`] or
//! [`counter::RX_COPY_ERRORS`]; every TX slot the driver releases in exactly one of
//! [`counter::TX_PACKETS`], [`counter::TX_INVALID_DESC`] or [`counter::TX_ERRORS`].

use super::codec::PAGE_SIZE;
use super::ioctl::{ioc, ResourceId, IOC_READ, IOC_WRITE, MAX_RING_ENTRIES};
use core::fmt;
use core::mem::size_of;

/// `ATTACH`, `_IOWR('P', 9, struct pktmap_attach)`: bind rings to a network device.
pub const ATTACH: u32 = ioc(IOC_READ | IOC_WRITE, 9, size_of::<Attach>());
/// `DETACH`, `_IOW('P', 10, struct pktmap_id)`: undo an [`ATTACH`] (by the attachment's id).
pub const DETACH: u32 = ioc(IOC_WRITE, 10, size_of::<ResourceId>());
/// `KICK`, `_IOW('P', 11, struct pktmap_id)`: send what the attachment's TX ring holds.
pub const KICK: u32 = ioc(IOC_WRITE, 11, size_of::<ResourceId>());

/// [`RingCreate::flags`](super::ioctl::RingCreate::flags): the ring has the packet layout
/// (version 1, this module) and can be attached.
pub const RING_PACKET: u32 = 1;

/// [`Attach::flags`]: mirror mode, the stack still receives every frame (the default, 0, is
/// steal mode: a frame the RX ring takes, or drops, never reaches the stack).
pub const ATTACH_MIRROR: u32 = 1;
/// Every flag [`Attach::flags`] may carry.
pub const ATTACH_FLAGS: u32 = ATTACH_MIRROR;

/// The most attachments one open file may hold at once.
pub const MAX_ATTACHMENTS: u32 = 64;

/// `struct pktmap_attach`: the argument of [`ATTACH`].
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{Attach, ATTACH, ATTACH_MIRROR};
/// // Receive on ifindex 3 into ring 1, mirror mode; no TX ring.
/// let req = Attach { ifindex: 3, pool_id: 1, rx_ring: 1, flags: ATTACH_MIRROR, ..Default::default() };
/// assert_eq!((ATTACH >> 16) & 0x3fff, 32); // the size bits
/// assert_eq!(req.tx_ring, 0);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attach {
    /// In: the device's ifindex in the opener's network namespace.
    pub ifindex: u32,
    /// In: the pool whose buffers the rings' descriptors name (both rings' pool).
    pub pool_id: u32,
    /// In: the RX ring's id, or 0 for none.
    pub rx_ring: u32,
    /// In: the TX ring's id, or 0 for none.
    pub tx_ring: u32,
    /// In: 0 (steal) or [`ATTACH_MIRROR`].
    pub flags: u32,
    /// Out: the attachment's id (never 0), for [`DETACH`] and [`KICK`].
    pub id: u32,
    /// Must be 0.
    pub reserved: u64,
}

/// The first word of a packet ring: `"pkRg"` read as a little-endian `u32`.
pub const PACKET_RING_MAGIC: u32 = u32::from_le_bytes(*b"pkRg");
/// The layout version this module describes.
pub const PACKET_RING_VERSION: u32 = 1;

/// Where `producer` lives in a packet ring (its own cache line).
pub const PRODUCER_OFFSET: u64 = 64;
/// Where `consumer` lives (its own cache line).
pub const CONSUMER_OFFSET: u64 = 128;
/// Where the need-wakeup word lives (its own cache line).
pub const WAKEUP_OFFSET: u64 = 192;
/// Where the counters start: [`COUNTER_WORDS`] `u64`s, indexed by [`counter`].
pub const COUNTERS_OFFSET: u64 = 256;
/// The number of counter words (room to grow: a word no counter uses reads 0).
pub const COUNTER_WORDS: u32 = 32;
/// Where the descriptors start: the second page, so they never share a page with the indices.
pub const DESC_OFFSET: u64 = PAGE_SIZE;
/// Bytes per descriptor.
pub const DESC_SIZE: u32 = size_of::<PacketDesc>() as u32;

/// `struct pktmap_packet_ring`: the first bytes of a packet ring, written once by the driver at
/// `RING_CREATE` and never changed.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{PacketRingHeader, DESC_OFFSET};
/// let h = PacketRingHeader::new(256, 1);
/// assert!(h.is_valid());
/// assert_eq!(h.desc_offset as u64, DESC_OFFSET);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketRingHeader {
    /// [`PACKET_RING_MAGIC`].
    pub magic: u32,
    /// [`PACKET_RING_VERSION`].
    pub version: u32,
    /// Number of descriptors (a power of two).
    pub entries: u32,
    /// The pool whose buffers the descriptors name.
    pub pool_id: u32,
    /// [`PRODUCER_OFFSET`].
    pub producer_offset: u32,
    /// [`CONSUMER_OFFSET`].
    pub consumer_offset: u32,
    /// [`WAKEUP_OFFSET`].
    pub wakeup_offset: u32,
    /// [`COUNTERS_OFFSET`].
    pub counters_offset: u32,
    /// [`COUNTER_WORDS`].
    pub counter_words: u32,
    /// [`DESC_OFFSET`].
    pub desc_offset: u32,
    /// [`DESC_SIZE`].
    pub desc_size: u32,
    /// 0.
    pub reserved: u32,
}

impl PacketRingHeader {
    /// The header of a version-1 ring of `entries` descriptors over pool `pool_id`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::packet::{PacketRingHeader, PACKET_RING_MAGIC};
    /// assert_eq!(PacketRingHeader::new(8, 2).magic, PACKET_RING_MAGIC);
    /// ```
    pub const fn new(entries: u32, pool_id: u32) -> Self {
        Self {
            magic: PACKET_RING_MAGIC,
            version: PACKET_RING_VERSION,
            entries,
            pool_id,
            producer_offset: PRODUCER_OFFSET as u32,
            consumer_offset: CONSUMER_OFFSET as u32,
            wakeup_offset: WAKEUP_OFFSET as u32,
            counters_offset: COUNTERS_OFFSET as u32,
            counter_words: COUNTER_WORDS,
            desc_offset: DESC_OFFSET as u32,
            desc_size: DESC_SIZE,
            reserved: 0,
        }
    }

    /// Whether a mapped header is one this module describes: magic, version, offsets and a
    /// power-of-two `entries` (what a reader checks before it trusts the other words).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::packet::PacketRingHeader;
    /// let h = PacketRingHeader::new(64, 1);
    /// assert!(!PacketRingHeader { version: 2, ..h }.is_valid());
    /// assert!(!PacketRingHeader { entries: 3, ..h }.is_valid());
    /// ```
    pub const fn is_valid(&self) -> bool {
        let expected = Self::new(self.entries, self.pool_id);
        self.magic == expected.magic
            && self.version == expected.version
            && self.producer_offset == expected.producer_offset
            && self.consumer_offset == expected.consumer_offset
            && self.wakeup_offset == expected.wakeup_offset
            && self.counters_offset == expected.counters_offset
            && self.counter_words == expected.counter_words
            && self.desc_offset == expected.desc_offset
            && self.desc_size == expected.desc_size
            && self.reserved == 0
            && self.entries.is_power_of_two()
            && self.entries <= MAX_RING_ENTRIES
    }

    /// The byte offset of slot `index`'s descriptor (free-running index, wrapped).
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::packet::PacketRingHeader;
    /// let h = PacketRingHeader::new(8, 1);
    /// assert_eq!(h.desc_at(9), 4096 + 16); // slot 9 is descriptor 1
    /// ```
    pub const fn desc_at(&self, index: u32) -> u64 {
        desc_at(self.entries, index)
    }
}

/// The byte offset of slot `index`'s descriptor in a ring of `entries` (a power of two).
///
/// # Examples
/// ```
/// use pktmap_abi::packet::desc_at;
/// assert_eq!(desc_at(4, u32::MAX), 4096 + 3 * 16);
/// ```
pub const fn desc_at(entries: u32, index: u32) -> u64 {
    let slot = index & entries.wrapping_sub(1);
    // At most 2^32 * 16 + 4096: no overflow in 64 bits.
    DESC_OFFSET.wrapping_add((slot as u64).wrapping_mul(DESC_SIZE as u64))
}

/// Bytes a packet ring of `entries` descriptors occupies: the header page and the descriptors.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::packet_ring_bytes;
/// assert_eq!(packet_ring_bytes(256), 4096 + 256 * 16);
/// ```
pub const fn packet_ring_bytes(entries: u32) -> u64 {
    // At most MAX_RING_ENTRIES * 16 + 4096; saturate to stay panic-free anyway.
    (entries as u64)
        .saturating_mul(DESC_SIZE as u64)
        .saturating_add(DESC_OFFSET)
}

/// `struct pktmap_packet_desc`: one slot of a packet ring.
///
/// RX: the driver writes every field but `buf` (which it only reads); TX: the driver reads
/// `buf`, `len` and `flags`, once each, and writes nothing.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{PacketDesc, DESC_VLAN};
/// // A 60-byte frame in buffer 3 that carried VLAN 100 on the wire (the tag is not in the bytes).
/// let d = PacketDesc { buf: 3, len: 60, wire_len: 60, flags: DESC_VLAN, vlan_tci: 100 };
/// assert_eq!(size_of::<PacketDesc>(), 16);
/// assert!(d.flags & DESC_VLAN != 0);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketDesc {
    /// The index of the buffer in the pool.
    pub buf: u32,
    /// Bytes of the frame in the buffer, from the buffer's first byte (the Ethernet header).
    pub len: u32,
    /// RX: the frame's length as the device received it (larger than `len` when truncated,
    /// the whole aggregate for a GRO super-frame). TX: ignored.
    pub wire_len: u32,
    /// RX: `DESC_*` bits. TX: must be 0.
    pub flags: u16,
    /// RX: the VLAN tag the device took off the frame, if [`DESC_VLAN`]. TX: ignored.
    pub vlan_tci: u16,
}

/// [`PacketDesc::flags`]: the frame was longer than the buffer; `len` bytes of `wire_len` kept.
///
/// Flags are only added, never change meaning. A driver sets the flags it reports and leaves
/// the others 0: pktmap.ko of this release sets [`DESC_TRUNCATED`] and [`DESC_GSO`]; the VLAN
/// and checksum flags are defined so programs can test for them, and are not reported yet (a
/// tag the device took off is then not in the bytes either: see the driver README).
pub const DESC_TRUNCATED: u16 = 1;
/// The device took a VLAN tag off the frame; it is in [`PacketDesc::vlan_tci`].
pub const DESC_VLAN: u16 = 2;
/// The checksum is not filled in yet (`CHECKSUM_PARTIAL`: the frame was built on this host and
/// never left it, e.g. over veth).
pub const DESC_CSUM_PARTIAL: u16 = 4;
/// The device (or the stack) verified the checksum (`CHECKSUM_UNNECESSARY`).
pub const DESC_CSUM_VALID: u16 = 8;
/// A GRO/GSO super-frame: several wire frames aggregated into one.
pub const DESC_GSO: u16 = 16;

/// The counters of a packet ring: indices of the `u64` words at [`COUNTERS_OFFSET`].
///
/// Every counter only grows (64-bit, wrapping only after 2^64 events) and is never cleared:
/// not by reading, not by a detach, not by a new attach of the same ring.
pub mod counter {
    /// RX: frames delivered into the ring.
    pub const RX_PACKETS: u32 = 0;
    /// RX: bytes delivered (the sum of `len`).
    pub const RX_BYTES: u32 = 1;
    /// RX: frames dropped because the ring was full.
    pub const RX_RING_FULL: u32 = 2;
    /// RX: frames longer than a buffer, delivered cut ([`DESC_TRUNCATED`](super::DESC_TRUNCATED)).
    pub const RX_OVERSIZE: u32 = 3;
    /// RX: frames dropped because the program wrote a bad index: a slot's `buf` outside the
    /// pool, or a `consumer` past `producer`.
    pub const RX_INVALID_DESC: u32 = 4;
    /// RX: GRO/GSO super-frames delivered ([`DESC_GSO`](super::DESC_GSO)).
    pub const RX_GSO: u32 = 5;
    /// RX: frames dropped because the socket buffer could not be copied.
    pub const RX_COPY_ERRORS: u32 = 6;
    /// Wakeups the driver made for this ring (need-wakeup was set).
    pub const WAKEUPS: u32 = 7;
    /// TX: frames handed to the device.
    pub const TX_PACKETS: u32 = 8;
    /// TX: bytes handed to the device.
    pub const TX_BYTES: u32 = 9;
    /// TX: descriptors released unsent because they were invalid (buffer outside the pool,
    /// length out of range, flags set), and kicks whose `producer` was more than `entries`
    /// ahead (counted once, nothing sent).
    pub const TX_INVALID_DESC: u32 = 10;
    /// TX: frames released unsent because no socket buffer could be had, or the device (or
    /// its queue) refused them.
    pub const TX_ERRORS: u32 = 11;
    /// TX: kicks served.
    pub const KICKS: u32 = 12;
    /// The number of counters this version defines (the rest of the words read 0).
    pub const COUNT: u32 = 13;
}

/// Why a descriptor or an index the program wrote was refused (counted, never followed).
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{rx_space, IndexError};
/// // The program claims to have consumed 5 frames the driver never produced.
/// assert_eq!(rx_space(10, 15, 8), Err(IndexError::Invalid));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexError {
    /// The index (or a buffer index) is outside what the ring or pool allows.
    Invalid,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("index outside the ring or pool")
    }
}

impl core::error::Error for IndexError {}

/// RX: how many slots the driver may fill, from its own `producer` and the `consumer` it read
/// once from the ring. 0 is a full ring.
///
/// # Errors
/// [`IndexError::Invalid`] when `consumer` is ahead of `producer` or more than `entries`
/// behind it (the program wrote nonsense): the frame is counted in
/// [`counter::RX_INVALID_DESC`] and dropped.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::rx_space;
/// assert_eq!(rx_space(8, 0, 8), Ok(0)); // full
/// assert_eq!(rx_space(3, u32::MAX, 8), Ok(4)); // free-running indices wrap
/// ```
pub const fn rx_space(producer: u32, consumer: u32, entries: u32) -> Result<u32, IndexError> {
    let used = producer.wrapping_sub(consumer);
    if used > entries {
        return Err(IndexError::Invalid);
    }
    Ok(entries.wrapping_sub(used))
}

/// TX: how many descriptors wait, from the `producer` the driver read once from the ring and
/// its own `consumer`.
///
/// # Errors
/// [`IndexError::Invalid`] when `producer` is behind `consumer` or more than `entries` ahead:
/// the kick is counted in [`counter::TX_INVALID_DESC`] and sends nothing.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{tx_pending, IndexError};
/// assert_eq!(tx_pending(12, 4, 8), Ok(8));
/// assert_eq!(tx_pending(13, 4, 8), Err(IndexError::Invalid));
/// ```
pub const fn tx_pending(producer: u32, consumer: u32, entries: u32) -> Result<u32, IndexError> {
    let pending = producer.wrapping_sub(consumer);
    if pending > entries {
        return Err(IndexError::Invalid);
    }
    Ok(pending)
}

/// The pool behind an attachment, as the driver describes it to the checks.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::PacketPool;
/// let pool = PacketPool { buf_size: 2048, buf_count: 64, chunk_bytes: 4096, write_combined: false };
/// assert_eq!(pool.buffer(3), Ok(6144));
/// assert!(pool.buffer(64).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketPool {
    /// Bytes per buffer (a power of two).
    pub buf_size: u32,
    /// Number of buffers.
    pub buf_count: u32,
    /// Bytes per physically contiguous chunk of the pool (4096 for pools of single pages).
    pub chunk_bytes: u64,
    /// Whether the pool is write-combined ([`CACHE_WC`](super::ioctl::CACHE_WC)).
    pub write_combined: bool,
}

impl PacketPool {
    /// The byte offset in the pool of buffer `buf`, a buffer index the program wrote.
    ///
    /// # Errors
    /// [`IndexError::Invalid`] for an index at or past `buf_count`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::packet::PacketPool;
    /// let pool = PacketPool { buf_size: 256, buf_count: 16, chunk_bytes: 4096, write_combined: false };
    /// assert_eq!(pool.buffer(15), Ok(15 * 256));
    /// assert!(pool.buffer(u32::MAX).is_err());
    /// ```
    pub const fn buffer(&self, buf: u32) -> Result<u64, IndexError> {
        if buf >= self.buf_count {
            return Err(IndexError::Invalid);
        }
        // Below 2^64: both factors are below 2^32.
        Ok((buf as u64).wrapping_mul(self.buf_size as u64))
    }
}

/// What the RX path copies of a frame of `frame_len` bytes into a buffer of `buf_size`.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{rx_copy, RxCopy};
/// assert_eq!(rx_copy(60, 2048), RxCopy { len: 60, truncated: false });
/// assert_eq!(rx_copy(9000, 2048), RxCopy { len: 2048, truncated: true });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RxCopy {
    /// Bytes copied (and written to [`PacketDesc::len`]).
    pub len: u32,
    /// Whether the frame was cut ([`DESC_TRUNCATED`], [`counter::RX_OVERSIZE`]).
    pub truncated: bool,
}

/// How much of a `frame_len`-byte frame fits a `buf_size`-byte buffer (see [`RxCopy`]).
///
/// # Examples
/// ```
/// use pktmap_abi::packet::rx_copy;
/// assert!(!rx_copy(1514, 2048).truncated);
/// assert_eq!(rx_copy(4096, 2048).len, 2048);
/// ```
pub const fn rx_copy(frame_len: u32, buf_size: u32) -> RxCopy {
    if frame_len > buf_size {
        RxCopy {
            len: buf_size,
            truncated: true,
        }
    } else {
        RxCopy {
            len: frame_len,
            truncated: false,
        }
    }
}

/// The shortest frame TX sends: an Ethernet header (`ETH_HLEN`).
pub const MIN_TX_LEN: u32 = 14;

/// A TX descriptor the driver accepted: the frame's bytes in the pool.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{check_tx_desc, PacketDesc, PacketPool, TxFrame};
/// let pool = PacketPool { buf_size: 2048, buf_count: 8, chunk_bytes: 4096, write_combined: false };
/// let d = PacketDesc { buf: 1, len: 60, ..Default::default() };
/// assert_eq!(check_tx_desc(&d, &pool, 1514), Ok(TxFrame { offset: 2048, len: 60 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxFrame {
    /// Byte offset of the frame in the pool.
    pub offset: u64,
    /// Its length.
    pub len: u32,
}

/// Checks a TX descriptor (read once from the ring) against the pool and the longest frame the
/// device takes, `max_len` (its MTU plus its link-layer header).
///
/// # Errors
/// [`IndexError::Invalid`] for a buffer outside the pool, a length below [`MIN_TX_LEN`], past
/// the buffer or past `max_len`, or non-zero flags: counted in [`counter::TX_INVALID_DESC`].
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{check_tx_desc, PacketDesc, PacketPool};
/// let pool = PacketPool { buf_size: 2048, buf_count: 8, chunk_bytes: 4096, write_combined: false };
/// let ok = PacketDesc { buf: 7, len: 1514, ..Default::default() };
/// assert!(check_tx_desc(&ok, &pool, 1514).is_ok());
/// assert!(check_tx_desc(&PacketDesc { len: 1515, ..ok }, &pool, 1514).is_err());
/// assert!(check_tx_desc(&PacketDesc { buf: 8, ..ok }, &pool, 1514).is_err());
/// assert!(check_tx_desc(&PacketDesc { flags: 1, ..ok }, &pool, 1514).is_err());
/// ```
pub const fn check_tx_desc(
    desc: &PacketDesc,
    pool: &PacketPool,
    max_len: u32,
) -> Result<TxFrame, IndexError> {
    if desc.flags != 0 || desc.len < MIN_TX_LEN || desc.len > pool.buf_size || desc.len > max_len {
        return Err(IndexError::Invalid);
    }
    match pool.buffer(desc.buf) {
        Ok(offset) => Ok(TxFrame {
            offset,
            len: desc.len,
        }),
        Err(e) => Err(e),
    }
}

/// RX: the descriptor the driver writes for a frame copied into buffer `buf`.
///
/// `frame_len` is the frame's length at the device (`skb->len` plus the link-layer header the
/// stack has already pulled); `vlan` the tag the device took off, if any; `csum_partial` and
/// `csum_valid` the socket buffer's checksum state; `gso` whether it is a super-frame.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{rx_desc, DESC_GSO, DESC_TRUNCATED};
/// let d = rx_desc(5, 65000, 2048, None, false, false, true);
/// assert_eq!((d.buf, d.len, d.wire_len), (5, 2048, 65000));
/// assert_eq!(d.flags, DESC_TRUNCATED | DESC_GSO);
/// ```
pub const fn rx_desc(
    buf: u32,
    frame_len: u32,
    buf_size: u32,
    vlan: Option<u16>,
    csum_partial: bool,
    csum_valid: bool,
    gso: bool,
) -> PacketDesc {
    let copy = rx_copy(frame_len, buf_size);
    let mut flags = 0;
    if copy.truncated {
        flags |= DESC_TRUNCATED;
    }
    let vlan_tci = match vlan {
        Some(tci) => {
            flags |= DESC_VLAN;
            tci
        }
        None => 0,
    };
    if csum_partial {
        flags |= DESC_CSUM_PARTIAL;
    }
    if csum_valid {
        flags |= DESC_CSUM_VALID;
    }
    if gso {
        flags |= DESC_GSO;
    }
    PacketDesc {
        buf,
        len: copy.len,
        wire_len: frame_len,
        flags,
        vlan_tci,
    }
}

/// A ring as the driver's table describes it to [`check_attach`].
///
/// # Examples
/// ```
/// use pktmap_abi::packet::AttachRing;
/// let r = AttachRing { entries: 256, pool_id: 1, packet: true, attached: false };
/// assert!(r.packet && !r.attached);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttachRing {
    /// Number of descriptors.
    pub entries: u32,
    /// The pool it was created for.
    pub pool_id: u32,
    /// Whether it was created with [`RING_PACKET`].
    pub packet: bool,
    /// Whether an attachment already holds it.
    pub attached: bool,
}

/// Why an [`ATTACH`] was refused before the device was looked up.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::AttachError;
/// assert_eq!(AttachError::RingAttached.errno(), 16); // EBUSY
/// assert_eq!(AttachError::PoolTooSmall.errno(), 22); // EINVAL
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachError {
    /// Unknown bits in `flags`, or `reserved` not 0.
    BadFlags,
    /// Neither an RX nor a TX ring.
    NoRing,
    /// The same ring as RX and TX.
    SameRing,
    /// No ring of that id in this open file (a ring of another file is one).
    UnknownRing,
    /// A ring made without [`RING_PACKET`].
    NotPacketRing,
    /// A ring made for another pool than `pool_id`.
    OtherPool,
    /// No pool of that id in this open file.
    UnknownPool,
    /// Fewer buffers than the rings' slots together (`rx.entries + tx.entries`).
    PoolTooSmall,
    /// Buffers larger than the pool's physically contiguous chunks: one would straddle pages
    /// the driver cannot address as one run.
    Straddles,
    /// A write-combined pool (the driver copies through the cached kernel mapping).
    WriteCombined,
    /// A ring that an attachment already holds (`EBUSY`).
    RingAttached,
    /// ifindex 0 (no device has it): `ENODEV`.
    NoDevice,
}

impl AttachError {
    /// The errno the caller receives (positive): `EBUSY` (16) for [`AttachError::RingAttached`],
    /// `ENODEV` (19) for [`AttachError::NoDevice`], `EINVAL` (22) for the others.
    ///
    /// # Examples
    /// ```
    /// use pktmap_abi::packet::AttachError;
    /// assert_eq!(AttachError::RingAttached.errno(), 16);
    /// assert_eq!(AttachError::PoolTooSmall.errno(), 22);
    /// ```
    pub const fn errno(self) -> i32 {
        match self {
            AttachError::RingAttached => 16,
            AttachError::NoDevice => 19,
            _ => 22,
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachError::BadFlags => "unknown attach flags or reserved bits set",
            AttachError::NoRing => "neither an RX nor a TX ring",
            AttachError::SameRing => "the same ring as RX and TX",
            AttachError::UnknownRing => "no ring of that id in this open file",
            AttachError::NotPacketRing => "the ring was not made with RING_PACKET",
            AttachError::OtherPool => "the ring carries another pool's buffers",
            AttachError::UnknownPool => "no pool of that id in this open file",
            AttachError::PoolTooSmall => "fewer buffers than the rings' slots",
            AttachError::Straddles => "buffers larger than the pool's contiguous chunks",
            AttachError::WriteCombined => "write-combined pools cannot carry packets",
            AttachError::RingAttached => "the ring is already attached",
            AttachError::NoDevice => "ifindex 0 names no device",
        })
    }
}

impl core::error::Error for AttachError {}

/// An [`ATTACH`] the checks admitted: what the driver binds once it has found the device.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{check_attach, Attach, AttachRing, PacketPool};
/// let pool = PacketPool { buf_size: 2048, buf_count: 512, chunk_bytes: 4096, write_combined: false };
/// let ring = AttachRing { entries: 256, pool_id: 1, packet: true, attached: false };
/// let req = Attach { ifindex: 2, pool_id: 1, rx_ring: 4, ..Default::default() };
/// let plan = check_attach(&req, |_| Some(ring), |_| Some(pool))?;
/// assert_eq!((plan.rx, plan.tx, plan.mirror), (Some(4), None, false));
/// # Ok::<(), pktmap_abi::packet::AttachError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttachPlan {
    /// The device's ifindex.
    pub ifindex: u32,
    /// The RX ring's id, if any.
    pub rx: Option<u32>,
    /// The TX ring's id, if any.
    pub tx: Option<u32>,
    /// Mirror (the stack sees every frame too) rather than steal.
    pub mirror: bool,
    /// The pool.
    pub pool: PacketPool,
}

/// Admits an [`ATTACH`] against the open file's tables: `ring(id)` and `pool(id)` describe a
/// ring or pool of this file, `None` if it has none of that id.
///
/// # Errors
/// The [`AttachError`]s but `NoDevice`'s lookup, in the order of the struct's fields: flags,
/// rings, pool, the pool against the rings.
///
/// # Examples
/// ```
/// use pktmap_abi::packet::{check_attach, Attach, AttachError, AttachRing, PacketPool};
/// let pool = PacketPool { buf_size: 2048, buf_count: 64, chunk_bytes: 4096, write_combined: false };
/// let ring = AttachRing { entries: 64, pool_id: 1, packet: true, attached: false };
/// let both = Attach { ifindex: 2, pool_id: 1, rx_ring: 1, tx_ring: 2, ..Default::default() };
/// // 64 RX slots and 64 TX slots need 128 buffers.
/// assert_eq!(check_attach(&both, |_| Some(ring), |_| Some(pool)), Err(AttachError::PoolTooSmall));
/// ```
pub fn check_attach(
    req: &Attach,
    ring: impl Fn(u32) -> Option<AttachRing>,
    pool: impl FnOnce(u32) -> Option<PacketPool>,
) -> Result<AttachPlan, AttachError> {
    if req.flags & !ATTACH_FLAGS != 0 || req.reserved != 0 {
        return Err(AttachError::BadFlags);
    }
    if req.ifindex == 0 {
        return Err(AttachError::NoDevice);
    }
    let (rx, tx) = (nonzero(req.rx_ring), nonzero(req.tx_ring));
    if rx.is_none() && tx.is_none() {
        return Err(AttachError::NoRing);
    }
    if rx.is_some() && rx == tx {
        return Err(AttachError::SameRing);
    }
    let mut slots: u64 = 0;
    for id in [rx, tx].into_iter().flatten() {
        let r = ring(id).ok_or(AttachError::UnknownRing)?;
        if !r.packet {
            return Err(AttachError::NotPacketRing);
        }
        if r.pool_id != req.pool_id {
            return Err(AttachError::OtherPool);
        }
        if r.attached {
            return Err(AttachError::RingAttached);
        }
        slots = slots.saturating_add(u64::from(r.entries));
    }
    let p = pool(req.pool_id).ok_or(AttachError::UnknownPool)?;
    if p.write_combined {
        return Err(AttachError::WriteCombined);
    }
    if u64::from(p.buf_size) > p.chunk_bytes {
        return Err(AttachError::Straddles);
    }
    if u64::from(p.buf_count) < slots {
        return Err(AttachError::PoolTooSmall);
    }
    Ok(AttachPlan {
        ifindex: req.ifindex,
        rx,
        tx,
        mirror: req.flags & ATTACH_MIRROR != 0,
        pool: p,
    })
}

const fn nonzero(id: u32) -> Option<u32> {
    if id == 0 {
        None
    } else {
        Some(id)
    }
}

#[cfg(test)]
mod tests;
