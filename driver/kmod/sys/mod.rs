// SPDX-License-Identifier: GPL-2.0

//! The only code of `pktmap.ko` with `unsafe`: thin safe wrappers over the C API of Linux 6.12,
//! shaped file for file like the upstream Rust-for-Linux abstractions that 6.12 predates.
//!
//! | file | upstream | what |
//! |---|---|---|
//! | [`miscdevice`] | `rust/kernel/miscdevice.rs` | [`MiscDevice`](miscdevice::MiscDevice) (hooks get the [`File`](fs::File)), the pinned [`MiscDeviceRegistration`](miscdevice::MiscDeviceRegistration), `compat_ioctl` through `compat_ptr_ioctl` |
//! | [`fs::file`] | `rust/kernel/fs/file.rs` | [`File`](fs::File): an open file's flags |
//! | [`mm::virt`] | `rust/kernel/mm/virt.rs` | [`VmaRef`](mm::virt::VmaRef), [`VmaMixedMap`](mm::virt::VmaMixedMap), [`VmaNew`](mm::virt::VmaNew) and their flags |
//! | [`page`] | `rust/kernel/page.rs` | [`SharedPage`](page::SharedPage): an accounted, zeroed page that user space may map |
//! | [`uaccess`] | `rust/kernel/uaccess.rs` | user buffers of `read`/`write` copied with short counts, ioctl argument structs |
//! | [`module_param`] | `rust/kernel/module_param.rs` | a `ulong` module parameter (6.12's `module!` has none) |
//! | [`task`] | `rust/kernel/task.rs` | `fatal_signal_pending` for the current task |
//! | [`vm_ops`] | none (pktmap only) | per-mapping `vm_operations_struct`: `.open`/`.close`/`.fault` |
//! | [`mm::pfnmap`] | none (pktmap only) | [`VmaNew`](mm::virt::VmaNew) as a page-frame map (`VM_PFNMAP`, cache attribute, `remap_pfn_range` of a chunk); where `get_unmapped_area` places a map ([`AreaAlign`](mm::pfnmap::AreaAlign)) |
//! | [`chunk`] | none (pktmap only) | [`Chunk`](chunk::Chunk): `1 << order` contiguous accounted pages, optionally write-combined (`set_memory_wc`) |
//! | [`pfn_ops`] | none (pktmap only) | `vm_operations_struct` of page-frame maps: `.fault` (`vmf_insert_pfn`) and `.huge_fault` (`vmf_insert_pfn_pmd`) |
//! | [`pool_file`] | none (pktmap only) | a pool's own file descriptor: an anonymous-inode file, reserved then installed |
//!
//! The driver logic (every other module of the crate) is `#![forbid(unsafe_code)]` and written
//! against these types only; this module alone is `#[allow(unsafe_code)]` (see `pktmap.rs`).
//!
//! # Ownership and drop order
//!
//! - `file->private_data` owns one reference of the driver's per-open pointer
//!   ([`MiscDevice::Ptr`](miscdevice::MiscDevice::Ptr)); `release` takes it back.
//! - `vma->vm_private_data` owns one reference of the mapping's `Arc<M>` *per VMA*: `mmap`
//!   stores the first ([`vm_ops::attach`]), each `.open` (fork, split, mremap) adds one for the
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
pub mod fs;
pub mod miscdevice;
pub mod mm;
pub mod module_param;
pub mod page;
pub mod pfn_ops;
pub mod pool_file;
pub mod task;
pub mod uaccess;
pub mod vm_ops;
