//! Kafka → Parquet data lake, exactly once: the reference of `kafka_parquet_kata`.
//!
//! Steps 1–7 have the kata's signatures; [`run_pipeline`] strings them together into
//! the runnable ingestion job (`cargo run -p solutions --bin kafka_to_parquet`).
//!
//! # Exactly once, in a few lines
//!
//! The lake and the checkpoint live on the file system, the offsets and the dead letters
//! in Kafka, so there is no single transaction; the design is Spark's file sink made
//! deterministic:
//!
//! 1. **The checkpoint is the commit point.** `<checkpoint>/checkpoint.json` holds the last
//!    committed batch id and, per Kafka partition, the next offset to read. It is replaced
//!    atomically: written to a temporary file, `fsync`ed, renamed, directory `fsync`ed.
//! 2. **Files are named after their batch** (`part-<batch id>-<hash of the offset range>`),
//!    written to a hidden temporary name, `fsync`ed and renamed into
//!    `year=…/month=…/day=…/hour=…/` *before* the checkpoint names the batch as committed.
//! 3. **On restart** the job reads the checkpoint, deletes the temporary files and the
//!    `part-` files of the batch after the committed one (the batch that died half
//!    written), and assigns the partitions at the checkpoint's offsets, so that batch is
//!    read again and written again, whole. A lock file keeps a second job off the folder.
//! 4. **Dead letters and Kafka offsets go in one Kafka transaction**, after the checkpoint.
//!    The checkpoint carries the batch's dead letters, so when a restart finds Kafka's
//!    committed offsets behind the checkpoint (a crash between the checkpoint and the
//!    transaction), it replays that transaction; a transaction left open by the killed
//!    process is aborted when the new one fences it (same `transactional.id`). Readers of
//!    the dead-letter topic use `isolation.level=read_committed` (librdkafka's default).
//!
//! Speed: the job runs in two stages with one batch between them: while the writer puts
//! batch N into the lake, the checkpoint and Kafka (in that order, alone), the reader
//! reads and transforms batch N+1. Nothing durable happens in the reader, so the design
//! above is unchanged.
//!
//! Readers: a batch's files appear one rename at a time, before its checkpoint, so a query
//! that runs while a crashed batch awaits its restart can see rows that the restart then
//! deletes and writes again. A reader that must never see them keeps to the committed
//! batches: `part-<id>` with id ≤ the checkpoint's `batch_id`.
//!
//! Small files: one file per hour partition per batch, so `--max-batch` (records per
//! batch) bounds how small they get. To compact an hour, read its files as one table
//! (DuckDB `read_parquet('…/hour=14/*.parquet')`, or DataFusion), write them into one file
//! whose name does not start with `part-` (under a temporary name, then renamed), then
//! delete the `part-` files it replaces: with the job stopped, or on an hour the job no
//! longer writes to.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::DateTime;
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BinaryBuilder, BooleanArray, Float64Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt32Array,
};
use datafusion::arrow::compute::kernels::temporal::{DatePart, date_part};
use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{
    DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use fixtures::events::{OrderEvent, order_event_schema};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerGroupMetadata};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

/// Column names the steps add around the event's own fields.
pub const KAFKA_PARTITION: &str = "kafka_partition";
pub const KAFKA_OFFSET: &str = "kafka_offset";
pub const EVENT_TIME: &str = "event_time";
/// The hive partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 4] = ["year", "month", "day", "hour"];
/// The checkpoint file inside the checkpoint directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

const TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- step 1

/// Step 1: a consumer in group `group_id`, auto-commit off, starting from the earliest
/// offset when the group has none.
pub fn create_consumer(bootstrap_servers: &str, group_id: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Big fetches and a prefetch queue deeper than a batch: librdkafka keeps reading
        // while a batch is written.
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "262144")
        .create()
        .with_context(|| format!("creating a Kafka consumer for {bootstrap_servers}"))
}

// ---------------------------------------------------------------- step 2

/// The schema of a micro-batch as read from Kafka (step 2).
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(KAFKA_PARTITION, DataType::Int32, false),
        Field::new(KAFKA_OFFSET, DataType::Int64, false),
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
    ]))
}

