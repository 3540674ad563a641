//! A tiny kata repository in a temporary folder (a workspace with one kata crate, three
//! step tests and an end-to-end test, committed to git), and helpers that drive the
//! launcher binary against it. Nothing here touches the real repository or DataFusion.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

pub const PRISTINE: &str = r#"//! Toy kata: three small steps.

/// Step 1: twice `x`.
pub fn double(x: i64) -> i64 {
    todo!("step 1: double {x}")
}

/// Step 2: `Hello, NAME!`.
pub fn greet(name: &str) -> String {
    todo!("step 2: greet {name}")
}

/// Step 3: the sum of `xs`.
pub fn total(xs: &[i64]) -> i64 {
    todo!("step 3: total of {xs:?}")
}
"#;

pub const SOLVED: &str = r#"pub fn double(x: i64) -> i64 {
    x * 2
}
pub fn greet(name: &str) -> String {
    format!("Hello, {name}!")
}
pub fn total(xs: &[i64]) -> i64 {
    xs.iter().sum()
}
"#;

/// Step 1 done, steps 2 and 3 still `todo!()`.
pub fn step_one_solved() -> String {
    PRISTINE.replace("todo!(\"step 1: double {x}\")", "x * 2")
}

const STEPS_RS: &str = r#"#[test]
fn step_01_double() {
    assert_eq!(crate::double(21), 42);
}

#[test]
fn step_02_greet() {
    assert_eq!(crate::greet("Ada"), "Hello, Ada!");
}

#[test]
fn step_03_total() {
    assert_eq!(crate::total(&[1, 2, 3]), 6, "total of [1, 2, 3]");
}

#[test]
fn end_to_end() {
    let parts = [crate::double(1), crate::greet("x").len() as i64];
    assert_eq!(crate::total(&parts), 11);
}
"#;

/// The toy's crate root: the learner's file as a module, and the step tests as the
/// library's own test module, as a real kata's `src/graded.rs` includes them.
const ROOT_RS: &str = r#"mod lib;
pub use lib::*;

#[cfg(test)]
#[path = "../tests/steps.rs"]
mod steps;
"#;

pub const KATA_TOML: &str = r#"name = "toy"
crate = "toy_kata"
title = "Toy kata: three small steps"
level = "Beginner"
needs_kafka = false
timed_target_min = 15
expert_min = 10
interview_limit_min = 20
step_timeout_s = 3
solution = "solutions/toy.rs"

[[steps]]
test = "step_01_double"
function = "double"
title = "Double a number"
hint = "Multiply by two."

[[steps]]
test = "step_02_greet"
function = "greet"
title = "Greet someone"
hint = "format!(\"Hello, {name}!\")"

[[steps]]
test = "step_03_total"
function = "total"
title = "Sum the list"
hint = "xs.iter().sum()"
"#;

pub const KATA_RS: &str = "katas/toy_kata/src/lib.rs";

/// The toy kata's whole program (timed and interview mode, when kata.toml has `[program]`).
pub const PROGRAM_RS: &str = "katas/toy_kata/program/main.rs";
pub const BLANK_PROGRAM: &str = "// Toy problem: print the answer.\nfn main() {}\n";
pub const SOLVED_PROGRAM: &str = "fn main() {\n    println!(\"solved\");\n}\n";

/// A kata.toml with a `[program]` graded by a shell script: a pass when the program
/// says `solved`, with a one-line checklist either way.
pub fn program_toml(limit_min: &str, grade_prefix: &str) -> String {
    format!(
        "{}\n[program]\nfile = \"program/main.rs\"\ngrade = [\"sh\", \"-c\", \"{grade_prefix}if grep -q solved {{file}}; then echo '✓ main: prints the answer'; exit 0; else echo '✗ main: prints nothing'; exit 1; fi\"]\ntimeout_s = 60\n",
        KATA_TOML.replace(
            "interview_limit_min = 20",
            &format!("interview_limit_min = {limit_min}")
        )
    )
}

