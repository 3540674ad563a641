//! The streaming pipeline when things die, on a real broker:
//! - `kafka_stream` (exactly once, the default) killed with SIGKILL at random moments
//!   while orders arrive, restarted each time, then run to the end;
//! - the broker killed with SIGKILL mid-run and restarted (a private broker,
//!   `kafka_testkit::local_broker`, so that the shared one stays up);
//! - three instances in one group on input keyed by category, one killed.
//!
//! Each time a `read_committed` reader of the output sees every window exactly once
//! with the right values, and every malformed payload once in the dead-letter topic.
//!
//! Real broker only (a killed process's open transaction, and the offsets committed
//! inside one, need a broker that keeps them); on the mock the tests are listed as
//! `ignored`, with the reason. The first scenario, bigger, is
//! `bench/kafka_stream_chaos.sh` (`STREAM_CHAOS_KILLS`, `STREAM_CHAOS_RATE`,
//! `STREAM_CHAOS_EVENTS` and `KAFKA_STREAM_BIN` set the kills, the orders a second, the
//! most orders and the binary; the counts line is printed either way).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fixtures::events::GeneratedRecord;
use fixtures::expected::stream_windows_by_partition;
use kafka_testkit::local_broker::LocalBroker;
use kafka_testkit::{Broker, real_broker, unique_name};
use kata_testkit::assert_same_windows;
use rand::Rng;
mod common;

use solutions::kafka_stream::{Delivery, PipelineConfig, StopReason, run};

/// One scenario at a time: each runs several pipelines (or a broker) and kills them on
/// a schedule, which a neighbour's CPU load on 2 cores would stretch.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test's own scale, unless the environment sets it (the bench does).
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: not a number"))
        })
        .unwrap_or(default)
}

/// The binary under test and its library path: `KAFKA_STREAM_BIN` (the bench's
/// release build, which needs its own DataFusion library first in the path), else the
/// one cargo built for this test.
fn binary() -> (String, String) {
    let path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    match std::env::var("KAFKA_STREAM_BIN") {
        Ok(bin) => {
            let dir = std::path::Path::new(&bin)
                .parent()
                .expect("KAFKA_STREAM_BIN is a file in a folder")
                .display()
                .to_string();
            (bin, format!("{dir}/deps:{dir}:{path}"))
        }
        Err(_) => (env!("CARGO_BIN_EXE_kafka_stream").into(), path),
    }
}

