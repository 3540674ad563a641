//! The steps of the Kafka → Parquet kata, one test each, then the whole pipeline.
//!
//! `cargo test -p kafka_parquet_kata step_04` grades one step; `--features reference`
//! grades the reference instead of your code. Steps 1, 2, 7 and `end_to_end` use the
//! broker of `kafka_testkit` (it says which on stderr); steps 3–6 need nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::graded as kata;
use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;
use datafusion::prelude::{ParquetReadOptions, SessionContext, col};
use fixtures::events::{DirtyOptions, EventGenerator, RecordKind, order_event_schema};
use kafka_testkit::steps::{assert_commits_as_group, assert_nothing_committed};
use kafka_testkit::{broker, unique_name};
use kata_testkit::{
    OkOrPanic, assert_columns, assert_same_rows, assert_schema, assert_sorted_table, table,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Every wait on the broker ends by then, with a message.
const DEADLINE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ helpers

/// A batch of `schema` from JSON lines (one object per row).
fn batch_from_json(schema: SchemaRef, lines: &[&str]) -> RecordBatch {
    let text = lines.join("\n");
    let mut reader = ReaderBuilder::new(schema.clone())
        .build(text.as_bytes())
        .ok_or_panic("a JSON reader");
    let batch = reader
        .next()
        .expect("one batch")
        .ok_or_panic("reading the JSON test rows");
    assert!(reader.next().is_none());
    batch
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn with_position(fields: Vec<Field>) -> Vec<Field> {
    let mut all = vec![
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ];
    all.extend(fields);
    all
}

/// The columns of step 3's output: position, then the 9 payload fields.
fn parsed_fields() -> Vec<Field> {
    with_position(
        order_event_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect(),
    )
}

/// The columns of step 4's output: `timestamp` replaced by `event_time`, last.
fn timed_fields() -> Vec<Field> {
    let mut fields: Vec<Field> = parsed_fields()
        .into_iter()
        .filter(|f| f.name() != "timestamp")
        .collect();
    fields.push(Field::new("event_time", utc_micros(), false));
    fields
}

/// The columns of step 5's output.
fn partitioned_fields() -> Vec<Field> {
    let mut fields = timed_fields();
    for name in ["year", "month", "day", "hour"] {
        fields.push(Field::new(name, DataType::Int32, false));
    }
    fields
}

fn names_and_types(fields: &[Field]) -> Vec<(&str, DataType)> {
    fields
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect()
}

fn rejected_columns() -> Vec<(&'static str, DataType)> {
    vec![
        ("kafka_partition", DataType::Int32),
        ("kafka_offset", DataType::Int64),
        ("reason", DataType::Utf8),
    ]
}

fn rejected(rows: &[(i32, i64, &str)]) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        (
            "kafka_partition",
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "kafka_offset",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))) as ArrayRef,
        ),
        (
            "reason",
            Arc::new(datafusion::arrow::array::StringArray::from_iter_values(
                rows.iter().map(|r| r.2),
            )) as ArrayRef,
        ),
    ])
    .ok_or_panic("building a test batch")
}

/// A consumer of the test broker for `group`, assigned to every partition of `topic`.
async fn assigned_consumer(topic: &str, partitions: i32, start: Offset) -> BaseConsumer {
    let broker = broker().await.ok_or_panic("no Kafka broker for the test");
    let consumer: BaseConsumer = broker
        .consumer_config(&unique_name("kp-reader"))
        .create()
        .ok_or_panic("creating a Kafka client");
    assign_all(&consumer, topic, partitions, start);
    consumer
}

fn assign_all(consumer: &BaseConsumer, topic: &str, partitions: i32, start: Offset) {
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, start)
            .ok_or_panic("building the offsets");
    }
    consumer.assign(&list).ok_or_panic("assigning partitions");
}

