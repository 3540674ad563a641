//! Kafka → hive-partitioned Parquet, exactly once — the beginner's version: the same
//! program as `kafka_parquet_intermediate.rs`, with every line explained.
//!
//! In Spark this whole job is one Structured Streaming query:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", topic).load()
//!     .select(from_json(col("value").cast("string"), schema).alias("o")).select("o.*")
//!     .withColumn("event_time", to_timestamp("timestamp"))
//!     .withColumn("year", year("event_time"))  # … month, day, hour
//!     .filter(col("order_id").isNotNull() & …)
//!     .writeStream.format("parquet").partitionBy("year", "month", "day", "hour")
//!     .option("checkpointLocation", checkpoint).start(output))
//! ```
//!
//! Spark's file sink is exactly once because of two things it does for you: it writes
//! each micro-batch's files, then records the batch as committed in its checkpoint, and
//! it ignores (and later cleans up) files of batches the checkpoint does not list. Here
//! there is no Spark, so we do the same by hand:
//!
//! 1. Files are named after their batch (`part-000007.parquet`) and written under a
//!    hidden temporary name, then renamed: a reader never sees half a file.
//! 2. `<checkpoint>/checkpoint.json` holds the last committed batch id and, per Kafka
//!    partition, the next offset to read. It is the commit point: written after all the
//!    batch's files and dead letters, atomically (temporary file, fsync, rename).
//! 3. At start we delete the files of any batch after the checkpoint's (a run killed
//!    half-way through writing it) and resume reading at the checkpoint's offsets, so
//!    that batch is read and written again, whole.
//! 4. The offsets are also committed to Kafka for the consumer group (after each batch,
//!    and at start, since a kill can fall between the checkpoint and the commit), so
//!    that lag monitoring sees the job's progress. The checkpoint stays the truth.
//!
//! What exactly once does not cover here: a kill after a batch's dead letters were sent
//! but before its checkpoint sends them again on restart (at least once). The reference
//! (`solutions/src/kafka_parquet/pipeline.rs`) closes that gap with a Kafka transaction.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

