//! The scripts a new user runs first (`scripts/test-all`, `install-c`, `guest-test`, `fuzz`,
//! `build-stock-module`):
//! `--help` prints the usage and exits 0 without doing any work, and a bad argument exits 2
//! with a message before anything is built or installed.

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
