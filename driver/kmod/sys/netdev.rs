// SPDX-License-Identifier: GPL-2.0

//! Network devices, for the packet path (`abi::packet`): 7.3's Rust has no netdev
//! abstraction a driver can bind to, and its bindings leave `struct net_device` opaque and do
//! not declare `<linux/netdevice.h>`'s functions. This file declares the few exported ones the
//! path needs and wraps them:
//!
//! - [`Rtnl`]: the RTNL lock, held as a guard; device lookups and RX handler changes need it.
//! - [`Rtnl::dev_by_index`]: a device of the caller's network namespace, as a [`NetDev`]
//!   borrowed from the guard (no reference is taken: a device cannot go away while RTNL is
//!   held, and afterwards only its identity, [`DevId`], is kept).
//! - [`RxRegistration`]: an RX handler (`netdev_rx_handler_register`) that hands each frame,
//!   as an [`RxSkb`], to a [`RxHandler`]. The handler finds its data through a table of ours
//!   keyed by the device pointer, never through `dev->rx_handler_data` (an opaque struct).
//! - [`NetdevNotifier`]: `NETDEV_UNREGISTER` (a device deleted, moved to another namespace, or
//!   its namespace torn down), under RTNL.
//! - [`TxDev`]: a device pointer TX may use under RCU until the notifier clears it, and
//!   [`TxDev::xmit`], which builds a socket buffer from a frame and queues it
//!   (`__dev_queue_xmit`).
//!
//! Every constant restated here (`NETDEV_UNREGISTER`, `RX_HANDLER_*`, the offset of
//! `netdev_notifier_info.dev`, ...) and every `sk_buff` field read through the bindings is in
//! `scripts/layout/bindgen.list`, checked against C before the module builds.
//!
//! C headers: [`srctree/include/linux/netdevice.h`](srctree/include/linux/netdevice.h),
//! [`srctree/include/linux/skbuff.h`](srctree/include/linux/skbuff.h),
//! [`srctree/include/linux/rtnetlink.h`](srctree/include/linux/rtnetlink.h).

use super::{chunk::Chunk, page::SharedPage};
use core::{
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, AtomicUsize, Ordering},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_uint, c_ulong, c_void},
    prelude::*,
    sync::{rcu, Arc},
    types::Opaque,
};

/// `rx_handler_func_t`.
type RxHandlerFn = unsafe extern "C" fn(*mut *mut bindings::sk_buff) -> c_uint;

extern "C" {
    fn rtnl_lock();
    fn rtnl_unlock();
    // `struct net *`, declared opaque: the binding has a field of a type `improper_ctypes`
    // rejects (an empty `lock_class_key` without lockdep).
    fn __dev_get_by_index(net: *mut c_void, ifindex: c_int) -> *mut bindings::net_device;
    fn netdev_rx_handler_register(
        dev: *mut bindings::net_device,
        handler: Option<RxHandlerFn>,
        data: *mut c_void,
    ) -> c_int;
    fn netdev_rx_handler_unregister(dev: *mut bindings::net_device);
    fn register_netdevice_notifier(nb: *mut bindings::notifier_block) -> c_int;
    fn unregister_netdevice_notifier(nb: *mut bindings::notifier_block) -> c_int;
    fn __dev_queue_xmit(skb: *mut bindings::sk_buff, sb_dev: *mut bindings::net_device) -> c_int;
    fn eth_type_trans(skb: *mut bindings::sk_buff, dev: *mut bindings::net_device) -> u16;
    fn skb_push(skb: *mut bindings::sk_buff, len: c_uint) -> *mut c_void;
}

/// `NETDEV_UNREGISTER` (enum `netdev_cmd`).
const NETDEV_UNREGISTER: c_ulong = 6;
/// `RX_HANDLER_CONSUMED`: the handler took the frame (and freed it).
const RX_HANDLER_CONSUMED: c_uint = 0;
/// `RX_HANDLER_PASS`: the stack goes on as if there were no handler.
const RX_HANDLER_PASS: c_uint = 3;
/// `NET_XMIT_SUCCESS`.
const NET_XMIT_SUCCESS: c_int = 0;
/// `ETH_HLEN`.
const ETH_HLEN: c_uint = 14;

/// The RTNL lock, held until the guard drops.
pub struct Rtnl(PhantomData<*mut ()>);

