//! Kafka → hive-partitioned Parquet, exactly once: the answer you write in the interview.
//!
//! Exactly once: (1) a batch's files are named after it (`part-000007.parquet`) and appear
//! by rename; (2) `<checkpoint>/checkpoint.json` (last batch id, next offset per partition)
//! is the commit point, written after the batch's files and dead letters, atomically
//! (temporary file, fsync, rename); (3) on start, files of batches after the checkpoint's
//! (killed half written) are deleted and reading resumes at its offsets; (4) Kafka's group
//! offsets follow the checkpoint, after each batch and on start (a kill may come between).
//! A kill after a batch's dead letters but before its checkpoint sends them again: dead
//! letters are at least once (exactly once takes a Kafka transaction, as in the reference).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Datelike, Timelike};
use clap::Parser;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::{basic::Compression, file::properties::WriterProperties};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    output: PathBuf,
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    dlq: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    idle_timeout_s: u64,
}

/// The 9-field payload (ids may be null: invalid, not malformed), and the lake's row once
/// its Kafka position and event time (µs) are filled in.
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
    #[serde(skip_deserializing)]
    event_time: i64,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    batch_id: i64,
    topic: String,
    offsets: BTreeMap<i32, i64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let checkpoint_file = args.checkpoint.join("checkpoint.json");
    let mut checkpoint = Checkpoint {
        batch_id: -1,
        topic: args.topic.clone(),
        offsets: BTreeMap::new(),
    };
    if checkpoint_file.exists() {
        let bytes = fs::read(&checkpoint_file)?;
        checkpoint = serde_json::from_slice(&bytes).context("reading the checkpoint")?;
    }
    remove_uncommitted(&args.output, checkpoint.batch_id)?;

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("enable.auto.commit", "false")
        .create()?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let start = checkpoint.offsets.get(&partition.id());
        let start = start.map_or(Offset::Beginning, |o| Offset::Offset(*o));
        assignment.add_partition_offset(&args.topic, partition.id(), start)?;
    }
    consumer.assign(&assignment)?;
    commit(&consumer, &checkpoint)?;

    let mut last_record = Instant::now();
    while last_record.elapsed() < Duration::from_secs(args.idle_timeout_s) {
        let deadline = Instant::now() + Duration::from_millis(500);
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut messages = Vec::new(); // a micro-batch: up to 10,000 records or 0.5 s
        while let Some(message) = consumer.poll(left()) {
            messages.push(message?.detach());
            if messages.len() == 10_000 {
                break;
            }
        }
        if messages.is_empty() {
            continue;
        }
        let batch_id = checkpoint.batch_id + 1;
        let mut hours: BTreeMap<String, Vec<Order>> = BTreeMap::new();
        let mut dead = Vec::new();
        for m in &messages {
            checkpoint.offsets.insert(m.partition(), m.offset() + 1);
            match parse(m) {
                Ok((hour, order)) => hours.entry(hour).or_default().push(order),
                Err(reason) => dead.push((m, reason)),
            }
        }
        for (hour, rows) in &hours {
            let mut decoder = ReaderBuilder::new(lake_schema()).build_decoder()?;
            decoder.serialize(rows)?;
            let batch = decoder.flush()?.context("an hour has rows")?;
            let file = args
                .output
                .join(hour)
                .join(format!("part-{batch_id:06}.parquet"));
            replace(&file, |file| {
                let snappy = WriterProperties::builder().set_compression(Compression::SNAPPY);
                let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(snappy.build()))?;
                writer.write(&batch)?;
                Ok(writer.close().map(drop)?)
            })?;
        }
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
            delivery
                .await?
                .map_err(|(e, _)| e)
                .context("sending a dead letter")?;
        }
        checkpoint.batch_id = batch_id;
        let json = serde_json::to_vec(&checkpoint)?;
        replace(&checkpoint_file, |mut file| Ok(file.write_all(&json)?))?;
        commit(&consumer, &checkpoint)?;
        last_record = Instant::now();
    }
    Ok(())
}

/// The order and its hour folder, or why it is rejected: malformed JSON, then the event
/// time, then the validity rules.
fn parse(message: &OwnedMessage) -> Result<(String, Order), String> {
    let payload = message.payload().unwrap_or_default();
    let mut order: Order =
        serde_json::from_slice(payload).map_err(|e| format!("malformed: {e}"))?;
    let time = DateTime::parse_from_rfc3339(&order.timestamp)
        .map_err(|_| format!("unparsable timestamp: {:?}", order.timestamp))?
        .to_utc();
    if order.order_id.is_none() {
        return Err("null order_id".into());
    } else if order.customer_id.is_none() {
        return Err("null customer_id".into());
    } else if order.amount < 0.0 {
        return Err("negative amount".into());
    }
    (order.kafka_partition, order.kafka_offset) = (message.partition(), message.offset());
    order.event_time = time.timestamp_micros();
    let (year, month, day, hour) = (time.year(), time.month(), time.day(), time.hour());
    Ok((
        format!("year={year}/month={month}/day={day}/hour={hour}"),
        order,
    ))
}

fn commit(consumer: &BaseConsumer, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in &checkpoint.offsets {
        list.add_partition_offset(&checkpoint.topic, *partition, Offset::Offset(*offset))?;
    }
    if list.count() > 0 {
        consumer
            .commit(&list, CommitMode::Sync)
            .context("committing the offsets")?;
    }
    Ok(())
}

/// Replaces `path` atomically: a hidden temporary file, fsync, rename.
fn replace(path: &Path, write: impl FnOnce(&File) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let dir = path.parent().context("a file has a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().display()
    ));
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    write(&file).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(File::open(dir)?.sync_all()?) // the rename itself, durable
}

/// Deletes what a killed run left: temporary files, files of batches after `committed`.
fn remove_uncommitted(dir: &Path, committed: i64) -> anyhow::Result<()> {
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
        let batch = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"));
        if path.is_dir() {
            remove_uncommitted(&path, committed)?;
        } else if name.ends_with(".tmp") || batch.and_then(|b| b.parse().ok()) > Some(committed) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The files' columns: the partition columns are in the folder names, not in the files.
fn lake_schema() -> SchemaRef {
    let text = |name| Field::new(name, DataType::Utf8, true);
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
