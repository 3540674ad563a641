//! `cargo practice` with no arguments: choose a kata, then a mode; or history, status,
//! hints, reset, solutions, the learning path. Starting a session ends the menu.

use std::process::ExitCode;

use anyhow::Result;
use console::style;

use crate::Ctx;
use crate::commands::history::bests;
use crate::commands::{drill, guide, hint, history, reset, solution, status};
use crate::kata::Kata;
use crate::levels;
use crate::prompt::{Item, Prompt};
use crate::session::view::fit;
use crate::start;
use crate::state::{Entry, Mode, clock};

pub fn run(ctx: &Ctx, p: &mut dyn Prompt) -> Result<ExitCode> {
    println!(
        "{} — practise the pipelines until you write them from memory.\n",
        style("ETL katas").bold()
    );
    for problem in &ctx.catalog.problems {
        println!("{} {problem}", style("!").yellow());
    }
    if let Some(a) = ctx.practice.load_current()? {
        let live = a.pid.is_some_and(crate::process::is_alive);
        if !live {
            let q = format!(
                "You have a paused attempt: {} · {} · {}. Resume it?",
                a.kata,
                a.mode.as_str(),
                clock(a.elapsed_s)
            );
            if p.confirm(&q, true)? == Some(true) {
                return start::resume_attempt(ctx, a);
            }
        }
    }
    loop {
        let history = ctx.practice.load_history()?;
        let mut items: Vec<Item> = Vec::new();
        for k in &ctx.catalog.katas {
            let mine: Vec<&Entry> = history
                .attempts
                .iter()
                .filter(|e| e.kata == k.name)
                .collect();
            let lvl = levels::standing(&mine, &levels::Thresholds::of(k)).level;
            let best = bests(&mine);
            let best = best.split(" (").next().unwrap_or("");
            let about = if mine.is_empty() {
                "not tried yet".to_string()
            } else {
                format!("{} · best {best}", lvl.as_str())
            };
            items.push(Item::new(
                k.name.clone(),
                format!("{:<8} {} {about}", k.name, fit(&k.title, 36)),
            ));
        }
        // The learner's weak spots, once the history shows some.
        let weak = crate::drill::weakest_kata(&ctx.catalog.katas, &history.attempts);
        if let Some((k, steps)) = &weak {
            let list: Vec<String> = steps.iter().map(|w| w.short(k)).collect();
            items.push(Item::new(
                "drill",
                format!(
                    "Drill    {}: your weakest steps, timed — {}",
                    k.name,
                    list.join(", ")
                ),
            ));
        }
        let fixed = [
            ("status", "Status: attempt in progress, levels, files"),
            (
                "history",
                "History: attempts, chart against target and expert times, levels",
            ),
            ("hint", "Hint for a step"),
            (
                "reset",
                "Reset a kata (archive your code, restore the pristine kata)",
            ),
            (
                "solution",
                "Show a kata's reference solution (after an attempt)",
            ),
            ("guide", "Learning path, levels and interview tips"),
            ("quit", "Quit"),
        ];
        for (key, label) in fixed {
            items.push(Item::new(key, label));
        }
        let Some(i) = p.select("What now?", &items)? else {
            return Ok(ExitCode::SUCCESS);
        };
        let key = items[i].key.clone();
        let outcome = match key.as_str() {
            "quit" => return Ok(ExitCode::SUCCESS),
            "drill" => {
                let name = weak.as_ref().map(|(k, _)| k.name.as_str());
                return drill::run(ctx, name, p);
            }
            "status" => status::run(ctx),
            "history" => history::run(ctx, None, 20),
            "guide" => {
                guide::run(&ctx.catalog.katas);
                Ok(())
            }
            "hint" => hint_menu(ctx, p),
            "reset" => reset_menu(ctx, p),
            "solution" => match pick_kata(ctx, p, "Solution of which kata?")? {
                Some(k) => solution::run(ctx, &k.name, "intermediate", false),
                None => Ok(()),
            },
            name => {
                let k = ctx.catalog.get(name)?;
                match pick_mode(k, p)? {
                    Some((Mode::Reference, _)) => crate::reference::run(ctx, k).map(|_| ()),
                    Some((m, steps)) => return start::start(ctx, k, m, steps, p),
                    None => Ok(()),
                }
            }
        };
        if let Err(e) = outcome {
            println!("{} {e:#}", style("error:").red());
        }
        println!();
    }
}

