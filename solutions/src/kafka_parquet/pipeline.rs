//! The production ingestion job the `kafka_to_parquet` binary runs ([`run`]): the steps
//! in a loop of batches, with dead letters, a checkpoint, restarts and logs.
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
//!    The same offsets are then committed through the consumer too: nothing new for
//!    Kafka, but librdkafka's mock cluster does not keep a transaction's offsets.
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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerGroupMetadata};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tracing::{debug, info, warn};

use super::steps::{
    Checkpoint, DeadLetter, Int32Array, Int64Array, KAFKA_OFFSET, KAFKA_PARTITION,
    add_partition_columns, batch_id_of, column, create_consumer, filter_invalid, parse_orders,
    read_micro_batch, to_event_time, write_lake_files,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// What [`run`] needs to know (the binary's flags).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub bootstrap_servers: String,
    /// The topic of order events.
    pub input: String,
    /// The dead-letter topic.
    pub dlq: String,
    pub group: String,
    pub lake_dir: PathBuf,
    pub checkpoint_dir: PathBuf,
    /// Most records in one batch, so most rows in one file.
    pub batch_size: usize,
    /// How long a batch waits for records once started.
    pub batch_wait: Duration,
    /// Stop after this long without a record; `None` runs until stopped.
    pub idle_timeout: Option<Duration>,
}

/// What a run did (this run only; the checkpoint keeps the totals since the start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PipelineCounts {
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
pub fn run(config: &PipelineConfig, stop: &AtomicBool) -> anyhow::Result<PipelineCounts> {
    let o = config;
    ensure!(o.batch_size > 0, "--max-batch must be at least 1");
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

    let mut counts = PipelineCounts::default();
    let mut checkpoint = match Checkpoint::load(&o.checkpoint_dir)? {
        Some(c) => {
            ensure!(
                c.topic == o.input,
                "the checkpoint in {} is for topic {:?}, not {:?}",
                o.checkpoint_dir.display(),
                c.topic,
                o.input
            );
            info!(batch_id = c.batch_id, offsets = ?c.offsets, "resuming from the checkpoint");
            c
        }
        None => {
            info!("no checkpoint: starting a new lake");
            Checkpoint {
                topic: o.input.clone(),
                ..Checkpoint::default()
            }
        }
    };
    let committed_batch = (!checkpoint.offsets.is_empty()).then_some(checkpoint.batch_id);
    counts.removed_files = remove_uncommitted_files(&o.lake_dir, committed_batch)?;

    let consumer = create_consumer(&o.bootstrap_servers, &o.group)?;
    let group = consumer
        .group_metadata()
        .context("the consumer has no group metadata")?;
    let producer = dlq_producer(o)?;

    // Kafka behind the checkpoint: the last batch's transaction never committed.
    if !checkpoint.offsets.is_empty() {
        let kafka = committed_offsets(&consumer, &o.input, &checkpoint.offsets)?;
        if kafka != checkpoint.offsets {
            warn!(?kafka, checkpoint = ?checkpoint.offsets,
                dead_letters = checkpoint.dead_letters.len(),
                "Kafka offsets behind the checkpoint: replaying the last batch's transaction");
            send_transaction(&producer, &group, o, &checkpoint)?;
            commit_through_consumer(&consumer, &o.input, &checkpoint.offsets)?;
            counts.replayed_dead_letters = checkpoint.dead_letters.len() as u64;
        }
    }

    assign_from(&consumer, &o.input, &checkpoint.offsets)?;
    let start_batch = committed_batch_after(&checkpoint);
    let start_offsets = checkpoint.offsets.clone();

    // Two stages, one batch between them: this thread reads and transforms batch N+1
    // while the writer puts batch N into the lake, the checkpoint and Kafka, in order.
    // Only the writer changes durable state, so a crash still loses at most batch N.
    let (to_writer, from_reader) = std::sync::mpsc::sync_channel::<Prepared>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for batch in from_reader {
                commit_prepared(
                    o,
                    &consumer,
                    &producer,
                    &group,
                    &mut checkpoint,
                    &mut counts,
                    batch,
                )?;
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
    Ok(counts)
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
    o: &PipelineConfig,
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
        let raw = read_micro_batch(consumer, o.batch_size, o.batch_wait)?;
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
    o: &PipelineConfig,
    consumer: &BaseConsumer,
    producer: &BaseProducer<DefaultProducerContext>,
    group: &ConsumerGroupMetadata,
    checkpoint: &mut Checkpoint,
    counts: &mut PipelineCounts,
    batch: Prepared,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let files = write_lake_files(
        &batch.valid,
        &o.lake_dir,
        batch.batch_id,
        &o.input,
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
        topic: o.input.clone(),
        offsets: batch.next,
        dead_letters: batch.dead_letters,
        totals,
    };
    checkpoint.store(&o.checkpoint_dir)?;
    let checkpointed = started.elapsed();
    send_transaction(producer, group, o, checkpoint)?;
    commit_through_consumer(consumer, &o.input, &checkpoint.offsets)?;

    counts.batches += 1;
    counts.read += batch.read as u64;
    counts.written += batch.valid.num_rows() as u64;
    counts.dead_letters += checkpoint.dead_letters.len() as u64;
    counts.files += files.len() as u64;
    counts.ingest_seconds = batch.first_record.elapsed().as_secs_f64();
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

fn dlq_producer(o: &PipelineConfig) -> anyhow::Result<BaseProducer<DefaultProducerContext>> {
    let producer: BaseProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap_servers)
        // One id per job: a restart fences the killed process and aborts its transaction.
        .set("transactional.id", format!("{}-{}-dlq", o.group, o.input))
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
    o: &PipelineConfig,
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
                value: Some(o.input.as_str()),
            })
            .insert(Header {
                key: "dlq.partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq.offset",
                value: Some(offset.as_str()),
            });
        let mut record = BaseRecord::<[u8], [u8]>::to(&o.dlq).headers(headers);
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
        offsets.add_partition_offset(&o.input, *partition, Offset::Offset(*offset))?;
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

/// The transaction's offsets committed through the consumer as well. Kafka has them
/// already; a broker that does not keep a transaction's offsets (librdkafka's mock
/// cluster, the tests' default broker) would otherwise find them behind the checkpoint
/// at every start and send the last batch's dead letters again.
fn commit_through_consumer(
    consumer: &BaseConsumer,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    kafka_retry::retry(
        "committing the offsets through the consumer",
        kafka_retry::DEADLINE,
        || consumer.commit(&list, CommitMode::Sync),
    )?;
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
