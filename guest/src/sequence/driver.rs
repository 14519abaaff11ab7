//! The system under test (proptest-state-machine's `StateMachineTest`): the open files and
//! mappings, each step performed on `/dev/pktmap` (one method per kind of step) and its
//! outcome, the STATE gauges and the fault counters compared with the model's.

use super::generator::{Access, Transition};
use super::model::Model;
use super::runner::{AROUND, DONE, FAULTS_CHECKED, REFUSED, STEPS, TALLY};
use super::step::{Expect, Out, Step};
use super::{PAGE, PMD_PAGES, SLOTS};
use crate::sys::{self, in_child};
use crate::utils::gauges;
use pktmap::device::Device;
use pktmap_abi::ioctl::{self, PoolInfo, State, STATE_MAGIC};
use proptest_state_machine::StateMachineTest;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

/// A live mapping: its address and length (in the same order as the model's).
struct Region {
    addr: *mut u8,
    len: usize,
}

/// The system under test: open files and mappings, plus the STATE baseline.
pub struct Driver {
    fds: [Option<OwnedFd>; SLOTS],
    maps: Vec<Region>,
    base: [u64; 5],
    probe: Device,
}

/// A case that fails panics mid-sequence: its mappings go with it, so the replays proptest
/// shrinks with start from a clean device (an unmapped pool frees its pages and budget).
impl Drop for Driver {
    fn drop(&mut self) {
        for r in self.maps.drain(..) {
            // SAFETY: Mappings this test made, used by nothing else now.
            let _ = unsafe { sys::munmap(r.addr, r.len) };
        }
    }
}

/// The fault counters a step may move: faults served, pages mapped, PMD faults.
fn counters(s: &State) -> [u64; 3] {
    [s.faults_served, s.pages_mapped, s.pmd_faults]
}

/// `POOL_INFO`'s answer from the argument words (`struct pktmap_pool_info`, native endian).
fn info_from(a: &[u32; 12]) -> PoolInfo {
    let wide = |i: usize| u64::from(a[i]) | (u64::from(a[i + 1]) << 32);
    PoolInfo {
        id: a[0],
        buf_size: a[1],
        buf_count: a[2],
        flags: a[3],
        bytes: wide(4),
        mmap_offset: wide(6),
        fault_around: a[8],
        cache: a[9],
        chunk_bytes: wide(10),
    }
}

fn outcome<T>(r: std::io::Result<T>, f: impl FnOnce(T) -> Expect) -> Expect {
    match r {
        Ok(v) => f(v),
        Err(e) => Expect::Errno(e.raw_os_error().unwrap_or(-1)),
    }
}

/// Checks `got` against `want`; panics (proptest records the failure and shrinks).
fn expect_eq(what: &str, step: &Step, got: Expect, want: &Expect) {
    if &got != want {
        let short = |e: &Expect| match e {
            Expect::Bytes(b) if b.len() > 16 => format!("{} bytes {:?}..", b.len(), &b[..16]),
            e => format!("{e:?}"),
        };
        panic!(
            "{what}: got {}, model says {} (step {})",
            short(&got),
            short(want),
            step_summary(step)
        );
    }
}

fn step_summary(step: &Step) -> String {
    let s = format!("{step:?}");
    if s.len() > 300 {
        format!("{}..", &s[..300])
    } else {
        s
    }
}

