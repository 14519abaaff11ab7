//! The TX side: [`TxRing`] and the batches of slots it reserves, [`TxBatch`].

use super::{PacketDesc, PacketRing, CONSUMER, PRODUCER};
use crate::{Error, Result};
use std::sync::atomic::Ordering;

/// A packet ring the driver sends from: the program reserves free slots, names a buffer and
/// a length in each, publishes them, and kicks; the driver releases each slot once it copied
/// the frame.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::{PacketRing, TxRing};
/// let mut tx = TxRing::new(PacketRing::in_memory(4, 1)?);
/// let mut batch = tx.reserve(8);
/// assert_eq!(batch.capacity(), 4); // only four slots
/// for buf in 0..4 {
///     batch.push(buf, 60)?;
/// }
/// assert_eq!(batch.send(), 4);
/// assert_eq!(tx.free(), 0);
/// tx.ring().peer().consume_tx(2)?; // the driver sends two
/// let mut done = Vec::new();
/// assert_eq!(tx.reclaim(&mut done), 2);
/// assert_eq!(done, [0, 1]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TxRing {
    ring: PacketRing,
    /// Slots up to here were handed back by [`reclaim`](Self::reclaim).
    reclaimed: u32,
}

impl TxRing {
    /// The TX side of `ring`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let tx = TxRing::new(PacketRing::in_memory(8, 1)?);
    /// assert_eq!(tx.free(), 8);
    /// # Ok(()) }
    /// ```
    pub fn new(ring: PacketRing) -> Self {
        let reclaimed = ring.word(CONSUMER).load(Ordering::Acquire);
        Self { ring, reclaimed }
    }

    /// The ring (its header, counters and, in memory, its driver's side).
    pub fn ring(&self) -> &PacketRing {
        &self.ring
    }

    /// Slots free for new frames: those the driver released and [`reclaim`](Self::reclaim)
    /// handed back (a released slot's buffer is the program's only once reclaimed).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(2, 1)?);
    /// let mut b = tx.reserve(1);
    /// b.push(0, 60)?;
    /// b.send();
    /// assert_eq!(tx.free(), 1);
    /// # Ok(()) }
    /// ```
    pub fn free(&self) -> u32 {
        let prod = self.ring.word(PRODUCER).load(Ordering::Relaxed);
        self.ring
            .entries()
            .saturating_sub(prod.wrapping_sub(self.reclaimed))
    }

    /// Reserves up to `n` free slots, to fill with [`TxBatch::push`] and publish with
    /// [`TxBatch::send`] (a batch dropped unsent publishes nothing).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(8, 1)?);
    /// let mut batch = tx.reserve(2);
    /// batch.push(3, 60)?;
    /// drop(batch); // not sent
    /// assert_eq!(tx.free(), 8);
    /// # Ok(()) }
    /// ```
    pub fn reserve(&mut self, n: u32) -> TxBatch<'_> {
        let start = self.ring.word(PRODUCER).load(Ordering::Relaxed);
        let cap = self.free().min(n);
        TxBatch {
            tx: self,
            start,
            cap,
            filled: 0,
        }
    }

    /// Appends to `out` the buffers of the slots the driver released since the last call,
    /// in order, and makes the slots free; returns how many.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(8, 1)?);
    /// let mut done = Vec::new();
    /// assert_eq!(tx.reclaim(&mut done), 0); // nothing sent yet
    /// # Ok(()) }
    /// ```
    pub fn reclaim(&mut self, out: &mut Vec<u32>) -> u32 {
        let cons = self.ring.word(CONSUMER).load(Ordering::Acquire);
        let prod = self.ring.word(PRODUCER).load(Ordering::Relaxed);
        let n = cons.wrapping_sub(self.reclaimed);
        // The driver's consumer never passes the producer; if it does, trust nothing.
        if n > prod.wrapping_sub(self.reclaimed) {
            return 0;
        }
        for i in 0..n {
            if let Ok(d) = self.ring.desc(self.reclaimed.wrapping_add(i)) {
                out.push(d.buf);
            }
        }
        self.reclaimed = cons;
        n
    }
}

