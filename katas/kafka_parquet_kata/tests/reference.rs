//! The reference `kafka_to_parquet` binary under the failures of production, on a real
//! broker: SIGKILLs of one instance, of instances in a consumer group, and of the broker
//! itself. Each scenario ends with the lake read back file by file and the dead-letter
//! topic read to its end: every valid event once, every rejected one once, nothing else.
//!
//! The CI tests run each scenario small enough for 90 s; the `bench_` tests run the same
//! scenarios at full size (ignored: `bench/kafka_parquet_robustness.sh` runs them and
//! prints the figures). Sizes come from the environment (`LAKE_EVENTS`, `LAKE_KILLS`)
//! only in the bench tests. A scenario that fails keeps its folder (lake, checkpoints, the
//! instances' logs) and names it; `LAKE_KEEP_WORK=1` keeps it when it passes too.
//!
//! Without a real broker the tests are listed as ignored, with the reason, never passed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use fixtures::events::{DirtyOptions, EventGenerator, RecordKind};
use kafka_testkit::local_broker::LocalBroker;
use kafka_testkit::{Broker, unique_name};
use rand::Rng;
use rand::seq::IndexedRandom;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use solutions::kafka_parquet::PartitionCheckpoint;

/// Every wait ends by then, with a message.
const DEADLINE: Duration = Duration::from_secs(60);
/// The log number of the last, undisturbed run.
const LAST_RUN: usize = 99;

// ------------------------------------------------------------------ the tests

/// One instance survives `kill -9` at random moments: its restarts (same
/// `--instance-id`) fence the killed process and clean what it left half written.
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker: scripts/kafka-local up, then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_exactly_once_under_kill_9() -> anyhow::Result<()> {
    let broker = kafka_testkit::real_broker().await?;
    let report = kill_9_scenario(broker, 200_000, 10).await?;
    report.assert_exactly_once()
}

/// Three instances in one group on six partitions: one killed mid-run, then random
/// instances killed and restarted, then a last run: exactly once.
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker: scripts/kafka-local up, then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_scales_out_in_a_group_exactly_once() -> anyhow::Result<()> {
    let broker = kafka_testkit::real_broker().await?;
    let report = scale_out_scenario(broker, 200_000, 5).await?;
    report.assert_exactly_once()
}

/// The broker killed with SIGKILL and restarted while two instances ingest: they pause,
/// reconnect and finish, exactly once. On a private broker (`scripts/kafka-local` on free
/// ports), never the shared one.
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker: scripts/kafka-local up, then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 (this test starts its own with scripts/kafka-local)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_rides_out_a_broker_restart() -> anyhow::Result<()> {
    let report = broker_restart_scenario(100_000).await?;
    report.assert_exactly_once()
}

/// The full-size scale-out: 3 instances, 6 partitions, one killed mid-run, `LAKE_KILLS`
/// (20) random SIGKILLs, `LAKE_EVENTS` (1,000,000) events.
#[ignore = "bench: bench/kafka_parquet_robustness.sh runs it on a real broker"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_scale_out_under_kills() -> anyhow::Result<()> {
    let broker = kafka_testkit::real_broker().await?;
    let report = scale_out_scenario(
        broker,
        env_size("LAKE_EVENTS", 1_000_000)?,
        env_size("LAKE_KILLS", 20)?,
    )
    .await?;
    println!("FIGURES scale-out {report}");
    report.assert_exactly_once()
}

/// The full-size broker restart: `LAKE_EVENTS` (1,000,000) events.
#[ignore = "bench: bench/kafka_parquet_robustness.sh runs it on a real broker"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_broker_restart() -> anyhow::Result<()> {
    let report = broker_restart_scenario(env_size("LAKE_EVENTS", 1_000_000)?).await?;
    println!("FIGURES broker-restart {report}");
    report.assert_exactly_once()
}

