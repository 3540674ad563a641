//! Reads what libtest (the `cargo test` harness) prints in its default, human format:
//! one `test NAME ... ok|FAILED|ignored` line per finished test, then a `failures:`
//! section with each failing test's captured output, then `test result: ...`.
//!
//! A kata's step tests are a module of its library (`graded::steps`), so libtest names
//! them by their path (`graded::steps::step_01_read`); a verdict is known by the test's
//! own name (`step_01_read`, as `kata.toml` names it), and [`Parsed::paths`] keeps the
//! path for running one test again with `--exact`.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Ignored,
}

#[derive(Debug, Default)]
pub struct Parsed {
    /// `running N tests`.
    pub planned: Option<usize>,
    /// Finished tests, in the order they finished.
    pub results: Vec<(String, Outcome)>,
    /// Each failing test's captured output (the `---- NAME stdout ----` section).
    pub failures: HashMap<String, String>,
    /// The closing `test result:` line was printed: the harness ran to its end.
    pub finished: bool,
    /// Each test's path as libtest prints it (`graded::steps::step_01_read`), by name.
    pub paths: HashMap<String, String>,
}

impl Parsed {
    pub fn outcome(&self, test: &str) -> Option<Outcome> {
        self.results
            .iter()
            .find(|(n, _)| n == test)
            .map(|(_, o)| *o)
    }
}

/// A test's own name: its path without the modules (`graded::steps::step_01_read` →
/// `step_01_read`).
pub fn test_name(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

pub fn parse(stdout: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut section: Option<(String, Vec<&str>)> = None;
    let mut in_failures = false;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("running ")
            && let Some(n) = rest
                .strip_suffix(" tests")
                .or_else(|| rest.strip_suffix(" test"))
            && let Ok(n) = n.trim().parse()
        {
            p.planned = Some(n);
            continue;
        }
        if line.starts_with("test result: ") {
            if let Some((name, lines)) = section.take() {
                p.failures.insert(name, join(&lines));
            }
            p.finished = true;
            in_failures = false;
            continue;
        }
        if line == "failures:" {
            if let Some((name, lines)) = section.take() {
                p.failures.insert(name, join(&lines));
            }
            in_failures = true;
            continue;
        }
        if in_failures {
            if let Some(name) = line
                .strip_prefix("---- ")
                .and_then(|r| r.strip_suffix(" stdout ----"))
            {
                if let Some((prev, lines)) = section.take() {
                    p.failures.insert(prev, join(&lines));
                }
                section = Some((test_name(name).to_string(), Vec::new()));
                continue;
            }
            if let Some((_, lines)) = section.as_mut() {
                lines.push(line);
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, verdict)) = rest.rsplit_once(" ... ")
        {
            let path = name.split(" - ").next().unwrap_or(name).trim();
            let outcome = match verdict.trim() {
                "ok" => Outcome::Ok,
                "FAILED" => Outcome::Failed,
                v if v.starts_with("ignored") => Outcome::Ignored,
                _ => continue,
            };
            let name = test_name(path).to_string();
            p.paths.insert(name.clone(), path.to_string());
            p.results.push((name, outcome));
        }
    }
    if let Some((name, lines)) = section.take() {
        p.failures.insert(name, join(&lines));
    }
    p
}

fn join(lines: &[&str]) -> String {
    lines.join("\n").trim().to_string()
}

/// The panic message inside a failing test's captured output, without the
/// `thread '...' panicked at file:line:col:` line and the backtrace note; the
/// whole section when it holds no panic (a test returning `Err`).
pub fn panic_message(section: &str) -> String {
    let lines: Vec<&str> = section.lines().collect();
    let Some(start) = lines.iter().position(|l| is_panic_line(l)) else {
        return section.trim().to_string();
    };
    let mut msg: Vec<&str> = Vec::new();
    let head = lines[start];
    // Old format: `thread 'x' panicked at 'message', file:line:col`.
    if let Some(rest) = head.split(" panicked at ").nth(1)
        && !rest.trim_end().ends_with(':')
    {
        msg.push(rest);
    }
    for l in &lines[start + 1..] {
        if l.starts_with("note: run with `RUST_BACKTRACE") || l.starts_with("stack backtrace:") {
            break;
        }
        msg.push(l);
    }
    let out = msg.join("\n").trim().to_string();
    if out.is_empty() {
        head.trim().to_string()
    } else {
        out
    }
}

