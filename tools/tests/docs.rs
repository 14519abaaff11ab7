//! The maps of the repository stay true: `ARCHITECTURE.md` names every tracked source, script
//! and test file (by file name, or a fuzz target or script by its name), and
//! `driver/kmod/README.md` names every file of the module. A file added without a word in the
//! map fails here.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `git ls-files` under `dirs`.
fn tracked(dirs: &[&str]) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo())
        .arg("ls-files")
        .args(dirs)
        .output()
        .expect("run git ls-files (the tests run in a git checkout)");
    assert!(out.status.success(), "git ls-files: {out:?}");
    let files: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 paths")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!files.is_empty(), "git ls-files {dirs:?} listed nothing");
    files
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The files of `files` whose name `doc` never mentions (`mod.rs` and dot files are named by
/// their directory).
fn unnamed<'a>(doc: &str, files: &'a [String]) -> Vec<&'a str> {
    files
        .iter()
        .map(String::as_str)
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap_or(f);
            let stem = name.strip_suffix(".rs").unwrap_or(name);
            !(name == "mod.rs"
                || name.starts_with('.')
                || name == "README.md"
                || doc.contains(name)
                || doc.contains(&format!("`{stem}`")))
        })
        .collect()
}

#[test]
fn architecture_names_every_tracked_file() {
    let files = tracked(&[
        "src",
        "driver/abi/src",
        "guest/src",
        "driver/kmod",
        "tools/src",
        "tools/tests",
        "tools/benches",
        "testbed/src",
        "tests",
        "benches",
        "examples",
        "scripts",
        "fuzz/fuzz_targets",
        "fuzz/src",
        "include",
    ]);
    let missing = unnamed(&read("ARCHITECTURE.md"), &files);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name: {missing:?}"
    );
}

#[test]
fn the_driver_readme_names_every_module_file() {
    let files = tracked(&["driver/kmod"]);
    let missing = unnamed(&read("driver/kmod/README.md"), &files);
    assert!(
        missing.is_empty(),
        "driver/kmod/README.md does not name: {missing:?}"
    );
}
