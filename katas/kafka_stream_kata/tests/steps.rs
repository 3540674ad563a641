//! The graded steps of the Kafka streaming kata, then the whole pipeline end to end.
//!
//! `cargo test -p kafka_stream_kata step_05` grades one step. Each test builds its own
//! input and calls one step only, so the steps can be done in any order. Steps 1, 2, 7
//! and `end_to_end` use the broker of `kafka_testkit` (see its docs), with topics and
//! groups of their own and a deadline on every wait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::graded as kata;
use chrono::{DateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use fixtures::events::{DirtyOptions, EventGenerator, OrderEvent, order_event_schema};
use fixtures::expected::stream_windows;
use kafka_testkit::steps::{assert_commits_as_group, assert_idempotent, assert_nothing_committed};
use kafka_testkit::{Broker, broker, unique_name};
use kata_testkit::{OkOrPanic, assert_same_windows, assert_schema, assert_table, decode_window};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Every wait on the broker ends by then, with a message.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Helpers: times, orders, tables
// ---------------------------------------------------------------------------------

/// `"14:03:07.123"` on 2026-11-25, in milliseconds since the epoch.
fn at(time: &str) -> i64 {
    let t = format!("2026-11-25T{time}Z");
    DateTime::parse_from_rfc3339(&t)
        .unwrap_or_else(|e| panic!("bad test time {t}: {e}"))
        .timestamp_millis()
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The shared event schema with `timestamp` as a timestamp: what step 3 returns.
fn parsed_schema() -> SchemaRef {
    let fields: Vec<Field> = order_event_schema()
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if f.name() == "timestamp" {
                f.with_data_type(utc_millis())
            } else {
                f
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Parsed orders built by hand: (order_id, category, amount, time as in [`at`]).
fn orders(rows: &[(&str, &str, f64, &str)]) -> RecordBatch {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from(vec!["CUST-00001"; n])),
        Arc::new(StringArray::from(vec!["PROD-0001"; n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Int32Array::from(vec![1; n])),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from(vec!["completed"; n])),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| at(r.3)))
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(parsed_schema(), columns).ok_or_panic("test orders")
}

/// A valid payload, as the producer writes it.
fn payload(order_id: &str, category: &str, amount: f64, timestamp: &str) -> Vec<u8> {
    OrderEvent {
        order_id: Some(order_id.into()),
        customer_id: Some("CUST-00042".into()),
        product_id: "PROD-0007".into(),
        category: category.into(),
        quantity: 2,
        unit_price: amount / 2.0,
        amount,
        status: "completed".into(),
        timestamp: timestamp.into(),
    }
    .to_json_bytes()
}

/// A payload made from a valid one by editing its JSON object.
fn edited(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&payload("ORD-9", "toys", 8.0, "2026-11-25T14:00:00.000Z"))
            .ok_or_panic("valid JSON");
    edit(value.as_object_mut().expect("an object"));
    serde_json::to_vec(&value).ok_or_panic("serialisable")
}

/// Selected columns of a batch, for a narrower table.
fn columns(batch: &RecordBatch, names: &[&str]) -> RecordBatch {
    let indices: Vec<usize> = names
        .iter()
        .map(|n| {
            batch
                .schema()
                .index_of(n)
                .unwrap_or_else(|_| panic!("no column `{n}` in {:?}", batch.schema()))
        })
        .collect();
    batch.project(&indices).ok_or_panic("projection")
}

/// Step 5's output schema.
fn window_schema() -> Schema {
    Schema::new(vec![
        Field::new("window_start", utc_millis(), false),
        Field::new("window_end", utc_millis(), false),
        Field::new("category", DataType::Utf8, false),
        Field::new("order_count", DataType::Int64, false),
        Field::new("total_amount", DataType::Float64, false),
        Field::new("avg_amount", DataType::Float64, false),
    ])
}

// ---------------------------------------------------------------------------------
// Helpers: Kafka
// ---------------------------------------------------------------------------------

async fn test_broker() -> &'static Broker {
    broker().await.ok_or_panic("no Kafka broker for the test")
}

