//! `cargo practice drill [<kata>]`: a timed attempt on the weakest steps only. They stay
//! `todo!()`; every other step holds the learner's own last passing code, spliced in
//! from their archived attempts (never the reference's).

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::Ctx;
use crate::drill::{self, Weak};
use crate::kata::Kata;
use crate::prompt::Prompt;
use crate::session;
use crate::start;
use crate::state::{Attempt, Entry, Mode, PracticeFile};

const NO_HISTORY: &str =
    "No attempt with step times to drill from yet: complete a guided attempt first";

pub fn run(ctx: &Ctx, kata: Option<&str>, p: &mut dyn Prompt) -> Result<ExitCode> {
    let history = ctx.practice.load_history()?.attempts;
    let chosen = match kata {
        Some(name) => {
            let k = ctx.catalog.get(name)?;
            Some((k, drill::weakest(k, &history))).filter(|(_, w)| !w.is_empty())
        }
        None => drill::weakest_kata(&ctx.catalog.katas, &history),
    };
    let Some((kata, weak)) = chosen else {
        let name = kata.unwrap_or("<kata>");
        println!(
            "{NO_HISTORY} (`cargo practice {name}`); then a drill picks the steps your attempts show you are weakest at."
        );
        return Ok(ExitCode::SUCCESS);
    };
    // A drill is 1-3 steps in a file that is otherwise yours: every other step needs
    // code of yours that passed. Without it the "drill" would be most of the kata.
    let never_passed: Vec<String> = kata
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| (i + 1, step))
        .filter(|(n, step)| {
            !weak.iter().any(|w| w.step == *n)
                && step
                    .function
                    .as_deref()
                    .is_some_and(|f| last_passing(ctx, kata, &history, *n, f).is_none())
        })
        .map(|(n, _)| drill::name(kata, n))
        .collect();
    if !never_passed.is_empty() {
        println!(
            "A drill keeps your own passing code for every step but the weakest, and these \
             have not passed in any attempt of yours: {}. Complete a guided attempt first \
             (`cargo practice {}`); then a drill picks the steps your attempts show you are \
             weakest at.",
            never_passed.join(", "),
            kata.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Drill of {}: the weakest steps over your last {} attempts on the step file:",
        kata.name,
        drill::RECENT
    );
    for w in &weak {
        println!("  {}", w.why(kata));
    }

    let file = PracticeFile::Steps;
    if let Some(code) = start::settle_current(ctx, kata, Mode::Drill, file, p)? {
        return Ok(code);
    }
    if !start::ready_kata(ctx, kata, Mode::Drill, p)? {
        return Ok(ExitCode::SUCCESS);
    }
    let lib = kata.dir.join("src/lib.rs");
    let pristine =
        std::fs::read_to_string(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
    let (text, todo, said) = drill_file(ctx, kata, &history, &weak, &pristine);
    for line in said {
        println!("  {line}");
    }
    std::fs::write(&lib, text).with_context(|| format!("cannot write {}", lib.display()))?;
    let mut attempt = Attempt::new(&kata.name, Mode::Drill, file);
    attempt.drill = todo;
    session::run(ctx, kata, attempt)
}

/// The step file of the drill: `pristine` with every step but the weak ones holding the
/// learner's archived code. Returns it, the steps left `todo!()` and what to tell.
fn drill_file(
    ctx: &Ctx,
    kata: &Kata,
    history: &[Entry],
    weak: &[Weak],
    pristine: &str,
) -> (String, Vec<usize>, Vec<String>) {
    let mut text = pristine.to_string();
    let mut todo: Vec<usize> = weak.iter().map(|w| w.step).collect();
    let mut said = Vec::new();
    for (i, step) in kata.steps.iter().enumerate() {
        let n = i + 1;
        if todo.contains(&n) {
            continue;
        }
        let name = drill::name(kata, n);
        let Some(function) = step.function.as_deref() else {
            said.push(format!(
                "{name}: kata.toml names no function for it, so it stays todo!() and is drilled too"
            ));
            todo.push(n);
            continue;
        };
        match last_passing(ctx, kata, history, n, function) {
            Some((archive, body)) => match drill::splice(&text, function, &body) {
                Some(spliced) => {
                    text = spliced;
                    said.push(format!("{name}: your code from {archive}"));
                }
                None => {
                    said.push(format!(
                        "{name}: `fn {function}` is not in the step file, so it stays as it is"
                    ));
                }
            },
            None => {
                said.push(format!(
                    "{name}: no archived attempt where it passed, so it stays todo!() and is drilled too"
                ));
                todo.push(n);
            }
        }
    }
    todo.sort_unstable();
    (text, todo, said)
}

/// The body of `function` in the most recent archived attempt in which step `n` passed
/// (has a split), and that archive's folder.
fn last_passing(
    ctx: &Ctx,
    kata: &Kata,
    history: &[Entry],
    n: usize,
    function: &str,
) -> Option<(String, String)> {
    history
        .iter()
        .rev()
        .filter(|e| e.kata == kata.name && e.file == PracticeFile::Steps)
        .filter(|e| e.splits.iter().any(|s| s.step == n))
        .filter_map(|e| e.archive.as_deref())
        .find_map(|dir| {
            let src = std::fs::read_to_string(ctx.repo.join(dir).join("src/lib.rs")).ok()?;
            let body = drill::body(&src, function)?.to_string();
            Some((dir.to_string(), body))
        })
}
