// SPDX-License-Identifier: GPL-2.0

//! `pktmap`: the `/dev/pktmap` misc device, mapping packet-buffer pools into user space by an
//! encoded `mmap` offset.
//!
//! Every kernel hook the driver needs is wired and exercised by the guest tests: per-open state,
//! `ioctl`, `pread`/`pwrite`, `mmap` with eager insertion, `.open`/`.close`/`.fault`,
//! `VM_DONTEXPAND`, clearing `VM_MAYWRITE` — over the STATE page, pools (eager and lazy) and
//! rings.
//!
//! All `unsafe` lives in [`sys`]; this file is safe code. The offset codec, the ioctl ABI and
//! the request validation are the very files userspace compiles ([`abi`], pulled in by
//! `#[path]` from `driver/abi/src`).
//!
//! # Locking
//!
//! Locks are taken in this order: 1. the mmap lock (held by the VFS around `mmap`, `.open`,
//! `.close`, `.fault`), 2. a file's `Context::table`, 3. `Device::counters`. No lock of ours
//! is held while copying to or from user memory (a copy may fault and take the mmap lock).
//!
//! # Examples
//!
//! ```c
//! int fd = open("/dev/pktmap", O_RDWR);
//! struct pktmap_pool_create req = { .buf_size = 2048, .buf_count = 64 };
//! ioctl(fd, PKTMAP_POOL_CREATE, &req);               /* req.id is the new pool */
//! void *p = mmap(NULL, 64 * 2048, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
//!                (off_t)req.id << 15 | 1 << 12);     /* PKTMAP layout: POOL, id */
//! ```

use core::mem::offset_of;
use kernel::{
    c_str, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, ArcBorrow, Mutex},
    uaccess::UserPtr,
};

/// The shared contract, compiled from the same files as the `pktmap-abi` crate.
#[path = "../abi/src"]
#[forbid(unsafe_code)]
pub mod abi {
    pub mod codec;
    pub mod ioctl;
    pub mod plan;
}

pub mod pfn;
pub mod pool_file;
pub mod sys;

use abi::codec::{resource_type, PKTMAP};
use abi::ioctl::{
    self as abi_ioctl, PoolChunk, PoolCreate, PoolExport as PoolExportReq, PoolInfo, ResourceId, RingCreate, RingHeader, RingInfo, State,
    STATE_MAGIC,
};
use abi::plan::{
    self, Fill, MmapRequest, PlanError, PoolFill, PoolGeometry, PoolKind, PoolMapRequest, Resource,
};
use pfn::{Chunk, PfnFault, PfnOps};
use pool_file::{PendingFile, PoolFileOps};
use sys::{
    AreaAlign, Fault, FileOps, Mapped, NewVma, Registration, SharedPage, UserIn, UserOut, VmOps,
};

module! {
    type: PktmapModule,
    name: "pktmap",
    author: "pktmap developers",
    description: "Map packet-buffer pools into user space by an encoded mmap offset",
    license: "GPL",
}

/// The errno of a refused request.
fn plan_err(e: PlanError) -> Error {
    Error::from_errno(-e.errno())
}

/// Device-wide state: the STATE page and the counters it shows.
#[pin_data]
pub struct Device {
    state_page: SharedPage,
    #[pin]
    counters: Mutex<State>,
}

impl Device {
    fn new() -> Result<Arc<Self>> {
        let state_page = SharedPage::new()?;
        let dev = Arc::pin_init(
            pin_init!(Self {
                state_page,
                counters <- new_mutex!(State { magic: STATE_MAGIC, ..State::default() }, "pktmap::counters"),
            }),
            GFP_KERNEL,
        )?;
        dev.update(|_| {});
        Ok(dev)
    }

    /// Changes the counters and republishes all of them to the STATE page.
    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut c = self.counters.lock();
        f(&mut c);
        let words = [
            (offset_of!(State, magic), c.magic),
            (offset_of!(State, pools), c.pools),
            (offset_of!(State, rings), c.rings),
            (offset_of!(State, pages_allocated), c.pages_allocated),
            (offset_of!(State, pages_mapped), c.pages_mapped),
            (offset_of!(State, faults_served), c.faults_served),
            (offset_of!(State, live_mappings), c.live_mappings),
            (offset_of!(State, pmd_faults), c.pmd_faults),
            (offset_of!(State, pool_files), c.pool_files),
        ];
        for (offset, value) in words {
            // Offsets of a `#[repr(C)]` struct of `u64`s: aligned and inside the page.
            let _ = self.state_page.store_u64(offset, value);
        }
    }
}

