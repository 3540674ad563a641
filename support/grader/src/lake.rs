//! Grading of the lake kata's whole program: Kafka → hive-partitioned Parquet, exactly once.
//!
//! Fresh order events (random seed; some late, invalid and malformed) go to a new
//! 3-partition topic on the tests' broker (`kafka_testkit`: the mock cluster, or
//! `KAFKA_BOOTSTRAP_SERVERS`), spanning midnight at the end of a month. The program runs
//! until it has been idle for [`IDLE_S`] seconds; then the lake is read back file by file
//! and row by row, the dead-letter topic to its end, the group's committed offsets and
//! the checkpoint. The checklist follows the seed's seven steps, then two restarts (one
//! with nothing new, one with new events) and, with `--chaos N`, N SIGKILLs.
//!
//! The contract is the step katas' (`katas/kafka_parquet_kata/src/lib.rs`): files under
//! `year=2026/month=12/day=1/hour=0/` (numbers as Spark writes them, not zero-padded),
//! Snappy Parquet, columns `kafka_partition: Int32, kafka_offset: Int64`, the payload's
//! fields but `timestamp`, then `event_time: Timestamp(µs, UTC)`; the partition columns
//! only in the folder names; `<checkpoint>/checkpoint.json` as step 7 writes it, or the
//! per-partition layout of a program that scales out in a consumer group (the expert
//! reference): `<checkpoint>/partitions/<partition>.json`, each
//! `{"topic": …, "partition": 0, "batch_id": 3, "offset": 120, …}` (see
//! [`read_checkpoint`]). Dead letters are the rejected record's key and value, unchanged,
//! with a `dlq.reason` header.
//!
//! Chaos on the mock cluster: it lives in the grader's process and the program reaches it
//! over TCP, so a killed program is just a dropped connection and the mock keeps its
//! committed offsets. What the mock cannot do is Kafka transactions: it accepts them but
//! never hides an aborted one and ignores the offsets sent in one. A program that keeps
//! its offsets in a transaction therefore fails `commit` on the mock whatever `--chaos`
//! says; one that commits through its consumer is graded the same on both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedRecord, OrderEvent, RecordKind};
use kafka_testkit::{Broker, BrokerKind, unique_name};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::program::{Run, Running};
use crate::verdict::{side_by_side, text_table, thousands};
use crate::{Check, Options, Program, Verdict};

/// Partitions of the input topic.
const PARTITIONS: i32 = 3;
/// Events of the first run, and the new ones before the last restart.
const FIRST: usize = 1_500;
const SECOND: usize = 500;
/// The first events span about four hours of event time.
const EVENTS_PER_SECOND: f64 = FIRST as f64 / (4.0 * 3600.0);
const DIRTY: DirtyOptions = DirtyOptions {
    late_fraction: 0.03,
    invalid_fraction: 0.04,
    malformed_fraction: 0.03,
};
/// `--idle-timeout-s` of every run that is not killed.
const IDLE_S: u64 = 3;
/// Events per killed run with `--chaos`, and their idle timeout (they are killed first).
const CHAOS_CHUNK: usize = 1_000;
const CHAOS_IDLE_S: u64 = 60;
/// Rows shown in a table.
const SAMPLE: usize = 3;
/// Reading the dead-letter topic to its end.
const READ_DEADLINE: Duration = Duration::from_secs(30);
const PARTITION_COLUMNS: [&str; 4] = ["year", "month", "day", "hour"];
/// Why a program that subscribes may read nothing, or hang after a kill.
const SUBSCRIBE_HINT: &str = "A consumer that subscribes gets its partitions only after \
     the group join (about 3 s), and after a kill only once the killed consumer's session \
     has expired (45 s by default): assign the partitions yourself, or count the idle time \
     from the assignment.";

pub async fn grade(program: &Program, options: &Options) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let broker = kafka_testkit::broker()
        .await
        .context("no Kafka broker to grade with")?;
    let mut verdict = Verdict::new("parquet");
    let seed = options.seed;
    verdict.context(format!(
        "seed {seed} (--seed {seed} replays this data) · {} broker at {}",
        broker_name(broker.kind()),
        broker.bootstrap_servers()
    ));
    let dir = if options.keep {
        let kept = tempfile::Builder::new()
            .prefix("parquet-grading-")
            .tempdir()
            .context("cannot create a folder for the grading")?
            .keep();
        verdict.context(format!(
            "lakes and checkpoints kept in {} (the events stay on the topics named below)",
            kept.display()
        ));
        kept
    } else {
        program.scratch().to_path_buf()
    };

    let mut generator = EventGenerator::new(seed, start_time(seed), EVENTS_PER_SECOND, DIRTY)?;
    let first = generator.generate(FIRST);
    let second = generator.generate(SECOND);
    let job = Job::create(broker, "lake", &dir.join("main")).await?;
    let first_positions = broker.produce_events(&job.topic, &first).await?;
    let expected = Expected::new(&first, &first_positions)?;
    verdict.context(format!(
        "{} events on {} ({PARTITIONS} partitions), {}: {} valid ({} of them late), \
         {} invalid, {} malformed; then a restart, then {} more events",
        thousands(FIRST as u64),
        job.topic,
        expected.time_span(),
        thousands(expected.rows.len() as u64),
        expected.late,
        expected.count(RecordKind::Invalid),
        expected.count(RecordKind::Malformed),
        thousands(SECOND as u64),
    ));
    verdict.context(format!("command line: {}", job.command_line(IDLE_S)));

    let run = job.run(program, options, IDLE_S).await?;
    let state = job.observe(broker).await?;
    let (checks, lake_ok) = step_checks(&job, &run, &state, &expected);
    for check in checks {
        verdict.push(check);
    }

    if !lake_ok {
        verdict.push(Check::skip(
            "restart",
            "not run: first the program must run and put every valid order in the lake once",
        ));
    } else {
        let check =
            restart_check(program, options, broker, &job, &state, &expected, &second).await?;
        verdict.push(check);
    }

    if options.chaos > 0 && !lake_ok {
        verdict.push(Check::skip(
            "chaos",
            "not run: first the program must run and put every valid order in the lake once",
        ));
    } else if options.chaos > 0 {
        let chaos_started = Instant::now();
        let check = chaos_check(program, options, broker, &dir.join("chaos")).await?;
        verdict.context(format!(
            "chaos: {} SIGKILLs and a last run on {} events took {:.1} s",
            options.chaos,
            thousands(CHAOS_CHUNK as u64 * (u64::from(options.chaos) + 1)),
            chaos_started.elapsed().as_secs_f64()
        ));
        verdict.push(check);
    }
    verdict.context(format!(
        "graded in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(verdict)
}

fn broker_name(kind: BrokerKind) -> &'static str {
    match kind {
        BrokerKind::Mock => "mock",
        BrokerKind::Env => "KAFKA_BOOTSTRAP_SERVERS",
        BrokerKind::Docker => "Docker",
    }
}

/// Up to two hours before midnight on the last day of November: four hours of events
/// cross a day and a month.
fn start_time(seed: u64) -> DateTime<Utc> {
    let base = DateTime::parse_from_rfc3339("2026-11-30T21:00:00Z")
        .expect("a valid instant")
        .to_utc();
    base + TimeDelta::seconds((seed % 7_200) as i64)
}

// ------------------------------------------------------------------ one job

/// One pipeline's topics, group and folders.
struct Job {
    /// The mock cluster, which keeps no offsets sent in a transaction.
    mock: bool,
    bootstrap: String,
    topic: String,
    dlq: String,
    group: String,
    output: PathBuf,
    checkpoint: PathBuf,
}

