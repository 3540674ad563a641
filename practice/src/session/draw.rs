//! The full screen: one pure function of the session's state, [`draw`], so the screen
//! is tested without a terminal (ratatui's `TestBackend`, see the tests below).
//!
//! ```text
//! ┌ header: kata, mode, file, the clock against the goal, hints used, what runs ┐
//! ├ the checklist (steps or grader) ┬ the contract, a hint or the keys ───────┤
//! ├ the failure: expected | actual, a panic, rustc's first error (scrolls) ───┤
//! the last thing said
//! the keys
//! ```
//!
//! Below [`WIDE`] columns the panes are stacked; below [`MIN_WIDTH`]×[`MIN_HEIGHT`] the
//! screen says it is too small (the session started on such a terminal uses the line
//! view instead).

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::{App, Pane};
use super::{keys, view};
use crate::runner::{Outcome, Status};
use crate::state::{Mode, clock};

/// The smallest terminal the full screen is drawn on.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 18;
/// From this width on, the checklist and the side pane stand side by side.
pub const WIDE: u16 = 100;
/// Step titles in the checklist get at least this many columns (more on a wide screen).
const TITLE_WIDTH: usize = 36;
/// A drill's steps that hold the learner's own code are marked so.
const YOURS: &str = " (yours)";

/// Is a terminal of this size big enough for the full screen?
pub fn fits(width: u16, height: u16) -> bool {
    width >= MIN_WIDTH && height >= MIN_HEIGHT
}

/// Draws the whole screen from the session's state.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if !fits(area.width, area.height) {
        too_small(frame, area, app);
        return;
    }
    let [header, body, notice, keybar] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);

    // A step's title gets what its row leaves of the pane (pointer, mark, number and the
    // state take 14 columns, the border 2), on a wide screen half the width.
    let room = if area.width >= WIDE {
        area.width / 2
    } else {
        area.width
    };
    let (list_title, rows) = checklist(app, usize::from(room.saturating_sub(16)).max(TITLE_WIDTH));
    let (side_title, side_text) = side(app);
    // The grader's checklist lines are long: they wrap instead of being cut.
    let list_height = |width: u16| -> u16 {
        if app.on_program() {
            let text: Vec<String> = rows.iter().map(ToString::to_string).collect();
            wrapped_height(&text.join("\n"), width.saturating_sub(2)) + 2
        } else {
            rows.len() as u16 + 2
        }
    };
    // The failure pane gets its text's height, or at least two fifths of the body; the
    // panes above get what they need of the rest.
    let failure_h = view::failure(app)
        .map_or(3, |(_, body)| body.lines().count() as u16 + 2)
        .min(body.height * 2 / 5)
        .max(3);
    let room = body.height.saturating_sub(failure_h);
    let (list, side_area, failure) = if area.width >= WIDE {
        let widest = rows.iter().map(Line::width).max().unwrap_or(0) as u16 + 2;
        let list_w = widest.clamp(30, area.width / 2);
        let side_h = wrapped_height(&side_text, area.width - list_w - 2) + 2;
        let top_h = list_height(list_w).max(side_h).max(8).min(room);
        let [top, failure] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Min(3)]).areas(body);
        let [list, side_area] =
            Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(top);
        (list, side_area, failure)
    } else {
        let list_h = list_height(area.width).min(room / 2);
        let side_h = (wrapped_height(&side_text, area.width - 2) + 2)
            .min(room.saturating_sub(list_h))
            .max(4);
        let [list, side_area, failure] = Layout::vertical([
            Constraint::Length(list_h),
            Constraint::Length(side_h),
            Constraint::Min(3),
        ])
        .areas(body);
        (list, side_area, failure)
    };
    // A short pane keeps the current step in view.
    let visible = list.height.saturating_sub(2);
    let current = if app.on_program() {
        0
    } else {
        u16::try_from(app.current_step()).unwrap_or(u16::MAX)
    };
    let offset = (current + 1).saturating_sub(visible);
    // When not every row fits, the title says which are shown.
    let total = if app.on_program() {
        0
    } else {
        u16::try_from(rows.len()).unwrap_or(u16::MAX)
    };
    let shown = window_title("", offset, visible, total, "");
    frame.render_widget(
        Paragraph::new(rows)
            .wrap(Wrap { trim: false })
            .scroll((offset, 0))
            .block(
                Block::bordered()
                    .title(list_title)
                    .title(Line::from(shown).alignment(Alignment::Right)),
            ),
        list,
    );
    draw_side(frame, side_area, app, side_title, side_text);
    draw_failure(frame, failure, app);

    let notice_style = if app.confirm_abandon {
        Style::new().yellow().bold()
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(app.notice.clone().unwrap_or_default()).style(notice_style),
        notice,
    );
    let mut bar = keys::line(app.key_context(), true);
    if app.key_context().hints() {
        bar.push_str(" · 1-9 hint N");
    }
    bar.push_str(" · ↑↓←→ scroll · Tab other pane");
    if area.width >= WIDE {
        bar.push_str(" · Esc contract");
    }
    frame.render_widget(
        Paragraph::new(format!(" {bar}")).style(Style::new().add_modifier(Modifier::REVERSED)),
        keybar,
    );
}

