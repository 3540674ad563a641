//! Kafka -> Kafka streaming: order events in, 5-minute totals per category out.
//!
//! The reference for `katas/kafka_stream_kata` (same signatures, step by step), then
//! the runnable pipeline ([`run`]) that loops over them in micro-batches:
//!
//! ```text
//! orders --(2) read a micro-batch--(3) parse JSON--(4) watermark--(5) windows--(6) to JSON--(7) write, commit--> order_aggregates
//!                                      `-- malformed payloads, with the reason ------------------------------> orders_dlq
//! ```
//!
//! The Spark query it mirrors:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", "orders").load()
//!    .select(from_json(col("value").cast("string"), schema).alias("o")).select("o.*")
//!    .withWatermark("timestamp", "10 minutes")
//!    .groupBy(window("timestamp", "5 minutes"), "category")
//!    .agg(count("*").alias("order_count"), sum("amount").alias("total_amount"), avg("amount").alias("avg_amount"))
//!    .select(to_json(struct("*")).alias("value"))
//!    .writeStream.format("kafka").option("topic", "order_aggregates").outputMode("append").start())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::{and, concat_batches, filter_record_batch, is_not_null};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::json::{LineDelimitedWriter, ReaderBuilder, WriterBuilder};
use fixtures::events::order_event_schema;
use futures::future::{maybe_done, try_join_all};
use futures::poll;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

/// Length of a tumbling window: 5 minutes, in milliseconds.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;
/// How far the watermark trails the latest event time: 10 minutes, in milliseconds.
pub const WATERMARK_DELAY_MS: i64 = 10 * 60 * 1000;

/// How every timestamp of the output is written: ISO-8601 UTC with milliseconds,
/// like the events' own `timestamp` (and Spark's `to_json`).
const ISO_MILLIS: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

// ---------------------------------------------------------------------------------
// Step 1: the clients
// ---------------------------------------------------------------------------------

/// Step 1: a consumer (group `group_id`, from the earliest offset, no auto-commit)
/// and an idempotent producer, both on `bootstrap_servers`.
pub fn create_clients(
    bootstrap_servers: &str,
    group_id: &str,
) -> Result<(StreamConsumer, FutureProducer)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("auto.offset.reset", "earliest")
        // Offsets are committed by step 7, after the results are delivered.
        .set("enable.auto.commit", "false")
        // A stopped or crashed pipeline's partitions go to its successor within 6 s
        // (the broker's minimum) rather than the default 45 s.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .create()
        .with_context(|| {
            format!("creating a consumer of group {group_id} on {bootstrap_servers}")
        })?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        // No duplicates or reordering from the producer's own retries.
        .set("enable.idempotence", "true")
        .create()
        .with_context(|| format!("creating a producer on {bootstrap_servers}"))?;
    Ok((consumer, producer))
}

// ---------------------------------------------------------------------------------
// Step 2: one micro-batch
// ---------------------------------------------------------------------------------

/// Step 2: subscribes to `topic` (once), then returns the next messages: up to
/// `max_records`, or fewer when `max_wait` has passed since the call.
pub async fn read_micro_batch(
    consumer: &StreamConsumer,
    topic: &str,
    max_records: usize,
    max_wait: Duration,
) -> Result<Vec<OwnedMessage>> {
    let subscribed = consumer
        .subscription()
        .context("reading the subscription")?;
    if !subscribed.elements().iter().any(|e| e.topic() == topic) {
        consumer
            .subscribe(&[topic])
            .with_context(|| format!("subscribing to topic {topic}"))?;
    }

    let deadline = tokio::time::sleep(max_wait);
    tokio::pin!(deadline);
    let mut batch = Vec::with_capacity(max_records.min(100_000));
    while batch.len() < max_records {
        tokio::select! {
            biased;
            message = consumer.recv() => {
                let message = message.with_context(|| format!("reading from topic {topic}"))?;
                batch.push(message.detach());
            }
            () = &mut deadline => break,
        }
    }
    Ok(batch)
}

// ---------------------------------------------------------------------------------
// Step 3: JSON -> Arrow, with the explicit schema
// ---------------------------------------------------------------------------------

/// A payload that step 3 could not read with the schema: its index in the input and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub index: usize,
    pub reason: String,
}

/// The schema of the parsed orders: the shared event schema, with `timestamp` as a
/// `Timestamp(Millisecond, "UTC")`.
pub fn parsed_order_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = order_event_schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "timestamp" => f.as_ref().clone().with_data_type(utc_millis()),
                _ => f.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Step 3: reads each payload as one JSON object with [`parsed_order_schema`].