impl Job {
    async fn create(broker: &Broker, prefix: &str, dir: &Path) -> anyhow::Result<Job> {
        let job = Job {
            mock: broker.kind() == BrokerKind::Mock,
            bootstrap: broker.bootstrap_servers().to_string(),
            topic: unique_name(&format!("{prefix}-orders")),
            dlq: unique_name(&format!("{prefix}-orders-dlq")),
            group: unique_name(&format!("{prefix}-group")),
            output: dir.join("lake"),
            checkpoint: dir.join("checkpoint"),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        broker.create_topic(&job.topic, PARTITIONS).await?;
        broker.create_topic(&job.dlq, 1).await?;
        Ok(job)
    }

    fn args(&self, idle_s: u64) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        for (flag, value) in [
            ("--bootstrap", self.bootstrap.as_str().into()),
            ("--topic", self.topic.as_str().into()),
            ("--output", self.output.clone().into_os_string()),
            ("--checkpoint", self.checkpoint.clone().into_os_string()),
            ("--dlq", self.dlq.as_str().into()),
            ("--group", self.group.as_str().into()),
            ("--idle-timeout-s", idle_s.to_string().into()),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args
    }

    fn command_line(&self, idle_s: u64) -> String {
        let args: Vec<String> = self
            .args(idle_s)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("PROGRAM {}", args.join(" "))
    }

    fn start(&self, program: &Program, idle_s: u64) -> anyhow::Result<Running> {
        program.start(self.args(idle_s))
    }

    async fn run(&self, program: &Program, options: &Options, idle_s: u64) -> anyhow::Result<Run> {
        let running = self.start(program, idle_s)?;
        let deadline = options.run_deadline;
        tokio::task::spawn_blocking(move || running.wait(deadline))
            .await
            .context("waiting for the program")?
    }

    /// Everything the program left: the lake, the dead letters, the offsets, the checkpoint.
    async fn observe(&self, broker: &Broker) -> anyhow::Result<State> {
        let lake = read_lake(&self.output)?;
        let letters = read_dead_letters(broker, &self.dlq).await?;
        let committed = broker.committed_offsets(&self.group, &self.topic).await?;
        let checkpoint = read_checkpoint(&self.checkpoint);
        Ok(State {
            lake,
            letters,
            committed,
            checkpoint,
        })
    }
}

/// What one run left behind.
struct State {
    lake: Lake,
    letters: Vec<Letter>,
    committed: BTreeMap<i32, i64>,
    checkpoint: Result<Option<CheckpointFile>, String>,
}

// ------------------------------------------------------------------ what is expected

/// A valid order as the lake must hold it.
#[derive(Clone)]
struct ExpectedRow {
    partition: i32,
    offset: i64,
    event: OrderEvent,
    micros: i64,
    folder: String,
}

/// A record the program must reject.
#[derive(Clone)]
struct Rejected {
    partition: i32,
    offset: i64,
    kind: RecordKind,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    /// Why, in the contract's words.
    why: String,
}

/// What a correct program makes of a set of records.
struct Expected {
    /// Valid orders by `order_id`.
    rows: BTreeMap<String, ExpectedRow>,
    /// Invalid and malformed records, in produce order.
    rejected: Vec<Rejected>,
    /// The `order_id`s of rejected records that have one.
    rejected_ids: HashMap<String, usize>,
    /// Payloads of valid records (a valid record on the dead-letter topic is a mistake).
    valid_payloads: HashMap<Vec<u8>, String>,
    /// Per partition, the offset after its last record.
    end: BTreeMap<i32, i64>,
    /// Per partition, how many records.
    per_partition: BTreeMap<i32, usize>,
    late: usize,
    first_time: i64,
    last_time: i64,
}

impl Expected {
    fn new(records: &[GeneratedRecord], positions: &[(i32, i64)]) -> anyhow::Result<Expected> {
        ensure!(
            records.len() == positions.len(),
            "{} records produced but {} positions returned",
            records.len(),
            positions.len()
        );
        let mut expected = Expected {
            rows: BTreeMap::new(),
            rejected: Vec::new(),
            rejected_ids: HashMap::new(),
            valid_payloads: HashMap::new(),
            end: BTreeMap::new(),
            per_partition: BTreeMap::new(),
            late: 0,
            first_time: i64::MAX,
            last_time: i64::MIN,
        };
        for (record, &(partition, offset)) in records.iter().zip(positions) {
            let end = expected.end.entry(partition).or_insert(0);
            *end = (*end).max(offset + 1);
            *expected.per_partition.entry(partition).or_insert(0) += 1;
            match (record.kind, &record.event) {
                (RecordKind::Valid | RecordKind::Late, Some(event)) => {
                    let time = event.event_time()?;
                    let id = event
                        .order_id
                        .clone()
                        .context("a valid order has an order_id")?;
                    expected.late += usize::from(record.kind == RecordKind::Late);
                    expected.first_time = expected.first_time.min(time.timestamp_micros());
                    expected.last_time = expected.last_time.max(time.timestamp_micros());
                    expected
                        .valid_payloads
                        .insert(record.payload.clone(), id.clone());
                    expected.rows.insert(
                        id,
                        ExpectedRow {
                            partition,
                            offset,
                            event: event.clone(),
                            micros: time.timestamp_micros(),
                            folder: hour_folder(time),
                        },
                    );
                }
                (kind, event) => {
                    let why = match event {
                        None => "malformed".to_string(),
                        Some(e) if e.order_id.is_none() => "null order_id".to_string(),
                        Some(e) if e.customer_id.is_none() => "null customer_id".to_string(),
                        Some(e) if e.amount < 0.0 => "negative amount".to_string(),
                        Some(_) => format!("{kind:?}"),
                    };
                    if let Some(key) = &record.key {
                        expected
                            .rejected_ids
                            .insert(key.clone(), expected.rejected.len());
                    }
                    expected.rejected.push(Rejected {
                        partition,
                        offset,
                        kind,
                        key: record.key.clone().map(String::into_bytes),
                        payload: record.payload.clone(),
                        why,
                    });
                }
            }
        }
        Ok(expected)
    }

    /// Both sets, for the state after a restart with new events.
    fn and(&self, later: &Expected) -> Expected {
        let mut rows = self.rows.clone();
        rows.extend(later.rows.clone());
        let mut rejected = self.rejected.clone();
        let mut rejected_ids = self.rejected_ids.clone();
        for (id, index) in &later.rejected_ids {
            rejected_ids.insert(id.clone(), index + rejected.len());
        }
        rejected.extend(later.rejected.iter().cloned());
        let mut valid_payloads = self.valid_payloads.clone();
        valid_payloads.extend(later.valid_payloads.clone());
        let mut end = self.end.clone();
        for (p, o) in &later.end {
            let e = end.entry(*p).or_insert(0);
            *e = (*e).max(*o);
        }
        let mut per_partition = self.per_partition.clone();
        for (p, n) in &later.per_partition {
            *per_partition.entry(*p).or_insert(0) += n;
        }
        Expected {
            rows,
            rejected,
            rejected_ids,
            valid_payloads,
            end,
            per_partition,
            late: self.late + later.late,
            first_time: self.first_time.min(later.first_time),
            last_time: self.last_time.max(later.last_time),
        }
    }

    fn count(&self, kind: RecordKind) -> usize {
        self.rejected.iter().filter(|r| r.kind == kind).count()
    }

    fn time_span(&self) -> String {
        let show = |micros: i64| {
            DateTime::from_timestamp_micros(micros).map_or_else(
                || micros.to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            )
        };
        format!(
            "event times {} to {} UTC",
            show(self.first_time),
            show(self.last_time)
        )
    }
}

/// `year=2026/month=12/day=1/hour=0`, as Spark's `partitionBy` names the folders.
fn hour_folder(time: DateTime<Utc>) -> String {
    format!(
        "year={}/month={}/day={}/hour={}",
        time.year(),
        time.month(),
        time.day(),
        time.hour()
    )
}

// ------------------------------------------------------------------ the lake, read back

/// The lake as a reader sees it.
#[derive(Default)]
struct Lake {
    exists: bool,
    files: Vec<LakeFile>,
    rows: Vec<LakeRow>,
    /// Files that are not Parquet files a reader would read (temporary files, others).
    leftovers: Vec<String>,
    /// `.parquet` files that do not read, with the error.
    unreadable: Vec<(String, String)>,
}

struct LakeFile {
    path: String,
    folder: String,
    columns: Vec<(String, DataType)>,
    /// The codecs of its column chunks.
    codecs: BTreeSet<String>,
}

/// One row, each column cast to a common type (None: missing column or null).
#[derive(Clone, Default)]
struct LakeRow {
    file: usize,
    folder: String,
    kafka_partition: Option<i64>,
    kafka_offset: Option<i64>,
    order_id: Option<String>,
    customer_id: Option<String>,
    product_id: Option<String>,
    category: Option<String>,
    quantity: Option<i64>,
    unit_price: Option<f64>,
    amount: Option<f64>,
    status: Option<String>,
    event_time: Option<i64>,
}

fn read_lake(root: &Path) -> anyhow::Result<Lake> {
    let mut lake = Lake::default();
    if !root.is_dir() {
        return Ok(lake);
    }
    lake.exists = true;
    let mut stack = vec![root.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                paths.push(path);
            }
        }
    }
    paths.sort();
    for path in paths {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let shown = relative.to_string_lossy().replace('\\', "/");
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('_') {
            continue; // markers such as _SUCCESS: readers skip them
        }
        if !name.ends_with(".parquet") || name.starts_with('.') {
            lake.leftovers.push(shown);
            continue;
        }
        let folder = relative
            .parent()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        match read_parquet(&path) {
            Ok((columns, codecs, batches)) => {
                let file = lake.files.len();
                for batch in &batches {
                    lake.rows.extend(rows_of(batch, file, &folder));
                }
                lake.files.push(LakeFile {
                    path: shown,
                    folder,
                    columns,
                    codecs,
                });
            }
            Err(e) => lake.unreadable.push((shown, format!("{e:#}"))),
        }
    }
    Ok(lake)
}

type ParquetContent = (Vec<(String, DataType)>, BTreeSet<String>, Vec<RecordBatch>);

fn read_parquet(path: &Path) -> anyhow::Result<ParquetContent> {
    let file = std::fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let columns = builder
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let codecs = builder
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|g| g.columns().iter().map(|c| codec_name(c.compression())))
        .collect();
    let batches = builder.build()?.collect::<Result<Vec<_>, _>>()?;
    Ok((columns, codecs, batches))
}

