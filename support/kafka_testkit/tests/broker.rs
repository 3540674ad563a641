//! Tests of the broker helper itself, on whichever broker it picks: the embedded
//! mock by default, a real broker with `KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092`.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedCounts, RecordKind};
use kafka_testkit::{Broker, broker, unique_name};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T14:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Order-independent checksum of (key, payload) pairs.
fn checksum<'a>(records: impl Iterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>) -> u64 {
    records
        .map(|pair| {
            let mut h = DefaultHasher::new();
            pair.hash(&mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add)
}

#[tokio::test]
async fn produces_100k_events_in_burst_and_reads_them_all_back() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("burst");
    broker.create_topic(&topic, 3).await?;
    let dirty = DirtyOptions {
        late_fraction: 0.02,
        invalid_fraction: 0.02,
        malformed_fraction: 0.01,
    };
    let records = EventGenerator::new(100, start(), 1_000.0, dirty)?.generate(100_000);

    let started = Instant::now();
    let offsets = broker.produce_events(&topic, &records).await?;
    let produced_in = started.elapsed();
    assert_eq!(offsets.len(), records.len());

    let started = Instant::now();
    let consumed = broker
        .consume(&topic, records.len(), Duration::from_secs(120))
        .await?;
    let consumed_in = started.elapsed();
    eprintln!(
        "100,000 events on {:?}: produced in {produced_in:.2?} ({:.0}/s), consumed in {consumed_in:.2?} ({:.0}/s)",
        broker.kind(),
        1e5 / produced_in.as_secs_f64(),
        1e5 / consumed_in.as_secs_f64()
    );

    assert_eq!(consumed.len(), records.len());
    // The order ids that went out are the ones that came back, payloads included.
    let sent = checksum(
        records
            .iter()
            .map(|r| (r.key.as_deref().map(str::as_bytes), Some(&r.payload[..]))),
    );
    let got = checksum(
        consumed
            .iter()
            .map(|r| (r.key.as_deref(), r.payload.as_deref())),
    );
    assert_eq!(sent, got, "order_id/payload checksum differs");
    // Every (partition, offset) the producer reported was read exactly once.
    let delivered: HashSet<(i32, i64)> = offsets.iter().copied().collect();
    let read: HashSet<(i32, i64)> = consumed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(
        delivered.len(),
        records.len(),
        "duplicate (partition, offset)"
    );
    assert_eq!(delivered, read);
    // Keyed by order_id: the same key always lands on the same partition.
    let mut partition_of_key = BTreeMap::new();
    for r in &consumed {
        if let Some(key) = &r.key {
            let first = partition_of_key.entry(key.clone()).or_insert(r.partition);
            assert_eq!(*first, r.partition);
        }
    }
    let kinds = GeneratedCounts::of(&records);
    assert!(kinds.get(RecordKind::Malformed) > 0 && kinds.get(RecordKind::Invalid) > 0);
    Ok(())
}

#[tokio::test]
async fn create_topic_gives_the_requested_partitions() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("partitions");
    broker.create_topic(&topic, 4).await?;
    let records = (0..200)
        .map(|i| {
            (
                Some(format!("key-{i}").into_bytes()),
                format!("value-{i}").into_bytes(),
            )
        })
        .collect();
    let offsets = broker.produce(&topic, records).await?;
    let partitions: HashSet<i32> = offsets.iter().map(|(p, _)| *p).collect();
    assert!(
        partitions.iter().all(|p| (0..4).contains(p)),
        "{partitions:?}"
    );
    assert!(partitions.len() > 1, "200 keys all went to {partitions:?}");
    let consumed = broker.consume(&topic, 200, Duration::from_secs(30)).await?;
    assert_eq!(consumed.len(), 200);
    Ok(())
}

#[tokio::test]
async fn produce_returns_offsets_in_input_order() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("offsets");
    broker.create_topic(&topic, 1).await?;
    let records = (0..10).map(|i| (None, vec![i as u8])).collect();
    let offsets = broker.produce(&topic, records).await?;
    assert_eq!(offsets, (0..10).map(|o| (0, o)).collect::<Vec<_>>());
    let consumed = broker.consume(&topic, 10, Duration::from_secs(30)).await?;
    let payloads: Vec<Vec<u8>> = consumed.into_iter().filter_map(|r| r.payload).collect();
    assert_eq!(payloads, (0..10).map(|i| vec![i as u8]).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn consume_says_how_many_arrived_when_too_few_do() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("too-few");
    broker.create_topic(&topic, 2).await?;
    let records = (0..3).map(|i| (None, vec![i])).collect();
    broker.produce(&topic, records).await?;
    let started = Instant::now();
    let err = broker
        .consume(&topic, 5, Duration::from_secs(3))
        .await
        .expect_err("only 3 of 5 records exist");
    assert!(
        err.to_string().contains("consumed 3 of 5 expected records"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn committed_offsets_reads_what_a_group_committed() -> anyhow::Result<()> {
    let broker = broker().await?;
    let topic = unique_name("commits");
    let group = unique_name("group");
    broker.create_topic(&topic, 2).await?;
    assert!(broker.committed_offsets(&group, &topic).await?.is_empty());

    let consumer: BaseConsumer = broker.consumer_config(&group).create()?;
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(&topic, 0, Offset::Offset(7))?;
    commit.add_partition_offset(&topic, 1, Offset::Offset(3))?;
    tokio::task::spawn_blocking(move || consumer.commit(&commit, CommitMode::Sync)).await??;

    let committed = broker.committed_offsets(&group, &topic).await?;
    assert_eq!(committed, BTreeMap::from([(0, 7), (1, 3)]));
    Ok(())
}

#[test]
fn unique_names_keep_the_prefix_and_never_repeat() {
    let names: HashSet<String> = (0..1_000).map(|_| unique_name("orders")).collect();
    assert_eq!(names.len(), 1_000);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("orders-") && n.len() > "orders-".len())
    );
}

#[tokio::test]
async fn a_broker_that_is_down_fails_within_seconds() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let err = match Broker::connect(&address).await {
        Ok(_) => panic!("connected to {address}, where nothing listens"),
        Err(e) => e.to_string(),
    };
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        err.contains(&format!("no Kafka broker at {address}")),
        "{err}"
    );
    assert!(err.contains("scripts/kafka-local up"), "{err}");
    assert!(err.contains("docker compose up -d"), "{err}");
}

#[tokio::test]
async fn consume_refuses_a_topic_whose_oldest_records_were_deleted() -> anyhow::Result<()> {
    let broker = broker().await?;
    if broker.kind() != kafka_testkit::BrokerKind::Mock {
        // Only the mock deletes records of a fresh topic (5 MiB per partition).
        return Ok(());
    }
    let topic = unique_name("overflow");
    broker.create_topic(&topic, 1).await?;
    // 8 MiB that lz4 cannot shrink: pseudo-random bytes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let records = (0..8 * 1024)
        .map(|_| {
            let payload = (0..1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            (None, payload)
        })
        .collect();
    broker.produce(&topic, records).await?;
    let err = broker
        .consume(&topic, 8 * 1024, Duration::from_secs(30))
        .await
        .expect_err("the mock dropped the oldest records");
    assert!(
        err.to_string().contains("partition 0 starts at offset"),
        "{err}"
    );
    assert!(err.to_string().contains("5 MiB per partition"), "{err}");
    Ok(())
}