///
/// Returns the readable orders, in input order, and the others (not JSON, not an
/// object, a required field missing, null or of the wrong type, an unreadable
/// timestamp) with the reason, sorted by index.
pub fn parse_orders(payloads: &[&[u8]]) -> Result<(RecordBatch, Vec<Malformed>)> {
    let mut malformed = Vec::new();
    // Payload index of each decoded row.
    let mut rows = Vec::with_capacity(payloads.len());
    let decoded = match decode_together(payloads, &mut rows, &mut malformed)? {
        Some(batch) => batch,
        // A payload that is not exactly one JSON value upsets the shared decoder:
        // start again, one payload at a time (rare: slow but exact).
        None => {
            rows.clear();
            malformed.clear();
            decode_one_by_one(payloads, &mut rows, &mut malformed)?
        }
    };

    // The lenient decoder turned missing, null and mistyped fields into nulls: a null
    // in a required field marks the row as malformed.
    let strict = parsed_order_schema();
    let mut valid: Option<BooleanArray> = None;
    for (field, column) in strict.fields().iter().zip(decoded.columns()) {
        if !field.is_nullable() && column.null_count() > 0 {
            let present = is_not_null(column)?;
            valid = Some(match valid {
                Some(v) => and(&v, &present)?,
                None => present,
            });
        }
    }
    let orders = match valid {
        None => decoded,
        Some(valid) => {
            for (row, ok) in valid.iter().enumerate() {
                if ok != Some(true) {
                    let index = rows[row];
                    let reason = field_errors(payloads[index], &decoded, row);
                    malformed.push(Malformed { index, reason });
                }
            }
            filter_record_batch(&decoded, &valid)?
        }
    };
    malformed.sort_by_key(|m| m.index);
    // Same columns, now without nulls where the schema forbids them.
    let orders = RecordBatch::try_new(strict, orders.columns().to_vec())
        .context("building the parsed orders")?;
    Ok((orders, malformed))
}

/// The schema the decoder uses: every field nullable, so that one bad field nulls
/// one row instead of failing the whole micro-batch.
fn lenient_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = parsed_order_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

fn lenient_decoder(batch_size: usize) -> Result<datafusion::arrow::json::reader::Decoder> {
    Ok(ReaderBuilder::new(lenient_schema())
        .with_batch_size(batch_size.max(1))
        .with_ignore_type_conflicts(true)
        .build_decoder()?)
}

/// Decodes every payload that looks like an object with one decoder. Returns `None`
/// when a payload is not exactly one complete JSON value.
fn decode_together(
    payloads: &[&[u8]],
    rows: &mut Vec<usize>,
    malformed: &mut Vec<Malformed>,
) -> Result<Option<RecordBatch>> {
    let mut decoder = lenient_decoder(payloads.len())?;
    for (index, payload) in payloads.iter().enumerate() {
        if !looks_like_object(payload) {
            malformed.push(Malformed {
                index,
                reason: not_an_object(payload),
            });
            continue;
        }
        match decoder.decode(payload) {
            Ok(read)
                if read == payload.len()
                    && !decoder.has_partial_record()
                    && decoder.len() == rows.len() + 1 =>
            {
                rows.push(index)
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(flush(decoder)?))
}

/// Decodes each payload with its own decoder, so one bad payload cannot spoil another.
fn decode_one_by_one(
    payloads: &[&[u8]],
    rows: &mut Vec<usize>,
    malformed: &mut Vec<Malformed>,
) -> Result<RecordBatch> {
    let mut batches = Vec::new();
    for (index, payload) in payloads.iter().enumerate() {
        if !looks_like_object(payload) {
            malformed.push(Malformed {
                index,
                reason: not_an_object(payload),
            });
            continue;
        }
        let mut decoder = lenient_decoder(1)?;
        let decoded = decoder.decode(payload).and_then(|read| {
            if read != payload.len() || decoder.len() != 1 {
                Err(datafusion::arrow::error::ArrowError::JsonError(
                    "more than one JSON value".into(),
                ))
            } else {
                decoder.flush()
            }
        });
        match decoded {
            Ok(Some(batch)) => {
                rows.push(index);
                batches.push(batch);
            }
            Ok(None) => malformed.push(Malformed {
                index,
                reason: "empty payload".into(),
            }),
            Err(e) => malformed.push(Malformed {
                index,
                reason: format!("not valid JSON: {e}"),
            }),
        }
    }
    Ok(concat_batches(&lenient_schema(), &batches)?)
}

fn flush(mut decoder: datafusion::arrow::json::reader::Decoder) -> Result<RecordBatch> {
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(lenient_schema())))
}

