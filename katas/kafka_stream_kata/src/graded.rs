//! What the tests grade: your steps, or the reference with `--features reference`.

#[cfg(not(feature = "reference"))]
pub use crate::{
    Malformed, WindowState, WindowTotals, apply_watermark, create_clients, format_aggregates,
    parse_orders, read_micro_batch, tumbling_window_totals, write_and_commit,
};

#[cfg(feature = "reference")]
pub use solutions::kafka_stream::{
    Malformed, WindowState, WindowTotals, apply_watermark, create_clients, format_aggregates,
    parse_orders, read_micro_batch, tumbling_window_totals, write_and_commit,
};

/// The step tests: part of the library's own test binary, so that a save compiles one
/// crate (`cargo test -p kafka_stream_kata --lib`), not the library and then a test crate.
#[cfg(test)]
#[path = "../tests/steps.rs"]
mod steps;
