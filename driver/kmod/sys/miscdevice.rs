// SPDX-License-Identifier: GPL-2.0

//! Misc devices (`/dev/NAME`), with upstream `rust/kernel/miscdevice.rs`'s shape: a
//! [`MiscDevice`] trait whose hooks get upstream's [`File`], and a pinned
//! [`MiscDeviceRegistration`] of upstream's `bindings::miscdevice` that deregisters on drop.
//!
//! Why not upstream's own (7.3): its `MiscDevice` has no `get_unmapped_area` (2 MiB pools must
//! be placed 2 MiB-aligned), no `fsync` (`msync(MS_SYNC)` must work), no `llseek` (`FMODE_LSEEK`
//! is decided before `misc_open` swaps the fops in, so `lseek(2)` would call a NULL hook) and
//! no registration data for `open`; its `mmap` returns `Result`, so it cannot insist on a
//! [`Mapped`] (per-mapping state attached, never failing after); and its registration has no
//! `mode`. The differences in the hooks: [`MiscDeviceOptions::mode`] and `fops->owner`;
//! [`MiscDevice::RegistrationData`] handed to `open`; `read`/`write` with the position (upstream
//! has `read_iter`/`write_iter`); `fsync`; [`MiscDevice::area_align`]; `poll` (upstream's has
//! none).
//!
//! C header: [`srctree/include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use super::{
    mm::pfnmap::{get_unmapped_area, AreaAlign},
    uaccess::{UserIn, UserOut},
    vm_ops::Mapped,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    ptr::{self, addr_of_mut},
};
use kernel::{
    bindings,
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    fs::File,
    mm::virt::VmaNew,
    prelude::*,
    sync::poll::PollTable,
    types::{ForeignOwnable, Opaque},
};

/// What the VFS answers for a file without `poll` (`DEFAULT_POLLMASK`: `EPOLLIN | EPOLLOUT |
/// EPOLLRDNORM | EPOLLWRNORM`).
pub const DEFAULT_POLLMASK: u32 = 0x1 | 0x4 | 0x40 | 0x100;

/// Options of a [`MiscDeviceRegistration`].
#[derive(Clone, Copy)]
pub struct MiscDeviceOptions {
    /// The device name: `/dev/NAME`.
    pub name: &'static CStr,
    /// The device node's file mode (e.g. `0o600`).
    pub mode: u16,
}

/// The file operations of a misc device.
pub trait MiscDevice: Sized {
    /// What `open` creates and `file->private_data` owns until `release`.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Device-wide data, owned by the registration and handed to every `open`.
    type RegistrationData: Send + Sync;

    /// `open(2)`: creates the per-open state.
    fn open(file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr>;

    /// The last `close(2)` of the file (after its last mapping is gone).
    fn release(device: Self::Ptr, _file: &File) {
        drop(device);
    }

    /// `ioctl(2)` (and, through `compat_ptr_ioctl`, 32-bit callers); the returned value is
    /// what user space sees.
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        Err(ENOTTY)
    }

    /// `read(2)`/`pread(2)` at the position `*pos` (the VFS cannot tell them apart); the byte
    /// count is [`UserOut::copied`]. Whatever the hook leaves in `*pos` becomes the file
    /// position after a `read(2)`.
    fn read(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _out: &mut UserOut,
        _pos: &mut i64,
    ) -> Result {
        Err(EINVAL)
    }

    /// `write(2)`/`pwrite(2)` at `*pos`; the byte count is [`UserIn::copied`].
    fn write(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _input: &mut UserIn,
        _pos: &mut i64,
    ) -> Result {
        Err(EINVAL)
    }

    /// `fsync(2)`/`fdatasync(2)`, and `msync(MS_SYNC)` of a shared mapping of the file.
    fn fsync(_device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>, _file: &File) -> Result {
        Err(EINVAL)
    }

