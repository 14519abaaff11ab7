// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/pktmap`: its pools and rings, and every file operation on it but
//! `mmap` (`mapping.rs`).
//!
//! # Locking
//!
//! Locks are taken in this order: 1. the mmap lock (held by the VFS around `mmap`, `.open`,
//! `.close`, `.fault`), 2. a file's `Context::table`. The device counters are atomics. No lock
//! of ours is held while copying to or from user memory (a copy may fault and take the mmap
//! lock).
#![forbid(unsafe_code)]

use crate::abi::codec::{pktmap_types, PAGE_SHIFT, PKTMAP};
use crate::abi::ioctl::{
    self as abi_ioctl, PoolChunk, PoolCreate, PoolExport as PoolExportReq, PoolInfo, ResourceId,
    RingCreate, RingHeader, RingInfo, State,
};
use crate::abi::packet::{
    check_attach, Attach, AttachPlan, AttachRing, MAX_ATTACHMENTS, RING_PACKET,
};
use crate::abi::plan::{self, Command, IoRequest};
use crate::device::DeviceState;
use crate::export::PoolExport;
use crate::mapping;
use crate::packet::{self, Attachment, RxPath, TxPath, Waiter};
use crate::plan_err;
use crate::resource::{Kind, PageRef, Resource, Target};
use crate::sys::{
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    mm::pfnmap::AreaAlign,
    netdev::{Rtnl, TxDev},
    task,
    uaccess::{IoctlArg, UserIn, UserOut},
    vm_ops::Mapped,
};
use core::mem::{offset_of, size_of};
use kernel::{
    fs::{file::flags, File},
    mm::virt::VmaNew,
    new_mutex, new_poll_condvar,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTree,
    sync::{poll::PollTable, Arc, ArcBorrow, Mutex},
};

/// `POLLIN`, `POLLOUT`, `POLLRDNORM`, `POLLWRNORM` (`<asm-generic/poll.h>`, the uapi values).
const POLLIN: u32 = 0x1;
const POLLOUT: u32 = 0x4;
const POLLRDNORM: u32 = 0x40;
const POLLWRNORM: u32 = 0x100;

/// The pools, or the rings, of one open file: ids from 1, at most `MAX_RESOURCES` live.
struct Namespace {
    map: RBTree<u32, Arc<Resource>>,
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

    fn insert(&mut self, resource: Arc<Resource>) -> Result<u32> {
        if self.full() {
            return Err(ENOSPC);
        }
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or(ENOSPC)?;
        self.map
            .try_create_and_insert(id, resource, GFP_KERNEL_ACCOUNT)?;
        self.live += 1;
        Ok(id)
    }

    fn get(&self, id: u32) -> Option<Arc<Resource>> {
        self.map.get(&id).cloned()
    }

    fn remove(&mut self, id: u32) -> Option<Arc<Resource>> {
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
    /// Packet attachments by id (from 1).
    attachments: RBTree<u32, Arc<Attachment>>,
    next_attachment: u32,
    /// Rings an attachment holds, or an `ATTACH` in progress has reserved: each stays here
    /// until its attachment has ended (its RX handler unregistered), so no second producer
    /// ever starts on it.
    attached_rings: KVec<u32>,
}

impl Table {
    fn namespace(&mut self, map_type: u32) -> &mut Namespace {
        if map_type == pktmap_types::RING {
            &mut self.rings
        } else {
            &mut self.pools
        }
    }

    /// Whether an attachment holds ring `id` (or an `ATTACH` reserved it).
    fn ring_attached(&self, id: u32) -> bool {
        self.attached_rings.contains(&id)
    }

    /// What the attach checks need to know of ring `id`.
    fn attach_ring(&self, id: u32) -> Option<AttachRing> {
        let ring = self.rings.map.get(&id)?;
        let Kind::Ring {
            entries,
            pool_id,
            flags,
            ..
        } = ring.kind
        else {
            return None;
        };
        Some(AttachRing {
            entries,
            pool_id,
            packet: flags == RING_PACKET,
            attached: self.ring_attached(id),
        })
    }

