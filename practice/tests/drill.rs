//! `cargo practice drill` on the toy repository: the weakest step from a prepared
//! history, the other steps spliced in from the learner's archived attempt.

mod support;

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

/// One timed attempt on the step file, archived with `MINE`: steps 1 and 2 on pace
/// (share: 15 min / 3 = 5 min), step 3 twelve minutes on its own, two failed runs.
fn history_with_an_archived_attempt(r: &Repo) {
    r.write(&format!("{ARCHIVE}/src/lib.rs"), MINE);
    r.write(
        ".practice/history.json",
        &format!(
            r#"{{
  "version": 1,
  "attempts": [
    {{"kata": "toy", "mode": "timed", "file": "steps", "started_at": "2026-05-01T10:00:00+00:00",
     "ended_at": "2026-05-01T10:20:00+00:00", "duration_s": 1020.0, "result": "passed", "hints_used": 0,
     "splits": [{{"step": 1, "test": "step_01_double", "at_s": 120.0}},
                {{"step": 2, "test": "step_02_greet", "at_s": 300.0}},
                {{"step": 3, "test": "step_03_total", "at_s": 1020.0}}],
     "failed_runs": {{"3": 2}},
     "archive": "{ARCHIVE}"}}
  ]
}}
"#
        ),
    );
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
        intro.contains(&format!("step 1 double: your code from {ARCHIVE}")),
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
    s.send("a");
    s.expect("Abandon this attempt?");
    s.send("y");
    s.expect("is pristine again");
    s.finish();
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
    s.send("a");
    s.expect("Abandon this attempt?");
    s.send("y");
    s.expect("is pristine again");
    s.finish();
    assert_eq!(r.history()["attempts"][1]["mode"], "drill");
}
