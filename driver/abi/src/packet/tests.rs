// SPDX-License-Identifier: MIT OR Apache-2.0
//! Unit tests of the packet contract: the attach admission, the ring's index and descriptor checks.

use super::*;

const POOL: PacketPool = PacketPool {
    buf_size: 2048,
    buf_count: 256,
    chunk_bytes: 4096,
    write_combined: false,
};

fn ring(id: u32) -> Option<AttachRing> {
    match id {
        1 | 2 => Some(AttachRing {
            entries: 128,
            pool_id: 1,
            packet: true,
            attached: false,
        }),
        3 => Some(AttachRing {
            entries: 128,
            pool_id: 1,
            packet: false,
            attached: false,
        }),
        4 => Some(AttachRing {
            entries: 128,
            pool_id: 2,
            packet: true,
            attached: false,
        }),
        5 => Some(AttachRing {
            entries: 128,
            pool_id: 1,
            packet: true,
            attached: true,
        }),
        6 => Some(AttachRing {
            entries: 256,
            pool_id: 1,
            packet: true,
            attached: false,
        }),
        _ => None,
    }
}

fn attach(rx_ring: u32, tx_ring: u32) -> Attach {
    Attach {
        ifindex: 2,
        pool_id: 1,
        rx_ring,
        tx_ring,
        ..Default::default()
    }
}

fn check(req: &Attach, pool: PacketPool) -> Result<AttachPlan, AttachError> {
    check_attach(req, ring, |id| (id == 1).then_some(pool))
}

#[test]
fn layout_is_the_abi() {
    assert_eq!(size_of::<Attach>(), 32);
    assert_eq!(size_of::<PacketDesc>(), 16);
    assert_eq!(size_of::<PacketRingHeader>(), 48);
    assert!(size_of::<PacketRingHeader>() as u64 <= PRODUCER_OFFSET);
    // One cache line per index word; counters after them, all in the header page.
    for (a, b) in [
        (PRODUCER_OFFSET, CONSUMER_OFFSET),
        (CONSUMER_OFFSET, WAKEUP_OFFSET),
        (WAKEUP_OFFSET, COUNTERS_OFFSET),
    ] {
        assert_eq!(b - a, 64);
    }
    assert!(COUNTERS_OFFSET + 8 * u64::from(COUNTER_WORDS) <= DESC_OFFSET);
    const { assert!(counter::COUNT <= COUNTER_WORDS) };
    assert_eq!(DESC_OFFSET % PAGE_SIZE, 0);
    // Descriptors never straddle a page.
    assert_eq!(PAGE_SIZE % u64::from(DESC_SIZE), 0);
    assert_eq!(packet_ring_bytes(MAX_RING_ENTRIES), 4096 + 32768 * 16);
}

#[test]
fn ioctl_numbers() {
    assert_eq!(ATTACH, 0xc020_5009);
    assert_eq!(DETACH, 0x4004_500a);
    assert_eq!(KICK, 0x4004_500b);
    assert_eq!(PACKET_RING_MAGIC.to_le_bytes(), *b"pkRg");
}

#[test]
fn indices_are_bounded() {
    assert_eq!(rx_space(0, 0, 8), Ok(8));
    assert_eq!(rx_space(7, 0, 8), Ok(1));
    assert_eq!(rx_space(8, 0, 8), Ok(0));
    assert_eq!(rx_space(9, 0, 8), Err(IndexError::Invalid));
    assert_eq!(rx_space(0, 1, 8), Err(IndexError::Invalid));
    assert_eq!(rx_space(2, u32::MAX - 5, 8), Ok(0));
    assert_eq!(tx_pending(0, 0, 8), Ok(0));
    assert_eq!(tx_pending(u32::MAX, u32::MAX - 8, 8), Ok(8));
    assert_eq!(tx_pending(4, 5, 8), Err(IndexError::Invalid));
    for entries in [1, 2, 4096] {
        assert_eq!(desc_at(entries, entries), DESC_OFFSET);
        assert!(desc_at(entries, u32::MAX) < packet_ring_bytes(entries));
    }
}