/// A plain producer for the tests (not step 1's).
fn test_producer(broker: &Broker) -> FutureProducer {
    broker
        .client_config()
        .set("message.timeout.ms", "30000")
        .create()
        .ok_or_panic("creating the test producer")
}

/// A consumer of the test's own, not yet subscribed.
fn test_consumer(broker: &Broker, group: &str) -> StreamConsumer {
    broker
        .consumer_config(group)
        .create()
        .ok_or_panic("creating the test consumer")
}

async fn new_topic(broker: &Broker, prefix: &str) -> String {
    let topic = unique_name(prefix);
    broker
        .create_topic(&topic, 1)
        .await
        .unwrap_or_else(|e| panic!("creating topic {topic}: {e:#}"));
    topic
}

fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

// ---------------------------------------------------------------------------------
// Step 1
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn step_01_create_clients() {
    let broker = test_broker().await;
    let topic = new_topic(broker, "kstream-s1").await;
    let group = unique_name("kstream-s1-group");

    let (consumer, producer) = kata::create_clients(broker.bootstrap_servers(), &group)
        .ok_or_panic("create_clients returned an error");

    // Both talk to the broker given: the producer delivers, the consumer reads it back.
    // Earliest: a message produced before the consumer joins is still read.
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("hello"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .ok_or_panic("the step-1 producer could not deliver");
    consumer.subscribe(&[&topic]).ok_or_panic("subscribing");
    let first = {
        let received = tokio::time::timeout(DEADLINE, consumer.recv()).await;
        let received = received
            .unwrap_or_else(|_| panic!("the step-1 consumer read nothing from {topic} within {DEADLINE:?}: does it start from the earliest offset?"))
            .ok_or_panic("consumer error");
        (received.offset(), text(received.payload()))
    };
    assert_eq!(
        first,
        (0, "hello".to_string()),
        "the first message of {topic}"
    );
    // Closing a consumer commits what it read if it commits by itself. (The message
    // read is gone by now: a consumer does not close while one is held.)
    consumer.unsubscribe();
    drop(consumer);
    assert_nothing_committed(broker, &group, &topic).await;

    // The group id is the one given: a commit shows up under it. (A group of its own:
    // a commit from outside a group with members is refused.)
    let other_group = unique_name("kstream-s1-other");
    let (consumer, _) = kata::create_clients(broker.bootstrap_servers(), &other_group)
        .ok_or_panic("create_clients returned an error");
    assert_commits_as_group(broker, &consumer, &other_group, &topic).await;

    // Idempotent: checked on a mock cluster of its own that refuses producer ids.
    assert_idempotent(|bootstrap| {
        kata::create_clients(bootstrap, &unique_name("kstream-s1-idempotence"))
            .map(|(_, producer)| producer)
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Step 2
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn step_02_read_micro_batch() {
    let broker = test_broker().await;
    let topic = new_topic(broker, "kstream-s2").await;
    let records = (0..5)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                format!("p{i}").into_bytes(),
            )
        })
        .collect();
    broker
        .produce(&topic, records)
        .await
        .ok_or_panic("producing");
    let consumer = test_consumer(broker, &unique_name("kstream-s2-group"));

    let summary = |batch: &[rdkafka::message::OwnedMessage]| -> Vec<(i64, String, String)> {
        batch
            .iter()
            .map(|m| (m.offset(), text(m.key()), text(m.payload())))
            .collect()
    };

    // Full batch: returns as soon as 3 are there (the group join takes a few seconds).
    let started = Instant::now();
    let first = kata::read_micro_batch(&consumer, &topic, 3, DEADLINE)
        .await
        .ok_or_panic("read_micro_batch returned an error");
    assert_eq!(
        summary(&first),
        vec![
            (0, "k0".into(), "p0".into()),
            (1, "k1".into(), "p1".into()),
            (2, "k2".into(), "p2".into()),
        ],
        "first micro-batch of at most 3 (offset, key, payload)"
    );
    assert!(
        started.elapsed() < DEADLINE / 2,
        "a full micro-batch should come back at once, took {:?}",
        started.elapsed()
    );

    // The rest, then nothing: each call returns by its max_wait.
    let started = Instant::now();
    let second = kata::read_micro_batch(&consumer, &topic, 10, Duration::from_secs(2))
        .await
        .ok_or_panic("read_micro_batch returned an error");
    assert_eq!(
        summary(&second),
        vec![(3, "k3".into(), "p3".into()), (4, "k4".into(), "p4".into())],
        "second micro-batch: the next offsets, no message twice"
    );
    let third = kata::read_micro_batch(&consumer, &topic, 10, Duration::from_millis(500))
        .await
        .ok_or_panic("read_micro_batch returned an error");
    assert!(third.is_empty(), "nothing left, got {:?}", summary(&third));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "two calls with max_wait 2 s and 0.5 s took {:?}",
        started.elapsed()
    );
    consumer.unsubscribe();
}

