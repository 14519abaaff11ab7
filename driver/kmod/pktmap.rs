// SPDX-License-Identifier: GPL-2.0

//! `pktmap`: the `/dev/pktmap` misc device, mapping packet-buffer pools into user space by an
//! encoded `mmap` offset.
//!
//! The crate is laid out by what each file is:
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | the shared contract (codec, ioctl ABI, request validation), the very files of the `pktmap-abi` crate |
//! | [`device`] | device-wide state ([`DeviceState`](device::DeviceState)): the STATE page, lock-free counters, the page budget |
//! | [`resource`] | pools and rings ([`Resource`](resource::Resource)): accounted memory, allocated against the budget |
//! | [`context`] | one open file: its resources, ioctls, `pread`/`pwrite`, `fsync` |
//! | [`mapping`] | `mmap` and the state behind each VMA ([`VmaState`](mapping::VmaState)): `.open`/`.close`/`.fault` |
//! | [`packet`] | packet rings, attachments to a network device, the RX handler and `KICK` |
//! | [`sys`] | the only `unsafe` code: what 7.3's Rust abstractions lack, as additions to upstream's types |
//!
//! Driver logic is safe code: every module but `sys` is `#![forbid(unsafe_code)]` (this root
//! cannot be, as `module!` expands to `unsafe` code here).
//!
//! # Module parameters
//!
//! `page_budget` (pages, default 0 = three quarters of RAM at load time): the most pages all
//! pools and rings of the device may hold at once; writable at run time through
//! `/sys/module/pktmap/parameters/page_budget`, shown in the STATE page.
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

use kernel::prelude::*;

/// The shared contract, compiled from the same files as the `pktmap-abi` crate.
#[path = "../abi/src"]
#[forbid(unsafe_code)]
pub mod abi {
    pub mod codec;
    pub mod ioctl;
    pub mod packet;
    pub mod plan;
}

pub mod context;
pub mod device;
pub mod export;
pub mod mapping;
pub mod packet;
pub mod resource;
#[allow(unsafe_code)]
pub mod sys;

use sys::{
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    module_param::{module_param_ulong, ParamUlong},
    netdev::NetdevNotifier,
    pool_file::PoolFops,
};

module! {
    type: PktmapModule,
    name: "pktmap",
    authors: ["pktmap developers"],
    description: "Map packet-buffer pools into user space by an encoded mmap offset",
    license: "GPL",
}

/// The `page_budget` module parameter (0 until `init` sets the default); run-time writes are
/// told to the device state, which republishes STATE.
static PAGE_BUDGET: ParamUlong<device::DeviceState> = ParamUlong::new(0);
module_param_ulong!(
    PAGE_BUDGET,
    "page_budget",
    0o644,
    "Most pages all pools and rings may hold (default 0: 3/4 of RAM at load time)"
);

/// The `file_operations` of every pool file (`POOL_EXPORT`): one table for the module's
/// life, which the VFS reads until the last pool file is released (`fops->owner` keeps the
/// module loaded until then).
pub static POOL_FOPS: PoolFops<export::PoolExport> =
    PoolFops::new(kernel::module::this_module::<PktmapModule>());

/// The errno of a refused request.
pub fn plan_err(e: abi::plan::PlanError) -> Error {
    Error::from_errno(-e.errno())
}

/// The module: owns the misc device registration and the netdevice notifier that ends the
/// packet attachments of a device going away.
struct PktmapModule {
    module: &'static ThisModule,
    _registration: Pin<KBox<MiscDeviceRegistration<context::Context>>>,
    _notifier: Pin<KBox<NetdevNotifier<device::DeviceState>>>,
}

impl Drop for PktmapModule {
    fn drop(&mut self) {
        // The parameter's sysfs file outlives `exit`: stop telling the device before it goes.
        PAGE_BUDGET.unlisten(self.module);
    }
}

impl kernel::Module for PktmapModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        if PAGE_BUDGET.get() == 0 {
            PAGE_BUDGET.set(sys::page::total_ram_pages() / 4 * 3);
        }
        let device = device::DeviceState::new(&PAGE_BUDGET)?;
        let notifier = KBox::pin_init(NetdevNotifier::register(device.clone()), GFP_KERNEL)?;
        let options = MiscDeviceOptions {
            name: c"pktmap",
            mode: 0o600,
        };
        let registration = KBox::pin_init(
            MiscDeviceRegistration::register(options, module, device.clone()),
            GFP_KERNEL,
        )?;
        PAGE_BUDGET.listen(device);
        pr_info!(
            "/dev/pktmap registered (minor {}, page budget {})\n",
            registration.minor(),
            PAGE_BUDGET.get()
        );
        Ok(Self {
            module,
            _registration: registration,
            _notifier: notifier,
        })
    }
}
