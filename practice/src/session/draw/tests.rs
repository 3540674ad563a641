//! The full screen after given events, drawn on ratatui's `TestBackend` and compared
//! with reviewed snapshots. The session runs no tests here: its runs are registered
//! (`without_jobs`) and their reports handed to it, and its clock is set by hand, so
//! every screen is the same on every run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tempfile::TempDir;

use super::draw;
use crate::Ctx;
use crate::grade::{Graded, Verdict};
use crate::kata::{Catalog, Kata};
use crate::runner::{Outcome, Report, Status, Verdict as StepVerdict};
use crate::session::app::{App, Pane};
use crate::session::input::{Input, Scroll};
use crate::session::{Event, view};
use crate::state::{Attempt, Mode, Practice, PracticeFile};

const KATA: &str = r#"
name = "toy"
crate = "toy_kata"
title = "Toy ETL: CSV -> Parquet"
timed_target_min = 15
expert_min = 10
interview_limit_min = 20

[[steps]]
test = "step_01_read_orders"
function = "read_orders"
title = "Read the orders"
hint = "ctx.read_csv(path, CsvReadOptions::new().schema(&schema)).await"

[[steps]]
test = "step_02_clean"
function = "clean"
title = "Drop duplicates and nulls"
hint = "df.distinct()?, then a filter that keeps rows where every column is not null."

[[steps]]
test = "step_03_total"
function = "total_per_customer"
title = "Total per customer"
hint = "df.aggregate(vec![col(\"customer_id\")], vec![sum(col(\"amount\")).alias(\"total\")])"

[program]
file = "program/src/main.rs"
grade = ["true"]
"#;

const LIB_RS: &str = r#"//! The toy kata.

/// Step 1: read the orders.
///
/// Spark: `spark.read.schema(schema).csv(path)`
///
/// Return the orders of `path` with the schema `order_id: Utf8, customer_id: Utf8,
/// amount: Decimal128(10, 2)`.
pub async fn read_orders(ctx: &SessionContext, path: &str) -> Result<DataFrame> {
    todo!("step 1: read_orders")
}

/// Step 2: drop duplicates and nulls.
///
/// Spark: `df.dropDuplicates().dropna()`
///
/// Return `df` without identical duplicate rows (one copy kept) and without rows that
/// have a null in any column.
pub fn clean(df: DataFrame) -> Result<DataFrame> {
    todo!("step 2: clean")
}

/// Step 3: the total per customer.
///
/// Spark: `df.groupBy("customer_id").agg(sum("amount").alias("total"))`
#[allow(unused)]
pub fn total_per_customer(df: DataFrame) -> Result<DataFrame> {
    todo!("step 3: total_per_customer")
}
"#;

const PROGRAM_RS: &str = "//! # Toy ETL, from a blank file\n//!\n//! Read `orders.csv`, drop duplicates and nulls, write the total per customer as\n//! Parquet to `--output`.\n\nfn main() {}\n";

/// What `clean` returned in the failing run: a table printed by `assert_batches_eq!`.
const CLEAN_FAILURE: &str = "assertion `left == right` failed: \n\nexpected:\n\n[\n    \"+----------+-------------+--------+\",\n    \"| order_id | customer_id | amount |\",\n    \"+----------+-------------+--------+\",\n    \"| O1       | C1          | 10.00  |\",\n    \"| O2       | C2          | 5.50   |\",\n    \"+----------+-------------+--------+\",\n]\nactual:\n\n[\n    \"+----------+-------------+--------+\",\n    \"| order_id | customer_id | amount |\",\n    \"+----------+-------------+--------+\",\n    \"| O1       | C1          | 10.00  |\",\n    \"| O1       | C1          | 10.00  |\",\n    \"| O2       | C2          | 5.50   |\",\n    \"| O3       |             | 7.25   |\",\n    \"+----------+-------------+--------+\",\n]\n\n  left: [\"+----------+\"]\n right: [\"+----------+\"]\n  (at katas/toy_kata/tests/steps.rs:41:5)";

struct Toy {
    _dir: TempDir,
    ctx: Ctx,
    kata: Kata,
}

