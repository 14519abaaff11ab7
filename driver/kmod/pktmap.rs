// SPDX-License-Identifier: GPL-2.0

//! `pktmap`: the `/dev/pktmap` misc device, mapping packet-buffer pools into user space by an
//! encoded `mmap` offset.
//!
//! This is the pipeline-proving version of the driver: every kernel hook the full driver needs
//! is wired and exercised by the guest tests (per-open state, `ioctl`, `pread`/`pwrite`, `mmap`
//! with eager insertion, `.open`/`.close`/`.fault`, `VM_DONTEXPAND`, clearing `VM_MAYWRITE`),
//! over the STATE page and pools. Rings are not implemented yet (`RING_*` is `ENOTTY`).
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
use abi::ioctl::{self as abi_ioctl, PoolCreate, PoolInfo, ResourceId, State, STATE_MAGIC};
use abi::plan::{self, Fill, MmapRequest, PlanError, PoolGeometry, Resource};
use sys::{Fault, FileOps, NewVma, Registration, SharedPage, UserIn, UserOut, VmOps};

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

/// A packet-buffer pool: its pages, allocated at `POOL_CREATE`.
pub struct Pool {
    device: Arc<Device>,
    geometry: PoolGeometry,
    pages: KVVec<SharedPage>,
}

impl Pool {
    fn new(device: &Arc<Device>, geometry: PoolGeometry) -> Result<Arc<Self>> {
        let n = usize::try_from(geometry.pages).map_err(|_| ENOMEM)?;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            pages.push(SharedPage::new()?, GFP_KERNEL)?;
        }
        let pool = Arc::new(
            Pool {
                device: device.clone(),
                geometry,
                pages,
            },
            GFP_KERNEL,
        )?;
        device.update(|s| {
            s.pools += 1;
            s.pages_allocated += geometry.pages;
        });
        Ok(pool)
    }

    fn bytes(&self) -> u64 {
        self.geometry.pages * PAGE_SIZE as u64
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let pages = self.geometry.pages;
        self.device.update(|s| {
            s.pools = gauge_sub(s.pools, 1, "pools");
            s.pages_allocated = gauge_sub(s.pages_allocated, pages, "pages_allocated");
        });
    }
}

/// What an offset names: the STATE page or a pool.
#[derive(Clone)]
enum Target {
    State,
    Pool(Arc<Pool>),
}

impl Target {
    fn page<'a>(&'a self, device: &'a Device, index: usize) -> Option<&'a SharedPage> {
        match self {
            Target::State if index == 0 => Some(&device.state_page),
            Target::State => None,
            Target::Pool(pool) => pool.pages.get(index),
        }
    }

    fn pages(&self) -> usize {
        match self {
            Target::State => 1,
            Target::Pool(pool) => pool.pages.len(),
        }
    }
}

/// The resources of one open file.
struct Table {
    pools: RBTree<u32, Arc<Pool>>,
    live: u32,
    next_id: u32,
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
        match map_type {
            resource_type::STATE if id == 0 => Some((Target::State, Resource::State)),
            resource_type::POOL => {
                let table = self.table.lock();
                let pool = table.pools.get(&id)?.clone();
                let resource = Resource::Pool {
                    pages: pool.geometry.pages,
                    lazy: pool.geometry.lazy,
                };
                Some((Target::Pool(pool), resource))
            }
            _ => None,
        }
    }

    /// The resource a `pread`/`pwrite` position names (strictly decoded, no in-resource offset).
    fn target_at(&self, pos: i64) -> Result<Target> {
        let pos = u64::try_from(pos).map_err(|_| EINVAL)?;
        let (map_type, id) = PKTMAP.decode(pos).map_err(|e| plan_err(e.into()))?;
        let id = u32::try_from(id).map_err(|_| EINVAL)?;
        self.lookup(map_type, id).map(|(t, _)| t).ok_or(EINVAL)
    }

    fn pool(&self, id: u32) -> Result<Arc<Pool>> {
        self.table.lock().pools.get(&id).cloned().ok_or(EINVAL)
    }

    fn pool_create(&self, arg: UserPtr) -> Result<isize> {
        let mut req: PoolCreate = sys::read_user(arg)?;
        let geometry = plan::check_pool(&req).map_err(plan_err)?;
        {
            let table = self.table.lock();
            if table.live >= abi_ioctl::MAX_RESOURCES {
                return Err(ENOSPC);
            }
        }
        let pool = Pool::new(&self.device, geometry)?;
        let id = {
            let mut table = self.table.lock();
            if table.live >= abi_ioctl::MAX_RESOURCES {
                return Err(ENOSPC);
            }
            let id = table.next_id;
            table.next_id = id.checked_add(1).ok_or(ENOSPC)?;
            table.pools.try_create_and_insert(id, pool, GFP_KERNEL)?;
            table.live += 1;
            id
        };
        req.id = id;
        if let Err(e) = sys::write_user(arg, &req) {
            // The caller cannot learn the id: undo, so the pool does not leak until close.
            let removed = self.remove_pool(id);
            drop(removed);
            return Err(e);
        }
        Ok(0)
    }

    fn remove_pool(&self, id: u32) -> Option<Arc<Pool>> {
        let mut table = self.table.lock();
        let removed = table.pools.remove(&id);
        if removed.is_some() {
            table.live -= 1;
        }
        removed
    }

    fn pool_info(&self, arg: UserPtr) -> Result<isize> {
        let mut info: PoolInfo = sys::read_user(arg)?;
        let pool = self.pool(info.id)?;
        info.buf_size = pool.geometry.buf_size;
        info.buf_count = pool.geometry.buf_count;
        info.flags = if pool.geometry.lazy {
            abi_ioctl::POOL_LAZY
        } else {
            0
        };
        info.bytes = pool.bytes();
        info.mmap_offset = PKTMAP
            .encode(resource_type::POOL, u64::from(info.id))
            .map_err(|_| EINVAL)?;
        drop(pool);
        sys::write_user(arg, &info)?;
        Ok(0)
    }
}

impl FileOps for Context {
    type Device = Device;

    fn open(device: &Arc<Device>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                device: device.clone(),
                table <- new_mutex!(
                    Table { pools: RBTree::new(), live: 0, next_id: 1 },
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
            abi_ioctl::POOL_DESTROY => {
                let req: ResourceId = sys::read_user(arg)?;
                // Mappings keep their own reference; the pages go with the last of them.
                let removed = this.remove_pool(req.id).ok_or(EINVAL)?;
                drop(removed);
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

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

    fn write(this: ArcBorrow<'_, Self>, input: &mut UserIn, pos: i64) -> Result {
        let target = this.target_at(pos)?;
        if matches!(target, Target::State) {
            return Err(EPERM);
        }
        if input.remaining() > target.pages() * PAGE_SIZE {
            return Err(EINVAL);
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

    fn mmap(this: ArcBorrow<'_, Self>, mut vma: NewVma<'_>) -> Result {
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
        vma.set_ops(mapping);
        Ok(())
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