    /// Whether a ring of this table names pool `id`.
    fn ring_names(&self, id: u32) -> bool {
        self.rings
            .map
            .iter()
            .any(|(_, ring)| matches!(ring.kind, Kind::Ring { pool_id, .. } if pool_id == id))
    }
}

/// Per-open state: each open file is an independent context with its own resources.
#[pin_data]
pub struct Context {
    device: Arc<DeviceState>,
    #[pin]
    table: Mutex<Table>,
    /// The file's poll wait queue, woken by its RX rings when a program asked (need-wakeup).
    waiter: Arc<Waiter>,
}

impl Context {
    /// The device state.
    pub fn device(&self) -> &Arc<DeviceState> {
        &self.device
    }

    /// Finds the resource of type `map_type` and id `id`, with a reference to it.
    pub fn lookup(&self, map_type: u32, id: u32) -> Option<(plan::Resource, Target)> {
        let resource = match map_type {
            pktmap_types::STATE if id == 0 => return Some((plan::Resource::State, Target::State)),
            pktmap_types::POOL => self.table.lock().pools.get(id)?,
            pktmap_types::RING => self.table.lock().rings.get(id)?,
            _ => return None,
        };
        Some((resource.planned(), Target::Resource(resource)))
    }

    /// Stores a new resource under a fresh id, tells user space the id through `report`, and
    /// takes it back out if that fails (the caller could never name it).
    fn publish(
        &self,
        map_type: u32,
        resource: Arc<Resource>,
        report: impl FnOnce(u32) -> Result,
    ) -> Result<isize> {
        self.publish_if(map_type, resource, |_| true, report)
    }

    /// [`publish`](Self::publish), if `still` holds of the table in the lock hold that
    /// inserts (else `EINVAL`, and nothing is inserted).
    fn publish_if(
        &self,
        map_type: u32,
        resource: Arc<Resource>,
        still: impl FnOnce(&Table) -> bool,
        report: impl FnOnce(u32) -> Result,
    ) -> Result<isize> {
        let id = {
            let mut table = self.table.lock();
            if !still(&table) {
                return Err(EINVAL);
            }
            table.namespace(map_type).insert(resource)?
        };
        if let Err(e) = report(id) {
            let removed = self.table.lock().namespace(map_type).remove(id);
            drop(removed);
            return Err(e);
        }
        Ok(0)
    }

    fn pool_create(&self, arg: &IoctlArg) -> Result<isize> {
        let mut req: PoolCreate = arg.read()?;
        let geometry = plan::check_pool(&req).map_err(plan_err)?;
        if self.table.lock().pools.full() {
            return Err(ENOSPC);
        }
        let pool = Resource::new(&self.device, Kind::Pool(geometry), geometry.pages)?;
        self.publish(pktmap_types::POOL, pool, |id| {
            req.id = id;
            arg.write(&req)
        })
    }

    fn ring_create(&self, arg: &IoctlArg) -> Result<isize> {
        let mut req: RingCreate = arg.read()?;
        let (pages, pool) = {
            let table = self.table.lock();
            if table.rings.full() {
                return Err(ENOSPC);
            }
            let pool = table.pools.get(req.pool_id);
            let pages = plan::check_ring(&req, |_| pool.is_some()).map_err(plan_err)?;
            (pages, pool.ok_or(EINVAL)?)
        };
        let kind = Kind::Ring {
            entries: req.entries,
            pool_id: req.pool_id,
            flags: req.flags,
            pool,
        };
        let ring = Resource::new(&self.device, kind, pages)?;
        let header = ring.backing.page(0).ok_or(EINVAL)?;
        // Producer and consumer start at 0 (the page is zeroed).
        if req.flags == RING_PACKET {
            packet::init_ring(&ring, req.entries, req.pool_id)?;
        } else {
            header.store_u32(offset_of!(RingHeader, entries), req.entries)?;
            header.store_u32(offset_of!(RingHeader, pool_id), req.pool_id)?;
        }
        // The ring is published under the same lock hold that sees its pool still in the
        // table: a `POOL_DESTROY` that removed the pool meanwhile (the allocation above runs
        // unlocked) makes this `EINVAL`, as if it came first, and one that comes later finds
        // the ring and answers `EBUSY`. So no ring ever names a destroyed pool.
        let pool_id = req.pool_id;
        let Kind::Ring { pool: ref held, .. } = ring.kind else {
            return Err(EINVAL);
        };
        let held = held.clone();
        self.publish_if(
            pktmap_types::RING,
            ring,
            |table| {
                table
                    .pools
                    .map
                    .get(&pool_id)
                    .is_some_and(|p| Arc::ptr_eq(p, &held))
            },
            |id| {
                req.id = id;
                arg.write(&req)
            },
        )
    }

