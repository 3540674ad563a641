//! `cargo practice grade <kata> [--file PATH] [--seed N] [--chaos N] [--keep]`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::grade::{Verdict, grade_with};
use crate::kata::Kata;
use crate::process::{Cancel, Output};

/// `cargo practice grade <kata> [--file PATH]`: the kata's `[program]` grading, shown as
/// it runs; its exit code is the grader's (0 passed, 1 failed, 2 could not grade).
pub fn run(ctx: &Ctx, k: &Kata, file: Option<&Path>, extra: &[String]) -> Result<ExitCode> {
    let Some(default) = k.program_path() else {
        bail!(
            "`{}` has no whole program to grade (no `[program]` in {}/kata.toml)",
            k.name,
            k.rel_dir()
        );
    };
    let file = match file {
        Some(f) => f
            .canonicalize()
            .with_context(|| format!("{}: no such file", f.display()))?,
        None => default,
    };
    crate::signals::install()?;
    println!(
        "Grading {} as the `{}` kata's whole program…",
        file.display(),
        k.name
    );
    // Shown as it comes, cargo's progress included.
    let graded = grade_with(
        &ctx.repo,
        k,
        &file,
        extra,
        &Cancel::default(),
        Output::Inherit,
        &|_| {},
    )?;
    Ok(match graded.verdict {
        Verdict::Passed => ExitCode::SUCCESS,
        Verdict::Failed => ExitCode::from(1),
        Verdict::Broken => ExitCode::from(2),
    })
}