fn looks_like_object(payload: &[u8]) -> bool {
    let trimmed = payload.trim_ascii();
    trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}')
}

fn not_an_object(payload: &[u8]) -> String {
    if payload.trim_ascii().is_empty() {
        return "empty payload".into();
    }
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Err(e) => format!("not valid JSON: {e}"),
        Ok(value) => format!("a JSON {}, not an object", json_kind(&value)),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Why row `row` (decoded from `payload`) has nulls in required fields: each field
/// missing, null, or holding a value of another type.
fn field_errors(payload: &[u8], decoded: &RecordBatch, row: usize) -> String {
    let object = match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(object)) => object,
        Ok(other) => return format!("a JSON {}, not an object", json_kind(&other)),
        Err(e) => return format!("not valid JSON: {e}"),
    };
    let strict = parsed_order_schema();
    let errors: Vec<String> = strict
        .fields()
        .iter()
        .zip(decoded.columns())
        .filter(|(field, column)| !field.is_nullable() && column.is_null(row))
        .map(|(field, _)| {
            let name = field.name();
            match object.get(name) {
                None => format!("missing field `{name}`"),
                Some(serde_json::Value::Null) => format!("field `{name}` is null"),
                Some(value) => {
                    let mut shown = value.to_string();
                    if shown.len() > 40 {
                        shown.truncate(shown.floor_char_boundary(40));
                        shown.push('…');
                    }
                    format!(
                        "field `{name}`: expected {}, found {shown}",
                        field.data_type()
                    )
                }
            }
        })
        .collect();
    errors.join("; ")
}

// ---------------------------------------------------------------------------------
// Step 4: the watermark
// ---------------------------------------------------------------------------------

/// Step 4: drops the late orders. Record by record, in order, `max_event_time`
/// (milliseconds since the epoch, `None` before the first event) takes the record's
/// time into account; a record whose time is older than `max_event_time - 10 min` is
/// late. Returns the on-time orders (same schema, same order) and the late count.
pub fn apply_watermark(
    orders: &RecordBatch,
    max_event_time: &mut Option<i64>,
) -> Result<(RecordBatch, usize)> {
    let times = event_times(orders)?;
    let mut late = 0;
    let on_time: BooleanArray = times
        .values()
        .iter()
        .map(|&t| {
            let max = max_event_time.map_or(t, |m| m.max(t));
            *max_event_time = Some(max);
            let on_time = t >= max - WATERMARK_DELAY_MS;
            late += usize::from(!on_time);
            Some(on_time)
        })
        .collect();
    Ok((filter_record_batch(orders, &on_time)?, late))
}

fn event_times(orders: &RecordBatch) -> Result<&TimestampMillisecondArray> {
    let column = orders
        .column_by_name("timestamp")
        .context("the orders have no `timestamp` column")?;
    let times = column
        .as_primitive_opt::<TimestampMillisecondType>()
        .with_context(|| {
            format!(
                "`timestamp` is {}, expected Timestamp(Millisecond)",
                column.data_type()
            )
        })?;
    ensure!(times.null_count() == 0, "`timestamp` has nulls");
    Ok(times)
}

// ---------------------------------------------------------------------------------
// Step 5: tumbling windows with state
// ---------------------------------------------------------------------------------

/// The running totals of one open window for one category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowTotals {
    pub order_count: i64,
    pub total_amount: f64,
}

/// The state kept between micro-batches: the open windows, keyed by (window start in
/// milliseconds since the epoch, category).
pub type WindowState = BTreeMap<(i64, String), WindowTotals>;

/// The schema of the window aggregates (step 5's output, step 6's input).
pub fn window_aggregates_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("window_start", utc_millis(), false),
            Field::new("window_end", utc_millis(), false),
            Field::new("category", DataType::Utf8, false),
            Field::new("order_count", DataType::Int64, false),
            Field::new("total_amount", DataType::Float64, false),
            Field::new("avg_amount", DataType::Float64, false),
        ]))
    });
    SCHEMA.clone()
}

