//! Archive, then restore: the practice file of every attempt that ends (finished,
//! abandoned or reset) is copied under `.practice/attempts/<kata>/<mode>-<time>/`
//! before `git checkout HEAD -- katas/<crate>` puts the kata back, so nothing is lost.
//! Nothing outside the kata's folder is ever touched.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::git;
use crate::kata::Kata;
use crate::state::{self, Attempt, AttemptResult, Entry};

/// Why a reset must not happen here, if it must not: outside a git checkout, or with
/// tracked files changed outside `katas/` (the launcher will not guess what they are).
pub fn refusal(repo: &Path) -> Option<String> {
    if let Some(why) = git::not_a_checkout(repo) {
        return Some(format!(
            "{why}, so the kata cannot be restored from git. Nothing was changed; \
             restore katas/<crate>/src/lib.rs by hand (your archived attempts are under .practice/attempts/)."
        ));
    }
    match git::changed_outside_katas(repo) {
        Err(e) => Some(format!(
            "cannot read `git status`: {e:#}. Nothing was changed."
        )),
        Ok(outside) if !outside.is_empty() => {
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
            Some(format!(
                "files outside katas/ are modified:\n{}{more}\nA reset only ever restores a kata folder, and it will not run while other \
                 files are changed: commit or stash them first (`git stash`). Nothing was changed.",
                list.join("\n")
            ))
        }
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

/// Ends an attempt: archive (with its record), history, then restore the kata.
pub fn end_attempt(
    ctx: &Ctx,
    kata: &Kata,
    a: &Attempt,
    result: AttemptResult,
    duration_s: f64,
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
    };
    let dir = archive(ctx, kata, a.mode.as_str(), Some(&entry))?;
    entry.archive = Some(dir.clone());
    ctx.practice.append_history(entry.clone()).with_context(|| {
        format!("the attempt was archived in {dir} (its attempt.json has the record) but not added to the history")
    })?;
    ctx.practice.clear_current()?;
    let restored = match refusal(&ctx.repo) {
        Some(why) => Err(why),
        None => git::restore(&ctx.repo, &kata.rel_dir()).map_err(|e| format!("{e:#}")),
    };
    Ok(Ended { entry, restored })
}

/// `cargo practice reset <kata>` / `--all`.
pub fn command(ctx: &Ctx, kata: Option<&str>, all: bool) -> Result<()> {
    let katas: Vec<&Kata> = match (kata, all) {
        (Some(_), true) => bail!("give a kata or --all, not both"),
        (None, false) => {
            bail!("which kata? `cargo practice reset <kata>` or `cargo practice reset --all`")
        }
        (Some(name), false) => vec![ctx.catalog.get(name)?],
        (None, true) => ctx.catalog.katas.iter().collect(),
    };
    if let Some(why) = refusal(&ctx.repo) {
        bail!("reset refused: {why}");
    }
    let current = ctx.practice.load_current()?;
    if let Some(a) = &current
        && let Some(pid) = a.pid
        && crate::process::is_alive(pid)
        && katas.iter().any(|k| k.name == a.kata)
    {
        bail!(
            "reset refused: the {} attempt on `{}` is running in another terminal (process {pid}); \
             pause it there (p) first. Nothing was changed.",
            a.mode.as_str(),
            a.kata
        );
    }
    for k in katas {
        reset_one(ctx, k, current.as_ref().filter(|a| a.kata == k.name))?;
    }
    Ok(())
}

fn reset_one(ctx: &Ctx, kata: &Kata, attempt: Option<&Attempt>) -> Result<()> {
    if let Some(a) = attempt {
        let ended = end_attempt(ctx, kata, a, AttemptResult::Reset, a.elapsed_s)?;
        let dir = ended.entry.archive.as_deref().unwrap_or("?");
        match ended.restored {
            Ok(()) => println!(
                "{}: ended the paused {} attempt ({}), archived it in {dir}, restored {}.",
                kata.name,
                a.mode.as_str(),
                state::clock(a.elapsed_s),
                kata.rel_dir()
            ),
            Err(why) => bail!("{}: archived in {dir}, but not restored: {why}", kata.name),
        }
        return Ok(());
    }
    let changes = git::changes_in(&ctx.repo, &kata.rel_dir())?;
    if changes.is_empty() {
        println!(
            "{}: {} is already pristine; nothing to do.",
            kata.name,
            kata.rel_dir()
        );
        return Ok(());
    }
    let dir = archive(ctx, kata, "edit", None)?;
    git::restore(&ctx.repo, &kata.rel_dir())?;
    let files: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    println!(
        "{}: archived your changes in {dir}, restored {} ({}).",
        kata.name,
        kata.rel_dir(),
        files.join(", ")
    );
    Ok(())
}
