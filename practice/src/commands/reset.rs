//! `cargo practice reset <kata>` / `--all`: archive the kata's changes (ending a paused
//! attempt on it as `reset`), then restore it from git.

use anyhow::{Result, bail};

use crate::Ctx;
use crate::archive::{self, end_attempt, refusal};
use crate::git;
use crate::kata::Kata;
use crate::prompt::Prompt;
use crate::state::{self, Attempt, AttemptResult};

/// `cargo practice reset <kata>` / `--all`.
///
/// `force` resets even while files outside `katas/` are modified (only the kata's folder
/// is touched); `ask`, when given, offers that instead of refusing.
pub fn run(
    ctx: &Ctx,
    kata: Option<&str>,
    all: bool,
    force: bool,
    ask: Option<&mut dyn Prompt>,
) -> Result<()> {
    let katas: Vec<&Kata> = match (kata, all) {
        (Some(_), true) => bail!("give a kata or --all, not both"),
        (None, false) => {
            bail!("which kata? `cargo practice reset <kata>` or `cargo practice reset --all`")
        }
        (Some(name), false) => vec![ctx.catalog.get(name)?],
        (None, true) => ctx.catalog.katas.iter().collect(),
    };
    let mut force = force;
    if let Some(why) = refusal(&ctx.repo) {
        let name = kata.map(|_| katas[0].name.as_str());
        if !why.can_force() {
            bail!("reset refused: {}", why.explain(name));
        }
        if !force {
            let Some(p) = ask else {
                bail!("reset refused: {}", why.explain(name));
            };
            println!("{}", why.explain(name));
            let what = match name {
                Some(_) => katas[0].rel_dir(),
                None => "every kata".to_string(),
            };
            let q = format!("Reset {what} anyway? Only the kata folders are touched.");
            if p.confirm(&q, false)? != Some(true) {
                println!("Nothing was reset.");
                return Ok(());
            }
            force = true;
        }
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
        reset_one(ctx, k, current.as_ref().filter(|a| a.kata == k.name), force)?;
    }
    Ok(())
}

fn reset_one(ctx: &Ctx, kata: &Kata, attempt: Option<&Attempt>, force: bool) -> Result<()> {
    if let Some(a) = attempt {
        let ended = end_attempt(ctx, kata, a, AttemptResult::Reset, a.elapsed_s, force)?;
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
    let dir = archive::archive(ctx, kata, "edit", None)?;
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