// ---------------------------------------------------------------------------------
// Step 3
// ---------------------------------------------------------------------------------

#[test]
fn step_03_parse_orders() {
    let inputs: Vec<Vec<u8>> = vec![
        payload("ORD-1", "books", 39.98, "2026-11-25T14:03:07.123Z"),
        b"ORD-2,CUST-00042,2,39.98".to_vec(),
        b"{\"order_id\":\"ORD-3\",\"customer_id\":\"CU".to_vec(),
        edited(|o| {
            o.insert("order_id".into(), serde_json::Value::Null);
        }),
        edited(|o| {
            o.insert("quantity".into(), "several".into());
        }),
        edited(|o| {
            o.remove("amount");
        }),
        edited(|o| {
            o.insert("timestamp".into(), "yesterday".into());
        }),
        b"[1, 2, 3]".to_vec(),
        Vec::new(),
        edited(|o| {
            o.insert("coupon".into(), "WELCOME10".into());
        }),
        edited(|o| {
            o.insert("category".into(), serde_json::Value::Null);
        }),
        payload("ORD-11", "home", 10.5, "2026-11-25T16:10:00.000+02:00"),
        b"{\"order_id\":\"ORD-12\"} {\"order_id\":\"ORD-13\"}".to_vec(),
        b"{\"order_id\": nonsense}".to_vec(),
        edited(|o| {
            o.insert("amount".into(), true.into());
        }),
    ];
    let payloads: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();

    let (parsed, malformed) =
        kata::parse_orders(&payloads).ok_or_panic("parse_orders returned an error");

    assert_schema(
        "the schema of the parsed orders",
        &parsed_schema(),
        &parsed.schema(),
    );
    assert_table(
        "the orders that parse, in input order",
        &[
            "+----------+-------------+------------+----------+----------+------------+--------+-----------+--------------------------+",
            "| order_id | customer_id | product_id | category | quantity | unit_price | amount | status    | timestamp                |",
            "+----------+-------------+------------+----------+----------+------------+--------+-----------+--------------------------+",
            "| ORD-1    | CUST-00042  | PROD-0007  | books    | 2        | 19.99      | 39.98  | completed | 2026-11-25T14:03:07.123Z |",
            "|          | CUST-00042  | PROD-0007  | toys     | 2        | 4.0        | 8.0    | completed | 2026-11-25T14:00:00Z     |",
            "| ORD-9    | CUST-00042  | PROD-0007  | toys     | 2        | 4.0        | 8.0    | completed | 2026-11-25T14:00:00Z     |",
            "| ORD-11   | CUST-00042  | PROD-0007  | home     | 2        | 5.25       | 10.5   | completed | 2026-11-25T14:10:00Z     |",
            "+----------+-------------+------------+----------+----------+------------+--------+-----------+--------------------------+",
        ],
        &[parsed],
    );

    let indices: Vec<usize> = malformed.iter().map(|m| m.index).collect();
    assert_eq!(
        indices,
        vec![1, 2, 4, 5, 6, 7, 8, 10, 12, 13, 14],
        "indices of the malformed payloads, sorted (reasons: {malformed:#?})"
    );
    let reason = |index: usize| {
        &malformed
            .iter()
            .find(|m| m.index == index)
            .expect("checked above")
            .reason
    };
    for (index, field) in [
        (4, "quantity"),
        (5, "amount"),
        (6, "timestamp"),
        (10, "category"),
        (14, "amount"),
    ] {
        assert!(
            reason(index).contains(field),
            "the reason for payload {index} should name `{field}`: {:?}",
            reason(index)
        );
    }
    for m in &malformed {
        assert!(
            !m.reason.trim().is_empty(),
            "payload {} has an empty reason",
            m.index
        );
    }
}

