//! The packet path's checks (driver/abi/src/packet.rs): `check_attach` (flags, rings, pool,
//! buffers against the rings' slots and the pool's chunks), the index checks `rx_space` and
//! `tx_pending`, a buffer index against the pool, `check_tx_desc` and `rx_desc`, each against a
//! model that shares no code with `pktmap_abi::packet`: the rules restated from the module's
//! docs. Whatever the program writes, the driver never gets an offset outside the pool, a copy
//! longer than a buffer, or more slots than the ring has.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 32 | an `Attach` (ifindex, pool_id, rx_ring, tx_ring, flags, id, reserved) |
//! | 1 | the table: bits 0..2 which of ring ids 1..=3 exist; bit 3 ring 1 is not a packet ring; bit 4 ring 2 is attached; bit 5 ring 3 has another pool; bit 6 the pool is write-combined; bit 7 pool 1 does not exist |
//! | 4 | log2 of each ring's entries (bytes 0, 1, 2: rings 1..3, modulo 16) and of the buffer size (byte 3, modulo 17) |
//! | 4 | the pool's buffer count |
//! | 1 | log2 of the pool's chunk pages (modulo 10) |
//! | 12 | producer, consumer, entries (an index check) |
//! | 16 | a descriptor (buf, len, wire_len, flags, vlan_tci) |
//! | 4 | the device's longest frame |
//! | 1 | bits for `rx_desc`: vlan, csum_partial, csum_valid, gso |
//! | 2 | a VLAN tag |
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktmap_abi::packet::{
    check_attach, check_tx_desc, desc_at, packet_ring_bytes, rx_desc, rx_space, tx_pending, Attach,
    AttachError, AttachRing, PacketDesc, PacketPool,
};
use pktmap_fuzz::Reader;

