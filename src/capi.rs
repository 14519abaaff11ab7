//! The C ABI of `include/pktmap.h`: OpenOnload's `oo_resource_mmap` contract over [`PKTMAP`].
//!
//! Two pairs: Onload's own, [`pktmap_resource_mmap`] (an `unsigned` length) and
//! [`pktmap_resource_munmap`] (an `int` length, so at most 2 GiB − 1), kept for source
//! compatibility; and the `size_t` pair [`pktmap_resource_map`] and [`pktmap_resource_unmap`],
//! which can map and unmap anything the address space holds. Every function returns 0 or
//! `-errno` and leaves the caller's `errno` exactly as it was, as `oo_resource_mmap` does. They
//! never unwind: every failure is an errno.
//!
//! # Safety
//! These are `extern "C"` entry points taking raw pointers from C; each documents what the
//! caller must guarantee. The mapping they return is owned by the caller, who gives it back with
//! `pktmap_resource_munmap`.
#![allow(unsafe_code)]

use crate::offset::{pktmap_types, PKTMAP};
use crate::pool::PoolKind;
use crate::resource::{MapFlags, MapOptions, Mapping};
use rustix::fd::BorrowedFd;
use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::ptr::NonNull;

/// Restores the caller's `errno` when dropped.
struct SavedErrno(c_int);