/// Step 5: adds the on-time orders to the 5-minute windows of their category
/// (windows aligned to the epoch), then removes and returns every window whose end
/// is at or before `watermark`, sorted by window start and category. `i64::MAX`
/// closes them all.
pub fn tumbling_window_totals(
    state: &mut WindowState,
    on_time: &RecordBatch,
    watermark: i64,
) -> Result<RecordBatch> {
    let times = event_times(on_time)?;
    let categories = string_column(on_time, "category")?;
    let amounts = on_time
        .column_by_name("amount")
        .context("the orders have no `amount` column")?
        .as_primitive_opt::<datafusion::arrow::datatypes::Float64Type>()
        .context("`amount` is not Float64")?;

    // Group the micro-batch first (borrowed keys, no allocation per row), then merge.
    let mut batch_totals: HashMap<(i64, &str), WindowTotals> = HashMap::new();
    for row in 0..on_time.num_rows() {
        let t = times.value(row);
        let start = t - t.rem_euclid(WINDOW_MS);
        let totals = batch_totals
            .entry((start, categories.value(row)))
            .or_default();
        totals.order_count += 1;
        totals.total_amount += amounts.value(row);
    }
    for ((start, category), totals) in batch_totals {
        let open = state.entry((start, category.to_owned())).or_default();
        open.order_count += totals.order_count;
        open.total_amount += totals.total_amount;
    }

    // Windows [start, start + 5 min) with start + 5 min <= watermark are closed.
    let first_open = watermark.saturating_sub(WINDOW_MS).saturating_add(1);
    let still_open = state.split_off(&(first_open, String::new()));
    let closed = std::mem::replace(state, still_open);
    windows_to_batch(closed)
}

fn windows_to_batch(windows: WindowState) -> Result<RecordBatch> {
    let n = windows.len();
    let (mut starts, mut ends, mut categories) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut counts, mut totals, mut averages) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((start, category), t) in windows {
        starts.push(start);
        ends.push(start + WINDOW_MS);
        categories.push(category);
        counts.push(t.order_count);
        totals.push(t.total_amount);
        averages.push(t.total_amount / t.order_count as f64);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(starts).with_timezone("UTC")),
        Arc::new(TimestampMillisecondArray::from(ends).with_timezone("UTC")),
        Arc::new(StringArray::from(categories)),
        Arc::new(Int64Array::from(counts)),
        Arc::new(Float64Array::from(totals)),
        Arc::new(Float64Array::from(averages)),
    ];
    Ok(RecordBatch::try_new(window_aggregates_schema(), columns)?)
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .with_context(|| format!("no `{name}` column"))?
        .as_string_opt::<i32>()
        .with_context(|| format!("`{name}` is not Utf8"))
}

// ---------------------------------------------------------------------------------
// Step 6: to_json(struct(*))
// ---------------------------------------------------------------------------------

/// Step 6: one Kafka message per window: key `window_start|category`, value the row
/// as a JSON object, timestamps as ISO-8601 UTC with milliseconds.
pub fn format_aggregates(windows: &RecordBatch) -> Result<Vec<(String, String)>> {
    let mut lines = Vec::new();
    let mut writer: LineDelimitedWriter<_> = WriterBuilder::new()
        .with_timestamp_tz_format(ISO_MILLIS.to_string())
        .build(&mut lines);
    writer.write(windows)?;
    writer.finish()?;
    drop(writer);
    let lines = String::from_utf8(lines).context("the JSON writer wrote invalid UTF-8")?;

    let starts = windows
        .column_by_name("window_start")
        .context("no `window_start` column")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .context("`window_start` is not Timestamp(Millisecond)")?;
    let categories = string_column(windows, "category")?;
    let messages: Vec<(String, String)> = lines
        .lines()
        .enumerate()
        .map(|(row, json)| {
            let start = DateTime::<Utc>::from_timestamp_millis(starts.value(row))
                .with_context(|| format!("window_start {} out of range", starts.value(row)))?;
            let key = format!("{}|{}", start.format(ISO_MILLIS), categories.value(row));
            Ok((key, json.to_string()))
        })
        .collect::<Result<_>>()?;
    ensure!(
        messages.len() == windows.num_rows(),
        "{} JSON lines for {} windows",
        messages.len(),
        windows.num_rows()
    );
    Ok(messages)
}

// ---------------------------------------------------------------------------------
// Step 7: write, then commit
// ---------------------------------------------------------------------------------

/// Step 7: sends every `(key, value)` to `topic`, waits until all are delivered, and
/// only then commits `offsets` for the consumer's group (synchronously).
pub async fn write_and_commit(
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    topic: &str,
    messages: &[(String, String)],
    offsets: &TopicPartitionList,
) -> Result<()> {
    let records = messages
        .iter()
        .map(|(key, value)| FutureRecord::to(topic).key(key).payload(value));
    send_all(producer, records)
        .await
        .with_context(|| format!("writing {} messages to topic {topic}", messages.len()))?;
    consumer
        .commit(offsets, CommitMode::Sync)
        .context("committing the consumed offsets")?;
    Ok(())
}