#[test]
fn descriptors() {
    assert_eq!(POOL.buffer(255), Ok(255 * 2048));
    assert_eq!(POOL.buffer(256), Err(IndexError::Invalid));
    let d = |buf, len, flags| PacketDesc {
        buf,
        len,
        flags,
        ..Default::default()
    };
    assert!(check_tx_desc(&d(0, 14, 0), &POOL, 1514).is_ok());
    assert!(check_tx_desc(&d(0, 13, 0), &POOL, 1514).is_err());
    assert!(check_tx_desc(&d(0, 2048, 0), &POOL, 9000).is_ok());
    assert!(check_tx_desc(&d(0, 2049, 0), &POOL, 9000).is_err());
    assert!(check_tx_desc(&d(256, 60, 0), &POOL, 1514).is_err());
    assert!(check_tx_desc(&d(0, 60, DESC_VLAN), &POOL, 1514).is_err());
    // Fields TX ignores.
    let ignored = PacketDesc {
        wire_len: 9,
        vlan_tci: 7,
        ..d(1, 60, 0)
    };
    assert_eq!(
        check_tx_desc(&ignored, &POOL, 1514),
        Ok(TxFrame {
            offset: 2048,
            len: 60
        })
    );
    let rx = rx_desc(9, 1514, 2048, Some(0x2064), true, false, false);
    assert_eq!(
        rx,
        PacketDesc {
            buf: 9,
            len: 1514,
            wire_len: 1514,
            flags: DESC_VLAN | DESC_CSUM_PARTIAL,
            vlan_tci: 0x2064
        }
    );
    assert_eq!(
        rx_desc(0, 0, 256, None, false, true, false).flags,
        DESC_CSUM_VALID
    );
}

#[test]
fn attach_admission() {
    assert!(check(&attach(1, 0), POOL).is_ok());
    assert!(check(&attach(0, 2), POOL).is_ok());
    let both = check(&attach(1, 2), POOL).unwrap();
    assert_eq!((both.rx, both.tx, both.mirror), (Some(1), Some(2), false));
    let mirror = Attach {
        flags: ATTACH_MIRROR,
        ..attach(1, 0)
    };
    assert!(check(&mirror, POOL).unwrap().mirror);
    for (req, err) in [
        (
            Attach {
                flags: 2,
                ..attach(1, 0)
            },
            AttachError::BadFlags,
        ),
        (
            Attach {
                reserved: 1,
                ..attach(1, 0)
            },
            AttachError::BadFlags,
        ),
        (
            Attach {
                ifindex: 0,
                ..attach(1, 0)
            },
            AttachError::NoDevice,
        ),
        (attach(0, 0), AttachError::NoRing),
        (attach(1, 1), AttachError::SameRing),
        (attach(9, 0), AttachError::UnknownRing),
        (attach(1, 9), AttachError::UnknownRing),
        (attach(3, 0), AttachError::NotPacketRing),
        (attach(4, 0), AttachError::OtherPool),
        (attach(5, 0), AttachError::RingAttached),
        (attach(0, 5), AttachError::RingAttached),
        (
            Attach {
                pool_id: 2,
                ..attach(4, 0)
            },
            AttachError::UnknownPool,
        ),
        (attach(6, 2), AttachError::PoolTooSmall),
    ] {
        assert_eq!(check(&req, POOL), Err(err), "{req:?}");
    }
    assert_eq!(check(&attach(6, 0), POOL).map(|p| p.rx), Ok(Some(6)));
    let big = PacketPool {
        buf_size: 8192,
        ..POOL
    };
    assert_eq!(check(&attach(1, 0), big), Err(AttachError::Straddles));
    let contig = PacketPool {
        chunk_bytes: 1 << 20,
        ..big
    };
    assert!(check(&attach(1, 0), contig).is_ok());
    let wc = PacketPool {
        write_combined: true,
        ..POOL
    };
    assert_eq!(check(&attach(1, 0), wc), Err(AttachError::WriteCombined));
    assert_eq!(AttachError::NoDevice.errno(), 19);
    assert_eq!(AttachError::BadFlags.errno(), 22);
}
