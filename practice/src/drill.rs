//! Drills of the weakest steps: which steps a learner's history says are weak, and the
//! splice that puts the learner's own archived code back into the other steps.
//!
//! The choice rule, per step of a kata, over its last `RECENT` attempts on the step file:
//! - slowness: the step's own time (its split minus the previous split of that attempt),
//!   averaged over its last `SPLITS` splits, divided by its share of the target time
//!   (target ÷ number of steps): 1.0 means on pace, 2.0 twice its share;
//! - plus `FAIL_WEIGHT` per test run in which the step failed (a `todo!()` is no failure);
//! - plus `HINT_WEIGHT` per attempt in which its hint was shown.
//!
//! The highest score is drilled; the next two too when they are weak as well (a score of
//! at least `WEAK` and at least half the top one). No score above zero: nothing to drill.

use std::ops::Range;

use crate::kata::Kata;
use crate::state::{Entry, Mode, PracticeFile, clock};

/// How many of the kata's latest step-file attempts are looked at.
pub const RECENT: usize = 5;
/// How many of a step's latest splits its slowness averages.
const SPLITS: usize = 3;
const FAIL_WEIGHT: f64 = 0.25;
const HINT_WEIGHT: f64 = 0.5;
/// A second or third step is drilled only this weak (slower than its share, or helped).
const WEAK: f64 = 1.0;
/// At most this many steps per drill.
pub const MAX_STEPS: usize = 3;

/// One step picked for a drill, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Weak {
    /// 1-based.
    pub step: usize,
    pub score: f64,
    /// Mean own time over its last splits, when it has any.
    pub own_s: Option<f64>,
    pub splits: usize,
    pub failed_runs: u32,
    pub hinted: usize,
}

impl Weak {
    /// One line: the step and what made it weak.
    pub fn why(&self, kata: &Kata) -> String {
        let mut parts = Vec::new();
        if let Some(own) = self.own_s {
            parts.push(format!(
                "{} per split vs its share {} (×{:.1}, last {} split{})",
                clock(own),
                clock(share_s(kata)),
                own / share_s(kata),
                self.splits,
                plural(self.splits)
            ));
        }
        if self.failed_runs > 0 {
            parts.push(format!(
                "{} failed run{}",
                self.failed_runs,
                plural(self.failed_runs as usize)
            ));
        }
        if self.hinted > 0 {
            parts.push(format!(
                "hint shown in {} of the last {RECENT} attempts",
                self.hinted
            ));
        }
        format!("{}: {}", name(kata, self.step), parts.join(" · "))
    }

    /// A few words, for `status`.
    pub fn short(&self, kata: &Kata) -> String {
        let mut parts = Vec::new();
        if let Some(own) = self.own_s {
            parts.push(format!("×{:.1} its share", own / share_s(kata)));
        }
        if self.failed_runs > 0 {
            parts.push(format!("{} failed", self.failed_runs));
        }
        if self.hinted > 0 {
            parts.push(format!("{} hint{}", self.hinted, plural(self.hinted)));
        }
        format!("{} ({})", name(kata, self.step), parts.join(", "))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `step 3 total`.
pub fn name(kata: &Kata, step: usize) -> String {
    match kata.steps.get(step.wrapping_sub(1)) {
        Some(s) => format!(
            "step {step} {}",
            s.function.as_deref().unwrap_or(s.title.as_str())
        ),
        None => format!("step {step}"),
    }
}

/// A step's share of the kata's target time.
pub fn share_s(kata: &Kata) -> f64 {
    kata.target_s() / kata.steps.len().max(1) as f64
}

/// Each step's own time in an attempt, in the order the steps passed: its split minus
/// the previous split (the first: its split).
pub fn own_times(e: &Entry) -> Vec<(usize, f64)> {
    let mut splits: Vec<_> = e.splits.iter().filter(|s| s.step > 0).collect();
    splits.sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.step.cmp(&b.step)));
    let mut prev = 0.0;
    splits
        .iter()
        .map(|s| {
            let own = (s.at_s - prev).max(0.0);
            prev = s.at_s;
            (s.step, own)
        })
        .collect()
}

