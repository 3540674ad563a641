//! Build script of every blank program crate (`katas/*/program`), shared by all three.
//!
//! The crate's own binary is the learner's `src/main.rs`. Its second binary, `*_graded`
//! (feature `graded`), compiles any single-file program in the same crate, with the same
//! dependencies: the grader sets `KATA_PROGRAM` to that file, this script copies it to
//! `OUT_DIR/program.rs`, and `harness/graded_main.rs` includes it. That is the "scratch
//! copy" of `cargo practice grade <kata> --file PATH`, without a second workspace (which
//! would compile DataFusion again).
//!
//! `include!` takes items only, so inner attributes (`#![allow(...)]`) and inner doc
//! comments (`//! ...`) are turned into plain comments, line for line: rustc's line
//! numbers stay those of the file.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=KATA_PROGRAM");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let file = match std::env::var_os("KATA_PROGRAM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => manifest.join("src/main.rs"),
    };
    println!("cargo::rerun-if-changed={}", file.display());
    let source = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("KATA_PROGRAM: cannot read {}: {e}", file.display()));
    let mut copy = String::with_capacity(source.len());
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//!") || code.starts_with("#![") {
            copy.push_str("// ");
        }
        copy.push_str(line);
        copy.push('\n');
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("program.rs");
    std::fs::write(&out, copy).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    // The grader maps rustc's messages back to the learner's file.
    println!("cargo::rustc-env=KATA_PROGRAM_SOURCE={}", file.display());
}
