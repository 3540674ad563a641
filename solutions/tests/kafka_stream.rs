//! The reference Kafka streaming pipeline ([`solutions::kafka_stream::run`]) on
//! generated events it has never seen: exact windows, and no window lost across a
//! restart. The broker comes from `kafka_testkit` (mock unless told otherwise).

use std::collections::BTreeMap;
use std::time::Duration;

use fixtures::events::{GeneratedRecord, RecordKind};
use fixtures::expected::{StreamWindows, stream_windows, stream_windows_by_partition};
use kafka_testkit::{Broker, broker, unique_name};
use kata_testkit::assert_same_windows;
use solutions::kafka_stream::{Delivery, PipelineConfig, PipelineCounts, StopReason, run};

mod common;
use common::{Topics, topics};

const DEADLINE: Duration = Duration::from_secs(60);

/// `n` records over two hours of event time, a few of them late, invalid or malformed.
fn generated(seed: u64, n: usize) -> Vec<GeneratedRecord> {
    common::generated(seed, n, n as f64 / 7200.0)
}

fn config(broker: &Broker, topics: &Topics, group: &str) -> PipelineConfig {
    PipelineConfig {
        batch_size: 700,
        batch_wait: Duration::from_millis(200),
        ..PipelineConfig::new(
            broker.bootstrap_servers(),
            &topics.input,
            &topics.output,
            &topics.dlq,
            group,
        )
    }
}

async fn run_with_deadline(config: &PipelineConfig) -> (PipelineCounts, StopReason) {
    // The pipeline's logs, shown when a test fails (or with --nocapture).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,rdkafka=warn,librdkafka=warn")
        .try_init();
    tokio::time::timeout(DEADLINE * 2, run(config, std::future::pending()))
        .await
        .unwrap_or_else(|_| panic!("the pipeline did not stop within {:?}", DEADLINE * 2))
        .unwrap_or_else(|e| panic!("the pipeline failed: {e:#}"))
}

/// Produces `records` and returns the windows they should give, computed per partition
/// from where each record landed.
async fn produce_expecting_windows(
    broker: &Broker,
    topic: &str,
    records: &[GeneratedRecord],
) -> StreamWindows {
    let placed = broker
        .produce_events(topic, records)
        .await
        .expect("producing");
    let partitions: Vec<i32> = placed.iter().map(|(p, _)| *p).collect();
    stream_windows_by_partition(records, &partitions).expect("expected windows")
}

/// What the run counted matches what was produced and the independent expectation.
fn assert_counts(counts: &PipelineCounts, produced: usize, expected: &StreamWindows) {
    assert_eq!(
        (
            counts.read,
            counts.late,
            counts.malformed,
            counts.windows_emitted
        ),
        (
            produced as u64,
            expected.late,
            expected.malformed,
            expected.windows.len() as u64
        ),
        "(read, late, malformed, windows emitted), counts: {counts:?}"
    );
}

/// Every window was sent exactly once, with the expected (count, cents).
fn assert_each_window_once(
    emitted: BTreeMap<(i64, String), Vec<(i64, i64)>>,
    expected: &BTreeMap<(i64, String), (i64, i64)>,
) {
    let once: BTreeMap<_, _> = emitted
        .into_iter()
        .map(|(k, values)| {
            assert_eq!(
                values.len(),
                1,
                "window {k:?} sent {} times: {values:?}",
                values.len()
            );
            (k, values[0])
        })
        .collect();
    assert_same_windows(expected, &once);
}

/// Every aggregate message in `topic`: (window start ms, category) -> the values sent
/// (count, total in cents), in order.
async fn aggregates(
    broker: &Broker,
    topic: &str,
    expected_messages: usize,
) -> BTreeMap<(i64, String), Vec<(i64, i64)>> {
    let records = broker
        .consume(topic, expected_messages, DEADLINE)
        .await
        .expect("reading the aggregates");
    common::windows_sent(&records)
}