/// Sends the records and waits for every delivery; the sends stay in flight together
/// (awaiting each in turn would cost `linger.ms` per message). Returns how many.
pub async fn send_all<'a, K, P, I>(producer: &FutureProducer, records: I) -> Result<usize>
where
    K: ToBytes + ?Sized + 'a,
    P: ToBytes + ?Sized + 'a,
    I: IntoIterator<Item = FutureRecord<'a, K, P>>,
{
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut delivered = 0;
    for mut record in records {
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                // The local queue is full: wait for what is in flight, then retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    delivered += await_deliveries(std::mem::take(&mut pending)).await?;
                }
                Err((e, _)) => return Err(e).context("queueing a message"),
            }
        }
    }
    Ok(delivered + await_deliveries(pending).await?)
}

async fn await_deliveries(pending: Vec<DeliveryFuture>) -> Result<usize> {
    let n = pending.len();
    for outcome in try_join_all(pending)
        .await
        .context("the producer was dropped before delivery")?
    {
        if let Err((e, message)) = outcome {
            bail!("delivery to {} failed: {e}", message.topic());
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------------

/// What [`run`] needs to know.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub bootstrap_servers: String,
    pub input: String,
    pub output: String,
    pub dlq: String,
    pub group: String,
    /// Stop once no record has arrived for this long, emitting the open windows.
    pub idle_timeout: Option<Duration>,
    /// Stop (keeping the open windows for the next run) once this many records are read.
    pub max_records: Option<u64>,
    /// Most records in one micro-batch.
    pub batch_size: usize,
    /// Longest wait for one micro-batch to fill.
    pub batch_wait: Duration,
}

impl PipelineConfig {
    /// A configuration with the default micro-batch size and wait, running until shut down.
    pub fn new(bootstrap_servers: &str, input: &str, output: &str, dlq: &str, group: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            input: input.into(),
            output: output.into(),
            dlq: dlq.into(),
            group: group.into(),
            idle_timeout: None,
            max_records: None,
            batch_size: 20_000,
            batch_wait: Duration::from_millis(500),
        }
    }
}

/// The counts of a run: `read = processed + late + malformed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PipelineCounts {
    pub read: u64,
    /// Parsed, on time, and added to a window.
    pub processed: u64,
    /// Dropped behind the watermark.
    pub late: u64,
    /// Sent to the dead-letter topic.
    pub malformed: u64,
    pub windows_emitted: u64,
    /// Windows rebuilt after a restart that the previous run had emitted: not re-sent.
    pub windows_already_emitted: u64,
    pub micro_batches: u64,
    /// Seconds from the first record read to the last commit.
    pub busy_seconds: f64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Idle for `idle_timeout`: every open window was emitted.
    Idle,
    /// `max_records` reached or shutdown requested: the open windows are left to the
    /// next run, which replays their records from the committed offsets.
    Stopped,
}

/// Stored as the metadata of every committed offset, so that a restart replays
/// exactly (see [`run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The latest event time seen before the first record to replay.
    max_event_time_ms: Option<i64>,
    /// Every window ending at or before this has been emitted.
    emitted_through_ms: i64,
}

/// Where a micro-batch started, kept while a window it opened is open.
#[derive(Debug, Clone)]
struct BatchMark {
    /// The next offset to read, per partition, when the batch started.
    positions: HashMap<i32, i64>,
    /// The latest event time seen when the batch started.
    max_event_time_ms: Option<i64>,
}

/// Runs the pipeline until the input is idle for `idle_timeout` (then the open windows
/// are emitted), `max_records` are read, or `shutdown` resolves (Ctrl-C in the binary).
///
/// Delivery and restarts. After each micro-batch, the emitted windows and the dead
/// letters are delivered, then the offsets are committed. A committed offset never
/// passes a record that is still in an open window: it is the position at the start of
/// the micro-batch that opened the oldest open window. The offsets' metadata holds the
/// latest event time seen at that point and the watermark up to which windows were
/// emitted. A restarted pipeline (same group) replays from there with that event time,
/// so it takes the same late/on-time decisions (exactly so for a single-partition
/// topic), rebuilds the open windows in full, and does not re-send the windows it
/// rebuilds that were emitted already. A crash between delivery and commit re-sends
/// that micro-batch's windows: same key, same value (at-least-once, idempotent by key).
pub async fn run(
    config: &PipelineConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(PipelineCounts, StopReason)> {
    ensure!(
        config.batch_size > 0,
        "the micro-batch size must be positive"
    );
    let (consumer, producer) = create_clients(&config.bootstrap_servers, &config.group)?;
    let outcome = match Pipeline::new(config, &consumer, &producer) {
        Ok(mut pipeline) => pipeline.run(shutdown).await.map(|r| (pipeline.counts, r)),
        Err(e) => Err(e),
    };
    // Leave the group now (a dropped consumer holds its partitions for the session
    // timeout) and deliver whatever is still queued.
    consumer.unsubscribe();
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        warn!("flushing the producer: {e}");
    }
    outcome
}