/// Step 2: up to `max_records` messages, waiting at most `max_wait` in all.
pub fn read_micro_batch(
    consumer: &BaseConsumer,
    max_records: usize,
    max_wait: Duration,
) -> anyhow::Result<RecordBatch> {
    let deadline = Instant::now() + max_wait;
    let mut partitions = Int32Builder::with_capacity(max_records.min(1 << 20));
    let mut offsets = Int64Builder::with_capacity(max_records.min(1 << 20));
    let mut keys = BinaryBuilder::new();
    let mut values = BinaryBuilder::new();
    while partitions.len() < max_records {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(message) = consumer.poll(left) else {
            break;
        };
        let message = message.context("reading a message from Kafka")?;
        partitions.append_value(message.partition());
        offsets.append_value(message.offset());
        keys.append_option(message.key());
        values.append_option(message.payload());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(partitions.finish()),
        Arc::new(offsets.finish()),
        Arc::new(keys.finish()),
        Arc::new(values.finish()),
    ];
    Ok(RecordBatch::try_new(raw_schema(), columns)?)
}

// ---------------------------------------------------------------- step 3

/// The schema of rejected records (steps 3, 4 and 6).
pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(KAFKA_PARTITION, DataType::Int32, false),
        Field::new(KAFKA_OFFSET, DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

fn rejected_batch(rows: Vec<(i32, i64, String)>) -> anyhow::Result<RecordBatch> {
    let mut partitions = Int32Builder::with_capacity(rows.len());
    let mut offsets = Int64Builder::with_capacity(rows.len());
    let mut reasons = StringBuilder::new();
    for (partition, offset, reason) in rows {
        partitions.append_value(partition);
        offsets.append_value(offset);
        reasons.append_value(reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(partitions.finish()),
        Arc::new(offsets.finish()),
        Arc::new(reasons.finish()),
    ];
    Ok(RecordBatch::try_new(rejected_schema(), columns)?)
}

/// The schema of parsed orders: the Kafka position, then the payload's 9 fields.
pub fn parsed_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(KAFKA_PARTITION, DataType::Int32, false),
        Field::new(KAFKA_OFFSET, DataType::Int64, false),
    ];
    fields.extend(
        order_event_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone()),
    );
    Arc::new(Schema::new(fields))
}

/// Looks a column up by name with its expected type, naming both on failure.
fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
    let array = batch
        .column_by_name(name)
        .with_context(|| format!("column {name:?} missing from {}", batch.schema()))?;
    array.as_any().downcast_ref::<T>().with_context(|| {
        format!(
            "column {name:?} has type {}, not the one expected",
            array.data_type()
        )
    })
}

type Int32Array = datafusion::arrow::array::PrimitiveArray<Int32Type>;
type Int64Array = datafusion::arrow::array::PrimitiveArray<Int64Type>;

/// Step 3: the payloads parsed with the 9-field schema; the malformed ones apart.
pub fn parse_orders(raw: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    let partitions = column::<Int32Array>(raw, KAFKA_PARTITION)?;
    let offsets = column::<Int64Array>(raw, KAFKA_OFFSET)?;
    let values = raw
        .column_by_name("value")
        .context("column \"value\" missing from the raw batch")?
        .as_binary_opt::<i32>()
        .context("column \"value\" is not Binary")?;

    let n = raw.num_rows();
    let mut out_partitions = Int32Builder::with_capacity(n);
    let mut out_offsets = Int64Builder::with_capacity(n);
    let mut order_id = StringBuilder::new();
    let mut customer_id = StringBuilder::new();
    let mut product_id = StringBuilder::new();
    let mut category = StringBuilder::new();
    let mut quantity = Int32Builder::with_capacity(n);
    let mut unit_price = Float64Builder::with_capacity(n);
    let mut amount = Float64Builder::with_capacity(n);
    let mut status = StringBuilder::new();
    let mut timestamp = StringBuilder::new();
    let mut rejected = Vec::new();

    for row in 0..n {
        let (partition, offset) = (partitions.value(row), offsets.value(row));
        if values.is_null(row) {
            rejected.push((partition, offset, "malformed: no value".to_string()));
            continue;
        }
        let event: OrderEvent = match serde_json::from_slice(values.value(row)) {
            Ok(event) => event,
            Err(e) => {
                rejected.push((partition, offset, format!("malformed: {e}")));
                continue;
            }
        };
        out_partitions.append_value(partition);
        out_offsets.append_value(offset);
        order_id.append_option(event.order_id);
        customer_id.append_option(event.customer_id);
        product_id.append_value(event.product_id);
        category.append_value(event.category);
        quantity.append_value(event.quantity);
        unit_price.append_value(event.unit_price);
        amount.append_value(event.amount);
        status.append_value(event.status);
        timestamp.append_value(event.timestamp);
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(out_partitions.finish()),
        Arc::new(out_offsets.finish()),
        Arc::new(order_id.finish()),
        Arc::new(customer_id.finish()),
        Arc::new(product_id.finish()),
        Arc::new(category.finish()),
        Arc::new(quantity.finish()),
        Arc::new(unit_price.finish()),
        Arc::new(amount.finish()),
        Arc::new(status.finish()),
        Arc::new(timestamp.finish()),
    ];
    let parsed = RecordBatch::try_new(parsed_schema(), columns)?;
    Ok((parsed, rejected_batch(rejected)?))
}