// anyhow: one error type for everything, and `.context("…")` to say what we were doing
// when it failed, so an error reads "reading the checkpoint: expected value at line 1".
use anyhow::Context;
// chrono parses the RFC 3339 timestamps and gives us the year/month/day/hour in UTC.
use chrono::{DateTime, Datelike, Timelike};
use clap::Parser;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
// arrow-json turns rows (any serde `Serialize` type) into an Arrow RecordBatch with the
// exact schema we give it: no type inference, no surprises (Spark's `from_json(schema)`).
use datafusion::arrow::json::ReaderBuilder;
// The Parquet writer that takes Arrow batches; we use it directly (not DataFusion's
// `write_parquet`) because we must choose each file's name ourselves.
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::{basic::Compression, file::properties::WriterProperties};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// The command line the grader (and an operator) uses. `#[arg(long)]` turns the field
/// `idle_timeout_s` into the flag `--idle-timeout-s`.
#[derive(Parser)]
struct Args {
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`.
    #[arg(long)]
    bootstrap: String,
    /// The topic of order events.
    #[arg(long)]
    topic: String,
    /// The lake: `year=…/month=…/day=…/hour=…/part-….parquet` below it.
    #[arg(long)]
    output: PathBuf,
    /// This job's own folder for `checkpoint.json` (Spark's `checkpointLocation`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The dead-letter topic for rejected records.
    #[arg(long)]
    dlq: String,
    /// The consumer group the offsets are committed for.
    #[arg(long)]
    group: String,
    /// Stop once no record arrived for this many seconds (a streaming job would run on).
    #[arg(long)]
    idle_timeout_s: u64,
}

/// One order. Reading the payload with serde is Spark's `from_json(value, schema)`:
/// - `Option<String>` for the ids: JSON `null` (or a missing id) is accepted, so the
///   record is *invalid* (rule 4), not *malformed*;
/// - every other field is required and typed: a missing field, `"quantity": "several"`
///   or `"amount": true` makes `serde_json` fail, and that error is the reason we give.
///
/// The same struct is the lake's row: `skip_deserializing` fields are not read from the
/// payload (they start at 0) and are filled in from the Kafka message and the parsed
/// timestamp. When it is serialised into Arrow, `timestamp` is dropped because the lake's
/// schema has no such column.
#[derive(Serialize, Deserialize)]
struct Order {
    #[serde(skip_deserializing)]
    kafka_partition: i32,
    #[serde(skip_deserializing)]
    kafka_offset: i64,
    order_id: Option<String>,
    customer_id: Option<String>,
    product_id: String,
    category: String,
    quantity: i32,
    unit_price: f64,
    amount: f64,
    status: String,
    timestamp: String,
    /// Microseconds since the epoch, UTC: Arrow's `Timestamp(Microsecond, "UTC")`.
    #[serde(skip_deserializing)]
    event_time: i64,
}

/// `checkpoint.json`, in the kata's step 7 format:
/// `{"batch_id": 3, "topic": "orders", "offsets": {"0": 120, "1": 118}}`.
/// serde_json writes the `i32` map keys as strings ("0"), as JSON requires.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// The last batch whose files are all in the lake; -1 before the first.
    batch_id: i64,
    topic: String,
    /// Per partition, the next offset to read (the last one read + 1, Kafka's convention).
    offsets: BTreeMap<i32, i64>,
}

// `#[tokio::main]` because the dead-letter producer's deliveries are futures we await.
// Everything else (polling, writing files) is plain blocking code, which is fine in a
// program that does one thing at a time.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    // ---- Where did we stop? (Spark reads its checkpointLocation the same way.)
    let checkpoint_file = args.checkpoint.join("checkpoint.json");
    let mut checkpoint: Checkpoint = match fs::read(&checkpoint_file) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("reading the checkpoint")?,
        // No checkpoint: a new lake. Batch ids start at 0, reading at the beginning.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let topic = args.topic.clone();
            Checkpoint {
                batch_id: -1,
                topic,
                offsets: BTreeMap::new(),
            }
        }
        // Any other error (permissions, a disk problem) must stop us: guessing "new lake"
        // would write every order again.
        Err(e) => return Err(e).context("reading the checkpoint"),
    };
    // A run killed mid-batch may have left files of batch `checkpoint.batch_id + 1` (and
    // temporary files). That batch is about to be read again from the checkpoint's
    // offsets; if its old files stayed, its rows would be in the lake twice.
    remove_uncommitted(&args.output, checkpoint.batch_id)?;

    // ---- Step 1: the consumer.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        // The group the offsets are committed for (monitoring sees our lag under it).
        .set("group.id", &args.group)
        // Never let librdkafka commit on its own timer: it would commit offsets of
        // records whose files are not written yet, and a crash would lose them.
        .set("enable.auto.commit", "false")
        .create()?;
    // The dead-letter producer. FutureProducer gives a future per record that resolves
    // once the broker has it (or with the error), so a lost dead letter is an error here.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create()?;

    // `assign`, not `subscribe`: we choose the partitions and the offsets ourselves (the
    // checkpoint's), and there is no group rebalance to wait for. `subscribe` would start
    // from the group's committed offsets instead, which may lag behind the checkpoint.
    let metadata = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let start = checkpoint.offsets.get(&partition.id());
        // A partition the checkpoint does not know yet starts at the beginning
        // (Spark's `startingOffsets = "earliest"`).
        let start = start.map_or(Offset::Beginning, |o| Offset::Offset(*o));
        assignment.add_partition_offset(&args.topic, partition.id(), start)?;
    }
    consumer.assign(&assignment)?;
    // If the last run was killed between its checkpoint and its Kafka commit, Kafka is
    // one batch behind: bring it level before anything else.
    commit(&consumer, &checkpoint)?;

    // ---- The micro-batch loop (Spark's trigger), until idle.
    let mut last_record = Instant::now();
    while last_record.elapsed() < Duration::from_secs(args.idle_timeout_s) {
        // Step 2: up to 10,000 records or half a second, whichever comes first
        // (Spark's `maxOffsetsPerTrigger` and trigger interval).
        let messages = read_batch(&consumer, 10_000, Duration::from_millis(500))?;
        if messages.is_empty() {
            continue; // nothing new: the loop condition decides whether we are idle
        }
        let batch_id = checkpoint.batch_id + 1;

        // Steps 3-6 for each record: the valid orders grouped by their hour folder, the
        // rejected records with the reason.
        let mut hours: BTreeMap<String, Vec<Order>> = BTreeMap::new();
        let mut dead = Vec::new();
        for m in &messages {
            // The next offset to read in this partition: records of one partition
            // arrive in order, so the last one seen wins.
            checkpoint.offsets.insert(m.partition(), m.offset() + 1);
            match parse(m) {
                Ok((hour, order)) => hours.entry(hour).or_default().push(order),
                Err(reason) => dead.push((m, reason)),
            }
        }

        // Step 7a: one Parquet file per hour folder for this batch (Spark's
        // `partitionBy("year", "month", "day", "hour")` writes one per task and folder).
        for (hour, rows) in &hours {
            // Rows → RecordBatch with the lake's exact schema (`timestamp` is not in it,
            // so it is left out).
            let mut decoder = ReaderBuilder::new(lake_schema()).build_decoder()?;
            decoder.serialize(rows)?;
            let batch = decoder.flush()?.context("an hour has rows")?;
            // The name depends only on the batch id: if this batch is redone after a
            // crash, the restart can find and delete the first attempt's files.
            let file = args
                .output
                .join(hour)
                .join(format!("part-{batch_id:06}.parquet"));
            replace(&file, |file| {
                // Snappy: what Spark writes by default, and the codec this workspace's
                // Parquet is built with.
                let snappy = WriterProperties::builder().set_compression(Compression::SNAPPY);
                let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(snappy.build()))?;
                writer.write(&batch)?;
                // `close` writes the footer; without it the file is not Parquet.
                Ok(writer.close().map(drop)?)
            })?;
        }

        // Step 6's other half: every rejected record to the dead-letter topic, key and
        // value unchanged (someone must be able to replay it once fixed), the reason in
        // a header. All are sent at once, then we wait for every delivery.
        let mut deliveries = Vec::new();
        for (m, reason) in &dead {
            let reason = Header {
                key: "dlq.reason",
                value: Some(reason),
            };
            let mut letter = FutureRecord::<[u8], [u8]>::to(&args.dlq);
            (letter.key, letter.payload) = (m.key(), m.payload());
            letter.headers = Some(OwnedHeaders::new().insert(reason));
            deliveries.push(producer.send_result(letter).map_err(|(e, _)| e)?);
        }
        for delivery in deliveries {
            // Outer `?`: the producer went away; inner: the broker refused the record.
            delivery
                .await?
                .map_err(|(e, _)| e)
                .context("sending a dead letter")?;
        }

        // Step 7b: the commit point. Once this rename is done, batch `batch_id` is in the
        // lake for good; before it, a restart redoes the batch.
        checkpoint.batch_id = batch_id;
        let json = serde_json::to_vec(&checkpoint)?;
        replace(&checkpoint_file, |mut file| Ok(file.write_all(&json)?))?;
        // Step 7c: Kafka learns our progress last, for monitoring.
        commit(&consumer, &checkpoint)?;
        // Idle time counts from the end of the work, so a slow batch is not "idle".
        last_record = Instant::now();
    }
    Ok(())
}

