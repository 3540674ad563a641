//! What a session shows, as text: pure functions of the session's state (and of a
//! report or a history entry), so the line view prints them and a full-screen view can
//! lay them out. `checklist`, `hint_text` and `summary` serve the commands too.

use std::fmt::Write as _;

use console::{Alignment, style};

use super::app::App;
use super::keys;
use crate::grade;
use crate::kata::Kata;
use crate::levels;
use crate::runner::{Outcome, Progress, Report, Status};
use crate::state::{AttemptResult, Entry, History, Mode, Split, clock};

/// At most this many lines of a message are shown; the log has the rest.
const MAX_MESSAGE_LINES: usize = 30;
/// Step titles are cut to this many columns in the checklist.
const TITLE_WIDTH: usize = 50;

/// `text` padded or cut (with `…`) to exactly `width` columns.
pub fn fit(text: &str, width: usize) -> String {
    console::pad_str(text, width, Alignment::Left, Some("…")).into_owned()
}

/// A step title in at most `width` columns: a parenthesised note (`(Spark: …)`) goes
/// first, then the end of the title.
pub fn short_title(title: &str, width: usize) -> &str {
    if console::measure_text_width(title) <= width {
        return title;
    }
    title.split(" (").next().unwrap_or(title).trim_end()
}

/// What the session says when it starts: the kata, the file, the rules of the mode, the
/// broker and the keys.
pub fn intro(app: &App) -> String {
    let (k, a) = (app.kata, &app.attempt);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — {} · {} mode",
        style(&k.name).bold(),
        k.title,
        a.mode.as_str()
    );
    if a.elapsed_s > 0.0 {
        let _ = writeln!(
            s,
            "Resuming at {} (resume #{}).",
            clock(a.elapsed_s),
            a.resumed
        );
    }
    if app.on_program() {
        let _ = writeln!(
            s,
            "Your file: {}  (a blank program: the problem statement is at its top; write the whole pipeline, imports to main)",
            app.file()
        );
    } else {
        let _ = writeln!(
            s,
            "Your practice file: {}  (one function per step; its doc comment states the contract)",
            app.file()
        );
    }
    let _ = writeln!(s, "{}", rules(app));
    if k.needs_kafka {
        let _ = writeln!(s, "Broker: {}", grade::broker_line());
    }
    s.push_str(&keys::intro(app.key_context(), app.keys));
    s
}

/// The rules of the attempt's mode, in one paragraph.
pub fn rules(app: &App) -> String {
    let (k, a) = (app.kata, &app.attempt);
    match a.mode {
        Mode::Guided => {
            "Save the file and the step tests run again. Hints on request (counted).".to_string()
        }
        Mode::Timed if app.on_program() => format!(
            "Target {}, expert {}. The clock runs until a grading passes: press g to build your program and grade it end to end on fresh data. No hints.",
            clock(k.target_s()),
            clock(k.expert_s())
        ),
        Mode::Timed => format!(
            "Target {}, expert {}. The clock runs; each step's split is taken when it first passes. No hints.",
            clock(k.target_s()),
            clock(k.expert_s())
        ),
        Mode::Drill => format!(
            "A drill of {}: only they are todo!(); the other steps hold your own last passing code. \
             The clock runs; each drilled step's split is taken when it first passes. No hints.",
            drilled(k, &a.drill)
        ),
        _ => format!(
            "You have {}. No hints. Press g when you are done: your program is built and graded end to end on fresh data, as an interviewer would run it; you may grade as often as you like.",
            clock(k.limit_s()),
        ),
    }
}

/// Said once, when a build turns out to compile the kata's dependencies.
pub fn first_build(kata: &Kata, progress: &Progress) -> String {
    let units = match progress {
        Progress::Compiling {
            bar: Some((_, total)),
            ..
        } => format!(" ({total} build units in all)"),
        _ => String::new(),
    };
    let deps = kata.dependencies();
    let what = if deps.is_empty() {
        "its dependencies".to_string()
    } else {
        format!("its dependencies — {} —", deps.join(", "))
    };
    format!(
        "First build: cargo compiles the kata and {what} before the tests can run{units}. \
         This takes a few minutes on two cores and happens once: the build stays in target/, \
         and after it a run takes seconds. The clock waits for it."
    )
}

