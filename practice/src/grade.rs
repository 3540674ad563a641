//! Interview grading: the step tests, then (when kata.toml has an `[interview]` table)
//! the learner's whole pipeline and the reference's on freshly generated data with a
//! random seed; their outputs must match, so a pass cannot come from fitting the
//! committed fixtures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::kata::{InterviewCheck, Kata};
use crate::process::{self, Cancel, Output};
use crate::runner::{Report, StepRunner};
use crate::state;

/// Values for the `{name}` placeholders of kata.toml commands.
pub struct Vars(HashMap<&'static str, String>);

impl Vars {
    pub fn new(repo: &Path, scratch: &Path, kata: &Kata) -> Vars {
        let mut m = HashMap::new();
        m.insert("repo", repo.display().to_string());
        m.insert("scratch", scratch.display().to_string());
        m.insert("seed", random_seed().to_string());
        m.insert("broker", broker().unwrap_or_else(|| "mock".to_string()));
        m.insert(
            "group",
            format!("practice-{}-{}", kata.name, state::stamp()),
        );
        Vars(m)
    }

    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }

    pub fn expand(&self, arg: &str) -> String {
        let mut s = arg.to_string();
        for (k, v) in &self.0 {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
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

/// The broker named by `KAFKA_BOOTSTRAP_SERVERS`, if any.
pub fn broker() -> Option<String> {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|s| !s.trim().is_empty())
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

#[derive(Debug, Clone)]
pub enum Check {
    Same {
        seed: String,
        lines: usize,
    },
    Differ {
        message: String,
    },
    /// The check itself could not run (the data generator or the reference failed).
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct Grade {
    pub steps: Report,
    pub check: Option<Check>,
}

impl Grade {
    pub fn passed(&self) -> bool {
        self.steps.all_passed()
            && !matches!(self.check, Some(Check::Differ { .. } | Check::Broken(_)))
    }
}

pub fn grade(
    repo: &Path,
    kata: &Kata,
    runs_dir: &Path,
    log: PathBuf,
    cancel: &Cancel,
) -> Result<Grade> {
    let steps = StepRunner { repo, kata, log }.run(cancel)?;
    let check = match &kata.interview {
        Some(c) if steps.all_passed() => Some(fresh_data(repo, kata, c, runs_dir, cancel)?),
        _ => None,
    };
    Ok(Grade { steps, check })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn fresh_data(
    repo: &Path,
    kata: &Kata,
    c: &InterviewCheck,
    runs_dir: &Path,
    cancel: &Cancel,
) -> Result<Check> {
    let scratch = runs_dir.join(format!("{}-{}", kata.name, state::stamp()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let vars = Vars::new(repo, &scratch, kata);
    let seed = vars.get("seed").to_string();
    let timeout = Duration::from_secs(c.timeout_s);
    let run = |argv: &[String]| -> Result<process::Finished> {
        let cmd = vars.command(repo, argv);
        process::run(cmd, timeout, cancel, Output::Capture)
    };
    let failed = |who: &str, argv: &[String], f: &process::Finished| {
        let why = if f.timed_out {
            format!("gave no result within {} s", c.timeout_s)
        } else {
            format!(
                "failed ({})",
                f.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "killed".into())
            )
        };
        let argv: Vec<String> = argv.iter().map(|a| vars.expand(a)).collect();
        format!("{who} `{}` {why}:\n{}", argv.join(" "), tail(&f.stderr, 12))
    };
    for argv in &c.prepare {
        let f = run(argv)?;
        if !f.success() {
            return Ok(Check::Broken(failed("preparing fresh data:", argv, &f)));
        }
    }
    let reference = run(&c.reference)?;
    if !reference.success() {
        return Ok(Check::Broken(failed(
            "the reference:",
            &c.reference,
            &reference,
        )));
    }
    let learner = run(&c.learner)?;
    if !learner.success() {
        return Ok(Check::Differ {
            message: failed("your pipeline:", &c.learner, &learner),
        });
    }
    let (want, got) = (normalise(&reference.stdout), normalise(&learner.stdout));
    if want == got {
        let _ = std::fs::remove_dir_all(&scratch);
        return Ok(Check::Same {
            seed,
            lines: want.len(),
        });
    }
    std::fs::write(scratch.join("expected.txt"), want.join("\n") + "\n")
        .context("cannot write expected.txt")?;
    std::fs::write(scratch.join("actual.txt"), got.join("\n") + "\n")
        .context("cannot write actual.txt")?;
    let at = want
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let line = |v: &[String]| v.get(at).cloned().unwrap_or_else(|| "(no line)".into());
    let message = format!(
        "your output differs from the reference's on fresh data (seed {seed}): {} lines expected, {} produced; first difference at line {}:\n  expected: {}\n  actual:   {}\nBoth outputs: {}",
        want.len(),
        got.len(),
        at + 1,
        line(&want),
        line(&got),
        scratch.display()
    );
    Ok(Check::Differ { message })
}

fn normalise(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
    while v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}
