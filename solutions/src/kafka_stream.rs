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
//!    .agg(count("*").alias("order_count"), round(sum("amount"), 2).alias("total_amount"),
//!         round(avg("amount"), 2).alias("avg_amount"))
//!    .select(to_json(struct("*")).alias("value"))
//!    .writeStream.format("kafka").option("topic", "order_aggregates").outputMode("append").start())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{
    and, concat_batches, filter_record_batch, is_not_null, take_record_batch,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::json::{LineDelimitedWriter, ReaderBuilder, WriterBuilder};
use fixtures::events::order_event_schema;
use futures::StreamExt;
use futures::future::{FutureExt, try_join_all};
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
        // Throughput: prefetch up to 500,000 messages per partition and refill at once
        // (by default a full prefetch queue delays the next fetch by a whole second).
        .set("queued.min.messages", "500000")
        .set("fetch.queue.backoff.ms", "10")
        .set("max.partition.fetch.bytes", "8388608")
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

    let deadline = tokio::time::Instant::now() + max_wait;
    let mut messages = consumer.stream();
    let mut batch = Vec::with_capacity(max_records.min(100_000));
    while batch.len() < max_records {
        // What librdkafka has already fetched is taken without arming a timer.
        let next = match messages.next().now_or_never() {
            Some(next) => next,
            None => match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        match next {
            Some(message) => {
                let message = message.with_context(|| format!("reading from topic {topic}"))?;
                batch.push(message.detach());
            }
            None => break,
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
    // A row the lenient decoder still cannot build: find it one payload at a time.
    Ok(flush(decoder).ok())
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
/// is at or before `watermark`, sorted by window start and category, with the total
/// and the average amount rounded to cents. `i64::MAX` closes them all.
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
        totals.push(round_cents(t.total_amount));
        averages.push(round_cents(t.total_amount / t.order_count as f64));
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

/// Money to the cent, like Spark's `round(x, 2)`: the same sum added in another
/// order (another micro-batch split, a replay) gives the same value.
fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
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
/// only then commits `offsets` for the consumer's group (synchronously; nothing to
/// commit if `offsets` is empty).
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
    if offsets.count() > 0 {
        // A coordinator that is loading or moving answers NotCoordinator for a while.
        kafka_retry::retry(
            "committing the consumed offsets",
            kafka_retry::DEADLINE,
            || consumer.commit(offsets, CommitMode::Sync),
        )?;
    }
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
            batch_size: 100_000,
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
    /// Dropped: behind the watermark, or in a window already emitted (after a restart,
    /// the replayed records of the windows emitted before it).
    pub late: u64,
    /// Sent to the dead-letter topic.
    pub malformed: u64,
    pub windows_emitted: u64,
    pub micro_batches: u64,
    /// Seconds from the start of the first micro-batch to the commit of the last
    /// (neither the group join nor the final idle wait).
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

/// How long a partition may go without a record before it stops holding the
/// watermark back (Flink's "idle source").
pub const PARTITION_IDLE: Duration = Duration::from_secs(30);

/// Stored as the metadata of each committed offset (one per partition), so that a
/// restart replays exactly (see [`run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// The partition's latest event time before its first record to replay.
    max_event_time_ms: Option<i64>,
    /// Every window ending at or before this has been emitted.
    emitted_through_ms: i64,
}

/// Where a micro-batch started, kept while a window it opened is open.
#[derive(Debug, Clone)]
struct BatchMark {
    /// The next offset to read, per partition, when the batch started.
    positions: HashMap<i32, i64>,
    /// The latest event time per partition when the batch started.
    max_event_times: HashMap<i32, i64>,
}

/// Runs the pipeline until the input is idle for `idle_timeout` (then the open windows
/// are emitted), `max_records` are read, or `shutdown` resolves (Ctrl-C in the binary).
/// While steps 3 to 6 run on a worker thread for one micro-batch, the next one is read.
///
/// Watermark. Step 4 runs per input partition, each with its own latest event time,
/// and windows close when the slowest partition's watermark passes their end (a
/// partition without records for [`PARTITION_IDLE`] stops holding it back). For a
/// single-partition topic this is exactly step 4's rule; for several partitions it
/// keeps a backlog that is read one partition chunk at a time from being dropped as
/// late (Flink's per-partition watermarks; Spark avoids the issue by advancing its
/// watermark only between micro-batches).
///
/// Delivery and restarts. After each micro-batch, the emitted windows and the dead
/// letters are delivered, then the offsets are committed. A committed offset never
/// passes a record that is still in an open window: it is the position at the start of
/// the micro-batch that opened the oldest open window. Each offset's metadata holds
/// the partition's latest event time at that point and the watermark up to which
/// windows were emitted. A restarted pipeline (same group) replays from there with
/// those event times, so it takes the same late/on-time decisions and rebuilds the
/// open windows in full; the replayed records of windows emitted already are dropped
/// (counted as late), so those windows are not sent again. A crash between delivery
/// and commit re-sends that micro-batch's windows: same key, same value
/// (at-least-once, idempotent by key).
pub async fn run(
    config: &PipelineConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(PipelineCounts, StopReason)> {
    ensure!(
        config.batch_size > 0,
        "the micro-batch size must be positive"
    );
    let (consumer, producer) = create_clients(&config.bootstrap_servers, &config.group)?;
    for topic in [&config.output, &config.dlq] {
        output_topic_ready(&producer, topic)?;
    }
    let mut pipeline = Pipeline {
        config,
        consumer: &consumer,
        producer: &producer,
        counts: PipelineCounts::default(),
        started: None,
    };
    let outcome = match restore_checkpoints(&consumer, &config.input) {
        Ok(checkpoints) => {
            let windowing = Windowing::new(&config.input, &checkpoints);
            let reason = pipeline.run(windowing, shutdown).await;
            reason.map(|r| (pipeline.counts, r))
        }
        Err(e) => Err(e),
    };
    // Leave the group (the next run with this group gets the partitions at once)
    // and deliver whatever is still queued.
    consumer.unsubscribe();
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        warn!("flushing the producer: {e}");
    }
    outcome
}

/// The I/O side: reads micro-batches, hands each to [`Windowing`] on a worker thread
/// while it reads the next, then delivers the results and commits.
struct Pipeline<'a> {
    config: &'a PipelineConfig,
    consumer: &'a StreamConsumer,
    producer: &'a FutureProducer,
    counts: PipelineCounts,
    started: Option<Instant>,
}

/// What a micro-batch read returned.
enum Read {
    Batch(Vec<OwnedMessage>, Duration),
    Shutdown,
}

impl<'a> Pipeline<'a> {
    async fn run(
        &mut self,
        mut windowing: Windowing,
        shutdown: impl Future<Output = ()>,
    ) -> Result<StopReason> {
        tokio::pin!(shutdown);
        let config = self.config;
        let join_deadline = Instant::now() + Duration::from_secs(60);
        // Idle time counts from the moment partitions are assigned.
        let mut assigned = false;
        let mut last_record = Instant::now();
        let mut read = self.read(&mut shutdown, last_record).await?;
        loop {
            let (messages, read_time) = match read {
                Read::Shutdown => return Ok(StopReason::Stopped),
                Read::Batch(messages, read_time) => (messages, read_time),
            };
            if messages.is_empty() {
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
                    let (aggregates, offsets) = windowing.emit_open_windows()?;
                    write_and_commit(
                        self.producer,
                        self.consumer,
                        &config.output,
                        &aggregates,
                        &offsets,
                    )
                    .await?;
                    self.counts.windows_emitted += aggregates.len() as u64;
                    info!(windows_emitted = aggregates.len(), "open windows emitted");
                    return Ok(StopReason::Idle);
                }
                read = self.read(&mut shutdown, last_record).await?;
                continue;
            }
            assigned = true;
            last_record = Instant::now();
            self.started.get_or_insert(last_record - read_time);
            let read_count = self.counts.read + messages.len() as u64;
            let stop = config.max_records.is_some_and(|max| read_count >= max);

            // Steps 3 to 6 on a worker thread, while this one reads the next batch.
            let assignment = self.assigned_partitions();
            let work = tokio::task::spawn_blocking(move || {
                let computed = windowing.micro_batch(messages, &assignment);
                (windowing, computed)
            });
            let (worked, next) = if stop {
                (work.await, Read::Shutdown)
            } else {
                let (worked, next) = tokio::join!(work, self.read(&mut shutdown, last_record));
                (worked, next?)
            };
            let (back, computed) = worked.context("the windowing worker panicked")?;
            windowing = back;
            self.deliver(computed?, read_time).await?;
            if stop {
                info!(read = self.counts.read, "max records read, stopping");
                return Ok(StopReason::Stopped);
            }
            read = next;
        }
    }

    /// Step 2, or the shutdown signal, whichever comes first.
    async fn read(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        last_record: Instant,
    ) -> Result<Read> {
        let config = self.config;
        let mut wait = config.batch_wait;
        if let Some(idle) = config.idle_timeout {
            let left = idle.saturating_sub(last_record.elapsed());
            wait = wait.min(left.max(Duration::from_millis(10)));
        }
        let reading = Instant::now();
        tokio::select! {
            messages = read_micro_batch(self.consumer, &config.input, config.batch_size, wait) => {
                Ok(Read::Batch(messages?, reading.elapsed()))
            }
            () = shutdown.as_mut() => {
                info!("shutdown requested, stopping");
                Ok(Read::Shutdown)
            }
        }
    }

    fn assigned_partitions(&self) -> Vec<i32> {
        self.consumer
            .assignment()
            .map(|a| {
                a.elements_for_topic(&self.config.input)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Dead letters, then step 7 (aggregates, commit); the counts and the log line.
    async fn deliver(&mut self, batch: Computed, read_time: Duration) -> Result<()> {
        let config = self.config;
        let delivering = Instant::now();
        let dead_letters = batch
            .malformed
            .iter()
            .map(|bad| dead_letter(&config.dlq, &batch.messages[bad.index], &bad.reason));
        send_all(self.producer, dead_letters)
            .await
            .with_context(|| format!("writing dead letters to topic {}", config.dlq))?;
        write_and_commit(
            self.producer,
            self.consumer,
            &config.output,
            &batch.aggregates,
            &batch.offsets,
        )
        .await?;

        self.counts.micro_batches += 1;
        self.counts.read += batch.messages.len() as u64;
        self.counts.malformed += batch.malformed.len() as u64;
        self.counts.late += batch.late as u64;
        self.counts.processed += batch.on_time as u64;
        self.counts.windows_emitted += batch.aggregates.len() as u64;
        self.counts.busy_seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        info!(
            batch = batch.seq,
            records = batch.messages.len(),
            late = batch.late,
            malformed = batch.malformed.len(),
            windows_emitted = batch.aggregates.len(),
            open_windows = batch.open_windows,
            watermark = %iso(batch.watermark),
            read_ms = read_time.as_millis(),
            compute_ms = batch.compute_time.as_millis(),
            write_commit_ms = delivering.elapsed().as_millis(),
            "micro-batch"
        );
        if let Some(bad) = batch.malformed.first() {
            let m = &batch.messages[bad.index];
            debug!(partition = m.partition(), offset = m.offset(), reason = %bad.reason, "first malformed record");
        }
        Ok(())
    }
}

/// One micro-batch through steps 3 to 6, ready to deliver.
struct Computed {
    seq: u64,
    messages: Vec<OwnedMessage>,
    malformed: Vec<Malformed>,
    on_time: usize,
    late: usize,
    aggregates: Vec<(String, String)>,
    /// What to commit once the aggregates and dead letters are delivered.
    offsets: TopicPartitionList,
    watermark: i64,
    open_windows: usize,
    compute_time: Duration,
}

/// Steps 3 to 6 and the state they keep between micro-batches.
struct Windowing {
    input: String,
    /// Micro-batches computed so far.
    seq: u64,
    /// Step 4's state, per partition.
    max_event_times: HashMap<i32, i64>,
    /// When each partition was first assigned, and when it last delivered a record:
    /// a partition holds the watermark back until it has been idle for [`PARTITION_IDLE`].
    assigned_at: HashMap<i32, Instant>,
    last_record_at: HashMap<i32, Instant>,
    /// Step 5's state.
    state: WindowState,
    /// Windows ending at or before this have been emitted (by this run or, from the
    /// checkpoint, an earlier one).
    emitted_through: i64,
    /// The next offset to read, per partition.
    positions: HashMap<i32, i64>,
    /// The first offset this run read, per partition.
    first_offsets: HashMap<i32, i64>,
    /// Per open window start, the micro-batch that opened it.
    open_windows: BTreeMap<i64, u64>,
    /// The marks of the micro-batches that opened an open window.
    marks: BTreeMap<u64, BatchMark>,
}

impl Windowing {
    /// Fresh, or resumed from the checkpoints committed by an earlier run.
    fn new(input: &str, checkpoints: &HashMap<i32, Checkpoint>) -> Self {
        let emitted = checkpoints.values().map(|c| c.emitted_through_ms).max();
        if let Some(emitted) = emitted {
            info!(
                partitions = checkpoints.len(),
                emitted_through = %iso(emitted),
                "resuming from the committed checkpoint"
            );
        }
        Self {
            input: input.to_string(),
            seq: 0,
            max_event_times: checkpoints
                .iter()
                .filter_map(|(&p, c)| Some((p, c.max_event_time_ms?)))
                .collect(),
            assigned_at: HashMap::new(),
            last_record_at: HashMap::new(),
            state: WindowState::new(),
            emitted_through: emitted.unwrap_or(i64::MIN),
            positions: HashMap::new(),
            first_offsets: HashMap::new(),
            open_windows: BTreeMap::new(),
            marks: BTreeMap::new(),
        }
    }

    fn micro_batch(&mut self, messages: Vec<OwnedMessage>, assigned: &[i32]) -> Result<Computed> {
        let started = Instant::now();
        let seq = self.seq;
        self.seq += 1;
        let mark = BatchMark {
            positions: self.positions.clone(),
            max_event_times: self.max_event_times.clone(),
        };
        for &p in assigned {
            self.assigned_at.entry(p).or_insert(started);
        }
        for m in &messages {
            self.first_offsets
                .entry(m.partition())
                .or_insert(m.offset());
            self.positions.insert(m.partition(), m.offset() + 1);
            self.last_record_at.insert(m.partition(), started);
        }

        // 3. Parse (the malformed go to the dead-letter topic, with the reason).
        let payloads: Vec<&[u8]> = messages
            .iter()
            .map(|m| m.payload().unwrap_or(&[]))
            .collect();
        let (orders, malformed) = parse_orders(&payloads)?;

        // 4. Watermark, per partition.
        let (on_time, late) = self.drop_late(&messages, &malformed, &orders)?;
        let watermark = self.watermark();

        // Which micro-batch opened each window, for the commit.
        let mut previous = None;
        for &t in event_times(&on_time)?.values() {
            let start = t - t.rem_euclid(WINDOW_MS);
            if previous != Some(start) {
                self.open_windows.entry(start).or_insert(seq);
                previous = Some(start);
            }
        }
        self.marks.insert(seq, mark);

        // 5. The windows the watermark has passed; 6. as messages.
        let closed = tumbling_window_totals(&mut self.state, &on_time, watermark)?;
        self.forget_closed(watermark);
        self.emitted_through = self.emitted_through.max(watermark);
        let aggregates = format_aggregates(&closed)?;

        Ok(Computed {
            seq,
            on_time: on_time.num_rows(),
            late,
            aggregates,
            offsets: self.checkpoint_offsets()?,
            watermark,
            open_windows: self.state.len(),
            compute_time: started.elapsed(),
            malformed,
            messages,
        })
    }

    /// The input is exhausted: every open window, and the offsets to commit after them.
    fn emit_open_windows(&mut self) -> Result<(Vec<(String, String)>, TopicPartitionList)> {
        let nothing = RecordBatch::new_empty(parsed_order_schema());
        let closed = tumbling_window_totals(&mut self.state, &nothing, i64::MAX)?;
        if let Some(last_start) = self.open_windows.keys().next_back() {
            self.emitted_through = self.emitted_through.max(last_start + WINDOW_MS);
        }
        self.forget_closed(i64::MAX);
        Ok((format_aggregates(&closed)?, self.checkpoint_offsets()?))
    }

    /// Step 4 on each partition's orders, with that partition's latest event time.
    fn drop_late(
        &mut self,
        messages: &[OwnedMessage],
        malformed: &[Malformed],
        orders: &RecordBatch,
    ) -> Result<(RecordBatch, usize)> {
        // Only what the windows need goes further: fewer columns to copy.
        let needed = ["timestamp", "category", "amount"]
            .iter()
            .map(|c| orders.schema().index_of(c))
            .collect::<Result<Vec<_>, _>>()?;
        let orders = &orders.project(&needed)?;
        // The partition of each order row: the messages minus the malformed, in order.
        let mut bad = malformed.iter().map(|m| m.index).peekable();
        let mut rows: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        let mut row = 0u32;
        for (index, m) in messages.iter().enumerate() {
            if bad.next_if_eq(&index).is_none() {
                rows.entry(m.partition()).or_default().push(row);
                row += 1;
            }
        }
        let mut parts = Vec::with_capacity(rows.len());
        let mut late = 0;
        for (partition, indices) in rows {
            let of_partition = if indices.len() == orders.num_rows() {
                orders.clone()
            } else {
                take_record_batch(orders, &UInt32Array::from(indices))?
            };
            let mut max = self.max_event_times.get(&partition).copied();
            let (on_time, late_here) = apply_watermark(&of_partition, &mut max)?;
            if let Some(max) = max {
                self.max_event_times.insert(partition, max);
            }
            late += late_here;
            parts.push(on_time);
        }
        let on_time = match parts.len() {
            1 => parts.pop().context("one part")?,
            _ => concat_batches(&orders.schema(), &parts)?,
        };
        // Too late as well: a window already emitted is not emitted again (a partition
        // back from idle, or a replay after a restart).
        if self.emitted_through == i64::MIN {
            return Ok((on_time, late));
        }
        let emitted = self.emitted_through;
        let times = event_times(&on_time)?;
        // Nothing to drop when every record is in a window ending after `emitted`.
        if times.values().iter().all(|&t| t >= emitted) {
            return Ok((on_time, late));
        }
        let open: BooleanArray = times
            .values()
            .iter()
            .map(|&t| Some(t - t.rem_euclid(WINDOW_MS) + WINDOW_MS > emitted))
            .collect();
        let kept = filter_record_batch(&on_time, &open)?;
        let dropped = on_time.num_rows() - kept.num_rows();
        Ok((kept, late + dropped))
    }

    /// The slowest partition's watermark. A partition counts while it is not idle
    /// (a record, or its assignment, within [`PARTITION_IDLE`]); one without any event
    /// yet holds the watermark at its start. If every partition is idle, the slowest of
    /// them. Never lower than before.
    fn watermark(&self) -> i64 {
        let now = Instant::now();
        let partitions: BTreeSet<i32> = self
            .assigned_at
            .keys()
            .chain(self.max_event_times.keys())
            .copied()
            .collect();
        let active = |p: &i32| {
            self.last_record_at
                .get(p)
                .or(self.assigned_at.get(p))
                .is_some_and(|t| now.duration_since(*t) < PARTITION_IDLE)
        };
        let watermark_of = |p: &i32| {
            self.max_event_times
                .get(p)
                .map_or(i64::MIN, |m| m - WATERMARK_DELAY_MS)
        };
        let slowest = partitions
            .iter()
            .filter(|p| active(p))
            .map(watermark_of)
            .min()
            .or_else(|| {
                self.max_event_times
                    .values()
                    .min()
                    .map(|m| m - WATERMARK_DELAY_MS)
            })
            .unwrap_or(i64::MIN);
        slowest.max(self.emitted_through)
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

    /// Per partition: the position when the micro-batch that opened the oldest open
    /// window started (or the current position if no window is open), with the
    /// partition's checkpoint as metadata.
    fn checkpoint_offsets(&self) -> Result<TopicPartitionList> {
        let oldest = self.marks.values().next();
        let mut offsets = TopicPartitionList::new();
        for (&partition, &position) in &self.positions {
            let (offset, max_event_times) = match oldest {
                None => (position, &self.max_event_times),
                // A partition first read after that batch: from its first record.
                Some(mark) => (
                    mark.positions
                        .get(&partition)
                        .copied()
                        .unwrap_or(self.first_offsets[&partition]),
                    &mark.max_event_times,
                ),
            };
            let checkpoint = Checkpoint {
                max_event_time_ms: max_event_times.get(&partition).copied(),
                emitted_through_ms: self.emitted_through,
            };
            offsets.add_partition_offset(&self.input, partition, Offset::Offset(offset))?;
            if let Some(mut elem) = offsets.find_partition(&self.input, partition) {
                elem.set_metadata(serde_json::to_string(&checkpoint)?);
            }
        }
        Ok(offsets)
    }
}

/// Waits (10 s at most) until `topic` is in the metadata. The producer's metadata
/// request makes a broker with `auto.create.topics.enable` create it.
fn output_topic_ready(producer: &FutureProducer, topic: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = kafka_retry::retry(
            &format!("reading the metadata of topic {topic}"),
            kafka_retry::DEADLINE,
            || {
                producer
                    .client()
                    .fetch_metadata(Some(topic), Duration::from_secs(10))
            },
        )?;
        let error = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .and_then(|t| t.error().map(RDKafkaErrorCode::from));
        match error {
            None => return Ok(()),
            Some(e) if Instant::now() > deadline => bail!(
                "output topic {topic} is not available ({e}): create it, or let the broker \
                 create topics (auto.create.topics.enable)"
            ),
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The checkpoints in the group's committed offsets for `topic`, by partition.
///
/// On a broker that has just started, the group coordinator answers `NotCoordinator`
/// or `CoordinatorLoadInProgress` for some seconds: both reads are retried
/// ([`kafka_retry`]).
fn restore_checkpoints(consumer: &StreamConsumer, topic: &str) -> Result<HashMap<i32, Checkpoint>> {
    let metadata = kafka_retry::retry(
        &format!("reading the metadata of topic {topic}"),
        kafka_retry::DEADLINE,
        || consumer.fetch_metadata(Some(topic), Duration::from_secs(10)),
    )?;
    let mut wanted = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        if let Some(e) = t.error() {
            bail!("topic {topic}: {}", RDKafkaErrorCode::from(e));
        }
        for p in t.partitions() {
            wanted.add_partition(topic, p.id());
        }
    }
    ensure!(
        wanted.count() > 0,
        "topic {topic} has no partitions (does it exist?)"
    );
    let committed = kafka_retry::retry(
        &format!("reading the offsets committed for topic {topic}"),
        kafka_retry::DEADLINE,
        || consumer.committed_offsets(wanted.clone(), Duration::from_secs(10)),
    )?;
    let mut checkpoints = HashMap::new();
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
        checkpoints.insert(elem.partition(), c);
    }
    Ok(checkpoints)
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
