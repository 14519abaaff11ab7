//! `pktmap bench --only <packet cells>` on this machine: a veth pair in a network namespace
//! of the run's own, AF_PACKET `TPACKET_V3` and AF_XDP copy mode receiving from a packet
//! socket and sending, every repetition's frames accounted for exactly. Needs root (skipped
//! loudly, failed under `CI=true`, otherwise). pktgen is the guest's traffic source
//! (`scripts/guest-test --bench --only packets`); where it is missing, the `netif_receive`
//! cells must be reported as not measured, and fail `--check`.

use pktmap_testbed::require_root;
use std::process::Command;

#[test]
fn peers_move_and_account_for_every_frame() {
    if !require_root("packet bench") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pktmap-packets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("packets.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pktmap"))
        .args([
            "bench",
            "--only",
            "tpacket-rx-veth,xdp-rx-veth,tpacket-tx,xdp-tx",
            "--quick",
            "--frames",
            "2000",
            "--min-rounds",
            "1",
            "--check",
            "--no-plot",
            "--json-out",
        ])
        .arg(&json)
        .output()
        .expect("run pktmap");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // 8 cells (4 kinds × busy, sleep), one accounting check each, none failed.
    assert!(stdout.contains("8 passed, 0 failed"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    for c in cells {
        let kind = c["kind"].as_str().unwrap();
        let wait = c["wait"].as_str().unwrap();
        let reps = c["repetitions"].as_array().unwrap();
        assert_eq!(reps.len(), 1, "{kind}");
        for r in reps {
            let n = |k: &str| r[k].as_u64().unwrap();
            let dropped: u64 = r["drops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d[1].as_u64().unwrap())
                .sum();
            assert_eq!(n("delivered") + dropped, n("sent"), "{kind} {wait}: {r}");
            assert!(n("sent") >= 2000, "{kind} {wait}: {r}");
            if kind.ends_with("-tx") {
                // Every frame queued was sent by the device or counted as dropped.
                assert!(n("delivered") > 0, "{kind}: {r}");
            }
            if wait == "busy" && kind.contains("-rx") {
                // A busy consumer takes frames off its ring without one system call.
                assert_eq!(n("syscalls"), 0, "{kind}: {r}");
            }
            if wait == "sleep" && kind.contains("-rx") {
                assert!(n("syscalls") > 0, "{kind}: a sleeping consumer polls: {r}");
            }
        }
    }
    assert!(cells.iter().any(|c| c["ratio_tpacket"].is_number()));
}

#[test]
fn netif_receive_cells_need_pktgen() {
    if !require_root("packet bench") {
        return;
    }
    if std::path::Path::new("/proc/net/pktgen").exists() {
        // pktgen is here: nothing to refuse (the guest measures these cells).
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pktmap"))
        .args([
            "bench",
            "--only",
            "tpacket-rx,xdp-tx",
            "--quick",
            "--frames",
            "500",
            "--min-rounds",
            "1",
            "--check",
            "--no-plot",
        ])
        .output()
        .expect("run pktmap");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL packets tpacket-rx: measured (needs pktgen"),
        "{stdout}"
    );
}
