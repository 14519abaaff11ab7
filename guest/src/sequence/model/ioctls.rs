//! The model's ioctls: `POOL_CREATE` (the contract's rules restated in [`geometry`]),
//! `POOL_INFO`, `POOL_CHUNK`, `POOL_EXPORT`, `POOL_DESTROY`, `RING_CREATE`, `RING_DESTROY`.

use super::{mutation, Fd, Kind, Model, Mutation, Obj, PMD_PAGES};
use crate::sequence::generator::{Pick, PoolSpec};
use crate::sequence::step::{Expect, Out, Step, Tag};
use crate::sequence::{PAGE, SLOTS};
use pktmap::offset::ResourceType;
use pktmap_abi::ioctl::{self, PoolInfo};
use proptest::sample::Index;
use std::collections::BTreeMap;

/// What the model says `POOL_CREATE` makes of a [`PoolSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub kind: Kind,
    /// Pages, rounded up to whole chunks.
    pub pages: usize,
    pub chunk_pages: usize,
    pub wc: bool,
}

/// The contract's `POOL_CREATE` rules (`pktmap_abi::ioctl`'s field docs), restated on their
/// own so the test does not trust the code it checks: a buffer size that is a power of two
/// from 256 to 65536 bytes, at least one buffer, at most one kind, `fault_around` 0 or a power
/// of two up to 512 on a lazy pool (0 is 16) and 0 on every other, write-combining only on
/// contiguous and 2 MiB pools, `reserved` 0, at most 256 MiB; contiguous chunks are the pool
/// rounded up to a power of two, at most 2 MiB; 2 MiB pools are whole 2 MiB chunks.
pub fn geometry(s: &PoolSpec) -> Result<Geometry, i32> {
    let bad = Err(libc::EINVAL);
    let size_ok = s.buf_size.is_power_of_two() && (256..=65536).contains(&s.buf_size);
    if !size_ok || s.buf_count == 0 || s.reserved != 0 {
        return bad;
    }
    let kind = match (s.flags, s.fault_around) {
        (0, 0) => Kind::Eager,
        (ioctl::POOL_LAZY, 0) => Kind::Lazy(16),
        (ioctl::POOL_LAZY, n) if n.is_power_of_two() && n <= 512 => Kind::Lazy(n),
        (ioctl::POOL_CONTIG, 0) => Kind::Contig,
        (ioctl::POOL_HUGE, 0) => Kind::Huge,
        _ => return bad,
    };
    let wc = match s.cache {
        0 => false,
        1 if kind.pfn() => true,
        _ => return bad,
    };
    let bytes = u64::from(s.buf_size) * u64::from(s.buf_count);
    if bytes > 256 << 20 {
        return bad;
    }
    let pages = bytes.div_ceil(PAGE as u64) as usize;
    let chunk_pages = match kind {
        Kind::Huge => PMD_PAGES,
        Kind::Contig => pages.next_power_of_two().min(PMD_PAGES),
        _ => 1,
    };
    Ok(Geometry {
        kind,
        pages: pages.next_multiple_of(chunk_pages),
        chunk_pages,
        wc,
    })
}

impl Model {
    /// An ioctl step on `slot`; a pool file answers only `POOL_INFO` (`ENOTTY` otherwise).
    pub(super) fn ioctl_step(
        &mut self,
        slot: usize,
        cmd: u32,
        arg: [u32; 8],
        expect: Expect,
    ) -> Step {
        let expect = match expect {
            Expect::Errno(libc::EBADF) if mutation() == Mutation::Ebadf => {
                Expect::Errno(libc::EINVAL)
            }
            e => e,
        };
        if self.is_pool_file(slot) {
            self.tags.push(Tag::PoolFileIoctl);
        }
        Step::Ioctl {
            slot,
            cmd,
            arg,
            expect,
            out: Out::Nothing,
        }
    }

    /// A new object in `slot`'s table (pools and rings share the id counters' scheme).
    pub(super) fn insert_obj(&mut self, slot: usize, ring: bool, obj: Obj) -> u32 {
        let n = self.objs.len();
        let fd = self.fds[slot].as_mut().expect("open");
        let (ids, next) = if ring {
            (&mut fd.rings, &mut fd.next_ring)
        } else {
            (&mut fd.pools, &mut fd.next_pool)
        };
        let id = *next;
        *next += 1;
        ids.insert(id, n);
        let file = fd.file;
        self.objs.push(Obj {
            table: Some((file, id)),
            ..obj
        });
        id
    }