fn codec_name(codec: Compression) -> String {
    match codec {
        Compression::SNAPPY => "SNAPPY".to_string(),
        Compression::UNCOMPRESSED => "UNCOMPRESSED".to_string(),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

fn rows_of(batch: &RecordBatch, file: usize, folder: &str) -> Vec<LakeRow> {
    let as_type = |name: &str, to: &DataType| -> Option<ArrayRef> {
        let column = batch.column_by_name(name)?;
        cast(column, to).ok()
    };
    let utc_micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |name: &str| as_type(name, &DataType::Utf8);
    let int = |name: &str| as_type(name, &DataType::Int64);
    let float = |name: &str| as_type(name, &DataType::Float64);
    let (partition, offset) = (int("kafka_partition"), int("kafka_offset"));
    let (order_id, customer_id) = (text("order_id"), text("customer_id"));
    let (product_id, category, status) = (text("product_id"), text("category"), text("status"));
    let quantity = int("quantity");
    let (unit_price, amount) = (float("unit_price"), float("amount"));
    let event_time = as_type("event_time", &utc_micros);

    let string_at = |a: &Option<ArrayRef>, row: usize| {
        a.as_ref()
            .filter(|a| a.is_valid(row))
            .map(|a| a.as_string::<i32>().value(row).to_string())
    };
    let int_at = |a: &Option<ArrayRef>, row: usize| {
        a.as_ref()
            .filter(|a| a.is_valid(row))
            .map(|a| a.as_primitive::<Int64Type>().value(row))
    };
    let float_at = |a: &Option<ArrayRef>, row: usize| {
        a.as_ref()
            .filter(|a| a.is_valid(row))
            .map(|a| a.as_primitive::<Float64Type>().value(row))
    };
    (0..batch.num_rows())
        .map(|row| LakeRow {
            file,
            folder: folder.to_string(),
            kafka_partition: int_at(&partition, row),
            kafka_offset: int_at(&offset, row),
            order_id: string_at(&order_id, row),
            customer_id: string_at(&customer_id, row),
            product_id: string_at(&product_id, row),
            category: string_at(&category, row),
            quantity: int_at(&quantity, row),
            unit_price: float_at(&unit_price, row),
            amount: float_at(&amount, row),
            status: string_at(&status, row),
            event_time: event_time
                .as_ref()
                .filter(|a| a.is_valid(row))
                .map(|a| a.as_primitive::<TimestampMicrosecondType>().value(row)),
        })
        .collect()
}

// ------------------------------------------------------------------ Kafka, read back

/// A record of the dead-letter topic.
struct Letter {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    reason: Option<String>,
}

/// Every committed record of `topic`, read to its end.
async fn read_dead_letters(broker: &Broker, topic: &str) -> anyhow::Result<Vec<Letter>> {
    let mut config = broker.consumer_config(&unique_name("parquet-grader-dlq"));
    config
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().context("creating a consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .with_context(|| format!("reading the metadata of {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            assignment.add_partition_offset(&topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut open: BTreeSet<i32> = partitions.into_iter().collect();
        let mut letters = Vec::new();
        let started = Instant::now();
        while !open.is_empty() {
            if started.elapsed() > READ_DEADLINE {
                bail!(
                    "could not read the dead-letter topic {topic} to its end within {} s \
                     (partitions {open:?} never reached it)",
                    READ_DEADLINE.as_secs()
                );
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => bail!("reading the dead-letter topic {topic}: {e}"),
                Some(Ok(m)) => {
                    let reason = m.headers().and_then(|h| {
                        h.iter().find(|h| h.key == "dlq.reason").map(|h| {
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()
                        })
                    });
                    letters.push(Letter {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        reason,
                    });
                }
            }
        }
        let _ = consumer.unassign();
        Ok(letters)
    })
    .await
    .context("the dead-letter reader panicked")?
}

/// `checkpoint.json` as step 7 writes it.
struct CheckpointFile {
    /// `checkpoint.json`, or `partitions/*.json` (the per-partition layout).
    name: &'static str,
    offsets: BTreeMap<i32, i64>,
    topic: Option<String>,
    batch_id: Option<i64>,
}

/// `Ok(None)`: no checkpoint file; `Err`: one that does not follow the contract.
///
/// Without `checkpoint.json`, the per-partition layout is read instead: one
/// `partitions/<partition>.json` per Kafka partition, each with `topic`, `partition`,
/// `batch_id` and `offset` (the next offset to read; `null` before the partition's first
/// batch). They are merged into one checkpoint: the offsets of the partitions that have
/// one, the largest `batch_id`, the topic they all name.
fn read_checkpoint(dir: &Path) -> Result<Option<CheckpointFile>, String> {
    let path = dir.join("checkpoint.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return read_partition_checkpoints(&dir.join("partitions"));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("checkpoint.json is not JSON: {e}"))?;
    let offsets = value["offsets"]
        .as_object()
        .ok_or("checkpoint.json has no \"offsets\" object")?;
    let mut parsed = BTreeMap::new();
    for (partition, offset) in offsets {
        let p = partition
            .parse::<i32>()
            .map_err(|_| format!("checkpoint.json: \"{partition}\" is not a partition number"))?;
        let o = offset
            .as_i64()
            .ok_or_else(|| format!("checkpoint.json: the offset of partition {p} is {offset}"))?;
        parsed.insert(p, o);
    }
    Ok(Some(CheckpointFile {
        name: "checkpoint.json",
        offsets: parsed,
        topic: value["topic"].as_str().map(str::to_string),
        batch_id: value["batch_id"].as_i64(),
    }))
}

/// The per-partition layout of [`read_checkpoint`], merged; `Ok(None)` without the folder.
fn read_partition_checkpoints(folder: &Path) -> Result<Option<CheckpointFile>, String> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot list {}: {e}", folder.display())),
    };
    let mut merged = CheckpointFile {
        name: "partitions/*.json",
        offsets: BTreeMap::new(),
        topic: None,
        batch_id: None,
    };
    let mut found = false;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", folder.display()))?
            .path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue; // locks and temporary files
        };
        let shown = format!("partitions/{name}.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{shown} is not JSON: {e}"))?;
        let partition = value["partition"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| p.to_string() == name)
            .ok_or_else(|| format!("{shown} needs \"partition\": {name}"))?;
        let topic = value["topic"].as_str().map(str::to_string);
        if found && topic != merged.topic {
            return Err(format!(
                "{shown} is for topic {topic:?}, another partition's for {:?}",
                merged.topic
            ));
        }
        found = true;
        merged.topic = topic;
        match &value["offset"] {
            serde_json::Value::Null => {}
            offset => {
                let o = offset
                    .as_i64()
                    .ok_or_else(|| format!("{shown}: the offset is {offset}"))?;
                merged.offsets.insert(partition, o);
                merged.batch_id = merged.batch_id.max(value["batch_id"].as_i64());
            }
        }
    }
    if !found {
        return Ok(None);
    }
    if merged.offsets.is_empty() {
        // Claimed, nothing committed yet: a checkpoint with no batch.
        merged.batch_id = merged.batch_id.or(Some(-1));
    }
    Ok(Some(merged))
}

// ------------------------------------------------------------------ the lake against the records

