// SPDX-License-Identifier: GPL-2.0

//! The only code of `pktmap.ko` with `unsafe`: what Linux 7.3's Rust abstractions do not
//! have yet, as thin safe wrappers over the C API. Upstream's own types are used wherever they
//! exist (`kernel::fs::File`, `kernel::mm::virt::{VmaNew, VmaRef, VmaMixedMap}`,
//! `kernel::page::Page`, `kernel::fs::file::FileDescriptorReservation`, `sync::{Arc, Mutex}`);
//! additions to them are extension traits here, so each goes when upstream gains it.
//!
//! | file | upstream | what |
//! |---|---|---|
//! | [`miscdevice`] | `rust/kernel/miscdevice.rs` | [`MiscDevice`](miscdevice::MiscDevice) with the hooks upstream's lacks (`get_unmapped_area`, `fsync`, `llseek`, positioned `read`/`write`, registration data; its docs say why), registering upstream's `bindings::miscdevice` |
//! | [`mm::virt`] | `rust/kernel/mm/virt.rs` | extension traits: [`VmaRefExt`](mm::virt::VmaRefExt) (`vm_pgoff`, shared), [`VmaMixedMapExt`](mm::virt::VmaMixedMapExt) (`vm_insert_pages`) |
//! | [`mm::pfnmap`] | none | [`VmaPfnMap`](mm::pfnmap::VmaPfnMap), the capability `set_pfnmap` returns (`remap_pfn_range`), [`PfnFault`](mm::pfnmap::PfnFault) (`vmf_insert_pfn`, `vmf_insert_pfn_pmd`), where `get_unmapped_area` places a map |
//! | [`vm_ops`] | none | one [`VmOps`](vm_ops::VmOps) trait: `.open`/`.close` and optional `.fault`/`.huge_fault` (`HAS_*`), attached to a mixed or a PFN map |
//! | [`page`] | `rust/kernel/page.rs` | [`SharedPage`](page::SharedPage): an accounted, zeroed upstream `Page` that user space may map |
//! | [`chunk`] | none | [`Chunk`](chunk::Chunk): `1 << order` contiguous accounted pages, optionally write-combined (`set_memory_wc`) |
//! | [`pool_file`] | none | a pool's own file descriptor: an anonymous-inode file, its `file_operations` generic over [`PoolFileOps`](pool_file::PoolFileOps) |
//! | [`uaccess`] | `rust/kernel/uaccess.rs` | user buffers of `read`/`write` copied with short counts, ioctl argument structs |
//! | [`module_param`] | `rust/kernel/module_param.rs` | a `ulong` parameter writable at run time through sysfs (upstream's are read-only, not in sysfs) |
//! | [`netdev`] | none (no netdev abstraction) | RTNL, device lookup by ifindex, an RX handler per device ([`RxRegistration`](netdev::RxRegistration)) and the frames it gets ([`RxSkb`](netdev::RxSkb)), the `NETDEV_UNREGISTER` notifier, TX ([`TxDev`](netdev::TxDev)) |
//! | [`task`] | `rust/kernel/task.rs` | `fatal_signal_pending` and `capable(CAP_SYS_ADMIN)` for the current task |
//!
//! The driver logic (every other module of the crate) is `#![forbid(unsafe_code)]` and written
//! against these types only; this module alone is `#[allow(unsafe_code)]` (see `pktmap.rs`).
//!
//! # Ownership and drop order
//!
//! - `file->private_data` owns one reference of the driver's per-open pointer
//!   ([`MiscDevice::Ptr`](miscdevice::MiscDevice::Ptr)); `release` takes it back.
//! - `vma->vm_private_data` owns one reference of the mapping's `Arc<M>` *per VMA*: `mmap`
//!   stores the first ([`vm_ops::attach_mixedmap`], [`vm_ops::attach_pfnmap`]), each `.open` (fork, split, mremap) adds one for the
//!   new VMA, and each `.close` drops one. Every VMA also holds `vma->vm_file`, so `release` only
//!   runs after the last VMA is gone, and `fops->owner` holds the module while any file is open.
//! - A page inserted into a VMA gets its own page reference from `vm_insert_page`, so a
//!   [`SharedPage`](page::SharedPage) may be dropped while user space still maps it; the page is
//!   freed when the last mapping of it goes away.
//!
//! # References
//!
//! C headers: [`srctree/include/linux/miscdevice.h`], [`srctree/include/linux/fs.h`],
//! [`srctree/include/linux/mm.h`], [`srctree/include/linux/mm_types.h`],
//! [`srctree/include/linux/moduleparam.h`].
//!
//! [`srctree/include/linux/miscdevice.h`]: srctree/include/linux/miscdevice.h
//! [`srctree/include/linux/fs.h`]: srctree/include/linux/fs.h
//! [`srctree/include/linux/mm.h`]: srctree/include/linux/mm.h
//! [`srctree/include/linux/mm_types.h`]: srctree/include/linux/mm_types.h
//! [`srctree/include/linux/moduleparam.h`]: srctree/include/linux/moduleparam.h

pub mod chunk;
pub mod miscdevice;
pub mod mm;
pub mod module_param;
pub mod netdev;
pub mod page;
pub mod pool_file;
pub mod task;
pub mod uaccess;
pub mod vm_ops;