    /// `poll(2)`/`select(2)`/`epoll`: register `table` with the wait queues a wakeup may come
    /// from ([`PollTable::register_wait`]) and return the events ready now (`POLLIN`, ...). The
    /// default is what the VFS answers for a file without `poll`: always readable and
    /// writable.
    fn poll(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _table: &PollTable<'_>,
    ) -> u32 {
        DEFAULT_POLLMASK
    }

    /// `mmap(2)`: set up the new VMA and end with an attach of [`vm_ops`](super::vm_ops) or
    /// its `finish` (whose [`Mapped`] is the only way to succeed), or refuse with an errno.
    fn mmap(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _vma: &VmaNew,
    ) -> Result<Mapped> {
        Err(ENODEV)
    }

    /// Where `get_unmapped_area` should place an `mmap` at page offset `pgoff` (pktmap
    /// addition, no upstream hook): [`AreaAlign::Pmd`] asks for a 2 MiB-aligned address (a
    /// hint or `MAP_FIXED` address is still honoured as given).
    fn area_align(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _pgoff: usize,
    ) -> AreaAlign {
        AreaAlign::Page
    }
}

/// A registered misc device, `/dev/NAME`; dropping it deregisters the device.
///
/// Made in place ([`register`](Self::register) returns a [`PinInit`]) because the misc core
/// keeps a pointer to it.
///
/// # Invariants
///
/// `inner` was registered with `misc_register`, points to `fops`, and is deregistered exactly
/// once, in `Drop`; the value never moves while registered (it is `!Unpin` and only ever made
/// in place). `inner` is the first field, so `file->private_data` (set by `misc_open` to the
/// `struct miscdevice`) also points to the registration.
#[repr(C)]
pub struct MiscDeviceRegistration<T: MiscDevice> {
    inner: Opaque<bindings::miscdevice>,
    fops: Opaque<bindings::file_operations>,
    data: T::RegistrationData,
    _t: PhantomData<T>,
    _pin: PhantomPinned,
}

// SAFETY: After registration Rust code only reads `data` (which is `Send + Sync`) and `minor`,
// which the misc core wrote before `misc_register` returned; the C side serializes its own
// accesses with `misc_mtx`. Dropping on another thread just calls `misc_deregister`.
unsafe impl<T: MiscDevice> Send for MiscDeviceRegistration<T> {}
// SAFETY: See `Send`: shared access only reads data that does not change.
unsafe impl<T: MiscDevice> Sync for MiscDeviceRegistration<T> {}