/// A micro-batch with the key and value shown as text.
fn readable(raw: &RecordBatch) -> RecordBatch {
    let columns: Vec<ArrayRef> = raw
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Binary => cast(c, &DataType::Utf8).ok_or_panic("casting"),
            _ => c.clone(),
        })
        .collect();
    let fields: Vec<Field> = raw
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .ok_or_panic("building a test batch")
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok_or_panic("a file of the test") {
            let path = entry.ok_or_panic("listing the lake").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(
                    path.strip_prefix(dir)
                        .ok_or_panic("a file of the test")
                        .to_path_buf(),
                );
            }
        }
    }
    files.sort();
    files
}

/// The lake read back by DataFusion, partition columns recovered from the paths.
async fn read_lake(lake: &Path, columns: &[&str]) -> RecordBatch {
    let ctx = SessionContext::new();
    let partitions = ["year", "month", "day", "hour"]
        .iter()
        .map(|c| (c.to_string(), DataType::Int32))
        .collect();
    let df = ctx
        .read_parquet(
            lake.to_str().expect("reading the lake back"),
            ParquetReadOptions::default().table_partition_cols(partitions),
        )
        .await
        .ok_or_panic("reading the lake back")
        .select_columns(columns)
        .ok_or_panic("reading the lake back")
        .sort(vec![
            col("kafka_partition").sort(true, false),
            col("kafka_offset").sort(true, false),
        ])
        .ok_or_panic("reading the lake back");
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.ok_or_panic("reading the lake back");
    concat_batches(&schema, &batches).ok_or_panic("concatenating batches")
}

// ------------------------------------------------------------------ steps

#[tokio::test]
async fn step_01_create_consumer() {
    let broker = broker().await.ok_or_panic("no Kafka broker for the test");
    let topic = unique_name("kp-step1");
    broker
        .create_topic(&topic, 2)
        .await
        .ok_or_panic("creating a topic");
    let produced = broker
        .produce(
            &topic,
            (0..6)
                .map(|i| {
                    (
                        Some(format!("k{i}").into_bytes()),
                        format!("v{i}").into_bytes(),
                    )
                })
                .collect(),
        )
        .await
        .ok_or_panic("reading the lake back");
    let group = unique_name("kp-step1-group");

    let consumer = kata::create_consumer(broker.bootstrap_servers(), &group)
        .ok_or_panic("create_consumer returned an error");
    // Start where the group left off: it has no offsets yet, so the reset policy decides.
    assign_all(&consumer, &topic, 2, Offset::Stored);
    let mut seen = BTreeSet::new();
    let started = Instant::now();
    // The records are already there: they arrive in a second or two.
    while seen.len() < produced.len() && started.elapsed() < Duration::from_secs(15) {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.ok_or_panic("reading with your consumer");
            seen.insert((
                rdkafka::Message::partition(&message),
                rdkafka::Message::offset(&message),
            ));
        }
    }
    let expected: BTreeSet<(i32, i64)> = produced.iter().copied().collect();
    assert_eq!(
        seen, expected,
        "a new group must read every record already in the topic (auto.offset.reset = earliest)"
    );
    drop(consumer); // closing commits the positions if auto-commit is on

    assert_nothing_committed(broker, &group, &topic).await;

    // The group id is the one given: a commit shows up under it.
    let consumer = kata::create_consumer(broker.bootstrap_servers(), &group)
        .ok_or_panic("create_consumer returned an error");
    assert_commits_as_group(broker, &consumer, &group, &topic).await;
}

