//! The order producer (the seed's `kafka_producer_orders.py`): generated order events
//! to a Kafka topic, in a burst or at a steady rate, clean or with the dirty records
//! the streaming katas must handle.
//!
//! ```text
//! cargo run --release -p order_producer -- --bootstrap 127.0.0.1:9092 --topic orders \
//!     --mode burst --count 100000 --late-fraction 0.02 --summary-json
//! ```
//!
//! The binary is a thin `main` around [`produce`], so tests run the same code against
//! the in-process mock cluster of `kafka_testkit`.
//!
//! Guarantees: records are keyed by `order_id`; the producer is idempotent
//! (`enable.idempotence`); every send is awaited within a bounded in-flight window;
//! each delivery failure is logged and counted per kind, none is dropped silently, and
//! the [`Summary`] says how many of each kind were generated, delivered and failed.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedCounts, RecordKind};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;

/// How long the broker has to answer the first metadata request.
pub const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Burst or steady production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `--rate` events per second until Ctrl-C (or `--count`), with a live counter.
    Continuous,
    /// `--count` events as fast as the broker takes them, then the events/s figure.
    Burst,
}

/// What each record is keyed by, so what decides its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBy {
    /// `order_id`: orders spread evenly over the partitions.
    OrderId,
    /// `category`: each category's orders in one partition, so that instances of the
    /// streaming pipeline in one group each own whole categories (malformed payloads,
    /// which have none, keep their own key).
    Category,
}

/// Command-line arguments (also the input of [`produce`]).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "order_producer",
    about = "Produce generated order events to Kafka (keys = order_id, idempotent, every delivery awaited)"
)]
pub struct Args {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// Topic to produce to; created with --partitions if it does not exist.
    #[arg(long, default_value = "orders")]
    pub topic: String,
    #[arg(long, value_enum, default_value_t = Mode::Continuous)]
    pub mode: Mode,
    /// Number of events: required size of a burst (default 10,000); in continuous
    /// mode, stop after this many (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Events per second: the sending rate in continuous mode, and in both modes the
    /// pace at which event time advances.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seed of the generator: the same seed and --start give the same records.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event time of the first event (RFC 3339, e.g. 2026-11-25T14:00:00Z); default: now.
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// Share of late events (30-60 min behind the latest event time).
    #[arg(long, default_value_t = 0.0)]
    pub late_fraction: f64,
    /// Share of invalid events (null order_id or customer_id, negative amount).
    #[arg(long, default_value_t = 0.0)]
    pub invalid_fraction: f64,
    /// Share of malformed payloads (not JSON, wrong types, missing fields).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_fraction: f64,
    /// What each record is keyed by.
    #[arg(long, value_enum, default_value_t = KeyBy::OrderId)]
    pub key: KeyBy,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Most records sent but not yet acknowledged (librdkafka queues at most 100,000).
    #[arg(long, default_value_t = 50_000)]
    pub max_in_flight: usize,
    /// Extra librdkafka producer properties, e.g. --set linger.ms=20 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub properties: Vec<(String, String)>,
    /// Print the final summary as one JSON line on stdout too.
    #[arg(long)]
    pub summary_json: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// What a run produced: per kind, how many were generated, delivered and failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub topic: String,
    pub mode: Mode,
    pub generated: GeneratedCounts,
    pub delivered: GeneratedCounts,
    pub failed: GeneratedCounts,
    /// Payload bytes delivered.
    pub delivered_bytes: u64,
    /// Whether the run was stopped by Ctrl-C.
    pub interrupted: bool,
    pub elapsed_s: f64,
    /// Delivered events per second of wall time.
    pub events_per_s: f64,
    pub mb_per_s: f64,
}

impl Summary {
    /// Whether every generated record was delivered.
    pub fn nothing_lost(&self) -> bool {
        self.failed.total() == 0 && self.delivered == self.generated
    }

    /// The human-readable summary.
    pub fn report(&self) -> String {
        let line = |name: &str, c: &GeneratedCounts| {
            format!(
                "  {name:<10} {:>10} (valid {}, late {}, invalid {}, malformed {})",
                c.total(),
                c.valid,
                c.late,
                c.invalid,
                c.malformed
            )
        };
        format!(
            "{} mode to {}{}: {:.0} events/s, {:.1} MB/s over {:.2} s\n{}\n{}\n{}",
            match self.mode {
                Mode::Burst => "burst",
                Mode::Continuous => "continuous",
            },
            self.topic,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.events_per_s,
            self.mb_per_s,
            self.elapsed_s,
            line("generated", &self.generated),
            line("delivered", &self.delivered),
            line("failed", &self.failed),
        )
    }
}

