#[cfg(feature = "kafka_parquet")]
pub mod kafka_parquet;