/// The full-size single instance under `LAKE_KILLS` (20) SIGKILLs.
#[ignore = "bench: bench/kafka_parquet_robustness.sh runs it on a real broker"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_kill_9() -> anyhow::Result<()> {
    let broker = kafka_testkit::real_broker().await?;
    let report = kill_9_scenario(
        broker,
        env_size("LAKE_EVENTS", 1_000_000)?,
        env_size("LAKE_KILLS", 20)?,
    )
    .await?;
    println!("FIGURES kill-9 {report}");
    report.assert_exactly_once()
}

// ------------------------------------------------------------------ the scenarios

async fn kill_9_scenario(broker: &Broker, events: usize, kills: usize) -> anyhow::Result<Report> {
    // Built (once per process) before the clock starts: a cold build takes minutes.
    reference_binary()?;
    let started = Instant::now();
    let lake = Lake::new(broker.bootstrap_servers(), "kp-kill", 2000)?;
    let expected = lake.produce(broker, 3, events, 2026).await?;
    let mut mid_ingestion = 0;
    for kill in 1..=kills {
        let mut child = lake.spawn(0, 60, kill)?;
        // A restart takes a second or two (fencing the killed process's transaction,
        // joining the group), so the moments cover start-up, recovery and batches.
        let delay = Duration::from_millis(rand::rng().random_range(100..=2_500));
        tokio::time::sleep(delay).await;
        ensure!(
            child.0.try_wait()?.is_none(),
            "run {kill} exited before its kill; see {}",
            lake.log(0, kill).display()
        );
        kill_9(&mut child)?;
        let read = lake.progress()?;
        if read < events as u64 {
            mid_ingestion += 1;
        }
        eprintln!("kill -9 #{kill} after {delay:?}: {read} records checkpointed");
    }

    // As if the last kill had hit while a batch of partition 0 was being written: a file
    // of that batch and a staged file. The claim must delete both (neither is Parquet).
    let next = PartitionCheckpoint::load(&lake.checkpoint, 0)?
        .and_then(|c| c.offset)
        .unwrap_or(0);
    let hour = lake.lake.join("year=2026/month=11/day=25/hour=12");
    std::fs::create_dir_all(&hour)?;
    for stray in [
        format!("part-p00000-{next:020}.snappy.parquet"),
        format!(".part-p00000-{next:020}.e1.tmp"),
    ] {
        std::fs::write(hour.join(stray), b"half a batch")?;
    }

    lake.finish(&[0], 3, LAST_RUN).await?;
    let logs = lake.logs()?;
    let with = |what: &str| logs.iter().filter(|l| l.contains(what)).count();
    eprintln!(
        "{mid_ingestion} of {kills} kills hit the ingestion before it was done; runs that \
         removed a half-written batch: {}, that replayed a Kafka transaction: {}",
        with("removing a file of an uncommitted batch"),
        with("replaying the last batch's transaction"),
    );
    ensure!(
        mid_ingestion >= kills / 2,
        "only {mid_ingestion} of {kills} kills happened before the lake was complete"
    );
    lake.report(broker.bootstrap_servers(), &expected, kills, started)
        .await
}

