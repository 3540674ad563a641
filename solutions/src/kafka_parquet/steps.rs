//! Steps 1 to 7 of `katas/kafka_parquet_kata`, with the kata's signatures: the answers
//! the step tests grade, and step 7's checkpoint and durable lake files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Column names the steps add around the event's own fields.
pub const KAFKA_PARTITION: &str = "kafka_partition";
pub const KAFKA_OFFSET: &str = "kafka_offset";
pub const EVENT_TIME: &str = "event_time";
/// The hive partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 4] = ["year", "month", "day", "hour"];
/// The checkpoint file inside the checkpoint directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

// ---------------------------------------------------------------- step 1

/// Step 1: a consumer in group `group_id`, auto-commit off, starting from the earliest
/// offset when the group has none.
pub fn create_consumer(bootstrap_servers: &str, group_id: &str) -> anyhow::Result<BaseConsumer> {
    consumer_config(bootstrap_servers, group_id)
        .create()
        .with_context(|| format!("creating a Kafka consumer for {bootstrap_servers}"))
}

/// The configuration of step 1's consumer (the pipeline adds its group settings to it).
pub(super) fn consumer_config(bootstrap_servers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Big fetches and a prefetch queue deeper than a batch: librdkafka keeps reading
        // while a batch is written.
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "262144");
    config
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
    poll_micro_batch(consumer, max_records, max_wait, |polled| {
        polled.context("reading a message from Kafka")
    })
}

/// Step 2's loop for any consumer; `on_poll` sees each poll's outcome (`Ok` before a
/// message is taken) and says whether the batch goes on (`Ok`, within the same
/// `max_wait`) or fails. The pipeline uses it to wait for a broker that is away.
pub(super) fn poll_micro_batch<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    max_records: usize,
    max_wait: Duration,
    mut on_poll: impl FnMut(Result<(), KafkaError>) -> anyhow::Result<()>,
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
        let message = match message {
            Ok(message) => {
                on_poll(Ok(()))?;
                message
            }
            Err(e) => {
                on_poll(Err(e))?;
                continue;
            }
        };
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
pub(super) fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a T> {
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

pub(super) type Int32Array = datafusion::arrow::array::PrimitiveArray<Int32Type>;
pub(super) type Int64Array = datafusion::arrow::array::PrimitiveArray<Int64Type>;

/// A raw micro-batch's partitions, offsets and payloads (step 2's columns), read by
/// step 3 and by the pipeline's decoder (`order_decoder::parse_lake_orders`).
pub(crate) fn raw_columns(
    raw: &RecordBatch,
) -> anyhow::Result<(
    &Int32Array,
    &Int64Array,
    &datafusion::arrow::array::BinaryArray,
)> {
    let values = raw
        .column_by_name("value")
        .context("column \"value\" missing from the raw batch")?
        .as_binary_opt::<i32>()
        .context("column \"value\" is not Binary")?;
    Ok((
        column::<Int32Array>(raw, KAFKA_PARTITION)?,
        column::<Int64Array>(raw, KAFKA_OFFSET)?,
        values,
    ))
}

/// Step 3: the payloads parsed with the 9-field schema; the malformed ones apart.
pub fn parse_orders(raw: &RecordBatch) -> anyhow::Result<(RecordBatch, RecordBatch)> {
    let (partitions, offsets, values) = raw_columns(raw)?;

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

/// A checkpoint file read as JSON; `None` when there is none yet.
pub(super) fn read_checkpoint_file<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> anyhow::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading checkpoint {}", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
    }
}

impl Checkpoint {
    /// Reads `<dir>/checkpoint.json`; `None` when the lake has never committed a batch.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        read_checkpoint_file(&dir.join(CHECKPOINT_FILE))
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
pub(super) fn write_durably(
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
