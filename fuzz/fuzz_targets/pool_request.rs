//! The pool request fields added with contiguous, 2 MiB, write-combined and exported pools:
//! `check_pool` over every `PoolCreate` field, `plan_pool_map`, `fault_window`,
//! `huge_fault_chunk`, `check_chunk` and `check_export`, each compared with a model that shares
//! no code with `pktmap_abi::plan`.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 28 | `PoolCreate` `buf_size`, `buf_count`, `flags`, `fault_around`, `cache` (`u32` each), `reserved` (`u64`) |
//! | 1 | map request: bit 0 `may_share`, bit 1 `write`, bit 2 `read_only`, bit 3 privileged, bit 4 `populate`, bit 5 the export's open is readable |
//! | 32 | fault window: `index`, `vma.start`, `vma.end`, `pool_pages` (`u64` each), then `around` (`u32`) |
//! | 32 | huge fault: `addr`, `index`, `vma.start`, `vma.end` (`u64` each) |
//! | 4 | `PoolChunk::index` (`u32`) |
//! | 8 | `PoolExport` `flags`, `reserved` (`u32` each) |
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use pktmap_abi::ioctl::{PoolChunk, PoolCreate, PoolExport};
use pktmap_abi::plan::{
    check_chunk, check_export, check_pool, errno, fault_window, huge_fault_chunk, plan_pool_map,
    ChunkPlan, PlanError, PoolFill, PoolGeometry, PoolKind, PoolMapRequest,
};
use pktmap_fuzz::{model_pool, Reader};

/// The mapping rules: a read-only pool file maps neither writable nor private; PFN-mapped
/// pools (contiguous, 2 MiB) never map private; a lazy pool asked to populate is inserted whole
/// at `mmap`, as an eager one.
fn model_map(g: &PoolGeometry, req: &PoolMapRequest) -> Result<PoolFill, PlanError> {
    if req.read_only && (req.write || !req.may_share) {
        return Err(PlanError::ReadOnly);
    }
    let pfn = matches!(g.kind, PoolKind::Contig | PoolKind::Huge);
    if pfn && !req.may_share {
        return Err(PlanError::PrivateMapping);
    }
    Ok(match g.kind {
        PoolKind::Eager => PoolFill::Pages,
        PoolKind::Lazy if req.populate => PoolFill::Pages,
        PoolKind::Lazy => PoolFill::Fault {
            around: g.fault_around,
        },
        PoolKind::Contig => PoolFill::Remap,
        PoolKind::Huge => PoolFill::HugeFault,
    })
}

/// The lazy fault window, in `u128` so nothing wraps: the aligned block of `around` pages that
/// holds `index`, cut to the VMA and the pool.
fn model_window(index: u64, around: u32, vma: (u64, u64), pool: u64) -> Option<(u64, u64)> {
    if around == 0 || around & (around - 1) != 0 {
        return None;
    }
    if index < vma.0 || index >= vma.1 || index >= pool {
        return None;
    }
    let (i, a) = (u128::from(index), u128::from(around));
    let block = i - i % a;
    let start = block.max(u128::from(vma.0));
    let end = (block + a).min(u128::from(vma.1)).min(u128::from(pool));
    Some((start as u64, end as u64))
}