impl Driver {
    fn fd(&self, slot: usize) -> std::os::fd::BorrowedFd<'_> {
        self.fds[slot]
            .as_ref()
            .expect("the model says the slot is open")
            .as_fd()
    }

    /// Performs `step` on the device and compares its outcome with the model's.
    fn run(&mut self, step: &Step) {
        match step {
            Step::Skip => {}
            Step::Open { slot, access } => {
                let flags = match access {
                    Access::ReadWrite => libc::O_RDWR,
                    Access::ReadOnly => libc::O_RDONLY,
                    Access::WriteOnly => libc::O_WRONLY,
                };
                self.fds[*slot] = Some(sys::open_device(flags).expect("open /dev/pktmap"));
            }
            Step::Close { slot } => self.fds[*slot] = None,
            Step::Ioctl { .. } => self.ioctl(step),
            Step::Mmap { .. } => self.mmap(step),
            Step::Munmap { .. } => self.munmap(step),
            Step::Mprotect { .. } => self.mprotect(step),
            Step::Madvise { .. } => self.madvise(step),
            Step::Mremap { .. } => self.mremap(step),
            Step::Poke { .. } => self.poke(step),
            Step::Peek { .. } => self.peek(step),
            Step::Pwrite { .. } => self.pwrite(step),
            Step::Pread { .. } => self.pread(step),
            Step::SeekIo { .. } => self.seek_io(step),
            Step::Fork { .. } => self.fork(step),
            Step::Threads { .. } => self.threads(step),
            Step::Fsync { slot, data, expect } => {
                let r = sys::fsync(self.fd(*slot), *data);
                expect_eq("fsync", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::Msync { map, expect } => {
                let region = &self.maps[*map];
                let r = sys::msync(region.addr, region.len, libc::MS_SYNC);
                expect_eq("msync", step, outcome(r, |()| Expect::Ok), expect);
            }
            Step::ThpDisable { on } => sys::thp_disable(*on).expect("prctl(PR_SET_THP_DISABLE)"),
            Step::ClearRefs => {
                std::fs::write("/proc/self/clear_refs", "4").expect("clear_refs 4");
            }
        }
    }

    /// An ioctl with the step's argument words; a new pool file goes into its slot.
    fn ioctl(&mut self, step: &Step) {
        let Step::Ioctl {
            slot,
            cmd,
            arg,
            expect,
            out,
        } = step
        else {
            unreachable!("run hands ioctl its own steps")
        };
        // The argument's words, then zeros up to the largest argument struct
        // (`PoolInfo`, 48 bytes).
        let mut a = [0u32; 12];
        a[..arg.len()].copy_from_slice(arg);
        let r = sys::ioctl_raw(self.fd(*slot), *cmd, a.as_mut_ptr().cast());
        // A new pool file is ours to close, whatever the model said.
        let file = (r.is_ok() && *cmd == ioctl::POOL_EXPORT).then(|| {
            // SAFETY: POOL_EXPORT succeeded, so word 2 is a new descriptor that only
            // this test holds.
            unsafe { OwnedFd::from_raw_fd(a[2] as i32) }
        });
        let got = outcome(r, |()| match expect {
            Expect::Id(_) => Expect::Id(a[3]),
            Expect::Info(_) => Expect::Info(info_from(&a)),
            Expect::Chunk(_) => {
                let phys = u64::from(a[2]) | (u64::from(a[3]) << 32);
                let bytes = u64::from(a[4]) | (u64::from(a[5]) << 32);
                if phys == 0 || bytes == 0 || phys % bytes != 0 {
                    panic!(
                        "POOL_CHUNK: physical address {phys:#x} is not a chunk of {bytes:#x} bytes (step {})",
                        step_summary(step)
                    );
                }
                Expect::Chunk(bytes)
            }
            _ => Expect::Ok,
        });
        expect_eq("ioctl", step, got, expect);
        if let (Out::Fd(into), Some(file)) = (out, file) {
            self.fds[*into] = Some(file);
        }
    }

    /// `mmap` (FIXED off the 2 MiB grid if asked); a 2 MiB pool must come back 2 MiB-aligned.
    fn mmap(&mut self, step: &Step) {
        let Step::Mmap {
            slot,
            offset,
            len,
            prot,
            flags,
            off_grid,
            aligned,
            expect,
        } = step
        else {
            unreachable!("run hands mmap its own steps")
        };
        let fd = self.fd(*slot);
        let r = if *off_grid {
            let grid = (PMD_PAGES * PAGE, PAGE);
            sys::mmap_raw_off_grid(fd, *len, *prot, *flags, *offset, grid)
        } else {
            sys::mmap_raw(Some(fd), *len, *prot, *flags, *offset)
        };
        let misplaced = match &r {
            Ok(addr) if *aligned && *addr as usize % (PMD_PAGES * PAGE) != 0 => Some(*addr),
            _ => None,
        };
        let got = outcome(r, |addr| {
            self.maps.push(Region { addr, len: *len });
            Expect::Ok
        });
        if let Some(addr) = misplaced {
            panic!(
                "mmap of a 2 MiB pool at {addr:p}: not 2 MiB-aligned (step {})",
                step_summary(step)
            );
        }
        expect_eq("mmap", step, got, expect);
    }

    /// `munmap` of part of a mapping, keeping the regions in the model's order.
    fn munmap(&mut self, step: &Step) {
        let Step::Munmap {
            map,
            page,
            pages,
            split,
        } = step
        else {
            unreachable!("run hands munmap its own steps")
        };
        let region = &self.maps[*map];
        let at = region.addr.wrapping_add(page * PAGE);
        // SAFETY: Part of a mapping this test made; the model no longer uses it.
        let r = unsafe { sys::munmap(at, pages * PAGE) };
        expect_eq("munmap", step, outcome(r, |()| Expect::Ok), &Expect::Ok);
        let (addr, len) = (region.addr, region.len);
        if pages * PAGE == len {
            self.maps.remove(*map);
        } else if *split {
            self.maps[*map].len = page * PAGE;
            let second = Region {
                addr: addr.wrapping_add((page + pages) * PAGE),
                len: len - (page + pages) * PAGE,
            };
            self.maps.insert(map + 1, second);
        } else if *page == 0 {
            self.maps[*map] = Region {
                addr: addr.wrapping_add(pages * PAGE),
                len: len - pages * PAGE,
            };
        } else {
            self.maps[*map].len = len - pages * PAGE;
        }
    }

    /// `mprotect` of part of a mapping.
    fn mprotect(&mut self, step: &Step) {
        let Step::Mprotect {
            map,
            page,
            pages,
            prot,
            expect,
        } = step
        else {
            unreachable!("run hands mprotect its own steps")
        };
        let at = self.maps[*map].addr.wrapping_add(page * PAGE);
        let r = sys::mprotect(at, pages * PAGE, *prot);
        expect_eq("mprotect", step, outcome(r, |()| Expect::Ok), expect);
    }

    /// `madvise` of a whole mapping.
    fn madvise(&mut self, step: &Step) {
        let Step::Madvise {
            map,
            advice,
            expect,
        } = step
        else {
            unreachable!("run hands madvise its own steps")
        };
        let region = &self.maps[*map];
        let r = sys::madvise(region.addr, region.len, *advice);
        expect_eq("madvise", step, outcome(r, |()| Expect::Ok), expect);
    }

    /// `mremap` of a mapping's last VMA.
    fn mremap(&mut self, step: &Step) {
        let Step::Mremap {
            map,
            page,
            old,
            new,
            expect,
        } = step
        else {
            unreachable!("run hands mremap its own steps")
        };
        let at = self.maps[*map].addr.wrapping_add(page * PAGE);
        let r = sys::mremap_resize(at, old * PAGE, new * PAGE);
        if r.is_ok() {
            self.maps[*map].len -= (old - new) * PAGE;
        }
        expect_eq("mremap", step, outcome(r, |()| Expect::Ok), expect);
    }

    /// A store through a mapping; in a child where the model says it faults.
    fn poke(&mut self, step: &Step) {
        let Step::Poke {
            map,
            offset,
            value,
            expect,
        } = step
        else {
            unreachable!("run hands poke its own steps")
        };
        let p = self.maps[*map].addr.wrapping_add(*offset);
        let got = if *expect == Expect::Ok {
            // SAFETY: The model says the page is mapped writable.
            unsafe { sys::poke(p, *value) };
            Expect::Ok
        } else {
            match in_child(|| {
                // SAFETY: In a child: the fault is the point.
                unsafe { sys::poke(p, *value) }
            }) {
                Some(sig) if sig > 0 => Expect::Signal(sig),
                other => Expect::Errno(other.unwrap_or(0)),
            }
        };
        expect_eq("store through a mapping", step, got, expect);
    }

    /// A load through a mapping.
    fn peek(&mut self, step: &Step) {
        let Step::Peek {
            map,
            offset,
            expect,
        } = step
        else {
            unreachable!("run hands peek its own steps")
        };
        let p = self.maps[*map].addr.wrapping_add(*offset);
        // SAFETY: The model says the page is mapped (every mapping is readable).
        let b = unsafe { sys::peek(p) };
        expect_eq(
            "load through a mapping",
            step,
            Expect::Bytes(vec![b]),
            expect,
        );
    }

    /// `pwrite` of `len` bytes of `value`.
    fn pwrite(&mut self, step: &Step) {
        let Step::Pwrite {
            slot,
            pos,
            len,
            value,
            expect,
        } = step
        else {
            unreachable!("run hands pwrite its own steps")
        };
        let data = vec![*value; *len];
        let r = sys::pwrite_raw(self.fd(*slot), data.as_ptr(), *len, *pos);
        expect_eq("pwrite", step, outcome(r, Expect::Count), expect);
    }

    /// `pread` into a buffer.
    fn pread(&mut self, step: &Step) {
        let Step::Pread {
            slot,
            pos,
            len,
            expect,
        } = step
        else {
            unreachable!("run hands pread its own steps")
        };
        let mut buf = vec![0u8; *len];
        let r = sys::pread_raw(self.fd(*slot), buf.as_mut_ptr(), *len, *pos);
        let got = outcome(r, |n| match expect {
            Expect::Count(_) => Expect::Count(n),
            _ => Expect::Bytes(buf[..n].to_vec()),
        });
        expect_eq("pread", step, got, expect);
    }

    /// `lseek` and `read(2)`/`write(2)`; the position must not move.
    fn seek_io(&mut self, step: &Step) {
        let Step::SeekIo {
            slot,
            seek,
            pos,
            write,
            value,
            len,
            expect,
        } = step
        else {
            unreachable!("run hands seek_io its own steps")
        };
        let fd = self.fd(*slot);
        let at = if *seek {
            sys::lseek(fd, *pos as i64, libc::SEEK_SET).expect("lseek")
        } else {
            // A pool file cannot seek (ESPIPE); read/write it where it is.
            let r = sys::lseek(fd, *pos as i64, libc::SEEK_SET);
            expect_eq(
                "lseek of a pool file",
                step,
                outcome(r, |_| Expect::Ok),
                &Expect::Errno(libc::ESPIPE),
            );
            0
        };
        let got = if *write {
            outcome(sys::write_fd(fd, &vec![*value; *len]), Expect::Count)
        } else {
            let mut buf = vec![0u8; *len];
            let r = sys::read_fd(fd, &mut buf);
            outcome(r, |n| match expect {
                Expect::Count(_) => Expect::Count(n),
                _ => Expect::Bytes(buf[..n].to_vec()),
            })
        };
        expect_eq(
            if *write { "write(2)" } else { "read(2)" },
            step,
            got,
            expect,
        );
        let now = if *seek {
            sys::lseek(fd, 0, libc::SEEK_CUR).expect("lseek")
        } else {
            0
        };
        if now != at {
            panic!(
                "read/write moved the position {at:#x} -> {now:#x} (step {})",
                step_summary(step)
            );
        }
    }

    /// `fork`: the child checks the inherited mappings, stores, and touches a `DONTFORK` one.
    fn fork(&mut self, step: &Step) {
        let Step::Fork {
            checks,
            store,
            dontfork,
            expect,
        } = step
        else {
            unreachable!("run hands fork its own steps")
        };
        let maps: Vec<(usize, usize)> =
            self.maps.iter().map(|r| (r.addr as usize, r.len)).collect();
        let got = match sys::wait_child(sys::spawn_child(|| {
            for &(i, offset, want) in checks {
                // SAFETY: The model says the mapping is inherited and readable.
                let b = unsafe { sys::peek((maps[i].0 + offset) as *const u8) };
                if b != want {
                    return 3;
                }
            }
            if let Some((i, offset, v)) = *store {
                // SAFETY: The model says this shared mapping is writable.
                unsafe { sys::poke((maps[i].0 + offset) as *mut u8, v) };
            }
            if let Some(i) = *dontfork {
                // SAFETY: Not inherited: the fault is the point.
                std::hint::black_box(unsafe { sys::peek(maps[i].0 as *const u8) });
                return 4;
            }
            0
        })) {
            None => Expect::Ok,
            Some(sig) if sig > 0 => Expect::Signal(sig),
            Some(status) => Expect::Errno(-status),
        };
        expect_eq(
            "fork (child status: Errno(3) = a byte differed)",
            step,
            got,
            expect,
        );
    }

    /// Two threads `pwrite` at once; both must succeed.
    fn threads(&mut self, step: &Step) {
        let Step::Threads {
            slot,
            pos_a,
            pos_b,
            len,
            value,
        } = step
        else {
            unreachable!("run hands threads its own steps")
        };
        let fd = self.fd(*slot);
        let (ra, rb) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                let d = vec![*value; *len];
                sys::pwrite_raw(fd, d.as_ptr(), *len, *pos_a).ok()
            });
            let b = s.spawn(|| {
                let d = vec![value.wrapping_add(1); *len];
                sys::pwrite_raw(fd, d.as_ptr(), *len, *pos_b).ok()
            });
            (a.join().ok().flatten(), b.join().ok().flatten())
        });
        if ra.is_none() || rb.is_none() {
            panic!(
                "concurrent pwrites failed: {ra:?} {rb:?} (step {})",
                step_summary(step)
            );
        }
    }

    fn state(&self) -> State {
        self.probe.state().expect("STATE")
    }

    fn check_gauges(&self, model: &Model, when: &str) {
        let s = self.state();
        let want = model.gauges();
        let got = gauges(&s);
        let expected: Vec<u64> = self.base.iter().zip(want).map(|(b, w)| b + w).collect();
        if got[..] != expected[..] {
            panic!(
                "STATE gauges {when}: got {got:?}, model says {expected:?} (baseline {:?}; pools, rings, pages, VMAs, pool files; last step {})",
                self.base,
                model.step.as_ref().map(step_summary).unwrap_or_default()
            );
        }
        if s.magic != STATE_MAGIC || !s.is_consistent() {
            panic!("STATE snapshot bad: {s:?}");
        }
    }
}

