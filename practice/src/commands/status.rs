//! `cargo practice status`: where you are, without running anything long.

use std::fmt::Write as _;

use anyhow::Result;

use crate::grade::broker_line;
use crate::levels::{self, Level};
use crate::state::{AttemptResult, Entry, Mode, clock};
use crate::{Ctx, archive, git};

pub fn run(ctx: &Ctx) -> Result<()> {
    print!("{}", render(ctx)?);
    Ok(())
}

pub fn render(ctx: &Ctx) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(s, "Repository   {}", ctx.repo.display());
    let git_line = match archive::refusal(&ctx.repo) {
        None => "ok: attempts are restored from git when they end".to_string(),
        Some(why) => format!(
            "reset unavailable: {}",
            why.explain(None).lines().next().unwrap_or("")
        ),
    };
    let _ = writeln!(s, "Git          {git_line}");
    if ctx.catalog.katas.iter().any(|k| k.needs_kafka) {
        let _ = writeln!(s, "Kafka        {}", broker_line());
    }
    let _ = writeln!(
        s,
        "Records      {}",
        ctx.practice
            .dir
            .strip_prefix(&ctx.repo)
            .unwrap_or(&ctx.practice.dir)
            .display()
    );

    match ctx.practice.load_current()? {
        Some(a) => {
            let live = match a.pid {
                Some(pid) if crate::process::is_alive(pid) => {
                    format!(" — running now (process {pid})")
                }
                _ => " — paused: `cargo practice resume` (or `cargo practice`) goes on".to_string(),
            };
            let last = a
                .last_run
                .as_deref()
                .map(|l| format!(" · last run: {l}"))
                .unwrap_or_default();
            let hints = if a.hints.is_empty() {
                String::new()
            } else {
                format!(" · {} hint(s)", a.hints.len())
            };
            let _ = writeln!(
                s,
                "In progress  {} · {} · {}{hints}{last}{live}",
                a.kata,
                a.mode.as_str(),
                clock(a.elapsed_s)
            );
        }
        None => {
            let _ = writeln!(s, "In progress  none");
        }
    }

    let history = ctx.practice.load_history()?;
    let _ = writeln!(
        s,
        "\n  {:<8}  {:<36}  {:<15}  {:>8}  {:<15}  files",
        "kata", "title", "level", "attempts", "best"
    );
    let mut suggestion: Option<String> = None;
    for k in &ctx.catalog.katas {
        let mine: Vec<&Entry> = history
            .attempts
            .iter()
            .filter(|e| e.kata == k.name)
            .collect();
        let standing = levels::standing(&mine, &levels::Thresholds::of(k));
        let passed = mine
            .iter()
            .filter(|e| e.result == AttemptResult::Passed)
            .count();
        let files = match git::changes_in(&ctx.repo, &k.rel_dir()) {
            Ok(c) if c.is_empty() => "pristine".to_string(),
            Ok(c) => format!(
                "modified ({} file{})",
                c.len(),
                if c.len() == 1 { "" } else { "s" }
            ),
            Err(_) => "?".to_string(),
        };
        let best = mine
            .iter()
            .filter(|e| e.result == AttemptResult::Passed && e.mode != Mode::Drill)
            .min_by(|a, b| a.duration_s.total_cmp(&b.duration_s))
            .map(|e| format!("{} {}", clock(e.duration_s), e.mode.as_str()))
            .unwrap_or_else(|| "—".to_string());
        let _ = writeln!(
            s,
            "  {:<8}  {:<36}  {:<15}  {:>8}  {:<15}  {files}",
            k.name,
            crate::session::view::fit(&k.title, 36),
            standing.level.as_str(),
            format!("{passed}/{}", mine.len()),
            best
        );
        if suggestion.is_none() && standing.level != Level::InterviewReady {
            let (mode, flag) = match standing.level {
                Level::NotYet => ("guided (then without hints)", ""),
                Level::Beginner | Level::Intermediate | Level::Advanced => (
                    "timed (the whole program, from a blank file)",
                    " --mode timed",
                ),
                _ => ("interview", " --mode interview"),
            };
            suggestion = Some(format!(
                "{}: practise in {mode} mode — `cargo practice {}{flag}`. {}",
                k.name,
                k.name,
                standing
                    .next
                    .map(|n| format!("Next level — {n}."))
                    .unwrap_or_default()
            ));
        }
    }
    if ctx.catalog.katas.is_empty() {
        let _ = writeln!(s, "  (no katas/*/kata.toml found)");
    }
    for p in &ctx.catalog.problems {
        let _ = writeln!(s, "  ! {p}");
    }
    let _ = writeln!(s, "  attempts = passed/all");
    let mut weak_lines = Vec::new();
    for k in &ctx.catalog.katas {
        let weak = crate::drill::weakest(k, &history.attempts);
        if !weak.is_empty() {
            let list: Vec<String> = weak.iter().map(|w| w.short(k)).collect();
            weak_lines.push(format!("  {:<8}  {}", k.name, list.join(", ")));
        }
    }
    if !weak_lines.is_empty() {
        let _ = writeln!(
            s,
            "\nWeakest steps (drill them: `cargo practice drill <kata>`)\n{}",
            weak_lines.join("\n")
        );
    }
    if let Some(sg) = suggestion {
        let _ = writeln!(s, "\nSuggested next: {sg}");
    }
    Ok(s)
}