/// What a run (or a grading) is doing, for the status bar.
pub fn busy(grading: bool, progress: Option<&Progress>) -> String {
    match progress {
        Some(Progress::Waiting) => " · waiting for another cargo to finish (build lock)…".into(),
        Some(
            p @ Progress::Compiling {
                compiled,
                bar,
                what,
            },
        ) => {
            let once = if p.is_first_build() {
                " (first build, once)"
            } else {
                ""
            };
            // cargo names every crate in progress; the header has room for one.
            let what = what.split(", ").next().unwrap_or(what);
            match bar {
                Some((done, total)) => format!(" · compiling {done}/{total}{once}: {what}…"),
                None => format!(" · compiling {what}{once}, {compiled} crate(s) so far…"),
            }
        }
        _ if grading => " · building and grading…".into(),
        _ => " · testing…".into(),
    }
}

/// The status bar: the clock against the mode's goal, what is running, the keys.
pub fn status_line(app: &App) -> String {
    let (k, t) = (app.kata, app.elapsed());
    let (g, n) = app.green();
    let busy = app
        .running()
        .map(|r| busy(r.grading, r.progress.as_ref()))
        .unwrap_or_default();
    let keys = keys::line(app.key_context(), true);
    let vs = |label: &str, goal: f64| {
        if t <= goal {
            format!("{label} {} ({} left)", clock(goal), clock(goal - t))
        } else {
            format!("{label} {} (+{} over)", clock(goal), clock(t - goal))
        }
    };
    match app.attempt.mode {
        Mode::Timed if app.on_program() => format!(
            "⏱ {} · {} · {} · whole program{busy} · {keys}",
            clock(t),
            vs("target", k.target_s()),
            vs("expert", k.expert_s()),
        ),
        Mode::Guided => format!("⏱ {} · {g}/{n} steps green{busy} · {keys}", clock(t)),
        Mode::Timed => format!(
            "⏱ {} · {} · {} · {g}/{n} green{busy} · {keys}",
            clock(t),
            vs("target", k.target_s()),
            vs("expert", k.expert_s()),
        ),
        Mode::Drill => format!(
            "⏱ {} · drill of {} · {g}/{n} green{busy} · {keys}",
            clock(t),
            drilled(k, &app.attempt.drill)
        ),
        _ => format!(
            "⏳ {} left of {}{busy} · {keys}",
            clock(k.limit_s() - t),
            clock(k.limit_s()),
        ),
    }
}

/// A test run as the session shows it: the time of the code it tested, then the checklist.
pub fn run_report(app: &App, report: &Report, at_s: Option<f64>) -> String {
    let k = app.kata;
    let note = match app.attempt.mode {
        Mode::Guided => Some(" (h for a hint)"),
        Mode::Timed | Mode::Drill => Some(""),
        _ => None,
    };
    let mut s = String::new();
    if let Some(t) = at_s {
        let goal = match app.attempt.mode {
            Mode::Timed => format!(
                " (target {}, expert {})",
                clock(k.target_s()),
                clock(k.expert_s())
            ),
            Mode::Interview => format!(" of {}", clock(k.limit_s())),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "⏱ {}{goal} · verdict in {:.1} s",
            clock(t),
            report.took.as_secs_f64()
        );
    }
    s.push_str(&checklist(k, report, &app.attempt.splits, note));
    s
}