#[tokio::test]
async fn step_02_read_micro_batch() {
    let broker = broker().await.ok_or_panic("no Kafka broker for the test");
    let topic = unique_name("kp-step2");
    broker
        .create_topic(&topic, 2)
        .await
        .ok_or_panic("creating a topic");
    let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..8)
        .map(|i| {
            let key = (i != 3).then(|| format!("key-{i}").into_bytes());
            (key, format!("value-{i}").into_bytes())
        })
        .collect();
    let produced = broker
        .produce(&topic, records.clone())
        .await
        .ok_or_panic("producing");
    let consumer = assigned_consumer(&topic, 2, Offset::Beginning).await;

    // A full batch: max_records reached well before max_wait.
    let first = kata::read_micro_batch(&consumer, 5, DEADLINE)
        .ok_or_panic("read_micro_batch returned an error");
    assert_columns(
        "the micro-batch",
        &[
            ("kafka_partition", DataType::Int32),
            ("kafka_offset", DataType::Int64),
            ("key", DataType::Binary),
            ("value", DataType::Binary),
        ],
        &first.schema(),
    );
    assert_eq!(
        first.num_rows(),
        5,
        "a batch of at most 5 when 8 are waiting"
    );

    // The rest: fewer than max_records, so the batch ends at max_wait.
    let started = Instant::now();
    let rest = kata::read_micro_batch(&consumer, 100, Duration::from_secs(2))
        .ok_or_panic("read_micro_batch returned an error");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a batch must end at max_wait (2 s), took {:?}",
        started.elapsed()
    );
    assert_eq!(rest.num_rows(), 3, "the 3 records left");

    let empty = kata::read_micro_batch(&consumer, 100, Duration::from_millis(300))
        .ok_or_panic("read_micro_batch returned an error");
    assert_eq!(empty.num_rows(), 0, "nothing left: an empty batch");

    let expected = RecordBatch::try_from_iter(vec![
        (
            "kafka_partition",
            Arc::new(Int32Array::from_iter_values(produced.iter().map(|p| p.0))) as ArrayRef,
        ),
        (
            "kafka_offset",
            Arc::new(Int64Array::from_iter_values(produced.iter().map(|p| p.1))) as ArrayRef,
        ),
        (
            "key",
            Arc::new(BinaryArray::from_iter(records.iter().map(|r| r.0.clone()))) as ArrayRef,
        ),
        (
            "value",
            Arc::new(BinaryArray::from_iter_values(
                records.iter().map(|r| r.1.clone()),
            )) as ArrayRef,
        ),
    ])
    .ok_or_panic("building a test batch");
    let all = concat_batches(&first.schema(), &[first, rest]).ok_or_panic("concatenating batches");
    assert_same_rows(
        "every record once, with its partition, offset, key and value",
        &readable(&expected),
        &readable(&all),
    );
}