impl Rtnl {
    /// Takes RTNL (sleeps).
    pub fn lock() -> Self {
        // SAFETY: Process context (every caller is an ioctl or `release`); RTNL is not held by
        // this task (our callers never nest it, and the notifier gets `&Rtnl` instead).
        unsafe { rtnl_lock() };
        Rtnl(PhantomData)
    }

    /// The device with `ifindex` in the current task's network namespace, if any.
    pub fn dev_by_index(&self, ifindex: u32) -> Option<NetDev<'_>> {
        let ifindex = c_int::try_from(ifindex).ok()?;
        // SAFETY: `get_current` is the running task. A task's `nsproxy` changes only by the
        // task itself (`setns`, `unshare`), so it is stable while this task runs this code, and
        // it holds a reference to its `net_ns`. Both fields are checked against C by
        // scripts/layout/bindgen.list.
        let net = unsafe {
            let task = bindings::get_current();
            let nsproxy = (*task).nsproxy;
            if nsproxy.is_null() {
                return None; // an exiting task
            }
            (*nsproxy).net_ns
        };
        // SAFETY: RTNL is held (`self`), as `__dev_get_by_index` requires; `net` is alive.
        let dev = unsafe { __dev_get_by_index(net.cast(), ifindex) };
        (!dev.is_null()).then_some(NetDev {
            dev,
            _rtnl: PhantomData,
        })
    }
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        // SAFETY: Taken in `lock`, once per guard; the notifier's `&Rtnl` is never dropped
        // (it is only ever lent).
        unsafe { rtnl_unlock() };
    }
}

/// A device's identity: its address, compared and never dereferenced. Valid as a key while
/// the device is registered; the notifier ends every use of it at `NETDEV_UNREGISTER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevId(usize);

/// A registered device, borrowed while RTNL is held.
pub struct NetDev<'a> {
    dev: *mut bindings::net_device,
    _rtnl: PhantomData<&'a Rtnl>,
}

impl NetDev<'_> {
    /// Its identity.
    pub fn id(&self) -> DevId {
        DevId(self.dev as usize)
    }
}

/// What an RX handler did with a frame.
pub enum RxVerdict {
    /// Let the stack have it too (mirror mode).
    Pass,
    /// The frame is ours: the stack never sees it. `delivered` says whether it reached the
    /// ring (the socket buffer is then consumed, else dropped with a reason drop monitors see).
    Steal {
        /// Whether the frame was delivered.
        delivered: bool,
    },
}

/// The receiving side of an attachment, called in softirq context for each frame of its
/// device, on any CPU (several at once).
pub trait RxHandler: Send + Sync + 'static {
    /// One frame, never modified (it may be shared with taps).
    fn receive(&self, skb: &RxSkb<'_>) -> RxVerdict;
}

/// A frame the RX handler was handed: a borrowed `struct sk_buff`, read only.
pub struct RxSkb<'a> {
    skb: *mut bindings::sk_buff,
    _frame: PhantomData<&'a bindings::sk_buff>,
}

