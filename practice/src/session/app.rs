//! The state of a practice session and what each event does to it. It knows nothing of
//! the terminal: what it has to say is queued (`take_output`) for the line view, which
//! also prints `view::status_line`; the full screen draws the whole state
//! (`draw::draw`). The event loop (`session::run`) does either.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Event;
use super::input::{Input, Scroll};
use super::jobs::{Job, Jobs, Running};
use super::keys::{self, Cmd, Context};
use super::{draw, notify, view};
use crate::Ctx;
use crate::archive;
use crate::grade::{Graded, Verdict};
use crate::kata::Kata;
use crate::runner::{Outcome, Progress, Report, Status};
use crate::state::{Attempt, AttemptResult, Mode, PracticeFile, Split, clock};

/// The attempt is saved this often (and on every verdict), so a crash loses little.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Lines moved by a page key in the failure pane.
const PAGE: u16 = 10;
/// Columns moved by the left and right keys in the failure pane (tables are wide).
const SIDEWAYS: u16 = 8;

/// The time of this stretch of practice: the wall clock, or in tests one set by hand,
/// so that a drawn screen is the same on every run.
pub enum Clock {
    Wall(Instant),
    #[cfg(test)]
    Manual(f64),
}

impl Clock {
    fn secs(&self) -> f64 {
        match self {
            Clock::Wall(start) => start.elapsed().as_secs_f64(),
            #[cfg(test)]
            Clock::Manual(s) => *s,
        }
    }
}

/// What the side pane of the full screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The current step's contract (its doc comment), or the blank program's statement.
    Contract,
    /// The hint of step N (0-based), once asked for.
    Hint(usize),
    /// The keys (`?`).
    Help,
}

pub struct App<'a> {
    ctx: &'a Ctx,
    pub kata: &'a Kata,
    pub attempt: Attempt,
    /// The time of this stretch of practice (the attempt's time before it is in `attempt`).
    clock: Clock,
    /// Single keys on a terminal, typed lines otherwise.
    pub keys: bool,
    jobs: Jobs,
    /// The last test run's report.
    pub last: Option<Report>,
    /// The last report with test verdicts: the checklist stays while the file does not compile.
    pub last_tests: Option<Report>,
    /// What the side pane shows.
    pub pane: Pane,
    /// The current step's contract (or the program's statement), read from the file.
    pub contract: Option<String>,
    /// The failure pane's scroll position: lines down, columns right.
    pub scroll: (u16, u16),
    /// The scroll keys move the side pane (the contract, a hint, the keys), not the
    /// failure pane (Tab switches).
    pub side_focus: bool,
    /// The side pane's scroll position, in wrapped lines.
    pub side_scroll: u16,
    /// The last thing said, in one line, for the full screen.
    pub notice: Option<String>,
    /// The last grading's report (whole-program attempts).
    pub last_verdict: Option<String>,
    pub confirm_abandon: bool,
    /// A digit pressed once: its step's hint, shown when the same digit comes again.
    pending_hint: Option<usize>,
    /// While a first build runs (the dependencies, minutes, once), the attempt's time
    /// stays at the start of that run: the build is not the learner's time.
    held_at: Option<f64>,
    /// Seconds of first builds, not counted.
    held_s: f64,
    last_save: Instant,
    /// The interview warnings given (seconds left).
    warned: HashSet<u64>,
    /// Fingerprint of the sources at the last run's start.
    tested: u64,
    said_first_build: bool,
    output: Vec<String>,
}

/// The one line of `text` the full screen's notice shows: its first line, the time it
/// was said as `at 01:02:` (the header has the clock, live: two bare times on one screen
/// read as two clocks), and when that line only announces what follows (`Keys:`), with
/// the next line too.
fn notice(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if let Some(rest) = first.strip_prefix("⏱ ") {
        let at = rest.split_whitespace().next().unwrap_or_default();
        let what = rest.split_once(" · ").map_or(rest, |(_, after)| after);
        return Some(format!("at {at}: {what}"));
    }
    Some(match (first.strip_suffix(':'), lines.next()) {
        (Some(heading), Some(next)) => format!("{heading}: {next}"),
        _ => first.to_string(),
    })
}