type Delivery = (
    RecordKind,
    usize,
    Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
);

/// Produces what `args` asks for with the client settings in `config` (which must
/// hold `bootstrap.servers`; `args.bootstrap` is not read here). Stops at `--count`,
/// or on Ctrl-C in continuous mode, then awaits every delivery still in flight.
///
/// Fails (before sending anything) if the broker does not answer within
/// [`BROKER_CHECK_TIMEOUT`], the arguments are inconsistent, or the topic cannot be
/// created; delivery failures do not fail the call: they are counted in the summary.
pub async fn produce(config: ClientConfig, args: &Args) -> anyhow::Result<Summary> {
    let count = match (args.mode, args.count) {
        (Mode::Burst, None) => Some(10_000),
        (_, c) => c,
    };
    ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate {} must be a positive number",
        args.rate
    );
    ensure!(
        args.partitions > 0,
        "--partitions {} must be > 0",
        args.partitions
    );
    ensure!(args.max_in_flight > 0, "--max-in-flight must be > 0");
    let dirty = DirtyOptions {
        late_fraction: args.late_fraction,
        invalid_fraction: args.invalid_fraction,
        malformed_fraction: args.malformed_fraction,
    };
    let start = args.start.unwrap_or_else(Utc::now);
    let mut generator = EventGenerator::new(args.seed, start, args.rate, dirty)?;

    let bootstrap = config
        .get("bootstrap.servers")
        .context("the client config has no bootstrap.servers")?
        .to_string();
    ensure_topic(&config, &bootstrap, &args.topic, args.partitions).await?;

    let mut producer_config = config.clone();
    producer_config
        .set("enable.idempotence", "true")
        .set("linger.ms", "10")
        // No compression by default: on a local broker the CPU it costs is the
        // bottleneck (2,000,000 events: 207k/s uncompressed, 163k/s with lz4);
        // `--set compression.type=lz4` for a remote broker.
        .set("message.timeout.ms", "30000");
    for (key, value) in &args.properties {
        producer_config.set(key, value);
    }
    let producer: FutureProducer = producer_config
        .create()
        .context("creating the Kafka producer")?;
    tracing::info!(
        topic = %args.topic, mode = ?args.mode, ?count, rate = args.rate, seed = args.seed,
        start = %fixtures::events::format_timestamp(start), "producing"
    );

    let mut tally = Tally::default();
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    let mut progress = Progress::new(args.mode);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let mut sent: u64 = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        if count.is_some_and(|c| sent >= c) {
            break;
        }
        // How many records may go now: all of them in a burst, the rate's share of
        // the elapsed time in continuous mode.
        let due = match args.mode {
            Mode::Burst => true,
            Mode::Continuous => (started.elapsed().as_secs_f64() * args.rate) as u64 >= sent,
        };
        if !due || in_flight.len() >= args.max_in_flight {
            tokio::select! {
                _ = &mut ctrl_c => { interrupted = true; break; }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => tally.record(done),
                _ = ticker.tick(), if !due => {}
            }
            progress.show(&tally, sent, started);
            continue;
        }

        let record = generator.next().expect("the generator never ends");
        let payload_len = record.payload.len();
        let mut future_record = FutureRecord::to(&args.topic).payload(&record.payload);
        let key = match (args.key, &record.event) {
            (KeyBy::Category, Some(event)) => Some(&event.category),
            _ => record.key.as_ref(),
        };
        if let Some(key) = key {
            future_record = future_record.key(key);
        }
        loop {
            match producer.send_result(future_record) {
                Ok(delivery) => {
                    let kind = record.kind;
                    in_flight.push(async move { (kind, payload_len, delivery.await) });
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    future_record = back;
                    match in_flight.next().await {
                        Some(done) => tally.record(done),
                        None => bail!("librdkafka's queue is full with nothing in flight"),
                    }
                }
                Err((e, _)) => {
                    // Refused before it was queued: a failure of this record.
                    tally.fail(record.kind, &e);
                    break;
                }
            }
        }
        sent += 1;
        if sent.is_multiple_of(1024) {
            // Let Ctrl-C through during a burst too.
            if futures::FutureExt::now_or_never(&mut ctrl_c).is_some() {
                interrupted = true;
                break;
            }
            progress.show(&tally, sent, started);
        }
    }

    // Await everything still in flight (bounded by message.timeout.ms).
    while let Some(done) = in_flight.next().await {
        tally.record(done);
        progress.show(&tally, sent, started);
    }
    progress.finish();
    let flushed = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30)))
        .await
        .context("the flush task panicked")?;
    if let Err(e) = flushed {
        tracing::warn!("flushing the producer: {e}");
    }

    let elapsed = started.elapsed().as_secs_f64();
    let summary = Summary {
        topic: args.topic.clone(),
        mode: args.mode,
        generated: generator.counts(),
        delivered: tally.delivered,
        failed: tally.failed,
        delivered_bytes: tally.bytes,
        interrupted,
        elapsed_s: elapsed,
        events_per_s: tally.delivered.total() as f64 / elapsed,
        mb_per_s: tally.bytes as f64 / 1e6 / elapsed,
    };
    if summary.failed.total() > 0 {
        tracing::error!(
            failed = summary.failed.total(),
            "some records were not delivered"
        );
    }
    Ok(summary)
}

