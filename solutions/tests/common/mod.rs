//! What the `kafka_stream` test files share: their topics, their events, and how they
//! read back what the pipeline wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedRecord, RecordKind};
use kafka_testkit::{Broker, ConsumedRecord, unique_name};
use kata_testkit::decode_window;

/// A test's own input (with `partitions` partitions), output and dead-letter topics.
pub struct Topics {
    pub input: String,
    pub output: String,
    pub dlq: String,
}

pub async fn topics(broker: &Broker, prefix: &str, partitions: i32) -> Topics {
    let topics = Topics {
        input: unique_name(&format!("{prefix}-orders")),
        output: unique_name(&format!("{prefix}-aggregates")),
        dlq: unique_name(&format!("{prefix}-dlq")),
    };
    for (t, n) in [
        (&topics.input, partitions),
        (&topics.output, 1),
        (&topics.dlq, 1),
    ] {
        broker
            .create_topic(t, n)
            .await
            .unwrap_or_else(|e| panic!("creating topic {t}: {e:#}"));
    }
    topics
}

/// `n` records from 2026-11-25 14:00 UTC, `per_second` of event time, 3 % each late,
/// invalid and malformed. The seed is printed, so a failure can be replayed.
pub fn generated(seed: u64, n: usize, per_second: f64) -> Vec<GeneratedRecord> {
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
    let dirty = DirtyOptions {
        late_fraction: 0.03,
        invalid_fraction: 0.03,
        malformed_fraction: 0.03,
    };
    eprintln!("generated events: seed {seed}");
    EventGenerator::new(seed, start, per_second, dirty)
        .expect("generator")
        .generate(n)
}

/// The aggregate messages read: (window start ms, category) -> the values sent
/// (count, total in cents), in the order they were read.
pub fn windows_sent(records: &[ConsumedRecord]) -> BTreeMap<(i64, String), Vec<(i64, i64)>> {
    let mut windows: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for r in records {
        let window =
            decode_window(r.key.as_deref(), r.payload.as_deref()).unwrap_or_else(|e| panic!("{e}"));
        windows
            .entry(window.key())
            .or_default()
            .push((window.order_count, window.total_cents()));
    }
    windows
}

/// The dead-letter topic, read to its end (`read_committed`), holds every malformed
/// payload of `records` exactly once, and nothing else.
pub async fn assert_dead_letters_are_the_malformed(
    broker: &Broker,
    dlq: &str,
    records: &[GeneratedRecord],
    deadline: Duration,
) {
    let dead = broker
        .consume_to_end(dlq, deadline)
        .await
        .unwrap_or_else(|e| panic!("reading the dead letters: {e:#}"));
    let mut sent: Vec<&[u8]> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Malformed)
        .map(|r| r.payload.as_slice())
        .collect();
    let mut got: Vec<&[u8]> = dead
        .iter()
        .map(|r| r.payload.as_deref().unwrap_or_default())
        .collect();
    sent.sort();
    got.sort();
    assert_eq!(
        (got.len(), got == sent),
        (sent.len(), true),
        "(dead letters read, same payloads as the malformed records sent)"
    );
}