impl<'a> App<'a> {
    pub fn new(
        ctx: &'a Ctx,
        kata: &'a Kata,
        mut attempt: Attempt,
        tx: Sender<Event>,
        keys: bool,
    ) -> App<'a> {
        attempt.pid = Some(std::process::id());
        App {
            ctx,
            kata,
            attempt,
            clock: Clock::Wall(Instant::now()),
            keys,
            jobs: Jobs::new(tx),
            last: None,
            last_tests: None,
            pane: Pane::Contract,
            contract: None,
            scroll: (0, 0),
            side_focus: false,
            side_scroll: 0,
            notice: None,
            last_verdict: None,
            confirm_abandon: false,
            pending_hint: None,
            held_at: None,
            held_s: 0.0,
            last_save: Instant::now(),
            warned: HashSet::new(),
            tested: 0,
            said_first_build: false,
            output: Vec::new(),
        }
    }

    /// What the session has said since the last call, oldest first.
    pub fn take_output(&mut self) -> Vec<String> {
        std::mem::take(&mut self.output)
    }

    fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.notice = notice(&console::strip_ansi_codes(&text));
        self.output.push(text);
    }

    /// The attempt's time: this stretch's clock on top of the time before it, without
    /// the time of first builds.
    pub fn elapsed(&self) -> f64 {
        self.held_at
            .unwrap_or_else(|| self.running_time() - self.held_s)
    }

    fn running_time(&self) -> f64 {
        self.attempt.elapsed_s + self.clock.secs()
    }

    /// The first build is over (its tests run, or it ended): the clock goes on from where
    /// it was held.
    fn release_clock(&mut self) {
        if let Some(at) = self.held_at.take() {
            self.held_s = self.running_time() - at;
        }
    }

    /// Tests set the clock by hand: the attempt's time is `attempt.elapsed_s` plus `secs`.
    #[cfg(test)]
    pub fn set_clock(&mut self, secs: f64) {
        self.clock = Clock::Manual(secs);
    }

    /// Tests: test runs and gradings are registered, never started.
    #[cfg(test)]
    pub fn without_jobs(&mut self) {
        self.jobs.dry = true;
    }

    pub fn running(&self) -> Option<&Running> {
        self.jobs.running()
    }

    /// Is this attempt written in the blank program (timed or interview mode)?
    pub fn on_program(&self) -> bool {
        self.attempt.file == PracticeFile::Program
    }

    pub fn key_context(&self) -> Context {
        Context {
            mode: self.attempt.mode,
            program: self.on_program(),
        }
    }

    /// The practice file, relative to the repository root.
    pub fn file(&self) -> String {
        match self.kata.program_rel() {
            Some(program) if self.on_program() => program,
            _ => format!("{}/src/lib.rs", self.kata.rel_dir()),
        }
    }

    /// The folder whose saves rerun the step tests (or, for the program, are noticed).
    pub fn watched_dir(&self) -> PathBuf {
        match self.kata.program_path() {
            Some(program) if self.on_program() => program
                .parent()
                .map_or_else(|| self.kata.dir.clone(), |p| p.to_path_buf()),
            _ => self.kata.dir.join("src"),
        }
    }

    /// Steps green in the last run that ran tests (a save that does not compile leaves
    /// them as they were), and how many there are.
    pub fn green(&self) -> (usize, usize) {
        let green = self
            .kata
            .steps
            .iter()
            .filter(|s| self.last_tests.as_ref().is_some_and(|r| r.passed(&s.test)))
            .count();
        (green, self.kata.steps.len())
    }

    fn snapshot(&self) -> Attempt {
        let mut s = self.attempt.clone();
        s.elapsed_s = (self.elapsed() * 10.0).round() / 10.0;
        s
    }

    /// Saves the attempt, keeping hints counted meanwhile by `cargo practice hint`.
    pub fn save(&mut self) -> Result<()> {
        let saved = self.ctx.practice.load_current().ok().flatten();
        self.attempt.absorb_hints(saved.as_ref());
        self.ctx.practice.save_current(&self.snapshot())?;
        self.last_save = Instant::now();
        Ok(())
    }

    /// The intro, then the first test run (the step file).
    pub fn begin(&mut self) {
        let intro = view::intro(self);
        self.say(intro);
        self.notice = Some(view::rules(self));
        self.refresh_contract();
        if !self.on_program() {
            self.start(false, false);
        }
    }

    pub fn on_event(&mut self, ev: Event) -> Result<Option<ExitCode>> {
        match ev {
            Event::Input(Input::Closed) => {
                return self.pause("input closed", ExitCode::SUCCESS).map(Some);
            }
            Event::Input(Input::Key(c)) => {
                let cmd = keys::from_key(c, self.key_context());
                return self.on_cmd(cmd);
            }
            Event::Input(Input::Line(l)) => return self.on_cmd(keys::from_line(&l)),
            Event::Input(Input::Interrupt) => {
                return self.pause("Ctrl-C", ExitCode::from(130)).map(Some);
            }
            Event::Input(Input::Scroll(to)) => self.scroll_to(to),
            Event::Input(Input::Back) => {
                self.confirm_abandon = false;
                self.show(Pane::Contract);
            }
            Event::Input(Input::SwitchPane) => self.side_focus = !self.side_focus,
            Event::Resized => {}
            Event::Changed => {
                // Editors and tools touch files without changing them: rerun only on new
                // content. A practice file gone for now (an editor that moves it away, then
                // writes the new one slowly) is not tested: its save comes next.
                if !self.on_program()
                    && self.practice_path().is_file()
                    && notify::fingerprint(&self.watched_dir()) != self.tested
                {
                    let file = self.file();
                    self.say(format!("{file} saved: running the step tests…"));
                    self.start(false, false);
                }
            }
            Event::WatchFailed(e) => self.say(format!(
                "Watching the files failed ({e}); press r to run the tests yourself."
            )),
            Event::Progress(id, p) => self.on_progress(id, p),
            Event::Ran(id, res) => {
                if let Some(run) = self.jobs.finished(id) {
                    // Stopped for a newer save, its build goes on in the next run.
                    if self.running().is_none() {
                        self.release_clock();
                    }
                    return self.on_report(run, res);
                }
            }
            Event::Graded(id, res) => {
                if let Some(run) = self.jobs.finished(id) {
                    if self.running().is_none() {
                        self.release_clock();
                    }
                    return self.on_grade(run, res);
                }
            }
        }
        Ok(None)
    }

    fn on_progress(&mut self, id: u64, p: Progress) {
        if p.is_first_build() && self.held_at.is_none() {
            // Held from the start of this run: its first crates counted as build too.
            let started = self.running().filter(|r| r.id == id).map(|r| r.at_s);
            self.held_at = Some(
                started
                    .unwrap_or_else(|| self.elapsed())
                    .min(self.elapsed()),
            );
        }
        if matches!(p, Progress::Testing) {
            self.release_clock();
        }
        if p.is_first_build() && !self.said_first_build {
            self.said_first_build = true;
            let text = view::first_build(self.kata, &p);
            self.say(text);
        }
        if let Some(r) = self.jobs.running_mut().filter(|r| r.id == id) {
            r.progress = Some(p);
        }
    }

    pub fn on_cmd(&mut self, cmd: Cmd) -> Result<Option<ExitCode>> {
        if self.confirm_abandon && !matches!(cmd, Cmd::Yes | Cmd::Nothing) {
            self.confirm_abandon = false;
            if matches!(cmd, Cmd::No) {
                self.say("Not abandoned; carry on.");
                return Ok(None);
            }
        }
        let pending_hint = self.pending_hint.take();
        let grades = self.key_context().grades();
        match cmd {
            Cmd::Hint(n) => self.hint(n)?,
            Cmd::HintKey(n)
                if pending_hint != Some(n)
                    && !self.attempt.hints.contains(&n)
                    && (1..=self.kata.steps.len()).contains(&n)
                    && self.attempt.mode == Mode::Guided =>
            {
                self.pending_hint = Some(n);
                let used = self.attempt.hints.len();
                self.say(format!(
                    "Step {n}'s hint is counted in your history ({used} used this attempt). Press {n} again to see it."
                ));
            }
            Cmd::HintKey(n) => self.hint(Some(n))?,
            Cmd::Run if self.on_program() => {
                self.say("Press g to build and grade your whole program.")
            }
            Cmd::Run => self.start(false, false),
            Cmd::Grade if grades => {
                if self.running().is_some_and(|r| r.grading) {
                    self.say("Grading is already running.");
                } else {
                    self.attempt.gradings += 1;
                    let at = clock(self.elapsed());
                    self.say(format!("Grading at {at}…"));
                    self.start(true, false);
                }
            }
            Cmd::Grade => self.start(false, false),
            Cmd::Pause => return self.pause("paused", ExitCode::SUCCESS).map(Some),
            Cmd::Abandon => {
                self.confirm_abandon = true;
                let dir = self.kata.rel_dir();
                self.say(format!(
                    "Abandon this attempt? It is archived, recorded as abandoned, and {dir} is restored. (y/n)"
                ));
            }
            Cmd::Yes if self.confirm_abandon => {
                let t = self.elapsed();
                return self.finish(AttemptResult::Abandoned, t).map(Some);
            }
            Cmd::Yes | Cmd::No | Cmd::Nothing => {}
            Cmd::Help => {
                let h = keys::help(self.key_context(), self.keys);
                self.say(h);
                self.show(Pane::Help);
                // The full screen shows them in the side pane, whole.
                self.notice = Some("The keys are beside; Esc goes back to the contract.".into());
            }
            Cmd::Show => {
                self.show(Pane::Contract);
                self.scroll = (0, 0);
                let text = match (&self.last_verdict, &self.last) {
                    (Some(verdict), _) if self.on_program() => verdict.clone(),
                    (None, _) if self.on_program() => "No grading yet: press g.".to_string(),
                    (_, Some(r)) => view::run_report(self, r, None),
                    (_, None) => "No test run yet.".to_string(),
                };
                let ran = self.last.is_some() || self.last_verdict.is_some();
                self.say(text);
                // The full screen shows the checklist already: its notice says what `s`
                // did instead of repeating the checklist's first line.
                if ran {
                    let (g, n) = self.green();
                    self.notice = Some(if self.on_program() {
                        "The last verdict: the checklist and the failure pane, from the top."
                            .to_string()
                    } else {
                        format!(
                            "The last run: {g}/{n} green; the step's contract and the failure pane, from the top."
                        )
                    });
                }
            }
            Cmd::Unknown(s) => {
                let list = keys::intro(self.key_context(), self.keys);
                self.say(format!("Unknown command `{s}`. {list}"));
            }
        }
        Ok(None)
    }

    /// Five times a second: save now and then; in an interview, warn and end at the limit.
    pub fn on_tick(&mut self) -> Result<Option<ExitCode>> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.save()?;
        }
        if self.attempt.mode != Mode::Interview {
            return Ok(None);
        }
        let limit = self.kata.limit_s();
        let left = limit - self.elapsed();
        for mark in [300u64, 60] {
            if left <= mark as f64
                && left > 0.0
                && limit > 2.0 * mark as f64
                && self.warned.insert(mark)
            {
                self.say(format!("{} left.", clock(mark as f64)));
            }
        }
        if left > 0.0 {
            return Ok(None);
        }
        match self.jobs.running_mut() {
            // A grading asked for in time finishes; its verdict now ends the attempt.
            Some(r) if r.grading && !r.at_limit => {
                r.at_limit = true;
                self.say(format!(
                    "Time is up ({}): the grading in progress decides.",
                    clock(limit)
                ));
            }
            Some(r) if r.at_limit => {}
            _ => {
                self.attempt.gradings += 1;
                self.say(format!(
                    "Time is up ({}): grading what you have…",
                    clock(limit)
                ));
                self.start(true, true);
            }
        }
        Ok(None)
    }

    /// Starts a test run (or a grading), stopping the one in progress.
    fn start(&mut self, grading: bool, at_limit: bool) {
        self.tested = notify::fingerprint(&self.watched_dir());
        let at_s = if at_limit {
            self.kata.limit_s()
        } else {
            self.elapsed()
        };
        self.jobs.start(Job {
            repo: self.ctx.repo.clone(),
            kata: self.kata.clone(),
            log: self.ctx.practice.last_run_log(),
            times: self.attempt.times.clone(),
            program: self.kata.program_path().filter(|_| self.on_program()),
            grading,
            at_s,
            at_limit,
        });
    }

    fn record_splits(&mut self, report: &Report, at_s: f64) {
        for v in report.verdicts() {
            let step = self
                .kata
                .steps
                .iter()
                .position(|s| s.test == v.test)
                .map_or(0, |i| i + 1);
            if step > 0 && matches!(v.status, Status::Failed | Status::Stuck | Status::Crashed) {
                *self.attempt.failed_runs.entry(step).or_default() += 1;
            }
            // A drill times only its own steps: the others were handed over passing.
            let drilled = self.attempt.mode != Mode::Drill || self.attempt.drill.contains(&step);
            if v.status == Status::Passed
                && drilled
                && !self.attempt.splits.iter().any(|s| s.test == v.test)
            {
                self.attempt.splits.push(Split {
                    step,
                    test: v.test.clone(),
                    at_s: (at_s * 10.0).round() / 10.0,
                });
            }
        }
        for (test, t) in report.passing_times() {
            self.attempt
                .times
                .insert(test.to_string(), (t * 10.0).round() / 10.0);
        }
    }

    fn on_report(&mut self, run: Running, res: Result<Report>) -> Result<Option<ExitCode>> {
        let report = match res {
            Ok(r) => r,
            Err(e) => {
                self.say(format!(
                    "Could not run the tests: {e:#}. Press r to try again."
                ));
                return Ok(None);
            }
        };
        if matches!(report.outcome, Outcome::Cancelled) {
            return Ok(None);
        }
        self.record_splits(&report, run.at_s);
        self.scroll = (0, 0);
        if matches!(report.outcome, Outcome::Tests { .. }) {
            self.last_tests = Some(report.clone());
        }
        let g = self
            .kata
            .steps
            .iter()
            .filter(|s| report.passed(&s.test))
            .count();
        self.attempt.last_run = Some(format!(
            "{g}/{} steps green at {}",
            self.kata.steps.len(),
            clock(run.at_s)
        ));
        let text = view::run_report(self, &report, Some(run.at_s));
        self.say(text);
        let done = report.all_passed();
        // A hint stays up until its step passes; then the next step's contract shows.
        if let Pane::Hint(i) = self.pane
            && report.passed(&self.kata.steps[i].test)
        {
            self.show(Pane::Contract);
        }
        self.last = Some(report);
        self.refresh_contract();
        self.save()?;
        if done {
            return self.finish(AttemptResult::Passed, run.at_s).map(Some);
        }
        Ok(None)
    }

    fn on_grade(&mut self, run: Running, res: Result<Graded>) -> Result<Option<ExitCode>> {
        let limit = self.kata.limit_s();
        let graded = match res {
            Ok(g) => g,
            Err(e) => {
                self.say(format!(
                    "Grading could not run: {e:#}. Press g to try again."
                ));
                if run.at_limit {
                    return self.finish(AttemptResult::Failed, limit).map(Some);
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
        self.say(report.clone());
        self.last_verdict = Some(report);
        self.scroll = (0, 0);
        self.attempt.last_run = Some(format!(
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
            _ if run.at_limit => return self.finish(AttemptResult::Failed, limit).map(Some),
            Verdict::Broken => self.say(
                "The grading itself could not run (see above); this is not your program's verdict. Press g to try again.",
            ),
            Verdict::Failed if self.attempt.mode == Mode::Interview => {
                let left = clock(limit - self.elapsed());
                self.say(format!(
                    "Not passed yet; the clock is running ({left} left). Fix and press g again, or a to abandon."
                ))
            }
            Verdict::Failed => self.say(
                "Not passed yet; the clock is running. Fix and press g again, or a to abandon.",
            ),
        }
        self.save()?;
        Ok(None)
    }

    /// The first step not green in the last run with verdicts (0-based).
    pub fn current_step(&self) -> usize {
        self.kata
            .steps
            .iter()
            .position(|s| !self.last_tests.as_ref().is_some_and(|r| r.passed(&s.test)))
            .unwrap_or(0)
    }

    fn hint(&mut self, n: Option<usize>) -> Result<()> {
        if self.attempt.mode != Mode::Guided {
            let mode = self.attempt.mode.as_str();
            self.say(format!("No hints in {mode} mode: that is the point of it."));
            return Ok(());
        }
        let steps = self.kata.steps.len();
        let i = match n {
            Some(n) if (1..=steps).contains(&n) => n - 1,
            Some(n) => {
                self.say(format!("There are steps 1 to {steps}, not {n}."));
                return Ok(());
            }
            None => self.current_step(),
        };
        self.attempt.note_hint(i + 1);
        // Counted in another terminal meanwhile, too.
        let saved = self.ctx.practice.load_current().ok().flatten();
        self.attempt.absorb_hints(saved.as_ref());
        let text = view::hint_text(self.kata, i);
        let count = self.attempt.hints.len();
        self.say(format!("{text}(hints used this attempt: {count})"));
        self.show(Pane::Hint(i));
        self.save()
    }

    /// The practice file: the kata's `src/lib.rs`, or the whole program.
    fn practice_path(&self) -> PathBuf {
        match self.kata.program_path() {
            Some(program) if self.on_program() => program,
            _ => self.kata.dir.join("src/lib.rs"),
        }
    }

    /// Reads the current step's contract (or the program's statement) for the side pane.
    fn refresh_contract(&mut self) {
        let src = std::fs::read_to_string(self.practice_path()).unwrap_or_default();
        let contract = Some(if self.on_program() {
            view::statement(&src)
        } else {
            view::contract(self.kata, self.current_step(), &src)
        });
        if contract != self.contract && self.pane == Pane::Contract {
            self.side_scroll = 0;
        }
        self.contract = contract;
    }

    /// Puts `pane` in the side pane, from its top.
    fn show(&mut self, pane: Pane) {
        if pane != self.pane {
            self.side_scroll = 0;
        }
        self.pane = pane;
    }

    /// Moves the pane that has the focus, within its text.
    fn scroll_to(&mut self, to: Scroll) {
        if self.side_focus {
            let (_, text) = draw::side(self);
            // At most as many lines as the text takes in the narrowest side pane; the
            // screen stops at the last page of what it shows.
            let lines = draw::wrapped_height(&text, draw::MIN_WIDTH / 2);
            let y = self.side_scroll;
            self.side_scroll = match to {
                Scroll::Up => y.saturating_sub(1),
                Scroll::Down => y.saturating_add(1),
                Scroll::PageUp => y.saturating_sub(PAGE),
                Scroll::PageDown => y.saturating_add(PAGE),
                Scroll::Top => 0,
                Scroll::Left | Scroll::Right => y,
            }
            .min(lines.saturating_sub(1));
            return;
        }
        let body = view::failure(self)
            .map(|(_, body)| body)
            .unwrap_or_default();
        let lines = u16::try_from(body.lines().count()).unwrap_or(u16::MAX);
        let widest = body
            .lines()
            .map(console::measure_text_width)
            .max()
            .unwrap_or(0);
        let widest = u16::try_from(widest).unwrap_or(u16::MAX);
        let (y, x) = self.scroll;
        self.scroll = match to {
            Scroll::Up => (y.saturating_sub(1), x),
            Scroll::Down => (y.saturating_add(1), x),
            Scroll::PageUp => (y.saturating_sub(PAGE), x),
            Scroll::PageDown => (y.saturating_add(PAGE), x),
            Scroll::Top => (0, 0),
            Scroll::Left => (y, x.saturating_sub(SIDEWAYS)),
            Scroll::Right => (y, x.saturating_add(SIDEWAYS)),
        };
        self.scroll.0 = self.scroll.0.min(lines.saturating_sub(1));
        self.scroll.1 = self.scroll.1.min(widest.saturating_sub(1));
    }

    /// Saves the attempt to go on later, and ends the session.
    pub fn pause(&mut self, why: &str, code: ExitCode) -> Result<ExitCode> {
        self.jobs.stop();
        let mut snap = self.snapshot();
        snap.pid = None;
        snap.resumed += 1;
        self.ctx.practice.save_current(&snap)?;
        let file = self.file();
        self.say(format!(
            "\nAttempt saved ({why}) at {}. Run `cargo practice` or `cargo practice resume` to go on; your code stays in {file}.",
            clock(snap.elapsed_s),
        ));
        Ok(code)
    }

    /// Ends the attempt: archived, recorded, the kata restored; the summary said.
    fn finish(&mut self, result: AttemptResult, duration_s: f64) -> Result<ExitCode> {
        self.jobs.stop();
        let saved = self.ctx.practice.load_current().ok().flatten();
        self.attempt.absorb_hints(saved.as_ref());
        let mut a = self.snapshot();
        a.pid = None;
        let before = self.ctx.practice.load_history().ok();
        let ended = archive::end_attempt(self.ctx, self.kata, &a, result, duration_s, false)?;
        self.say(view::summary(self.kata, &ended.entry, before.as_ref()));
        let dir = ended.entry.archive.as_deref().unwrap_or("?");
        let kata_dir = self.kata.rel_dir();
        let text = match &ended.restored {
            Ok(()) => format!("Your code is archived in {dir}; {kata_dir} is pristine again."),
            Err(why) => {
                format!("Your code is archived in {dir}; {kata_dir} was NOT restored: {why}")
            }
        };
        self.say(text);
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::kata::Catalog;
    use crate::state::Practice;

    const KATA: &str = "name = \"toy\"\ncrate = \"toy_kata\"\ntitle = \"Toy\"\ntimed_target_min = 15\n\
        expert_min = 10\ninterview_limit_min = 20\n\
        [[steps]]\ntest = \"step_01_a\"\ntitle = \"First\"\nhint = \"Think.\"\n\
        [[steps]]\ntest = \"step_02_b\"\ntitle = \"Second\"\nhint = \"Think twice.\"\n";

    /// A session's state driven by events, without a terminal, a watcher or a test run.
    #[test]
    fn events_change_the_state_and_what_it_says_without_a_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx {
            repo: dir.path().to_path_buf(),
            catalog: Catalog::default(),
            practice: Practice::new(dir.path()),
            stdin_tty: false,
            stdout_tty: false,
            plain: false,
        };
        let mut kata: Kata = toml::from_str(KATA).unwrap();
        kata.dir = dir.path().join("katas/toy_kata");
        std::fs::create_dir_all(&kata.dir).unwrap();
        std::fs::write(
            kata.dir.join("Cargo.toml"),
            "[package]\nname = \"toy_kata\"\n[dependencies]\ndatafusion.workspace = true\n\
             tokio = \"1\"\nsolutions = { path = \"x\", optional = true }\nworkspace-hack = \"0.1\"\n",
        )
        .unwrap();
        let (tx, _rx) = mpsc::channel();
        let attempt = Attempt::new("toy", Mode::Guided, PracticeFile::Steps);
        let mut app = App::new(&ctx, &kata, attempt, tx, false);

        // A build that compiles a dozen crates is a first build: said once, naming the
        // kata's dependencies.
        let big = Progress::Compiling {
            compiled: 12,
            bar: Some((40, 300)),
            what: "syn".into(),
        };
        app.on_event(Event::Progress(1, big.clone())).unwrap();
        app.on_event(Event::Progress(1, big)).unwrap();
        let said = app.take_output();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("— datafusion, tokio —") && said[0].contains("happens once"),
            "{}",
            said[0]
        );

        // Typed commands go through the key table.
        app.on_event(Event::Input(Input::Line("?".into()))).unwrap();
        let help = app.take_output().concat();
        assert!(help.contains("h, hint") && help.contains("h N"), "{help}");
        app.on_event(Event::Input(Input::Line("h 2".into())))
            .unwrap();
        let hint = app.take_output().concat();
        assert!(
            hint.contains("Hint — step 2 Second:\n  Think twice.")
                && hint.contains("(hints used this attempt: 1)"),
            "{hint}"
        );
        let saved = ctx.practice.load_current().unwrap().unwrap();
        assert_eq!(saved.hints, vec![2]);

        let status = view::status_line(&app);
        assert!(status.starts_with("⏱ 00:0"), "{status}");
        assert!(
            status.ends_with("0/2 steps green · h hint · r run · p pause · a abandon · ? help"),
            "{status}"
        );

        // Pausing ends the session and keeps the attempt for later.
        let code = app.on_event(Event::Input(Input::Line("p".into()))).unwrap();
        assert_eq!(code, Some(ExitCode::SUCCESS));
        assert!(
            app.take_output()
                .concat()
                .contains("Attempt saved (paused)")
        );
        assert_eq!(ctx.practice.load_current().unwrap().unwrap().resumed, 1);
    }
}
