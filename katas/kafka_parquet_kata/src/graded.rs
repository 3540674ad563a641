//! The steps the tests grade: yours, or the reference with `--features reference`.

#[cfg(not(feature = "reference"))]
pub use crate::{
    add_partition_columns, commit_batch, create_consumer, filter_invalid, parse_orders,
    read_micro_batch, to_event_time,
};

#[cfg(feature = "reference")]
pub use solutions::kafka_parquet::{
    add_partition_columns, commit_batch, create_consumer, filter_invalid, parse_orders,
    read_micro_batch, to_event_time,
};

/// The step tests: part of the library's own test binary, so that a save compiles one
/// crate (`cargo test -p kafka_parquet_kata --lib`), not the library and then a test crate.
#[cfg(test)]
#[path = "../tests/steps.rs"]
mod steps;
