//! The small commands: `hint`, `solution`, `check`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::kata::Kata;
use crate::process::Cancel;
use crate::runner::StepRunner;
use crate::session::{checklist, hint_text};
use crate::state::{Mode, PracticeFile};

/// `cargo practice hint <kata> <step>`: counted when a guided attempt on that kata is in
/// progress, refused during a timed or interview attempt.
pub fn hint(ctx: &Ctx, kata: &str, step: &str) -> Result<()> {
    let k = ctx.catalog.get(kata)?;
    let i = k.find_step(step)?;
    let mut note = String::new();
    if let Some(mut a) = ctx.practice.load_current()?
        && a.kata == k.name
    {
        if a.mode != Mode::Guided {
            bail!(
                "no hints during a {} attempt: hints are for guided mode (abandon it, or finish it first)",
                a.mode.as_str()
            );
        }
        if !a.hints.contains(&(i + 1)) {
            a.hints.push(i + 1);
            ctx.practice.save_current(&a)?;
        }
        note = format!("(hints used this attempt: {})\n", a.hints.len());
    }
    print!("{}{note}", hint_text(k, i));
    Ok(())
}

/// `cargo practice solution <kata> [--level L]`: a reference source, once an attempt
/// has ended. A kata with `[levels]` in its kata.toml has one per level; the others
/// have their `solution` files.
pub fn solution(ctx: &Ctx, kata: &str, level: &str, diff: bool) -> Result<()> {
    let k = ctx.catalog.get(kata)?;
    if let Some(a) = ctx.practice.load_current()?
        && a.kata == k.name
    {
        bail!(
            "an attempt on `{}` is in progress ({}): finish or abandon it first, then the solution is yours",
            k.name,
            a.mode.as_str()
        );
    }
    let h = ctx.practice.load_history()?;
    if !h.attempts.iter().any(|e| e.kata == k.name) {
        bail!(
            "the solution of `{}` opens after your first attempt at it ends (finished or abandoned): try first, \
             `cargo practice {}`",
            k.name,
            k.name
        );
    }
    let files = if k.levels.is_empty() {
        &k.solution
    } else {
        k.levels.get(level).with_context(|| {
            format!(
                "`{}` has the levels {}, not `{level}`",
                k.name,
                k.levels.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?
    };
    if files.is_empty() {
        bail!(
            "{}/kata.toml lists no reference file (`solution = \"solutions/src/….rs\"`)",
            k.rel_dir()
        );
    }
    if diff {
        return solution_diff(ctx, k, &h, files);
    }
    for f in files {
        let path = ctx.repo.join(f);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the reference file {}", path.display()))?;
        println!("// ===== {f} =====\n{text}");
    }
    Ok(())
}

/// The solution as a diff against the learner's last archived attempt: their whole
/// program after a whole-program attempt, their step file after a step-file one.
fn solution_diff(ctx: &Ctx, k: &Kata, h: &crate::state::History, files: &[String]) -> Result<()> {
    let Some(last) = h
        .attempts
        .iter()
        .rev()
        .find(|e| e.kata == k.name && e.archive.is_some())
    else {
        bail!("no archived attempt at `{}` to compare with", k.name);
    };
    let archive = ctx.repo.join(last.archive.as_deref().unwrap_or_default());
    let mine = match (&k.program, last.file) {
        (Some(p), PracticeFile::Program) => archive.join(&p.file),
        _ => archive.join("src/lib.rs"),
    };
    if !mine.is_file() {
        bail!(
            "your last attempt ({} {}, {}) left no {} in its archive",
            last.mode.as_str(),
            last.file.as_str(),
            last.started_at,
            mine.display()
        );
    }
    println!(
        "--- your last attempt: {} ({} mode, {})\n+++ the solution",
        mine.strip_prefix(&ctx.repo).unwrap_or(&mine).display(),
        last.mode.as_str(),
        last.result.as_str()
    );
    for f in files {
        let patch = crate::git::diff_files(&ctx.repo, &mine, &ctx.repo.join(f))?;
        if patch.is_empty() {
            println!("{f}: the same as yours");
        } else {
            print!("{patch}");
        }
    }
    Ok(())
}

/// `cargo practice check <kata>`: runs the step tests once and prints the checklist.
pub fn check(ctx: &Ctx, k: &Kata) -> Result<ExitCode> {
    crate::signals::install()?;
    ctx.practice.ensure()?;
    println!(
        "Running the step tests of {} (compile, then at most {} s)…",
        k.rel_dir(),
        k.step_timeout_s
    );
    let report = StepRunner {
        repo: &ctx.repo,
        kata: k,
        log: ctx.practice.last_run_log(),
    }
    .run(&Cancel::default())?;
    if matches!(report.outcome, crate::runner::Outcome::Cancelled) {
        println!("Stopped (Ctrl-C).");
        return Ok(ExitCode::from(130));
    }
    let note = format!(" (hint: `cargo practice hint {} <step>`)", k.name);
    print!("{}", checklist(k, &report, &[], Some(&note)));
    if !report.verdicts().is_empty() {
        println!(
            "Tests took {:.1} s; full output in {}",
            report.took.as_secs_f64(),
            report.log.display()
        );
    }
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `cargo practice grade <kata> [--file PATH]`: the kata's `[program]` grading, shown as
/// it runs; its exit code is the grader's (0 passed, 1 failed, 2 could not grade).
pub fn grade(ctx: &Ctx, k: &Kata, file: Option<&Path>, extra: &[String]) -> Result<ExitCode> {
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
        "Grading {} as the `{}` kata's whole program (the first grading builds the grader: a few minutes once)…",
        file.display(),
        k.name
    );
    let graded = crate::grade::grade_with(
        &ctx.repo,
        k,
        &file,
        extra,
        &Cancel::default(),
        crate::process::Output::Inherit,
    )?;
    Ok(match graded.verdict {
        crate::grade::Verdict::Passed => ExitCode::SUCCESS,
        crate::grade::Verdict::Failed => ExitCode::from(1),
        crate::grade::Verdict::Broken => ExitCode::from(2),
    })
}
