//! Grading of the Kafka → Kafka kata's whole program (`cargo practice grade kafka`).
//!
//! 1. Fresh events from `fixtures::events::EventGenerator` (the verdict's seed; late,
//!    invalid and malformed ones among them) are produced, keyed by order id, to a new
//!    topic of [`PARTITIONS`] partitions on the broker of every Kafka test
//!    (`kafka_testkit`: librdkafka's mock cluster, or `KAFKA_BOOTSTRAP_SERVERS`).
//! 2. The program runs with new, empty output and dead-letter topics and a new group,
//!    `--idle-timeout-s` [`IDLE_TIMEOUT_S`], bounded by [`Options::run_deadline`].
//! 3. The output topic, the dead-letter topic and the group's committed offsets are read
//!    back and compared with the reference semantics, computed from the records in
//!    partition order by `fixtures::expected::stream_windows_by_partition`: an event is
//!    late when it is more than 10 minutes older than the latest event time read so far
//!    in its own partition; windows are `[start, start + 5 min)` aligned to the epoch, per
//!    category; each window once; every malformed payload dead-lettered once, nothing
//!    else; the committed offsets at the end of every partition.
//!
//! A wrong result is explained by recomputing the windows under the likely mistake (no
//! watermark, invalid events left out, no flush at the idle timeout, only some
//! partitions read) and saying which one the program's output matches; otherwise each
//! difference is put on the step it belongs to, with expected | actual tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use fixtures::events::{DirtyOptions, EventGenerator, GeneratedRecord, RecordKind};
use fixtures::expected::{StreamWindows, stream_windows_by_partition};
use kafka_testkit::{Broker, BrokerKind, ConsumedRecord, unique_name};
use serde_json::Value;

use crate::program::Run;
use crate::verdict::{side_by_side, thousands};
use crate::{Check, Kata, Options, Program, Verdict};

/// Partitions of the input topic: enough for a watermark taken over the partitions
/// read so far to close windows too early.
pub const PARTITIONS: i32 = 3;
/// Events per grading: about 145 windows, a verdict in seconds on the mock.
pub const EVENTS: usize = 3_000;
/// Event time the events cover: well beyond the 10-minute watermark.
pub const EVENT_TIME_SPAN: Duration = Duration::from_secs(2 * 3600);
/// The program's `--idle-timeout-s`.
pub const IDLE_TIMEOUT_S: u64 = 2;
/// Shares of late, invalid (null id, negative amount) and malformed events.
pub const DIRTY: DirtyOptions = DirtyOptions {
    late_fraction: 0.03,
    invalid_fraction: 0.03,
    malformed_fraction: 0.03,
};

/// The checklist's steps, those of the kata's guided steps.
pub const RUNS: &str = "runs";
pub const READS: &str = "reads the topic";
pub const PARSES: &str = "parses JSON";
pub const WATERMARK: &str = "watermark";
pub const WINDOWS: &str = "5-minute windows";
pub const FORMAT: &str = "output format";
pub const WRITES: &str = "writes to the output topic";
pub const COMMITS: &str = "commits offsets";

const WINDOW_MS: i64 = 5 * 60 * 1000;
const WATERMARK_DELAY_MS: i64 = 10 * 60 * 1000;
/// The output's timestamps: ISO-8601 UTC with milliseconds.
const ISO_MILLIS: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
/// The fields of an output value, in order.
const FIELDS: [&str; 6] = [
    "window_start",
    "window_end",
    "category",
    "order_count",
    "total_amount",
    "avg_amount",
];
/// How many examples a failed check shows.
const SHOWN: usize = 3;
/// The longest wait for the output topics to be read back.
const READ_BACK: Duration = Duration::from_secs(30);

pub async fn grade(program: &Program, options: &Options) -> anyhow::Result<Verdict> {
    let broker = kafka_testkit::broker()
        .await
        .context("no Kafka broker to grade on")?;
    let names = Names::fresh();
    broker.create_topic(&names.input, PARTITIONS).await?;
    broker.create_topic(&names.output, 1).await?;
    broker.create_topic(&names.dlq, 1).await?;
    let records = generate(options.seed)?;
    let placed = broker
        .produce_events(&names.input, &records)
        .await
        .context("producing the fresh events")?;
    let input = Input::new(records, &placed)?;
    let expected = stream_windows_by_partition(&input.records, &input.partitions)?;

    let mut verdict = Verdict::new(Kata::Kafka.name());
    verdict.context(format!(
        "seed {} (--seed {} replays this data)",
        options.seed, options.seed
    ));
    verdict.context(input.describe(&expected));
    let kind = match broker.kind() {
        BrokerKind::Env => "KAFKA_BOOTSTRAP_SERVERS",
        BrokerKind::Docker => "a Kafka container",
        BrokerKind::Mock => "librdkafka's embedded mock cluster",
    };
    verdict.context(format!(
        "broker: {kind} at {}; topics {} → {} (dead letters {}), group {}",
        broker.bootstrap_servers(),
        names.input,
        names.output,
        names.dlq,
        names.group
    ));

    let args = names.args(broker.bootstrap_servers());
    let run = run_bounded(program, &args, options.run_deadline).await?;
    let observed = Observed {
        output: read_topic(broker, &names.output).await?,
        dead: read_topic(broker, &names.dlq).await?,
        committed: broker
            .committed_offsets(&names.group, &names.input)
            .await
            .context("reading the group's committed offsets")?,
        run,
    };
    if options.keep {
        let dir = keep(&input, &expected, &observed)?;
        verdict.context(format!("events and outputs kept in {}", dir.display()));
    }
    for check in checks(&input, &expected, &observed) {
        verdict.push(check);
    }
    Ok(verdict)
}

/// The fresh events of `seed`: two hours of event time from a start that depends on the
/// seed (so that the epoch's 5-minute grid falls anywhere in it).
pub fn generate(seed: u64) -> anyhow::Result<Vec<GeneratedRecord>> {
    let base = Utc
        .with_ymd_and_hms(2026, 11, 25, 0, 0, 0)
        .single()
        .context("the base date")?;
    let start = base + TimeDelta::milliseconds((seed % 86_400_000) as i64);
    let rate = EVENTS as f64 / EVENT_TIME_SPAN.as_secs_f64();
    Ok(EventGenerator::new(seed, start, rate, DIRTY)?.generate(EVENTS))
}

/// The topics and the group of one grading, never used before.
struct Names {
    input: String,
    output: String,
    dlq: String,
    group: String,
}

impl Names {
    fn fresh() -> Names {
        Names {
            input: unique_name("kata-kafka-orders"),
            output: unique_name("kata-kafka-windows"),
            dlq: unique_name("kata-kafka-dlq"),
            group: unique_name("kata-kafka-group"),
        }
    }