impl RxSkb<'_> {
    /// The frame's length from its link-layer header (`skb->len + skb->mac_len`: at RX-handler
    /// time the stack has pulled the link-layer header, and `mac_len` is what it pulled).
    pub fn frame_len(&self) -> u32 {
        // SAFETY: The skb is valid for `'a` (the handler's call); both fields are plain
        // integers the RX path does not change under us (checked offsets: bindgen.list).
        let (len, mac_len) = unsafe { ((*self.skb).len, (*self.skb).mac_len) };
        len.saturating_add(u32::from(mac_len))
    }

    /// Whether it is a GRO/GSO super-frame (`skb_is_gso`: `skb_shinfo(skb)->gso_size != 0`).
    pub fn is_gso(&self) -> bool {
        // SAFETY: `skb_shinfo(skb)` is `skb->head + skb->end` (`NET_SKBUFF_DATA_USES_OFFSET`,
        // checked in bindgen.list), valid for the skb's life; `gso_size` is a plain u16.
        unsafe {
            let shinfo = (*self.skb)
                .head
                .add((*self.skb).end as usize)
                .cast::<bindings::skb_shared_info>();
            ptr::addr_of!((*shinfo).gso_size).read() != 0
        }
    }

    /// Copies the frame's first `len` bytes (from its link-layer header) to `dst`.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of `len` bytes that no Rust reference covers.
    unsafe fn copy_to(&self, dst: *mut u8, len: usize) -> Result {
        // SAFETY: The skb is valid; reading at a negative offset down to `-mac_len` is what
        // `skb_copy_bits` allows (the link-layer header sits in the linear head). It never
        // modifies the skb. `dst` is valid for `len` bytes (caller).
        let r = unsafe {
            let mac_len = c_int::from((*self.skb).mac_len);
            bindings::skb_copy_bits(
                self.skb,
                -mac_len,
                dst.cast(),
                c_int::try_from(len).map_err(|_| EINVAL)?,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(EFAULT)
        }
    }

    /// Copies the frame's first `len` bytes into `page` at byte `offset`.
    ///
    /// # Errors
    /// `EINVAL` if the range leaves the page, `EFAULT` if the frame is shorter than `len`.
    pub fn copy_to_page(&self, page: &SharedPage, offset: usize, len: usize) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > kernel::page::PAGE_SIZE {
            return Err(EINVAL);
        }
        page.with_mapped(|base| {
            // SAFETY: `base` maps the whole page and `offset + len <= PAGE_SIZE` (checked); the
            // page is shared with user space and never covered by a Rust reference.
            unsafe { self.copy_to(base.add(offset), len) }
        })
    }

    /// Copies the frame's first `len` bytes into `chunk` at byte `offset`.
    ///
    /// # Errors
    /// `EINVAL` if the range leaves the chunk, `EFAULT` if the frame is shorter than `len`.
    pub fn copy_to_chunk(&self, chunk: &Chunk, offset: usize, len: usize) -> Result {
        let dst = chunk.span(offset, len)?;
        // SAFETY: `span` checked that `len` bytes at `offset` are inside the chunk's kernel
        // mapping; the chunk is shared with user space and never covered by a Rust reference.
        unsafe { self.copy_to(dst, len) }
    }
}

/// The most devices with an RX handler of ours at once.
pub const MAX_RX_DEVICES: usize = 256;

