//! `.practice/` (git-ignored): the attempt in progress (`current.json`), every
//! finished attempt (`history.json`), the archived practice files (`attempts/`),
//! scratch space for grading runs (`runs/`) and the last test log (`last-run.log`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Step by step: checklist, hints on request, tests rerun on every save.
    Guided,
    /// A live timer against the target and expert times; splits per step.
    Timed,
    /// The limit counts down, no hints, graded when you say so.
    Interview,
    /// Run the reference pipeline and show its output.
    Reference,
    /// The weakest steps only (`cargo practice drill`): timed like `timed --steps`, the
    /// other steps hold the learner's own archived code. Never counts for levels.
    #[value(skip)]
    Drill,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Guided => "guided",
            Mode::Timed => "timed",
            Mode::Interview => "interview",
            Mode::Reference => "reference",
            Mode::Drill => "drill",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptResult {
    /// Every step test passed, or the whole program passed grading.
    Passed,
    /// Interview mode: the limit ended the attempt before a passing grading.
    Failed,
    Abandoned,
    /// Ended by `cargo practice reset` while paused.
    Reset,
}

impl AttemptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Passed => "passed",
            AttemptResult::Failed => "failed",
            AttemptResult::Abandoned => "abandoned",
            AttemptResult::Reset => "reset",
        }
    }
}

/// Which file an attempt was written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PracticeFile {
    /// The step file (`src/lib.rs`): one function per step, contracts given.
    #[default]
    Steps,
    /// The blank program: the whole pipeline from a problem statement.
    Program,
}

impl PracticeFile {
    pub fn as_str(self) -> &'static str {
        match self {
            PracticeFile::Steps => "steps",
            PracticeFile::Program => "program",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// 1-based step number; 0 for a test that is not a step (`end_to_end`).
    pub step: usize,
    pub test: String,
    /// Attempt time at which the code that first passed this test was saved.
    pub at_s: f64,
}

/// The attempt in progress (`current.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub kata: String,
    pub mode: Mode,
    /// The step file or the whole program (older attempts: the step file).
    #[serde(default)]
    pub file: PracticeFile,
    pub started_at: String,
    /// Practice time so far; paused time does not count.
    pub elapsed_s: f64,
    #[serde(default)]
    pub splits: Vec<Split>,
    /// Steps (1-based) whose hint was shown.
    #[serde(default)]
    pub hints: Vec<usize>,
    #[serde(default)]
    pub gradings: u32,
    #[serde(default)]
    pub resumed: u32,
    /// The launcher process running it, while one does.
    #[serde(default)]
    pub pid: Option<u32>,
    /// One line about the last test run, for `status`.
    #[serde(default)]
    pub last_run: Option<String>,
    /// Each test's time in its last passing run (seconds from the run's start): bounds
    /// its later runs, so that a step that loops is stopped soon.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub times: BTreeMap<String, f64>,
    /// Test runs in which each step (1-based) failed, crashed or got stuck (a `todo!()`
    /// is not a failure).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_runs: BTreeMap<usize, u32>,
    /// A drill: the steps (1-based) left `todo!()`; only their splits are taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill: Vec<usize>,
}

impl Attempt {
    /// A new attempt, started now.
    pub fn new(kata: &str, mode: Mode, file: PracticeFile) -> Attempt {
        Attempt {
            kata: kata.to_string(),
            mode,
            file,
            started_at: now(),
            elapsed_s: 0.0,
            splits: Vec::new(),
            hints: Vec::new(),
            gradings: 0,
            resumed: 0,
            pid: None,
            last_run: None,
            times: BTreeMap::new(),
            failed_runs: BTreeMap::new(),
            drill: Vec::new(),
        }
    }

    /// Counts the hint of `step` (1-based), once.
    pub fn note_hint(&mut self, step: usize) {
        if !self.hints.contains(&step) {
            self.hints.push(step);
        }
    }

    /// Adds the hints counted meanwhile in `saved` (the same attempt as saved on disk,
    /// where `cargo practice hint` counts them from another terminal).
    pub fn absorb_hints(&mut self, saved: Option<&Attempt>) {
        if let Some(saved) =
            saved.filter(|d| d.kata == self.kata && d.started_at == self.started_at)
        {
            for &h in &saved.hints {
                self.note_hint(h);
            }
        }
    }
}