/// The clock against the mode's goal, one line.
fn timer(app: &App) -> Line<'static> {
    let (k, t) = (app.kata, app.elapsed());
    let vs = |label: &str, goal: f64| {
        if t <= goal {
            Span::raw(format!(
                "{label} {} ({} left)",
                clock(goal),
                clock(goal - t)
            ))
        } else {
            Span::styled(
                format!("{label} {} (+{} over)", clock(goal), clock(t - goal)),
                Style::new().red(),
            )
        }
    };
    let sep = || Span::raw(" · ");
    match app.attempt.mode {
        Mode::Interview => {
            let left = k.limit_s() - t;
            let style = if left <= 60.0 {
                Style::new().red().bold()
            } else if left <= 300.0 {
                Style::new().yellow().bold()
            } else {
                Style::new().bold()
            };
            Line::from(vec![
                Span::styled(format!("{} left", clock(left)), style),
                Span::raw(format!(" of {} (interview limit)", clock(k.limit_s()))),
            ])
        }
        Mode::Drill => Line::from(vec![
            Span::styled(format!("time {}", clock(t)), Style::new().bold()),
            sep(),
            // Numbers only: the checklist names the steps (and marks the others yours).
            Span::raw(format!(
                "drill of step{} {}",
                if app.attempt.drill.len() == 1 {
                    ""
                } else {
                    "s"
                },
                app.attempt
                    .drill
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]),
        _ => Line::from(vec![
            Span::styled(format!("time {}", clock(t)), Style::new().bold()),
            sep(),
            vs("target", k.target_s()),
            sep(),
            vs("expert", k.expert_s()),
        ]),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let (k, a) = (app.kata, &app.attempt);
    let mut first = vec![Span::raw(format!(
        "{} mode · {}",
        a.mode.as_str(),
        app.file()
    ))];
    if !app.on_program() {
        let (g, n) = app.green();
        first.push(Span::raw(format!(" · {g}/{n} green")));
        if let Some(Outcome::BuildFailed { .. }) = app.last.as_ref().map(|r| &r.outcome) {
            first.push(Span::styled(
                " · does not compile",
                Style::new().red().bold(),
            ));
        }
    }
    if a.mode == Mode::Guided {
        first.push(Span::raw(format!(" · hints {}", a.hints.len())));
    } else if app.on_program() {
        first.push(Span::raw(format!(" · graded {} time(s)", a.gradings)));
    }
    let mut second = timer(app);
    if let Some(r) = app.running() {
        let busy = view::busy(r.grading, r.progress.as_ref());
        second.push_span(Span::styled(busy, Style::new().cyan()));
    }
    let title = Line::from(vec![
        Span::raw(" "),
        Span::styled(k.name.clone(), Style::new().bold()),
        Span::raw(format!(" — {} ", k.title)),
    ]);
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), second]).block(Block::bordered().title(title)),
        area,
    );
}

