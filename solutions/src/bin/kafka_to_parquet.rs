//! Kafka → Parquet data lake, exactly once (the reference of `kafka_parquet_kata`).
//!
//! ```text
//! cargo run --release -p solutions --bin kafka_to_parquet -- \
//!     --bootstrap 127.0.0.1:9092 --topic orders --output lake --checkpoint checkpoint \
//!     --dlq orders_dlq --group lake-writer --idle-timeout-s 10
//! ```
//!
//! `--bootstrap mock` needs no broker: it starts librdkafka's mock cluster in-process,
//! fills the topic with `--demo-events` generated orders (some invalid, some malformed),
//! ingests them and prints a preview of the lake.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use datafusion::arrow::datatypes::DataType;
use datafusion::functions::math::expr_fn::round;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::prelude::{ParquetReadOptions, SessionContext, col, lit};
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedCounts, GeneratedRecord};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use solutions::kafka_parquet::{self, PARTITION_COLUMNS, PipelineConfig, PipelineCounts};
use solutions::mock;
use tracing::info;

#[derive(Parser, Debug)]
#[command(about = "Kafka -> partitioned Parquet data lake, exactly once")]
struct Args {
    /// Kafka bootstrap servers, or `mock` for an in-process mock cluster with demo data.
    #[arg(long)]
    bootstrap: String,
    /// The topic of order events.
    #[arg(long, default_value = "orders")]
    topic: String,
    /// The lake: hive-partitioned Parquet files go here (with `mock`: a new temporary
    /// folder if absent).
    #[arg(long)]
    output: Option<PathBuf>,
    /// The checkpoint folder, shared by the group's instances: one checkpoint per Kafka
    /// partition in `partitions/` (with `mock`: next to the lake if absent).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The dead-letter topic for malformed and invalid records.
    #[arg(long, default_value = "orders_dlq")]
    dlq: String,
    /// The consumer group the offsets are committed for. Several instances in one group
    /// share the partitions, the lake and the checkpoint folder.
    #[arg(long, default_value = "kafka-to-parquet")]
    group: String,
    /// A stable name for this instance when several run in the group (e.g. 0, 1, 2, or
    /// the pod's name): each needs its own. A restart with the same name fences the
    /// killed instance's transaction and takes its partitions back at once.
    #[arg(long)]
    instance_id: Option<String>,
    /// Stop (exit 0) after this many seconds without a record; run forever if absent.
    #[arg(long)]
    idle_timeout_s: Option<f64>,
    /// Most records per batch: bounds the rows and files each batch writes.
    #[arg(long, default_value_t = 200_000)]
    max_batch: usize,
    /// How long a batch waits for records to fill up, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    max_wait_ms: u64,
    /// With `--bootstrap mock`: how many demo events to produce first.
    #[arg(long, default_value_t = 20_000)]
    demo_events: usize,
    /// Print the final summary as one JSON line on stdout.
    #[arg(long)]
    summary_json: bool,
    /// Print a preview of the lake at the end (always with `--bootstrap mock`).
    #[arg(long)]
    preview: bool,
}

fn main() -> std::process::ExitCode {
    solutions::exit_code("kafka_to_parquet", start())
}

