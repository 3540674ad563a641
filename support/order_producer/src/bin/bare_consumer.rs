//! `bare_consumer`: reads a whole topic as fast as librdkafka can and prints events/s
//! and MB/s. No parsing, no processing: the ceiling the streaming pipelines are
//! compared to.
//!
//! ```text
//! cargo run --release -p order_producer --bin bare_consumer -- --bootstrap 127.0.0.1:9092 --topic orders
//! ```
//!
//! It reads every partition from the beginning up to the high watermark it saw at
//! start, with the partitions assigned directly (no group join), then exits.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

#[derive(Debug, Parser)]
#[command(about = "Read a whole Kafka topic and print events/s and MB/s")]
struct Args {
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    #[arg(long, default_value = "orders")]
    topic: String,
    /// Give up if the topic has not been read within this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Extra librdkafka consumer properties, e.g. --set fetch.wait.max.ms=50 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("bare-consumer-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // Big fetches and a deep prefetch queue: the consumer should never wait on
        // the network while the application still has records to take.
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "262144")
        .set("fetch.wait.max.ms", "100");
    for property in &args.properties {
        let Some((key, value)) = property.split_once('=') else {
            bail!("--set {property}: expected KEY=VALUE");
        };
        config.set(key.trim(), value.trim());
    }
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;

    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(5))
        .map_err(|e| {
            anyhow::anyhow!(
                "no Kafka broker at {} — start one with `scripts/kafka-local up` or \
                 `docker compose up -d` (metadata request: {e})",
                args.bootstrap
            )
        })?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0)
        .with_context(|| format!("topic {} does not exist on {}", args.topic, args.bootstrap))?;

    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0i64;
    let mut ends = vec![0i64; partitions as usize];
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(&args.topic, p, Duration::from_secs(10))
            .with_context(|| format!("reading the offsets of {}/{p}", args.topic))?;
        remaining += high - low;
        ends[p as usize] = high;
        assignment.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    let total = remaining;
    consumer.assign(&assignment)?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let mut bytes = 0u64;
    let mut read = 0i64;
    while read < total {
        if Instant::now() > deadline {
            bail!("read {read} of {total} records within {} s", args.timeout_s);
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("consuming")?;
        if message.offset() < ends[message.partition() as usize] {
            read += 1;
            bytes += message.payload_len() as u64;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    consumer.unassign()?;
    println!(
        "read {read} events ({:.1} MB) from {} ({partitions} partitions) in {elapsed:.2} s: {:.0} events/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        args.topic,
        read as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed
    );
    Ok(())
}