// ---------------------------------------------------------------- step 4

fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Step 4: `timestamp` (RFC 3339 text) becomes `event_time` (µs, UTC), last column.
pub fn to_event_time(orders: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    let partitions = column::<Int32Array>(orders, KAFKA_PARTITION)?;
    let offsets = column::<Int64Array>(orders, KAFKA_OFFSET)?;
    let texts = orders
        .column_by_name("timestamp")
        .context("column \"timestamp\" missing")?
        .as_string_opt::<i32>()
        .context("column \"timestamp\" is not Utf8")?;

    let mut times = TimestampMicrosecondBuilder::with_capacity(orders.num_rows());
    let mut keep = Vec::with_capacity(orders.num_rows());
    let mut rejected = Vec::new();
    for row in 0..orders.num_rows() {
        let parsed = texts
            .is_valid(row)
            .then(|| DateTime::parse_from_rfc3339(texts.value(row)).ok())
            .flatten();
        match parsed {
            Some(t) => {
                times.append_value(t.timestamp_micros());
                keep.push(true);
            }
            None => {
                let shown = if texts.is_valid(row) {
                    format!("{:?}", texts.value(row))
                } else {
                    "null".to_string()
                };
                rejected.push((
                    partitions.value(row),
                    offsets.value(row),
                    format!("unparsable timestamp: {shown}"),
                ));
                keep.push(false);
            }
        }
    }
    let kept = filter_record_batch(orders, &BooleanArray::from(keep))?;

    let ts_index = orders.schema().index_of("timestamp")?;
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, field) in orders.schema().fields().iter().enumerate() {
        if i != ts_index {
            fields.push(field.as_ref().clone());
            columns.push(kept.column(i).clone());
        }
    }
    fields.push(Field::new(EVENT_TIME, event_time_type(), false));
    columns.push(Arc::new(times.finish().with_timezone("UTC")));
    let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok((out, rejected_batch(rejected)?))
}

// ---------------------------------------------------------------- step 5

/// Step 5: `year`, `month`, `day`, `hour` (Int32, UTC) appended from `event_time`.
pub fn add_partition_columns(orders: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let event_time = orders
        .column_by_name(EVENT_TIME)
        .context("column \"event_time\" missing")?;
    ensure!(
        event_time.data_type() == &event_time_type(),
        "column \"event_time\" has type {}, expected {}",
        event_time.data_type(),
        event_time_type()
    );
    let mut fields: Vec<Field> = orders
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = orders.columns().to_vec();
    for (name, part) in PARTITION_COLUMNS.into_iter().zip([
        DatePart::Year,
        DatePart::Month,
        DatePart::Day,
        DatePart::Hour,
    ]) {
        fields.push(Field::new(name, DataType::Int32, false));
        columns.push(date_part(event_time.as_ref(), part)?);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

// ---------------------------------------------------------------- step 6

/// Step 6: rows with a null `order_id`/`customer_id` or a negative `amount` set apart.
pub fn filter_invalid(orders: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    let partitions = column::<Int32Array>(orders, KAFKA_PARTITION)?;
    let offsets = column::<Int64Array>(orders, KAFKA_OFFSET)?;
    let order_id = orders
        .column_by_name("order_id")
        .context("column \"order_id\" missing")?;
    let customer_id = orders
        .column_by_name("customer_id")
        .context("column \"customer_id\" missing")?;
    let amount = orders
        .column_by_name("amount")
        .context("column \"amount\" missing")?
        .as_primitive_opt::<datafusion::arrow::datatypes::Float64Type>()
        .context("column \"amount\" is not Float64")?;

    let mut keep = Vec::with_capacity(orders.num_rows());
    let mut rejected = Vec::new();
    for row in 0..orders.num_rows() {
        let reason = if order_id.is_null(row) {
            Some("null order_id")
        } else if customer_id.is_null(row) {
            Some("null customer_id")
        } else if amount.is_valid(row) && amount.value(row) < 0.0 {
            Some("negative amount")
        } else {
            None
        };
        keep.push(reason.is_none());
        if let Some(reason) = reason {
            rejected.push((
                partitions.value(row),
                offsets.value(row),
                reason.to_string(),
            ));
        }
    }
    let valid = filter_record_batch(orders, &BooleanArray::from(keep))?;
    Ok((valid, rejected_batch(rejected)?))
}

// ---------------------------------------------------------------- step 7

/// What `checkpoint.json` holds. Steps 7 writes `batch_id`, `topic` and `offsets`; the
/// pipeline adds the batch's dead letters and running totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last batch whose files are all in the lake.
    pub batch_id: u64,
    pub topic: String,
    /// Per Kafka partition, the next offset to read.
    pub offsets: BTreeMap<i32, i64>,
    /// The dead letters of batch `batch_id`, replayed if their transaction did not commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<DeadLetter>,
    #[serde(default)]
    pub totals: Totals,
}

/// Counts since the lake was started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub batches: u64,
    pub read: u64,
    pub written: u64,
    pub dead_letters: u64,
    pub files: u64,
}