/// A 2 MiB entry maps the aligned block around `addr` when the block lies in the VMA, the
/// chunks are 2 MiB, and the block's first page is a chunk's first page.
fn model_huge(addr: u64, index: u64, vma: (u64, u64), chunk_pages: u64) -> Option<u64> {
    const PMD: u128 = 2 << 20;
    let a = u128::from(addr);
    let block = a - a % PMD;
    if block < u128::from(vma.0) || block + PMD > u128::from(vma.1) || chunk_pages != 512 {
        return None;
    }
    let back = ((a - block) / 4096) as u64;
    let first = index.checked_sub(back)?;
    (first % 512 == 0).then_some(first / 512)
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let pool = PoolCreate {
        buf_size: r.u32(),
        buf_count: r.u32(),
        flags: r.u32(),
        id: 0,
        fault_around: r.u32(),
        cache: r.u32(),
        reserved: r.u64(),
    };
    let bits = r.u8();
    let map = PoolMapRequest {
        may_share: bits & 1 != 0,
        write: bits & 2 != 0,
        read_only: bits & 4 != 0,
        populate: bits & 16 != 0,
    };
    let privileged = bits & 8 != 0;
    let readable = bits & 32 != 0;
    let (index, start, end, pool_pages) = (r.u64(), r.u64(), r.u64(), r.u64());
    let around = r.u32();
    let (addr, hindex, hstart, hend) = (r.u64(), r.u64(), r.u64(), r.u64());
    let chunk_index = r.u32();
    let export = PoolExport {
        id: 1,
        flags: r.u32(),
        fd: 0,
        reserved: r.u32(),
    };

    let got = check_pool(&pool);
    assert_eq!(got, model_pool(&pool), "check_pool({pool:?})");
    if let Err(e) = got {
        assert_eq!(e.errno(), errno::EINVAL);
    }
    if let Ok(g) = got {
        assert_eq!(
            g.chunks() * g.chunk_pages,
            g.pages,
            "{g:?}: not whole chunks"
        );
        assert_eq!(1u64 << g.chunk_order(), g.chunk_pages);
        assert!(g.pages * 4096 <= 256 << 20);
        let fill = plan_pool_map(&g, &map);
        assert_eq!(fill, model_map(&g, &map), "plan_pool_map({g:?}, {map:?})");
        if let Err(e) = fill {
            let want = match e {
                PlanError::ReadOnly => errno::EPERM,
                _ => errno::EINVAL,
            };
            assert_eq!(e.errno(), want);
        }

        // POOL_CHUNK: only the privileged ask, and only for chunks that exist.
        let q = PoolChunk {
            id: 3,
            index: chunk_index,
            ..PoolChunk::default()
        };
        let asked = Cell::new(false);
        let got = check_chunk(&q, privileged, |id| {
            asked.set(true);
            (id == 3).then_some((g, id))
        });
        let want = if !privileged {
            Err(PlanError::NotPrivileged)
        } else if u64::from(chunk_index) >= g.pages / g.chunk_pages {
            Err(PlanError::BadArgument)
        } else {
            Ok(ChunkPlan {
                index: u64::from(chunk_index),
                bytes: g.chunk_pages * 4096,
                target: 3,
            })
        };
        assert_eq!(got, want, "check_chunk({q:?}) of {g:?}");
        assert_eq!(asked.get(), privileged, "looked up for the wrong caller");
    }

    let got = fault_window(index, around, start..end, pool_pages);
    let want = model_window(index, around, (start, end), pool_pages);
    assert_eq!(
        got.clone().map(|w| (w.start, w.end)),
        want,
        "fault_window({index}, {around}, {start}..{end}, {pool_pages})"
    );
    if let Some(w) = got {
        assert!(w.contains(&index) && w.end - w.start <= u64::from(around));
    }

    let got = huge_fault_chunk(addr, hindex, hstart..hend, 512);
    assert_eq!(
        got,
        model_huge(addr, hindex, (hstart, hend), 512),
        "huge_fault_chunk({addr:#x}, {hindex}, {hstart:#x}..{hend:#x})"
    );
    assert_eq!(huge_fault_chunk(addr, hindex, hstart..hend, 256), None);

    // An export needs a readable open: a write-only one would get a file that reads.
    let want = if export.flags > 1 || export.reserved != 0 {
        Err(PlanError::BadArgument)
    } else if !readable {
        Err(PlanError::NotReadable)
    } else {
        Ok(export.flags == 1)
    };
    assert_eq!(
        check_export(&export, readable),
        want,
        "check_export({export:?}, readable {readable})"
    );
});