impl SavedErrno {
    fn save() -> Self {
        // SAFETY: `__errno_location` returns this thread's errno slot, always valid to read.
        Self(unsafe { *libc::__errno_location() })
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: `__errno_location` returns this thread's errno slot, always valid to write.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// `int pktmap_resource_mmap(int fd, uint8_t map_type, unsigned long map_id, unsigned bytes,
/// int flags, void **p_out)`—Map `(map_type, map_id)` of any mappable file (`/dev/pktmap`, a
/// pool file, a memfd).
///
/// The offset is `PKTMAP.encode(map_type, map_id)`. Flags are `PKTMAP_MMAP_FLAG_READONLY` (1),
/// `_FIXED` (2) and `_POPULATE` (4); POPULATE of a pool asks the driver its kind first
/// (`POOL_INFO`) and works for every kind, read-write and read-only. With FIXED the mapping goes at `*p_out` and replaces what
/// is there (`MAP_FIXED`, as Onload: reserve the range first). On success `*p_out` is the
/// address; on failure `*p_out` is left as it was.
///
/// # Safety
/// `fd` must be an open file descriptor or negative. `p_out` must be null or valid for reading
/// and writing a pointer. With FIXED, the caller must own `[*p_out, *p_out + bytes)`.
///
/// # Errors
/// Returns `-errno`: `-EINVAL` for unknown flag bits, a type or id the layout cannot encode,
/// zero bytes, or a regular file (a memfd, tmpfs) too short for `bytes` at that offset (whose
/// pages past the end would raise `SIGBUS`); `-EFAULT` for a null `p_out`; `-EBADF` for a negative fd; otherwise the errno of
/// `mmap` or of populating.
///
/// # Examples
/// ```
/// use pktmap::capi::{pktmap_resource_mmap, pktmap_resource_munmap};
/// use rustix::fd::AsRawFd;
/// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
/// let fd = memfd_create("pool", MemfdFlags::CLOEXEC).unwrap();
/// ftruncate(&fd, 1 << 20).unwrap();
/// let mut p = std::ptr::null_mut();
/// // SAFETY: `fd` is open and `p` is a valid out-pointer.
/// let rc = unsafe { pktmap_resource_mmap(fd.as_raw_fd(), 1, 2, 4096, 4, &mut p) };
/// assert_eq!(rc, 0);
/// // SAFETY: `p` is the 4096-byte mapping returned above.
/// assert_eq!(unsafe { pktmap_resource_munmap(p, 4096) }, 0);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_resource_mmap(
    fd: c_int,
    map_type: u8,
    map_id: c_ulong,
    bytes: c_uint,
    flags: c_int,
    p_out: *mut *mut c_void,
) -> c_int {
    #[allow(clippy::useless_conversion)] // `c_ulong` is `u32` on 32-bit targets.
    let map_id = u64::from(map_id);
    let Ok(len) = usize::try_from(bytes) else {
        return -libc::EINVAL;
    };
    // SAFETY: The caller's guarantees are those `pktmap_resource_map` needs.
    unsafe { pktmap_resource_map(fd, map_type, map_id, len, flags, p_out) }
}

/// `int pktmap_resource_map(int fd, uint8_t map_type, uint64_t map_id, size_t bytes, int flags,
/// void **p_out)`—As [`pktmap_resource_mmap`], with a `size_t` length and a 64-bit id.
///
/// # Safety
/// As [`pktmap_resource_mmap`].
///
/// # Errors
/// As [`pktmap_resource_mmap`].
///
/// # Examples
/// ```
/// use pktmap::capi::{pktmap_resource_map, pktmap_resource_unmap};
/// use rustix::fd::AsRawFd;
/// use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
/// let fd = memfd_create("pool", MemfdFlags::CLOEXEC).unwrap();
/// let len = 3usize << 30; // 3 GiB: more than an `int` (or `unsigned`) length can say
/// let offset = pktmap::offset::PKTMAP.encode(1, 2).unwrap(); // POOL id 2
/// ftruncate(&fd, offset + len as u64).unwrap(); // a shorter file is EINVAL: no SIGBUS later
/// let mut p = std::ptr::null_mut();
/// // SAFETY: `fd` is open and `p` is a valid out-pointer.
/// assert_eq!(unsafe { pktmap_resource_map(fd.as_raw_fd(), 1, 2, len, 0, &mut p) }, 0);
/// // SAFETY: `p` is the mapping of `len` bytes returned above.
/// assert_eq!(unsafe { pktmap_resource_unmap(p, len) }, 0);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_resource_map(
    fd: c_int,
    map_type: u8,
    map_id: u64,
    bytes: usize,
    flags: c_int,
    p_out: *mut *mut c_void,
) -> c_int {
    let _errno = SavedErrno::save();
    if p_out.is_null() {
        return -libc::EFAULT;
    }
    if fd < 0 {
        // Checked here because `BorrowedFd` must never hold -1.
        return -libc::EBADF;
    }
    let Ok(flags) = u32::try_from(flags)
        .map_err(drop)
        .and_then(|f| MapFlags::from_raw(f).map_err(drop))
    else {
        return -libc::EINVAL;
    };
    let Ok(offset) = PKTMAP.encode(u32::from(map_type), map_id) else {
        return -libc::EINVAL;
    };
    let mut opts = MapOptions::new(bytes).flags(flags).layout(&PKTMAP);
    if flags.contains(MapFlags::FIXED) {
        // SAFETY: The caller guarantees `p_out` is valid for reads.
        let Some(addr) = NonNull::new(unsafe { *p_out }) else {
            return -libc::EINVAL;
        };
        opts = opts.at(addr);
    }
    // SAFETY: `fd` is non-negative and the caller guarantees it is open for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    if let Some(kind) = pool_kind(fd, map_type, map_id, flags) {
        opts = opts.pool(kind);
    }
    // SAFETY: Only with FIXED does this replace memory, and then the caller guarantees it owns
    // the range (Onload's MAP_FIXED contract).
    let mapped = unsafe { opts.map_replacing(fd, offset) };
    match mapped {
        Ok(mapping) => {
            let (p, _) = mapping.into_raw();
            // SAFETY: The caller guarantees `p_out` is valid for writes.
            unsafe { *p_out = p.as_ptr() };
            0
        }
        // Every error the library makes carries an errno; EINVAL is only a fallback.
        Err(e) => -e.raw_os_error().unwrap_or(libc::EINVAL),
    }
}

/// The kind of the pool a POPULATE map of `(map_type, map_id)` through `fd` names, as the
/// driver's `POOL_INFO` reports it (on the device or, for id 0, a pool file), so POPULATE
/// works for every pool kind, as through [`Device::map_pool`](crate::device::Device::map_pool).
/// `None` when there is nothing to ask (no POPULATE, not a pool) or `fd` does not answer (not
/// a pktmap file, or no such pool, which the `mmap` then reports): the map populates as any.
fn pool_kind(fd: BorrowedFd<'_>, map_type: u8, map_id: u64, flags: MapFlags) -> Option<PoolKind> {
    if !flags.contains(MapFlags::POPULATE) || u32::from(map_type) != pktmap_types::POOL {
        return None;
    }
    let info = crate::pool::info_at(fd, u32::try_from(map_id).ok()?).ok()?;
    crate::pool::kind_of(&info).ok()
}

