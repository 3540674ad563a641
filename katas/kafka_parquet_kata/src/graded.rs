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
