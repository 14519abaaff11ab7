// SPDX-License-Identifier: MIT OR Apache-2.0
//! The pktmap contract, compiled unchanged by userspace and by the kernel module.
//!
//! A mapping request is `mmap(fd, offset)` where the offset encodes a map *type* and a map *id*
//! (the OpenOnload `oo_resource_mmap` idea). This crate holds everything both sides must agree on:
//!
//! - [`codec`]: the [`Layout`](codec::Layout) of an offset and the layouts of pktmap, Onload,
//!   io_uring, AF_XDP and VFIO;
//! - [`ioctl`]: the `/dev/pktmap` ioctl numbers and their `#[repr(C)]` argument structs, and the
//!   shared-memory layout of the STATE page and of rings;
//! - [`packet`]: attaching rings to a network device, the packet ring's layout and the checks
//!   of every index and descriptor a program writes into it;
//! - [`plan`]: the driver's validation of a request against its resource table, so the host can
//!   unit-test and fuzz exactly what the kernel runs.
//!
//! The crate is `no_std`, has no dependencies and no `unsafe`. The kernel module pulls the same
//! files in with `#[path]`, so modules refer to each other only through `super::`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::panic
    )
)]

pub mod codec;
pub mod ioctl;
pub mod packet;
pub mod plan;

/// The README's example, run as a doctest (the crate's page on crates.io shows that README).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
