//! The production pipeline the `kafka_stream` binary runs ([`run`]): the steps in a
//! loop of micro-batches, with per-partition watermarks, dead letters, checkpoints in
//! the committed offsets' metadata, a restart that replays exactly, and logs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{Array, AsArray, BinaryArray, BinaryBuilder};
use datafusion::arrow::datatypes::Float64Type;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::steps::{
    Malformed, WATERMARK_DELAY_MS, WINDOW_MS, WindowState, WindowTotals, add_to_windows,
    close_windows, create_clients, event_times, format_aggregates, is_on_time, parse_orders,
    read_messages, send_all, window_start, write_and_commit,
};
use crate::order_decoder::read_stream_order;

/// What the windows need of an order: its event time (ms), category and amount.
type WindowInput<'a> = (i64, &'a str, f64);

/// What a group has committed, per partition: the offset and its metadata.
type Committed = HashMap<i32, (Offset, String)>;

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
    /// How the results and the offsets reach Kafka.
    pub delivery: Delivery,
    /// How long a transaction may stay open before the broker aborts it: the longest a
    /// killed instance's open transaction holds back the instances that take over its
    /// partitions, and the longest broker outage a transaction survives (after that the
    /// producer is fenced and the instance stops).
    pub transaction_timeout: Duration,
    /// This instance's name among the instances of the group (with
    /// [`Delivery::ExactlyOnce`], its `transactional.id` is `<group>-<input>-<instance>`):
    /// a restarted instance must keep its name to fence the one it replaces.
    pub instance: String,
}

/// How [`run`] writes a micro-batch's results and commits its input offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Aggregates and dead letters delivered, then the offsets committed: a crash in
    /// between sends that micro-batch's windows again (same key, same value).
    AtLeastOnce,
    /// Aggregates, dead letters and offsets in one Kafka transaction: a reader with
    /// `isolation.level=read_committed` sees each window once, whatever the crash. The
    /// default: it costs no throughput (`bench/kafka_stream.sh --compare-delivery 5`).
    ExactlyOnce,
}

