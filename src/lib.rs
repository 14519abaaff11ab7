//! pktmap: map kernel-bypass resources by encoding what to map in the `mmap` offset.
//!
//! A packet-processing program asks for a resource by `(type, id)`; [`offset`] encodes the pair
//! into the `mmap` offset with a [`Layout`](offset::Layout) (the OpenOnload
//! `oo_resource_mmap` idea), [`resource`] maps it with [`MapFlags`](resource::MapFlags) and
//! hands back a [`Mapping`](resource::Mapping) that unmaps on drop, and the driver decodes
//! `vma->vm_pgoff` with the very same codec (`pktmap-abi`). The C face, `pktmap_resource_mmap`
//! with Onload's exact contract, is built by cargo-c (feature `capi`) and is no part of the
//! Rust API.
//!
//! # Modules
//! - [`offset`]: the codec's layouts (pktmap's, Onload's, io_uring's, AF_XDP's, VFIO's) and
//!   the one region shape, [`offset::Region`], that every mappable resource implements.
//! - [`resource`]: `mmap` with [`MapFlags`](resource::MapFlags) into a
//!   [`Mapping`](resource::Mapping), and [`resource::map_region`], which maps a region with
//!   its length checked once; the only module that calls `mmap`.
//! - [`volatile`]: typed views of shared memory on a `Mapping`: checked atomics, volatile
//!   values, descriptor arrays (vm-memory's idea), so ring code keeps offsets, not pointers.
//! - [`reservation`]: `MAP_FIXED` done safely: a reserved range and mappings in checked slots
//!   of it, the application's own address plan.
//! - [`device`]: the `/dev/pktmap` device node, its rings and its STATE.
//! - [`pool`]: every pool operation: eager, lazy (with fault-around), physically contiguous,
//!   2 MiB and write-combined pools made by one builder ([`PoolOptions`](pool::PoolOptions)),
//!   their maps (POPULATE by kind), chunk physical addresses, and a pool exported as a file
//!   descriptor of its own ([`PoolFile`](pool::PoolFile)) that another process maps.
//! - `uring` (feature `io-uring`): the rings of any io_uring instance, made here or
//!   adopted, with provided-buffer rings in memory the caller supplies. Named so that it
//!   shadows nothing beside the `io-uring` crate (`io_uring::IoUring`).
//! - `af_xdp` (feature `af-xdp`): an AF_XDP socket's rings and UMEM, made here or adopted,
//!   copy, zero-copy and need_wakeup modes, shared UMEM.
//! - `inspect` (feature `inspect`, default): what the kernel says an fd or a mapping is:
//!   `/proc/<pid>/maps` named by what each file is (`inspect::maps`), what a socket is
//!   (`inspect::sock_diag`), an io_uring's sizes (`inspect::fdinfo`).
//! - `capi` (feature `capi`, which cargo-c switches on; Rust users leave it off): the C ABI
//!   of `include/pktmap.h` (`pktmap_resource_mmap`), for libpktmap.a and libpktmap.so.
//! - [`Error`]: the one error type; every error keeps its errno.
//!
//! # Examples
//! Any mappable fd serves; a memfd runs anywhere:
//! ```
//! # fn main() -> std::io::Result<()> {
//! use pktmap::offset::ResourceType;
//! use pktmap::resource::{map, sealed_memfd, MapFlags};
//! let offset = ResourceType::Pool.offset(3); // what to map is in the offset: 0x19000
//! let fd = sealed_memfd("pool", offset + 4096)?; // no one can shrink it under the mapping
//! let pool = map(&fd, offset, 4096, MapFlags::POPULATE)?; // prefaulted
//! pool.write_at(0, b"frame")?;
//! let mut back = [0; 5];
//! pool.read_at(0, &mut back)?;
//! assert_eq!(&back, b"frame");
//! # Ok(()) }
//! ```
//!
//! The driver's device, where it is loaded:
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use pktmap::offset::ResourceType;
//! use pktmap::resource::{map, MapFlags};
//! let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/pktmap")?;
//! let state = map(&dev, ResourceType::State.offset(0), 4096, MapFlags::READONLY)?;
//! let mut magic = [0; 6];
//! state.read_at(0, &mut magic)?;
//! assert_eq!(&magic, b"pktmap");
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

#[cfg(feature = "af-xdp")]
pub mod af_xdp;
#[cfg(feature = "capi")]
pub mod capi;
pub mod device;
mod error;
#[cfg(feature = "inspect")]
pub mod inspect;
pub mod offset;
pub mod packet;
pub mod pool;
pub mod reservation;
pub mod resource;
#[cfg(feature = "io-uring")]
pub mod uring;
pub mod volatile;

pub use error::{Error, Result};

/// The README's Rust examples, compiled (and, where not `no_run`, run) as doctests.
#[cfg(all(doctest, feature = "io-uring", feature = "af-xdp"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
