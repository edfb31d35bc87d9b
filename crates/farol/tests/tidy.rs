//! Conventions that matter, checked on the whole workspace (the rules are in ARCHITECTURE.md).

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("crates")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn every_crate_says_what_it_is_for() {
    for krate in crates() {
        let entry = ["src/lib.rs", "src/main.rs"].iter().map(|f| krate.join(f)).find(|p| p.exists()).unwrap();
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} must start with a //! line saying what the crate is for",
            entry.display()
        );
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\ndescription = "), "{} needs a one-line description", krate.display());
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
        assert!(
            architecture.contains(&format!("`crates/{name}`")),
            "ARCHITECTURE.md's code map must describe crates/{name}"
        );
    }
}

#[test]
fn only_the_store_writes_sql() {
    let mut files = Vec::new();
    for krate in crates().into_iter().filter(|k| !k.ends_with("store")) {
        rust_files(&krate, &mut files);
    }
    let sql = ["SELECT ", "INSERT INTO", "CREATE TABLE", "DELETE FROM", "UPDATE ", "PRAGMA "];
    for file in files.iter().filter(|f| !f.ends_with("tidy.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(word) = sql.iter().find(|w| code.contains(&format!("\"{w}")) || code.contains(&format!(" {w}")))
            {
                panic!("{}:{}: SQL ({word:?}) outside crates/store: {line}", file.display(), n + 1);
            }
        }
    }
}

#[test]
fn tests_are_never_skipped() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    for file in files.iter().filter(|f| !f.ends_with("tidy.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for marker in ["#[ignore", "#[should_panic"] {
            assert!(!text.contains(marker), "{}: {marker} is not allowed: a test runs and asserts", file.display());
        }
    }
}
