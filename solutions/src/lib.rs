//! Reference solutions for every kata, with the same signatures as the kata steps,
//! and the runnable pipelines in `src/bin/`.
//!
//! Each kata grades these with `cargo test -p <kata> --features reference`.

#[cfg(feature = "batch")]
pub mod batch;
#[cfg(feature = "kafka_parquet")]
pub mod kafka_parquet;
#[cfg(feature = "kafka_stream")]
pub mod kafka_stream;