impl PipelineConfig {
    /// A configuration with the default micro-batch size and wait, exactly once, running
    /// until shut down.
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
            delivery: Delivery::ExactlyOnce,
            transaction_timeout: Duration::from_secs(60),
            instance: "0".into(),
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
    /// Seconds from the first record read to the commit of the last micro-batch
    /// (neither the group join, the wait for the first fetch, nor the final idle wait).
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
    /// The records before this offset have been read whole: their dead letters are
    /// sent, and a replay does not send them again (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_through: Option<i64>,
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
/// While steps 3 to 6 run on a worker thread for one micro-batch and step 7 delivers
/// its results, the next one is read.
///
/// Watermark. Step 4 runs per input partition, each with its own latest event time,
/// and windows close when the slowest partition's watermark passes their end (a
/// partition without records for [`PARTITION_IDLE`] stops holding it back). For a
/// single-partition topic this is exactly step 4's rule; for several partitions it
/// keeps a backlog that is read one partition chunk at a time from being dropped as
/// late (Flink's per-partition watermarks; Spark avoids the issue by advancing its
/// watermark only between micro-batches).
///
/// Delivery and restarts. After each micro-batch, the emitted windows, the dead letters
/// and the offsets are committed. A committed offset never passes a record that is
/// still in an open window: it is the position at the start of the micro-batch that
/// opened the oldest open window. Each offset's metadata holds the partition's latest
/// event time at that point, the watermark up to which windows were emitted and the
/// offset up to which records were read whole. A restarted pipeline (same group)
/// replays from there with those event times, so it takes the same late/on-time
/// decisions and rebuilds the open windows in full; the replayed records of windows
/// emitted already are dropped (counted as late), and replayed malformed records are
/// not sent to the dead-letter topic again.
///
/// Exactly once ([`Delivery::ExactlyOnce`], the default): a micro-batch's aggregates,
/// dead letters and offsets (with the consumer's group metadata) go in one Kafka
/// transaction, whose `transactional.id` is the instance's, so a restarted instance
/// fences the one it replaces and aborts its open transaction before it reads the
/// checkpoints. A transaction that fails is aborted and the pipeline rewinds to what
/// is committed, as at start-up. [`Delivery::AtLeastOnce`]: delivered, then committed;
/// a crash in between re-sends that micro-batch's windows (same key, same value).
///
/// Failures. Idle means the broker answers and every assigned partition has been read
/// to its end, not merely that no record came: while the broker is down or the group
/// rebalances the pipeline waits. When the consumer is handed its partitions again it
/// fetches from the committed offsets; the pipeline sees a partition go back and
/// rebuilds its open windows from the committed checkpoint (the same rewind), and it
/// does so too when records it had read were dropped with a read error.
///
/// Scale-out. Several instances in one group (each with its own `instance` name) need
/// input keyed by category, so that each owns whole categories. Each partition's
/// checkpoint says up to where its windows were emitted, and every assigned partition's
/// checkpoint is committed with each micro-batch; when partitions are handed over, the
/// instances rewind (the new owner from the previous owner's checkpoint).
pub async fn run(
    config: &PipelineConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(PipelineCounts, StopReason)> {
    ensure!(
        config.batch_size > 0,
        "the micro-batch size must be positive"
    );
    let (consumer, producer) = create_clients(&config.bootstrap_servers, &config.group)?;
    // Before the checkpoints are read: fencing the instance this one replaces aborts its
    // open transaction, whose offsets would otherwise hold the committed ones back.
    let producer = match config.delivery {
        Delivery::AtLeastOnce => producer,
        Delivery::ExactlyOnce => {
            // Step 1's producer goes unused: without it, no idle polling thread.
            drop(producer);
            transactional_producer(config)?
        }
    };
    for topic in [&config.output, &config.dlq] {
        output_topic_ready(&producer, topic)?;
    }
    let mut pipeline = Pipeline {
        config,
        consumer: &consumer,
        producer: &producer,
        counts: PipelineCounts::default(),
        started: None,
        txn_offsets_kept: None,
        committed: HashMap::new(),
        failed_transactions: 0,
    };
    let outcome = match restore_checkpoints(&consumer, &config.input) {
        Ok((checkpoints, committed)) => {
            let windowing = Windowing::new(&config.input, &checkpoints, &committed);
            pipeline.committed = committed;
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

/// The I/O side: reads micro-batches, hands each to [`Windowing`] on a worker thread,
/// then delivers the results and commits, while it reads the next.
struct Pipeline<'a> {
    config: &'a PipelineConfig,
    consumer: &'a StreamConsumer,
    producer: &'a FutureProducer,
    counts: PipelineCounts,
    /// When the first record of the first micro-batch processed was read: where
    /// `busy_seconds` starts.
    started: Option<Instant>,
    /// Whether the broker keeps the offsets committed in a transaction (known after
    /// the first one).
    txn_offsets_kept: Option<bool>,
    /// What the group has committed, per partition (offset and metadata), until
    /// `txn_offsets_kept` is known.
    committed: Committed,
    /// Micro-batches whose transaction failed since the last one that committed.
    failed_transactions: u32,
}

/// A micro-batch as read: each record's partition, offset, key and payload, in columns
/// (a copy of the bytes, not an allocation per record).
struct Records {
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    keys: BinaryArray,
    payloads: BinaryArray,
    /// When its first record was read (`None` when it is empty).
    first_read: Option<Instant>,
}

impl Records {
    fn len(&self) -> usize {
        self.partitions.len()
    }

    fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    fn payload(&self, index: usize) -> &[u8] {
        match self.payloads.is_null(index) {
            true => &[],
            false => self.payloads.value(index),
        }
    }

    fn key(&self, index: usize) -> Option<&[u8]> {
        (!self.keys.is_null(index)).then(|| self.keys.value(index))
    }
}

/// Columns to copy the read messages into.
struct RecordsBuilder {
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    keys: BinaryBuilder,
    payloads: BinaryBuilder,
    first_read: Option<Instant>,
}

impl RecordsBuilder {
    /// Room for `records` of the benchmark's size (about 200 bytes) without growing.
    fn with_capacity(records: usize) -> Self {
        Self {
            partitions: Vec::with_capacity(records),
            offsets: Vec::with_capacity(records),
            keys: BinaryBuilder::with_capacity(records, records * 16),
            payloads: BinaryBuilder::with_capacity(records, records * 256),
            first_read: None,
        }
    }

    fn push(&mut self, message: &BorrowedMessage<'_>) {
        self.first_read.get_or_insert_with(Instant::now);
        self.partitions.push(message.partition());
        self.offsets.push(message.offset());
        self.keys.append_option(message.key());
        self.payloads.append_option(message.payload());
    }

    fn finish(mut self) -> Records {
        Records {
            partitions: self.partitions,
            offsets: self.offsets,
            keys: self.keys.finish(),
            payloads: self.payloads.finish(),
            first_read: self.first_read,
        }
    }
}

/// Step 2 into [`Records`], or the shutdown signal, whichever comes first.
async fn read_batch(
    consumer: &StreamConsumer,
    config: &PipelineConfig,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    last_record: Instant,
) -> Result<Read> {
    let mut wait = config.batch_wait;
    if let Some(idle) = config.idle_timeout {
        let left = idle.saturating_sub(last_record.elapsed());
        wait = wait.min(left.max(Duration::from_millis(10)));
    }
    let reading = Instant::now();
    let records = async {
        let mut records = RecordsBuilder::with_capacity(config.batch_size.min(100_000));
        read_messages(consumer, &config.input, config.batch_size, wait, |m| {
            records.push(m)
        })
        .await?;
        anyhow::Ok(records.finish())
    };
    tokio::select! {
        records = records => {
            match records {
                Ok(records) => Ok(Read::Batch(Box::new(records), reading.elapsed())),
                Err(e) if is_retriable(&e) => Ok(Read::Failed(e)),
                Err(e) => Err(e),
            }
        }
        () = shutdown.as_mut() => {
            info!("shutdown requested, stopping");
            Ok(Read::Shutdown)
        }
    }
}

/// What a micro-batch read returned.
enum Read {
    Batch(Box<Records>, Duration),
    /// A condition that goes away by itself (the broker down or restarting): what was
    /// read with it is dropped.
    Failed(anyhow::Error),
    Shutdown,
}

impl<'a> Pipeline<'a> {
    async fn run(
        &mut self,
        mut windowing: Windowing,
        shutdown: impl Future<Output = ()>,
    ) -> Result<StopReason> {
        tokio::pin!(shutdown);
        let (config, consumer) = (self.config, self.consumer);
        let join_deadline = Instant::now() + Duration::from_secs(60);
        // Idle time counts from the moment partitions are assigned.
        let mut assigned = false;
        let mut last_record = Instant::now();
        let mut read = self.read(&mut shutdown, last_record).await?;
        loop {
            let (records, read_time) = match read {
                Read::Shutdown => return Ok(StopReason::Stopped),
                Read::Batch(records, read_time) => (*records, read_time),
                Read::Failed(e) => {
                    // The records read before the error are dropped: if the consumer
                    // had moved past what the windows hold, back to what is committed.
                    match windowing.behind(self.consumer) {
                        Some(lost) => {
                            windowing = self.rewind(&format!("{e:#}; {lost} not processed"))?
                        }
                        None => warn!("reading: {e:#}; nothing lost, reading on"),
                    }
                    read = self.read(&mut shutdown, last_record).await?;
                    continue;
                }
            };
            if records.is_empty() {
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
                    // Idle means the broker answers and there is nothing new, not that
                    // no record came: a broker that is down or restarting sends none.
                    match self.unread(&windowing.positions) {
                        Ok(behind) if behind.is_empty() => {}
                        Ok(behind) => {
                            debug!(
                                ?behind,
                                "no record for a while, but not at the end: not idle"
                            );
                            last_record = Instant::now();
                            read = self.read(&mut shutdown, last_record).await?;
                            continue;
                        }
                        Err(e) => {
                            warn!("not idle: {e:#}");
                            last_record = Instant::now();
                            read = self.read(&mut shutdown, last_record).await?;
                            continue;
                        }
                    }
                    info!(
                        idle_s = idle.as_secs_f64(),
                        "input idle, emitting the open windows"
                    );
                    let (aggregates, offsets) = windowing.emit_open_windows()?;
                    if let Err(e) = self.write(Vec::new(), &aggregates, &offsets).await {
                        windowing = self.recover(e)?;
                        read = self.read(&mut shutdown, last_record).await?;
                        continue;
                    }
                    self.counts.windows_emitted += aggregates.len() as u64;
                    info!(windows_emitted = aggregates.len(), "open windows emitted");
                    return Ok(StopReason::Idle);
                }
                read = self.read(&mut shutdown, last_record).await?;
                continue;
            }
            assigned = true;
            last_record = Instant::now();
            // The consumer went back: its partitions were assigned again (a rebalance,
            // a broker restart) and it fetches from the committed offsets. The open
            // windows are rebuilt from the committed checkpoint, every partition from
            // there (as at start-up); this batch is dropped.
            if let Some((partition, offset, next)) = windowing.went_back(&records) {
                windowing = self.rewind(&format!(
                    "partition {partition} went back to offset {offset} (next was {next})"
                ))?;
                read = self.read(&mut shutdown, last_record).await?;
                continue;
            }
            // Partitions handed over (instances joined or left the group): their
            // checkpoints are newer than the ones the windows were built from, so the
            // same rewind. Before the first micro-batch since the checkpoints were read,
            // they are read again: another instance may have committed meanwhile.
            let assignment = self.assigned_partitions();
            let handed_over = if windowing.assigned.is_empty() {
                let (_, committed) = restore_checkpoints(self.consumer, &config.input)?;
                (committed != windowing.built_from)
                    .then(|| "the checkpoints changed since they were read".to_string())
            } else {
                (assignment != windowing.assigned).then(|| {
                    format!(
                        "partitions {assignment:?} assigned instead of {:?}",
                        windowing.assigned
                    )
                })
            };
            if let Some(why) = handed_over {
                windowing = self.rewind(&why)?;
                read = self.read(&mut shutdown, last_record).await?;
                continue;
            }
            self.started = self.started.or(records.first_read);
            let read_count = self.counts.read + records.len() as u64;
            let stop = config.max_records.is_some_and(|max| read_count >= max);

            // Steps 3 to 6 on a worker thread, then step 7 as soon as they are done, while
            // this thread reads the next batch: a batch's results do not wait for the
            // next one to fill.
            let work = tokio::task::spawn_blocking(move || {
                let computed = windowing.micro_batch(records, &assignment);
                (windowing, computed)
            });
            let processed = async {
                let (back, computed) = work.await.context("the windowing worker panicked")?;
                let delivered = self.deliver(computed?, read_time).await;
                anyhow::Ok((back, delivered))
            };
            let (processed, next) = if stop {
                (processed.await, Ok(Read::Shutdown))
            } else {
                tokio::join!(
                    processed,
                    read_batch(consumer, config, &mut shutdown, last_record)
                )
            };
            let (back, delivered) = processed?;
            windowing = back;
            if let Err(e) = delivered {
                // What was read meanwhile is dropped: the rewind seeks back.
                windowing = self.recover(e)?;
                read = self.read(&mut shutdown, last_record).await?;
                continue;
            }
            self.failed_transactions = 0;
            if stop {
                info!(read = self.counts.read, "max records read, stopping");
                return Ok(StopReason::Stopped);
            }
            read = next?;
        }
    }

    /// [`read_batch`] with this pipeline's consumer.
    async fn read(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        last_record: Instant,
    ) -> Result<Read> {
        read_batch(self.consumer, self.config, shutdown, last_record).await
    }

    /// After a failed micro-batch: if its transaction was aborted, back to what is
    /// committed ([`Pipeline::rewind`]), at most [`MAX_FAILED_TRANSACTIONS`] times in a
    /// row; otherwise the error.
    fn recover(&mut self, error: anyhow::Error) -> Result<Windowing> {
        if error.downcast_ref::<TransactionAborted>().is_none() {
            return Err(error);
        }
        self.failed_transactions += 1;
        if self.failed_transactions > MAX_FAILED_TRANSACTIONS {
            return Err(error.context(format!(
                "{MAX_FAILED_TRANSACTIONS} transactions in a row failed"
            )));
        }
        self.rewind(&format!("{error:#}"))
    }

    /// Back to what the group has committed: every assigned partition sought to its
    /// committed offset, the open windows rebuilt from the checkpoints as at start-up.
    fn rewind(&mut self, why: &str) -> Result<Windowing> {
        warn!(
            why,
            "rebuilding the open windows from the committed checkpoint"
        );
        let topic = &self.config.input;
        let (checkpoints, committed) = restore_checkpoints(self.consumer, topic)?;
        let mut seek = TopicPartitionList::new();
        for p in self.assigned_partitions() {
            let offset = match committed.get(&p) {
                Some((Offset::Offset(o), _)) => Offset::Offset(*o),
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(topic, p, offset)?;
        }
        let sought = kafka_retry::retry(
            "seeking to the committed offsets",
            kafka_retry::DEADLINE,
            || {
                self.consumer
                    .seek_partitions(seek.clone(), Duration::from_secs(10))
            },
        )?;
        for e in sought.elements() {
            if let Err(error) = e.error() {
                bail!(
                    "seeking {topic} partition {} to {:?}: {error}",
                    e.partition(),
                    e.offset()
                );
            }
        }
        let windowing = Windowing::new(topic, &checkpoints, &committed);
        self.committed = committed;
        Ok(windowing)
    }

    /// The assigned partitions not read to their end, as (partition, next offset to
    /// read, end offset), asked of the broker: an error if it does not answer, or if no
    /// partition is assigned (the group is rebalancing).
    fn unread(&self, positions: &HashMap<i32, i64>) -> Result<Vec<(i32, i64, i64)>> {
        const TIMEOUT: Duration = Duration::from_secs(5);
        let topic = &self.config.input;
        let assigned = self.assigned_partitions();
        ensure!(
            !assigned.is_empty(),
            "no partition of {topic} is assigned: waiting for the group to assign them"
        );
        // Partitions this run has read nothing from start at their committed offset.
        let mut unread = TopicPartitionList::new();
        for &p in assigned.iter().filter(|p| !positions.contains_key(p)) {
            unread.add_partition(topic, p);
        }
        let committed = match unread.count() {
            0 => unread,
            _ => self
                .consumer
                .committed_offsets(unread, TIMEOUT)
                .context("the broker does not answer (the committed offsets)")?,
        };
        let mut behind = Vec::new();
        for p in assigned {
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .with_context(|| format!("the broker does not answer ({topic} partition {p})"))?;
            let next = positions.get(&p).copied().or_else(|| {
                match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                }
            });
            let next = next.unwrap_or(low);
            if next < high {
                behind.push((p, next, high));
            }
        }
        Ok(behind)
    }

    /// The partitions of the input assigned to this instance, in order.
    fn assigned_partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self
            .consumer
            .assignment()
            .map(|a| {
                a.elements_for_topic(&self.config.input)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default();
        partitions.sort_unstable();
        partitions
    }

    /// A micro-batch's dead letters and aggregates, then its offsets: one after the
    /// other (step 7), or all in one transaction.
    async fn write(
        &mut self,
        dead_letters: Vec<FutureRecord<'_, [u8], [u8]>>,
        aggregates: &[(String, String)],
        offsets: &TopicPartitionList,
    ) -> Result<()> {
        let config = self.config;
        if config.delivery == Delivery::AtLeastOnce {
            send_all(self.producer, dead_letters)
                .await
                .with_context(|| format!("writing dead letters to topic {}", config.dlq))?;
            return write_and_commit(
                self.producer,
                self.consumer,
                &config.output,
                aggregates,
                offsets,
            )
            .await;
        }
        if dead_letters.is_empty() && aggregates.is_empty() && offsets.count() == 0 {
            return Ok(());
        }
        self.producer
            .begin_transaction()
            .context("beginning a transaction")?;
        let records = dead_letters
            .into_iter()
            .chain(aggregates.iter().map(|(k, v)| {
                FutureRecord::to(&config.output)
                    .key(k.as_bytes())
                    .payload(v.as_bytes())
            }));
        let committed = async {
            send_all(self.producer, records).await.with_context(|| {
                format!(
                    "writing {} aggregates to topic {} and the dead letters to {}",
                    aggregates.len(),
                    config.output,
                    config.dlq
                )
            })?;
            let group = self
                .consumer
                .group_metadata()
                .context("the consumer has no group metadata")?;
            let (producer, offsets) = (self.producer.clone(), offsets.clone());
            tokio::task::spawn_blocking(move || commit_transaction(&producer, &offsets, &group))
                .await
                .context("the transaction thread panicked")?
        }
        .await;
        if let Err(e) = committed {
            // Aborted, the transaction leaves nothing behind: the micro-batch can be
            // read again from the committed offsets. Not aborted (the producer was
            // fenced by a newer instance, or broke), it is the end of this one.
            let producer = self.producer.clone();
            let aborted = tokio::task::spawn_blocking(move || {
                kafka_retry::retry("aborting the transaction", kafka_retry::DEADLINE, || {
                    producer.abort_transaction(TXN_TIMEOUT)
                })
            })
            .await
            .context("the transaction thread panicked")?;
            return Err(match aborted {
                Ok(()) => e.context(TransactionAborted),
                Err(abort) => e.context(format!("the transaction could not be aborted: {abort}")),
            });
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        // Kafka keeps the transaction's offsets, but librdkafka's mock cluster does not
        // (it would replay from the start): the first commit is read back, and if it is
        // not there the offsets are committed through the consumer as well (from then
        // on too).
        let unchanged = offsets.elements().iter().all(|e| {
            self.committed
                .get(&e.partition())
                .is_some_and(|(offset, metadata)| *offset == e.offset() && metadata == e.metadata())
        });
        let kept = match self.txn_offsets_kept {
            Some(kept) => kept,
            // The same as what is committed already: this commit cannot tell, nor
            // does it need the consumer.
            None if unchanged => true,
            None => {
                let back = kafka_retry::retry(
                    "reading back the offsets committed in the transaction",
                    kafka_retry::DEADLINE,
                    || {
                        self.consumer
                            .committed_offsets(offsets.clone(), Duration::from_secs(10))
                    },
                )?;
                let kept = offsets.elements().iter().all(|e| {
                    back.find_partition(e.topic(), e.partition())
                        .is_some_and(|b| b.offset() == e.offset() && b.metadata() == e.metadata())
                });
                if !kept {
                    info!(
                        "this broker keeps no offsets committed in a transaction \
                         (librdkafka's mock cluster): committing them through the consumer too"
                    );
                }
                self.txn_offsets_kept = Some(kept);
                kept
            }
        };
        if self.txn_offsets_kept.is_none() {
            for e in offsets.elements() {
                self.committed
                    .insert(e.partition(), (e.offset(), e.metadata().to_string()));
            }
        }
        if !kept {
            kafka_retry::retry(
                "committing the offsets through the consumer",
                kafka_retry::DEADLINE,
                || self.consumer.commit(offsets, CommitMode::Sync),
            )?;
        }
        Ok(())
    }

    /// Dead letters, then step 7 (aggregates, commit); the counts and the log line.
    async fn deliver(&mut self, batch: Computed, read_time: Duration) -> Result<()> {
        let config = self.config;
        let delivering = Instant::now();
        let dead_letters = batch
            .new_malformed
            .iter()
            .map(|&i| &batch.malformed[i])
            .map(|bad| dead_letter(config, &batch.records, bad.index, &bad.reason))
            .collect();
        self.write(dead_letters, &batch.aggregates, &batch.offsets)
            .await?;

        self.counts.micro_batches += 1;
        self.counts.read += batch.records.len() as u64;
        self.counts.malformed += batch.malformed.len() as u64;
        self.counts.late += batch.late as u64;
        self.counts.processed += batch.on_time as u64;
        self.counts.windows_emitted += batch.aggregates.len() as u64;
        self.counts.busy_seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        info!(
            batch = batch.seq,
            records = batch.records.len(),
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
            let (partition, offset) = (
                batch.records.partitions[bad.index],
                batch.records.offsets[bad.index],
            );
            debug!(partition, offset, reason = %bad.reason, "first malformed record");
        }
        Ok(())
    }
}

/// One micro-batch through steps 3 to 6, ready to deliver.
struct Computed {
    seq: u64,
    records: Records,
    malformed: Vec<Malformed>,
    /// Which of `malformed` were never sent to the dead-letter topic (not replayed).
    new_malformed: Vec<usize>,
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
    /// Windows ending at or before this have been emitted by this run.
    emitted_through: i64,
    /// Per partition, the windows ending at or before this had been emitted when its
    /// checkpoint was committed (by an earlier run, or another instance): with input
    /// keyed by category, each partition's windows are its own.
    restored_emitted: HashMap<i32, i64>,
    /// The committed offset of each partition, where a partition this run has not read
    /// is committed again (with its checkpoint brought up to date).
    restored_offsets: HashMap<i32, i64>,
    /// The partitions assigned at the last micro-batch.
    assigned: Vec<i32>,
    /// What was committed when these windows were built.
    built_from: Committed,
    /// The next offset to read, per partition.
    positions: HashMap<i32, i64>,
    /// The first offset this run read, per partition.
    first_offsets: HashMap<i32, i64>,
    /// Per partition, where the records read whole by an earlier run end (from the
    /// checkpoint): the malformed ones before it are in the dead-letter topic already.
    read_through: HashMap<i32, i64>,
    /// Per open window start, the micro-batch that opened it.
    open_windows: BTreeMap<i64, u64>,
    /// The marks of the micro-batches that opened an open window.
    marks: BTreeMap<u64, BatchMark>,
}

impl Windowing {
    /// Fresh, or resumed from the checkpoints committed by an earlier run.
    ///
    /// Every partition of the topic holds the watermark back from now on, assigned or
    /// not, until it has been idle for [`PARTITION_IDLE`]: while a restarted instance
    /// waits for the group to expire the instance it replaces, it can be handed some
    /// of the partitions first, and windows closed without the others' records would
    /// be wrong.
    fn new(input: &str, checkpoints: &HashMap<i32, Checkpoint>, committed: &Committed) -> Self {
        let now = Instant::now();
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
            assigned_at: committed.keys().map(|&p| (p, now)).collect(),
            last_record_at: HashMap::new(),
            state: WindowState::new(),
            emitted_through: i64::MIN,
            restored_emitted: checkpoints
                .iter()
                .map(|(&p, c)| (p, c.emitted_through_ms))
                .collect(),
            restored_offsets: committed
                .iter()
                .filter_map(|(&p, (offset, _))| match offset {
                    Offset::Offset(o) => Some((p, *o)),
                    _ => None,
                })
                .collect(),
            assigned: Vec::new(),
            built_from: committed.clone(),
            positions: HashMap::new(),
            first_offsets: HashMap::new(),
            read_through: checkpoints
                .iter()
                .filter_map(|(&p, c)| Some((p, c.read_through?)))
                .collect(),
            open_windows: BTreeMap::new(),
            marks: BTreeMap::new(),
        }
    }

    fn micro_batch(&mut self, records: Records, assigned: &[i32]) -> Result<Computed> {
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
        self.assigned = assigned.to_vec();
        // The partition's records come in runs: one update per run.
        let mut first = 0;
        for run in records.partitions.chunk_by(|a, b| a == b) {
            let last = first + run.len() - 1;
            self.first_offsets
                .entry(run[0])
                .or_insert(records.offsets[first]);
            self.positions.insert(run[0], records.offsets[last] + 1);
            self.last_record_at.insert(run[0], started);
            first = last + 1;
        }

        // 3. Parse: what the decoder's fast pass takes (order_decoder), the rest through
        // step 3 itself; the malformed go to the dead-letter topic, with the reason.
        let mut orders: Vec<Option<WindowInput>> = Vec::with_capacity(records.len());
        let mut others = Vec::new();
        for i in 0..records.len() {
            let order = read_stream_order(records.payload(i));
            if order.is_none() {
                others.push(i);
            }
            orders.push(order.map(|(order, t)| (t, order.category, order.amount)));
        }
        let rest: Vec<&[u8]> = others.iter().map(|&i| records.payload(i)).collect();
        let (slow, malformed) = parse_orders(&rest)?;
        let malformed: Vec<Malformed> = malformed
            .into_iter()
            .map(|m| Malformed {
                index: others[m.index],
                reason: m.reason,
            })
            .collect();
        let times = event_times(&slow)?;
        let categories = slow
            .column_by_name("category")
            .and_then(|c| c.as_string_opt::<i32>())
            .context("the parsed orders have no Utf8 `category`")?;
        let amounts = slow
            .column_by_name("amount")
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .context("the parsed orders have no Float64 `amount`")?;
        let mut bad = malformed.iter().map(|m| m.index).peekable();
        let mut row = 0;
        for &i in &others {
            if bad.next_if_eq(&i).is_none() {
                orders[i] = Some((times.value(row), categories.value(row), amounts.value(row)));
                row += 1;
            }
        }
        let new_malformed = malformed
            .iter()
            .enumerate()
            .filter(|(_, bad)| {
                let i = bad.index;
                self.read_through
                    .get(&records.partitions[i])
                    .is_none_or(|&end| records.offsets[i] >= end)
            })
            .map(|(i, _)| i)
            .collect();

        // 4. Watermark, per partition, and 5. each on-time order into its window (what
        // `apply_watermark` and `tumbling_window_totals` do, one order at a time).
        let (mut late, mut on_time) = (0, 0);
        let mut batch_totals: datafusion::common::HashMap<(i64, &str), WindowTotals> =
            Default::default();
        // Per partition: its latest event time, and up to where its windows are emitted.
        let mut partitions: Vec<(i32, Option<i64>, i64)> = Vec::new();
        let (mut current, mut previous_start) = (0, None);
        for (order, &partition) in orders.iter().zip(&records.partitions) {
            let Some((t, category, amount)) = *order else {
                continue;
            };
            if partitions.get(current).is_none_or(|p| p.0 != partition) {
                current = match partitions.iter().position(|p| p.0 == partition) {
                    Some(known) => known,
                    None => {
                        let max = self.max_event_times.get(&partition).copied();
                        partitions.push((partition, max, self.emitted_for(partition)));
                        partitions.len() - 1
                    }
                };
            }
            let (_, max_event_time, emitted) = &mut partitions[current];
            let start = window_start(t);
            // Too late as well: a window already emitted is not emitted again (a
            // partition back from idle, or a replay after a restart).
            if !is_on_time(max_event_time, t) || start + WINDOW_MS <= *emitted {
                late += 1;
                continue;
            }
            on_time += 1;
            // Which micro-batch opened each window, for the commit.
            if previous_start != Some(start) {
                self.open_windows.entry(start).or_insert(seq);
                previous_start = Some(start);
            }
            let totals = batch_totals.entry((start, category)).or_default();
            totals.order_count += 1;
            totals.total_amount += amount;
        }
        for (partition, max_event_time, _) in partitions {
            if let Some(max) = max_event_time {
                self.max_event_times.insert(partition, max);
            }
        }
        let watermark = self.watermark();
        self.marks.insert(seq, mark);

        // 5. The windows the watermark has passed; 6. as messages.
        add_to_windows(&mut self.state, batch_totals);
        let closed = close_windows(&mut self.state, watermark)?;
        self.forget_closed(watermark);
        self.emitted_through = self.emitted_through.max(watermark);
        let aggregates = format_aggregates(&closed)?;
        drop(orders);

        Ok(Computed {
            seq,
            on_time,
            late,
            aggregates,
            offsets: self.checkpoint_offsets()?,
            watermark,
            open_windows: self.state.len(),
            compute_time: started.elapsed(),
            malformed,
            new_malformed,
            records,
        })
    }

    /// Where the consumer has read past what the windows hold (records taken from the
    /// consumer, then dropped), said for a log; `None` if nowhere. Unknown positions
    /// count as read past.
    fn behind(&self, consumer: &StreamConsumer) -> Option<String> {
        let Ok(positions) = consumer.position() else {
            return Some("the consumer's position unknown".into());
        };
        let past: Vec<String> = positions
            .elements_for_topic(&self.input)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if self.positions.get(&e.partition()) != Some(&o) => {
                    Some(format!("partition {} at {o}", e.partition()))
                }
                _ => None,
            })
            .collect();
        (!past.is_empty()).then(|| past.join(", "))
    }

    /// The first message of `records` before the position its partition had reached
    /// (partition, its offset, the position), if any.
    fn went_back(&self, records: &Records) -> Option<(i32, i64, i64)> {
        let mut next: HashMap<i32, i64> = HashMap::new();
        for (&p, &offset) in records.partitions.iter().zip(&records.offsets) {
            if let Some(&at) = next.get(&p).or(self.positions.get(&p))
                && offset < at
            {
                return Some((p, offset, at));
            }
            next.insert(p, offset + 1);
        }
        None
    }

    /// The input is exhausted: every open window, and the offsets to commit after them.
    fn emit_open_windows(&mut self) -> Result<(Vec<(String, String)>, TopicPartitionList)> {
        let closed = close_windows(&mut self.state, i64::MAX)?;
        if let Some(last_start) = self.open_windows.keys().next_back() {
            self.emitted_through = self.emitted_through.max(last_start + WINDOW_MS);
        }
        self.forget_closed(i64::MAX);
        Ok((format_aggregates(&closed)?, self.checkpoint_offsets()?))
    }

    /// Windows of `partition` ending at or before this have been emitted: by this run,
    /// or by whichever instance committed the partition's checkpoint.
    fn emitted_for(&self, partition: i32) -> i64 {
        self.restored_emitted
            .get(&partition)
            .map_or(self.emitted_through, |&e| e.max(self.emitted_through))
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
                emitted_through_ms: self.emitted_for(partition),
                read_through: Some(
                    position.max(self.read_through.get(&partition).copied().unwrap_or(0)),
                ),
            };
            offsets.add_partition_offset(&self.input, partition, Offset::Offset(offset))?;
            if let Some(mut elem) = offsets.find_partition(&self.input, partition) {
                elem.set_metadata(serde_json::to_string(&checkpoint)?);
            }
        }
        // An assigned partition this run has read nothing from: where it was, with the
        // windows emitted since, so that its checkpoint says what this run emitted.
        for &partition in &self.assigned {
            let Some(&offset) = self.restored_offsets.get(&partition) else {
                continue;
            };
            if self.positions.contains_key(&partition) {
                continue;
            }
            let checkpoint = Checkpoint {
                max_event_time_ms: self.max_event_times.get(&partition).copied(),
                emitted_through_ms: self.emitted_for(partition),
                read_through: self.read_through.get(&partition).copied(),
            };
            offsets.add_partition_offset(&self.input, partition, Offset::Offset(offset))?;
            if let Some(mut elem) = offsets.find_partition(&self.input, partition) {
                elem.set_metadata(serde_json::to_string(&checkpoint)?);
            }
        }
        Ok(offsets)
    }
}

