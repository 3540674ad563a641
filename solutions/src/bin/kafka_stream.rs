//! The Kafka streaming pipeline: `orders` -> 5-minute totals per category ->
//! `order_aggregates`, malformed payloads -> `orders_dlq`.
//!
//! ```text
//! cargo run --release -p solutions --bin kafka_stream -- \
//!     --bootstrap 127.0.0.1:9092 --input orders --output order_aggregates \
//!     --dlq orders_dlq --group kafka-stream [--idle-timeout-s 5]
//! cargo run --release -p solutions --bin kafka_stream -- --bootstrap mock --demo-events 20000
//! ```
//!
//! Without `--idle-timeout-s` it runs until Ctrl-C, then stops cleanly: the last
//! micro-batch is committed, the open windows stay for the next run (same group),
//! which replays their records. With it, it stops once no record arrived for that
//! long (and the broker says there is nothing new), after emitting every open window.
//! It prints the counts at the end, and with `--show-output` (always with
//! `--bootstrap mock`) the aggregates it wrote.
//!
//! Each micro-batch's aggregates, dead letters and offsets go in one Kafka transaction
//! (`--at-least-once`: delivered, then committed); a restarted instance keeps its
//! `--instance` name, so that it fences the one it replaces.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::{DurationRound, TimeDelta, Utc};
use clap::Parser;
use fixtures::events::{DirtyOptions, EventGenerator};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use solutions::kafka_stream::{Delivery, PipelineConfig, PipelineCounts, StopReason, run};
use solutions::mock;
use tracing::info;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(about = "Kafka -> Kafka: 5-minute order totals per category, with a 10-minute watermark")]
struct Args {
    /// Kafka bootstrap servers, or `mock`: an in-process mock cluster filled with
    /// `--demo-events` generated events (no broker needed).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic of the order events.
    #[arg(long, default_value = "orders")]
    input: String,
    /// Topic of the window aggregates.
    #[arg(long, default_value = "order_aggregates")]
    output: String,
    /// Dead-letter topic of the payloads that cannot be read.
    #[arg(long, default_value = "orders_dlq")]
    dlq: String,
    /// Consumer group: a restart with the same group resumes where this run stopped.
    #[arg(long, default_value = "kafka-stream")]
    group: String,
    /// Stop after this many seconds without a record, emitting every open window.
    #[arg(long)]
    idle_timeout_s: Option<f64>,
    /// Stop once this many records are read (open windows are left to the next run).
    #[arg(long)]
    max_records: Option<u64>,
    /// Most records in one micro-batch.
    #[arg(long, default_value_t = 100_000)]
    batch_size: usize,
    /// Longest wait for a micro-batch to fill, in milliseconds.
    #[arg(long, default_value_t = 500)]
    batch_wait_ms: u64,
    /// Write each micro-batch's aggregates, dead letters and input offsets in one Kafka
    /// transaction: a `read_committed` reader sees each window once, even across crashes
    /// (the default).
    #[arg(long, conflicts_with = "at_least_once")]
    exactly_once: bool,
    /// Instead of transactions: deliver the aggregates and dead letters, then commit the
    /// offsets; a crash in between sends that micro-batch's windows again (same key,
    /// same value).
    #[arg(long)]
    at_least_once: bool,
    /// How long a transaction may stay open before the broker aborts it (the longest a
    /// killed instance holds back those that take over its partitions).
    #[arg(long, default_value_t = 60.0)]
    transaction_timeout_s: f64,
    /// This instance's name in the group; exactly once (the default), its transactions are
    /// `<group>-<input>-<instance>`, so a restarted instance must keep it.
    #[arg(long, default_value = "0")]
    instance: String,
    /// With `--bootstrap mock`: how many generated events to put in the input topic.
    #[arg(long, default_value_t = 20_000)]
    demo_events: usize,
    /// With `--bootstrap mock`: the generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also print the final counts as one JSON line on stdout.
    #[arg(long)]
    summary_json: bool,
    /// At the end, read back and print the aggregates this run wrote (always on with
    /// `--bootstrap mock`).
    #[arg(long)]
    show_output: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    solutions::exit_code("kafka_stream", pipeline().await)
}