    /// The program's command line, as the blank program states it.
    fn args(&self, bootstrap: &str) -> Vec<String> {
        [
            ("--bootstrap", bootstrap),
            ("--input", &self.input),
            ("--output", &self.output),
            ("--dlq", &self.dlq),
            ("--group", &self.group),
            ("--idle-timeout-s", &IDLE_TIMEOUT_S.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
        .collect()
    }
}

/// Runs the program until it exits or `deadline` passes, without blocking the runtime.
async fn run_bounded(
    program: &Program,
    args: &[String],
    deadline: Duration,
) -> anyhow::Result<Run> {
    let mut running = program.start(args)?;
    while !running.try_finished()? && running.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.wait(deadline)
}

/// Every record of `topic` (the program has stopped: what is there is final), read to
/// the end of each partition as a `read_committed` consumer: a program that writes in
/// Kafka transactions is graded on what it committed, and the transactions' commit
/// markers, which take offsets but are no records, are not counted as missing.
async fn read_topic(broker: &Broker, topic: &str) -> anyhow::Result<Vec<ConsumedRecord>> {
    broker.consume_to_end(topic, READ_BACK).await
}

/// The fresh input, in partition order, then offset order.
struct Input {
    records: Vec<GeneratedRecord>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    /// The next offset of each partition: where its committed offset must be at the end.
    ends: BTreeMap<i32, i64>,
}

/// Windows: (start in ms since the epoch, category) → (order count, total in cents).
type Windows = BTreeMap<(i64, String), (i64, i64)>;

/// Which events a window computation keeps: the reference, or a likely mistake.
#[derive(Clone, Copy)]
struct Rule<'a> {
    /// Drop the late events.
    watermark: bool,
    /// Aggregate the well-formed invalid events (null ids, negative amounts).
    invalid: bool,
    /// Only these partitions were read.
    only: Option<&'a BTreeSet<i32>>,
}

const REFERENCE: Rule<'static> = Rule {
    watermark: true,
    invalid: true,
    only: None,
};

impl Input {
    fn new(records: Vec<GeneratedRecord>, placed: &[(i32, i64)]) -> anyhow::Result<Input> {
        if records.len() != placed.len() {
            bail!("{} records but {} deliveries", records.len(), placed.len());
        }
        let mut rows: Vec<(i32, i64, GeneratedRecord)> = placed
            .iter()
            .zip(records)
            .map(|(&(p, o), r)| (p, o, r))
            .collect();
        rows.sort_by_key(|(p, o, _)| (*p, *o));
        let mut ends = BTreeMap::new();
        for (p, o, _) in &rows {
            let end = ends.entry(*p).or_insert(0);
            *end = (*end).max(o + 1);
        }
        Ok(Input {
            partitions: rows.iter().map(|r| r.0).collect(),
            offsets: rows.iter().map(|r| r.1).collect(),
            records: rows.into_iter().map(|r| r.2).collect(),
            ends,
        })
    }

    fn count(&self, kind: RecordKind) -> usize {
        self.records.iter().filter(|r| r.kind == kind).count()
    }

    /// One line for the verdict's context.
    fn describe(&self, expected: &StreamWindows) -> String {
        let first = self
            .records
            .iter()
            .filter_map(|r| r.event.as_ref()?.event_time().ok())
            .min()
            .map_or_else(String::new, |t| {
                format!(", event times from {}", t.format("%Y-%m-%d %H:%M"))
            });
        format!(
            "{} events on {} partitions{first}: {} late, {} invalid (null id or negative \
             amount: aggregated), {} malformed; {} windows expected",
            thousands(self.records.len() as u64),
            self.ends.len(),
            expected.late,
            self.count(RecordKind::Invalid),
            expected.malformed,
            expected.windows.len()
        )
    }

    /// The event time of each record with one (milliseconds), and its partition.
    fn timed(&self) -> impl Iterator<Item = (&GeneratedRecord, i32, i64)> {
        self.records
            .iter()
            .zip(&self.partitions)
            .filter_map(|(r, &p)| {
                let t = r.event.as_ref()?.event_time().ok()?.timestamp_millis();
                Some((r, p, t))
            })
    }

    /// The windows under `rule`, reading each partition in offset order.
    fn windows(&self, rule: Rule) -> Windows {
        let mut latest: BTreeMap<i32, i64> = BTreeMap::new();
        let mut windows = Windows::new();
        for (record, partition, t) in self.timed() {
            if rule.only.is_some_and(|only| !only.contains(&partition)) {
                continue;
            }
            let max = latest.entry(partition).or_insert(t);
            *max = (*max).max(t);
            let late = t < *max - WATERMARK_DELAY_MS;
            if (rule.watermark && late) || (!rule.invalid && record.kind == RecordKind::Invalid) {
                continue;
            }
            let Some(event) = &record.event else { continue };
            let totals = windows
                .entry((t.div_euclid(WINDOW_MS) * WINDOW_MS, event.category.clone()))
                .or_default();
            totals.0 += 1;
            totals.1 += (event.amount * 100.0).round() as i64;
        }
        windows
    }

    /// The slowest partition's watermark once everything is read: a window that ends
    /// after it closes only at the idle timeout.
    fn final_watermark(&self) -> i64 {
        let mut latest: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, partition, t) in self.timed() {
            let max = latest.entry(partition).or_insert(t);
            *max = (*max).max(t);
        }
        self.ends
            .keys()
            .map(|p| latest.get(p).map_or(i64::MIN, |m| m - WATERMARK_DELAY_MS))
            .min()
            .unwrap_or(i64::MIN)
    }
}

/// What the program left behind.
struct Observed {
    run: Run,
    output: Vec<ConsumedRecord>,
    dead: Vec<ConsumedRecord>,
    committed: BTreeMap<i32, i64>,
}

/// One window of the output topic, read leniently (what the comparison needs).
#[derive(Debug, Clone, PartialEq)]
struct Window {
    start: i64,
    end: Option<i64>,
    category: String,
    count: i64,
    cents: i64,
}

/// One message of the output topic: the window in it, if it can be read at all, and
/// what breaks the output format, as (what, example).
struct Emitted {
    key: String,
    value: String,
    window: Option<Window>,
    problems: Vec<(&'static str, String)>,
}

fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

/// At most 120 characters of `s`, on one line.
fn short(s: &str) -> String {
    let one_line = s.replace('\n', "\\n");
    match one_line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms} ms"), |t| t.format(ISO_MILLIS).to_string())
}

/// A time as a program may have written it: ISO-8601 with or without a zone (UTC
/// then), or a number of milliseconds (seconds if small) since the epoch.
fn lenient_time(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .ok()
            .or_else(|| {
                ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                    .map(|t| t.and_utc().timestamp_millis())
            }),
        Value::Number(n) => {
            let n = n.as_i64()?;
            Some(if n.abs() < 100_000_000_000 {
                n * 1000
            } else {
                n
            })
        }
        _ => None,
    }
}

