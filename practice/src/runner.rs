//! Runs a kata's step tests and turns libtest's output into one verdict per step.
//!
//! Two phases, each with its own deadline: compile (`cargo test --lib --no-run`, or when
//! only the kata's sources changed since, the rustc command of cargo's last build of it:
//! [`direct`]; bounded by `build_timeout_s`, its progress reported as it goes), then run
//! the test binary, directly, as `cargo test` would (its folder, library path and
//! variables): a second cargo would only check again that nothing changed. The step
//! tests are a module of the kata's library (`src/graded.rs` includes `tests/steps.rs`),
//! so a save compiles one crate, the library with its tests, and links one binary. The
//! tests all start at once (a thread each), so one stuck in a loop holds up no other
//! and the time to a test's result is its own. A test that passed before is given 10×
//! the time it took then (at least 15 s); one that never passed, `step_timeout_s`. A test with no result when its time is up is reported as
//! stuck and the run as cut short; the tests that failed before the stop are run again
//! so their messages (a `todo!()`, an assertion) are not lost. When the test process
//! dies (a stack overflow, an abort), the tests without a result are run again one by
//! one so the crash is pinned on its step.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::direct;
use crate::kata::Kata;
use crate::libtest::{self, Outcome as TestOutcome};
use crate::process::{self, Cancel, Seen};

/// Extra seconds on top of `step_timeout_s` for the test process to start.
const START_GRACE_S: u64 = 5;
/// Enough test threads for every test of a kata to start at once.
const TEST_THREADS: &str = "--test-threads=64";
/// A test that passed before is stuck after this many times its last passing time…
const STUCK_FACTOR: f64 = 10.0;
/// … but never before this many seconds.
const STUCK_FLOOR_S: f64 = 15.0;

/// Each test's time to its result (seconds from the start of its run) in the last run
/// it passed: what bounds a later run of it.
pub type Times = BTreeMap<String, f64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    /// The step's `todo!()` is still there.
    Todo,
    /// No result within its time.
    Stuck,
    /// The test process died.
    Crashed,
    /// kata.toml names a test that tests/steps.rs does not have.
    Missing,
    Ignored,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub test: String,
    pub status: Status,
    pub message: Option<String>,
    /// Seconds from the start of the run to this test's result, when it came in the run.
    pub at_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Tests {
        verdicts: Vec<Verdict>,
        unnamed_stuck: usize,
        /// The run was stopped after this many seconds because a test had no result.
        cut_short_s: Option<f64>,
    },
    BuildFailed {
        first_error: String,
        errors: usize,
    },
    BuildTimedOut {
        after_s: u64,
    },
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    pub took: Duration,
    pub log: PathBuf,
}

impl Report {
    pub fn verdicts(&self) -> &[Verdict] {
        match &self.outcome {
            Outcome::Tests { verdicts, .. } => verdicts,
            _ => &[],
        }
    }

    pub fn passed(&self, test: &str) -> bool {
        self.verdicts()
            .iter()
            .any(|v| v.test == test && v.status == Status::Passed)
    }

    /// Every test passed (ignored ones aside) and none is missing or stuck.
    pub fn all_passed(&self) -> bool {
        match &self.outcome {
            Outcome::Tests {
                verdicts,
                unnamed_stuck,
                ..
            } => {
                *unnamed_stuck == 0
                    && verdicts.iter().any(|v| v.status == Status::Passed)
                    && verdicts
                        .iter()
                        .all(|v| matches!(v.status, Status::Passed | Status::Ignored))
            }
            _ => false,
        }
    }

    /// The times of the tests that passed in this run.
    pub fn passing_times(&self) -> impl Iterator<Item = (&str, f64)> {
        self.verdicts()
            .iter()
            .filter_map(|v| match (v.status, v.at_s) {
                (Status::Passed, Some(t)) => Some((v.test.as_str(), t)),
                _ => None,
            })
    }
}

/// What a run is doing, as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// cargo waits for another cargo to release the build directory.
    Waiting,
    /// cargo compiles: `compiled` crates so far in this build, and from its progress bar
    /// `done` of `total` build units (a crate, a build script, a test target; the ones
    /// already built count as done); `what` is in progress.
    Compiling {
        compiled: usize,
        bar: Option<(usize, usize)>,
        what: String,
    },
    /// The build is done; the tests run.
    Testing,
}

