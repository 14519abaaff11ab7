//! The model's mappings: `mmap` (which pages each VMA has mapped, and how), `munmap`,
//! `mprotect`, `madvise`, `mremap`, the loads and stores through a mapping with the faults
//! they take (the fault-around window, the 2 MiB entry), and `fork`.

use super::{mutation, Entry, Kind, Map, MapPage, Model, Mutation, Named, MAX_MAPS, PMD_PAGES};
use crate::sequence::generator::{Advice, Part, Pick, Size};
use crate::sequence::step::{Expect, Step, Tag};
use crate::sequence::PAGE;
use pktmap_abi::ioctl::STATE_MAGIC;
use proptest::sample::Index;

impl Model {
    /// The bytes mapping `m` shows at its page `p`.
    pub(super) fn page_view(&self, m: &Map, p: usize) -> Vec<u8> {
        if let Some(copy) = &m.pages[p].copy {
            return copy.clone();
        }
        match m.obj {
            Some(o) => {
                let at = (m.first + p) * PAGE;
                self.objs[o].data[at..at + PAGE].to_vec()
            }
            None => {
                let mut v = vec![0u8; PAGE];
                v[..8].copy_from_slice(&STATE_MAGIC.to_ne_bytes());
                v
            }
        }
    }

    /// A byte of mapping `m` at byte `offset`; STATE's bytes past the magic change, so only
    /// its magic is predicted (`None` elsewhere).
    pub(super) fn byte(&self, m: &Map, offset: usize) -> Option<u8> {
        if m.obj.is_none() && offset >= 8 {
            return None;
        }
        let p = offset / PAGE;
        match (&m.pages[p].copy, m.obj) {
            (Some(copy), _) => Some(copy[offset % PAGE]),
            (None, Some(o)) => Some(self.objs[o].data[m.first * PAGE + offset]),
            (None, None) => Some(STATE_MAGIC.to_ne_bytes()[offset]),
        }
    }