impl Toy {
    fn new() -> Toy {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx {
            repo: dir.path().to_path_buf(),
            catalog: Catalog::default(),
            practice: Practice::new(dir.path()),
            stdin_tty: true,
            stdout_tty: true,
            plain: false,
        };
        let mut kata: Kata = toml::from_str(KATA).unwrap();
        kata.dir = dir.path().join("katas/toy_kata");
        std::fs::create_dir_all(kata.dir.join("src")).unwrap();
        std::fs::create_dir_all(kata.dir.join("program/src")).unwrap();
        std::fs::write(kata.dir.join("src/lib.rs"), LIB_RS).unwrap();
        std::fs::write(kata.dir.join("program/src/main.rs"), PROGRAM_RS).unwrap();
        Toy {
            _dir: dir,
            ctx,
            kata,
        }
    }

    /// A session begun at 00:00 whose runs are registered, never started.
    fn begin(&self, mode: Mode, file: PracticeFile) -> App<'_> {
        let (tx, _rx) = mpsc::channel();
        let attempt = Attempt::new("toy", mode, file);
        let mut app = App::new(&self.ctx, &self.kata, attempt, tx, true);
        app.without_jobs();
        app.set_clock(0.0);
        app.begin();
        app
    }

    /// The learner saves new content at `at_s`: the session starts a run.
    fn save(&self, app: &mut App, at_s: f64, edit: &str) {
        app.set_clock(at_s);
        let lib = self.kata.dir.join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap() + edit;
        std::fs::write(&lib, text).unwrap();
        app.on_event(Event::Changed).unwrap();
    }
}

fn verdict(test: &str, status: Status, message: Option<&str>) -> StepVerdict {
    StepVerdict {
        test: test.to_string(),
        status,
        message: message.map(str::to_string),
        at_s: (status == Status::Passed).then_some(0.4),
    }
}

fn tests(verdicts: Vec<StepVerdict>) -> Report {
    Report {
        outcome: Outcome::Tests {
            verdicts,
            unnamed_stuck: 0,
            cut_short_s: None,
        },
        took: Duration::from_millis(1300),
        log: PathBuf::from(".practice/last-run.log"),
    }
}

/// The run in progress finishes with `report`, at `at_s`.
fn finish_run(app: &mut App, at_s: f64, report: Report) -> Option<ExitCode> {
    app.set_clock(at_s);
    let id = app.running().expect("a run in progress").id;
    app.on_event(Event::Ran(id, Ok(report))).unwrap()
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, app)).unwrap();
    terminal.backend().to_string()
}

/// Does the README's section on `cargo practice` show this screen (as plain text)?
fn readme_shows(screen: &str) -> bool {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let text: Vec<&str> = screen
        .lines()
        .map(|l| {
            l.strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .unwrap_or(l)
                .trim_end()
        })
        .collect();
    readme.contains(&format!("```text\n{}\n```", text.join("\n")))
}

fn todo(n: usize) -> String {
    format!("step {n}: todo")
}

