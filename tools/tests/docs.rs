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

/// The README's Rust examples compile as doctests of the library (`src/lib.rs`), where every
/// dev-dependency is at hand; a reader has only the dependency lines the README shows. So
/// every crate an example names (`name::` at the start of a path, or `use name::`) must be
/// std, pktmap, or a crate of a `toml` block of the README (`io-uring` → `io_uring`); a name an
/// example imported itself (`use pktmap::offset::{io_uring_types, ..}`) is its own.
#[test]
fn readme_examples_name_only_the_crates_the_readme_lists() {
    let readme = read("README.md");
    let mut listed: Vec<String> = ["std", "core", "alloc", "pktmap", "crate", "self", "super"]
        .map(String::from)
        .to_vec();
    let mut blocks = Vec::new();
    let (mut lang, mut body) = (None::<String>, String::new());
    for line in readme.lines() {
        match (&lang, line.strip_prefix("```")) {
            (None, Some(info)) => {
                lang = Some(info.to_string());
                body.clear();
            }
            (Some(l), Some(_)) => {
                if l == "toml" {
                    for dep in body.lines().filter_map(|d| d.split_once('=')) {
                        listed.push(dep.0.trim().replace('-', "_"));
                    }
                } else if l.starts_with("rust") {
                    blocks.push(body.clone());
                }
                lang = None;
            }
            (Some(_), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(blocks.len() >= 5, "found {} Rust examples", blocks.len());
    assert!(listed.iter().any(|c| c == "io_uring"), "{listed:?}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut bad = Vec::new();
    for block in &blocks {
        // Names the block imports: the last segment of each `use` path (and of each `{..}` item).
        let code: String = block
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| l.split(" //").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let mut own: Vec<String> = Vec::new();
        for u in code.split("use ").skip(1) {
            let stmt = u.split(';').next().unwrap_or("");
            for item in stmt.split(['{', ',', '}']) {
                if let Some(last) = item.trim().rsplit("::").next() {
                    own.push(last.trim().to_string());
                }
            }
        }
        let bytes: Vec<char> = code.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            if ident(bytes[i]) && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
                let start = i;
                while i < bytes.len() && ident(bytes[i]) {
                    i += 1;
                }
                let word: String = bytes[start..i].iter().collect();
                let is_path = bytes.get(i) == Some(&':') && bytes.get(i + 1) == Some(&':');
                let first = word.chars().next().unwrap_or('A');
                if is_path
                    && first.is_ascii_lowercase()
                    && !listed.contains(&word)
                    && !own.contains(&word)
                {
                    bad.push(word);
                }
            } else {
                i += 1;
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.is_empty(),
        "README examples name crates its dependency lines do not list: {bad:?}"
    );
}