/// One RX handler of ours: the device it serves, its data and the function that takes it.
struct RxSlot {
    /// The device (`DevId`'s address), 0 when free. Published last, cleared first.
    dev: AtomicUsize,
    /// `Arc::into_raw` of the handler's data.
    data: AtomicPtr<c_void>,
    /// The monomorphised `receive_raw::<T>`, as an address.
    func: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: RxSlot = RxSlot {
    dev: AtomicUsize::new(0),
    data: AtomicPtr::new(ptr::null_mut()),
    func: AtomicUsize::new(0),
};

/// The RX handlers of ours, written only under RTNL, read by [`rx_handler`] without a lock.
static RX_SLOTS: [RxSlot; MAX_RX_DEVICES] = [FREE_SLOT; MAX_RX_DEVICES];

type ReceiveRaw = unsafe fn(*const c_void, &RxSkb<'_>) -> RxVerdict;

/// # Safety
///
/// `data` is `Arc::into_raw` of an `Arc<T>` that stays alive for the call.
unsafe fn receive_raw<T: RxHandler>(data: *const c_void, skb: &RxSkb<'_>) -> RxVerdict {
    // SAFETY: `data` points to a live `T` (function safety requirement).
    let handler = unsafe { &*data.cast::<T>() };
    handler.receive(skb)
}

/// The `rx_handler` of every device we attach to: finds the slot of `skb->dev` and calls its
/// handler.
///
/// # Safety
///
/// Called by `__netif_receive_skb_core` under `rcu_read_lock`, in softirq context, with `*pskb`
/// a valid skb of a device whose `rx_handler` is this function.
unsafe extern "C" fn rx_handler(pskb: *mut *mut bindings::sk_buff) -> c_uint {
    // SAFETY: `*pskb` is a valid skb (function safety requirement); `dev` is checked in
    // bindgen.list.
    let skb = unsafe { *pskb };
    // SAFETY: As above.
    let dev = unsafe {
        (*skb)
            .__bindgen_anon_1
            .__bindgen_anon_1
            .__bindgen_anon_1
            .dev
    } as usize;
    for slot in &RX_SLOTS {
        if slot.dev.load(Ordering::Acquire) != dev {
            continue;
        }
        let data = slot.data.load(Ordering::Relaxed);
        let func = slot.func.load(Ordering::Relaxed);
        // SAFETY: A slot's `func` is a `ReceiveRaw` stored by `RxRegistration::register` before
        // its `dev` (release, paired with the acquire above), and both stay until the handler
        // is unregistered and a grace period (`synchronize_net` in
        // `netdev_rx_handler_unregister`) has passed: this call, which runs as the device's
        // handler, holds off that grace period. So `data` is the live `Arc` of that slot.
        let verdict = unsafe {
            let receive: ReceiveRaw = core::mem::transmute::<usize, ReceiveRaw>(func);
            receive(
                data,
                &RxSkb {
                    skb,
                    _frame: PhantomData,
                },
            )
        };
        return match verdict {
            RxVerdict::Pass => RX_HANDLER_PASS,
            RxVerdict::Steal { delivered } => {
                // SAFETY: The handler returns CONSUMED, so the skb reference the stack gave it
                // is ours to free, once; nothing touches it after.
                unsafe {
                    if delivered {
                        bindings::consume_skb(skb);
                    } else {
                        bindings::sk_skb_reason_drop(
                            ptr::null(),
                            skb,
                            bindings::skb_drop_reason_SKB_DROP_REASON_FULL_RING,
                        );
                    }
                }
                RX_HANDLER_CONSUMED
            }
        };
    }
    // A device whose handler was just unregistered (none of ours matches any more).
    RX_HANDLER_PASS
}

/// An RX handler of ours on one device; [`unregister`](Self::unregister) it under RTNL.
pub struct RxRegistration<T: RxHandler> {
    slot: usize,
    dev: *mut bindings::net_device,
    data: Option<Arc<T>>,
}

// SAFETY: The raw device pointer is only used under RTNL (`unregister`), from any thread.
unsafe impl<T: RxHandler> Send for RxRegistration<T> {}
// SAFETY: No method takes `&self`.
unsafe impl<T: RxHandler> Sync for RxRegistration<T> {}

impl<T: RxHandler> RxRegistration<T> {
    /// Makes `data` the RX handler of `dev`.
    ///
    /// # Errors
    /// `EBUSY` if the device has an RX handler (ours or another's: a bridge, a bond, macvlan),
    /// `ENOSPC` if [`MAX_RX_DEVICES`] devices have ours.
    pub fn register(rtnl: &Rtnl, dev: &NetDev<'_>, data: Arc<T>) -> Result<Self> {
        let _ = rtnl;
        let id = dev.dev as usize;
        if RX_SLOTS.iter().any(|s| s.dev.load(Ordering::Relaxed) == id) {
            return Err(EBUSY);
        }
        let slot = RX_SLOTS
            .iter()
            .position(|s| s.dev.load(Ordering::Relaxed) == 0)
            .ok_or(ENOSPC)?;
        let s = &RX_SLOTS[slot];
        let raw = Arc::into_raw(data.clone());
        s.data.store(raw.cast_mut().cast(), Ordering::Relaxed);
        s.func
            .store(receive_raw::<T> as ReceiveRaw as usize, Ordering::Relaxed);
        s.dev.store(id, Ordering::Release);
        // SAFETY: RTNL is held (`rtnl`) and `dev` is registered (borrowed from it).
        let r = unsafe { netdev_rx_handler_register(dev.dev, Some(rx_handler), ptr::null_mut()) };
        if r != 0 {
            // The device has another handler: ours never ran for it, so the slot can go now.
            s.dev.store(0, Ordering::Relaxed);
            // SAFETY: `raw` came from `Arc::into_raw` just above and no handler can hold it.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(Error::from_errno(r));
        }
        Ok(Self {
            slot,
            dev: dev.dev,
            data: Some(data),
        })
    }

    /// Removes the handler. When this returns, no CPU runs it any more (the kernel waits for
    /// a grace period), and the data's last use by the handler is over.
    pub fn unregister(mut self, rtnl: &Rtnl) {
        let _ = rtnl;
        // SAFETY: RTNL is held; the device is still registered: every registration is
        // unregistered at the latest by the `NETDEV_UNREGISTER` notifier, before the device
        // goes.
        unsafe { netdev_rx_handler_unregister(self.dev) };
        let s = &RX_SLOTS[self.slot];
        let raw = s.data.swap(ptr::null_mut(), Ordering::Relaxed);
        s.dev.store(0, Ordering::Release);
        // SAFETY: `raw` is the slot's `Arc::into_raw` from `register`, and the handler can no
        // longer run (above).
        drop(unsafe { Arc::<T>::from_raw(raw.cast_const().cast()) });
        self.data = None;
    }
}

impl<T: RxHandler> Drop for RxRegistration<T> {
    fn drop(&mut self) {
        // Every registration is unregistered explicitly (it needs RTNL, which a drop cannot
        // know whether it holds); a forgotten one would leave a handler on the device.
        if self.data.is_some() {
            pr_err!("pktmap: an RX registration was dropped without unregister\n");
        }
    }
}

/// Told when a device goes away (`NETDEV_UNREGISTER`), under RTNL.
pub trait NetdevEvents: Send + Sync + 'static {
    /// `dev` is being unregistered (deleted, or moved to another network namespace, or its
    /// namespace is going away): end every use of it before returning.
    fn unregister(&self, rtnl: &Rtnl, dev: DevId);
}

/// A netdevice notifier; deregistered on drop.
#[pin_data(PinnedDrop)]
pub struct NetdevNotifier<T: NetdevEvents> {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    events: Arc<T>,
}

// SAFETY: The notifier block is only touched by the notifier chain (under its lock) and by
// `PinnedDrop`; `T` is `Send + Sync`.
unsafe impl<T: NetdevEvents> Send for NetdevNotifier<T> {}
// SAFETY: As above.
unsafe impl<T: NetdevEvents> Sync for NetdevNotifier<T> {}

impl<T: NetdevEvents> NetdevNotifier<T> {
    /// Registers a notifier that calls `events` (made in place: the chain keeps its address).
    pub fn register(events: Arc<T>) -> impl PinInit<Self, Error> {
        // `events` is initialised before `nb` is registered, so `call` finds it set from the
        // first event on.
        try_pin_init!(Self {
            events,
            nb <- Opaque::try_ffi_init(|nb: *mut bindings::notifier_block| {
                // SAFETY: `nb` is valid for writes and pinned.
                unsafe {
                    nb.write(bindings::notifier_block {
                        notifier_call: Some(Self::call),
                        next: ptr::null_mut(),
                        priority: 0,
                    });
                }
                // SAFETY: `nb` is initialised and stays pinned until `PinnedDrop` deregisters
                // it; the rest of `Self` (`events`) is already initialised.
                to_result(unsafe { register_netdevice_notifier(nb) })
            }),
        })
    }