/// The checklist pane: its title and rows. The step file: each step's state, its split
/// once it passed, the step worked on marked; the whole program: the grader's checklist.
fn checklist(app: &App, title_width: usize) -> (String, Vec<Line<'static>>) {
    if app.on_program() {
        let rows = match app.last_verdict.as_deref() {
            Some(report) => view::grader_parts(report)
                .0
                .into_iter()
                .map(|c| {
                    let style = match c.chars().next() {
                        Some('✓') => Style::new().green(),
                        Some('✗') => Style::new().red(),
                        _ => Style::new().dim(),
                    };
                    Line::styled(format!(" {c}"), style)
                })
                .collect(),
            None => vec![
                Line::raw(" No grading yet."),
                Line::raw(" Write the whole program, then press g:"),
                Line::raw(" it is built and run on fresh data."),
            ],
        };
        return (" The grader's checklist ".to_string(), rows);
    }
    let k = app.kata;
    let report = app.last_tests.as_ref();
    let not_compiling = matches!(
        app.last.as_ref().map(|r| &r.outcome),
        Some(Outcome::BuildFailed { .. } | Outcome::BuildTimedOut { .. })
    );
    let current = app.current_step();
    let width = k
        .steps
        .iter()
        .map(|s| console::measure_text_width(view::short_title(&s.title, title_width)))
        .max()
        .unwrap_or(10)
        .min(title_width)
        + if app.attempt.mode == Mode::Drill {
            YOURS.len()
        } else {
            0
        };
    let mut rows = Vec::new();
    for (i, s) in k.steps.iter().enumerate() {
        let verdict = report.and_then(|r| r.verdicts().iter().find(|v| v.test == s.test));
        let (mark, word, style) = match verdict.map(|v| v.status) {
            Some(Status::Passed) => {
                let split = app
                    .attempt
                    .splits
                    .iter()
                    .find(|x| x.test == s.test)
                    .map(|x| clock(x.at_s))
                    .unwrap_or_else(|| "passing".to_string());
                ("✓", split, Style::new().green())
            }
            Some(Status::Failed) => ("✗", "failed".into(), Style::new().red()),
            Some(Status::Todo) => ("○", "todo".into(), Style::new()),
            Some(Status::Stuck) => ("!", "stuck".into(), Style::new().red()),
            Some(Status::Crashed) => ("!", "crashed".into(), Style::new().red()),
            Some(Status::Missing) => ("?", "no test".into(), Style::new().yellow()),
            Some(Status::Ignored) => ("-", "ignored".into(), Style::new().dim()),
            None => ("·", "…".into(), Style::new().dim()),
        };
        let style = if not_compiling { style.dim() } else { style };
        let pointer = if i == current && !report.is_some_and(|r| r.all_passed()) {
            "▸"
        } else {
            " "
        };
        let drill = if app.attempt.mode == Mode::Drill && !app.attempt.drill.contains(&(i + 1)) {
            YOURS
        } else {
            ""
        };
        let title = view::short_title(&s.title, width);
        let title = view::fit(&format!("{title}{drill}"), width);
        let mut line = Line::from(vec![
            Span::raw(pointer),
            Span::styled(format!("{mark} {:>2} ", i + 1), style),
            Span::raw(title),
            Span::styled(format!(" {word:>7}"), style),
        ]);
        if i == current {
            line = line.bold();
        }
        rows.push(line);
    }
    // The other tests (`end_to_end`).
    if let Some(r) = report {
        for v in r
            .verdicts()
            .iter()
            .filter(|v| !k.steps.iter().any(|s| s.test == v.test))
        {
            let (mark, word, style) = match v.status {
                Status::Passed => ("✓", "passing", Style::new().green()),
                Status::Todo => ("○", "todo", Style::new()),
                Status::Ignored => ("-", "ignored", Style::new().dim()),
                _ => ("✗", "failed", Style::new().red()),
            };
            rows.push(Line::from(vec![
                Span::styled(format!(" {mark}    "), style),
                Span::raw(view::fit(&v.test, width)),
                Span::styled(format!(" {word:>7}"), style),
            ]));
        }
    }
    let title = if not_compiling {
        " Steps (last run that compiled) "
    } else {
        " Steps "
    };
    (title.to_string(), rows)
}

