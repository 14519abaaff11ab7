//! `pread`/`pwrite` (and `read`/`write` at the file position) admission: `plan_io` against an
//! arbitrary resource table, compared with a model of the driver README's rules that shares no
//! code with `pktmap_abi::plan`: the position must be exactly a resource's `mmap` offset
//! (non-negative, page aligned, strictly decoded), a write to STATE is `EPERM`, and the copy is
//! the request clamped to the resource, from its byte 0. Also: no position one or more pages
//! past a resource's names that resource again (so a position that advanced after a `read`
//! could never stay inside it).
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | mode: bit 0 write; bits 1..3 position source (0 raw, 1 a table entry's offset, 2 as 1 plus `value % 64` pages, 3 as 1 plus `value % 4096` bytes) |
//! | 8 | value (`u64`; the raw position for source 0, the entry pick and delta otherwise) |
//! | 8 | len (`u64`) |
//! | 1 | number of table entries, modulo 9 |
//! | 13 each | entry: tag (`u8`: bits 0..2 map type, bits 2..4 kind 0 STATE / 1 POOL / 2 RING / 3 POOL), id (`u32`), pages (`u64`) |
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use pktmap_abi::codec::DecodeError;
use pktmap_abi::plan::{errno, plan_io, IoPlan, IoRequest, PlanError, Resource};
use pktmap_fuzz::Reader;

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

/// The byte offset of `(type, id)` in the PKTMAP layout: id at bit 15, type at bit 12.
fn offset_of(map_type: u32, id: u32) -> u64 {
    u64::from(id) << 15 | u64::from(map_type) << 12
}

fn model(req: &IoRequest, table: &[Entry]) -> Result<IoPlan<usize>, PlanError> {
    if req.pos < 0 {
        return Err(PlanError::BadArgument);
    }
    let pos = req.pos as u64;
    if !pos.is_multiple_of(4096) {
        return Err(PlanError::Decode(DecodeError::Misaligned));
    }
    // Only bits 12..47 may be set: type 12..15 (STATE 0, POOL 1, RING 2), id 15..47.
    if pos & !0x7fff_ffff_f000 != 0 {
        return Err(PlanError::Decode(DecodeError::StrayBits));
    }
    let map_type = ((pos >> 12) & 7) as u32;
    if map_type > 2 {
        return Err(PlanError::Decode(DecodeError::UnknownType));
    }
    let id = (pos >> 15) as u32;
    let (resource, index) = lookup(table, map_type, id).ok_or(PlanError::UnknownResource)?;
    let pages = match (map_type, resource) {
        (0, Resource::State) => 1,
        (1, Resource::Pool { pages, .. }) | (2, Resource::Ring { pages }) => pages,
        _ => return Err(PlanError::UnknownResource),
    };
    if req.write && map_type == 0 {
        return Err(PlanError::ReadOnly);
    }
    let bytes = u128::from(pages) * 4096;
    Ok(IoPlan {
        map_type,
        id,
        resource,
        len: u128::from(req.len).min(bytes).min(u128::from(u64::MAX)) as u64,
        target: index,
    })
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
    let count = usize::from(r.u8() % 9);
    let table: Vec<Entry> = (0..count).map(|_| read_entry(&mut r)).collect();
    let picked = table.get((value % 9) as usize);
    let pos = match ((mode >> 1) & 3, picked) {
        (1, Some(e)) => offset_of(e.map_type, e.id) as i64,
        (2, Some(e)) => offset_of(e.map_type, e.id).wrapping_add((value >> 8) % 64 * 4096) as i64,
        (3, Some(e)) => offset_of(e.map_type, e.id).wrapping_add((value >> 8) % 4096) as i64,
        _ => value as i64,
    };
    let req = IoRequest {
        pos,
        len,
        write: mode & 1 != 0,
    };
    let asked = Cell::new(None);
    let got = plan_io(&req, |t, id| {
        asked.set(Some((t, id)));
        lookup(&table, t, id)
    });
    assert_eq!(got, model(&req, &table), "plan_io({req:?}) with {table:?}");
    match &got {
        Ok(plan) => {
            assert_eq!(asked.get(), Some((plan.map_type, plan.id)));
            assert!(plan.len <= req.len);
            // One or more pages further never names the same resource.
            for k in 1..=64u64 {
                let next = (pos as u64).wrapping_add(k * 4096) as i64;
                let again = plan_io(&IoRequest { pos: next, ..req }, |t, id| {
                    lookup(&table, t, id)
                });
                if let Ok(p) = again {
                    assert_ne!(
                        (p.map_type, p.id),
                        (plan.map_type, plan.id),
                        "position {next:#x} names the resource at {pos:#x} again"
                    );
                }
            }
        }
        Err(e) => {
            let want = match e {
                PlanError::ReadOnly => errno::EPERM,
                _ => errno::EINVAL,
            };
            assert_eq!(e.errno(), want, "{e:?}");
        }
    }
});