/// `a - b` for a gauge; an underflow is a driver bug, reported instead of panicking.
fn gauge_sub(a: u64, b: u64, what: &str) -> u64 {
    a.checked_sub(b).unwrap_or_else(|| {
        pr_err!("gauge {} underflow ({} - {})\n", what, a, b);
        0
    })
}

/// What a [`Buffer`] is.
#[derive(Clone, Copy)]
enum Kind {
    /// A packet-buffer pool.
    Pool(PoolGeometry),
    /// A descriptor ring of `entries` descriptors naming buffers of pool `pool_id`.
    Ring { entries: u32, pool_id: u32 },
}

/// A buffer's memory: single pages, or physically contiguous chunks of `chunk_pages` each.
enum Memory {
    Pages(KVVec<SharedPage>),
    Chunks {
        chunks: KVVec<Chunk>,
        chunk_pages: usize,
    },
}

/// One page of a buffer, for `pread`/`pwrite`.
enum PageRef<'a> {
    Shared(&'a SharedPage),
    /// A chunk and the byte offset of the page in it.
    Chunk(&'a Chunk, usize),
}

/// A pool or a ring: its memory, allocated at `POOL_CREATE`/`RING_CREATE`, freed with the last
/// reference (the open file's table, each mapping, each pool file).
pub struct Buffer {
    device: Arc<Device>,
    kind: Kind,
    memory: Memory,
}

impl Buffer {
    /// Allocates every page or chunk before anything is counted: a failure (`ENOMEM` when no
    /// contiguous block of the chunk's order is free) frees what was allocated, so there is
    /// never a partial pool.
    fn new(device: &Arc<Device>, kind: Kind, pages: u64) -> Result<Arc<Self>> {
        let n = usize::try_from(pages).map_err(|_| ENOMEM)?;
        let memory = match kind {
            Kind::Pool(g) if g.kind.is_pfn_map() => {
                let chunk_pages = usize::try_from(g.chunk_pages).map_err(|_| EINVAL)?;
                let count = n.checked_div(chunk_pages).ok_or(EINVAL)?;
                let wc = g.cache == plan::Cache::WriteCombine;
                let mut v = KVVec::with_capacity(count, GFP_KERNEL)?;
                for _ in 0..count {
                    v.push(Chunk::new(g.chunk_order(), wc)?, GFP_KERNEL)?;
                }
                Memory::Chunks {
                    chunks: v,
                    chunk_pages,
                }
            }
            _ => {
                let mut v = KVVec::with_capacity(n, GFP_KERNEL)?;
                for _ in 0..n {
                    v.push(SharedPage::new()?, GFP_KERNEL)?;
                }
                Memory::Pages(v)
            }
        };
        // Counted before the `Buffer` exists, so its `Drop` (even when `Arc::new` fails and
        // drops it) undoes exactly this.
        device.update(|s| {
            match kind {
                Kind::Pool(_) => s.pools += 1,
                Kind::Ring { .. } => s.rings += 1,
            }
            s.pages_allocated += pages;
        });
        let buffer = Buffer {
            device: device.clone(),
            kind,
            memory,
        };
        Ok(Arc::new(buffer, GFP_KERNEL)?)
    }

    fn pages(&self) -> u64 {
        match &self.memory {
            Memory::Pages(v) => v.len() as u64,
            Memory::Chunks {
                chunks,
                chunk_pages,
            } => (chunks.len() * chunk_pages) as u64,
        }
    }

    /// Page `index` as a single page (pools of single pages and rings).
    fn shared_page(&self, index: usize) -> Option<&SharedPage> {
        match &self.memory {
            Memory::Pages(v) => v.get(index),
            Memory::Chunks { .. } => None,
        }
    }

    /// The chunk that holds page `index`, and the page's index in it.
    fn chunk_of(&self, index: usize) -> Option<(&Chunk, usize)> {
        match &self.memory {
            Memory::Chunks {
                chunks,
                chunk_pages,
            } => Some((
                chunks.get(index.checked_div(*chunk_pages)?)?,
                index.checked_rem(*chunk_pages)?,
            )),
            Memory::Pages(_) => None,
        }
    }

    /// Page `index` for a copy.
    fn page_ref(&self, index: usize) -> Option<PageRef<'_>> {
        match &self.memory {
            Memory::Pages(v) => v.get(index).map(PageRef::Shared),
            Memory::Chunks { .. } => self
                .chunk_of(index)
                .map(|(c, i)| PageRef::Chunk(c, i * PAGE_SIZE)),
        }
    }

    /// The page frame that maps page `index` (chunked pools).
    fn pfn(&self, index: usize) -> Option<usize> {
        self.chunk_of(index).map(|(c, i)| c.pfn() + i)
    }

    /// The pool's geometry, if it is one.
    fn geometry(&self) -> Option<PoolGeometry> {
        match self.kind {
            Kind::Pool(g) => Some(g),
            Kind::Ring { .. } => None,
        }
    }

    fn bytes(&self) -> u64 {
        self.pages() * PAGE_SIZE as u64
    }

    /// What `plan_mmap` needs to know about it.
    fn resource(&self) -> Resource {
        match self.kind {
            Kind::Pool(g) => Resource::Pool {
                pages: self.pages(),
                lazy: g.lazy,
            },
            Kind::Ring { .. } => Resource::Ring {
                pages: self.pages(),
            },
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let (kind, pages) = (self.kind, self.pages());
        self.device.update(|s| {
            match kind {
                Kind::Pool(_) => s.pools = gauge_sub(s.pools, 1, "pools"),
                Kind::Ring { .. } => s.rings = gauge_sub(s.rings, 1, "rings"),
            }
            s.pages_allocated = gauge_sub(s.pages_allocated, pages, "pages_allocated");
        });
    }
}

/// What an offset names: the STATE page, a pool or a ring.
#[derive(Clone)]
enum Target {
    State,
    Buffer(Arc<Buffer>),
}

impl Target {
    fn page<'a>(&'a self, device: &'a Device, index: usize) -> Option<&'a SharedPage> {
        match self {
            Target::State if index == 0 => Some(&device.state_page),
            Target::State => None,
            Target::Buffer(b) => b.shared_page(index),
        }
    }

    fn page_ref<'a>(&'a self, device: &'a Device, index: usize) -> Option<PageRef<'a>> {
        match self {
            Target::Buffer(b) => b.page_ref(index),
            _ => self.page(device, index).map(PageRef::Shared),
        }
    }
}

/// The pools, or the rings, of one open file: ids from 1, at most `MAX_RESOURCES` live.
struct Namespace {
    map: RBTree<u32, Arc<Buffer>>,
    live: u32,
    next_id: u32,
}

impl Namespace {
    fn new() -> Self {
        Self {
            map: RBTree::new(),
            live: 0,
            next_id: 1,
        }
    }

    fn full(&self) -> bool {
        self.live >= abi_ioctl::MAX_RESOURCES
    }

    fn insert(&mut self, buffer: Arc<Buffer>) -> Result<u32> {
        if self.full() {
            return Err(ENOSPC);
        }
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or(ENOSPC)?;
        self.map.try_create_and_insert(id, buffer, GFP_KERNEL)?;
        self.live += 1;
        Ok(id)
    }

    fn get(&self, id: u32) -> Option<Arc<Buffer>> {
        self.map.get(&id).cloned()
    }

    fn remove(&mut self, id: u32) -> Option<Arc<Buffer>> {
        let removed = self.map.remove(&id);
        if removed.is_some() {
            self.live -= 1;
        }
        removed
    }
}

/// The resources of one open file.
struct Table {
    pools: Namespace,
    rings: Namespace,
}

impl Table {
    fn namespace(&mut self, map_type: u32) -> &mut Namespace {
        if map_type == resource_type::RING {
            &mut self.rings
        } else {
            &mut self.pools
        }
    }
}

/// Per-open state: each open file is an independent context with its own resources.
#[pin_data]
pub struct Context {
    device: Arc<Device>,
    #[pin]
    table: Mutex<Table>,
}

impl Context {
    /// Finds the resource of type `map_type` and id `id`.
    fn lookup(&self, map_type: u32, id: u32) -> Option<(Target, Resource)> {
        let buffer = match map_type {
            resource_type::STATE if id == 0 => return Some((Target::State, Resource::State)),
            resource_type::POOL => self.table.lock().pools.get(id)?,
            resource_type::RING => self.table.lock().rings.get(id)?,
            _ => return None,
        };
        let resource = buffer.resource();
        Some((Target::Buffer(buffer), resource))
    }

    /// The resource a `pread`/`pwrite` position names (strictly decoded, no in-resource offset).
    fn target_at(&self, pos: i64) -> Result<Target> {
        let pos = u64::try_from(pos).map_err(|_| EINVAL)?;
        let (map_type, id) = PKTMAP.decode(pos).map_err(|e| plan_err(e.into()))?;
        let id = u32::try_from(id).map_err(|_| EINVAL)?;
        self.lookup(map_type, id).map(|(t, _)| t).ok_or(EINVAL)
    }

    /// Stores a new buffer under a fresh id, tells user space the id through `report`, and
    /// takes it back out if that fails (the caller could never name it).
    fn publish(
        &self,
        map_type: u32,
        buffer: Arc<Buffer>,
        report: impl FnOnce(u32) -> Result,
    ) -> Result<isize> {
        let id = self.table.lock().namespace(map_type).insert(buffer)?;
        if let Err(e) = report(id) {
            let removed = self.table.lock().namespace(map_type).remove(id);
            drop(removed);
            return Err(e);
        }
        Ok(0)
    }

    fn pool_create(&self, arg: UserPtr) -> Result<isize> {
        let mut req: PoolCreate = sys::read_user(arg)?;
        let geometry = plan::check_pool(&req).map_err(plan_err)?;
        if self.table.lock().pools.full() {
            return Err(ENOSPC);
        }
        let pool = Buffer::new(&self.device, Kind::Pool(geometry), geometry.pages)?;
        self.publish(resource_type::POOL, pool, |id| {
            req.id = id;
            sys::write_user(arg, &req)
        })
    }

    fn ring_create(&self, arg: UserPtr) -> Result<isize> {
        let mut req: RingCreate = sys::read_user(arg)?;
        let pages = {
            let table = self.table.lock();
            if table.rings.full() {
                return Err(ENOSPC);
            }
            plan::check_ring(&req, |pool| table.pools.get(pool).is_some()).map_err(plan_err)?
        };
        let kind = Kind::Ring {
            entries: req.entries,
            pool_id: req.pool_id,
        };
        let ring = Buffer::new(&self.device, kind, pages)?;
        let header = ring.shared_page(0).ok_or(EINVAL)?;
        // Producer and consumer start at 0 (the page is zeroed).
        header.store_u32(offset_of!(RingHeader, entries), req.entries)?;
        header.store_u32(offset_of!(RingHeader, pool_id), req.pool_id)?;
        self.publish(resource_type::RING, ring, |id| {
            req.id = id;
            sys::write_user(arg, &req)
        })
    }

    fn info(&self, map_type: u32, id: u32) -> Result<(Arc<Buffer>, u64)> {
        let buffer = self
            .table
            .lock()
            .namespace(map_type)
            .get(id)
            .ok_or(EINVAL)?;
        let offset = PKTMAP.encode(map_type, u64::from(id)).map_err(|_| EINVAL)?;
        Ok((buffer, offset))
    }

    fn pool_info(&self, arg: UserPtr) -> Result<isize> {
        let info: PoolInfo = sys::read_user(arg)?;
        let (pool, offset) = self.info(resource_type::POOL, info.id)?;
        write_pool_info(arg, info, &pool, offset)
    }

    /// `POOL_EXPORT`: a new pool file for pool `id`; the descriptor is reported before it is
    /// installed, so a failed copy leaves none behind.
    fn pool_export(&self, arg: UserPtr) -> Result<isize> {
        let mut req: PoolExportReq = sys::read_user(arg)?;
        let read_only = plan::check_export(&req).map_err(plan_err)?;
        let buffer = self.table.lock().pools.get(req.id).ok_or(EINVAL)?;
        let export = Arc::new(
            PoolExport {
                device: self.device.clone(),
                buffer,
                read_only,
            },
            GFP_KERNEL,
        )?;
        self.device.update(|s| s.pool_files += 1);
        let pending = PendingFile::new(export, read_only)?;
        req.fd = pending.fd();
        sys::write_user(arg, &req)?;
        pending.install();
        Ok(0)
    }
}

/// Fills in `info` for `pool`, mapped at `offset`, and copies it out.
fn write_pool_info(arg: UserPtr, mut info: PoolInfo, pool: &Buffer, offset: u64) -> Result<isize> {
    let Kind::Pool(g) = pool.kind else {
        return Err(EINVAL);
    };
    info.buf_size = g.buf_size;
    info.buf_count = g.buf_count;
    info.flags = g.kind.flag();
    info.bytes = pool.bytes();
    info.mmap_offset = offset;
    info.fault_around = g.fault_around;
    info.cache = g.cache.value();
    info.chunk_bytes = g.chunk_pages * PAGE_SIZE as u64;
    sys::write_user(arg, &info)?;
    Ok(0)
}

impl Context {
    /// `POOL_CHUNK`: root only; the physical address of chunk `index` (a page of a pool of
    /// single pages).
    fn pool_chunk(&self, arg: UserPtr) -> Result<isize> {
        let mut q: PoolChunk = sys::read_user(arg)?;
        let mut found = None;
        let (index, bytes) = plan::check_chunk(&q, sys::capable_sys_admin(), |id| {
            let b = self.table.lock().pools.get(id)?;
            let g = b.geometry();
            found = Some(b);
            g
        })
        .map_err(plan_err)?;
        let pool = found.ok_or(EINVAL)?;
        let index = usize::try_from(index).map_err(|_| EINVAL)?;
        q.phys = match &pool.memory {
            Memory::Pages(v) => v.get(index).ok_or(EINVAL)?.phys(),
            Memory::Chunks { chunks, .. } => chunks.get(index).ok_or(EINVAL)?.phys(),
        };
        q.bytes = bytes;
        sys::write_user(arg, &q)?;
        Ok(0)
    }

    fn ring_info(&self, arg: UserPtr) -> Result<isize> {
        let mut info: RingInfo = sys::read_user(arg)?;
        let (ring, offset) = self.info(resource_type::RING, info.id)?;
        let Kind::Ring { entries, pool_id } = ring.kind else {
            return Err(EINVAL);
        };
        info.entries = entries;
        info.pool_id = pool_id;
        info.flags = 0;
        info.bytes = ring.bytes();
        info.mmap_offset = offset;
        sys::write_user(arg, &info)?;
        Ok(0)
    }

    fn destroy(&self, map_type: u32, arg: UserPtr) -> Result<isize> {
        let req: ResourceId = sys::read_user(arg)?;
        // Mappings keep their own reference; the pages go with the last of them.
        let removed = self.table.lock().namespace(map_type).remove(req.id);
        removed.map(|_| 0).ok_or(EINVAL)
    }
}

impl FileOps for Context {
    type Device = Device;

    fn open(device: &Arc<Device>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                device: device.clone(),
                table <- new_mutex!(
                    Table { pools: Namespace::new(), rings: Namespace::new() },
                    "pktmap::table"
                ),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            abi_ioctl::POOL_CREATE => this.pool_create(arg),
            abi_ioctl::POOL_INFO => this.pool_info(arg),
            abi_ioctl::POOL_DESTROY => this.destroy(resource_type::POOL, arg),
            abi_ioctl::POOL_CHUNK => this.pool_chunk(arg),
            abi_ioctl::POOL_EXPORT => this.pool_export(arg),
            abi_ioctl::RING_CREATE => this.ring_create(arg),
            abi_ioctl::RING_INFO => this.ring_info(arg),
            abi_ioctl::RING_DESTROY => this.destroy(resource_type::RING, arg),
            _ => Err(ENOTTY),
        }
    }

    /// Reads the resource from its start; a buffer longer than the resource gets a short read.
    fn read(this: ArcBorrow<'_, Self>, out: &mut UserOut, pos: i64) -> Result {
        // The lookup takes and drops the table lock; the copies below run with no lock held.
        let target = this.target_at(pos)?;
        let mut index = 0;
        while out.remaining() > 0 {
            let Some(page) = target.page_ref(&this.device, index) else {
                break;
            };
            let n = out.remaining().min(PAGE_SIZE);
            match page {
                PageRef::Shared(p) => out.copy_from_page(p, 0, n)?,
                PageRef::Chunk(c, off) => out.copy_from_chunk(c, off, n)?,
            }
            index += 1;
        }
        Ok(())
    }

    /// Writes the resource from its start; a buffer longer than the resource gets a short
    /// write. The STATE page is `EPERM`.
    fn write(this: ArcBorrow<'_, Self>, input: &mut UserIn, pos: i64) -> Result {
        let target = this.target_at(pos)?;
        if matches!(target, Target::State) {
            return Err(EPERM);
        }
        let mut index = 0;
        while input.remaining() > 0 {
            let Some(page) = target.page_ref(&this.device, index) else {
                break;
            };
            let n = input.remaining().min(PAGE_SIZE);
            match page {
                PageRef::Shared(p) => input.copy_to_page(p, 0, n)?,
                PageRef::Chunk(c, off) => input.copy_to_chunk(c, off, n)?,
            }
            index += 1;
        }
        Ok(())
    }

    fn mmap(this: ArcBorrow<'_, Self>, vma: NewVma<'_>) -> Result<Mapped> {
        let req = MmapRequest {
            pgoff: vma.pgoff() as u64,
            len: vma.len() as u64,
            write: vma.is_writable(),
        };
        let mut found = None;
        let plan = plan::plan_mmap(&req, |map_type, id| {
            let (target, resource) = this.lookup(map_type, id)?;
            found = Some(target);
            Some(resource)
        })
        .map_err(plan_err)?;
        let target = found.ok_or(EINVAL)?;
        map_target(&this.device, target, &plan, vma, false)
    }

    /// 2 MiB pools ask for a 2 MiB-aligned address, so every chunk maps by one PMD entry.
    fn area_align(this: ArcBorrow<'_, Self>, pgoff: usize) -> AreaAlign {
        let huge = PKTMAP
            .decode_pgoff(pgoff as u64)
            .ok()
            .filter(|&(t, _)| t == resource_type::POOL)
            .and_then(|(_, id)| this.table.lock().pools.get(u32::try_from(id).ok()?))
            .and_then(|b| b.geometry())
            .is_some_and(|g| g.kind == PoolKind::Huge);
        if huge {
            AreaAlign::Pmd
        } else {
            AreaAlign::Page
        }
    }
}

