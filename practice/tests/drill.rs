//! `cargo practice drill` on the toy repository: the weakest step from a prepared
//! history, the other steps the learner's own from their archived attempts.

mod support;

use serde_json::json;
use support::{KATA_RS, PRISTINE, Repo};

/// The learner's own code, written differently from the reference (`solutions/toy.rs`).
const MINE: &str = r#"//! Toy kata: three small steps.

/// Step 1: twice `x`.
pub fn double(x: i64) -> i64 {
    // mine: "}" in a string and a '{' char do not end the body
    let _ = ("}", '{');
    x + x
}

/// Step 2: `Hello, NAME!`.
pub fn greet(name: &str) -> String {
    format!("Hello, {}!", name)
}

/// Step 3: the sum of `xs`.
pub fn total(xs: &[i64]) -> i64 {
    let mut t = 0;
    for x in xs {
        t += x;
    }
    t
}
"#;

const ARCHIVE: &str = ".practice/attempts/toy/timed-20260501-100000";

/// A timed attempt on the toy's step file, as the history records it.
struct Archived<'a> {
    /// Its archive folder.
    dir: &'a str,
    /// (step, seconds into the attempt)
    splits: &'a [(usize, f64)],
    /// (step, failed runs)
    failed: &'a [(usize, u32)],
}

/// The history: these attempts, oldest first.
fn history(r: &Repo, attempts: &[Archived]) {
    let attempts: Vec<serde_json::Value> = attempts
        .iter()
        .map(|&Archived { dir, splits, failed }| {
            let end = splits.iter().map(|s| s.1).fold(300.0, f64::max);
            // Passed when every step has a split, abandoned otherwise.
            let result = if splits.len() == 3 {
                "passed"
            } else {
                "abandoned"
            };
            let splits: Vec<_> = splits
                .iter()
                .map(|&(step, at_s)| {
                    json!({"step": step, "test": format!("step_0{step}"), "at_s": at_s})
                })
                .collect();
            let failed: serde_json::Map<_, _> = failed
                .iter()
                .map(|(step, runs)| (step.to_string(), json!(runs)))
                .collect();
            json!({
                "kata": "toy", "mode": "timed", "file": "steps",
                "started_at": "2026-05-01T10:00:00+00:00", "ended_at": "2026-05-01T10:20:00+00:00",
                "duration_s": end, "result": result, "hints_used": 0,
                "splits": splits, "failed_runs": failed, "archive": dir,
            })
        })
        .collect();
    let text = json!({"version": 1, "attempts": attempts});
    r.write(
        ".practice/history.json",
        &serde_json::to_string_pretty(&text).unwrap(),
    );
}

/// One timed attempt on the step file, archived with `MINE`: steps 1 and 2 on pace
/// (share: 15 min / 3 = 5 min), step 3 twelve minutes on its own, two failed runs.
fn history_with_an_archived_attempt(r: &Repo) {
    r.write(&format!("{ARCHIVE}/src/lib.rs"), MINE);
    history(
        r,
        &[Archived {
            dir: ARCHIVE,
            splits: &[(1, 120.0), (2, 300.0), (3, 1020.0)],
            failed: &[(3, 2)],
        }],
    );
}

/// What the drill says when it starts from the learner's whole `src/` of `archive`.
fn started_from(archive: &str) -> String {
    format!(
        "your code from {archive}, where every other step passed: its src/lib.rs \
         (helpers and `use`s included), src/util.rs, with step 3 total back to todo!()"
    )
}

#[test]
fn without_history_the_learner_is_sent_to_a_guided_attempt() {
    let r = Repo::new();
    for args in [&["drill", "toy"][..], &["drill"]] {
        r.run(args, "").ok().has("complete a guided attempt first");
    }
    assert_eq!(r.read(KATA_RS), PRISTINE, "nothing was started");
    assert!(r.current().is_none());
}