/// `int pktmap_resource_munmap(void *p, int bytes)`—Unmap what `pktmap_resource_mmap` mapped.
///
/// # Safety
/// `[p, p + bytes)` must be a mapping the caller owns (from `pktmap_resource_mmap`) with no live
/// references into it.
///
/// # Errors
/// Returns `-errno`: `-EINVAL` for a negative length or what `munmap` refuses.
///
/// # Examples
/// [`pktmap_resource_mmap`]'s example unmaps a mapping; a refusal:
/// ```
/// use pktmap::capi::pktmap_resource_munmap;
/// // SAFETY: A negative length is refused before any call.
/// assert_eq!(unsafe { pktmap_resource_munmap(std::ptr::null_mut(), -1) }, -libc::EINVAL);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_resource_munmap(p: *mut c_void, bytes: c_int) -> c_int {
    let Ok(len) = usize::try_from(bytes) else {
        // munmap(2): "EINVAL ... length was 0" (and a negative one is never ours).
        return -libc::EINVAL;
    };
    // SAFETY: The caller's guarantees are those `pktmap_resource_unmap` needs.
    unsafe { pktmap_resource_unmap(p, len) }
}

/// `int pktmap_resource_unmap(void *p, size_t bytes)`—Unmap what `pktmap_resource_map` or
/// `pktmap_resource_mmap` mapped, of any length.
///
/// # Safety
/// As [`pktmap_resource_munmap`].
///
/// # Errors
/// Returns `-errno`: `-EINVAL` for a null address, a zero length or what `munmap` refuses.
///
/// # Examples
/// [`pktmap_resource_map`]'s example unmaps a mapping of 3 GiB; a refusal:
/// ```
/// use pktmap::capi::pktmap_resource_unmap;
/// // SAFETY: A null address is refused before any call; `errno` is left alone.
/// assert_eq!(unsafe { pktmap_resource_unmap(std::ptr::null_mut(), 4096) }, -libc::EINVAL);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_resource_unmap(p: *mut c_void, bytes: usize) -> c_int {
    let _errno = SavedErrno::save();
    let (Some(p), len @ 1..) = (NonNull::new(p), bytes) else {
        // munmap(2): "EINVAL ... length was 0" (and a null address is never ours).
        return -libc::EINVAL;
    };
    // SAFETY: The caller owns the mapped range and holds no references into it.
    let mapping = unsafe { Mapping::from_raw(p, len, MapFlags::empty()) };
    match mapping.unmap() {
        Ok(()) => 0,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EINVAL),
    }
}