/// What the rows of a lake say about a set of records.
struct Found {
    /// Lake rows of each valid order.
    rows_of: HashMap<String, Vec<usize>>,
    missing: Vec<String>,
    /// Valid orders with more than one row.
    twice: Vec<String>,
    /// Rows of rejected records (or with a null `order_id`), with why they are invalid.
    kept: Vec<(usize, String)>,
    /// Rows that match no record produced.
    unknown: Vec<usize>,
    /// Rows of valid orders in another folder than their hour's.
    wrong_folder: Vec<(String, usize)>,
    /// Rows whose payload columns differ, with the columns.
    differ: Vec<(String, usize, Vec<&'static str>)>,
    /// Rows whose `event_time` differs.
    wrong_time: Vec<(String, usize)>,
}

fn find(lake: &Lake, expected: &Expected) -> Found {
    let mut found = Found {
        rows_of: HashMap::new(),
        missing: Vec::new(),
        twice: Vec::new(),
        kept: Vec::new(),
        unknown: Vec::new(),
        wrong_folder: Vec::new(),
        differ: Vec::new(),
        wrong_time: Vec::new(),
    };
    for (index, row) in lake.rows.iter().enumerate() {
        match &row.order_id {
            None => found.kept.push((index, "null order_id".to_string())),
            Some(id) if expected.rows.contains_key(id) => {
                found.rows_of.entry(id.clone()).or_default().push(index);
            }
            Some(id) => match expected.rejected_ids.get(id) {
                Some(r) => found.kept.push((index, expected.rejected[*r].why.clone())),
                None => found.unknown.push(index),
            },
        }
    }
    for (id, want) in &expected.rows {
        let Some(rows) = found.rows_of.get(id) else {
            found.missing.push(id.clone());
            continue;
        };
        if rows.len() > 1 {
            found.twice.push(id.clone());
        }
        let index = rows[0];
        let row = &lake.rows[index];
        if row.folder != want.folder {
            found.wrong_folder.push((id.clone(), index));
        }
        if row.event_time != Some(want.micros) {
            found.wrong_time.push((id.clone(), index));
        }
        let e = &want.event;
        let text = |v: &Option<String>, w: &str| v.as_deref() == Some(w);
        let mut columns = Vec::new();
        for (column, same) in [
            (
                "kafka_partition",
                row.kafka_partition == Some(i64::from(want.partition)),
            ),
            ("kafka_offset", row.kafka_offset == Some(want.offset)),
            ("customer_id", row.customer_id == e.customer_id),
            ("product_id", text(&row.product_id, &e.product_id)),
            ("category", text(&row.category, &e.category)),
            ("quantity", row.quantity == Some(i64::from(e.quantity))),
            ("unit_price", row.unit_price == Some(e.unit_price)),
            ("amount", row.amount == Some(e.amount)),
            ("status", text(&row.status, &e.status)),
        ] {
            if !same {
                columns.push(column);
            }
        }
        if !columns.is_empty() {
            found.differ.push((id.clone(), index, columns));
        }
    }
    found
}

/// What the dead-letter topic says about the rejected records.
struct DeadLetters {
    /// Rejected records with no dead letter.
    missing: Vec<usize>,
    /// Rejected records with more than one.
    twice: Vec<(usize, usize)>,
    /// Dead letters that are valid records.
    valid: Vec<String>,
    /// Dead letters whose value is no record produced.
    unknown: usize,
    /// Dead letters of the right value with another key.
    key_changed: usize,
    /// Dead letters without a `dlq.reason` header (or an empty one).
    no_reason: usize,
    matched: usize,
}

fn match_letters(letters: &[Letter], expected: &Expected) -> DeadLetters {
    let mut by_payload: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, r) in expected.rejected.iter().enumerate() {
        by_payload.entry(&r.payload).or_default().push(i);
    }
    let mut seen = vec![0usize; expected.rejected.len()];
    let mut result = DeadLetters {
        missing: Vec::new(),
        twice: Vec::new(),
        valid: Vec::new(),
        unknown: 0,
        key_changed: 0,
        no_reason: 0,
        matched: 0,
    };
    for letter in letters {
        let value = letter.value.as_deref().unwrap_or_default();
        if let Some(candidates) = by_payload.get(value) {
            // Identical payloads (rare) take their dead letters in turn.
            let i = *candidates
                .iter()
                .min_by_key(|i| seen[**i])
                .expect("a payload has a record");
            seen[i] += 1;
            result.matched += 1;
            if letter.key != expected.rejected[i].key {
                result.key_changed += 1;
            }
            if letter.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                result.no_reason += 1;
            }
        } else if let Some(id) = expected.valid_payloads.get(value) {
            result.valid.push(id.clone());
        } else {
            result.unknown += 1;
        }
    }
    for (i, n) in seen.iter().enumerate() {
        match n {
            0 => result.missing.push(i),
            1 => {}
            n => result.twice.push((i, *n)),
        }
    }
    result
}

// ------------------------------------------------------------------ the checklist

/// The seven steps graded on the first run; and whether the lake is good enough for a
/// restart (and kills) to be graded.
fn step_checks(job: &Job, run: &Run, state: &State, expected: &Expected) -> (Vec<Check>, bool) {
    let lake = &state.lake;
    let found = find(lake, expected);
    let letters = match_letters(&state.letters, expected);
    let mut checks = Vec::new();

    // Steps 1-2: the program ran and read every partition.
    let wrote_nothing = lake.rows.is_empty()
        && lake.unreadable.is_empty()
        && state.letters.is_empty()
        && state.committed.is_empty();
    let mut unread = Vec::new();
    for (partition, n) in &expected.per_partition {
        let in_lake = lake.rows.iter().any(|r| {
            r.order_id
                .as_ref()
                .and_then(|id| expected.rows.get(id))
                .is_some_and(|w| w.partition == *partition)
        });
        let dead = letters.missing.len() < expected.rejected.len()
            && expected
                .rejected
                .iter()
                .enumerate()
                .any(|(i, r)| r.partition == *partition && !letters.missing.contains(&i));
        if !in_lake && !dead {
            unread.push(format!(
                "partition {partition} ({} records)",
                thousands(*n as u64)
            ));
        }
    }
    let read = match run.problem() {
        Some(problem) => Check::fail("reads the topic", problem).with_detail(run.stderr_tail()),
        None if wrote_nothing => Check::fail(
            "reads the topic",
            format!(
                "nothing came out: no row in the lake, no dead letter, no committed offset \
                 (the program exited after {:.1} s)",
                run.elapsed.as_secs_f64()
            ),
        )
        .with_detail(if run.elapsed >= Duration::from_secs(IDLE_S) {
            format!("{SUBSCRIBE_HINT}\n{}", run.stderr_tail())
        } else {
            run.stderr_tail()
        }),
        None if !unread.is_empty() => Check::fail(
            "reads the topic",
            format!(
                "nothing from {} in the lake or the dead-letter topic: assign (or subscribe to) \
                 every partition",
                unread.join(", ")
            ),
        ),
        None => Check::pass(
            "reads the topic",
            format!(
                "{} records from {PARTITIONS} partitions; exited 0 after {:.1} s",
                thousands(expected.per_partition.values().sum::<usize>() as u64),
                run.elapsed.as_secs_f64()
            ),
        ),
    };
    let ran = run.problem().is_none();
    checks.push(read);
    if wrote_nothing {
        for step in [
            "parses JSON",
            "event time",
            "partition by hour",
            "filters invalid",
            "dead letters",
            "writes Parquet",
            "checkpoint",
            "commit",
        ] {
            checks.push(Check::skip(step, "not run: the program wrote nothing"));
        }
        return (checks, false);
    }

    checks.push(parse_check(lake, &found, expected));
    checks.push(event_time_check(lake, &found, expected));
    checks.push(partition_check(lake, &found, expected));
    checks.push(filter_check(lake, &found, expected));
    checks.push(dead_letter_check(&letters, expected, false));
    checks.push(write_check(lake, &found, expected, ""));
    checks.push(checkpoint_check(job, &state.checkpoint, &expected.end));
    checks.push(commit_check(job, &state.committed, &expected.end));
    // A restart is graded against a first run that has every valid order once.
    let once = found.missing.is_empty() && found.twice.is_empty();
    (checks, ran && once)
}

/// The expected columns of a file, in order.
fn expected_columns() -> Vec<(String, DataType)> {
    let mut columns = vec![
        ("kafka_partition".to_string(), DataType::Int32),
        ("kafka_offset".to_string(), DataType::Int64),
    ];
    for field in fixtures::events::order_event_schema().fields() {
        if field.name() != "timestamp" {
            columns.push((field.name().clone(), field.data_type().clone()));
        }
    }
    columns.push((
        "event_time".to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    ));
    columns
}

/// Strings may come back as any of Arrow's string types: they are the same in Parquet.
fn same_type(expected: &DataType, actual: &DataType) -> bool {
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    expected == actual || (text(expected) && text(actual))
}

fn columns_table(columns: &[(String, DataType)]) -> String {
    let rows: Vec<Vec<String>> = columns
        .iter()
        .map(|(n, t)| vec![n.clone(), t.to_string()])
        .collect();
    text_table(&["column", "type"], &rows)
}

