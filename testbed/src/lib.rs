//! The test bed of pktmap's AF_XDP tests and examples; not part of the library.
//!
//! - [`VethPair`]: two fresh network namespaces joined by a veth pair, removed on drop, and a
//!   raw [`PacketSocket`] peer that sends [`frame`]s of the experimental [`ETHERTYPE`].
//! - [`XskRedirect`]: the six-instruction XDP program that redirects an interface's frames into
//!   an XSKMAP holding an AF_XDP socket (what libxdp loads for a real application).
//! - [`echo`]: the loop that bounces every frame back through a socket's TX ring, shared by
//!   the `xdp_echo` example and `tests/af_xdp.rs`.
//! - [`require_root`]: the preamble of every privileged test, and [`skip`], what any test that
//!   cannot run says: skip loudly, or fail under `CI=true`.
//! - [`HugePages`]: 2 MiB pages added to the hugetlb pool while a guard lives, counted
//!   machine-wide (a ledger file under `flock`) so that any number of tests and bench runs, in
//!   one process or many, neither fight over `vm.nr_hugepages` nor leave pages behind; shared
//!   with the bench harness of `pktmap-tools`.
//!
//! `publish = false`: it is a dev-dependency of `pktmap` (and a dependency of the unpublished
//! `pktmap-tools`), never linked into a user's program.
#![deny(unsafe_code)]

mod echo;
mod hugepages;
mod privileged;
mod redirect;
mod veth;

pub use echo::{echo, EchoStats};
pub use hugepages::{free_huge_pages, HugePages};
pub use privileged::{require_root, skip};
pub use redirect::XskRedirect;
pub use veth::{frame, PacketSocket, Side, VethPair, ETHERTYPE};