    fn info(&self, map_type: u32, id: u32) -> Result<(Arc<Resource>, u64)> {
        let resource = self
            .table
            .lock()
            .namespace(map_type)
            .get(id)
            .ok_or(EINVAL)?;
        let offset = PKTMAP.encode(map_type, u64::from(id)).map_err(|_| EINVAL)?;
        Ok((resource, offset))
    }

    fn pool_info(&self, arg: &IoctlArg) -> Result<isize> {
        let info: PoolInfo = arg.read()?;
        let (pool, offset) = self.info(pktmap_types::POOL, info.id)?;
        arg.write(&pool.pool_info(info, offset)?)?;
        Ok(0)
    }

    /// `POOL_CHUNK`: root only; the physical address of chunk `index` (a page, for a pool of
    /// single pages).
    fn pool_chunk(&self, arg: &IoctlArg) -> Result<isize> {
        let mut q: PoolChunk = arg.read()?;
        let plan = plan::check_chunk(&q, task::capable_sys_admin(), |id| {
            let pool = self.table.lock().pools.get(id)?;
            Some((pool.geometry()?, pool))
        })
        .map_err(plan_err)?;
        let index = usize::try_from(plan.index).map_err(|_| EINVAL)?;
        q.phys = plan.target.backing.chunk_phys(index).ok_or(EINVAL)?;
        q.bytes = plan.bytes;
        arg.write(&q)?;
        Ok(0)
    }

    /// `POOL_EXPORT`: a new pool file for pool `id`; the descriptor is reported before it is
    /// installed, so a failed copy leaves none behind. `readable`: whether this open may read
    /// (an export never grants more than the open it comes from).
    fn pool_export(&self, arg: &IoctlArg, readable: bool) -> Result<isize> {
        let mut req: PoolExportReq = arg.read()?;
        let read_only = plan::check_export(&req, readable).map_err(plan_err)?;
        let pool = self.table.lock().pools.get(req.id).ok_or(EINVAL)?;
        let pending = PoolExport::open_file(&self.device, pool, read_only)?;
        req.fd = pending.fd();
        arg.write(&req)?;
        pending.install();
        Ok(0)
    }

    fn ring_info(&self, arg: &IoctlArg) -> Result<isize> {
        let mut info: RingInfo = arg.read()?;
        let (ring, offset) = self.info(pktmap_types::RING, info.id)?;
        let Kind::Ring {
            entries,
            pool_id,
            flags,
            ..
        } = ring.kind
        else {
            return Err(EINVAL);
        };
        info.entries = entries;
        info.pool_id = pool_id;
        info.flags = flags;
        info.bytes = ring.bytes();
        info.mmap_offset = offset;
        arg.write(&info)?;
        Ok(0)
    }

    fn destroy(&self, map_type: u32, arg: &IoctlArg) -> Result<isize> {
        let req: ResourceId = arg.read()?;
        let removed = {
            let mut table = self.table.lock();
            if table.namespace(map_type).get(req.id).is_none() {
                return Err(EINVAL);
            }
            // A ring stays while an attachment holds it (its RX handler may be writing it).
            if map_type == pktmap_types::RING && table.ring_attached(req.id) {
                return Err(plan_err(plan::PlanError::Busy));
            }
            // A pool that a ring of this file names stays until the ring is destroyed, so
            // RING_INFO never names a destroyed pool.
            if map_type == pktmap_types::POOL && table.ring_names(req.id) {
                return Err(plan_err(plan::PlanError::Busy));
            }
            table.namespace(map_type).remove(req.id)
        };
        // Mappings keep their own reference; the pages go with the last of them (dropped here,
        // outside the table lock).
        removed.map(|_| 0).ok_or(EINVAL)
    }

