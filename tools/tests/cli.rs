//! The `pktmap` command's refusals: bad arguments exit 2 with a message before anything is
//! measured, a run or a decode that finds nothing exits 1, and no output directory is created.

use pktmap_testbed::skip;
use std::process::{Command, Output};

fn pktmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pktmap"))
        .args(args)
        .output()
        .expect("run pktmap")
}

/// Asserts the exit status and that stderr mentions `needle`; returns stderr.
fn fails(args: &[&str], code: i32, needle: &str) -> String {
    let out = pktmap(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "pktmap {args:?}: {err}");
    assert!(err.contains(needle), "pktmap {args:?}: {err}");
    assert!(!err.contains("panicked"), "pktmap {args:?}: {err}");
    err
}

#[test]
fn bad_budgets_and_rounds_exit_2() {
    for budget in ["inf", "-1", "0", "nan", "1e300", "x"] {
        fails(&["bench", &format!("--budget={budget}")], 2, "budget");
    }
    fails(&["bench", "--min-rounds", "0"], 2, "min-rounds");
    let err = fails(&["bench", "--only", "nosuch"], 2, "unknown backing nosuch");
    assert!(
        err.contains("tpacket-rx-veth") && err.contains("packets"),
        "{err}"
    );
    fails(&["bench", "--only", "xdp-tx", "--frames", "0"], 2, "frames");
}

#[test]
fn checking_the_populate_matrix_needs_a_device() {
    fails(&["bench", "--quick", "--check"], 2, "needs --device");
    fails(
        &["bench", "--only", "fresh,xdp-tx", "--check"],
        2,
        "needs --device",
    );
}

#[test]
fn pool_backings_need_a_pktmap_device() {
    fails(&["bench", "--only", "pktmap-eager"], 2, "needs --device");
    fails(
        &["bench", "--quick", "--device", "/dev/null"],
        1,
        "not a pktmap device",
    );
}

#[test]
fn output_paths_are_checked_first_and_no_directory_is_made() {
    let dir = std::env::temp_dir().join(format!("pktmap-cli-{}", std::process::id()));
    let path = dir.join("sub/plot.svg");
    let p = path.to_str().unwrap();
    for flag in ["--plot", "--json-out", "--markdown-out"] {
        fails(&["bench", "--quick", flag, p], 2, "does not exist");
    }
    assert!(!dir.exists(), "a directory was created");
}

#[test]
fn decode_exits_1_when_no_layout_decodes() {
    fails(&["decode", "0x1"], 1, "does not decode with any layout");
    fails(
        &["decode", "-l", "pktmap", "0x1"],
        1,
        "does not decode with layout pktmap",
    );
    assert!(pktmap(&["decode", "0x9000"]).status.success());
}

#[test]
fn encode_refusals_exit_2_with_one_prefix() {
    let err = fails(
        &["encode", "POOL", "0x100000000"],
        2,
        "cannot encode POOL id 4294967296 in the pktmap layout",
    );
    assert!(!err.contains("pktmap: pktmap:"), "{err}");
    fails(&["encode", "FOO"], 2, "pktmap has no type FOO");
    fails(
        &["encode", "-l", "nosuch", "POOL"],
        2,
        "unknown layout nosuch",
    );
}

