//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::Command;

/// Runs `cargo build <args>` for this package (a no-op when fresh) and returns the path of the
/// artifact whose file name is `file_name`, taken from cargo's JSON messages.
///
/// `cargo test` builds the library only as an rlib and builds examples only when it is asked
/// for all targets, so tests that need the C libraries or an example binary build them here
/// rather than skip.
#[allow(dead_code)] // Used by some of the test binaries that include this module.
pub fn cargo_artifact(args: &[&str], file_name: &str) -> PathBuf {
    cargo_artifacts("build", args, &[file_name]).remove(0)
}

/// Runs `cargo <command> <args>` for this package and returns the paths of the artifacts named
/// `file_names`, in that order (`cargo rustc` builds the C libraries: the manifest declares
/// only an rlib).
#[allow(dead_code)] // Used by some of the test binaries that include this module.
pub fn cargo_artifacts(command: &str, args: &[&str], file_names: &[&str]) -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO"))
        .arg(command)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "cargo {command} {args:?} failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    file_names
        .iter()
        .map(|file_name| {
            let suffix = format!("/{file_name}");
            stdout
                .split('"')
                .filter(|s| s.ends_with(&suffix))
                .map(PathBuf::from)
                .next_back()
                .unwrap_or_else(|| panic!("cargo {command} {args:?} produced no {file_name}"))
        })
        .collect()
}

/// Packet `seq`'s payload (an AF_XDP frame's, a UDP datagram's): the header `PKTM` and `seq`,
/// then a body every byte of which depends on `seq`, 16 to 1415 bytes in all, so a receiver
/// can check each byte and tell every packet from every other.
#[allow(dead_code)] // Used by some of the test binaries that include this module.
pub fn payload(seq: u32) -> Vec<u8> {
    let len = 16 + (seq as usize * 37) % 1400;
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(b"PKTM");
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((8..len).map(|i| (seq as u8).wrapping_mul(29).wrapping_add(i as u8)));
    p
}