/// Abandoned attempts make a step weak (failed runs, hints) but leave no passing code
/// for the others: the learner is sent to finish a guided attempt, not handed a "drill"
/// of most of the kata.
#[test]
fn a_drill_needs_passing_code_for_every_other_step() {
    let r = Repo::new();
    r.write(&format!("{ARCHIVE}/src/lib.rs"), PRISTINE);
    r.write(
        ".practice/history.json",
        &format!(
            r#"{{
  "version": 1,
  "attempts": [
    {{"kata": "toy", "mode": "guided", "file": "steps", "started_at": "2026-05-01T10:00:00+00:00",
     "ended_at": "2026-05-01T10:05:00+00:00", "duration_s": 300.0, "result": "abandoned", "hints_used": 1,
     "splits": [], "failed_runs": {{"1": 3}}, "archive": "{ARCHIVE}"}}
  ]
}}
"#
        ),
    );
    r.run(&["drill", "toy"], "")
        .ok()
        .has("have not passed in any attempt of yours: step 2 greet, step 3 total")
        .has("Complete a guided attempt first");
    assert_eq!(r.read(KATA_RS), PRISTINE, "nothing was started");
    assert!(r.current().is_none());
}

#[test]
fn a_drill_leaves_only_the_weakest_step_todo_and_abandon_restores_the_kata() {
    let r = Repo::new();
    history_with_an_archived_attempt(&r);
    r.run(&["status"], "")
        .ok()
        .has("Weakest steps")
        .has("toy       step 3 total (×2.4 its share, 2 failed)");

    let mut s = r.spawn(&["drill", "toy"]);
    let intro = s.expect("2/3 steps green");
    assert!(
        intro.contains(
            "step 3 total: 12:00 per split vs its share 05:00 (×2.4, last 1 split) · 2 failed runs"
        ),
        "{intro}"
    );
    assert!(
        intro.contains(&format!(
            "your code from {ARCHIVE}, where every other step passed: its src/lib.rs \
             (helpers and `use`s included), with step 3 total back to todo!()"
        )),
        "{intro}"
    );
    let file = r.read(KATA_RS);
    assert!(
        file.contains("todo!(\"step 3: total of {xs:?}\")"),
        "{file}"
    );
    assert!(!file.contains("todo!(\"step 1"), "{file}");
    assert!(!file.contains("todo!(\"step 2"), "{file}");
    assert!(
        file.contains("let _ = (\"}\", '{');\n    x + x\n}"),
        "{file}"
    );
    assert!(file.contains("format!(\"Hello, {}!\", name)"), "{file}");
    assert!(
        file.starts_with("//! Toy kata: three small steps.\n\n/// Step 1: twice `x`."),
        "the pristine file around the bodies stays: {file}"
    );

    s.send("h");
    s.expect("No hints in drill mode");
    s.abandon();
    assert_eq!(r.read(KATA_RS), PRISTINE);
    let e = &r.history()["attempts"][1];
    assert_eq!(e["mode"], "drill");
    assert_eq!(e["result"], "abandoned");
    assert_eq!(e["drill"], serde_json::json!([3]));
    assert!(
        e["splits"].as_array().is_none_or(|s| s.is_empty()),
        "steps handed over are not timed: {e}"
    );
    let archived = r.file(e["archive"].as_str().unwrap()).join("src/lib.rs");
    assert!(
        std::fs::read_to_string(archived).unwrap().contains("x + x"),
        "the drill's file is archived"
    );
}

