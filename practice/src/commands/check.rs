//! `cargo practice check <kata>|--all [--pristine]`: runs the step tests once and prints
//! the checklist. With `--pristine` it proves instead that each kata, as committed, is
//! unsolved step by step (rustlings' `dev check`, for katas): every step test fails on
//! its own step's `todo!()` and no test passes. CI runs `cargo practice check --all --pristine`.

use std::cell::Cell;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::Ctx;
use crate::git;
use crate::kata::Kata;
use crate::process::Cancel;
use crate::runner::{Outcome, Progress, Report, Status, StepRunner, Times};
use crate::session::view::{checklist, first_build};

pub fn run(ctx: &Ctx, kata: Option<&str>, all: bool, pristine: bool) -> Result<ExitCode> {
    let katas: Vec<&Kata> = match (kata, all) {
        (Some(name), false) => vec![ctx.catalog.get(name)?],
        (None, true) => ctx.catalog.katas.iter().collect(),
        (Some(_), true) => bail!("give a kata or --all, not both"),
        (None, false) => {
            bail!("which kata? `cargo practice check <kata>` or `cargo practice check --all`")
        }
    };
    if katas.is_empty() {
        bail!("no katas/*/kata.toml was found");
    }
    for problem in &ctx.catalog.problems {
        println!("! {problem}");
    }
    crate::signals::install()?;
    ctx.practice.ensure()?;
    let mut failing: Vec<&str> = Vec::new();
    let said_first_build = Cell::new(false);
    for (i, k) in katas.iter().enumerate() {
        if i > 0 {
            println!();
        }
        // One log per kata when there are several, so each failure points at its own.
        let log = if katas.len() == 1 {
            ctx.practice.last_run_log()
        } else {
            ctx.practice
                .runs_dir()
                .join(format!("check-{}.log", k.name))
        };
        if pristine {
            println!(
                "-- {}: {} as committed must fail step by step",
                k.name,
                k.rel_dir()
            );
            if let Ok(changes) = git::changes_in(&ctx.repo, &k.rel_dir())
                && !changes.is_empty()
            {
                println!(
                    "   note: {} has uncommitted changes ({} file(s)); checked as it is on disk",
                    k.rel_dir(),
                    changes.len()
                );
            }
        } else {
            println!(
                "Running the step tests of {} (compile, then at most {} s)…",
                k.rel_dir(),
                k.step_timeout_s
            );
        }
        let progress = |p: Progress| {
            if p.is_first_build() && !said_first_build.replace(true) {
                println!("{}", first_build(k, &p));
            }
        };
        let report = StepRunner {
            repo: &ctx.repo,
            kata: k,
            log,
            times: &Times::new(),
            progress: &progress,
        }
        .run(&Cancel::default())?;
        if matches!(report.outcome, Outcome::Cancelled) {
            println!("Stopped (Ctrl-C).");
            return Ok(ExitCode::from(130));
        }
        let ok = if pristine {
            let problems = pristine_problems(k, &report);
            for p in &problems {
                println!("   FAIL: {p}");
            }
            if problems.is_empty() {
                println!("   ok: {}", pristine_summary(k, &report));
            } else {
                println!("   Full output: {}", report.log.display());
            }
            problems.is_empty()
        } else {
            let note = format!(" (hint: `cargo practice hint {} <step>`)", k.name);
            print!("{}", checklist(k, &report, &[], Some(&note)));
            if !report.verdicts().is_empty() {
                println!(
                    "Tests took {:.1} s; full output in {}",
                    report.took.as_secs_f64(),
                    report.log.display()
                );
            }
            report.all_passed()
        };
        if !ok {
            failing.push(&k.name);
        }
    }
    if pristine {
        println!();
        if failing.is_empty() {
            println!(
                "Pristine: every step test of {} kata(s) fails on its own todo!().",
                katas.len()
            );
        } else {
            println!(
                "Not pristine-failing step by step: {} ({} of {} katas). As committed, each step \
                 test must fail on its own step's `todo!(\"step N: …\")`, and no test may pass.",
                failing.join(", "),
                failing.len(),
                katas.len()
            );
        }
    } else if katas.len() > 1 {
        println!();
        if failing.is_empty() {
            println!("Every step of the {} katas passes.", katas.len());
        } else {
            println!("Not all green: {}.", failing.join(", "));
        }
    }
    Ok(if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first line of a message.
fn first_line(msg: Option<&str>) -> &str {
    msg.and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim()
}

/// What keeps `report` (a run of the kata's step tests) from proving the kata unsolved
/// step by step; empty when every step test fails on its own `todo!("step N: …")` and
/// no other test passes.
pub fn pristine_problems(kata: &Kata, report: &Report) -> Vec<String> {
    let (verdicts, unnamed_stuck) = match &report.outcome {
        Outcome::BuildFailed { first_error, .. } => {
            return vec![format!(
                "does not compile: {}",
                first_line(Some(first_error))
            )];
        }
        Outcome::BuildTimedOut { after_s } => {
            return vec![format!("compiling took longer than {after_s} s")];
        }
        Outcome::Cancelled => return vec!["the run was cancelled".to_string()],
        Outcome::Tests {
            verdicts,
            unnamed_stuck,
            ..
        } => (verdicts, *unnamed_stuck),
    };
    let mut problems = Vec::new();
    for (i, s) in kata.steps.iter().enumerate() {
        let n = i + 1;
        let who = format!("step {n} ({})", s.test);
        let Some(v) = verdicts.iter().find(|v| v.test == s.test) else {
            problems.push(format!("{who}: no result"));
            continue;
        };
        let msg = first_line(v.message.as_deref());
        let own = format!("not yet implemented: step {n}:");
        match v.status {
            Status::Todo if msg.starts_with(&own) => {}
            Status::Todo => problems.push(format!(
                "{who} fails on a todo!() that is not its own `todo!(\"step {n}: …\")`: {msg}"
            )),
            Status::Passed => problems.push(format!(
                "{who} passes on the pristine kata (is `{}` solved?)",
                s.function.as_deref().unwrap_or("its function")
            )),
            Status::Failed => problems.push(format!("{who} fails, but not on its todo!(): {msg}")),
            Status::Stuck => problems.push(format!("{who} is stuck: {msg}")),
            Status::Crashed => problems.push(format!("{who} crashed: {msg}")),
            Status::Missing => problems.push(format!(
                "kata.toml names step {n} `{}`, which tests/steps.rs does not have",
                s.test
            )),
            Status::Ignored => problems.push(format!("{who} is ignored: a step test must run")),
        }
    }
    for v in verdicts
        .iter()
        .filter(|v| !kata.steps.iter().any(|s| s.test == v.test))
    {
        let msg = first_line(v.message.as_deref());
        if v.test.starts_with("step_") {
            problems.push(format!(
                "tests/steps.rs has the step test `{}`, which kata.toml does not list",
                v.test
            ));
        }
        match v.status {
            Status::Passed => problems.push(format!("`{}` passes on the pristine kata", v.test)),
            Status::Stuck => problems.push(format!("`{}` is stuck: {msg}", v.test)),
            Status::Crashed => problems.push(format!("`{}` crashed: {msg}", v.test)),
            _ => {}
        }
    }
    if unnamed_stuck > 0 {
        problems.push(format!(
            "{unnamed_stuck} other test(s) had no result when the run was stopped"
        ));
    }
    problems
}

fn pristine_summary(kata: &Kata, report: &Report) -> String {
    let others: Vec<String> = report
        .verdicts()
        .iter()
        .filter(|v| !kata.steps.iter().any(|s| s.test == v.test))
        .map(|v| match v.status {
            Status::Ignored => format!("{} (ignored)", v.test),
            _ => v.test.clone(),
        })
        .collect();
    let mut s = format!(
        "{} step tests, each failing on its own todo!()",
        kata.steps.len()
    );
    if !others.is_empty() {
        s.push_str(&format!("; not passing either: {}", others.join(", ")));
    }
    s
}