/// A rejected record on its way to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    #[serde(with = "hex_bytes", default)]
    pub key: Option<Vec<u8>>,
    #[serde(with = "hex_bytes", default)]
    pub value: Option<Vec<u8>>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            None => s.serialize_none(),
            Some(b) => s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("hex text of odd length"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(D::Error::custom))
            .collect::<Result<Vec<u8>, _>>()
            .map(Some)
    }
}

impl Checkpoint {
    /// Reads `<dir>/checkpoint.json`; `None` when the lake has never committed a batch.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(CHECKPOINT_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading checkpoint {}", path.display()))
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
        }
    }

    /// Replaces `<dir>/checkpoint.json` atomically and durably.
    pub fn store(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let bytes = serde_json::to_vec_pretty(self)?;
        write_durably(&dir.join(CHECKPOINT_FILE), |file| {
            Ok(file.write_all(&bytes)?)
        })
    }
}

/// Writes `path` through a hidden temporary file: write, fsync, rename, fsync the directory.
fn write_durably(
    path: &Path,
    write: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    let name = path.file_name().context("a file path has a name")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    write(&mut file).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// 64-bit FNV-1a: a stable fingerprint of a batch's offset range for its file names.
fn fingerprint(topic: &str, offsets: &BTreeMap<i32, i64>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(topic.as_bytes());
    for (partition, offset) in offsets {
        eat(&partition.to_le_bytes());
        eat(&offset.to_le_bytes());
    }
    hash
}

fn part_file_name(batch_id: u64, topic: &str, offsets: &BTreeMap<i32, i64>) -> String {
    format!(
        "part-{batch_id:010}-{:016x}.snappy.parquet",
        fingerprint(topic, offsets)
    )
}

/// The batch id in a `part-` file name, `None` for other files.
fn batch_id_of(file_name: &str) -> Option<u64> {
    file_name.strip_prefix("part-")?.get(..10)?.parse().ok()
}

/// Writes the rows of `orders` under `lake_dir`, one file per hive partition, named after
/// the batch; the partition columns go into the path, not the file. Returns the files.
pub fn write_lake_files(
    orders: &RecordBatch,
    lake_dir: &Path,
    batch_id: u64,
    topic: &str,
    next_offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<Vec<PathBuf>> {
    let keys: Vec<&Int32Array> = PARTITION_COLUMNS
        .iter()
        .map(|name| column::<Int32Array>(orders, name))
        .collect::<anyhow::Result<_>>()?;
    let mut rows: BTreeMap<[i32; 4], Vec<u32>> = BTreeMap::new();
    for row in 0..orders.num_rows() {
        let key = [0, 1, 2, 3].map(|i| keys[i].value(row));
        rows.entry(key).or_default().push(row as u32);
    }

    let schema = orders.schema();
    let data_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !PARTITION_COLUMNS.contains(&schema.field(*i).name().as_str()))
        .collect();
    let file_schema = Arc::new(schema.project(&data_columns)?);
    let name = part_file_name(batch_id, topic, next_offsets);
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();

    let mut files = Vec::with_capacity(rows.len());
    for ([year, month, day, hour], indices) in rows {
        let dir = lake_dir.join(format!("year={year}/month={month}/day={day}/hour={hour}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let part =
            take_record_batch(orders, &UInt32Array::from(indices))?.project(&data_columns)?;
        let path = dir.join(&name);
        write_durably(&path, |file| {
            let mut writer =
                ArrowWriter::try_new(file, file_schema.clone(), Some(properties.clone()))?;
            writer.write(&part)?;
            writer.close()?;
            Ok(())
        })?;
        files.push(path);
    }
    Ok(files)
}

/// The offsets of a topic-partition list, which must all be for `topic` and absolute.
fn offsets_of(list: &TopicPartitionList) -> anyhow::Result<(String, BTreeMap<i32, i64>)> {
    let elements = list.elements();
    let topic = elements
        .first()
        .context("no partition in the offsets to commit")?
        .topic()
        .to_string();
    let mut offsets = BTreeMap::new();
    for e in elements {
        ensure!(
            e.topic() == topic,
            "offsets for two topics ({topic}, {}) in one batch",
            e.topic()
        );
        let Offset::Offset(offset) = e.offset() else {
            bail!(
                "offset of {}[{}] is {:?}, not an absolute offset",
                e.topic(),
                e.partition(),
                e.offset()
            );
        };
        offsets.insert(e.partition(), offset);
    }
    Ok((topic, offsets))
}

/// Step 7: the batch into the lake, then the checkpoint, then the offsets into Kafka.
pub async fn commit_batch(
    consumer: &BaseConsumer,
    orders: &RecordBatch,
    lake_dir: &Path,
    checkpoint_dir: &Path,
    batch_id: u64,
    next_offsets: &TopicPartitionList,
) -> anyhow::Result<Vec<PathBuf>> {
    let (topic, offsets) = offsets_of(next_offsets)?;
    let files = write_lake_files(orders, lake_dir, batch_id, &topic, &offsets)?;
    Checkpoint {
        batch_id,
        topic,
        offsets,
        ..Checkpoint::default()
    }
    .store(checkpoint_dir)?;
    kafka_retry::retry(
        "committing the offsets to Kafka",
        kafka_retry::DEADLINE,
        || consumer.commit(next_offsets, CommitMode::Sync),
    )?;
    Ok(files)
}

// ---------------------------------------------------------------- the pipeline

/// The options of [`run_pipeline`] (the binary's flags).
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub bootstrap_servers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group_id: String,
    pub lake_dir: PathBuf,
    pub checkpoint_dir: PathBuf,
    /// Most records in one batch, so most rows in one file.
    pub max_batch: usize,
    /// How long a batch waits for records once started.
    pub max_wait: Duration,
    /// Stop after this long without a record; `None` runs until stopped.
    pub idle_timeout: Option<Duration>,
}

/// What a run did (this run only; the checkpoint keeps the totals since the start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub batches: u64,
    pub read: u64,
    pub written: u64,
    pub dead_letters: u64,
    pub files: u64,
    /// Dead letters of the checkpointed batch sent again after a crash.
    pub replayed_dead_letters: u64,
    /// Files of an uncommitted batch removed at start.
    pub removed_files: u64,
    /// From the first record read to the last batch committed, in seconds.
    pub ingest_seconds: f64,
}

/// Runs the ingestion until `stop` is set or the idle timeout passes.
pub fn run_pipeline(options: &PipelineOptions, stop: &AtomicBool) -> anyhow::Result<RunSummary> {
    let o = options;
    ensure!(o.max_batch > 0, "--max-batch must be at least 1");
    fs::create_dir_all(&o.checkpoint_dir)
        .with_context(|| format!("creating {}", o.checkpoint_dir.display()))?;
    fs::create_dir_all(&o.lake_dir)
        .with_context(|| format!("creating {}", o.lake_dir.display()))?;
    // One writer per checkpoint: a second job on the same folders would break the design.
    let lock_path = o.checkpoint_dir.join("lock");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another kafka_to_parquet holds {}; one job per checkpoint folder",
            lock_path.display()
        )
    })?;

    let mut summary = RunSummary::default();
    let mut checkpoint = match Checkpoint::load(&o.checkpoint_dir)? {
        Some(c) => {
            ensure!(
                c.topic == o.topic,
                "the checkpoint in {} is for topic {:?}, not {:?}",
                o.checkpoint_dir.display(),
                c.topic,
                o.topic
            );
            info!(batch_id = c.batch_id, offsets = ?c.offsets, "resuming from the checkpoint");
            c
        }
        None => {
            info!("no checkpoint: starting a new lake");
            Checkpoint {
                topic: o.topic.clone(),
                ..Checkpoint::default()
            }
        }
    };
    let committed_batch = (!checkpoint.offsets.is_empty()).then_some(checkpoint.batch_id);
    summary.removed_files = remove_uncommitted_files(&o.lake_dir, committed_batch)?;

    let consumer = create_consumer(&o.bootstrap_servers, &o.group_id)?;
    let group = consumer
        .group_metadata()
        .context("the consumer has no group metadata")?;
    let producer = dlq_producer(o)?;

    // Kafka behind the checkpoint: the last batch's transaction never committed.
    if !checkpoint.offsets.is_empty() {
        let kafka = committed_offsets(&consumer, &o.topic, &checkpoint.offsets)?;
        if kafka != checkpoint.offsets {
            warn!(?kafka, checkpoint = ?checkpoint.offsets,
                dead_letters = checkpoint.dead_letters.len(),
                "Kafka offsets behind the checkpoint: replaying the last batch's transaction");
            send_transaction(&producer, &group, o, &checkpoint)?;
            summary.replayed_dead_letters = checkpoint.dead_letters.len() as u64;
        }
    }

    assign_from(&consumer, &o.topic, &checkpoint.offsets)?;
    let start_batch = committed_batch_after(&checkpoint);
    let start_offsets = checkpoint.offsets.clone();

    // Two stages, one batch between them: this thread reads and transforms batch N+1
    // while the writer puts batch N into the lake, the checkpoint and Kafka, in order.
    // Only the writer changes durable state, so a crash still loses at most batch N.
    let (to_writer, from_reader) = std::sync::mpsc::sync_channel::<Prepared>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for batch in from_reader {
                commit_prepared(o, &producer, &group, &mut checkpoint, &mut summary, batch)?;
            }
            anyhow::Ok(())
        });
        let read = read_stage(o, &consumer, stop, start_batch, start_offsets, to_writer);
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        // A writer error closes the channel, which stops the reader: report the cause.
        written.and(read)
    })?;
    // Leave the group's view clean for the next run (assign-only: nothing to revoke).
    consumer.unassign().ok();
    Ok(summary)
}