/// A build that compiles this many crates compiles dependencies: a first build (an
/// edit recompiles the kata and its tests, a change in the workspace a few more).
pub const FIRST_BUILD_CRATES: usize = 10;

impl Progress {
    /// What cargo's standard error says so far, if it says anything yet. With
    /// `term.progress.when = "always"` cargo prints its progress bar
    /// (`Building [===>  ] 57/312: datafusion-expr, arrow`) even into a pipe; without,
    /// the `Compiling` lines are counted.
    pub fn of_cargo(stderr: &str) -> Option<Progress> {
        let bar = stderr.rfind("Building [").and_then(|i| {
            let rest = &stderr[i..];
            let rest = rest.split(['\r', '\n']).next().unwrap_or(rest);
            let (_, after) = rest.split_once("] ")?;
            let (counts, what) = after.split_once(": ").unwrap_or((after, ""));
            let (done, total) = counts.trim().split_once('/')?;
            Some((
                i,
                done.parse().ok()?,
                total.parse().ok()?,
                what.trim().to_string(),
            ))
        });
        let compiling = stderr
            .match_indices("Compiling ")
            .filter(|(i, _)| *i == 0 || stderr[..*i].ends_with([' ', '\n', '\r']));
        let count = compiling.clone().count();
        let last_compiling = compiling.last().map(|(i, _)| i);
        let waiting = stderr.rfind("Blocking waiting for file lock");
        let last_of = |x: Option<usize>| x.map_or(-1, |i| i as i64);
        if waiting.is_some()
            && last_of(waiting) > last_of(bar.as_ref().map(|b| b.0))
            && last_of(waiting) > last_of(last_compiling)
        {
            return Some(Progress::Waiting);
        }
        let last_name = last_compiling.map(|i| {
            stderr[i + "Compiling ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        });
        match (bar, last_name) {
            (Some((_, done, total, what)), _) => Some(Progress::Compiling {
                compiled: count,
                bar: Some((done, total)),
                what,
            }),
            (None, Some(what)) => Some(Progress::Compiling {
                compiled: count,
                bar: None,
                what,
            }),
            (None, None) => None,
        }
    }

    /// A build of the dependencies (minutes), not of the kata alone (seconds).
    pub fn is_first_build(&self) -> bool {
        matches!(self, Progress::Compiling { compiled, .. } if *compiled >= FIRST_BUILD_CRATES)
    }
}

/// A watch for [`process::run_watched`] that tells `progress` what cargo is doing
/// whenever that changes; it never stops the command.
pub fn cargo_progress(progress: &dyn Fn(Progress)) -> impl FnMut(&Seen) -> bool + '_ {
    let mut shown: Option<Progress> = None;
    move |seen: &Seen| {
        let now = Progress::of_cargo(seen.stderr);
        if now.is_some() && now != shown {
            if let Some(p) = &now {
                progress(p.clone());
            }
            shown = now;
        }
        false
    }
}

/// cargo's standard error without its progress bar: each line as it was left after
/// the last carriage return, bar-only lines dropped.
pub fn without_progress(stderr: &str) -> String {
    let mut out = String::with_capacity(stderr.len());
    for line in stderr.lines() {
        let last = line.rsplit('\r').next().unwrap_or(line);
        if last.trim_start().starts_with("Building [") {
            continue;
        }
        out.push_str(last.trim_end());
        out.push('\n');
    }
    out
}

pub struct StepRunner<'a> {
    pub repo: &'a Path,
    pub kata: &'a Kata,
    pub log: PathBuf,
    /// The tests' times in their last passing runs (see [`Times`]).
    pub times: &'a Times,
    /// Told what the run is doing, as it goes.
    pub progress: &'a dyn Fn(Progress),
}

/// The kata library's test binary (its step tests) cargo built, and what `cargo test`
/// gives it when it runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBinary {
    pub executable: PathBuf,
    /// The kata's `Cargo.toml`: the tests run in its folder.
    pub manifest_path: PathBuf,
    /// The toolchain's library folder, when known already (else rustc is asked).
    pub libdir: Option<PathBuf>,
}