/// The first file where a column named in `of_interest` is missing or of another type:
/// what is wrong, and the file's columns beside the expected ones.
fn schema_problem(lake: &Lake, of_interest: &[&str]) -> Option<(String, String)> {
    let expected = expected_columns();
    let keep = |name: &str| of_interest.contains(&name);
    for file in &lake.files {
        let mut problems = Vec::new();
        for (name, want) in expected.iter().filter(|(n, _)| keep(n)) {
            match file.columns.iter().find(|(n, _)| n == name) {
                None => problems.push(format!("no column {name}")),
                Some((_, got)) if !same_type(want, got) => {
                    problems.push(format!("{name} is {got}, expected {want}"))
                }
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            continue;
        }
        let detail = format!(
            "the columns of {}:\n{}",
            file.path,
            side_by_side(&columns_table(&expected), &columns_table(&file.columns))
        );
        return Some((
            format!("{} (in {})", problems.join("; "), file.path),
            detail,
        ));
    }
    None
}

const PAYLOAD_COLUMNS: [&str; 10] = [
    "kafka_partition",
    "kafka_offset",
    "order_id",
    "customer_id",
    "product_id",
    "category",
    "quantity",
    "unit_price",
    "amount",
    "status",
];

fn parse_check(lake: &Lake, found: &Found, expected: &Expected) -> Check {
    const STEP: &str = "parses JSON";
    if let Some((summary, detail)) = schema_problem(lake, &PAYLOAD_COLUMNS) {
        return Check::fail(STEP, summary).with_detail(detail);
    }
    // Extra columns, and the order: kafka_partition, kafka_offset, the payload, event_time.
    let allowed: BTreeSet<&str> = PAYLOAD_COLUMNS
        .iter()
        .copied()
        .chain(["event_time", "timestamp"])
        .chain(PARTITION_COLUMNS)
        .collect();
    for file in &lake.files {
        let extra: Vec<&str> = file
            .columns
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !allowed.contains(n))
            .collect();
        if !extra.is_empty() {
            return Check::fail(
                STEP,
                format!(
                    "columns that are not in the contract: {} (in {})",
                    extra.join(", "),
                    file.path
                ),
            )
            .with_detail(side_by_side(
                &columns_table(&expected_columns()),
                &columns_table(&file.columns),
            ));
        }
        let ordered: Vec<&str> = PAYLOAD_COLUMNS
            .iter()
            .copied()
            .chain(["event_time"])
            .collect();
        let order: Vec<&str> = file
            .columns
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| ordered.contains(n))
            .collect();
        let want: Vec<&str> = ordered
            .iter()
            .copied()
            .filter(|n| order.contains(n))
            .collect();
        if order != want {
            return Check::fail(
                STEP,
                format!(
                    "the columns are in another order (in {}): kafka_partition, kafka_offset, then \
                     the payload's fields in the schema's order, event_time last",
                    file.path
                ),
            )
            .with_detail(side_by_side(
                &columns_table(&expected_columns()),
                &columns_table(&file.columns),
            ));
        }
    }
    if !found.differ.is_empty() {
        let sample: Vec<&(String, usize, Vec<&str>)> = found.differ.iter().take(SAMPLE).collect();
        let mut columns: Vec<&str> = vec!["order_id"];
        for (_, _, differing) in &sample {
            for c in differing {
                if !columns.contains(c) {
                    columns.push(c);
                }
            }
        }
        let all: BTreeSet<&str> = found
            .differ
            .iter()
            .flat_map(|d| d.2.iter().copied())
            .collect();
        let want: Vec<Vec<String>> = sample
            .iter()
            .map(|(id, _, _)| expected_values(&expected.rows[id], &columns))
            .collect();
        let got: Vec<Vec<String>> = sample
            .iter()
            .map(|(_, i, _)| lake_values(&lake.rows[*i], &columns))
            .collect();
        return Check::fail(
            STEP,
            format!(
                "{} differ for {} rows ({} shown)",
                all.into_iter().collect::<Vec<_>>().join(", "),
                thousands(found.differ.len() as u64),
                sample.len()
            ),
        )
        .with_detail(side_by_side(
            &text_table(&columns, &want),
            &text_table(&columns, &got),
        ));
    }
    let checked = expected.rows.len() - found.missing.len();
    Check::pass(
        STEP,
        format!(
            "the 9 fields with their types; values exact in {} rows",
            thousands(checked as u64)
        ),
    )
}

fn event_time_check(lake: &Lake, found: &Found, expected: &Expected) -> Check {
    const STEP: &str = "event time";
    if let Some((summary, detail)) = schema_problem(lake, &["event_time"]) {
        return Check::fail(STEP, summary).with_detail(detail);
    }
    if let Some(file) = lake
        .files
        .iter()
        .find(|f| f.columns.iter().any(|(n, _)| n == "timestamp"))
    {
        return Check::fail(
            STEP,
            format!(
                "the text column timestamp is still in the files ({}): drop it once event_time \
                 is parsed",
                file.path
            ),
        );
    }
    if !found.wrong_time.is_empty() {
        let sample: Vec<&(String, usize)> = found.wrong_time.iter().take(SAMPLE).collect();
        let header = ["order_id", "timestamp", "event_time"];
        let want: Vec<Vec<String>> = sample
            .iter()
            .map(|(id, _)| {
                let w = &expected.rows[id];
                vec![
                    id.clone(),
                    w.event.timestamp.clone(),
                    show_micros(Some(w.micros)),
                ]
            })
            .collect();
        let got: Vec<Vec<String>> = sample
            .iter()
            .map(|(id, i)| {
                let w = &expected.rows[id];
                vec![
                    id.clone(),
                    w.event.timestamp.clone(),
                    show_micros(lake.rows[*i].event_time),
                ]
            })
            .collect();
        return Check::fail(
            STEP,
            format!(
                "event_time differs from the payload's timestamp (read as UTC) for {} rows ({} shown)",
                thousands(found.wrong_time.len() as u64),
                sample.len()
            ),
        )
        .with_detail(side_by_side(&text_table(&header, &want), &text_table(&header, &got)));
    }
    Check::pass(
        STEP,
        "event_time: Timestamp(µs, UTC), the payload's instant in every row",
    )
}

fn show_micros(micros: Option<i64>) -> String {
    match micros.and_then(DateTime::from_timestamp_micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => "null".to_string(),
    }
}

/// How the folders of the lake's files differ from `year=…/month=…/day=…/hour=…`.
fn layout_problem(lake: &Lake) -> Option<String> {
    let mut padded = None;
    for file in &lake.files {
        let parts: Vec<&str> = file.folder.split('/').filter(|p| !p.is_empty()).collect();
        let keys: Vec<&str> = parts
            .iter()
            .map(|p| p.split_once('=').map_or("", |(k, _)| k))
            .collect();
        if keys == PARTITION_COLUMNS {
            for part in &parts {
                let value = part.split_once('=').map_or("", |(_, v)| v);
                match value.parse::<u32>() {
                    Ok(n) if n.to_string() == value => {}
                    Ok(_) => padded = padded.or(Some((part.to_string(), file.folder.clone()))),
                    Err(_) => {
                        return Some(format!("{part} in {}/ is not a number", file.folder));
                    }
                }
            }
            continue;
        }
        let example = if parts.is_empty() {
            "the top of the lake".to_string()
        } else {
            format!("{}/", file.folder)
        };
        return Some(match keys.as_slice() {
            ["year", "month", "day"] => {
                format!("files are in day folders ({example}), not hour folders")
            }
            [] => format!(
                "files are at the top of the lake ({}), not in year=…/month=…/day=…/hour=… folders",
                file.path
            ),
            _ => format!("files are in {example}, not in year=…/month=…/day=…/hour=…/ folders"),
        });
    }
    padded.map(|(part, folder)| {
        let (key, value) = part.split_once('=').unwrap_or_default();
        format!(
            "folders are zero-padded ({folder}/): Spark writes {key}={}, and readers \
             compare the folder names",
            value.parse::<u32>().unwrap_or_default()
        )
    })
}

fn partition_check(lake: &Lake, found: &Found, expected: &Expected) -> Check {
    const STEP: &str = "partition by hour";
    let sample_table = |rows: &[(String, usize)]| {
        let header = ["order_id", "event_time", "folder"];
        let sample: Vec<&(String, usize)> = rows.iter().take(SAMPLE).collect();
        let want: Vec<Vec<String>> = sample
            .iter()
            .map(|(id, _)| {
                let w = &expected.rows[id];
                vec![
                    id.clone(),
                    show_micros(Some(w.micros)),
                    format!("{}/", w.folder),
                ]
            })
            .collect();
        let got: Vec<Vec<String>> = sample
            .iter()
            .map(|(id, i)| {
                let w = &expected.rows[id];
                vec![
                    id.clone(),
                    show_micros(Some(w.micros)),
                    format!("{}/", lake.rows[*i].folder),
                ]
            })
            .collect();
        side_by_side(&text_table(&header, &want), &text_table(&header, &got))
    };
    if let Some(problem) = layout_problem(lake) {
        return Check::fail(STEP, problem).with_detail(sample_table(&found.wrong_folder));
    }
    if let Some(file) = lake.files.iter().find(|f| {
        f.columns
            .iter()
            .any(|(n, _)| PARTITION_COLUMNS.contains(&n.as_str()))
    }) {
        return Check::fail(
            STEP,
            format!(
                "the files repeat the partition columns ({}): with hive partitioning year, \
                 month, day and hour live in the folder names only",
                file.path
            ),
        );
    }
    if !found.wrong_folder.is_empty() {
        return Check::fail(
            STEP,
            format!(
                "{} rows are not in the folder of their event hour (UTC) ({} shown)",
                thousands(found.wrong_folder.len() as u64),
                found.wrong_folder.len().min(SAMPLE)
            ),
        )
        .with_detail(sample_table(&found.wrong_folder));
    }
    let hours: BTreeSet<&str> = lake.files.iter().map(|f| f.folder.as_str()).collect();
    Check::pass(
        STEP,
        format!(
            "{} hour folders (year=…/month=…/day=…/hour=…), every row in its event hour's",
            hours.len()
        ),
    )
}