/// A batch read and transformed, ready for the lake.
struct Prepared {
    batch_id: u64,
    read: usize,
    valid: RecordBatch,
    dead_letters: Vec<DeadLetter>,
    next: BTreeMap<i32, i64>,
    rejected: [usize; 3],
    first_record: Instant,
    read_ms: u64,
    transform_ms: u64,
}

/// Reads and transforms batches until stopped, idle, or the writer goes away.
fn read_stage(
    o: &PipelineOptions,
    consumer: &BaseConsumer,
    stop: &AtomicBool,
    mut batch_id: u64,
    mut next: BTreeMap<i32, i64>,
    to_writer: std::sync::mpsc::SyncSender<Prepared>,
) -> anyhow::Result<()> {
    let mut last_record = Instant::now();
    let mut first_record: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let read_started = Instant::now();
        let raw = read_micro_batch(consumer, o.max_batch, o.max_wait)?;
        let read_ms = read_started.elapsed().as_millis() as u64;
        if raw.num_rows() == 0 {
            if let Some(idle) = o.idle_timeout
                && last_record.elapsed() >= idle
            {
                info!(idle_s = idle.as_secs_f64(), "idle timeout: stopping");
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let started = Instant::now();

        let (parsed, malformed) = parse_orders(&raw)?;
        let (timed, bad_time) = to_event_time(&parsed)?;
        let partitioned = add_partition_columns(&timed)?;
        let (valid, invalid) = filter_invalid(&partitioned)?;

        let partitions = column::<Int32Array>(&raw, KAFKA_PARTITION)?;
        let offsets = column::<Int64Array>(&raw, KAFKA_OFFSET)?;
        for row in 0..raw.num_rows() {
            let entry = next.entry(partitions.value(row)).or_insert(0);
            *entry = (*entry).max(offsets.value(row) + 1);
        }
        let prepared = Prepared {
            batch_id,
            read: raw.num_rows(),
            dead_letters: dead_letters(&raw, [&malformed, &bad_time, &invalid])?,
            valid,
            next: next.clone(),
            rejected: [
                malformed.num_rows(),
                bad_time.num_rows(),
                invalid.num_rows(),
            ],
            first_record: *first_record.get_or_insert(read_started),
            read_ms,
            transform_ms: started.elapsed().as_millis() as u64,
        };
        if to_writer.send(prepared).is_err() {
            break; // the writer failed; its error is the one reported
        }
        batch_id += 1;
    }
    Ok(())
}

/// Batch N into the lake, then the checkpoint, then its Kafka transaction.
fn commit_prepared(
    o: &PipelineOptions,
    producer: &BaseProducer<DefaultProducerContext>,
    group: &ConsumerGroupMetadata,
    checkpoint: &mut Checkpoint,
    summary: &mut RunSummary,
    batch: Prepared,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let files = write_lake_files(
        &batch.valid,
        &o.lake_dir,
        batch.batch_id,
        &o.topic,
        &batch.next,
    )?;
    let written = started.elapsed();

    let mut totals = checkpoint.totals;
    totals.batches += 1;
    totals.read += batch.read as u64;
    totals.written += batch.valid.num_rows() as u64;
    totals.dead_letters += batch.dead_letters.len() as u64;
    totals.files += files.len() as u64;
    *checkpoint = Checkpoint {
        batch_id: batch.batch_id,
        topic: o.topic.clone(),
        offsets: batch.next,
        dead_letters: batch.dead_letters,
        totals,
    };
    checkpoint.store(&o.checkpoint_dir)?;
    let checkpointed = started.elapsed();
    send_transaction(producer, group, o, checkpoint)?;

    summary.batches += 1;
    summary.read += batch.read as u64;
    summary.written += batch.valid.num_rows() as u64;
    summary.dead_letters += checkpoint.dead_letters.len() as u64;
    summary.files += files.len() as u64;
    summary.ingest_seconds = batch.first_record.elapsed().as_secs_f64();
    let [malformed, bad_timestamp, invalid] = batch.rejected;
    info!(
        batch_id = batch.batch_id,
        read = batch.read,
        written = batch.valid.num_rows(),
        malformed,
        bad_timestamp,
        invalid,
        files = files.len(),
        offsets = ?checkpoint.offsets,
        read_ms = batch.read_ms,
        transform_ms = batch.transform_ms,
        write_ms = written.as_millis() as u64,
        checkpoint_ms = (checkpointed - written).as_millis() as u64,
        kafka_ms = (started.elapsed() - checkpointed).as_millis() as u64,
        "batch committed"
    );
    Ok(())
}

/// The id of the batch after the checkpoint's (0 for a new lake).
fn committed_batch_after(checkpoint: &Checkpoint) -> u64 {
    if checkpoint.offsets.is_empty() {
        0
    } else {
        checkpoint.batch_id + 1
    }
}

/// Deletes temporary files and the `part-` files of the batch after `committed` (the one
/// that was being written when the job stopped). Files of any later batch cannot come
/// from this checkpoint: the job refuses to touch them.
fn remove_uncommitted_files(lake_dir: &Path, committed: Option<u64>) -> anyhow::Result<u64> {
    let in_flight = committed.map_or(0, |c| c + 1);
    let mut removed = 0;
    let mut stack = vec![lake_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let batch = batch_id_of(&name);
            if let Some(id) = batch {
                ensure!(
                    id <= in_flight,
                    "{} belongs to batch {id}, but the checkpoint has committed {}: \
                     this lake was written with another checkpoint folder",
                    path.display(),
                    committed.map_or("no batch".to_string(), |c| format!("batch {c}"))
                );
            }
            if name.ends_with(".tmp") || batch == Some(in_flight) {
                warn!(file = %path.display(), "removing a file of an uncommitted batch");
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The group's committed offsets for the checkpoint's partitions (-1: none).
fn committed_offsets(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &BTreeMap<i32, i64>,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut list = TopicPartitionList::new();
    for partition in partitions.keys() {
        list.add_partition(topic, *partition);
    }
    let committed = kafka_retry::retry(
        "reading the group's committed offsets",
        kafka_retry::DEADLINE,
        || consumer.committed_offsets(list.clone(), TIMEOUT),
    )?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect())
}

/// Assigns every partition of `topic`: at the checkpoint's offset, else the beginning.
fn assign_from(
    consumer: &BaseConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let metadata = kafka_retry::retry(
        &format!("reading the metadata of topic {topic}"),
        kafka_retry::DEADLINE,
        || consumer.fetch_metadata(Some(topic), TIMEOUT),
    )?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ensure!(
        !partitions.is_empty(),
        "topic {topic} not found (or has no partition) on the broker"
    );
    let mut list = TopicPartitionList::new();
    for partition in partitions {
        let start = offsets
            .get(&partition)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        list.add_partition_offset(topic, partition, start)?;
    }
    info!(topic, assignment = ?list.elements().iter().map(|e| (e.partition(), e.offset())).collect::<Vec<_>>(), "assigned");
    consumer.assign(&list).context("assigning the partitions")?;
    Ok(())
}

fn dlq_producer(o: &PipelineOptions) -> anyhow::Result<BaseProducer<DefaultProducerContext>> {
    let producer: BaseProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap_servers)
        // One id per job: a restart fences the killed process and aborts its transaction.
        .set(
            "transactional.id",
            format!("{}-{}-dlq", o.group_id, o.topic),
        )
        .set("linger.ms", "5")
        .create()
        .context("creating the dead-letter producer")?;
    kafka_retry::retry(
        "initialising the dead-letter transactions",
        kafka_retry::DEADLINE,
        || producer.init_transactions(TIMEOUT),
    )?;
    Ok(producer)
}

/// One Kafka transaction: the checkpoint's dead letters and its offsets.
fn send_transaction(
    producer: &BaseProducer<DefaultProducerContext>,
    group: &ConsumerGroupMetadata,
    o: &PipelineOptions,
    checkpoint: &Checkpoint,
) -> anyhow::Result<()> {
    let started = Instant::now();
    producer.begin_transaction()?;
    for letter in &checkpoint.dead_letters {
        let (partition, offset) = (letter.partition.to_string(), letter.offset.to_string());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq.reason",
                value: Some(letter.reason.as_str()),
            })
            .insert(Header {
                key: "dlq.topic",
                value: Some(o.topic.as_str()),
            })
            .insert(Header {
                key: "dlq.partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq.offset",
                value: Some(offset.as_str()),
            });
        let mut record = BaseRecord::<[u8], [u8]>::to(&o.dlq_topic).headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &letter.value {
            record = record.payload(value.as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(100));
                    record = back;
                }
                Err((e, _)) => return Err(e).context("sending a dead letter"),
            }
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in &checkpoint.offsets {
        offsets.add_partition_offset(&o.topic, *partition, Offset::Offset(*offset))?;
    }
    let sent = started.elapsed();
    kafka_retry::retry(
        "adding the offsets to the transaction",
        kafka_retry::DEADLINE,
        || producer.send_offsets_to_transaction(&offsets, group, TIMEOUT),
    )?;
    let offsets_added = started.elapsed();
    kafka_retry::retry(
        "committing the dead letters and offsets",
        kafka_retry::DEADLINE,
        || producer.commit_transaction(TIMEOUT),
    )?;
    debug!(
        dead_letters = checkpoint.dead_letters.len(),
        send_ms = sent.as_millis() as u64,
        offsets_ms = (offsets_added - sent).as_millis() as u64,
        commit_ms = (started.elapsed() - offsets_added).as_millis() as u64,
        "transaction committed"
    );
    Ok(())
}