fn is_cents(x: f64) -> bool {
    ((x * 100.0).round() - x * 100.0).abs() < 1e-6
}

fn read_emitted(record: &ConsumedRecord) -> Emitted {
    let key = text(record.key.as_deref());
    let value = text(record.payload.as_deref());
    let mut problems = Vec::new();
    let object = match serde_json::from_str::<Value>(&value) {
        Ok(Value::Object(object)) => object,
        _ => {
            problems.push(("the value is not a JSON object", short(&value)));
            return Emitted {
                key,
                value,
                window: None,
                problems,
            };
        }
    };

    // The fields, in the order they appear in the text.
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    names.sort_by_key(|n| value.find(&format!("\"{n}\"")).unwrap_or(usize::MAX));
    if names != FIELDS {
        let missing: Vec<&str> = FIELDS.into_iter().filter(|f| !names.contains(f)).collect();
        let extra: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !FIELDS.contains(n))
            .collect();
        let what = if !missing.is_empty() {
            format!("missing {}", missing.join(", "))
        } else if !extra.is_empty() {
            format!("extra {}", extra.join(", "))
        } else {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            let hint = if names == sorted {
                " (sorted by name: serde_json's `json!` and `Value` sort keys; serialise a \
                 `#[derive(Serialize)]` struct, whose fields keep their order)"
            } else {
                ""
            };
            format!("in the order {}{hint}", names.join(", "))
        };
        problems.push(("the value's fields are not the six in order", what));
    }
    for field in ["window_start", "window_end"] {
        match object.get(field) {
            Some(Value::String(s))
                if DateTime::parse_from_rfc3339(s)
                    .is_ok_and(|t| t.with_timezone(&Utc).format(ISO_MILLIS).to_string() == *s) => {}
            Some(other) => problems.push((
                "timestamps are not ISO-8601 UTC with milliseconds",
                format!("{field} {other}, e.g. \"2026-11-25T14:05:00.000Z\""),
            )),
            None => {}
        }
    }
    let start = object.get("window_start").and_then(lenient_time);
    let end = object.get("window_end").and_then(lenient_time);
    let category = object
        .get("category")
        .and_then(Value::as_str)
        .map(str::to_string);
    if object.get("category").is_some_and(|c| !c.is_string()) {
        problems.push(("category is not a string", object["category"].to_string()));
    }
    let count = match object.get("order_count") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_i64(),
        Some(other) => {
            problems.push(("order_count is not an integer", other.to_string()));
            other
                .as_f64()
                .filter(|x| x.fract() == 0.0)
                .map(|x| x as i64)
        }
        None => None,
    };
    let mut amount = |field: &str| match object.get(field) {
        Some(Value::Number(n)) => {
            let x = n.as_f64()?;
            if !is_cents(x) {
                problems.push(("money is not rounded to cents", format!("{field} {n}")));
            }
            Some(x)
        }
        Some(other) => {
            problems.push(("money is not a JSON number", format!("{field} {other}")));
            None
        }
        None => None,
    };
    let total = amount("total_amount");
    let avg = amount("avg_amount");
    if let (Some(total), Some(avg), Some(count)) = (total, avg, count)
        && count > 0
        && (avg - total / count as f64).abs() > 0.01 + 1e-9
    {
        problems.push((
            "avg_amount is not total_amount / order_count",
            format!("avg_amount {avg}, total_amount {total}, order_count {count}"),
        ));
    }
    if let (Some(start), Some(category)) = (start, &category) {
        let shown = match object.get("window_start") {
            Some(Value::String(s)) => s.clone(),
            _ => iso(start),
        };
        let want = format!("{shown}|{category}");
        if key != want {
            problems.push((
                "the key is not window_start|category",
                format!("key {key:?}, expected {want:?}"),
            ));
        }
    }
    let window = match (start, category, count, total) {
        (Some(start), Some(category), Some(count), Some(total)) => Some(Window {
            start,
            end,
            category,
            count,
            cents: (total * 100.0).round() as i64,
        }),
        _ => None,
    };
    Emitted {
        key,
        value,
        window,
        problems,
    }
}

/// The checklist, from what the program left behind.
fn checks(input: &Input, expected: &StreamWindows, observed: &Observed) -> Vec<Check> {
    let mut checks = vec![runs_check(&observed.run)];
    if observed.output.is_empty() && observed.dead.is_empty() && observed.committed.is_empty() {
        let mut detail = String::from(
            "Nothing reached the output topic or the dead-letter topic, and the group \
             committed no offset. Subscribe to --input with group --group, reading from the \
             earliest offset (the events are there before the program starts), and count the \
             idle time from the moment the partitions are assigned: joining a group takes a \
             few seconds.",
        );
        if !observed.run.stderr.trim().is_empty() {
            detail.push_str("\n\nThe end of what it printed on stderr:\n");
            detail.push_str(&observed.run.stderr_tail());
        }
        checks.push(
            Check::fail(
                READS,
                format!(
                    "nothing came out of the {} events: no window, no dead letter, no \
                     committed offset",
                    thousands(input.records.len() as u64)
                ),
            )
            .with_detail(detail),
        );
        for step in [PARSES, WATERMARK, WINDOWS, FORMAT, WRITES] {
            checks.push(Check::skip(step, "not checked: nothing was read"));
        }
        checks.push(commits_check(input, &observed.committed));
        return checks;
    }

    let emitted: Vec<Emitted> = observed.output.iter().map(read_emitted).collect();
    let readable: Vec<&Window> = emitted.iter().filter_map(|e| e.window.as_ref()).collect();
    let mut actual = Windows::new();
    let mut times: BTreeMap<(i64, String), usize> = BTreeMap::new();
    for w in &readable {
        let key = (w.start, w.category.clone());
        let totals = actual.entry(key.clone()).or_default();
        totals.0 += w.count;
        totals.1 += w.cents;
        *times.entry(key).or_default() += 1;
    }

    // Only some partitions read?
    let all: BTreeSet<i32> = input.ends.keys().copied().collect();
    let read_only = (actual != expected.windows && !actual.is_empty())
        .then(|| {
            proper_subsets(&all).into_iter().find(|subset| {
                input.windows(Rule {
                    only: Some(subset),
                    ..REFERENCE
                }) == actual
            })
        })
        .flatten();
    checks.push(match &read_only {
        Some(subset) => Check::fail(
            READS,
            format!(
                "only {} {} of {} {} read: the windows match their events alone",
                if subset.len() > 1 {
                    "partitions"
                } else {
                    "partition"
                },
                list(subset),
                all.len(),
                if subset.len() > 1 { "were" } else { "was" },
            ),
        )
        .with_detail(
            "Subscribe to the topic (every partition of it), rather than assigning one \
             partition, and read until the input is idle.",
        ),
        None => Check::pass(
            READS,
            format!(
                "{} events on {} partitions{}",
                thousands(input.records.len() as u64),
                all.len(),
                if partitions_read(input, observed) == all {
                    ", every partition read"
                } else {
                    ""
                }
            ),
        ),
    });
    checks.push(dead_letter_check(input, &observed.dead));
    let [watermark, windows, writes] = window_checks(
        input,
        expected,
        &emitted,
        &actual,
        &times,
        read_only.is_some(),
    );
    checks.push(watermark);
    checks.push(windows);
    checks.push(format_check(&emitted));
    checks.push(writes);
    checks.push(commits_check(input, &observed.committed));
    checks
}