/// Sets up the new VMA for an accepted `plan` of `target`, for the device file or a pool file
/// (`read_only_file`: a read-only export).
///
/// Everything that can fail but the page insertion runs before the VMA is touched; if
/// inserting fails, `mmap` fails and the kernel unmaps what was inserted.
fn map_target(
    device: &Arc<Device>,
    target: Target,
    plan: &plan::Plan,
    mut vma: NewVma<'_>,
    read_only_file: bool,
) -> Result<Mapped> {
    let pages = usize::try_from(plan.pages).map_err(|_| EINVAL)?;
    let pool = match &target {
        Target::Buffer(b) => b.geometry(),
        Target::State => None,
    };
    let fill = match pool {
        Some(g) => {
            let req = PoolMapRequest {
                may_share: vma.may_share(),
                write: vma.is_writable(),
                read_only: read_only_file,
            };
            plan::plan_pool_map(&g, &req).map_err(plan_err)?
        }
        None if plan.fill == Fill::Lazy => PoolFill::Fault { around: 1 },
        None => PoolFill::Pages,
    };
    let around = match fill {
        PoolFill::Fault { around } => around,
        _ => 0,
    };
    let wc = pool.is_some_and(|g| g.cache == plan::Cache::WriteCombine);

    // Allocate before touching the VMA, so nothing fails after pages are inserted.
    let mapping = Arc::new(
        Mapping {
            device: device.clone(),
            target: target.clone(),
            base_pgoff: vma.pgoff(),
            around,
        },
        GFP_KERNEL,
    )?;

    vma.set_dontexpand();
    if plan.read_only || read_only_file {
        vma.try_clear_maywrite()?;
    }
    let count = |inserted: u64| {
        device.update(|s| {
            s.pages_mapped += inserted;
            s.live_mappings += 1;
        })
    };
    match (fill, &target) {
        (PoolFill::Pages, _) => {
            let all = (0..pages).filter_map(|i| target.page(device, i));
            vma.insert_pages(0, all)?;
            count(plan.pages);
            Ok(vma.set_ops(mapping))
        }
        (PoolFill::Fault { .. }, _) => {
            count(0);
            Ok(vma.set_ops(mapping))
        }
        (PoolFill::Remap, Target::Buffer(b)) => {
            vma.set_pfnmap(wc);
            let mut index = 0;
            while index < pages {
                let (chunk, _) = b.chunk_of(index).ok_or(EINVAL)?;
                let n = chunk.pages().min(pages - index);
                vma.remap_chunk(index, chunk, n)?;
                index += n;
            }
            count(plan.pages);
            Ok(pfn::set_pfn_ops(vma, mapping))
        }
        (PoolFill::HugeFault, Target::Buffer(_)) => {
            vma.set_pfnmap(wc);
            count(0);
            Ok(pfn::set_pfn_ops(vma, mapping))
        }
        _ => Err(EINVAL),
    }
}