/// The side pane's title and text: a hint, the keys, or the contract (the statement).
pub(super) fn side(app: &App) -> (String, String) {
    match app.pane {
        Pane::Hint(i) => {
            let step = &app.kata.steps[i];
            let hint = step.hint.as_deref().map_or_else(
                || "(kata.toml has no hint for this step)".to_string(),
                |h| view::reflow(h.trim()),
            );
            (
                format!(" Hint — step {} (counted) ", i + 1),
                format!(
                    "{}

{hint}",
                    step.title
                ),
            )
        }
        Pane::Help => (
            " Keys ".to_string(),
            keys::help(app.key_context(), app.keys)
                + "  ↑ ↓ PgUp PgDn Home  scroll the failure pane\n"
                + "  Tab        the scroll keys move the other pane (this one)\n"
                + "  ← →        sideways, for wide tables\n"
                + "  Esc        back to the contract\n",
        ),
        Pane::Contract if app.on_program() => (
            " The problem ".to_string(),
            view::reflow(app.contract.as_deref().unwrap_or_default()),
        ),
        Pane::Contract => (
            " The step's contract ".to_string(),
            view::reflow(app.contract.as_deref().unwrap_or_default()),
        ),
    }
}

/// How many lines `text` takes wrapped at `width` columns, as the panes wrap it
/// (ratatui's own count: word wrapping takes more lines than characters ÷ width).
pub(super) fn wrapped_height(text: &str, width: u16) -> u16 {
    let lines = Paragraph::new(text)
        .wrap(Wrap { trim: false })
        .line_count(width.max(1));
    u16::try_from(lines).unwrap_or(u16::MAX)
}

/// A pane's title when not all of its `total` rows fit in `visible` from `first` (counted
/// from 0): ` {what}a-b of {total}{more} `; empty when they all fit.
fn window_title(what: &str, first: u16, visible: u16, total: u16, more: &str) -> String {
    if total > visible {
        format!(
            " {what}{}-{} of {total}{more} ",
            first + 1,
            (first + visible).min(total)
        )
    } else {
        String::new()
    }
}

/// The side pane, scrolled (after Tab) when its text is longer than the pane; its
/// title says so.
fn draw_side(frame: &mut Frame, area: Rect, app: &App, title: String, text: String) {
    let total = wrapped_height(&text, area.width.saturating_sub(2));
    let inner = area.height.saturating_sub(2);
    let top = app.side_scroll.min(total.saturating_sub(inner));
    let more = if app.side_focus {
        ""
    } else {
        " · Tab to scroll"
    };
    let position = window_title("lines ", top, inner, total, more);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((top, 0))
            .block(
                Block::bordered()
                    .border_style(focus_style(app.side_focus))
                    .title(title)
                    .title(Line::from(position).alignment(Alignment::Right)),
            ),
        area,
    );
}

/// The border of the pane the scroll keys move.
fn focus_style(focused: bool) -> Style {
    if focused {
        Style::new().cyan().bold()
    } else {
        Style::new()
    }
}

fn draw_failure(frame: &mut Frame, area: Rect, app: &App) {
    let Some((title, body)) = view::failure(app) else {
        let text = if app.on_program() {
            "Press g to grade your program: the verdict's details show here.".to_string()
        } else if app.running().is_some() && app.last.is_none() {
            "The first test run is on its way.".to_string()
        } else if let Some(last) = &app.last {
            let i = app.current_step();
            let step = app.kata.steps.get(i);
            let title = view::short_title(step.map_or("", |s| s.title.as_str()), TITLE_WIDTH);
            let todo = step.is_some_and(|s| {
                last.verdicts()
                    .iter()
                    .any(|v| v.test == s.test && v.status == Status::Todo)
            });
            if todo {
                format!(
                    "Step {} — {title} is still todo!(): write it from its contract (beside); \
                     each save runs the tests.",
                    i + 1
                )
            } else {
                format!(
                    "Nothing failed in the last run. Next: step {} — {title}.",
                    i + 1
                )
            }
        } else {
            "No test run yet: save the file or press r.".to_string()
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(Style::new().dim())
                .block(Block::bordered().title(" Failure ")),
            area,
        );
        return;
    };
    let lines = failure_lines(&body);
    let total = lines.len() as u16;
    let inner = area.height.saturating_sub(2);
    let top = app.scroll.0.min(total.saturating_sub(inner));
    // Sideways no further than the widest line's end at the pane's right edge.
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let widest = u16::try_from(widest).unwrap_or(u16::MAX);
    let left = app
        .scroll
        .1
        .min(widest.saturating_sub(area.width.saturating_sub(2)));
    let position = window_title("lines ", top, inner, total, "");
    let block = Block::bordered()
        .border_style(focus_style(!app.side_focus))
        .title(Line::from(vec![
            Span::raw(" "),
            Span::styled(title, Style::new().red().bold()),
            Span::raw(" "),
        ]))
        .title(Line::from(position).alignment(Alignment::Right));
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .scroll((top, left))
            .block(block),
        area,
    );
}

