//! Kafka -> Kafka, explained line by line: order events in, 5-minute totals per category
//! out, behind a 10-minute watermark kept per input partition; payloads that do not fit
//! the schema go, as they are, to the dead-letter topic.
//!
//! The Spark query this program replaces, and where each line of it went:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", INPUT).load()            # consumer, subscribe, recv
//!    .select(from_json(col("value").cast("string"), schema).alias("o"))          # parse_order + Order
//!    .select("o.*").withWatermark("timestamp", "10 minutes")                      # latest_time, is it late?
//!    .groupBy(window("timestamp", "5 minutes"), "category")                       # window_start, open windows
//!    .agg(count("*"), round(sum("amount"), 2), round(avg("amount"), 2))           # Totals, cents()
//!    .select(to_json(struct("*")).alias("value"))                                 # WindowRow, serde_json
//!    .writeStream.format("kafka").option("topic", OUTPUT).outputMode("append")    # FutureProducer, emit
//!    .start())                                                                    # the loop in main
//! ```
//!
//! Spark hides four things this program has to do itself, and they are where streaming
//! jobs go wrong: keeping the window state between records, deciding when a window is
//! final (the watermark, over several partitions), putting bad input aside (the
//! dead-letter topic), and committing the input offsets only once the results are safe.

// Ordered collections: a BTreeMap keyed by (window start, category) iterates in time
// order, so "every window that ends before the watermark" is a prefix of the map.
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

// anyhow: one error type for the whole program; `.context(...)` says what we were doing
// when something failed, which is what the person reading the log needs.
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// A tumbling window lasts 5 minutes (Spark: `window("timestamp", "5 minutes")`).
/// Times are milliseconds since the epoch, as Kafka and Arrow count them.
const WINDOW_MS: i64 = 5 * 60 * 1000;
/// The watermark trails the latest event time by 10 minutes
/// (Spark: `withWatermark("timestamp", "10 minutes")`).
const WATERMARK_DELAY_MS: i64 = 10 * 60 * 1000;
/// How long we keep retrying what a broker that is starting up answers.
const BROKER_PATIENCE: Duration = Duration::from_secs(60);

/// The command line. `#[arg(long)]` turns `idle_timeout_s` into `--idle-timeout-s`.
#[derive(Parser)]
#[command(about = "Kafka -> Kafka: 5-minute order totals per category, 10-minute watermark")]
struct Args {
    /// Kafka's `bootstrap.servers`: where the clients find the cluster.
    #[arg(long)]
    bootstrap: String,
    /// The order events.
    #[arg(long)]
    input: String,
    /// One message per window.
    #[arg(long)]
    output: String,
    /// The payloads that do not fit the schema.
    #[arg(long)]
    dlq: String,
    /// The consumer group: where the committed offsets are kept.
    #[arg(long)]
    group: String,
    /// Stop after this many seconds without a record (the input is then finished).
    #[arg(long)]
    idle_timeout_s: u64,
}

/// The explicit schema of an order event (Spark: the `StructType` given to `from_json`).
///
/// serde checks every field when it deserialises: a missing one, a null where the type
/// is not an `Option`, or a value of another type (a quantity of `"several"`) is an
/// error, and that error is our dead-letter reason. `Option<String>` accepts null (and a
/// missing field): those ids may be null. Unknown fields are ignored, as `from_json` does.
/// Only three fields feed the windows, but all nine are declared so that all nine are
/// checked; `allow(dead_code)` says we know six are never read.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Order {
    order_id: Option<String>,
    customer_id: Option<String>,
    product_id: String,
    category: String,
    quantity: i32,
    unit_price: f64,
    amount: f64,
    status: String,
    /// Kept as the string on the wire and parsed below: chrono's serde support is not
    /// among our dependencies, and the parse error then names the field.
    timestamp: String,
}

/// One window as it is written. serde writes a struct's fields in declaration order,
/// which is the order the output format asks for (a `serde_json::Map` would sort them).
#[derive(Serialize)]
struct WindowRow {
    window_start: String,
    window_end: String,
    category: String,
    order_count: i64,
    total_amount: f64,
    avg_amount: f64,
}

/// The running totals of one open window. The amount stays unrounded while it adds up;
/// rounding happens once, when the window is written (rounding every step drifts).
#[derive(Default)]
struct Totals {
    count: i64,
    amount: f64,
}

