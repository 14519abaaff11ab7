//! The maps of the repository stay true: `ARCHITECTURE.md` names every tracked source, script
//! and test file (by file name, or a fuzz target or script by its name), and
//! `driver/kmod/README.md` names every file of the module. A file added without a word in the
//! map fails here. Every `.md` a tracked file cites exists in the repository.

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
        "guest/compat",
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

/// Output files the scripts write, which a document may name although no checkout holds them:
/// the guest bench's report (`scripts/lib/bench.sh` writes `$name.md`, copied out as
/// `target/guest-test/bench.md`).
const WRITTEN_NOT_TRACKED: &[&str] = &["bench.md"];

/// The `.md` files a text names: words of path characters ending in `.md`.
fn cited_md(text: &str) -> Vec<&str> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_./-$".contains(c);
    text.split(|c: char| !path_char(c))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.ends_with(".md") && w.len() > 3)
        .collect()
}

/// Whether `cited` (named in `by`) is a tracked file: from the root, from `by`'s directory, or
/// as the tail of a tracked path (`pktmap-bench.md` for `docs/pktmap-bench.md`).
fn resolves(cited: &str, by: &str, tracked_md: &[String]) -> bool {
    // A leading `/` is the package root in a Cargo.toml's `include` (the manifest's directory).
    let cited = cited.trim_start_matches('/');
    let dir = Path::new(by).parent().unwrap_or(Path::new(""));
    let normal = |p: &Path| {
        let mut out: Vec<&std::ffi::OsStr> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir if out.pop().is_none() => return None,
                std::path::Component::ParentDir | std::path::Component::CurDir => {}
                c => out.push(c.as_os_str()),
            }
        }
        Some(out.iter().collect::<std::path::PathBuf>())
    };
    let is_tracked = |p: Option<std::path::PathBuf>| {
        p.is_some_and(|p| tracked_md.iter().any(|t| Path::new(t) == p))
    };
    is_tracked(normal(Path::new(cited)))
        || is_tracked(normal(&dir.join(cited)))
        || (!cited.contains('/') && tracked_md.iter().any(|t| t.ends_with(&format!("/{cited}"))))
}

/// Every `.md` a tracked source, script or document cites is a file of the repository: a spec
/// outside it (a retired `DESIGN.md`) is a citation no reader can follow.
#[test]
fn every_cited_md_exists() {
    let files = tracked(&["."]);
    let tracked_md: Vec<String> = files
        .iter()
        .filter(|f| f.ends_with(".md"))
        .cloned()
        .collect();
    let text_like = [
        ".rs", ".md", ".sh", ".toml", ".c", ".h", ".py", ".list", ".config",
    ];
    let mut dangling = Vec::new();
    // This file cites retired specs on purpose, as the scan's own test cases.
    for f in files.iter().filter(|f| *f != "tools/tests/docs.rs") {
        let script = f.starts_with("scripts/") && !f.contains('.');
        if !(script || text_like.iter().any(|e| f.ends_with(e))) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo().join(f)) else {
            continue;
        };
        for cited in cited_md(&text) {
            let name = cited.rsplit('/').next().unwrap_or(cited);
            let output = cited.contains('$')
                || cited.starts_with("target/")
                || WRITTEN_NOT_TRACKED.contains(&name);
            if !output && !resolves(cited, f, &tracked_md) {
                dangling.push(format!("{f}: {cited}"));
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "cited .md files that the repository does not hold: {dangling:?}"
    );
}

/// The citation scan finds what it must: a retired spec fails, a tracked one passes.
#[test]
fn the_citation_scan_catches_a_missing_spec() {
    let tracked_md = vec!["README.md".to_string(), "driver/kmod/README.md".to_string()];
    let cited = cited_md("every rule of DESIGN.md, and driver/kmod/README.md's promises.");
    assert_eq!(cited, ["DESIGN.md", "driver/kmod/README.md"]);
    assert!(!resolves("DESIGN.md", "guest/src/main.rs", &tracked_md));
    assert!(!resolves("../shared/DESIGN.md", "README.md", &tracked_md));
    assert!(resolves(
        "driver/kmod/README.md",
        "guest/src/main.rs",
        &tracked_md
    ));
    assert!(resolves("../README.md", "src/lib.rs", &tracked_md));
    assert!(!resolves("../README.md", "driver/kmod/x.rs", &tracked_md));
    assert!(resolves("README.md", "src/lib.rs", &tracked_md));
    assert!(resolves(
        "/README.md",
        "driver/kmod/Cargo.toml",
        &tracked_md
    ));
    assert!(!resolves("/DESIGN.md", "Cargo.toml", &tracked_md));
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
