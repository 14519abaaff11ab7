// SPDX-License-Identifier: GPL-2.0

//! Exported pools (`POOL_EXPORT`): the state of one pool file, which another process may
//! receive over a UNIX socket (`SCM_RIGHTS`) and map at `PKTMAP.encode(POOL, 0)`.
//!
//! The export holds the pool (and the device) until the file's last reference is gone;
//! mappings made through it hold their own, so the pool lives until its last file descriptor
//! and mapping are gone, whoever created it.
#![forbid(unsafe_code)]

use crate::abi::codec::{pktmap_types, PKTMAP};
use crate::abi::ioctl::{self, PoolInfo};
use crate::abi::plan;
use crate::device::{self, DeviceState};
use crate::mapping;
use crate::plan_err;
use crate::resource::{Resource, Target};
use crate::sys::{
    mm::pfnmap::AreaAlign,
    pool_file::{PendingFile, PoolFileOps},
    uaccess::IoctlArg,
    vm_ops::Mapped,
};
use kernel::{
    mm::virt::VmaNew,
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// One pool file's state.
pub struct PoolExport {
    device: Arc<DeviceState>,
    pool: Arc<Resource>,
    read_only: bool,
}

impl PoolExport {
    /// A pool file for `pool`, reserved but not yet installed (see [`PendingFile`]); counted
    /// in `STATE.pool_files` until its last reference is gone.
    ///
    /// # Errors
    /// `EMFILE`, `ENOMEM`.
    pub fn open_file(
        device: &Arc<DeviceState>,
        pool: Arc<Resource>,
        read_only: bool,
    ) -> Result<PendingFile> {
        let export = Arc::new(
            PoolExport {
                device: device.clone(),
                pool,
                read_only,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // Counted once the export exists, so its `Drop` (also when `PendingFile::new` fails)
        // undoes exactly this.
        device.update(|c| device::add(&c.pool_files, 1));
        PendingFile::new(&crate::POOL_FOPS, export, read_only)
    }
}

impl Drop for PoolExport {
    fn drop(&mut self) {
        self.device
            .update(|c| device::sub(&c.pool_files, 1, "pool_files"));
    }
}

impl PoolFileOps for PoolExport {
    /// Maps the pool at `PKTMAP.encode(POOL, 0)`, by the same rules as through the device.
    fn mmap(this: ArcBorrow<'_, Self>, vma: &VmaNew, read_only: bool) -> Result<Mapped> {
        let plan = plan::plan_mmap(&mapping::request(vma), |map_type, id| {
            (map_type == pktmap_types::POOL && id == 0)
                .then(|| (this.pool.planned(), Target::Resource(this.pool.clone())))
        })
        .map_err(plan_err)?;
        mapping::map(&this.device, plan, vma, read_only)
    }

    /// `POOL_INFO` for id 0; every other command is `ENOTTY`.
    /// (At any size its struct had, as on the device: `IoctlArg`, the contract's growth rule.)
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        let arg = &IoctlArg::new(cmd, arg)?;
        if arg.cmd() != ioctl::POOL_INFO {
            return Err(ENOTTY);
        }
        let info: PoolInfo = arg.read()?;
        if info.id != 0 {
            return Err(EINVAL);
        }
        let offset = PKTMAP.encode(pktmap_types::POOL, 0).map_err(|_| EINVAL)?;
        arg.write(&this.pool.pool_info(info, offset)?)?;
        Ok(0)
    }

    fn area_align(this: ArcBorrow<'_, Self>, _pgoff: usize) -> AreaAlign {
        mapping::area_align(Some(&this.pool))
    }

    fn read_only(this: ArcBorrow<'_, Self>) -> bool {
        this.read_only
    }
}
