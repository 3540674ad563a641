//! # Kafka streaming kata: `orders` -> 5-minute totals per category -> `order_aggregates`
//!
//! The streaming classic: read order events from Kafka, parse them with an explicit
//! schema, drop what is too late behind a watermark, total them per 5-minute window
//! and category, and write the totals back to Kafka.
//! Target: 20 minutes from memory (expert: 15).
//!
//! Write the seven steps below. Each has its own test, so do them in any order:
//!
//! ```text
//! cargo test -p kafka_stream_kata            # every step, as a checklist
//! cargo test -p kafka_stream_kata step_03    # one step
//! cargo practice kafka                       # guided mode: hints, timer, re-run on save
//! git checkout -- katas/kafka_stream_kata    # start over
//! ```
//!
//! Steps 3 to 6 are pure functions. The tests of steps 1, 2 and 7 (and `end_to_end`)
//! need a broker: `KAFKA_BOOTSTRAP_SERVERS` if set, else Docker, else librdkafka's
//! built-in mock cluster (nothing to install).
//!
//! The query, in Spark:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", "orders").load()        # 1, 2
//!    .select(from_json(col("value").cast("string"), schema).alias("o"))        # 3
//!    .select("o.*").withWatermark("timestamp", "10 minutes")                    # 4
//!    .groupBy(window("timestamp", "5 minutes"), "category")                     # 5
//!    .agg(count("*").alias("order_count"),
//!         round(sum("amount"), 2).alias("total_amount"),
//!         round(avg("amount"), 2).alias("avg_amount"))
//!    .select(to_json(struct("*")).alias("value"))                               # 6
//!    .writeStream.format("kafka").option("topic", "order_aggregates").start())  # 7
//! ```
//!
//! The payload of an order is one JSON object with the nine fields of
//! `fixtures::events::order_event_schema()`, e.g.
//! `{"order_id":"ORD-00000042","customer_id":"CUST-01234","product_id":"PROD-0137",
//! "category":"books","quantity":2,"unit_price":19.99,"amount":39.98,
//! "status":"completed","timestamp":"2026-11-25T14:03:07.123Z"}`.
//!
//! Times are `i64` milliseconds since the Unix epoch (UTC), the values of an Arrow
//! `Timestamp(Millisecond, "UTC")` column.

// The bodies start as `todo!()`, so the arguments are unused until you write them.
#![allow(unused_variables)]

pub mod graded;

use std::time::Duration;

use anyhow::Result;
use datafusion::arrow::array::RecordBatch;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::TopicPartitionList;

/// `WINDOW_MS` (5 minutes) and `WATERMARK_DELAY_MS` (10 minutes), in milliseconds, and
/// the types of steps 3 and 5 ([`Malformed`], [`WindowTotals`], [`WindowState`]): one
/// copy, shared with the tests and the reference.
pub use fixtures::events::{Malformed, WATERMARK_DELAY_MS, WINDOW_MS, WindowState, WindowTotals};

/// Step 1: create the Kafka clients.
///
/// Returns a consumer and a producer connected to `bootstrap_servers`:
/// - the consumer belongs to group `group_id`, starts from the earliest offset when the
///   group has no committed offset, and never commits offsets by itself (step 7 does);
/// - the producer is idempotent (its retries never duplicate or reorder a message).
///
/// Spark: `SparkSession.builder.config("spark.jars.packages", "...spark-sql-kafka...")`
/// plus the `kafka.bootstrap.servers` and `startingOffsets` options.
pub fn create_clients(
    bootstrap_servers: &str,
    group_id: &str,
) -> Result<(StreamConsumer, FutureProducer)> {
    todo!("step 1: create_clients")
}

/// Step 2: read one micro-batch from `topic`.
///
/// Subscribes `consumer` to `topic` if it is not subscribed to it yet, then returns
/// the next messages in the order received: as soon as `max_records` are there, or
/// fewer (possibly none) once `max_wait` has passed since the call. A consumer error
/// is returned as an error naming the topic.
///
/// Spark: `spark.readStream.format("kafka").option("subscribe", "orders").load()`,
/// with `maxOffsetsPerTrigger` and a processing-time trigger.
pub async fn read_micro_batch(
    consumer: &StreamConsumer,
    topic: &str,
    max_records: usize,
    max_wait: Duration,
) -> Result<Vec<OwnedMessage>> {
    todo!("step 2: read_micro_batch")
}

