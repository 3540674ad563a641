//! What the grader's tests share: grading a solution level, a mutant of the
//! intermediate solution, or the pristine blank program, and asserting on the verdict.
//!
//! Each mutant is the intermediate solution with one deliberate mistake, written as a
//! text replacement that must match exactly once, so a mutant can never silently turn
//! into the correct program when the solution changes.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use grader::{Kata, Options, Status, Verdict};

pub fn repo() -> PathBuf {
    grader::program::repo_root()
}

fn options() -> Options {
    let seed = grader::random_seed();
    eprintln!("seed {seed}");
    Options::new(seed)
}

/// Builds and grades `file` with a random seed, printing the verdict (shown when the
/// test fails).
pub async fn grade(kata: Kata, file: &Path, options: &Options) -> Verdict {
    let verdict = grader::grade_file(kata, Some(file), options, false)
        .await
        .unwrap_or_else(|e| panic!("grading {} could not run: {e:#}", file.display()));
    eprintln!("{verdict}");
    verdict
}

/// The solution program of `level`, graded.
pub async fn grade_level(kata: Kata, level: &str) -> Verdict {
    grade(kata, &repo().join(kata.level_file(level)), &options()).await
}

/// The intermediate solution with `from` replaced by `to` (it must occur exactly once),
/// graded.
pub async fn grade_mutant(kata: Kata, from: &str, to: &str) -> Verdict {
    grade_mutant_with(kata, &[(from, to)], &options()).await
}

/// The intermediate solution with each `(from, to)` applied (each `from` exactly once).
pub async fn grade_mutant_with(kata: Kata, edits: &[(&str, &str)], options: &Options) -> Verdict {
    let path = repo().join(kata.level_file("intermediate"));
    let mut source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (from, to) in edits {
        let found = source.matches(from).count();
        assert_eq!(
            found,
            1,
            "the mutation {from:?} -> {to:?} must match exactly once in {}, found {found}",
            path.display()
        );
        source = source.replacen(from, to, 1);
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mutant = dir.path().join("mutant.rs");
    std::fs::write(&mutant, source).expect("write the mutant");
    grade(kata, &mutant, options).await
}

/// The blank program as committed (`git show HEAD:…`), so a learner's work in progress
/// does not change what this proves; the working file outside a git checkout.
pub fn pristine_blank(kata: Kata) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("main.rs");
    let rel = kata.program_file();
    let committed = Command::new("git")
        .current_dir(repo())
        .args(["show", &format!("HEAD:{}", rel.display())])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout);
    let source = match committed {
        Some(bytes) => bytes,
        None => std::fs::read(repo().join(&rel)).expect("the blank program"),
    };
    std::fs::write(&file, source).expect("write the blank program");
    (dir, file)
}

/// Grades the committed blank program.
pub async fn grade_pristine(kata: Kata) -> Verdict {
    let (_dir, file) = pristine_blank(kata);
    grade(kata, &file, &options()).await
}

pub fn assert_passed(verdict: &Verdict) {
    assert!(verdict.passed(), "expected a pass:\n{verdict}");
}

/// The check of `step` failed, and its line contains `text`.
pub fn assert_fails_with(verdict: &Verdict, step: &str, text: &str) {
    assert!(!verdict.passed(), "expected a failure:\n{verdict}");
    let check = verdict
        .check(step)
        .unwrap_or_else(|| panic!("no check `{step}` in:\n{verdict}"));
    assert_eq!(
        check.status,
        Status::Fail,
        "expected `{step}` to fail:\n{verdict}"
    );
    assert!(
        check.line().contains(text),
        "expected `{step}` to say {text:?}, it says {:?}:\n{verdict}",
        check.line()
    );
}
