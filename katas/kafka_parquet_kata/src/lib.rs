//! # Kafka → Parquet data lake, in seven steps
//!
//! Orders arrive on a Kafka topic as JSON (the 9-field event of `fixtures::events`, e.g.
//! `{"order_id":"ORD-00000042","customer_id":"CUST-01234","product_id":"PROD-0137",
//! "category":"books","quantity":2,"unit_price":19.99,"amount":39.98,
//! "status":"completed","timestamp":"2026-11-25T14:03:07.123Z"}`). You read them in
//! micro-batches, parse and clean them, and write them to a data lake of Parquet files
//! partitioned by hour, recording how far you got so that a restart neither loses nor
//! repeats an event.
//!
//! Write the seven steps below. Each has its own test, so do them in any order:
//!
//! ```text
//! cargo test -p kafka_parquet_kata             # every step, as a checklist
//! cargo test -p kafka_parquet_kata step_03     # one step
//! cargo practice parquet                       # guided mode: hints, timer
//! git checkout -- katas/kafka_parquet_kata     # start over
//! ```
//!
//! Steps 1, 2 and 7 talk to a broker: the tests find one (`KAFKA_BOOTSTRAP_SERVERS`, else
//! Docker, else an in-process mock cluster). Steps 3–6 are pure functions on Arrow
//! `RecordBatch`es.
//!
//! Column names used throughout: `kafka_partition` (Int32) and `kafka_offset` (Int64) say
//! where a row came from; a *rejected* batch always has the schema
//! `kafka_partition: Int32, kafka_offset: Int64, reason: Utf8` (all non-null).
//! The 9-field payload schema is `fixtures::events::order_event_schema()`.

// The bodies start as `todo!()`, so the arguments are unused until you write them.
#![allow(unused_variables)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::BaseConsumer;

pub mod graded;

/// Step 1: create the Kafka consumer.
///
/// A consumer of `bootstrap_servers` in consumer group `group_id`, with **automatic
/// offset commits turned off** (offsets are committed by step 7, after the data is safe)
/// and reading from the **earliest** offset of any partition the group has no committed
/// offset for. Do not subscribe: the caller assigns partitions.
///
/// Spark: `spark.readStream.format("kafka").option("kafka.bootstrap.servers", b).option("startingOffsets", "earliest")`.
pub fn create_consumer(bootstrap_servers: &str, group_id: &str) -> anyhow::Result<BaseConsumer> {
    todo!("step 1: create_consumer")
}

/// Step 2: read one micro-batch.
///
/// Polls `consumer` (already assigned or subscribed) until `max_records` messages are
/// collected or `max_wait` has passed since the call, whichever comes first, and returns
/// them in the order received as one batch with the schema
/// `kafka_partition: Int32, kafka_offset: Int64, key: Binary (nullable), value: Binary (nullable)`.
/// No message means an empty batch, not an error; a Kafka error is an error.
///
/// Spark: `.load()` gives `key, value, topic, partition, offset, …` per micro-batch (`maxOffsetsPerTrigger`).
pub fn read_micro_batch(
    consumer: &BaseConsumer,
    max_records: usize,
    max_wait: Duration,
) -> anyhow::Result<RecordBatch> {
    todo!("step 2: read_micro_batch")
}

/// Step 3: parse the JSON payloads.
///
/// Input: a batch shaped like step 2's output. Returns `(orders, malformed)`:
/// - `orders`: one row per payload that reads with the 9-field schema, with the schema
///   `kafka_partition, kafka_offset` followed by the fields of `order_event_schema()`
///   (same names, types and nullability); JSON `null` in a nullable field is a null.
/// - `malformed`: one rejected row (see the crate docs) per payload that is not JSON,
///   lacks a required field or has a field of the wrong type, or is null, with a
///   non-empty `reason` saying what is wrong.
///
/// Spark: `.select(col("partition"), col("offset"), from_json(col("value").cast("string"), schema).alias("o")).select("partition", "offset", "o.*")`.
pub fn parse_orders(raw: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    todo!("step 3: parse_orders")
}

/// Step 4: turn the `timestamp` text into a timestamp.
///
/// Input: step 3's `orders`. Returns `(orders, rejected)`: `orders` has the same
/// columns in the same order without `timestamp`, plus `event_time:
/// Timestamp(Microsecond, "UTC")` (non-null) appended last, read from `timestamp` as
/// RFC 3339 (`2026-11-25T14:03:07.123Z`, or with an offset such as `+02:00`, converted to
/// UTC). A row whose `timestamp` does not parse goes to `rejected` instead, with the
/// reason `unparsable timestamp: "<the text>"`.
///
/// Spark: `.withColumn("event_time", to_timestamp(col("timestamp"))).drop("timestamp")`.
pub fn to_event_time(orders: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    todo!("step 4: to_event_time")
}

/// Step 5: add the partition columns.
///
/// Input: step 4's `orders`. Returns it with four non-null Int32 columns appended, in
/// this order: `year`, `month` (1–12), `day` (1–31), `hour` (0–23) of `event_time` in UTC.
///
/// Spark: `.withColumn("year", year("event_time")).withColumn("month", month(…)).withColumn("day", dayofmonth(…)).withColumn("hour", hour(…))`.
pub fn add_partition_columns(orders: &RecordBatch) -> anyhow::Result<RecordBatch> {
    todo!("step 5: add_partition_columns")
}

/// Step 6: set invalid orders apart.
///
/// Input: step 5's `orders`. Returns `(valid, rejected)`: `valid` keeps the schema and
/// the rows that have an `order_id`, a `customer_id` and an `amount` that is not
/// negative; every other row goes to `rejected` with the reason of the first rule it
/// breaks, checked in this order: `null order_id`, `null customer_id`, `negative amount`.
/// (The pipeline sends rejected records to the dead-letter topic `orders_dlq`.)
///
/// Spark: `valid = df.filter(col("order_id").isNotNull() & col("customer_id").isNotNull() & (col("amount") >= 0))`.
pub fn filter_invalid(orders: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    todo!("step 6: filter_invalid")
}

/// Step 7: write the batch to the lake, checkpoint, commit.
///
/// `orders` is step 6's `valid` batch. In this order:
/// 1. Write it as Snappy Parquet under `lake_dir`, hive-partitioned like Spark:
///    `lake_dir/year=2026/month=11/day=25/hour=14/<file>.parquet`. The four partition
///    columns are in the directory names, not in the files; every other column is.
///    File names end in `.parquet` and never collide with the files of earlier batches.
/// 2. Record the checkpoint durably (written to a temporary file, synced, renamed) as
///    `checkpoint_dir/checkpoint.json`:
///    `{"batch_id": 3, "topic": "orders", "offsets": {"0": 120, "1": 118}}`, where
///    `offsets` maps each partition of `next_offsets` to its offset (the next to read).
/// 3. Commit `next_offsets` to Kafka for the consumer's group, synchronously.
///
/// Returns the paths of the Parquet files written.
///
/// Spark: `.writeStream.format("parquet").partitionBy("year", "month", "day", "hour").option("checkpointLocation", c).start(lake)`.
pub async fn commit_batch(
    consumer: &BaseConsumer,
    orders: &RecordBatch,
    lake_dir: &Path,
    checkpoint_dir: &Path,
    batch_id: u64,
    next_offsets: &TopicPartitionList,
) -> anyhow::Result<Vec<PathBuf>> {
    todo!("step 7: commit_batch")
}