struct Pipeline<'a> {
    config: &'a PipelineConfig,
    consumer: &'a StreamConsumer,
    producer: &'a FutureProducer,
    counts: PipelineCounts,
    max_event_time: Option<i64>,
    state: WindowState,
    /// From the checkpoint: windows ending at or before this were emitted by an earlier run.
    emitted_before_start: Option<i64>,
    /// Windows ending at or before this have been emitted.
    emitted_through: i64,
    /// The next offset to read, per partition.
    positions: HashMap<i32, i64>,
    /// The first offset this run read, per partition.
    first_offsets: HashMap<i32, i64>,
    /// Per open window start, the micro-batch that opened it.
    open_windows: BTreeMap<i64, u64>,
    /// The marks of the micro-batches that opened an open window.
    marks: BTreeMap<u64, BatchMark>,
    started: Option<Instant>,
}

impl<'a> Pipeline<'a> {
    fn new(
        config: &'a PipelineConfig,
        consumer: &'a StreamConsumer,
        producer: &'a FutureProducer,
    ) -> Result<Self> {
        let checkpoint = restore_checkpoint(consumer, &config.input)?;
        if let Some(c) = &checkpoint {
            info!(
                max_event_time = %c.max_event_time_ms.map_or("none".into(), iso),
                emitted_through = %iso(c.emitted_through_ms),
                "resuming from the committed checkpoint"
            );
        }
        Ok(Self {
            config,
            consumer,
            producer,
            counts: PipelineCounts::default(),
            max_event_time: checkpoint.and_then(|c| c.max_event_time_ms),
            state: WindowState::new(),
            emitted_before_start: checkpoint.map(|c| c.emitted_through_ms),
            emitted_through: checkpoint.map_or(i64::MIN, |c| c.emitted_through_ms),
            positions: HashMap::new(),
            first_offsets: HashMap::new(),
            open_windows: BTreeMap::new(),
            marks: BTreeMap::new(),
            started: None,
        })
    }

    async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<StopReason> {
        tokio::pin!(shutdown);
        let config = self.config;
        let join_deadline = Instant::now() + Duration::from_secs(60);
        // Idle time counts from the moment partitions are assigned.
        let mut assigned = false;
        let mut last_record = Instant::now();
        loop {
            if let Some(max) = config.max_records
                && self.counts.read >= max
            {
                info!(read = self.counts.read, "max records read, stopping");
                return Ok(StopReason::Stopped);
            }
            let mut wait = config.batch_wait;
            if let Some(idle) = config.idle_timeout {
                let left = idle.saturating_sub(last_record.elapsed());
                wait = wait.min(left.max(Duration::from_millis(10)));
            }
            let messages = tokio::select! {
                messages = read_micro_batch(self.consumer, &config.input, config.batch_size, wait) => messages?,
                () = &mut shutdown => {
                    info!("shutdown requested, stopping");
                    return Ok(StopReason::Stopped);
                }
            };
            if !messages.is_empty() {
                assigned = true;
                last_record = Instant::now();
                self.started.get_or_insert_with(Instant::now);
                self.process(messages).await?;
                continue;
            }
            if !assigned {
                assigned = self.consumer.assignment().is_ok_and(|a| a.count() > 0);
                last_record = Instant::now();
                ensure!(
                    assigned || Instant::now() < join_deadline,
                    "no partition of topic {} was assigned to group {} within 60 s",
                    config.input,
                    config.group
                );
            } else if let Some(idle) = config.idle_timeout
                && last_record.elapsed() >= idle
            {
                info!(
                    idle_s = idle.as_secs_f64(),
                    "input idle, emitting the open windows"
                );
                self.emit_open_windows().await?;
                return Ok(StopReason::Idle);
            }
        }
    }

