//! The RX side: [`RxRing`] and the batches of received frames it lends, [`RxBatch`].

use super::{PacketDesc, PacketRing, CONSUMER, PRODUCER, WAKEUP};
use crate::{Error, Result};
use std::sync::atomic::{fence, Ordering};

/// A packet ring the driver receives into: frames come out in batches of slots, which go back
/// to the driver when the batch is dropped.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::{PacketRing, RxRing};
/// let mut rx = RxRing::new(PacketRing::in_memory(64, 1)?);
/// for _ in 0..3 {
///     rx.ring().peer().deliver(60, 0);
/// }
/// let mut seen = 0;
/// while !rx.recv(2).is_empty() {
///     seen += 1; // batches of 2, then 1
/// }
/// assert_eq!(seen, 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RxRing {
    ring: PacketRing,
}

impl RxRing {
    /// The RX side of `ring`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// assert_eq!(rx.available(), 0);
    /// # Ok(()) }
    /// ```
    pub fn new(ring: PacketRing) -> Self {
        Self { ring }
    }

    /// The ring (its header, counters and, in memory, its driver's side).
    pub fn ring(&self) -> &PacketRing {
        &self.ring
    }

    /// Frames waiting: the driver's `producer` (acquire) less the program's `consumer`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// rx.ring().peer().deliver(60, 0);
    /// assert_eq!(rx.available(), 1);
    /// # Ok(()) }
    /// ```
    pub fn available(&self) -> u32 {
        let cons = self.ring.word(CONSUMER).load(Ordering::Relaxed);
        let prod = self.ring.word(PRODUCER).load(Ordering::Acquire);
        // The driver never runs more than `entries` ahead; a larger gap is a broken ring,
        // of which nothing is handed out.
        match prod.wrapping_sub(cons) {
            n if n <= self.ring.entries() => n,
            _ => 0,
        }
    }

    /// Lends up to `max` received frames, in order. Their slots are the program's until the
    /// batch is dropped (or [`released`](RxBatch::release)), which stores `consumer` once for
    /// the whole batch. An empty batch costs two loads and no system call.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// assert!(rx.recv(64).is_empty());
    /// rx.ring().peer().deliver(42, 0);
    /// let batch = rx.recv(64);
    /// assert_eq!(batch.desc(0)?.len, 42);
    /// # Ok(()) }
    /// ```
    pub fn recv(&mut self, max: u32) -> RxBatch<'_> {
        let start = self.ring.word(CONSUMER).load(Ordering::Relaxed);
        let len = self.available().min(max);
        RxBatch {
            rx: self,
            start,
            len,
        }
    }

    /// Asks the driver for a wakeup and says whether to sleep: stores 1 in the need-wakeup
    /// word, then looks at `producer` once more (a frame may have landed in between, with no
    /// wakeup to come for it). `true`: nothing arrived, `poll(2)` the device file
    /// ([`PacketPort::wait`](super::PacketPort::wait)); the driver wakes the program after its
    /// next frame and clears the word. `false`: frames are waiting (the word is cleared again).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// assert!(rx.prepare_to_sleep()); // empty: sleep
    /// assert!(rx.needs_wakeup());
    /// rx.ring().peer().deliver(60, 0); // the driver's wakeup clears the request
    /// assert!(!rx.needs_wakeup());
    /// assert!(!rx.prepare_to_sleep()); // a frame is waiting: do not sleep
    /// # Ok(()) }
    /// ```
    pub fn prepare_to_sleep(&self) -> bool {
        self.ring.word(WAKEUP).store(1, Ordering::Relaxed);
        // The store must be visible before the producer is read again, or the driver could
        // publish a frame, see no request, and the program sleep on it.
        fence(Ordering::SeqCst);
        if self.available() == 0 {
            return true;
        }
        self.ring.word(WAKEUP).store(0, Ordering::Relaxed);
        false
    }

    /// Whether a wakeup request is pending (set by [`prepare_to_sleep`](Self::prepare_to_sleep),
    /// cleared by the driver's wakeup).
    pub fn needs_wakeup(&self) -> bool {
        self.ring.word(WAKEUP).load(Ordering::Acquire) != 0
    }
}

/// Received frames lent by [`RxRing::recv`]: slots `start..start + len` of the ring, the
/// program's until the batch is dropped.
///
/// # Examples
/// ```
/// # fn main() -> pktmap::Result<()> {
/// use pktmap::packet::{Buffers, PacketRing, RxRing};
/// let bufs = Buffers::in_memory(2048, 8)?;
/// let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
/// bufs.write(0, 0, b"\x02\x00\x00\x00\x00\x01")?; // the driver copies the frame in
/// rx.ring().peer().deliver(60, 0);
/// let batch = rx.recv(64);
/// for d in batch.iter() {
///     let mut dst = [0; 6];
///     bufs.read(d.buf, 0, &mut dst)?;
///     assert_eq!(dst[5], 1);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RxBatch<'a> {
    rx: &'a mut RxRing,
    start: u32,
    len: u32,
}