/// Step 3: parse the JSON payloads with the explicit schema.
///
/// Reads each payload as one JSON object with the nine fields of
/// `fixtures::events::order_event_schema()`, and returns:
/// - a `RecordBatch` of the readable orders, in input order, with that schema's nine
///   columns (names, order, types and nullability) except `timestamp`, which is a
///   `Timestamp(Millisecond, "UTC")` parsed from the ISO-8601 string;
/// - every other payload as a [`Malformed`], sorted by index, with a reason: not JSON,
///   not a JSON object, or a required field missing, null or of the wrong type (the
///   reason then names the field), or a timestamp that is not an ISO-8601 date-time
///   (the reason names `timestamp`). Unknown extra fields are ignored.
///
/// Nothing is dropped silently: every index is either a row or a `Malformed`.
///
/// Spark: `from_json(col("value").cast("string"), schema)` with
/// `to_timestamp(col("timestamp"))`, and the bad rows routed to a dead-letter topic.
pub fn parse_orders(payloads: &[&[u8]]) -> Result<(RecordBatch, Vec<Malformed>)> {
    todo!("step 3: parse_orders")
}

/// Step 4: the watermark, 10 minutes behind the latest event time.
///
/// Goes through `orders` (step 3's schema) in row order. `max_event_time` is the
/// latest event time seen so far (`None` before the first order) and is updated with
/// each row's `timestamp` as it is read. A row whose `timestamp` is older than the
/// watermark at that moment (`max_event_time - 10 minutes`) is late.
///
/// Returns the rows that are not late (same schema, same order) and how many were late.
///
/// Spark: `.withWatermark("timestamp", "10 minutes")`.
pub fn apply_watermark(
    orders: &RecordBatch,
    max_event_time: &mut Option<i64>,
) -> Result<(RecordBatch, usize)> {
    todo!("step 4: apply_watermark")
}

/// Step 5: 5-minute tumbling windows per category, kept across micro-batches.
///
/// Adds each row of `on_time` (step 3's schema) to the totals in `state` of its window
/// and category. Windows are `[start, start + 5 min)`, aligned to the epoch (every
/// start is a multiple of 5 minutes). Then removes from `state` every window whose end
/// is at or before `watermark` and returns them, one row each, sorted by
/// `window_start` then `category`, with the columns:
///
/// | column | type |
/// |---|---|
/// | `window_start`, `window_end` | `Timestamp(Millisecond, "UTC")`, not null |
/// | `category` | `Utf8`, not null |
/// | `order_count` | `Int64`, not null |
/// | `total_amount`, `avg_amount` | `Float64`, not null: sum and mean of `amount`, rounded to cents (2 decimals) |
///
/// `watermark = i64::MAX` (input exhausted) closes every window.
///
/// Spark: `.groupBy(window("timestamp", "5 minutes"), "category").agg(count("*"),
/// round(sum("amount"), 2), round(avg("amount"), 2))` in append output mode.
pub fn tumbling_window_totals(
    state: &mut WindowState,
    on_time: &RecordBatch,
    watermark: i64,
) -> Result<RecordBatch> {
    todo!("step 5: tumbling_window_totals")
}

/// Step 6: one Kafka message per window.
///
/// For each row of `windows` (step 5's columns), in order: the key
/// `"<window_start>|<category>"` and the value, the row as a JSON object with the six
/// columns as fields, in order. Timestamps are written ISO-8601 UTC with milliseconds
/// (`2026-11-25T14:05:00.000Z`), numbers as JSON numbers. For example:
///
/// `2026-11-25T14:00:00.000Z|books` ->
/// `{"window_start":"2026-11-25T14:00:00.000Z","window_end":"2026-11-25T14:05:00.000Z","category":"books","order_count":2,"total_amount":30.5,"avg_amount":15.25}`
///
/// Spark: `.select(concat_ws("|", ...).alias("key"), to_json(struct("*")).alias("value"))`.
pub fn format_aggregates(windows: &RecordBatch) -> Result<Vec<(String, String)>> {
    todo!("step 6: format_aggregates")
}

/// Step 7: write the results, then commit.
///
/// Sends every `(key, value)` of `messages` to `topic` with `producer`, waits until
/// every one is delivered (keep them in flight together), and only then commits
/// `offsets` for `consumer`'s group, synchronously (an empty `offsets` commits
/// nothing: no error). If a message cannot be queued or delivered, returns the error
/// and commits nothing.
///
/// Spark: `.writeStream.format("kafka").option("topic", "order_aggregates")` with a
/// `checkpointLocation`.
pub async fn write_and_commit(
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    topic: &str,
    messages: &[(String, String)],
    offsets: &TopicPartitionList,
) -> Result<()> {
    todo!("step 7: write_and_commit")
}