    /// One micro-batch: steps 3 to 7.
    async fn process(&mut self, messages: Vec<OwnedMessage>) -> Result<()> {
        let config = self.config;
        let seq = self.counts.micro_batches;
        self.counts.micro_batches += 1;
        let mark = BatchMark {
            positions: self.positions.clone(),
            max_event_time_ms: self.max_event_time,
        };
        for m in &messages {
            self.first_offsets
                .entry(m.partition())
                .or_insert(m.offset());
            self.positions.insert(m.partition(), m.offset() + 1);
        }

        // 3. Parse. The malformed go to the dead-letter topic, with the reason; the
        // sends are queued now and delivered while the batch is processed.
        let payloads: Vec<&[u8]> = messages
            .iter()
            .map(|m| m.payload().unwrap_or(&[]))
            .collect();
        let (orders, malformed) = parse_orders(&payloads)?;
        let dead_letters = malformed
            .iter()
            .map(|bad| dead_letter(&config.dlq, &messages[bad.index], &bad.reason));
        let mut dlq_sent = pin!(maybe_done(send_all(self.producer, dead_letters)));
        let _ = poll!(dlq_sent.as_mut());

        // 4. Watermark.
        let (on_time, late) = apply_watermark(&orders, &mut self.max_event_time)?;
        let watermark = self.watermark();

        // Which micro-batch opened each window, for the commit.
        for &t in event_times(&on_time)?.values() {
            self.open_windows
                .entry(t - t.rem_euclid(WINDOW_MS))
                .or_insert(seq);
        }
        self.marks.insert(seq, mark);

        // 5. Windows the watermark has passed.
        let closed = tumbling_window_totals(&mut self.state, &on_time, watermark)?;
        self.forget_closed(watermark);
        self.emitted_through = self.emitted_through.max(watermark);
        let closed = self.skip_already_emitted(closed)?;

        // 6 and 7. Format, deliver (dead letters first), commit.
        let aggregates = format_aggregates(&closed)?;
        dlq_sent.as_mut().await;
        dlq_sent
            .as_mut()
            .take_output()
            .context("the dead letters were already awaited")?
            .with_context(|| format!("writing dead letters to topic {}", config.dlq))?;
        let offsets = self.checkpoint_offsets()?;
        write_and_commit(
            self.producer,
            self.consumer,
            &config.output,
            &aggregates,
            &offsets,
        )
        .await?;

        self.counts.read += messages.len() as u64;
        self.counts.malformed += malformed.len() as u64;
        self.counts.late += late as u64;
        self.counts.processed += on_time.num_rows() as u64;
        self.counts.windows_emitted += aggregates.len() as u64;
        self.counts.busy_seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        info!(
            batch = seq,
            records = messages.len(),
            late,
            malformed = malformed.len(),
            windows_emitted = aggregates.len(),
            open_windows = self.state.len(),
            watermark = %iso(watermark),
            "micro-batch"
        );
        if let Some(bad) = malformed.first() {
            let m = &messages[bad.index];
            debug!(partition = m.partition(), offset = m.offset(), reason = %bad.reason, "first malformed record");
        }
        Ok(())
    }

    /// The input is exhausted: emit every open window, commit the positions.
    async fn emit_open_windows(&mut self) -> Result<()> {
        let nothing = RecordBatch::new_empty(parsed_order_schema());
        let closed = tumbling_window_totals(&mut self.state, &nothing, i64::MAX)?;
        if let Some(last_start) = self.open_windows.keys().next_back() {
            self.emitted_through = self.emitted_through.max(last_start + WINDOW_MS);
        }
        self.forget_closed(i64::MAX);
        let closed = self.skip_already_emitted(closed)?;
        let aggregates = format_aggregates(&closed)?;
        let offsets = self.checkpoint_offsets()?;
        write_and_commit(
            self.producer,
            self.consumer,
            &self.config.output,
            &aggregates,
            &offsets,
        )
        .await?;
        self.counts.windows_emitted += aggregates.len() as u64;
        self.counts.busy_seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        info!(windows_emitted = aggregates.len(), "open windows emitted");
        Ok(())
    }

    fn watermark(&self) -> i64 {
        self.max_event_time
            .map_or(i64::MIN, |m| m - WATERMARK_DELAY_MS)
    }

    /// Forgets the windows the watermark closed, and the marks no open window needs.
    fn forget_closed(&mut self, watermark: i64) {
        let first_open = watermark.saturating_sub(WINDOW_MS).saturating_add(1);
        self.open_windows = self.open_windows.split_off(&first_open);
        let oldest = self
            .open_windows
            .values()
            .min()
            .copied()
            .unwrap_or(u64::MAX);
        self.marks = self.marks.split_off(&oldest);
    }

