// SPDX-License-Identifier: GPL-2.0

//! Packets (`abi::packet`): packet rings, attachments of rings to a network device, the RX
//! handler that fills an RX ring and the `KICK` that drains a TX ring.
//!
//! # Who writes what
//!
//! The driver keeps its own copy of every index it owns (the RX producer, the TX consumer)
//! and of every counter, and only ever *stores* them into the ring; it never reads back a word
//! the program could have changed. What the program writes (the RX consumer, the TX producer,
//! a slot's buffer index, a TX descriptor) is loaded once and checked by `abi::packet` before
//! it is used; a bad one is counted and never followed.
//!
//! # Locking and lifetimes
//!
//! Lock order: a file's table lock, released before → RTNL → the device's attachment list →
//! an attachment's state → (softirq) an RX ring's producer lock. The RX handler runs in
//! softirq on any CPU and takes only its ring's spinlock (several CPUs can deliver to one
//! ring: veth's backlog runs on the sender's CPU). An attachment's RX handler is unregistered
//! under RTNL (`netdev_rx_handler_unregister`, which waits for a grace period) before
//! anything it uses can go; its rings stay marked attached in the file's table until then, so
//! no second producer can start on them.
#![forbid(unsafe_code)]

use crate::abi::packet::{
    self as pk, counter, desc_at, rx_copy, rx_desc, rx_space, tx_pending, PacketDesc, PacketPool,
    PacketRingHeader, CONSUMER_OFFSET, COUNTERS_OFFSET, PRODUCER_OFFSET, WAKEUP_OFFSET,
};
use crate::abi::plan::Cache;
use crate::resource::{PageRef, Resource};
use crate::sys::{
    netdev::{DevId, Rtnl, RxHandler, RxRegistration, RxSkb, RxVerdict, TxDev, TxSrc, Xmit},
    page::SharedPage,
};
use core::mem::offset_of;
use core::sync::atomic::{fence, Ordering};
use kernel::{
    new_mutex, new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    sync::{poll::PollCondVar, Arc, Mutex, SpinLock},
};

/// Counters this version defines, as a `usize` for arrays.
const COUNTERS: usize = counter::COUNT as usize;

/// Writes a new packet ring's header (version 1) and gives slot `i` buffer `i`, so an RX ring
/// owns a distinct buffer per slot from the start. Indices, need-wakeup and counters start at 0
/// (the pages are zeroed).
pub fn init_ring(ring: &Resource, entries: u32, pool_id: u32) -> Result {
    let h = PacketRingHeader::new(entries, pool_id);
    let header = ring.backing.page(0).ok_or(EINVAL)?;
    for (offset, word) in [
        (offset_of!(PacketRingHeader, magic), h.magic),
        (offset_of!(PacketRingHeader, version), h.version),
        (offset_of!(PacketRingHeader, entries), h.entries),
        (offset_of!(PacketRingHeader, pool_id), h.pool_id),
        (
            offset_of!(PacketRingHeader, producer_offset),
            h.producer_offset,
        ),
        (
            offset_of!(PacketRingHeader, consumer_offset),
            h.consumer_offset,
        ),
        (offset_of!(PacketRingHeader, wakeup_offset), h.wakeup_offset),
        (
            offset_of!(PacketRingHeader, counters_offset),
            h.counters_offset,
        ),
        (offset_of!(PacketRingHeader, counter_words), h.counter_words),
        (offset_of!(PacketRingHeader, desc_offset), h.desc_offset),
        (offset_of!(PacketRingHeader, desc_size), h.desc_size),
    ] {
        header.store_u32(offset, word)?;
    }
    for i in 0..entries {
        let (page, offset) = desc_word(ring, entries, i, offset_of!(PacketDesc, buf))?;
        page.store_u32(offset, i)?;
    }
    Ok(())
}

