//! The XDP program that sends an interface's frames to AF_XDP sockets, loaded with the raw
//! `bpf()` syscall (no clang, no libbpf).
//!
//! A socket bound to a queue receives nothing until an XDP program on the interface redirects
//! frames into an `XSKMAP` that holds the socket. The program is six instruction slots, the
//! same as libxdp's default:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)          ; ctx->rx_queue_index
//! r1 = map_fd ll                  ; the XSKMAP (a two-slot load)
//! r3 = XDP_PASS                   ; what to do when the queue has no socket
//! call bpf_redirect_map
//! exit
//! ```
//!
//! It is attached with `BPF_LINK_CREATE`, so closing the link (dropping the [`XskRedirect`])
//! detaches it; nothing is left on the interface if the process dies.
//!
//! # Safety
//! The `bpf()` syscall is called through `libc::syscall` with `#[repr(C)]` attribute structs
//! written here from `include/uapi/linux/bpf.h` (neither libc nor rustix has them); a unit test
//! checks their sizes and offsets. Each call passes a pointer to a live struct and its size.
#![allow(unsafe_code)]

use rustix::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::io;
use std::mem::size_of;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;
/// `XDP_FLAGS_SKB_MODE`: the generic XDP hook of the core receive path.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// The head of `union bpf_attr` for `BPF_MAP_CREATE`.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The head of `union bpf_attr` for `BPF_MAP_UPDATE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The head of `union bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// `struct bpf_insn`: opcode, registers (dst low nibble, src high), offset, immediate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | src << 4,
        off,
        imm,
    }
}

/// `bpf(cmd, attr, sizeof(*attr))`, returning the new fd for the commands that make one.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialized `#[repr(C)]` head of `union bpf_attr` for `cmd`
    // (layouts checked by the unit test) and the size passed is its size; the kernel reads
    // only that many bytes and treats the rest of the union as zero. Every pointer inside
    // names memory that lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

fn bpf_fd<T>(cmd: libc::c_long, attr: &T) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: The kernel just returned `fd` as a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// An XSKMAP and the redirect program, attached to one interface; detached on drop.
///
/// Create it in the network namespace of the interface (the thread's namespace counts).
///
/// # Examples
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
/// use pktmap_testbed::XskRedirect;
/// let ifindex = 2;
/// let redirect = XskRedirect::attach(ifindex, 1)?;
/// let xsk = XskBuilder::new(Umem::new(1024, 2048)?, RingSizes::default())?.bind(ifindex, 0)?;
/// redirect.insert(0, &xsk)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct XskRedirect {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
}

impl XskRedirect {
    /// Creates an XSKMAP with `queues` slots, loads the program and links it to `ifindex` in
    /// the driver's mode if the driver has one (veth does), else in generic mode.
    ///
    /// # Errors
    /// The `bpf()` errno: `EPERM` without `CAP_BPF` and `CAP_NET_ADMIN`, `ENODEV` for an
    /// interface not in this namespace, `EBUSY` if the interface has another XDP program.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let redirect = pktmap_testbed::XskRedirect::attach(2, 4)?; // ifindex 2, queues 0..4
    /// # Ok(()) }
    /// ```
    pub fn attach(ifindex: u32, queues: u32) -> io::Result<Self> {
        Self::attach_with(ifindex, queues, false)
    }

    /// As [`attach`](Self::attach), in generic (SKB) mode (`XDP_FLAGS_SKB_MODE`) when
    /// `generic` is set: the program runs in the core receive path for every frame, whoever
    /// injected it (pktgen's `netif_receive` too), not only in the driver's own receive
    /// path. AF_XDP's copy mode on a driver without XDP support works this way.
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let redirect = pktmap_testbed::XskRedirect::attach_with(2, 1, true)?; // generic XDP
    /// # Ok(()) }
    /// ```
    pub fn attach_with(ifindex: u32, queues: u32, generic: bool) -> io::Result<Self> {
        let map = bpf_fd(
            BPF_MAP_CREATE,
            &MapCreateAttr {
                map_type: BPF_MAP_TYPE_XSKMAP,
                key_size: 4,
                value_size: 4,
                max_entries: queues.max(1),
                map_name: name16("pktmap_xsks"),
                ..Default::default()
            },
        )?;
        let map_fd = map.as_raw_fd();
        let prog = [
            insn(0x61, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0), // ldxw r2, [r1 + 16]
            insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd), // lddw r1, map_fd
            insn(0x00, 0, 0, 0, 0),                     // (second half of lddw)
            insn(0xb7, 3, 0, 0, XDP_PASS),              // mov r3, XDP_PASS
            insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP), // call bpf_redirect_map
            insn(0x95, 0, 0, 0, 0),                     // exit
        ];
        let license = c"Dual MIT/GPL";
        let prog = bpf_fd(
            BPF_PROG_LOAD,
            &ProgLoadAttr {
                prog_type: BPF_PROG_TYPE_XDP,
                insn_cnt: prog.len() as u32,
                insns: prog.as_ptr() as u64,
                license: license.as_ptr() as u64,
                prog_name: name16("pktmap_xsk"),
                expected_attach_type: BPF_XDP,
                ..Default::default()
            },
        )?;
        let link = bpf_fd(
            BPF_LINK_CREATE,
            &LinkCreateAttr {
                prog_fd: prog.as_raw_fd() as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags: if generic { XDP_FLAGS_SKB_MODE } else { 0 },
            },
        )?;
        Ok(Self {
            map,
            _prog: prog,
            _link: link,
        })
    }

    /// Points queue `queue`'s slot of the map at `xsk`, so its frames go to that socket.
    ///
    /// # Errors
    /// The `bpf()` errno (`E2BIG` for a queue past the map, `EINVAL` for a socket not bound).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap::af_xdp::{RingSizes, Umem, XskBuilder};
    /// use pktmap_testbed::XskRedirect;
    /// let redirect = XskRedirect::attach(2, 1)?;
    /// let xsk = XskBuilder::new(Umem::new(64, 2048)?, RingSizes::default())?.bind(2, 0)?;
    /// redirect.insert(0, &xsk)?;
    /// # Ok(()) }
    /// ```
    pub fn insert(&self, queue: u32, xsk: &impl AsFd) -> io::Result<()> {
        let value = xsk.as_fd().as_raw_fd() as u32;
        bpf(
            BPF_MAP_UPDATE_ELEM,
            &MapElemAttr {
                map_fd: self.map.as_raw_fd() as u32,
                key: std::ptr::from_ref(&queue) as u64,
                value: std::ptr::from_ref(&value) as u64,
                ..Default::default()
            },
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn attrs_match_uapi_bpf_h() {
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(offset_of!(MapElemAttr, key), 8);
        assert_eq!(offset_of!(MapElemAttr, flags), 24);
        assert_eq!(offset_of!(ProgLoadAttr, insns), 8);
        assert_eq!(offset_of!(ProgLoadAttr, license), 16);
        assert_eq!(offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(size_of::<LinkCreateAttr>(), 16);
        assert_eq!(size_of::<Insn>(), 8);
        assert_eq!(name16("a_very_long_name_indeed")[15], 0);
    }
}
