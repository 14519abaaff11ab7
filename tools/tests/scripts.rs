//! The scripts a new user runs first (`scripts/test-all`, `install-c`, `guest-test`, `fuzz`,
//! `build-stock-module`):
//! `--help` prints the usage and exits 0 without doing any work, and a bad argument exits 2
//! with a message before anything is built or installed. And the driver README's signing and
//! install blocks are found where `guest-test` looks for them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Runs `scripts/NAME ARGS`, failing if it takes longer than a script that only parses its
/// arguments could (it would be building or testing instead).
fn run(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(script(name))
        .args(args)
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scripts/{name} {args:?} was still running after 30 s: it did work");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn every_script_has_help_that_does_nothing_else() {
    for (name, says) in [
        ("test-all", "scripts/test-all"),
        ("install-c", "scripts/install-c PREFIX"),
        ("guest-test", "scripts/guest-test --soak SECONDS"),
        ("fuzz", "scripts/fuzz [SECONDS] [TARGET...]"),
        ("build-stock-module", "scripts/build-stock-module RELEASE"),
    ] {
        for flag in ["--help", "-h"] {
            let out = run(name, &[flag]);
            let help = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "scripts/{name} {flag}: {out:?}");
            assert!(help.contains(says), "scripts/{name} {flag}:\n{help}");
            assert!(
                help.contains("Exit") || help.contains("exit"),
                "{name}:\n{help}"
            );
            assert!(
                !help.contains("==>"),
                "scripts/{name} {flag} ran steps:\n{help}"
            );
        }
    }
}

#[test]
fn bad_arguments_exit_2_before_any_work() {
    for (name, args, says) in [
        ("test-all", &["--bogus"][..], "unknown argument --bogus"),
        ("install-c", &["relative/prefix"][..], "absolute path"),
        ("install-c", &["--bogus"][..], "unknown option --bogus"),
        ("install-c", &[][..], "expected one PREFIX"),
        ("install-c", &["/a", "/b"][..], "expected one PREFIX"),
        ("guest-test", &["--bogus"][..], "unknown argument --bogus"),
        ("guest-test", &["--soak", "x"][..], "--soak needs a number"),
        ("fuzz", &["--runs", "x"][..], "--runs needs a number"),
        ("fuzz", &["5", "nosuch"][..], "unknown target 'nosuch'"),
        (
            "build-stock-module",
            &["--bogus"][..],
            "unknown option --bogus",
        ),
        ("build-stock-module", &[][..], "which kernel?"),
        (
            "build-stock-module",
            &["--sign", "k"][..],
            "--sign needs KEY and CERT",
        ),
    ] {
        let out = run(name, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "scripts/{name} {args:?}: {err}");
        assert!(err.contains(says), "scripts/{name} {args:?}: {err}");
    }
}

/// `scripts/lib/common.sh`'s `readme_block MARKER` as the pipeline calls it.
fn readme_block(marker: &str) -> Output {
    let common = script("lib/common.sh");
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("driver/kmod/README.md");
    Command::new("bash")
        .arg("-c")
        .arg(r#". "$1" && readme_block "$2" "$3""#)
        .args([
            "bash",
            &common.to_string_lossy(),
            &readme.to_string_lossy(),
            marker,
        ])
        .output()
        .expect("run bash")
}

/// The driver README's signing and install blocks are what `scripts/guest-test` runs (the
/// signing block in its build root, the install block in each guest): both are found by
/// their markers and hold the commands the pipeline's checks rely on, and a marker that is
/// not there fails the lookup instead of running nothing.
#[test]
fn the_driver_readme_blocks_are_the_ones_the_pipeline_runs() {
    let sign = readme_block("enrolled once:");
    let sign_text = String::from_utf8_lossy(&sign.stdout);
    assert!(sign.status.success(), "{sign:?}");
    for want in [
        "openssl req -new -x509",
        "CN=",
        "mokutil --import MOK.der",
        "scripts/build-stock-module $(uname -r) --sign MOK.priv MOK.der",
    ] {
        assert!(
            sign_text.contains(want),
            "signing block lacks {want:?}:\n{sign_text}"
        );
    }
    let install = readme_block("Install and load:");
    let install_text = String::from_utf8_lossy(&install.stdout);
    assert!(install.status.success(), "{install:?}");
    for want in [
        "ko=target/stock-module/kmod-build/driver/kmod/pktmap.ko\n",
        "depmod -a",
        "modprobe pktmap",
    ] {
        assert!(
            install_text.contains(want),
            "install block lacks {want:?}:\n{install_text}"
        );
    }
    let missing = readme_block("no such marker in the README");
    assert!(!missing.status.success(), "{missing:?}");
    assert!(missing.stdout.is_empty(), "{missing:?}");
    let read = |p: &str| std::fs::read_to_string(script(p)).expect("read script");
    assert!(read("guest-test")
        .contains("readme_block \"$PKTMAP_REPO/driver/kmod/README.md\" 'enrolled once:'"));
    assert!(read("lib/initramfs.sh")
        .contains("readme_block \"$PKTMAP_REPO/driver/kmod/README.md\" 'Install and load:'"));
    assert!(read("guest/init").contains("sh -ex /readme-install.sh"));
}