/// The hint for step `i` (0-based), framed.
pub fn hint_text(kata: &Kata, i: usize) -> String {
    let s = &kata.steps[i];
    let mut out = format!(
        "Hint — step {} {}{}:\n",
        i + 1,
        s.title,
        s.function
            .as_deref()
            .map(|f| format!(" (`{f}`)"))
            .unwrap_or_default()
    );
    match &s.hint {
        Some(h) => {
            for l in h.trim().lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        None => out.push_str("  (kata.toml has no hint for this step)\n"),
    }
    out
}

fn indent(s: &str, by: &str) -> String {
    s.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first `MAX_MESSAGE_LINES` lines of a message, indented, and where the rest is.
fn excerpt(msg: &str, log: &std::path::Path) -> String {
    let lines: Vec<&str> = msg.lines().collect();
    let cut = if lines.len() > MAX_MESSAGE_LINES {
        format!(
            "\n    … {} more lines in {}",
            lines.len() - MAX_MESSAGE_LINES,
            log.display()
        )
    } else {
        String::new()
    };
    format!(
        "{}{cut}",
        indent(
            &lines[..lines.len().min(MAX_MESSAGE_LINES)].join("\n"),
            "    "
        )
    )
}

/// The step checklist with each verdict, and the first failure's message.
pub fn checklist(
    kata: &Kata,
    report: &Report,
    splits: &[Split],
    next_note: Option<&str>,
) -> String {
    let mut out = String::new();
    let (unnamed_stuck, cut_short_s) = match &report.outcome {
        Outcome::BuildFailed {
            first_error,
            errors,
        } => {
            let n = if *errors > 1 {
                format!(" ({errors} errors; the first below)")
            } else {
                String::new()
            };
            let _ = writeln!(out, "{} does not compile{n}:", style("✗").red());
            let _ = writeln!(out, "{}", excerpt(first_error, &report.log));
            let _ = writeln!(out, "Full output: {}", report.log.display());
            return out;
        }
        Outcome::BuildTimedOut { after_s } => {
            let _ = writeln!(
                out,
                "{} compiling took longer than {after_s} s and was stopped (is another cargo holding the build lock?). Save again or press r.",
                style("!").yellow()
            );
            return out;
        }
        Outcome::Cancelled => return out,
        Outcome::Tests {
            unnamed_stuck,
            cut_short_s,
            ..
        } => (*unnamed_stuck, *cut_short_s),
    };
    let verdicts = report.verdicts();
    // Steps first, in order, then the other tests (`end_to_end`).
    let mut rows = Vec::new();
    for (i, s) in kata.steps.iter().enumerate() {
        if let Some(v) = verdicts.iter().find(|v| v.test == s.test) {
            rows.push((format!("{}", i + 1), short_title(&s.title, TITLE_WIDTH), v));
        }
    }
    let steps = rows.len();
    for v in verdicts
        .iter()
        .filter(|v| !kata.steps.iter().any(|s| s.test == v.test))
    {
        rows.push((String::new(), v.test.as_str(), v));
    }
    let width = rows
        .iter()
        .map(|r| console::measure_text_width(r.1))
        .max()
        .unwrap_or(10)
        .min(TITLE_WIDTH);
    let mut first_red: Option<(String, &str)> = None;
    for (num, title, v) in &rows {
        let (mark, word) = match v.status {
            Status::Passed => (style("✓").green(), ""),
            Status::Failed => (style("✗").red(), "failed"),
            Status::Todo => (style("○").dim(), "todo"),
            Status::Stuck => (style("!").red(), "stuck"),
            Status::Crashed => (style("!").red(), "crashed"),
            Status::Missing => (style("?").yellow(), "no such test"),
            Status::Ignored => (style("-").dim(), "ignored"),
        };
        let right = if v.status == Status::Passed {
            splits
                .iter()
                .find(|s| s.test == v.test)
                .map(|s| clock(s.at_s))
                .unwrap_or_default()
        } else {
            word.to_string()
        };
        let line = format!("  {mark} {num:>2} {}  {right}", fit(title, width));
        let _ = writeln!(out, "{}", line.trim_end());
        if first_red.is_none()
            && matches!(
                v.status,
                Status::Failed | Status::Stuck | Status::Crashed | Status::Missing
            )
            && let Some(m) = &v.message
        {
            let who = if num.is_empty() {
                v.test.clone()
            } else {
                format!("step {num} ({})", v.test)
            };
            first_red = Some((who, m));
        }
    }
    if unnamed_stuck > 0 {
        let _ = writeln!(
            out,
            "  {} {unnamed_stuck} other test(s) had no result when the run was stopped",
            style("!").red()
        );
    }
    let green = kata.steps.iter().filter(|s| report.passed(&s.test)).count();
    let mut total = format!("  {green}/{} steps green", kata.steps.len());
    let others = &rows[steps..];
    if !others.is_empty() {
        let passing = others
            .iter()
            .filter(|r| r.2.status == Status::Passed)
            .count();
        let _ = write!(
            total,
            " · {passing}/{} other test{} passing",
            others.len(),
            if others.len() == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "{total}");
    if let Some(after) = cut_short_s {
        let _ = writeln!(
            out,
            "  {} The run was cut short after {after:.0} s: a test had no result (stuck); the other verdicts stand.",
            style("!").red()
        );
    }
    if let Some((who, msg)) = first_red {
        let _ = writeln!(
            out,
            "First failure — {who}:\n{}",
            excerpt(&tidy_failure(msg), &report.log)
        );
    } else if !report.all_passed()
        && let Some(note) = next_note
    {
        let next = kata
            .steps
            .iter()
            .position(|s| !report.passed(&s.test))
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "Next: step {} — {}{note}",
            next + 1,
            kata.steps[next].title
        );
    }
    out
}

/// A failure message as a learner reads it. Tables printed with `{:#?}` (a list of
/// quoted lines, as `assert_batches_eq!` prints them) become tables again, and once
/// tables were shown, `assert_eq!`'s `left:` / `right:` lines, which repeat them on two
/// long lines, are dropped.
pub fn tidy_failure(msg: &str) -> String {
    let lines: Vec<&str> = msg.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut tables = false;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim() == "["
            && let Some(len) = lines[i + 1..].iter().position(|x| x.trim() == "]")
            && len > 0
            && let Some(rows) = lines[i + 1..i + 1 + len]
                .iter()
                .map(|x| unquote(x.trim()))
                .collect::<Option<Vec<String>>>()
        {
            out.extend(rows.into_iter().map(|r| format!("  {r}")));
            tables = true;
            i += len + 2;
            continue;
        }
        let repeat = tables && (l.starts_with("  left: ") || l.starts_with(" right: "));
        if !repeat {
            out.push(l.trim_end().to_string());
        }
        i += 1;
    }
    if tables
        && let Some(first) = out.first_mut()
        && let Some(rest) = first.strip_prefix("assertion `left == right` failed")
    {
        *first = rest.trim_start_matches(':').trim().to_string();
    }
    // No runs of blank lines.
    let mut text = String::new();
    let mut blank = true;
    for l in out {
        if l.trim().is_empty() {
            if !blank {
                text.push('\n');
            }
            blank = true;
        } else {
            text.push_str(&l);
            text.push('\n');
            blank = false;
        }
    }
    text.trim_end().to_string()
}

/// A failure's `expected:` and `actual:` tables (as [`tidy_failure`] leaves them) put
/// side by side, `expected | actual`, so both fit on a screen; other text as it was.
pub fn side_by_side(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    // The table under the label at `at`: its first line and its lines.
    let table = |label: &str| -> Option<(usize, usize, Vec<&str>)> {
        let at = lines.iter().position(|l| l.trim() == label)?;
        let start = at
            + 1
            + lines[at + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty())
                .count();
        let rows: Vec<&str> = lines[start..]
            .iter()
            .take_while(|l| l.trim_start().starts_with(['+', '|']))
            .map(|l| l.trim())
            .collect();
        (!rows.is_empty()).then_some((at, start + rows.len(), rows))
    };
    let (Some((e_at, e_end, expected)), Some((a_at, a_end, actual))) =
        (table("expected:"), table("actual:"))
    else {
        return text.to_string();
    };
    if a_at < e_end {
        return text.to_string();
    }
    let width = expected
        .iter()
        .map(|l| console::measure_text_width(l))
        .max()
        .unwrap_or(0)
        .max("expected".len());
    let mut out: Vec<String> = lines[..e_at].iter().map(|l| l.to_string()).collect();
    out.push(format!("{} | actual", fit("expected", width)));
    for i in 0..expected.len().max(actual.len()) {
        let left = expected.get(i).copied().unwrap_or("");
        let right = actual.get(i).copied().unwrap_or("");
        out.push(
            format!("{} | {right}", fit(left, width))
                .trim_end()
                .to_string(),
        );
    }
    out.extend(
        lines[e_end..a_at]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.to_string()),
    );
    out.extend(lines[a_end..].iter().map(|l| l.to_string()));
    out.join("\n").trim_end().to_string()
}

