//! The few git questions the launcher asks, through the `git` command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::process::{self, Cancel, Output};

const GIT_TIMEOUT: Duration = Duration::from_secs(60);

fn git(repo: &Path, args: &[&str]) -> Result<process::Finished> {
    let mut c = Command::new("git");
    c.current_dir(repo)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0");
    let f = process::run(c, GIT_TIMEOUT, &Cancel::default(), Output::Capture)?;
    if f.timed_out {
        bail!(
            "`git {}` gave no answer within {} s",
            args.join(" "),
            GIT_TIMEOUT.as_secs()
        );
    }
    Ok(f)
}

fn git_ok(repo: &Path, args: &[&str]) -> Result<String> {
    let f = git(repo, args)?;
    if !f.success() {
        bail!("`git {}` failed: {}", args.join(" "), f.stderr.trim());
    }
    Ok(f.stdout)
}

/// Why the repository cannot be reset with git, if it cannot.
pub fn not_a_checkout(repo: &Path) -> Option<String> {
    let f = match git(repo, &["rev-parse", "--show-toplevel"]) {
        Ok(f) => f,
        Err(e) => return Some(format!("git is not available ({e:#})")),
    };
    if !f.success() {
        return Some(format!("{} is not a git checkout", repo.display()));
    }
    let top = PathBuf::from(f.stdout.trim());
    let same = match (top.canonicalize(), repo.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        return Some(format!(
            "{} is inside the git checkout {}, not at its top",
            repo.display(),
            top.display()
        ));
    }
    if !matches!(git(repo, &["rev-parse", "--verify", "-q", "HEAD"]), Ok(f) if f.success()) {
        return Some(format!(
            "the git checkout {} has no commit yet",
            repo.display()
        ));
    }
    None
}

/// One line of `git status --porcelain`: the two status letters and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub code: String,
    pub path: String,
}

fn status(repo: &Path, extra: &[&str]) -> Result<Vec<Change>> {
    let mut args = vec!["status", "--porcelain=v1", "-z"];
    args.extend_from_slice(extra);
    let out = git_ok(repo, &args)?;
    let mut fields = out.split('\0').filter(|s| !s.is_empty());
    let mut changes = Vec::new();
    while let Some(f) = fields.next() {
        if f.len() < 4 {
            continue;
        }
        let (code, path) = (f[..2].to_string(), f[3..].to_string());
        if code.starts_with('R') || code.starts_with('C') {
            // Renames and copies carry the old path as the next field.
            fields.next();
        }
        changes.push(Change { code, path });
    }
    Ok(changes)
}

/// Tracked files changed (modified, staged, deleted, renamed) outside `katas/`.
pub fn changed_outside_katas(repo: &Path) -> Result<Vec<Change>> {
    Ok(status(repo, &["--untracked-files=no"])?
        .into_iter()
        .filter(|c| !c.path.starts_with("katas/"))
        .collect())
}

/// Every change under one kata folder, untracked files included (ignored ones not).
pub fn changes_in(repo: &Path, rel_dir: &str) -> Result<Vec<Change>> {
    status(repo, &["--untracked-files=all", "--", rel_dir])
}

/// The kata folder's changes against HEAD, as a patch (untracked files are not in it).
pub fn diff(repo: &Path, rel_dir: &str) -> Result<String> {
    git_ok(repo, &["diff", "HEAD", "--", rel_dir])
}

/// Two files compared (`git diff --no-index`): empty when they are the same.
pub fn diff_files(repo: &Path, old: &Path, new: &Path) -> Result<String> {
    let (old, new) = (old.to_string_lossy(), new.to_string_lossy());
    let f = git(
        repo,
        &["diff", "--no-index", "--no-color", "--", &old, &new],
    )?;
    // Exit code 1 means "they differ"; anything above is an error.
    match f.status.and_then(|s| s.code()) {
        Some(0 | 1) => Ok(f.stdout),
        _ => bail!("`git diff --no-index` failed: {}", f.stderr.trim()),
    }
}

/// Puts the kata folder back as committed: tracked files from HEAD (the index too),
/// untracked files removed. Ignored files are left alone.
pub fn restore(repo: &Path, rel_dir: &str) -> Result<()> {
    git_ok(repo, &["checkout", "HEAD", "--", rel_dir])?;
    git_ok(repo, &["clean", "-f", "-d", "-q", "--", rel_dir])?;
    Ok(())
}