// ---------------------------------------------------------------------------------
// Step 4
// ---------------------------------------------------------------------------------

#[test]
fn step_04_apply_watermark() {
    // In consumption order. The watermark is 10 minutes behind the latest time so far.
    let first = orders(&[
        ("A", "books", 1.0, "14:00:00"),     // max 14:00
        ("B", "books", 1.0, "14:20:00"),     // max 14:20, watermark 14:10
        ("C", "books", 1.0, "14:05:00"),     // late
        ("D", "books", 1.0, "14:10:00"),     // exactly the watermark: on time
        ("E", "books", 1.0, "14:09:59.999"), // late
        ("F", "books", 1.0, "14:30:00"),     // max 14:30, watermark 14:20
        ("G", "books", 1.0, "14:12:00"),     // late
        ("H", "books", 1.0, "14:25:00"),     // out of order, on time
    ]);
    let mut max_event_time = None;
    let (on_time, late) = kata::apply_watermark(&first, &mut max_event_time)
        .ok_or_panic("apply_watermark returned an error");
    assert_table(
        "the on-time orders of the first micro-batch",
        &[
            "+----------+----------------------+",
            "| order_id | timestamp            |",
            "+----------+----------------------+",
            "| A        | 2026-11-25T14:00:00Z |",
            "| B        | 2026-11-25T14:20:00Z |",
            "| D        | 2026-11-25T14:10:00Z |",
            "| F        | 2026-11-25T14:30:00Z |",
            "| H        | 2026-11-25T14:25:00Z |",
            "+----------+----------------------+",
        ],
        &[columns(&on_time, &["order_id", "timestamp"])],
    );
    assert_eq!(
        on_time.schema(),
        first.schema(),
        "on-time orders keep the schema"
    );
    assert_eq!(late, 3, "late orders in the first micro-batch");
    assert_eq!(
        max_event_time,
        Some(at("14:30:00")),
        "latest event time after the first micro-batch"
    );

    // The next micro-batch starts from where the first left off.
    let second = orders(&[
        ("I", "toys", 1.0, "14:19:00"), // late: the watermark is still 14:20
        ("J", "toys", 1.0, "14:21:00"),
        ("K", "toys", 1.0, "14:45:00"), // watermark 14:35
        ("L", "toys", 1.0, "14:34:00"), // late
    ]);
    let (on_time, late) = kata::apply_watermark(&second, &mut max_event_time)
        .ok_or_panic("apply_watermark returned an error");
    assert_table(
        "the on-time orders of the second micro-batch",
        &[
            "+----------+----------------------+",
            "| order_id | timestamp            |",
            "+----------+----------------------+",
            "| J        | 2026-11-25T14:21:00Z |",
            "| K        | 2026-11-25T14:45:00Z |",
            "+----------+----------------------+",
        ],
        &[columns(&on_time, &["order_id", "timestamp"])],
    );
    assert_eq!(late, 2, "late orders in the second micro-batch");
    assert_eq!(
        max_event_time,
        Some(at("14:45:00")),
        "latest event time after the second micro-batch"
    );
}

// ---------------------------------------------------------------------------------
// Step 5
// ---------------------------------------------------------------------------------

