//! `cargo practice history`: every attempt as a table, a chart of attempt times per
//! kata against its target and expert lines, personal bests and levels.

use std::fmt::Write as _;

use anyhow::Result;

use crate::Ctx;
use crate::kata::Kata;
use crate::levels;
use crate::state::{AttemptResult, Entry, History, Mode, clock, short_date};

const CHART_WIDTH: usize = 40;

pub fn run(ctx: &Ctx, kata: Option<&str>, last: usize) -> Result<()> {
    if let Some(k) = kata {
        ctx.catalog.get(k)?;
    }
    let h = ctx.practice.load_history()?;
    print!("{}", render(&ctx.catalog.katas, &h, kata, last));
    Ok(())
}

fn splits_text(e: &Entry) -> String {
    let mut s: Vec<&crate::state::Split> = e.splits.iter().filter(|s| s.step > 0).collect();
    s.sort_by_key(|s| s.step);
    s.iter()
        .map(|s| format!("{} {}", s.step, clock(s.at_s)))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn render(katas: &[Kata], h: &History, only: Option<&str>, last: usize) -> String {
    let mut out = String::new();
    let entries: Vec<(usize, &Entry)> = h
        .attempts
        .iter()
        .enumerate()
        .filter(|(_, e)| only.is_none_or(|k| e.kata == k))
        .collect();
    if entries.is_empty() {
        out.push_str(
            "No attempts yet. Start one with `cargo practice` (menu) or `cargo practice <kata>`.\n",
        );
    } else {
        let from = entries.len().saturating_sub(last);
        let _ = writeln!(
            out,
            "Attempts ({} in all{})",
            entries.len(),
            if from > 0 {
                format!(", the last {last}")
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  {:>3}  {:<16}  {:<8}  {:<9}  {:<7}  {:>7}  {:<9}  {:>5}  splits (step time)",
            "#", "date", "kata", "mode", "file", "time", "result", "hints"
        );
        for (i, e) in &entries[from..] {
            let line = format!(
                "  {:>3}  {:<16}  {:<8}  {:<9}  {:<7}  {:>7}  {:<9}  {:>5}  {}",
                i + 1,
                short_date(&e.started_at),
                e.kata,
                e.mode.as_str(),
                e.file.as_str(),
                clock(e.duration_s),
                e.result.as_str(),
                e.hints_used,
                splits_text(e)
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }

    for k in katas.iter().filter(|k| only.is_none_or(|o| o == k.name)) {
        let mine: Vec<&Entry> = h.attempts.iter().filter(|e| e.kata == k.name).collect();
        if mine.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(&chart(k, &mine[mine.len().saturating_sub(last)..]));
    }

    let shown: Vec<&Kata> = katas
        .iter()
        .filter(|k| only.is_none_or(|o| o == k.name))
        .collect();
    if !shown.is_empty() {
        out.push_str("\nPersonal bests (passed attempts)\n");
        for k in &shown {
            let mine: Vec<&Entry> = h.attempts.iter().filter(|e| e.kata == k.name).collect();
            let _ = writeln!(out, "  {:<8}  {}", k.name, bests(&mine));
        }
        out.push_str("\nLevels\n");
        for k in &shown {
            let mine: Vec<&Entry> = h.attempts.iter().filter(|e| e.kata == k.name).collect();
            let s = levels::standing(&mine, &levels::Thresholds::of(k));
            let next = s
                .next
                .map(|n| format!("next: {n}"))
                .unwrap_or_else(|| "top level reached".into());
            let _ = writeln!(out, "  {:<8}  {:<15}  {next}", k.name, s.level.as_str());
        }
    }
    out
}

/// The fastest pass overall, then per mode.
pub fn bests(mine: &[&Entry]) -> String {
    let best = |m: Option<Mode>| {
        mine.iter()
            .filter(|e| e.result == AttemptResult::Passed && e.mode != Mode::Drill)
            .filter(|e| m.is_none_or(|m| e.mode == m))
            .min_by(|a, b| a.duration_s.total_cmp(&b.duration_s))
    };
    let Some(top) = best(None) else {
        return "none yet".to_string();
    };
    let mut parts = vec![format!(
        "{} ({}, {}{})",
        clock(top.duration_s),
        top.mode.as_str(),
        short_date(&top.started_at),
        if top.hints_used > 0 {
            format!(", {} hints", top.hints_used)
        } else {
            String::new()
        }
    )];
    for m in [Mode::Guided, Mode::Timed, Mode::Interview] {
        if let Some(e) = best(Some(m)) {
            parts.push(format!("{} {}", m.as_str(), clock(e.duration_s)));
        }
    }
    parts.join(" · ")
}

/// One bar per attempt; `│` marks the target time, `┊` the expert time.
pub fn chart(k: &Kata, mine: &[&Entry]) -> String {
    let mut out = String::new();
    let longest = mine.iter().map(|e| e.duration_s).fold(0.0, f64::max);
    let scale = longest.max(k.target_s() * 1.2).max(1.0);
    let col = |t: f64| ((t / scale) * CHART_WIDTH as f64).round() as usize;
    let (tc, ec) = (col(k.target_s()), col(k.expert_s()));
    let _ = writeln!(
        out,
        "{} — {}: time per attempt (│ target {}, ┊ expert {}; one cell = {} s)",
        k.name,
        k.title,
        clock(k.target_s()),
        clock(k.expert_s()),
        (scale / CHART_WIDTH as f64).round()
    );
    for e in mine {
        let bar = col(e.duration_s).min(CHART_WIDTH);
        let fill = if e.result == AttemptResult::Passed {
            '█'
        } else {
            '░'
        };
        let mut row = String::new();
        for i in 0..CHART_WIDTH.max(tc + 1) {
            row.push(if i == tc {
                '│'
            } else if i == ec {
                '┊'
            } else if i < bar {
                fill
            } else {
                ' '
            });
        }
        let note = match (e.result, e.hints_used) {
            (AttemptResult::Passed, 0) => "passed".to_string(),
            (AttemptResult::Passed, n) => {
                format!("passed, {n} hint{}", if n == 1 { "" } else { "s" })
            }
            (r, _) => r.as_str().to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<10} {:<9} {row} {} {note}",
            &short_date(&e.started_at)[..10.min(short_date(&e.started_at).len())],
            e.mode.as_str(),
            clock(e.duration_s)
        );
    }
    out
}