pub struct Repo {
    pub dir: tempfile::TempDir,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl Repo {
    pub fn new() -> Repo {
        Repo::with_kata_toml(KATA_TOML)
    }

    /// The toy repository with its own kata.toml, committed.
    pub fn with_kata_toml(kata_toml: &str) -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("practice-test-")
            .tempdir()
            .unwrap();
        let r = Repo { dir };
        r.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"katas/*\"]\n",
        );
        r.write(".gitignore", "target/\n.practice/\nCargo.lock\n");
        r.write(
            "katas/toy_kata/Cargo.toml",
            "[package]\nname = \"toy_kata\"\nversion = \"0.1.0\"\nedition = \"2024\"\nautotests = false\n\n[lib]\npath = \"src/root.rs\"\ndoctest = false\n",
        );
        r.write("katas/toy_kata/src/root.rs", ROOT_RS);
        r.write(KATA_RS, PRISTINE);
        r.write(PROGRAM_RS, BLANK_PROGRAM);
        r.write("katas/toy_kata/tests/steps.rs", STEPS_RS);
        r.write("katas/toy_kata/kata.toml", kata_toml);
        r.write(
            "solutions/toy.rs",
            "// the toy reference\npub fn double(x: i64) -> i64 { x * 2 }\n",
        );
        r.git(&["init", "-q"]);
        r.git(&["add", "-A"]);
        r.git(&["commit", "-q", "-m", "toy kata"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        write(&self.file(rel), text);
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The launcher, pointed at this repository, building the kata in its own target folder.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_practice"));
        c.arg("--repo")
            .arg(self.path())
            .args(args)
            .current_dir(self.path())
            .env("CARGO_TARGET_DIR", self.file("target"))
            .env("NO_COLOR", "1")
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .env_remove("CLICOLOR_FORCE");
        c
    }

    /// Runs a command to its end with the given standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let text = stdin.to_string();
        thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        });
        let out = wait_with_deadline(child, Duration::from_secs(120));
        Run::from(out)
    }

    pub fn spawn(&self, args: &[&str]) -> Live {
        Live::spawn(self.cmd(args))
    }

    pub fn history(&self) -> serde_json::Value {
        serde_json::from_str(&self.read(".practice/history.json")).unwrap()
    }

    pub fn current(&self) -> Option<serde_json::Value> {
        let p = self.file(".practice/current.json");
        p.exists()
            .then(|| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
    }

    pub fn archives(&self) -> Vec<PathBuf> {
        let base = self.file(".practice/attempts/toy");
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&base) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

fn wait_with_deadline(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("the launcher did not finish within {limit:?}");
        }
    }
}

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert!(
            self.status.success(),
            "expected success, got {}\n{}",
            self.status,
            self.all()
        );
        self
    }

    pub fn failed(&self) -> &Run {
        assert!(!self.status.success(), "expected a failure\n{}", self.all());
        self
    }

    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    pub fn has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected `{needle}` in the output\n{}",
            self.all()
        );
        self
    }
}

/// A launcher still running: read its lines as they come, type into it.
pub struct Live {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub transcript: String,
}

impl Live {
    fn spawn(mut c: Command) -> Live {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Live {
            child,
            stdin,
            lines: rx,
            transcript: String::new(),
        }
    }

    /// Waits for a line containing `needle` and returns everything read meanwhile.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, Duration::from_secs(90))
    }

    pub fn expect_within(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    self.transcript.push_str(&line);
                    self.transcript.push('\n');
                    if line.contains(needle) {
                        return seen;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line with `{needle}` within {limit:?}; transcript:\n{}",
                        self.transcript
                    );
                }
            }
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Abandons the attempt (`a`, confirmed with `y`), sees the kata restored, and waits
    /// for the exit ([`Live::finish`]).
    pub fn abandon(mut self) -> (ExitStatus, String) {
        self.send("a");
        self.expect("Abandon this attempt?");
        self.send("y");
        self.expect("is pristine again");
        self.finish()
    }

    /// Closes stdin and waits for the exit; returns the status and the rest of the output.
    pub fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the launcher did not exit; transcript:\n{}",
                    self.transcript
                );
            }
            // Drain output meanwhile so the child never blocks on a full pipe.
            while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.transcript.push_str(&l);
                self.transcript.push('\n');
            }
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.transcript.push_str(&l);
            self.transcript.push('\n');
        }
        (status, std::mem::take(&mut self.transcript))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}