impl TestBinary {
    /// The library's test binary among cargo's `--message-format=json` messages.
    pub fn from_cargo_messages(stdout: &str) -> Option<TestBinary> {
        stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
            .filter(|m| {
                m["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
            .find_map(|m| {
                Some(TestBinary {
                    executable: PathBuf::from(m["executable"].as_str()?),
                    manifest_path: PathBuf::from(m["manifest_path"].as_str()?),
                    libdir: None,
                })
            })
    }

    /// The binary with the arguments `args`, set up as `cargo test` runs it: in the
    /// package's folder, with `CARGO`, `CARGO_MANIFEST_DIR`, `CARGO_MANIFEST_PATH`,
    /// `CARGO_PKG_NAME` and a library path that finds the DataFusion dylib and `std`
    /// (`-C prefer-dynamic`). `INSTA_WORKSPACE_ROOT` spares insta its own
    /// `cargo metadata` run to find the workspace.
    fn command(&self, repo: &Path, package: &str, args: &[&str]) -> Command {
        let dir = self.manifest_path.parent().unwrap_or(repo);
        let mut c = Command::new(&self.executable);
        c.current_dir(dir)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env("CARGO", crate::cargo_program())
            .env("CARGO_MANIFEST_DIR", dir)
            .env("CARGO_MANIFEST_PATH", &self.manifest_path)
            .env("CARGO_PKG_NAME", package)
            .env("INSTA_WORKSPACE_ROOT", repo);
        let deps = self.executable.parent().unwrap_or(dir);
        let mut paths = vec![deps.to_path_buf()];
        if let Some(target_profile) = deps.parent() {
            paths.push(target_profile.to_path_buf());
        }
        paths.extend(
            self.libdir
                .clone()
                .or_else(|| toolchain_libdir(repo).cloned()),
        );
        if let Some(existing) = std::env::var_os(LIBRARY_PATH) {
            paths.extend(std::env::split_paths(&existing));
        }
        if let Ok(joined) = std::env::join_paths(paths) {
            c.env(LIBRARY_PATH, joined);
        }
        c
    }
}

/// The variable the dynamic loader searches, as cargo sets it for `cargo test`.
const LIBRARY_PATH: &str = if cfg!(target_os = "macos") {
    "DYLD_FALLBACK_LIBRARY_PATH"
} else if cfg!(windows) {
    "PATH"
} else {
    "LD_LIBRARY_PATH"
};

/// The toolchain's library folder (where `libstd-*.so` is): asked of rustc once.
fn toolchain_libdir(repo: &Path) -> Option<&'static PathBuf> {
    static LIBDIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIBDIR
        .get_or_init(|| {
            let rustc: OsString = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
            let out = Command::new(rustc)
                .current_dir(repo)
                .args(["--print", "target-libdir"])
                .output()
                .ok()?;
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
        })
        .as_ref()
}

impl StepRunner<'_> {
    fn cargo(&self) -> Command {
        let mut c = Command::new(crate::cargo_program());
        c.current_dir(self.repo)
            .env_remove("CARGO_TERM_COLOR")
            .args([
                "test",
                "-p",
                &self.kata.crate_name,
                "--lib",
                "--color",
                "never",
            ]);
        c
    }

    pub fn run(&self, cancel: &Cancel) -> Result<Report> {
        let start = Instant::now();
        let mut log = String::new();
        let outcome = self.phases(cancel, &mut log)?;
        if let Some(parent) = self.log.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&self.log, &log)
            .with_context(|| format!("cannot write {}", self.log.display()))?;
        Ok(Report {
            outcome,
            took: start.elapsed(),
            log: self.log.clone(),
        })
    }

    /// How long `test` may take: 10× its last passing time, at least 15 s, at most
    /// `step_timeout_s`; `step_timeout_s` when it never passed.
    pub fn bound_s(&self, test: &str) -> f64 {
        let max = self.kata.step_timeout_s as f64;
        self.times
            .get(test)
            .map_or(max, |t| (t * STUCK_FACTOR).max(STUCK_FLOOR_S).min(max))
    }

