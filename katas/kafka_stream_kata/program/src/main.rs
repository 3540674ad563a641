//! # Kafka streaming: Kafka → watermark → 5-minute windows → Kafka, from a blank file
//!
//! Target: 20 minutes (expert: 15; interview limit: 25).
//!
//! ## What you may use
//!
//! The crates of this program's Cargo.toml, and nothing else:
//!
//! - `rdkafka` (with its `tokio` feature: `StreamConsumer`, `FutureProducer`)
//! - `serde` (derive) and `serde_json`
//! - `chrono`
//! - `tokio` (`#[tokio::main]`, `tokio::time`)
//! - `anyhow` (errors with context)
//! - `clap` (derive)
//! - `datafusion` (`datafusion::arrow`, if you want Arrow; not needed)
//!
//! ## The task
//!
//! An online shop publishes every order as an event on a Kafka topic. Write the streaming
//! job that totals the orders per 5-minute window and product category and publishes each
//! window's totals on another topic. The Spark query it replaces:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", INPUT).load()
//!    .select(from_json(col("value").cast("string"), schema).alias("o")).select("o.*")
//!    .withWatermark("timestamp", "10 minutes")
//!    .groupBy(window("timestamp", "5 minutes"), "category")
//!    .agg(count("*").alias("order_count"), round(sum("amount"), 2).alias("total_amount"),
//!         round(avg("amount"), 2).alias("avg_amount"))
//!    .select(to_json(struct("*")).alias("value"))
//!    .writeStream.format("kafka").option("topic", OUTPUT).outputMode("append").start())
//! ```
//!
//! The command line:
//!
//! ```text
//! kafka_stream_program --bootstrap B --input TOPIC --output TOPIC --dlq TOPIC \
//!     --group G --idle-timeout-s N
//! ```
//!
//! `B` is the brokers' `bootstrap.servers`. The three topics exist; the output and
//! dead-letter topics are empty. `G` is a consumer group with no committed offset yet.
//!
//! ### Input
//!
//! The `--input` topic has one or more partitions. Each record's key is the order id (or
//! none); its value is one JSON object:
//!
//! ```json
//! {"order_id":"ORD-00000042","customer_id":"CUST-01234","product_id":"PROD-0137",
//!  "category":"books","quantity":2,"unit_price":19.99,"amount":39.98,
//!  "status":"completed","timestamp":"2026-11-25T14:03:07.123Z"}
//! ```
//!
//! | field         | JSON type                            | may be null |
//! |---------------|--------------------------------------|-------------|
//! | `order_id`    | string                               | yes         |
//! | `customer_id` | string                               | yes         |
//! | `product_id`  | string                               | no          |
//! | `category`    | string                               | no          |
//! | `quantity`    | integer (32-bit)                     | no          |
//! | `unit_price`  | number                               | no          |
//! | `amount`      | number                               | no          |
//! | `status`      | string                               | no          |
//! | `timestamp`   | string: an ISO-8601 (RFC 3339) date-time with its offset | no |
//!
//! Other fields may appear: ignore them. The event time is `timestamp`, not the record's
//! Kafka timestamp.
//!
//! ### Rules
//!
//! 1. Read `--input` as a member of group `--group`, from the earliest offset (the events
//!    are there before you start), with no automatic commit: you commit (rule 8).
//! 2. A value that does not fit the table above is malformed: not JSON, not an object, a
//!    field that may not be null missing or null, a field of another type, or a
//!    `timestamp` that is not a date-time (a missing `order_id` or `customer_id` reads as
//!    null). Write it to `--dlq` as it is (the value byte for byte; the same
//!    key; the reason in a header if you like) and go on. An event with a null
//!    `order_id` or `customer_id`, or a negative `amount`, fits the table: it is not a
//!    dead letter, it counts in its window like any other.
//! 3. The watermark, per input partition: an event is late when its time is more than
//!    10 minutes before the latest event time read so far **in its own partition**
//!    (itself included). Drop late events (count them in your log). Judging lateness
//!    over the whole topic is wrong: the consumer may read one partition's backlog before
//!    another's, and the second partition's on-time events would all look late.
//! 4. Windows: tumbling, `[start, start + 5 min)`, aligned to the epoch (`start` is a
//!    multiple of 300,000 ms since 1970-01-01T00:00:00Z), per `category`. For each:
//!    `order_count` (its on-time events), `total_amount` (sum of `amount`) and
//!    `avg_amount` (mean of `amount`), both rounded to cents when written.
//! 5. Emit each window exactly once, when it can no longer change: when every input
//!    partition's watermark (that partition's latest event time − 10 minutes) has passed
//!    the window's end, or at the idle timeout (rule 7). Never twice, never before an
//!    on-time event of it was added. (A watermark over only the partitions read so far
//!    closes windows too early.) Emitting every window at the idle timeout and none
//!    before is allowed: correct, only not streaming.
//! 6. One message per window on `--output`: the key `<window_start>|<category>`, the value
//!    one JSON object with these six fields in this order, times in ISO-8601 UTC with
//!    milliseconds, numbers as JSON numbers:
//!
//!    ```text
//!    key    2026-11-25T14:00:00.000Z|books
//!    value  {"window_start":"2026-11-25T14:00:00.000Z","window_end":"2026-11-25T14:05:00.000Z",
//!            "category":"books","order_count":2,"total_amount":30.5,"avg_amount":15.25}
//!    ```
//! 7. Stop when no record has arrived for `--idle-timeout-s` seconds, counted from when
//!    your consumer has its partitions (joining a group takes a few seconds): the input is
//!    finished, so emit every open window, wait until everything you sent is delivered,
//!    commit (rule 8), and exit with status 0. Any failure: a non-zero status and a
//!    message.
//! 8. Commit the input offsets only after the windows and dead letters they led to are
//!    delivered, synchronously, for the group: the offset of the next record to read
//!    (last offset + 1) of each partition. When the program exits, the group's committed
//!    offsets are at the end of every partition. (Committing mid-stream past a record
//!    whose window is still open would lose it in a crash; committing only at the end
//!    replays the whole input after a crash and sends the same windows again, same key
//!    and value: at-least-once.)
//! 9. A broker that has just started may answer `NotCoordinator` or
//!    `CoordinatorLoadInProgress` for a few seconds: retry such answers with a backoff,
//!    within a deadline, rather than failing.
//!
//! ## How it is graded
//!
//! ```text
//! cargo practice grade kafka                 # this file
//! cargo practice grade kafka --file F.rs     # any single-file program
//! ```
//!
//! The grader builds this file, then makes fresh events from a random seed (printed;
//! `--seed N` replays them): 3,000 orders over two hours of event time, about 3 % late,
//! 3 % with a null id or a negative amount, 3 % malformed, on a new topic of 3
//! partitions, on the broker the tests use (librdkafka's embedded mock cluster, or the
//! one `KAFKA_BOOTSTRAP_SERVERS` names). It runs your program with new output and
//! dead-letter topics, a new group and `--idle-timeout-s 2` (hung: stopped after 60 s),
//! reads back what it left, and prints a checklist:
//!
//! - runs: exit status 0, and not before the input could be idle;
//! - reads the topic: every partition (rule 1);
//! - parses JSON: every malformed value in the dead-letter topic once, nothing else (2);
//! - watermark: no late event counted, no on-time event dropped, no window twice (3, 5);
//! - 5-minute windows: aligned to the epoch, per category, counts and totals (4);
//! - output format: key, fields, timestamps, money to the cent (6);
//! - writes to the output topic: every window, the open ones at the idle timeout (5, 7);
//! - commits offsets: at the end of every partition (8).
//!
//! Windows are compared with the reference's, computed from the events in partition
//! order. A difference is named where it can be ("37 late events were counted", "windows
//! are not aligned to the epoch", "131 windows were emitted more than once") and shown as
//! expected | actual windows.
//!
//! Replace `fn main() {}` below with your program.

fn main() {}