/// Guided mode, as a learner goes: the start, a save that fails step 2, its hint, a
/// save that passes it, and the same screen on a small and a large terminal.
#[test]
fn the_guided_screen_after_each_event() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    insta::assert_snapshot!("start", screen(&app, 120, 34));

    // The first run: every step todo.
    let first = tests(vec![
        verdict("step_01_read_orders", Status::Todo, Some(&todo(1))),
        verdict("step_02_clean", Status::Todo, Some(&todo(2))),
        verdict("step_03_total", Status::Todo, Some(&todo(3))),
    ]);
    assert_eq!(finish_run(&mut app, 4.0, first), None);

    // Step 1 written, step 2 wrong: the failure pane shows expected | actual.
    toy.save(&mut app, 95.0, "// step 1 and a wrong step 2\n");
    let failing = tests(vec![
        verdict("step_01_read_orders", Status::Passed, None),
        verdict("step_02_clean", Status::Failed, Some(CLEAN_FAILURE)),
        verdict("step_03_total", Status::Todo, Some(&todo(3))),
    ]);
    assert_eq!(finish_run(&mut app, 97.0, failing), None);
    app.set_clock(101.0);
    let shot = screen(&app, 120, 34);
    insta::assert_snapshot!("failing_save", shot);
    assert!(
        readme_shows(&shot),
        "README.md's screenshot of the screen is no longer this snapshot: copy it from \
         practice/src/session/draw/snapshots/practice__session__draw__tests__failing_save.snap"
    );

    // A hint, for the step worked on: counted, and shown in the side pane.
    app.on_event(Event::Input(Input::Key('h'))).unwrap();
    assert_eq!(app.pane, Pane::Hint(1));
    assert_eq!(app.attempt.hints, vec![2]);
    app.set_clock(130.0);
    insta::assert_snapshot!("hint", screen(&app, 120, 34));

    // Step 2 fixed: its split is taken, the hint gives way to step 3's contract.
    toy.save(&mut app, 200.0, "// step 2 fixed\n");
    let passing = tests(vec![
        verdict("step_01_read_orders", Status::Passed, None),
        verdict("step_02_clean", Status::Passed, None),
        verdict("step_03_total", Status::Todo, Some(&todo(3))),
    ]);
    assert_eq!(finish_run(&mut app, 202.0, passing), None);
    assert_eq!(app.pane, Pane::Contract);
    app.set_clock(205.0);
    insta::assert_snapshot!("passing_save", screen(&app, 120, 34));

    // The terminal resized: stacked panes when narrow, more room when large, a note
    // when too small to draw.
    insta::assert_snapshot!("resize_small", screen(&app, 72, 26));
    insta::assert_snapshot!("resize_large", screen(&app, 150, 42));
    insta::assert_snapshot!("resize_too_small", screen(&app, 50, 12));
}

/// Hints by digit: a digit is easily hit by accident, and a hint is counted.
#[test]
fn a_digit_spends_a_hint_only_when_pressed_twice() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    // Step 3's hint is spent on the second 3 only, and any other key between the two
    // cancels it. A hint already spent shows at once.
    app.on_event(Event::Input(Input::Key('3'))).unwrap();
    assert!(app.attempt.hints.is_empty(), "one 3 spends nothing");
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("Press 3 again")),
        "{:?}",
        app.notice
    );
    app.on_event(Event::Input(Input::Key('s'))).unwrap();
    app.on_event(Event::Input(Input::Key('3'))).unwrap();
    assert!(
        app.attempt.hints.is_empty(),
        "another key in between cancels"
    );
    app.on_event(Event::Input(Input::Key('3'))).unwrap();
    assert_eq!(app.attempt.hints, vec![3]);
    assert_eq!(app.pane, Pane::Hint(2));
    app.on_event(Event::Input(Input::Key('1'))).unwrap();
    app.on_event(Event::Input(Input::Key('3'))).unwrap();
    assert_eq!(
        app.pane,
        Pane::Hint(2),
        "a spent hint shows at the first press"
    );
    assert_eq!(app.attempt.hints, vec![3]);
}

/// A save that does not compile: rustc's first error in the failure pane, the steps
/// as the last run that compiled left them.
#[test]
fn a_save_that_does_not_compile_shows_rustcs_first_error() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Timed, PracticeFile::Steps);
    let first = tests(vec![
        verdict("step_01_read_orders", Status::Passed, None),
        verdict("step_02_clean", Status::Todo, Some(&todo(2))),
        verdict("step_03_total", Status::Todo, Some(&todo(3))),
    ]);
    finish_run(&mut app, 40.0, first);
    toy.save(&mut app, 70.0, "// a typo\n");
    let broken = Report {
        outcome: Outcome::BuildFailed {
            first_error: "error[E0425]: cannot find value `dff` in this scope\n  --> katas/toy_kata/src/lib.rs:21:5\n   |\n21 |     dff.distinct()\n   |     ^^^ help: a local variable with a similar name exists: `df`".to_string(),
            errors: 2,
        },
        took: Duration::from_millis(900),
        log: PathBuf::from(".practice/last-run.log"),
    };
    finish_run(&mut app, 71.0, broken);
    app.set_clock(75.0);
    insta::assert_snapshot!("does_not_compile", screen(&app, 100, 26));
}

