//! Archive, then restore: the practice file of every attempt that ends (finished,
//! abandoned or reset) is copied under `.practice/attempts/<kata>/<mode>-<time>/`
//! before `git checkout HEAD -- katas/<crate>` puts the kata back, so nothing is lost.
//! Nothing outside the kata's folder is ever touched.

use std::path::Path;

use anyhow::{Context, Result};

use crate::Ctx;
use crate::git::{self, Change};
use crate::kata::Kata;
use crate::state::{self, Attempt, AttemptResult, Entry};

/// Why a kata is not restored from git here.
#[derive(Debug)]
pub enum Refusal {
    /// Not a git checkout, or no git: nothing can be restored.
    NoCheckout(String),
    /// `git status` gave no answer.
    Unreadable(String),
    /// Tracked files outside `katas/` are modified: work on the repository itself, it
    /// seems, which the launcher does not mix with practice unless told to.
    OthersModified(Vec<Change>),
}

impl Refusal {
    /// Restoring anyway touches only the kata's folder: `--force` may go on.
    pub fn can_force(&self) -> bool {
        matches!(self, Refusal::OthersModified(_))
    }

    /// The reason, and what to do about it; `kata` names the kata in the advice.
    pub fn explain(&self, kata: Option<&str>) -> String {
        match self {
            Refusal::NoCheckout(why) => format!(
                "{why}, so the kata cannot be restored from git. Nothing was changed; \
                 restore katas/<crate>/src/lib.rs by hand (your archived attempts are under .practice/attempts/)."
            ),
            Refusal::Unreadable(e) => {
                format!("cannot read `git status`: {e}. Nothing was changed.")
            }
            Refusal::OthersModified(outside) => {
                let list: Vec<String> = outside
                    .iter()
                    .take(10)
                    .map(|c| format!("  {} {}", c.code, c.path))
                    .collect();
                let more = if outside.len() > 10 {
                    format!("\n  … and {} more", outside.len() - 10)
                } else {
                    String::new()
                };
                let name = kata.unwrap_or("<kata>");
                format!(
                    "files outside katas/ are modified:\n{}{more}\n\
                     That looks like work on the repository itself, so the launcher stops here. \
                     A reset touches only the kata's folder (its changes archived first, then restored from git): \
                     `cargo practice reset {name} --force` does it anyway. \
                     Or set the other files aside without touching katas/: `git stash push -- ':(exclude)katas'`, \
                     then `git stash pop` after the reset. Nothing was changed.",
                    list.join("\n")
                )
            }
        }
    }
}

/// Why a reset must not happen here, if it must not: outside a git checkout, or with
/// tracked files changed outside `katas/`.
pub fn refusal(repo: &Path) -> Option<Refusal> {
    if let Some(why) = git::not_a_checkout(repo) {
        return Some(Refusal::NoCheckout(why));
    }
    match git::changed_outside_katas(repo) {
        Err(e) => Some(Refusal::Unreadable(format!("{e:#}"))),
        Ok(outside) if !outside.is_empty() => Some(Refusal::OthersModified(outside)),
        Ok(_) => None,
    }
}

/// Copies the kata's practice files into a new archive folder and returns it
/// (relative to the repository root). Copies `src/` whole, every other changed or new
/// file of the kata folder, the patch against HEAD and, when given, the attempt record.
pub fn archive(ctx: &Ctx, kata: &Kata, label: &str, record: Option<&Entry>) -> Result<String> {
    let base = ctx.practice.attempts_dir().join(&kata.name);
    let stamp = state::stamp();
    let mut dir = base.join(format!("{label}-{stamp}"));
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{label}-{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let src = kata.dir.join("src");
    if src.is_dir() {
        copy_tree(&src, &dir.join("src"))?;
    }
    if git::not_a_checkout(&ctx.repo).is_none() {
        let prefix = format!("{}/", kata.rel_dir());
        for c in git::changes_in(&ctx.repo, &kata.rel_dir())? {
            let Some(rel) = c.path.strip_prefix(&prefix) else {
                continue;
            };
            let from = ctx.repo.join(&c.path);
            if rel.starts_with("src/") || !from.is_file() {
                continue;
            }
            let to = dir.join(rel);
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p)
                    .with_context(|| format!("cannot create {}", p.display()))?;
            }
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
        let patch = git::diff(&ctx.repo, &kata.rel_dir())?;
        if !patch.is_empty() {
            std::fs::write(dir.join("changes.patch"), patch)
                .context("cannot write changes.patch")?;
        }
    }
    let rel = dir
        .strip_prefix(&ctx.repo)
        .unwrap_or(&dir)
        .to_string_lossy()
        .replace('\\', "/");
    if let Some(e) = record {
        let mut e = e.clone();
        e.archive = Some(rel.clone());
        let text = serde_json::to_string_pretty(&e).context("cannot encode the attempt")?;
        std::fs::write(dir.join("attempt.json"), text + "\n")
            .context("cannot write attempt.json")?;
    }
    Ok(rel)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", src.display()))?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// How an ended attempt was put away.
pub struct Ended {
    pub entry: Entry,
    /// `Ok` when the kata was restored; the reason when it was left as it is.
    pub restored: std::result::Result<(), String>,
}

/// Ends an attempt: archive (with its record), history, then restore the kata (`force`:
/// even while files outside `katas/` are modified).
pub fn end_attempt(
    ctx: &Ctx,
    kata: &Kata,
    a: &Attempt,
    result: AttemptResult,
    duration_s: f64,
    force: bool,
) -> Result<Ended> {
    let mut entry = Entry {
        kata: a.kata.clone(),
        mode: a.mode,
        file: a.file,
        started_at: a.started_at.clone(),
        ended_at: state::now(),
        duration_s: (duration_s * 10.0).round() / 10.0,
        result,
        hints_used: a.hints.len(),
        hinted_steps: a.hints.clone(),
        splits: a.splits.clone(),
        resumed: a.resumed,
        gradings: a.gradings,
        archive: None,
        failed_runs: a.failed_runs.clone(),
        drill: a.drill.clone(),
    };
    let dir = archive(ctx, kata, a.mode.as_str(), Some(&entry))?;
    entry.archive = Some(dir.clone());
    ctx.practice.append_history(entry.clone()).with_context(|| {
        format!("the attempt was archived in {dir} (its attempt.json has the record) but not added to the history")
    })?;
    ctx.practice.clear_current()?;
    let restored = match refusal(&ctx.repo) {
        Some(why) if !(force && why.can_force()) => Err(why.explain(Some(&kata.name))),
        _ => git::restore(&ctx.repo, &kata.rel_dir()).map_err(|e| format!("{e:#}")),
    };
    Ok(Ended { entry, restored })
}
