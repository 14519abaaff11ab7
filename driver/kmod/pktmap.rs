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

pub mod sys;

use abi::codec::{resource_type, PKTMAP};
use abi::ioctl::{
    self as abi_ioctl, PoolCreate, PoolInfo, ResourceId, RingCreate, RingHeader, RingInfo, State,
    STATE_MAGIC,
};
use abi::plan::{self, Fill, MmapRequest, PlanError, PoolGeometry, Resource};
use sys::{Fault, FileOps, Mapped, NewVma, Registration, SharedPage, UserIn, UserOut, VmOps};

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

/// A pool or a ring: its pages, allocated at `POOL_CREATE`/`RING_CREATE`, freed with the last
/// reference (the open file's table, and each mapping).
pub struct Buffer {
    device: Arc<Device>,
    kind: Kind,
    pages: KVVec<SharedPage>,
}

impl Buffer {
    fn new(device: &Arc<Device>, kind: Kind, pages: u64) -> Result<Arc<Self>> {
        let n = usize::try_from(pages).map_err(|_| ENOMEM)?;
        let mut v = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            v.push(SharedPage::new()?, GFP_KERNEL)?;
        }
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
            pages: v,
        };
        Ok(Arc::new(buffer, GFP_KERNEL)?)
    }

    fn pages(&self) -> u64 {
        self.pages.len() as u64
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
            Target::Buffer(b) => b.pages.get(index),
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
        let header = ring.pages.first().ok_or(EINVAL)?;
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
        let mut info: PoolInfo = sys::read_user(arg)?;
        let (pool, offset) = self.info(resource_type::POOL, info.id)?;
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
            let Some(page) = target.page(&this.device, index) else {
                break;
            };
            let n = out.remaining().min(PAGE_SIZE);
            out.copy_from_page(page, 0, n)?;
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
            let Some(page) = target.page(&this.device, index) else {
                break;
            };
            let n = input.remaining().min(PAGE_SIZE);
            input.copy_to_page(page, 0, n)?;
            index += 1;
        }
        Ok(())
    }

    fn mmap(this: ArcBorrow<'_, Self>, mut vma: NewVma<'_>) -> Result<Mapped> {
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
        let pages = usize::try_from(plan.pages).map_err(|_| EINVAL)?;

        // Allocate before touching the VMA, so nothing fails after pages are inserted.
        let mapping = Arc::new(
            Mapping {
                device: this.device.clone(),
                target: target.clone(),
                base_pgoff: vma.pgoff(),
            },
            GFP_KERNEL,
        )?;

        vma.set_dontexpand();
        if plan.read_only {
            vma.try_clear_maywrite()?;
        }
        let inserted = match plan.fill {
            Fill::Eager => {
                let all = (0..pages).filter_map(|i| target.page(&this.device, i));
                vma.insert_pages(0, all)?;
                plan.pages
            }
            Fill::Lazy => 0,
        };
        this.device.update(|s| {
            s.pages_mapped += inserted;
            s.live_mappings += 1;
        });
        Ok(vma.set_ops(mapping))
    }
}

/// Per-mapping state: what the mapping maps, and its `vm_pgoff` at `mmap` time.
pub struct Mapping {
    device: Arc<Device>,
    target: Target,
    /// The `vm_pgoff` user space passed; a split VMA's own `vm_pgoff` moves with its start.
    base_pgoff: usize,
}

impl VmOps for Mapping {
    fn open(this: ArcBorrow<'_, Self>) {
        this.device.update(|s| s.live_mappings += 1);
    }

    fn close(this: ArcBorrow<'_, Self>) {
        this.device
            .update(|s| s.live_mappings = gauge_sub(s.live_mappings, 1, "live_mappings"));
    }

    fn fault(this: ArcBorrow<'_, Self>, fault: &Fault<'_>) -> Result {
        let index = fault.pgoff().checked_sub(this.base_pgoff).ok_or(EFAULT)?;
        let page = this.target.page(&this.device, index).ok_or(EFAULT)?;
        if fault.insert_page(page)? {
            this.device.update(|s| {
                s.pages_mapped += 1;
                s.faults_served += 1;
            });
        }
        Ok(())
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