/// Parses one payload: (event time in ms since the epoch, category, amount), or the
/// reason it is malformed.
fn parse_order(payload: &[u8]) -> Result<(i64, String, f64)> {
    // `from_slice` reads the bytes directly: no need to make a String first.
    let order: Order = serde_json::from_slice(payload).context("does not fit the schema")?;
    // RFC 3339 is the ISO-8601 profile with a mandatory offset: `...Z` or `...+02:00`.
    // `timestamp_millis()` converts any offset to UTC milliseconds.
    let time = DateTime::parse_from_rfc3339(&order.timestamp).with_context(|| {
        format!(
            "field `timestamp`: {:?} is not a date-time",
            order.timestamp
        )
    })?;
    Ok((time.timestamp_millis(), order.category, order.amount))
}

/// The start of the window holding time `t`: the multiple of 5 minutes at or before it,
/// counted from the epoch. `rem_euclid` (not `%`) stays right for times before 1970,
/// where `%` would be negative. Aligning to the first event instead is a classic bug:
/// two runs, or two jobs, would then disagree on the windows.
fn window_start(t: i64) -> i64 {
    t - t.rem_euclid(WINDOW_MS)
}

/// ISO-8601 UTC with milliseconds, e.g. `2026-11-25T14:05:00.000Z`, as the input's own
/// timestamps and Spark's `to_json` write them.
fn iso(ms: i64) -> String {
    // A time out of chrono's range cannot come from a parsed event; the epoch is a
    // harmless fallback that never panics.
    let time = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Money to the cent, like Spark's `round(x, 2)`.
fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Queues one window on the output topic and returns its delivery, to be awaited later.
/// Spark: `to_json(struct(*))` plus the Kafka sink.
fn emit(
    producer: &FutureProducer,
    topic: &str,
    (start, category): (i64, String),
    totals: Totals,
) -> Result<DeliveryFuture> {
    let row = WindowRow {
        window_start: iso(start),
        window_end: iso(start + WINDOW_MS),
        order_count: totals.count,
        total_amount: cents(totals.amount),
        // The mean of the unrounded total, then rounded: Spark's round(avg(amount), 2).
        avg_amount: cents(totals.amount / totals.count as f64),
        category,
    };
    // The key identifies the window: a compacted topic (or an upsert downstream) keeps
    // one copy if a restart ever sends a window again.
    let key = format!("{}|{}", row.window_start, row.category);
    let value = serde_json::to_string(&row).context("writing a window as JSON")?;
    // `send_result` hands the message to librdkafka and returns at once; the returned
    // future completes when the broker has acknowledged it. Awaiting each send before the
    // next would cost a full round trip (and `linger.ms`) per window.
    producer
        .send_result(FutureRecord::to(topic).key(&key).payload(&value))
        .map_err(|(e, _)| e)
        .with_context(|| format!("queueing window {key} for topic {topic}"))
}

/// Is this an answer a broker gives while it starts, restarts or moves a group
/// coordinator, that goes away by itself? A freshly started Kafka answers
/// `CoordinatorLoadInProgress` for some seconds while it loads `__consumer_offsets`, and
/// `NotCoordinator` when the group's coordinator has just moved. Java clients and Spark
/// retry these; a program that gives up at the first one fails for no reason.
fn is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            NotCoordinator
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | LeaderNotAvailable
                | NotLeaderForPartition
                | UnknownTopicOrPartition
                | RequestTimedOut
                | OperationTimedOut
                | BrokerTransportFailure
                | AllBrokersDown
                | RebalanceInProgress
        )
    )
}

/// Runs `op` until it succeeds, retrying transient broker answers with a backoff that
/// doubles (100 ms, 200 ms, … at most 2 s) until [`BROKER_PATIENCE`] has passed; any
/// other error, or the last transient one, fails with `what` as its context.
async fn retry<T>(what: &str, mut op: impl FnMut() -> KafkaResult<T>) -> Result<T> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if is_transient(&e) && started.elapsed() + backoff < BROKER_PATIENCE => {
                eprintln!("{what}: the broker answered {e}; retrying in {backoff:?}");
                // tokio's sleep, not std's: it does not block the runtime's thread.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e).context(what.to_string()),
        }
    }
}

