//! The skip-or-fail preamble of the tests that need root, and [`skip`], what every test that
//! cannot run somewhere says.

use std::process::Command;

/// Whether this process may make namespaces and AF_XDP sockets (root, and `ip` installed).
///
/// When it may not, prints a loud line naming `what` and returns `false` so the caller can
/// skip, or panics when `CI=true`.
///
/// # Panics
/// Under `CI=true`, when not root or `ip` is missing.
///
/// # Examples
/// ```no_run
/// if !pktmap_testbed::require_root("xdp_echo") {
///     return;
/// }
/// ```
pub fn require_root(what: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if root && ip {
        return true;
    }
    let why = if root {
        "iproute2's `ip` is not installed (apt-get install iproute2)"
    } else {
        "it needs root (network namespaces, veth, AF_XDP, BPF)"
    };
    skip(format_args!("{what}: {why}"));
    false
}

/// Says loudly that a test cannot run here, and why: prints `!!! SKIPPED: why` for the caller
/// to return, or panics when `CI=true`, where nothing may be skipped.
///
/// # Panics
/// Under `CI=true`.
///
/// # Examples
/// ```no_run
/// let sock = match rustix::net::socket(rustix::net::AddressFamily::PACKET, rustix::net::SocketType::RAW, None) {
///     Ok(s) => s,
///     Err(e) => {
///         pktmap_testbed::skip(format_args!("AF_PACKET needs CAP_NET_RAW ({e})"));
///         return;
///     }
/// };
/// # let _ = sock;
/// ```
pub fn skip(why: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("!!! SKIPPED: {why}");
}
