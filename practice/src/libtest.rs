//! Reads what libtest (the `cargo test` harness) prints in its default, human format:
//! one `test NAME ... ok|FAILED|ignored` line per finished test, then a `failures:`
//! section with each failing test's captured output, then `test result: ...`.

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
}

impl Parsed {
    pub fn outcome(&self, test: &str) -> Option<Outcome> {
        self.results
            .iter()
            .find(|(n, _)| n == test)
            .map(|(_, o)| *o)
    }
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
                section = Some((name.to_string(), Vec::new()));
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
            let name = name.split(" - ").next().unwrap_or(name).trim();
            let outcome = match verdict.trim() {
                "ok" => Outcome::Ok,
                "FAILED" => Outcome::Failed,
                v if v.starts_with("ignored") => Outcome::Ignored,
                _ => continue,
            };
            p.results.push((name.to_string(), outcome));
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

/// Where the panic happened (`file:line:col`), when the message says.
pub fn panic_location(section: &str) -> Option<String> {
    let head = section.lines().find(|l| is_panic_line(l))?;
    let rest = head.split(" panicked at ").nth(1)?.trim_end();
    rest.strip_suffix(':').map(str::to_string)
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