#[test]
fn step_03_parse_orders() {
    let valid = r#"{"order_id":"ORD-00000001","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":2,"unit_price":19.99,"amount":39.98,"status":"completed","timestamp":"2026-11-25T14:03:07.123Z"}"#;
    let null_id = r#"{"order_id":null,"customer_id":"CUST-00002","product_id":"PROD-0002","category":"toys","quantity":1,"unit_price":5.0,"amount":5.0,"status":"pending","timestamp":"2026-11-25T14:04:00.000Z"}"#;
    let bad_time = r#"{"order_id":"ORD-00000003","customer_id":"CUST-00003","product_id":"PROD-0003","category":"home","quantity":3,"unit_price":10.0,"amount":30.0,"status":"shipped","timestamp":"not a time"}"#;
    let not_json = r#"{"order_id":"ORD-00000004","customer_id":"CU"#;
    let csv = "ORD-00000005,CUST-00005,2,39.98";
    let wrong_type = r#"{"order_id":"ORD-00000006","customer_id":"CUST-00006","product_id":"PROD-0006","category":"books","quantity":"several","unit_price":19.99,"amount":39.98,"status":"completed","timestamp":"2026-11-25T14:05:00.000Z"}"#;
    let missing = r#"{"order_id":"ORD-00000007","customer_id":"CUST-00007","product_id":"PROD-0007","category":"books","quantity":1,"unit_price":19.99,"status":"completed"}"#;
    let values: Vec<Option<&[u8]>> = vec![
        Some(valid.as_bytes()),
        Some(null_id.as_bytes()),
        Some(bad_time.as_bytes()),
        Some(not_json.as_bytes()),
        Some(csv.as_bytes()),
        Some(wrong_type.as_bytes()),
        Some(missing.as_bytes()),
        None,
    ];
    let raw = RecordBatch::try_from_iter(vec![
        (
            "kafka_partition",
            Arc::new(Int32Array::from(vec![0, 1, 0, 1, 0, 1, 0, 1])) as ArrayRef,
        ),
        (
            "kafka_offset",
            Arc::new(Int64Array::from(vec![10, 20, 11, 21, 12, 22, 13, 23])) as ArrayRef,
        ),
        (
            "key",
            Arc::new(BinaryArray::from_iter(values.iter().map(|_| None::<&[u8]>))) as ArrayRef,
        ),
        ("value", Arc::new(BinaryArray::from(values)) as ArrayRef),
    ])
    .ok_or_panic("building a test batch");

    let (orders, malformed) =
        kata::parse_orders(&raw).ok_or_panic("parse_orders returned an error");

    let fields = parsed_fields();
    assert_schema(
        "the parsed orders (nullability as in order_event_schema())",
        &Schema::new(fields.clone()),
        &orders.schema(),
    );
    let expected = batch_from_json(
        Arc::new(Schema::new(fields)),
        &[
            &valid.replacen('{', r#"{"kafka_partition":0,"kafka_offset":10,"#, 1),
            &null_id.replacen('{', r#"{"kafka_partition":1,"kafka_offset":20,"#, 1),
            &bad_time.replacen('{', r#"{"kafka_partition":0,"kafka_offset":11,"#, 1),
        ],
    );
    assert_same_rows("the orders that parse", &expected, &orders);

    assert_columns(
        "the malformed records",
        &rejected_columns(),
        &malformed.schema(),
    );
    let positions = malformed.project(&[0, 1]).ok_or_panic("projection");
    let expected = rejected(&[
        (1, 21, ""),
        (0, 12, ""),
        (1, 22, ""),
        (0, 13, ""),
        (1, 23, ""),
    ])
    .project(&[0, 1])
    .ok_or_panic("projection");
    assert_same_rows("the malformed records", &expected, &positions);
    let reasons = malformed
        .column(2)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .expect("the reason column is text");
    for (row, reason) in reasons.iter().enumerate() {
        assert!(
            reason.is_some_and(|r| !r.trim().is_empty()),
            "every malformed record needs a reason; row {row} of\n{}",
            table(std::slice::from_ref(&malformed))
        );
    }
}

#[test]
fn step_04_to_event_time() {
    let schema = Arc::new(Schema::new(parsed_fields()));
    let row = |partition: i32, offset: i64, id: &str, timestamp: &str| {
        format!(
            r#"{{"kafka_partition":{partition},"kafka_offset":{offset},"order_id":"{id}","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":9.5,"status":"completed","timestamp":"{timestamp}"}}"#
        )
    };
    let orders = batch_from_json(
        schema,
        &[
            &row(0, 1, "ORD-1", "2026-11-25T14:03:07.123Z"),
            &row(0, 2, "ORD-2", "2026-11-25T16:30:00.000+02:00"),
            &row(1, 1, "ORD-3", "2026-11-25T23:59:59.999999Z"),
            &row(1, 2, "ORD-4", "yesterday"),
            &row(1, 3, "ORD-5", "2026-02-30T10:00:00Z"),
        ],
    );

    let (timed, bad) = kata::to_event_time(&orders).ok_or_panic("to_event_time returned an error");

    let fields = timed_fields();
    assert_columns(
        "the orders with event_time (timestamp dropped, event_time last)",
        &names_and_types(&fields),
        &timed.schema(),
    );
    let expected = batch_from_json(
        Arc::new(Schema::new(fields)),
        &[
            r#"{"kafka_partition":0,"kafka_offset":1,"order_id":"ORD-1","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":9.5,"status":"completed","event_time":"2026-11-25T14:03:07.123Z"}"#,
            r#"{"kafka_partition":0,"kafka_offset":2,"order_id":"ORD-2","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":9.5,"status":"completed","event_time":"2026-11-25T14:30:00Z"}"#,
            r#"{"kafka_partition":1,"kafka_offset":1,"order_id":"ORD-3","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":9.5,"status":"completed","event_time":"2026-11-25T23:59:59.999999Z"}"#,
        ],
    );
    assert_same_rows("the orders with an event time (UTC)", &expected, &timed);

    assert_columns("the rejected records", &rejected_columns(), &bad.schema());
    assert_same_rows(
        "the rejected records",
        &rejected(&[
            (1, 2, r#"unparsable timestamp: "yesterday""#),
            (1, 3, r#"unparsable timestamp: "2026-02-30T10:00:00Z""#),
        ]),
        &bad,
    );
}

#[test]
fn step_05_add_partition_columns() {
    let schema = Arc::new(Schema::new(timed_fields()));
    let row = |offset: i64, time: &str| {
        format!(
            r#"{{"kafka_partition":0,"kafka_offset":{offset},"order_id":"ORD-{offset}","customer_id":"CUST-00001","product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":9.5,"status":"completed","event_time":"{time}"}}"#
        )
    };
    let times = [
        "2026-11-25T14:03:07.123Z",
        "2026-11-25T14:59:59.999Z",
        "2026-11-25T15:00:00Z",
        "2026-12-31T23:59:59.999999Z",
        "2027-01-01T00:00:00Z",
        "2028-02-29T07:15:00Z",
    ];
    let lines: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, t)| row(i as i64, t))
        .collect();
    let orders = batch_from_json(
        schema,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let partitioned =
        kata::add_partition_columns(&orders).ok_or_panic("add_partition_columns returned an error");

    assert_columns(
        "the orders with partition columns",
        &names_and_types(&partitioned_fields()),
        &partitioned.schema(),
    );
    let shown = partitioned
        .project(&[1, 10, 11, 12, 13, 14])
        .ok_or_panic("projection");
    assert_sorted_table(
        "the partition columns",
        &[
            "+--------------+-----------------------------+------+-------+-----+------+",
            "| kafka_offset | event_time                  | year | month | day | hour |",
            "+--------------+-----------------------------+------+-------+-----+------+",
            "| 0            | 2026-11-25T14:03:07.123Z    | 2026 | 11    | 25  | 14   |",
            "| 1            | 2026-11-25T14:59:59.999Z    | 2026 | 11    | 25  | 14   |",
            "| 2            | 2026-11-25T15:00:00Z        | 2026 | 11    | 25  | 15   |",
            "| 3            | 2026-12-31T23:59:59.999999Z | 2026 | 12    | 31  | 23   |",
            "| 4            | 2027-01-01T00:00:00Z        | 2027 | 1     | 1   | 0    |",
            "| 5            | 2028-02-29T07:15:00Z        | 2028 | 2     | 29  | 7    |",
            "+--------------+-----------------------------+------+-------+-----+------+",
        ],
        &[shown],
    );
    assert_same_rows(
        "the other columns, unchanged",
        &orders,
        &partitioned
            .project(&(0..orders.num_columns()).collect::<Vec<_>>())
            .ok_or_panic("projection"),
    );
}

#[test]
fn step_06_filter_invalid() {
    let schema = Arc::new(Schema::new(partitioned_fields()));
    let row = |offset: i64, order_id: &str, customer_id: &str, amount: f64| {
        format!(
            r#"{{"kafka_partition":2,"kafka_offset":{offset},"order_id":{order_id},"customer_id":{customer_id},"product_id":"PROD-0001","category":"books","quantity":1,"unit_price":9.5,"amount":{amount},"status":"completed","event_time":"2026-11-25T14:03:07Z","year":2026,"month":11,"day":25,"hour":14}}"#
        )
    };
    let lines = [
        row(1, r#""ORD-1""#, r#""CUST-1""#, 9.5),
        row(2, "null", r#""CUST-2""#, 9.5),
        row(3, r#""ORD-3""#, "null", 9.5),
        row(4, r#""ORD-4""#, r#""CUST-4""#, -9.5),
        row(5, "null", "null", -1.0),
        row(6, r#""ORD-6""#, "null", -1.0),
        row(7, r#""ORD-7""#, r#""CUST-7""#, 0.0),
    ];
    let orders = batch_from_json(
        schema,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let (valid, bad) =
        kata::filter_invalid(&orders).ok_or_panic("filter_invalid returned an error");

    assert_columns(
        "the valid orders",
        &names_and_types(&partitioned_fields()),
        &valid.schema(),
    );
    assert_sorted_table(
        "the valid orders",
        &[
            "+--------------+----------+-------------+--------+",
            "| kafka_offset | order_id | customer_id | amount |",
            "+--------------+----------+-------------+--------+",
            "| 1            | ORD-1    | CUST-1      | 9.5    |",
            "| 7            | ORD-7    | CUST-7      | 0.0    |",
            "+--------------+----------+-------------+--------+",
        ],
        &[valid.project(&[1, 2, 3, 8]).ok_or_panic("projection")],
    );
    assert_columns("the rejected orders", &rejected_columns(), &bad.schema());
    assert_same_rows(
        "the rejected orders, each with the first rule it breaks",
        &rejected(&[
            (2, 2, "null order_id"),
            (2, 3, "null customer_id"),
            (2, 4, "negative amount"),
            (2, 5, "null order_id"),
            (2, 6, "null customer_id"),
        ]),
        &bad,
    );
}

#[tokio::test]
async fn step_07_commit_batch() {
    let broker = broker().await.ok_or_panic("no Kafka broker for the test");
    let topic = unique_name("kp-step7");
    broker
        .create_topic(&topic, 2)
        .await
        .ok_or_panic("creating a topic");
    let group = unique_name("kp-step7-group");
    let consumer: BaseConsumer = broker
        .consumer_config(&group)
        .create()
        .ok_or_panic("creating a Kafka client");
    let lake = tempfile::tempdir().ok_or_panic("a temporary folder");
    let checkpoint = tempfile::tempdir().ok_or_panic("a temporary folder");

    let schema = Arc::new(Schema::new(partitioned_fields()));
    let row = |partition: i32, offset: i64, time: &str, hour_path: (i32, i32, i32, i32)| {
        let (year, month, day, hour) = hour_path;
        format!(
            r#"{{"kafka_partition":{partition},"kafka_offset":{offset},"order_id":"ORD-{partition}-{offset}","customer_id":"CUST-1","product_id":"PROD-0001","category":"books","quantity":2,"unit_price":9.5,"amount":19.0,"status":"completed","event_time":"{time}","year":{year},"month":{month},"day":{day},"hour":{hour}}}"#
        )
    };
    let first = [
        row(0, 0, "2026-11-25T14:03:07.123Z", (2026, 11, 25, 14)),
        row(0, 1, "2026-11-25T14:59:00Z", (2026, 11, 25, 14)),
        row(1, 0, "2026-11-25T15:00:00Z", (2026, 11, 25, 15)),
        row(0, 2, "2026-12-01T00:30:00Z", (2026, 12, 1, 0)),
    ];
    let batch = batch_from_json(
        schema.clone(),
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let offsets = |list: &[(i32, i64)]| {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in list {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
                .ok_or_panic("building the offsets");
        }
        tpl
    };

    let files = kata::commit_batch(
        &consumer,
        &batch,
        lake.path(),
        checkpoint.path(),
        0,
        &offsets(&[(0, 3), (1, 1)]),
    )
    .await
    .ok_or_panic("commit_batch returned an error");

    // The layout: hive directories, Parquet files only, all of them returned.
    let on_disk = files_under(lake.path());
    let dirs: BTreeSet<String> = on_disk
        .iter()
        .map(|f| {
            f.parent()
                .expect("a file in a folder")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        dirs,
        BTreeSet::from([
            "year=2026/month=11/day=25/hour=14".to_string(),
            "year=2026/month=11/day=25/hour=15".to_string(),
            "year=2026/month=12/day=1/hour=0".to_string(),
        ]),
        "the partition directories (files: {on_disk:?})"
    );
    for file in &on_disk {
        assert!(
            file.extension().is_some_and(|e| e == "parquet"),
            "only .parquet files in the lake (temporary files renamed), found {}",
            file.display()
        );
    }
    let returned: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(lake.path()).unwrap_or(f).to_path_buf())
        .collect();
    assert_eq!(
        returned,
        on_disk.iter().cloned().collect(),
        "the files returned"
    );

    // The files: Snappy, every column but the partition columns.
    let data_fields: Vec<Field> = timed_fields();
    for file in &on_disk {
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(lake.path().join(file)).ok_or_panic("a file of the test"),
        )
        .ok_or_panic("a file of the test");
        assert_columns(
            &format!("the columns of {}", file.display()),
            &names_and_types(&data_fields),
            reader.schema(),
        );
        for column in reader.metadata().row_group(0).columns() {
            assert_eq!(
                column.compression(),
                Compression::SNAPPY,
                "compression of {} in {}",
                column.column_path(),
                file.display()
            );
        }
    }

    // The content, partition columns read back from the paths.
    let names: Vec<String> = partitioned_fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let all_columns: Vec<&str> = names.iter().map(String::as_str).collect();
    let back = read_lake(lake.path(), &all_columns).await;
    assert_same_rows("the lake read back", &batch, &back);

    // The checkpoint, then Kafka.
    let read_checkpoint = || {
        let path = checkpoint.path().join("checkpoint.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str::<serde_json::Value>(&text).ok_or_panic("reading the checkpoint")
    };
    let saved = read_checkpoint();
    assert_eq!(saved["batch_id"], 0, "batch_id in {saved}");
    assert_eq!(saved["topic"], topic.as_str(), "topic in {saved}");
    assert_eq!(
        saved["offsets"],
        serde_json::json!({"0": 3, "1": 1}),
        "offsets in {saved}"
    );
    assert_eq!(
        broker
            .committed_offsets(&group, &topic)
            .await
            .ok_or_panic("reading the committed offsets"),
        BTreeMap::from([(0, 3), (1, 1)]),
        "the offsets committed to Kafka for group {group}"
    );

    // A second batch adds files next to the first batch's, never over them.
    let second = [
        row(0, 3, "2026-11-25T14:10:00Z", (2026, 11, 25, 14)),
        row(1, 1, "2026-11-25T15:10:00Z", (2026, 11, 25, 15)),
    ];
    let batch2 = batch_from_json(
        schema,
        &second.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    kata::commit_batch(
        &consumer,
        &batch2,
        lake.path(),
        checkpoint.path(),
        1,
        &offsets(&[(0, 4), (1, 2)]),
    )
    .await
    .ok_or_panic("commit_batch returned an error");
    let back = read_lake(lake.path(), &all_columns).await;
    let both =
        concat_batches(&batch.schema(), &[batch, batch2]).ok_or_panic("concatenating batches");
    assert_same_rows("the lake after two batches", &both, &back);
    let saved = read_checkpoint();
    assert_eq!(saved["batch_id"], 1, "batch_id in {saved}");
    assert_eq!(
        saved["offsets"],
        serde_json::json!({"0": 4, "1": 2}),
        "offsets in {saved}"
    );
    assert_eq!(
        broker
            .committed_offsets(&group, &topic)
            .await
            .ok_or_panic("reading the committed offsets"),
        BTreeMap::from([(0, 4), (1, 2)]),
        "the offsets committed to Kafka after the second batch"
    );
}

/// Your seven steps together: generated orders (some invalid, some malformed) from
/// Kafka into the lake, in micro-batches.
#[tokio::test]
async fn end_to_end() {
    let broker = broker().await.ok_or_panic("no Kafka broker for the test");
    let topic = unique_name("kp-e2e");
    broker
        .create_topic(&topic, 3)
        .await
        .ok_or_panic("creating a topic");
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T13:50:00Z")
        .ok_or_panic("a test time")
        .to_utc();
    let dirty = DirtyOptions {
        late_fraction: 0.02,
        invalid_fraction: 0.05,
        malformed_fraction: 0.03,
    };
    let records = EventGenerator::new(42, start, 2.0, dirty)
        .ok_or_panic("the event generator")
        .generate(3_000);
    broker
        .produce_events(&topic, &records)
        .await
        .ok_or_panic("producing");
    let expected_ids: BTreeSet<String> = records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Valid | RecordKind::Late))
        .map(|r| r.key.clone().expect("valid orders have a key"))
        .collect();
    let expected_rejected = records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Invalid | RecordKind::Malformed))
        .count();

    let group = unique_name("kp-e2e-group");
    let lake = tempfile::tempdir().ok_or_panic("a temporary folder");
    let checkpoint = tempfile::tempdir().ok_or_panic("a temporary folder");
    let consumer = kata::create_consumer(broker.bootstrap_servers(), &group)
        .ok_or_panic("create_consumer returned an error");
    assign_all(&consumer, &topic, 3, Offset::Stored);

    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut read, mut rejected) = (0, 0);
    let started = Instant::now();
    let mut batch_id = 0;
    while read < records.len() {
        assert!(
            started.elapsed() < DEADLINE,
            "read {read} of {} records within {DEADLINE:?}",
            records.len()
        );
        let raw = kata::read_micro_batch(&consumer, 1_000, Duration::from_millis(500))
            .ok_or_panic("read_micro_batch returned an error");
        if raw.num_rows() == 0 {
            continue;
        }
        read += raw.num_rows();
        let (parsed, malformed) =
            kata::parse_orders(&raw).ok_or_panic("parse_orders returned an error");
        let (timed, bad_time) =
            kata::to_event_time(&parsed).ok_or_panic("to_event_time returned an error");
        let partitioned = kata::add_partition_columns(&timed)
            .ok_or_panic("add_partition_columns returned an error");
        let (valid, invalid) =
            kata::filter_invalid(&partitioned).ok_or_panic("filter_invalid returned an error");
        rejected += malformed.num_rows() + bad_time.num_rows() + invalid.num_rows();
        let partitions = raw
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("kafka_partition is Int32");
        let offsets = raw
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("kafka_offset is Int64");
        for (p, o) in partitions.values().iter().zip(offsets.values()) {
            let e = next.entry(*p).or_default();
            *e = (*e).max(o + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &next {
            tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
                .ok_or_panic("building the offsets");
        }
        kata::commit_batch(
            &consumer,
            &valid,
            lake.path(),
            checkpoint.path(),
            batch_id,
            &tpl,
        )
        .await
        .ok_or_panic("commit_batch returned an error");
        batch_id += 1;
    }
    assert_eq!(read, records.len(), "records read");
    assert_eq!(
        rejected, expected_rejected,
        "records rejected (invalid + malformed)"
    );

    let back = read_lake(
        lake.path(),
        &["kafka_partition", "kafka_offset", "order_id"],
    )
    .await;
    // DataFusion reads strings as Utf8View.
    let ids = cast(back.column(2), &DataType::Utf8).ok_or_panic("casting");
    let ids: Vec<String> = ids
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .expect("order_id read back as text")
        .iter()
        .map(|i| i.expect("no null order_id in the lake").to_string())
        .collect();
    assert_eq!(ids.len(), expected_ids.len(), "rows in the lake");
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<_>>(),
        expected_ids,
        "the order ids in the lake"
    );
    assert_eq!(
        broker
            .committed_offsets(&group, &topic)
            .await
            .ok_or_panic("reading the committed offsets"),
        next,
        "the offsets committed at the end"
    );
}
