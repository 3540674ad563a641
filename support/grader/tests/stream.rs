//! The Kafka → Kafka kata's whole-program grader: the solution levels pass, the pristine
//! blank program fails, and each deliberate mistake (a mutant of the intermediate
//! solution) fails with the checklist line that names it.
//!
//! Every grading produces fresh events to new topics on the broker of the Kafka tests
//! (librdkafka's mock cluster, or `KAFKA_BOOTSTRAP_SERVERS`) and runs a program that
//! joins a new group: about 6 s each, plus its build.

mod common;

use common::{assert_fails_with, assert_passed, grade_level, grade_mutant, grade_pristine};
use grader::Kata;
use grader::stream::{COMMITS, PARSES, READS, RUNS, WATERMARK, WINDOWS, WRITES};

const KATA: Kata = Kata::Kafka;

#[tokio::test(flavor = "multi_thread")]
async fn the_intermediate_solution_passes() {
    assert_passed(&grade_level(KATA, "intermediate").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_beginner_solution_passes() {
    assert_passed(&grade_level(KATA, "beginner").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_blank_program_fails() {
    let verdict = grade_pristine(KATA).await;
    assert_fails_with(&verdict, RUNS, "before the input could have been idle");
    assert_fails_with(&verdict, READS, "nothing came out");
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_not_aligned_to_the_epoch() {
    // Windows start 2 min 30 s into each 5-minute slot.
    let verdict = grade_mutant(
        KATA,
        "(time - time.rem_euclid(WINDOW_MS), category)",
        "(time - (time - 150_000).rem_euclid(WINDOW_MS), category)",
    )
    .await;
    assert_fails_with(&verdict, WINDOWS, "not aligned to the epoch");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_watermark() {
    let verdict = grade_mutant(
        KATA,
        "if time < *max - WATERMARK_DELAY_MS {",
        "if false && time < *max - WATERMARK_DELAY_MS {",
    )
    .await;
    assert_fails_with(&verdict, WATERMARK, "late events were counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_latest_time_for_the_whole_topic() {
    // Lateness judged against every partition's events: a partition read after another
    // looks late.
    let verdict = grade_mutant(KATA, "max_time.entry(partition)", "max_time.entry(0)").await;
    assert_fails_with(&verdict, WATERMARK, "dropped as late");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watermark_over_the_partitions_read_so_far() {
    // Windows close on the partitions seen so far: a partition read later reopens them.
    let verdict = grade_mutant(
        KATA,
        "partitions\n            .iter()\n            .map(|p| max_time.get(p).map_or(i64::MIN, |m| m - WATERMARK_DELAY_MS))",
        "max_time\n            .values()\n            .map(|m| m - WATERMARK_DELAY_MS)",
    )
    .await;
    assert_fails_with(&verdict, WATERMARK, "emitted more than once");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_events_sent_to_the_dead_letters() {
    let verdict = grade_mutant(
        KATA,
        "let order: Order = serde_json::from_slice(payload)?;",
        "let order: Order = serde_json::from_slice(payload)?;\n    \
         ensure!(order.amount >= 0.0 && order.order_id.is_some() && order.customer_id.is_some(), \"invalid\");",
    )
    .await;
    assert_fails_with(&verdict, PARSES, "null id or a negative amount");
    assert_fails_with(&verdict, WINDOWS, "left out");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_never_sent() {
    let verdict = grade_mutant(
        KATA,
        "deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);",
        "let _ = record;",
    )
    .await;
    assert_fails_with(&verdict, PARSES, "malformed payloads are missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_windows_not_emitted_at_the_idle_timeout() {
    let verdict = grade_mutant(
        KATA,
        "for window in std::mem::take(&mut windows) {",
        "for window in std::mem::take(&mut BTreeMap::new()) {",
    )
    .await;
    assert_fails_with(&verdict, WRITES, "never written");
}

#[tokio::test(flavor = "multi_thread")]
async fn never_commits() {
    let verdict = grade_mutant(
        KATA,
        "consumer.commit(&offsets, CommitMode::Sync)",
        "Ok::<(), rdkafka::error::KafkaError>(())",
    )
    .await;
    assert_fails_with(&verdict, COMMITS, "nothing committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_the_last_offset_read_instead_of_the_next() {
    let verdict = grade_mutant(KATA, "Offset::Offset(next)", "Offset::Offset(next - 1)").await;
    assert_fails_with(&verdict, COMMITS, "last offset + 1");
}
