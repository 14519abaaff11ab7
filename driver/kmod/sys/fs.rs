// SPDX-License-Identifier: GPL-2.0

//! Files (upstream `rust/kernel/fs.rs`).

pub mod file;

pub use file::File;