/// Per-mapping state: what the mapping maps, its `vm_pgoff` at `mmap` time, and for lazy pools
/// the pages each fault maps.
pub struct Mapping {
    device: Arc<Device>,
    target: Target,
    /// The `vm_pgoff` user space passed; a split VMA's own `vm_pgoff` moves with its start.
    base_pgoff: usize,
    /// Pages per lazy fault (0 for mappings filled at `mmap` or by PFN faults).
    around: u32,
}

impl Mapping {
    fn buffer(&self) -> Result<&Arc<Buffer>> {
        match &self.target {
            Target::Buffer(b) => Ok(b),
            Target::State => Err(EFAULT),
        }
    }
}

impl VmOps for Mapping {
    fn open(this: ArcBorrow<'_, Self>) {
        this.device.update(|s| s.live_mappings += 1);
    }

    fn close(this: ArcBorrow<'_, Self>) {
        this.device
            .update(|s| s.live_mappings = gauge_sub(s.live_mappings, 1, "live_mappings"));
    }

    /// Maps the `around`-aligned window of pool pages that holds the faulting page, cut to
    /// the VMA and the pool ([`plan::fault_window`]), skipping pages already mapped.
    fn fault(this: ArcBorrow<'_, Self>, fault: &Fault<'_>) -> Result {
        let index = fault.pgoff().checked_sub(this.base_pgoff).ok_or(EFAULT)?;
        let (start, end, vma_pgoff) = fault.vma_geometry();
        let first = vma_pgoff.checked_sub(this.base_pgoff).ok_or(EFAULT)? as u64;
        let vma = first..first + ((end - start) / PAGE_SIZE) as u64;
        let resource_pages = match &this.target {
            Target::Buffer(b) => b.pages(),
            Target::State => 1,
        };
        let around = this.around.max(1);
        let window =
            plan::fault_window(index as u64, around, vma.clone(), resource_pages).ok_or(EFAULT)?;
        let addr = start + (window.start - vma.start) as usize * PAGE_SIZE;
        let pages = (window.start as usize..window.end as usize)
            .map(|i| this.target.page(&this.device, i).ok_or(EFAULT));
        // Collect first so a missing page fails the fault before anything is mapped.
        let mut v = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
        for p in pages {
            v.push(p?, GFP_KERNEL)?;
        }
        let inserted = fault.insert_pages(addr, v.iter().copied())?;
        if inserted > 0 {
            this.device.update(|s| {
                s.pages_mapped += inserted as u64;
                s.faults_served += 1;
            });
        }
        Ok(())
    }
}

