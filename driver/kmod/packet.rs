// SPDX-License-Identifier: GPL-2.0

//! Packet rings (`abi::packet`): the layout a `RING_PACKET` ring starts with.
#![forbid(unsafe_code)]

use crate::abi::packet::{desc_at, PacketDesc, PacketRingHeader};
use crate::resource::Resource;
use core::mem::offset_of;
use kernel::{page::PAGE_SIZE, prelude::*};

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
        let (page, offset) = desc_page(desc_at(entries, i))?;
        ring.backing
            .page(page)
            .ok_or(EINVAL)?
            .store_u32(offset + offset_of!(PacketDesc, buf), i)?;
    }
    Ok(())
}

/// The page index and the byte offset in it of a ring byte offset.
fn desc_page(offset: u64) -> Result<(usize, usize)> {
    let offset = usize::try_from(offset).map_err(|_| EINVAL)?;
    Ok((offset / PAGE_SIZE, offset % PAGE_SIZE))
}
