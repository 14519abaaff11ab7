// SPDX-License-Identifier: GPL-2.0

//! Memory management (upstream `rust/kernel/mm.rs`): the VMA types, and pktmap's page-frame mappings ([`pfnmap`]).

pub mod pfnmap;
pub mod virt;