/// Steps 3-6 for one record: the hour folder and the row, or why it is rejected. The
/// checks run in the pipeline's order — malformed, then the timestamp, then the
/// validity rules — and the first that fails is the reason.
fn parse(message: &OwnedMessage) -> Result<(String, Order), String> {
    // A record without a value (a tombstone) reads as empty bytes: malformed.
    let payload = message.payload().unwrap_or_default();
    // Step 3 (`from_json`): serde's error says what is wrong, e.g.
    // "invalid type: string \"several\", expected i32 at line 1 column 120".
    let mut order: Order =
        serde_json::from_slice(payload).map_err(|e| format!("malformed: {e}"))?;
    // Step 4 (`to_timestamp`): RFC 3339 accepts `Z` and offsets like `+02:00`; `to_utc`
    // converts to the instant in UTC. Spark would give null; we reject with the text.
    let time = DateTime::parse_from_rfc3339(&order.timestamp)
        .map_err(|_| format!("unparsable timestamp: {:?}", order.timestamp))?
        .to_utc();
    // Step 6 (`filter`): the rules, in the contract's order.
    if order.order_id.is_none() {
        return Err("null order_id".into());
    } else if order.customer_id.is_none() {
        return Err("null customer_id".into());
    } else if order.amount < 0.0 {
        return Err("negative amount".into());
    }
    // Where the row came from, so anyone can trace a row back to its Kafka record.
    (order.kafka_partition, order.kafka_offset) = (message.partition(), message.offset());
    order.event_time = time.timestamp_micros();
    // Step 5 (`year(...)`, `hour(...)`): the folder of the event's hour in UTC — event
    // time, not the time we read it, so a late order lands in its own hour. The numbers
    // are not zero-padded, as Spark writes them (`month=12/day=1/hour=0`).
    let (year, month, day, hour) = (time.year(), time.month(), time.day(), time.hour());
    Ok((
        format!("year={year}/month={month}/day={day}/hour={hour}"),
        order,
    ))
}

