//! A practice session (guided, timed or interview): the timer, the watcher that reruns
//! the step tests on every save, the checklist, hints, grading, pause and abandon.
//!
//! Everything arrives as an event on one channel (keys or lines, file changes, finished
//! test runs); the loop ticks five times a second to redraw the timer, end an interview
//! at its limit, notice Ctrl-C and save the attempt every few seconds.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use console::style;

use crate::Ctx;
use crate::grade::{self, Graded, Verdict};
use crate::kata::Kata;
use crate::process::{Cancel, Output};
use crate::reset;
use crate::runner::{Outcome, Report, Status, StepRunner};
use crate::signals;
use crate::state::{Attempt, AttemptResult, Mode, PracticeFile, Split, clock};
use crate::ui::{self, Input, KeyMode, Screen};

const TICK: Duration = Duration::from_millis(200);
const SAVE_EVERY: Duration = Duration::from_secs(5);
const DEBOUNCE: Duration = Duration::from_millis(300);

enum Event {
    Input(Input),
    Changed,
    WatchFailed(String),
    Ran(u64, Result<Report>),
    Graded(u64, Result<Graded>),
}

enum Cmd {
    Hint(Option<usize>),
    Run,
    Grade,
    Pause,
    Abandon,
    Yes,
    No,
    Help,
    Checklist,
    Nothing,
    Unknown(String),
}

struct Running {
    id: u64,
    cancel: Cancel,
    /// Attempt time when the run started: the time of the code it tests.
    at_s: f64,
    grading: bool,
    at_limit: bool,
    /// Nothing was compiled yet when it started: it compiles the dependencies first.
    first_build: bool,
}