impl PfnOps for Mapping {
    /// One 4 KiB entry: 2 MiB pools where a PMD cannot map, or a contiguous pool's page that
    /// lost its entry.
    fn pfn_fault(this: ArcBorrow<'_, Self>, fault: &PfnFault<'_>) -> Result {
        let index = fault.pgoff().checked_sub(this.base_pgoff).ok_or(EFAULT)?;
        let pfn = this.buffer()?.pfn(index).ok_or(EFAULT)?;
        fault.insert_pfn(pfn)?;
        this.device.update(|s| {
            s.pages_mapped += 1;
            s.faults_served += 1;
        });
        Ok(())
    }

    /// One 2 MiB entry, where the whole 2 MiB block lies in the VMA and is one chunk
    /// ([`plan::huge_fault_chunk`]); else the fault falls back to 4 KiB.
    fn pmd_fault(this: ArcBorrow<'_, Self>, fault: &PfnFault<'_>) -> Result<bool> {
        let buffer = this.buffer()?;
        let Some(g) = buffer.geometry() else {
            return Ok(false);
        };
        let index = fault.pgoff().checked_sub(this.base_pgoff).ok_or(EFAULT)?;
        let (start, end) = fault.vma_range();
        let chunk = plan::huge_fault_chunk(
            fault.address() as u64,
            index as u64,
            start as u64..end as u64,
            g.chunk_pages,
        );
        let Some(chunk) = chunk else {
            return Ok(false);
        };
        let first = usize::try_from(chunk * g.chunk_pages).map_err(|_| EFAULT)?;
        let pfn = buffer.pfn(first).ok_or(EFAULT)?;
        fault.insert_pfn_pmd(pfn)?;
        this.device.update(|s| {
            s.pages_mapped += g.chunk_pages;
            s.faults_served += 1;
            s.pmd_faults += 1;
        });
        Ok(true)
    }
}