#[test]
fn a_practice_file_moved_away_mid_save_is_not_tested_until_it_is_back() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    finish_run(&mut app, 40.0, tests(vec![]));
    // An editor moved lib.rs away (its backup) and has not written the new one yet.
    let lib = toy.kata.dir.join("src/lib.rs");
    let backup = toy.kata.dir.join("src/lib.rs~");
    std::fs::rename(&lib, &backup).unwrap();
    app.on_event(Event::Changed).unwrap();
    assert!(app.running().is_none(), "a run started without lib.rs");
    std::fs::copy(&backup, &lib).unwrap();
    toy.save(&mut app, 50.0, "// the save\n");
    assert!(app.running().is_some(), "the save did not start a run");
}

/// A failure longer than its pane scrolls; the title says which lines show.
#[test]
fn the_failure_pane_scrolls_within_its_text() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Timed, PracticeFile::Steps);
    let long: String = (1..=60).map(|i| format!("line {i}\n")).collect();
    let report = tests(vec![verdict(
        "step_01_read_orders",
        Status::Failed,
        Some(&long),
    )]);
    finish_run(&mut app, 30.0, report);
    let top = screen(&app, 120, 30);
    assert!(
        top.contains("lines 1-") && top.contains("│line 1 "),
        "{top}"
    );
    for _ in 0..2 {
        app.on_event(Event::Input(Input::Scroll(Scroll::PageDown)))
            .unwrap();
    }
    app.on_event(Event::Input(Input::Scroll(Scroll::Down)))
        .unwrap();
    let down = screen(&app, 120, 30);
    assert!(
        down.contains("lines 22-") && down.contains("│line 22 "),
        "{down}"
    );
    assert!(!down.contains("│line 1 "), "{down}");
    // Never past the end.
    for _ in 0..20 {
        app.on_event(Event::Input(Input::Scroll(Scroll::PageDown)))
            .unwrap();
    }
    assert_eq!(app.scroll.0, 59);
    assert!(screen(&app, 120, 30).contains("│line 60 "));
    app.on_event(Event::Input(Input::Scroll(Scroll::Top)))
        .unwrap();
    assert_eq!(app.scroll, (0, 0));
}

/// Sideways, the failure pane stops where its widest line ends at the right edge.
#[test]
fn the_failure_pane_scrolls_sideways_no_further_than_its_widest_line() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Timed, PracticeFile::Steps);
    let wide = format!("start{}end", "-".repeat(200));
    let report = tests(vec![verdict(
        "step_01_read_orders",
        Status::Failed,
        Some(&wide),
    )]);
    finish_run(&mut app, 30.0, report);
    assert!(screen(&app, 120, 30).contains("│start---"));
    for _ in 0..100 {
        app.on_event(Event::Input(Input::Scroll(Scroll::Right)))
            .unwrap();
    }
    let right = screen(&app, 120, 30);
    assert!(right.contains("---end│"), "{right}");
}

/// On the smallest screen the step list is short: it scrolls to keep the current step
/// in view.
#[test]
fn a_short_step_list_keeps_the_current_step_in_view() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    let report = tests(vec![
        verdict("step_01_read_orders", Status::Passed, None),
        verdict("step_02_clean", Status::Passed, None),
        verdict("step_03_total", Status::Failed, Some("wrong total")),
    ]);
    finish_run(&mut app, 90.0, report);
    let small = screen(&app, 60, 18);
    assert!(small.contains("3 Total per customer"), "{small}");
    // The title says that not every step is shown, and which are.
    assert!(small.contains(" 2-3 of 3 ┐"), "{small}");
    assert!(!screen(&app, 120, 34).contains(" of 3 ┐"));
}