    pub(super) fn pool_create(&mut self, slot: usize, spec: PoolSpec) -> Step {
        let arg = spec.words();
        let fd = self.fds[slot].as_ref().expect("open");
        if fd.pool_file.is_some() {
            return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(libc::ENOTTY));
        }
        if !fd.writable {
            return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(libc::EBADF));
        }
        let g = match geometry(&spec) {
            Ok(g) => g,
            Err(e) => {
                self.tags.push(Tag::CreateRefused);
                return self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Errno(e));
            }
        };
        self.tags.push(match g.kind {
            Kind::Eager => Tag::CreateEager,
            Kind::Lazy(_) => Tag::CreateLazy,
            Kind::Contig => Tag::CreateContig,
            Kind::Huge => Tag::CreateHuge,
        });
        if g.wc {
            self.tags.push(Tag::CreateWc);
        }
        let obj = Obj {
            ring_of: None,
            kind: g.kind,
            spec: Some(spec),
            wc: g.wc,
            chunk_pages: g.chunk_pages,
            pages: g.pages,
            data: vec![0; g.pages * PAGE],
            table: None,
        };
        let id = self.insert_obj(slot, false, obj);
        self.ioctl_step(slot, ioctl::POOL_CREATE, arg, Expect::Id(id))
    }

    /// `POOL_INFO` of `pick`: through a pool file only for id 0.
    pub(super) fn pool_info(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let fd = self.fds[slot].as_ref().expect("open");
        let (pool, offset) = match fd.pool_file {
            Some(o) => ((id == 0).then_some(o), ResourceType::Pool.offset(0)),
            None => (fd.pools.get(&id).copied(), ResourceType::Pool.offset(id)),
        };
        let expect = match pool {
            None => Expect::Errno(libc::EINVAL),
            Some(o) => {
                let obj = &self.objs[o];
                let spec = obj.spec.expect("a pool");
                self.tags.push(Tag::Info);
                Expect::Info(PoolInfo {
                    id,
                    buf_size: spec.buf_size,
                    buf_count: spec.buf_count,
                    flags: spec.flags,
                    bytes: (obj.pages * PAGE) as u64,
                    mmap_offset: offset,
                    fault_around: match obj.kind {
                        Kind::Lazy(n) => n,
                        _ => 0,
                    },
                    cache: u32::from(obj.wc),
                    chunk_bytes: (obj.chunk_pages * PAGE) as u64,
                })
            }
        };
        self.ioctl_step(slot, ioctl::POOL_INFO, [id, 0, 0, 0, 0, 0, 0, 0], expect)
    }

    pub(super) fn pool_chunk(&mut self, slot: usize, pick: Pick, index: u32) -> Step {
        let id = self.pick_id(slot, pick);
        let arg = [id, index, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        if fd.pool_file.is_some() {
            return self.ioctl_step(slot, ioctl::POOL_CHUNK, arg, Expect::Errno(libc::ENOTTY));
        }
        let expect = match fd.pools.get(&id) {
            Some(&o) if (index as usize) < self.objs[o].pages / self.objs[o].chunk_pages => {
                self.tags.push(Tag::Chunk);
                Expect::Chunk((self.objs[o].chunk_pages * PAGE) as u64)
            }
            _ => Expect::Errno(libc::EINVAL),
        };
        self.ioctl_step(slot, ioctl::POOL_CHUNK, arg, expect)
    }

    pub(super) fn pool_export(
        &mut self,
        slot: usize,
        pick: Pick,
        flags: u32,
        bad_reserved: bool,
        into: Index,
    ) -> Step {
        let empty: Vec<usize> = (0..SLOTS).filter(|&s| self.fds[s].is_none()).collect();
        if empty.is_empty() {
            return Step::Skip;
        }
        let into = empty[into.index(empty.len())];
        let id = self.pick_id(slot, pick);
        let arg = [id, flags, 0, u32::from(bad_reserved), 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let bad = flags & !ioctl::EXPORT_READONLY != 0 || bad_reserved;
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else if !fd.readable {
            // A pool file reads and maps, which a write-only open cannot: no export at all
            // (the request is checked first).
            self.tags.push(Tag::ExportRefused);
            if !bad {
                self.tags.push(Tag::WriteOnlyRefused);
            }
            Expect::Errno(if bad { libc::EINVAL } else { libc::EBADF })
        } else {
            match fd.pools.get(&id).copied() {
                Some(o) if flags & !ioctl::EXPORT_READONLY == 0 && !bad_reserved => {
                    let read_only = flags & ioctl::EXPORT_READONLY != 0;
                    self.files += 1;
                    self.fds[into] = Some(Fd {
                        file: self.files,
                        writable: !read_only,
                        readable: true,
                        pool_file: Some(o),
                        pools: BTreeMap::new(),
                        rings: BTreeMap::new(),
                        next_pool: 1,
                        next_ring: 1,
                    });
                    self.pool_files.push((self.files, o));
                    self.tags.push(if read_only {
                        Tag::ExportRo
                    } else {
                        Tag::ExportRw
                    });
                    let mut step = self.ioctl_step(slot, ioctl::POOL_EXPORT, arg, Expect::Ok);
                    if let Step::Ioctl { out, .. } = &mut step {
                        *out = Out::Fd(into);
                    }
                    return step;
                }
                _ => {
                    self.tags.push(Tag::ExportRefused);
                    Expect::Errno(libc::EINVAL)
                }
            }
        };
        self.ioctl_step(slot, ioctl::POOL_EXPORT, arg, expect)
    }

    pub(super) fn pool_destroy(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let arg = [id, 0, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else {
            match fd.pools.get(&id).copied() {
                None => Expect::Errno(libc::EINVAL),
                Some(o) if fd.rings.values().any(|r| self.objs[*r].ring_of == Some(o)) => {
                    Expect::Errno(libc::EBUSY)
                }
                Some(o) => {
                    self.fds[slot].as_mut().expect("open").pools.remove(&id);
                    self.objs[o].table = None;
                    Expect::Ok
                }
            }
        };
        self.ioctl_step(slot, ioctl::POOL_DESTROY, arg, expect)
    }

    pub(super) fn ring_create(&mut self, slot: usize, pick: Pick) -> Step {
        let pool_id = self.pick_id(slot, pick);
        let arg = [8, pool_id, 0, 0, 0, 0, 0, 0];
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else if let Some(p) = fd.pools.get(&pool_id).copied() {
            let mut data = vec![0u8; PAGE];
            data[8..12].copy_from_slice(&8u32.to_ne_bytes());
            data[12..16].copy_from_slice(&pool_id.to_ne_bytes());
            let ring = Obj {
                ring_of: Some(p),
                kind: Kind::Eager,
                spec: None,
                wc: false,
                chunk_pages: 1,
                pages: 1,
                data,
                table: None,
            };
            Expect::Id(self.insert_obj(slot, true, ring))
        } else {
            Expect::Errno(libc::EINVAL)
        };
        self.ioctl_step(slot, ioctl::RING_CREATE, arg, expect)
    }

    pub(super) fn ring_destroy(&mut self, slot: usize, pick: Pick) -> Step {
        let id = self.pick_id(slot, pick);
        let fd = self.fds[slot].as_ref().expect("open");
        let expect = if fd.pool_file.is_some() {
            Expect::Errno(libc::ENOTTY)
        } else if !fd.writable {
            Expect::Errno(libc::EBADF)
        } else {
            match fd.rings.get(&id).copied() {
                None => Expect::Errno(libc::EINVAL),
                Some(o) => {
                    self.fds[slot].as_mut().expect("open").rings.remove(&id);
                    self.objs[o].table = None;
                    Expect::Ok
                }
            }
        };
        self.ioctl_step(slot, ioctl::RING_DESTROY, [id, 0, 0, 0, 0, 0, 0, 0], expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::generator::pool_spec;
    use crate::sequence::runner::seed_bytes;
    use pktmap_abi::plan::{self, PoolKind};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    /// The model's restated `POOL_CREATE` rules agree with `plan::check_pool`, which the driver
    /// runs: on generated requests and on raw field values.
    #[test]
    fn pool_rules_match_the_plan() {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(7)),
        );
        let raw = (
            any::<u32>(),
            any::<u32>(),
            0..16u32,
            prop_oneof![Just(0u32), 0..1100u32, any::<u32>()],
            0..4u32,
            prop_oneof![9 => Just(0u64), 1 => any::<u64>()],
        )
            .prop_map(
                |(buf_size, buf_count, flags, fault_around, cache, reserved)| PoolSpec {
                    buf_size: if buf_size % 2 == 0 {
                        1 << (buf_size % 20)
                    } else {
                        buf_size
                    },
                    buf_count: buf_count % 70_000,
                    flags,
                    fault_around,
                    cache,
                    reserved,
                },
            );
        let specs = prop_oneof![pool_spec(), raw];
        for _ in 0..20_000 {
            let s = specs.new_tree(&mut runner).expect("a spec").current();
            let req = ioctl::PoolCreate {
                buf_size: s.buf_size,
                buf_count: s.buf_count,
                flags: s.flags,
                id: 0,
                fault_around: s.fault_around,
                cache: s.cache,
                reserved: s.reserved,
            };
            let theirs = plan::check_pool(&req).map(|g| Geometry {
                kind: match g.kind {
                    PoolKind::Eager => Kind::Eager,
                    PoolKind::Lazy => Kind::Lazy(g.fault_around),
                    PoolKind::Contig => Kind::Contig,
                    PoolKind::Huge => Kind::Huge,
                },
                pages: g.pages as usize,
                chunk_pages: g.chunk_pages as usize,
                wc: g.cache == plan::Cache::WriteCombine,
            });
            assert_eq!(geometry(&s), theirs.map_err(|e| e.errno()), "{s:?}");
        }
    }
}