#[test]
fn step_05_tumbling_window_totals() {
    // A window left open by an earlier micro-batch.
    let mut state = kata::WindowState::new();
    state.insert(
        (at("13:50:00"), "home".to_string()),
        kata::WindowTotals {
            order_count: 2,
            total_amount: 9.5,
        },
    );

    // Micro-batch 1, then the watermark reaches 14:05.
    let batch = orders(&[
        ("A", "books", 10.0, "14:01:00"),
        ("B", "books", 20.5, "14:04:59.999"),
        ("C", "toys", 5.25, "14:03:00"),
        ("D", "books", 7.0, "14:05:00"),
        ("E", "toys", 1.0, "13:58:00"),
        // 0.1 + 0.2 + 0.7 is 1.0000000000000002 in floating point.
        ("F", "sports", 0.1, "14:02:00"),
        ("G", "sports", 0.2, "14:02:30"),
        ("H", "sports", 0.7, "14:03:00"),
    ]);
    let closed = kata::tumbling_window_totals(&mut state, &batch, at("14:05:00"))
        .ok_or_panic("tumbling_window_totals returned an error");
    assert_schema("the windows' schema", &window_schema(), &closed.schema());
    assert_table(
        "the windows closed by watermark 14:05",
        &[
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| window_start         | window_end           | category | order_count | total_amount | avg_amount |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| 2026-11-25T13:50:00Z | 2026-11-25T13:55:00Z | home     | 2           | 9.5          | 4.75       |",
            "| 2026-11-25T13:55:00Z | 2026-11-25T14:00:00Z | toys     | 1           | 1.0          | 1.0        |",
            "| 2026-11-25T14:00:00Z | 2026-11-25T14:05:00Z | books    | 2           | 30.5         | 15.25      |",
            "| 2026-11-25T14:00:00Z | 2026-11-25T14:05:00Z | sports   | 3           | 1.0          | 0.33       |",
            "| 2026-11-25T14:00:00Z | 2026-11-25T14:05:00Z | toys     | 1           | 5.25         | 5.25       |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
        ],
        &[closed],
    );
    let open: Vec<_> = state.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(
        open,
        vec![(
            (at("14:05:00"), "books".to_string()),
            kata::WindowTotals {
                order_count: 1,
                total_amount: 7.0
            }
        )],
        "the state keeps the open window [14:05, 14:10) of books"
    );

    // Micro-batch 2 adds to that window; the watermark reaches its end exactly.
    let batch = orders(&[
        ("I", "books", 3.0, "14:06:00"),
        ("J", "clothing", 4.0, "14:11:00"),
    ]);
    let closed = kata::tumbling_window_totals(&mut state, &batch, at("14:10:00"))
        .ok_or_panic("tumbling_window_totals returned an error");
    assert_table(
        "the windows closed by watermark 14:10",
        &[
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| window_start         | window_end           | category | order_count | total_amount | avg_amount |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| 2026-11-25T14:05:00Z | 2026-11-25T14:10:00Z | books    | 2           | 10.0         | 5.0        |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
        ],
        &[closed],
    );

    // Input exhausted: everything left is emitted.
    let closed = kata::tumbling_window_totals(&mut state, &orders(&[]), i64::MAX)
        .ok_or_panic("tumbling_window_totals returned an error");
    assert_table(
        "the windows left at the end of the input",
        &[
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| window_start         | window_end           | category | order_count | total_amount | avg_amount |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
            "| 2026-11-25T14:10:00Z | 2026-11-25T14:15:00Z | clothing | 1           | 4.0          | 4.0        |",
            "+----------------------+----------------------+----------+-------------+--------------+------------+",
        ],
        &[closed],
    );
    assert!(
        state.is_empty(),
        "every window was emitted, state left: {state:?}"
    );
}

// ---------------------------------------------------------------------------------
// Step 6
// ---------------------------------------------------------------------------------