/// `"| a |",` → `| a |`: one line of a `{:#?}`-printed list of strings.
fn unquote(item: &str) -> Option<String> {
    let inner = item
        .strip_suffix(',')
        .unwrap_or(item)
        .strip_prefix('"')?
        .strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// `step 2 (greet), step 3 (total)`.
pub fn drilled(kata: &Kata, steps: &[usize]) -> String {
    let names: Vec<String> = steps
        .iter()
        .map(|&n| match kata.steps.get(n.wrapping_sub(1)) {
            Some(s) => format!("step {n} ({})", s.function.as_deref().unwrap_or(&s.title)),
            None => format!("step {n}"),
        })
        .collect();
    names.join(", ")
}

/// How an ended attempt went: the verdict, against the target and expert times, the
/// splits, personal best and level.
pub fn summary(kata: &Kata, e: &Entry, before: Option<&History>) -> String {
    let mut s = String::new();
    let t = e.duration_s;
    let verdict = match e.result {
        AttemptResult::Passed => format!("{} Passed in {}", style("✓").green(), clock(t)),
        AttemptResult::Failed => format!(
            "{} Not passed within the {} limit",
            style("✗").red(),
            clock(kata.limit_s())
        ),
        AttemptResult::Abandoned => format!("Abandoned at {}", clock(t)),
        AttemptResult::Reset => format!("Reset at {}", clock(t)),
    };
    let _ = writeln!(
        s,
        "\n{verdict} — {} {} mode, {} hint(s).",
        kata.name,
        e.mode.as_str(),
        e.hints_used
    );
    if e.result != AttemptResult::Passed {
        return s;
    }
    if e.mode == Mode::Drill {
        return s + &drill_summary(kata, e);
    }
    let vs = |goal: f64| {
        if t <= goal {
            format!("{} under", clock(goal - t))
        } else {
            format!("{} over", clock(t - goal))
        }
    };
    let _ = writeln!(
        s,
        "  target {}: {} · expert {}: {}",
        clock(kata.target_s()),
        vs(kata.target_s()),
        clock(kata.expert_s()),
        vs(kata.expert_s())
    );
    if !e.splits.is_empty() {
        let mut sp: Vec<&Split> = e.splits.iter().filter(|x| x.step > 0).collect();
        sp.sort_by_key(|x| x.step);
        let list: Vec<String> = sp
            .iter()
            .map(|x| format!("{} {}", x.step, clock(x.at_s)))
            .collect();
        let _ = writeln!(s, "  splits: {}", list.join(" · "));
    }
    let Some(h) = before else {
        return s;
    };
    let mine: Vec<&Entry> = h.attempts.iter().filter(|p| p.kata == kata.name).collect();
    let prev = mine
        .iter()
        .filter(|p| p.result == AttemptResult::Passed)
        .map(|p| p.duration_s)
        .fold(f64::INFINITY, f64::min);
    if t < prev && prev.is_finite() {
        let _ = writeln!(s, "  New personal best! (was {})", clock(prev));
    } else if prev.is_finite() {
        let _ = writeln!(s, "  Personal best: {}", clock(prev));
    }
    let thresholds = levels::Thresholds::of(kata);
    let old = levels::standing(&mine, &thresholds).level;
    let mut all = mine;
    all.push(e);
    let new = levels::standing(&all, &thresholds);
    if new.level != old {
        let _ = writeln!(s, "  Level up: {} → {}", old.as_str(), new.level.as_str());
    }
    if let Some(n) = new.next {
        let _ = writeln!(s, "  Next level — {n}");
    }
    s
}

/// A passed drill: each drilled step's own time against its share of the target.
fn drill_summary(kata: &Kata, e: &Entry) -> String {
    let share = crate::drill::share_s(kata);
    let own = crate::drill::own_times(e);
    let list: Vec<String> = own
        .iter()
        .map(|(step, t)| format!("step {step} {} (share {})", clock(*t), clock(share)))
        .collect();
    format!(
        "  drilled: {} · drills do not count for levels or bests\n",
        if list.is_empty() {
            "no split".to_string()
        } else {
            list.join(" · ")
        }
    )
}

/// The side pane's text for step `i` (0-based): its title and its contract, the doc
/// comment above `fn <function>` in the step file `src`.
pub fn contract(kata: &Kata, i: usize, src: &str) -> String {
    let Some(step) = kata.steps.get(i) else {
        return String::new();
    };
    let mut out = format!("Step {} — {}", i + 1, step.title);
    let Some(function) = step.function.as_deref() else {
        return out;
    };
    let _ = write!(out, " (`{function}`)\n\n");
    match doc_comment(src, function) {
        Some(doc) => out.push_str(&doc),
        None => {
            let _ = write!(
                out,
                "(no doc comment above `fn {function}` in the step file)"
            );
        }
    }
    out
}

/// The `///` lines above `fn name` (attributes between are skipped), without the slashes.
pub fn doc_comment(src: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let at = lines.iter().position(|l| {
        let l = l.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        l.strip_prefix("fn ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with(['(', '<']))
    })?;
    let mut doc = Vec::new();
    for l in lines[..at].iter().rev() {
        let t = l.trim_start();
        if let Some(text) = t.strip_prefix("///") {
            doc.push(text.strip_prefix(' ').unwrap_or(text));
        } else if !t.starts_with("#[") {
            break;
        }
    }
    doc.reverse();
    (!doc.is_empty()).then(|| doc.join("\n"))
}

/// The blank program's problem statement: the comment lines (`//!` or `//`) at the top
/// of `src`.
pub fn statement(src: &str) -> String {
    src.lines()
        .map_while(|l| {
            let l = l.trim_start();
            l.strip_prefix("//!").or_else(|| l.strip_prefix("//"))
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prose as one line per paragraph, so that a pane wraps it at its own width: lines
/// that continue a sentence are joined; lists, tables, headings, indented lines and
/// code blocks stay as they are.
pub fn reflow(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut code = false;
    let mut joinable = false;
    for l in text.lines() {
        let t = l.trim_start();
        if t.starts_with("```") {
            code = !code;
            out.push(l.to_string());
            joinable = false;
            continue;
        }
        let structured = code
            || t.is_empty()
            || t.starts_with(['-', '*', '|', '#', '>'])
            || t.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        // An indented line continues the sentence or list item above it.
        let continues = l.starts_with("  ") && joinable;
        if l.starts_with("  ") && !continues {
            out.push(l.to_string());
            joinable = false;
            continue;
        }
        match out.last_mut() {
            Some(last) if joinable && (!structured || continues) => {
                last.push(' ');
                last.push_str(t);
            }
            _ => out.push(l.to_string()),
        }
        joinable = !structured || (t.starts_with(['-', '*']) && !code);
        if t.is_empty() || code {
            joinable = false;
        }
    }
    out.join("\n")
}

/// The grader's report split in two: its checklist lines (`✓ compiles: …`), and the
/// rest (what data, the failures' details, the total). Colours are dropped.
pub fn grader_parts(report: &str) -> (Vec<String>, String) {
    // The clock's sign may be drawn two columns wide: the screen spells it.
    let plain = console::strip_ansi_codes(report).replace("⏱", "time");
    let (mut checks, mut rest) = (Vec::new(), Vec::<&str>::new());
    for l in plain.lines() {
        match l.strip_prefix("  ") {
            Some(c) if c.starts_with(['✓', '✗']) || c.starts_with("- ") => {
                checks.push(c.to_string())
            }
            // One blank line where the checklist was.
            _ if l.trim().is_empty() && rest.last().is_some_and(|r| r.trim().is_empty()) => {}
            _ => rest.push(l),
        }
    }
    (checks, rest.join("\n").trim().to_string())
}

/// What the failure pane shows: a title and the text, uncut (the pane scrolls). For the
/// step file, rustc's first error or the first step that is red, with its message
/// (tables as tables); for the whole program, the grader's report beyond its checklist.
pub fn failure(app: &App) -> Option<(String, String)> {
    if app.on_program() {
        let (_, rest) = grader_parts(app.last_verdict.as_deref()?);
        return Some(("The grader's verdict".to_string(), rest));
    }
    let report = app.last.as_ref()?;
    let (stuck, cut_short) = match &report.outcome {
        Outcome::BuildFailed {
            first_error,
            errors,
        } => {
            let title = if *errors > 1 {
                format!("does not compile: {errors} errors, the first")
            } else {
                "does not compile".to_string()
            };
            return Some((title, console::strip_ansi_codes(first_error).into_owned()));
        }
        Outcome::BuildTimedOut { after_s } => {
            return Some((
                "build stopped".to_string(),
                format!(
                    "Compiling took longer than {after_s} s and was stopped (is another cargo \
                     holding the build lock?). Save again or press r."
                ),
            ));
        }
        Outcome::Cancelled => return None,
        Outcome::Tests {
            unnamed_stuck,
            cut_short_s,
            ..
        } => (*unnamed_stuck, *cut_short_s),
    };
    let mut note = String::new();
    if stuck > 0 {
        let _ = writeln!(
            note,
            "{stuck} other test(s) had no result when the run was stopped."
        );
    }
    if let Some(after) = cut_short {
        let _ = writeln!(
            note,
            "The run was cut short after {after:.0} s: a test had no result (stuck); the other verdicts stand."
        );
    }
    let red = report.verdicts().iter().find(|v| {
        matches!(
            v.status,
            Status::Failed | Status::Stuck | Status::Crashed | Status::Missing
        ) && v.message.is_some()
    });
    match red {
        Some(v) => {
            let who = match app.kata.steps.iter().position(|s| s.test == v.test) {
                Some(i) => format!("step {} ({})", i + 1, v.test),
                None => v.test.clone(),
            };
            let word = match v.status {
                Status::Stuck => "stuck",
                Status::Crashed => "crashed",
                Status::Missing => "no such test",
                _ => "failed",
            };
            let msg = side_by_side(&tidy_failure(v.message.as_deref().unwrap_or_default()));
            Some((format!("{who} — {word}"), format!("{note}{msg}")))
        }
        None if !note.is_empty() => Some(("stuck".to_string(), note.trim_end().to_string())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_printed_as_lists_become_tables_and_left_right_goes() {
        let msg = "assertion `left == right` failed: \n\nexpected:\n\n[\n    \"+----+\",\n    \"| a  |\",\n    \"+----+\",\n]\nactual:\n\n[\n    \"+----+\",\n    \"| \\\"b\\\" |\",\n    \"+----+\",\n]\n\n\n  left: [\"+----+\", \"| a  |\", \"+----+\"]\n right: [\"+----+\", \"| \\\"b\\\" |\", \"+----+\"]\n  (at katas/batch_kata/tests/steps.rs:12:5)";
        assert_eq!(
            tidy_failure(msg),
            "expected:\n\n  +----+\n  | a  |\n  +----+\nactual:\n\n  +----+\n  | \"b\" |\n  +----+\n\n  (at katas/batch_kata/tests/steps.rs:12:5)"
        );
        // Without tables, assert_eq!'s values are the message: kept.
        let plain = "assertion `left == right` failed: sum of [1, 2]\n  left: 4\n right: 3";
        assert_eq!(tidy_failure(plain), plain);
    }

    #[test]
    fn the_status_bar_says_what_cargo_compiles_and_when_it_is_a_first_build() {
        let p = |compiled, bar, what: &str| Progress::Compiling {
            compiled,
            bar,
            what: what.into(),
        };
        assert_eq!(
            busy(false, Some(&p(2, Some((290, 292)), "batch_kata(test)"))),
            " · compiling 290/292: batch_kata(test)…"
        );
        assert_eq!(
            busy(
                false,
                Some(&p(57, Some((60, 292)), "datafusion-expr, arrow"))
            ),
            " · compiling 60/292 (first build, once): datafusion-expr…"
        );
        assert_eq!(
            busy(true, Some(&p(1, None, "grader"))),
            " · compiling grader, 1 crate(s) so far…"
        );
        assert_eq!(
            busy(false, Some(&Progress::Waiting)),
            " · waiting for another cargo to finish (build lock)…"
        );
        assert_eq!(
            busy(true, Some(&Progress::Testing)),
            " · building and grading…"
        );
        assert_eq!(busy(false, None), " · testing…");
    }

    #[test]
    fn expected_and_actual_tables_stand_side_by_side() {
        let failure = "clean kept a duplicate\nexpected:\n\n  +---+\n  | a |\n  +---+\nactual:\n\n  +----+\n  | a  |\n  | a  |\n  +----+\n\n  (at steps.rs:3:5)";
        assert_eq!(
            side_by_side(failure),
            "clean kept a duplicate\nexpected | actual\n+---+    | +----+\n| a |    | | a  |\n+---+    | | a  |\n         | +----+\n\n  (at steps.rs:3:5)"
        );
        // Without both tables, the text is left as it is.
        let plain = "expected:\n  +---+\nno table after all";
        assert_eq!(side_by_side(plain), plain);
    }

    #[test]
    fn prose_is_reflowed_and_lists_tables_and_code_are_kept() {
        let doc = "Return a context:\n- one partition\n  per core;\n- Snappy.\n\n| a | b |\n|---|---|\n\n```text\nx y\nz\n```\nA sentence\nthat goes on.";
        assert_eq!(
            reflow(doc),
            "Return a context:\n- one partition per core;\n- Snappy.\n\n| a | b |\n|---|---|\n\n```text\nx y\nz\n```\nA sentence that goes on."
        );
    }

    #[test]
    fn long_titles_lose_their_note_then_their_end() {
        assert_eq!(
            short_title(
                "Create the Kafka clients (Spark: SparkSession with the spark-sql-kafka package)",
                50
            ),
            "Create the Kafka clients"
        );
        assert_eq!(short_title("Short (kept)", 50), "Short (kept)");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("ab", 4), "ab  ");
    }
}
