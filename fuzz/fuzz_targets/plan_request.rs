//! The driver's request validation against an arbitrary resource table: `plan_mmap`,
//! `check_pool` and `check_ring` are each compared with a model that shares no code with
//! `pktmap_abi::plan` and restates the rules of driver/abi/src/plan.rs's table and
//! driver/kmod/README.md's promises; a pool or ring that `check_*` accepts must then map in
//! full and refuse one byte more.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | mmap mode: bit 0 write; bits 1..3 pgoff source (0 raw, 1 `(id << 3 \| type)` from the value, 2 a table entry's `(type, id)` picked by the value, 3 as 2 with bits 32..64 of the value xored into the page offset); bits 4..7 the type for source 1; bit 7 sets the populate bit (`MMAP_POPULATE`, page offset bit 50) |
//! | 8 | value (`u64`) |
//! | 8 | len (`u64`) |
//! | 12 | `PoolCreate` `buf_size`, `buf_count`, `flags` (`u32` each; its other fields 0) |
//! | 13 | `RingCreate` `entries`, `pool_id`, `flags` (`u32` each), then `pool_exists` (`u8`, bit 0) |
//! | 1 | number of table entries, modulo 9 |
//! | 13 each | entry: tag (`u8`: bits 0..2 map type, bits 2..4 kind 0 STATE / 1 POOL / 2 RING / 3 POOL), id (`u32`), pages (`u64`) |
//! | 1 | mmap mode, more: bit 0 `MAP_SHARED`, bit 1 `PROT_EXEC` |
//!
//! The lookup hands back the index of the entry it found, which the plan must carry through
//! as its `target` (`plan_mmap` is generic over that payload).
//!
//! The table is searched first match first, as a driver's lookup would be; it may list kinds
//! under the wrong type, unknown types, duplicates and absurd sizes on purpose.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use pktmap_abi::codec::{DecodeError, PKTMAP};
use pktmap_abi::ioctl::{PoolCreate, RingCreate};
use pktmap_abi::plan::{
    check_pool, check_ring, errno, pages_for, plan_mmap, MmapRequest, Plan, PlanError, Resource,
    MMAP_POPULATE,
};
use pktmap_fuzz::{model_pool, pages_ceil, Reader};

/// README.md's map types ("The offset is the contract"), restated rather than imported: STATE 0, POOL 1, RING 2.
const POOL: u32 = 1;
const RING: u32 = 2;

/// One row of the driver's resource table.
#[derive(Clone, Copy, Debug)]
struct Entry {
    map_type: u32,
    id: u32,
    resource: Resource,
}

fn lookup(table: &[Entry], map_type: u32, id: u32) -> Option<(Resource, usize)> {
    table
        .iter()
        .position(|e| e.map_type == map_type && e.id == id)
        .map(|i| (table[i].resource, i))
}