impl StateMachineTest for Driver {
    type SystemUnderTest = Driver;
    type Reference = Model;

    fn init_test(_model: &Model) -> Driver {
        // A case starts with THP allowed, as the model does (a failed case may have left the
        // opt-out set).
        sys::thp_disable(false).expect("prctl(PR_SET_THP_DISABLE, 0)");
        let probe = Device::open().expect("open /dev/pktmap");
        let base = gauges(&probe.state().expect("STATE"));
        Driver {
            fds: std::array::from_fn(|_| None),
            maps: Vec::new(),
            base,
            probe,
        }
    }

    fn apply(mut sut: Driver, model: &Model, _t: Transition) -> Driver {
        STEPS.fetch_add(1, Ordering::Relaxed);
        if let Some(step) = &model.step {
            if !matches!(step, Step::Skip) {
                DONE.fetch_add(1, Ordering::Relaxed);
                if matches!(step.expect(), Some(Expect::Errno(_) | Expect::Signal(_))) {
                    REFUSED.fetch_add(1, Ordering::Relaxed);
                }
            }
            for &tag in &model.tags {
                TALLY[tag as usize].fetch_add(1, Ordering::Relaxed);
            }
            if let Step::Ioctl {
                cmd: ioctl::POOL_CREATE,
                arg,
                expect: Expect::Id(_),
                ..
            } = step
            {
                if arg[2] == ioctl::POOL_LAZY {
                    let around = if arg[4] == 0 { 16 } else { arg[4] };
                    AROUND[around.trailing_zeros() as usize % 10].fetch_add(1, Ordering::Relaxed);
                }
            }
            let before = model.delta.map(|_| counters(&sut.state()));
            sut.run(step);
            if let (Some(want), Some(before)) = (model.delta, before) {
                let now = counters(&sut.state());
                let got = [now[0] - before[0], now[1] - before[1], now[2] - before[2]];
                if got != want {
                    panic!(
                        "fault counters moved {got:?}, model says {want:?} (faults served, pages mapped, PMD faults; step {})",
                        step_summary(step)
                    );
                }
                FAULTS_CHECKED.fetch_add(1, Ordering::Relaxed);
            }
        }
        sut
    }

    fn check_invariants(sut: &Driver, model: &Model) {
        sut.check_gauges(model, "after the step");
    }

    fn teardown(mut sut: Driver, _model: Model) {
        for r in sut.maps.drain(..) {
            // SAFETY: Mappings this test made, used by nothing else now.
            let _ = unsafe { sys::munmap(r.addr, r.len) };
        }
        sut.fds = std::array::from_fn(|_| None);
        sys::thp_disable(false).expect("prctl(PR_SET_THP_DISABLE, 0)");
        let end = gauges(&sut.probe.state().expect("STATE"));
        if end != sut.base {
            panic!(
                "after closing everything the gauges are {end:?}, baseline {:?}",
                sut.base
            );
        }
    }
}
