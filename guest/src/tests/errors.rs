//! The errors a user hits first, as the README and the driver README describe them: the
//! device node is root's (`crw-------`), so another user's `open` is `EACCES`, and the
//! `pktmap` command (`/pktmap`) says why a `--device` cannot be used (no access, no such
//! device: "is pktmap.ko loaded?") and why another user's mappings cannot be listed, each
//! with exit status 1.

use crate::sys;
use crate::utils::Report;
use pktmap::device::Device;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `nobody`, as `contiguous.rs`'s unprivileged `POOL_CHUNK` check uses.
const NOBODY: u32 = 65534;

/// Runs `/pktmap ARGS` as `uid` (root when `None`); its exit code and stderr.
fn pktmap_as(uid: Option<u32>, args: &[&str]) -> Result<(Option<i32>, String), String> {
    let mut cmd = Command::new("/pktmap");
    cmd.args(args);
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().map_err(|e| format!("running /pktmap: {e}"))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn check_cli(r: &mut Report, name: &str, uid: Option<u32>, args: &[&str], says: &[&str]) {
    match pktmap_as(uid, args) {
        Ok((code, err)) => r.check(
            name,
            code == Some(1) && says.iter().all(|s| err.contains(s)) && !err.contains("panicked"),
            format!("exit {code:?}, stderr {err:?}, want exit 1 and {says:?}"),
        ),
        Err(e) => r.check(name, false, e),
    }
}

pub fn run(r: &mut Report) {
    match std::fs::metadata("/dev/pktmap") {
        Ok(m) => r.check(
            "/dev/pktmap is a character device owned by root, mode 0600",
            m.file_type().is_char_device()
                && m.uid() == 0
                && m.gid() == 0
                && m.permissions().mode() & 0o7777 == 0o600,
            format!(
                "uid {} gid {} mode {:o}",
                m.uid(),
                m.gid(),
                m.permissions().mode()
            ),
        ),
        Err(e) => r.check("stat /dev/pktmap", false, e),
    }

    // Another user's open, through the library: EACCES from open(2), and the message says so.
    let child = sys::wait_child(sys::spawn_child(|| {
        // SAFETY: a forked child that drops to `nobody`, opens one file and exits.
        if unsafe { libc::setgid(NOBODY) } != 0 || unsafe { libc::setuid(NOBODY) } != 0 {
            return 2;
        }
        match Device::open() {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => 0,
            _ => 1,
        }
    }));
    r.check(
        "another user's Device::open(): EACCES (the node is root's)",
        child.is_none(),
        format!("child {child:?}"),
    );

    check_cli(
        r,
        "pktmap bench --device as another user: exit 1, says it opens the device read-write",
        Some(NOBODY),
        &["bench", "--quick", "--no-plot", "--device", "/dev/pktmap"],
        &[
            "--device /dev/pktmap: cannot open it",
            "Permission denied",
            "read-write",
        ],
    );
    check_cli(
        r,
        "pktmap bench --device of no such node: exit 1, asks whether pktmap.ko is loaded",
        None,
        &[
            "bench",
            "--quick",
            "--no-plot",
            "--device",
            "/dev/pktmap-nosuch",
        ],
        &["cannot open it", "No such file", "is pktmap.ko loaded?"],
    );
    let pid = std::process::id().to_string();
    check_cli(
        r,
        "pktmap maps of root's process as another user: exit 1, says what access it needs",
        Some(NOBODY),
        &["maps", &pid],
        &[
            &format!("/proc/{pid}/maps"),
            "Permission denied",
            "root or ptrace access",
        ],
    );
}