/// One finished attempt in `history.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub kata: String,
    pub mode: Mode,
    /// The step file or the whole program (older entries: the step file).
    #[serde(default)]
    pub file: PracticeFile,
    pub started_at: String,
    pub ended_at: String,
    /// Practice time to the result (for a pass: when the passing code was saved or graded).
    pub duration_s: f64,
    pub result: AttemptResult,
    pub hints_used: usize,
    #[serde(default)]
    pub hinted_steps: Vec<usize>,
    #[serde(default)]
    pub splits: Vec<Split>,
    #[serde(default)]
    pub resumed: u32,
    #[serde(default)]
    pub gradings: u32,
    /// Where the practice file was archived, relative to the repository root.
    #[serde(default)]
    pub archive: Option<String>,
    /// See `Attempt::failed_runs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_runs: BTreeMap<usize, u32>,
    /// See `Attempt::drill`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill: Vec<usize>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub version: u32,
    pub attempts: Vec<Entry>,
}

pub struct Practice {
    pub dir: PathBuf,
}

impl Practice {
    pub fn new(repo: &Path) -> Practice {
        Practice {
            dir: repo.join(".practice"),
        }
    }

    /// Creates `.practice/` with its own `.gitignore`, so it stays out of git even in a
    /// checkout whose `.gitignore` forgot it.
    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n")
                .with_context(|| format!("cannot write {}", ignore.display()))?;
        }
        Ok(())
    }

    pub fn current_path(&self) -> PathBuf {
        self.dir.join("current.json")
    }
    pub fn history_path(&self) -> PathBuf {
        self.dir.join("history.json")
    }
    pub fn last_run_log(&self) -> PathBuf {
        self.dir.join("last-run.log")
    }
    pub fn attempts_dir(&self) -> PathBuf {
        self.dir.join("attempts")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }
    /// Per kata crate, the rustc command of its last cargo build and what that build
    /// read (`direct.rs`).
    pub fn builds_dir(&self) -> PathBuf {
        self.dir.join("builds")
    }

    pub fn load_current(&self) -> Result<Option<Attempt>> {
        let p = self.current_path();
        if !p.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let a = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid attempt file; move it away to start afresh (your code is untouched)",
                p.display()
            )
        })?;
        Ok(Some(a))
    }

    pub fn save_current(&self, a: &Attempt) -> Result<()> {
        self.ensure()?;
        write_json(&self.current_path(), a)
    }

    pub fn clear_current(&self) -> Result<()> {
        let p = self.current_path();
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }

    pub fn load_history(&self) -> Result<History> {
        let p = self.history_path();
        if !p.exists() {
            return Ok(History {
                version: 1,
                attempts: Vec::new(),
            });
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let h: History = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid history file", p.display()))?;
        if h.version != 1 {
            bail!(
                "{} has version {}; this launcher reads version 1",
                p.display(),
                h.version
            );
        }
        Ok(h)
    }

    pub fn append_history(&self, e: Entry) -> Result<()> {
        self.ensure()?;
        let mut h = self.load_history()?;
        h.version = 1;
        h.attempts.push(e);
        write_json(&self.history_path(), &h)
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Now, as an RFC 3339 local time (`2026-05-01T10:15:00+02:00`).
pub fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A folder-friendly timestamp: `20260501-101500`.
pub fn stamp() -> String {
    chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
}

/// `mm:ss`, or `h:mm:ss` past an hour.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).floor() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// The date and time of an RFC 3339 stamp, `2026-05-01 10:15`, or the text as is.
pub fn short_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(clock(0.0), "00:00");
        assert_eq!(clock(59.9), "00:59");
        assert_eq!(clock(15.0 * 60.0), "15:00");
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(short_date("2026-05-01T10:15:00+02:00"), "2026-05-01 10:15");
    }

    #[test]
    fn history_round_trips_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = Practice::new(dir.path());
        assert!(p.load_history().unwrap().attempts.is_empty());
        p.append_history(Entry {
            kata: "batch".into(),
            mode: Mode::Timed,
            file: PracticeFile::Steps,
            started_at: "2026-05-01T10:00:00+00:00".into(),
            ended_at: "2026-05-01T10:12:00+00:00".into(),
            duration_s: 720.0,
            result: AttemptResult::Passed,
            hints_used: 0,
            hinted_steps: vec![],
            splits: vec![],
            resumed: 0,
            gradings: 0,
            archive: None,
            failed_runs: BTreeMap::new(),
            drill: vec![],
        })
        .unwrap();
        assert_eq!(p.load_history().unwrap().attempts.len(), 1);
        assert!(dir.path().join(".practice/.gitignore").exists());
        std::fs::write(p.history_path(), "{ not json").unwrap();
        let err = format!("{:#}", p.load_history().unwrap_err());
        assert!(
            err.contains("history.json is not a valid history file"),
            "{err}"
        );
    }
}