/// `int pktmap_pool_send(int sock, int pool_fd, int read_only)`—Send a pool file descriptor
/// (from `PKTMAP_IOC_POOL_EXPORT`) over a connected UNIX socket (`SCM_RIGHTS`), with the byte
/// `read_only != 0` as the message, as [`PoolFile::send`](crate::pool::PoolFile::send) does.
///
/// # Safety
/// `sock` and `pool_fd` must be open file descriptors or negative; the caller keeps `pool_fd`.
///
/// # Errors
/// Returns `-errno`: `-EBADF` for a negative descriptor, otherwise the errno of `sendmsg`.
///
/// # Examples
/// ```
/// use pktmap::capi::{pktmap_pool_recv, pktmap_pool_send};
/// use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
/// use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
/// let (a, b) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
///     .unwrap();
/// // Any descriptor travels; a pool file from PKTMAP_IOC_POOL_EXPORT is what it is for.
/// let pool = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// // SAFETY: all three are open descriptors this code keeps for the calls.
/// assert_eq!(unsafe { pktmap_pool_send(a.as_raw_fd(), pool.as_raw_fd(), 1) }, 0);
/// let mut read_only = 0;
/// // SAFETY: `b` is open and `read_only` is valid for writing.
/// let fd = unsafe { pktmap_pool_recv(b.as_raw_fd(), &mut read_only) };
/// assert!(fd >= 0 && read_only == 1, "{fd}");
/// // SAFETY: `fd` is the caller's to own and close.
/// drop(unsafe { OwnedFd::from_raw_fd(fd) });
/// // SAFETY: a negative descriptor is refused before any call.
/// assert_eq!(unsafe { pktmap_pool_send(-1, pool.as_raw_fd(), 0) }, -libc::EBADF);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_pool_send(sock: c_int, pool_fd: c_int, read_only: c_int) -> c_int {
    let _errno = SavedErrno::save();
    if sock < 0 || pool_fd < 0 {
        return -libc::EBADF;
    }
    // SAFETY: The caller's guarantee: both are open descriptors it keeps for the call.
    let (sock, fd) = unsafe {
        (
            BorrowedFd::borrow_raw(sock),
            BorrowedFd::borrow_raw(pool_fd),
        )
    };
    match crate::pool::send_fd(sock, fd, read_only != 0) {
        Ok(()) => 0,
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// `int pktmap_pool_recv(int sock, int *read_only)`—Receive a pool file descriptor sent by
/// `pktmap_pool_send` (or [`PoolFile::send`](crate::pool::PoolFile::send)); returns it
/// (`O_CLOEXEC`, owned by the caller), and stores the sender's read-only byte in `*read_only`
/// unless it is null.
///
/// # Safety
/// `sock` must be an open file descriptor or negative; `read_only` null or valid for writing.
///
/// # Errors
/// Returns `-errno`: `-EBADF` for a negative socket, `-EINVAL` for a message without a file
/// descriptor, otherwise the errno of `recvmsg`.
///
/// # Examples
/// [`pktmap_pool_send`]'s example receives a descriptor; a refusal:
/// ```
/// use pktmap::capi::pktmap_pool_recv;
/// use rustix::fd::AsRawFd;
/// let not_a_socket = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// // SAFETY: an open descriptor; a null `read_only` is allowed.
/// let rc = unsafe { pktmap_pool_recv(not_a_socket.as_raw_fd(), std::ptr::null_mut()) };
/// assert_eq!(rc, -libc::ENOTSOCK);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_pool_recv(sock: c_int, read_only: *mut c_int) -> c_int {
    let _errno = SavedErrno::save();
    if sock < 0 {
        return -libc::EBADF;
    }
    // SAFETY: The caller's guarantee: an open descriptor it keeps for the call.
    let sock = unsafe { BorrowedFd::borrow_raw(sock) };
    match crate::pool::recv_fd(sock) {
        Ok((fd, ro)) => {
            if !read_only.is_null() {
                // SAFETY: The caller's guarantee: non-null means valid for writing.
                unsafe { *read_only = c_int::from(ro) };
            }
            std::os::fd::IntoRawFd::into_raw_fd(fd)
        }
        Err(e) => -e.raw_os_error().unwrap_or(libc::EINVAL),
    }
}

/// `unsigned pktmap_version(void)`—The version of this library, `major << 16 | minor << 8 |
/// patch` (`PKTMAP_VERSION_ENCODE`), to compare with the header's `PKTMAP_VERSION`: a program
/// built against one `libpktmap.so` may run with a newer one of the same SONAME.
///
/// # Examples
/// ```
/// use pktmap::capi::pktmap_version;
/// assert_eq!(pktmap_version(), 0x00_02_00); // 0.2.0
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn pktmap_version() -> c_uint {
    const fn number(s: &str) -> c_uint {
        let bytes = s.as_bytes();
        let (mut n, mut i) = (0, 0);
        while i < bytes.len() {
            n = n * 10 + (bytes[i] - b'0') as c_uint;
            i += 1;
        }
        n
    }
    const VERSION: c_uint = number(env!("CARGO_PKG_VERSION_MAJOR")) << 16
        | number(env!("CARGO_PKG_VERSION_MINOR")) << 8
        | number(env!("CARGO_PKG_VERSION_PATCH"));
    VERSION
}