/// The raw records behind the rejected rows, with their reasons, in offset order.
fn dead_letters(raw: &RecordBatch, rejected: [&RecordBatch; 3]) -> anyhow::Result<Vec<DeadLetter>> {
    let mut reasons: HashMap<(i32, i64), String> = HashMap::new();
    for batch in rejected {
        let partitions = column::<Int32Array>(batch, KAFKA_PARTITION)?;
        let offsets = column::<Int64Array>(batch, KAFKA_OFFSET)?;
        let why = batch
            .column_by_name("reason")
            .context("column \"reason\" missing")?
            .as_string::<i32>();
        for row in 0..batch.num_rows() {
            reasons.insert(
                (partitions.value(row), offsets.value(row)),
                why.value(row).to_string(),
            );
        }
    }
    if reasons.is_empty() {
        return Ok(Vec::new());
    }
    let partitions = column::<Int32Array>(raw, KAFKA_PARTITION)?;
    let offsets = column::<Int64Array>(raw, KAFKA_OFFSET)?;
    let keys = raw.column(2).as_binary::<i32>();
    let values = raw.column(3).as_binary::<i32>();
    let mut letters = Vec::with_capacity(reasons.len());
    for row in 0..raw.num_rows() {
        let at = (partitions.value(row), offsets.value(row));
        if let Some(reason) = reasons.remove(&at) {
            letters.push(DeadLetter {
                partition: at.0,
                offset: at.1,
                reason,
                key: keys.is_valid(row).then(|| keys.value(row).to_vec()),
                value: values.is_valid(row).then(|| values.value(row).to_vec()),
            });
        }
    }
    ensure!(
        reasons.is_empty(),
        "rejected rows not found in the raw batch: {:?}",
        reasons.keys().collect::<Vec<_>>()
    );
    Ok(letters)
}

/// The reason a dead letter was rejected (its `dlq.reason` header).
pub fn dead_letter_reason<M: Message>(message: &M) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == "dlq.reason")
            .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}