#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker: scripts/kafka-local up, then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_under_sigkill() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let kills = setting("STREAM_CHAOS_KILLS", 4);
    // At most this many orders, `rate` a second until the last kill.
    let events = setting("STREAM_CHAOS_EVENTS", 100_000);
    let rate = setting("STREAM_CHAOS_RATE", 1_500).max(10);
    let broker = real_broker()
        .await
        .unwrap_or_else(|e| panic!("no Kafka broker: {e:#}"));
    let started = Instant::now();
    let common::Topics { input, output, dlq } = common::topics(broker, "kstream-chaos", 3).await;
    let group = unique_name("kstream-chaos");
    // The runs' logs stay for a failed test to show (the folder is printed).
    let mut work = tempfile::tempdir().expect("a temporary folder");
    work.disable_cleanup(true);
    eprintln!("logs of the runs: {}", work.path().display());

    // The orders arrive while the pipeline runs and dies (a steady stream, so that
    // every run has new orders, windows open and close, and kills land mid-stream),
    // until the last kill.
    let records = generated(rand::rng().random(), events);
    let stop = Arc::new(AtomicBool::new(false));
    let producing = {
        let (input, records, stop) = (input.clone(), records.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut placed = Vec::with_capacity(records.len());
            let mut chunks = records.chunks(rate / 10);
            let mut next = tokio::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let Some(chunk) = chunks.next() else { break };
                let at = broker
                    .produce_events(&input, chunk)
                    .await
                    .unwrap_or_else(|e| panic!("producing: {e:#}"));
                placed.extend(at.into_iter().map(|(p, _)| p));
                next += Duration::from_millis(100);
                tokio::time::sleep_until(next).await;
            }
            placed
        })
    };

    let run = |n: usize, idle_timeout_s: &str| -> Child {
        let log =
            std::fs::File::create(work.path().join(format!("run-{n:02}.log"))).expect("a log file");
        let (binary, library_path) = binary();
        Command::new(binary)
            .env("LD_LIBRARY_PATH", library_path)
            .args(["--bootstrap", broker.bootstrap_servers(), "--input", &input])
            .args(["--output", &output, "--dlq", &dlq, "--group", &group])
            .args([
                "--exactly-once",
                "--batch-size",
                "400",
                "--batch-wait-ms",
                "100",
            ])
            .args(["--idle-timeout-s", idle_timeout_s])
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("running kafka_stream")
    };
    let log = |n: usize| {
        std::fs::read_to_string(work.path().join(format!("run-{n:02}.log"))).unwrap_or_default()
    };

    for kill in 1..=kills {
        // What the runs before this one committed (the last may have gone on after it
        // was seen to commit).
        let committed = committed_total(broker, &group, &input).await;
        let mut child = run(kill, "60");
        // Most kills land while micro-batches are written and committed (after the run
        // has committed something new); every third one during start-up or recovery.
        let moment = if kill % 3 == 0 {
            "during start-up"
        } else {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let now = committed_total(broker, &group, &input).await;
                if now > committed {
                    break "after a commit";
                }
                if producing.is_finished() && Instant::now() + Duration::from_secs(20) > deadline {
                    break "with the input all read";
                }
                if let Some(status) = child.try_wait().expect("waiting for kafka_stream") {
                    panic!(
                        "run {kill} exited ({status}) before its kill:\n{}",
                        log(kill)
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "run {kill} committed nothing new within 30 s ({committed} committed \
                     before it):\n{}",
                    log(kill)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let delay = Duration::from_millis(rand::rng().random_range(0..=1_500));
        tokio::time::sleep(delay).await;
        if let Some(status) = child.try_wait().expect("waiting for kafka_stream") {
            panic!(
                "run {kill} exited ({status}) before its kill:\n{}",
                log(kill)
            );
        }
        child.kill().expect("SIGKILL"); // SIGKILL
        child.wait().expect("waiting for kafka_stream");
        eprintln!("SIGKILL #{kill} {moment} + {delay:?}");
    }

    stop.store(true, Ordering::Relaxed);
    let partitions = producing.await.expect("the producer task panicked");
    let records = &records[..partitions.len()];

    // The last run, left alone until the input has been idle for 3 s.
    let mut last = run(0, "3");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = last.try_wait().expect("waiting for kafka_stream") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = last.kill();
            panic!("the last run did not finish within 60 s:\n{}", log(0));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "the last run failed ({status}):\n{}",
        log(0)
    );

    let scenario = format!("{kills} SIGKILLs of kafka_stream");
    assert_output_exactly_once(
        broker,
        &output,
        &dlq,
        records,
        &partitions,
        &scenario,
        started,
    )
    .await;
    work.disable_cleanup(false);
}

/// Reads the output and the dead-letter topic to their end (`read_committed`), prints
/// the counts (windows exactly once, lost, duplicated, with wrong values, unexpected)
/// and asserts that every window is there once with the expected values, and every
/// malformed payload once in the dead-letter topic.
async fn assert_output_exactly_once(
    broker: &Broker,
    output: &str,
    dlq: &str,
    records: &[GeneratedRecord],
    partitions: &[i32],
    scenario: &str,
    started: Instant,
) {
    let expected = stream_windows_by_partition(records, partitions).expect("expected windows");
    let emitted = broker
        .consume_to_end(output, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("reading the aggregates: {e:#}"));
    let windows = common::windows_sent(&emitted);
    let mut counts = Outcome::default();
    for (key, want) in &expected.windows {
        match windows.get(key).map(Vec::as_slice) {
            None => counts.lost += 1,
            Some([got]) if got == want => counts.exactly_once += 1,
            Some([_]) => counts.wrong += 1,
            Some(_) => counts.duplicated += 1,
        }
    }
    counts.unexpected = windows
        .keys()
        .filter(|k| !expected.windows.contains_key(*k))
        .count();
    println!(
        "{scenario}, {} events, {} windows expected: exactly once {}, lost {}, \
         duplicated {}, wrong values {}, unexpected {} ({} aggregate messages read \
         read_committed; {:.1} s)",
        records.len(),
        expected.windows.len(),
        counts.exactly_once,
        counts.lost,
        counts.duplicated,
        counts.wrong,
        counts.unexpected,
        emitted.len(),
        started.elapsed().as_secs_f64()
    );
    let once: BTreeMap<_, _> = windows.iter().map(|(k, v)| (k.clone(), v[0])).collect();
    assert_same_windows(&expected.windows, &once);
    assert_eq!(
        counts,
        Outcome {
            exactly_once: expected.windows.len(),
            ..Outcome::default()
        },
        "each window once, with the expected values"
    );

    // Every malformed payload once in the dead-letter topic.
    common::assert_dead_letters_are_the_malformed(broker, dlq, records, Duration::from_secs(30))
        .await;
}

/// The broker killed with SIGKILL mid-run and restarted on the same data (a private
/// broker, so that the shared one stays up): the pipeline, its idle timeout shorter
/// than the outage, waits for the broker instead of taking the silence for the end of
/// the input, reconnects, and finishes with every window once.
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker (starts a private one with scripts/kafka-local): \
              KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_mid_run_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let local = tokio::task::spawn_blocking(LocalBroker::start)
        .await
        .expect("the broker start panicked")
        .unwrap_or_else(|e| panic!("starting a private broker: {e:#}"));
    let local = Arc::new(local);
    let started = Instant::now();
    let broker = Broker::connect(local.bootstrap())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let common::Topics { input, output, dlq } = common::topics(&broker, "kstream-outage", 3).await;
    // `bench/kafka_stream_chaos.sh --outage` runs it on 1,000,000 orders.
    let events = setting("STREAM_OUTAGE_EVENTS", 40_000);
    let batch_size = setting("STREAM_OUTAGE_BATCH", 300);
    let run_for = Duration::from_secs(150.max(events as u64 / 2_000));
    let records = generated(rand::rng().random(), events);
    let placed = broker
        .produce_events(&input, &records)
        .await
        .unwrap_or_else(|e| panic!("producing: {e:#}"));
    let partitions: Vec<i32> = placed.iter().map(|(p, _)| *p).collect();

    let group = unique_name("kstream-outage");
    let config = PipelineConfig {
        batch_size,
        batch_wait: Duration::from_millis(100),
        idle_timeout: Some(Duration::from_secs(4)),
        delivery: Delivery::ExactlyOnce,
        ..PipelineConfig::new(local.bootstrap(), &input, &output, &dlq, &group)
    };
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,rdkafka=warn,librdkafka=error")
        .try_init();
    let pipeline = async {
        let ran = tokio::time::timeout(run_for, run(&config, std::future::pending())).await;
        (ran, Instant::now())
    };
    // Mid-run: once a micro-batch is committed, the broker dies.
    let outage = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed_total(&broker, &group, &input).await == 0 {
            assert!(
                Instant::now() < deadline,
                "the pipeline committed nothing within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let killed = Instant::now();
        let restart = Arc::clone(&local);
        tokio::task::spawn_blocking(move || restart.restart_kill())
            .await
            .expect("the broker restart panicked")
            .unwrap_or_else(|e| panic!("restarting the private broker: {e:#}"));
        eprintln!(
            "broker killed and back in {:.1} s",
            killed.elapsed().as_secs_f64()
        );
        Instant::now()
    };
    let ((ran, finished), back) = tokio::join!(pipeline, outage);
    let (counts, reason) = ran
        .unwrap_or_else(|_| panic!("the pipeline did not finish within {run_for:?}"))
        .unwrap_or_else(|e| panic!("the pipeline failed: {e:#}"));
    assert!(
        finished > back,
        "the pipeline stopped while the broker was down: {counts:?}"
    );
    assert_eq!(reason, StopReason::Idle, "{counts:?}");
    assert_output_exactly_once(
        &broker,
        &output,
        &dlq,
        &records,
        &partitions,
        "the broker killed and restarted mid-run",
        started,
    )
    .await;
}

/// Scale-out: three instances in one group on input keyed by category (so each owns
/// whole categories), one killed with SIGKILL mid-run and not restarted. The other two
/// take its partitions over from their committed checkpoints once the group has
/// expired it, and every window is emitted once with the right values.
#[cfg_attr(
    not(real_broker),
    ignore = "needs a real broker: scripts/kafka-local up, then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_emit_every_window_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let broker = real_broker()
        .await
        .unwrap_or_else(|e| panic!("no Kafka broker: {e:#}"));
    let started = Instant::now();
    let common::Topics { input, output, dlq } = common::topics(broker, "kstream-scale", 3).await;
    // Keyed by category: a window's records are all in one partition.
    let records = generated(rand::rng().random(), 45_000);
    let keyed = records
        .iter()
        .map(|r| {
            let key = r.event.as_ref().map(|e| e.category.clone().into_bytes());
            (key, r.payload.clone())
        })
        .collect();
    let placed = broker
        .produce(&input, keyed)
        .await
        .unwrap_or_else(|e| panic!("producing: {e:#}"));
    let partitions: Vec<i32> = placed.iter().map(|(p, _)| *p).collect();

    let group = unique_name("kstream-scale");
    let mut work = tempfile::tempdir().expect("a temporary folder");
    work.disable_cleanup(true);
    eprintln!("logs of the instances: {}", work.path().display());
    let log_path = |i: usize| work.path().join(format!("instance-{i}.log"));
    let log = |i: usize| std::fs::read_to_string(log_path(i)).unwrap_or_default();
    // The idle timeout outlasts the group's expiry of the killed instance (6 s) and of
    // its open transaction (10 s here), so that its partitions are taken over before
    // the others call the input finished.
    let mut instances: Vec<Child> = (0..3)
        .map(|i| {
            let file = std::fs::File::create(log_path(i)).expect("a log file");
            let (binary, library_path) = binary();
            Command::new(binary)
                .env("LD_LIBRARY_PATH", library_path)
                .args(["--bootstrap", broker.bootstrap_servers(), "--input", &input])
                .args(["--output", &output, "--dlq", &dlq, "--group", &group])
                .args(["--instance", &i.to_string(), "--batch-size", "300"])
                .args(["--batch-wait-ms", "100", "--idle-timeout-s", "15"])
                .args(["--transaction-timeout-s", "10"])
                .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
                .stdout(file.try_clone().expect("a log file"))
                .stderr(file)
                .stdin(Stdio::null())
                .spawn()
                .expect("running kafka_stream")
        })
        .collect();

    // Mid-run: 4 to 8 s after the start, while the group settles and the instances
    // read (none can have finished: each waits 15 s without a record first).
    let delay = Duration::from_millis(rand::rng().random_range(4_000..=8_000));
    tokio::time::sleep(delay).await;
    if let Some(status) = instances[1].try_wait().expect("waiting for kafka_stream") {
        panic!("instance 1 exited ({status}) before its kill:\n{}", log(1));
    }
    instances[1].kill().expect("SIGKILL");
    instances[1].wait().expect("waiting for kafka_stream");
    eprintln!(
        "instance 1 killed after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let deadline = Instant::now() + Duration::from_secs(80);
    for i in [0, 2] {
        let status = loop {
            if let Some(status) = instances[i].try_wait().expect("waiting for kafka_stream") {
                break status;
            }
            if Instant::now() > deadline {
                for child in &mut instances {
                    let _ = child.kill();
                }
                panic!("instance {i} did not finish within 80 s:\n{}", log(i));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            status.success(),
            "instance {i} failed ({status}):\n{}",
            log(i)
        );
    }
    assert_output_exactly_once(
        broker,
        &output,
        &dlq,
        &records,
        &partitions,
        "3 instances keyed by category, 1 killed",
        started,
    )
    .await;
    work.disable_cleanup(false);
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    exactly_once: usize,
    lost: usize,
    duplicated: usize,
    wrong: usize,
    unexpected: usize,
}

/// `n` records, 5 a second of event time, a few of them late, invalid or malformed.
fn generated(seed: u64, n: usize) -> Vec<GeneratedRecord> {
    common::generated(seed, n, 5.0)
}

/// The sum of the offsets `group` has committed on `topic` (0 before any commit).
async fn committed_total(broker: &Broker, group: &str, topic: &str) -> i64 {
    broker
        .committed_offsets(group, topic)
        .await
        .unwrap_or_else(|e| panic!("reading the committed offsets: {e:#}"))
        .values()
        .sum()
}