    /// When a run with these results so far is to be stopped. While a step has no
    /// result, the steps without one bound the run (and the other tests that passed
    /// before: `end_to_end` runs the steps, so a stuck step holds it up too); after
    /// that, the other tests, `step_timeout_s` for one that never passed.
    fn limit_s(&self, parsed: &libtest::Parsed) -> f64 {
        let max = (self.kata.step_timeout_s + START_GRACE_S) as f64;
        let Some(planned) = parsed.planned else {
            return max;
        };
        let is_step = |t: &str| self.kata.steps.iter().any(|s| s.test == t);
        let steps_left: Vec<&str> = self
            .kata
            .steps
            .iter()
            .map(|s| s.test.as_str())
            .filter(|t| parsed.outcome(t).is_none())
            .collect();
        let timed_others_left: Vec<&str> = self
            .times
            .keys()
            .map(String::as_str)
            .filter(|t| !is_step(t) && parsed.outcome(t).is_none())
            .collect();
        let others_left = planned
            .saturating_sub(parsed.results.len())
            .saturating_sub(steps_left.len());
        if steps_left.is_empty() && others_left > timed_others_left.len() {
            return max;
        }
        steps_left
            .iter()
            .chain(&timed_others_left)
            .map(|t| self.bound_s(t))
            .fold(STUCK_FLOOR_S, f64::max)
            .min(max)
    }

    /// The test binary, or why there is none: without cargo when nothing but the
    /// kata's own sources changed since cargo's last build of it ([`direct`]).
    fn build(&self, cancel: &Cancel, log: &mut String) -> Result<Result<TestBinary, Outcome>> {
        let build_timeout = Duration::from_secs(self.kata.build_timeout_s);
        let failed = |stderr: &str| {
            let (first_error, errors) = compiler_errors(stderr);
            Outcome::BuildFailed {
                first_error,
                errors,
            }
        };
        match direct::build(self.repo, &self.kata.crate_name, build_timeout, cancel, log)? {
            Some(direct::Built::Binary(bin)) => return Ok(Ok(bin)),
            Some(direct::Built::Errors(stderr)) => return Ok(Err(failed(&stderr))),
            Some(direct::Built::Cancelled) => return Ok(Err(Outcome::Cancelled)),
            Some(direct::Built::TimedOut) => {
                return Ok(Err(Outcome::BuildTimedOut {
                    after_s: self.kata.build_timeout_s,
                }));
            }
            None => {}
        }
        let mut build = self.cargo();
        build.args([
            "--no-run",
            // Rendered diagnostics on stderr as usual; the artifacts (the test binary's
            // path) as JSON on stdout.
            "--message-format=json-render-diagnostics",
            // The commands cargo runs, with their variables: the kata's is kept.
            "-vv",
            "--config",
            "term.progress.when=\"always\"",
            "--config",
            "term.progress.width=100",
        ]);
        let started = SystemTime::now();
        let mut on_build = cargo_progress(self.progress);
        let mut b = process::run_logged(build, build_timeout, cancel, log, Some(&mut on_build))?;
        b.stderr = without_progress(&b.stderr);
        if b.cancelled {
            return Ok(Err(Outcome::Cancelled));
        }
        if b.timed_out {
            return Ok(Err(Outcome::BuildTimedOut {
                after_s: self.kata.build_timeout_s,
            }));
        }
        match direct::Rustc::of_cargo(&b.stderr, &self.kata.crate_name) {
            Some(rustc) => direct::keep(self.repo, &self.kata.crate_name, rustc, started),
            None if !b.success() => direct::forget(self.repo, &self.kata.crate_name),
            None => {}
        }
        if !b.success() {
            return Ok(Err(failed(&b.stderr)));
        }
        match TestBinary::from_cargo_messages(&b.stdout) {
            Some(bin) => Ok(Ok(bin)),
            None => anyhow::bail!(
                "cargo built {} but named no test binary of its library (see {})",
                self.kata.crate_name,
                self.log.display()
            ),
        }
    }