/// The kata's attempts the choice looks at: the latest `RECENT` on the step file.
fn recent<'a>(kata: &Kata, history: &'a [Entry]) -> Vec<&'a Entry> {
    let mut v: Vec<&Entry> = history
        .iter()
        .rev()
        .filter(|e| e.kata == kata.name && e.file == PracticeFile::Steps)
        .filter(|e| e.mode != Mode::Reference)
        .take(RECENT)
        .collect();
    v.reverse();
    v
}

/// Every step's score, weakest first (ties: the earlier step); steps without any
/// evidence are left out.
pub fn scores(kata: &Kata, history: &[Entry]) -> Vec<Weak> {
    let recent = recent(kata, history);
    let own: Vec<Vec<(usize, f64)>> = recent.iter().map(|e| own_times(e)).collect();
    let mut all: Vec<Weak> = (1..=kata.steps.len())
        .map(|step| {
            let times: Vec<f64> = own
                .iter()
                .rev()
                .filter_map(|o| o.iter().find(|(s, _)| *s == step).map(|(_, t)| *t))
                .take(SPLITS)
                .collect();
            let own_s = (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64);
            let failed_runs: u32 = recent.iter().filter_map(|e| e.failed_runs.get(&step)).sum();
            let hinted = recent
                .iter()
                .filter(|e| e.hinted_steps.contains(&step))
                .count();
            let score = own_s.map_or(0.0, |t| t / share_s(kata))
                + FAIL_WEIGHT * f64::from(failed_runs)
                + HINT_WEIGHT * hinted as f64;
            Weak {
                step,
                score,
                own_s,
                splits: times.len(),
                failed_runs,
                hinted,
            }
        })
        .filter(|w| w.score > 0.0)
        .collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.step.cmp(&b.step)));
    all
}

/// The 1–3 steps to drill; empty when the history says nothing about the kata.
pub fn weakest(kata: &Kata, history: &[Entry]) -> Vec<Weak> {
    let all = scores(kata, history);
    let Some(top) = all.first().map(|w| w.score) else {
        return Vec::new();
    };
    all.into_iter()
        .enumerate()
        .filter(|(i, w)| *i == 0 || (w.score >= WEAK && w.score >= top / 2.0))
        .map(|(_, w)| w)
        .take(MAX_STEPS)
        .collect()
}

/// The kata with the weakest step, and its steps to drill.
pub fn weakest_kata<'k>(katas: &'k [Kata], history: &[Entry]) -> Option<(&'k Kata, Vec<Weak>)> {
    katas
        .iter()
        .map(|k| (k, weakest(k, history)))
        .filter(|(_, w)| !w.is_empty())
        .max_by(|a, b| a.1[0].score.total_cmp(&b.1[0].score))
}