    /// Drops the windows that the run before a restart emitted already.
    fn skip_already_emitted(&mut self, closed: RecordBatch) -> Result<RecordBatch> {
        let Some(emitted) = self.emitted_before_start else {
            return Ok(closed);
        };
        let ends = closed
            .column_by_name("window_end")
            .context("the windows have no `window_end` column")?
            .as_primitive::<TimestampMillisecondType>();
        let new: BooleanArray = ends
            .values()
            .iter()
            .map(|&end| Some(end > emitted))
            .collect();
        let kept = filter_record_batch(&closed, &new)?;
        let skipped = closed.num_rows() - kept.num_rows();
        if skipped > 0 {
            info!(
                skipped,
                "windows emitted before the restart, not sent again"
            );
            self.counts.windows_already_emitted += skipped as u64;
        }
        Ok(kept)
    }

    /// Per partition: the position when the micro-batch that opened the oldest open
    /// window started (or the current position if no window is open), with the
    /// checkpoint as metadata.
    fn checkpoint_offsets(&self) -> Result<TopicPartitionList> {
        let oldest = self.marks.values().next();
        let checkpoint = Checkpoint {
            max_event_time_ms: oldest.map_or(self.max_event_time, |m| m.max_event_time_ms),
            emitted_through_ms: self.emitted_through,
        };
        let metadata = serde_json::to_string(&checkpoint)?;
        let mut offsets = TopicPartitionList::new();
        for (&partition, &position) in &self.positions {
            let offset = match oldest {
                None => position,
                // A partition first read after that batch: from its first record.
                Some(mark) => mark
                    .positions
                    .get(&partition)
                    .copied()
                    .unwrap_or(self.first_offsets[&partition]),
            };
            offsets.add_partition_offset(&self.config.input, partition, Offset::Offset(offset))?;
            if let Some(mut elem) = offsets.find_partition(&self.config.input, partition) {
                elem.set_metadata(&metadata);
            }
        }
        Ok(offsets)
    }
}

/// The checkpoint in the group's committed offsets for `topic`, if any.
fn restore_checkpoint(consumer: &StreamConsumer, topic: &str) -> Result<Option<Checkpoint>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .with_context(|| format!("reading the metadata of topic {topic}"))?;
    let mut wanted = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        if let Some(e) = t.error() {
            bail!("topic {topic}: {:?}", RDKafkaErrorCode::from(e));
        }
        for p in t.partitions() {
            wanted.add_partition(topic, p.id());
        }
    }
    ensure!(
        wanted.count() > 0,
        "topic {topic} has no partitions (does it exist?)"
    );
    let committed = consumer
        .committed_offsets(wanted, Duration::from_secs(30))
        .with_context(|| format!("reading the offsets committed for topic {topic}"))?;
    let mut restored: Option<Checkpoint> = None;
    for elem in committed.elements() {
        if elem.metadata().is_empty() {
            continue;
        }
        let c: Checkpoint = serde_json::from_str(elem.metadata()).with_context(|| {
            format!(
                "the metadata committed for {topic} partition {} is not this pipeline's checkpoint: {:?}",
                elem.partition(),
                elem.metadata()
            )
        })?;
        // Across partitions: the earliest event time (the replay decides as before),
        // the latest emission boundary.
        restored = Some(match restored {
            None => c,
            Some(r) => Checkpoint {
                max_event_time_ms: match (r.max_event_time_ms, c.max_event_time_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                emitted_through_ms: r.emitted_through_ms.max(c.emitted_through_ms),
            },
        });
    }
    Ok(restored)
}

/// The dead letter of `message`: same key and payload, the reason in header `error`,
/// where it came from in header `source` (`topic/partition@offset`).
fn dead_letter<'m>(
    dlq: &'m str,
    message: &'m OwnedMessage,
    reason: &str,
) -> FutureRecord<'m, [u8], [u8]> {
    let source = format!(
        "{}/{}@{}",
        message.topic(),
        message.partition(),
        message.offset()
    );
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "error",
            value: Some(reason),
        })
        .insert(Header {
            key: "source",
            value: Some(&source),
        });
    let record = FutureRecord::to(dlq)
        .payload(message.payload().unwrap_or(&[]))
        .headers(headers);
    match message.key() {
        Some(key) => record.key(key),
        None => record,
    }
}

/// Milliseconds since the epoch as ISO-8601 UTC, for logs.
pub fn iso(millis: i64) -> String {
    match millis {
        i64::MIN => "-inf".into(),
        i64::MAX => "+inf".into(),
        _ => DateTime::<Utc>::from_timestamp_millis(millis).map_or_else(
            || format!("{millis} ms"),
            |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
    }
}