/// Slots reserved by [`TxRing::reserve`]: filled in order, published by [`send`](Self::send).
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::{Buffers, PacketRing, TxRing};
/// let bufs = Buffers::in_memory(2048, 16)?;
/// let mut tx = TxRing::new(PacketRing::in_memory(8, 1)?);
/// let mut batch = tx.reserve(8);
/// for buf in 8..12 {
///     bufs.write(buf, 0, &[0xff; 60])?; // the frame's bytes, then its slot
///     batch.push(buf, 60)?;
/// }
/// assert_eq!(batch.send(), 4);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TxBatch<'a> {
    tx: &'a mut TxRing,
    start: u32,
    cap: u32,
    filled: u32,
}

impl TxBatch<'_> {
    /// Slots reserved.
    pub fn capacity(&self) -> u32 {
        self.cap
    }

    /// Slots filled so far.
    pub fn len(&self) -> u32 {
        self.filled
    }

    /// Whether no slot is filled yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Fills the next slot: the frame is `len` bytes at the start of buffer `buf`. The driver
    /// checks both when it sends (a bad one is counted in `tx_invalid_desc` and released
    /// unsent).
    ///
    /// # Errors
    /// `ENOSPC` when every reserved slot is filled.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(1, 1)?);
    /// let mut batch = tx.reserve(1);
    /// batch.push(0, 60)?;
    /// assert_eq!(batch.push(1, 60).unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    /// # Ok(()) }
    /// ```
    pub fn push(&mut self, buf: u32, len: u32) -> Result<()> {
        if self.filled == self.cap {
            return Err(Error::refused(
                libc::ENOSPC,
                format!("all {} reserved TX slots are filled", self.cap),
            ));
        }
        let d = PacketDesc {
            buf,
            len,
            ..PacketDesc::default()
        };
        self.tx
            .ring
            .set_desc(self.start.wrapping_add(self.filled), d)?;
        self.filled += 1;
        Ok(())
    }

    /// Publishes the filled slots (one release store of `producer`); returns how many. Then
    /// [`PacketPort::kick`](super::PacketPort::kick) tells the driver.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, TxRing};
    /// let mut tx = TxRing::new(PacketRing::in_memory(8, 1)?);
    /// assert_eq!(tx.reserve(8).send(), 0); // nothing filled, nothing published
    /// # Ok(()) }
    /// ```
    pub fn send(self) -> u32 {
        if self.filled > 0 {
            self.tx
                .ring
                .word(PRODUCER)
                .store(self.start.wrapping_add(self.filled), Ordering::Release);
        }
        self.filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_accounting_over_many_wraps() {
        let mut tx = TxRing::new(PacketRing::in_memory(8, 1).unwrap());
        let (mut sent, mut back) = (0u32, Vec::new());
        for round in 0..100u32 {
            let mut b = tx.reserve(5);
            for i in 0..b.capacity() {
                b.push(round * 8 + i, 60).unwrap();
            }
            sent += b.send();
            // The driver sends some, not always all.
            tx.ring().peer().consume_tx(round % 4 + 1).unwrap();
            tx.reclaim(&mut back);
        }
        tx.ring().peer().consume_tx(64).unwrap();
        tx.reclaim(&mut back);
        assert_eq!(back.len() as u32, sent);
        let c = tx.ring().counters();
        assert_eq!(c.tx_packets, u64::from(sent));
        assert_eq!(c.tx_released(), u64::from(sent));
        assert_eq!(tx.free(), 8);
        // Buffers come back in the order they were sent.
        let mut sorted = back.clone();
        sorted.sort_unstable();
        assert_eq!(back, sorted);
    }

    #[test]
    fn a_producer_too_far_ahead_is_refused_by_the_driver() {
        let tx = TxRing::new(PacketRing::in_memory(4, 1).unwrap());
        tx.ring().word(PRODUCER).store(9, Ordering::Relaxed);
        let e = tx.ring().peer().consume_tx(64).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(tx.ring().counters().tx_invalid_desc, 1);
    }
}