fn pick_kata<'a>(ctx: &'a Ctx, p: &mut dyn Prompt, title: &str) -> Result<Option<&'a Kata>> {
    let items: Vec<Item> = ctx
        .catalog
        .katas
        .iter()
        .map(|k| Item::new(k.name.clone(), format!("{:<8} {}", k.name, k.title)))
        .collect();
    Ok(p.select(title, &items)?.map(|i| &ctx.catalog.katas[i]))
}

/// A mode, and for timed mode whether it is on the step file.
fn pick_mode(k: &Kata, p: &mut dyn Prompt) -> Result<Option<(Mode, bool)>> {
    let timed = format!(
        "target {}, expert {}",
        clock(k.target_s()),
        clock(k.expert_s())
    );
    let mut choices = vec![(
        Item::new(
            "guided",
            "Guided       step by step, hints on request, tests rerun on every save",
        ),
        (Mode::Guided, false),
    )];
    if k.program.is_some() {
        choices.push((
            Item::new(
                "timed",
                format!("Timed        the whole program from a blank file, live timer: {timed}"),
            ),
            (Mode::Timed, false),
        ));
        choices.push((
            Item::new(
                "timed-steps",
                format!("Timed, steps the step file against the clock: {timed}, splits per step"),
            ),
            (Mode::Timed, true),
        ));
        choices.push((
            Item::new(
                "interview",
                format!(
                    "Interview    the whole program from a blank file, {} limit, no hints, graded end to end",
                    clock(k.limit_s())
                ),
            ),
            (Mode::Interview, false),
        ));
    } else {
        choices.push((
            Item::new(
                "timed",
                format!("Timed        live timer: {timed}, splits per step"),
            ),
            (Mode::Timed, false),
        ));
        choices.push((
            Item::new(
                "interview",
                format!(
                    "Interview    {} limit, no hints, graded when you say so",
                    clock(k.limit_s())
                ),
            ),
            (Mode::Interview, false),
        ));
    }
    choices.push((
        Item::new(
            "reference",
            "Reference    run the reference pipeline and show its output",
        ),
        (Mode::Reference, false),
    ));
    let items: Vec<Item> = choices.iter().map(|(i, _)| i.clone()).collect();
    Ok(p.select(
        &format!(
            "{}{} — which mode?",
            k.title,
            k.summary
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        ),
        &items,
    )?
    .map(|i| choices[i].1))
}

fn hint_menu(ctx: &Ctx, p: &mut dyn Prompt) -> Result<()> {
    let Some(k) = pick_kata(ctx, p, "Hint for which kata?")? else {
        return Ok(());
    };
    let items: Vec<Item> = k
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Item::new(
                s.function.clone().unwrap_or_else(|| s.test.clone()),
                format!("{} {}", i + 1, s.title),
            )
        })
        .collect();
    match p.select("Which step?", &items)? {
        Some(i) => hint::run(ctx, &k.name, &(i + 1).to_string()),
        None => Ok(()),
    }
}

fn reset_menu(ctx: &Ctx, p: &mut dyn Prompt) -> Result<()> {
    let mut items: Vec<Item> = ctx
        .catalog
        .katas
        .iter()
        .map(|k| Item::new(k.name.clone(), format!("{:<8} {}", k.name, k.rel_dir())))
        .collect();
    items.push(Item::new("all", "All katas"));
    let Some(i) = p.select("Reset which kata? (your code is archived first)", &items)? else {
        return Ok(());
    };
    let all = i == ctx.catalog.katas.len();
    let what = if all {
        "every kata".to_string()
    } else {
        ctx.catalog.katas[i].rel_dir()
    };
    if p.confirm(&format!("Archive and restore {what}?"), true)? != Some(true) {
        println!("Nothing reset.");
        return Ok(());
    }
    let kata = (!all).then(|| ctx.catalog.katas[i].name.as_str());
    reset::run(ctx, kata, all, false, Some(p))
}