    /// `ATTACH`: admission against this file's rings and pools (`abi::packet::check_attach`),
    /// the rings reserved, then the device found and bound under RTNL.
    fn attach(&self, arg: &IoctlArg) -> Result<isize> {
        let mut req: Attach = arg.read()?;
        let (plan, rx_ring, tx_ring, pool, id) = {
            let mut table = self.table.lock();
            if table.attachments.iter().count() >= MAX_ATTACHMENTS as usize {
                return Err(ENOSPC);
            }
            let plan = {
                let t = &*table;
                check_attach(
                    &req,
                    |id| t.attach_ring(id),
                    |id| t.pools.map.get(&id).and_then(|p| packet::packet_pool(p)),
                )
                .map_err(|e| Error::from_errno(-e.errno()))?
            };
            let rx_ring = plan.rx.and_then(|id| table.rings.get(id));
            let tx_ring = plan.tx.and_then(|id| table.rings.get(id));
            let pool = table.pools.get(req.pool_id).ok_or(EINVAL)?;
            let id = table.next_attachment;
            table.next_attachment = id.checked_add(1).ok_or(ENOSPC)?;
            for ring in [plan.rx, plan.tx].into_iter().flatten() {
                table.attached_rings.push(ring, GFP_KERNEL)?;
            }
            (plan, rx_ring, tx_ring, pool, id)
        };
        let unreserve = |table: &mut Table| {
            table
                .attached_rings
                .retain(|r| Some(*r) != plan.rx && Some(*r) != plan.tx)
        };
        let attachment = match self.bind(&plan, rx_ring, tx_ring, pool, id) {
            Ok(a) => a,
            Err(e) => {
                unreserve(&mut self.table.lock());
                return Err(e);
            }
        };
        let inserted = self
            .table
            .lock()
            .attachments
            .try_create_and_insert(id, attachment.clone(), GFP_KERNEL)
            .map(|_| ())
            .map_err(|_| ENOMEM);
        req.id = id;
        if let Err(e) = inserted.and_then(|()| arg.write(&req)) {
            // The caller cannot name it: undo it all.
            self.table.lock().attachments.remove(&id);
            self.end_attachment(&attachment);
            unreserve(&mut self.table.lock());
            return Err(e);
        }
        Ok(0)
    }

    /// The RTNL part of `ATTACH`: the device by ifindex, its RX handler and TX, listed for the
    /// notifier.
    fn bind(
        &self,
        plan: &AttachPlan,
        rx_ring: Option<Arc<Resource>>,
        tx_ring: Option<Arc<Resource>>,
        pool: Arc<Resource>,
        id: u32,
    ) -> Result<Arc<Attachment>> {
        let entries = |ring: &Resource| match ring.kind {
            Kind::Ring { entries, .. } => entries,
            Kind::Pool(_) => 0,
        };
        let rx_path = match rx_ring {
            Some(ring) => {
                let n = entries(&ring);
                Some(RxPath::new(
                    ring,
                    n,
                    pool.clone(),
                    plan.pool,
                    plan.mirror,
                    self.waiter.clone(),
                )?)
            }
            None => None,
        };
        let rtnl = Rtnl::lock();
        let dev = rtnl.dev_by_index(plan.ifindex).ok_or(ENODEV)?;
        let tx = match tx_ring {
            Some(ring) => {
                let n = entries(&ring);
                Some(TxPath::new(
                    ring,
                    n,
                    pool,
                    plan.pool,
                    TxDev::new(&rtnl, &dev),
                )?)
            }
            None => None,
        };
        let mut all = self.device.attachments().lock();
        let attachment = Attachment::new(&rtnl, &dev, id, (plan.rx, plan.tx), rx_path, tx)?;
        if let Err(e) = all.push(attachment.clone()) {
            attachment.end(&rtnl);
            return Err(e);
        }
        Ok(attachment)
    }

    /// Ends `attachment` under RTNL and drops it from the device's list.
    fn end_attachment(&self, attachment: &Arc<Attachment>) {
        let rtnl = Rtnl::lock();
        attachment.end(&rtnl);
        self.device.attachments().lock().remove(attachment);
    }