/// The page and byte offset of word `field` of slot `index`'s descriptor. Descriptors are 16
/// bytes from a page boundary, so one never straddles pages.
fn desc_word(
    ring: &Resource,
    entries: u32,
    index: u32,
    field: usize,
) -> Result<(&SharedPage, usize)> {
    let at = usize::try_from(desc_at(entries, index)).map_err(|_| EINVAL)?;
    let page = ring.backing.page(at / PAGE_SIZE).ok_or(EINVAL)?;
    Ok((page, at % PAGE_SIZE + field))
}

/// What the attach checks need to know of a pool ([`pk::check_attach`]).
pub fn packet_pool(pool: &Resource) -> Option<PacketPool> {
    let g = pool.geometry()?;
    Some(PacketPool {
        buf_size: g.buf_size,
        buf_count: g.buf_count,
        chunk_bytes: g.chunk_pages.checked_mul(PAGE_SIZE as u64)?,
        write_combined: g.cache == Cache::WriteCombine,
    })
}

/// Counters kept by the driver and stored into the ring's counter words.
struct Counters([u64; COUNTERS]);

impl Counters {
    fn add(&mut self, ring: &SharedPage, which: u32, n: u64) {
        let Some(c) = self.0.get_mut(which as usize) else {
            return;
        };
        *c = c.wrapping_add(n);
        // The offset is inside the header page (`COUNTERS_OFFSET + 8 * COUNTER_WORDS`, checked
        // by the contract's tests), so the store cannot fail.
        let _ = ring.store_u64(COUNTERS_OFFSET as usize + 8 * which as usize, *c);
    }
}

/// One file's poll wait queue, woken by its RX rings.
pub type Waiter = PollCondVar;

/// An RX ring attached to a device: what the RX handler needs.
#[pin_data]
pub struct RxPath {
    ring: Arc<Resource>,
    entries: u32,
    pool: Arc<Resource>,
    geometry: PacketPool,
    mirror: bool,
    waiter: Arc<Waiter>,
    /// The producer index (the driver's own copy) and the counters, under the ring's
    /// producer lock (taken in softirq only).
    #[pin]
    state: SpinLock<RxState>,
}

struct RxState {
    producer: u32,
    counters: Counters,
}

/// Why a frame was not delivered: the counter it goes to.
struct Dropped(u32);

