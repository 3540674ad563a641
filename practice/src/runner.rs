//! Runs a kata's step tests and turns libtest's output into one verdict per step.
//!
//! Two phases, each with its own deadline: compile (`cargo test --no-run`, bounded by
//! `build_timeout_s`), then run (`cargo test`, bounded by `step_timeout_s`). A test with
//! no result when the run's deadline passes is reported as stuck; when the test process
//! dies (a stack overflow, an abort), the tests without a result are run again one by
//! one so the crash is pinned on its step.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::kata::Kata;
use crate::libtest::{self, Outcome as TestOutcome};
use crate::process::{self, Cancel};

/// Extra seconds on top of `step_timeout_s` for cargo itself (freshness checks).
const CARGO_GRACE_S: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    /// The step's `todo!()` is still there.
    Todo,
    /// No result within the step timeout.
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
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Tests {
        verdicts: Vec<Verdict>,
        unnamed_stuck: usize,
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
}

/// Whether nothing has been compiled yet in this checkout's target folder: the first
/// test run (or grading) then compiles DataFusion and rdkafka, minutes on two cores.
pub fn first_build(repo: &Path) -> bool {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo.join(dir),
        _ => repo.join("target"),
    };
    !target.join("debug").join("deps").is_dir()
}

pub struct StepRunner<'a> {
    pub repo: &'a Path,
    pub kata: &'a Kata,
    pub log: PathBuf,
}

impl StepRunner<'_> {
    fn cargo(&self) -> Command {
        let mut c = Command::new(crate::cargo_program());
        c.current_dir(self.repo)
            .env("RUST_BACKTRACE", "0")
            .env_remove("CARGO_TERM_COLOR")
            .args([
                "test",
                "-p",
                &self.kata.crate_name,
                "--test",
                "steps",
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

    fn phases(&self, cancel: &Cancel, log: &mut String) -> Result<Outcome> {
        let build_timeout = Duration::from_secs(self.kata.build_timeout_s);
        let mut build = self.cargo();
        build.arg("--no-run");
        let b = process::run_logged(build, build_timeout, cancel, log)?;
        if b.cancelled {
            return Ok(Outcome::Cancelled);
        }
        if b.timed_out {
            return Ok(Outcome::BuildTimedOut {
                after_s: self.kata.build_timeout_s,
            });
        }
        if !b.success() {
            let (first_error, errors) = compiler_errors(&b.stderr);
            return Ok(Outcome::BuildFailed {
                first_error,
                errors,
            });
        }

        let step_timeout = Duration::from_secs(self.kata.step_timeout_s + CARGO_GRACE_S);
        let all = self.run_tests(&[], step_timeout, cancel, log)?;
        if all.cancelled {
            return Ok(Outcome::Cancelled);
        }
        let parsed = libtest::parse(&all.stdout);
        let crashed = !all.timed_out && !parsed.finished;

        let mut names: Vec<String> = self.kata.steps.iter().map(|s| s.test.clone()).collect();
        let mut seen: Vec<String> = parsed.results.iter().map(|(n, _)| n.clone()).collect();
        if !parsed.finished {
            // Cut short: ask the harness for every test name, so none goes unreported.
            seen.extend(self.list_tests(cancel, log)?);
        }
        for n in seen {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let mut verdicts = Vec::new();
        for name in &names {
            // A failure whose captured output died with the process is run again too.
            let outcome = parsed.outcome(name).filter(|o| {
                !(crashed && *o == TestOutcome::Failed && !parsed.failures.contains_key(name))
            });
            let v = match outcome {
                Some(o) => verdict_of(name, o, &parsed),
                None if all.timed_out => stuck(name, self.kata.step_timeout_s),
                None if crashed => {
                    // Run it alone, so the crash (or the hang) is pinned on this step.
                    let one =
                        self.run_tests(&[name.as_str(), "--exact"], step_timeout, cancel, log)?;
                    if one.cancelled {
                        return Ok(Outcome::Cancelled);
                    }
                    let p = libtest::parse(&one.stdout);
                    match p.outcome(name) {
                        Some(o) => verdict_of(name, o, &p),
                        None if one.timed_out => stuck(name, self.kata.step_timeout_s),
                        None if p.finished => missing(name),
                        None => Verdict {
                            test: name.clone(),
                            status: Status::Crashed,
                            message: Some(crash_message(&one.stdout, &one.stderr)),
                        },
                    }
                }
                None => missing(name),
            };
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
        })
    }

    fn list_tests(&self, cancel: &Cancel, log: &mut String) -> Result<Vec<String>> {
        let mut c = self.cargo();
        c.args(["--", "--list", "--format", "terse"]);
        let f = process::run_logged(c, Duration::from_secs(60), cancel, log)?;
        Ok(f.stdout
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect())
    }

    fn run_tests(
        &self,
        filter: &[&str],
        timeout: Duration,
        cancel: &Cancel,
        log: &mut String,
    ) -> Result<process::Finished> {
        let mut c = self.cargo();
        c.args(["--", "--color", "never"]).args(filter);
        process::run_logged(c, timeout, cancel, log)
    }
}

fn verdict_of(name: &str, o: TestOutcome, p: &libtest::Parsed) -> Verdict {
    match o {
        TestOutcome::Ok => Verdict {
            test: name.to_string(),
            status: Status::Passed,
            message: None,
        },
        TestOutcome::Ignored => Verdict {
            test: name.to_string(),
            status: Status::Ignored,
            message: None,
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
            }
        }
    }
}

fn stuck(name: &str, after: u64) -> Verdict {
    Verdict {
        test: name.to_string(),
        status: Status::Stuck,
        message: Some(format!(
            "no result after {after} s: stopped. An endless loop, or a wait without a deadline?"
        )),
    }
}

fn missing(name: &str) -> Verdict {
    Verdict {
        test: name.to_string(),
        status: Status::Missing,
        message: Some(format!(
            "tests/steps.rs has no test named `{name}` (kata.toml names it)"
        )),
    }
}

/// What a dead test process left: the runtime's last words and the signal.
fn crash_message(stdout: &str, stderr: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for l in stdout.lines().chain(stderr.lines()) {
        let t = l.trim();
        if t.contains("overflowed its stack")
            || t.starts_with("fatal runtime error")
            || t.contains(" panicked at ")
        {
            out.push(t.to_string());
        } else if let Some(i) = t.find("process didn't exit successfully:")
            && let Some(open) = t[i..].rfind(" (")
        {
            out.push(format!("the test process died {}", &t[i + open + 1..]));
        }
    }
    if out.is_empty() {
        "the test process ended without a result".to_string()
    } else {
        out.join("\n")
    }
}

/// The first compiler error (the whole block, with its code snippet) and how many there are.
pub fn compiler_errors(stderr: &str) -> (String, usize) {
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
    fn a_crash_names_the_signal() {
        let msg = crash_message(
            "running 1 test\n",
            "\nthread 'step_02_greet' has overflowed its stack\nfatal runtime error: stack overflow, aborting\nerror: test failed, to rerun pass `-p toy_kata --test steps`\n\nCaused by:\n  process didn't exit successfully: `/t/steps-1` (signal: 6, SIGABRT: process abort signal)\n",
        );
        assert_eq!(
            msg,
            "thread 'step_02_greet' has overflowed its stack\nfatal runtime error: stack overflow, aborting\nthe test process died (signal: 6, SIGABRT: process abort signal)"
        );
    }
}