async fn scale_out_scenario(
    broker: &Broker,
    events: usize,
    kills: usize,
) -> anyhow::Result<Report> {
    const INSTANCES: usize = 3;
    // Built (once per process) before the clock starts: a cold build takes minutes.
    reference_binary()?;
    let started = Instant::now();
    let lake = Lake::new(broker.bootstrap_servers(), "kp-group", 500)?;
    let expected = lake.produce(broker, 6, events, 7).await?;
    let mut runs = [0usize; INSTANCES];
    let mut children: Vec<Running> = (0..INSTANCES)
        .map(|i| lake.spawn(i, 60, 0))
        .collect::<anyhow::Result<_>>()?;

    // One instance killed mid-run and left dead: the group must hand its partitions to
    // the other two (after its session expires) and the lake must not notice.
    lake.wait_for_progress(events as u64 / 10, DEADLINE).await?;
    let killed_at = Instant::now();
    kill_9(&mut children[2])?;
    eprintln!(
        "instance 2 killed mid-run, {} records checkpointed; waiting for the group to hand \
         its partitions to the others",
        lake.progress()?
    );
    lake.wait_until_not_owned_by("2", DEADLINE)
        .await
        .context("the group did not hand instance 2's partitions to the others")?;
    eprintln!(
        "taken over {:.1} s after the kill, {} records checkpointed",
        killed_at.elapsed().as_secs_f64(),
        lake.progress()?
    );
    runs[2] += 1;
    children[2] = lake.spawn(2, 60, runs[2])?;

    // Random instances killed at random moments, each restarted at once.
    let mut rng = rand::rng();
    for kill in 1..=kills {
        let delay = Duration::from_millis(rng.random_range(200..=1_500));
        tokio::time::sleep(delay).await;
        let i = *(0..INSTANCES)
            .collect::<Vec<_>>()
            .choose(&mut rng)
            .context("an instance")?;
        kill_9(&mut children[i])?;
        eprintln!(
            "kill -9 #{kill}: instance {i} after {delay:?}, {} records checkpointed",
            lake.progress()?
        );
        runs[i] += 1;
        children[i] = lake.spawn(i, 60, runs[i])?;
    }
    for child in &mut children {
        kill_9(child)?;
    }
    // The last run: every instance until idle.
    lake.finish(&(0..INSTANCES).collect::<Vec<_>>(), 3, LAST_RUN)
        .await?;
    lake.report(
        broker.bootstrap_servers(),
        &expected,
        kills + 1 + INSTANCES,
        started,
    )
    .await
}

async fn broker_restart_scenario(events: usize) -> anyhow::Result<Report> {
    // Built (once per process) before the clock starts: a cold build takes minutes.
    reference_binary()?;
    let started = Instant::now();
    let local = tokio::task::spawn_blocking(LocalBroker::start).await??;
    let broker = Broker::connect(local.bootstrap()).await?;
    let lake = Lake::new(local.bootstrap(), "kp-restart", 1000)?;
    // Half the events before the restart, half after: the instances must both finish
    // what they had and fetch again.
    let mut expected = lake.produce(&broker, 4, events / 2, 11).await?;
    let mut children: Vec<Running> = (0..2)
        .map(|i| lake.spawn(i, 120, 0))
        .collect::<anyhow::Result<_>>()?;
    lake.wait_for_progress(events as u64 / 10, DEADLINE).await?;
    eprintln!(
        "killing the broker with {} records checkpointed",
        lake.progress()?
    );
    let local = tokio::task::spawn_blocking(move || local.restart_kill().map(|()| local)).await??;
    for (i, child) in children.iter_mut().enumerate() {
        ensure!(
            child.0.try_wait()?.is_none(),
            "instance {i} exited while the broker was away; see {}",
            lake.log(i, 0).display()
        );
    }
    let broker = Broker::connect(local.bootstrap()).await?;
    expected.extend(lake.produce_more(&broker, events - events / 2, 12).await?);
    // At least 5,000 events/s once the broker is back.
    let finish = DEADLINE + Duration::from_secs(events as u64 / 5_000);
    lake.wait_for_progress(events as u64, finish)
        .await
        .context("the instances did not finish after the broker restart")?;
    for (i, child) in children.iter_mut().enumerate() {
        stop_gracefully(child).with_context(|| format!("stopping instance {i}"))?;
    }
    let logs = lake.logs()?;
    eprintln!(
        "runs that saw the broker away: {}",
        logs.iter()
            .filter(|l| l.contains("the broker is not ready") || l.contains("the broker is away"))
            .count()
    );
    let report = lake
        .report(local.bootstrap(), &expected, 0, started)
        .await?;
    drop(broker);
    tokio::task::spawn_blocking(move || drop(local)).await?;
    Ok(report)
}

// ------------------------------------------------------------------ the harness