async fn pipeline() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Plain text when the logs go to a file or another program (the launcher).
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let idle_timeout = args
        .idle_timeout_s
        .map(Duration::try_from_secs_f64)
        .transpose()
        .context("--idle-timeout-s must be a non-negative number of seconds")?;

    // The mock cluster lives until the end of main.
    let mock = if mock::wanted(&args.bootstrap) {
        Some(start_mock(&args).await?)
    } else {
        None
    };
    let bootstrap = match &mock {
        Some(m) => m.bootstrap_servers(),
        None => args.bootstrap.clone(),
    };
    let config = PipelineConfig {
        idle_timeout: idle_timeout.or(mock.as_ref().map(|_| Duration::from_secs(2))),
        max_records: args.max_records,
        batch_size: args.batch_size,
        batch_wait: Duration::from_millis(args.batch_wait_ms),
        delivery: if args.at_least_once {
            Delivery::AtLeastOnce
        } else {
            Delivery::ExactlyOnce
        },
        instance: args.instance.clone(),
        transaction_timeout: Duration::try_from_secs_f64(args.transaction_timeout_s)
            .context("--transaction-timeout-s must be a non-negative number of seconds")?,
        ..PipelineConfig::new(
            &bootstrap,
            &args.input,
            &args.output,
            &args.dlq,
            &args.group,
        )
    };
    info!(?config, "starting");

    // Where this run's aggregates will start, to print them at the end.
    let show_output = args.show_output || mock.is_some();
    let output_start = if show_output {
        Some(topic_ends(&bootstrap, &args.output)?)
    } else {
        None
    };

    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: run until idle or max records instead.
            std::future::pending::<()>().await;
        }
    };
    let (counts, reason) = run(&config, ctrl_c).await?;
    print_counts(&counts, reason);
    if args.summary_json {
        println!("{}", serde_json::to_string(&counts)?);
    }
    ensure!(
        counts.read == counts.processed + counts.late + counts.malformed,
        "read {} != processed {} + late {} + malformed {}",
        counts.read,
        counts.processed,
        counts.late,
        counts.malformed
    );

    if let Some(start) = output_start {
        print_aggregates(&bootstrap, &args.output, start, counts.windows_emitted).await?;
    }
    Ok(())
}

fn print_counts(c: &PipelineCounts, reason: StopReason) {
    let rate = if c.busy_seconds > 0.0 {
        c.read as f64 / c.busy_seconds
    } else {
        0.0
    };
    println!(
        "stopped ({reason:?}): read {} = processed {} + late {} + malformed {}; \
         windows emitted {}; {} micro-batches in {:.2} s, {:.0} events/s",
        c.read,
        c.processed,
        c.late,
        c.malformed,
        c.windows_emitted,
        c.micro_batches,
        c.busy_seconds,
        rate
    );
}

/// A mock cluster with the three topics, the input filled with generated events
/// (a few late, invalid and malformed ones among them).
async fn start_mock(args: &Args) -> Result<mock::MockCluster> {
    // Event time: the last hour, up to now.
    let now = Utc::now().duration_trunc(TimeDelta::minutes(5))?;
    let dirty = DirtyOptions {
        late_fraction: 0.02,
        invalid_fraction: 0.02,
        malformed_fraction: 0.02,
    };
    let events = EventGenerator::new(
        args.seed,
        now - TimeDelta::hours(1),
        args.demo_events as f64 / 3600.0,
        dirty,
    )?
    .generate(args.demo_events);
    let topics = [(args.input.as_str(), 1), (&args.output, 1), (&args.dlq, 1)];
    let (cluster, sent) = mock::start(&topics, &args.input, &events).await?;
    println!(
        "mock cluster at {}: {sent} demo events in topic {}",
        cluster.bootstrap_servers(),
        args.input
    );
    Ok(cluster)
}

/// The end offset of each partition of `topic` (none if it does not exist yet).
fn topic_ends(bootstrap: &str, topic: &str) -> Result<HashMap<i32, i64>> {
    let consumer = metadata_client(bootstrap)?;
    let mut ends = HashMap::new();
    for partition in partitions(&consumer, topic)? {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
        ends.insert(partition, high);
    }
    Ok(ends)
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn metadata_client(bootstrap: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a client to read the output offsets")
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("reading the metadata of topic {topic}"))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// Reads back the `expected` aggregates written after `start` and prints them.
async fn print_aggregates(
    bootstrap: &str,
    topic: &str,
    start: HashMap<i32, i64>,
    expected: u64,
) -> Result<()> {
    let mut assignment = TopicPartitionList::new();
    for partition in partitions(&metadata_client(bootstrap)?, topic)? {
        let offset = start
            .get(&partition)
            .map_or(Offset::Beginning, |&o| Offset::Offset(o));
        assignment.add_partition_offset(topic, partition, offset)?;
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-stream-output-reader")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the reader of the aggregates")?;
    consumer.assign(&assignment)?;
    println!("{topic}:");
    for _ in 0..expected {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .with_context(|| {
                format!("reading {expected} aggregates from {topic} took over 30 s")
            })??;
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        println!("  {} -> {}", text(message.key()), text(message.payload()));
    }
    Ok(())
}
