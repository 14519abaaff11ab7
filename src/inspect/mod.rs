//! What the kernel says an fd or a mapping is (feature `inspect`, default): the one room for
//! code that asks rather than maps.
//!
//! - [`maps`]: `/proc/<pid>/maps`, each mapping named by what the kernel says its file is,
//!   then by its offset.
//! - [`sock_diag`]: what a socket is (`sock_diag` over netlink, `system.sockprotoname`), and
//!   an AF_XDP socket's ring sizes.
//! - [`fdinfo`]: `/proc/self/fdinfo/<fd>`: an io_uring's ring sizes.
//!
//! The mapping modules use it where they adopt what someone else made:
//! `pktmap::uring::Uring::adopt` learns the ring sizes from [`fdinfo`] (without the feature it
//! does not exist), and `pktmap::af_xdp`'s `adopt` checks the ring sizes against
//! [`sock_diag`] where the kernel has `xsk_diag` (without the feature it trusts the caller).
//!
//! # Examples
//! ```
//! # fn main() -> std::io::Result<()> {
//! // This process's own mappings, named.
//! for e in pktmap::inspect::maps::read(None)? {
//!     if let Some(layout) = e.layout() {
//!         println!("{:#x} {} {}", e.start, layout.name, e.name());
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod fdinfo;
pub mod maps;
pub mod sock_diag;