/// plan.rs's `mmap` rules (driver/abi/src/plan.rs's table), in the order the errors are reported: decode, lookup, kind, zero
/// length, too long, read only, exec; then which `VM_MAY*` bits go.
fn model_plan(req: &MmapRequest, table: &[Entry]) -> Result<Plan<usize>, PlanError> {
    // The populate bit (byte offset bit 62) is the request's, not the name's: taken off first.
    let populate = req.pgoff & 1 << 50 != 0;
    let pgoff = req.pgoff & !(1 << 50);
    // Strict decode of vm_pgoff with PKTMAP: the byte offset must fit in 64 bits, and only
    // bits 12..47 (type 12..15, id 15..47) may be set; types are STATE 0, POOL 1, RING 2.
    if pgoff >= 1 << 52 {
        return Err(PlanError::Decode(DecodeError::StrayBits));
    }
    let offset = pgoff * 4096;
    if offset & !0x7fff_ffff_f000 != 0 {
        return Err(PlanError::Decode(DecodeError::StrayBits));
    }
    let map_type = ((offset >> 12) & 7) as u32;
    if map_type > 2 {
        return Err(PlanError::Decode(DecodeError::UnknownType));
    }
    let id = (offset >> 15) as u32;
    let (resource, index) = lookup(table, map_type, id).ok_or(PlanError::UnknownResource)?;
    let (resource_pages, read_only) = match (map_type, resource) {
        (0, Resource::State) => (1, true),
        (POOL, Resource::Pool { pages }) => (pages, false),
        (RING, Resource::Ring { pages }) => (pages, false),
        // A table that files a resource under the wrong type is refused, not trusted.
        _ => return Err(PlanError::UnknownResource),
    };
    if req.len == 0 {
        return Err(PlanError::ZeroLength);
    }
    // The page-rounded length must exceed neither the resource nor what a byte length can
    // express (the kernel never hands over a length within a page of 2^64).
    let pages = pages_ceil(req.len);
    if pages > u128::from(resource_pages) || pages * 4096 > u128::from(u64::MAX) {
        return Err(PlanError::TooLong);
    }
    if read_only && req.write {
        return Err(PlanError::ReadOnly);
    }
    // Resources hold data, never code.
    if req.exec {
        return Err(PlanError::Exec);
    }
    Ok(Plan {
        map_type,
        id,
        resource,
        pages: pages as u64,
        pgoff,
        populate,
        read_only,
        // Read-only everywhere: STATE always, and any shared mapping made without write; a
        // private mapping may still copy on write.
        clear_maywrite: read_only || (req.shared && !req.write),
        clear_mayexec: true,
        target: index,
    })
}

/// `RING_CREATE`'s rules: entries a power of two in 1..=32768, flags 0 or 1 (`RING_PACKET`),
/// and the pool must exist; the ring is a 64-byte header then 8 bytes per entry (flags 0), or
/// a 4096-byte header page then 16 bytes per entry (the packet layout), in whole pages.
fn model_ring(req: &RingCreate, pool_exists: bool) -> Result<u64, PlanError> {
    let entries_ok = (0..=15).any(|k| req.entries == 1 << k);
    if !entries_ok || req.flags > 1 || !pool_exists {
        return Err(PlanError::BadArgument);
    }
    let bytes = match req.flags {
        0 => 64 + 8 * u64::from(req.entries),
        _ => 4096 + 16 * u64::from(req.entries),
    };
    Ok(pages_ceil(bytes) as u64)
}

/// Runs `plan_mmap` with a lookup that records how it was called, and checks it against the
/// model, the errno mapping, and the lookup discipline (only after a good decode, with the
/// decoded type and id).
fn check_plan(req: &MmapRequest, table: &[Entry]) -> Result<Plan<usize>, PlanError> {
    let asked: Cell<Option<(u32, u32)>> = Cell::new(None);
    let got = plan_mmap(req, |t, id| {
        asked.set(Some((t, id)));
        lookup(table, t, id)
    });
    let want = model_plan(req, table);
    assert_eq!(got, want, "plan_mmap({req:?}) with table {table:?}");
    match (want, asked.get()) {
        (Err(PlanError::Decode(_)), None) => {}
        (Err(PlanError::Decode(e)), Some(a)) => panic!("looked up {a:?} after decode error {e:?}"),
        (_, None) => panic!("plan_mmap({req:?}) decided without looking up the resource"),
        (_, Some((t, id))) => {
            // The offset names the resource without the populate bit, a request of its own.
            assert_eq!(
                PKTMAP.decode_pgoff(req.pgoff & !(MMAP_POPULATE >> 12)),
                Ok((t, u64::from(id))),
                "looked up the wrong resource"
            );
        }
    }
    if let Err(e) = got {
        let want_errno = match e {
            PlanError::ReadOnly | PlanError::Exec => errno::EPERM,
            _ => errno::EINVAL,
        };
        assert_eq!(e.errno(), want_errno, "{e:?}");
        assert!(!e.to_string().is_empty());
    }
    got
}