/// The attach rules, in the documented order.
fn model_attach(
    req: &Attach,
    rings: &[Option<AttachRing>; 4],
    pool: Option<PacketPool>,
) -> Result<(Option<u32>, Option<u32>, bool), AttachError> {
    if req.flags > 1 || req.reserved != 0 {
        return Err(AttachError::BadFlags);
    }
    if req.ifindex == 0 {
        return Err(AttachError::NoDevice);
    }
    let rx = (req.rx_ring != 0).then_some(req.rx_ring);
    let tx = (req.tx_ring != 0).then_some(req.tx_ring);
    if rx.is_none() && tx.is_none() {
        return Err(AttachError::NoRing);
    }
    if req.rx_ring != 0 && req.rx_ring == req.tx_ring {
        return Err(AttachError::SameRing);
    }
    let mut slots = 0u64;
    for id in [rx, tx].into_iter().flatten() {
        let Some(r) = usize::try_from(id).ok().and_then(|i| *rings.get(i)?) else {
            return Err(AttachError::UnknownRing);
        };
        if !r.packet {
            return Err(AttachError::NotPacketRing);
        }
        if r.pool_id != req.pool_id {
            return Err(AttachError::OtherPool);
        }
        if r.attached {
            return Err(AttachError::RingAttached);
        }
        slots += u64::from(r.entries);
    }
    let Some(p) = pool else {
        return Err(AttachError::UnknownPool);
    };
    if p.write_combined {
        return Err(AttachError::WriteCombined);
    }
    if u64::from(p.buf_size) > p.chunk_bytes {
        return Err(AttachError::Straddles);
    }
    if u64::from(p.buf_count) < slots {
        return Err(AttachError::PoolTooSmall);
    }
    Ok((rx, tx, req.flags == 1))
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let req = Attach {
        ifindex: r.u32(),
        pool_id: r.u32(),
        rx_ring: r.u32(),
        tx_ring: r.u32(),
        flags: r.u32(),
        id: r.u32(),
        reserved: r.u64(),
    };
    let table = r.u8();
    let logs: [u8; 4] = r.bytes();
    let buf_count = r.u32();
    let chunk_pages = 1u64 << (r.u8() % 10);
    let pool = PacketPool {
        buf_size: 1 << (logs[3] % 17),
        buf_count,
        chunk_bytes: chunk_pages * 4096,
        write_combined: table & 0x40 != 0,
    };
    let mut rings = [None; 4];
    for id in 1..=3usize {
        if table & (1 << (id - 1)) != 0 {
            rings[id] = Some(AttachRing {
                entries: 1 << (logs[id - 1] % 16),
                pool_id: if id == 3 && table & 0x20 != 0 { 2 } else { 1 },
                packet: !(id == 1 && table & 0x08 != 0),
                attached: id == 2 && table & 0x10 != 0,
            });
        }
    }
    let pool_of = |id: u32| (id == 1 && table & 0x80 == 0).then_some(pool);
    let got = check_attach(
        &req,
        |id| usize::try_from(id).ok().and_then(|i| *rings.get(i)?),
        pool_of,
    );
    let want = model_attach(&req, &rings, pool_of(req.pool_id));
    match (got, want) {
        (Ok(plan), Ok((rx, tx, mirror))) => {
            assert_eq!((plan.rx, plan.tx, plan.mirror), (rx, tx, mirror));
            assert_eq!((plan.ifindex, plan.pool), (req.ifindex, pool));
        }
        (Err(e), Err(m)) => {
            assert_eq!(e, m, "{req:?}");
            assert!(matches!(e.errno(), 16 | 19 | 22));
        }
        (got, want) => panic!("check_attach({req:?}) = {got:?}, model {want:?}"),
    }

    // The indices the program writes.
    let (producer, consumer, entries) = (r.u32(), r.u32(), r.u32());
    let used = u64::from(producer.wrapping_sub(consumer));
    match rx_space(producer, consumer, entries) {
        Ok(space) => assert_eq!(u64::from(space) + used, u64::from(entries)),
        Err(_) => assert!(used > u64::from(entries)),
    }
    match tx_pending(producer, consumer, entries) {
        Ok(pending) => {
            assert!(pending <= entries);
            assert_eq!(u64::from(pending), used);
        }
        Err(_) => assert!(used > u64::from(entries)),
    }
    let ring_entries = 1u32 << (entries % 16);
    assert!(desc_at(ring_entries, producer) + 16 <= packet_ring_bytes(ring_entries));

    // A descriptor the program wrote.
    let desc = PacketDesc {
        buf: r.u32(),
        len: r.u32(),
        wire_len: r.u32(),
        flags: u16::from_le_bytes(r.bytes()),
        vlan_tci: u16::from_le_bytes(r.bytes()),
    };
    let max_len = r.u32();
    match pool.buffer(desc.buf) {
        Ok(offset) => {
            assert!(desc.buf < pool.buf_count);
            assert_eq!(offset, u64::from(desc.buf) * u64::from(pool.buf_size));
        }
        Err(_) => assert!(desc.buf >= pool.buf_count),
    }
    let valid = desc.flags == 0
        && (14..=pool.buf_size.min(max_len)).contains(&desc.len)
        && desc.buf < pool.buf_count;
    match check_tx_desc(&desc, &pool, max_len) {
        Ok(frame) => {
            assert!(valid, "{desc:?} accepted");
            // The frame lies inside its buffer, inside the pool.
            assert_eq!(frame.len, desc.len);
            assert_eq!(frame.offset % u64::from(pool.buf_size), 0);
            assert!(
                frame.offset + u64::from(frame.len)
                    <= u64::from(pool.buf_count) * u64::from(pool.buf_size)
            );
        }
        Err(_) => assert!(!valid, "{desc:?} refused"),
    }

    // What RX writes for a frame of `desc.len` bytes.
    let bits = r.u8();
    let tci = u16::from_le_bytes(r.bytes());
    let vlan = (bits & 1 != 0).then_some(tci);
    let d = rx_desc(
        desc.buf,
        desc.len,
        pool.buf_size,
        vlan,
        bits & 2 != 0,
        bits & 4 != 0,
        bits & 8 != 0,
    );
    assert_eq!((d.buf, d.wire_len), (desc.buf, desc.len));
    assert_eq!(d.len, desc.len.min(pool.buf_size));
    let want_flags = u16::from(desc.len > pool.buf_size)
        | u16::from(vlan.is_some()) << 1
        | u16::from(bits & 2 != 0) << 2
        | u16::from(bits & 4 != 0) << 3
        | u16::from(bits & 8 != 0) << 4;
    assert_eq!(d.flags, want_flags);
    assert_eq!(d.vlan_tci, vlan.unwrap_or(0));
});