    /// The VMAs of mapping `m` as (first page, pages).
    pub(super) fn vmas(m: &Map) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = Vec::new();
        for (i, p) in m.pages.iter().enumerate() {
            if p.vma_start || v.is_empty() {
                v.push((i, 1));
            } else if let Some(last) = v.last_mut() {
                last.1 += 1;
            }
        }
        v
    }

    /// The VMA of mapping `m` that holds page `p`, as a range of its pages.
    pub(super) fn vma_of(m: &Map, p: usize) -> std::ops::Range<usize> {
        let start = (0..=p).rev().find(|&q| m.pages[q].vma_start).unwrap_or(0);
        let end = (p + 1..m.pages.len())
            .find(|&q| m.pages[q].vma_start)
            .unwrap_or(m.pages.len());
        start..end
    }

    /// A VMA boundary is made at page `b` of mapping `i` (a split, or the edge of an unmapped
    /// range): the kernel splits the 2 MiB entry across it, which for a PFN map drops the
    /// whole entry; its pages fault back one by one.
    pub(super) fn cut(&mut self, i: usize, b: usize) {
        let m = &mut self.maps[i];
        let Some(grid) = m.grid else { return };
        let within = (grid + b) % PMD_PAGES;
        // A block that starts before the mapping never had a 2 MiB entry.
        let Some(start) = b.checked_sub(within) else {
            return;
        };
        if within == 0 || b == 0 || b >= m.pages.len() {
            return;
        }
        let end = (start + PMD_PAGES).min(m.pages.len());
        for p in &mut m.pages[start..end] {
            if p.entry == Entry::Pmd {
                p.entry = Entry::Absent;
            }
        }
    }

    /// An access to page `p` of mapping `i`: what the fault (if any) maps, as the counters
    /// it moves (faults served, pages mapped, PMD faults).
    pub(super) fn touch(&mut self, i: usize, p: usize) -> [u64; 3] {
        if self.maps[i].pages[p].entry != Entry::Absent {
            return [0; 3];
        }
        let vma = Self::vma_of(&self.maps[i], p);
        let resource_pages = self.maps[i].obj.map_or(1, |o| self.objs[o].pages);
        let thp_off = self.thp_off;
        let m = &mut self.maps[i];
        match m.kind {
            Kind::Lazy(around) => {
                // The `around`-aligned window of resource pages around the fault, cut to the
                // VMA and the resource; pages already mapped are skipped and not counted.
                let mask = around as usize - 1;
                let index = m.first + p;
                let start = (index & !mask).max(m.first + vma.start);
                let end = ((index | mask) + 1)
                    .min(m.first + vma.end)
                    .min(resource_pages);
                let mut n = 0;
                for q in &mut m.pages[start - m.first..end - m.first] {
                    if q.entry == Entry::Absent {
                        q.entry = Entry::Pte;
                        n += 1;
                    }
                }
                self.tags.push(Tag::LazyFault);
                [1, n, 0]
            }
            Kind::Huge => {
                // One PMD entry if the 2 MiB block of address space around the page lies in
                // the VMA, starts a chunk, and has nothing mapped yet.
                let block = m.grid.and_then(|grid| {
                    let start = p.checked_sub((grid + p) % PMD_PAGES)?;
                    let fits = start >= vma.start
                        && start + PMD_PAGES <= vma.end
                        && (m.first + start) % PMD_PAGES == 0
                        && m.pages[start..start + PMD_PAGES]
                            .iter()
                            .all(|q| q.entry == Entry::Absent);
                    fits.then_some(start)
                });
                // A THP opt-out (the process's or the VMA's): the kernel never asks for the
                // 2 MiB entry, so the block faults 4 KiB at a time.
                let opted_out = thp_off || m.nohuge;
                if block.is_some() && opted_out {
                    self.tags.push(Tag::ThpOptOutFault);
                }
                match block.filter(|_| !opted_out) {
                    Some(start) => {
                        for q in &mut m.pages[start..start + PMD_PAGES] {
                            q.entry = Entry::Pmd;
                        }
                        self.tags.push(Tag::PmdFault);
                        [1, PMD_PAGES as u64, 1]
                    }
                    None => {
                        m.pages[p].entry = Entry::Pte;
                        self.tags.push(Tag::PfnPteFault);
                        [1, 1, 0]
                    }
                }
            }
            // Eager mappings (and a contiguous page, which never loses its entry) refault one
            // page at a time.
            Kind::Eager | Kind::Contig => {
                m.pages[p].entry = Entry::Pte;
                [1, 1, 0]
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn mmap(
        &mut self,
        slot: usize,
        pick: Pick,
        size: Size,
        (shared, write, exec): (bool, bool, bool),
        populate: bool,
        off_grid: bool,
    ) -> Step {
        if self.maps.len() >= MAX_MAPS {
            return Step::Skip;
        }
        let fd = self.fds[slot].as_ref().expect("open");
        let (offset, named) = self.resolve(slot, pick);
        let (kind, resource_pages, is_pool) = match named {
            Named::Obj(o) => (
                self.objs[o].kind,
                Some(self.objs[o].pages),
                self.objs[o].spec.is_some(),
            ),
            Named::State => (Kind::Eager, Some(1), false),
            Named::Nothing => (Kind::Eager, None, false),
        };
        let pages = match size {
            Size::Pages(n) => n,
            Size::Whole => resource_pages.unwrap_or(1),
        };
        let off_grid = off_grid && kind == Kind::Huge;
        let prot = libc::PROT_READ
            | if write { libc::PROT_WRITE } else { 0 }
            | if exec { libc::PROT_EXEC } else { 0 };
        let flags = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        } | if populate { libc::MAP_POPULATE } else { 0 };
        let is_state = named == Named::State;
        let pool_file = fd.pool_file.is_some();
        let aligned = kind == Kind::Huge && !off_grid && pages >= PMD_PAGES;
        let step = |expect| Step::Mmap {
            slot,
            offset,
            len: pages * PAGE,
            prot,
            flags,
            off_grid,
            aligned,
            expect,
        };
        // In the order the kernel and then the driver check.
        let refusal = if matches!(pick, Pick::Misaligned(_)) {
            Some(libc::EINVAL)
        } else if !fd.readable {
            // The kernel maps no file opened without read access, shared or private.
            self.tags.push(Tag::WriteOnlyRefused);
            Some(libc::EACCES)
        } else if shared && write && !fd.writable {
            Some(libc::EACCES)
        } else if pool_file && exec {
            // A pool file is an anonymous inode, whose filesystem is noexec (7.3): the kernel
            // refuses PROT_EXEC before the driver sees the request.
            Some(libc::EPERM)
        } else if resource_pages.is_none_or(|s| pages > s) {
            Some(libc::EINVAL)
        } else if (is_state && write) || exec {
            Some(libc::EPERM)
        } else if pool_file && !fd.writable && (write || !shared) {
            // A read-only pool file never maps writable, nor privately (a copy is writable).
            Some(libc::EPERM)
        } else if kind.pfn() && !shared && mutation() != Mutation::PfnPrivate {
            self.tags.push(Tag::PrivatePfnRefused);
            Some(libc::EINVAL)
        } else {
            None
        };
        if let Some(e) = refusal {
            if pool_file && !fd.writable && matches!(e, libc::EACCES | libc::EPERM) {
                self.tags.push(Tag::ReadOnlyFileRefused);
            }
            return step(Expect::Errno(e));
        }
        let maywrite = !is_state && (!shared || write) && (fd.writable || !shared);
        let entry = match kind {
            Kind::Eager | Kind::Contig => Entry::Pte,
            Kind::Lazy(_) | Kind::Huge => Entry::Absent,
        };
        let grid = match kind {
            Kind::Huge if off_grid => Some(1),
            Kind::Huge if aligned => Some(0),
            _ => None,
        };
        let mut map = Map {
            file: fd.file,
            obj: match named {
                Named::Obj(o) => Some(o),
                _ => None,
            },
            kind,
            shared,
            maywrite,
            dontfork: false,
            nohuge: false,
            soft_clean: false,
            first: 0,
            grid,
            pages: (0..pages)
                .map(|i| MapPage {
                    vma_start: i == 0,
                    write,
                    copy: None,
                    entry,
                })
                .collect(),
        };
        // MAP_POPULATE of a private writable mapping faults every page for write, which
        // breaks copy-on-write up front: each page is a private copy of the resource as it is
        // now, and later changes to the resource stay unseen.
        if populate && write && !shared {
            for p in 0..pages {
                map.pages[p].copy = Some(self.page_view(&map, p));
            }
        }
        if is_pool {
            self.tags.push(match kind {
                Kind::Eager => Tag::MapEager,
                Kind::Lazy(_) => Tag::MapLazy,
                Kind::Contig => Tag::MapContig,
                Kind::Huge => Tag::MapHuge,
            });
        }
        if aligned {
            self.tags.push(Tag::MapHugeAligned);
        }
        if off_grid {
            self.tags.push(Tag::MapHugeOffGrid);
        }
        if pool_file {
            self.tags.push(Tag::MapPoolFile);
        }
        self.maps.push(map);
        // Eager and contiguous maps insert every page at `mmap`. MAP_POPULATE then faults
        // the rest in order (the kernel's populate skips PFN maps).
        let mut delta = [0, if entry == Entry::Pte { pages as u64 } else { 0 }, 0];
        if populate && !kind.pfn() {
            let i = self.maps.len() - 1;
            for p in 0..pages {
                let d = self.touch(i, p);
                for (a, b) in delta.iter_mut().zip(d) {
                    *a += b;
                }
            }
        }
        self.delta = Some(delta);
        step(Expect::Ok)
    }

    /// `munmap` of part of a mapping: the VMAs that stay, and the 2 MiB entries the cut drops.
    pub(super) fn munmap(&mut self, map: Index, part: Part) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let len = self.maps[i].pages.len();
        let (page, pages, split) = match part {
            Part::Whole => (0, len, false),
            Part::Head => (0, 1, false),
            Part::Tail => (len - 1, 1, false),
            Part::Middle if len >= 3 => (len / 2, 1, true),
            Part::Middle => (0, len, false),
        };
        self.cut(i, page);
        self.cut(i, page + pages);
        if pages == len {
            self.maps.remove(i);
        } else if split {
            let m = &mut self.maps[i];
            let mut tail: Vec<MapPage> = m.pages.split_off(page);
            tail.remove(0);
            tail[0].vma_start = true;
            let second = Map {
                first: m.first + page + 1,
                grid: m.grid.map(|g| (g + page + 1) % PMD_PAGES),
                pages: tail,
                ..m.clone()
            };
            self.maps.insert(i + 1, second);
        } else if page == 0 {
            let m = &mut self.maps[i];
            m.pages.remove(0);
            m.pages[0].vma_start = true;
            m.first += 1;
            m.grid = m.grid.map(|g| (g + 1) % PMD_PAGES);
        } else {
            self.maps[i].pages.pop();
        }
        Step::Munmap {
            map: i,
            page,
            pages,
            split,
        }
    }

    /// `mprotect` of a VMA (or its first page): refused past `VM_MAYWRITE`, never executable.
    pub(super) fn mprotect(
        &mut self,
        map: Index,
        vma: Index,
        first_page_only: bool,
        prot: u8,
    ) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let vmas = Self::vmas(&self.maps[i]);
        let (start, n) = vmas[vma.index(vmas.len())];
        let n = if first_page_only { 1 } else { n };
        let (prot, want_write, exec) = match prot % 3 {
            0 => (libc::PROT_READ, false, false),
            1 => (libc::PROT_READ | libc::PROT_WRITE, true, false),
            _ => (libc::PROT_READ | libc::PROT_EXEC, false, true),
        };
        let m = &self.maps[i];
        let expect = if exec || (want_write && !m.maywrite) {
            if want_write
                && self
                    .fds
                    .iter()
                    .flatten()
                    .any(|f| f.file == m.file && f.pool_file.is_some() && !f.writable)
            {
                self.tags.push(Tag::ReadOnlyFileRefused);
            }
            Expect::Errno(libc::EACCES)
        } else {
            if m.pages[start].write != want_write {
                self.cut(i, start);
                self.cut(i, start + n);
                let m = &mut self.maps[i];
                for p in &mut m.pages[start..start + n] {
                    p.write = want_write;
                }
                if let Some(after) = m.pages.get_mut(start + n) {
                    after.vma_start = true;
                }
            }
            Expect::Ok
        };
        Step::Mprotect {
            map: i,
            page: start,
            pages: n,
            prot,
            expect,
        }
    }

    /// `madvise` of a whole mapping; page-frame maps refuse `DONTNEED` and `DOFORK`.
    pub(super) fn madvise(&mut self, map: Index, advice: Advice) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let m = &mut self.maps[i];
        let pfn = m.kind.pfn();
        let (advice, expect) = match advice {
            Advice::DontNeed if pfn => (libc::MADV_DONTNEED, Expect::Errno(libc::EINVAL)),
            Advice::DontNeed => {
                for p in &mut m.pages {
                    p.copy = None;
                    p.entry = Entry::Absent;
                }
                (libc::MADV_DONTNEED, Expect::Ok)
            }
            Advice::DontFork => {
                m.dontfork = true;
                (libc::MADV_DONTFORK, Expect::Ok)
            }
            // Linux 7.3 refuses MADV_DOFORK on every `VM_SPECIAL` VMA (6.12: `VM_IO` only), and
            // every pktmap mapping is `VM_DONTEXPAND`, so it is `EINVAL` for all of them.
            Advice::DoFork => (libc::MADV_DOFORK, Expect::Errno(libc::EINVAL)),
            Advice::WipeOnFork => (libc::MADV_WIPEONFORK, Expect::Errno(libc::EINVAL)),
            Advice::NoHugePage => {
                m.nohuge = true;
                self.tags.push(Tag::ThpOptOut);
                (libc::MADV_NOHUGEPAGE, Expect::Ok)
            }
        };
        if pfn && matches!(advice, libc::MADV_DONTNEED | libc::MADV_DOFORK) {
            self.tags.push(Tag::PfnAdviceRefused);
        }
        Step::Madvise {
            map: i,
            advice,
            expect,
        }
    }

    /// `mremap` of a mapping's last VMA: growing is `EFAULT` (`VM_DONTEXPAND`), shrinking works.
    pub(super) fn mremap(&mut self, map: Index, grow: bool) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let vmas = Self::vmas(&self.maps[i]);
        let (start, n) = *vmas.last().expect("a mapping has a VMA");
        if grow {
            Step::Mremap {
                map: i,
                page: start,
                old: n,
                new: n + 1,
                expect: Expect::Errno(libc::EFAULT),
            }
        } else if n >= 2 {
            let last = self.maps[i].pages.len() - 1;
            self.cut(i, last);
            self.maps[i].pages.pop();
            Step::Mremap {
                map: i,
                page: start,
                old: n,
                new: n - 1,
                expect: Expect::Ok,
            }
        } else {
            Step::Skip
        }
    }

    /// `msync(MS_SYNC)` of a whole mapping: the file's `fsync` for a shared one (the device's
    /// or a pool file's, both successes), nothing for a private one.
    pub(super) fn msync(&mut self, map: Index) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        self.tags.push(Tag::Msync);
        Step::Msync {
            map: i,
            expect: Expect::Ok,
        }
    }

    /// `prctl(PR_SET_THP_DISABLE, on)`: from now on no fault of the process maps a 2 MiB
    /// entry (the kernel checks it at each fault, for every VMA); entries already mapped stay.
    pub(super) fn thp_disable(&mut self, on: bool) -> Step {
        self.thp_off = on;
        if on {
            self.tags.push(Tag::ThpOptOut);
        }
        Step::ThpDisable { on }
    }

    /// `clear_refs` with 4 (soft-dirty): every VMA of the process loses `VM_SOFTDIRTY`, and
    /// with it the write bit of entries made from now on for a read, and of those already
    /// there (but page-frame maps', which the walk skips); the next store through such an
    /// entry takes a write fault that must complete. Nothing the reads see changes.
    pub(super) fn clear_refs(&mut self) -> Step {
        for m in &mut self.maps {
            m.soft_clean = true;
        }
        self.tags.push(Tag::ClearRefs);
        Step::ClearRefs
    }

    /// A store through a mapping: the fault it takes, and where the byte lands (the resource or
    /// a private copy); `SIGSEGV` where the page is not writable.
    pub(super) fn poke(&mut self, map: Index, at: Index, value: u8) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let offset = at.index(self.maps[i].pages.len() * PAGE);
        let p = offset / PAGE;
        let expect = if !self.maps[i].pages[p].write {
            // Refused before any fault handler runs (in a child).
            self.delta = Some([0; 3]);
            Expect::Signal(libc::SIGSEGV)
        } else {
            let d = self.touch(i, p);
            // After `clear_refs`, a store through a present 2 MiB entry the kernel kept
            // read-only reaches the driver's `.huge_fault`, which makes it writable in place:
            // whether that counts as a fault is the driver's business, so only the store's
            // completing and its byte are predicted.
            let m = &self.maps[i];
            self.delta = if m.soft_clean && m.kind == Kind::Huge {
                self.tags.push(Tag::SoftDirtyStore);
                None
            } else {
                Some(d)
            };
            let m = &self.maps[i];
            if m.shared {
                let o = m.obj.expect("a writable mapping is not STATE");
                let at = (m.first + p) * PAGE + offset % PAGE;
                self.objs[o].data[at] = value;
            } else {
                let mut view = self.page_view(m, p);
                view[offset % PAGE] = value;
                self.maps[i].pages[p].copy = Some(view);
            }
            Expect::Ok
        };
        Step::Poke {
            map: i,
            offset,
            value,
            expect,
        }
    }

    /// A load through a mapping: the byte the model knows there, and the fault it takes.
    pub(super) fn peek(&mut self, map: Index, at: Index) -> Step {
        let Some(i) = self.resolve_map(map) else {
            return Step::Skip;
        };
        let m = &self.maps[i];
        let offset = at.index(m.pages.len() * PAGE);
        match self.byte(m, offset) {
            Some(b) => {
                self.delta = Some(self.touch(i, offset / PAGE));
                Step::Peek {
                    map: i,
                    offset,
                    expect: Expect::Bytes(vec![b]),
                }
            }
            None => Step::Skip,
        }
    }

    /// `fork`: the bytes the child must see through every inherited mapping, its store through
    /// the first writable shared one, and the `DONTFORK` one it must not inherit.
    pub(super) fn fork(&mut self, value: u8) -> Step {
        let mut checks = Vec::new();
        for (i, m) in self.maps.iter().enumerate() {
            if m.dontfork {
                continue;
            }
            for p in 0..m.pages.len() {
                if let Some(b) = self.byte(m, p * PAGE) {
                    checks.push((i, p * PAGE, b));
                }
            }
        }
        let store = self
            .maps
            .iter()
            .enumerate()
            .find(|(_, m)| m.shared && !m.dontfork && m.pages[0].write)
            .map(|(i, _)| (i, 1, value));
        if let Some((i, offset, v)) = store {
            let m = &self.maps[i];
            let o = m.obj.expect("writable");
            self.objs[o].data[m.first * PAGE + offset] = v;
        }
        let dontfork = self.maps.iter().position(|m| m.dontfork);
        let expect = if dontfork.is_some() {
            Expect::Signal(libc::SIGSEGV)
        } else {
            Expect::Ok
        };
        Step::Fork {
            checks,
            store,
            dontfork,
            expect,
        }
    }
}