pub struct Session<'a> {
    ctx: &'a Ctx,
    kata: &'a Kata,
    a: Attempt,
    segment: Instant,
    screen: Screen,
    keys: bool,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    running: Option<Running>,
    seq: u64,
    last: Option<Report>,
    /// The last grading's report (whole-program attempts).
    last_verdict: Option<String>,
    confirm_abandon: bool,
    last_save: Instant,
    warned: HashSet<u64>,
    /// Fingerprint of the sources at the last run's start.
    tested: u64,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a Ctx, kata: &'a Kata, mut a: Attempt) -> Session<'a> {
        let (tx, rx) = mpsc::channel();
        a.pid = Some(std::process::id());
        Session {
            ctx,
            kata,
            a,
            segment: Instant::now(),
            screen: Screen::new(ctx.stdout_tty),
            keys: ctx.stdin_tty && ctx.stdout_tty && cfg!(unix),
            tx,
            rx,
            running: None,
            seq: 0,
            last: None,
            last_verdict: None,
            confirm_abandon: false,
            last_save: Instant::now(),
            warned: HashSet::new(),
            tested: 0,
        }
    }

    fn elapsed(&self) -> f64 {
        self.a.elapsed_s + self.segment.elapsed().as_secs_f64()
    }

    fn snapshot(&self) -> Attempt {
        let mut s = self.a.clone();
        s.elapsed_s = (self.elapsed() * 10.0).round() / 10.0;
        s
    }

    /// Saves the attempt, keeping hints counted meanwhile by `cargo practice hint`.
    fn save(&mut self) -> Result<()> {
        if let Ok(Some(disk)) = self.ctx.practice.load_current()
            && disk.kata == self.a.kata
        {
            for h in disk.hints {
                if !self.a.hints.contains(&h) {
                    self.a.hints.push(h);
                }
            }
        }
        self.ctx.practice.save_current(&self.snapshot())?;
        self.last_save = Instant::now();
        Ok(())
    }

    pub fn run(mut self) -> Result<ExitCode> {
        signals::install()?;
        self.save()?;
        let _keys = if self.keys { KeyMode::enable() } else { None };
        self.keys = _keys.is_some();
        ui::spawn_reader(self.keys, self.tx.clone(), Event::Input);
        let _watcher = if self.on_program() {
            None
        } else {
            Some(self.watch()?)
        };
        self.intro();
        if !self.on_program() {
            self.start(false, false);
        }
        loop {
            if signals::pending() {
                return self.pause("Ctrl-C", ExitCode::from(130));
            }
            match self.rx.recv_timeout(TICK) {
                Ok(ev) => {
                    if let Some(code) = self.on_event(ev)? {
                        return Ok(code);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return self.pause("input closed", ExitCode::SUCCESS);
                }
            }
            if let Some(code) = self.on_tick()? {
                return Ok(code);
            }
        }
    }

    fn watch(
        &self,
    ) -> Result<notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>>
    {
        use notify_debouncer_mini::notify::RecursiveMode;
        let tx = self.tx.clone();
        let mut d = notify_debouncer_mini::new_debouncer(
            DEBOUNCE,
            move |res: notify_debouncer_mini::DebounceEventResult| {
                let ev = match res {
                    Ok(events)
                        if events
                            .iter()
                            .any(|e| e.path.extension().is_some_and(|x| x == "rs")) =>
                    {
                        Event::Changed
                    }
                    Ok(_) => return,
                    Err(e) => Event::WatchFailed(e.to_string()),
                };
                let _ = tx.send(ev);
            },
        )
        .context("cannot start watching the kata's files")?;
        let src = self.watched_dir();
        d.watcher()
            .watch(&src, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", src.display()))?;
        Ok(d)
    }

    /// Is this attempt written in the blank program (timed or interview mode)?
    fn on_program(&self) -> bool {
        self.a.file == PracticeFile::Program
    }

    fn file(&self) -> String {
        match self.kata.program_rel() {
            Some(program) if self.on_program() => program,
            _ => format!("{}/src/lib.rs", self.kata.rel_dir()),
        }
    }

    /// The folder whose saves rerun the step tests (or, for the program, are noticed).
    fn watched_dir(&self) -> PathBuf {
        match self.kata.program_path() {
            Some(program) if self.on_program() => program
                .parent()
                .map_or_else(|| self.kata.dir.clone(), |p| p.to_path_buf()),
            _ => self.kata.dir.join("src"),
        }
    }

    fn keys_help(&self) -> String {
        let list = if self.on_program() {
            "g grade · s last verdict · p pause · a abandon · ? help"
        } else {
            match self.a.mode {
                Mode::Guided => "h hint · r run tests · s checklist · p pause · a abandon · ? help",
                _ => "r run tests · s checklist · p pause · a abandon · ? help",
            }
        };
        if self.keys {
            format!("Keys: {list} (Ctrl-C pauses too)")
        } else {
            format!(
                "Commands (type, then Enter): {list}{}",
                if self.a.mode == Mode::Guided {
                    " · h N: hint for step N"
                } else {
                    ""
                }
            )
        }
    }

    fn intro(&mut self) {
        let k = self.kata;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} — {} · {} mode",
            style(&k.name).bold(),
            k.title,
            self.a.mode.as_str()
        );
        if self.a.elapsed_s > 0.0 {
            let _ = writeln!(
                s,
                "Resuming at {} (resume #{}).",
                clock(self.a.elapsed_s),
                self.a.resumed
            );
        }
        if self.on_program() {
            let _ = writeln!(
                s,
                "Your file: {}  (a blank program: the problem statement is at its top; write the whole pipeline, imports to main)",
                self.file()
            );
        } else {
            let _ = writeln!(
                s,
                "Your practice file: {}  (one function per step; its doc comment states the contract)",
                self.file()
            );
        }
        match self.a.mode {
            Mode::Guided => {
                let _ = writeln!(
                    s,
                    "Save the file and the step tests run again. Hints on request (counted)."
                );
            }
            Mode::Timed if self.on_program() => {
                let _ = writeln!(
                    s,
                    "Target {}, expert {}. The clock runs until a grading passes: press g to build your program and grade it end to end on fresh data. No hints.",
                    clock(k.target_s()),
                    clock(k.expert_s())
                );
            }
            Mode::Timed => {
                let _ = writeln!(
                    s,
                    "Target {}, expert {}. The clock runs; each step's split is taken when it first passes. No hints.",
                    clock(k.target_s()),
                    clock(k.expert_s())
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "You have {}. No hints. Press g when you are done: your program is built and graded end to end on fresh data, as an interviewer would run it; you may grade as often as you like.",
                    clock(k.limit_s()),
                );
            }
        }
        if k.needs_kafka {
            let _ = writeln!(
                s,
                "Broker: {}",
                grade::broker()
                    .map(|b| format!("KAFKA_BOOTSTRAP_SERVERS={b}"))
                    .unwrap_or_else(|| {
                        "none set: the tests use librdkafka's embedded mock cluster".into()
                    })
            );
        }
        let _ = write!(s, "{}", self.keys_help());
        self.screen.print(&s);
    }

    fn on_event(&mut self, ev: Event) -> Result<Option<ExitCode>> {
        match ev {
            Event::Input(Input::Closed) => {
                return self.pause("input closed", ExitCode::SUCCESS).map(Some);
            }
            Event::Input(Input::Key(c)) => {
                let cmd = match c {
                    'h' => Cmd::Hint(None),
                    '1'..='9' if self.a.mode == Mode::Guided => {
                        Cmd::Hint(c.to_digit(10).map(|d| d as usize))
                    }
                    'r' => Cmd::Run,
                    'g' => Cmd::Grade,
                    'p' | 'q' => Cmd::Pause,
                    'a' => Cmd::Abandon,
                    'y' | 'Y' => Cmd::Yes,
                    'n' | 'N' => Cmd::No,
                    '?' => Cmd::Help,
                    's' => Cmd::Checklist,
                    _ => Cmd::Nothing,
                };
                return self.on_cmd(cmd);
            }
            Event::Input(Input::Line(l)) => {
                let mut words = l.split_whitespace();
                let cmd = match (words.next(), words.next()) {
                    (None, _) => Cmd::Nothing,
                    (Some("h" | "hint"), n) => match n.map(str::parse::<usize>) {
                        None => Cmd::Hint(None),
                        Some(Ok(n)) => Cmd::Hint(Some(n)),
                        Some(Err(_)) => Cmd::Unknown(l.clone()),
                    },
                    (Some("r" | "run"), _) => Cmd::Run,
                    (Some("g" | "grade"), _) => Cmd::Grade,
                    (Some("p" | "pause" | "q" | "quit"), _) => Cmd::Pause,
                    (Some("a" | "abandon"), _) => Cmd::Abandon,
                    (Some("y" | "yes"), _) => Cmd::Yes,
                    (Some("n" | "no"), _) => Cmd::No,
                    (Some("?" | "help"), _) => Cmd::Help,
                    (Some("s" | "status" | "checklist"), _) => Cmd::Checklist,
                    _ => Cmd::Unknown(l.clone()),
                };
                return self.on_cmd(cmd);
            }
            Event::Changed => {
                // Editors and tools touch files without changing them: rerun only on new content.
                if !self.on_program() && fingerprint(&self.watched_dir()) != self.tested {
                    self.screen
                        .print(&format!("{} saved: running the step tests…", self.file()));
                    self.start(false, false);
                }
            }
            Event::WatchFailed(e) => {
                self.screen.print(&format!(
                    "Watching the files failed ({e}); press r to run the tests yourself."
                ));
            }
            Event::Ran(id, res) => {
                if self.running.as_ref().is_some_and(|r| r.id == id) {
                    let run = self.running.take().expect("checked above");
                    return self.on_report(run, res);
                }
            }
            Event::Graded(id, res) => {
                if self.running.as_ref().is_some_and(|r| r.id == id) {
                    let run = self.running.take().expect("checked above");
                    return self.on_grade(run, res);
                }
            }
        }
        Ok(None)
    }

    fn on_cmd(&mut self, cmd: Cmd) -> Result<Option<ExitCode>> {
        if self.confirm_abandon && !matches!(cmd, Cmd::Yes | Cmd::Nothing) {
            self.confirm_abandon = false;
            if matches!(cmd, Cmd::No) {
                self.screen.print("Not abandoned; carry on.");
                return Ok(None);
            }
        }
        match cmd {
            Cmd::Hint(n) => self.hint(n)?,
            Cmd::Run if self.on_program() => self
                .screen
                .print("Press g to build and grade your whole program."),
            Cmd::Run => self.start(false, false),
            Cmd::Grade if self.on_program() || self.a.mode == Mode::Interview => {
                if self.running.as_ref().is_some_and(|r| r.grading) {
                    self.screen.print("Grading is already running.");
                } else {
                    self.a.gradings += 1;
                    self.screen
                        .print(&format!("Grading at {}…", clock(self.elapsed())));
                    self.start(true, false);
                }
            }
            Cmd::Grade => self.start(false, false),
            Cmd::Pause => return self.pause("paused", ExitCode::SUCCESS).map(Some),
            Cmd::Abandon => {
                self.confirm_abandon = true;
                self.screen.print(&format!(
                    "Abandon this attempt? It is archived, recorded as abandoned, and {} is restored. (y/n)",
                    self.kata.rel_dir()
                ));
            }
            Cmd::Yes if self.confirm_abandon => {
                let t = self.elapsed();
                return self.finish(AttemptResult::Abandoned, t).map(Some);
            }
            Cmd::Yes | Cmd::No | Cmd::Nothing => {}
            Cmd::Help => {
                let h = self.keys_help();
                self.screen.print(&h);
            }
            Cmd::Checklist if self.on_program() => match self.last_verdict.clone() {
                Some(report) => self.screen.print(&report),
                None => self.screen.print("No grading yet: press g."),
            },
            Cmd::Checklist => match self.last.clone() {
                Some(r) => self.print_report(&r, None),
                None => self.screen.print("No test run yet."),
            },
            Cmd::Unknown(s) => self
                .screen
                .print(&format!("Unknown command `{s}`. {}", self.keys_help())),
        }
        Ok(None)
    }

    fn on_tick(&mut self) -> Result<Option<ExitCode>> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.save()?;
        }
        let t = self.elapsed();
        if self.a.mode == Mode::Interview {
            let left = self.kata.limit_s() - t;
            for mark in [300u64, 60] {
                if left <= mark as f64
                    && left > 0.0
                    && self.warned.insert(mark)
                    && self.kata.limit_s() > 2.0 * mark as f64
                {
                    self.screen.print(&format!("{} left.", clock(mark as f64)));
                }
            }
            match self.running.as_mut() {
                // A grading asked for in time finishes; its verdict now ends the attempt.
                Some(r) if left <= 0.0 && r.grading && !r.at_limit => {
                    r.at_limit = true;
                    self.screen.print(&format!(
                        "Time is up ({}): the grading in progress decides.",
                        clock(self.kata.limit_s())
                    ));
                }
                Some(r) if r.at_limit => {}
                _ if left <= 0.0 => {
                    self.a.gradings += 1;
                    self.screen.print(&format!(
                        "Time is up ({}): grading what you have…",
                        clock(self.kata.limit_s())
                    ));
                    self.start(true, true);
                }
                _ => {}
            }
        }
        let status = self.status_line(t);
        self.screen.status(&status);
        Ok(None)
    }

    fn green(&self) -> (usize, usize) {
        let total = self.kata.steps.len();
        let green = self
            .kata
            .steps
            .iter()
            .filter(|s| self.last.as_ref().is_some_and(|r| r.passed(&s.test)))
            .count();
        (green, total)
    }

    fn status_line(&self, t: f64) -> String {
        let (g, n) = self.green();
        let busy = match &self.running {
            Some(r) if r.first_build => {
                " · compiling for the first time (DataFusion, rdkafka: a few minutes, once)…"
            }
            Some(r) if r.grading => " · building and grading…",
            Some(_) => " · testing…",
            None => "",
        };
        let vs = |label: &str, goal: f64| {
            if t <= goal {
                format!("{label} {} ({} left)", clock(goal), clock(goal - t))
            } else {
                format!("{label} {} (+{} over)", clock(goal), clock(t - goal))
            }
        };
        match self.a.mode {
            Mode::Timed if self.on_program() => format!(
                "⏱ {} · {} · {} · whole program{busy} · {}",
                clock(t),
                vs("target", self.kata.target_s()),
                vs("expert", self.kata.expert_s()),
                short_keys(Mode::Interview)
            ),
            Mode::Guided => format!(
                "⏱ {} · {g}/{n} steps green{busy} · {}",
                clock(t),
                short_keys(Mode::Guided)
            ),
            Mode::Timed => {
                format!(
                    "⏱ {} · {} · {} · {g}/{n} green{busy} · {}",
                    clock(t),
                    vs("target", self.kata.target_s()),
                    vs("expert", self.kata.expert_s()),
                    short_keys(Mode::Timed)
                )
            }
            _ => format!(
                "⏳ {} left of {}{busy} · {}",
                clock(self.kata.limit_s() - t),
                clock(self.kata.limit_s()),
                short_keys(Mode::Interview)
            ),
        }
    }

    /// Starts a test run (or a grading), stopping the one in progress.
    fn start(&mut self, grading: bool, at_limit: bool) {
        if let Some(r) = self.running.take() {
            r.cancel.cancel();
        }
        self.seq += 1;
        self.tested = fingerprint(&self.watched_dir());
        let (id, cancel) = (self.seq, Cancel::default());
        let at_s = if at_limit {
            self.kata.limit_s()
        } else {
            self.elapsed()
        };
        let first_build = crate::runner::first_build(&self.ctx.repo);
        if first_build {
            self.screen.print(
                "First run in this checkout: compiling DataFusion, Arrow, Parquet and rdkafka once \
                 (a few minutes on two cores); after that a run takes seconds.",
            );
        }
        self.running = Some(Running {
            id,
            cancel: cancel.clone(),
            at_s,
            grading,
            at_limit,
            first_build,
        });
        let (repo, kata, tx) = (self.ctx.repo.clone(), self.kata.clone(), self.tx.clone());
        let log: PathBuf = self.ctx.practice.last_run_log();
        let program = self.kata.program_path().filter(|_| self.on_program());
        thread::spawn(move || {
            let ev = if grading {
                let graded = match &program {
                    Some(file) => grade::grade(&repo, &kata, file, &cancel, Output::Capture),
                    // A kata without a whole program is graded by its step tests.
                    None => StepRunner {
                        repo: &repo,
                        kata: &kata,
                        log,
                    }
                    .run(&cancel)
                    .map(|report| Graded {
                        verdict: if report.all_passed() {
                            Verdict::Passed
                        } else {
                            Verdict::Failed
                        },
                        report: checklist(&kata, &report, &[], None),
                        took: report.took,
                    }),
                };
                Event::Graded(id, graded)
            } else {
                Event::Ran(
                    id,
                    StepRunner {
                        repo: &repo,
                        kata: &kata,
                        log,
                    }
                    .run(&cancel),
                )
            };
            let _ = tx.send(ev);
        });
    }

    fn record_splits(&mut self, report: &Report, at_s: f64) {
        for v in report.verdicts() {
            if v.status == Status::Passed && !self.a.splits.iter().any(|s| s.test == v.test) {
                let step = self
                    .kata
                    .steps
                    .iter()
                    .position(|s| s.test == v.test)
                    .map_or(0, |i| i + 1);
                self.a.splits.push(Split {
                    step,
                    test: v.test.clone(),
                    at_s: (at_s * 10.0).round() / 10.0,
                });
            }
        }
    }

    fn on_report(&mut self, run: Running, res: Result<Report>) -> Result<Option<ExitCode>> {
        let report = match res {
            Ok(r) => r,
            Err(e) => {
                self.screen.print(&format!(
                    "Could not run the tests: {e:#}. Press r to try again."
                ));
                return Ok(None);
            }
        };
        if matches!(report.outcome, Outcome::Cancelled) {
            return Ok(None);
        }
        self.record_splits(&report, run.at_s);
        let (g, n) = (
            self.kata
                .steps
                .iter()
                .filter(|s| report.passed(&s.test))
                .count(),
            self.kata.steps.len(),
        );
        self.a.last_run = Some(format!("{g}/{n} steps green at {}", clock(run.at_s)));
        self.print_report(&report, Some(run.at_s));
        let done = report.all_passed();
        self.last = Some(report);
        self.save()?;
        if done {
            return self.finish(AttemptResult::Passed, run.at_s).map(Some);
        }
        Ok(None)
    }

    fn on_grade(&mut self, run: Running, res: Result<Graded>) -> Result<Option<ExitCode>> {
        let graded = match res {
            Ok(g) => g,
            Err(e) => {
                self.screen.print(&format!(
                    "Grading could not run: {e:#}. Press g to try again."
                ));
                if run.at_limit {
                    return self
                        .finish(AttemptResult::Failed, self.kata.limit_s())
                        .map(Some);
                }
                return Ok(None);
            }
        };
        let report = format!(
            "⏱ {} · graded in {:.1} s\n{}",
            clock(run.at_s),
            graded.took.as_secs_f64(),
            graded.report
        );
        self.screen.print(&report);
        self.last_verdict = Some(report);
        self.a.last_run = Some(format!(
            "graded {} at {}",
            match graded.verdict {
                Verdict::Passed => "passed",
                Verdict::Failed => "failed",
                Verdict::Broken => "(could not grade)",
            },
            clock(run.at_s)
        ));
        match graded.verdict {
            Verdict::Passed => return self.finish(AttemptResult::Passed, run.at_s).map(Some),
            _ if run.at_limit => {
                return self
                    .finish(AttemptResult::Failed, self.kata.limit_s())
                    .map(Some);
            }
            Verdict::Broken => self.screen.print(
                "The grading itself could not run (see above); this is not your program's verdict. Press g to try again.",
            ),
            Verdict::Failed if self.a.mode == Mode::Interview => self.screen.print(&format!(
                "Not passed yet; the clock is running ({} left). Fix and press g again, or a to abandon.",
                clock(self.kata.limit_s() - self.elapsed())
            )),
            Verdict::Failed => self.screen.print(
                "Not passed yet; the clock is running. Fix and press g again, or a to abandon.",
            ),
        }
        self.save()?;
        Ok(None)
    }

    fn print_report(&mut self, report: &Report, at_s: Option<f64>) {
        let note = match self.a.mode {
            Mode::Guided => Some(" (h for a hint)"),
            Mode::Timed => Some(""),
            _ => None,
        };
        let text = checklist(self.kata, report, &self.a.splits, note);
        let mut s = String::new();
        if let Some(t) = at_s {
            let goal = match self.a.mode {
                Mode::Timed => format!(
                    " (target {}, expert {})",
                    clock(self.kata.target_s()),
                    clock(self.kata.expert_s())
                ),
                Mode::Interview => format!(" of {}", clock(self.kata.limit_s())),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "⏱ {}{goal} · tests took {:.1} s",
                clock(t),
                report.took.as_secs_f64()
            );
        }
        s.push_str(&text);
        self.screen.print(&s);
    }

    fn current_step(&self) -> usize {
        self.kata
            .steps
            .iter()
            .position(|s| !self.last.as_ref().is_some_and(|r| r.passed(&s.test)))
            .unwrap_or(0)
    }

    fn hint(&mut self, n: Option<usize>) -> Result<()> {
        if self.a.mode != Mode::Guided {
            self.screen.print(&format!(
                "No hints in {} mode: that is the point of it.",
                self.a.mode.as_str()
            ));
            return Ok(());
        }
        let i = match n {
            Some(n) if n >= 1 && n <= self.kata.steps.len() => n - 1,
            Some(n) => {
                self.screen.print(&format!(
                    "There are steps 1 to {}, not {n}.",
                    self.kata.steps.len()
                ));
                return Ok(());
            }
            None => self.current_step(),
        };
        let text = hint_text(self.kata, i);
        if !self.a.hints.contains(&(i + 1)) {
            self.a.hints.push(i + 1);
        }
        let count = self.a.hints.len();
        self.screen
            .print(&format!("{text}(hints used this attempt: {count})"));
        self.save()
    }

    fn pause(&mut self, why: &str, code: ExitCode) -> Result<ExitCode> {
        if let Some(r) = self.running.take() {
            r.cancel.cancel();
        }
        let mut snap = self.snapshot();
        snap.pid = None;
        snap.resumed += 1;
        self.ctx.practice.save_current(&snap)?;
        self.screen.finish();
        self.screen.print(&format!(
            "\nAttempt saved ({why}) at {}. Run `cargo practice` or `cargo practice resume` to go on; your code stays in {}.",
            clock(snap.elapsed_s),
            self.file()
        ));
        Ok(code)
    }

    fn finish(&mut self, result: AttemptResult, duration_s: f64) -> Result<ExitCode> {
        if let Some(r) = self.running.take() {
            r.cancel.cancel();
        }
        self.screen.finish();
        let mut a = self.snapshot();
        a.pid = None;
        // Hints counted from another terminal meanwhile.
        if let Ok(Some(disk)) = self.ctx.practice.load_current() {
            for h in disk.hints {
                if !a.hints.contains(&h) {
                    a.hints.push(h);
                }
            }
        }
        let before = self.ctx.practice.load_history().ok();
        let ended = reset::end_attempt(self.ctx, self.kata, &a, result, duration_s)?;
        self.screen
            .print(&summary(self.kata, &ended.entry, before.as_ref()));
        match &ended.restored {
            Ok(()) => self.screen.print(&format!(
                "Your code is archived in {}; {} is pristine again.",
                ended.entry.archive.as_deref().unwrap_or("?"),
                self.kata.rel_dir()
            )),
            Err(why) => self.screen.print(&format!(
                "Your code is archived in {}; {} was NOT restored: {why}",
                ended.entry.archive.as_deref().unwrap_or("?"),
                self.kata.rel_dir()
            )),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A hash of every `.rs` file's path and content under `dir`.
fn fingerprint(dir: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &std::path::Path, files: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let content = std::fs::read(&p).unwrap_or_default();
                files.push((p, content));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

fn short_keys(mode: Mode) -> &'static str {
    match mode {
        // Interview mode, and the whole program in timed mode.
        Mode::Guided => "h hint · r run · p pause · a abandon · ? help",
        Mode::Timed => "r run · p pause · a abandon · ? help",
        _ => "g grade · p pause · a abandon · ? help",
    }
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

const MAX_MESSAGE_LINES: usize = 30;

/// The step checklist with each verdict, and the first failure's message.
pub fn checklist(
    kata: &Kata,
    report: &Report,
    splits: &[Split],
    next_note: Option<&str>,
) -> String {
    let mut out = String::new();
    match &report.outcome {
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
            let lines: Vec<&str> = first_error.lines().collect();
            let _ = writeln!(
                out,
                "{}",
                indent(
                    &lines[..lines.len().min(MAX_MESSAGE_LINES)].join("\n"),
                    "    "
                )
            );
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
        Outcome::Tests { .. } => {}
    }
    let verdicts = report.verdicts();
    let width = kata
        .steps
        .iter()
        .map(|s| s.title.chars().count())
        .max()
        .unwrap_or(10)
        .min(60);
    let mut first_red: Option<(String, String)> = None;
    let mut rows: Vec<(String, String, &crate::runner::Verdict)> = Vec::new();
    for (i, s) in kata.steps.iter().enumerate() {
        if let Some(v) = verdicts.iter().find(|v| v.test == s.test) {
            rows.push((format!("{}", i + 1), s.title.clone(), v));
        }
    }
    for v in verdicts
        .iter()
        .filter(|v| !kata.steps.iter().any(|s| s.test == v.test))
    {
        rows.push((String::new(), v.test.clone(), v));
    }
    for (num, title, v) in rows {
        let (mark, word) = match v.status {
            Status::Passed => (style("✓").green(), String::new()),
            Status::Failed => (style("✗").red(), "failed".into()),
            Status::Todo => (style("○").dim(), "todo".into()),
            Status::Stuck => (style("!").red(), "stuck".into()),
            Status::Crashed => (style("!").red(), "crashed".into()),
            Status::Missing => (style("?").yellow(), "no such test".into()),
            Status::Ignored => (style("-").dim(), "ignored".into()),
        };
        let split = splits
            .iter()
            .find(|s| s.test == v.test)
            .map(|s| clock(s.at_s))
            .unwrap_or_default();
        let right = if v.status == Status::Passed {
            split
        } else {
            word
        };
        let line = format!("  {mark} {num:>2} {title:<width$}  {right}");
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
            first_red = Some((who, m.clone()));
        }
    }
    if let Outcome::Tests { unnamed_stuck, .. } = &report.outcome
        && *unnamed_stuck > 0
    {
        let _ = writeln!(
            out,
            "  {} {unnamed_stuck} other test(s) had no result when the run was stopped",
            style("!").red()
        );
    }
    let green = kata.steps.iter().filter(|s| report.passed(&s.test)).count();
    let _ = writeln!(out, "  {green}/{} steps green", kata.steps.len());
    if let Some((who, msg)) = first_red {
        let lines: Vec<&str> = msg.lines().collect();
        let cut = if lines.len() > MAX_MESSAGE_LINES {
            format!(
                "\n    … {} more lines in {}",
                lines.len() - MAX_MESSAGE_LINES,
                report.log.display()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "First failure — {who}:\n{}{cut}",
            indent(
                &lines[..lines.len().min(MAX_MESSAGE_LINES)].join("\n"),
                "    "
            )
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

fn summary(kata: &Kata, e: &crate::state::Entry, before: Option<&crate::state::History>) -> String {
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
    if e.result == AttemptResult::Passed {
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
        if let Some(h) = before {
            let prev = h
                .attempts
                .iter()
                .filter(|p| p.kata == kata.name && p.result == AttemptResult::Passed)
                .map(|p| p.duration_s)
                .fold(f64::INFINITY, f64::min);
            if t < prev && prev.is_finite() {
                let _ = writeln!(s, "  New personal best! (was {})", clock(prev));
            } else if prev.is_finite() {
                let _ = writeln!(s, "  Personal best: {}", clock(prev));
            }
            let mut all: Vec<crate::state::Entry> = h
                .attempts
                .iter()
                .filter(|p| p.kata == kata.name)
                .cloned()
                .collect();
            let old = crate::levels::standing(
                &all.iter().collect::<Vec<_>>(),
                &crate::levels::Thresholds::of(kata),
            )
            .level;
            all.push(e.clone());
            let new = crate::levels::standing(
                &all.iter().collect::<Vec<_>>(),
                &crate::levels::Thresholds::of(kata),
            );
            if new.level != old {
                let _ = writeln!(s, "  Level up: {} → {}", old.as_str(), new.level.as_str());
            }
            if let Some(n) = new.next {
                let _ = writeln!(s, "  Next level — {n}");
            }
        }
    }
    s
}