/// One lake, its checkpoint folder, topics and group, and the instances' logs.
struct Lake {
    /// Kept when a scenario fails (its logs are named in the error), removed when it
    /// passes.
    work: Work,
    lake: PathBuf,
    checkpoint: PathBuf,
    bootstrap: String,
    topic: String,
    dlq: String,
    group: String,
    binary: (PathBuf, String),
    /// `--max-batch`: small batches make more batches, so more moments to kill in.
    max_batch: usize,
}

/// Where each valid and each rejected record went on the topic.
#[derive(Default)]
struct Expected {
    valid: BTreeSet<(i32, i64)>,
    dead: BTreeSet<(i32, i64)>,
}

impl Expected {
    fn extend(&mut self, more: Expected) {
        self.valid.extend(more.valid);
        self.dead.extend(more.dead);
    }
}

impl Lake {
    fn new(bootstrap: &str, name: &str, max_batch: usize) -> anyhow::Result<Lake> {
        let binary = reference_binary()?;
        let work = Work(
            tempfile::Builder::new()
                .prefix(&format!("{name}-"))
                .tempdir()?
                .keep(),
        );
        Ok(Lake {
            lake: work.0.join("lake"),
            checkpoint: work.0.join("checkpoint"),
            work,
            bootstrap: bootstrap.to_string(),
            topic: unique_name(name),
            dlq: unique_name(&format!("{name}-dlq")),
            group: unique_name(&format!("{name}-group")),
            binary,
            max_batch,
        })
    }

    /// Creates the topics and produces `events` generated orders (late, invalid and
    /// malformed ones among them).
    async fn produce(
        &self,
        broker: &Broker,
        partitions: i32,
        events: usize,
        seed: u64,
    ) -> anyhow::Result<Expected> {
        broker.create_topic(&self.topic, partitions).await?;
        broker.create_topic(&self.dlq, 1).await?;
        self.produce_more(broker, events, seed).await
    }

    async fn produce_more(
        &self,
        broker: &Broker,
        events: usize,
        seed: u64,
    ) -> anyhow::Result<Expected> {
        let started = Instant::now();
        let dirty = DirtyOptions {
            late_fraction: 0.01,
            invalid_fraction: 0.02,
            malformed_fraction: 0.01,
        };
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")?.to_utc();
        let records = EventGenerator::new(seed, start, 50.0, dirty)?.generate(events);
        let positions = broker.produce_events(&self.topic, &records).await?;
        let mut expected = Expected::default();
        for (record, position) in records.iter().zip(positions) {
            if matches!(record.kind, RecordKind::Valid | RecordKind::Late) {
                expected.valid.insert(position);
            } else {
                expected.dead.insert(position);
            }
        }
        eprintln!(
            "produced {events} orders to {} in {:.1} s: {} for the lake, {} dead letters",
            self.topic,
            started.elapsed().as_secs_f64(),
            expected.valid.len(),
            expected.dead.len()
        );
        Ok(expected)
    }

    fn log(&self, instance: usize, run: usize) -> PathBuf {
        self.work
            .0
            .join(format!("instance-{instance}-run-{run:02}.log"))
    }

    /// Starts instance `instance` (its `--instance-id`) of the reference binary.
    fn spawn(&self, instance: usize, idle_timeout_s: u64, run: usize) -> anyhow::Result<Running> {
        self.spawn_with(instance, idle_timeout_s, run, self.max_batch)
    }