/// A contract longer than its pane says so in its title, and scrolls after Tab (the
/// scroll keys then move it, not the failure pane); another pane starts at its top.
#[test]
fn the_side_pane_scrolls_after_tab() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    app.contract = Some((1..=40).map(|i| format!("rule {i}\n\n")).collect());
    let top = screen(&app, 120, 30);
    assert!(
        top.contains("Tab to scroll") && top.contains("│rule 1 "),
        "{top}"
    );
    app.on_event(Event::Input(Input::SwitchPane)).unwrap();
    for _ in 0..3 {
        app.on_event(Event::Input(Input::Scroll(Scroll::Down)))
            .unwrap();
    }
    let down = screen(&app, 120, 30);
    assert!(
        down.contains("lines 4-") && down.contains("│rule 3 ") && !down.contains("│rule 2 "),
        "{down}"
    );
    assert_eq!(app.scroll, (0, 0), "the failure pane did not move");
    // Never past the end: the last rule shows.
    for _ in 0..10 {
        app.on_event(Event::Input(Input::Scroll(Scroll::PageDown)))
            .unwrap();
    }
    assert!(screen(&app, 120, 30).contains("│rule 40 "));
    // The keys (?) start at their top; Tab gives the arrows back to the failure pane.
    app.on_event(Event::Input(Input::Key('?'))).unwrap();
    assert_eq!(app.side_scroll, 0);
    app.on_event(Event::Input(Input::SwitchPane)).unwrap();
    assert!(!app.side_focus);
}

/// An interview on the blank program: the limit counts down, the statement is the side
/// pane, a grading's checklist is the checklist and its details the failure pane.
#[test]
fn the_interview_screen_shows_the_graders_checklist() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Interview, PracticeFile::Program);
    app.set_clock(61.0);
    app.on_event(Event::Input(Input::Key('g'))).unwrap();
    let id = app.running().expect("a grading").id;
    app.set_clock(9.0 * 60.0 + 30.0);
    let report = "Grading the toy program\n  seed 7 (--seed 7 replays this data)\n\n  \
        ✓ compiles: main.rs\n  ✓ runs: exited 0 in 0.19 s\n  ✗ clean: 3 duplicate orders kept in the output (no dropDuplicates: identical rows are kept once, as Spark's dropDuplicates() keeps them)\n  \
        - total: not checked\n\n── clean ──\nexpected | actual\n| O1 | C1 | 10.00 | | | O1 | C1 | 10.00 |\n\
        |    |    |       | | | O1 | C1 | 10.00 |\n\nFAIL: 1 of 3 checks failed (1 not run)";
    let graded = Graded {
        verdict: Verdict::Failed,
        report: report.to_string(),
        took: Duration::from_millis(3100),
    };
    assert_eq!(app.on_event(Event::Graded(id, Ok(graded))).unwrap(), None);
    insta::assert_snapshot!("interview_graded", screen(&app, 120, 30));
}

/// Ctrl-C on the full screen is a key (raw mode): it pauses the attempt as the signal
/// does in the line view.
#[test]
fn ctrl_c_on_the_full_screen_pauses_the_attempt() {
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Guided, PracticeFile::Steps);
    app.set_clock(42.0);
    let code = app.on_event(Event::Input(Input::Interrupt)).unwrap();
    assert_eq!(code, Some(ExitCode::from(130)));
    let saved = toy.ctx.practice.load_current().unwrap().unwrap();
    assert_eq!((saved.elapsed_s, saved.resumed, saved.pid), (42.0, 1, None));
    assert!(toy.ctx.practice.current_path().is_file());
}

#[test]
fn the_contract_is_the_doc_comment_above_the_function() {
    assert_eq!(
        view::doc_comment(LIB_RS, "total_per_customer").as_deref(),
        Some(
            "Step 3: the total per customer.\n\nSpark: `df.groupBy(\"customer_id\").agg(sum(\"amount\").alias(\"total\"))`"
        )
    );
    assert_eq!(view::doc_comment(LIB_RS, "clea"), None);
    assert_eq!(
        view::statement(PROGRAM_RS),
        "# Toy ETL, from a blank file\n\nRead `orders.csv`, drop duplicates and nulls, write the total per customer as\nParquet to `--output`."
    );
}

