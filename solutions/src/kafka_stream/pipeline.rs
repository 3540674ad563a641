//! The production pipeline the `kafka_stream` binary runs ([`run`]): the steps in a
//! loop of micro-batches, with per-partition watermarks, dead letters, checkpoints in
//! the committed offsets' metadata, a restart that replays exactly, and logs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::steps::{
    Malformed, WATERMARK_DELAY_MS, WINDOW_MS, WindowState, apply_watermark, create_clients,
    event_times, format_aggregates, parse_orders, parsed_order_schema, read_micro_batch, send_all,
    tumbling_window_totals, write_and_commit,
};

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