    /// # Safety
    ///
    /// The notifier chain's contract: `nb` is the block of a live [`NetdevNotifier<T>`], and
    /// `data` a `struct netdev_notifier_info *`; called under RTNL.
    unsafe extern "C" fn call(
        nb: *mut bindings::notifier_block,
        action: c_ulong,
        data: *mut c_void,
    ) -> c_int {
        if action != NETDEV_UNREGISTER {
            return bindings::NOTIFY_DONE as c_int;
        }
        // SAFETY: `nb` is the `nb` field of a pinned, registered `NetdevNotifier<T>`
        // (requirement), whose `events` was initialised before registration (`register`).
        // `Opaque<T>` is `repr(transparent)` over `T`.
        let this = unsafe {
            &*kernel::container_of!(nb.cast::<Opaque<bindings::notifier_block>>(), Self, nb)
        };
        // SAFETY: `data` points to a `netdev_notifier_info`, whose first field is the device
        // (offset 0: bindgen.list).
        let dev = unsafe { data.cast::<*mut bindings::net_device>().read() };
        // The chain runs under RTNL; lend a token for it without unlocking on drop.
        let rtnl = core::mem::ManuallyDrop::new(Rtnl(PhantomData));
        this.events.unregister(&rtnl, DevId(dev as usize));
        bindings::NOTIFY_DONE as c_int
    }
}

#[pinned_drop]
impl<T: NetdevEvents> PinnedDrop for NetdevNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered in `register` (a `NetdevNotifier` exists only if that succeeded).
        // Deregistration replays `NETDEV_UNREGISTER` for every device; `events` is still alive.
        unsafe { unregister_netdevice_notifier(self.nb.get()) };
    }
}

/// A device TX may send to: set under RTNL, read under RCU, cleared by the notifier (or a
/// detach) under RTNL; the device is freed only after a grace period that follows its
/// `NETDEV_UNREGISTER` (`unregister_netdevice_many` calls `synchronize_net` after the
/// notifiers), so a sender that saw the pointer under `rcu_read_lock` may use it.
pub struct TxDev(AtomicPtr<bindings::net_device>);