/// `thread 'name' panicked at …`; recent Rust adds the thread id: `thread 'name' (1234) panicked at …`.
fn is_panic_line(l: &str) -> bool {
    l.starts_with("thread '") && l.contains(" panicked at ")
}

/// Where the panic happened (`file:line:col`), when the message says. The step tests'
/// file is a module of the kata's library by `#[path = "../tests/steps.rs"]`, which rustc
/// names `katas/k/src/../tests/steps.rs`: shown as `katas/k/tests/steps.rs`.
pub fn panic_location(section: &str) -> Option<String> {
    let head = section.lines().find(|l| is_panic_line(l))?;
    let rest = head.split(" panicked at ").nth(1)?.trim_end();
    rest.strip_suffix(':').map(without_parent_dirs)
}

/// `a/b/../c` as `a/c` (the text only: no link is followed).
pub fn without_parent_dirs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match parts.last() {
            Some(&last) if part == ".." && !matches!(last, ".." | "." | "") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// The step's `todo!()` is still there.
pub fn is_todo(message: &str) -> bool {
    message.starts_with("not yet implemented")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "
running 4 tests
test step_02_greet ... FAILED
test step_01_double ... ok
test step_04_slow ... ignored, needs a broker
test step_03_sum ... FAILED

failures:

---- step_02_greet stdout ----

thread 'step_02_greet' panicked at katas/toy_kata/src/lib.rs:5:5:
not yet implemented: step 2: greet
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- step_03_sum stdout ----

thread 'step_03_sum' (4242) panicked at katas/toy_kata/tests/steps.rs:12:5:
assertion `left == right` failed: sum of [1, 2]
  left: 4
 right: 3


failures:
    step_02_greet
    step_03_sum

test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn verdicts_and_messages_are_read() {
        let p = parse(RUN);
        assert_eq!(p.planned, Some(4));
        assert!(p.finished);
        assert_eq!(p.outcome("step_01_double"), Some(Outcome::Ok));
        assert_eq!(p.outcome("step_02_greet"), Some(Outcome::Failed));
        assert_eq!(p.outcome("step_04_slow"), Some(Outcome::Ignored));
        let greet = panic_message(&p.failures["step_02_greet"]);
        assert_eq!(greet, "not yet implemented: step 2: greet");
        assert!(is_todo(&greet));
        assert_eq!(
            panic_message(&p.failures["step_03_sum"]),
            "assertion `left == right` failed: sum of [1, 2]\n  left: 4\n right: 3"
        );
        assert_eq!(
            panic_location(&p.failures["step_03_sum"]).as_deref(),
            Some("katas/toy_kata/tests/steps.rs:12:5")
        );
    }

    #[test]
    fn tests_in_a_module_are_known_by_their_own_name() {
        let p = parse(
            "running 2 tests\ntest graded::steps::step_01_read ... ok\n\
             test graded::steps::step_02_clean ... FAILED\n\nfailures:\n\n\
             ---- graded::steps::step_02_clean stdout ----\n\n\
             thread 'graded::steps::step_02_clean' panicked at katas/k/src/../tests/steps.rs:9:5:\n\
             expected 3 rows\n\nfailures:\n    graded::steps::step_02_clean\n\n\
             test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n",
        );
        assert_eq!(p.outcome("step_01_read"), Some(Outcome::Ok));
        assert_eq!(p.outcome("step_02_clean"), Some(Outcome::Failed));
        assert_eq!(p.paths["step_02_clean"], "graded::steps::step_02_clean");
        let section = &p.failures["step_02_clean"];
        assert_eq!(panic_message(section), "expected 3 rows");
        assert_eq!(
            panic_location(section).as_deref(),
            Some("katas/k/tests/steps.rs:9:5")
        );
        assert_eq!(without_parent_dirs("../a/b/../c"), "../a/c");
    }

    #[test]
    fn a_run_cut_short_has_no_result_line() {
        let p = parse("\nrunning 2 tests\ntest step_01_double ... ok\n");
        assert!(!p.finished);
        assert_eq!(p.results.len(), 1);
        assert_eq!(p.outcome("step_02_greet"), None);
    }

    #[test]
    fn an_error_returned_by_a_test_is_kept_whole() {
        assert_eq!(
            panic_message("\nError: file not found\n"),
            "Error: file not found"
        );
    }
}