#[test]
fn help_lists_every_backing() {
    let out = pktmap(&["bench", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for b in pktmap_tools::bench::Backing::ALL {
        assert!(
            help.contains(b.name()),
            "--help does not name {}: {help}",
            b.name()
        );
    }
}

fn nr_hugepages() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
        .expect("read nr_hugepages")
        .trim()
        .parse()
        .expect("a number")
}

/// The README's promise: a bench interrupted by Ctrl-C (`SIGINT`) exits 130 and puts
/// `/proc/sys/vm/nr_hugepages` back to what it was before the run raised it for the hugetlb
/// rows.
#[test]
fn interrupted_bench_exits_130_and_restores_nr_hugepages() {
    use std::os::unix::fs::MetadataExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid()
        != 0
    {
        return skip("raising vm.nr_hugepages needs root");
    }
    let before = nr_hugepages();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pktmap"))
        .args(["bench", "--only", "hugetlb", "--no-plot", "--budget", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pktmap bench");
    // Wait until the run has raised the reservation (the hugetlb groups need more 2 MiB
    // pages than a machine keeps free), then interrupt it mid-run.
    let start = Instant::now();
    while nr_hugepages() <= before && start.elapsed() < Duration::from_secs(60) {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the bench ended before it raised nr_hugepages"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let raised = nr_hugepages();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -INT failed");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        raised > before,
        "nr_hugepages never rose above {before}: {err}"
    );
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("pktmap: interrupted"), "{err}");
    assert_eq!(
        nr_hugepages(),
        before,
        "nr_hugepages not restored (was raised to {raised})"
    );
    eprintln!("nr_hugepages {before} -> {raised} -> {before}");
}

fn stdout_of(args: &[&str]) -> String {
    let out = pktmap(args);
    assert!(out.status.success(), "pktmap {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The README's codec commands print what the README says they print.
#[test]
fn readme_codec_commands_print_what_the_readme_says() {
    assert_eq!(stdout_of(&["encode", "POOL", "7"]), "0x39000\n");
    assert_eq!(
        stdout_of(&["encode", "--layout", "io_uring", "PBUF_RING", "3"]),
        "0x80030000\n"
    );
    let decoded = stdout_of(&["decode", "0x39000"]);
    let first: Vec<&str> = decoded.lines().collect();
    assert_eq!(first.len(), 5, "one line per layout: {decoded}");
    assert_eq!(first[0], "pktmap    POOL id 7");
    assert_eq!(stdout_of(&["decode", "--pgoff", "0x39"]), decoded);
    // A type without a name is spelt as `pktmap maps` spells it.
    assert_eq!(
        stdout_of(&["decode", "-l", "vfio", "0x20000100000"]),
        "vfio      type 2 id 1048576\n"
    );
    // Every --json is one JSON value.
    for args in [
        &["encode", "POOL", "7", "--json"][..],
        &["decode", "0x39000", "--json"][..],
        &["maps", "--json"][..],
    ] {
        let text = stdout_of(args);
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("pktmap {args:?}: {e}: {text}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&stdout_of(&["encode", "POOL", "7", "--json"])).unwrap();
    assert_eq!(
        (v["offset"].as_u64(), v["pgoff"].as_u64()),
        (Some(0x39000), Some(0x39))
    );
}

/// `maps` of a process that does not exist exits 1 and says so; `maps` with nothing to name
/// exits 0, prints nothing (or `[]`) and says so on stderr.
#[test]
fn maps_of_no_process_exits_1_and_nothing_to_name_exits_0() {
    fails(&["maps", "999999999"], 1, "no process 999999999");
    let out = pktmap(&["maps"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(
        err.contains("no pktmap, io_uring or AF_XDP mappings"),
        "{err}"
    );
    let out = pktmap(&["maps", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

/// A `--device` that is not there names the likely cause (no driver loaded) before running.
#[test]
fn a_missing_device_asks_whether_the_driver_is_loaded() {
    fails(
        &["bench", "--quick", "--device", "/nonexistent/pktmap"],
        1,
        "cannot open it: open /nonexistent/pktmap: No such file or directory (os error 2): is pktmap.ko loaded?",
    );
}

/// `maps` tells two io_uring instances apart: every ring's file is `anon_inode:[io_uring]`,
/// so each mapping names its file's inode and the descriptor of the process that refers to it
/// (text and JSON).
#[test]
fn maps_tells_io_uring_instances_apart() {
    use pktmap::resource::{map, MapFlags};
    use std::os::fd::AsRawFd;
    let rings: Vec<_> = (0..2)
        .map(|_| {
            let mut p = rustix::io_uring::io_uring_params::default();
            // SAFETY: `p` is a zeroed `io_uring_params`, as io_uring_setup(2) wants it.
            unsafe { rustix::io_uring::io_uring_setup(4, &mut p) }.expect("io_uring_setup")
        })
        .collect();
    // The SQ ring of each (IORING_OFF_SQ_RING, 0).
    let maps: Vec<_> = rings
        .iter()
        .map(|fd| map(fd, 0, 4096, MapFlags::READONLY).expect("map an SQ ring"))
        .collect();
    let pid = std::process::id().to_string();
    let out = pktmap(&["maps", &pid]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = String::from_utf8_lossy(&pktmap(&["maps", &pid, "--json"]).stdout).into_owned();
    let mut inodes = Vec::new();
    for (fd, m) in rings.iter().zip(&maps) {
        let ino = rustix::fs::fstat(fd).unwrap().st_ino;
        let start = format!("{:x}-", m.as_ptr() as usize);
        let line = text
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no line for {start} in\n{text}"));
        let want = format!("(ino {ino}, fd {})", fd.as_raw_fd());
        assert!(line.ends_with(&want), "{line} (want {want})");
        assert!(
            json.contains(&format!("\"inode\":{ino},\"fds\":[{}]", fd.as_raw_fd())),
            "{json}"
        );
        inodes.push(ino);
    }
    assert_ne!(inodes[0], inodes[1], "two rings, one inode");
}
