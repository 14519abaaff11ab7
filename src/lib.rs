//! pktmap: map kernel-bypass resources by encoding what to map in the `mmap` offset.
//!
//! A packet-processing program asks for a resource by `(type, id)`; [`offset`] encodes the pair
//! into the `mmap` offset with a [`Layout`](offset::Layout) (the OpenOnload
//! `oo_resource_mmap` idea), [`resource`] maps it with [`MapFlags`](resource::MapFlags) and
//! hands back a [`Mapping`](resource::Mapping) that unmaps on drop, and the driver decodes
//! `vma->vm_pgoff` with the very same codec (`pktmap-abi`). [`capi`] is the C face:
//! `pktmap_resource_mmap` with Onload's exact contract.
//!
//! # Examples
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
pub mod capi;
pub mod device;
mod error;
#[cfg(feature = "io-uring")]
pub mod io_uring;
pub mod maps;
pub mod offset;
pub mod pool;
pub mod resource;

pub use error::{Error, Result};

/// The README's Rust examples, compiled (and, where not `no_run`, run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