#[test]
fn step_06_format_aggregates() {
    let ts = |t: &str| TimestampMillisecondArray::from(vec![at(t)]).with_timezone("UTC");
    let windows = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("window_start", utc_millis(), false),
            Field::new("window_end", utc_millis(), false),
            Field::new("category", DataType::Utf8, false),
            Field::new("order_count", DataType::Int64, false),
            Field::new("total_amount", DataType::Float64, false),
            Field::new("avg_amount", DataType::Float64, false),
        ])),
        vec![
            Arc::new(ts("14:00:00")),
            Arc::new(ts("14:05:00")),
            Arc::new(StringArray::from(vec!["books"])),
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(Float64Array::from(vec![30.5])),
            Arc::new(Float64Array::from(vec![15.25])),
        ],
    )
    .ok_or_panic("test windows");
    let more = {
        let mut batch = windows.clone();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts("14:05:00")),
            Arc::new(ts("14:10:00")),
            Arc::new(StringArray::from(vec!["home & garden"])),
            Arc::new(Int64Array::from(vec![3])),
            Arc::new(Float64Array::from(vec![10.0])),
            Arc::new(Float64Array::from(vec![10.0 / 3.0])),
        ];
        batch = datafusion::arrow::compute::concat_batches(
            &windows.schema(),
            &[
                batch,
                RecordBatch::try_new(windows.schema(), columns).ok_or_panic("row 2"),
            ],
        )
        .ok_or_panic("two rows");
        batch
    };

    let messages =
        kata::format_aggregates(&more).ok_or_panic("format_aggregates returned an error");

    // Each value, read back as JSON, as a table row.
    let mut keys = Vec::new();
    let mut fields = Vec::new();
    let (mut starts, mut ends, mut categories) = (Vec::new(), Vec::new(), Vec::new());
    let (mut counts, mut totals, mut averages) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value) in &messages {
        let json: serde_json::Value = serde_json::from_str(value)
            .unwrap_or_else(|e| panic!("message {key:?} is not JSON ({e}): {value}"));
        let object = json
            .as_object()
            .unwrap_or_else(|| panic!("message {key:?} is not a JSON object: {value}"));
        keys.push(key.clone());
        // The fields in the order they appear in the text.
        let mut names: Vec<&String> = object.keys().collect();
        names.sort_by_key(|name| value.find(&format!("\"{name}\":")).unwrap_or(usize::MAX));
        fields.push(
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        let s = |name: &str| {
            object
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let n = |name: &str| object.get(name).and_then(serde_json::Value::as_f64);
        starts.push(s("window_start"));
        ends.push(s("window_end"));
        categories.push(s("category"));
        counts.push(
            object
                .get("order_count")
                .and_then(serde_json::Value::as_i64),
        );
        totals.push(n("total_amount"));
        averages.push(n("avg_amount"));
    }
    let table = RecordBatch::try_from_iter(vec![
        ("key", Arc::new(StringArray::from(keys)) as ArrayRef),
        (
            "window_start",
            Arc::new(StringArray::from(starts)) as ArrayRef,
        ),
        ("window_end", Arc::new(StringArray::from(ends)) as ArrayRef),
        (
            "category",
            Arc::new(StringArray::from(categories)) as ArrayRef,
        ),
        (
            "order_count",
            Arc::new(Int64Array::from(counts)) as ArrayRef,
        ),
        (
            "total_amount",
            Arc::new(Float64Array::from(totals)) as ArrayRef,
        ),
        (
            "avg_amount",
            Arc::new(Float64Array::from(averages)) as ArrayRef,
        ),
    ])
    .ok_or_panic("table");
    assert_table(
        "each message, read back as JSON",
        &[
            "+----------------------------------------+--------------------------+--------------------------+---------------+-------------+--------------+--------------------+",
            "| key                                    | window_start             | window_end               | category      | order_count | total_amount | avg_amount         |",
            "+----------------------------------------+--------------------------+--------------------------+---------------+-------------+--------------+--------------------+",
            "| 2026-11-25T14:00:00.000Z|books         | 2026-11-25T14:00:00.000Z | 2026-11-25T14:05:00.000Z | books         | 2           | 30.5         | 15.25              |",
            "| 2026-11-25T14:05:00.000Z|home & garden | 2026-11-25T14:05:00.000Z | 2026-11-25T14:10:00.000Z | home & garden | 3           | 10.0         | 3.3333333333333335 |",
            "+----------------------------------------+--------------------------+--------------------------+---------------+-------------+--------------+--------------------+",
        ],
        &[table],
    );
    let order = "window_start,window_end,category,order_count,total_amount,avg_amount";
    for (key, f) in messages.iter().map(|m| &m.0).zip(&fields) {
        assert_eq!(f, order, "the fields of message {key:?}, in order");
    }
}

// ---------------------------------------------------------------------------------
// Step 7
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn step_07_write_and_commit() {
    let broker = test_broker().await;
    let input = new_topic(broker, "kstream-s7-in").await;
    let output = new_topic(broker, "kstream-s7-out").await;
    let group = unique_name("kstream-s7-group");
    let inputs = (0..3)
        .map(|i| (None, format!("in{i}").into_bytes()))
        .collect();
    broker
        .produce(&input, inputs)
        .await
        .ok_or_panic("producing the input");

    // Consume the input as the pipeline would (without step 2).
    let consumer = test_consumer(broker, &group);
    consumer.subscribe(&[&input]).ok_or_panic("subscribing");
    for expected in 0..3 {
        let message = tokio::time::timeout(DEADLINE, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("the input was not read within {DEADLINE:?}"))
            .ok_or_panic("consumer error");
        assert_eq!(message.offset(), expected);
    }
    let offsets = |next: i64| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&input, 0, Offset::Offset(next))
            .ok_or_panic("offsets");
        list
    };
    let producer = test_producer(broker);
    let messages: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                format!("2026-11-25T14:0{i}:00.000Z|books"),
                format!("{{\"n\":{i}}}"),
            )
        })
        .collect();

    kata::write_and_commit(&producer, &consumer, &output, &messages, &offsets(3))
        .await
        .ok_or_panic("write_and_commit returned an error");

    // The messages were delivered, and the commit is there (read back right away).
    let written = broker
        .consume(&output, 3, DEADLINE)
        .await
        .ok_or_panic("reading the output back");
    let written: Vec<(String, String)> = written
        .iter()
        .map(|r| (text(r.key.as_deref()), text(r.payload.as_deref())))
        .collect();
    assert_eq!(written, messages, "messages in topic {output} (key, value)");
    let committed = broker
        .committed_offsets(&group, &input)
        .await
        .ok_or_panic("reading the committed offsets");
    assert_eq!(
        committed,
        BTreeMap::from([(0, 3)]),
        "committed offsets of {input}"
    );

    // Nothing read, nothing to write (an idle pipeline): no error.
    kata::write_and_commit(
        &producer,
        &consumer,
        &output,
        &[],
        &TopicPartitionList::new(),
    )
    .await
    .ok_or_panic("write_and_commit of nothing returned an error");

    // A message that cannot be sent (larger than message.max.bytes): an error, and the
    // offsets are not committed.
    let too_big = vec![("big".to_string(), "x".repeat(2_000_000))];
    let outcome =
        kata::write_and_commit(&producer, &consumer, &output, &too_big, &offsets(1)).await;
    assert!(
        outcome.is_err(),
        "a message of 2 MB was accepted: {outcome:?}"
    );
    let committed = broker
        .committed_offsets(&group, &input)
        .await
        .ok_or_panic("reading the committed offsets");
    assert_eq!(
        committed,
        BTreeMap::from([(0, 3)]),
        "after a failed write, nothing may be committed"
    );
    consumer.unsubscribe();
}