fn filter_check(lake: &Lake, found: &Found, expected: &Expected) -> Check {
    const STEP: &str = "filters invalid";
    if found.kept.is_empty() {
        return Check::pass(
            STEP,
            format!(
                "none of the {} invalid and {} malformed records in the lake",
                expected.count(RecordKind::Invalid),
                expected.count(RecordKind::Malformed)
            ),
        );
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, why) in &found.kept {
        *reasons.entry(why.as_str()).or_insert(0) += 1;
    }
    let reasons: Vec<String> = reasons
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    let header = ["order_id", "customer_id", "amount", "why it is invalid"];
    let rows: Vec<Vec<String>> = found
        .kept
        .iter()
        .take(SAMPLE)
        .map(|(i, why)| {
            let r = &lake.rows[*i];
            vec![
                opt(&r.order_id),
                opt(&r.customer_id),
                r.amount.map_or("null".to_string(), |a| a.to_string()),
                why.clone(),
            ]
        })
        .collect();
    Check::fail(
        STEP,
        format!(
            "{} rejected records kept in the lake ({}; {} shown)",
            thousands(found.kept.len() as u64),
            reasons.join(", "),
            found.kept.len().min(SAMPLE)
        ),
    )
    .with_detail(text_table(&header, &rows))
}

fn dead_letter_check(letters: &DeadLetters, expected: &Expected, killed: bool) -> Check {
    const STEP: &str = "dead letters";
    let total = expected.rejected.len();
    let mut problems = Vec::new();
    if !letters.missing.is_empty() {
        problems.push(format!(
            "{} of {} rejected records missing from the dead-letter topic",
            thousands(letters.missing.len() as u64),
            thousands(total as u64)
        ));
    }
    if !letters.twice.is_empty() && !killed {
        problems.push(format!(
            "{} sent more than once",
            thousands(letters.twice.len() as u64)
        ));
    }
    if !letters.valid.is_empty() {
        problems.push(format!(
            "{} valid orders sent there",
            thousands(letters.valid.len() as u64)
        ));
    }
    if letters.unknown > 0 {
        problems.push(format!(
            "{} dead letters are not the rejected record's value, unchanged",
            thousands(letters.unknown as u64)
        ));
    }
    if letters.key_changed > 0 {
        problems.push(format!(
            "{} have another key than the record's",
            thousands(letters.key_changed as u64)
        ));
    }
    if letters.no_reason > 0 {
        problems.push(format!(
            "{} have no dlq.reason header",
            thousands(letters.no_reason as u64)
        ));
    }
    if problems.is_empty() {
        let mut summary = format!(
            "{} invalid and {} malformed records, each with its reason",
            expected.count(RecordKind::Invalid),
            expected.count(RecordKind::Malformed)
        );
        if killed && !letters.twice.is_empty() {
            let _ = write!(
                summary,
                "; {} sent twice around a kill (at least once is the contract under kills)",
                letters.twice.len()
            );
        } else {
            summary.push_str(", once");
        }
        return Check::pass(STEP, summary);
    }
    let header = ["partition", "offset", "why", "value"];
    let show = |i: usize| {
        let r = &expected.rejected[i];
        vec![
            r.partition.to_string(),
            r.offset.to_string(),
            r.why.clone(),
            shorten(&String::from_utf8_lossy(&r.payload), 60),
        ]
    };
    let mut detail = String::new();
    if !letters.missing.is_empty() {
        let rows: Vec<Vec<String>> = letters
            .missing
            .iter()
            .take(SAMPLE)
            .map(|i| show(*i))
            .collect();
        let _ = write!(
            detail,
            "missing ({} shown):\n{}",
            letters.missing.len().min(SAMPLE),
            text_table(&header, &rows)
        );
    }
    if !letters.twice.is_empty() && !killed {
        let header = ["partition", "offset", "why", "times"];
        let rows: Vec<Vec<String>> = letters
            .twice
            .iter()
            .take(SAMPLE)
            .map(|(i, n)| {
                let mut row = show(*i);
                row[3] = n.to_string();
                row
            })
            .collect();
        let _ = write!(
            detail,
            "\nmore than once ({} shown):\n{}",
            letters.twice.len().min(SAMPLE),
            text_table(&header, &rows)
        );
    }
    Check::fail(STEP, problems.join("; ")).with_detail(detail)
}