/// A resource that `check_pool` or `check_ring` accepted maps in full, and not one byte more.
fn check_maps_in_full(map_type: u32, resource: Resource) {
    let pgoff = 1 << 3 | u64::from(map_type);
    let table = [Entry {
        map_type,
        id: 1,
        resource,
    }];
    let bytes = resource.pages() * 4096;
    let full = MmapRequest {
        pgoff,
        len: bytes,
        write: true,
        shared: true,
        exec: false,
    };
    let plan = check_plan(&full, &table).expect("a whole new resource maps");
    assert_eq!(plan.pages, resource.pages());
    let over = MmapRequest {
        len: bytes + 1,
        ..full
    };
    assert_eq!(check_plan(&over, &table), Err(PlanError::TooLong));
}

fn read_entry(r: &mut Reader<'_>) -> Entry {
    let tag = r.u8();
    let id = r.u32();
    let pages = r.u64();
    let resource = match (tag >> 2) & 3 {
        0 => Resource::State,
        2 => Resource::Ring { pages },
        _ => Resource::Pool { pages },
    };
    Entry {
        map_type: u32::from(tag & 3),
        id,
        resource,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.u8();
    let value = r.u64();
    let len = r.u64();
    let pool = PoolCreate {
        buf_size: r.u32(),
        buf_count: r.u32(),
        flags: r.u32(),
        // The fields added with contiguous and 2 MiB pools are fuzzed by `pool_request`.
        ..PoolCreate::default()
    };
    let ring = RingCreate {
        entries: r.u32(),
        pool_id: r.u32(),
        flags: r.u32(),
        id: 0,
    };
    let pool_exists = r.u8() & 1 != 0;
    let count = usize::from(r.u8() % 9);
    let table: Vec<Entry> = (0..count).map(|_| read_entry(&mut r)).collect();

    // The mmap request.
    let picked = table.get(usize::try_from(value % 9).expect("small"));
    let pgoff = match ((mode >> 1) & 3, picked) {
        (1, _) => (value & 0xffff_ffff) << 3 | u64::from((mode >> 4) & 7),
        (2, Some(e)) => u64::from(e.id) << 3 | u64::from(e.map_type),
        (3, Some(e)) => (u64::from(e.id) << 3 | u64::from(e.map_type)) ^ (value >> 32),
        _ => value,
    };
    let more = r.u8();
    let pgoff = if mode & 0x80 != 0 {
        pgoff | 1 << 50
    } else {
        pgoff
    };
    let req = MmapRequest {
        pgoff,
        len,
        write: mode & 1 != 0,
        shared: more & 1 != 0,
        exec: more & 2 != 0,
    };
    let _ = check_plan(&req, &table);

    let want_pages = (len <= u64::MAX - 4095).then(|| pages_ceil(len) as u64);
    assert_eq!(pages_for(len), want_pages, "pages_for({len:#x})");

    // POOL_CREATE, then the pool it describes.
    let got = check_pool(&pool);
    assert_eq!(got, model_pool(&pool), "check_pool({pool:?})");
    if let Ok(g) = got {
        check_maps_in_full(POOL, Resource::Pool { pages: g.pages });
    }

    // RING_CREATE, then the ring it describes.
    let asked = Cell::new(None);
    let got = check_ring(&ring, |id| {
        asked.set(Some(id));
        pool_exists
    });
    assert_eq!(
        got,
        model_ring(&ring, pool_exists),
        "check_ring({ring:?}), pool exists: {pool_exists}"
    );
    if let Some(id) = asked.get() {
        assert_eq!(id, ring.pool_id, "check_ring asked about the wrong pool");
    }
    if let Ok(pages) = got {
        assert_eq!(
            asked.get(),
            Some(ring.pool_id),
            "ring accepted unchecked pool"
        );
        check_maps_in_full(RING, Resource::Ring { pages });
    }
});