impl RxPath {
    /// The RX side of an attachment of `ring` (a packet ring over `pool`).
    pub fn new(
        ring: Arc<Resource>,
        entries: u32,
        pool: Arc<Resource>,
        geometry: PacketPool,
        mirror: bool,
        waiter: Arc<Waiter>,
    ) -> Result<Arc<Self>> {
        // A ring attached before keeps its indices and counters: start from what the driver
        // last stored (its own words: the program never writes the producer or the counters
        // of an RX ring; if it did, that is its own ring it garbles).
        let header = ring.backing.page(0).ok_or(EINVAL)?;
        let producer = header.load_u32(PRODUCER_OFFSET as usize)?;
        let mut counters = [0u64; COUNTERS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = header.load_u64(COUNTERS_OFFSET as usize + 8 * i)?;
        }
        Arc::pin_init(
            pin_init!(Self {
                ring,
                entries,
                pool,
                geometry,
                mirror,
                waiter,
                state <- new_spinlock!(
                    RxState { producer, counters: Counters(counters) },
                    "pktmap::packet::rx"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether the ring holds frames the program has not released.
    pub fn readable(&self) -> bool {
        let Some(header) = self.ring.backing.page(0) else {
            return false;
        };
        match (
            header.load_u32(PRODUCER_OFFSET as usize),
            header.load_u32(CONSUMER_OFFSET as usize),
        ) {
            (Ok(p), Ok(c)) => p != c,
            _ => false,
        }
    }

    /// Copies the frame into the next free slot's buffer and publishes it.
    fn deliver(
        &self,
        st: &mut RxState,
        header: &SharedPage,
        skb: &RxSkb<'_>,
        frame_len: u32,
        gso: bool,
    ) -> core::result::Result<PacketDesc, Dropped> {
        let copy_error = Dropped(counter::RX_COPY_ERRORS);
        let consumer = header
            .load_u32(CONSUMER_OFFSET as usize)
            .map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        // The slot's descriptor is read after the consumer index that released it.
        fence(Ordering::Acquire);
        let space = rx_space(st.producer, consumer, self.entries)
            .map_err(|_| Dropped(counter::RX_INVALID_DESC))?;
        if space == 0 {
            return Err(Dropped(counter::RX_RING_FULL));
        }
        let (slot, at) = desc_word(&self.ring, self.entries, st.producer, 0)
            .map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        let buf = slot
            .load_u32(at + offset_of!(PacketDesc, buf))
            .map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        let byte = self
            .geometry
            .buffer(buf)
            .map_err(|_| Dropped(counter::RX_INVALID_DESC))?;
        let len = rx_copy(frame_len, self.geometry.buf_size).len;
        // A buffer never straddles a page or chunk (`check_attach`: `buf_size <= chunk_bytes`,
        // both powers of two), so it is one run of kernel memory.
        let byte = usize::try_from(byte).map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        let copied = match self.pool.backing.page_ref(byte / PAGE_SIZE) {
            Some(PageRef::Shared(page)) => skb.copy_to_page(page, byte % PAGE_SIZE, len as usize),
            Some(PageRef::Chunk(chunk, page_at)) => {
                skb.copy_to_chunk(chunk, page_at + byte % PAGE_SIZE, len as usize)
            }
            None => Err(EINVAL),
        };
        copied.map_err(|_| copy_error)?;
        let d = rx_desc(
            buf,
            frame_len,
            self.geometry.buf_size,
            None,
            false,
            false,
            gso,
        );
        let words = [
            (offset_of!(PacketDesc, len), d.len),
            (offset_of!(PacketDesc, wire_len), d.wire_len),
            (
                offset_of!(PacketDesc, flags),
                u32::from(d.flags) | u32::from(d.vlan_tci) << 16,
            ),
        ];
        for (field, word) in words {
            slot.store_u32(at + field, word)
                .map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        }
        // The frame and its descriptor before the producer index that publishes them.
        fence(Ordering::Release);
        st.producer = st.producer.wrapping_add(1);
        header
            .store_u32(PRODUCER_OFFSET as usize, st.producer)
            .map_err(|_| Dropped(counter::RX_COPY_ERRORS))?;
        Ok(d)
    }
}

impl RxHandler for RxPath {
    fn receive(&self, skb: &RxSkb<'_>) -> RxVerdict {
        let frame_len = skb.frame_len();
        let gso = skb.is_gso();
        let mut wake = false;
        let delivered = match self.ring.backing.page(0) {
            None => false,
            Some(header) => {
                let mut guard = self.state.lock();
                let st = &mut *guard;
                match self.deliver(st, header, skb, frame_len, gso) {
                    Ok(d) => {
                        st.counters.add(header, counter::RX_PACKETS, 1);
                        st.counters.add(header, counter::RX_BYTES, u64::from(d.len));
                        if d.flags & pk::DESC_TRUNCATED != 0 {
                            st.counters.add(header, counter::RX_OVERSIZE, 1);
                        }
                        if gso {
                            st.counters.add(header, counter::RX_GSO, 1);
                        }
                        // Need-wakeup: the program asked to be woken; wake it once and clear
                        // the word, so the next frames wake nobody until it asks again.
                        if header.load_u32(WAKEUP_OFFSET as usize).unwrap_or(0) != 0 {
                            let _ = header.store_u32(WAKEUP_OFFSET as usize, 0);
                            st.counters.add(header, counter::WAKEUPS, 1);
                            wake = true;
                        }
                        true
                    }
                    Err(Dropped(reason)) => {
                        st.counters.add(header, reason, 1);
                        false
                    }
                }
            }
        };
        if wake {
            self.waiter.notify_all();
        }
        if self.mirror {
            RxVerdict::Pass
        } else {
            RxVerdict::Steal { delivered }
        }
    }
}

/// A TX ring attached to a device.
#[pin_data]
pub struct TxPath {
    ring: Arc<Resource>,
    entries: u32,
    pool: Arc<Resource>,
    geometry: PacketPool,
    dev: TxDev,
    /// The consumer index (the driver's own copy) and the counters; one kick at a time.
    #[pin]
    state: Mutex<TxState>,
}

struct TxState {
    consumer: u32,
    counters: Counters,
}

impl TxPath {
    /// The TX side of an attachment of `ring` (a packet ring over `pool`) to `dev`.
    pub fn new(
        ring: Arc<Resource>,
        entries: u32,
        pool: Arc<Resource>,
        geometry: PacketPool,
        dev: TxDev,
    ) -> Result<Arc<Self>> {
        let header = ring.backing.page(0).ok_or(EINVAL)?;
        let consumer = header.load_u32(CONSUMER_OFFSET as usize)?;
        let mut counters = [0u64; COUNTERS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = header.load_u64(COUNTERS_OFFSET as usize + 8 * i)?;
        }
        Arc::pin_init(
            pin_init!(Self {
                ring,
                entries,
                pool,
                geometry,
                dev,
                state <- new_mutex!(
                    TxState { consumer, counters: Counters(counters) },
                    "pktmap::packet::tx"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// Stops sending (under RTNL).
    pub fn stop(&self, rtnl: &Rtnl) {
        self.dev.clear(rtnl);
    }

    /// Whether it sends to `dev`.
    pub fn sends_to(&self, dev: DevId) -> bool {
        self.dev.is(dev)
    }

    /// `KICK`: sends every descriptor between the driver's consumer and the program's
    /// producer, releasing each slot after its copy; returns the number of slots released.
    ///
    /// # Errors
    /// `ENODEV` once the device is gone (nothing is consumed).
    pub fn kick(&self) -> Result<u32> {
        let header = self.ring.backing.page(0).ok_or(EINVAL)?;
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if !self.dev.is_set() {
            return Err(ENODEV);
        }
        st.counters.add(header, counter::KICKS, 1);
        let producer = header.load_u32(PRODUCER_OFFSET as usize)?;
        fence(Ordering::Acquire);
        let Ok(pending) = tx_pending(producer, st.consumer, self.entries) else {
            st.counters.add(header, counter::TX_INVALID_DESC, 1);
            return Ok(0);
        };
        for _ in 0..pending {
            let (slot, at) = desc_word(&self.ring, self.entries, st.consumer, 0)?;
            let flags = slot.load_u32(at + offset_of!(PacketDesc, flags))?;
            let desc = PacketDesc {
                buf: slot.load_u32(at + offset_of!(PacketDesc, buf))?,
                len: slot.load_u32(at + offset_of!(PacketDesc, len))?,
                wire_len: 0,
                // The low half of the word is `flags`, the high half `vlan_tci` (ignored).
                flags: (flags & 0xffff) as u16,
                vlan_tci: 0,
            };
            // The device's MTU is in the opaque `net_device`: frames are bounded by the buffer
            // here, and one longer than the device takes is its to drop (its own counters).
            let outcome = match pk::check_tx_desc(&desc, &self.geometry, u32::MAX) {
                Err(_) => None,
                Ok(frame) => Some((frame.len, self.send(frame.offset, frame.len))),
            };
            match outcome {
                None => st.counters.add(header, counter::TX_INVALID_DESC, 1),
                Some((len, Xmit::Sent)) => {
                    st.counters.add(header, counter::TX_PACKETS, 1);
                    st.counters.add(header, counter::TX_BYTES, u64::from(len));
                }
                Some((_, Xmit::Error | Xmit::NoDevice)) => {
                    st.counters.add(header, counter::TX_ERRORS, 1)
                }
            }
            // The copy is made: the slot (and its buffer) is the program's again.
            fence(Ordering::Release);
            st.consumer = st.consumer.wrapping_add(1);
            header.store_u32(CONSUMER_OFFSET as usize, st.consumer)?;
        }
        Ok(pending)
    }

    fn send(&self, offset: u64, len: u32) -> Xmit {
        let Ok(byte) = usize::try_from(offset) else {
            return Xmit::Error;
        };
        match self.pool.backing.page_ref(byte / PAGE_SIZE) {
            Some(PageRef::Shared(page)) => self.dev.xmit(TxSrc::Page(page, byte % PAGE_SIZE), len),
            Some(PageRef::Chunk(chunk, page_at)) => self
                .dev
                .xmit(TxSrc::Chunk(chunk, page_at + byte % PAGE_SIZE), len),
            None => Xmit::Error,
        }
    }
}

/// One `ATTACH`: rings bound to a device until `DETACH`, the file's release, or the device's
/// removal ends it.
#[pin_data]
pub struct Attachment {
    /// Its id in the file.
    pub id: u32,
    /// The device.
    pub dev: DevId,
    /// The RX ring's id in the file, if any.
    pub rx_ring: Option<u32>,
    /// The TX ring's id in the file, if any.
    pub tx_ring: Option<u32>,
    rx_path: Option<Arc<RxPath>>,
    tx: Option<Arc<TxPath>>,
    #[pin]
    rx: Mutex<Option<RxRegistration<RxPath>>>,
}

impl Attachment {
    /// Binds the paths to `dev` (under RTNL).
    ///
    /// # Errors
    /// `EBUSY` if the device has an RX handler already (when there is an RX path).
    pub fn new(
        rtnl: &Rtnl,
        dev: &crate::sys::netdev::NetDev<'_>,
        id: u32,
        rings: (Option<u32>, Option<u32>),
        rx_path: Option<Arc<RxPath>>,
        tx: Option<Arc<TxPath>>,
    ) -> Result<Arc<Self>> {
        let rx = match &rx_path {
            Some(path) => Some(RxRegistration::register(rtnl, dev, path.clone())?),
            None => None,
        };
        let made = Arc::pin_init(
            pin_init!(Self {
                id,
                dev: dev.id(),
                rx_ring: rings.0,
                tx_ring: rings.1,
                rx_path,
                tx,
                rx <- new_mutex!(None, "pktmap::packet::attachment"),
            }),
            GFP_KERNEL,
        );
        match made {
            Ok(a) => {
                *a.rx.lock() = rx;
                Ok(a)
            }
            Err(e) => {
                if let Some(r) = rx {
                    r.unregister(rtnl);
                }
                Err(e)
            }
        }
    }

    /// Ends it (under RTNL): no frame is written to its RX ring and nothing is sent after
    /// this returns. Idempotent.
    pub fn end(&self, rtnl: &Rtnl) {
        if let Some(r) = self.rx.lock().take() {
            r.unregister(rtnl);
        }
        if let Some(tx) = &self.tx {
            tx.stop(rtnl);
        }
    }

    /// Whether its RX ring holds frames for the program.
    pub fn readable(&self) -> bool {
        self.rx_path.as_ref().is_some_and(|p| p.readable())
    }

    /// `KICK`.
    ///
    /// # Errors
    /// `EINVAL` without a TX ring, `ENODEV` once the device is gone.
    pub fn kick(&self) -> Result<u32> {
        self.tx.as_ref().ok_or(EINVAL)?.kick()
    }
}

/// Every live attachment of the device, for the `NETDEV_UNREGISTER` notifier.
pub struct Attachments(KVec<Arc<Attachment>>);

impl Attachments {
    /// None yet.
    pub fn new() -> Self {
        Self(KVec::new())
    }

    /// Adds one.
    pub fn push(&mut self, a: Arc<Attachment>) -> Result {
        self.0.push(a, GFP_KERNEL)?;
        Ok(())
    }

    /// Removes `a`, if listed.
    pub fn remove(&mut self, a: &Arc<Attachment>) {
        self.0.retain(|x| !Arc::ptr_eq(x, a));
    }

    /// Ends and removes every attachment to `dev` (under RTNL).
    pub fn end_device(&mut self, rtnl: &Rtnl, dev: DevId) {
        for a in self.0.iter().filter(|a| a.dev == dev) {
            a.end(rtnl);
        }
        self.0.retain(|a| a.dev != dev);
    }
}

impl Default for Attachments {
    fn default() -> Self {
        Self::new()
    }
}