/// Whether `error` comes from a Kafka condition that goes away by itself
/// ([`kafka_retry::is_retriable`]).
fn is_retriable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<rdkafka::error::KafkaError>())
        .any(kafka_retry::is_retriable)
}

/// The error of a micro-batch whose transaction was aborted: nothing of it is in Kafka.
#[derive(Debug)]
struct TransactionAborted;

impl std::fmt::Display for TransactionAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the micro-batch's transaction failed and was aborted")
    }
}

/// How many micro-batches in a row may fail their transaction (each then read again)
/// before the pipeline gives up.
const MAX_FAILED_TRANSACTIONS: u32 = 5;

/// How long one transactional call may take before it is retried or fails.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The producer of [`Delivery::ExactlyOnce`], its transactions initialised. Its
/// `transactional.id` is the instance's, so that a restarted instance fences the one it
/// replaces (whose open transaction is then aborted).
fn transactional_producer(config: &PipelineConfig) -> Result<FutureProducer> {
    let id = format!("{}-{}-{}", config.group, config.input, config.instance);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("transactional.id", &id)
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout.as_millis().to_string(),
        )
        .create()
        .with_context(|| format!("creating the transactional producer {id}"))?;
    kafka_retry::retry(
        &format!("initialising the transactions of {id}"),
        kafka_retry::DEADLINE,
        || producer.init_transactions(TXN_TIMEOUT),
    )?;
    info!(transactional_id = %id, "exactly-once: transactions initialised");
    Ok(producer)
}