/// What became of one frame TX was asked to send.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Xmit {
    /// Queued to the device.
    Sent,
    /// No socket buffer could be allocated, or the device refused or dropped it.
    Error,
    /// The device is gone.
    NoDevice,
}

impl TxDev {
    /// Sends to `dev` (until [`clear`](Self::clear)).
    pub fn new(_rtnl: &Rtnl, dev: &NetDev<'_>) -> Self {
        TxDev(AtomicPtr::new(dev.dev))
    }

    /// Whether it still names a device.
    pub fn is_set(&self) -> bool {
        !self.0.load(Ordering::Relaxed).is_null()
    }

    /// Whether it names `dev`.
    pub fn is(&self, dev: DevId) -> bool {
        self.0.load(Ordering::Relaxed) as usize == dev.0
    }

    /// Stops sending (the device is going away, or the attachment is detached).
    pub fn clear(&self, _rtnl: &Rtnl) {
        self.0.store(ptr::null_mut(), Ordering::Release);
    }

    /// Copies a frame of `len` bytes from `src` into a new socket buffer and queues it on the
    /// device (`__dev_queue_xmit`). Process context; may sleep.
    pub fn xmit(&self, src: TxSrc<'_>, len: u32) -> Xmit {
        let Ok(n) = c_int::try_from(len) else {
            return Xmit::Error;
        };
        // SAFETY: Process context (the KICK ioctl), so GFP_KERNEL may sleep.
        let skb =
            unsafe { bindings::__alloc_skb(len, bindings::GFP_KERNEL, 0, bindings::NUMA_NO_NODE) };
        if skb.is_null() {
            return Xmit::Error;
        }
        // SAFETY: A fresh linear skb with at least `len` bytes of tailroom.
        unsafe { bindings::skb_put(skb, len) };
        let store = |from: *const u8| {
            // SAFETY: The skb holds `len` bytes (above); `from` is valid for `len` reads (each
            // arm below checks it). The source is shared with user space, which may write it
            // meanwhile: the frame is then what the bytes were during the copy, as for DMA.
            unsafe { bindings::skb_store_bits(skb, 0, from.cast(), n) == 0 }
        };
        let copied = match src {
            TxSrc::Page(page, offset) => match offset.checked_add(len as usize) {
                Some(end) if end <= kernel::page::PAGE_SIZE => {
                    page.with_mapped(|base| {
                        // SAFETY: `base` maps the page and `offset + len` is inside it.
                        store(unsafe { base.add(offset) })
                    })
                }
                _ => false,
            },
            TxSrc::Chunk(chunk, offset) => match chunk.span(offset, len as usize) {
                Ok(from) => store(from),
                Err(_) => false,
            },
        };
        if !copied {
            // SAFETY: Ours, never queued.
            unsafe { bindings::consume_skb(skb) };
            return Xmit::Error;
        }
        let guard = rcu::read_lock();
        let dev = self.0.load(Ordering::Acquire);
        if dev.is_null() {
            drop(guard);
            // SAFETY: Ours, never queued.
            unsafe { bindings::consume_skb(skb) };
            return Xmit::NoDevice;
        }
        // SAFETY: `dev` was read under `rcu_read_lock` while set, so it is not freed before the
        // guard drops (type docs). `eth_type_trans` sets `skb->dev`, `protocol` and the MAC
        // header and pulls the Ethernet header, which `skb_push` puts back (every frame is at
        // least `MIN_TX_LEN`, 14 bytes: `check_tx_desc`). `__dev_queue_xmit` takes the skb in
        // every case.
        let r = unsafe {
            eth_type_trans(skb, dev);
            skb_push(skb, ETH_HLEN);
            __dev_queue_xmit(skb, ptr::null_mut())
        };
        drop(guard);
        if r == NET_XMIT_SUCCESS {
            Xmit::Sent
        } else {
            Xmit::Error
        }
    }
}

/// Where a TX frame's bytes are: a page and the byte offset in it, or a chunk and the offset.
pub enum TxSrc<'a> {
    /// In a single page (the frame does not leave it).
    Page(&'a SharedPage, usize),
    /// In a physically contiguous chunk.
    Chunk(&'a Chunk, usize),
}