#[test]
fn a_passed_drill_times_its_own_steps_and_does_not_count_for_levels() {
    let r = Repo::new();
    history_with_an_archived_attempt(&r);
    let mut s = r.spawn(&["drill"]);
    s.expect("Drill of toy");
    s.expect("2/3 steps green");
    let solved = r
        .read(KATA_RS)
        .replace("todo!(\"step 3: total of {xs:?}\")", "xs.iter().sum()");
    r.write(KATA_RS, &solved);
    let end = s.expect("is pristine again");
    assert!(
        end.contains("drills do not count for levels or bests"),
        "{end}"
    );
    s.finish();
    let e = &r.history()["attempts"][1];
    assert_eq!(e["mode"], "drill");
    assert_eq!(e["result"], "passed");
    let splits = e["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 1, "{splits:?}");
    assert_eq!(splits[0]["step"], 3);
    r.run(&["history"], "")
        .ok()
        .has("toy       Beginner")
        .has("timed 17:00");
}

/// The menu points a learner with history at their weak spots: a drill item naming the
/// weakest steps, which starts the drill.
#[test]
fn the_menu_offers_the_drill_of_the_weakest_steps() {
    let r = Repo::new();
    // Without history: no drill offered.
    let out = r.run(&[], "quit\n");
    out.ok();
    assert!(!out.stdout.contains("Drill "), "{}", out.stdout);

    history_with_an_archived_attempt(&r);
    let mut s = r.spawn(&[]);
    s.expect("Drill    toy: your weakest steps, timed — step 3 total (×2.4 its share, 2 failed)");
    s.send("drill");
    let intro = s.expect("2/3 steps green");
    assert!(intro.contains("Drill of toy"), "{intro}");
    assert!(!r.read(KATA_RS).contains("todo!(\"step 1"));
    s.abandon();
    assert_eq!(r.history()["attempts"][1]["mode"], "drill");
}

/// Passing code of the learner's that calls a helper, a `use`d trait and a module of
/// their own (`src/util.rs`, archived beside it).
const MINE_WITH_HELPERS: &str = r#"//! Toy kata: three small steps.

use std::ops::Add;

// In a real kata src/lib.rs is the crate root and `mod util;` finds src/util.rs; the
// toy's lib.rs is a module of src/root.rs, whose own modules would be in src/lib/.
#[path = "util.rs"]
mod util;

/// Step 1: twice `x`.
pub fn double(x: i64) -> i64 {
    twice(x)
}

/// Step 2: `Hello, NAME!`.
pub fn greet(name: &str) -> String {
    util::hello(name)
}

/// Step 3: the sum of `xs`.
pub fn total(xs: &[i64]) -> i64 {
    xs.iter().fold(0, |t, x| t.add(*x))
}

fn twice(x: i64) -> i64 {
    x.add(x)
}
"#;

const UTIL: &str = "pub fn hello(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n";
const UTIL_RS: &str = "katas/toy_kata/src/util.rs";

/// The attempt of `history_with_an_archived_attempt`, its code calling helpers; its
/// archived `src/` also holds an old copy of the kata's own `root.rs`, which must not
/// come back (the kata's files are the repository's).
fn history_with_helpers(r: &Repo) {
    history_with_an_archived_attempt(r);
    r.write(&format!("{ARCHIVE}/src/lib.rs"), MINE_WITH_HELPERS);
    r.write(&format!("{ARCHIVE}/src/util.rs"), UTIL);
    r.write(
        &format!("{ARCHIVE}/src/root.rs"),
        "an old root.rs, not Rust\n",
    );
}

/// Starts the drill of step 3 on `history_with_helpers` and checks its files: the
/// learner's whole code and module, only step 3 back to `todo!()`, compiling (steps 1
/// and 2 pass through the helpers).
fn drill_with_helpers(r: &Repo) -> support::Live {
    history_with_helpers(r);
    let mut s = r.spawn(&["drill", "toy"]);
    let intro = s.expect("2/3 steps green");
    assert!(intro.contains(&started_from(ARCHIVE)), "{intro}");
    let file = r.read(KATA_RS);
    let expected = MINE_WITH_HELPERS.replace(
        "xs.iter().fold(0, |t, x| t.add(*x))",
        "todo!(\"step 3: total of {xs:?}\")",
    );
    assert_eq!(file, expected);
    assert_eq!(r.read(UTIL_RS), UTIL);
    assert_eq!(
        r.git(&["status", "--porcelain", "--untracked-files=all"]),
        " M katas/toy_kata/src/lib.rs\n?? katas/toy_kata/src/util.rs\n",
        "only the step file and the learner's module are touched"
    );
    s
}

/// The drill's archive holds its code, module included, and the kata is as committed.
fn assert_archived_and_restored(r: &Repo, e: &serde_json::Value) {
    assert_eq!(e["mode"], "drill");
    let archive = r.file(e["archive"].as_str().unwrap());
    let lib = std::fs::read_to_string(archive.join("src/lib.rs")).unwrap();
    assert!(lib.contains("fn twice(x: i64)"), "{lib}");
    assert_eq!(
        std::fs::read_to_string(archive.join("src/util.rs")).unwrap(),
        UTIL
    );
    assert_eq!(r.read(KATA_RS), PRISTINE);
    assert!(!r.file(UTIL_RS).exists(), "the learner's module is removed");
    assert_eq!(
        r.git(&["status", "--porcelain", "--untracked-files=all"]),
        "",
        "the kata is as committed"
    );
}

#[test]
fn a_drill_brings_back_the_helpers_and_modules_of_the_passing_code() {
    let r = Repo::new();
    let mut s = drill_with_helpers(&r);
    let solved = r.read(KATA_RS).replace(
        "todo!(\"step 3: total of {xs:?}\")",
        "xs.iter().copied().fold(0, Add::add)",
    );
    r.write(KATA_RS, &solved);
    s.expect("is pristine again");
    s.finish();
    let e = &r.history()["attempts"][1];
    assert_eq!(e["result"], "passed");
    assert_archived_and_restored(&r, e);

    // A passed drill passed every step: the next drill starts from its code.
    let dir = e["archive"].as_str().unwrap();
    let mut s = r.spawn(&["drill", "toy"]);
    let intro = s.expect("2/3 steps green");
    assert!(intro.contains(&started_from(dir)), "{intro}");
    s.abandon();
    assert!(!r.file(UTIL_RS).exists());
}

#[test]
fn a_reset_drill_removes_the_learners_modules_too() {
    let r = Repo::new();
    let mut s = drill_with_helpers(&r);
    s.send("p");
    s.expect("Attempt saved (paused)");
    s.finish();
    r.run(&["reset", "toy"], "").ok();
    let e = &r.history()["attempts"][1];
    assert_eq!(e["result"], "reset");
    assert_archived_and_restored(&r, e);
}

/// No single attempt passed both other steps: each one's body comes from the last
/// attempt where it passed, and the drill says its helpers do not come with it.
#[test]
fn without_one_attempt_passing_every_other_step_the_bodies_are_spliced_one_by_one() {
    const ONE: &str = ".practice/attempts/toy/timed-20260501-100000";
    const TWO: &str = ".practice/attempts/toy/timed-20260502-100000";
    let r = Repo::new();
    r.write(&format!("{ONE}/src/lib.rs"), MINE);
    r.write(
        &format!("{TWO}/src/lib.rs"),
        &MINE.replace(
            "format!(\"Hello, {}!\", name)",
            "format!(\"Hello, {name}!\")",
        ),
    );
    // Step 3 failed in both, so it is the weakest; step 1 passed in the first only,
    // step 2 in the second.
    history(
        &r,
        &[
            Archived {
                dir: ONE,
                splits: &[(1, 120.0)],
                failed: &[(3, 2)],
            },
            Archived {
                dir: TWO,
                splits: &[(2, 60.0)],
                failed: &[(3, 2)],
            },
        ],
    );
    let mut s = r.spawn(&["drill", "toy"]);
    let intro = s.expect("2/3 steps green");
    for said in [
        "No single archived attempt of yours passed every other step, so each other step's \
         body comes from the last attempt where it passed; code of yours outside the step \
         functions (helpers, `use`s, modules) does not come with it.",
        &format!("step 1 double: your code from {ONE}"),
        &format!("step 2 greet: your code from {TWO}"),
    ] {
        assert!(intro.contains(said), "`{said}` in:\n{intro}");
    }
    let file = r.read(KATA_RS);
    assert!(file.contains("x + x"), "{file}");
    assert!(file.contains("format!(\"Hello, {name}!\")"), "{file}");
    assert!(
        file.contains("todo!(\"step 3: total of {xs:?}\")"),
        "{file}"
    );
    s.abandon();
    assert_eq!(r.read(KATA_RS), PRISTINE);
}
