//! Typed mmap offsets over the shared codec.
pub use pktmap_abi::codec::*;