/// The failure pane's lines, styled: headings bold, errors red, and in an
/// `expected | actual` table ([`view::side_by_side`]) the rows that one table has and
/// the other has not (compared as multisets, as the sorted tables are) in red.
pub fn failure_lines(body: &str) -> Vec<Line<'static>> {
    let lines: Vec<&str> = body.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let t = line.trim_start();
        let width = line
            .strip_suffix(" | actual")
            .filter(|left| left.trim_end() == "expected")
            .map(console::measure_text_width);
        if let Some(width) = width {
            let rows: Vec<(&str, &str)> = lines[i..]
                .iter()
                .map_while(|row| split_at_column(row, width))
                .collect();
            i += rows.len();
            out.push(Line::styled(line.to_string(), Style::new().bold()));
            out.extend(table_rows(&rows));
        } else if t.starts_with("expected") || t.starts_with("actual") || t.starts_with("──") {
            out.push(Line::styled(line.to_string(), Style::new().bold()));
        } else if t.starts_with("error") || t.starts_with("FAIL") {
            out.push(Line::styled(line.to_string(), Style::new().red().bold()));
        } else {
            out.push(Line::raw(line.to_string()));
        }
    }
    out
}

/// `left | right` cut where `left` (padded to `width` columns) ends; `None` for a line
/// that is not a row of the side-by-side table.
fn split_at_column(row: &str, width: usize) -> Option<(&str, &str)> {
    let mut columns = 0;
    let at = row
        .char_indices()
        .find(|&(_, c)| {
            let before = columns;
            columns += console::measure_text_width(c.encode_utf8(&mut [0; 4]));
            before == width
        })
        .map_or(row.len(), |(at, _)| at);
    let (left, rest) = row.split_at(at);
    let right = rest.strip_prefix(" |")?;
    Some((left, right.strip_prefix(' ').unwrap_or(right)))
}

/// The rows of the side-by-side table, a row red when the other table lacks it.
fn table_rows(rows: &[(&str, &str)]) -> Vec<Line<'static>> {
    let expected: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let actual: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let red_left = unmatched(&expected, &actual);
    let red_right = unmatched(&actual, &expected);
    let styled = |cell: &str, red: bool| {
        if red {
            Span::styled(cell.to_string(), Style::new().red())
        } else {
            Span::raw(cell.to_string())
        }
    };
    rows.iter()
        .zip(red_left.into_iter().zip(red_right))
        .map(|(&(left, right), (red_left, red_right))| {
            let mut spans = vec![styled(left, red_left), Span::raw(" |")];
            if !right.is_empty() {
                spans.push(Span::raw(" "));
                spans.push(styled(right, red_right));
            }
            Line::from(spans)
        })
        .collect()
}

/// For each of `mine`'s cells: is it a table row that `theirs` has no (more) copy of?
fn unmatched(mine: &[&str], theirs: &[&str]) -> Vec<bool> {
    let is_row = |cell: &str| cell.trim_start().starts_with('|');
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for cell in theirs.iter().filter(|c| is_row(c)) {
        *copies.entry(cell.trim()).or_default() += 1;
    }
    mine.iter()
        .map(|cell| {
            is_row(cell)
                && match copies.get_mut(cell.trim()) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                }
        })
        .collect()
}

fn too_small(frame: &mut Frame, area: Rect, app: &App) {
    let text = format!(
        "The terminal is {}×{}: the screen needs {MIN_WIDTH}×{MIN_HEIGHT}. \
         Enlarge it, or pause (p) and go on with --plain for the line view. \
         The clock runs: {}.",
        area.width,
        area.height,
        clock(app.elapsed())
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

#[cfg(test)]
mod tests;