// `#[tokio::main]` starts the async runtime that rdkafka's futures (`recv`, deliveries)
// run on. The default is multi-threaded; a single thread would do too.
#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();

    // The consumer. Spark: `readStream.format("kafka").option("subscribe", ...)`.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        // The group keeps our committed offsets: a restart resumes from them.
        .set("group.id", &args.group)
        // With no committed offset yet, start at the beginning, not the end ("latest",
        // the default, would skip every event written before we started).
        // Spark: startingOffsets = "earliest".
        .set("auto.offset.reset", "earliest")
        // We commit ourselves, after the results are delivered (the auto-commit would
        // commit in the background on a timer, whatever we have or have not written).
        .set("enable.auto.commit", "false")
        // If we die without leaving the group, its partitions go to another member after
        // 6 s (the broker's minimum) instead of the default 45 s.
        .set("session.timeout.ms", "6000")
        .create()
        .context("creating the Kafka consumer")?;

    // The producer, for the windows and the dead letters. Idempotence: the broker drops
    // the duplicates the producer's own retries would otherwise write (and keeps order).
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .context("creating the Kafka producer")?;

    // Which partitions does the input have? A window may only close when *every*
    // partition's watermark has passed its end, so we must know them all, including
    // those we have not read a record from yet. `fetch_metadata` blocks (briefly) and
    // may meet a broker that is still electing the topic's leader: retried.
    let partitions: Vec<i32> = retry("reading the input topic's partitions", || {
        let metadata = consumer.fetch_metadata(Some(&args.input), Duration::from_secs(10))?;
        let topic = metadata.topics().iter().find(|t| t.name() == args.input);
        match topic {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().iter().map(|p| p.id()).collect())
            }
            // Reported like the client's own errors, so that `retry` retries it.
            _ => Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::LeaderNotAvailable,
            )),
        }
    })
    .await?;

    // Subscribe (not `assign`): the group gives us every partition, and rebalances them
    // if another instance of the job joins.
    consumer
        .subscribe(&[&args.input])
        .with_context(|| format!("subscribing to topic {}", args.input))?;

    // The state Spark keeps for us between micro-batches.
    // Step 4's state: the latest event time read so far, per input partition.
    let mut latest_time: HashMap<i32, i64> = HashMap::new();
    // Step 5's state: the open windows, (start, category) -> totals, in time order.
    let mut windows: BTreeMap<(i64, String), Totals> = BTreeMap::new();
    // Per partition, the offset of the next record to read: what we will commit.
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    // Everything we sent and has not been acknowledged yet.
    let mut deliveries: Vec<DeliveryFuture> = Vec::new();
    // Counts for the log line at the end (Spark shows them in its progress reports).
    let (mut read, mut late, mut dead, mut emitted) = (0u64, 0u64, 0u64, 0u64);

    let idle_timeout = Duration::from_secs(args.idle_timeout_s);
    // Joining the group takes a few seconds, during which nothing can arrive: the idle
    // clock starts when partitions are assigned. We still give up if that never happens.
    let join_deadline = Instant::now() + BROKER_PATIENCE;
    let mut last_record = Instant::now();

    loop {
        // Wait for the next record, but never longer than 100 ms, so that we notice the
        // idle timeout. `recv` is cancel-safe: a timeout loses no message.
        let message = match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        {
            Ok(Ok(message)) => message,
            // A consumer error (the broker went away for good, an unknown topic, …).
            Ok(Err(e)) => return Err(e).context("reading the input topic"),
            // Nothing for 100 ms.
            Err(_) => {
                let assigned = consumer.assignment().context("reading the assignment")?;
                if assigned.count() == 0 {
                    if Instant::now() > join_deadline {
                        bail!(
                            "no partition of {} was assigned to group {} within {:?}",
                            args.input,
                            args.group,
                            BROKER_PATIENCE
                        );
                    }
                    // Still joining: this is not idle time.
                    last_record = Instant::now();
                } else if last_record.elapsed() >= idle_timeout {
                    // The input is finished.
                    break;
                }
                continue;
            }
        };
        last_record = Instant::now();
        read += 1;
        let partition = message.partition();
        // The committed offset is the *next* one to read: committing `offset` itself
        // would read this record again after a restart.
        next_offsets.insert(partition, message.offset() + 1);
        // A record may have no value at all (a tombstone): treat it as empty, malformed.
        let payload = message.payload().unwrap_or_default();

        // Step 3: parse with the explicit schema. Spark: `from_json(...)`, which would
        // silently give nulls for a bad row; we set it aside with the reason instead.
        let (time, category, amount) = match parse_order(payload) {
            Ok(order) => order,
            Err(why) => {
                // The dead letter: the payload byte for byte (someone will want to replay
                // or fix it), the same key, and why in a header, with where it came from.
                let reason = format!("{why:#}");
                let source = format!("{}/{partition}@{}", args.input, message.offset());
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "error",
                        value: Some(&reason),
                    })
                    .insert(Header {
                        key: "source",
                        value: Some(&source),
                    });
                let record = FutureRecord::to(&args.dlq)
                    .payload(payload)
                    .headers(headers);
                let record = match message.key() {
                    Some(key) => record.key(key),
                    None => record,
                };
                let delivery = producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .context("queueing a dead letter")?;
                deliveries.push(delivery);
                dead += 1;
                continue;
            }
        };
        // Note: a null order_id or a negative amount is *not* malformed. It fits the
        // schema, so it counts like any other event; business validation is another job.

        // Step 4: the watermark. The latest event time of *this record's partition*,
        // this record included, minus 10 minutes. Why per partition: the consumer reads
        // partitions in chunks, often one partition's whole backlog before the next; with
        // one latest time for the topic, the second partition's on-time events would all
        // look late. (Spark gets away with a global watermark because it only moves it
        // between micro-batches; Flink keeps one per partition, as we do.)
        let latest = latest_time.entry(partition).or_insert(time);
        *latest = (*latest).max(time);
        if time < *latest - WATERMARK_DELAY_MS {
            late += 1;
            continue;
        }

        // Step 5: add the event to its window: 5 minutes aligned to the epoch, per category.
        let totals = windows.entry((window_start(time), category)).or_default();
        totals.count += 1;
        totals.amount += amount;

        // When is a window final? When no on-time event can still fall in it: every
        // partition's watermark has passed its end. A partition we have not read yet
        // holds everything back (its watermark is -infinity). Taking the minimum over the
        // partitions read so far instead would close windows that a partition read later
        // still feeds: they would be emitted twice, or its events dropped.
        let watermark = partitions
            .iter()
            .map(|p| {
                latest_time
                    .get(p)
                    .map_or(i64::MIN, |t| t - WATERMARK_DELAY_MS)
            })
            .min()
            .unwrap_or(i64::MIN);
        // The map is sorted by window start, so the closed windows are at its front.
        // Spark: outputMode("append"), each window written once, when final.
        while let Some(closed) = windows
            .first_entry()
            .filter(|w| w.key().0 + WINDOW_MS <= watermark)
        {
            let (key, totals) = closed.remove_entry();
            deliveries.push(emit(&producer, &args.output, key, totals)?);
            emitted += 1;
        }
    }

    // Idle: no more input, so no window can still change. Emit every open window.
    for (key, totals) in std::mem::take(&mut windows) {
        deliveries.push(emit(&producer, &args.output, key, totals)?);
        emitted += 1;
    }

    // Step 7, first half: wait until the broker has every window and dead letter. All
    // sends were in flight together; awaiting them now costs about one round trip.
    for delivery in deliveries {
        delivery
            .await
            .context("the producer was dropped before delivering")?
            .map_err(|(e, _)| e)
            .context("delivering a window or a dead letter")?;
    }

    // Step 7, second half: commit, only now that the results are safe. Committing first
    // and crashing before delivery would lose those windows for good. Committing only at
    // the end (not after each emission) also never commits past a record whose window is
    // still open; the price is that a crash replays the whole input, which re-sends the
    // same windows with the same keys and values: at-least-once, harmless downstream.
    let mut offsets = TopicPartitionList::new();
    for (&partition, &next) in &next_offsets {
        offsets
            .add_partition_offset(&args.input, partition, Offset::Offset(next))
            .context("building the offsets to commit")?;
    }
    if offsets.count() > 0 {
        // Synchronous: when this returns, the offsets are stored by the group's
        // coordinator. An async commit could still be in flight when the process exits.
        retry("committing the offsets", || {
            consumer.commit(&offsets, CommitMode::Sync)
        })
        .await?;
    }

    // Leave the group cleanly: its partitions are free for the next run at once.
    consumer.unsubscribe();
    eprintln!(
        "read {read}: {emitted} windows emitted, {late} late events dropped, {dead} dead letters"
    );
    Ok(())
}