/// A drill: the clock and the drilled steps in the header; the steps that hold the
/// learner's own code are marked as theirs.
#[test]
fn the_drill_screen_names_the_drilled_steps_and_marks_the_others_as_yours() {
    let toy = Toy::new();
    let (tx, _rx) = mpsc::channel();
    let mut attempt = Attempt::new("toy", Mode::Drill, PracticeFile::Steps);
    attempt.drill = vec![2];
    let mut app = App::new(&toy.ctx, &toy.kata, attempt, tx, true);
    app.without_jobs();
    app.set_clock(0.0);
    app.begin();
    let run = tests(vec![
        verdict("step_01_read_orders", Status::Passed, None),
        verdict("step_02_clean", Status::Todo, Some(&todo(2))),
        verdict("step_03_total", Status::Passed, None),
    ]);
    finish_run(&mut app, 3.0, run);
    let text = screen(&app, 120, 30);
    assert!(text.contains("│time 00:03 · drill of step 2  "), "{text}");
    for row in [
        "│ ✓  1 Read the orders (yours)           passing│",
        "│▸○  2 Drop duplicates and nulls            todo│",
        "│ ✓  3 Total per customer (yours)        passing│",
    ] {
        assert!(text.contains(row), "{row} in\n{text}");
    }
    // Splits are taken for drilled steps only: the others show as passing.
    assert!(app.attempt.splits.is_empty());
}

/// In `expected | actual`, a row is red where the other table has no copy of it: here
/// the duplicate O1 and the O3 with a null, which `clean` should have dropped.
#[test]
fn rows_one_table_lacks_are_red() {
    let body = view::side_by_side(&view::tidy_failure(CLEAN_FAILURE));
    let red = |span: &ratatui::text::Span| span.style.fg == Some(ratatui::style::Color::Red);
    let marked: Vec<String> = super::failure_lines(&body)
        .iter()
        .flat_map(|line| line.spans.iter().filter(|s| red(s)))
        .map(|span| span.content.trim().to_string())
        .collect();
    assert_eq!(
        marked,
        [
            "| O1       | C1          | 10.00  |",
            "| O3       |             | 7.25   |"
        ],
        "{body}"
    );
    // The text itself is the same as the plain view's.
    let text: Vec<String> = super::failure_lines(&body)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(text.join("\n"), body);
}

/// The first build (the dependencies, minutes, once) is not the learner's time: the
/// clock holds from the start of that run until its tests run, then goes on.
#[test]
fn the_clock_waits_for_the_first_build() {
    use crate::runner::Progress;
    let toy = Toy::new();
    let mut app = toy.begin(Mode::Timed, PracticeFile::Steps);
    let id = app.running().expect("the first run").id;
    let compiling = |compiled: usize| Progress::Compiling {
        compiled,
        bar: Some((compiled, 300)),
        what: "datafusion".into(),
    };
    app.set_clock(12.0);
    app.on_event(Event::Progress(id, compiling(3))).unwrap();
    assert_eq!(
        app.elapsed(),
        12.0,
        "a few crates: not yet known to be a first build"
    );
    app.on_event(Event::Progress(id, compiling(40))).unwrap();
    assert_eq!(app.elapsed(), 0.0, "held from the start of the run");
    app.set_clock(150.0);
    assert_eq!(app.elapsed(), 0.0);
    app.on_event(Event::Progress(id, Progress::Testing))
        .unwrap();
    app.set_clock(160.0);
    assert_eq!(app.elapsed(), 10.0, "on again once the tests run");
    let report = tests(vec![verdict(
        "step_01_read_orders",
        Status::Todo,
        Some(&todo(1)),
    )]);
    finish_run(&mut app, 170.0, report);
    assert_eq!(app.elapsed(), 20.0);
    // A later build of the kata alone does not hold the clock.
    toy.save(&mut app, 200.0, "// step 1\n");
    let id = app.running().expect("a run").id;
    app.on_event(Event::Progress(id, compiling(1))).unwrap();
    app.set_clock(210.0);
    assert_eq!(app.elapsed(), 60.0);
}

/// A long step title gets the room the screen has: whole on a wide terminal, cut (with
/// its end marked) on a narrow one.
#[test]
fn long_step_titles_use_the_width_there_is() {
    let mut toy = Toy::new();
    let long = "Total per customer, the orders of unknown customers kept";
    toy.kata.steps[2].title = long.to_string();
    let app = toy.begin(Mode::Guided, PracticeFile::Steps);
    assert!(screen(&app, 150, 40).contains(long));
    let narrow = screen(&app, 100, 40);
    assert!(!narrow.contains(long), "{narrow}");
    assert!(narrow.contains("Total per customer"), "{narrow}");
}