fn start() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (output, checkpoint) = folders(&args)?;
    // The mock cluster lives as long as this function.
    let mut mock = None;
    let bootstrap = if mock::wanted(&args.bootstrap) {
        let (records, counts) = demo_events(args.demo_events)?;
        let topics = [(args.topic.as_str(), 3), (&args.dlq, 1)];
        let (cluster, sent) = mock::start(&topics, &args.topic, &records).await?;
        let bootstrap = cluster.bootstrap_servers();
        info!(%bootstrap, sent, ?counts, "mock cluster started with demo events");
        mock = Some(cluster);
        bootstrap
    } else {
        create_topic_if_missing(&args.bootstrap, &args.dlq).await?;
        args.bootstrap.clone()
    };

    let config = PipelineConfig {
        bootstrap_servers: bootstrap,
        input: args.topic.clone(),
        dlq: args.dlq.clone(),
        group: args.group.clone(),
        instance_id: args.instance_id.clone(),
        lake_dir: output.clone(),
        checkpoint_dir: checkpoint,
        batch_size: args.max_batch,
        batch_wait: Duration::from_millis(args.max_wait_ms),
        idle_timeout: args
            .idle_timeout_s
            .or(mock.as_ref().map(|_| 2.0))
            .map(Duration::from_secs_f64),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut job = tokio::task::spawn_blocking({
        let stop = stop.clone();
        move || kafka_parquet::run(&config, &stop)
    });
    let counts: PipelineCounts = tokio::select! {
        done = &mut job => done.context("the pipeline panicked")??,
        _ = tokio::signal::ctrl_c() => {
            info!("Ctrl-C: finishing the current batch, then stopping");
            stop.store(true, Ordering::Relaxed);
            job.await.context("the pipeline panicked")??
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    info!(
        batches = counts.batches,
        read = counts.read,
        written = counts.written,
        dead_letters = counts.dead_letters,
        files = counts.files,
        replayed_dead_letters = counts.replayed_dead_letters,
        removed_files = counts.removed_files,
        seconds,
        ingest_seconds = counts.ingest_seconds,
        events_per_s = (counts.read as f64 / counts.ingest_seconds.max(1e-9)).round(),
        "done"
    );
    if args.summary_json {
        println!("{}", serde_json_line(&counts, seconds));
    } else {
        println!(
            "read {} records in {} batches ({seconds:.1} s): {} rows written in {} files, {} dead letters",
            counts.read, counts.batches, counts.written, counts.files, counts.dead_letters
        );
    }
    if mock.is_some() || args.preview {
        preview(&output).await?;
    }
    Ok(())
}

/// The lake and checkpoint folders. With the mock cluster (a new, empty topic each time)
/// they must be new too, so they default to a fresh temporary folder that is kept.
fn folders(args: &Args) -> anyhow::Result<(PathBuf, PathBuf)> {
    if args.bootstrap != "mock" {
        let output = args
            .output
            .clone()
            .context("--output DIR is required (except with --bootstrap mock)")?;
        let checkpoint = args
            .checkpoint
            .clone()
            .context("--checkpoint DIR is required (except with --bootstrap mock)")?;
        return Ok((output, checkpoint));
    }
    let demo = tempfile::Builder::new()
        .prefix("kafka-to-parquet-demo-")
        .tempdir()
        .context("creating a folder for the demo lake")?
        .keep();
    let output = args.output.clone().unwrap_or_else(|| demo.join("lake"));
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| demo.join("checkpoint"));
    anyhow::ensure!(
        !checkpoint.join(kafka_parquet::PARTITIONS_DIR).exists(),
        "{} holds a checkpoint, but the mock cluster starts with an empty topic: \
         give --bootstrap mock a new --checkpoint folder (or none)",
        checkpoint.display()
    );
    println!(
        "demo lake: {}  checkpoint: {}",
        output.display(),
        checkpoint.display()
    );
    Ok((output, checkpoint))
}

fn serde_json_line(counts: &PipelineCounts, seconds: f64) -> String {
    let mut value = serde_json::to_value(counts).expect("the counts serialise");
    value["seconds"] = seconds.into();
    value.to_string()
}

/// Creates the dead-letter topic (1 partition) unless it exists. The topic list is read
/// first, so a topic made beforehand needs no CreateTopics request (which librdkafka's
/// mock cluster, the tests' default broker, does not answer).
async fn create_topic_if_missing(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a Kafka admin client")?;
    // All topics: asking for this one by name could make the broker auto-create it.
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .with_context(|| format!("listing the topics on {bootstrap}"))?;
    if metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none())
    {
        return Ok(());
    }
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .with_context(|| format!("creating the dead-letter topic {topic} on {bootstrap}"))?;
    for result in results {
        match result {
            Ok(_) => info!(topic, "created the dead-letter topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                anyhow::bail!("creating the dead-letter topic {topic} on {bootstrap}: {code}")
            }
        }
    }
    Ok(())
}

/// The demo orders of `--bootstrap mock` (2 % invalid, 1 % malformed) and their counts.
fn demo_events(count: usize) -> anyhow::Result<(Vec<GeneratedRecord>, GeneratedCounts)> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T13:30:00Z")?.to_utc();
    let dirty = DirtyOptions {
        late_fraction: 0.0,
        invalid_fraction: 0.02,
        malformed_fraction: 0.01,
    };
    // 10 events per second of event time: 20,000 events span about half an hour.
    let mut generator = EventGenerator::new(7, start, 10.0, dirty)?;
    let records = generator.generate(count);
    Ok((records, generator.counts()))
}

/// Prints what a reader of the lake sees.
async fn preview(lake_dir: &std::path::Path) -> anyhow::Result<()> {
    if !lake_dir.exists() || std::fs::read_dir(lake_dir)?.next().is_none() {
        println!("The lake {} is empty.", lake_dir.display());
        return Ok(());
    }
    let ctx = SessionContext::new();
    let partitions = PARTITION_COLUMNS
        .iter()
        .map(|c| (c.to_string(), DataType::Int32))
        .collect();
    let lake = ctx
        .read_parquet(
            lake_dir.to_string_lossy().as_ref(),
            ParquetReadOptions::default().table_partition_cols(partitions),
        )
        .await?;
    let hours: Vec<_> = PARTITION_COLUMNS.iter().map(|c| col(*c)).collect();
    println!("Orders per hour partition:");
    lake.clone()
        .aggregate(
            hours.clone(),
            vec![
                count(lit(1)).alias("orders"),
                round(vec![sum(col("amount")), lit(2)]).alias("revenue"),
            ],
        )?
        .sort(hours.iter().map(|c| c.clone().sort(true, false)).collect())?
        .show()
        .await?;
    println!("The first orders:");
    lake.select_columns(&[
        "order_id",
        "customer_id",
        "category",
        "amount",
        "event_time",
        "hour",
    ])?
    .sort(vec![
        col("event_time").sort(true, false),
        col("order_id").sort(true, false),
    ])?
    .limit(0, Some(5))?
    .show()
    .await?;
    println!(
        "Read it with DuckDB: SELECT * FROM read_parquet('{}/**/*.parquet', hive_partitioning = true)",
        lake_dir.display()
    );
    Ok(())
}
