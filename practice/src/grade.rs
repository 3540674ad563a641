//! Whole-program grading: the kata's `[program]` command (the grader,
//! `cargo run -p grader -- <kata> --file FILE`) builds the learner's single-file
//! program and grades it end to end on fresh data. Its exit code is the verdict:
//! 0 passed, 1 failed, anything else: the grading itself could not run.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::kata::Kata;
use crate::process::{self, Cancel, Output};
use crate::runner::{Progress, cargo_progress, without_progress};
use crate::state;

/// Values for the `{name}` placeholders of kata.toml commands.
pub struct Vars(HashMap<&'static str, String>);

impl Vars {
    pub fn new(repo: &Path, scratch: &Path, kata: &Kata) -> Vars {
        let mut m = HashMap::new();
        m.insert("repo", repo.display().to_string());
        m.insert("scratch", scratch.display().to_string());
        m.insert("seed", random_seed().to_string());
        m.insert("broker", program_broker_arg());
        m.insert(
            "group",
            format!("practice-{}-{}", kata.name, state::stamp()),
        );
        Vars(m)
    }

    pub fn set(&mut self, k: &'static str, v: String) {
        self.0.insert(k, v);
    }

    pub fn expand(&self, arg: &str) -> String {
        let mut s = arg.to_string();
        for (k, v) in &self.0 {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    /// A command from kata.toml as it reads there, placeholders filled in: `cargo run …`,
    /// not the full path of the cargo that runs it.
    pub fn describe(&self, argv: &[String]) -> String {
        argv.iter()
            .map(|a| self.expand(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A command from kata.toml, ready to run from the repository root. `cargo` is the
    /// cargo that runs the launcher.
    pub fn command(&self, repo: &Path, argv: &[String]) -> Command {
        let prog = self.expand(&argv[0]);
        let mut c = if prog == "cargo" {
            Command::new(crate::cargo_program())
        } else {
            Command::new(prog)
        };
        c.current_dir(repo)
            .args(argv[1..].iter().map(|a| self.expand(a)));
        c
    }
}

/// The broker of the tests and the grader (`kafka_choice`'s rule), in one line.
pub fn broker_line() -> String {
    match kafka_choice::choose() {
        Ok(choice) => choice.describe(),
        Err(e) => e.to_string(),
    }
}

/// `{broker}`: the `--bootstrap` of the programs the launcher starts (reference mode):
/// `KAFKA_BOOTSTRAP_SERVERS`, else `mock` (their own mock cluster).
fn program_broker_arg() -> String {
    kafka_choice::choose_for_programs()
        .map(|choice| choice.bootstrap_arg().to_string())
        .unwrap_or_else(|_| kafka_choice::MOCK_BOOTSTRAP.to_string())
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() % 1_000_000_000
}

/// How a grading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// The grader could not grade (no broker, a crash of its own, its time limit).
    Broken,
}

/// A grading: its verdict and what the grader printed (the checklist).
#[derive(Debug, Clone)]
pub struct Graded {
    pub verdict: Verdict,
    pub report: String,
    pub took: Duration,
}

/// Grades `file` with the kata's `[program]` command. `output` says whether the
/// grader's report is shown as it comes (`cargo practice grade`) or captured (a
/// session prints it in its own place).
pub fn grade(
    repo: &Path,
    kata: &Kata,
    file: &Path,
    cancel: &Cancel,
    output: Output,
    progress: &dyn Fn(Progress),
) -> Result<Graded> {
    grade_with(repo, kata, file, &[], cancel, output, progress)
}

/// [`grade`] with arguments added to the grading command (`--seed N`, `--chaos N`).
/// `progress` hears what cargo compiles first, when the output is captured.
pub fn grade_with(
    repo: &Path,
    kata: &Kata,
    file: &Path,
    extra: &[String],
    cancel: &Cancel,
    output: Output,
    progress: &dyn Fn(Progress),
) -> Result<Graded> {
    let Some(program) = &kata.program else {
        anyhow::bail!(
            "kata `{}` has no whole program to grade (no `[program]` in its kata.toml)",
            kata.name
        );
    };
    let mut vars = Vars::new(repo, &std::env::temp_dir(), kata);
    vars.set("file", file.display().to_string());
    let mut cmd = vars.command(repo, &program.grade);
    cmd.args(extra);
    let mut watch = cargo_progress(progress);
    let timeout = Duration::from_secs(program.timeout_s);
    let f = process::run_watched(cmd, timeout, cancel, output, Some(&mut watch))?;
    let mut report = f.stdout.trim_end().to_string();
    let verdict = match f.status.and_then(|s| s.code()) {
        _ if f.timed_out => {
            report.push_str(&format!(
                "\nThe grading took longer than {} s and was stopped.",
                program.timeout_s
            ));
            Verdict::Broken
        }
        Some(0) => Verdict::Passed,
        Some(1) => Verdict::Failed,
        _ => Verdict::Broken,
    };
    if verdict == Verdict::Broken && !f.stderr.trim().is_empty() {
        report.push('\n');
        report.push_str(&tail(&without_progress(&f.stderr), 12));
    }
    Ok(Graded {
        verdict,
        report,
        took: f.elapsed,
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
