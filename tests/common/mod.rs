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
    let out = Command::new(env!("CARGO"))
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "cargo build {args:?} failed");
    let suffix = format!("/{file_name}");
    String::from_utf8_lossy(&out.stdout)
        .split('"')
        .filter(|s| s.ends_with(&suffix))
        .map(PathBuf::from)
        .next_back()
        .unwrap_or_else(|| panic!("cargo build {args:?} produced no {file_name}"))
}

/// Huge pages reserved for one test: `vm.nr_hugepages` raised by `pages` and restored on drop.
///
/// Tests that need hugetlb memory reserve it themselves, so they run on a machine that has
/// none configured (CI's), and fail with the reason when the kernel will not give them.
#[allow(dead_code)] // Used by some of the test binaries that include this module.
pub struct HugePages {
    before: u64,
}

#[allow(dead_code)]
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

#[allow(dead_code)]
impl HugePages {
    /// Reserves `pages` more 2 MiB pages, or panics saying why it could not.
    pub fn reserve(pages: u64) -> Self {
        let read = || -> u64 {
            std::fs::read_to_string(NR_HUGEPAGES)
                .unwrap_or_else(|e| panic!("{NR_HUGEPAGES}: {e}"))
                .trim()
                .parse()
                .unwrap()
        };
        let before = read();
        std::fs::write(NR_HUGEPAGES, (before + pages).to_string()).unwrap_or_else(|e| {
            panic!(
                "hugetlb test: cannot raise {NR_HUGEPAGES} to {}: {e} (needs root)",
                before + pages
            )
        });
        let now = read();
        let guard = Self { before };
        assert!(
            now >= before + pages,
            "hugetlb test: asked the kernel for {} huge pages in {NR_HUGEPAGES}, it has {now} \
             (memory too fragmented?)",
            before + pages
        );
        guard
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, self.before.to_string());
    }
}