/// The partitions that left a trace: a committed offset, or one of their malformed
/// payloads in the dead-letter topic.
fn partitions_read(input: &Input, observed: &Observed) -> BTreeSet<i32> {
    let dead: BTreeSet<&[u8]> = observed
        .dead
        .iter()
        .map(|d| d.payload.as_deref().unwrap_or_default())
        .collect();
    let committed = observed
        .committed
        .iter()
        .filter(|(_, offset)| **offset > 0)
        .map(|(p, _)| *p);
    let dead_lettered = input
        .records
        .iter()
        .zip(&input.partitions)
        .filter(|(r, _)| r.kind == RecordKind::Malformed && dead.contains(r.payload.as_slice()))
        .map(|(_, p)| *p);
    committed.chain(dead_lettered).collect()
}

fn runs_check(run: &Run) -> Check {
    let idle = Duration::from_secs(IDLE_TIMEOUT_S);
    if let Some(problem) = run.problem() {
        return Check::fail(RUNS, problem).with_detail(run.stderr_tail());
    }
    if run.elapsed < idle {
        return Check::fail(
            RUNS,
            format!(
                "exited after {:.1} s, before the input could have been idle for {} s",
                run.elapsed.as_secs_f64(),
                IDLE_TIMEOUT_S
            ),
        )
        .with_detail(
            "The program must read until no record has arrived for --idle-timeout-s seconds \
             (counted from when its partitions are assigned), then emit its open windows, \
             commit and exit.",
        );
    }
    Check::pass(
        RUNS,
        format!("stopped by itself after {:.1} s", run.elapsed.as_secs_f64()),
    )
}

/// Every non-empty proper subset of `all`, smallest first.
fn proper_subsets(all: &BTreeSet<i32>) -> Vec<BTreeSet<i32>> {
    let items: Vec<i32> = all.iter().copied().collect();
    let mut subsets: Vec<BTreeSet<i32>> = (1..(1u32 << items.len()) - 1)
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &p)| p)
                .collect()
        })
        .collect();
    subsets.sort_by_key(BTreeSet::len);
    subsets
}