fn write_check(lake: &Lake, found: &Found, expected: &Expected, when: &str) -> Check {
    const STEP: &str = "writes Parquet";
    let mut problems = Vec::new();
    let mut detail = String::new();
    if !lake.exists {
        return Check::fail(
            STEP,
            format!("no lake: the --output folder was never created{when}"),
        );
    }
    if !lake.unreadable.is_empty() {
        problems.push(format!(
            "{} .parquet files do not read ({})",
            lake.unreadable.len(),
            lake.unreadable[0].0
        ));
        let _ = writeln!(detail, "{}: {}", lake.unreadable[0].0, lake.unreadable[0].1);
    }
    if !lake.leftovers.is_empty() {
        problems.push(format!(
            "{} files in the lake are not .parquet files ({}): a restart must remove what a \
             killed run left, and only finished files may have a .parquet name",
            lake.leftovers.len(),
            shorten(
                &lake.leftovers[..lake.leftovers.len().min(2)].join(", "),
                120
            )
        ));
    }
    let not_snappy: Vec<&LakeFile> = lake
        .files
        .iter()
        .filter(|f| f.codecs.iter().any(|c| c != "SNAPPY"))
        .collect();
    if let Some(file) = not_snappy.first() {
        problems.push(format!(
            "{} files are not Snappy-compressed ({}: {})",
            not_snappy.len(),
            file.path,
            file.codecs.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !found.missing.is_empty() {
        problems.push(format!(
            "{} of {} valid orders missing from the lake{when}",
            thousands(found.missing.len() as u64),
            thousands(expected.rows.len() as u64)
        ));
        let header = ["order_id", "partition", "offset", "event_time"];
        let rows: Vec<Vec<String>> = found
            .missing
            .iter()
            .take(SAMPLE)
            .map(|id| {
                let w = &expected.rows[id];
                vec![
                    id.clone(),
                    w.partition.to_string(),
                    w.offset.to_string(),
                    show_micros(Some(w.micros)),
                ]
            })
            .collect();
        let _ = write!(
            detail,
            "missing ({} shown):\n{}\n",
            found.missing.len().min(SAMPLE),
            text_table(&header, &rows)
        );
    }
    if !found.twice.is_empty() {
        problems.push(twice_summary(found, when));
        let _ = write!(detail, "{}", twice_table(lake, found, expected));
    }
    if !found.unknown.is_empty() {
        problems.push(format!(
            "{} rows match no order that was produced",
            thousands(found.unknown.len() as u64)
        ));
    }
    if problems.is_empty() {
        return Check::pass(
            STEP,
            format!(
                "{} valid orders once each in {} Snappy files",
                thousands(expected.rows.len() as u64),
                lake.files.len()
            ),
        );
    }
    Check::fail(STEP, problems.join("; ")).with_detail(detail)
}

/// `412 rows written twice after a restart (3 shown)`; rows written three times or more
/// are counted once per extra copy.
fn twice_summary(found: &Found, when: &str) -> String {
    let extra: usize = found
        .twice
        .iter()
        .map(|id| found.rows_of[id].len() - 1)
        .sum();
    let shown = found.twice.len().min(SAMPLE);
    if extra == found.twice.len() {
        format!(
            "{} rows written twice{when} ({shown} shown)",
            thousands(extra as u64)
        )
    } else {
        format!(
            "{} rows written more than once{when}, {} extra copies ({shown} shown)",
            thousands(found.twice.len() as u64),
            thousands(extra as u64)
        )
    }
}

fn twice_table(lake: &Lake, found: &Found, expected: &Expected) -> String {
    let header = ["order_id", "rows", "files"];
    // The files of one order's rows: `folder/{a, b}` when they share a folder.
    let file_names = |id: &String| {
        let paths: Vec<&str> = found.rows_of[id]
            .iter()
            .map(|i| lake.files[lake.rows[*i].file].path.as_str())
            .collect();
        let folders: BTreeSet<&str> = paths
            .iter()
            .map(|p| p.rsplit_once('/').map_or("", |(f, _)| f))
            .collect();
        match folders.iter().next() {
            Some(folder) if folders.len() == 1 && !folder.is_empty() => {
                let names: Vec<&str> = paths.iter().map(|p| &p[folder.len() + 1..]).collect();
                format!("{folder}/{{{}}}", names.join(", "))
            }
            _ => paths.join(", "),
        }
    };
    let sample: Vec<&String> = found.twice.iter().take(SAMPLE).collect();
    let want: Vec<Vec<String>> = sample
        .iter()
        .map(|id| {
            vec![
                (*id).clone(),
                "1".to_string(),
                format!("{}/", expected.rows[*id].folder),
            ]
        })
        .collect();
    let got: Vec<Vec<String>> = sample
        .iter()
        .map(|id| {
            vec![
                (*id).clone(),
                found.rows_of[*id].len().to_string(),
                shorten(&file_names(id), 100),
            ]
        })
        .collect();
    side_by_side(&text_table(&header, &want), &text_table(&header, &got))
}

fn show_offsets(offsets: &BTreeMap<i32, i64>) -> String {
    let parts: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}: {o}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn checkpoint_check(
    job: &Job,
    checkpoint: &Result<Option<CheckpointFile>, String>,
    end: &BTreeMap<i32, i64>,
) -> Check {
    const STEP: &str = "checkpoint";
    let format = "{\"batch_id\": 3, \"topic\": \"orders\", \"offsets\": {\"0\": 120, \"1\": 118}}";
    let saved = match checkpoint {
        Err(problem) => {
            return Check::fail(STEP, problem.clone())
                .with_detail(format!("expected (step 7): {format}"));
        }
        Ok(None) => {
            return Check::fail(
                STEP,
                format!(
                    "no checkpoint.json in --checkpoint {}",
                    job.checkpoint.display()
                ),
            )
            .with_detail(format!(
                "expected (step 7), replaced atomically after each batch: {format}"
            ));
        }
        Ok(Some(saved)) => saved,
    };
    if saved.topic.as_deref() != Some(job.topic.as_str()) || saved.batch_id.is_none() {
        return Check::fail(
            STEP,
            format!(
                "{} needs \"batch_id\" (a number) and \"topic\" ({})",
                saved.name, job.topic
            ),
        )
        .with_detail(format!("expected (step 7): {format}"));
    }
    if &saved.offsets != end {
        return Check::fail(
            STEP,
            format!(
                "{} has the offsets {}, the topic ends at {} (the next offset to \
                 read, per partition)",
                saved.name,
                show_offsets(&saved.offsets),
                show_offsets(end)
            ),
        );
    }
    Check::pass(
        STEP,
        format!(
            "{} at the end of the topic {}",
            saved.name,
            show_offsets(end)
        ),
    )
}

fn commit_check(job: &Job, committed: &BTreeMap<i32, i64>, end: &BTreeMap<i32, i64>) -> Check {
    const STEP: &str = "commit";
    if committed.is_empty() {
        let check = Check::fail(
            STEP,
            format!("offsets never committed for group {}", job.group),
        );
        return if job.mock {
            check.with_detail(
                "On the mock cluster, offsets sent in a Kafka transaction \
                 (send_offsets_to_transaction) are not stored: commit through the consumer, \
                 or grade against a real broker (KAFKA_BOOTSTRAP_SERVERS).",
            )
        } else {
            check
        };
    }
    if committed != end {
        return Check::fail(
            STEP,
            format!(
                "group {} committed {}, the topic ends at {}: a restart would read again what \
                 lies between",
                job.group,
                show_offsets(committed),
                show_offsets(end)
            ),
        );
    }
    Check::pass(
        STEP,
        format!(
            "group {} at the end of the topic {}",
            job.group,
            show_offsets(end)
        ),
    )
}

// ------------------------------------------------------------------ restarts

async fn restart_check(
    program: &Program,
    options: &Options,
    broker: &Broker,
    job: &Job,
    before: &State,
    expected: &Expected,
    second: &[GeneratedRecord],
) -> anyhow::Result<Check> {
    const STEP: &str = "restart";
    // Nothing new: nothing may be added.
    let run = job.run(program, options, IDLE_S).await?;
    if let Some(problem) = run.problem() {
        return Ok(
            Check::fail(STEP, format!("the restart with no new events: {problem}"))
                .with_detail(run.stderr_tail()),
        );
    }
    let idle = job.observe(broker).await?;
    let found = find(&idle.lake, expected);
    let added_rows = idle.lake.rows.len() as i64 - before.lake.rows.len() as i64;
    let added_letters = idle.letters.len() as i64 - before.letters.len() as i64;
    if added_rows != 0 || added_letters != 0 {
        let mut problems = Vec::new();
        if !found.twice.is_empty() {
            problems.push(twice_summary(&found, " after a restart"));
        } else if added_rows != 0 {
            problems.push(format!(
                "a restart with no new events changed the lake's rows from {} to {}",
                thousands(before.lake.rows.len() as u64),
                thousands(idle.lake.rows.len() as u64)
            ));
        }
        if added_letters > 0 {
            problems.push(format!(
                "{} dead letters sent again",
                thousands(added_letters as u64)
            ));
        }
        let detail = if found.twice.is_empty() {
            String::new()
        } else {
            twice_table(&idle.lake, &found, expected)
        };
        let hint = " (a restart resumes where the checkpoint says, not at the beginning)";
        return Ok(Check::fail(STEP, problems.join("; ") + hint).with_detail(detail));
    }

    // New events: they, and only they, are added, once.
    let positions = broker.produce_events(&job.topic, second).await?;
    let later = Expected::new(second, &positions)?;
    let all = expected.and(&later);
    let run = job.run(program, options, IDLE_S).await?;
    if let Some(problem) = run.problem() {
        return Ok(Check::fail(
            STEP,
            format!(
                "the restart with {} new events: {problem}",
                thousands(second.len() as u64)
            ),
        )
        .with_detail(run.stderr_tail()));
    }
    let after = job.observe(broker).await?;
    let found = find(&after.lake, &all);
    let letters = match_letters(&after.letters, &all);
    let mut problems = Vec::new();
    let mut detail = String::new();
    if !found.twice.is_empty() {
        problems.push(twice_summary(&found, " after a restart"));
        detail.push_str(&twice_table(&after.lake, &found, &all));
    }
    let new_missing = found
        .missing
        .iter()
        .filter(|id| later.rows.contains_key(*id))
        .count();
    if new_missing > 0 {
        problems.push(format!(
            "{} of the {} new valid orders missing after the restart",
            thousands(new_missing as u64),
            thousands(later.rows.len() as u64)
        ));
    }
    if found.missing.len() > new_missing {
        problems.push(format!(
            "{} orders of the first run gone after the restart",
            thousands((found.missing.len() - new_missing) as u64)
        ));
    }
    // Dead letters that were wrong after the first run are that check's failure, not this one's.
    let first_letters = match_letters(&before.letters, expected);
    let letters_ok = first_letters.missing.is_empty() && first_letters.twice.is_empty();
    if letters_ok && (!letters.twice.is_empty() || !letters.missing.is_empty()) {
        problems.push(format!(
            "dead letters after the restart: {} missing, {} sent twice",
            letters.missing.len(),
            letters.twice.len()
        ));
    }
    let commit_ok = before.committed == expected.end;
    if commit_ok && after.committed != all.end {
        problems.push(format!(
            "the offsets committed after the restart are {}, the topic ends at {}",
            show_offsets(&after.committed),
            show_offsets(&all.end)
        ));
    }
    let checkpoint_ok = matches!(&before.checkpoint, Ok(Some(c)) if c.offsets == expected.end);
    let checkpoint_now = match &after.checkpoint {
        Ok(Some(c)) => Some(&c.offsets),
        _ => None,
    };
    if checkpoint_ok && checkpoint_now != Some(&all.end) {
        problems.push(format!(
            "checkpoint.json after the restart: {}, the topic ends at {}",
            checkpoint_now.map_or("none".to_string(), show_offsets),
            show_offsets(&all.end)
        ));
    }
    if problems.is_empty() {
        return Ok(Check::pass(
            STEP,
            format!(
                "a restart with no new events added nothing; {} new events added {} rows and \
                 {} dead letters, each once",
                thousands(second.len() as u64),
                thousands(later.rows.len() as u64),
                thousands(later.rejected.len() as u64)
            ),
        ));
    }
    Ok(Check::fail(STEP, problems.join("; ")).with_detail(detail))
}

// ------------------------------------------------------------------ chaos

/// `--chaos N`: N runs each killed (SIGKILL) at a random moment while new events arrive,
/// then a run to the end; every valid order must be in the lake exactly once.
async fn chaos_check(
    program: &Program,
    options: &Options,
    broker: &'static Broker,
    dir: &Path,
) -> anyhow::Result<Check> {
    const STEP: &str = "chaos";
    let kills = options.chaos as usize;
    let seed = options.seed ^ 0x00c4_a05e;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut generator =
        EventGenerator::new(seed, start_time(seed), EVENTS_PER_SECOND * 4.0, DIRTY)?;
    let chunks: Vec<Vec<GeneratedRecord>> = (0..=kills)
        .map(|_| generator.generate(CHAOS_CHUNK))
        .collect();
    let job = Job::create(broker, "chaos", dir).await?;
    let mut positions = Vec::new();
    let mut moments = Vec::new();
    for (i, chunk) in chunks[..kills].iter().enumerate() {
        let mut running = job.start(program, CHAOS_IDLE_S)?;
        // The events arrive while the program runs, in slices, so it is killed mid-work.
        let topic = job.topic.clone();
        let slices: Vec<Vec<GeneratedRecord>> =
            chunk.chunks(CHAOS_CHUNK / 10).map(<[_]>::to_vec).collect();
        let producer = tokio::spawn(async move {
            let mut positions = Vec::new();
            for slice in slices {
                positions.extend(broker.produce_events(&topic, &slice).await?);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(positions)
        });
        let moment = kill_moment(i, &mut rng, &job.output, &running).await;
        let exited = running.try_finished()?;
        let run = running.kill()?;
        positions.extend(producer.await.context("the chaos producer panicked")??);
        if exited {
            let problem = run
                .problem()
                .unwrap_or_else(|| "exited with status 0".to_string());
            return Ok(Check::fail(
                STEP,
                format!(
                    "run {} of {kills} ended by itself before its kill ({moment}): {problem}",
                    i + 1
                ),
            )
            .with_detail(run.stderr_tail()));
        }
        moments.push(moment);
    }
    let last = &chunks[kills];
    positions.extend(broker.produce_events(&job.topic, last).await?);
    let records: Vec<GeneratedRecord> = chunks.into_iter().flatten().collect();
    let expected = Expected::new(&records, &positions)?;
    let run = job.run(program, options, IDLE_S).await?;
    if let Some(problem) = run.problem() {
        let hint = if run.timed_out() {
            format!("{SUBSCRIBE_HINT}\n")
        } else {
            String::new()
        };
        return Ok(
            Check::fail(STEP, format!("the run after {kills} kills: {problem}"))
                .with_detail(hint + &run.stderr_tail()),
        );
    }
    let state = job.observe(broker).await?;
    let found = find(&state.lake, &expected);
    let letters = match_letters(&state.letters, &expected);
    let mut problems = Vec::new();
    let mut detail = String::new();
    let write = write_check(&state.lake, &found, &expected, " after the kills");
    if write.status != crate::Status::Pass {
        problems.push(write.summary.clone());
        detail.push_str(write.detail.as_deref().unwrap_or_default());
    }
    if !found.kept.is_empty() {
        problems.push(format!(
            "{} rejected records in the lake",
            thousands(found.kept.len() as u64)
        ));
    }
    let dead = dead_letter_check(&letters, &expected, true);
    if dead.status != crate::Status::Pass {
        problems.push(format!("dead letters: {}", dead.summary));
        detail.push_str(dead.detail.as_deref().unwrap_or_default());
    }
    if state.committed != expected.end {
        problems.push(format!(
            "offsets committed {}, the topic ends at {}",
            show_offsets(&state.committed),
            show_offsets(&expected.end)
        ));
    }
    let at = format!("killed {}", moments.join("; "));
    if problems.is_empty() {
        let mut summary = format!(
            "{kills} SIGKILLs ({at}), then a run to the end: {} valid orders exactly once",
            thousands(expected.rows.len() as u64)
        );
        if !letters.twice.is_empty() {
            let _ = write!(
                summary,
                "; every dead letter there, {} twice (at least once is the contract)",
                letters.twice.len()
            );
        }
        return Ok(Check::pass(STEP, summary));
    }
    Ok(Check::fail(
        STEP,
        format!("after {kills} SIGKILLs ({at}): {}", problems.join("; ")),
    )
    .with_detail(detail))
}

/// Waits for the moment of kill number `i` and says what it was. Kills take turns: as a
/// finished file appears in the lake (the batch is half in the lake, its checkpoint not
/// yet written), at a random moment, and 0-10 ms after any file appears (a temporary file
/// being written, or between a batch's files, its dead letters and its checkpoint): the
/// windows where a crash breaks exactly-once.
async fn kill_moment(i: usize, rng: &mut ChaCha8Rng, lake: &Path, running: &Running) -> String {
    let random = Duration::from_millis(rng.random_range(300..=2_500));
    let after = Duration::from_millis(rng.random_range(0..=10));
    if i % 3 == 1 {
        tokio::time::sleep(random).await;
        return format!("at {:.1} s", random.as_secs_f64());
    }
    let finished_only = i.is_multiple_of(3);
    let is_new = |path: &PathBuf, before: &BTreeSet<PathBuf>| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        !before.contains(path)
            && (!finished_only || (name.ends_with(".parquet") && !name.starts_with('.')))
    };
    let before = files_in(lake);
    let started = running.elapsed();
    while running.elapsed() < started + Duration::from_secs(5) {
        if files_in(lake).iter().any(|f| is_new(f, &before)) {
            let at = running.elapsed().as_secs_f64();
            if finished_only {
                return format!("as a new .parquet file appeared at {at:.2} s");
            }
            tokio::time::sleep(after).await;
            return format!(
                "{} ms after a new file appeared at {at:.2} s",
                after.as_millis()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    format!(
        "at {:.1} s (no new file in the lake within 5 s)",
        running.elapsed().as_secs_f64()
    )
}

/// Every file under `dir`.
fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path);
            }
        }
    }
    files
}

// ------------------------------------------------------------------ tables

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "null".to_string())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn expected_values(row: &ExpectedRow, columns: &[&str]) -> Vec<String> {
    let e = &row.event;
    columns
        .iter()
        .map(|c| match *c {
            "kafka_partition" => row.partition.to_string(),
            "kafka_offset" => row.offset.to_string(),
            "order_id" => opt(&e.order_id),
            "customer_id" => opt(&e.customer_id),
            "product_id" => e.product_id.clone(),
            "category" => e.category.clone(),
            "quantity" => e.quantity.to_string(),
            "unit_price" => e.unit_price.to_string(),
            "amount" => e.amount.to_string(),
            "status" => e.status.clone(),
            _ => String::new(),
        })
        .collect()
}