#[tokio::test]
async fn emitted_windows_equal_the_aggregates_of_valid_on_time_events() {
    let broker = broker().await.expect("no Kafka broker");
    let topics = topics(broker, "kstream-run", 1).await;
    let records = generated(7, 6_000);
    broker
        .produce_events(&topics.input, &records)
        .await
        .expect("producing");
    let expected = stream_windows(&records).expect("expected windows");

    let config = PipelineConfig {
        idle_timeout: Some(Duration::from_secs(2)),
        ..config(broker, &topics, &unique_name("kstream-run"))
    };
    let (counts, reason) = run_with_deadline(&config).await;

    assert_eq!(reason, StopReason::Idle);
    assert_counts(&counts, records.len(), &expected);
    assert_eq!(
        counts.read,
        counts.processed + counts.late + counts.malformed
    );
    assert!(counts.micro_batches > 5, "few micro-batches: {counts:?}");

    let emitted = aggregates(broker, &topics.output, expected.windows.len()).await;
    assert_each_window_once(emitted, &expected.windows);

    // The malformed payloads are in the dead-letter topic, as they were.
    let dead = broker
        .consume(&topics.dlq, expected.malformed as usize, DEADLINE)
        .await
        .expect("reading the dead letters");
    let sent: Vec<&[u8]> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Malformed)
        .map(|r| r.payload.as_slice())
        .collect();
    let got: Vec<&[u8]> = dead
        .iter()
        .map(|r| r.payload.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(got, sent, "dead letters");
}

#[tokio::test]
async fn a_backlog_on_three_partitions_is_not_dropped_as_late() {
    let broker = broker().await.expect("no Kafka broker");
    let topics = topics(broker, "kstream-partitions", 3).await;
    // Three hours of event time: a chunk of one partition read ahead of the others
    // spans far more than the 10-minute watermark.
    let records = generated(13, 9_000);
    let expected = produce_expecting_windows(broker, &topics.input, &records).await;

    let config = PipelineConfig {
        idle_timeout: Some(Duration::from_secs(2)),
        ..config(broker, &topics, &unique_name("kstream-partitions"))
    };
    let (counts, _) = run_with_deadline(&config).await;

    assert_counts(&counts, records.len(), &expected);
    let emitted = aggregates(broker, &topics.output, expected.windows.len()).await;
    assert_each_window_once(emitted, &expected.windows);
}

#[tokio::test]
async fn a_restart_mid_stream_loses_no_window() {
    restart_mid_stream(Delivery::AtLeastOnce).await;
}

/// The same restart with each micro-batch in one Kafka transaction (on the mock too,
/// which keeps no offsets committed in a transaction: the pipeline finds that out and
/// commits them through the consumer as well).
#[tokio::test]
async fn a_restart_mid_stream_loses_no_window_exactly_once() {
    restart_mid_stream(Delivery::ExactlyOnce).await;
}

async fn restart_mid_stream(delivery: Delivery) {
    let broker = broker().await.expect("no Kafka broker");
    let topics = topics(broker, "kstream-restart", 3).await;
    let records = generated(11, 6_000);
    let expected = produce_expecting_windows(broker, &topics.input, &records).await;
    let group = unique_name("kstream-restart");

    // First run: stopped half way (like Ctrl-C), with windows still open.
    let first = PipelineConfig {
        max_records: Some(records.len() as u64 / 2),
        delivery,
        ..config(broker, &topics, &group)
    };
    let (before, reason) = run_with_deadline(&first).await;
    assert_eq!(reason, StopReason::Stopped);
    assert!(
        before.read >= records.len() as u64 / 2 && before.read < records.len() as u64,
        "the first run should stop half way: {before:?}"
    );

    // Second run, same group: resumes, replays the open windows' records, finishes.
    let second = PipelineConfig {
        idle_timeout: Some(Duration::from_secs(2)),
        delivery,
        ..config(broker, &topics, &group)
    };
    let (after, reason) = run_with_deadline(&second).await;
    assert_eq!(reason, StopReason::Idle);
    assert!(
        before.read + after.read > records.len() as u64,
        "the restart replayed nothing, though windows were open: {before:?} then {after:?}"
    );

    let messages = (before.windows_emitted + after.windows_emitted) as usize;
    let emitted = aggregates(broker, &topics.output, messages).await;
    // Each window once: the open windows were rebuilt in full by the second run, the
    // emitted ones were not sent again.
    assert_each_window_once(emitted, &expected.windows);
    assert_eq!(
        messages,
        expected.windows.len(),
        "messages in {}",
        topics.output
    );

    // A third run finds everything done: nothing read, nothing sent.
    let (third, reason) = run_with_deadline(&second).await;
    assert_eq!(reason, StopReason::Idle);
    assert_eq!(
        (third.read, third.windows_emitted),
        (0, 0),
        "after a complete run: {third:?}"
    );

    // Every malformed payload once in the dead-letter topic: the replayed ones were
    // not sent again (read to the end, read_committed).
    common::assert_dead_letters_are_the_malformed(broker, &topics.dlq, &records, DEADLINE).await;
}