/// Runs one packet ioctl on `fd` for the C ABI: its non-negative result, or `-errno`.
fn packet_ioctl<T>(fd: c_int, name: &'static str, cmd: u32, arg: &mut T) -> c_int {
    if fd < 0 {
        return -libc::EBADF;
    }
    // SAFETY: The callers' guarantee: `fd` is an open descriptor they keep for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    match crate::device::ioctl_value(fd, name, cmd, arg) {
        Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// `int pktmap_packet_attach(int fd, struct pktmap_attach *req)`—`PKTMAP_IOC_ATTACH`: binds
/// the packet rings `req` names to interface `req->ifindex`; on success `req->id` is the
/// attachment's id. Returns 0 or `-errno`; `errno` is left as it was.
///
/// # Safety
/// `fd` must be an open file descriptor or negative; `req` null or valid for reading and
/// writing a `struct pktmap_attach`.
///
/// # Errors
/// `-EFAULT` for a null `req`, `-EBADF` for a negative fd; otherwise the driver's errno
/// ([`Device::attach`](crate::device::Device::attach)).
///
/// # Examples
/// ```
/// use pktmap::capi::pktmap_packet_attach;
/// use pktmap::packet::Attach;
/// use rustix::fd::AsRawFd;
/// let not_pktmap = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// let mut req = Attach { ifindex: 1, pool_id: 1, rx_ring: 1, ..Default::default() };
/// // SAFETY: an open descriptor and a valid request.
/// let rc = unsafe { pktmap_packet_attach(not_pktmap.as_raw_fd(), &mut req) };
/// assert_eq!(rc, -libc::ENOTTY); // a memfd has no ioctls
/// // SAFETY: a null request is refused before any call.
/// assert_eq!(unsafe { pktmap_packet_attach(not_pktmap.as_raw_fd(), std::ptr::null_mut()) }, -libc::EFAULT);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_packet_attach(fd: c_int, req: *mut crate::packet::Attach) -> c_int {
    let _errno = SavedErrno::save();
    // SAFETY: The caller's guarantee: non-null means valid for reading and writing.
    let Some(req) = (unsafe { req.as_mut() }) else {
        return -libc::EFAULT;
    };
    let rc = packet_ioctl(
        fd,
        "ioctl(PKTMAP_IOC_ATTACH)",
        pktmap_abi::packet::ATTACH,
        req,
    );
    rc.min(0)
}

/// `int pktmap_packet_detach(int fd, uint32_t id)`—`PKTMAP_IOC_DETACH` of attachment `id`.
/// Returns 0 or `-errno`; `errno` is left as it was.
///
/// # Safety
/// `fd` must be an open file descriptor or negative.
///
/// # Errors
/// `-EBADF` for a negative fd; otherwise the driver's errno (`-EINVAL` an unknown id).
///
/// # Examples
/// ```
/// use pktmap::capi::pktmap_packet_detach;
/// // SAFETY: a negative descriptor is refused before any call.
/// assert_eq!(unsafe { pktmap_packet_detach(-1, 1) }, -libc::EBADF);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_packet_detach(fd: c_int, id: u32) -> c_int {
    let _errno = SavedErrno::save();
    let rc = packet_ioctl(
        fd,
        "ioctl(PKTMAP_IOC_DETACH)",
        pktmap_abi::packet::DETACH,
        &mut pktmap_abi::ioctl::ResourceId { id },
    );
    rc.min(0)
}

/// `int pktmap_packet_kick(int fd, uint32_t id)`—`PKTMAP_IOC_KICK`: the driver sends what
/// attachment `id`'s TX ring holds. Returns the number of TX slots it released, or `-errno`;
/// `errno` is left as it was.
///
/// # Safety
/// `fd` must be an open file descriptor or negative.
///
/// # Errors
/// `-EBADF` for a negative fd; otherwise the driver's errno (`-EINVAL` an unknown id or an
/// attachment without a TX ring).
///
/// # Examples
/// ```
/// use pktmap::capi::pktmap_packet_kick;
/// use rustix::fd::AsRawFd;
/// let not_pktmap = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
/// // SAFETY: an open descriptor.
/// assert_eq!(unsafe { pktmap_packet_kick(not_pktmap.as_raw_fd(), 1) }, -libc::ENOTTY);
/// ```
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pktmap_packet_kick(fd: c_int, id: u32) -> c_int {
    let _errno = SavedErrno::save();
    packet_ioctl(
        fd,
        "ioctl(PKTMAP_IOC_KICK)",
        pktmap_abi::packet::KICK,
        &mut pktmap_abi::ioctl::ResourceId { id },
    )
}
