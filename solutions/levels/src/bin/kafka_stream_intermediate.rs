//! Kafka -> Kafka, the interview answer: order events in, 5-minute totals per category
//! out, behind a 10-minute watermark kept per input partition; payloads that do not fit
//! the schema go, as they are, to the dead-letter topic.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

const WINDOW_MS: i64 = 5 * 60 * 1000;
const WATERMARK_DELAY_MS: i64 = 10 * 60 * 1000;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    input: String,
    #[arg(long)]
    output: String,
    #[arg(long)]
    dlq: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    idle_timeout_s: u64,
}

/// The event schema: serde checks every field, three are used.
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
    timestamp: String,
}

/// A window as written, fields in this order.
#[derive(Serialize)]
struct WindowRow {
    window_start: String,
    window_end: String,
    category: String,
    order_count: i64,
    total_amount: f64,
    avg_amount: f64,
}

/// (event time in ms, category, amount), or why the payload is malformed.
fn parse(payload: &[u8]) -> Result<(i64, String, f64)> {
    let order: Order = serde_json::from_slice(payload)?;
    let time = DateTime::parse_from_rfc3339(&order.timestamp).context("field `timestamp`")?;
    Ok((time.timestamp_millis(), order.category, order.amount))
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Queues one window: key `window_start|category`, value the row as JSON.
fn send(
    out: &FutureProducer,
    topic: &str,
    window: ((i64, String), (i64, f64)),
) -> Result<DeliveryFuture> {
    let ((start, category), (count, total)) = window;
    let iso = |ms| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
    };
    let row = WindowRow {
        window_start: iso(start).to_string(),
        window_end: iso(start + WINDOW_MS).to_string(),
        order_count: count,
        total_amount: cents(total),
        avg_amount: cents(total / count as f64),
        category,
    };
    let (key, value) = (
        format!("{}|{}", row.window_start, row.category),
        serde_json::to_string(&row)?,
    );
    let record = FutureRecord::to(topic).key(&key).payload(&value);
    out.send_result(record)
        .map_err(|(e, _)| e)
        .context("queueing a window")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the consumer")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .context("creating the producer")?;
    // A window closes on the slowest partition's watermark: know them all.
    let metadata = consumer.fetch_metadata(Some(&args.input), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| p.id())
        .collect();
    ensure!(
        !partitions.is_empty(),
        "topic {} has no partitions",
        args.input
    );
    consumer.subscribe(&[&args.input])?;

    let idle = Duration::from_secs(args.idle_timeout_s);
    let mut max_time: HashMap<i32, i64> = HashMap::new(); // per partition
    let mut windows: BTreeMap<(i64, String), (i64, f64)> = BTreeMap::new(); // (count, total)
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let (mut deliveries, mut late, mut dead) = (Vec::new(), 0, 0);
    let mut last_record = Instant::now();
    loop {
        let message = match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
        {
            Ok(message) => message.context("reading the input")?,
            // Idle time counts from the partition assignment (a group join takes seconds).
            Err(_) if consumer.assignment()?.count() == 0 => {
                last_record = Instant::now();
                continue;
            }
            Err(_) if last_record.elapsed() >= idle => break,
            Err(_) => continue,
        };
        last_record = Instant::now();
        let partition = message.partition();
        next_offsets.insert(partition, message.offset() + 1);
        let payload = message.payload().unwrap_or_default();
        let (time, category, amount) = match parse(payload) {
            Ok(order) => order,
            Err(why) => {
                eprintln!("dead letter {partition}@{}: {why:#}", message.offset());
                let record = FutureRecord::to(&args.dlq).payload(payload);
                let record = if let Some(key) = message.key() {
                    record.key(key)
                } else {
                    record
                };
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
                dead += 1;
                continue;
            }
        };
        // Late: older than its own partition's latest event time minus 10 minutes.
        let max = max_time.entry(partition).or_insert(time);
        *max = (*max).max(time);
        if time < *max - WATERMARK_DELAY_MS {
            late += 1;
            continue;
        }
        let totals = windows
            .entry((time - time.rem_euclid(WINDOW_MS), category))
            .or_default();
        *totals = (totals.0 + 1, totals.1 + amount);
        // Closed once every partition's watermark has passed the window's end.
        let watermark = partitions
            .iter()
            .map(|p| max_time.get(p).map_or(i64::MIN, |m| m - WATERMARK_DELAY_MS))
            .min()
            .unwrap_or(i64::MIN);
        while let Some(closed) = windows
            .first_entry()
            .filter(|w| w.key().0 + WINDOW_MS <= watermark)
        {
            deliveries.push(send(&producer, &args.output, closed.remove_entry())?);
        }
    }

    // Idle: the input is finished, every open window goes out.
    for window in std::mem::take(&mut windows) {
        deliveries.push(send(&producer, &args.output, window)?);
    }
    // Delivered first, committed after. Committing only here keeps it at-least-once: a
    // crash replays from the start and sends the same windows again, same key and value.
    let emitted = deliveries.len() - dead;
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e).context("delivering")?;
    }
    let mut offsets = TopicPartitionList::new();
    for (&partition, &next) in &next_offsets {
        offsets.add_partition_offset(&args.input, partition, Offset::Offset(next))?;
    }
    // A broker that has just started may still be loading its coordinator: retry a while.
    let mut tries = 0;
    while offsets.count() > 0
        && let Err(e) = consumer.commit(&offsets, CommitMode::Sync)
    {
        tries += 1;
        ensure!(tries < 20, "committing the offsets: {e}");
        tokio::time::sleep(Duration::from_millis(250 * tries)).await;
    }
    consumer.unsubscribe();
    eprintln!("{emitted} windows emitted, {late} late events dropped, {dead} dead letters");
    Ok(())
}