fn list(items: &BTreeSet<i32>) -> String {
    items
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every malformed payload in the dead-letter topic, once, and nothing else.
fn dead_letter_check(input: &Input, dead: &[ConsumedRecord]) -> Check {
    let mut wanted: HashMap<&[u8], usize> = HashMap::new();
    let mut kinds: HashMap<&[u8], RecordKind> = HashMap::new();
    for r in &input.records {
        kinds.insert(&r.payload, r.kind);
        if r.kind == RecordKind::Malformed {
            *wanted.entry(&r.payload).or_default() += 1;
        }
    }
    let mut got: HashMap<&[u8], usize> = HashMap::new();
    for d in dead {
        *got.entry(d.payload.as_deref().unwrap_or_default())
            .or_default() += 1;
    }
    let total: usize = wanted.values().sum();
    let mut missing = Vec::new();
    for r in input
        .records
        .iter()
        .filter(|r| r.kind == RecordKind::Malformed)
    {
        let have = got.get(r.payload.as_slice()).copied().unwrap_or(0);
        if have < wanted[r.payload.as_slice()] && !missing.contains(&r.payload.as_slice()) {
            missing.push(r.payload.as_slice());
        }
    }
    // Extra copies, by what the payload was.
    let mut extra: BTreeMap<Option<RecordKind>, Vec<&[u8]>> = BTreeMap::new();
    for d in dead {
        let payload = d.payload.as_deref().unwrap_or_default();
        let over = got[payload].saturating_sub(wanted.get(payload).copied().unwrap_or(0));
        if over > 0 {
            let shown = extra.entry(kinds.get(payload).copied()).or_default();
            if !shown.contains(&payload) {
                shown.push(payload);
            }
        }
    }
    let mut problems: Vec<(String, &str, Vec<&[u8]>)> = Vec::new();
    if !missing.is_empty() {
        problems.push((
            format!(
                "{} of {total} malformed payloads {} missing",
                thousands(missing.len() as u64),
                if missing.len() == 1 { "is" } else { "are" }
            ),
            "Each payload that does not fit the schema goes to the --dlq topic, as it is \
             (the value byte for byte; the reason may go in a header). Missing:",
            missing,
        ));
    }
    for (kind, payloads) in extra {
        let n = payloads.len();
        let (summary, why) = match kind {
            Some(RecordKind::Malformed) => (
                format!(
                    "{} dead-lettered more than once",
                    counted(n, "malformed payload was", "malformed payloads were")
                ),
                "Each malformed payload goes to the dead-letter topic once:",
            ),
            Some(RecordKind::Invalid) => (
                format!(
                    "{} with a null id or a negative amount {} dead-lettered",
                    plural(n, "well-formed event"),
                    if n == 1 { "was" } else { "were" }
                ),
                "They fit the schema (order_id and customer_id are nullable, an amount is \
                 any number): aggregate them, do not dead-letter them:",
            ),
            Some(RecordKind::Late) => (
                format!(
                    "{} dead-lettered",
                    counted(n, "late event was", "late events were")
                ),
                "A late event fits the schema: the watermark drops it (count it in your log), \
                 it is not a dead letter:",
            ),
            Some(RecordKind::Valid) => (
                format!(
                    "{} dead-lettered",
                    counted(n, "valid event was", "valid events were")
                ),
                "These events fit the schema and belong in the windows:",
            ),
            None => (
                format!(
                    "{} not a payload of the input",
                    counted(n, "dead letter is", "dead letters are")
                ),
                "A dead letter's value must be the payload exactly as it was read (put the \
                 reason in a header):",
            ),
        };
        problems.push((summary, why, payloads));
    }
    if problems.is_empty() {
        return Check::pass(
            PARSES,
            format!(
                "all {} malformed payloads in the dead-letter topic, once each, nothing else",
                thousands(total as u64)
            ),
        );
    }
    let summary = problems
        .iter()
        .map(|p| p.0.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let detail = problems
        .iter()
        .map(|(summary, why, payloads)| {
            let mut s = format!("{summary}. {why}\n");
            for p in payloads.iter().take(SHOWN) {
                s.push_str(&format!("  {}\n", short(&String::from_utf8_lossy(p))));
            }
            if payloads.len() > SHOWN {
                s.push_str(&format!("  … and {} more\n", payloads.len() - SHOWN));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n");
    Check::fail(PARSES, summary).with_detail(detail)
}

/// What was found wrong on one step: (one line for the summary, the details).
type Findings = Vec<(String, String)>;

/// A check from its findings: a pass with `ok` when there are none.
fn check_of(step: &str, findings: Findings, ok: String) -> Check {
    if findings.is_empty() {
        return Check::pass(step, ok);
    }
    let summary: Vec<&str> = findings.iter().map(|f| f.0.as_str()).collect();
    let detail: Vec<&str> = findings.iter().map(|f| f.1.as_str()).collect();
    Check::fail(step, summary.join("; ")).with_detail(detail.join("\n"))
}

/// The watermark, the windows and the writing, from the windows read back.
fn window_checks(
    input: &Input,
    expected: &StreamWindows,
    emitted: &[Emitted],
    actual: &Windows,
    times: &BTreeMap<(i64, String), usize>,
    partial_read: bool,
) -> [Check; 3] {
    let not_checked = |why: &str| {
        [WATERMARK, WINDOWS].map(|step| Check::skip(step, format!("not checked: {why}")))
    };
    if emitted.is_empty() {
        let [watermark, windows] = not_checked("no window was written");
        let writes = Check::fail(WRITES, "nothing in the output topic").with_detail(
            "Each closed window is one message in the --output topic, and at the idle \
             timeout every open window is written too.",
        );
        return [watermark, windows, writes];
    }
    let writes_ok = format!("{} written", plural(emitted.len(), "window"));
    let windows: Vec<&Window> = emitted.iter().filter_map(|e| e.window.as_ref()).collect();
    if windows.is_empty() || partial_read {
        let why = if partial_read {
            "only some partitions were read"
        } else {
            "no window could be read (see output format)"
        };
        let [watermark, windows] = not_checked(why);
        return [watermark, windows, Check::pass(WRITES, writes_ok)];
    }

    let reference = &expected.windows;
    let mut watermark = Findings::new();
    let mut shape = Findings::new();
    let mut writes = Findings::new();
    let late = expected.late as usize;
    let misaligned: Vec<&&Window> = windows
        .iter()
        .filter(|w| w.start.rem_euclid(WINDOW_MS) != 0)
        .collect();
    if let Some(first) = misaligned.first() {
        let left: Vec<_> = reference.iter().take(SHOWN).map(row).collect();
        let mut right: Vec<_> = actual.iter().take(SHOWN).map(row).collect();
        right.resize(left.len().max(right.len()), Default::default());
        shape.push((
            format!(
                "windows are not aligned to the epoch: {} of {} start {} into a 5-minute slot \
                 (e.g. {}|{})",
                thousands(misaligned.len() as u64),
                thousands(windows.len() as u64),
                duration_text(first.start.rem_euclid(WINDOW_MS)),
                iso(first.start),
                first.category
            ),
            format!(
                "A window is [start, start + 5 min) where start is a multiple of 5 minutes \
                 since the epoch (start = t - t mod 300000 ms), whenever the first event \
                 came. The first windows:\n{}",
                tables(&left, &right)
            ),
        ));
    }
    let wrong_length: Vec<&&Window> = windows
        .iter()
        .filter(|w| w.end.is_some_and(|end| end - w.start != WINDOW_MS))
        .collect();
    if let Some(first) = wrong_length.first() {
        shape.push((
            format!(
                "{} last {}, not 5 minutes (e.g. {}|{})",
                plural(wrong_length.len(), "window"),
                duration_text(first.end.unwrap_or_default() - first.start),
                iso(first.start),
                first.category
            ),
            "window_end = window_start + 5 minutes.".to_string(),
        ));
    }

    if misaligned.is_empty() {
        compare_windows(
            input,
            reference,
            actual,
            &mut watermark,
            &mut shape,
            &mut writes,
        );
    } else {
        // Windows cannot be compared one by one; the total count still shows the watermark.
        let no_watermark = input.windows(Rule {
            watermark: false,
            ..REFERENCE
        });
        let sum = |w: &Windows| w.values().map(|v| v.0).sum::<i64>();
        if sum(actual) == sum(&no_watermark) && sum(actual) != sum(reference) {
            watermark.push((
                format!(
                    "{} were counted (judged on the total count)",
                    plural(late, "late event")
                ),
                late_rule().to_string(),
            ));
        } else if sum(actual) != sum(reference) {
            let [skipped, _] = not_checked("the windows are not aligned to the epoch");
            return [
                skipped,
                check_of(WINDOWS, shape, String::new()),
                check_of(WRITES, writes, writes_ok),
            ];
        }
    }
    let duplicates: Vec<(&(i64, String), usize)> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k, *n))
        .collect();
    if let Some((key, n)) = duplicates.first() {
        watermark.push((
            format!(
                "{} emitted more than once (e.g. {}|{}, {n} times)",
                counted(duplicates.len(), "window was", "windows were"),
                iso(key.0),
                key.1
            ),
            format!(
                "A window is emitted once: when every partition's watermark has passed its \
                 end (the slowest partition decides), or at the idle timeout. {} Emitted more \
                 than once:\n{}",
                if misaligned.is_empty()
                    && duplicates
                        .iter()
                        .all(|(k, _)| actual.get(*k) == reference.get(*k))
                {
                    "Here the copies add up to the right totals: the window was closed too \
                     early. A watermark taken over the partitions read so far closes windows \
                     that a partition read later still feeds."
                } else {
                    "A late event added to a window already emitted sends it again: drop it."
                },
                duplicates
                    .iter()
                    .take(SHOWN)
                    .map(|(k, n)| format!("  {}|{}: {n} times\n", iso(k.0), k.1))
                    .collect::<String>()
            ),
        ));
    }
    let aligned = if misaligned.is_empty() {
        ""
    } else {
        " (judged on the total count: the windows are misaligned)"
    };
    [
        check_of(
            WATERMARK,
            watermark,
            format!(
                "{} dropped, every window emitted once{aligned}",
                plural(late, "late event")
            ),
        ),
        check_of(
            WINDOWS,
            shape,
            if actual == reference {
                format!(
                    "{} per category, aligned to the epoch; counts and totals right",
                    plural(reference.len(), "window")
                )
            } else {
                // The differences are another step's (said on its line): don't call the
                // values right.
                "5 minutes long, per category, aligned to the epoch (where values \
                 differ, another line says why)"
                    .to_string()
            },
        ),
        check_of(WRITES, writes, writes_ok),
    ]
}

/// Aligned windows against the reference: first the single mistakes that explain the
/// whole output (a counterfactual equal to it), else each difference on its step.
fn compare_windows(
    input: &Input,
    reference: &Windows,
    actual: &Windows,
    watermark: &mut Findings,
    windows: &mut Findings,
    writes: &mut Findings,
) {
    if actual == reference {
        return;
    }
    let no_watermark = input.windows(Rule {
        watermark: false,
        ..REFERENCE
    });
    let without_invalid = input.windows(Rule {
        invalid: false,
        ..REFERENCE
    });
    let final_watermark = input.final_watermark();
    let open_at_end = |key: &(i64, String)| key.0 + WINDOW_MS > final_watermark;
    let closed_only: Windows = reference
        .iter()
        .filter(|(k, _)| !open_at_end(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let unflushed = |keys: &[&(i64, String)]| {
        (
            format!(
                "{} still open when the input went idle {} never written (from {})",
                plural(keys.len(), "window"),
                if keys.len() == 1 { "was" } else { "were" },
                keys.first().map_or_else(String::new, |k| iso(k.0))
            ),
            format!(
                "At the idle timeout the input is finished: emit every open window, then \
                 commit.\n{}",
                compare(keys, reference, actual)
            ),
        )
    };
    let late_counted = |events: i64, keys: &[&(i64, String)]| {
        (
            format!(
                "{} counted ({} shown)",
                counted(events as usize, "late event was", "late events were"),
                plural(keys.len().min(SHOWN), "window")
            ),
            format!("{}\n{}", late_rule(), compare(keys, reference, actual)),
        )
    };

    if *actual == no_watermark {
        let keys = differing(reference, actual);
        let late = keys
            .iter()
            .map(|k| no_watermark[*k].0 - reference.get(*k).map_or(0, |v| v.0))
            .sum();
        watermark.push(late_counted(late, &keys));
        return;
    }
    if *actual == without_invalid {
        let keys = differing(reference, actual);
        windows.push((
            format!(
                "the {} with a null id or a negative amount were left out",
                plural(input.count(RecordKind::Invalid), "event")
            ),
            format!(
                "They fit the schema (order_id and customer_id are nullable, an amount is any \
                 number): only payloads that do not fit it are dead letters; every other \
                 on-time event counts in its window.\n{}",
                compare(&keys, reference, actual)
            ),
        ));
        return;
    }
    if *actual == closed_only {
        let keys: Vec<&(i64, String)> = reference.keys().filter(|k| open_at_end(k)).collect();
        writes.push(unflushed(&keys));
        return;
    }

    // No single mistake explains it: each difference on its step.
    let (mut late, mut late_keys) = (0, Vec::new());
    let (mut dropped, mut dropped_keys) = (0, Vec::new());
    let (mut missing, mut missing_events) = (Vec::new(), 0);
    let (mut unexpected, mut open, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let keys: BTreeSet<&(i64, String)> = reference.keys().chain(actual.keys()).collect();
    for key in keys {
        let (a, e) = (actual.get(key), reference.get(key));
        let count = |w: Option<&(i64, i64)>| w.map_or(0, |v| v.0);
        let (ac, ec, nc) = (count(a), count(e), count(no_watermark.get(key)));
        if ac > ec && ac <= nc {
            late += ac - ec;
            late_keys.push(key);
        } else if ac > ec {
            unexpected.push(key);
        } else if ac < ec && a.is_none() && open_at_end(key) {
            open.push(key);
        } else if ac < ec && a.is_none() {
            missing.push(key);
            missing_events += ec;
        } else if ac < ec {
            dropped += ec - ac;
            dropped_keys.push(key);
        } else if a != e {
            amounts.push(key);
        }
    }
    if late > 0 {
        watermark.push(late_counted(late, &late_keys));
    }
    if dropped > 0 {
        // Whole windows missing too are most likely dropped the same way.
        dropped += missing_events;
        dropped_keys.append(&mut missing);
        dropped_keys.sort();
        watermark.push((
            format!(
                "{} dropped as late, in {}",
                counted(dropped as usize, "on-time event was", "on-time events were"),
                plural(dropped_keys.len(), "window")
            ),
            format!(
                "Lateness is judged per input partition: an event is late only when it is \
                 more than 10 minutes older than the latest event time read so far in its own \
                 partition. (One latest time for the whole topic makes the events of a \
                 partition read after another look late.)\n{}",
                compare(&dropped_keys, reference, actual)
            ),
        ));
    }
    if !unexpected.is_empty() {
        windows.push((
            format!(
                "{} more orders than their on-time events",
                counted(unexpected.len(), "window counts", "windows count")
            ),
            format!(
                "order_count is the number of on-time events of the window's 5 minutes and \
                 category.\n{}",
                compare(&unexpected, reference, actual)
            ),
        ));
    }
    if !missing.is_empty() {
        windows.push((
            format!(
                "{} missing",
                counted(missing.len(), "expected window is", "expected windows are")
            ),
            format!(
                "One window per 5-minute slot and category with an on-time event:\n{}",
                compare(&missing, reference, actual)
            ),
        ));
    }
    if !amounts.is_empty() {
        windows.push((
            format!(
                "total_amount differs in {} with the right order_count",
                plural(amounts.len(), "window")
            ),
            format!(
                "total_amount is the sum of `amount`, to the cent:\n{}",
                compare(&amounts, reference, actual)
            ),
        ));
    }
    if !open.is_empty() {
        writes.push(unflushed(&open));
    }
}

/// `1 window`, `1,736 windows`.
fn plural(n: usize, one: &str) -> String {
    counted(n, one, &format!("{one}s"))
}

/// `1 window was`, `1,736 windows were`.
fn counted(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ => format!("{} {many}", thousands(n as u64)),
    }
}

fn late_rule() -> &'static str {
    "An event is late when its time is more than 10 minutes before the latest event time \
     read so far in its partition (itself included): drop it and count it, do not add it to \
     a window."
}

/// `2 min 30 s`, `10 min`, `45 s`, `1.5 s`.
fn duration_text(ms: i64) -> String {
    let (min, rest) = (ms / 60_000, ms % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{} s", rest / 1000)
    } else {
        format!("{:.1} s", rest as f64 / 1000.0)
    };
    match (min, rest) {
        (0, _) => seconds,
        (_, 0) => format!("{min} min"),
        _ => format!("{min} min {seconds}"),
    }
}

/// The keys whose windows differ, in order.
fn differing<'a>(expected: &'a Windows, actual: &'a Windows) -> Vec<&'a (i64, String)> {
    let keys: BTreeSet<&(i64, String)> = expected.keys().chain(actual.keys()).collect();
    keys.into_iter()
        .filter(|k| expected.get(*k) != actual.get(*k))
        .collect()
}

/// The first few of `keys`, expected | actual.
fn compare(keys: &[&(i64, String)], expected: &Windows, actual: &Windows) -> String {
    // Windows on both sides first: they show the difference best.
    let mut shown = keys.to_vec();
    shown.sort_by_key(|k| !(expected.contains_key(*k) && actual.contains_key(*k)));
    shown.truncate(SHOWN);
    let side = |w: &Windows| -> Vec<[String; 4]> {
        shown
            .iter()
            .map(|k| match w.get(*k) {
                Some(v) => row((*k, v)),
                None => [short_time(k.0), k.1.clone(), "(none)".into(), String::new()],
            })
            .collect()
    };
    let mut out = tables(&side(expected), &side(actual));
    if keys.len() > SHOWN {
        out.push_str(&format!("… and {} more windows\n", keys.len() - SHOWN));
    }
    out
}

fn short_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn row((key, totals): (&(i64, String), &(i64, i64))) -> [String; 4] {
    [
        short_time(key.0),
        key.1.clone(),
        totals.0.to_string(),
        money(totals.1),
    ]
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// Two tables of windows with the same columns and widths, side by side.
fn tables(left: &[[String; 4]], right: &[[String; 4]]) -> String {
    const HEADER: [&str; 4] = [
        "window_start (UTC)",
        "category",
        "order_count",
        "total_amount",
    ];
    let mut widths = HEADER.map(str::len);
    for r in left.iter().chain(right) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|", padded.join("|"))
    };
    let rule = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let table = |rows: &[[String; 4]]| {
        let mut lines = vec![rule.clone(), line(HEADER), rule.clone()];
        lines.extend(rows.iter().map(|r| line([&r[0], &r[1], &r[2], &r[3]])));
        lines.push(rule.clone());
        lines.join("\n")
    };
    side_by_side(&table(left), &table(right))
}

/// The output format, strictly: each message's key and value.
fn format_check(emitted: &[Emitted]) -> Check {
    if emitted.is_empty() {
        return Check::skip(FORMAT, "not checked: no window was written");
    }
    let mut by_problem: BTreeMap<&str, Vec<(&Emitted, &str)>> = BTreeMap::new();
    let mut bad = 0;
    for e in emitted {
        if !e.problems.is_empty() {
            bad += 1;
        }
        for (what, example) in &e.problems {
            by_problem.entry(what).or_default().push((e, example));
        }
    }
    if by_problem.is_empty() {
        return Check::pass(
            FORMAT,
            "key window_start|category, the six fields in order, ISO-8601 UTC timestamps, \
             money to the cent",
        );
    }
    let mut problems: Vec<(&str, Vec<(&Emitted, &str)>)> = by_problem.into_iter().collect();
    problems.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let summary = format!(
        "{} of {} messages: {}",
        thousands(bad as u64),
        thousands(emitted.len() as u64),
        problems
            .iter()
            .map(|(what, _)| *what)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut detail = String::from(
        "Each window is one message: key `<window_start>|<category>`, value e.g.\n  \
         {\"window_start\":\"2026-11-25T14:00:00.000Z\",\"window_end\":\"2026-11-25T14:05:00.000Z\",\
         \"category\":\"books\",\"order_count\":2,\"total_amount\":30.5,\"avg_amount\":15.25}\n",
    );
    for (what, examples) in &problems {
        detail.push_str(&format!("\n{what} ({} messages), e.g.\n", examples.len()));
        for (e, example) in examples.iter().take(SHOWN) {
            detail.push_str(&format!(
                "  {example}\n    key {}\n    value {}\n",
                short(&e.key),
                short(&e.value)
            ));
        }
    }
    Check::fail(FORMAT, summary).with_detail(detail)
}

/// The group's committed offsets at the end of every input partition.
fn commits_check(input: &Input, committed: &BTreeMap<i32, i64>) -> Check {
    let partitions = input.ends.len();
    if committed.is_empty() {
        return Check::fail(COMMITS, "nothing committed for the group").with_detail(
            "Once the windows and dead letters a record led to are delivered, commit its \
             offset + 1 (the next record to read) for the group, synchronously, before \
             exiting: the grader reads the group's committed offsets after the run.",
        );
    }
    let off: Vec<(i32, Option<i64>, i64)> = input
        .ends
        .iter()
        .map(|(&p, &end)| (p, committed.get(&p).copied(), end))
        .filter(|(_, c, end)| *c != Some(*end))
        .collect();
    if off.is_empty() {
        return Check::pass(
            COMMITS,
            format!("at the end of all {partitions} partitions"),
        );
    }
    let describe = |(p, c, end): &(i32, Option<i64>, i64)| match c {
        None => format!("partition {p}: none (end {})", thousands(*end as u64)),
        Some(c) => format!("partition {p}: {c} of {}", thousands(*end as u64)),
    };
    let one_short = off.iter().all(|(_, c, end)| *c == Some(end - 1));
    let summary = if one_short {
        format!(
            "one short of the end on {} of {partitions} partitions: commit the offset of \
             the next record to read (last offset + 1)",
            off.len()
        )
    } else {
        format!(
            "not at the end of {} of {partitions} partitions ({})",
            off.len(),
            off.iter().map(describe).collect::<Vec<_>>().join(", ")
        )
    };
    Check::fail(COMMITS, summary).with_detail(
        "After the run, the group's committed offset of each partition must be its end: \
         every record was processed and its results delivered before the commit.",
    )
}

/// Writes the events, the expected windows and the outputs to a folder that is kept.
fn keep(input: &Input, expected: &StreamWindows, observed: &Observed) -> anyhow::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("kata-kafka-")
        .tempdir()
        .context("creating a folder for the kept data")?
        .keep();
    let jsonl = |rows: Vec<Value>| {
        rows.iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let events = input
        .records
        .iter()
        .zip(input.partitions.iter().zip(&input.offsets))
        .map(|(r, (p, o))| {
            serde_json::json!({
                "partition": p, "offset": o, "kind": r.kind,
                "payload": String::from_utf8_lossy(&r.payload),
            })
        })
        .collect();
    let windows = expected
        .windows
        .iter()
        .map(|((start, category), (count, cents))| {
            serde_json::json!({
                "window_start": iso(*start), "category": category,
                "order_count": count, "total_amount": money(*cents),
            })
        })
        .collect();
    let messages = |records: &[ConsumedRecord]| {
        records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "partition": r.partition, "offset": r.offset,
                    "key": text(r.key.as_deref()), "value": text(r.payload.as_deref()),
                })
            })
            .collect()
    };
    for (name, content) in [
        ("events.jsonl", jsonl(events)),
        ("expected_windows.jsonl", jsonl(windows)),
        ("output.jsonl", jsonl(messages(&observed.output))),
        ("dead_letters.jsonl", jsonl(messages(&observed.dead))),
        (
            "committed.json",
            serde_json::to_string(&observed.committed)? + "\n",
        ),
        ("stderr.txt", observed.run.stderr.clone()),
    ] {
        std::fs::write(dir.join(name), content)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    //! The diagnosis on made-up outputs, without a broker or a program.

    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn input(seed: u64) -> (Input, StreamWindows) {
        let records = generate(seed).unwrap();
        // Round-robin partitions, offsets in order.
        let mut next = [0i64; PARTITIONS as usize];
        let placed: Vec<(i32, i64)> = (0..records.len())
            .map(|i| {
                let p = (i % PARTITIONS as usize) as i32;
                next[p as usize] += 1;
                (p, next[p as usize] - 1)
            })
            .collect();
        let input = Input::new(records, &placed).unwrap();
        let expected = stream_windows_by_partition(&input.records, &input.partitions).unwrap();
        (input, expected)
    }

    fn message(
        offset: i64,
        start: i64,
        category: &str,
        (count, cents): (i64, i64),
    ) -> ConsumedRecord {
        let total = cents as f64 / 100.0;
        let avg = (total / count as f64 * 100.0).round() / 100.0;
        let value = format!(
            "{{\"window_start\":\"{}\",\"window_end\":\"{}\",\"category\":\"{category}\",\
             \"order_count\":{count},\"total_amount\":{total},\"avg_amount\":{avg}}}",
            iso(start),
            iso(start + WINDOW_MS)
        );
        ConsumedRecord {
            partition: 0,
            offset,
            key: Some(format!("{}|{category}", iso(start)).into_bytes()),
            payload: Some(value.into_bytes()),
        }
    }

    fn output(windows: &Windows) -> Vec<ConsumedRecord> {
        windows
            .iter()
            .enumerate()
            .map(|(i, ((start, category), totals))| message(i as i64, *start, category, *totals))
            .collect()
    }

    fn observed(input: &Input, windows: &Windows) -> Observed {
        let dead = input
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Malformed)
            .enumerate()
            .map(|(i, r)| ConsumedRecord {
                partition: 0,
                offset: i as i64,
                key: None,
                payload: Some(r.payload.clone()),
            })
            .collect();
        Observed {
            run: Run {
                source: std::path::PathBuf::from("program.rs"),
                status: Some(std::process::ExitStatus::from_raw(0)),
                stdout: String::new(),
                stderr: String::new(),
                elapsed: Duration::from_secs(5),
                deadline: Duration::from_secs(60),
            },
            output: output(windows),
            dead,
            committed: input.ends.clone(),
        }
    }

    fn made_up(input: &Input, expected: &StreamWindows, observed: &Observed) -> Verdict {
        let mut verdict = Verdict::new("kafka");
        for check in checks(input, expected, observed) {
            verdict.push(check);
        }
        println!("{verdict}");
        verdict
    }

    fn failed<'a>(verdict: &'a Verdict, step: &str) -> &'a Check {
        let check = verdict.check(step).unwrap();
        assert_eq!(check.status, crate::Status::Fail, "{verdict}");
        check
    }

    #[test]
    fn the_rule_of_the_reference_is_the_fixtures_rule() {
        let (input, expected) = input(7);
        assert_eq!(input.windows(REFERENCE), expected.windows);
        assert!(expected.late > 0 && expected.malformed > 0);
    }

    #[test]
    fn the_reference_output_passes() {
        let (input, expected) = input(1);
        let verdict = made_up(&input, &expected, &observed(&input, &expected.windows));
        assert!(verdict.passed(), "{verdict}");
    }

    #[test]
    fn late_events_counted_are_named_with_their_count() {
        let (input, expected) = input(2);
        let all = input.windows(Rule {
            watermark: false,
            ..REFERENCE
        });
        let verdict = made_up(&input, &expected, &observed(&input, &all));
        let check = failed(&verdict, WATERMARK);
        assert!(
            check
                .summary
                .contains(&format!("{} late events were counted", expected.late)),
            "{verdict}"
        );
        assert_eq!(verdict.count(crate::Status::Fail), 1, "{verdict}");
    }

    #[test]
    fn misaligned_windows_and_twice_emitted_windows_and_missing_commits() {
        let (input, expected) = input(3);
        let mut shifted = Windows::new();
        for ((start, category), totals) in &expected.windows {
            shifted.insert((start + 150_000, category.clone()), *totals);
        }
        let mut seen = observed(&input, &shifted);
        seen.committed.clear();
        let verdict = made_up(&input, &expected, &seen);
        assert!(
            failed(&verdict, WINDOWS)
                .summary
                .contains("not aligned to the epoch"),
            "{verdict}"
        );
        assert!(
            failed(&verdict, COMMITS)
                .summary
                .contains("nothing committed"),
            "{verdict}"
        );

        let mut twice = observed(&input, &expected.windows);
        let first = twice.output[0].clone();
        twice.output.push(first);
        let verdict = made_up(&input, &expected, &twice);
        assert!(
            failed(&verdict, WATERMARK)
                .summary
                .contains("emitted more than once"),
            "{verdict}"
        );
    }

    #[test]
    fn open_windows_not_flushed_and_invalid_events_left_out() {
        let (input, expected) = input(4);
        let final_watermark = input.final_watermark();
        let closed: Windows = expected
            .windows
            .iter()
            .filter(|(k, _)| k.0 + WINDOW_MS <= final_watermark)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let verdict = made_up(&input, &expected, &observed(&input, &closed));
        assert!(
            failed(&verdict, WRITES).summary.contains("never written"),
            "{verdict}"
        );
        let valid_only = input.windows(Rule {
            invalid: false,
            ..REFERENCE
        });
        let verdict = made_up(&input, &expected, &observed(&input, &valid_only));
        assert!(
            failed(&verdict, WINDOWS).summary.contains("null id"),
            "{verdict}"
        );
    }

    #[test]
    fn dead_letters_and_format_problems_are_named() {
        let (input, expected) = input(5);
        let mut seen = observed(&input, &expected.windows);
        let invalid = input
            .records
            .iter()
            .find(|r| r.kind == RecordKind::Invalid)
            .unwrap();
        seen.dead.pop();
        seen.dead.push(ConsumedRecord {
            partition: 0,
            offset: 999,
            key: None,
            payload: Some(invalid.payload.clone()),
        });
        let value =
            text(seen.output[0].payload.as_deref()).replace("\"order_count\"", "\"orders\"");
        seen.output[0].payload = Some(value.into_bytes());
        let verdict = made_up(&input, &expected, &seen);
        let parses = failed(&verdict, PARSES);
        assert!(parses.summary.contains("1 of"), "{verdict}");
        assert!(parses.summary.contains("null id"), "{verdict}");
        assert!(
            failed(&verdict, FORMAT)
                .summary
                .contains("missing order_count")
                || failed(&verdict, FORMAT).summary.contains("fields"),
            "{verdict}"
        );
    }

    #[test]
    fn only_one_partition_read() {
        let (input, expected) = input(6);
        let only: BTreeSet<i32> = [1].into();
        let part = input.windows(Rule {
            only: Some(&only),
            ..REFERENCE
        });
        let verdict = made_up(&input, &expected, &observed(&input, &part));
        assert!(
            failed(&verdict, READS)
                .summary
                .contains("only partition 1 of 3"),
            "{verdict}"
        );
    }
}