fn lake_values(row: &LakeRow, columns: &[&str]) -> Vec<String> {
    let num = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
    let float = |v: Option<f64>| v.map_or("null".to_string(), |v| v.to_string());
    columns
        .iter()
        .map(|c| match *c {
            "kafka_partition" => num(row.kafka_partition),
            "kafka_offset" => num(row.kafka_offset),
            "order_id" => opt(&row.order_id),
            "customer_id" => opt(&row.customer_id),
            "product_id" => opt(&row.product_id),
            "category" => opt(&row.category),
            "quantity" => num(row.quantity),
            "unit_price" => float(row.unit_price),
            "amount" => float(row.amount),
            "status" => opt(&row.status),
            _ => String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(folder: &str) -> LakeFile {
        LakeFile {
            path: format!("{folder}/part-0.parquet"),
            folder: folder.to_string(),
            columns: expected_columns(),
            codecs: BTreeSet::from(["SNAPPY".to_string()]),
        }
    }

    fn lake(folders: &[&str]) -> Lake {
        Lake {
            exists: true,
            files: folders.iter().map(|f| file(f)).collect(),
            ..Lake::default()
        }
    }

    #[test]
    fn hour_folders_are_spark_s() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T00:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(hour_folder(t), "year=2026/month=12/day=1/hour=0");
        assert_eq!(
            layout_problem(&lake(&["year=2026/month=12/day=1/hour=0"])),
            None
        );
    }

    #[test]
    fn layouts_that_are_not_hours_are_named() {
        let day = layout_problem(&lake(&["year=2026/month=11/day=30"])).unwrap();
        assert!(
            day.contains("day folders (year=2026/month=11/day=30/)"),
            "{day}"
        );
        let top = layout_problem(&lake(&[""])).unwrap();
        assert!(top.contains("at the top of the lake"), "{top}");
        let padded = layout_problem(&lake(&["year=2026/month=12/day=01/hour=00"])).unwrap();
        assert!(padded.contains("zero-padded"), "{padded}");
    }

    #[test]
    fn per_partition_checkpoints_merge_into_one() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("partitions");
        std::fs::create_dir_all(&folder).unwrap();
        let write = |name: &str, text: &str| std::fs::write(folder.join(name), text).unwrap();
        write(
            "0.json",
            r#"{"topic": "t", "partition": 0, "batch_id": 3, "offset": 120}"#,
        );
        write(
            "1.json",
            r#"{"topic": "t", "partition": 1, "batch_id": 5, "offset": 7}"#,
        );
        write(
            "2.json",
            r#"{"topic": "t", "partition": 2, "batch_id": null, "offset": null}"#,
        );
        write("0.lock", "");
        let merged = read_checkpoint(dir.path()).unwrap().unwrap();
        assert_eq!(merged.offsets, BTreeMap::from([(0, 120), (1, 7)]));
        assert_eq!(merged.batch_id, Some(5));
        assert_eq!(merged.topic.as_deref(), Some("t"));

        write(
            "3.json",
            r#"{"topic": "other", "partition": 3, "offset": 1}"#,
        );
        let mixed = read_checkpoint(dir.path()).err().unwrap();
        assert!(mixed.contains("topic"), "{mixed}");
        std::fs::write(
            dir.path().join("checkpoint.json"),
            r#"{"batch_id": 0, "topic": "t", "offsets": {"0": 1}}"#,
        )
        .unwrap();
        let single = read_checkpoint(dir.path()).unwrap().unwrap();
        assert_eq!(
            single.offsets,
            BTreeMap::from([(0, 1)]),
            "checkpoint.json comes first"
        );
    }

    #[test]
    fn string_types_are_one_type() {
        assert!(same_type(&DataType::Utf8, &DataType::Utf8View));
        assert!(!same_type(&DataType::Int32, &DataType::Int64));
    }
}
