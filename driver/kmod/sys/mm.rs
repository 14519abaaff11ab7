// SPDX-License-Identifier: GPL-2.0

//! Memory management (upstream `rust/kernel/mm.rs`): additions to upstream's VMA types
//! ([`virt`]), and page-frame maps ([`pfnmap`]).

pub mod pfnmap;
pub mod virt;