impl RxBatch<'_> {
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn index(&self, i: usize) -> Result<u32> {
        match u32::try_from(i) {
            Ok(i) if i < self.len => Ok(self.start.wrapping_add(i)),
            _ => Err(Error::invalid(format!(
                "frame {i} of a batch of {}",
                self.len
            ))),
        }
    }

    /// The descriptor of frame `i`: its buffer, length, wire length, flags and VLAN tag.
    ///
    /// # Errors
    /// `EINVAL` for `i` past the batch.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing, DESC_TRUNCATED};
    /// let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// rx.ring().peer().deliver(2048, DESC_TRUNCATED);
    /// let batch = rx.recv(8);
    /// assert_ne!(batch.desc(0)?.flags & DESC_TRUNCATED, 0);
    /// assert!(batch.desc(1).is_err());
    /// # Ok(()) }
    /// ```
    pub fn desc(&self, i: usize) -> Result<PacketDesc> {
        self.rx.ring.desc(self.index(i)?)
    }

    /// The descriptors, in order.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// rx.ring().peer().deliver(60, 0);
    /// rx.ring().peer().deliver(70, 0);
    /// let total: u32 = rx.recv(8).iter().map(|d| d.len).sum();
    /// assert_eq!(total, 130);
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = PacketDesc> + '_ {
        (0..self.len()).filter_map(|i| self.desc(i).ok())
    }

    /// Leaves buffer `buf` (a free buffer of the pool, the program's) in frame `i`'s slot for
    /// the driver to receive into next, and returns the frame's buffer, which is now the
    /// program's: to send it on without a copy, or to keep it.
    ///
    /// The driver checks the index when it next uses the slot; one outside the pool is
    /// counted in `rx_invalid_desc` and that slot receives nothing.
    ///
    /// # Errors
    /// `EINVAL` for `i` past the batch.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let mut rx = RxRing::new(PacketRing::in_memory(4, 1)?); // slots own buffers 0..4
    /// rx.ring().peer().deliver(60, 0);
    /// let mut batch = rx.recv(4);
    /// let frame = batch.swap(0, 9)?; // buffer 9 was the program's
    /// assert_eq!(frame, 0);
    /// drop(batch);
    /// assert_eq!(rx.ring().desc(0)?.buf, 9); // the slot receives into 9 next
    /// # Ok(()) }
    /// ```
    pub fn swap(&mut self, i: usize, buf: u32) -> Result<u32> {
        let index = self.index(i)?;
        let mut d = self.rx.ring.desc(index)?;
        let old = d.buf;
        d.buf = buf;
        self.rx.ring.set_desc(index, d)?;
        Ok(old)
    }

    /// Gives the slots back to the driver (what dropping the batch does).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> pktmap::Result<()> {
    /// use pktmap::packet::{PacketRing, RxRing};
    /// let mut rx = RxRing::new(PacketRing::in_memory(8, 1)?);
    /// rx.ring().peer().deliver(60, 0);
    /// rx.recv(8).release();
    /// assert_eq!(rx.available(), 0);
    /// # Ok(()) }
    /// ```
    pub fn release(self) {}
}

impl Drop for RxBatch<'_> {
    fn drop(&mut self) {
        if self.len > 0 {
            // Release: the reads of the slots (and any swap) happen before the driver may
            // reuse them.
            self.rx
                .ring
                .word(CONSUMER)
                .store(self.start.wrapping_add(self.len), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_wrap_around_u32() {
        let ring = PacketRing::in_memory(4, 1).unwrap();
        // Start both indices just below the wrap.
        ring.word(PRODUCER).store(u32::MAX - 1, Ordering::Relaxed);
        ring.word(CONSUMER).store(u32::MAX - 1, Ordering::Relaxed);
        let mut rx = RxRing::new(ring);
        let mut total = 0;
        for round in 0..5u32 {
            for _ in 0..3 {
                assert!(rx.ring().peer().deliver(60 + round, 0));
            }
            let batch = rx.recv(8);
            assert_eq!(batch.len(), 3);
            assert!(batch.iter().all(|d| d.len == 60 + round));
            total += batch.len();
        }
        assert_eq!(total, 15);
        assert_eq!(rx.ring().counters().rx_packets, 15);
        assert_eq!(rx.ring().word(CONSUMER).load(Ordering::Relaxed), 13);
    }

    #[test]
    fn a_full_ring_drops_and_counts_and_recovers() {
        let mut rx = RxRing::new(PacketRing::in_memory(2, 1).unwrap());
        let peer_delivers = |rx: &RxRing| rx.ring().peer().deliver(60, 0);
        assert!(peer_delivers(&rx) && peer_delivers(&rx) && !peer_delivers(&rx));
        {
            let batch = rx.recv(1);
            assert_eq!(batch.len(), 1);
        }
        assert!(peer_delivers(&rx));
        assert_eq!(rx.recv(8).len(), 2);
        let c = rx.ring().counters();
        assert_eq!((c.rx_packets, c.rx_ring_full), (3, 1));
    }

    #[test]
    fn a_broken_producer_hands_out_nothing() {
        let mut rx = RxRing::new(PacketRing::in_memory(4, 1).unwrap());
        rx.ring().word(PRODUCER).store(100, Ordering::Relaxed);
        assert!(rx.recv(64).is_empty());
        assert_eq!(rx.ring().word(CONSUMER).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn swapped_buffers_stay_with_their_slots() {
        let mut rx = RxRing::new(PacketRing::in_memory(4, 1).unwrap());
        let mut spare = 4..8u32;
        let mut got = Vec::new();
        for _ in 0..3 {
            for _ in 0..4 {
                assert!(rx.ring().peer().deliver(60, 0));
            }
            let mut batch = rx.recv(4);
            for i in 0..batch.len() {
                if let Some(b) = spare.next() {
                    got.push(batch.swap(i, b).unwrap());
                }
            }
        }
        // The first four frames came in buffers 0..4, swapped for 4..8; the rest in 4..8.
        assert_eq!(got, [0, 1, 2, 3]);
        let bufs: Vec<u32> = (0..4).map(|i| rx.ring().desc(i).unwrap().buf).collect();
        assert_eq!(bufs, [4, 5, 6, 7]);
        assert!(rx.recv(4).swap(0, 1).is_err(), "swap past an empty batch");
    }
}