    /// `DETACH`: ends the attachment, then frees its rings for another.
    fn detach(&self, arg: &IoctlArg) -> Result<isize> {
        let req: ResourceId = arg.read()?;
        let attachment = self
            .table
            .lock()
            .attachments
            .remove(&req.id)
            .ok_or(EINVAL)?;
        self.end_attachment(&attachment);
        self.table
            .lock()
            .attached_rings
            .retain(|r| Some(*r) != attachment.rx_ring && Some(*r) != attachment.tx_ring);
        Ok(0)
    }

    /// `KICK`: sends what the attachment's TX ring holds; returns the slots released.
    fn kick(&self, arg: &IoctlArg) -> Result<isize> {
        let req: ResourceId = arg.read()?;
        let attachment = self
            .table
            .lock()
            .attachments
            .get(&req.id)
            .cloned()
            .ok_or(EINVAL)?;
        Ok(attachment.kick()? as isize)
    }

    /// `pread` of STATE: one consistent snapshot (then the rest of the page, zeros).
    fn read_state(&self, out: &mut UserOut, len: usize) {
        let words = self.device.snapshot().to_words();
        let mut bytes = [0u8; size_of::<State>()];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        let head = len.min(bytes.len());
        if out.copy_from_slice(&bytes[..head]) < head {
            return;
        }
        let rest = len - head;
        out.copy_from_page(self.device.state_page(), head, rest);
    }
}

impl MiscDevice for Context {
    type Ptr = Arc<Self>;
    type RegistrationData = Arc<DeviceState>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Self>> {
        let waiter = Arc::pin_init(new_poll_condvar!("pktmap::poll"), GFP_KERNEL_ACCOUNT)?;
        Arc::pin_init(
            pin_init!(Self {
                device: misc.data().clone(),
                table <- new_mutex!(
                    Table {
                        pools: Namespace::new(),
                        rings: Namespace::new(),
                        attachments: RBTree::new(),
                        next_attachment: 1,
                        attached_rings: KVec::new(),
                    },
                    "pktmap::table"
                ),
                waiter,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The last close: every attachment ends before the file's rings and pools can go.
    fn release(this: Arc<Self>, _file: &File) {
        let attachments = core::mem::replace(&mut this.table.lock().attachments, RBTree::new());
        {
            let rtnl = Rtnl::lock();
            let mut all = this.device.attachments().lock();
            for (_, a) in attachments.iter() {
                a.end(&rtnl);
                all.remove(a);
            }
        }
        // Ended: the rings and pools go with the file's table (and the attachments' own
        // references), outside every lock.
        drop(attachments);
        drop(this);
    }

    fn poll(this: ArcBorrow<'_, Self>, file: &File, table: &PollTable<'_>) -> u32 {
        table.register_wait(file, &this.waiter);
        let readable = this
            .table
            .lock()
            .attachments
            .iter()
            .any(|(_, a)| a.readable());
        // Always writable (TX waits for nothing: KICK copies and releases synchronously).
        let out = POLLOUT | POLLWRNORM;
        if readable {
            out | POLLIN | POLLRDNORM
        } else {
            out
        }
    }

    /// Dispatched on the request's direction, type and number; the argument is copied at the
    /// caller's struct size (`IoctlArg`, the contract's growth rule).
    fn ioctl(this: ArcBorrow<'_, Self>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let mode = file.flags() & flags::O_ACCMODE;
        let (writable, readable) = (mode != flags::O_RDONLY, mode != flags::O_WRONLY);
        let command = plan::check_ioctl(cmd, writable).map_err(plan_err)?;
        let arg = &IoctlArg::new(cmd, arg)?;
        match command {
            Command::PoolCreate => this.pool_create(arg),
            Command::PoolInfo => this.pool_info(arg),
            Command::PoolDestroy => this.destroy(pktmap_types::POOL, arg),
            Command::RingCreate => this.ring_create(arg),
            Command::RingInfo => this.ring_info(arg),
            Command::RingDestroy => this.destroy(pktmap_types::RING, arg),
            Command::PoolChunk => this.pool_chunk(arg),
            Command::PoolExport => this.pool_export(arg, readable),
            Command::Attach => this.attach(arg),
            Command::Detach => this.detach(arg),
            Command::Kick => this.kick(arg),
        }
    }

    /// Reads the resource the position names, from its byte 0; a buffer longer than the
    /// resource gets a short read, and so does one that faults part-way (`EFAULT` only if
    /// nothing was copied). The file position never moves: positions name resources, and one
    /// page past a pool's offset is another resource's (see the driver README).
    fn read(this: ArcBorrow<'_, Self>, _file: &File, out: &mut UserOut, pos: &mut i64) -> Result {
        let req = IoRequest {
            pos: *pos,
            len: out.remaining() as u64,
            write: false,
        };
        // The lookup takes and drops the table lock; the copies below run with no lock held.
        let plan = plan::plan_io(&req, |t, id| this.lookup(t, id)).map_err(plan_err)?;
        let len = usize::try_from(plan.len).map_err(|_| EINVAL)?;
        match &plan.target {
            Target::State => this.read_state(out, len),
            target => {
                let mut index = 0;
                while out.copied() < len {
                    let Some(page) = target.page_ref(&this.device, index) else {
                        break;
                    };
                    let want = (len - out.copied()).min(PAGE_SIZE);
                    let got = match page {
                        PageRef::Shared(p) => out.copy_from_page(p, 0, want),
                        PageRef::Chunk(c, off) => out.copy_from_chunk(c, off, want),
                    };
                    if got < want {
                        break;
                    }
                    index += 1;
                }
            }
        }
        if out.copied() == 0 && len > 0 {
            return Err(EFAULT);
        }
        Ok(())
    }

    /// Writes the resource the position names, from its byte 0, with the same short counts
    /// as `read`; bytes past a fault in the user buffer are left as they were. STATE is
    /// `EPERM`. The file position never moves.
    fn write(this: ArcBorrow<'_, Self>, _file: &File, input: &mut UserIn, pos: &mut i64) -> Result {
        let req = IoRequest {
            pos: *pos,
            len: input.remaining() as u64,
            write: true,
        };
        let plan = plan::plan_io(&req, |t, id| this.lookup(t, id)).map_err(plan_err)?;
        let len = usize::try_from(plan.len).map_err(|_| EINVAL)?;
        let mut index = 0;
        while input.copied() < len {
            let Some(page) = plan.target.page_ref(&this.device, index) else {
                break;
            };
            let want = (len - input.copied()).min(PAGE_SIZE);
            let got = match page {
                PageRef::Shared(p) => input.copy_to_page(p, 0, want)?,
                PageRef::Chunk(c, off) => input.copy_to_chunk(c, off, want)?,
            };
            if got < want {
                break;
            }
            index += 1;
        }
        if input.copied() == 0 && len > 0 {
            return Err(EFAULT);
        }
        Ok(())
    }

    /// Nothing to write back: the pages are memory, already seen by every mapping, so
    /// `fsync(2)` and `msync(MS_SYNC)` succeed.
    fn fsync(_this: ArcBorrow<'_, Self>, _file: &File) -> Result {
        Ok(())
    }

    /// Maps the resource `vma`'s offset names, after [`plan::plan_mmap`] admitted the request.
    fn mmap(this: ArcBorrow<'_, Self>, _file: &File, vma: &VmaNew) -> Result<Mapped> {
        let plan = plan::plan_mmap(&mapping::request(vma), |t, id| this.lookup(t, id))
            .map_err(plan_err)?;
        mapping::map(&this.device, plan, vma, false)
    }

    /// 2 MiB pools ask for a 2 MiB-aligned address, so every chunk maps by one PMD entry.
    fn area_align(this: ArcBorrow<'_, Self>, pgoff: usize) -> AreaAlign {
        // Decoded as `plan_mmap` will, without the populate bit.
        let bit = plan::MMAP_POPULATE >> PAGE_SHIFT;
        let pool = PKTMAP
            .decode_pgoff(pgoff as u64 & !bit)
            .ok()
            .filter(|&(t, _)| t == pktmap_types::POOL)
            .and_then(|(_, id)| this.table.lock().pools.get(u32::try_from(id).ok()?));
        mapping::area_align(pool.as_deref())
    }
}