    fn phases(&self, cancel: &Cancel, log: &mut String) -> Result<Outcome> {
        let bin = match self.build(cancel, log)? {
            Ok(bin) => bin,
            Err(outcome) => return Ok(outcome),
        };

        (self.progress)(Progress::Testing);
        let step_timeout = Duration::from_secs(self.kata.step_timeout_s + START_GRACE_S);
        let mut came: HashMap<String, f64> = HashMap::new();
        let mut on_run = |seen: &Seen| {
            let parsed = libtest::parse(seen.stdout);
            let t = seen.elapsed.as_secs_f64();
            for (name, _) in &parsed.results {
                came.entry(name.clone()).or_insert(t);
            }
            t >= self.limit_s(&parsed)
        };
        let all = self.run_tests(&bin, &[], step_timeout, cancel, log, Some(&mut on_run))?;
        if all.cancelled {
            return Ok(Outcome::Cancelled);
        }
        let parsed = libtest::parse(&all.stdout);
        let crashed = !all.timed_out && !parsed.finished;
        let stopped_s = all.elapsed.as_secs_f64();
        // Results printed after the last look came by the end.
        for (name, _) in &parsed.results {
            came.entry(name.clone()).or_insert(stopped_s);
        }

        let mut names: Vec<String> = self.kata.steps.iter().map(|s| s.test.clone()).collect();
        let mut seen: Vec<String> = parsed.results.iter().map(|(n, _)| n.clone()).collect();
        let mut paths = parsed.paths.clone();
        if !parsed.finished {
            // Cut short: ask the harness for every test name, so none goes unreported.
            for path in self.list_tests(&bin, cancel, log)? {
                let name = libtest::test_name(&path).to_string();
                paths.entry(name.clone()).or_insert(path);
                seen.push(name);
            }
        }
        for n in seen {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        // What `--exact` matches: the test's path in the binary.
        let exact = |name: &str| -> String { paths.get(name).cloned().unwrap_or(name.to_string()) };
        // Failures whose messages were lost with the process: printed at the end only.
        let lost: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                parsed.outcome(n) == Some(TestOutcome::Failed) && !parsed.failures.contains_key(*n)
            })
            .collect();
        // Stopped at the deadline: the failures ran to their end, so run them again,
        // together, for their messages (a `todo!()` stays a todo).
        let again = if all.timed_out && !lost.is_empty() {
            let lost_paths: Vec<String> = lost.iter().map(|n| exact(n)).collect();
            let mut filter: Vec<&str> = lost_paths.iter().map(String::as_str).collect();
            filter.push("--exact");
            let f = self.run_tests(&bin, &filter, step_timeout, cancel, log, None)?;
            if f.cancelled {
                return Ok(Outcome::Cancelled);
            }
            Some(libtest::parse(&f.stdout))
        } else {
            None
        };
        let mut verdicts = Vec::new();
        for name in &names {
            // After a crash, a failure whose captured output died with the process is
            // run again alone below.
            let outcome = parsed.outcome(name).filter(|o| {
                !(crashed && *o == TestOutcome::Failed && lost.contains(&name.as_str()))
            });
            let mut v = match outcome {
                Some(TestOutcome::Failed) if lost.contains(&name.as_str()) => {
                    match again.as_ref().and_then(|p| Some((p, p.outcome(name)?))) {
                        Some((p, o))
                            if p.failures.contains_key(name) || o != TestOutcome::Failed =>
                        {
                            verdict_of(name, o, p)
                        }
                        _ => Verdict {
                            test: name.clone(),
                            status: Status::Failed,
                            message: Some(
                                "failed; its message was lost when the run was stopped".into(),
                            ),
                            at_s: None,
                        },
                    }
                }
                Some(o) => verdict_of(name, o, &parsed),
                None if all.timed_out => self.stuck(name, stopped_s),
                None if crashed => {
                    // Run it alone, so the crash (or the hang) is pinned on this step.
                    let one = self.run_tests(
                        &bin,
                        &[exact(name).as_str(), "--exact"],
                        step_timeout,
                        cancel,
                        log,
                        None,
                    )?;
                    if one.cancelled {
                        return Ok(Outcome::Cancelled);
                    }
                    let p = libtest::parse(&one.stdout);
                    match p.outcome(name) {
                        Some(o) => verdict_of(name, o, &p),
                        None if one.timed_out => self.stuck(name, one.elapsed.as_secs_f64()),
                        None if p.finished => missing(name),
                        None => Verdict {
                            test: name.clone(),
                            status: Status::Crashed,
                            message: Some(crash_message(&one.stdout, &one.stderr, one.status)),
                            at_s: None,
                        },
                    }
                }
                None => missing(name),
            };
            if v.status == Status::Passed {
                v.at_s = came.get(name).copied();
            }
            verdicts.push(v);
        }
        let unnamed_stuck = if all.timed_out {
            parsed.planned.unwrap_or(0).saturating_sub(
                verdicts
                    .iter()
                    .filter(|v| v.status != Status::Missing)
                    .count(),
            )
        } else {
            0
        };
        Ok(Outcome::Tests {
            verdicts,
            unnamed_stuck,
            cut_short_s: all.timed_out.then_some(stopped_s),
        })
    }

    fn stuck(&self, name: &str, after_s: f64) -> Verdict {
        let before = self
            .times
            .get(name)
            .map(|t| format!(" (it passed in {t:.1} s last time)"))
            .unwrap_or_default();
        Verdict {
            test: name.to_string(),
            status: Status::Stuck,
            message: Some(format!(
                "no result after {after_s:.0} s{before}: stopped. An endless loop, or a wait without a deadline?"
            )),
            at_s: None,
        }
    }

    fn list_tests(
        &self,
        bin: &TestBinary,
        cancel: &Cancel,
        log: &mut String,
    ) -> Result<Vec<String>> {
        let c = bin.command(
            self.repo,
            &self.kata.crate_name,
            &["--list", "--format", "terse"],
        );
        let f = process::run_logged(c, Duration::from_secs(60), cancel, log, None)?;
        Ok(f.stdout
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect())
    }

    fn run_tests(
        &self,
        bin: &TestBinary,
        filter: &[&str],
        timeout: Duration,
        cancel: &Cancel,
        log: &mut String,
        watch: Option<&mut dyn FnMut(&Seen) -> bool>,
    ) -> Result<process::Finished> {
        let mut args = vec!["--color", "never", TEST_THREADS];
        args.extend_from_slice(filter);
        let c = bin.command(self.repo, &self.kata.crate_name, &args);
        process::run_logged(c, timeout, cancel, log, watch)
    }
}