/// An exported pool: the state of one pool file. It holds the pool (and the device) until
/// the file's last reference is gone; mappings made through it hold their own.
pub struct PoolExport {
    device: Arc<Device>,
    buffer: Arc<Buffer>,
    read_only: bool,
}

impl Drop for PoolExport {
    fn drop(&mut self) {
        self.device
            .update(|s| s.pool_files = gauge_sub(s.pool_files, 1, "pool_files"));
    }
}

impl PoolFileOps for PoolExport {
    /// Maps the pool at `PKTMAP.encode(POOL, 0)`, by the same rules as through the device.
    fn mmap(this: ArcBorrow<'_, Self>, vma: NewVma<'_>, read_only: bool) -> Result<Mapped> {
        let req = MmapRequest {
            pgoff: vma.pgoff() as u64,
            len: vma.len() as u64,
            write: vma.is_writable(),
        };
        let plan = plan::plan_mmap(&req, |map_type, id| {
            (map_type == resource_type::POOL && id == 0).then(|| this.buffer.resource())
        })
        .map_err(plan_err)?;
        let target = Target::Buffer(this.buffer.clone());
        map_target(&this.device, target, &plan, vma, read_only)
    }

    /// `POOL_INFO` for id 0; every other command is `ENOTTY`.
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            abi_ioctl::POOL_INFO => {
                let info: PoolInfo = sys::read_user(arg)?;
                if info.id != 0 {
                    return Err(EINVAL);
                }
                let offset = PKTMAP.encode(resource_type::POOL, 0).map_err(|_| EINVAL)?;
                write_pool_info(arg, info, &this.buffer, offset)
            }
            _ => Err(ENOTTY),
        }
    }

    fn area_align(this: ArcBorrow<'_, Self>, _pgoff: usize) -> AreaAlign {
        match this.buffer.geometry() {
            Some(g) if g.kind == PoolKind::Huge => AreaAlign::Pmd,
            _ => AreaAlign::Page,
        }
    }

    fn read_only(this: ArcBorrow<'_, Self>) -> bool {
        this.read_only
    }
}

/// The module: owns the misc device registration.
struct PktmapModule {
    _registration: Registration<Context>,
}

impl kernel::Module for PktmapModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let device = Device::new()?;
        let registration =
            Registration::<Context>::register(c_str!("pktmap"), 0o600, module, device)?;
        pr_info!("/dev/pktmap registered (minor {})\n", registration.minor());
        Ok(Self {
            _registration: registration,
        })
    }
}