    fn spawn_with(
        &self,
        instance: usize,
        idle_timeout_s: u64,
        run: usize,
        max_batch: usize,
    ) -> anyhow::Result<Running> {
        let log = std::fs::File::create(self.log(instance, run))?;
        Command::new(&self.binary.0)
            .env("LD_LIBRARY_PATH", &self.binary.1)
            .args(["--bootstrap", &self.bootstrap, "--topic", &self.topic])
            .args(["--dlq", &self.dlq, "--group", &self.group])
            .args(["--max-batch", &max_batch.to_string()])
            .args(["--instance-id", &instance.to_string()])
            .arg("--output")
            .arg(&self.lake)
            .arg("--checkpoint")
            .arg(&self.checkpoint)
            .args(["--idle-timeout-s", &idle_timeout_s.to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .map(Running)
            .context("running the reference binary")
    }

    /// Records read by committed batches, over every partition's checkpoint.
    fn progress(&self) -> anyhow::Result<u64> {
        // A checkpoint being replaced is read whole or not at all (atomic rename).
        Ok(PartitionCheckpoint::load_all(&self.checkpoint)?
            .values()
            .map(|c| c.totals.read)
            .sum())
    }

    /// Waits until no partition's checkpoint names `instance` as its owner (the group
    /// gave its partitions to the others, who claimed them).
    async fn wait_until_not_owned_by(
        &self,
        instance: &str,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let owned: Vec<i32> = PartitionCheckpoint::load_all(&self.checkpoint)?
                .into_iter()
                .filter(|(_, c)| c.owner.as_deref() == Some(instance))
                .map(|(p, _)| p)
                .collect();
            if owned.is_empty() {
                return Ok(());
            }
            if started.elapsed() > deadline {
                bail!(
                    "instance {instance} still owns partitions {owned:?} after {deadline:?} \
                     (logs in {})",
                    self.work.0.as_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_progress(&self, records: u64, deadline: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let now = self.progress()?;
            if now >= records {
                return Ok(());
            }
            if started.elapsed() > deadline {
                bail!(
                    "{now} records checkpointed after {deadline:?}, waiting for {records} \
                     (logs in {})",
                    self.work.0.as_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last run: `instances` started together, each until idle for `idle_s`;
    /// every one must exit 0. Its batches are larger: a batch costs a Kafka transaction
    /// (~100 ms) whatever its size, and this run only has to finish.
    async fn finish(&self, instances: &[usize], idle_s: u64, run: usize) -> anyhow::Result<()> {
        let mut children: Vec<(usize, Running)> = instances
            .iter()
            .map(|i| Ok((*i, self.spawn_with(*i, idle_s, run, self.max_batch * 10)?)))
            .collect::<anyhow::Result<_>>()?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(180);
        for (i, child) in &mut children {
            let status = loop {
                if let Some(status) = child.0.try_wait()? {
                    break status;
                }
                if Instant::now() > deadline {
                    kill_9(child)?;
                    bail!("the last run of instance {i} did not finish within 180 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            ensure!(
                status.success(),
                "the last run of instance {i} failed: {status}\n{}",
                std::fs::read_to_string(self.log(*i, run)).unwrap_or_default()
            );
        }
        eprintln!(
            "the last run took {:.1} s ({} records checkpointed)",
            started.elapsed().as_secs_f64(),
            self.progress()?
        );
        Ok(())
    }

    /// Every log the instances wrote.
    fn logs(&self) -> anyhow::Result<Vec<String>> {
        let mut logs = Vec::new();
        for entry in std::fs::read_dir(self.work.0.as_path())? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "log") {
                logs.push(std::fs::read_to_string(path)?);
            }
        }
        Ok(logs)
    }

    /// The lake and the dead-letter topic against what was produced.
    async fn report(
        &self,
        bootstrap: &str,
        expected: &Expected,
        kills: usize,
        started: Instant,
    ) -> anyhow::Result<Report> {
        let (rows, leftovers) = read_lake_positions(&self.lake)?;
        let letters = read_dead_letters(bootstrap, &self.dlq, expected.dead.len()).await?;
        let checkpoints = PartitionCheckpoint::load_all(&self.checkpoint)?;
        let checkpointed: BTreeMap<i32, i64> = checkpoints
            .iter()
            .filter_map(|(p, c)| c.offset.map(|o| (*p, o)))
            .collect();
        Ok(Report::new(
            expected,
            &rows,
            &letters,
            leftovers,
            checkpointed,
            kills,
            started.elapsed(),
            self.work.0.as_path(),
        ))
    }
}

/// A scenario's folder: the lake, the checkpoints, the instances' logs.
struct Work(PathBuf);

/// What came out, against what went in.
struct Report {
    valid: usize,
    lost: Vec<(i32, i64)>,
    duplicated: usize,
    unexpected: usize,
    dead: usize,
    dead_lost: usize,
    dead_duplicated: usize,
    dead_unexpected: usize,
    leftovers: Vec<String>,
    checkpointed: BTreeMap<i32, i64>,
    kills: usize,
    elapsed: Duration,
    work: PathBuf,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn new(
        expected: &Expected,
        rows: &[(i32, i64)],
        letters: &[(i32, i64)],
        leftovers: Vec<String>,
        checkpointed: BTreeMap<i32, i64>,
        kills: usize,
        elapsed: Duration,
        work: &Path,
    ) -> Report {
        let distinct: BTreeSet<(i32, i64)> = rows.iter().copied().collect();
        let dead: BTreeSet<(i32, i64)> = letters.iter().copied().collect();
        Report {
            valid: expected.valid.len(),
            lost: expected.valid.difference(&distinct).copied().collect(),
            duplicated: rows.len() - distinct.len(),
            unexpected: distinct.difference(&expected.valid).count(),
            dead: expected.dead.len(),
            dead_lost: expected.dead.difference(&dead).count(),
            dead_duplicated: letters.len() - dead.len(),
            dead_unexpected: dead.difference(&expected.dead).count(),
            leftovers,
            checkpointed,
            kills,
            elapsed,
            work: work.to_path_buf(),
        }
    }

    fn assert_exactly_once(&self) -> anyhow::Result<()> {
        eprintln!("{self}");
        let exactly_once = self.lost.is_empty()
            && self.duplicated == 0
            && self.unexpected == 0
            && self.dead_lost == 0
            && self.dead_duplicated == 0
            && self.dead_unexpected == 0
            && self.leftovers.is_empty();
        if exactly_once && std::env::var_os("LAKE_KEEP_WORK").is_none() {
            let _ = std::fs::remove_dir_all(&self.work);
        }
        ensure!(
            exactly_once,
            "not exactly once: {self}; first lost rows (partition, offset): {:?}; logs in {}",
            self.lost.iter().take(5).collect::<Vec<_>>(),
            self.work.display()
        );
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kills={} valid={} lost={} duplicated={} unexpected={} dead_letters={} \
             dead_lost={} dead_duplicated={} dead_unexpected={} leftovers={} seconds={:.1} \
             checkpoints={:?}",
            self.kills,
            self.valid,
            self.lost.len(),
            self.duplicated,
            self.unexpected,
            self.dead,
            self.dead_lost,
            self.dead_duplicated,
            self.dead_unexpected,
            self.leftovers.len(),
            self.elapsed.as_secs_f64(),
            self.checkpointed
        )
    }
}

/// A bench size from the environment, else `default`.
fn env_size(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(text) => text
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name}={text} is not a number")),
        Err(_) => Ok(default),
    }
}

/// A running instance, killed (SIGKILL) if the test ends before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn kill_9(child: &mut Running) -> anyhow::Result<()> {
    child.0.kill().context("SIGKILL to an instance")?;
    child.0.wait().context("waiting for a killed instance")?;
    Ok(())
}

/// SIGINT (Ctrl-C): the binary finishes its batch and exits 0, within the deadline.
fn stop_gracefully(child: &mut Running) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill -INT {} failed", child.0.id());
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait()? {
            ensure!(status.success(), "exited with {status} after Ctrl-C");
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            kill_9(child)?;
            bail!("still running {DEADLINE:?} after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The (kafka_partition, kafka_offset) of every row of every Parquet file in the lake,
/// and the files that are not Parquet (temporary files left behind), read file by file.
/// Kafka positions `(partition, offset)`.
type Positions = Vec<(i32, i64)>;

fn read_lake_positions(lake: &Path) -> anyhow::Result<(Positions, Vec<String>)> {
    let mut rows = Vec::new();
    let mut leftovers = Vec::new();
    let mut stack = vec![lake.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if !name.is_some_and(|n| n.ends_with(".parquet") && !n.starts_with('.')) {
                leftovers.push(path.display().to_string());
                continue;
            }
            let file = std::fs::File::open(&path)?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .with_context(|| format!("reading {}", path.display()))?;
            let mask = ProjectionMask::columns(
                builder.parquet_schema(),
                ["kafka_partition", "kafka_offset"],
            );
            for batch in builder.with_projection(mask).build()? {
                let batch = batch?;
                let partitions = cast(
                    batch
                        .column_by_name("kafka_partition")
                        .context("kafka_partition")?,
                    &DataType::Int32,
                )?;
                let offsets = cast(
                    batch
                        .column_by_name("kafka_offset")
                        .context("kafka_offset")?,
                    &DataType::Int64,
                )?;
                let partitions = partitions.as_primitive::<Int32Type>();
                let offsets = offsets.as_primitive::<Int64Type>();
                for row in 0..batch.num_rows() {
                    ensure!(
                        partitions.is_valid(row) && offsets.is_valid(row),
                        "a row without its Kafka position in {}",
                        path.display()
                    );
                    rows.push((partitions.value(row), offsets.value(row)));
                }
            }
        }
    }
    Ok((rows, leftovers))
}

/// The (partition, offset) each committed dead letter of `topic` came from, read to the
/// end of the topic with `read_committed`.
async fn read_dead_letters(
    bootstrap: &str,
    topic: &str,
    expected: usize,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("kp-dlq-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&list)?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut dead = Vec::with_capacity(expected);
        loop {
            ensure!(
                started.elapsed() < DEADLINE,
                "read {} dead letters (expected {expected}) within {DEADLINE:?}",
                dead.len()
            );
            match consumer.poll(Duration::from_millis(500)) {
                None => continue,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => bail!("reading the dead letters: {e}"),
                Some(Ok(m)) => {
                    let header = |key: &str| -> anyhow::Result<String> {
                        let headers = m.headers().context("a dead letter without headers")?;
                        let h = headers.iter().find(|h| h.key == key).with_context(|| {
                            format!("dead letter at offset {} without {key}", m.offset())
                        })?;
                        Ok(String::from_utf8(
                            h.value.context("an empty header")?.to_vec(),
                        )?)
                    };
                    ensure!(
                        !header("dlq.reason")?.is_empty(),
                        "a dead letter without a reason"
                    );
                    dead.push((
                        header("dlq.partition")?.parse()?,
                        header("dlq.offset")?.parse()?,
                    ));
                }
            }
        }
        consumer.unassign()?;
        Ok(dead)
    })
    .await?
}

/// The release build of `kafka_to_parquet` (or `KAFKA_TO_PARQUET_BIN`, a binary built
/// before) and the library path it runs with.
fn reference_binary() -> anyhow::Result<(PathBuf, String)> {
    let executable = match std::env::var_os("KAFKA_TO_PARQUET_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_reference_binary()?,
    };
    ensure!(
        executable.is_file(),
        "no kafka_to_parquet binary at {}",
        executable.display()
    );
    // prefer-dynamic: the binary needs the release DataFusion library and Rust's std.
    let dir = executable.parent().context("the binary is in a folder")?;
    let library_path = format!(
        "{}:{}:{}",
        dir.join("deps").display(),
        dir.display(),
        std::env::var("LD_LIBRARY_PATH").unwrap_or_default()
    );
    Ok((executable, library_path))
}

/// `cargo build --release` of the reference binary; its path. Once per test process.
fn build_reference_binary() -> anyhow::Result<PathBuf> {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return Ok(path.clone());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The release profile has its own build lock, so this does not wait on `cargo test`.
    let output = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "solutions"])
        .args(["--bin", "kafka_to_parquet"])
        .args(["--message-format", "json-render-diagnostics"])
        .output()
        .context("running cargo")?;
    ensure!(
        output.status.success(),
        "building the reference binary failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "kafka_to_parquet")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo names the kafka_to_parquet executable")?;
    *built = Some(path.clone());
    Ok(path)
}