fn verdict_of(name: &str, o: TestOutcome, p: &libtest::Parsed) -> Verdict {
    match o {
        TestOutcome::Ok => Verdict {
            test: name.to_string(),
            status: Status::Passed,
            message: None,
            at_s: None,
        },
        TestOutcome::Ignored => Verdict {
            test: name.to_string(),
            status: Status::Ignored,
            message: None,
            at_s: None,
        },
        TestOutcome::Failed => {
            let section = p.failures.get(name).map(String::as_str).unwrap_or("");
            let mut msg = libtest::panic_message(section);
            let status = if libtest::is_todo(&msg) {
                Status::Todo
            } else {
                Status::Failed
            };
            if status == Status::Failed
                && let Some(loc) = libtest::panic_location(section)
            {
                let _ = write!(msg, "\n  (at {loc})");
            }
            Verdict {
                test: name.to_string(),
                status,
                message: Some(msg),
                at_s: None,
            }
        }
    }
}

fn missing(name: &str) -> Verdict {
    Verdict {
        test: name.to_string(),
        status: Status::Missing,
        message: Some(format!(
            "tests/steps.rs has no test named `{name}` (kata.toml names it)"
        )),
        at_s: None,
    }
}

/// What a dead test process left: the runtime's last words and the signal.
fn crash_message(stdout: &str, stderr: &str, status: Option<ExitStatus>) -> String {
    let mut out: Vec<String> = Vec::new();
    for l in stdout.lines().chain(stderr.lines()) {
        let t = l.trim();
        if t.contains("overflowed its stack")
            || t.starts_with("fatal runtime error")
            || t.contains(" panicked at ")
        {
            out.push(t.to_string());
        }
    }
    if let Some(how) = status.and_then(death) {
        out.push(format!("the test process died ({how})"));
    }
    if out.is_empty() {
        "the test process ended without a result".to_string()
    } else {
        out.join("\n")
    }
}

/// How a process ended that was not an exit: `signal: 6, SIGABRT: process abort signal`
/// (cargo's words for it).
fn death(status: ExitStatus) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let sig = status.signal()?;
        let name = match sig {
            libc::SIGABRT => "SIGABRT: process abort signal",
            libc::SIGSEGV => "SIGSEGV: invalid memory reference",
            libc::SIGBUS => "SIGBUS: access to undefined memory",
            libc::SIGILL => "SIGILL: illegal instruction",
            libc::SIGFPE => "SIGFPE: erroneous arithmetic operation",
            libc::SIGKILL => "SIGKILL: kill",
            libc::SIGTERM => "SIGTERM: termination signal",
            libc::SIGTRAP => "SIGTRAP: trace/breakpoint trap",
            _ => return Some(format!("signal: {sig}")),
        };
        Some(format!("signal: {sig}, {name}"))
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}

/// The first compiler error (the whole block, with its code snippet) and how many there
/// are; DataFusion's items under the name the kata's code uses ([`rustc_names`]).
pub fn compiler_errors(stderr: &str) -> (String, usize) {
    let (first, count) = first_compiler_error(stderr);
    (rustc_names::as_written(&first), count)
}

