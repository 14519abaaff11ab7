//! The tools around the pktmap library: the benchmark harness behind `pktmap bench` and the
//! criterion bench, which a library user never links.
//!
//! The `pktmap` binary (`src/main.rs`) parses arguments and prints; the logic is here.
#![deny(unsafe_code)]

pub mod bench;
