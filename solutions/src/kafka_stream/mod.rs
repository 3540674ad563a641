//! Kafka -> Kafka streaming: order events in, 5-minute totals per category out.
//!
//! The reference for `katas/kafka_stream_kata` in two parts: the steps ([`steps`], the
//! kata's signatures) and the runnable pipeline ([`pipeline`]: [`run`]) that loops over
//! them in micro-batches:
//!
//! ```text
//! orders --(2) read a micro-batch--(3) parse JSON--(4) watermark--(5) windows--(6) to JSON--(7) write, commit--> order_aggregates
//!                                      `-- malformed payloads, with the reason ------------------------------> orders_dlq
//! ```
//!
//! The Spark query it mirrors:
//!
//! ```python
//! (spark.readStream.format("kafka").option("subscribe", "orders").load()
//!    .select(from_json(col("value").cast("string"), schema).alias("o")).select("o.*")
//!    .withWatermark("timestamp", "10 minutes")
//!    .groupBy(window("timestamp", "5 minutes"), "category")
//!    .agg(count("*").alias("order_count"), round(sum("amount"), 2).alias("total_amount"),
//!         round(avg("amount"), 2).alias("avg_amount"))
//!    .select(to_json(struct("*")).alias("value"))
//!    .writeStream.format("kafka").option("topic", "order_aggregates").outputMode("append").start())
//! ```
//!
//! Both are re-exported here: `solutions::kafka_stream::parse_orders`,
//! `solutions::kafka_stream::run`.

pub mod pipeline;
pub mod steps;

pub use pipeline::*;
pub use steps::*;