// ---------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn end_to_end() {
    let broker = test_broker().await;
    let input = new_topic(broker, "kstream-e2e-orders").await;
    let output = new_topic(broker, "kstream-e2e-aggregates").await;
    let group = unique_name("kstream-e2e");

    // Two hours of event time, with late, invalid and malformed records.
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
    let dirty = DirtyOptions {
        late_fraction: 0.05,
        invalid_fraction: 0.05,
        malformed_fraction: 0.05,
    };
    let records = EventGenerator::new(2026, start, 3000.0 / 7200.0, dirty)
        .ok_or_panic("generator")
        .generate(3000);
    broker
        .produce_events(&input, &records)
        .await
        .ok_or_panic("producing");
    // Computed with plain Rust from the generated records (fixtures::expected).
    let expected = stream_windows(&records).ok_or_panic("expected windows");

    // The pipeline, made of your steps, in micro-batches of at most 500.
    let (consumer, producer) =
        kata::create_clients(broker.bootstrap_servers(), &group).ok_or_panic("step 1");
    let mut max_event_time = None;
    let mut state = kata::WindowState::new();
    let (mut read, mut late, mut malformed, mut emitted) = (0, 0, 0, 0);
    let started = Instant::now();
    while read < records.len() {
        assert!(
            started.elapsed() < DEADLINE * 2,
            "read {read} of {} records within {:?}",
            records.len(),
            DEADLINE * 2
        );
        let messages = kata::read_micro_batch(&consumer, &input, 500, Duration::from_secs(1))
            .await
            .ok_or_panic("step 2");
        let payloads: Vec<&[u8]> = messages
            .iter()
            .map(|m| m.payload().unwrap_or(&[]))
            .collect();
        let (orders, bad) = kata::parse_orders(&payloads).ok_or_panic("step 3");
        let (on_time, late_here) =
            kata::apply_watermark(&orders, &mut max_event_time).ok_or_panic("step 4");
        let watermark = max_event_time.map_or(i64::MIN, |m| m - 600_000);
        let closed =
            kata::tumbling_window_totals(&mut state, &on_time, watermark).ok_or_panic("step 5");
        let out = kata::format_aggregates(&closed).ok_or_panic("step 6");
        let mut offsets = TopicPartitionList::new();
        if let Some(last) = messages.last() {
            offsets
                .add_partition_offset(&input, last.partition(), Offset::Offset(last.offset() + 1))
                .ok_or_panic("offsets");
        }
        if !messages.is_empty() {
            kata::write_and_commit(&producer, &consumer, &output, &out, &offsets)
                .await
                .ok_or_panic("step 7");
        }
        read += messages.len();
        late += late_here;
        malformed += bad.len();
        emitted += out.len();
    }
    let closed =
        kata::tumbling_window_totals(&mut state, &orders(&[]), i64::MAX).ok_or_panic("step 5");
    let out = kata::format_aggregates(&closed).ok_or_panic("step 6");
    let offsets = consumer.position().ok_or_panic("positions");
    kata::write_and_commit(&producer, &consumer, &output, &out, &offsets)
        .await
        .ok_or_panic("step 7");
    emitted += out.len();
    consumer.unsubscribe();

    assert_eq!(
        (read, late as u64, malformed as u64),
        (records.len(), expected.late, expected.malformed),
        "(read, late, malformed)"
    );
    let expected = expected.windows;
    assert_eq!(emitted, expected.len(), "windows emitted");

    // Every window once, with the expected totals.
    let written = broker
        .consume(&output, expected.len(), DEADLINE)
        .await
        .ok_or_panic("reading the aggregates back");
    let mut actual = BTreeMap::new();
    for r in &written {
        let window =
            decode_window(r.key.as_deref(), r.payload.as_deref()).unwrap_or_else(|e| panic!("{e}"));
        let (count, total, avg) = (window.order_count, window.total_amount, window.avg_amount);
        // Rounded to cents: the mean, within half a cent.
        let cents = |x: f64| ((x * 100.0).round() - x * 100.0).abs() < 1e-6;
        assert!(
            cents(total) && cents(avg) && (avg - total / count as f64).abs() <= 0.005 + 1e-9,
            "aggregate {}: avg {avg}, total {total}, count {count}",
            text(r.key.as_deref())
        );
        let previous = actual.insert(window.key(), (count, window.total_cents()));
        assert!(
            previous.is_none(),
            "window {} was emitted twice",
            text(r.key.as_deref())
        );
    }
    assert_same_windows(&expected, &actual);
}