/// The offsets into the open transaction (with the group's generation, so that an
/// instance the group has moved on from is fenced), then the commit.
fn commit_transaction(
    producer: &FutureProducer,
    offsets: &TopicPartitionList,
    group: &ConsumerGroupMetadata,
) -> Result<()> {
    if offsets.count() > 0 {
        kafka_retry::retry(
            "adding the offsets to the transaction",
            kafka_retry::DEADLINE,
            || producer.send_offsets_to_transaction(offsets, group, TXN_TIMEOUT),
        )?;
    }
    kafka_retry::retry("committing the transaction", kafka_retry::DEADLINE, || {
        producer.commit_transaction(TXN_TIMEOUT)
    })?;
    Ok(())
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
/// Also returns what is committed, per partition: the offset and its metadata.
fn restore_checkpoints(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<(HashMap<i32, Checkpoint>, Committed)> {
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
    debug!(
        committed = ?committed.elements().iter().map(|e| (e.partition(), e.offset())).collect::<Vec<_>>(),
        "offsets committed by the group"
    );
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
    let committed = committed
        .elements()
        .iter()
        .map(|e| (e.partition(), (e.offset(), e.metadata().to_string())))
        .collect();
    Ok((checkpoints, committed))
}

/// The dead letter of record `index`: same key and payload, the reason in header
/// `error`, where it came from in header `source` (`topic/partition@offset`).
fn dead_letter<'m>(
    config: &'m PipelineConfig,
    records: &'m Records,
    index: usize,
    reason: &str,
) -> FutureRecord<'m, [u8], [u8]> {
    let source = format!(
        "{}/{}@{}",
        config.input, records.partitions[index], records.offsets[index]
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
    let record = FutureRecord::to(&config.dlq)
        .payload(records.payload(index))
        .headers(headers);
    match records.key(index) {
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
