//! The lake kata's grader (`cargo practice grade parquet`): the solution levels pass, the
//! blank program and deliberately wrong programs fail with the line a learner acts on.
//!
//! Each grading produces fresh events on the tests' broker (the mock cluster, or
//! `KAFKA_BOOTSTRAP_SERVERS`) and runs the program three times (~15 s); the two `--chaos 3`
//! gradings kill it three times more (~25 s).

mod common;

use common::{
    assert_fails_with, assert_passed, grade, grade_level, grade_mutant, grade_mutant_with,
    grade_pristine, repo,
};
use grader::{Kata, Options, Status};

const KATA: Kata = Kata::Parquet;

/// A random seed (printed, so a failure can be replayed with `--seed`) and `--chaos`.
fn with_chaos(kills: u32) -> Options {
    let seed = grader::random_seed();
    eprintln!("seed {seed}");
    let mut options = Options::new(seed);
    options.chaos = kills;
    options
}

#[tokio::test(flavor = "multi_thread")]
async fn intermediate_passes_and_survives_three_kills() {
    let file = repo().join(KATA.level_file("intermediate"));
    let verdict = grade(KATA, &file, &with_chaos(3)).await;
    assert_passed(&verdict);
    // Chaos runs on the mock cluster too (it lives in the grader's process; a killed
    // program is a dropped connection), so it must have run, not been skipped.
    let chaos = verdict
        .check("chaos")
        .expect("a chaos check with --chaos 3");
    assert_eq!(chaos.status, Status::Pass, "{verdict}");
    assert!(chaos.summary.contains("3 SIGKILLs"), "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn beginner_passes() {
    let verdict = grade_level(KATA, "beginner").await;
    assert_passed(&verdict);
    assert!(
        verdict.check("chaos").is_none(),
        "no chaos check without --chaos:\n{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pristine_blank_program_fails() {
    let verdict = grade_pristine(KATA).await;
    assert_fails_with(&verdict, "reads the topic", "nothing came out");
    assert_eq!(
        verdict.check("commit").map(|c| c.status),
        Some(Status::Skip),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lake_without_hour_partitions_fails() {
    let verdict = grade_mutant(KATA, "day={day}/hour={hour}", "day={day}").await;
    assert_fails_with(
        &verdict,
        "partition by hour",
        "files are in day folders (year=",
    );
    assert_eq!(verdict.count(Status::Fail), 1, "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_that_never_commits_fails() {
    let verdict = grade_mutant(KATA, "if list.count() > 0 {", "if false {").await;
    assert_fails_with(&verdict, "commit", "offsets never committed for group");
    assert_eq!(verdict.count(Status::Fail), 1, "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_written_twice_after_a_restart_fail() {
    // It ignores the checkpoint's offsets: every restart reads the topic from the start.
    let verdict = grade_mutant(KATA, "|o| Offset::Offset(*o)", "|_| Offset::Beginning").await;
    assert_fails_with(&verdict, "restart", "rows written twice after a restart");
    assert_eq!(verdict.count(Status::Fail), 1, "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rows_kept_fail() {
    let verdict = grade_mutant(
        KATA,
        "    } else if order.amount < 0.0 {\n        return Err(\"negative amount\".into());\n",
        "",
    )
    .await;
    assert_fails_with(&verdict, "filters invalid", "negative amount");
    assert_fails_with(
        &verdict,
        "dead letters",
        "missing from the dead-letter topic",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn event_time_in_milliseconds_fails() {
    let verdict = grade_mutant(KATA, "time.timestamp_micros()", "time.timestamp_millis()").await;
    assert_fails_with(&verdict, "event time", "event_time differs");
    assert_eq!(verdict.count(Status::Fail), 1, "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn file_names_that_change_between_runs_fail_under_kills() {
    // A restart cannot find the files of the batch a kill interrupted (their names hold
    // the killed process's id), so that batch is written twice. Without kills all is well.
    let verdict = grade_mutant_with(
        KATA,
        &[(
            "format!(\"part-{batch_id:06}.parquet\")",
            "format!(\"part-{batch_id:06}-{}.parquet\", std::process::id())",
        )],
        // Six kills: two aimed at a finished file, two just after any file, so that one
        // lands between a batch's files and its checkpoint even on a loaded machine.
        &with_chaos(6),
    )
    .await;
    assert_fails_with(&verdict, "chaos", "after the kills");
    let chaos = verdict.check("chaos").expect("a chaos check");
    assert!(chaos.summary.contains("rows written"), "{verdict}");
    assert_eq!(verdict.count(Status::Fail), 1, "{verdict}");
}
