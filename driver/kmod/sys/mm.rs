// SPDX-License-Identifier: GPL-2.0

//! Memory management (upstream `rust/kernel/mm.rs`): only the VMA types.

pub mod virt;