/// Step 2: up to `max` messages, waiting at most `wait` in all.
fn read_batch(
    consumer: &BaseConsumer,
    max: usize,
    wait: Duration,
) -> anyhow::Result<Vec<OwnedMessage>> {
    // One deadline for the whole batch: `poll(wait)` in a loop would wait `wait` per
    // message and a trickle of records would never end the batch.
    let deadline = Instant::now() + wait;
    let mut messages = Vec::new();
    while messages.len() < max {
        match consumer.poll(deadline.saturating_duration_since(Instant::now())) {
            // `detach` copies the message out of librdkafka's buffer, so we can keep it
            // after the next poll.
            Some(message) => messages.push(message?.detach()),
            None => break, // the time is up
        }
    }
    Ok(messages)
}

/// Step 7c: commit the checkpoint's offsets for the group, and wait for the broker's
/// answer (`Sync`): "committed" must mean committed.
fn commit(consumer: &BaseConsumer, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in &checkpoint.offsets {
        list.add_partition_offset(&checkpoint.topic, *partition, Offset::Offset(*offset))?;
    }
    // A new lake has nothing to commit yet (Kafka refuses an empty commit).
    if list.count() > 0 {
        consumer
            .commit(&list, CommitMode::Sync)
            .context("committing the offsets")?;
    }
    Ok(())
}

/// Replaces `path` atomically: write a hidden temporary file, fsync it, rename it.
///
/// A rename within a folder is atomic: readers see the old file or the new one, never
/// half of one. The fsyncs make it survive a power cut too (a `kill -9` alone would not
/// need them, the kernel keeps the data). The temporary name starts with a dot and ends
/// in `.tmp`, so readers skip it and the restart can delete it.
fn replace(path: &Path, write: impl FnOnce(&File) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let dir = path.parent().context("a file has a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().display()
    ));
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    write(&file).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()?; // the file's bytes on disk
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(File::open(dir)?.sync_all()?) // the rename itself, durable
}

/// Deletes what a killed run left in the lake: temporary files, and files of batches
/// after `committed` (at most one batch: a batch's files all come before its checkpoint).
/// Spark's file sink does the same with the files its log does not list.
fn remove_uncommitted(dir: &Path, committed: i64) -> anyhow::Result<()> {
    // No lake yet: nothing to clean.
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // `part-000007.parquet` → "000007"; other names are not ours and stay.
        let batch = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"));
        if path.is_dir() {
            remove_uncommitted(&path, committed)?; // the year=/month=/… folders
        } else if name.ends_with(".tmp") || batch.and_then(|b| b.parse().ok()) > Some(committed) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The files' columns, in the contract's order. The partition columns (year, month, day,
/// hour) are not here: with hive partitioning they live in the folder names only, and a
/// reader (`read_parquet(..., hive_partitioning = true)`) adds them back from the paths.
fn lake_schema() -> SchemaRef {
    // The ids are nullable in the payload's schema; in the lake they are never null (we
    // rejected those rows), but the type stays the schema's.
    let text = |name| Field::new(name, DataType::Utf8, true);
    // Microseconds and an explicit UTC zone: the instant, readable by Spark and DuckDB.
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        text("order_id"),
        text("customer_id"),
        text("product_id"),
        text("category"),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Float64, false),
        Field::new("amount", DataType::Float64, false),
        text("status"),
        Field::new("event_time", utc, false),
    ]))
}