// ---------------------------------------------------------------- splice

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// When a comment, a string or a char literal starts at `i`: the index just after it.
fn literal_end(src: &str, i: usize) -> Option<usize> {
    let b = src.as_bytes();
    let at = |j: usize| b.get(j).copied();
    match b[i] {
        b'/' if at(i + 1) == Some(b'/') => Some(src[i..].find('\n').map_or(b.len(), |n| i + n + 1)),
        b'/' if at(i + 1) == Some(b'*') => {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && at(j + 1) == Some(b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && at(j + 1) == Some(b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            Some(j)
        }
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            Some((j + 1).min(b.len()))
        }
        b'\'' => {
            if at(i + 1) == Some(b'\\') {
                return src.get(i + 3..)?.find('\'').map(|n| i + 3 + n + 1);
            }
            let c = src[i + 1..].chars().next()?;
            let close = i + 1 + c.len_utf8();
            // Otherwise a lifetime or a label.
            (at(close) == Some(b'\'')).then_some(close + 1)
        }
        b'r' => {
            // r"…", r#"…"#, and the same after b or c; not r#ident.
            let prefixed =
                i >= 1 && matches!(b[i - 1], b'b' | b'c') && (i < 2 || !is_ident(b[i - 2]));
            if i > 0 && is_ident(b[i - 1]) && !prefixed {
                return None;
            }
            let mut j = i + 1;
            while at(j) == Some(b'#') {
                j += 1;
            }
            if at(j) != Some(b'"') {
                return None;
            }
            let close = format!("\"{}", "#".repeat(j - i - 1));
            Some(
                src[j + 1..]
                    .find(&close)
                    .map_or(b.len(), |n| j + 1 + n + close.len()),
            )
        }
        _ => None,
    }
}

/// The span of the body (braces included) of the function `name` defined at the top
/// level of `src`, skipping comments, strings, chars and nested items.
pub fn body_span(src: &str, name: &str) -> Option<Range<usize>> {
    let b = src.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        if let Some(end) = literal_end(src, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'f' if depth == 0
                && src[i..].starts_with("fn")
                && (i == 0 || !is_ident(b[i - 1]))
                && b.get(i + 2).is_some_and(|c| c.is_ascii_whitespace()) =>
            {
                let rest = &src[i + 2..];
                let ident = rest.trim_start();
                let start = i + 2 + (rest.len() - ident.len());
                let len = ident.bytes().take_while(|&c| is_ident(c)).count();
                if &ident[..len] == name
                    && let Some(span) = body_after(src, start + len)
                {
                    return Some(span);
                }
                i = start + len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// From the end of a function's name: its body, or `None` for a declaration (`;`).
fn body_after(src: &str, from: usize) -> Option<Range<usize>> {
    let b = src.as_bytes();
    let mut i = from;
    let mut parens = 0usize;
    let open = loop {
        if i >= b.len() {
            return None;
        }
        if let Some(end) = literal_end(src, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'(' | b'[' => parens += 1,
            b')' | b']' => parens = parens.saturating_sub(1),
            b';' if parens == 0 => return None,
            b'{' if parens == 0 => break i,
            _ => {}
        }
        i += 1;
    };
    let (mut depth, mut i) = (0usize, open);
    while i < b.len() {
        if let Some(end) = literal_end(src, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open..i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The function body (braces included) of `name` in `src`.
pub fn body<'s>(src: &'s str, name: &str) -> Option<&'s str> {
    body_span(src, name).map(|r| &src[r])
}

/// `into` with the body of `name` replaced by `body` (braces included).
pub fn splice(into: &str, name: &str, body: &str) -> Option<String> {
    let span = body_span(into, name)?;
    Some(format!(
        "{}{body}{}",
        &into[..span.start],
        &into[span.end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AttemptResult, Split};

    fn toy() -> Kata {
        let toml = r#"name = "toy"
crate = "toy_kata"
title = "Toy"
timed_target_min = 15
expert_min = 10
interview_limit_min = 20

[[steps]]
test = "step_01_double"
function = "double"
title = "Double"

[[steps]]
test = "step_02_greet"
function = "greet"
title = "Greet"

[[steps]]
test = "step_03_total"
function = "total"
title = "Total"
"#;
        toml::from_str(toml).unwrap()
    }

    /// An attempt with splits at these minutes (step, minute).
    fn attempt(mode: Mode, splits: &[(usize, f64)]) -> Entry {
        Entry {
            kata: "toy".into(),
            mode,
            file: PracticeFile::Steps,
            started_at: "2026-05-01T10:00:00+00:00".into(),
            ended_at: "2026-05-01T10:30:00+00:00".into(),
            duration_s: splits.iter().map(|s| s.1 * 60.0).fold(0.0, f64::max),
            result: AttemptResult::Passed,
            hints_used: 0,
            hinted_steps: vec![],
            splits: splits
                .iter()
                .map(|&(step, min)| Split {
                    step,
                    test: format!("step_0{step}"),
                    at_s: min * 60.0,
                })
                .collect(),
            resumed: 0,
            gradings: 0,
            archive: None,
            failed_runs: Default::default(),
            drill: vec![],
        }
    }

    fn picked(history: &[Entry]) -> Vec<usize> {
        weakest(&toy(), history).iter().map(|w| w.step).collect()
    }

    #[test]
    fn own_times_are_split_differences_in_the_order_steps_passed() {
        let e = attempt(Mode::Timed, &[(2, 9.0), (1, 3.0), (3, 9.0)]);
        assert_eq!(own_times(&e), vec![(1, 180.0), (2, 360.0), (3, 0.0)]);
    }

    #[test]
    fn no_history_nothing_to_drill() {
        assert!(picked(&[]).is_empty());
        // Another kata's attempts, and a whole-program attempt, say nothing about the step file.
        let mut other = attempt(Mode::Timed, &[(1, 20.0)]);
        other.kata = "batch".into();
        let mut program = attempt(Mode::Timed, &[(1, 20.0)]);
        program.file = PracticeFile::Program;
        assert!(picked(&[other, program]).is_empty());
    }

    #[test]
    fn the_slowest_step_against_its_share_is_picked_alone_when_the_rest_are_on_pace() {
        // Share: 15 min / 3 steps = 5 min. Step 2 takes 12 min, the others 2 and 1.
        let h = [attempt(Mode::Timed, &[(1, 2.0), (2, 14.0), (3, 15.0)])];
        assert_eq!(picked(&h), vec![2]);
        let w = &weakest(&toy(), &h)[0];
        assert_eq!(
            w.why(&toy()),
            "step 2 greet: 12:00 per split vs its share 05:00 (×2.4, last 1 split)"
        );
    }

    #[test]
    fn up_to_three_weak_steps_slowest_first() {
        // Every step well over its share: all three, the slowest first.
        let h = [attempt(Mode::Timed, &[(1, 8.0), (2, 20.0), (3, 30.0)])];
        assert_eq!(picked(&h), vec![2, 3, 1]);
    }

    #[test]
    fn recent_splits_count_and_old_ones_fall_out() {
        // Step 3 was slow long ago; the last five attempts have step 1 slow.
        let mut h = vec![attempt(Mode::Timed, &[(1, 1.0), (2, 2.0), (3, 40.0)])];
        for _ in 0..RECENT {
            h.push(attempt(Mode::Timed, &[(1, 9.0), (2, 10.0), (3, 11.0)]));
        }
        assert_eq!(picked(&h), vec![1]);
        // A step's last three splits are averaged: one fast drill does not clear it.
        h.push(attempt(Mode::Drill, &[(1, 1.0)]));
        assert_eq!(picked(&h), vec![1]);
    }

    #[test]
    fn failed_runs_and_hints_make_a_step_weak_even_when_its_split_was_fast() {
        let mut e = attempt(Mode::Guided, &[(1, 1.0), (2, 2.0), (3, 3.0)]);
        e.hinted_steps = vec![3];
        e.failed_runs.insert(3, 4);
        e.failed_runs.insert(1, 1);
        let w = weakest(&toy(), &[e]);
        assert_eq!(w.iter().map(|w| w.step).collect::<Vec<_>>(), vec![3]);
        assert_eq!(
            w[0].why(&toy()),
            "step 3 total: 01:00 per split vs its share 05:00 (×0.2, last 1 split) · 4 failed runs · hint shown in 1 of the last 5 attempts"
        );
        assert_eq!(
            w[0].short(&toy()),
            "step 3 total (×0.2 its share, 4 failed, 1 hint)"
        );
    }

    #[test]
    fn an_abandoned_attempt_counts_its_failures_without_splits() {
        let mut e = attempt(Mode::Timed, &[(1, 2.0)]);
        e.result = AttemptResult::Abandoned;
        e.failed_runs.insert(2, 6);
        let w = weakest(&toy(), &[e]);
        assert_eq!(w[0].step, 2);
        assert_eq!(w[0].why(&toy()), "step 2 greet: 6 failed runs");
    }

    #[test]
    fn the_kata_with_the_weakest_step_is_chosen() {
        let mut other = toy();
        other.name = "other".into();
        let mut slow = attempt(Mode::Timed, &[(1, 30.0)]);
        slow.kata = "other".into();
        let h = [attempt(Mode::Timed, &[(1, 6.0)]), slow];
        let katas = [toy(), other];
        let (k, w) = weakest_kata(&katas, &h).unwrap();
        assert_eq!((k.name.as_str(), w[0].step), ("other", 1));
        assert!(weakest_kata(&katas, &[]).is_none());
    }

    const TRICKY: &str = r####"//! fn double() { in a doc comment }
use std::fmt;

/* block comment with fn double() { and /* nested */ } */
pub fn greet(name: &str) -> String {
    let close = "}";
    let open = '{';
    format!("{open}{name}{close} \"}}\" {}", r#"raw " } "#)
}

pub fn double<'a>(x: &'a i64) -> i64 {
    // a comment with a brace }
    let s = r##"a "# } raw"##;
    let c = b'}';
    let label = 'outer: loop {
        break 'outer if s.len() > 0 { x * 2 } else { { 0 } };
    };
    fn double(_: i64) -> i64 { 0 } // nested item: not the top level one
    let _ = (c, '\'', '\u{7d}', 'é');
    label
}

pub fn total(xs: &[i64]) -> i64
where
    i64: fmt::Debug,
{
    xs.iter().sum()
}
"####;

    #[test]
    fn bodies_are_found_past_strings_chars_comments_and_nested_blocks() {
        let greet = body(TRICKY, "greet").unwrap();
        assert!(greet.starts_with("{\n    let close = \"}\";"), "{greet}");
        assert!(greet.ends_with("r#\"raw \" } \"#)\n}"), "{greet}");
        let double = body(TRICKY, "double").unwrap();
        assert!(double.starts_with("{\n    // a comment"), "{double}");
        assert!(double.ends_with("    label\n}"), "{double}");
        assert_eq!(body(TRICKY, "total").unwrap(), "{\n    xs.iter().sum()\n}");
        assert_eq!(body(TRICKY, "missing"), None);
        assert_eq!(body(TRICKY, "doub"), None);
    }

    #[test]
    fn a_declaration_without_a_body_is_skipped() {
        let src = "trait T {}\nextern \"C\" { }\nfn f(x: [u8; 2]) -> u8;\nfn f(x: [u8; 2]) -> u8 { x[0] }\n";
        // The first `fn f` has no body; the brace count keeps the second at the top level.
        assert_eq!(body(src, "f"), Some("{ x[0] }"));
    }

    #[test]
    fn splice_replaces_only_that_body() {
        let pristine = "/// Step 1.\npub fn double(x: i64) -> i64 {\n    todo!(\"step 1: double {x}\")\n}\n\n/// Step 2.\npub fn greet(name: &str) -> String {\n    todo!(\"step 2: greet {name}\")\n}\n";
        let mine = body(TRICKY, "greet").unwrap();
        let out = splice(pristine, "greet", mine).unwrap();
        assert!(out.contains("todo!(\"step 1: double {x}\")"), "{out}");
        assert!(!out.contains("step 2: greet"), "{out}");
        assert!(
            out.contains(
                "/// Step 2.\npub fn greet(name: &str) -> String {\n    let close = \"}\";"
            )
        );
        assert_eq!(body(&out, "greet"), Some(mine));
        assert_eq!(splice(pristine, "total", "{ 0 }"), None);
    }
}