/// Fails clearly if no broker answers; creates the topic if it does not exist.
async fn ensure_topic(
    config: &ClientConfig,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let mut admin_config = config.clone();
    admin_config
        .set("allow.auto.create.topics", "false")
        .set("log_level", "3");
    let admin: AdminClient<DefaultClientContext> = admin_config
        .create()
        .context("creating a Kafka admin client")?;
    let topic_owned = topic.to_string();
    let (admin, existing) = tokio::task::spawn_blocking(move || {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(&topic_owned), BROKER_CHECK_TIMEOUT);
        let existing = metadata.map(|m| {
            m.topics()
                .iter()
                .find(|t| t.name() == topic_owned && t.error().is_none())
                .map(|t| t.partitions().len())
        });
        (admin, existing)
    })
    .await
    .context("the metadata task panicked")?;
    let existing = existing.map_err(|e| {
        anyhow!(
            "no Kafka broker at {bootstrap} — start one with `scripts/kafka-local up` or \
             `docker compose up -d`, or pass --bootstrap HOST:PORT (metadata request: {e})"
        )
    })?;
    if let Some(n) = existing.filter(|n| *n > 0) {
        tracing::info!(topic, partitions = n, "topic exists");
        return Ok(());
    }
    tracing::info!(topic, partitions, "creating topic");
    // A broker that has just started may answer NotController or time out for a few
    // seconds: the one retry policy rides that out.
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let what = format!("creating topic {topic}");
    kafka_retry::retry_async(&what, kafka_retry::DEADLINE, || async {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for result in admin.create_topics(&[new], &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(KafkaError::AdminOp(code)),
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| anyhow!("creating topic {topic} on {bootstrap}: {e}"))
}

/// Delivered and failed counts, by kind.
#[derive(Default)]
struct Tally {
    delivered: GeneratedCounts,
    failed: GeneratedCounts,
    bytes: u64,
}

impl Tally {
    fn record(&mut self, (kind, len, result): Delivery) {
        match result {
            Ok(Ok(_)) => {
                self.delivered.add(kind);
                self.bytes += len as u64;
            }
            Ok(Err((e, _))) => self.fail(kind, &e),
            Err(_) => self.fail(kind, &"the producer was dropped before delivery"),
        }
    }

    fn fail(&mut self, kind: RecordKind, error: &dyn std::fmt::Display) {
        self.failed.add(kind);
        let n = self.failed.total();
        // Every failure is counted; the first ones and then every 1,000th are logged.
        if n <= 10 || n.is_multiple_of(1_000) {
            tracing::warn!(failed_so_far = n, ?kind, "delivery failed: {error}");
        }
    }
}

/// The live counter: a line rewritten in place on a terminal, a log line every 5 s
/// otherwise (continuous mode only; a burst reports at the end).
struct Progress {
    enabled: bool,
    terminal: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(mode: Mode) -> Self {
        Self {
            enabled: mode == Mode::Continuous,
            terminal: std::io::stderr().is_terminal(),
            last: Instant::now(),
            shown: false,
        }
    }

    fn show(&mut self, tally: &Tally, sent: u64, started: Instant) {
        let every = if self.terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        if !self.enabled || self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let delivered = tally.delivered.total();
        let rate = delivered as f64 / started.elapsed().as_secs_f64();
        let failed = tally.failed.total();
        if self.terminal {
            eprint!("\rsent {sent}  delivered {delivered}  failed {failed}  ({rate:.0}/s)   ");
            self.shown = true;
        } else {
            tracing::info!(sent, delivered, failed, rate = rate.round(), "progress");
        }
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
