//! pktmap: map kernel-bypass resources by encoding what to map in the `mmap` offset.
#![deny(unsafe_code)]

pub mod capi;
pub mod offset;
pub mod resource;
