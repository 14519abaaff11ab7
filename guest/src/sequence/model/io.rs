//! The model's `pread`, `pwrite`, `read(2)`/`write(2)` at a position, and two threads
//! writing at once: the bytes or counts they must give, and the resource bytes they change.

use super::{Model, Named};
use crate::sequence::generator::Pick;
use crate::sequence::step::{Expect, Step, Tag};
use crate::sequence::PAGE;
use proptest::sample::Index;

impl Model {
    /// Applies a pwrite/write of `len` bytes of `value` to object `o`; returns the count.
    pub(super) fn write_obj(&mut self, o: usize, len: usize, value: u8) -> usize {
        let obj = &mut self.objs[o];
        let n = len.min(obj.data.len());
        obj.data[..n].fill(value);
        n
    }

    /// What a pread/read at `(offset, named)` returns for a `len`-byte buffer.
    pub(super) fn read_expect(&self, offset: u64, named: Named, len: usize) -> Expect {
        match named {
            Named::Obj(o) => {
                let d = &self.objs[o].data;
                Expect::Bytes(d[..len.min(d.len())].to_vec())
            }
            Named::State if offset == 0 => Expect::Count(len.min(PAGE)),
            _ => Expect::Errno(libc::EINVAL),
        }
    }

    /// What a pwrite/write at `(offset, named)` does; updates the model.
    pub(super) fn write_expect(
        &mut self,
        slot: usize,
        offset: u64,
        named: Named,
        len: usize,
        value: u8,
    ) -> Expect {
        let Some(fd) = &self.fds[slot] else {
            return Expect::Errno(libc::EBADF);
        };
        if !fd.writable {
            return Expect::Errno(libc::EBADF);
        }
        match named {
            Named::Obj(o) => Expect::Count(self.write_obj(o, len, value)),
            Named::State if offset == 0 => Expect::Errno(libc::EPERM),
            _ => Expect::Errno(libc::EINVAL),
        }
    }

    /// `pwrite` at a resource's offset.
    pub(super) fn pwrite(&mut self, slot: usize, pick: Pick, len: usize, value: u8) -> Step {
        let (pos, named) = self.resolve(slot, pick);
        let expect = if self.is_pool_file(slot) {
            // A pool file has no position to read or write at.
            self.tags.push(Tag::PoolFileIo);
            Expect::Errno(libc::ESPIPE)
        } else {
            self.write_expect(slot, pos, named, len, value)
        };
        Step::Pwrite {
            slot,
            pos,
            len,
            value,
            expect,
        }
    }

    /// `pread` of a whole resource.
    pub(super) fn pread(&mut self, slot: usize, pick: Pick) -> Step {
        let (pos, named) = self.resolve(slot, pick);
        let len = 4 * PAGE;
        let expect = if self.is_pool_file(slot) {
            self.tags.push(Tag::PoolFileIo);
            Expect::Errno(libc::ESPIPE)
        } else if !self.readable(slot) {
            self.tags.push(Tag::WriteOnlyRefused);
            Expect::Errno(libc::EBADF)
        } else {
            self.read_expect(pos, named, len)
        };
        Step::Pread {
            slot,
            pos,
            len,
            expect,
        }
    }

    /// `lseek`, then `read(2)` or `write(2)`: the position must not move.
    pub(super) fn seek_io(&mut self, slot: usize, pick: Pick, write: bool, value: u8) -> Step {
        let (pos, named) = self.resolve(slot, pick);
        let len = 2 * PAGE;
        let pool_file = self.is_pool_file(slot);
        let expect = if pool_file {
            // No `read`/`write` file operations: EINVAL, or EBADF writing a read-only
            // file.
            self.tags.push(Tag::PoolFileIo);
            let writable = self.fds[slot].as_ref().is_some_and(|f| f.writable);
            Expect::Errno(if write && !writable {
                libc::EBADF
            } else {
                libc::EINVAL
            })
        } else if write {
            self.write_expect(slot, pos, named, len, value)
        } else if !self.readable(slot) {
            self.tags.push(Tag::WriteOnlyRefused);
            Expect::Errno(libc::EBADF)
        } else {
            self.read_expect(pos, named, len)
        };
        Step::SeekIo {
            slot,
            seek: !pool_file,
            pos,
            write,
            value,
            len,
            expect,
        }
    }

    /// Whether `slot`'s file was opened for reading.
    fn readable(&self, slot: usize) -> bool {
        self.fds[slot].as_ref().is_some_and(|f| f.readable)
    }

    /// `fsync` or `fdatasync`: the device and pool files have nothing to write back, and say
    /// so with success (as `msync(MS_SYNC)` of their mappings does), whatever the access.
    pub(super) fn fsync(&mut self, slot: usize, data: bool) -> Step {
        self.tags.push(Tag::Fsync);
        Step::Fsync {
            slot,
            data,
            expect: Expect::Ok,
        }
    }

    /// Two threads `pwrite` two pools of a slot at once.
    pub(super) fn threads(&mut self, slot: usize, a: Index, b: Index, value: u8) -> Step {
        let fd = self.fds[slot].as_ref().expect("open");
        if !fd.writable || fd.pool_file.is_some() || fd.pools.len() < 2 {
            return Step::Skip;
        }
        let (pa, oa) = self.resolve(slot, Pick::Pool(a));
        let (pb, ob) = self.resolve(slot, Pick::Pool(b));
        let (Named::Obj(oa), Named::Obj(ob)) = (oa, ob) else {
            return Step::Skip;
        };
        if oa == ob {
            return Step::Skip;
        }
        let len = 2 * PAGE;
        self.write_obj(oa, len, value);
        self.write_obj(ob, len, value.wrapping_add(1));
        Step::Threads {
            slot,
            pos_a: pa,
            pos_b: pb,
            len,
            value,
        }
    }
}
