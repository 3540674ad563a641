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
#[cfg(any(feature = "kafka_stream", feature = "kafka_parquet"))]
pub mod mock;
#[cfg(any(feature = "kafka_stream", feature = "kafka_parquet"))]
pub mod order_decoder;

/// How the runnable pipelines end: `Ok` exits 0; an error prints one plain line with
/// its chain of causes (`kafka_stream: error: reading …: …`) and exits 1. A backtrace
/// follows only when `RUST_BACKTRACE` asked for one.
pub fn exit_code(program: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: error: {error:#}");
            let backtrace = error.backtrace();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                eprintln!("{backtrace}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