fn first_compiler_error(stderr: &str) -> (String, usize) {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in stderr.lines() {
        let starts_error = (line.starts_with("error[") || line.starts_with("error:"))
            && !line.starts_with("error: could not compile")
            && !line.starts_with("error: aborting");
        if starts_error {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            current = Some(vec![line]);
        } else if let Some(b) = current.as_mut() {
            if line.trim().is_empty()
                || line.starts_with("warning")
                || line.starts_with("error: could not compile")
            {
                blocks.push(current.take().unwrap_or_default());
            } else {
                b.push(line);
            }
        }
    }
    if let Some(b) = current.take() {
        blocks.push(b);
    }
    match blocks.first() {
        Some(b) => (b.join("\n"), blocks.len()),
        None => {
            let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let from = tail.len().saturating_sub(15);
            (tail[from..].join("\n"), 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_compiler_error_is_kept_with_its_snippet() {
        let stderr = "   Compiling toy_kata v0.1.0 (/tmp/x/katas/toy_kata)
warning: unused variable: `x`
 --> katas/toy_kata/src/lib.rs:1:15
  |
1 | pub fn double(x: i64) -> i64 {
  |               ^ help: prefix it with an underscore: `_x`

error: expected expression, found `}`
 --> katas/toy_kata/src/lib.rs:2:9
  |
2 |     x * }
  |         ^ expected expression

error[E0425]: cannot find value `y` in this scope
 --> katas/toy_kata/src/lib.rs:5:5

error: could not compile `toy_kata` (lib) due to 2 previous errors
";
        let (first, n) = compiler_errors(stderr);
        assert_eq!(n, 2);
        assert_eq!(
            first,
            "error: expected expression, found `}`\n --> katas/toy_kata/src/lib.rs:2:9\n  |\n2 |     x * }\n  |         ^ expected expression"
        );
    }

    #[test]
    fn datafusions_items_are_named_as_the_katas_code_names_them() {
        let stderr = "error[E0308]: mismatched types
 --> katas/batch_kata/src/lib.rs:60:5
  |
60 |     df
  |     ^^ expected `kata_datafusion::prelude::DataFrame`, found `Result<kata_datafusion::prelude::DataFrame, DataFusionError>`
";
        let (first, n) = compiler_errors(stderr);
        assert_eq!(n, 1);
        assert!(
            first.contains("expected `datafusion::prelude::DataFrame`, found `Result<datafusion::prelude::DataFrame, DataFusionError>`"),
            "{first}"
        );
        assert!(!first.contains("kata_datafusion"), "{first}");
    }

    #[test]
    fn cargo_progress_is_read_from_its_bar_or_its_compiling_lines() {
        let bar = "   Compiling b v0.1.0 (/tmp/b)\n    Building [===>    ] 57/312: datafusion-expr, arrow-array          \r";
        let p = Progress::of_cargo(bar).unwrap();
        assert_eq!(
            p,
            Progress::Compiling {
                compiled: 1,
                bar: Some((57, 312)),
                what: "datafusion-expr, arrow-array".into()
            }
        );
        // Built units count in the bar's total: only what is compiled makes a first build.
        assert!(!p.is_first_build());
        let many = "   Compiling a v1\n".repeat(FIRST_BUILD_CRATES);
        assert!(Progress::of_cargo(&many).unwrap().is_first_build());
        let lines =
            "   Compiling grader v0.1.0 (/r/support/grader)\n   Compiling fixtures v0.1.0\n";
        assert_eq!(
            Progress::of_cargo(lines),
            Some(Progress::Compiling {
                compiled: 2,
                bar: None,
                what: "fixtures".into()
            })
        );
        assert_eq!(
            Progress::of_cargo(&format!(
                "{bar}\r    Blocking waiting for file lock on build directory\n"
            )),
            Some(Progress::Waiting)
        );
        assert_eq!(Progress::of_cargo("   Finished `test` profile\n"), None);
        let small = "   Compiling toy_kata v0.1.0\n    Building [====>  ] 1/3: toy_kata(test)\r";
        assert!(!Progress::of_cargo(small).unwrap().is_first_build());
    }

    #[test]
    fn the_progress_bar_is_left_out_of_the_errors() {
        let stderr = "    Building [=>  ] 1/6: a\r   Compiling a v0.1.0\n    Building [=>  ] 2/6: a\rerror[E0425]: cannot find value `y`\n --> src/lib.rs:1:1\n";
        let clean = without_progress(stderr);
        assert_eq!(
            clean,
            "   Compiling a v0.1.0\nerror[E0425]: cannot find value `y`\n --> src/lib.rs:1:1\n"
        );
        assert_eq!(compiler_errors(&clean).1, 1);
    }

    #[test]
    fn a_step_that_passed_before_bounds_the_run_by_its_own_time() {
        let kata: Kata = toml::from_str(
            "name = \"toy\"\ncrate = \"toy_kata\"\ntitle = \"t\"\ntimed_target_min = 15\nexpert_min = 10\n\
             interview_limit_min = 20\nstep_timeout_s = 60\n\
             [[steps]]\ntest = \"step_01_a\"\ntitle = \"a\"\n[[steps]]\ntest = \"step_02_b\"\ntitle = \"b\"\n",
        )
        .unwrap();
        let mut times = Times::new();
        times.insert("step_01_a".into(), 0.4);
        times.insert("step_02_b".into(), 3.0);
        let runner = StepRunner {
            repo: Path::new("."),
            kata: &kata,
            log: PathBuf::new(),
            times: &times,
            progress: &|_| {},
        };
        assert_eq!(runner.bound_s("step_01_a"), 15.0);
        assert_eq!(runner.bound_s("step_02_b"), 30.0);
        assert_eq!(runner.bound_s("end_to_end"), 60.0);
        let at = |out: &str| runner.limit_s(&libtest::parse(out));
        // Before the harness says how many tests run: the kata's bound.
        assert_eq!(at(""), 65.0);
        // Step 2 done: step 1 (and end_to_end, which runs it) wait at most 15 s.
        assert_eq!(at("running 3 tests\ntest step_02_b ... ok\n"), 15.0);
        assert_eq!(at("running 3 tests\ntest step_01_a ... ok\n"), 30.0);
        // Every step done, end_to_end never passed: the kata's bound.
        assert_eq!(
            at("running 3 tests\ntest step_01_a ... ok\ntest step_02_b ... FAILED\n"),
            65.0
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_crash_names_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        let msg = crash_message(
            "running 1 test\n",
            "\nthread 'step_02_greet' has overflowed its stack\nfatal runtime error: stack overflow, aborting\n",
            Some(ExitStatus::from_raw(libc::SIGABRT)),
        );
        assert_eq!(
            msg,
            "thread 'step_02_greet' has overflowed its stack\nfatal runtime error: stack overflow, aborting\nthe test process died (signal: 6, SIGABRT: process abort signal)"
        );
        assert_eq!(
            crash_message("running 1 test\n", "", Some(ExitStatus::from_raw(0))),
            "the test process ended without a result"
        );
    }

    #[test]
    fn the_librarys_test_binary_is_found_among_cargos_messages() {
        let stdout = r#"{"reason":"compiler-artifact","package_id":"path+file:///r/katas/toy_kata#0.1.0","manifest_path":"/r/katas/toy_kata/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"toy_kata","src_path":"/r/katas/toy_kata/src/lib.rs"},"profile":{"test":false},"executable":null,"fresh":false}
{"reason":"compiler-artifact","package_id":"path+file:///r/katas/toy_kata#0.1.0","manifest_path":"/r/katas/toy_kata/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"other","src_path":"/r/katas/toy_kata/tests/other.rs"},"profile":{"test":true},"executable":"/r/target/debug/deps/other-4567","fresh":false}
{"reason":"compiler-artifact","package_id":"path+file:///r/katas/toy_kata#0.1.0","manifest_path":"/r/katas/toy_kata/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"toy_kata","src_path":"/r/katas/toy_kata/src/lib.rs"},"profile":{"test":true},"executable":"/r/target/debug/deps/toy_kata-0123","fresh":false}
{"reason":"build-finished","success":true}
"#;
        assert_eq!(
            TestBinary::from_cargo_messages(stdout),
            Some(TestBinary {
                executable: PathBuf::from("/r/target/debug/deps/toy_kata-0123"),
                manifest_path: PathBuf::from("/r/katas/toy_kata/Cargo.toml"),
                libdir: None,
            })
        );
        assert_eq!(
            TestBinary::from_cargo_messages("{\"reason\":\"build-finished\",\"success\":false}\n"),
            None
        );
    }
}
