//! `cargo practice drill [<kata>]`: a timed attempt on the weakest steps only. They stay
//! `todo!()`; every other step holds the learner's own passing code from their archived
//! attempts (never the reference's): the whole `src/` of the latest attempt in which all
//! of them passed, helpers and module files included, else each step's body from the
//! last attempt where it passed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::Ctx;
use crate::drill::{self, Weak};
use crate::kata::Kata;
use crate::prompt::Prompt;
use crate::session;
use crate::start;
use crate::state::{Attempt, AttemptResult, Entry, Mode, PracticeFile};

/// After why no archive is taken whole: what the drill does instead.
const PER_STEP: &str = "so each other step's body comes from the last attempt where it \
     passed; code of yours outside the step functions (helpers, `use`s, modules) does not \
     come with it.";
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
    let src = kata.dir.join("src");
    let lib = src.join("lib.rs");
    let pristine =
        std::fs::read_to_string(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
    let drill = whole_archive(ctx, kata, &history, &weak, &pristine)
        .unwrap_or_else(|why| per_step(ctx, kata, &history, &weak, &pristine, &why));
    for line in &drill.said {
        println!("  {line}");
    }
    if let Some(archive) = &drill.archive {
        let from = ctx.repo.join(archive).join("src");
        for rel in &drill.extra {
            let (from, to) = (from.join(rel), src.join(rel));
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    std::fs::write(&lib, &drill.text).with_context(|| format!("cannot write {}", lib.display()))?;
    let mut attempt = Attempt::new(&kata.name, Mode::Drill, file);
    attempt.drill = drill.todo;
    session::run(ctx, kata, attempt)
}

/// What a drill starts from.
struct Drill {
    /// The step file.
    text: String,
    /// The archive (relative to the repository) the whole `src/` comes from, when one does.
    archive: Option<String>,
    /// Files of that archive's `src/` the pristine kata lacks (the learner's modules),
    /// relative to `src/`: copied beside the step file.
    extra: Vec<PathBuf>,
    /// The steps left `todo!()`.
    todo: Vec<usize>,
    /// What to tell.
    said: Vec<String>,
}

/// The learner's own `src/` from the most recent archived attempt in which every step
/// but the weak ones passed, the weak steps' bodies back to `pristine`'s `todo!()`:
/// helpers, `use`s and module files come with it. Otherwise why not: no archive has them
/// all, or a weak step cannot be put back (kata.toml names no function, or the file lacks it).
fn whole_archive(
    ctx: &Ctx,
    kata: &Kata,
    history: &[Entry],
    weak: &[Weak],
    pristine: &str,
) -> Result<Drill, String> {
    let mut todo: Vec<usize> = weak.iter().map(|w| w.step).collect();
    todo.sort_unstable();
    let mut todo_bodies = Vec::new();
    for &n in &todo {
        let name = drill::name(kata, n);
        let Some(function) = kata.steps.get(n - 1).and_then(|s| s.function.as_deref()) else {
            return Err(format!(
                "{name}: kata.toml names no function for it, to put back to todo!() in a file \
                 of yours,"
            ));
        };
        let Some(body) = drill::body(pristine, function) else {
            return Err(format!(
                "{name}: `fn {function}` is not in the step file, to put back to todo!() in a \
                 file of yours,"
            ));
        };
        todo_bodies.push((function, body));
    }
    let others: Vec<usize> = (1..=kata.steps.len())
        .filter(|n| !todo.contains(n))
        .collect();
    let candidates: Vec<&Entry> = steps_attempts(kata, history)
        .filter(|e| others.iter().all(|&n| passed(e, n)))
        .collect();
    // An attempt that passed ended with every step green; another one's code is as it
    // was left (a helper half written, say): the latest that passed comes first.
    let (ended_green, others_left): (Vec<&Entry>, Vec<&Entry>) = candidates
        .into_iter()
        .partition(|e| e.result == AttemptResult::Passed);
    ended_green
        .into_iter()
        .chain(others_left)
        .filter_map(|e| e.archive.as_deref())
        .find_map(|dir| {
            let src = ctx.repo.join(dir).join("src");
            let mut text = std::fs::read_to_string(src.join("lib.rs")).ok()?;
            for (function, body) in &todo_bodies {
                text = drill::splice(&text, function, body)?;
            }
            let mut extra = Vec::new();
            new_files(&src, &kata.dir.join("src"), Path::new(""), &mut extra).ok()?;
            extra.sort();
            let files: String = extra
                .iter()
                .map(|p| format!(", src/{}", p.to_string_lossy().replace('\\', "/")))
                .collect();
            let drilled: Vec<String> = todo.iter().map(|&n| drill::name(kata, n)).collect();
            let said = vec![format!(
                "your code from {dir}, where every other step passed: its src/lib.rs \
                 (helpers and `use`s included){files}, with {} back to todo!()",
                drilled.join(", ")
            )];
            Some(Drill {
                text,
                archive: Some(dir.to_string()),
                extra,
                todo: todo.clone(),
                said,
            })
        })
        .ok_or_else(|| "No single archived attempt of yours passed every other step,".to_string())
}

/// The files under `archived` (at `rel` below it) that `pristine` lacks, relative.
fn new_files(archived: &Path, pristine: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = archived.join(rel);
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let rel = rel.join(entry.file_name());
        let ty = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        if ty.is_dir() {
            new_files(archived, pristine, &rel, out)?;
        } else if ty.is_file() && !pristine.join(&rel).exists() {
            out.push(rel);
        }
    }
    Ok(())
}

/// The step file when no single archive has every other step passing: `pristine` with
/// each of those steps' bodies from the last archived attempt where it passed. Code
/// outside the step functions does not come with them. `why`: why no archive was taken
/// whole.
fn per_step(
    ctx: &Ctx,
    kata: &Kata,
    history: &[Entry],
    weak: &[Weak],
    pristine: &str,
    why: &str,
) -> Drill {
    let mut text = pristine.to_string();
    let mut todo: Vec<usize> = weak.iter().map(|w| w.step).collect();
    let mut said = vec![format!("{why} {PER_STEP}")];
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
    Drill {
        text,
        archive: None,
        extra: Vec::new(),
        todo,
        said,
    }
}

/// The kata's attempts on the step file, most recent first.
fn steps_attempts<'h>(kata: &Kata, history: &'h [Entry]) -> impl Iterator<Item = &'h Entry> {
    history
        .iter()
        .rev()
        .filter(move |e| e.kata == kata.name && e.file == PracticeFile::Steps)
}

/// Whether step `n` passed in attempt `e` on the step file: it has a split, or the whole
/// attempt passed (a drill's steps handed over have no split).
fn passed(e: &Entry, n: usize) -> bool {
    e.result == AttemptResult::Passed || e.splits.iter().any(|s| s.step == n)
}

/// The body of `function` in the most recent archived attempt in which step `n` passed,
/// and that archive's folder.
fn last_passing(
    ctx: &Ctx,
    kata: &Kata,
    history: &[Entry],
    n: usize,
    function: &str,
) -> Option<(String, String)> {
    steps_attempts(kata, history)
        .filter(|e| passed(e, n))
        .filter_map(|e| e.archive.as_deref())
        .find_map(|dir| {
            let src = std::fs::read_to_string(ctx.repo.join(dir).join("src/lib.rs")).ok()?;
            let body = drill::body(&src, function)?.to_string();
            Some((dir.to_string(), body))
        })
}