impl<T: MiscDevice> MiscDeviceRegistration<T> {
    /// Registers `/dev/<opts.name>` with a dynamic minor, owned by `module`.
    ///
    /// # Errors
    /// What `misc_register` returns (`EBUSY` if the name is taken).
    pub fn register(
        opts: MiscDeviceOptions,
        module: &'static ThisModule,
        data: T::RegistrationData,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes of a `Self` (the `pin_init_from_closure`
            // contract); we write each field once, by raw pointer, before anything reads it.
            unsafe {
                let fops = Opaque::cast_into(addr_of_mut!((*slot).fops));
                fops.write(MiscdeviceVTable::<T>::build(module.as_ptr()));
                let misc = Opaque::cast_into(addr_of_mut!((*slot).inner));
                let mut raw: bindings::miscdevice = pin_init::zeroed();
                raw.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
                raw.name = opts.name.as_char_ptr();
                raw.fops = fops;
                raw.mode = opts.mode;
                misc.write(raw);
                addr_of_mut!((*slot).data).write(data);
                addr_of_mut!((*slot)._t).write(PhantomData);
                addr_of_mut!((*slot)._pin).write(PhantomPinned);
                // `misc` is a fully initialized `struct miscdevice` whose `name` and `fops`
                // outlive the registration (`'static` name; `fops` in the same pinned value,
                // which `Drop` deregisters before it is freed); `data` is in place for `open`.
                if let Err(e) = to_result(bindings::misc_register(misc)) {
                    ptr::drop_in_place(addr_of_mut!((*slot).data));
                    return Err(e);
                }
            }
            // INVARIANT: registered above, in place, pointing to `fops`.
            Ok(())
        };
        // SAFETY: On `Ok` the closure initialized every field and registered the device; on
        // `Err` it dropped what it wrote that needs dropping (`data`) and left the device
        // unregistered, so the slot may be freed. The value is pinned from here on.
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    /// The minor number the misc core assigned.
    pub fn minor(&self) -> i32 {
        // SAFETY: Written by `misc_register` before it returned and never changed afterwards.
        unsafe { (*self.inner.get()).minor }
    }

    /// The device-wide data handed to every `open`.
    pub fn data(&self) -> &T::RegistrationData {
        &self.data
    }
}

impl<T: MiscDevice> Drop for MiscDeviceRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the device is registered and this is the only
        // deregistration. Files still open keep the module (and so this memory) alive through
        // `fops->owner`, so no open file can outlive `fops`.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The `file_operations` trampolines for `T`.
struct MiscdeviceVTable<T: MiscDevice>(PhantomData<T>);

impl<T: MiscDevice> MiscdeviceVTable<T> {
    /// # Safety
    ///
    /// Called by the VFS through `misc_open`: `file->private_data` points to the `inner` field
    /// of a live, registered `MiscDeviceRegistration<T>` (misc_open stores the `struct
    /// miscdevice` there and holds `misc_mtx`, so the registration cannot go away during the
    /// call).
    unsafe extern "C" fn open(
        _inode: *mut bindings::inode,
        raw_file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `raw_file` is valid for the duration of the call (VFS contract).
        let misc = unsafe { (*raw_file).private_data }.cast::<MiscDeviceRegistration<T>>();
        // SAFETY: `misc` points to the first field of a `#[repr(C)]` registration that is
        // alive (function safety requirement), so it points to the registration.
        let misc = unsafe { &*misc };
        // SAFETY: The file is valid for this call.
        let file = unsafe { File::from_raw_file(raw_file) };
        match T::open(file, misc) {
            Ok(ptr) => {
                // SAFETY: `raw_file` is valid; no other hook of this file runs before `open`
                // returns, so nothing else reads `private_data` now.
                unsafe { (*raw_file).private_data = ptr.into_foreign() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file->private_data` came from `into_foreign` in `open`, and this is the last hook the
    /// VFS calls for `file`.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        raw_file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `raw_file` is valid; `private_data` holds the reference `open` stored, and
        // no borrow of it outlives the other hooks, which have all returned.
        let ptr = unsafe { T::Ptr::from_foreign((*raw_file).private_data) };
        // SAFETY: The file is valid for this call.
        let file = unsafe { File::from_raw_file(raw_file) };
        T::release(ptr, file);
        0
    }

    /// Borrows the per-open state and the file of a file operation.
    ///
    /// # Safety
    ///
    /// `raw_file` is an open file of this device whose `open` succeeded and whose `release`
    /// has not run, and the returned borrows do not outlive the current file operation.
    unsafe fn state<'a>(
        raw_file: *mut bindings::file,
    ) -> (<T::Ptr as ForeignOwnable>::Borrowed<'a>, &'a File) {
        // SAFETY: By the function's requirements `private_data` holds a live reference created
        // by `into_foreign`, which `release` will only take back after this call returns, and
        // the file is valid for the operation.
        unsafe {
            (
                T::Ptr::borrow((*raw_file).private_data),
                File::from_raw_file(raw_file),
            )
        }
    }

    /// # Safety
    ///
    /// VFS contract for `unlocked_ioctl` on a file opened through [`Self::open`].
    unsafe extern "C" fn ioctl(raw_file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        from_result(|| T::ioctl(device, file, cmd, arg))
    }

    /// # Safety
    ///
    /// VFS contract for `read`: `buf` is a user pointer of `len` bytes and `ppos` is valid.
    unsafe extern "C" fn read(
        raw_file: *mut bindings::file,
        buf: *mut c_char,
        len: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        // SAFETY: `ppos` is valid for reads and writes for the call (VFS contract).
        let pos = unsafe { &mut *ppos };
        let mut out = UserOut::new(buf as usize, len);
        match T::read(device, file, &mut out, pos) {
            // `copied() <= len <= MAX_RW_COUNT`, which fits an `isize`.
            Ok(()) => out.copied() as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// VFS contract for `write`: `buf` is a user pointer of `len` bytes and `ppos` is valid.
    unsafe extern "C" fn write(
        raw_file: *mut bindings::file,
        buf: *const c_char,
        len: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        // SAFETY: `ppos` is valid for reads and writes for the call (VFS contract).
        let pos = unsafe { &mut *ppos };
        let mut input = UserIn::new(buf as usize, len);
        match T::write(device, file, &mut input, pos) {
            Ok(()) => input.copied() as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// VFS contract for `fsync` on a file opened through [`Self::open`].
    unsafe extern "C" fn fsync(
        raw_file: *mut bindings::file,
        _start: bindings::loff_t,
        _end: bindings::loff_t,
        _datasync: c_int,
    ) -> c_int {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        from_result(|| T::fsync(device, file).map(|()| 0))
    }

    /// # Safety
    ///
    /// VFS contract for `poll` on a file opened through [`Self::open`]: `table` is null or a
    /// valid `poll_table` for the call.
    unsafe extern "C" fn poll(
        raw_file: *mut bindings::file,
        table: *mut bindings::poll_table_struct,
    ) -> bindings::__poll_t {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        // SAFETY: `table` is null or valid for this call (function safety requirement).
        let table = unsafe { PollTable::from_raw(table) };
        T::poll(device, file, &table)
    }

    /// # Safety
    ///
    /// VFS contract for `mmap`: called from `mmap_region` with the mmap lock held for write and
    /// a new VMA that is not yet visible to any other thread.
    unsafe extern "C" fn mmap(
        raw_file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, file) = unsafe { Self::state(raw_file) };
        // SAFETY: `vma` is the new, not yet inserted VMA of this `mmap` call, exclusively ours
        // until we return (function safety requirement).
        let vma = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(device, file, vma) {
            Ok(Mapped { .. }) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// VFS contract for `get_unmapped_area` on a file opened through [`Self::open`].
    unsafe extern "C" fn get_unmapped_area(
        raw_file: *mut bindings::file,
        addr: c_ulong,
        len: c_ulong,
        pgoff: c_ulong,
        flags: c_ulong,
    ) -> c_ulong {
        // SAFETY: The VFS only calls this between a successful `open` and `release`.
        let (device, _file) = unsafe { Self::state(raw_file) };
        let align = T::area_align(device, pgoff);
        // SAFETY: Called from this file's `get_unmapped_area` hook.
        unsafe { get_unmapped_area(raw_file, addr, len, pgoff, flags, align) }
    }

    /// Builds the table; `owner` pins the module while a file is open.
    fn build(owner: *mut bindings::module) -> bindings::file_operations {
        bindings::file_operations {
            owner,
            // A NULL `llseek` would be called by `lseek(2)`: `FMODE_LSEEK` is decided before
            // `misc_open` swaps in these fops.
            llseek: Some(bindings::default_llseek),
            read: Some(Self::read),
            write: Some(Self::write),
            unlocked_ioctl: Some(Self::ioctl),
            // As upstream: without a `compat_ioctl` of its own, a driver whose ioctl argument
            // is a pointer to a layout-stable struct gets `compat_ptr_ioctl`.
            #[cfg(CONFIG_COMPAT)]
            compat_ioctl: bindings::compat_ptr_ioctl,
            mmap: Some(Self::mmap),
            poll: Some(Self::poll),
            get_unmapped_area: Some(Self::get_unmapped_area),
            open: Some(Self::open),
            release: Some(Self::release),
            fsync: Some(Self::fsync),
            // All other fields are nullable pointers or integer flags: zero is "not provided".
            ..pin_init::zeroed()
        }
    }
}
